"""Atomic output: write to hidden temporary names beside the target, then rename.

A failed or interrupted write removes its temporaries and leaves any existing
output untouched. Multi-file outputs (ENVI header + binary, ``.npy`` + sidecar) are
renamed one after the other once *all* parts are complete, and if one rename
fails the ones already done are rolled back from hard-link backups; directory
outputs (``.zarr``) are swapped in with a backup that is restored if the swap fails.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_outputs", "atomic_path", "atomic_write_text", "temp_name", "remove_path"]

TEMP_MARK = ".hyperfuse-tmp-"


def temp_name(target: Path, tag: str = "", *, keep_suffix: bool = False) -> Path:
    """Hidden, unique sibling of ``target`` (same directory, so ``os.replace`` is atomic).

    ``keep_suffix=True`` ends the name with the target's suffix, for writers that sniff
    or append it (``np.save``, ``savefig``).

    Examples
    --------
    >>> p = temp_name(Path("out/cube.tif"))
    >>> p.parent.as_posix(), p.name.startswith(".cube.tif.hyperfuse-tmp-")
    ('out', True)
    """
    suffix = target.suffix if keep_suffix else ""
    return target.parent / f".{target.name}{TEMP_MARK}{tag}{uuid.uuid4().hex[:12]}{suffix}"


def remove_path(path: Path) -> None:
    """Remove a file or directory if it exists (errors ignored)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError:  # pragma: no cover - best effort cleanup
        pass


def _swap_in(tmp: Path, target: Path) -> None:
    """Move ``tmp`` onto ``target``; directories go through a restorable backup."""
    if tmp.is_dir():
        backup = None
        if target.exists() or target.is_symlink():
            backup = temp_name(target, "old-")
            os.replace(target, backup)
        try:
            os.replace(tmp, target)
        except BaseException:
            if backup is not None:
                os.replace(backup, target)
            raise
        if backup is not None:
            remove_path(backup)
    else:
        os.replace(tmp, target)


@contextmanager
def atomic_outputs(*targets: Path | str, keep_suffix: bool = False) -> Iterator[list[Path]]:
    """Yield temporary paths for ``targets``; rename them onto the targets on success.

    Parameters
    ----------
    *targets : path-like
        Final output paths (files or directories). Parent directories are created.

    Yields
    ------
    list of Path
        One temporary sibling per target; the body must create each of them
        (a temporary that was not created makes the matching target be removed,
        which is how stale sidecars are dropped).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with atomic_outputs(Path(d) / "a.txt") as (tmp,):
    ...         _ = tmp.write_text("hello")
    ...     sorted(p.name for p in Path(d).iterdir())
    ['a.txt']
    """
    paths = [Path(t) for t in targets]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
    temps = [temp_name(p, keep_suffix=keep_suffix) for p in paths]
    try:
        yield temps
    except BaseException:
        for tmp in temps:
            remove_path(tmp)
        raise
    _commit(temps, paths)


def _backup(target: Path) -> Path | None:
    """Hard-link (or copy) an existing file target so a multi-file commit can be undone."""
    if not target.is_file():
        return None
    backup = temp_name(target, "bak-")
    try:
        os.link(target, backup)
    except OSError:
        shutil.copy2(target, backup)
    return backup


def _commit(temps: list[Path], paths: list[Path]) -> None:
    """Move every temporary into place; for several files, undo all of them if one fails."""
    multi = len(paths) > 1
    done: list[tuple[Path, Path | None]] = []
    try:
        for tmp, target in zip(temps, paths, strict=True):
            backup = _backup(target) if multi else None
            done.append((target, backup))
            if tmp.exists():
                _swap_in(tmp, target)
            else:
                remove_path(target)
    except BaseException:
        for target, backup in reversed(done):
            try:
                if backup is not None:
                    os.replace(backup, target)
                else:
                    remove_path(target)
            except OSError:  # pragma: no cover - the filesystem refuses even the rollback
                pass
        for tmp in temps:
            remove_path(tmp)
        raise
    finally:
        for _, backup in done:
            if backup is not None:
                remove_path(backup)


@contextmanager
def atomic_path(path: Path | str, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield one temporary path that replaces ``path`` on success.

    The temporary name ends with ``suffix`` (default: the target's own suffix), for
    writers that sniff or append it.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with atomic_path(Path(d) / "a.txt") as tmp:
    ...         _ = tmp.write_text("hi")
    ...     [p.name for p in Path(d).iterdir()], (Path(d) / "a.txt").read_text()
    (['a.txt'], 'hi')
    """
    target = Path(path)
    with atomic_outputs(target, keep_suffix=True) as (tmp,):
        if suffix is not None and suffix != target.suffix:
            alt = tmp.with_name(tmp.name[: len(tmp.name) - len(target.suffix)] + suffix)
            try:
                yield alt
            except BaseException:
                remove_path(alt)
                raise
            if alt.exists():
                os.replace(alt, tmp)
        else:
            yield tmp


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
