"""The HTML parts of the report: escaping, number formats, tables, charts and notes.

Shared by :mod:`flows.report` and :mod:`flows.chip_report` (the chip-cycle section), so the
section does not import the report that includes it.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd


def escape(value: Any) -> str:
    """``value`` as HTML text (None -> empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def is_number(value: Any) -> bool:
    """A finite number (not a bool)."""
    try:
        return value is not None and not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def fmt_bn(value: Any, digits: int = 1) -> str:
    """A figure already in USD bn, with thousands separators: 701.25 -> '701.3'; missing -> '–'."""
    return f"{float(value):,.{digits}f}" if is_number(value) else "–"


def fmt_pct(value: Any, digits: int = 1, signed: bool = False) -> str:
    """A percentage: 3.14 -> '3.1%' ('+3.1%' when ``signed``); missing -> '–'."""
    if not is_number(value):
        return "–"
    return f"{float(value):+.{digits}f}%" if signed else f"{float(value):.{digits}f}%"


def history_series(inputs: Any, uid: str) -> pd.Series:
    """The observed history of one series from ``inputs.history`` (empty when there is none)."""
    if inputs.history is None:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([]))
    h = inputs.history[inputs.history["unique_id"] == uid]
    return pd.Series(h["y"].to_numpy(dtype=float), index=pd.DatetimeIndex(h["ds"])).sort_index()


def figure(width: float, height: float) -> Any:
    """A matplotlib Figure drawn without pyplot: no global backend state, nothing to close."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def png(fig: Any, alt: str) -> str:
    """A figure as an inline PNG ``<img>``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    width, height = (int(round(v)) for v in fig.get_size_inches() * 100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<img class="chart" alt="{escape(alt)}" width="{width}" height="{height}" src="data:image/png;base64,{data}">'
    )


def html_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    classes: Sequence[str] | None = None,
    caption: str | None = None,
    numeric: Iterable[int] = (),
    raw: bool = False,
    widths: Sequence[str] | None = None,
) -> str:
    """An HTML table. Cells are escaped unless ``raw`` (then the caller escaped them)."""
    numeric = set(numeric)
    cell = (lambda v: v) if raw else escape
    parts = ["<table" + (f' class="{" ".join(classes)}"' if classes else "") + ">"]
    if caption:
        parts.append(f"<caption>{escape(caption)}</caption>")
    if widths:
        parts.append("<colgroup>" + "".join(f'<col style="width:{w}">' for w in widths) + "</colgroup>")
    parts.append(
        "<thead><tr>"
        + "".join(f"<th{' class=num' if i in numeric else ''}>{escape(h)}</th>" for i, h in enumerate(header))
        + "</tr></thead><tbody>"
    )
    for row in rows:
        parts.append(
            "<tr>"
            + "".join(f"<td{' class=num' if i in numeric else ''}>{cell(v)}</td>" for i, v in enumerate(row))
            + "</tr>"
        )
    parts.append("</tbody></table>")
    return "".join(parts)


def note(text: str) -> str:
    """A note paragraph."""
    return f'<p class="note">{escape(text)}</p>'
