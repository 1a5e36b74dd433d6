"""MossFuse weights files: safetensors with a JSON metadata record and a SHA-256 of the tensors.

A file holds the network's state (parameters and BatchNorm buffers) under ``model/``, and
optionally the optimiser state under ``optim/`` and the random state under ``rng/`` (for
resuming). The metadata key ``"hyperfuse"`` holds a JSON record with the format version,
the network configuration, the training step and the SHA-256 of every tensor's bytes in
key order. Writes are atomic (temporary file + ``os.replace``). Loading a truncated,
modified or foreign file raises :class:`~hyperfuse.errors.WeightsError`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from ..._atomic import atomic_path
from ...errors import WeightsError

__all__ = ["FORMAT", "save_weights", "load_weights", "tensor_digest"]

FORMAT = "hyperfuse.mossfuse/1"


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the keys, dtypes, shapes and bytes of ``tensors`` in sorted key order."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_weights(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], record: dict[str, Any]) -> Path:
    """Write ``tensors`` and ``record`` atomically to ``path`` (a ``.safetensors`` file)."""
    from safetensors.torch import save_file

    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = dict(record)
    meta["format"] = FORMAT
    meta["sha256"] = tensor_digest(flat)
    with atomic_path(path, suffix=".tmp") as tmp:
        save_file(flat, str(tmp), metadata={"hyperfuse": json.dumps(meta, sort_keys=True)})
    return Path(path)


def load_weights(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a file written by :func:`save_weights`.

    Raises
    ------
    WeightsError
        Missing, unreadable, corrupted or not a MossFuse weights file.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: weights file not found; pass the path of a trained checkpoint")
    try:
        from safetensors import safe_open

        with safe_open(str(p), framework="pt") as f:
            meta_raw = (f.metadata() or {}).get("hyperfuse")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except WeightsError:
        raise
    except Exception as exc:  # safetensors raises several types on damaged files
        raise WeightsError(f"{p}: not a readable safetensors file ({exc}); the file is corrupted "
                           "or truncated, re-train or re-copy it") from None
    if meta_raw is None:
        raise WeightsError(f"{p}: no hyperfuse metadata; this is not a MossFuse weights file")
    try:
        meta = json.loads(meta_raw)
    except json.JSONDecodeError:
        raise WeightsError(f"{p}: metadata is not valid JSON; the file is corrupted") from None
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{p}: format {meta.get('format')!r} is not {FORMAT!r}")
    if tensor_digest(tensors) != meta.get("sha256"):
        raise WeightsError(f"{p}: SHA-256 of the tensors does not match the metadata; the file is "
                           "corrupted, re-train or re-copy it")
    return tensors, meta
