"""Dataset registry: data root, checksums, clear not-found errors, folders, dead leaves."""

from __future__ import annotations

import numpy as np
import pytest

from hyperfuse.data.datasets import (
    REAL_SCENES,
    DeadLeavesDataset,
    FolderDataset,
    RealScene,
    data_root,
    load_real_scene,
)
from hyperfuse.errors import DatasetNotFoundError, InputError


def test_no_root_names_the_env_var(monkeypatch):
    monkeypatch.delenv("HYPERFUSE_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError, match="HYPERFUSE_DATA"):
        data_root()


def test_missing_file_names_where_to_put_it(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        load_real_scene("samson", tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "samson" / "samson_95x95x156_counts_uint16.npy") in msg and "source" in msg


def test_checksum_mismatch_and_download(tmp_path):
    info = REAL_SCENES["samson"]
    for rel, _ in info.sha256:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / rel, np.zeros((2, 2, 2), np.uint16))
    with pytest.raises(InputError, match="checksum mismatch"):
        load_real_scene("samson", tmp_path)
    with pytest.raises(InputError, match="never downloads"):
        RealScene("samson", tmp_path, download=True)
    with pytest.raises(InputError, match="unknown dataset"):
        load_real_scene("cave", tmp_path)


def test_real_scene_from_env(shared_data, monkeypatch):
    monkeypatch.setenv("HYPERFUSE_DATA", str(shared_data))
    item = RealScene("samson")[0]
    assert item["cube"].shape == (156, 95, 95) and item["cube"].dtype == np.float32
    assert float(item["cube"].max()) <= 1.0 and item["wavelengths"].shape == (156,)


def test_folder_dataset(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        FolderDataset(tmp_path / "none")
    with pytest.raises(DatasetNotFoundError, match="no cube files"):
        FolderDataset(tmp_path)
    np.save(tmp_path / "b.npy", np.full((4, 5, 3), 0.5, np.float32))
    np.save(tmp_path / "a.npy", np.full((4, 5, 3), 0.25, np.float32))
    ds = FolderDataset(tmp_path)
    assert len(ds) == 2 and [d["name"] for d in ds] == ["a", "b"]
    assert ds[0]["cube"].shape == (3, 4, 5) and float(ds[0]["cube"][0, 0, 0]) == 0.25


def test_dead_leaves_by_seed():
    wl = np.linspace(400, 900, 6)
    a = DeadLeavesDataset([1, 2], (12, 12), wl, n_endmembers=3)
    b = DeadLeavesDataset([1], (12, 12), wl, n_endmembers=3)
    assert np.array_equal(a[0]["cube"], b[0]["cube"]) and not np.array_equal(a[0]["cube"], a[1]["cube"])
