"""MLflow tracking and model registry for a pipeline run.

One experiment (``mlflow.experiment``). Per pipeline run:

- a parent run: tags and params with the data hash, the flattened config (no secrets), the
  code version, the target year and the Prefect flow-run id; headline metrics (the total's
  target-year forecast and its 80% range, institutional MAPEs when available);
- one child run per model family (and one for ``champion``): the family's config params,
  the mean backtest metrics over series and windows under the SAME keys for every family
  (``mase``, ``smape``, ``rmsse``, ``coverage_80``, ``coverage_95``) plus counts, and two CSV
  artifacts: per-series fitted descriptions (orders, fallbacks, failures) and per-series
  backtest metrics;
- each family's fitted models as ONE ``mlflow.pyfunc`` model (:class:`ForecasterSet`); the
  champion set (per series, the champion's fitted model) is logged the same way;
- what is logged comes from the run's results (flows/results.py): the same tables as published,
  the headline metrics, and the timings (seconds per stage, fitting seconds per model), which
  are kept out of the CSVs so that reruns publish byte-identical files.

The registry: :meth:`PipelineTracker.promote_champion` registers the champion set as a new
version of ``mlflow.registered_model`` and moves the ``champion`` alias to it (aliases, not
stages). The pipeline calls it only AFTER a successful publish of a run on the production
source (``mlflow.production_source``); otherwise the alias stays where it was, and run.json
records the version it points to and why this run did not move it.

If the pipeline raises inside ``with PipelineTracker(...)``, the parent run (and an open
child) ends with status FAILED; if that bookkeeping fails, the pipeline's own error still
propagates (the supervisor or the next run's reaper ends the run). Logging is in bulk: one
``log_params``/``log_metrics`` call per run, never a run per series.

Runs left RUNNING by a dead process (SIGKILL, OOM killer, power loss): each parent run records
the pid, hostname and start time of the process that runs it (``exportcast.pid``,
``exportcast.hostname``, ``exportcast.process_start``). Entering the tracker first looks for
RUNNING runs of the experiment recorded on this host whose process is gone (or whose pid now
belongs to a process started at another time) and marks them, and their RUNNING child runs,
FAILED with a note saying so (:func:`reap_stale_runs`); the Prefect flow runs they name
(``prefect_flow_run_id``) are set to Crashed (flows/prefect_runs.py). Runs of another host, or
without these tags, are left alone: nothing here can tell whether their process lives.

The experiment carries ``mlflow.experimentKind = custom_model_development`` so the MLflow UI
opens it on its runs (not on the GenAI overview), and each parent run logs its input dataset
(:meth:`PipelineTracker.log_dataset`: name, data hash, rows, series, months).

Nothing here reads the environment: the customs key never reaches MLflow.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import socket
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import psutil
from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema

from flows.results import CHAMPION_ALIAS, INSTITUTIONAL_TABLES, RegistryRecord, Results
from flows.settings import DataSettings, MlflowSettings

# What the pyfunc takes and returns: one row per series with a horizon (months) or an end month.
PYFUNC_SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec("string", "unique_id"),
            ColSpec("long", "horizon", required=False),
            ColSpec("string", "until", required=False),
        ]
    ),
    outputs=Schema(
        [
            ColSpec("string", "unique_id"),
            ColSpec("datetime", "ds"),
            ColSpec("string", "model"),
            *(ColSpec("double", c) for c in ("forecast", "lo_80", "hi_80", "lo_95", "hi_95")),
        ]
    ),
)

METRIC_KEYS: tuple[str, ...] = ("mase", "smape", "rmsse", "coverage_80", "coverage_95")
PYFUNC_NAME = "model"
#: packages the pyfunc models need at load time (pinned to the versions that logged them)
_RUNTIME_PACKAGES: tuple[str, ...] = ("numpy", "pandas", "scipy", "statsmodels", "prophet", "cloudpickle", "mlflow")
_FORECAST_COLUMNS: tuple[str, ...] = ("forecast", "lo_80", "hi_80", "lo_95", "hi_95")
#: the experiment tag the MLflow 3 UI reads to choose its layout, and our value: a model-training
#: experiment, which opens on the runs (the UI's own values: genai_development, custom_model_development)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
#: tags naming the process that runs a parent run (to recognise runs left RUNNING by a dead process)
PID_TAG = "exportcast.pid"
HOST_TAG = "exportcast.hostname"
START_TAG = "exportcast.process_start"
REAPED_TAG = "exportcast.reaped_by"
NOTE_TAG = "mlflow.note.content"  # the run's description in the MLflow UI
PARENT_TAG = "mlflow.parentRunId"
#: two start times closer than this are the same process (the tag keeps 3 decimals)
_START_TOLERANCE_SECONDS = 1.0


# ------------------------------------------------------------------ pyfunc model
class ForecasterSet(PythonModel):
    """Fitted forecasters of one family (or the champion set), one per series.

    ``predict(context, model_input)``: ``model_input`` is a DataFrame with ``unique_id`` and
    either ``horizon`` (months after the series' last observation) or ``until`` (a month,
    e.g. ``2026-12``); returns rows ``unique_id, ds, model, forecast, lo_80, hi_80, lo_95,
    hi_95``. ``exog`` (index ds, e.g. ``working_days``, covering the forecast months) is kept with
    the models; as in the engine, only models with ``uses_exog`` receive it, so every model
    forecasts exactly as it did in the pipeline."""

    def __init__(
        self,
        models: Mapping[str, Any],
        model_names: Mapping[str, str],
        exog: pd.DataFrame | None = None,
        series_exog: Mapping[str, pd.DataFrame] | None = None,
    ) -> None:
        missing = sorted(set(models) - set(model_names))
        if missing:
            raise ValueError(f"model_names lacks the model name of series {missing}")
        self.models = dict(models)
        self.model_names = {uid: model_names[uid] for uid in self.models}
        self.exog = None if exog is None else exog.copy()
        # one series' own regressor columns (a leading model's indicator as of the run), joined to exog
        self.series_exog = {uid: x.copy() for uid, x in (series_exog or {}).items() if uid in self.models}

    def _exog_of(self, uid: str) -> pd.DataFrame | None:
        from models.core.engine import with_own_columns

        # models logged before series_exog existed have none
        return with_own_columns(self.exog, getattr(self, "series_exog", {}).get(uid))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame) or "unique_id" not in model_input.columns:
            raise ValueError("model_input must be a DataFrame with a 'unique_id' column and 'horizon' or 'until'")
        if "horizon" not in model_input.columns and "until" not in model_input.columns:
            raise ValueError(f"model_input needs a 'horizon' or an 'until' column; got {list(model_input.columns)}")
        frames = []
        for row_no, row in enumerate(model_input.to_dict("records")):
            uid = str(row["unique_id"])
            if uid not in self.models:
                raise KeyError(
                    f"row {row_no}: no fitted model for series '{uid}'; known: {', '.join(sorted(self.models))}"
                )
            model = self.models[uid]
            h = self._horizon(row_no, row, model.last_ds_)
            # as in the engine: only models that declare uses_exog get the regressors
            x_future = self._exog_of(uid) if getattr(model, "uses_exog", False) else None
            fc = model.predict(h, x_future)
            out = fc.reset_index().rename(columns={fc.index.name or "index": "ds"})
            out.insert(0, "unique_id", uid)
            out.insert(2, "model", self.model_names[uid])
            frames.append(out[["unique_id", "ds", "model", *_FORECAST_COLUMNS]])
        if not frames:
            return pd.DataFrame(columns=["unique_id", "ds", "model", *_FORECAST_COLUMNS])
        return pd.concat(frames, ignore_index=True)

    @staticmethod
    def _horizon(row_no: int, row: Mapping[str, Any], last_ds: pd.Timestamp) -> int:
        horizon = row.get("horizon")
        if horizon is not None and not (isinstance(horizon, float) and math.isnan(horizon)):
            if int(horizon) != horizon or int(horizon) < 1:
                raise ValueError(f"row {row_no}: horizon must be a positive whole number of months; got {horizon!r}")
            return int(horizon)
        until = pd.Timestamp(row["until"]).to_period("M").to_timestamp()
        h = (until.year - last_ds.year) * 12 + (until.month - last_ds.month)
        if h < 1:
            raise ValueError(f"row {row_no}: until {until:%Y-%m} is not after the last observed month {last_ds:%Y-%m}")
        return h


# ------------------------------------------------------------------ helpers
def configure(settings: MlflowSettings) -> str:
    """Point MLflow at the configured store and return the experiment id (created if needed,
    with the configured artifact location)."""
    uri = settings.tracking_uri
    if settings.sqlite_path is not None:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is not None:
        return experiment.experiment_id
    location = settings.artifact_location
    if not location:  # the tracking server's own artifact root (e.g. `mlflow server --serve-artifacts`)
        return client.create_experiment(settings.experiment)
    if "://" not in location:
        Path(location).mkdir(parents=True, exist_ok=True)
        location = Path(location).resolve().as_uri()
    return client.create_experiment(settings.experiment, artifact_location=location)


def process_tags(pid: int | None = None) -> dict[str, str]:
    """pid, hostname and start time (epoch seconds) of a process (default: this one)."""
    proc = psutil.Process(pid)
    return {PID_TAG: str(proc.pid), HOST_TAG: socket.gethostname(), START_TAG: f"{proc.create_time():.3f}"}


def process_is_alive(tags: Mapping[str, str]) -> bool | None:
    """Whether the process named by a run's tags still runs: None when the tags do not tell
    (missing, or another host); False when the pid is gone, a zombie, or now belongs to a
    process started at another time (pid reuse)."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return None
    try:
        proc = psutil.Process(int(tags[PID_TAG]))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        recorded = tags.get(START_TAG)
        if recorded is not None and abs(proc.create_time() - float(recorded)) > _START_TOLERANCE_SECONDS:
            return False
    except psutil.NoSuchProcess:
        return False
    except (psutil.AccessDenied, ValueError):
        return True
    return True


@dataclass(frozen=True)
class StaleRun:
    """A run found RUNNING whose process is dead, and what it was marked."""

    run_id: str
    pid: str
    note: str
    child_run_ids: tuple[str, ...]
    prefect_flow_run_id: str | None


def reap_stale_runs(client: MlflowClient, experiment_id: str, *, by: str) -> list[StaleRun]:
    """Mark FAILED every RUNNING run of the experiment whose recorded process (this host) is
    dead, and the RUNNING child runs of those runs, each with a note. ``by`` names the run
    doing it (it goes in the note)."""
    running = client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=5000)
    children: dict[str, list[str]] = {}
    for run in running:
        parent = run.data.tags.get(PARENT_TAG)
        if parent:
            children.setdefault(parent, []).append(run.info.run_id)
    stale: list[StaleRun] = []
    now_ms = int(time.time() * 1000)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    for run in running:
        tags = run.data.tags
        if process_is_alive(tags) is not False:
            continue
        pid, host = tags[PID_TAG], tags[HOST_TAG]
        note = f"left RUNNING by process {pid} on {host}, dead; marked FAILED by run {by} at {stamp}"
        kids = tuple(children.get(run.info.run_id, ()))
        for run_id, text in [(run.info.run_id, note), *((kid, f"parent run {run.info.run_id} {note}") for kid in kids)]:
            client.set_tag(run_id, REAPED_TAG, by)
            client.set_tag(run_id, NOTE_TAG, text)
            client.set_tag(run_id, "error", text)
            client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.FAILED), end_time=now_ms)
        stale.append(StaleRun(run.info.run_id, pid, note, kids, tags.get("prefect_flow_run_id") or None))
    return stale


def release_interrupted_writes(tb: TracebackType | None) -> None:
    """Close the database connections an exception left open in the frames of its traceback.

    An interruption (SIGTERM, Ctrl-C) raised inside an MLflow write leaves that write's sqlite
    connection, and the write lock it holds, alive in the traceback's frames; marking the run
    FAILED on another connection then waits MLflow's 20 s busy timeout and fails (seen 2026-11-30
    in CI: exit 1 instead of 143, the run left RUNNING; reproduced in 24 of 40 interrupted
    writes). Clearing the finished frames' locals makes the connection unreachable, and a
    collection frees it: a sqlite3 connection sits in a reference cycle of its own, so dropping
    the last name of it does not close it. Frames still running (the caller's) are skipped."""
    traceback.clear_frames(tb)
    gc.collect()


def fail_runs_of_this_process(settings: MlflowSettings, reason: str) -> list[str]:
    """Mark FAILED (with ``reason`` as the note) the RUNNING runs recorded by this process and
    their RUNNING child runs: the pipeline process calls it when a signal stops it, in case the
    tracker's own exit did not get to run. Returns the run ids it ended."""
    uri = settings.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is None:
        return []
    running = client.search_runs(
        [experiment.experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=5000
    )
    mine = {
        r.info.run_id
        for r in running
        if r.data.tags.get(PID_TAG) == str(os.getpid()) and r.data.tags.get(HOST_TAG) == socket.gethostname()
    }
    ended = [r.info.run_id for r in running if r.info.run_id in mine or r.data.tags.get(PARENT_TAG) in mine]
    now_ms = int(time.time() * 1000)
    for run_id in ended:
        client.set_tag(run_id, NOTE_TAG, reason)
        client.set_tag(run_id, "error", reason)
        client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.FAILED), end_time=now_ms)
    return ended


def mark_experiment_kind(client: MlflowClient, experiment_id: str) -> None:
    """Tag the experiment as model training, so the MLflow UI opens it on its runs."""
    experiment = client.get_experiment(experiment_id)
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)


def dataset_name_and_source(data: DataSettings) -> tuple[str, str]:
    """What the Dataset column of the MLflow UI shows for a data source, and where it came from."""
    if data.source == "csv" and data.path is not None:
        return Path(data.path).name, str(Path(data.path).resolve())
    if data.source == "customs_api":
        return "customs_api", "customs_api"
    from flows.update import active_data_dir

    return "exports_monthly (embedded)", str(active_data_dir(data) / "exports_monthly.csv")  # the active vintage


def mean_metrics(metrics: pd.DataFrame) -> dict[str, float]:
    """Means over series and windows of the backtest metrics, same keys for every family
    (NaN when a metric has no finite value, e.g. a family that never produced a forecast)."""
    out: dict[str, float] = {}
    for key in METRIC_KEYS:
        values = pd.to_numeric(metrics[key], errors="coerce").to_numpy(dtype=float) if key in metrics else np.array([])
        finite = values[np.isfinite(values)]
        out[key] = float(finite.mean()) if finite.size else float("nan")
    return out


def pip_requirements() -> list[str]:
    reqs = []
    for name in _RUNTIME_PACKAGES:
        try:
            reqs.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:  # pragma: no cover - optional package absent
            continue
    return reqs


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:6000]


# ------------------------------------------------------------------ tracker
class PipelineTracker:
    """Context manager around the parent run of one pipeline run.

    with PipelineTracker(settings.mlflow, run_name=..., tags=..., params=...) as tracker:
        tracker.log_results(results, fitted, exog, params_of=..., champion_params=...)
        ... publish ...
        record = tracker.promote_champion(allowed, reason)
    """

    def __init__(
        self, settings: MlflowSettings, *, run_name: str, tags: Mapping[str, Any], params: Mapping[str, Any]
    ) -> None:
        self.settings = settings
        self.run_name = run_name
        self.tags = {k: _param_value(v) for k, v in tags.items()}
        self.params = {k: _param_value(v) for k, v in params.items()}
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.family_runs: dict[str, str] = {}
        self.model_uris: dict[str, str] = {}
        self.stale_runs: list[StaleRun] = []

    def __enter__(self) -> PipelineTracker:
        self.experiment_id = configure(self.settings)
        client = MlflowClient()
        mark_experiment_kind(client, self.experiment_id)
        run = mlflow.start_run(
            experiment_id=self.experiment_id, run_name=self.run_name, tags={**self.tags, **process_tags()}
        )
        self.run_id = run.info.run_id
        mlflow.log_params(self.params)
        self.stale_runs = reap_stale_runs(client, self.experiment_id, by=self.run_id)
        flow_runs = {s.prefect_flow_run_id: s.note for s in self.stale_runs if s.prefect_flow_run_id}
        if flow_runs:
            from flows.prefect_runs import crash_flow_runs

            crash_flow_runs(flow_runs)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self._end_runs(RunStatus.to_string(RunStatus.FINISHED), None)
            return
        release_interrupted_writes(tb)
        try:
            self._end_runs(RunStatus.to_string(RunStatus.FAILED), f"{exc_type.__name__}: {exc}"[:5000])
        except MlflowException as failure:  # never hide the run's own error behind the bookkeeping
            # the supervisor's fail_runs_of_this_process, or the next run's reaper, marks it FAILED
            print(
                f"exportcast: could not mark MLflow run {self.run_id} FAILED ({failure.message[:200]})",
                file=sys.stderr,
                flush=True,
            )

    def _end_runs(self, status: str, error: str | None) -> None:
        # close any child left open by an exception, then the parent
        while mlflow.active_run() is not None and mlflow.active_run().info.run_id != self.run_id:
            mlflow.end_run(status=status)
        if mlflow.active_run() is not None:
            if error is not None:
                mlflow.set_tag("error", error)
            mlflow.end_run(status=status)

    # -------------------------------------------------------------- logging
    def log_headline(self, metrics: Mapping[str, float]) -> None:
        clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        if clean:
            mlflow.log_metrics(clean, run_id=self.run_id)

    def log_tables(self, tables: Mapping[str, pd.DataFrame], artifact_path: str) -> None:
        """CSV artifacts of the parent run (e.g. the institutional comparison)."""
        with tempfile.TemporaryDirectory() as tmp:
            for name, table in tables.items():
                table.to_csv(Path(tmp) / name, index=False)
            mlflow.log_artifacts(tmp, artifact_path=artifact_path, run_id=self.run_id)

    def log_dataset(self, frame: pd.DataFrame, digest: str, data: DataSettings) -> None:
        """The input dataset of the run (``mlflow.log_input``, context ``training``): named for
        its source, the data hash as digest (its first 36 characters: MLflow's limit; the full
        hash is an input tag), with rows, series and months as input tags."""
        name, source = dataset_name_and_source(data)
        with warnings.catch_warnings():  # a local path "can be interpreted in multiple ways": all local files
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(frame, source=source, name=name, digest=digest[:36])
        months = frame["ds"].dt.to_period("M")
        tags = {
            "data_hash": digest,
            "source": data.source,
            "rows": str(len(frame)),
            "series": str(frame["unique_id"].nunique()),
            "months": str(months.nunique()),
            "first_month": f"{months.min()}",
            "last_month": f"{months.max()}",
        }
        mlflow.log_input(dataset, context="training", tags=tags)  # the parent is the active run here

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            MlflowClient().set_tag(self.run_id, key, _param_value(value))

    def log_family(
        self,
        family: str,
        params: Mapping[str, Any],
        fits: pd.DataFrame,
        metrics: pd.DataFrame,
        fitted: Mapping[str, Any],
        *,
        exog: pd.DataFrame | None = None,
        series_exog: Mapping[str, pd.DataFrame] | None = None,
        model_names: Mapping[str, str] | None = None,
        extra_tables: Mapping[str, pd.DataFrame] | None = None,
        extra_metrics: Mapping[str, float] | None = None,
    ) -> str:
        """One child run: params, mean metrics, per-series CSVs, the fitted set as one pyfunc
        (its URI kept in ``model_uris[family]``; nothing is registered here). Returns the child
        run id."""
        fits = fits.reset_index(drop=True)
        metrics = metrics.reset_index(drop=True)
        summary = mean_metrics(metrics)
        summary["n_series"] = float(fits["unique_id"].nunique()) if "unique_id" in fits else 0.0
        status = fits["status"].astype(str) if "status" in fits else pd.Series(dtype=str)
        summary["n_failed"] = float((status == "failed").sum())
        if "model_used" in fits and "model" in fits:
            summary["n_fallback"] = float((fits["model_used"].astype(str) != fits["model"].astype(str)).sum())
        else:
            summary["n_fallback"] = 0.0
        summary.update({k: float(v) for k, v in (extra_metrics or {}).items() if math.isfinite(float(v))})
        with mlflow.start_run(
            experiment_id=self.experiment_id,
            run_name=family,
            nested=True,
            tags={"family": family, "parent_run": self.run_id or ""},
        ) as child:
            if params:
                mlflow.log_params({k: _param_value(v) for k, v in _flat_params(params).items()})
            mlflow.log_metrics(summary)
            with tempfile.TemporaryDirectory() as tmp:
                fits.to_csv(Path(tmp) / f"{family}_fits.csv", index=False)
                _per_series_metrics(metrics).to_csv(Path(tmp) / f"{family}_metrics_per_series.csv", index=False)
                metrics.to_csv(Path(tmp) / f"{family}_metrics_per_window.csv", index=False)
                for name, table in (extra_tables or {}).items():
                    table.to_csv(Path(tmp) / name, index=False)
                mlflow.log_artifacts(tmp, artifact_path="tables")
            if fitted:
                names = dict(model_names) if model_names is not None else {uid: family for uid in fitted}
                # MLflow warns on every log that a Python object is cloudpickled: that is the design
                # here (the fitted forecasters ARE the model), so the warning is silenced for this call
                pyfunc_logger = logging.getLogger("mlflow.pyfunc")
                level = pyfunc_logger.level
                pyfunc_logger.setLevel(logging.ERROR)
                try:
                    info = mlflow.pyfunc.log_model(
                        name=PYFUNC_NAME,
                        python_model=ForecasterSet(fitted, names, exog, series_exog),
                        pip_requirements=pip_requirements(),
                        signature=PYFUNC_SIGNATURE,
                        input_example=pd.DataFrame({"unique_id": [next(iter(fitted))], "horizon": [1]}),
                    )
                finally:
                    pyfunc_logger.setLevel(level)
                self.model_uris[family] = info.model_uri
            self.family_runs[family] = child.info.run_id
            return child.info.run_id

    def log_results(
        self,
        results: Results,
        fitted: Mapping[tuple[str, str], Any],
        exog: pd.DataFrame | None,
        *,
        params_of: Mapping[str, Mapping[str, Any]],
        champion_params: Mapping[str, Any],
        series_exog: Mapping[str, pd.DataFrame] | None = None,
    ) -> None:
        """Everything a run logs, read from its results: one child run per model family
        (``params_of`` in config order) and one for the champion set, the headline metrics and the
        institutional tables on the parent. ``fitted``: (series, model) -> fitted forecaster;
        ``series_exog``: a series' own regressor columns (its leading models' indicators)."""
        from flows.results import BACKTEST_METRICS, CHAMPIONS, MODEL_FITS
        from models.selection.champion import CHAMPION

        fits = results.tables[MODEL_FITS]
        metrics = results.tables[BACKTEST_METRICS]
        fit_seconds = results.run.fit_seconds
        for family, params in params_of.items():
            self.log_family(
                family,
                params,
                fits=fits.loc[fits["model"] == family],
                metrics=metrics.loc[metrics["model"] == family],
                fitted={uid: m for (uid, name), m in fitted.items() if name == family},
                exog=exog,
                series_exog=series_exog,
                extra_metrics={"fit_seconds": fit_seconds[family]} if family in fit_seconds else None,
            )
        champion_of = results.champion_of
        self.log_family(
            CHAMPION,
            champion_params,
            fits=fits.loc[[champion_of.get(u) == m for u, m in zip(fits["unique_id"], fits["model"])]],
            metrics=metrics.loc[metrics["model"] == CHAMPION],
            fitted={uid: fitted[(uid, name)] for uid, name in champion_of.items() if (uid, name) in fitted},
            exog=exog,
            series_exog=series_exog,
            model_names=champion_of,
            extra_tables={CHAMPIONS: results.tables[CHAMPIONS]},
        )
        self.log_headline(results.headline_metrics())
        if results.run.institutional_compared:
            self.log_tables({name: results.tables[name] for name in INSTITUTIONAL_TABLES}, "institutional")

    def promote_champion(self, allowed: bool, reason: str) -> RegistryRecord:
        """``allowed``: register this run's champion set as a new version and point the alias at
        it. Otherwise leave the registry as it is. Either way, return where the alias points now."""
        client = MlflowClient()
        name = self.settings.registered_model
        if allowed:
            from models.selection.champion import CHAMPION

            uri = self.model_uris.get(CHAMPION)
            if uri is None:
                raise RuntimeError("model registry: this run logged no champion model to register")
            version = str(mlflow.register_model(uri, name, tags={"parent_run": self.run_id or ""}).version)
            client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
            record = RegistryRecord(name=name, version=version, promoted=True, reason=reason)
        else:
            record = RegistryRecord(name=name, version=self._alias_version(client, name), promoted=False, reason=reason)
        self.set_tags(
            {
                "champion_promoted": str(record.promoted).lower(),
                "champion_version": record.version or "",
                "champion_reason": reason,
            }
        )
        return record

    @staticmethod
    def _alias_version(client: MlflowClient, name: str) -> str | None:
        try:
            return str(client.get_model_version_by_alias(name, CHAMPION_ALIAS).version)
        except MlflowException:  # no such model or alias yet
            return None


def _flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping) and value:
            out.update(_flat_params(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _per_series_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    keys = [k for k in METRIC_KEYS if k in metrics.columns]
    if metrics.empty or "unique_id" not in metrics.columns or not keys:
        return pd.DataFrame(columns=["unique_id", "n_windows", *METRIC_KEYS])
    grouped = metrics.groupby("unique_id", sort=True)
    out = grouped[keys].mean()
    out.insert(0, "n_windows", grouped.size())
    return out.reset_index()
