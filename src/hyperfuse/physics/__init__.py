"""Sensor physics: PSF blur, decimation, spectral response, noise and simulation."""

from .functional import (
    apply_srf,
    blur,
    box_psf,
    default_psf_size,
    fwhm_to_sigma,
    gaussian_psf,
    phase_offset,
    spatial_degrade,
    upsample,
)
from .operators import Composed, LinearOperator, SpatialDegradation, SpectralResponse
from .sensor import PRESETS, FusionPhysics, Preset, SimulatedPair, make_sensor, simulate

__all__ = [
    "apply_srf",
    "blur",
    "box_psf",
    "default_psf_size",
    "fwhm_to_sigma",
    "gaussian_psf",
    "phase_offset",
    "spatial_degrade",
    "upsample",
    "LinearOperator",
    "SpatialDegradation",
    "SpectralResponse",
    "Composed",
    "FusionPhysics",
    "SimulatedPair",
    "make_sensor",
    "simulate",
    "Preset",
    "PRESETS",
]
