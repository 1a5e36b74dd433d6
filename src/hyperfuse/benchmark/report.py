"""Benchmark tables: ``results.csv`` (one row per cell) and a Markdown/HTML report.

``results.csv`` starts with the HyperBench columns (``method, dataset, scale, psnr, sam,
ergas, ssim, time, params``) followed by hyperfuse's extra columns. The report has the mean
table (over every successful cell of a method) and one table per (scene, sensor), with the
best value of each column in bold; failed cells appear as ``failed (ErrorType)``.

Examples
--------
>>> recs = [{"method": "a", "dataset": "s", "sensor": "x4", "scale": 4, "seed": 0, "status": "ok",
...          "metrics": {"psnr": 30.0, "sam": 2.0}, "time": 0.1, "params": 0},
...         {"method": "b", "dataset": "s", "sensor": "x4", "scale": 4, "seed": 0, "status": "ok",
...          "metrics": {"psnr": 31.0, "sam": 3.0}, "time": 0.2, "params": 0}]
>>> print(markdown_table(recs, columns=("psnr", "sam")))
| method | PSNR ↑ | SAM ↓ |
|---|---|---|
| a | 30.00 | **2.000** |
| b | **31.00** | 3.000 |
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CSV_COLUMNS", "result_rows", "write_csv", "markdown_table", "markdown_report",
           "write_report"]

HYPERBENCH = ("method", "dataset", "scale", "psnr", "sam", "ergas", "ssim", "time", "params")
EXTRA = ("sensor", "seed", "status", "rmse", "uiqi", "cc", "q2n", "cpu_time", "peak_memory_mb",
         "total_wall", "error", "cell_id")
CSV_COLUMNS = HYPERBENCH + EXTRA
METRICS = ("psnr", "rmse", "sam", "ergas", "ssim", "uiqi", "cc", "q2n")
TIMING = ("time", "cpu_time", "peak_memory_mb", "total_wall")
HIGHER = {"psnr": True, "ssim": True, "uiqi": True, "cc": True, "q2n": True, "rmse": False,
          "sam": False, "ergas": False, "time": False, "cpu_time": False, "peak_memory_mb": False}
LABELS = {"psnr": "PSNR", "rmse": "RMSE", "sam": "SAM", "ergas": "ERGAS", "ssim": "SSIM",
          "uiqi": "UIQI", "cc": "CC", "q2n": "Q2n", "time": "time (s)", "cpu_time": "CPU (s)",
          "peak_memory_mb": "peak MiB"}
FORMATS = {"psnr": "{:.2f}", "rmse": "{:.4f}", "sam": "{:.3f}", "ergas": "{:.3f}", "ssim": "{:.4f}",
           "uiqi": "{:.4f}", "cc": "{:.4f}", "q2n": "{:.4f}", "time": "{:.2f}", "cpu_time": "{:.2f}",
           "peak_memory_mb": "{:.0f}"}
DEFAULT_COLUMNS = ("psnr", "sam", "ergas", "ssim", "q2n", "time")


def _value(rec: dict[str, Any], col: str) -> Any:
    if col in METRICS:
        return (rec.get("metrics") or {}).get(col)
    if col == "error":
        err = rec.get("error")
        return None if not err else f"{err.get('type')}: {err.get('message')}".replace("\n", " ")[:300]
    return rec.get(col)


def result_rows(records: Sequence[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """One dict per finished cell, with the :data:`CSV_COLUMNS` keys (missing cells skipped)."""
    return [{c: _value(r, c) for c in CSV_COLUMNS} for r in records if r is not None]


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return v


def write_csv(path: str | Path, records: Sequence[dict[str, Any] | None]) -> Path:
    """Write ``results.csv`` atomically."""
    from .._atomic import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    w.writeheader()
    for row in result_rows(records):
        w.writerow({k: _csv_value(v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())
    return Path(path)


def _fmt(col: str, v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return FORMATS.get(col, "{}").format(v)


def _mean(vals: list[float]) -> float | None:
    vals = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else None


def _table(rows: list[tuple[str, dict[str, Any] | str]], columns: Sequence[str], first: str,
           extra: Sequence[str] = ()) -> str:
    """Markdown table; ``rows`` are (label, values dict) or (label, failure text).

    Rows whose values carry ``"_partial": True`` (means over fewer cells than the others)
    are not considered for the bold best value.
    """
    best: dict[str, Any] = {}
    for col in columns:
        vals = [v[col] for _, v in rows
                if isinstance(v, dict) and v.get(col) is not None and not v.get("_partial")]
        vals = [x for x in vals if not (isinstance(x, float) and math.isnan(x))]
        if vals and col in HIGHER:
            best[col] = max(vals) if HIGHER[col] else min(vals)
    head = [first] + [f"{LABELS.get(c, c)} {'↑' if HIGHER.get(c) else '↓'}" if c in HIGHER else c
                      for c in columns] + list(extra)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, vals in rows:
        if isinstance(vals, str):
            cells = [vals] + ["–"] * (len(columns) - 1 + len(extra))
        else:
            cells = []
            for col in columns:
                s = _fmt(col, vals.get(col))
                v = vals.get(col)
                if col in best and v is not None and _fmt(col, v) == _fmt(col, best[col]):
                    s = f"**{s}**"
                cells.append(s)
            cells += [str(vals.get(e, "")) for e in extra]
        lines.append("| " + " | ".join([label] + cells) + " |")
    return "\n".join(lines)


def markdown_table(records: Sequence[dict[str, Any] | None],
                   columns: Sequence[str] = DEFAULT_COLUMNS) -> str:
    """Mean over the successful cells of each method (methods in first-seen order).

    Methods with failed cells get an ``ok/total`` count column when any cell failed; their
    means cover fewer cells, so they are not marked best.
    """
    recs = [r for r in records if r is not None]
    methods: list[str] = []
    for r in recs:
        if r["method"] not in methods:
            methods.append(r["method"])
    any_failed = any(r["status"] != "ok" for r in recs)
    rows: list[tuple[str, dict[str, Any] | str]] = []
    for m in methods:
        mine = [r for r in recs if r["method"] == m]
        ok = [r for r in mine if r["status"] == "ok"]
        if not ok:
            types = sorted({(r.get("error") or {}).get("type", "?") for r in mine})
            rows.append((m, f"failed ({', '.join(types)})"))
            continue
        vals: dict[str, Any] = {c: _mean([_value(r, c) for r in ok]) for c in columns}
        vals["cells ok"] = f"{len(ok)}/{len(mine)}"
        vals["_partial"] = len(ok) < len(mine)
        rows.append((m, vals))
    return _table(rows, columns, "method", ("cells ok",) if any_failed else ())


def _family(rec: dict[str, Any]) -> tuple[str, int]:
    kind = ((rec.get("cell") or {}).get("scene") or {}).get("kind")
    fam = "" if kind is None else ("synthetic" if kind == "dead_leaves" else "real")
    return fam, int(rec.get("scale") or 0)


def _mean_groups(recs: Sequence[dict[str, Any]]) -> list[tuple[tuple[str, int], str]]:
    """Mean-table groups: (real | synthetic scenes) x ratio."""
    keys = sorted({_family(r) for r in recs}, key=lambda k: (k[0] == "synthetic", k[0], k[1]))
    out = []
    for fam, scale in keys:
        what = {"real": "real scenes", "synthetic": "synthetic scenes"}.get(fam, "scenes")
        out.append(((fam, scale), what + (f", ×{scale}" if scale else "")))
    return out


def _groups(records: Sequence[dict[str, Any] | None]) -> list[tuple[str, str, int]]:
    seen: list[tuple[str, str, int]] = []
    for r in records:
        if r is None:
            continue
        k = (r["dataset"], r["sensor"], int(r.get("seed", 0)))
        if k not in seen:
            seen.append(k)
    return seen


def markdown_report(
    records: Sequence[dict[str, Any] | None],
    *,
    title: str = "Benchmark",
    columns: Sequence[str] = DEFAULT_COLUMNS,
    include_time: bool = True,
    n_cells: int | None = None,
    notes: str = "",
) -> str:
    """The Markdown report: the mean table, then one table per (scene, sensor, seed)."""
    cols = [c for c in columns if include_time or c not in TIMING]
    recs = [r for r in records if r is not None]
    done = len(recs)
    total = n_cells if n_cells is not None else len(records)
    parts = [f"# {title}", ""]
    if notes:
        parts += [notes.strip(), ""]
    failed = sum(1 for r in recs if r["status"] != "ok")
    parts += [f"{done}/{total} cells finished, {failed} failed. Best value per column in bold; "
              "↑ higher is better, ↓ lower is better.", ""]
    groups = _mean_groups(recs)
    for key, label in groups:
        mine = [r for r in recs if _family(r) == key]
        head = "## Mean over scenes" if len(groups) == 1 else f"## Mean over {label}"
        parts += [head, "", markdown_table(mine, cols), ""]
    seeds = {int(r.get("seed", 0)) for r in recs}
    for ds, sensor, seed in _groups(recs):
        mine = [r for r in recs if r["dataset"] == ds and r["sensor"] == sensor and int(r.get("seed", 0)) == seed]
        scale = next((r.get("scale") for r in mine if r.get("scale")), None)
        head = f"## {ds} — {sensor}" + (f" (×{scale})" if scale else "")
        if len(seeds) > 1:
            head += f", seed {seed}"
        rows: list[tuple[str, dict[str, Any] | str]] = []
        for r in mine:
            if r["status"] == "ok":
                rows.append((r["method"], {c: _value(r, c) for c in cols}))
            else:
                rows.append((r["method"], f"failed ({(r.get('error') or {}).get('type', '?')})"))
        parts += [head, "", _table(rows, cols, "method"), ""]
    errs = [r for r in recs if r["status"] != "ok"]
    if errs:
        parts += ["## Failed cells", ""]
        for r in errs:
            e = r.get("error") or {}
            msg = str(e.get("message", "")).replace("\n", " ")[:200]
            parts.append(f"- `{r['method']}` on {r['dataset']} / {r['sensor']}: "
                         f"{e.get('type', '?')}: {msg} (cell `{r['cell_id']}`)")
        parts.append("")
    return "\n".join(parts)


def _md_to_html(md: str, title: str) -> str:
    """Tiny converter for the report's own Markdown (headings, tables, bullets, bold)."""
    import re

    def inline(s: str) -> str:
        s = html.escape(s)
        s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", s)

    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:"
           "collapse;margin:8px 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
           "td:first-child{text-align:left}img{max-width:100%}</style></head><body>"]
    in_table = in_list = False
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= {"-"}:
                continue
            if not in_table:
                out.append("<table>")
                out.append("<tr>" + "".join(f"<th>{inline(c)}</th>" for c in cells) + "</tr>")
                in_table = True
                continue
            out.append("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("- "):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{inline(line[2:])}</li>")
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        m = re.match(r"!\[(.*?)\]\((.+?)\)", line)
        if m:
            out.append(f"<img alt='{html.escape(m.group(1))}' src='{html.escape(m.group(2))}'>")
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    if in_table:
        out.append("</table>")
    if in_list:
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(cfg: Any, cells: Sequence[Any], records: Sequence[dict[str, Any] | None],
                 out: str | Path) -> dict[str, Path]:
    """Write ``results.csv``, ``report.md`` and ``report.html`` in ``out``."""
    from .._atomic import atomic_write_text

    out = Path(out)
    csv_path = write_csv(out / "results.csv", records)
    title = f"Benchmark: {cfg.name}"
    md = markdown_report(records, title=title, n_cells=len(cells),
                         notes=f"Metric set `{cfg.metric_set}`; `time` is the wall time of the fusion "
                               "call alone. Figures: `figures/`.")
    figs = sorted((out / "figures").glob("*.png")) if (out / "figures").is_dir() else []
    if figs:
        md += "\n## Figures\n\n" + "\n".join(f"![{p.stem}](figures/{p.name})" for p in figs) + "\n"
    atomic_write_text(out / "report.md", md)
    atomic_write_text(out / "report.html", _md_to_html(md, title))
    return {"results_csv": csv_path, "report_md": out / "report.md", "report_html": out / "report.html"}
