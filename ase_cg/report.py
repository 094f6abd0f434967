"""Report folders: a Markdown page with tables and PNG figures, plus the numbers as JSON.

A report is a folder that reads well on its own (on GitHub, in an editor, in a browser)::

    report/
    ├── index.md        title, then one section after another: text, tables, figures
    ├── index.html      the same page, self-contained (figures embedded): open or mail it
    ├── metrics.json    the numbers behind the tables (written by :func:`write_json`)
    └── *.png           figures, linked from index.md by relative path

Build the sections as :class:`Section` objects holding :class:`Table` and :class:`FigureLink`
items, make figures with :func:`new_figure` and save them with :func:`save_figure`, then call
:func:`write_report`. Figures use matplotlib's object API (:class:`matplotlib.figure.Figure` and
the Agg canvas) so nothing touches pyplot's global state or the backend of the calling
program. Every file is written atomically (temporary file in the same folder, then
:func:`os.replace`).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ase_cg._paths import write_bytes_atomic

__all__ = [
    "AA_COLOR",
    "AA_LABEL",
    "CG_COLOR",
    "CG_LABEL",
    "FigureLink",
    "Section",
    "Table",
    "format_value",
    "html_page",
    "markdown_table",
    "new_figure",
    "save_figure",
    "write_json",
    "write_report",
]

#: Legend label and colour of the reference (all-atom, mapped to beads) in every figure.
AA_LABEL = "all-atom (mapped)"
AA_COLOR = "#1f4e9c"
#: Legend label and colour of the coarse-grained run in every figure.
CG_LABEL = "CG"
CG_COLOR = "#d9541e"


@dataclass
class Table:
    """A Markdown table."""

    columns: Sequence[str]
    """Column headers."""
    rows: Sequence[Sequence[object]]
    """Cells, one sequence per row; numbers are formatted by :func:`format_value`."""
    caption: str = ""
    """One line printed in italics above the table (optional)."""


@dataclass
class FigureLink:
    """An image in the report folder, shown with a caption."""

    path: str
    """File name relative to the report folder (``"rdf_CH3-CH3.png"``)."""
    caption: str
    """What the figure shows; also its alt text."""


@dataclass
class Section:
    """A ``##`` section: a paragraph, then tables, then figures."""

    title: str
    text: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[FigureLink] = field(default_factory=list)


def format_value(value, digits: int = 4) -> str:
    """A table cell: floats to ``digits`` significant figures, NaN/None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "–" if math.isnan(value) else ("∞" if value > 0 else "−∞")
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    if hasattr(value, "item"):  # numpy scalars
        return format_value(value.item(), digits)
    return str(value).replace("|", "\\|")


def markdown_table(table: Table) -> str:
    """The Markdown text of a table (numbers right-aligned, text left-aligned)."""
    cells = [[format_value(c) for c in row] for row in table.rows]
    for index, row in enumerate(cells):
        if len(row) != len(table.columns):
            raise ValueError(
                f"table {table.caption or table.columns!r}: row {index} has {len(row)} cells "
                f"for {len(table.columns)} columns; give one cell per column"
            )

    def is_number(value) -> bool:
        return value is None or isinstance(value, int | float) or hasattr(value, "item")

    numeric = [
        bool(table.rows) and all(is_number(row[k]) for row in table.rows)
        for k in range(len(table.columns))
    ]
    lines = []
    if table.caption:
        lines += [f"*{table.caption}*", ""]
    lines.append("| " + " | ".join(format_value(str(c)) for c in table.columns) + " |")
    lines.append("|" + "|".join("---:" if n else ":---" for n in numeric) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def write_report(folder, title: str, sections: Sequence[Section], *, intro: str = "") -> Path:
    """Write ``folder/index.md`` (a ``#`` title, an intro paragraph and the sections) and the
    same page as self-contained ``folder/index.html`` (:func:`html_page`).

    Parameters
    ----------
    folder : str or path
        Report folder (created if needed); figures referenced by the sections should already
        be saved in it.
    title : str
    sections : sequence of Section
    intro : str
        Markdown paragraph under the title.

    Returns
    -------
    Path of ``index.md``.
    """
    folder = Path(folder)
    parts = [f"# {title}", ""]
    if intro:
        parts += [intro.strip(), ""]
    for section in sections:
        parts += [f"## {section.title}", ""]
        if section.text:
            parts += [section.text.strip(), ""]
        for table in section.tables:
            parts += [markdown_table(table), ""]
        for figure in section.figures:
            if not (folder / figure.path).is_file():
                raise FileNotFoundError(
                    f"report {folder}: figure {figure.path!r} of section {section.title!r} is "
                    "missing; save it with save_figure before write_report"
                )
            parts += [f"![{figure.caption}]({figure.path})", "", f"*{figure.caption}*", ""]
    write_bytes_atomic(folder / "index.html", html_page(folder, title, sections, intro).encode())
    return write_bytes_atomic(folder / "index.md", "\n".join(parts).encode())


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "color:#222;line-height:1.45}table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
    "th,td{border:1px solid #ccc;padding:.25rem .6rem}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}th{background:#f3f3f3}figure{margin:1rem 0 2rem}"
    "img{max-width:100%}figcaption,caption{font-style:italic;color:#555;text-align:left}"
    "code{background:#f3f3f3;padding:0 .2rem}"
)


def _inline(text: str) -> str:
    """HTML of one paragraph of the Markdown subset the reports use: **bold**, *italics*,
    `code` and [links](url); everything else is escaped."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![*\w])\*([^*\s][^*]*)\*(?![*\w])", r"<em>\1</em>", out)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)


def _html_text(text: str) -> str:
    """Paragraphs (blank-line separated) and ``- `` lists of a section's Markdown text."""
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if lines and all(line.lstrip().startswith("- ") for line in lines):
            items = "".join(f"<li>{_inline(line.lstrip()[2:])}</li>" for line in lines)
            blocks.append(f"<ul>{items}</ul>")
        elif block.strip():
            blocks.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "\n".join(blocks)


def _html_table(table: Table) -> str:
    markdown_table(table)  # the same checks as the Markdown page
    numeric = [
        bool(table.rows) and all(isinstance(row[k], int | float) or row[k] is None for row in
                                 table.rows)
        for k in range(len(table.columns))
    ]  # fmt: skip
    head = "".join(f"<th>{_inline(str(c))}</th>" for c in table.columns)
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{html.escape(format_value(c))}</td>' if numeric[k]
            else f"<td>{_inline(format_value(c).replace(chr(92) + '|', '|'))}</td>"
            for k, c in enumerate(row)
        )
        + "</tr>"
        for row in table.rows
    )  # fmt: skip
    caption = f"<caption>{_inline(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def html_page(folder, title: str, sections: Sequence[Section], intro: str = "") -> str:
    """The report as one self-contained HTML page: figures embedded as PNG data, no links to
    other files except the ones the text itself makes."""
    folder = Path(folder)
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if intro:
        parts.append(_html_text(intro))
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(_html_text(section.text))
        parts += [_html_table(table) for table in section.tables]
        for figure in section.figures:
            data = base64.b64encode((folder / figure.path).read_bytes()).decode()
            caption = html.escape(figure.caption)
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
                f"<figcaption>{_inline(figure.caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_json(path, data) -> Path:
    """Write ``data`` as indented JSON (NaN written as null), atomically."""

    def clean(value):
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if hasattr(value, "tolist"):
            return clean(value.tolist())
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    text = json.dumps(clean(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return write_bytes_atomic(Path(path), text.encode())


def new_figure(
    n_rows: int = 1,
    n_cols: int = 1,
    *,
    size: tuple[float, float] = (6.4, 4.2),
    height_ratios: Sequence[float] | None = None,
    sharex: bool = False,
):
    """A matplotlib Figure on its own Agg canvas (no pyplot, no global backend change).

    Parameters
    ----------
    n_rows, n_cols : int
        Grid of axes.
    size : (float, float), inches
    height_ratios : sequence of float, optional
        Relative heights of the rows (e.g. ``(3, 1)`` for a curve over a difference panel).
    sharex : bool

    Returns
    -------
    figure : matplotlib.figure.Figure
    axes : (n_rows, n_cols) array of Axes (squeezed like ``plt.subplots``)
    """
    # heavy: matplotlib takes about a second to import; only figures need it
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(
        n_rows,
        n_cols,
        sharex=sharex,
        squeeze=True,
        gridspec_kw={"height_ratios": height_ratios} if height_ratios else None,
    )
    return figure, axes


def save_figure(figure, path, *, dpi: int = 150) -> Path:
    """Save a figure as PNG, atomically. Returns the path."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return write_bytes_atomic(Path(path), buffer.getvalue())
