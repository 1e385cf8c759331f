"""The analysts' report: one self-contained ``report.html`` describing one run.

    write_results_report(results, path)    # in the pipeline: from the assembled results (flows/results.py)
    write_report(Path("outputs"))          # rebuild from a published folder -> outputs/report.html

The report describes the data the run actually used: the history in the charts and the data
freshness table are the run's own series (the embedded dataset, or the user's CSV), and the
champion of each series is the one the run chose (``champions.csv`` / ``Results.champion_of``):
nothing is re-derived here. Series names come from the embedded ``series.csv`` when the run used
the embedded dataset, and so do the groups of the headline and the fan charts: total, items and
destinations (``hierarchy``; a series without a ``parent`` is listed as outside the hierarchy),
each with its months of history. A forecast that repeats the past (a seasonal naive or naive
champion, or a champion that fell back to one) says so in words, e.g. "12 months of history:
repeats last year", never a bare "+0.0%". Rebuilding from a folder reads the tables through their published schemas
and ``run.json`` through :class:`flows.results.RunRecord`, and re-reads the run's data source
(the embedded dataset or the user's CSV, when still there; otherwise the report says so).

The file opens offline: the stylesheet is inline, charts are matplotlib PNGs embedded as
base64 data URIs, and there is no script, font or link to anything outside the file (the
provenance of the data is named as text, so it survives copying the report). Every text that
comes from data is escaped with ``html.escape``. Tables wrap their cells so they fit 1280 px
without horizontal scrolling. The file is written atomically (temp file + os.replace).
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flows.archive import CHANGES, FORECAST_ARCHIVE, score_archive, score_summary
from flows.report_html import escape as _e
from flows.report_html import figure as _figure
from flows.report_html import fmt_bn, fmt_pct
from flows.report_html import history_series as _history_series
from flows.report_html import html_table as _table
from flows.report_html import is_number as _is_num
from flows.report_html import note as _note
from flows.report_html import png as _png
from flows.report_sections import SectionCache, code_version, record
from flows.results import (
    BACKTEST_METRICS,
    CHAMPIONS,
    FORECAST_ANNUAL,
    FORECAST_MONTHLY,
    INSTITUTIONAL_COMPARISON,
    INSTITUTIONAL_OUTLOOK,
    INSTITUTIONAL_SUMMARY,
    MODEL_FITS,
    NOWCAST,
    RUN_JSON,
    SCHEMAS,
    TRACKING,
    Results,
    RunRecord,
    SchemaError,
)
from models.selection.reconcile import RECONCILED

__all__ = [
    "write_report",
    "write_results_report",
    "render_report",
    "load_inputs",
    "inputs_from_results",
    "ReportInputs",
    "REPORT_NAME",
    "institution_colors",
]

REPORT_NAME = "report.html"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO / "data"
#: years of history drawn before the first forecast month
HISTORY_YEARS = 8
BN = 1e9
CHAMPION = "champion"
PRE_YEAR = "pre-year outlook"
#: published tables the report reads; the first three are required
REPORT_TABLES: tuple[str, ...] = (
    FORECAST_MONTHLY,
    FORECAST_ANNUAL,
    CHAMPIONS,
    BACKTEST_METRICS,
    MODEL_FITS,
    INSTITUTIONAL_COMPARISON,
    INSTITUTIONAL_SUMMARY,
    INSTITUTIONAL_OUTLOOK,
    NOWCAST,
    TRACKING,
    FORECAST_ARCHIVE,
    CHANGES,
)
REQUIRED_FILES: tuple[str, ...] = (FORECAST_MONTHLY, FORECAST_ANNUAL, CHAMPIONS)
#: at most this many panels per group of fan charts (the rest are in forecast_monthly.csv)
MAX_FANS = 24
#: the small multiples: panels per row, inches per row, years of history drawn
PANEL_COLUMNS = 4
PANEL_HEIGHT = 2.2
PANEL_YEARS = 5
PANEL_TITLE_WIDTH = 40

COLORS = {"history": "#1f3b57", "forecast": "#c4432b", "band80": "#e8a393", "band95": "#f6d9d1", "model": "#111111"}


class ReportError(ValueError):
    """An input of the report is unreadable or lacks columns; the message names the file."""


# =========================================================================== inputs
@dataclass
class ReportInputs:
    outputs_dir: Path | None
    monthly: pd.DataFrame
    annual: pd.DataFrame
    champions: pd.DataFrame
    run: RunRecord | None = None
    metrics: pd.DataFrame | None = None
    fits: pd.DataFrame | None = None
    comparison: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None
    outlook: pd.DataFrame | None = None
    nowcast: pd.DataFrame | None = None  # nowcast.csv (the month from the customs flash)
    tracking: pd.DataFrame | None = None  # tracking.csv (the annual total through the year)
    history: pd.DataFrame | None = None  # the data the run used (unique_id, ds, y, optional source)
    meta: pd.DataFrame | None = None  # series.csv of the embedded dataset (names), when the run used it
    provenance: Path | None = None
    notes: dict[str, str] = field(default_factory=dict)
    indicators: pd.DataFrame | None = None  # the embedded indicator table (the chip-cycle chart), when the run used it
    archive: pd.DataFrame | None = None  # forecast_archive.csv (every production run's champion forecasts)
    changes: pd.DataFrame | None = None  # changes.csv (what changed since the previous production run)

    @property
    def target_year(self) -> int:
        if self.run is not None:
            return int(self.run.target_year)
        return int(self.annual["year"].max())

    @property
    def champion_of(self) -> dict[str, str]:
        """Series -> champion model: the run's champions table, the one place that says it."""
        return {str(u): str(c) for u, c in zip(self.champions["unique_id"], self.champions["champion"])}

    @property
    def where(self) -> str:
        return str(self.outputs_dir) if self.outputs_dir is not None else "this run's results"


def inputs_from_results(results: Results, data_dir: Path | None = None) -> ReportInputs:
    """The report's inputs from a run's assembled results (no file is read back)."""
    t = results.tables
    inputs = ReportInputs(
        outputs_dir=None,
        monthly=t[FORECAST_MONTHLY],
        annual=t[FORECAST_ANNUAL],
        champions=t[CHAMPIONS],
        run=results.run,
        metrics=t[BACKTEST_METRICS],
        fits=t[MODEL_FITS],
        comparison=t[INSTITUTIONAL_COMPARISON],
        summary=t[INSTITUTIONAL_SUMMARY],
        outlook=t[INSTITUTIONAL_OUTLOOK],
        nowcast=t.get(NOWCAST),
        tracking=t.get(TRACKING),
        history=results.history,
        archive=t.get(FORECAST_ARCHIVE),
        changes=t.get(CHANGES),
    )
    if TRACKING not in t:
        inputs.notes[TRACKING] = "this run does not produce tracking.csv"
    _describe_data(inputs, Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR, read_history=False)
    return inputs


def load_inputs(outputs_dir: Path, data_dir: Path | None = None) -> ReportInputs:
    """Read a published folder (tables through their schemas, run.json as a RunRecord) and the
    data the run used; a missing optional file becomes a note."""
    outputs_dir = Path(outputs_dir)
    if not outputs_dir.is_dir():
        raise FileNotFoundError(
            f"outputs folder {outputs_dir} does not exist: run the pipeline (`exportcast run`) first"
        )
    for name in REQUIRED_FILES:
        if not (outputs_dir / name).is_file():
            raise FileNotFoundError(f"{outputs_dir / name} not found: the report needs the published forecasts")
    tables: dict[str, pd.DataFrame | None] = {}
    notes: dict[str, str] = {}
    for name in REPORT_TABLES:
        path = outputs_dir / name
        if path.is_file():
            try:
                tables[name] = SCHEMAS[name].read(path)
            except SchemaError as exc:
                raise ReportError(str(exc)) from None
        else:
            tables[name] = None
            notes[name] = f"{name} was not found in {outputs_dir}"
    run = None
    if (outputs_dir / RUN_JSON).is_file():
        try:
            run = RunRecord.read(outputs_dir / RUN_JSON)
        except SchemaError as exc:
            raise ReportError(str(exc)) from None
    else:
        notes[RUN_JSON] = f"{RUN_JSON} was not found in {outputs_dir}"
    inputs = ReportInputs(
        outputs_dir=outputs_dir,
        monthly=tables[FORECAST_MONTHLY],
        annual=tables[FORECAST_ANNUAL],
        champions=tables[CHAMPIONS],
        run=run,
        metrics=tables[BACKTEST_METRICS],
        fits=tables[MODEL_FITS],
        comparison=tables[INSTITUTIONAL_COMPARISON],
        summary=tables[INSTITUTIONAL_SUMMARY],
        outlook=tables[INSTITUTIONAL_OUTLOOK],
        nowcast=tables[NOWCAST],
        tracking=tables[TRACKING],
        notes=notes,
        archive=tables[FORECAST_ARCHIVE],
        changes=tables[CHANGES],
    )
    _describe_data(inputs, Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR, read_history=True)
    return inputs


def _describe_data(inputs: ReportInputs, data_dir: Path, *, read_history: bool) -> None:
    """Series names and provenance of the embedded dataset when the run used it; with
    ``read_history`` the run's data is read again from its source (rebuilding from a folder)."""
    source = inputs.run.data_source if inputs.run is not None and inputs.run.data_source else "embedded"
    try:
        from features.readers import read_embedded, read_series_metadata, read_user_csv

        if source == "embedded":
            inputs.meta = read_series_metadata(data_dir)
            inputs.indicators = _read_chip_indicators(data_dir)
            if read_history:
                inputs.history = read_embedded(data_dir)
        elif read_history and source == "csv" and inputs.run is not None and inputs.run.data_origin:
            data = (inputs.run.config or {}).get("data") or {}  # the run's own checks (signed series ...)
            checks = {k: data[k] for k in ("strict", "allow_negative", "signed", "plausibility_factor") if k in data}
            inputs.history = read_user_csv(inputs.run.data_origin, **checks)
        elif read_history:
            inputs.notes["dataset"] = (
                f"the {source} data of this run is not stored with the outputs; charts show forecasts only"
            )
    except Exception as exc:  # noqa: BLE001 - any failure of the dataset becomes a visible note, not a crash
        where = data_dir if source == "embedded" else (inputs.run.data_origin if inputs.run else source)
        inputs.notes["dataset"] = (
            f"the dataset in {where} could not be read ({type(exc).__name__}: {exc}); charts show forecasts only"
        )
    if source == "embedded":
        for candidate in (data_dir / "PROVENANCE.md", REPO.parent / "shared" / "data" / "raw" / "PROVENANCE.md"):
            if candidate.is_file():
                inputs.provenance = candidate
                break


def _read_chip_indicators(data_dir: Path) -> pd.DataFrame | None:
    """The indicator table of the embedded dataset for the chip-cycle chart (None when absent)."""
    from features.readers import read_indicators

    return read_indicators(data_dir) if (data_dir / "indicators_monthly.csv").is_file() else None


def _section_chip_cycle(inputs: ReportInputs) -> str:
    from flows.chip_report import chip_cycle_section

    return chip_cycle_section(inputs)


# =========================================================================== helpers
def fmt_range(lo: Any, hi: Any) -> str:
    return f"{fmt_bn(lo)}–{fmt_bn(hi)}" if _is_num(lo) and _is_num(hi) else "–"


def _truthy(series: pd.Series) -> pd.Series:
    return series.map(lambda v: v is True or str(v).strip().lower() in {"true", "1", "yes"})


def _names(inputs: ReportInputs) -> dict[str, str]:
    names: dict[str, str] = {}
    if inputs.meta is not None and "name_en" in inputs.meta.columns:
        names = {
            str(u): str(n) for u, n in zip(inputs.meta["unique_id"], inputs.meta["name_en"]) if isinstance(n, str) and n
        }
    return names


def _label(uid: str, names: dict[str, str]) -> str:
    if uid in names:
        return names[uid]
    if uid == "total":
        return "Total exports"
    kind, _, slug = uid.partition(":")
    return slug.replace("_", " ").capitalize() if slug else uid


def _series_order(ids: Iterable[str]) -> list[str]:
    rank = {"total": 0, "item": 1, "destination": 2}
    return sorted(set(ids), key=lambda u: (rank.get(u.partition(":")[0] if u != "total" else "total", 3), u))


def _champion_rows(inputs: ReportInputs, table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a forecast table whose model is the series' champion (``inputs.champion_of``)."""
    champion_of = inputs.champion_of
    return table[[champion_of.get(str(u)) == str(m) for u, m in zip(table["unique_id"], table["model"])]]


def _complete_year_total(inputs: ReportInputs, uid: str, year: int) -> tuple[float | None, int]:
    """(sum in USD, observed months) of a calendar year in the history; sum only when all 12 are observed."""
    y = _history_series(inputs, uid).dropna()
    months = y[(y.index.year == year)]
    n = int(months.index.month.nunique())
    return (float(months.sum()) if n == 12 else None), n


# =========================================================================== sections
#: run.json fields shown in the report's header (RunRecord fields, so they cannot drift from the writer)
HEADER_FACTS: tuple[tuple[str, str], ...] = (
    ("run_id", "run"),
    ("started_at", "started"),
    ("git_head", "code"),
    ("data_hash", "data"),
    ("data_source", "data source"),
    ("data_origin", "from"),
)


def _section_header(inputs: ReportInputs) -> str:
    run = inputs.run
    facts = []
    if run is not None:
        for key, label in HEADER_FACTS:
            value = getattr(run, key)
            if value not in (None, ""):
                text = value[:12] if key in ("git_head", "data_hash") else value
                facts.append(f"<span><b>{_e(label)}</b> {_e(text)}</span>")
        if run.data.get("last_month"):
            facts.append(f"<span><b>data through</b> {_e(run.data['last_month'])}</span>")
    return (
        f"<header><h1>Korea's exports: {inputs.target_year} forecast report</h1>"
        f'<p class="facts">{" ".join(facts) if facts else "run facts unavailable (no run.json)"}</p>'
        '<p class="lead">USD bn, not seasonally adjusted. The champion model of each series is the '
        "median ensemble unless another candidate had a lower mean error in the rolling backtest by more than "
        "the noise across windows (see Champions); ranges are the 80% and 95% prediction "
        "intervals of the calendar-year total from joint sample paths.</p></header>"
    )


# =========================================================================== series groups
#: the report's groups, in order: key -> heading
GROUP_TITLES: dict[str, str] = {
    "total": "Total",
    "item": "Items",
    "destination": "Destinations and regions",
    "other": "Other series",
}
GROUP_OF_PREFIX = {"item": "item", "destination": "destination"}


@dataclass(frozen=True)
class SeriesGroup:
    """Series shown together: ``members`` are in the hierarchy (children of ``parent`` in
    series.csv), ``outside`` are of the same kind but outside it (e.g. a series on another basis)."""

    key: str
    title: str
    members: tuple[str, ...]
    outside: tuple[str, ...] = ()
    parent: str | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        return self.members + self.outside


def _meta_rows(inputs: ReportInputs) -> dict[str, dict[str, str]]:
    if inputs.meta is None or "unique_id" not in inputs.meta.columns:
        return {}
    return {
        str(r["unique_id"]): {
            k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()) for k, v in r.items()
        }
        for r in inputs.meta.to_dict("records")
    }


def series_groups(
    inputs: ReportInputs, ids: Iterable[str], size: Mapping[str, float] | None = None
) -> list[SeriesGroup]:
    """The series grouped as total, items and destinations: by series.csv's ``hierarchy`` (else
    ``level``); a series with a ``parent`` is a member of the hierarchy, one without is listed
    after the members, as outside it; without series metadata (a user's CSV) by the id's prefix (``item:``,
    ``destination:``), and any other id under "Other series". Within a group, largest first
    (``size``: series -> forecast)."""
    meta = _meta_rows(inputs)
    size = size or {}
    members: dict[str, list[str]] = {k: [] for k in GROUP_TITLES}
    outside: dict[str, list[str]] = {k: [] for k in GROUP_TITLES}
    parents: dict[str, set[str]] = {k: set() for k in GROUP_TITLES}
    for uid in dict.fromkeys(str(u) for u in ids):
        row = meta.get(uid)
        if uid == "total" or (row is not None and row.get("level") == "total"):
            members["total"].append(uid)
            continue
        if row is not None and "parent" in row:
            kind = row.get("hierarchy") or row.get("level") or uid.partition(":")[0]
            key = GROUP_OF_PREFIX.get(kind, "other")
            if row["parent"]:
                members[key].append(uid)
                parents[key].add(row["parent"])
            else:
                outside[key].append(uid)
        else:  # no hierarchy columns (an older series.csv) or no metadata: the level, else the id's prefix
            kind = (row or {}).get("level") or uid.partition(":")[0]
            members[GROUP_OF_PREFIX.get(kind, "other")].append(uid)

    def largest_first(values: list[str]) -> tuple[str, ...]:
        return tuple(sorted(values, key=lambda u: (-float(size.get(u, 0.0) if _is_num(size.get(u)) else 0.0), u)))

    groups = []
    for key, title in GROUP_TITLES.items():
        if members[key] or outside[key]:
            parent = next(iter(parents[key])) if len(parents[key]) == 1 else None
            groups.append(SeriesGroup(key, title, largest_first(members[key]), largest_first(outside[key]), parent))
    return groups


# =========================================================================== fallbacks in words
def _fit_of(inputs: ReportInputs) -> dict[tuple[str, str], dict[str, Any]]:
    if inputs.fits is None or not {"unique_id", "model"} <= set(inputs.fits.columns):
        return {}
    return {(str(r["unique_id"]), str(r["model"])): r for r in inputs.fits.to_dict("records")}


def months_of_history(inputs: ReportInputs, uid: str, fit: Mapping[str, Any] | None = None) -> int | None:
    """Observed months of a series in the data the run used (else ``n_obs`` of model_fits.csv,
    else of series.csv)."""
    if inputs.history is not None:
        return int(_history_series(inputs, uid).notna().sum())
    for source in (fit or {}, _meta_rows(inputs).get(uid, {})):
        value = source.get("n_obs")
        if _is_num(value):
            return int(float(value))
    return None


def _repeats(inputs: ReportInputs, uid: str, model_used: str) -> str:
    if model_used == "naive":
        return "repeats the last month"
    y = _history_series(inputs, uid).dropna()
    last_year = inputs.target_year - 1
    if y.empty or (y.index[-1].year == last_year and y.index[-1].month == 12):
        return "repeats last year"
    return f"repeats its last 12 months (to {y.index[-1]:%Y-%m})"


def naive_wording(
    inputs: ReportInputs,
    uid: str,
    champion: str,
    n_months: int | None,
    fit: Mapping[str, Any] | None,
    champion_reason: str = "",
) -> str | None:
    """Words for a series whose forecast is a naive repeat (``None`` for any other): a champion
    that fell back because the series is short says "12 months of history: repeats last year";
    a fallback after a failed fit names the failure; a seasonal naive champion chosen on its
    backtest says it repeats last year."""
    fit = fit or {}
    used = str(fit.get("model_used") or champion)
    if used not in ("seasonal_naive", "naive"):
        return None
    what = _repeats(inputs, uid, used)
    reason = str(fit.get("reason") or "")
    status = str(fit.get("status") or "")
    short = (
        reason.startswith(("short series", "sparse series"))
        or " needs " in reason
        or champion_reason.startswith("no backtest window")
    )
    history = f"{n_months} months of history" if n_months is not None else "short history"
    if short:
        return f"{history}: {what}"
    if status == "fallback":
        return f"{champion} failed: {what}"
    return f"{used.replace('_', ' ')}: {what}"


# =========================================================================== headline
def _headline_rows(inputs: ReportInputs) -> pd.DataFrame:
    """One row per series with a champion forecast of the target year: the figures (USD bn), the
    previous calendar year, months of history, the model that really forecast and, for a naive
    repeat, the words that say so."""
    year = inputs.target_year
    champions = inputs.champion_of
    reasons = (
        {str(u): str(r) for u, r in zip(inputs.champions["unique_id"], inputs.champions["reason"])}
        if "reason" in inputs.champions.columns
        else {}
    )
    annual = inputs.annual[inputs.annual["year"] == year]
    rows = _champion_rows(inputs, annual).drop_duplicates("unique_id")
    fits = _fit_of(inputs)
    out = []
    for r in rows.itertuples(index=False):
        uid = str(r.unique_id)
        model = champions[uid]
        fit = fits.get((uid, model))
        used = (
            str(fit.get("model_used"))
            if fit and isinstance(fit.get("model_used"), str) and fit.get("model_used")
            else model
        )
        base = _reconciled_base(fit)
        if base:  # the reconciled champion: name the base model it reconciles
            model = used = f"{base}, reconciled"
        prior, n_prior = _complete_year_total(inputs, uid, year - 1)
        change = 100.0 * (r.forecast - prior) / prior if prior and _is_num(r.forecast) else float("nan")
        n_months = months_of_history(inputs, uid, fit)
        out.append(
            {
                "unique_id": uid,
                "model": model,
                "model_used": used,
                "reconciled": bool(base),
                "forecast": r.forecast / BN,
                "lo_80": r.lo_80 / BN,
                "hi_80": r.hi_80 / BN,
                "lo_95": r.lo_95 / BN,
                "hi_95": r.hi_95 / BN,
                "prior": prior / BN if prior else float("nan"),
                "n_prior": n_prior,
                "change_pct": change,
                "n_months": n_months,
                "wording": naive_wording(inputs, uid, model, n_months, fit, reasons.get(uid, "")),
            }
        )
    columns = [
        "unique_id",
        "model",
        "model_used",
        "reconciled",
        "forecast",
        "lo_80",
        "hi_80",
        "lo_95",
        "hi_95",
        "prior",
        "n_prior",
        "change_pct",
        "n_months",
        "wording",
    ]
    return pd.DataFrame(out, columns=columns).reset_index(drop=True)


def _change_text(row: Any) -> str:
    """The change on the previous year; a naive repeat says so in words (never a bare "+0.0%")."""
    return _growth_text(row.change_pct, row.wording if isinstance(row.wording, str) else None)


HEADLINE_HEADER = (
    "Series",
    "Champion",
    "History (months)",
    "{year} forecast",
    "80% range",
    "95% range",
    "{prior} actual",
    "Change on {prior}",
)
HEADLINE_NUMERIC = (2, 3, 4, 5, 6)
HEADLINE_WIDTHS = ("19%", "12%", "8%", "9%", "12%", "12%", "11%", "17%")


def _headline_cells(row: Any, names: dict[str, str]) -> list[str]:
    prior = fmt_bn(row.prior) if _is_num(row.prior) else f"incomplete ({row.n_prior}/12 months)"
    champion = str(row.model) if row.model_used == str(row.model) else f"{row.model} → {row.model_used}"
    months = str(int(row.n_months)) if _is_num(row.n_months) else "–"
    return [
        _label(row.unique_id, names),
        champion,
        months,
        fmt_bn(row.forecast),
        fmt_range(row.lo_80, row.hi_80),
        fmt_range(row.lo_95, row.hi_95),
        prior,
        _change_text(row),
    ]


def _section_headline(inputs: ReportInputs) -> str:
    year = inputs.target_year
    names = _names(inputs)
    table = _headline_rows(inputs)
    parts = [f'<section id="headline"><h2>{year} headline</h2>']
    if table.empty:
        parts.append(_note(f"forecast_annual.csv has no champion forecast for {year}"))
        return "".join(parts) + "</section>"
    total = table[table["unique_id"] == "total"]
    if not total.empty:
        t = next(total.itertuples(index=False))
        if isinstance(t.wording, str) and t.wording:
            change = f" ({t.wording})"
        else:
            change = (
                f", {fmt_pct(t.change_pct, signed=True)} on {year - 1} ({fmt_bn(t.prior)} bn)"
                if _is_num(t.change_pct)
                else ""
            )
        parts.append(
            f'<p class="headline">Total exports {year}: <b>{fmt_bn(t.forecast)} bn USD</b>{_e(change)} '
            f'<span class="range">80% range {fmt_range(t.lo_80, t.hi_80)}, '
            f"95% range {fmt_range(t.lo_95, t.hi_95)}</span> "
            f'<span class="model">({_e(t.model)})</span></p>'
        )
    nxt = inputs.run.next_year if inputs.run is not None else None
    if nxt:
        parts.append(
            f'<p class="headline">Total exports {nxt["year"]} (next year; the data reach the fourth '
            f'quarter): <b>{fmt_bn(nxt["forecast"])} bn USD</b> <span class="range">the sum of the monthly '
            f"forecasts (no range: the annual ranges are simulated for {year})</span> "
            f'<span class="model">({_e(nxt["model"])})</span></p>'
        )
    by_id = {str(r.unique_id): r for r in table.itertuples(index=False)}
    size = {u: r.forecast for u, r in by_id.items()}
    header = [h.format(year=year, prior=year - 1) for h in HEADLINE_HEADER]
    for group in series_groups(inputs, by_id, size):
        parts.append(f'<h3 id="headline-{group.key}">{_e(group.title)}</h3>')
        rows = [_headline_cells(by_id[u], names) for u in group.members]
        body = "".join(
            "<tr>"
            + "".join(f"<td{' class=num' if i in HEADLINE_NUMERIC else ''}>{_e(v)}</td>" for i, v in enumerate(row))
            + "</tr>"
            for row in rows
        )
        if group.outside:
            body += (
                f'<tr class="sub"><td colspan="{len(header)}">Outside the hierarchy (not in the partition of '
                f"{_e(_label(group.parent, names)) if group.parent else 'the parent'})</td></tr>"
            )
            body += "".join(
                "<tr>"
                + "".join(
                    f"<td{' class=num' if i in HEADLINE_NUMERIC else ''}>{_e(v)}</td>"
                    for i, v in enumerate(_headline_cells(by_id[u], names))
                )
                + "</tr>"
                for u in group.outside
            )
        parts.append(
            '<table class="data"><colgroup>'
            + "".join(f'<col style="width:{w}">' for w in HEADLINE_WIDTHS)
            + "</colgroup><thead><tr>"
            + "".join(f"<th{' class=num' if i in HEADLINE_NUMERIC else ''}>{_e(h)}</th>" for i, h in enumerate(header))
            + f"</tr></thead><tbody>{body}</tbody></table>"
        )
        if group.parent and len(group.members) > 1 and group.parent in by_id:
            parts.append(_note(_partition_note(group, by_id, names)))
    parts.append(_outlook_block(inputs))
    return "".join(parts) + "</section>"


def _reconciled_base(fit: Mapping[str, Any] | None) -> str:
    """The base champion a reconciled (``mint``) fit row reconciles ('' for any other row)."""
    if not fit or fit.get("model") != RECONCILED or not isinstance(fit.get("description"), str):
        return ""
    try:
        return str(json.loads(fit["description"]).get("base", ""))
    except (json.JSONDecodeError, AttributeError):
        return ""


def _partition_note(group: SeriesGroup, by_id: Mapping[str, Any], names: dict[str, str]) -> str:
    total = sum(float(by_id[u].forecast) for u in group.members)
    parent = float(by_id[group.parent].forecast)
    gap = 100.0 * (total - parent) / parent if parent else float("nan")
    reconciled = all(bool(by_id[u].reconciled) for u in [*group.members, group.parent])
    how = (
        "the champions are reconciled over the hierarchy (MinT with the total's own forecast kept; see the "
        "backtest section for what it costs or gains)"
        if reconciled
        else "each series is forecast on its own (not reconciled)"
    )
    return (
        f"The {len(group.members)} {group.title.lower()} in the hierarchy sum to {fmt_bn(total)} bn, "
        f"{fmt_pct(gap, signed=True)} on the {_label(group.parent, names)} forecast ({fmt_bn(parent)} bn): {how}."
    )


def _growth_text(pct: Any, wording: str | None) -> str:
    text = fmt_pct(pct, signed=True)
    if not wording:
        return text
    return wording if not _is_num(pct) or abs(float(pct)) < 0.05 else f"{text} ({wording})"


def _outlook_block(inputs: ReportInputs) -> str:
    year = inputs.target_year
    names = _names(inputs)
    if inputs.outlook is None:
        return _note(
            f"institutional_outlook.csv was not found in {inputs.where}: the institutions' {year} "
            "projections are not shown beside the model"
        )
    o = inputs.outlook[inputs.outlook["target_year"] == year]
    if o.empty:
        if inputs.run is not None and not inputs.run.institutional_compared:
            return _note(
                f"the institutions' {year} projections are compared only on the embedded dataset "
                f"(this run used {inputs.run.data_source} data)"
            )
        return _note(f"no institutional projection for {year}")
    # a champion that repeats the past says so beside its growth (never a bare "+0.0%")
    headline = _headline_rows(inputs)
    repeats = {str(u): w for u, w in zip(headline["unique_id"], headline["wording"]) if isinstance(w, str) and w}
    rows = []
    outside: list[str] = []
    for r in o.itertuples(index=False):
        level = getattr(r, "projected_level_usd_bn", float("nan"))
        printed = fmt_bn(r.projected_usd_bn) if _is_num(r.projected_usd_bn) else "–"
        growth = fmt_pct(r.projected_growth_pct, signed=True)
        lo, hi = getattr(r, "model_lo_80", None), getattr(r, "model_hi_80", None)
        model_rng = fmt_range(lo, hi)
        where = _where_in_range(level, lo, hi)
        if where in ("below", "above"):
            outside.append(f"{r.institution} on {_label(str(r.unique_id), names)} ({where})")
        rows.append(
            [
                _label(str(r.unique_id), names),
                r.institution,
                r.kind,
                printed,
                growth,
                fmt_bn(level) + ("" if _is_num(r.projected_usd_bn) or not _is_num(level) else " *"),
                fmt_bn(r.model_usd_bn),
                model_rng,
                where,
                _growth_text(getattr(r, "model_growth_pct", None), repeats.get(str(r.unique_id))),
            ]
        )
    disagree = (
        f" {len(outside)} of {len(rows)} projections lie outside the model's 80% range: "
        f"{'; '.join(outside)}. There the model and the institution disagree by more than the model's own "
        "uncertainty; the model sees only the series' own history."
        if outside
        else ""
    )
    return (
        f"<h3>Beside the institutions' {year} projections</h3>"
        + _table(
            [
                "Series",
                "Institution",
                "Kind",
                "Level",
                "Growth",
                "Level compared",
                "Model",
                "Model 80%",
                "Level vs model 80%",
                "Model growth",
            ],
            rows,
            numeric=(3, 4, 5, 6, 7, 8, 9),
            classes=["data"],
            widths=["14%", "11%", "10%", "7%", "6%", "8%", "7%", "11%", "9%", "17%"],
        )
        + _note(
            "* growth-only projection: level = previous year's actual x (1 + growth). The model column uses "
            "all data; the institutions published with data through October of the year before." + disagree
        )
    )


def _where_in_range(level: Any, lo: Any, hi: Any) -> str:
    """Where an institution's level lies against the model's 80% range: below, inside, above ('–': unknown)."""
    if not (_is_num(level) and _is_num(lo) and _is_num(hi)):
        return "–"
    value = float(level)
    return "below" if value < float(lo) else "above" if value > float(hi) else "inside"


def _finish_axes(fig: Any, ax: Any, **legend: Any) -> None:
    """The report's chart style: small ticks, light grid, frameless legend, no top/right spines."""
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.25, lw=0.5)
    ax.legend(fontsize=7, frameon=False, **legend)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()


def _draw_fan(ax: Any, inputs: ReportInputs, uid: str, fc: pd.DataFrame, years: int, *, lw: float = 1.2) -> int:
    """History (the last ``years`` years), 95% and 80% bands and the forecast on ``ax``; returns
    the number of history months drawn."""
    fc = fc.sort_values("ds")
    x = pd.DatetimeIndex(fc["ds"])
    hist = _history_series(inputs, uid).dropna()
    if len(x):
        hist = hist[hist.index >= x[0] - pd.DateOffset(years=years)]
    n_hist = len(hist)
    if not hist.empty:
        # a missing month breaks the line (no straight line drawn across a gap in the data)
        hist = hist.reindex(pd.date_range(hist.index[0], hist.index[-1], freq="MS"))
        ax.plot(hist.index, hist.to_numpy() / BN, color=COLORS["history"], lw=lw, label="actual")
    ax.fill_between(x, fc["lo_95"] / BN, fc["hi_95"] / BN, color=COLORS["band95"], lw=0, label="95%")
    ax.fill_between(x, fc["lo_80"] / BN, fc["hi_80"] / BN, color=COLORS["band80"], lw=0, label="80%")
    ax.plot(x, fc["forecast"] / BN, color=COLORS["forecast"], lw=lw + 0.3, label="forecast")
    return n_hist


def _fan_chart(
    inputs: ReportInputs, uid: str, label: str, fc: pd.DataFrame, size: tuple[float, float] = (12.0, 3.2)
) -> str:
    fig = _figure(*size)
    ax = fig.subplots()
    n_hist = _draw_fan(ax, inputs, uid, fc, HISTORY_YEARS, lw=1.4)
    ax.set_title(label, fontsize=10, loc="left")
    ax.set_ylabel("USD bn / month", fontsize=8)
    _finish_axes(fig, ax, loc="upper left", ncol=4)
    model = str(fc["model"].iloc[0]) if len(fc) else "no model"
    return _png(
        fig, f"{label}: {n_hist} months of history and {len(fc)} forecast months ({model}) with 80% and 95% bands"
    )


def _fan_panels(
    inputs: ReportInputs, group: SeriesGroup, ids: Sequence[str], fc: pd.DataFrame, titles: Mapping[str, str]
) -> str:
    """Small multiples: one panel per series of a group (own y scale), one legend."""
    from matplotlib.dates import DateFormatter, YearLocator

    ncols = min(PANEL_COLUMNS, len(ids))
    nrows = math.ceil(len(ids) / ncols)
    height = 0.3 + PANEL_HEIGHT * nrows
    fig = _figure(12.0, height)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, uid in zip(axes.flat, ids):
        n_hist = _draw_fan(ax, inputs, uid, fc[fc["unique_id"] == uid], PANEL_YEARS, lw=0.9)
        ax.set_title(titles[uid], fontsize=8.5, loc="left")
        ax.xaxis.set_major_locator(YearLocator(1 if n_hist <= 36 else 2))
        ax.xaxis.set_major_formatter(DateFormatter("%Y"))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25, lw=0.5)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for ax in list(axes.flat)[len(ids) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", ncol=4, fontsize=7.5, frameon=False)
    fig.text(0.005, 1 - 0.04 / height, "USD bn per month", fontsize=8, va="top")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.22 / height), h_pad=0.6)
    return _png(
        fig,
        f"{group.title}: small multiples of {len(ids)} series ({', '.join(titles[u] for u in ids)}), "
        f"the last {PANEL_YEARS} years of history and the champion's forecast with 80% and 95% bands",
    )


def _section_fans(inputs: ReportInputs) -> str:
    names = _names(inputs)
    fc = _champion_rows(inputs, inputs.monthly)
    headline = _headline_rows(inputs)
    size = dict(zip(headline["unique_id"], headline["forecast"]))
    rows = {str(r.unique_id): r for r in headline.itertuples(index=False)}
    groups = series_groups(inputs, _series_order(fc["unique_id"].astype(str)), size)
    parts = [
        '<section id="fans"><h2>Fan charts</h2>',
        _note(
            f"The champion's forecast with 80% and 95% bands, USD bn per month: the total with the last "
            f"{HISTORY_YEARS} years of history, then one small panel per series (the last {PANEL_YEARS} "
            "years; each panel has its own scale). A panel title gives the months of history, and says "
            "so when the forecast repeats the past."
        ),
    ]
    if "dataset" in inputs.notes:
        parts.append(_note(inputs.notes["dataset"]))
    for group in groups:
        if group.key == "total":
            for uid in group.ids:
                parts.append(
                    f"<figure>{_fan_chart(inputs, uid, _label(uid, names), fc[fc['unique_id'] == uid])}</figure>"
                )
            continue
        ids = list(group.ids)
        if len(ids) > MAX_FANS:
            parts.append(_note(f"{group.title}: {len(ids) - MAX_FANS} more series are in forecast_monthly.csv"))
            ids = ids[:MAX_FANS]
        if group.key == "other":  # series of no known kind (a user's own ids): one chart each, two per row
            parts.append(f'<h3 id="fans-{group.key}">{_e(group.title)}</h3><div class="grid">')
            parts.extend(
                f"<figure>{_fan_chart(inputs, u, _label(u, names), fc[fc['unique_id'] == u], (6.0, 2.7))}</figure>"
                for u in ids
            )
            parts.append("</div>")
            continue
        titles = {}
        for uid in ids:
            r = rows.get(uid)
            name, wording = _label(uid, names), ""
            if (
                r is not None
                and isinstance(r.wording, str)
                and r.wording
                and r.wording.startswith(f"{r.n_months} months")
            ):
                wording = r.wording
            elif r is not None and isinstance(r.wording, str) and r.wording:
                name, wording = f"{name} ({r.n_months}\u00a0mo)", r.wording
            elif r is not None and _is_num(r.n_months):
                name += f" ({int(r.n_months)}\u00a0mo)"  # kept on one line
            star = " *" if uid in group.outside else ""
            titles[uid] = "\n".join(textwrap.fill(t, PANEL_TITLE_WIDTH) for t in (name, wording) if t) + star
        parts.append(
            f'<h3 id="fans-{group.key}">{_e(group.title)}</h3><figure>'
            f"{_fan_panels(inputs, group, ids, fc, titles)}</figure>"
        )
        if any(u in group.outside for u in ids):
            parts.append(_note("* outside the hierarchy (not part of the parent's partition)."))
    parts.append("</section>")
    return "".join(parts)


def institution_colors(names: Iterable[str]) -> dict[str, str]:
    """One colour per institution (matplotlib's 20-colour qualitative palette, in name order), so
    that an institution has the same colour in every chart and no two share one."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    palette = [to_hex(c) for c in colormaps["tab20"].colors]
    palette = palette[0::2] + palette[1::2]  # the strong tones first, then the light ones
    ordered = sorted(set(str(n) for n in names))
    if len(ordered) > len(palette):
        extra = colormaps["hsv"]
        palette += [to_hex(extra(i / (len(ordered) - len(palette)))) for i in range(len(ordered) - len(palette))]
    return dict(zip(ordered, palette))


def _ape_chart(comparison: pd.DataFrame, uid: str, label: str, colors: Mapping[str, str]) -> str | None:
    from models.applications.institutional import counted_as_skill

    rows = comparison[(comparison["unique_id"] == uid) & (comparison["kind"] == PRE_YEAR)]
    if "in_summary" in rows.columns:
        rows = rows[_truthy(rows["in_summary"])]
    if rows.empty:
        return None
    model_rows = rows[rows["model"] == CHAMPION].drop_duplicates("target_year").sort_values("target_year")
    inst = (
        rows[rows["model"] == CHAMPION]
        if not model_rows.empty
        else rows.drop_duplicates(["target_year", "institution"])
    )
    fig = _figure(11.0, 3.4)
    ax = fig.subplots()
    institutions = sorted(inst["institution"].astype(str).unique())
    offsets = np.linspace(-0.25, 0.25, len(institutions)) if len(institutions) > 1 else [0.0]
    for name, off in zip(institutions, offsets):
        g = inst[inst["institution"] == name].sort_values("target_year")
        ax.scatter(g["target_year"] + off, g["institution_ape"], s=22, color=colors[name], label=name, zorder=3)
    fell = ~counted_as_skill(model_rows)
    if fell.any():  # a fallback's figure is not the model's: drawn apart, never joined to the line
        apart = model_rows[fell]
        ax.scatter(
            apart["target_year"],
            apart["model_ape"],
            marker="x",
            s=30,
            color="#888888",
            zorder=2,
            label="champion fell back to " + "/".join(sorted(set(apart["model_used"].astype(str)))) + " (not counted)",
        )
        model_rows = model_rows[~fell]
    if not model_rows.empty:
        ax.plot(
            model_rows["target_year"],
            model_rows["model_ape"],
            color=COLORS["model"],
            lw=1.6,
            marker="s",
            ms=4,
            label="model (champion, data through Oct of Y-1)",
            zorder=2,
        )
    ax.set_title(f"{label}: absolute % error of the pre-year outlook by target year", fontsize=10, loc="left")
    ax.set_ylabel("APE, %", fontsize=8)
    ax.set_ylim(bottom=0)
    years = sorted(inst["target_year"].astype(int).unique())
    ax.set_xticks(years)
    ax.set_xticklabels([str(y) for y in years], fontsize=8)
    _finish_axes(fig, ax, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # legend outside: never hides a point
    return _png(fig, f"{label}: APE of the institutions' pre-year outlooks and of the model by target year")


def _selection_years_text(inputs: ReportInputs) -> str:
    """How far back the champion rule of the comparison looked (run.json's config), or nothing."""
    institutional = (inputs.run.config.get("institutional") or {}) if inputs.run is not None else {}
    first = institutional.get("selection_first_year")
    if not first:
        return ""
    return (
        f" (every year from {first} the series' data allows, including years before "
        f"{institutional.get('first_year', 'the first compared year')} that have no institutional outlook here)"
    )


def _section_institutional(inputs: ReportInputs) -> str:
    names = _names(inputs)
    parts = [
        '<section id="institutions"><h2>Against the institutions</h2>',
        _note(
            "Each model forecasts year Y with data through October of Y-1, the information KITA and KIET had "
            "for their November/December outlooks; the champion of year Y is chosen on earlier years only"
            f"{_selection_years_text(inputs)}. "
            "APE = |projected - actual| / actual x 100; only pre-year outlooks enter the MAPE."
        ),
    ]
    if inputs.comparison is None and inputs.summary is None:
        parts.append(
            _note(
                f"institutional_comparison.csv and institutional_summary.csv were not found in "
                f"{inputs.where}: the institutional comparison was not run"
            )
        )
        return "".join(parts) + "</section>"
    if inputs.comparison is not None and inputs.comparison.empty:
        parts.append(
            _note(
                "institutional_comparison.csv has no rows: the comparison was skipped in this run "
                "(it needs the embedded dataset)"
            )
        )
        return "".join(parts) + "</section>"
    if inputs.comparison is not None:
        comp = inputs.comparison
        colors = institution_colors(comp["institution"].astype(str))
        ids = _series_order(comp.loc[comp["kind"] == PRE_YEAR, "unique_id"].astype(str))
        for uid in ids:
            n_years = comp[(comp["unique_id"] == uid) & (comp["kind"] == PRE_YEAR)]["target_year"].nunique()
            if n_years >= 3:
                chart = _ape_chart(comp, uid, _label(uid, names), colors)
                if chart:
                    parts.append(f"<figure>{chart}</figure>")
    else:
        parts.append(_note(inputs.notes.get("institutional_comparison.csv", "no comparison rows")))
    if inputs.comparison is not None:
        parts.append(_accuracy_tables(inputs.comparison, names))
    if inputs.summary is not None and not inputs.summary.empty:
        parts.append(_summary_tables(inputs.summary, names))
    elif inputs.summary is None:
        parts.append(_note(inputs.notes.get("institutional_summary.csv", "no summary")))
    if inputs.comparison is not None:
        parts.append(_comparison_table(inputs.comparison, names))
    return "".join(parts) + "</section>"


#: the series of the accuracy table (issue 9): the total and the ministry's semiconductors (the institutions' basis)
ACCURACY_SERIES: tuple[str, ...] = ("total", "item:semiconductors_ministry")


def _accuracy_tables(comparison: pd.DataFrame, names: dict[str, str]) -> str:
    """The table of ``benchmarks/accuracy.py`` (``models.applications.institutional.accuracy_table``): KITA,
    KIET, every model, every combination, the reconciled forecast and the champion, with the
    information each used, for the total and semiconductors, 2013-2025."""
    from models.applications.institutional import accuracy_table

    ids = tuple(u for u in ACCURACY_SERIES if (comparison["unique_id"] == u).any())
    if not ids:
        return ""
    table = accuracy_table(comparison, ids, first_year=2013, last_year=2025)
    out = ["<h3>Accuracy of the pre-year forecasts, 2013-2025: institutions, models, combinations, champion</h3>"]
    for uid, g in table.groupby("unique_id", sort=False):
        best = str(g["best_institution"].iloc[0])
        body = []
        for r in g.itertuples(index=False):
            years = f"{int(r.n_years)} ({r.years})" if int(r.n_years) else "–"
            cover = fmt_pct(100 * r.coverage_80, 0) if _is_num(r.coverage_80) else "–"
            ratio = f"{float(r.ratio_to_best_institution):.3f}" if _is_num(r.ratio_to_best_institution) else "–"
            body.append(
                [
                    str(r.forecast),
                    years,
                    fmt_pct(r.mape, 2),
                    fmt_pct(r.bias_pct, 2, signed=True),
                    cover,
                    ratio,
                    str(r.information),
                ]
            )
        out.append(
            _table(
                ["Forecast", "Years", "MAPE", "Bias", "80% cover", f"Ratio to {best}", "Information used"],
                body,
                caption=_label(str(uid), names),
                numeric=(2, 3, 4, 5),
                classes=["data", "compact"],
                widths=["11%", "13%", "7%", "7%", "7%", "8%", "47%"],
            )
        )
    out.append(
        _note(
            "Models over every year KITA or KIET has an outlook for (a model that starts later over the "
            "years it has); institutions over their own years. Ratio: the forecast's MAPE over the best "
            "institution's years / that institution's MAPE over the same years (below 1 beats it). 80% cover: share of the years whose actual fell inside the forecast's 80% interval "
            "of the annual total (institutions publish none). Bias: mean signed error, above the actual positive."
        )
    )
    return "".join(out)


def _summary_tables(summary: pd.DataFrame, names: dict[str, str]) -> str:
    if (
        "section" in summary.columns
    ):  # the mid-year section (models.applications.institutional.mid_year_summary) is not shown here
        summary = summary[summary["section"].fillna(PRE_YEAR) == PRE_YEAR]
    champ = summary[summary["model"] == CHAMPION]
    rows = []
    for r in champ.itertuples(index=False):
        rows.append(
            [
                _label(str(r.unique_id), names),
                r.institution,
                getattr(r, "years", ""),
                str(int(r.n_years)),
                fmt_pct(r.institution_mape, 2),
                fmt_pct(r.model_mape, 2),
                fmt_pct(100 * r.model_coverage_80, 0),
                fmt_pct(r.institution_bias_pct, 2, signed=True),
                fmt_pct(r.model_bias_pct, 2, signed=True),
                _fell_back_text(getattr(r, "years_fell_back", "")),
            ]
        )
    out = [
        "<h3>Pre-year outlooks: institution vs model (same years)</h3>",
        _table(
            [
                "Series",
                "Institution",
                "Years",
                "n",
                "Inst. MAPE",
                "Model MAPE",
                "Model 80% cover",
                "Inst. bias",
                "Model bias",
                "Not counted: fell back",
            ],
            rows,
            numeric=(3, 4, 5, 6, 7, 8),
            classes=["data"],
            widths=["13%", "14%", "14%", "4%", "8%", "8%", "9%", "8%", "8%", "14%"],
        ),
    ]
    models = [m for m in dict.fromkeys(summary["model"].astype(str)) if m != CHAMPION]
    if models:
        header = ["Series", "Institution", "n", "Institution", CHAMPION, *models]
        body = []
        for (uid, inst), g in summary.groupby(["unique_id", "institution"], sort=False):
            widest = g.loc[g["n_years"].astype(int).idxmax()]  # the institution over all its counted years
            n_of = dict(zip(g["model"].astype(str), g["n_years"].astype(int)))
            mape = dict(zip(g["model"].astype(str), g["model_mape"]))
            values = [widest["institution_mape"], *[mape.get(m) for m in [CHAMPION, *models]]]
            finite = [float(v) for v in values if _is_num(v)]
            best = min(finite) if finite else None
            cells = [_e(_label(str(uid), names)), _e(inst), _e(int(widest["n_years"]))]
            for m, v in zip([None, CHAMPION, *models], values):
                text = _e(fmt_pct(v, 2))
                if m is not None and m in n_of and n_of[m] != int(widest["n_years"]):
                    text += f" (n={n_of[m]})"  # the years it fell back in are not counted
                cells.append(
                    f'<span class="best">{text}</span>'
                    if best is not None and _is_num(v) and float(v) == best
                    else text
                )
            body.append(cells)
        out.append("<h3>MAPE of every model over the institution's years (lowest highlighted)</h3>")
        out.append(_table(header, body, numeric=range(2, len(header)), classes=["data", "compact"], raw=True))
        out.append(
            _note(
                "A year where a model had too little history and fell back (to seasonal naive or naive) is "
                "not that model's skill and is not counted: (n=...) gives the years that are; a model with "
                "none is blank."
            )
        )
    return "".join(out)


def _fell_back_text(years: Any) -> str:
    """The years a summary row does not count because its model fell back, or a dash."""
    return f"{years} (fallback)" if isinstance(years, str) and years.strip() else "–"


def _comparison_table(comp: pd.DataFrame, names: dict[str, str]) -> str:
    rows = (
        comp[comp["model"] == CHAMPION]
        if (comp["model"] == CHAMPION).any()
        else comp.drop_duplicates(["target_year", "unique_id", "institution", "published"])
    )
    rows = rows.sort_values(
        ["unique_id", "target_year", "institution"],
        key=lambda s: (
            s.map({u: i for i, u in enumerate(_series_order(rows["unique_id"].astype(str)))})
            if s.name == "unique_id"
            else s
        ),
    )
    body = []
    for r in rows.itertuples(index=False):
        level = getattr(r, "projected_level_usd_bn", r.projected_usd_bn)
        derived = not _is_num(r.projected_usd_bn) and _is_num(level)
        flag = []
        if derived:
            flag.append("growth-only")
        if str(getattr(r, "published_in_target_year", "")).lower() in {"true", "1"}:
            flag.append("published in target year")
        if r.kind != PRE_YEAR:
            flag.append(str(r.kind))
        if str(getattr(r, "fallback_only", "")).lower() in {"true", "1"}:
            flag.append(f"no model fitted beyond the fallback (ran {getattr(r, 'model_used', '')}; not counted)")
        elif str(getattr(r, "model_fell_back", "")).lower() in {"true", "1"}:
            flag.append(f"champion fell back to {getattr(r, 'model_used', '')} (not counted)")
        body.append(
            [
                str(int(r.target_year)),
                _label(str(r.unique_id), names),
                r.institution,
                str(getattr(r, "published", "")),
                fmt_bn(level) + (" *" if derived else ""),
                fmt_bn(r.model_usd_bn),
                fmt_range(getattr(r, "model_lo_80", None), getattr(r, "model_hi_80", None)),
                fmt_bn(r.actual_usd_bn),
                fmt_pct(r.institution_ape, 2),
                fmt_pct(r.model_ape, 2),
                "; ".join(flag),
            ]
        )
    return (
        "<details><summary>Every projection compared (champion model), by series and year</summary>"
        + _table(
            [
                "Year",
                "Series",
                "Institution",
                "Published",
                "Projected",
                "Model",
                "Model 80%",
                "Actual",
                "Inst. APE",
                "Model APE",
                "Flags",
            ],
            body,
            numeric=(4, 5, 6, 7, 8, 9),
            classes=["data", "compact"],
            widths=["5%", "11%", "13%", "9%", "8%", "7%", "11%", "7%", "7%", "7%", "15%"],
        )
        + _note("* growth-only projection compared as previous year's actual x (1 + growth).")
        + "</details>"
    )


def _section_backtest(inputs: ReportInputs) -> str:
    names = _names(inputs)
    parts = ['<section id="backtest"><h2>Backtest accuracy</h2>']
    if inputs.metrics is None or inputs.metrics.empty:
        parts.append(_note(inputs.notes.get("backtest_metrics.csv", "backtest_metrics.csv has no rows")))
        return "".join(parts) + "</section>"
    m = inputs.metrics
    mean = m.groupby(["unique_id", "model"])["mase"].mean().unstack("model")
    windows = m.groupby("unique_id")["cutoff"].nunique()
    models = [c for c in mean.columns if c != CHAMPION]
    columns = models + ([CHAMPION] if CHAMPION in mean.columns else [])
    wins = dict.fromkeys(models, 0)
    body = []
    for uid in _series_order(mean.index.astype(str)):
        row = mean.loc[uid]
        finite = {k: float(row[k]) for k in models if _is_num(row[k])}
        best = min(finite.values()) if finite else None
        for k, v in finite.items():
            if v == best:
                wins[k] += 1
        cells = [_e(_label(uid, names)), _e(int(windows.get(uid, 0)))]
        for k in columns:
            text = _e(f"{float(row[k]):.2f}" if _is_num(row[k]) else "–")
            cells.append(f'<span class="best">{text}</span>' if k in finite and finite[k] == best else text)
        body.append(cells)
    body.append(["<b>series won</b>", ""] + [_e(wins[k]) if k in wins else "" for k in columns])
    parts.append(
        _note(
            "Mean MASE over the rolling-origin windows (1.0 = the in-sample seasonal naive error; lower is "
            "better). The lowest per series is highlighted."
        )
    )
    parts.append(
        _table(
            ["Series", "Windows", *columns],
            body,
            numeric=range(1, len(columns) + 2),
            classes=["data", "compact"],
            raw=True,
        )
    )
    return "".join(parts) + "</section>"


def _section_champions(inputs: ReportInputs) -> str:
    names = _names(inputs)
    parts = ['<section id="champions"><h2>Champion per series, and why</h2>']
    if inputs.champions is None:
        parts.append(_note(inputs.notes.get("champions.csv", "no champions")))
    else:
        c = inputs.champions.set_index("unique_id")
        rows = [
            [_label(uid, names), uid, str(c.loc[uid, "champion"]), str(c.loc[uid, "reason"])]
            for uid in _series_order(c.index.astype(str))
        ]
        parts.append(
            _table(["Series", "Id", "Champion", "Reason"], rows, classes=["data"], widths=["18%", "20%", "12%", "50%"])
        )
    if inputs.fits is not None:
        f = inputs.fits
        odd = f[(f["status"].astype(str) != "ok") | (f["model_used"].astype(str) != f["model"].astype(str))]
        if not odd.empty:
            # one row per series and outcome: a short series falls back the same way for every model
            odd = odd.assign(
                why=[
                    " ".join(str(v) for v in (r.reason, getattr(r, "error", "")) if isinstance(v, str) and v)
                    for r in odd.itertuples(index=False)
                ]
            )
            grouped = odd.groupby(["unique_id", "model_used", "status", "why"], sort=False, dropna=False)["model"]
            rows = [
                [_label(str(uid), names), ", ".join(str(m) for m in models), used, status, why]
                for (uid, used, status, why), models in grouped
            ]
            parts.append("<h3>Fallbacks and failed fits</h3>")
            parts.append(
                _table(
                    ["Series", "Models", "Used", "Status", "Reason"],
                    rows,
                    classes=["data", "compact"],
                    widths=["18%", "18%", "12%", "8%", "44%"],
                )
            )
        else:
            parts.append(_note("Every model was fitted as configured on every series (no fallback)."))
    return "".join(parts) + "</section>"


def freshness_rows(inputs: ReportInputs) -> pd.DataFrame:
    """Per series of the data the run used: first and last observed month, observed months, months
    missing inside that span, and sources (the data's ``source`` column, else where it came from)."""
    columns = ["unique_id", "name", "first", "last", "n_obs", "n_missing", "sources"]
    if inputs.history is None or inputs.history.empty:
        return pd.DataFrame(columns=columns)
    h = inputs.history.dropna(subset=["y"])
    names = _names(inputs)
    origin = inputs.run.data_origin if inputs.run is not None and inputs.run.data_origin else ""
    rows = []
    for uid, g in h.groupby("unique_id", sort=False):
        first, last = g["ds"].min(), g["ds"].max()
        span = (last.year - first.year) * 12 + last.month - first.month + 1
        sources = ("; ".join(sorted(set(g["source"].dropna().astype(str)))) if "source" in g.columns else "") or origin
        rows.append(
            [str(uid), names.get(str(uid), ""), f"{first:%Y-%m}", f"{last:%Y-%m}", len(g), span - len(g), sources]
        )
    table = pd.DataFrame(rows, columns=columns)
    order = {u: i for i, u in enumerate(_series_order(table["unique_id"]))}
    return table.sort_values("unique_id", key=lambda s: s.map(order)).reset_index(drop=True)


def _section_data(inputs: ReportInputs) -> str:
    parts = ['<section id="data"><h2>Data freshness and sources</h2>']
    run = inputs.run
    if run is not None and run.data_source:
        what = {"embedded": "the embedded dataset", "csv": "a user CSV", "customs_api": "the Korea Customs Service API"}
        parts.append(
            f"<p>This run used {_e(what.get(run.data_source, run.data_source))}: <code>{_e(run.data_origin)}</code>"
            + (f" (data hash {_e(run.data_hash[:12])})" if run.data_hash else "")
            + ".</p>"
        )
    fresh = freshness_rows(inputs)
    if fresh.empty:
        parts.append(_note(inputs.notes.get("dataset", "the run's data is not available: no freshness table")))
    else:
        latest = inputs.history.dropna(subset=["y"])["ds"].max()
        parts.append(
            f"<p>Latest month in the data: <b>{latest:%Y-%m}</b>. Series whose last month is earlier "
            "are forecast from their own last observation.</p>"
        )
        rows = [
            [r.unique_id, r.name, r.first, r.last, str(r.n_obs), str(r.n_missing), r.sources]
            for r in fresh.itertuples(index=False)
        ]
        parts.append(
            _table(
                ["Id", "Name", "First", "Last", "Obs", "Missing", "Sources"],
                rows,
                numeric=(4, 5),
                classes=["data", "compact"],
                widths=["17%", "15%", "7%", "7%", "5%", "6%", "43%"],
            )
        )
    if inputs.provenance is not None:
        # named as text, not linked: a link breaks once the report is copied elsewhere
        try:
            relative = Path(os.path.relpath(inputs.provenance, REPO)).as_posix()
        except ValueError:  # another drive (Windows)
            relative = inputs.provenance.as_posix()
        parts.append(
            f"<p>Provenance of every raw file: <code>{_e(relative)}</code> (relative to the exportcast "
            f"checkout; the raw files sit in <code>{_e(Path(relative).parent.as_posix())}/</code>).</p>"
        )
    elif run is None or run.data_source == "embedded":
        parts.append(_note("no provenance file found next to the dataset"))
    other = {k: v for k, v in inputs.notes.items() if k != "dataset"}
    if other:
        parts.append("<h3>Inputs not found</h3><ul>" + "".join(f"<li>{_e(v)}</li>" for v in other.values()) + "</ul>")
    return "".join(parts) + "</section>"


# =========================================================================== this year (issue 10)
#: the information a tracked or nowcast figure was made with, in the order it arrives in a month
INFORMATION_ORDER: tuple[str, ...] = ("none", "month", "d10", "d20")
INFORMATION_LABELS: dict[str, str] = {
    "none": "model only (no flash)",
    "month": "after the month's figure",
    "d10": "10-day flash",
    "d20": "20-day flash",
}
INFORMATION_COLORS: dict[str, str] = {"none": "#7a8591", "month": "#1f3b57", "d10": "#e69f00", "d20": "#c4432b"}
MID_YEAR = "mid-year revision"
#: months of the nowcast chart (the most recent ones)
NOWCAST_CHART_MONTHS = 24
#: years of the nowcast's headline MAPE (the most recent full years with actuals), as in the issue's target
NOWCAST_RECENT_YEARS = 4
TRACKED_SERIES: tuple[str, ...] = ("total", "item:semiconductors_ministry", "item:semiconductors")


def _info_rank(values: pd.Series) -> pd.Series:
    order = {k: i for i, k in enumerate(INFORMATION_ORDER)}
    return values.map(lambda v: order.get(str(v), len(order)))


def tracking_year(inputs: ReportInputs) -> int | None:
    """The year the tracking chart shows: the target year when tracking.csv has it (the year in
    progress), else the latest year in tracking.csv; None without tracking rows."""
    t = inputs.tracking
    if t is None or t.empty:
        return None
    years = set(int(y) for y in t["target_year"].dropna())
    return inputs.target_year if inputs.target_year in years else max(years)


def tracking_path(tracking: pd.DataFrame, uid: str, year: int) -> pd.DataFrame:
    """The tracked annual total of ``uid`` for ``year`` in the order information arrived (one
    model: ``champion`` when present, else the model with the most rows)."""
    rows = tracking[(tracking["unique_id"].astype(str) == uid) & (tracking["target_year"].astype(int) == year)]
    if rows.empty:
        return rows
    models = rows["model"].astype(str)
    model = CHAMPION if (models == CHAMPION).any() else models.value_counts().sort_index().idxmax()
    rows = rows[models == model].assign(_rank=lambda f: _info_rank(f["information"]))
    return rows.sort_values(["as_of", "_rank"], kind="stable").drop(columns="_rank").reset_index(drop=True)


def institution_points(inputs: ReportInputs, uid: str, year: int) -> pd.DataFrame:
    """The institutions' pre-year outlooks and mid-year revisions of ``uid`` for ``year`` (USD bn),
    one row per publication: from institutional_comparison.csv (past years) and
    institutional_outlook.csv (the target year)."""
    frames = []
    for table in (inputs.comparison, inputs.outlook):
        if table is None or table.empty:
            continue
        rows = table[
            (table["unique_id"].astype(str) == uid)
            & (table["target_year"].astype(int) == year)
            & table["kind"].isin([PRE_YEAR, MID_YEAR])
        ]
        if rows.empty:
            continue
        level = rows["projected_level_usd_bn"] if "projected_level_usd_bn" in rows.columns else rows["projected_usd_bn"]
        frames.append(
            pd.DataFrame(
                {
                    "institution": rows["institution"].astype(str).to_numpy(),
                    "kind": rows["kind"].astype(str).to_numpy(),
                    "published": pd.to_datetime(rows["published"], errors="coerce").to_numpy(),
                    "usd_bn": pd.to_numeric(level, errors="coerce").to_numpy(),
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=["institution", "kind", "published", "usd_bn"])
    out = pd.concat(frames, ignore_index=True).dropna(subset=["published", "usd_bn"])
    return (
        out.drop_duplicates(["institution", "kind", "published"])
        .sort_values(["published", "institution"])
        .reset_index(drop=True)
    )


def _draw_tracking_path(ax: Any, path: pd.DataFrame, held: pd.DatetimeIndex, model: str, year: int) -> Any:
    """The tracked forecast and its 80% range, each held until the next information date, the
    latest figure with its range, and a dot per information date; returns the latest row."""
    x = pd.DatetimeIndex(path["as_of"])
    ax.fill_between(
        held,
        [*path["lo_80"], path["lo_80"].iloc[-1]],
        [*path["hi_80"], path["hi_80"].iloc[-1]],
        color=COLORS["band80"],
        lw=0,
        alpha=0.8,
        step="post",
        label=f"80% range ({model})",
    )
    ax.step(
        held,
        [*path["forecast_usd_bn"], path["forecast_usd_bn"].iloc[-1]],
        where="post",
        color=COLORS["forecast"],
        lw=1.4,
        label=f"forecast of the {year} total ({model}, in-year tracking)",
    )
    last = path.iloc[-1]
    ax.errorbar(
        [x[-1]],
        [last["forecast_usd_bn"]],
        yerr=[[last["forecast_usd_bn"] - last["lo_80"]], [last["hi_80"] - last["forecast_usd_bn"]]],
        fmt="none",
        ecolor=COLORS["forecast"],
        elinewidth=1.2,
        capsize=4,
        zorder=3,
    )
    ax.annotate(
        f"{fmt_bn(last['forecast_usd_bn'])} ({fmt_range(last['lo_80'], last['hi_80'])})",
        (x[-1], last["hi_80"]),
        textcoords="offset points",
        xytext=(-4, 4),
        ha="right",
        fontsize=7,
        color=COLORS["forecast"],
    )
    for info, g in path.groupby("information", sort=False):
        ax.scatter(
            pd.DatetimeIndex(g["as_of"]),
            g["forecast_usd_bn"],
            s=14,
            zorder=3,
            color=INFORMATION_COLORS.get(str(info), "#333333"),
            label=INFORMATION_LABELS.get(str(info), str(info)),
        )
    return last


def _draw_institution_points(ax: Any, points: pd.DataFrame) -> None:
    """The institutions' figures of the year, by the date they were published."""
    colors = institution_colors(points["institution"]) if not points.empty else {}
    for r in points.itertuples(index=False):
        marker = "D" if r.kind == PRE_YEAR else "^"
        ax.scatter(
            [r.published],
            [r.usd_bn],
            marker=marker,
            s=40,
            color=colors[r.institution],
            edgecolor="black",
            lw=0.5,
            zorder=4,
            label=f"{r.institution} {'pre-year' if r.kind == PRE_YEAR else 'mid-year'}",
        )


def _tracking_chart(inputs: ReportInputs, uid: str, year: int, label: str) -> str | None:
    path = tracking_path(inputs.tracking, uid, year)
    if path.empty:
        return None
    points = institution_points(inputs, uid, year)
    fig = _figure(12.0, 3.6)
    ax = fig.subplots()
    x = pd.DatetimeIndex(path["as_of"])
    model = str(path["model"].iloc[0])
    # each figure holds until the next information date; the last one to the end of the axis, so that
    # a path of one date (early in the year) still shows its 80% range, not a lone dot
    right = max(pd.Timestamp(year, 12, 31), x.max()) + pd.Timedelta(days=10)
    held = x.append(pd.DatetimeIndex([right]))
    last = _draw_tracking_path(ax, path, held, model, year)
    actual = pd.to_numeric(path["actual_usd_bn"], errors="coerce").dropna()
    if not actual.empty:
        ax.axhline(float(actual.iloc[-1]), color=COLORS["model"], lw=1.0, ls="--", label=f"actual {year}")
    _draw_institution_points(ax, points)
    from matplotlib.dates import DateFormatter, MonthLocator

    # the whole year on the axis (from the first pre-year outlook), so the path reads "through the year"
    first = min([pd.Timestamp(year, 1, 1), *([points["published"].min()] if not points.empty else []), x.min()])
    ax.set_xlim(first - pd.Timedelta(days=10), right)
    ax.xaxis.set_major_locator(MonthLocator(bymonth=(1, 3, 5, 7, 9, 11)))
    ax.xaxis.set_major_formatter(DateFormatter("%b %Y"))
    ax.set_title(
        f"{label}: the {year} annual total as information arrived ({model}'s in-year tracking, 80% range)",
        fontsize=10,
        loc="left",
    )
    ax.set_ylabel("USD bn / year", fontsize=8)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))  # one entry per institution and kind
    _finish_axes(fig, ax, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.legend(unique.values(), unique.keys(), fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _png(
        fig,
        f"{label}: forecast path of the {year} annual total through the year ({model}, {len(path)} "
        f"information date{'' if len(path) == 1 else 's'}) with its 80% range, latest "
        f"{fmt_bn(last['forecast_usd_bn'])} bn ({fmt_range(last['lo_80'], last['hi_80'])}), "
        f"{len(points)} institutional figure{'' if len(points) == 1 else 's'}"
        + (f" and the actual {fmt_bn(actual.iloc[-1])} bn" if not actual.empty else ""),
    )


def tracking_vs_headline(inputs: ReportInputs, uid: str, year: int) -> str:
    """Why the latest tracked total of ``uid`` for ``year`` differs from the headline: the headline
    is the champion's forecast, the tracking one model's in-year tracking ('' without both)."""
    path = tracking_path(inputs.tracking, uid, year)
    annual = inputs.annual[(inputs.annual["unique_id"].astype(str) == uid) & (inputs.annual["year"] == year)]
    champion = _champion_rows(inputs, annual)
    if path.empty or champion.empty:
        return ""
    last, head = path.iloc[-1], champion.iloc[0]
    headline, tracked = float(head["forecast"]) / BN, float(last["forecast_usd_bn"])
    model, champ = str(last["model"]), str(head["model"])
    base = _reconciled_base(_fit_of(inputs).get((uid, champ)))
    champ = f"{base}, reconciled" if base else champ
    gap = tracked - headline
    inside = (
        float(last["lo_80"]) <= headline <= float(last["hi_80"])
        and float(head["lo_80"]) / BN <= tracked <= float(head["hi_80"]) / BN
    )
    return (
        f"Why the tracked {fmt_bn(tracked)} bn (as of {pd.Timestamp(last['as_of']):%Y-%m-%d}) is not the "
        f"headline's {fmt_bn(headline)} bn: the headline is the champion's forecast ({champ}, chosen in the "
        f"backtest, fitted on every month of the data); the tracking is {model}'s in-year tracking (the months of "
        f"{year} already published plus {model}'s forecast of the rest, re-made after each month's figure and "
        f"flash with what was public that day), one model for every year so that its errors by information "
        f"date compare. Difference {gap:+,.1f} bn ({100 * gap / headline:+.1f}%)"
        + (", inside both 80% ranges." if inside else ".")
    )


def _nowcast_chart(nowcast: pd.DataFrame, uid: str, label: str) -> str | None:
    rows = nowcast[nowcast["unique_id"].astype(str) == uid]
    if rows.empty:
        return None
    months = sorted(pd.DatetimeIndex(rows["ds"]).unique())[-NOWCAST_CHART_MONTHS:]
    rows = rows[rows["ds"].isin(months)]
    fig = _figure(12.0, 3.4)
    ax = fig.subplots()
    d20 = rows[rows["information"] == "d20"].sort_values("ds")
    if not d20.empty:
        ax.fill_between(
            pd.DatetimeIndex(d20["ds"]),
            d20["lo_80"] / BN,
            d20["hi_80"] / BN,
            color=COLORS["band80"],
            alpha=0.6,
            lw=0,
            label="80% range (20-day flash)",
        )
    for info in ("none", "d10", "d20"):
        g = rows[rows["information"] == info].sort_values("ds")
        if g.empty:
            continue
        ax.plot(
            pd.DatetimeIndex(g["ds"]),
            g["nowcast"] / BN,
            color=INFORMATION_COLORS[info],
            lw=1.1,
            marker="o",
            ms=2.5,
            ls="--" if info == "none" else "-",
            label=INFORMATION_LABELS[info],
        )
    actual = rows.drop_duplicates("ds").sort_values("ds").dropna(subset=["actual"])
    if not actual.empty:
        ax.plot(pd.DatetimeIndex(actual["ds"]), actual["actual"] / BN, color=COLORS["model"], lw=1.6, label="actual")
    ax.set_title(f"{label}: nowcast of the month, the last {len(months)} months", fontsize=10, loc="left")
    ax.set_ylabel("USD bn / month", fontsize=8)
    _finish_axes(fig, ax, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(
        fig,
        f"{label}: monthly nowcasts {months[0]:%Y-%m} to {months[-1]:%Y-%m}, model only against the "
        "10-day and 20-day flash, and the actual",
    )


def tracking_errors(tracking: pd.DataFrame, uid: str = "total") -> pd.DataFrame:
    """MAPE (%) of the tracked annual total of ``uid`` by the calendar month of ``as_of`` and the
    information, over the target years with an actual: columns ``as_of_month, information,
    mape, n_years`` (``as_of`` in December of Y-1 counts as month 0)."""
    columns = ["as_of_month", "information", "mape", "n_years"]
    rows = tracking[(tracking["unique_id"].astype(str) == uid)].dropna(subset=["ape"]) if tracking is not None else None
    if rows is None or rows.empty:
        return pd.DataFrame(columns=columns)
    as_of = pd.DatetimeIndex(rows["as_of"])
    month = np.where(as_of.year < rows["target_year"].astype(int).to_numpy(), 0, as_of.month)
    rows = rows.assign(as_of_month=month)
    out = (
        rows.groupby(["as_of_month", "information"], sort=False)
        .agg(mape=("ape", "mean"), n_years=("target_year", "nunique"))
        .reset_index()
    )
    out = out.assign(_rank=_info_rank(out["information"])).sort_values(["as_of_month", "_rank"], kind="stable")
    return out.drop(columns="_rank").reset_index(drop=True)[columns]


def nowcast_errors(nowcast: pd.DataFrame, uid: str = "total") -> pd.DataFrame:
    """Per information: months scored, MAPE (%) over all of them and over the last
    :data:`NOWCAST_RECENT_YEARS` full years, the ratio to the model-only MAPE on the same months,
    and the share of actuals inside the 80% range. Columns ``information, months, mape,
    recent_mape, vs_none, coverage_80``; ``recent`` names the years in ``attrs``."""
    columns = ["information", "months", "mape", "recent_mape", "vs_none", "coverage_80"]
    rows = nowcast[nowcast["unique_id"].astype(str) == uid].dropna(subset=["ape"]) if nowcast is not None else None
    if rows is None or rows.empty:
        return pd.DataFrame(columns=columns)
    years = pd.DatetimeIndex(rows["ds"]).year
    full = sorted(y for y in set(years) if (years == y).sum() >= 12 * rows.loc[years == y, "information"].nunique())
    recent = full[-NOWCAST_RECENT_YEARS:] or sorted(set(years))[-NOWCAST_RECENT_YEARS:]
    rows = rows.assign(year=years)
    none = rows[rows["information"] == "none"].set_index("ds")["ape"]
    out = []
    for info in [i for i in INFORMATION_ORDER if i in set(rows["information"])]:
        g = rows[rows["information"] == info]
        same = g[g["ds"].isin(none.index)]
        ratio = (
            float(same["ape"].mean()) / float(none[same["ds"]].mean())
            if info != "none" and not same.empty and float(none[same["ds"]].mean()) > 0
            else float("nan")
        )
        inside = ((g["actual"] >= g["lo_80"]) & (g["actual"] <= g["hi_80"])).mean()
        out.append(
            [
                info,
                len(g),
                float(g["ape"].mean()),
                float(g.loc[g["year"].isin(recent), "ape"].mean()),
                ratio,
                float(inside),
            ]
        )
    table = pd.DataFrame(out, columns=columns)
    table.attrs["recent"] = (int(recent[0]), int(recent[-1]))
    return table


def _section_this_year(inputs: ReportInputs) -> str:
    names = _names(inputs)
    parts = [
        '<section id="this-year"><h2>This year</h2>',
        _note(
            "Where the year will end given the months already in (the tracked annual total: observed months "
            "plus the forecast of the rest, re-made after each month's figure and each flash), and what the "
            "current month is doing given the customs flash (days 1-10 on the 11th, days 1-20 on the 21st). "
            "Every figure uses only what was public on its as-of date."
        ),
    ]
    year = tracking_year(inputs)
    tracking = inputs.tracking
    if year is None:
        why = inputs.notes.get("tracking.csv") if tracking is None else "tracking.csv has no rows in this run"
        parts.append(
            _note(
                f"No tracking chart: {why or 'tracking.csv is missing'}. The in-year tracking of the "
                "annual total (tracking.csv) is published by the monthly and flash-nowcast flows on "
                "the embedded data (a user CSV carries no publication dates or flash)."
            )
        )
    else:
        drawn = 0
        # the year in progress, then the latest complete year: how the tracked total converged on the actual
        complete = sorted(
            {int(y) for y, a in zip(tracking["target_year"], tracking["actual_usd_bn"]) if _is_num(a) and int(y) < year}
        )
        for shown in [year, *complete[-1:]]:
            for uid in [u for u in TRACKED_SERIES if u in set(tracking["unique_id"].astype(str))]:
                chart = _tracking_chart(inputs, uid, shown, _label(uid, names))
                if chart is not None:
                    parts.append(f"<figure>{chart}</figure>")
                    drawn += 1
                    if shown == inputs.target_year and (why := tracking_vs_headline(inputs, uid, shown)):
                        parts.append(_note(why))
        if not drawn:
            parts.append(_note(f"tracking.csv has no rows for {year} of the tracked series"))
        else:
            parts.append(
                _note(
                    "Diamonds: the institutions' pre-year outlooks; triangles: their mid-year revisions, "
                    "at their publication date. Dashed line: the actual, once the year is complete."
                )
            )
    nowcast = inputs.nowcast
    if nowcast is None or nowcast.empty:
        why = inputs.notes.get("nowcast.csv") if nowcast is None else "nowcast.csv has no rows in this run"
        parts.append(
            _note(
                f"No nowcast chart: {why or 'nowcast.csv is missing'} (the nowcast needs the customs flash: "
                "the embedded indicators, or data.indicators_path with the flash-nowcast flow)."
            )
        )
    else:
        chart = _nowcast_chart(nowcast, "total", _label("total", names))
        if chart is not None:
            parts.append(f"<figure>{chart}</figure>")
    parts.append(_errors_tables(inputs, year))
    return "".join(parts) + "</section>"


def _errors_tables(inputs: ReportInputs, year: int | None) -> str:
    parts = ["<h3>Errors by information date</h3>"]
    month_names = ["Dec (Y-1)", *[f"{pd.Timestamp(2000, m, 1):%b}" for m in range(1, 13)]]
    track = tracking_errors(inputs.tracking) if inputs.tracking is not None else pd.DataFrame()
    if track.empty:
        parts.append(
            _note(
                "Tracked annual total: no target year with an actual in tracking.csv, so no error by "
                "information date yet."
            )
        )
    else:
        infos = [i for i in INFORMATION_ORDER if i in set(track["information"])]
        wide = track.pivot_table(index="as_of_month", columns="information", values="mape", aggfunc="first")
        years = track.groupby("as_of_month")["n_years"].max()
        rows = [
            [
                month_names[int(m)],
                str(int(years[m])),
                *[fmt_pct(wide.loc[m, i], 2) if i in wide.columns else "–" for i in infos],
            ]
            for m in wide.index
        ]
        parts.append(
            _table(
                ["As of (month)", "Years", *[f"MAPE {INFORMATION_LABELS[i]}" for i in infos]],
                rows,
                numeric=range(1, 2 + len(infos)),
                classes=["data", "compact"],
                caption="Total exports: mean absolute % error of the tracked annual total, by the month "
                "of the information date and the information used",
            )
        )
    now = nowcast_errors(inputs.nowcast) if inputs.nowcast is not None else pd.DataFrame()
    if now.empty:
        parts.append(_note("Nowcast of the month: no month with both a nowcast and an actual."))
    else:
        lo, hi = now.attrs["recent"]
        rows = [
            [
                INFORMATION_LABELS.get(r.information, r.information),
                str(int(r.months)),
                fmt_pct(r.mape, 2),
                fmt_pct(r.recent_mape, 2),
                f"{r.vs_none:.2f}x" if _is_num(r.vs_none) else "–",
                fmt_pct(100 * r.coverage_80, 0),
            ]
            for r in now.itertuples(index=False)
        ]
        parts.append(
            _table(
                ["Information", "Months", "MAPE (all)", f"MAPE {lo}–{hi}", "vs model only", "80% cover"],
                rows,
                numeric=range(1, 6),
                classes=["data", "compact"],
                caption="Total exports: nowcast of the month by information (vs model only: MAPE "
                "over the same months as the model-only forecast)",
            )
        )
    return "".join(parts)


CSS = """
*{box-sizing:border-box}
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;color:#1d2329;margin:0;background:#fafafa;font-size:14px;line-height:1.4}
main{max-width:1240px;margin:0 auto;padding:16px 20px 48px;background:#fff}
h1{font-size:24px;margin:8px 0}h2{font-size:19px;border-bottom:2px solid #1f3b57;padding-bottom:3px;margin-top:30px}
h3{font-size:15px;margin:18px 0 6px}
nav{font-size:13px;margin:6px 0 12px}nav a{margin-right:14px;color:#1f3b57}
.facts span{margin-right:16px;font-size:12px;color:#4b5560}.lead,.note{color:#4b5560;font-size:12.5px}
.headline{font-size:18px;background:#f1f5f9;border-left:4px solid #c4432b;padding:8px 12px}
.headline .range{display:block;font-size:13.5px;color:#4b5560}.headline .model{font-size:12px;color:#6b7580}
table{border-collapse:collapse;width:100%;margin:6px 0 12px;table-layout:fixed}
th,td{border-bottom:1px solid #dde3e8;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere;word-break:normal}
th{background:#eef2f6;font-size:12.5px}td{font-size:13px}.compact td{font-size:12px}.num{text-align:right;font-variant-numeric:tabular-nums}
.best{background:#d8f0dc;font-weight:bold;padding:0 3px}
caption{text-align:left;font-size:12px;color:#4b5560}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:8px}
figure{margin:0}img.chart{max-width:100%;height:auto;display:block}
details summary{cursor:pointer;margin:8px 0;color:#1f3b57}
tr.sub td{background:#f5f7f9;font-style:italic;font-size:12px;color:#4b5560}
"""


def _section_changes(inputs: ReportInputs) -> str:
    """The report's opening: what changed since the previous production run, in words (run.json's
    ``changes``), with the new and revised months of changes.csv."""
    parts = ['<section id="changes"><h2>What changed</h2>']
    record = inputs.run.changes if inputs.run is not None else None
    if not record:
        parts.append(_note("run.json records no changes (a run made before the forecast archive existed)."))
        return "".join(parts) + "</section>"
    vintage = f" Data vintage {record.get('vintage')}" + (
        f", compared with vintage {record['previous_vintage']} of the previous production run."
        if record.get("previous_vintage")
        else "."
    )
    parts.append(f'<p class="lead"><b>{_e(str(record.get("sentence", "")).capitalize())}.</b>{_e(vintage)}</p>')
    changes = inputs.changes
    if changes is not None and not changes.empty:
        counts = ", ".join(f"{int((changes['change'] == k).sum())} {k}" for k in ("new", "revised", "forecast"))
        parts.append(_note(f"changes.csv: {counts} rows (values in USD)."))
        shown = changes.loc[changes["change"] != "forecast"].head(12)
        if not shown.empty:
            parts.append(
                _table(
                    ["series", "month", "change", "old (bn)", "new (bn)", "note"],
                    [
                        [
                            str(r.unique_id),
                            str(r.ds)[:7],
                            str(r.change),
                            fmt_bn(_bn(r.old), 2),
                            fmt_bn(_bn(r.new), 2),
                            "" if pd.isna(r.note) else str(r.note),
                        ]
                        for r in shown.itertuples(index=False)
                    ],
                    numeric=(3, 4),
                )
            )
    return "".join(parts) + "</section>"


def _bn(value: Any) -> Any:
    return value / BN if _is_num(value) else value


def _section_track_record(inputs: ReportInputs) -> str:
    """The live track record: every archived forecast scored as actuals arrived (flows/archive.py)."""
    parts = [
        '<section id="track-record"><h2>Track record</h2>',
        _note(
            "Every production run's published champion forecasts are archived with their data vintage and "
            "never rewritten (forecast_archive.csv); each is scored once its actual is published: the month, "
            "or the calendar year once its 12 months are in. APE in %; coverage = share of actuals inside "
            "the 80% / 95% range."
        ),
    ]
    archive, history = inputs.archive, inputs.history
    if archive is None or archive.empty:
        parts.append(_note("The archive is empty: no production run has published yet."))
        return "".join(parts) + "</section>"
    scores = (
        score_archive(archive.assign(ds=archive["ds"].astype(str)), history) if history is not None else pd.DataFrame()
    )
    summary = score_summary(scores) if not scores.empty else pd.DataFrame()
    runs = archive.groupby(["published_at", "run_id", "vintage"]).size().reset_index(name="rows")
    parts.append(
        _note(
            f"{len(runs)} archived run(s) over {archive['vintage'].nunique()} vintage(s), {len(archive)} forecast rows."
        )
    )
    if summary.empty:
        parts.append(_note("No archived forecast has an actual yet."))
    else:
        parts.append(
            _table(
                ["vintage", "run", "published", "kind", "scored", "MAPE %", "80% coverage", "95% coverage"],
                [
                    [
                        str(r.vintage),
                        str(r.run_id)[:8],
                        str(r.published_at)[:10],
                        str(r.kind),
                        str(int(r.n)),
                        fmt_pct(r.mape, 2),
                        fmt_pct(r.coverage_80 * 100, 0),
                        fmt_pct(r.coverage_95 * 100, 0),
                    ]
                    for r in summary.itertuples(index=False)
                ],
                numeric=(4, 5, 6, 7),
            )
        )
    chart = _archive_chart(archive, history, "total")
    if chart is not None:
        parts.append(f"<figure>{chart}</figure>")
    return "".join(parts) + "</section>"


def _archive_chart(archive: pd.DataFrame, history: pd.DataFrame | None, uid: str) -> str | None:
    """The total's monthly forecast of each archived run beside the actuals."""
    rows = archive.loc[(archive["unique_id"] == uid) & (archive["kind"] == "month")]
    if rows.empty:
        return None
    fig = _figure(12.0, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    first = pd.to_datetime(rows["ds"]).min()
    if history is not None:
        actual = history.loc[history["unique_id"] == uid].assign(ds=lambda f: pd.to_datetime(f["ds"]))
        actual = actual.loc[actual["ds"] >= first - pd.DateOffset(months=12)]
        ax.plot(actual["ds"], actual["y"] / BN, color=COLORS["history"], lw=1.6, label="actual")
    for (published, vintage), run in rows.groupby(["published_at", "vintage"], sort=True):
        ax.plot(
            pd.to_datetime(run["ds"]),
            run["forecast"] / BN,
            lw=1.0,
            marker=".",
            label=f"{vintage} ({str(published)[:10]})",
        )
    ax.set_ylabel("USD bn")
    ax.set_title(f"{uid}: archived monthly forecasts by vintage vs the actuals")
    _finish_axes(fig, ax, loc="upper left")
    return _png(fig, f"{uid}: archived forecasts by vintage and the actuals")


#: the report's sections in their order on the page
SECTIONS = (
    _section_changes,
    _section_headline,
    _section_this_year,
    _section_track_record,
    _section_fans,
    _section_institutional,
    _section_chip_cycle,
    _section_backtest,
    _section_champions,
    _section_data,
)
#: the sections that draw charts, the costliest first (seconds on the embedded data: 8.3, 2.8, 1.2,
#: 0.5, 0.3); with n_jobs > 1 they are drawn in worker processes, the others here
_DRAWN = (_section_fans, _section_this_year, _section_institutional, _section_chip_cycle, _section_track_record)


def render_sections(inputs: ReportInputs, n_jobs: int = 1, cache: SectionCache | None = None) -> list[str]:
    """The HTML of every section, in page order. ``n_jobs`` > 1: the sections with charts are
    drawn at once on that many loky workers (the fitting stages' pool, idle by then): the same
    bytes, as matplotlib draws the same figure the same way in any process (decision 0187).
    ``cache``: a drawn section whose recorded reads have the same values is taken from it, the
    others are drawn and kept there (``flows/report_sections.py``)."""
    html: dict[Any, str] = {}
    if cache is not None:
        html = {s: text for s in _DRAWN if (text := cache.get(s.__name__, inputs)) is not None}
    missing = [s for s in _DRAWN if s not in html]
    if n_jobs > 1 and len(missing) > 1:
        from joblib import Parallel, delayed

        drawn = Parallel(n_jobs=n_jobs, backend="loky")(delayed(record)(s, inputs) for s in missing)
    else:
        drawn = [record(s, inputs) for s in missing]
    for section, (text, reads) in zip(missing, drawn):
        html[section] = text
        if cache is not None:
            cache.put(section.__name__, inputs, text, reads)
    return [html[section] if section in html else section(inputs) for section in SECTIONS]


def render_report(inputs: ReportInputs, n_jobs: int = 1, cache: SectionCache | None = None) -> str:
    """The report as one HTML string (``n_jobs``, ``cache``: :func:`render_sections`)."""
    sections = render_sections(inputs, n_jobs, cache)
    nav = (
        '<nav><a href="#changes">What changed</a><a href="#headline">Headline</a><a href="#this-year">This year</a>'
        '<a href="#track-record">Track record</a><a href="#fans">Fan charts</a><a href="#institutions">Institutions</a>'
        '<a href="#chip-cycle">Chip cycle</a><a href="#backtest">Backtest</a><a href="#champions">Champions</a>'
        '<a href="#data">Data</a></nav>'
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>exportcast report {inputs.target_year}</title><style>{CSS}</style></head>"
        f"<body><main>{_section_header(inputs)}{nav}{''.join(sections)}</main></body></html>\n"
    )


def write_results_report(
    results: Results,
    out_path: Path,
    *,
    data_dir: Path | None = None,
    n_jobs: int = 1,
    cache_dir: Path | None = None,
) -> Path:
    """Build the report of a run from its assembled results (the pipeline's way); ``data_dir``:
    the embedded dataset (series names, provenance); ``n_jobs``: worker processes drawing the
    charts; ``cache_dir``: the drawn sections kept by content (None: drawn every time). Written
    atomically to ``out_path``."""
    from flows.publish import write_atomic

    cache = SectionCache(Path(cache_dir), code_version()) if cache_dir is not None else None
    text = render_report(inputs_from_results(results, data_dir), n_jobs, cache)
    return write_atomic(Path(out_path), text.encode("utf-8"))


def write_report(outputs_dir: Path, *, data_dir: Path | None = None, out_path: Path | None = None) -> Path:
    """Rebuild ``report.html`` from the published files in ``outputs_dir`` and the data the run
    used (``data_dir``: the embedded dataset, default the repository's ``data/``); written
    atomically to ``out_path`` (default ``outputs_dir/report.html``). Returns the path written."""
    from flows.publish import write_atomic

    inputs = load_inputs(Path(outputs_dir), data_dir)
    text = render_report(inputs)
    target = Path(out_path) if out_path is not None else Path(outputs_dir) / REPORT_NAME
    return write_atomic(target, text.encode("utf-8"))
