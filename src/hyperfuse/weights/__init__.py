"""Bundled pretrained weights: ``.safetensors`` files with a JSON metadata record.

``conventions.md`` §3.6. ``<name>.safetensors`` sits beside ``<name>.json``; the JSON holds
the method, the architecture, the training recipe, the validation metrics and the SHA-256
of the ``.safetensors`` file, which :func:`load_weights` verifies before reading it.

Examples
--------
>>> import tempfile, pathlib, torch
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> path = save_weights(d / "m.safetensors", {"w": torch.ones(2)}, {"method": "demo"})
>>> state, meta = load_weights(path, expected_method="demo")
>>> state["w"].tolist(), meta["method"], len(meta["sha256"])
([1.0, 1.0], 'demo', 64)
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from .._atomic import atomic_path
from ..errors import WeightsError

__all__ = ["weights_dir", "sha256_file", "save_weights", "load_weights"]


def weights_dir() -> Path:
    """Folder of the bundled weights (this package)."""
    return Path(__file__).resolve().parent


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_weights(
    path: str | os.PathLike[str], state: dict[str, torch.Tensor], metadata: dict[str, Any]
) -> Path:
    """Write ``path`` (.safetensors) and ``path.with_suffix('.json')`` atomically.

    The metadata gets ``sha256`` (of the tensor file) and is also embedded in the
    safetensors header (key ``hyperfuse``), so a lone file still names its method.
    """
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    header = {"hyperfuse": json.dumps({k: v for k, v in metadata.items() if k != "sha256"}, sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
        os.chmod(tmp, 0o644)
    meta = dict(metadata)
    meta["sha256"] = sha256_file(path)
    meta["file"] = path.name
    meta["size_bytes"] = path.stat().st_size
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o644)
    return path


def _resolve(name_or_path: str | os.PathLike[str]) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".safetensors" or p.exists() or os.sep in str(name_or_path):
        return p
    return weights_dir() / f"{name_or_path}.safetensors"


def load_weights(
    name_or_path: str | os.PathLike[str], *, expected_method: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a bundled name (``"scalmu"``) or a ``.safetensors`` path, verifying it.

    Parameters
    ----------
    name_or_path : str or path
        A bundled weights name or a file path.
    expected_method : str, optional
        The method the weights must be for.

    Returns
    -------
    state_dict : dict of str to Tensor
    metadata : dict
        The JSON record (or the header copy when no JSON sits beside the file).

    Raises
    ------
    WeightsError
        Missing file, SHA-256 mismatch (corrupted or modified file), unreadable
        tensors, or weights for another method.
    """
    path = _resolve(name_or_path)
    if not path.is_file():
        raise WeightsError(
            f"weights file {path} not found; pass --weights PATH to a .safetensors file "
            "(or train one with `hyperfuse train`)"
        )
    js = path.with_suffix(".json")
    meta: dict[str, Any] = {}
    if js.is_file():
        try:
            meta = json.loads(js.read_text())
        except (OSError, ValueError) as exc:
            raise WeightsError(f"weights metadata {js} is not valid JSON ({exc}); restore the file") from exc
        want = meta.get("sha256")
        got = sha256_file(path)
        if want and want != got:
            raise WeightsError(
                f"weights file {path} is corrupted or modified: SHA-256 {got[:16]}… does not match "
                f"{str(want)[:16]}… recorded in {js.name}; reinstall the package or retrain"
            )
    try:
        from safetensors import safe_open

        state: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            for k in f.keys():
                state[k] = f.get_tensor(k)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupted file
        raise WeightsError(f"weights file {path} is not a readable .safetensors file ({exc}); it may be corrupted") from exc
    if not meta:
        try:
            meta = json.loads(header.get("hyperfuse", "{}"))
        except ValueError as exc:
            raise WeightsError(f"weights file {path} has an unreadable metadata header") from exc
        meta["sha256"] = sha256_file(path)
    for k, v in state.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise WeightsError(f"weights file {path}: tensor {k!r} holds NaN or Inf; it is corrupted")
    method = meta.get("method")
    if expected_method is not None and method != expected_method:
        raise WeightsError(
            f"weights file {path} is for method {method!r}, not {expected_method!r}; pass weights "
            f"trained for {expected_method}"
        )
    meta["path"] = str(path)
    return state, meta
