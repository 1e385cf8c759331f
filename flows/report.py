"""The analysts' report: one self-contained ``report.html`` built from a run's published files.

    write_report(Path("outputs"))          # -> outputs/report.html

Inputs: the published CSVs and ``run.json`` in ``outputs_dir`` (``forecast_monthly.csv`` and
``forecast_annual.csv`` are required; the backtest, champion, fit and institutional files are
optional, and a missing one is named in a note where its section would be) and the embedded
dataset in ``data_dir`` (history for the charts and the previous-year actual, ``series.csv``
for names, sources and freshness; missing: the report says so and goes on).

The file opens offline: the stylesheet is inline, charts are matplotlib PNGs embedded as
base64 data URIs, and there is no script, font or link to anything outside the file. Every
text that comes from data is escaped with ``html.escape``. Tables wrap their cells so they fit
1280 px without horizontal scrolling. The file is written atomically (temp file + os.replace).
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["write_report", "render_report", "load_inputs", "ReportInputs", "REPORT_NAME", "REQUIRED_COLUMNS"]

REPORT_NAME = "report.html"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO / "data"
HISTORY_START = pd.Timestamp("2018-01-01")
BN = 1e9
CHAMPION = "champion"
PRE_YEAR = "pre-year outlook"

#: columns each input must have (a file without them is reported by name)
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "forecast_monthly.csv": ("unique_id", "ds", "model", "forecast", "lo_80", "hi_80", "lo_95", "hi_95"),
    "forecast_annual.csv": ("unique_id", "year", "model", "forecast", "lo_80", "hi_80", "lo_95", "hi_95"),
    "backtest_metrics.csv": ("unique_id", "model", "cutoff", "mase"),
    "champions.csv": ("unique_id", "champion", "reason"),
    "model_fits.csv": ("unique_id", "model", "model_used", "status", "reason"),
    "institutional_comparison.csv": ("target_year", "unique_id", "institution", "kind", "model", "projected_usd_bn",
                                     "model_usd_bn", "actual_usd_bn", "institution_ape", "model_ape"),
    "institutional_summary.csv": ("unique_id", "institution", "n_years", "institution_mape", "model", "model_mape",
                                  "model_coverage_80", "institution_bias_pct", "model_bias_pct"),
    "institutional_outlook.csv": ("target_year", "unique_id", "institution", "kind", "projected_usd_bn",
                                  "projected_growth_pct", "model_usd_bn"),
}
REQUIRED_FILES = ("forecast_monthly.csv", "forecast_annual.csv")

COLORS = {"history": "#1f3b57", "forecast": "#c4432b", "band80": "#e8a393", "band95": "#f6d9d1", "model": "#111111"}
INSTITUTION_COLORS = ("#1b7f79", "#7b4fa0", "#d08a1c", "#3b6fb6", "#8c564b", "#5a8f29", "#b0307a", "#707070")


class ReportError(ValueError):
    """An input of the report is unreadable or lacks columns; the message names the file."""


# =========================================================================== inputs
@dataclass
class ReportInputs:
    outputs_dir: Path
    monthly: pd.DataFrame
    annual: pd.DataFrame
    run: dict[str, Any]
    metrics: pd.DataFrame | None = None
    champions: pd.DataFrame | None = None
    fits: pd.DataFrame | None = None
    comparison: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None
    outlook: pd.DataFrame | None = None
    history: pd.DataFrame | None = None
    meta: pd.DataFrame | None = None
    data_dir: Path | None = None
    provenance: Path | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def target_year(self) -> int:
        value = self.run.get("target_year")
        if value is None and isinstance(self.run.get("settings"), dict):
            value = self.run["settings"].get("target_year")
        if value is not None:
            return int(value)
        return int(self.annual["year"].max())


def _read_csv(path: Path, name: str) -> pd.DataFrame:
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ReportError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: not a readable CSV ({exc})") from None
    missing = [c for c in REQUIRED_COLUMNS.get(name, ()) if c not in table.columns]
    if missing:
        raise ReportError(f"{path}: missing column(s) {', '.join(missing)}; has {', '.join(map(str, table.columns))}")
    return table


def load_inputs(outputs_dir: Path, data_dir: Path | None = None) -> ReportInputs:
    """Read the published files and the dataset; a missing optional file becomes a note."""
    outputs_dir = Path(outputs_dir)
    if not outputs_dir.is_dir():
        raise FileNotFoundError(f"outputs folder {outputs_dir} does not exist: run the pipeline (`exportcast run`) first")
    for name in REQUIRED_FILES:
        if not (outputs_dir / name).is_file():
            raise FileNotFoundError(f"{outputs_dir / name} not found: the report needs the published forecasts")
    tables: dict[str, pd.DataFrame | None] = {}
    notes: dict[str, str] = {}
    for name in REQUIRED_COLUMNS:
        path = outputs_dir / name
        if path.is_file():
            tables[name] = _read_csv(path, name)
        else:
            tables[name] = None
            notes[name] = f"{name} was not found in {outputs_dir}"
    monthly = tables["forecast_monthly.csv"]
    monthly["ds"] = pd.to_datetime(monthly["ds"])
    run: dict[str, Any] = {}
    run_path = outputs_dir / "run.json"
    if run_path.is_file():
        try:
            run = json.loads(run_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ReportError(f"{run_path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        if not isinstance(run, dict):
            raise ReportError(f"{run_path}: expected a JSON object; got {type(run).__name__}")
    else:
        notes["run.json"] = f"run.json was not found in {outputs_dir}"

    inputs = ReportInputs(outputs_dir=outputs_dir, monthly=monthly, annual=tables["forecast_annual.csv"], run=run,
                          metrics=tables["backtest_metrics.csv"], champions=tables["champions.csv"],
                          fits=tables["model_fits.csv"], comparison=tables["institutional_comparison.csv"],
                          summary=tables["institutional_summary.csv"], outlook=tables["institutional_outlook.csv"],
                          notes=notes)
    _load_dataset(inputs, Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR)
    return inputs


def _load_dataset(inputs: ReportInputs, data_dir: Path) -> None:
    inputs.data_dir = data_dir
    for candidate in (data_dir / "PROVENANCE.md", data_dir / "README.md", data_dir.parent.parent / "shared" / "data" / "raw" / "PROVENANCE.md"):
        if candidate.is_file():
            inputs.provenance = candidate
            break
    try:
        from features.readers import read_embedded, read_series_metadata

        inputs.history = read_embedded(data_dir)
        inputs.meta = read_series_metadata(data_dir)
    except Exception as exc:  # noqa: BLE001 - any failure of the dataset becomes a visible note, not a crash
        inputs.notes["dataset"] = f"the dataset in {data_dir} could not be read ({type(exc).__name__}: {exc}); charts show forecasts only"


# =========================================================================== helpers
def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _is_num(value: Any) -> bool:
    try:
        return value is not None and not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def fmt_bn(value: Any, digits: int = 1) -> str:
    """A figure already in USD bn, with thousands separators: 701.25 -> '701.3'; missing -> '–'."""
    return f"{float(value):,.{digits}f}" if _is_num(value) else "–"


def fmt_pct(value: Any, digits: int = 1, signed: bool = False) -> str:
    if not _is_num(value):
        return "–"
    return f"{float(value):+.{digits}f}%" if signed else f"{float(value):.{digits}f}%"


def fmt_range(lo: Any, hi: Any) -> str:
    return f"{fmt_bn(lo)}–{fmt_bn(hi)}" if _is_num(lo) and _is_num(hi) else "–"


def _truthy(series: pd.Series) -> pd.Series:
    return series.map(lambda v: v is True or str(v).strip().lower() in {"true", "1", "yes"})


def _names(inputs: ReportInputs) -> dict[str, str]:
    names: dict[str, str] = {}
    if inputs.meta is not None and "name_en" in inputs.meta.columns:
        names = {str(u): str(n) for u, n in zip(inputs.meta["unique_id"], inputs.meta["name_en"]) if isinstance(n, str) and n}
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


def _champion_of(inputs: ReportInputs) -> dict[str, str]:
    """Series -> champion model name, from champions.csv or the is_champion flags."""
    out: dict[str, str] = {}
    for table in (inputs.annual, inputs.monthly):
        if "is_champion" in table.columns:
            flagged = table[_truthy(table["is_champion"]) & (table["model"] != CHAMPION)]
            out.update({str(u): str(m) for u, m in zip(flagged["unique_id"], flagged["model"])})
    if inputs.champions is not None:
        out.update({str(u): str(c) for u, c in zip(inputs.champions["unique_id"], inputs.champions["champion"])})
    return out


def _champion_rows(table: pd.DataFrame, champions: dict[str, str]) -> pd.DataFrame:
    """The champion's rows of a forecast table: the 'champion' pseudo-model when published, else
    the rows flagged is_champion, else the model named in champions.csv."""
    if (table["model"] == CHAMPION).any():
        return table[table["model"] == CHAMPION]
    if "is_champion" in table.columns and _truthy(table["is_champion"]).any():
        return table[_truthy(table["is_champion"])]
    keep = [champions.get(str(u)) == m for u, m in zip(table["unique_id"], table["model"])]
    return table[keep]


def _history_series(inputs: ReportInputs, uid: str) -> pd.Series:
    if inputs.history is None:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([]))
    h = inputs.history[inputs.history["unique_id"] == uid]
    return pd.Series(h["y"].to_numpy(dtype=float), index=pd.DatetimeIndex(h["ds"])).sort_index()


def _complete_year_total(inputs: ReportInputs, uid: str, year: int) -> tuple[float | None, int]:
    """(sum in USD, observed months) of a calendar year in the history; sum only when all 12 are observed."""
    y = _history_series(inputs, uid).dropna()
    months = y[(y.index.year == year)]
    n = int(months.index.month.nunique())
    return (float(months.sum()) if n == 12 else None), n


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure drawn without pyplot: no global backend state, nothing to close."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _png(fig: Any, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    width, height = (int(round(v)) for v in fig.get_size_inches() * 100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<img class="chart" alt="{_e(alt)}" width="{width}" height="{height}" '
            f'src="data:image/png;base64,{data}">')


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, classes: Sequence[str] | None = None,
           caption: str | None = None, numeric: Iterable[int] = (), raw: bool = False, widths: Sequence[str] | None = None) -> str:
    """An HTML table. Cells are escaped unless ``raw`` (then the caller escaped them)."""
    numeric = set(numeric)
    cell = (lambda v: v) if raw else _e
    parts = ['<table' + (f' class="{" ".join(classes)}"' if classes else '') + '>']
    if caption:
        parts.append(f"<caption>{_e(caption)}</caption>")
    if widths:
        parts.append("<colgroup>" + "".join(f'<col style="width:{w}">' for w in widths) + "</colgroup>")
    parts.append("<thead><tr>" + "".join(f'<th{" class=num" if i in numeric else ""}>{_e(h)}</th>'
                                         for i, h in enumerate(header)) + "</tr></thead><tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{cell(v)}</td>'
                                      for i, v in enumerate(row)) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


# =========================================================================== sections
def _section_header(inputs: ReportInputs) -> str:
    run = inputs.run
    facts = []
    for key, label in (("run_id", "run"), ("started_at", "started"), ("finished_at", "finished"), ("created_at", "created"),
                       ("git_commit", "code"), ("data_hash", "data"), ("data_source", "data source"),
                       ("data_through", "data through"), ("status", "status")):
        value = run.get(key)
        if value not in (None, "") and not isinstance(value, (dict, list)):
            facts.append(f"<span><b>{_e(label)}</b> {_e(value)}</span>")
    return (f"<header><h1>Korea's exports: {inputs.target_year} forecast report</h1>"
            f'<p class="facts">{" ".join(facts) if facts else "run facts unavailable (no run.json)"}</p>'
            "<p class=\"lead\">USD bn, customs basis, not seasonally adjusted. The champion model of each series is "
            "the one with the lowest mean MASE in the rolling backtest; ranges are the 80% and 95% prediction "
            "intervals of the calendar-year total from joint sample paths.</p></header>")


def _headline_rows(inputs: ReportInputs) -> pd.DataFrame:
    year = inputs.target_year
    champions = _champion_of(inputs)
    annual = inputs.annual[inputs.annual["year"] == year]
    rows = _champion_rows(annual, champions)
    rows = rows[rows["unique_id"].map(lambda u: u == "total" or str(u).startswith("item:"))]
    out = []
    for r in rows.itertuples(index=False):
        uid = str(r.unique_id)
        prior, n_prior = _complete_year_total(inputs, uid, year - 1)
        change = 100.0 * (r.forecast - prior) / prior if prior and _is_num(r.forecast) else float("nan")
        out.append({"unique_id": uid, "model": champions.get(uid, r.model if r.model != CHAMPION else ""),
                    "forecast": r.forecast / BN, "lo_80": r.lo_80 / BN, "hi_80": r.hi_80 / BN, "lo_95": r.lo_95 / BN,
                    "hi_95": r.hi_95 / BN, "prior": prior / BN if prior else float("nan"), "n_prior": n_prior,
                    "change_pct": change})
    table = pd.DataFrame(out, columns=["unique_id", "model", "forecast", "lo_80", "hi_80", "lo_95", "hi_95", "prior",
                                       "n_prior", "change_pct"])
    order = {u: i for i, u in enumerate(["total"] + list(table.sort_values("forecast", ascending=False)["unique_id"]))}
    return table.sort_values("unique_id", key=lambda s: s.map(order)).drop_duplicates("unique_id").reset_index(drop=True)


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
        t = total.iloc[0]
        change = (f", {fmt_pct(t['change_pct'], signed=True)} on {year - 1} ({fmt_bn(t['prior'])} bn)"
                  if _is_num(t["change_pct"]) else "")
        parts.append(f'<p class="headline">Total exports {year}: <b>{fmt_bn(t["forecast"])} bn USD</b>{_e(change)} '
                     f'<span class="range">80% range {fmt_range(t["lo_80"], t["hi_80"])}, '
                     f'95% range {fmt_range(t["lo_95"], t["hi_95"])}</span> '
                     f'<span class="model">({_e(t["model"])})</span></p>')
    # a champion that fell back (a short series) is shown with the model that really forecast
    used = {}
    if inputs.fits is not None and {"unique_id", "model", "model_used"} <= set(inputs.fits.columns):
        used = {(str(u), str(m)): str(v) for u, m, v in zip(inputs.fits["unique_id"], inputs.fits["model"],
                                                         inputs.fits["model_used"]) if isinstance(v, str) and v}
    rows = []
    for r in table.itertuples(index=False):
        prior = fmt_bn(r.prior) if _is_num(r.prior) else f"incomplete ({r.n_prior}/12 months)"
        model_used = used.get((str(r.unique_id), str(r.model)), str(r.model))
        champion = str(r.model) if model_used == str(r.model) else f"{r.model} → {model_used}"
        rows.append([_label(r.unique_id, names), champion, fmt_bn(r.forecast), fmt_range(r.lo_80, r.hi_80),
                     fmt_range(r.lo_95, r.hi_95), prior, fmt_pct(r.change_pct, signed=True)])
    parts.append(_table(["Series", "Champion", f"{year} forecast", "80% range", "95% range", f"{year - 1} actual", "Change"],
                        rows, numeric=(2, 3, 4, 5, 6), classes=["data"], widths=["24%", "12%", "11%", "15%", "15%", "13%", "10%"]))
    parts.append(_outlook_block(inputs))
    return "".join(parts) + "</section>"


def _outlook_block(inputs: ReportInputs) -> str:
    year = inputs.target_year
    names = _names(inputs)
    if inputs.outlook is None:
        return _note(f"institutional_outlook.csv was not found in {inputs.outputs_dir}: the institutions' {year} "
                     "projections are not shown beside the model")
    o = inputs.outlook[inputs.outlook["target_year"] == year]
    if o.empty:
        return _note(f"no institutional projection for {year}")
    rows = []
    for r in o.itertuples(index=False):
        level = getattr(r, "projected_level_usd_bn", float("nan"))
        printed = fmt_bn(r.projected_usd_bn) if _is_num(r.projected_usd_bn) else "–"
        growth = fmt_pct(r.projected_growth_pct, signed=True)
        model_rng = fmt_range(getattr(r, "model_lo_80", None), getattr(r, "model_hi_80", None))
        rows.append([_label(str(r.unique_id), names), r.institution, r.kind, printed, growth,
                     fmt_bn(level) + ("" if _is_num(r.projected_usd_bn) or not _is_num(level) else " *"),
                     fmt_bn(r.model_usd_bn), model_rng, fmt_pct(getattr(r, "model_growth_pct", None), signed=True)])
    return (f"<h3>Beside the institutions' {year} projections</h3>"
            + _table(["Series", "Institution", "Kind", "Level", "Growth", "Level compared", "Model", "Model 80%", "Model growth"],
                     rows, numeric=(3, 4, 5, 6, 7, 8), classes=["data"],
                     widths=["15%", "15%", "12%", "8%", "8%", "10%", "9%", "13%", "10%"])
            + _note("* growth-only projection: level = previous year's actual x (1 + growth). The model column uses "
                    "all data; the institutions published with data through October of the year before."))


def _fan_chart(inputs: ReportInputs, uid: str, label: str, fc: pd.DataFrame) -> str:
    fig = _figure(6.0, 2.7)
    ax = fig.subplots()
    hist = _history_series(inputs, uid)
    hist = hist[hist.index >= HISTORY_START]
    if not hist.empty:
        ax.plot(hist.index, hist.to_numpy() / BN, color=COLORS["history"], lw=1.2, label="actual")
    fc = fc.sort_values("ds")
    x = pd.DatetimeIndex(fc["ds"])
    ax.fill_between(x, fc["lo_95"] / BN, fc["hi_95"] / BN, color=COLORS["band95"], lw=0, label="95%")
    ax.fill_between(x, fc["lo_80"] / BN, fc["hi_80"] / BN, color=COLORS["band80"], lw=0, label="80%")
    ax.plot(x, fc["forecast"] / BN, color=COLORS["forecast"], lw=1.5, label="forecast")
    ax.set_title(label, fontsize=10, loc="left")
    ax.set_ylabel("USD bn / month", fontsize=8)
    _finish_axes(fig, ax, loc="upper left", ncol=4)
    return _png(fig, f"{label}: monthly history and forecast with 80% and 95% bands")


def _finish_axes(fig: Any, ax: Any, **legend: Any) -> None:
    """The report's chart style: small ticks, light grid, frameless legend, no top/right spines."""
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.25, lw=0.5)
    ax.legend(fontsize=7, frameon=False, **legend)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()


def _section_fans(inputs: ReportInputs) -> str:
    names = _names(inputs)
    champions = _champion_of(inputs)
    fc = _champion_rows(inputs.monthly, champions)
    ids = [u for u in _series_order(fc["unique_id"].astype(str)) if u == "total" or u.startswith("item:")]
    headline = _headline_rows(inputs)
    size = dict(zip(headline["unique_id"], headline["forecast"]))
    ids = ["total"] * ("total" in ids) + sorted((u for u in ids if u != "total"), key=lambda u: -float(size.get(u, 0) or 0))
    parts = ['<section id="fans"><h2>Fan charts</h2>', _note(f"History from {HISTORY_START:%Y}, champion forecast, "
                                                            "80% and 95% bands; USD bn per month.")]
    if "dataset" in inputs.notes:
        parts.append(_note(inputs.notes["dataset"]))
    parts.append('<div class="grid">')
    for uid in ids:
        parts.append(f"<figure>{_fan_chart(inputs, uid, _label(uid, names), fc[fc['unique_id'] == uid])}</figure>")
    parts.append("</div></section>")
    return "".join(parts)


def _ape_chart(comparison: pd.DataFrame, uid: str, label: str) -> str | None:
    rows = comparison[(comparison["unique_id"] == uid) & (comparison["kind"] == PRE_YEAR)]
    if "in_summary" in rows.columns:
        rows = rows[_truthy(rows["in_summary"])]
    if rows.empty:
        return None
    model_rows = rows[rows["model"] == CHAMPION].drop_duplicates("target_year").sort_values("target_year")
    inst = rows[rows["model"] == CHAMPION] if not model_rows.empty else rows.drop_duplicates(["target_year", "institution"])
    fig = _figure(11.0, 3.4)
    ax = fig.subplots()
    institutions = sorted(inst["institution"].astype(str).unique())
    offsets = np.linspace(-0.25, 0.25, len(institutions)) if len(institutions) > 1 else [0.0]
    for i, (name, off) in enumerate(zip(institutions, offsets)):
        g = inst[inst["institution"] == name].sort_values("target_year")
        ax.scatter(g["target_year"] + off, g["institution_ape"], s=22, color=INSTITUTION_COLORS[i % len(INSTITUTION_COLORS)],
                   label=name, zorder=3)
    if not model_rows.empty:
        ax.plot(model_rows["target_year"], model_rows["model_ape"], color=COLORS["model"], lw=1.6, marker="s", ms=4,
                label="model (champion, data through Oct of Y-1)", zorder=2)
    ax.set_title(f"{label}: absolute % error of the pre-year outlook by target year", fontsize=10, loc="left")
    ax.set_ylabel("APE, %", fontsize=8)
    ax.set_ylim(bottom=0)
    years = sorted(inst["target_year"].astype(int).unique())
    ax.set_xticks(years)
    ax.set_xticklabels([str(y) for y in years], fontsize=8)
    _finish_axes(fig, ax, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # legend outside: never hides a point
    return _png(fig, f"{label}: APE of the institutions' pre-year outlooks and of the model by target year")


def _section_institutional(inputs: ReportInputs) -> str:
    names = _names(inputs)
    parts = ['<section id="institutions"><h2>Against the institutions</h2>',
             _note("Each model forecasts year Y with data through October of Y-1, the information KITA and KIET had "
                   "for their November/December outlooks; the champion of year Y is chosen on earlier years only. "
                   "APE = |projected - actual| / actual x 100; only pre-year outlooks enter the MAPE.")]
    if inputs.comparison is None and inputs.summary is None:
        parts.append(_note(f"institutional_comparison.csv and institutional_summary.csv were not found in "
                           f"{inputs.outputs_dir}: the institutional comparison was not run"))
        return "".join(parts) + "</section>"
    if inputs.comparison is not None and inputs.comparison.empty:
        parts.append(_note("institutional_comparison.csv has no rows: the comparison was skipped in this run "
                           "(it needs the embedded dataset)"))
        return "".join(parts) + "</section>"
    if inputs.comparison is not None:
        comp = inputs.comparison
        ids = _series_order(comp.loc[comp["kind"] == PRE_YEAR, "unique_id"].astype(str))
        for uid in ids:
            n_years = comp[(comp["unique_id"] == uid) & (comp["kind"] == PRE_YEAR)]["target_year"].nunique()
            if n_years >= 3:
                chart = _ape_chart(comp, uid, _label(uid, names))
                if chart:
                    parts.append(f"<figure>{chart}</figure>")
    else:
        parts.append(_note(inputs.notes.get("institutional_comparison.csv", "no comparison rows")))
    if inputs.summary is not None and not inputs.summary.empty:
        parts.append(_summary_tables(inputs.summary, names))
    elif inputs.summary is None:
        parts.append(_note(inputs.notes.get("institutional_summary.csv", "no summary")))
    if inputs.comparison is not None:
        parts.append(_comparison_table(inputs.comparison, names))
    return "".join(parts) + "</section>"


def _summary_tables(summary: pd.DataFrame, names: dict[str, str]) -> str:
    champ = summary[summary["model"] == CHAMPION]
    rows = []
    for r in champ.itertuples(index=False):
        rows.append([_label(str(r.unique_id), names), r.institution, getattr(r, "years", ""), str(int(r.n_years)),
                     fmt_pct(r.institution_mape, 2), fmt_pct(r.model_mape, 2), fmt_pct(100 * r.model_coverage_80, 0),
                     fmt_pct(r.institution_bias_pct, 2, signed=True), fmt_pct(r.model_bias_pct, 2, signed=True)])
    out = ["<h3>Pre-year outlooks: institution vs model (same years)</h3>",
           _table(["Series", "Institution", "Years", "n", "Inst. MAPE", "Model MAPE", "Model 80% cover", "Inst. bias", "Model bias"],
                  rows, numeric=(3, 4, 5, 6, 7, 8), classes=["data"],
                  widths=["14%", "16%", "17%", "5%", "9%", "9%", "10%", "10%", "10%"])]
    models = [m for m in dict.fromkeys(summary["model"].astype(str)) if m != CHAMPION]
    if models:
        header = ["Series", "Institution", "n", "Institution", CHAMPION, *models]
        body = []
        for (uid, inst), g in summary.groupby(["unique_id", "institution"], sort=False):
            mape = dict(zip(g["model"].astype(str), g["model_mape"]))
            values = [g["institution_mape"].iloc[0], *[mape.get(m) for m in [CHAMPION, *models]]]
            finite = [float(v) for v in values if _is_num(v)]
            best = min(finite) if finite else None
            cells = [_e(_label(str(uid), names)), _e(inst), _e(int(g["n_years"].iloc[0]))]
            for v in values:
                text = _e(fmt_pct(v, 2))
                cells.append(f'<span class="best">{text}</span>' if best is not None and _is_num(v) and float(v) == best else text)
            body.append(cells)
        out.append("<h3>MAPE of every model over the institution's years (lowest highlighted)</h3>")
        out.append(_table(header, body, numeric=range(2, len(header)), classes=["data", "compact"], raw=True))
    return "".join(out)


def _comparison_table(comp: pd.DataFrame, names: dict[str, str]) -> str:
    rows = comp[comp["model"] == CHAMPION] if (comp["model"] == CHAMPION).any() else comp.drop_duplicates(
        ["target_year", "unique_id", "institution", "published"])
    rows = rows.sort_values(["unique_id", "target_year", "institution"], key=lambda s: s.map(
        {u: i for i, u in enumerate(_series_order(rows["unique_id"].astype(str)))}) if s.name == "unique_id" else s)
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
        body.append([str(int(r.target_year)), _label(str(r.unique_id), names), r.institution,
                     str(getattr(r, "published", "")), fmt_bn(level) + (" *" if derived else ""),
                     fmt_bn(r.model_usd_bn), fmt_range(getattr(r, "model_lo_80", None), getattr(r, "model_hi_80", None)),
                     fmt_bn(r.actual_usd_bn), fmt_pct(r.institution_ape, 2), fmt_pct(r.model_ape, 2), "; ".join(flag)])
    return ("<details><summary>Every projection compared (champion model), by series and year</summary>"
            + _table(["Year", "Series", "Institution", "Published", "Projected", "Model", "Model 80%", "Actual",
                      "Inst. APE", "Model APE", "Flags"], body, numeric=(4, 5, 6, 7, 8, 9), classes=["data", "compact"],
                     widths=["5%", "11%", "13%", "9%", "8%", "7%", "11%", "7%", "7%", "7%", "15%"])
            + _note("* growth-only projection compared as previous year's actual x (1 + growth).") + "</details>")


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
    parts.append(_note("Mean MASE over the rolling-origin windows (1.0 = the in-sample seasonal naive error; lower is "
                       "better). The lowest per series is highlighted."))
    parts.append(_table(["Series", "Windows", *columns], body, numeric=range(1, len(columns) + 2), classes=["data", "compact"], raw=True))
    return "".join(parts) + "</section>"


def _section_champions(inputs: ReportInputs) -> str:
    names = _names(inputs)
    parts = ['<section id="champions"><h2>Champion per series, and why</h2>']
    if inputs.champions is None:
        parts.append(_note(inputs.notes.get("champions.csv", "no champions")))
    else:
        c = inputs.champions.set_index("unique_id")
        rows = [[_label(uid, names), uid, str(c.loc[uid, "champion"]), str(c.loc[uid, "reason"])]
                for uid in _series_order(c.index.astype(str))]
        parts.append(_table(["Series", "Id", "Champion", "Reason"], rows, classes=["data"], widths=["18%", "20%", "12%", "50%"]))
    if inputs.fits is not None:
        f = inputs.fits
        odd = f[(f["status"].astype(str) != "ok") | (f["model_used"].astype(str) != f["model"].astype(str))]
        if not odd.empty:
            # one row per series and outcome: a short series falls back the same way for every model
            odd = odd.assign(why=[" ".join(str(v) for v in (r.reason, getattr(r, "error", "")) if isinstance(v, str) and v)
                                  for r in odd.itertuples(index=False)])
            grouped = odd.groupby(["unique_id", "model_used", "status", "why"], sort=False, dropna=False)["model"]
            rows = [[_label(str(uid), names), ", ".join(str(m) for m in models), used, status, why]
                    for (uid, used, status, why), models in grouped]
            parts.append("<h3>Fallbacks and failed fits</h3>")
            parts.append(_table(["Series", "Models", "Used", "Status", "Reason"], rows, classes=["data", "compact"],
                                widths=["18%", "18%", "12%", "8%", "44%"]))
        else:
            parts.append(_note("Every model was fitted as configured on every series (no fallback)."))
    return "".join(parts) + "</section>"


def _section_data(inputs: ReportInputs) -> str:
    parts = ['<section id="data"><h2>Data freshness and sources</h2>']
    if inputs.meta is None:
        parts.append(_note(inputs.notes.get("dataset", "series.csv unavailable")))
    else:
        meta = inputs.meta.copy()
        if inputs.history is not None:
            last = inputs.history.dropna(subset=["y"]).groupby("unique_id")["ds"].max()
            meta["last"] = meta["unique_id"].map(last).map(lambda d: f"{d:%Y-%m}" if pd.notna(d) else "–")
        else:
            meta["last"] = meta.get("last_month", "–")
        rows = []
        for r in meta.set_index("unique_id").loc[_series_order(meta["unique_id"].astype(str))].reset_index().itertuples(index=False):
            first = getattr(r, "first_month", None)
            rows.append([r.unique_id, getattr(r, "name_en", ""), f"{first:%Y-%m}" if isinstance(first, pd.Timestamp) else first, r.last,
                         getattr(r, "n_obs", ""), getattr(r, "n_missing", ""), getattr(r, "sources", "")])
        if inputs.history is not None:
            latest = inputs.history["ds"].max()
            parts.append(f'<p>Latest month in the dataset: <b>{latest:%Y-%m}</b>. Series whose last month is earlier '
                         'are forecast from their own last observation.</p>')
        parts.append(_table(["Id", "Name", "First", "Last", "Obs", "Missing", "Sources"], rows,
                            numeric=(4, 5), classes=["data", "compact"], widths=["17%", "15%", "7%", "7%", "5%", "6%", "43%"]))
    if inputs.provenance is not None:
        href = os.path.relpath(inputs.provenance, inputs.outputs_dir)
        parts.append(f'<p>Provenance of every raw file: <a href="{_e(Path(href).as_posix())}">{_e(inputs.provenance.name)}</a> '
                     f'({_e(inputs.provenance)}).</p>')
    else:
        parts.append(_note("no provenance file found next to the dataset"))
    other = {k: v for k, v in inputs.notes.items() if k != "dataset"}
    if other:
        parts.append("<h3>Inputs not found</h3><ul>" + "".join(f"<li>{_e(v)}</li>" for v in other.values()) + "</ul>")
    return "".join(parts) + "</section>"


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
"""


def render_report(inputs: ReportInputs) -> str:
    """The report as one HTML string."""
    sections = [
        _section_headline(inputs),
        _section_fans(inputs),
        _section_institutional(inputs),
        _section_backtest(inputs),
        _section_champions(inputs),
        _section_data(inputs),
    ]
    nav = ('<nav><a href="#headline">Headline</a><a href="#fans">Fan charts</a><a href="#institutions">Institutions</a>'
           '<a href="#backtest">Backtest</a><a href="#champions">Champions</a><a href="#data">Data</a></nav>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>exportcast report {inputs.target_year}</title><style>{CSS}</style></head>"
            f"<body><main>{_section_header(inputs)}{nav}{''.join(sections)}</main></body></html>\n")


def write_report(outputs_dir: Path, *, data_dir: Path | None = None, out_path: Path | None = None) -> Path:
    """Build ``report.html`` from the published files in ``outputs_dir`` and the dataset in
    ``data_dir`` (default: the repository's ``data/``); written atomically to ``out_path``
    (default ``outputs_dir/report.html``). Returns the path written."""
    from flows.publish import write_atomic

    inputs = load_inputs(Path(outputs_dir), data_dir)
    text = render_report(inputs)
    target = Path(out_path) if out_path is not None else Path(outputs_dir) / REPORT_NAME
    return write_atomic(target, text.encode("utf-8"))
