"""Dask path: local schedulers, a LocalCluster on loopback, and fuse_batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperfuse.physics.sensor import FusionPhysics, make_sensor
from hyperfuse.tiling import fuse_batch, fuse_tiled, is_complete

pytest.importorskip("dask")

DASK_WARNINGS = [
    "ignore::DeprecationWarning",
    "ignore::ResourceWarning",
    "ignore::UserWarning:distributed.*",
    "ignore::RuntimeWarning:distributed.*",
    "ignore::pytest.PytestUnraisableExceptionWarning",
]


def _pair(size: int = 48):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(3)
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 6, size + 4, size + 4, generator=g), 5, 1)
    srf = np.zeros((3, 6))
    for k in range(3):
        srf[k, 2 * k : 2 * k + 2] = 0.5
    s = make_sensor(4, srf=srf)
    ph = FusionPhysics(s)
    return ph.spatial(x), ph.spectral(x), s


@pytest.mark.filterwarnings(*DASK_WARNINGS)
def test_threads_scheduler_matches_serial(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hyperfuse.tiling.dask import fuse_tiled_dask

    hsi, msi, s = _pair()
    ref = fuse_tiled("gsa", hsi, msi, s, tile=24, overlap=8)
    got = fuse_tiled_dask("gsa", hsi, msi, s, tile=24, overlap=8, scheduler="threads", n_workers=2)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)
    from hyperfuse.methods import get_method

    m = get_method("cnmf", n_endmembers=3, inner_iters=20)
    out = fuse_tiled_dask(m, hsi, msi, s, tile=24, overlap=8, scheduler="sync", out=tmp_path / "o.npy")
    assert is_complete(out)
    ref2 = fuse_tiled(m, hsi, msi, s, tile=24, overlap=8)
    np.testing.assert_allclose(np.load(out), ref2[0].permute(1, 2, 0).numpy(), atol=1e-6)


@pytest.mark.filterwarnings(*DASK_WARNINGS, "ignore:SCALMU weights used outside")
def test_scalmu_rounds_on_dask_match_serial(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hyperfuse.methods import get_method
    from hyperfuse.tiling.dask import fuse_tiled_dask

    hsi, msi, s = _pair()
    m = get_method("scalmu", n_endmembers=3)
    ref = fuse_tiled(m, hsi, msi, s, tile=24, overlap=8)
    got = fuse_tiled_dask(m, hsi, msi, s, tile=24, overlap=8, scheduler="threads", n_workers=2)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)
    out = fuse_tiled_dask(m, hsi, msi, s, tile=24, overlap=8, scheduler="sync", out=tmp_path / "o.npy")
    assert is_complete(out)
    np.testing.assert_allclose(np.load(out), ref[0].permute(1, 2, 0).numpy(), atol=1e-6)


@pytest.mark.filterwarnings(*DASK_WARNINGS)
def test_threads_scheduler_reports_every_tile() -> None:
    """Progress comes per finished tile (a kill between tiles then loses at most the running ones)."""
    from hyperfuse.tiling import tile_grid
    from hyperfuse.tiling.dask import fuse_tiled_dask

    hsi, msi, s = _pair()
    seen: list[tuple[int, int]] = []
    fuse_tiled_dask("gsa", hsi, msi, s, tile=24, overlap=8, scheduler="threads", n_workers=2,
                    progress=lambda d, t: seen.append((d, t)))
    n = len(tile_grid((48, 48), 4, tile=24, overlap=8))
    assert [d for d, _ in seen] == list(range(1, n + 1)) and {t for _, t in seen} == {n}


@pytest.mark.filterwarnings(*DASK_WARNINGS)
def test_local_cluster_loopback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    distributed = pytest.importorskip("distributed")
    from hyperfuse.tiling.dask import fuse_tiled_dask

    hsi, msi, s = _pair()
    ref = fuse_tiled("gsa", hsi, msi, s, tile=24, overlap=8)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, host="127.0.0.1",
        protocol="tcp", dashboard_address=None,
    ) as cluster:
        addr = cluster.scheduler_address
        assert addr.startswith("tcp://127.0.0.1")
        out = fuse_tiled_dask("gsa", hsi, msi, s, tile=24, overlap=8, out=tmp_path / "o.zarr", scheduler=addr)
    from hyperfuse.io import read

    cube, _ = read(out)
    np.testing.assert_allclose(cube, ref[0].permute(1, 2, 0).numpy(), atol=1e-6)


def test_fuse_batch_skips_finished(tmp_path) -> None:  # type: ignore[no-untyped-def]
    hsi, msi, s = _pair()
    pairs = [(hsi, msi, tmp_path / "a.npy"), (hsi, msi, tmp_path / "b.tif")]
    first = fuse_batch("bicubic", pairs, s, tile=24, overlap=8)
    assert [i.status for i in first] == ["done", "done"]
    again = fuse_batch("bicubic", pairs, s, tile=24, overlap=8)
    assert [i.status for i in again] == ["skipped", "skipped"]
    bad = fuse_batch("bicubic", [(hsi, msi, tmp_path / "c.png")], s, tile=24, overlap=8, on_error="continue")
    assert bad[0].status == "failed" and "tiled output" in (bad[0].error or "")


def test_cli_functions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hyperfuse.cli.tiling import fuse_batch_command, fuse_tiled_command
    from hyperfuse.io import read, write

    hsi, msi, s = _pair()
    write(tmp_path / "h.tif", hsi[0].numpy(), layout="chw")
    write(tmp_path / "m.npy", msi[0].numpy(), layout="chw")
    out = fuse_tiled_command(hsi=tmp_path / "h.tif", msi=tmp_path / "m.npy", out=tmp_path / "o.tif",
                             method="gsa", tile=24, overlap=8, ratio="4")
    ref = fuse_tiled("gsa", hsi, msi, s, tile=24, overlap=8)
    np.testing.assert_allclose(read(out)[0], ref[0].permute(1, 2, 0).numpy(), atol=1e-5)
    (tmp_path / "pairs.csv").write_text("# hsi,msi,out\nh.tif,m.npy,a.zarr\nh.tif,m.npy,b.png\n")
    assert fuse_batch_command(pairs=tmp_path / "pairs.csv", method="gsa", tile=24, overlap=8,
                              ratio="4", keep_going=True) == 1
    assert is_complete(tmp_path / "a.zarr")
