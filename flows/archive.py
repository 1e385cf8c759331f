"""The forecast archive and what changed: the service's record of what it said, and when.

- **Archive**: every production run (``flows.pipeline.promotion``) appends its published champion
  forecasts, monthly and annual (point, 80% and 95% bounds, model), under its run id and data
  vintage, as ONE new Parquet file ``<data.home>/archive/<published_at>-<run id>.parquet``
  (written atomically, never rewritten: earlier rows cannot change). Each run exports the whole
  archive as ``outputs/forecast_archive.csv`` (:data:`ARCHIVE_COLUMNS`).
- **Scores**: as actuals arrive, every archived forecast with an actual is scored
  (:func:`score_archive`): the APE of each vintage's forecast of each month, and of the annual
  total once the year's 12 months are observed, and whether the actual fell inside the 80% and
  95% bounds. The report shows the summary by vintage (table) and the total's archived paths
  beside the actuals (chart); MLflow gets :func:`archive_metrics`.
- **Changes** (``outputs/changes.csv``, :data:`CHANGES_COLUMNS`): against the vintage of the
  previous production run (the latest archived run): new months, revised (or withdrawn) values,
  and each series' target-year forecast, old -> new. :func:`changes_sentence` says it in words;
  the report opens with it, ``run.json`` (``changes``) and the MLflow parent run carry it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from flows.results import (
    ARCHIVE_COLUMNS,
    CHANGES,
    CHANGES_COLUMNS,
    FORECAST_ANNUAL,
    FORECAST_ARCHIVE,
    FORECAST_MONTHLY,
    format_table,
)

ARCHIVE_DIR = "archive"
SCORE_COLUMNS: tuple[str, ...] = (
    "vintage",
    "run_id",
    "published_at",
    "unique_id",
    "kind",
    "ds",
    "model",
    "forecast",
    "actual",
    "ape",
    "in_80",
    "in_95",
)
BOUNDS: tuple[str, ...] = ("forecast", "lo_80", "hi_80", "lo_95", "hi_95")


class ArchiveError(RuntimeError):
    """An archive file exists already for this run (the archive is never rewritten)."""


# ============================================================================ rows and storage
def archive_rows(
    monthly: pd.DataFrame, annual: pd.DataFrame, *, vintage: str, run_id: str, published_at: str
) -> pd.DataFrame:
    """The champion rows of a run's published forecasts (``is_champion``) in the archive's form:
    ``kind`` month (``ds`` = YYYY-MM-DD, the month start) or year (``ds`` = YYYY)."""
    months = monthly.loc[monthly["is_champion"].astype(bool)]
    years = annual.loc[annual["is_champion"].astype(bool)]
    parts = [
        pd.DataFrame(
            {
                "unique_id": months["unique_id"].astype(str),
                "kind": "month",
                "ds": pd.to_datetime(months["ds"]).dt.strftime("%Y-%m-%d"),
                "model": months["model"].astype(str),
                **{c: months[c].astype("float64") for c in BOUNDS},
            }
        ),
        pd.DataFrame(
            {
                "unique_id": years["unique_id"].astype(str),
                "kind": "year",
                "ds": years["year"].astype(int).astype(str),
                "model": years["model"].astype(str),
                **{c: years[c].astype("float64") for c in BOUNDS},
            }
        ),
    ]
    rows = pd.concat(parts, ignore_index=True)
    rows.insert(0, "published_at", published_at)
    rows.insert(0, "run_id", run_id)
    rows.insert(0, "vintage", vintage)
    return (
        rows.loc[:, list(ARCHIVE_COLUMNS)]
        .sort_values(["unique_id", "kind", "ds"], kind="stable")
        .reset_index(drop=True)
    )


def read_archive(home: Path) -> pd.DataFrame:
    """Every archived row, oldest run first."""
    folder = Path(home) / ARCHIVE_DIR
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return empty_archive()
    table = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return table.sort_values(["published_at", "run_id", "unique_id", "kind", "ds"], kind="stable").reset_index(
        drop=True
    )


def empty_archive() -> pd.DataFrame:
    types = {c: "float64" if c in BOUNDS else "object" for c in ARCHIVE_COLUMNS}
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in types.items()})


def append_archive(home: Path, rows: pd.DataFrame) -> Path:
    """Add one run's rows as a new file (temp file + rename; an existing file is never replaced)."""
    folder = Path(home) / ARCHIVE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    run_id, published_at = str(rows["run_id"].iloc[0]), str(rows["published_at"].iloc[0])
    stamp = re.sub(r"[^0-9T]", "", published_at)[:15]
    path = folder / f"{stamp}-{run_id}.parquet"
    if path.exists():
        raise ArchiveError(f"{path} exists: run {run_id} is archived already (the archive is never rewritten)")
    tmp = folder / f".{path.name}.tmp-{os.getpid()}"
    try:
        rows.to_parquet(tmp, index=False)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.link(tmp, path)  # fails if the file appeared meanwhile: never overwrites
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ============================================================================ scores
def score_archive(archive: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Every archived forecast whose actual is known in ``history`` (unique_id, ds, y): the month's
    value, or the calendar-year sum once all 12 months are observed; APE (%) and coverage."""
    if archive.empty or history.empty:
        return pd.DataFrame(columns=list(SCORE_COLUMNS))
    h = history[["unique_id", "ds", "y"]].copy()
    h["ds"] = pd.to_datetime(h["ds"])
    monthly = {(str(u), f"{d:%Y-%m-%d}"): float(y) for u, d, y in zip(h["unique_id"], h["ds"], h["y"])}
    h["year"] = h["ds"].dt.year
    years = h.groupby(["unique_id", "year"])["y"].agg(["sum", "size"])
    annual = {
        (str(u), str(int(yr))): float(s) for (u, yr), s, n in zip(years.index, years["sum"], years["size"]) if n == 12
    }
    actual = [
        monthly.get((u, d)) if k == "month" else annual.get((u, d))
        for u, k, d in zip(archive["unique_id"], archive["kind"], archive["ds"])
    ]
    scored = archive.assign(actual=pd.Series(actual, index=archive.index, dtype="float64")).dropna(subset=["actual"])
    scored = scored.loc[scored["actual"] != 0]
    scored["ape"] = (scored["forecast"] - scored["actual"]).abs() / scored["actual"].abs() * 100
    scored["in_80"] = (scored["lo_80"] <= scored["actual"]) & (scored["actual"] <= scored["hi_80"])
    scored["in_95"] = (scored["lo_95"] <= scored["actual"]) & (scored["actual"] <= scored["hi_95"])
    return scored.loc[:, list(SCORE_COLUMNS)].reset_index(drop=True)


def score_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """By vintage (and run) and kind: forecasts scored, MAPE (%), 80% and 95% coverage (shares)."""
    if scores.empty:
        return pd.DataFrame(
            columns=["vintage", "run_id", "published_at", "kind", "n", "mape", "coverage_80", "coverage_95"]
        )
    grouped = scores.groupby(["published_at", "run_id", "vintage", "kind"], sort=True)
    out = grouped.agg(
        n=("ape", "size"), mape=("ape", "mean"), coverage_80=("in_80", "mean"), coverage_95=("in_95", "mean")
    ).reset_index()
    return out.loc[:, ["vintage", "run_id", "published_at", "kind", "n", "mape", "coverage_80", "coverage_95"]]


def archive_metrics(scores: pd.DataFrame) -> dict[str, float]:
    """MLflow metrics of the live track record: per kind, forecasts scored, MAPE, 80%/95% coverage;
    the total's monthly MAPE on its own."""
    out: dict[str, float] = {}
    for kind, group in scores.groupby("kind"):
        out[f"archive_n_{kind}"] = float(len(group))
        out[f"archive_mape_{kind}"] = float(group["ape"].mean())
        out[f"archive_coverage_80_{kind}"] = float(group["in_80"].mean())
        out[f"archive_coverage_95_{kind}"] = float(group["in_95"].mean())
    total = scores.loc[(scores["unique_id"] == "total") & (scores["kind"] == "month")]
    if not total.empty:
        out["archive_mape_month_total"] = float(total["ape"].mean())
    return out


# ============================================================================ changes
def previous_run(archive: pd.DataFrame) -> pd.DataFrame:
    """The rows of the latest archived run (empty when nothing is archived)."""
    if archive.empty:
        return archive
    last = archive.sort_values(["published_at", "run_id"]).iloc[-1]
    return archive.loc[(archive["run_id"] == last["run_id"])]


def changes_table(
    previous_frame: pd.DataFrame | None,
    frame: pd.DataFrame,
    previous_rows: pd.DataFrame,
    current_rows: pd.DataFrame,
    target_year: int,
) -> pd.DataFrame:
    """New months, revised (or withdrawn) values of ``frame`` against ``previous_frame`` (the data of
    the previous production run's vintage; None: no earlier run, nothing to compare), and each
    series' target-year forecast (the archive rows ``kind == year``) old -> new."""
    rows: list[dict[str, object]] = []
    if previous_frame is not None:
        key = ["unique_id", "ds"]
        old = previous_frame[[*key, "y"]].assign(ds=lambda f: pd.to_datetime(f["ds"]))
        new = frame[[*key, "y"]].assign(ds=lambda f: pd.to_datetime(f["ds"]))
        merged = old.merge(new, on=key, how="outer", suffixes=("_old", "_new"), indicator="side")
        for r in merged.itertuples(index=False):
            if r.side == "right_only":
                rows.append(
                    {
                        "unique_id": r.unique_id,
                        "ds": f"{r.ds:%Y-%m-%d}",
                        "change": "new",
                        "old": np.nan,
                        "new": r.y_new,
                        "note": "",
                    }
                )
            elif r.side == "left_only":
                rows.append(
                    {
                        "unique_id": r.unique_id,
                        "ds": f"{r.ds:%Y-%m-%d}",
                        "change": "revised",
                        "old": r.y_old,
                        "new": np.nan,
                        "note": "withdrawn",
                    }
                )
            elif r.y_old != r.y_new:
                rows.append(
                    {
                        "unique_id": r.unique_id,
                        "ds": f"{r.ds:%Y-%m-%d}",
                        "change": "revised",
                        "old": r.y_old,
                        "new": r.y_new,
                        "note": f"{(r.y_new / r.y_old - 1) * 100:+.2f}%" if r.y_old else "",
                    }
                )
    year = str(int(target_year))
    before = previous_rows.loc[(previous_rows["kind"] == "year") & (previous_rows["ds"] == year)].set_index("unique_id")
    now = current_rows.loc[(current_rows["kind"] == "year") & (current_rows["ds"] == year)]
    for r in now.itertuples(index=False):
        old_row = before.loc[r.unique_id] if r.unique_id in before.index else None
        note = (
            f"{old_row['model']} -> {r.model}"
            if old_row is not None and old_row["model"] != r.model
            else str(r.model)
            if old_row is not None
            else f"{r.model}; no earlier forecast of {year}"
        )
        rows.append(
            {
                "unique_id": r.unique_id,
                "ds": year,
                "change": "forecast",
                "old": np.nan if old_row is None else float(old_row["forecast"]),
                "new": float(r.forecast),
                "note": note,
            }
        )
    table = pd.DataFrame(rows, columns=list(CHANGES_COLUMNS))
    order = table["change"].map({"new": 0, "revised": 1, "forecast": 2})
    return (
        table.assign(_o=order)
        .sort_values(["_o", "unique_id", "ds"], kind="stable")
        .drop(columns="_o")
        .reset_index(drop=True)
    )


def changes_counts(changes: pd.DataFrame) -> dict[str, int]:
    return {kind: int((changes["change"] == kind).sum()) for kind in ("new", "revised", "forecast")}


def changes_sentence(changes: pd.DataFrame, frame: pd.DataFrame, target_year: int, previous_vintage: str | None) -> str:
    """The changes in words, e.g. "new this month: total 2026-07 99.0 bn, +63.0% y/y; 3 months
    revised; 2026 forecast 1,058.9 -> 1,075.5 bn"."""
    if previous_vintage is None:
        return "first archived run: nothing earlier to compare with"
    parts = []
    new_total = changes.loc[(changes["change"] == "new") & (changes["unique_id"] == "total")]
    if new_total.empty:
        parts.append(f"no new month since the previous run (vintage {previous_vintage})")
    else:
        texts = []
        history = (
            frame.loc[frame["unique_id"] == "total"].assign(ds=lambda f: pd.to_datetime(f["ds"])).set_index("ds")["y"]
        )
        for r in new_total.itertuples(index=False):
            month = pd.Timestamp(r.ds)
            before = history.get(month - pd.DateOffset(years=1))
            yoy = f", {(r.new / before - 1) * 100:+.1f}% y/y" if before is not None and before else ""
            texts.append(f"total {month:%Y-%m} {r.new / 1e9:,.1f} bn{yoy}")
        parts.append("new this month: " + "; ".join(texts))
    revised = changes.loc[changes["change"] == "revised", "ds"].nunique()
    parts.append(f"{revised} month{'s' if revised != 1 else ''} revised")
    forecast = changes.loc[(changes["change"] == "forecast") & (changes["unique_id"] == "total")]
    if not forecast.empty:
        r = forecast.iloc[0]
        old = "none" if pd.isna(r["old"]) else f"{r['old'] / 1e9:,.1f}"
        parts.append(f"{target_year} forecast {old} -> {r['new'] / 1e9:,.1f} bn")
    return "; ".join(parts)


# ============================================================================ the run's step
def with_archive(results, *, home: Path, vintage: str | None, production: bool, target_year: int, published_at: str):
    """The run's results with ``forecast_archive.csv`` and ``changes.csv`` and ``run.changes``; the
    rows to append once published (None for a run that is not a production run: it is neither
    archived nor compared), and the archive's scores against the run's data."""
    import dataclasses

    from features import vintages

    run = results.run
    label = vintage or f"{run.data_source}:{run.data_hash[:12]}"
    archive = read_archive(home)
    previous = previous_run(archive)
    previous_vintage = str(previous["vintage"].iloc[0]) if not previous.empty else None
    if production:
        rows = archive_rows(
            results.tables[FORECAST_MONTHLY],
            results.tables[FORECAST_ANNUAL],
            vintage=label,
            run_id=run.run_id,
            published_at=published_at,
        )
        previous_frame = None
        if (
            previous_vintage is not None
            and vintage is not None
            and (previous_vintage == vintages.SEED_ID or vintages.VINTAGE_ID.fullmatch(previous_vintage))
        ):
            previous_frame = vintages.read(home, previous_vintage)
        changes = changes_table(previous_frame, results.history, previous, rows, target_year)
        sentence = changes_sentence(changes, results.history, target_year, previous_vintage)
        exported = pd.concat([archive, rows], ignore_index=True) if not archive.empty else rows
    else:
        rows = None
        changes = pd.DataFrame(columns=list(CHANGES_COLUMNS))
        sentence = "not a production run: neither archived nor compared"
        exported = archive
    scores = score_archive(exported, results.history)
    tables = {
        **results.tables,
        FORECAST_ARCHIVE: format_table(FORECAST_ARCHIVE, exported),
        CHANGES: format_table(CHANGES, changes),
    }
    record = {
        "sentence": sentence,
        "previous_vintage": previous_vintage,
        "vintage": label,
        "archived": production,
        **changes_counts(changes),
    }
    done = dataclasses.replace(results, tables=tables, run=dataclasses.replace(run, vintage=label, changes=record))
    return done, rows, scores
