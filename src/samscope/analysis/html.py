"""The report page: one self-contained HTML file (plots and thumbnails embedded as PNG)."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
from collections.abc import Sequence

import numpy as np

from samscope.analysis.table import Table

__all__ = ["render_html"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;
color:#222;max-width:1400px}
h1{font-size:1.5em;margin-bottom:0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:0.85em;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}th{background:#f3f3f3}
td.t,th.t{text-align:left}.note{background:#fff8e1;padding:6px 10px;margin:4px 0;
border-left:3px solid #f0b400}.muted{color:#777;font-size:0.9em}
.grid{display:flex;flex-wrap:wrap;gap:10px}.thumb{font-size:0.75em;text-align:center}
.thumb img{display:block;width:200px;image-rendering:pixelated;border:1px solid #ccc}
img.plot{max-width:100%}.scroll{max-height:480px;overflow:auto}
"""


def _png(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", optimize=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _table(table: Table, columns: Sequence[str], *, text: Sequence[str] = ()) -> str:
    from samscope.analysis.report import fmt

    cols = [c for c in columns if c in table]
    head = "".join(f'<th class="{"t" if c in text else ""}">{html.escape(c)}</th>' for c in cols)
    body = []
    for row in table.rows():
        cells = "".join(
            f'<td class="{"t" if c in text else ""}">{html.escape(fmt(row[c]))}</td>'
            for c in cols)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _summary_table(summary: Table, metrics: Sequence[str], conditions: Sequence[str]) -> str:
    """Conditions as rows, metrics as columns: ``mean [95 % interval]`` (n images)."""
    from samscope.analysis.report import fmt

    rows = summary.rows()
    cell = {(r["condition"], r["metric"]): r for r in rows}
    shown = [m for m in metrics if any((c, m) in cell for c in conditions)]
    head = '<th class="t">condition</th><th>images</th>' + "".join(
        f"<th>{html.escape(m)}</th>" for m in shown)
    body = []
    for c in conditions:
        n = max((cell[(c, m)]["n_images"] for m in shown if (c, m) in cell), default=0)
        tds = []
        for m in shown:
            r = cell.get((c, m))
            if r is None:
                tds.append("<td>–</td>")
                continue
            ci = (f" <span class='muted'>[{fmt(r['ci95_low'])}, {fmt(r['ci95_high'])}]</span>"
                  if np.isfinite(r["ci95_low"]) else "")
            tds.append(f"<td>{html.escape(fmt(r['mean']))}{ci}</td>")
        body.append(f'<tr><td class="t">{html.escape(c)}</td><td>{n}</td>{"".join(tds)}</tr>')
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(*, results: str, settings: dict, conditions: Sequence[str], images: Table,
                summary: Table, metrics: Sequence[str], figures: dict[str, dict[str, bytes]],
                thumbnails: Sequence[tuple[str, str, np.ndarray | None]], notes: Sequence[str],
                skipped: Sequence[tuple[str, str]], n_objects: int) -> str:
    """The report page as a string (see :func:`samscope.analysis.analyze_results`)."""
    esc = html.escape
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<title>samscope analysis</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>samscope analysis</h1>",
        f"<p class='muted'>{esc(results)} · {len(images)} image(s) · {n_objects} object(s) · "
        f"{len(conditions)} condition(s) · {esc(when)}</p>",
    ]
    for note in notes:
        parts.append(f"<div class='note'>{esc(note)}</div>")
    if skipped:
        items = "".join(f"<li>{esc(n)}: {esc(r)}</li>" for n, r in skipped)
        parts.append(f"<div class='note'>{len(skipped)} result(s) not analysed:<ul>{items}</ul>"
                     "</div>")
    parts.append("<h2>Per condition</h2>")
    parts.append("<p class='muted'>Mean over images, with the 95 % t interval of the mean in "
                 "brackets; every image counts once. Full table: conditions.csv.</p>")
    parts.append(_summary_table(summary, metrics, conditions))
    titles = {"metrics": "Per-image metrics by condition", "dot_rod": "Dots and rods",
              "areas": "Object areas"}
    for name, fig in figures.items():
        data = base64.b64encode(fig["png"]).decode("ascii")
        parts.append(f"<h2>{esc(titles.get(name, name))}</h2>")
        parts.append(f"<img class='plot' alt='{esc(name)}' src='data:image/png;base64,{data}'>"
                     f"<p class='muted'>plots/{esc(name)}.png, plots/{esc(name)}.svg</p>")
    parts.append("<h2>Per image</h2><p class='muted'>images.csv; every object: objects.csv</p>")
    cols = [c for c in images.names if c not in ("units",)]
    parts.append(f"<div class='scroll'>{_table(images, cols, text=('image', 'condition'))}"
                 "</div>")
    parts.append("<h2>Images</h2>")
    for c in conditions:
        cells = []
        for name, cond, thumb in thumbnails:
            if cond != c or thumb is None:
                continue
            cells.append(f"<div class='thumb'><img alt='{esc(name)}' "
                         f"src='data:image/png;base64,{_png(thumb)}'>{esc(name)}</div>")
        if cells:
            parts.append(f"<h3>{esc(c)}</h3><div class='grid'>{''.join(cells)}</div>")
    parts.append("<h2>Definitions and settings</h2><ul>")
    parts.append("<li><b>confluency</b>: fraction of the image covered by objects.</li>")
    parts.append(f"<li><b>neighbours</b>: objects with a pixel within "
                 f"{settings['neighbour_distance_px']:g} px (pixel centres) of one of the "
                 "object's pixels; <i>mean_neighbours_interior</i> leaves out objects touching "
                 "the image border.</li>")
    parts.append("<li><b>aspect ratio</b>: major / minor axis of the ellipse with the object's "
                 "second moments; <b>solidity</b>: area / convex-hull area.</li>")
    if settings.get("mito"):
        parts.append(f"<li><b>dot / rod</b>: a mitochondrion is a dot if its area is at most "
                     f"{settings['dot_max_area_um2']:g} µm² (200 px at 80 nm, Jadhav et al. "
                     "2026, §4.5), a rod otherwise; proportions are per image, of all objects "
                     "(counts) and of their summed areas (area), each mask counted whole.</li>")
    parts.append("<li>settings: " + esc(", ".join(f"{k}={v}" for k, v in settings.items()))
                 + "</li></ul>")
    parts.append("<p class='muted'>made by samscope analyze</p></body></html>")
    return "\n".join(parts)
