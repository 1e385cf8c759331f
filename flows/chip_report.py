"""The report's "Chip cycle" section (issue 24): the chip market's 12-month changes beside
semiconductor exports', the latest reading, and what the published model makes of it.

    html = chip_cycle_section(inputs)      # flows.report.render_report calls it

Drawn from the run's own data: the indicator table of the embedded dataset
(``ReportInputs.indicators``: SOX, SK hynix, the DRAM export price index in USD) and the run's
history and annual forecast of ``item:semiconductors_ministry`` (the ministry basis, the one the
institutions forecast). A run without them gets a one-line note instead of the chart. The market
series' changes are the ones a forecast could read on the information date of the last month
(every value shown was public by then). The "what the model makes of it" line is the published
champion's annual forecast and ``chip_momentum``'s forecast from the latest reading
(``momentum_reading``, the model being off); the chip-momentum models (``models.families.momentum``) are named with their
verdict under the protocol (docs/decisions/0150, 0151), and their growth path when the run had one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from flows.report_html import escape, figure, fmt_bn, fmt_pct, history_series, html_table, note, png

SEMIS = "item:semiconductors_ministry"
#: indicator -> label of the chart's market lines
MARKET_LINES: dict[str, str] = {
    "phlx_close:sox": "SOX (Philadelphia Semiconductor Index)",
    "krx_close:skhynix_000660": "SK hynix (KRX close)",
    "bok_month:dram_export_price_usd": "DRAM export price index (BoK, USD)",
}
LINE_COLORS: dict[str, str] = {
    "phlx_close:sox": "#2b6cb0",
    "krx_close:skhynix_000660": "#d69e2e",
    "bok_month:dram_export_price_usd": "#805ad5",
    SEMIS: "#c4432b",
}
#: years drawn
YEARS = 12


def twelve_month_change(values: pd.Series) -> pd.Series:
    """% change on the same month a year before, months where both exist."""
    values = values.astype(float).sort_index()
    before = values.shift(12, freq="MS").reindex(values.index)
    return (100 * (values / before - 1)).dropna()


def chip_cycle_readings(indicators: pd.DataFrame, history: pd.Series) -> pd.DataFrame:
    """The 12-month % changes by month (columns: the market indicators, then the exports)."""
    columns = {}
    for name in MARKET_LINES:
        rows = indicators[indicators["indicator"] == name]
        if not rows.empty:
            columns[name] = twelve_month_change(pd.Series(rows["value"].to_numpy(), index=pd.DatetimeIndex(rows["ds"])))
    columns[SEMIS] = twelve_month_change(history.dropna())
    return pd.DataFrame(columns)


def _model_line(inputs: Any, year: int) -> str:
    """What the published model makes of it: the champion's annual forecast of the semiconductors."""

    annual = inputs.annual
    champion = inputs.champion_of.get(SEMIS)
    rows = annual[(annual["unique_id"] == SEMIS) & (annual["year"] == year) & (annual["model"] == champion)]
    if champion is None or rows.empty:
        return f"The run has no {year} forecast of the semiconductors (ministry basis)."
    r = rows.iloc[0]
    y = history_series(inputs, SEMIS).dropna()
    last_year = y[y.index.year == year - 1]
    growth = (
        f", {fmt_pct(100 * (r['forecast'] / last_year.sum() - 1), 1, signed=True)} on {year - 1}"
        if last_year.index.month.nunique() == 12
        else ""
    )
    return (
        f"The published model ({champion}) forecasts {fmt_bn(r['forecast'] / 1e9)} bn USD of semiconductor exports "
        f"in {year}{growth} (80% range {fmt_bn(r['lo_80'] / 1e9)}–{fmt_bn(r['hi_80'] / 1e9)})."
    )


def momentum_reading(indicators: pd.DataFrame, history: pd.Series, year: int) -> float | None:
    """What ``chip_momentum`` makes of the latest reading: its forecast of ``year``'s total (USD),
    the confirmed months of the year plus its forecast of the rest, with the regressions and market
    columns as public on the information date of the history's last month (as
    ``models.families.leading_extras.LeadingExtras`` hands them in); None where it cannot run (too short, not public)."""
    from features.leading import LeadingIndicatorError, information_date, public_values
    from models.core.base import ModelInputError
    from models.families.momentum import ChipMomentum, MomentumRegression, market_features

    y = history.dropna()
    last = y.index.max()
    h = (year - last.year) * 12 + 12 - last.month
    if h < 1 or h > 15:
        return None
    info = information_date(last)
    try:
        reference = public_values(indicators, ChipMomentum.default_reference, as_of=info)
        features = market_features(
            {m: public_values(indicators, m, as_of=info) for m in ChipMomentum.market_indicators}
        )
        regression = MomentumRegression.estimate(reference, features)
        months = pd.date_range(history.index.min(), last + pd.offsets.MonthBegin(h), freq="MS", name="ds")
        X = features.reindex(months)
        model = ChipMomentum(**regression.params()).fit(history.loc[:last], X.loc[:last])
        rest = float(model.predict(h, X.loc[last + pd.offsets.MonthBegin(1) :])["forecast"].sum())
    except (LeadingIndicatorError, ModelInputError, KeyError):
        return None
    return rest + float(y[y.index.year == year].sum())


def _momentum_line(inputs: Any, reading: float | None, year: int) -> str:

    said = (
        f"On the latest reading the market-momentum model (chip_momentum, off) would forecast "
        f"{fmt_bn(reading / 1e9)} bn USD for {year}. "
        if reading is not None
        else ""
    )
    fits = inputs.fits
    if fits is not None and not fits.empty and "model" in fits.columns:
        mine = fits[(fits["unique_id"] == SEMIS) & (fits["model"] == "chip_momentum")]
        if not mine.empty:
            return said + "The chip-momentum model ran in this run: see model_fits.csv for its growth path."
    return said + (
        "The chip-momentum models (market momentum, and its blend with the cycle model) are built and measured "
        "but not switched on: under the protocol written before any Korean figure (docs/decisions/0150), they "
        "lost to the cycle blend, ETS and Theta on world billings 2006-2013 (docs/decisions/0151), so the "
        "market readings above inform the analyst, not the published forecast."
    )


def chip_cycle_section(inputs: Any) -> str:

    parts = ['<section id="chip-cycle"><h2>Chip cycle</h2>']
    indicators = getattr(inputs, "indicators", None)

    history = history_series(inputs, SEMIS)
    if indicators is None or history.dropna().empty:
        parts.append(
            note(
                "No chip-cycle chart: the run's data has no semiconductor series (ministry basis) or no "
                "indicator table with the chip-market series."
            )
        )
        return "".join(parts) + "</section>"
    readings = chip_cycle_readings(indicators, history)
    last = history.dropna().index.max()
    shown = readings.loc[last - pd.DateOffset(years=YEARS) : last]
    fig = figure(12.0, 3.8)
    ax = fig.subplots()
    for name in shown.columns:
        label = MARKET_LINES.get(name, "semiconductor exports (ministry basis)")
        ax.plot(shown.index, shown[name], color=LINE_COLORS[name], lw=2.0 if name == SEMIS else 1.1, label=label)
    ax.axhline(0, color="#333333", lw=0.6)
    ax.set_ylabel("% change on a year before", fontsize=8)
    ax.set_title(
        "Chip cycle: 12-month % changes of the chip market and of semiconductor exports", fontsize=10, loc="left"
    )
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    latest = shown.loc[last] if last in shown.index else shown.iloc[-1]
    parts.append(
        "<figure>"
        + png(
            fig,
            "chip cycle: 12-month % changes of "
            + ", ".join(
                MARKET_LINES.get(c, "semiconductor exports")
                + f" ({fmt_pct(latest[c], 0, signed=True)} in {last:%Y-%m})"
                for c in shown.columns
                if np.isfinite(latest[c])
            ),
        )
        + "</figure>"
    )
    rows = [
        [
            MARKET_LINES.get(c, "Semiconductor exports (ministry basis)"),
            f"{readings[c].dropna().index.max():%Y-%m}",
            fmt_pct(readings[c].dropna().iloc[-1], 1, signed=True),
        ]
        for c in readings.columns
        if not readings[c].dropna().empty
    ]
    parts.append(
        html_table(
            ["Series", "Latest month", "12-month change"],
            rows,
            numeric=(2,),
            classes=["data", "compact"],
            caption="The latest reading (every value public by the run's information date)",
        )
    )
    year = int(inputs.target_year)
    reading = momentum_reading(indicators, history, year)
    parts.append(
        f'<p class="lead">{escape(_model_line(inputs, year))} {escape(_momentum_line(inputs, reading, year))}</p>'
    )
    return "".join(parts) + "</section>"
