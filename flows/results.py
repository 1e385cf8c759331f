"""The published results of a run: one schema per table and one definition of ``run.json``,
assembled ONCE from the stage results and read by publishing, MLflow tracking and the report.

- **Schemas** (:data:`SCHEMAS`): each published CSV's columns, in order, are the producing code's
  column constants (``models.core.engine``, ``models.core.backtest``, ``models.applications.institutional``) plus, for
  the forecast tables, ``is_champion``. A table is published with exactly those columns: a
  missing or an unexpected column is an error naming the table and the column, so a producer
  and its consumers cannot drift apart. Rows are sorted by the schema's keys.
- **Format** of every CSV: UTF-8, ``\\n`` line ends, no index, dates ``YYYY-MM-DD``, floats in fixed
  point with 6 decimals (no exponent, the same text on every platform; USD levels keep sub-cent
  precision, metrics 1e-6), a gap is an empty field. Nothing run-dependent (timings, ids, paths)
  goes into a CSV, so two runs on the same data and config give byte-identical CSVs; timings
  live in ``run.json`` and MLflow.
- **Champions**: :func:`assemble` reads the champion of each series from the backtest's
  ``champions`` table once (``Results.champion_of``); ``is_champion``, the headline, the champion
  counts and the MLflow champion set all come from that mapping.
- **run.json** is :class:`RunRecord`: its fields ARE the keys, written by the pipeline and read
  by the report through the same class.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.applications.institutional import COMPARISON_COLUMNS, OUTLOOK_COLUMNS, SUMMARY_COLUMNS
from models.applications.inyear import TRACKING_COLUMNS
from models.applications.nowcast import NOWCAST_COLUMNS
from models.core.backtest import BACKTEST_FORECAST_COLUMNS, METRIC_COLUMNS
from models.core.engine import ANNUAL_COLUMNS, FIT_COLUMNS, FORECAST_FRAME_COLUMNS

FLOAT_FORMAT = "%.6f"
DATE_FORMAT = "%Y-%m-%d"
IS_CHAMPION = "is_champion"
RUN_JSON = "run.json"
CHAMPION_ALIAS = "champion"
#: the columns of ``models.selection.champion.select_champions`` (the backtest's champions table; a test
#: checks they agree, champion.py exports no constant)
CHAMPION_COLUMNS: tuple[str, ...] = ("unique_id", "champion", "reason", "n_windows", "metric", "mean_score")
#: keys of a model's ``describe()`` that measure the run, not the model: moved out of model_fits.csv
TIMING_KEYS: tuple[str, ...] = ("fit_seconds",)

FORECAST_MONTHLY = "forecast_monthly.csv"
FORECAST_ANNUAL = "forecast_annual.csv"
BACKTEST_METRICS = "backtest_metrics.csv"
BACKTEST_FORECASTS = "backtest_forecasts.csv"
CHAMPIONS = "champions.csv"
MODEL_FITS = "model_fits.csv"
INSTITUTIONAL_COMPARISON = "institutional_comparison.csv"
INSTITUTIONAL_SUMMARY = "institutional_summary.csv"
INSTITUTIONAL_OUTLOOK = "institutional_outlook.csv"
NOWCAST = "nowcast.csv"
TRACKING = "tracking.csv"
#: the forecast archive and the changes since the last published run (built by flows.archive)
FORECAST_ARCHIVE = "forecast_archive.csv"
CHANGES = "changes.csv"
ARCHIVE_COLUMNS: tuple[str, ...] = (
    "vintage",
    "run_id",
    "published_at",
    "unique_id",
    "kind",
    "ds",
    "model",
    "forecast",
    "lo_80",
    "hi_80",
    "lo_95",
    "hi_95",
)
CHANGES_COLUMNS: tuple[str, ...] = ("unique_id", "ds", "change", "old", "new", "note")


class SchemaError(ValueError):
    """A table breaks its published schema; the message names the table and the column."""


@dataclass(frozen=True)
class TableSchema:
    """A published CSV: its name, columns in order, sort keys and the columns holding dates/flags."""

    name: str
    columns: tuple[str, ...]
    sort_keys: tuple[str, ...]
    dates: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def format(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with exactly the schema's columns in order, rows sorted by the keys."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise SchemaError(f"{self.name}: missing column(s) {missing}; got {list(frame.columns)}")
        extra = [c for c in frame.columns if c not in self.columns]
        if extra:
            raise SchemaError(f"{self.name}: column(s) {extra} are not in the published schema {list(self.columns)}")
        out = frame.loc[:, list(self.columns)]
        if self.sort_keys:
            out = out.sort_values(list(self.sort_keys), kind="stable")
        return out.reset_index(drop=True)

    def read(self, path: Path) -> pd.DataFrame:
        """A published file back as a frame (dates parsed, flags as bool); columns checked."""
        try:
            table = pd.read_csv(path, keep_default_na=True)
        except pd.errors.EmptyDataError:
            raise SchemaError(f"{path}: the file is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise SchemaError(f"{path}: not a readable CSV ({exc})") from None
        missing = [c for c in self.columns if c not in table.columns]
        if missing:
            raise SchemaError(
                f"{path}: missing column(s) {', '.join(missing)}; has {', '.join(map(str, table.columns))}"
            )
        for column in self.dates:
            table[column] = pd.to_datetime(table[column])
        for column in self.flags:
            table[column] = table[column].map(lambda v: v is True or str(v).strip().lower() in {"true", "1"})
        return table


SCHEMAS: dict[str, TableSchema] = {
    s.name: s
    for s in (
        TableSchema(
            FORECAST_MONTHLY,
            (*FORECAST_FRAME_COLUMNS, IS_CHAMPION),
            ("unique_id", "model", "ds"),
            dates=("ds",),
            flags=(IS_CHAMPION,),
        ),
        TableSchema(
            FORECAST_ANNUAL, (*ANNUAL_COLUMNS, IS_CHAMPION), ("unique_id", "model", "year"), flags=(IS_CHAMPION,)
        ),
        TableSchema(BACKTEST_METRICS, METRIC_COLUMNS, ("unique_id", "model", "cutoff"), dates=("cutoff",)),
        TableSchema(
            BACKTEST_FORECASTS,
            BACKTEST_FORECAST_COLUMNS,
            ("unique_id", "model", "cutoff", "ds"),
            dates=("cutoff", "ds"),
        ),
        TableSchema(CHAMPIONS, CHAMPION_COLUMNS, ("unique_id",)),
        TableSchema(MODEL_FITS, FIT_COLUMNS, ("unique_id", "model")),
        TableSchema(
            INSTITUTIONAL_COMPARISON,
            tuple(COMPARISON_COLUMNS),
            ("target_year", "unique_id", "institution", "published", "model"),
            flags=("model_fell_back", "fallback_only"),
        ),
        TableSchema(INSTITUTIONAL_SUMMARY, tuple(SUMMARY_COLUMNS), ("unique_id", "institution", "model", "section")),
        TableSchema(
            INSTITUTIONAL_OUTLOOK, tuple(OUTLOOK_COLUMNS), ("target_year", "unique_id", "institution", "published")
        ),
        TableSchema(NOWCAST, NOWCAST_COLUMNS, ("unique_id", "ds", "information"), dates=("ds", "as_of")),
        TableSchema(TRACKING, TRACKING_COLUMNS, ("unique_id", "target_year", "as_of", "information"), dates=("as_of",)),
        # flows/archive.py: the forecast archive (ds: YYYY-MM-DD for a month, YYYY for a year) and what changed
        TableSchema(FORECAST_ARCHIVE, ARCHIVE_COLUMNS, ("published_at", "run_id", "unique_id", "kind", "ds")),
        TableSchema(CHANGES, CHANGES_COLUMNS, ()),
    )
}
INSTITUTIONAL_TABLES: tuple[str, ...] = (INSTITUTIONAL_COMPARISON, INSTITUTIONAL_SUMMARY, INSTITUTIONAL_OUTLOOK)


def format_table(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    if name not in SCHEMAS:
        raise SchemaError(f"{name}: not a published table; known: {', '.join(SCHEMAS)}")
    return SCHEMAS[name].format(frame)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The published CSV text of a frame (stable float and date formats)."""
    text = frame.to_csv(index=False, float_format=FLOAT_FORMAT, date_format=DATE_FORMAT, lineterminator="\n")
    return text.encode("utf-8")


def json_bytes(payload: Mapping[str, Any]) -> bytes:
    return (json.dumps(jsonable(payload), indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n").encode(
        "utf-8"
    )


def jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


# =========================================================================== run.json
@dataclass(frozen=True)
class RegistryRecord:
    """Where the ``champion`` alias of the registered model points after this run, and why."""

    name: str
    alias: str = CHAMPION_ALIAS
    version: str | None = None  # the version the alias points to after the run (None: no version)
    promoted: bool = False  # this run registered that version and moved the alias to it
    reason: str = ""  # why it was (not) promoted


@dataclass(frozen=True)
class RunRecord:
    """``run.json``: the field names are the keys (the pipeline writes it, the report reads it)."""

    run_id: str
    target_year: int
    started_at: str = ""  # UTC, ISO 8601, when the run started
    finished_at: str = ""  # UTC, ISO 8601, when run.json was written (after publishing)
    data_source: str = ""  # embedded | csv | customs_api
    data_origin: str = ""  # the file (or API) the data came from
    data_hash: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # n_series, n_rows, first_month, last_month
    config: dict[str, Any] = field(default_factory=dict)
    config_file: str | None = None
    code_version: str = ""
    git_head: str | None = None
    packages: dict[str, str] = field(default_factory=dict)
    prefect_flow_run_id: str | None = None
    mlflow_run_id: str | None = None
    mlflow_experiment_id: str | None = None
    champion_model: dict[str, Any] | None = None  # a RegistryRecord
    stage_seconds: dict[str, float] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)  # per model: seconds of fitting, summed over series
    cached: dict[str, bool] = field(default_factory=dict)
    institutional_compared: bool = False
    champion_counts: dict[str, int] = field(default_factory=dict)
    total_forecast: dict[str, Any] | None = None  # the total's target-year champion figure (USD)
    vintage: str | None = None  # the data vintage of the run (features/vintages.py)
    changes: dict[str, Any] | None = None  # what changed since the previous production run (flows/archive.py)
    next_year: dict[str, Any] | None = (
        None  # target_year auto, data in Q4: next year's total (sum of monthly forecasts)
    )

    def to_json(self) -> dict[str, Any]:
        return jsonable(dataclasses.asdict(self))

    def to_bytes(self) -> bytes:
        return json_bytes(self.to_json())

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> RunRecord:
        """From a parsed run.json; keys this version does not write are ignored (older files)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in payload.items() if k in known}
        if "run_id" not in values or "target_year" not in values:
            raise SchemaError(f"{RUN_JSON}: lacks run_id or target_year; has {', '.join(sorted(payload))}")
        values["target_year"] = int(values["target_year"])
        return cls(**values)

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        if not isinstance(payload, dict):
            raise SchemaError(f"{path}: expected a JSON object; got {type(payload).__name__}")
        return cls.from_json(payload)

    @property
    def registry(self) -> RegistryRecord | None:
        return RegistryRecord(**self.champion_model) if self.champion_model else None


# =========================================================================== results
@dataclass(frozen=True)
class Results:
    """Everything a run publishes: the tables (formatted to their schema), run.json, and the data
    the run used (for the report's history and freshness)."""

    tables: dict[str, pd.DataFrame]
    run: RunRecord
    history: pd.DataFrame  # the run's frame: unique_id, ds, y (+ source when given)
    champion_of: dict[str, str]  # series -> champion model (from the backtest)

    def with_run(self, **changes: Any) -> Results:
        return dataclasses.replace(self, run=dataclasses.replace(self.run, **changes))

    def headline_metrics(self) -> dict[str, float]:
        """The parent MLflow run's metrics: the total's target-year figure, the institutions'
        MAPE on the total beside the champion's, the number of series."""
        out: dict[str, float] = {"n_series": float(self.run.data.get("n_series", len(self.champion_of)))}
        total = self.run.total_forecast
        if total:
            year = self.run.target_year
            out.update(
                {
                    f"total_{year}_usd_bn": total["forecast"] / 1e9,
                    f"total_{year}_lo_80_usd_bn": total["lo_80"] / 1e9,
                    f"total_{year}_hi_80_usd_bn": total["hi_80"] / 1e9,
                }
            )
        summary = self.tables[INSTITUTIONAL_SUMMARY]
        rows = summary.loc[(summary["unique_id"] == "total") & (summary["model"] == "champion")]
        for inst, inst_mape, model_mape in zip(rows["institution"], rows["institution_mape"], rows["model_mape"]):
            slug = _slug(inst)
            out[f"institutional_mape_{slug}"] = float(inst_mape)
            out[f"model_mape_vs_{slug}"] = float(model_mape)
        return out

    def timing_metrics(self) -> dict[str, float]:
        """Seconds per stage and per model's fitting (MLflow metrics; never in a CSV)."""
        return {
            **{f"seconds_{k}": float(v) for k, v in self.run.stage_seconds.items()},
            **{f"fit_seconds_{k}": float(v) for k, v in self.run.fit_seconds.items()},
        }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")


def flag_champions(table: pd.DataFrame, champion_of: Mapping[str, str]) -> pd.DataFrame:
    """``table`` (rows per unique_id x model) with ``is_champion``: the row's model is the series'
    champion. Pseudo-rows named ``champion`` (if any) are dropped: the flag says it."""
    out = table.loc[table["model"] != "champion"].copy()
    out[IS_CHAMPION] = [champion_of.get(str(u)) == m for u, m in zip(out["unique_id"], out["model"])]
    return out


def split_timings(fits: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """``fits`` with run-dependent keys (``fit_seconds``) removed from each ``description`` JSON, at
    any depth (the ensemble nests its members' descriptions), and the seconds of the top-level keys
    summed per model (the requested model name; a member's seconds are its own model's)."""
    seconds: dict[str, float] = {}
    descriptions = []
    for model, text in zip(fits["model"], fits["description"]):
        try:
            info = json.loads(text) if isinstance(text, str) and text else None
        except json.JSONDecodeError:
            info = None
        if _has_timings(info):
            for key in TIMING_KEYS:
                value = info.get(key)
                if isinstance(value, (int, float)) and math.isfinite(value):
                    seconds[str(model)] = round(seconds.get(str(model), 0.0) + float(value), 3)
            text = json.dumps(_without_timings(info), sort_keys=True, default=str)
        descriptions.append(text)
    out = fits.copy()
    out["description"] = descriptions
    return out, seconds


def _has_timings(value: Any) -> bool:
    if isinstance(value, dict):
        return any(key in TIMING_KEYS or _has_timings(item) for key, item in value.items())
    return isinstance(value, list) and any(_has_timings(item) for item in value)


def _without_timings(value: Any) -> Any:
    """``value`` (parsed JSON) without the ``TIMING_KEYS`` of its dicts, at any depth."""
    if isinstance(value, dict):
        return {key: _without_timings(item) for key, item in value.items() if key not in TIMING_KEYS}
    if isinstance(value, list):
        return [_without_timings(item) for item in value]
    return value


def total_headline(annual: pd.DataFrame, year: int) -> dict[str, Any] | None:
    """The total's champion figure for ``year`` (USD) from a flagged annual table."""
    rows = annual.loc[(annual["unique_id"] == "total") & (annual["year"] == year) & annual[IS_CHAMPION]]
    if rows.empty:
        return None
    row = rows.iloc[0]
    return {"model": str(row["model"]), **{k: float(row[k]) for k in ("forecast", "lo_80", "hi_80", "lo_95", "hi_95")}}


def empty_table(name: str) -> pd.DataFrame:
    """A header-only table (so that stale files of an earlier run do not linger)."""
    return pd.DataFrame(columns=list(SCHEMAS[name].columns))


def assemble(
    frame: pd.DataFrame,
    backtest: Any,
    forecast: Any,
    institutional: Any | None,
    *,
    run: RunRecord,
    nowcast: pd.DataFrame | None = None,
    tracking: pd.DataFrame | None = None,
) -> Results:
    """The run's results from the stage results: ``backtest`` (``models.core.backtest.BacktestResult``),
    ``forecast`` (``models.core.engine.ForecastResult`` with ``annual``), ``institutional``
    (``models.applications.institutional.InstitutionalResult`` or None when the comparison was not run); ``nowcast``
    (``models.applications.nowcast.backtest`` rows, or None: a header-only table); ``tracking``
    (``models.applications.inyear.tracking`` rows, or None: a header-only table).
    The champions are the forecast's once chosen (``ForecastResult.champions``), else the backtest's.
    Fills the derived run.json fields (champion counts, total headline, fit seconds)."""
    champions = backtest.champions if getattr(forecast, "champions", None) is None else forecast.champions
    champion_of = {str(u): str(c) for u, c in zip(champions["unique_id"], champions["champion"])}
    monthly = flag_champions(forecast.forecasts, champion_of)
    annual = flag_champions(forecast.annual, champion_of)
    fits, _ = split_timings(forecast.fits)  # the run-dependent keys leave the published descriptions
    fit_seconds = dict(forecast.fit_seconds)  # timed by the engine where each model is fitted
    tables = {
        FORECAST_MONTHLY: monthly,
        FORECAST_ANNUAL: annual,
        BACKTEST_METRICS: backtest.metrics,
        BACKTEST_FORECASTS: backtest.forecasts,
        CHAMPIONS: champions,
        MODEL_FITS: fits,
    }
    if institutional is None:
        tables.update({name: empty_table(name) for name in INSTITUTIONAL_TABLES})
    else:
        tables.update(
            {
                INSTITUTIONAL_COMPARISON: institutional.comparison,
                INSTITUTIONAL_SUMMARY: institutional.summary,
                INSTITUTIONAL_OUTLOOK: institutional.outlook,
            }
        )
    tables[NOWCAST] = empty_table(NOWCAST) if nowcast is None else nowcast
    tables[TRACKING] = empty_table(TRACKING) if tracking is None else tracking
    formatted = {name: format_table(name, table) for name, table in tables.items()}
    counts: dict[str, int] = {}
    for name in champion_of.values():
        counts[name] = counts.get(name, 0) + 1
    run = dataclasses.replace(
        run,
        champion_counts=dict(sorted(counts.items())),
        total_forecast=total_headline(formatted[FORECAST_ANNUAL], run.target_year),
        fit_seconds=fit_seconds,
        institutional_compared=institutional is not None,
    )
    history = frame[[c for c in ("unique_id", "ds", "y", "source") if c in frame.columns]].reset_index(drop=True)
    return Results(tables=formatted, run=run, history=history, champion_of=champion_of)
