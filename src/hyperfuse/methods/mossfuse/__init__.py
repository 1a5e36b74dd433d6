"""MossFuse: unsupervised HSI–MSI fusion by self-supervised modality decoupling (``mossfuse.md``).

Importing this package registers the ``mossfuse`` method. Library entry points:
:class:`MossFuse` / :class:`MossFuseConfig` (single-scene mode and inference from weights),
:func:`train_mossfuse` (dataset mode), :class:`MossFuseNet` (the network).
"""

from .checkpoint import load_weights, save_weights
from .losses import LossTerms, LossWeights, mossfuse_losses, subspace_clustering_loss
from .method import MossFuse, MossFuseConfig, fusion_path, sensor_spec_of
from .network import (
    BlindNet,
    Geometry,
    MossFuseNet,
    MossFuseOutput,
    degrade,
    geometry_of,
    parameter_formula,
    sample_lr,
)
from .train import train_mossfuse

__all__ = [
    "BlindNet",
    "Geometry",
    "LossTerms",
    "LossWeights",
    "MossFuse",
    "MossFuseConfig",
    "MossFuseNet",
    "MossFuseOutput",
    "degrade",
    "fusion_path",
    "geometry_of",
    "load_weights",
    "mossfuse_losses",
    "parameter_formula",
    "sample_lr",
    "save_weights",
    "sensor_spec_of",
    "subspace_clustering_loss",
    "train_mossfuse",
]
