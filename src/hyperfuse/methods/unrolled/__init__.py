"""Shared coupled-NMF machinery for CNMF and learned unrolled variants (``conventions.md`` §3.4)."""

from .nmf import (
    DataTerm,
    MultiplicativeUpdate,
    NMFState,
    Target,
    Unrolled,
    UnrolledRun,
    couple,
    coupled_hs_abundance_parts,
    hs_term,
    lr_abundances,
    ms_endmembers,
    ms_term,
    sum_to_one_delta,
)

__all__ = [
    "DataTerm",
    "MultiplicativeUpdate",
    "NMFState",
    "Target",
    "Unrolled",
    "UnrolledRun",
    "couple",
    "coupled_hs_abundance_parts",
    "hs_term",
    "lr_abundances",
    "ms_endmembers",
    "ms_term",
    "sum_to_one_delta",
]
