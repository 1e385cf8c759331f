"""The `exportcast` command: a thin face over features/, models/ and flows/ (no logic here).

Heavy imports happen inside the commands so that `exportcast --help` is instant.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import typer
from typer.core import TyperGroup

from exportcast.errors import DataWarning, ExportcastError

_STATE: dict[str, bool] = {"debug": False, "verbose": False}  # the --debug and --verbose flags of the command being run


class _Commands(TyperGroup):
    """Runs a command; a problem the user can fix (see :func:`user_error`) ends it with ONE
    message on stderr and exit code 2, the traceback only with ``exportcast --debug``. Data
    warnings (e.g. a file cut short) are printed as ``warning: ...`` lines."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        _STATE["debug"] = debug
        _STATE["verbose"] = bool(ctx.params.get("verbose"))
        with _data_warnings_shown(), _tracebacks_logged(debug):
            try:
                return super().invoke(ctx)
            except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
                raise
            except Exception as exc:
                found = user_error(exc)
                if found is None:
                    raise  # a bug: the traceback is what a report needs
                if debug:
                    typer.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
                typer.secho(f"error: {error_message(found)}", fg=typer.colors.RED, err=True)
                raise typer.Exit(code=2) from None


@contextlib.contextmanager
def _data_warnings_shown() -> Iterator[None]:
    """Each data warning as one ``warning: ...`` line, every time it is raised (also in the
    pipeline's own process, which ``exportcast run`` starts afresh)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("always", category=DataWarning)
        warnings.showwarning = _show_warning
        yield


@contextlib.contextmanager
def _tracebacks_logged(debug: bool) -> Iterator[None]:
    """Without --debug, log records of a user error (Prefect logs a failed task or flow with its
    traceback) keep their message but lose the traceback; a bug's records keep theirs."""
    if debug:
        yield
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.exc_info and record.exc_info[1] is not None and user_error(record.exc_info[1]) is not None:
            record.exc_info, record.exc_text = None, None
        return record

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)


app = typer.Typer(
    cls=_Commands,
    help="Forecast South Korea's monthly exports: data, backtests, forecasts, pipeline.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
data_app = typer.Typer(help="Build and inspect the canonical dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")

REPO = Path(__file__).resolve().parents[1]

# Prefect's ephemeral API server migrates a fresh database on first start, which takes longer than
# its default start-up timeout on a 2-core machine; a user's own setting wins.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
DEFAULT_CONFIG = REPO / "config.yaml"
PUBLISH_DIR_HELP = (
    "where a run on a source other than mlflow.production_source publishes "
    "(default: config publish.non_production_dir, else <publish.dir>/<source-or-csv-name>)"
)


def _print_version(value: bool) -> None:
    if value:
        from exportcast import version_text

        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="show the full traceback of an error"),
    verbose: bool = typer.Option(False, "--verbose", help="print every note (config runtime.verbose)"),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="print the version (package and git head) and exit",
    ),
) -> None:
    """Forecast South Korea's monthly exports: data, backtests, forecasts, pipeline."""


def user_error(exc: BaseException) -> BaseException | None:
    """The user-fixable error behind ``exc`` (itself, or what it was raised from), or None.

    User-fixable: the project's own errors (:class:`ExportcastError`), OS errors on the paths
    the user named (missing file, a folder where a file belongs, no permission), invalid
    settings (pydantic), the report's input errors and the dataset build's checks of the raw
    files (these two classes live in modules other helpers own, so they are mapped here rather
    than re-based on ExportcastError). Errors re-raised by Prefect or wrapped
    by other code are followed through ``__cause__``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _user_error_types()):
            return current
        current = current.__cause__
    return None


def _user_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [ExportcastError, OSError, UnicodeDecodeError]
    # only look at modules already imported: an error of a module never imported cannot be raised
    for module, name in (
        ("pydantic", "ValidationError"),
        ("flows.report", "ReportError"),
        ("features.raw_tables", "DatasetCheckError"),
    ):
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type):
            types.append(cls)
    return tuple(types)


def error_message(exc: BaseException) -> str:
    """The message of a user error, naming the file or setting (no ``[Errno 13]`` noise)."""
    if isinstance(exc, OSError) and exc.strerror:
        names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
        if not names or all(name in exc.strerror for name in names):
            return exc.strerror
        return f"{' -> '.join(names)}: {exc.strerror}"
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):  # settings built outside load_settings
        problems = [
            f"'{'.'.join(str(p) for p in err['loc'])}': {str(err['msg']).removeprefix('Value error, ')} "
            f"(got {err.get('input')!r})"
            for err in exc.errors()
        ]
        return f"invalid settings ({exc.title}): " + "; ".join(problems)
    return str(exc)


_SHOW_WARNING = warnings.showwarning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A data warning as one ``warning: ...`` line; any other warning as Python shows it."""
    if issubclass(category, DataWarning):
        typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)
    else:
        _SHOW_WARNING(message, category, filename, lineno, file, line)


@data_app.command("build")
def data_build(
    raw: Path = typer.Option(
        REPO.parent / "shared" / "data" / "raw", help="folder of the raw public files (see its PROVENANCE.md)"
    ),
    projections: Path = typer.Option(
        REPO.parent / "shared" / "data" / "projections", help="folder of projections.csv and actuals.csv"
    ),
    out: Path = typer.Option(REPO / "data", help="where to write the canonical CSVs"),
) -> None:
    """Rebuild data/exports_monthly.csv, data/series.csv, the indicator tables and the institutional tables from the raw files."""
    from features.dataset_builder import build_dataset
    from features.projections import build_projections

    report = build_dataset(raw, out)
    typer.echo(str(report))
    build_projections(projections, out)
    typer.echo(f"wrote {out}/institutional_projections.csv and {out}/annual_actuals.csv")


@data_app.command("update")
def data_update(config: Path = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="settings file")) -> None:
    """Fetch every upstream (data.upstream / data.upstream_base), rebuild and check the dataset in
    staging, and make it the active vintage of data.home only if everything passes."""
    from flows.settings import load_settings
    from flows.update import run_update

    outcome = run_update(load_settings(config))  # a refused update: one `error:` line, exit 2
    typer.echo(outcome.message)


@data_app.command("export")
def data_export(
    out: Path = typer.Option(..., "--out", "-o", help="folder to write the canonical files into"),
    config: Path = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="settings file"),
) -> None:
    """Write the active vintage's exports_monthly.csv, series.csv and indicators_monthly.csv into --out."""
    from features.vintages import export
    from flows.settings import load_settings

    vintage, paths = export(load_settings(config).data.home, out)
    typer.echo(f"{vintage.describe()}: wrote {', '.join(str(p) for p in paths)}")


@data_app.command("vintages")
def data_vintages(config: Path = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="settings file")) -> None:
    """List the vintages of data.home (the last one is active): id, created, data through, rows added/revised."""
    from features.vintages import list_vintages
    from flows.settings import load_settings

    home = load_settings(config).data.home
    found = list_vintages(home)
    for v in found:
        typer.echo(
            f"{v.id}  {v.created_at}  data through {v.data_through}  +{v.rows_added} rows, "
            f"{v.rows_revised} revised, {v.rows_removed} withdrawn"
        )
    typer.echo(f"{len(found)} vintage(s) in {home}; active: {found[-1].id if found else 'the seed data/'}")


@data_app.command("summary")
def data_summary(
    data_dir: Path | None = typer.Option(
        None, help="folder of the canonical dataset (default: the active vintage, else data/)"
    ),
    config: Path = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="settings file"),
) -> None:
    """Per-series summary of the embedded dataset: span, observations, gaps, sources."""
    import pandas as pd

    from features.readers import read_embedded, read_series_metadata

    if data_dir is None:
        from flows.settings import load_settings
        from flows.update import active_data_dir

        data_dir = active_data_dir(load_settings(config))
    frame = read_embedded(data_dir)
    meta = read_series_metadata(data_dir)
    stats = frame.groupby("unique_id").agg(
        first=("ds", "min"), last=("ds", "max"), n_obs=("y", "size"), last_value_usd_bn=("y", "last")
    )
    stats["last_value_usd_bn"] = (stats["last_value_usd_bn"] / 1e9).round(3)
    table = meta.set_index("unique_id")[["level", "name_en", "n_missing"]].join(stats)
    table["first"] = table["first"].dt.strftime("%Y-%m")
    table["last"] = table["last"].dt.strftime("%Y-%m")
    with pd.option_context("display.max_rows", 500, "display.width", 160):
        typer.echo(table.to_string())
    typer.echo(f"\n{len(table)} series, {len(frame)} observations")


# the data checks of a user CSV (config data.strict, data.allow_negative, data.signed): a flag given wins
STRICT = typer.Option(
    None,
    "--strict/--no-strict",
    help="refuse the whole file on a bad row (default: config data.strict; else the series is left out)",
)
ALLOW_NEGATIVE = typer.Option(
    None,
    "--allow-negative/--no-allow-negative",
    help="admit negative values in every series (default: config data.allow_negative)",
)
SIGNED = typer.Option(
    None, "--signed", help="comma-separated unique_ids admitted with negative values (config data.signed)"
)


def _with_options(settings: Any, strict: bool | None, allow_negative: bool | None, signed: str | None) -> Any:
    """The settings with the command line's data checks applied (config ``data.*`` otherwise),
    and ``runtime.verbose`` under ``exportcast --verbose``."""
    if _STATE["verbose"]:
        settings = settings.updated("runtime", verbose=True)
    values: dict[str, Any] = {}
    if strict is not None:
        values["strict"] = strict
    if allow_negative is not None:
        values["allow_negative"] = allow_negative
    if signed is not None:
        values["signed"] = [s.strip() for s in signed.split(",") if s.strip()]
    return settings.updated("data", **values) if values else settings


@app.command()
def validate(
    input: Path = typer.Option(..., "--input", "-i", help="CSV in long form unique_id,ds,y"),
    config: Path = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="settings file"),
    strict: bool | None = STRICT,
    allow_negative: bool | None = ALLOW_NEGATIVE,
    signed: str | None = SIGNED,
) -> None:
    """Check a user CSV against the data contract and print what would be used."""
    from flows.settings import load_settings

    settings = _with_options(load_settings(config), strict, allow_negative, signed)
    frame = _read_input(input, settings)
    spans = frame.groupby("unique_id")["ds"].agg(["min", "max", "size"])
    typer.echo(f"{input}: {len(frame)} rows, {len(spans)} series, OK")
    for uid, row in spans.iterrows():
        typer.echo(f"  {uid}: {row['min']:%Y-%m}..{row['max']:%Y-%m} ({row['size']} months)")


def _settings_with_models(config: Path, models: str | None):
    from flows.settings import load_settings

    settings = load_settings(config)
    if models:  # exactly these models: a configured leading model runs only if named
        names = [m.strip() for m in models.split(",") if m.strip()]
        leading = {uid: [m for m in ms if m in names] for uid, ms in settings.models.leading.items()}
        leading = {uid: ms for uid, ms in leading.items() if ms}
        in_leading = {m for ms in leading.values() for m in ms}
        settings = settings.updated("models", enabled=[n for n in names if n not in in_leading], leading=leading)
    return settings


def _active_data(settings: Any) -> Path:
    """The embedded data folder the commands read: the active vintage's, else data/."""
    from flows.update import active_data_dir

    return active_data_dir(settings)


def _read_input(path: Path, settings: Any):
    """A user CSV through the one validation at the edge, with the settings' data checks (a bad
    file is a user error; a series with a bad row is left out with a warning unless strict)."""
    from features.readers import read_user_csv

    return read_user_csv(path, **settings.data.checks())


def _write_tables(out: Path, tables: dict) -> None:
    """Each table as a CSV in ``out``, written atomically (temp file + rename)."""
    from flows.publish import csv_bytes, write_atomic

    for name, table in tables.items():
        write_atomic(out / name, csv_bytes(table))
    typer.echo(f"wrote {', '.join(f'{out}/{name}' for name in tables)}")


@app.command()
def backtest(
    input: Path = typer.Option(..., "--input", "-i", help="CSV in long form unique_id,ds,y"),
    horizon: int = typer.Option(12, "--horizon", help="months ahead at each cutoff", min=1),
    windows: int = typer.Option(4, "--windows", "-w", min=1, help="number of rolling cutoffs"),
    step: int = typer.Option(6, "--step", "-s", min=1, help="months between cutoffs"),
    models: str | None = typer.Option(None, "--models", "-m", help="comma-separated model names (default: config)"),
    out: Path = typer.Option(Path("backtest_out"), "--out", "-o", help="output folder"),
    config: Path = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="settings file"),
    strict: bool | None = STRICT,
    allow_negative: bool | None = ALLOW_NEGATIVE,
    signed: str | None = SIGNED,
) -> None:
    """Rolling-origin backtest of every model on a user CSV: backtest_forecasts.csv, backtest_metrics.csv, champions.csv."""
    from flows.jobs import backtest_frame, leading_for, leading_indicators

    settings = _with_options(_settings_with_models(config, models), strict, allow_negative, signed)
    frame = _read_input(input, settings)
    settings = leading_for(settings, frame, universe=frame["unique_id"].unique())  # a user CSV's series
    result = backtest_frame(
        frame,
        settings,
        horizon=horizon,
        windows=windows,
        step=step,
        progress=True,
        indicators=leading_indicators(settings, _active_data(settings)),
    )
    _write_tables(
        out,
        {
            "backtest_forecasts.csv": result.forecasts,
            "backtest_metrics.csv": result.metrics,
            "champions.csv": result.champions,
        },
    )
    summary = (
        result.metrics.groupby("model")[["mase", "smape", "coverage_80", "coverage_95"]].mean().sort_values("mase")
    )
    typer.echo(summary.round(3).to_string())


@app.command()
def forecast(
    input: Path = typer.Option(..., "--input", "-i", help="CSV in long form unique_id,ds,y"),
    horizon: int = typer.Option(12, "--horizon", help="months ahead", min=1),
    models: str | None = typer.Option(None, "--models", "-m", help="comma-separated model names (default: config)"),
    out: Path = typer.Option(Path("forecast_out"), "--out", "-o", help="output folder"),
    config: Path = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="settings file"),
    strict: bool | None = STRICT,
    allow_negative: bool | None = ALLOW_NEGATIVE,
    signed: str | None = SIGNED,
) -> None:
    """Fit every model on a user CSV and forecast H months: forecast.csv and model_fits.csv."""
    from flows.jobs import forecast_frame, leading_for, leading_indicators

    settings = _with_options(_settings_with_models(config, models), strict, allow_negative, signed)
    frame = _read_input(input, settings)
    settings = leading_for(settings, frame, universe=frame["unique_id"].unique())  # a user CSV's series
    from flows.results import split_timings

    result = forecast_frame(
        frame, settings, horizon=horizon, progress=True, indicators=leading_indicators(settings, _active_data(settings))
    )
    fits, fit_seconds = split_timings(result.fits)  # timings are printed, not written: reruns give identical files
    _write_tables(out, {"forecast.csv": result.forecasts, "model_fits.csv": fits})
    if fit_seconds:
        typer.echo("fit seconds: " + ", ".join(f"{name} {sec:.1f}" for name, sec in sorted(fit_seconds.items())))


@app.command()
def run(
    config: Path = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="settings file"),
    source: str | None = typer.Option(None, help="override data.source: embedded | csv | customs_api"),
    strict: bool | None = STRICT,
    allow_negative: bool | None = ALLOW_NEGATIVE,
    signed: str | None = SIGNED,
    publish_dir: Path | None = typer.Option(None, "--publish-dir", help=PUBLISH_DIR_HELP),
) -> None:
    """The monthly pipeline (Prefect flow `monthly-forecast`): ingest, backtest, forecast, compare, publish, report."""
    from flows.preflight import prepare_run
    from flows.settings import load_settings
    from flows.supervise import run_supervised

    # the options and source applied, the publish folder chosen, the data path and that folder checked: before any compute
    settings = prepare_run(_with_options(load_settings(config), strict, allow_negative, signed), source, publish_dir)
    debug = _STATE["debug"]
    # in a child process (flows/supervise.py), which drops the tracebacks of user errors from its logs too
    code = run_supervised(settings, source, target=_pipeline_with_tracebacks if debug else _pipeline_quietly)
    if code:
        raise typer.Exit(code=code)


def _pipeline_quietly(settings: Any, source: str | None) -> None:
    """The supervised pipeline process without --debug: Prefect's log records of a user error lose their traceback."""
    with _tracebacks_logged(False):
        _pipeline_with_tracebacks(settings, source)


def _pipeline_with_tracebacks(settings: Any, source: str | None) -> None:
    from flows.supervise import run_pipeline_with_source

    with _data_warnings_shown():
        run_pipeline_with_source(settings, source)


@app.command()
def flash(
    config: Path = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="settings file"),
    source: str | None = typer.Option(None, help="override data.source: embedded | csv | customs_api"),
    publish_dir: Path | None = typer.Option(None, "--publish-dir", help=PUBLISH_DIR_HELP),
) -> None:
    """The flash nowcast once (Prefect flow `flash-nowcast`): this month from the customs 10-day/20-day flash; publishes nowcast.csv and tracking.csv only."""
    from flows.flash import check_flash_source
    from flows.preflight import prepare_run
    from flows.settings import load_settings
    from flows.supervise import run_supervised

    settings = load_settings(config)
    check_flash_source(settings, source)  # a bad flash file or source: one line before anything starts
    settings = prepare_run(settings, source, publish_dir)  # so do the data path and the publish folder
    # the same supervisor as `exportcast run`: nothing the flow starts outlives the command
    code = run_supervised(settings, source, target=_flash_with_tracebacks if _STATE["debug"] else _flash_quietly)
    if code:
        raise typer.Exit(code=code)


def _flash_quietly(settings: Any, source: str | None) -> None:
    """The supervised flash process without --debug: log records of a user error lose their traceback."""
    with _tracebacks_logged(False):
        _flash_with_tracebacks(settings, source)


def _flash_with_tracebacks(settings: Any, source: str | None) -> None:
    from flows.flash import run_flash_with_source

    run_flash_with_source(settings, source)


@app.command()
def report(
    outputs: Path | None = typer.Option(None, help="folder of the published outputs (default: config publish.dir)"),
    config: Path = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="settings file"),
) -> None:
    """Rebuild outputs/report.html from the published outputs."""
    from flows.report import write_report
    from flows.settings import load_settings
    from flows.update import active_data_dir

    settings = load_settings(config)
    folder = outputs or Path(settings.publish.dir)
    path = write_report(folder, data_dir=active_data_dir(settings))
    typer.echo(f"wrote {path}")


@app.command()
def serve(
    config: Path = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="settings file"),
    source: str = typer.Option("embedded", help="data source parameter of the scheduled runs"),
    cron: str = typer.Option(
        "0 9 16 * *", "--cron", help="when to run, a five-field cron expression (default: 09:00 on the 16th)"
    ),
    timezone: str = typer.Option("Asia/Seoul", "--timezone", help="IANA time zone of --cron"),
    flash_cron: str = typer.Option(
        "0 9 11,21 * *", "--flash-cron", help="when to run the flash nowcast (default: 09:00 on the 11th and the 21st)"
    ),
    flash_timezone: str = typer.Option("Asia/Seoul", "--flash-timezone", help="IANA time zone of --flash-cron"),
) -> None:
    """Serve the scheduled deployments until stopped: monthly-forecast (09:00 on the 16th) and
    flash-nowcast (09:00 on the 11th and the 21st), Asia/Seoul.

    Needs a Prefect server (its scheduler creates the runs): `prefect server start --host 127.0.0.1`,
    then PREFECT_API_URL=http://127.0.0.1:4200/api; with no PREFECT_API_URL this refuses.
    One run of each deployment at a time; stopping serve ends the runs it started."""
    from flows.deployment import serve_supervised
    from flows.settings import load_settings

    # a bad cron / time zone or no reachable server is a ScheduleError / PrefectServerError: one line, exit 2;
    # the runner then runs in the supervised child of `exportcast run` (flows/supervise.py)
    code = serve_supervised(
        load_settings(config),
        source=source,
        config_path=str(config),
        cron=cron,
        timezone=timezone,
        flash_cron=flash_cron,
        flash_timezone=flash_timezone,
    )
    if code:
        raise typer.Exit(code=code)


@app.command("models")
def list_models() -> None:
    """List the registered models."""
    from models.core import registry

    for name in registry.available():
        cls = registry.get(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        typer.echo(f"{name:16s} {doc[0] if doc else ''}")


if __name__ == "__main__":
    app()
