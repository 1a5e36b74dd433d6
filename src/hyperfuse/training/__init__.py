"""Training entry points for the CLI (``hyperfuse train METHOD``).

``train_scalmu(config, *, out_dir, resume, progress) -> Path`` trains SCALMU on streamed
dead-leaves pairs; see :mod:`hyperfuse.methods.unrolled.scalmu_train`.
"""

from __future__ import annotations

from ..methods.unrolled.scalmu_train import SCALMUTrainConfig, train_scalmu

__all__ = ["SCALMUTrainConfig", "train_scalmu"]
