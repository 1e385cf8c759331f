"""Every `exportcast` command in a subprocess, on real files (issue 19 item 1), the checks made
before Prefect starts (item 6), a user CSV's run in its own folder (item 5) and --version (item 11).

`exportcast run` on the embedded data is covered by tests/flows (the pipeline) and
tests/cli/test_errors.py (its errors); here it runs once, on a user CSV, to show that the
production outputs are left byte-identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
THREE = ("total", "destination:china", "destination:japan")  # long, gap-free series of the embedded data


def _cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``exportcast *args`` in a fresh interpreter (the code of this checkout), in ``tmp_path``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EXPORTCAST__", "PREFECT_API_URL"))}
    environ.update(
        {
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "MPLBACKEND": "Agg",
            "PYTHONPATH": str(REPO),
            **(env or {}),
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "exportcast.cli", *args],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_error(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"error: {message}\n"
    assert "Traceback" not in proc.stdout + proc.stderr


def _three_csv(folder: Path, months: int = 72) -> Path:
    """The last ``months`` months of three embedded series as a user CSV (unique_id,ds,y)."""
    frame = pd.read_csv(DATA / "exports_monthly.csv")
    frame = frame[frame["unique_id"].isin(THREE)].groupby("unique_id").tail(months)
    path = folder / "three.csv"
    frame[["unique_id", "ds", "y"]].to_csv(path, index=False)
    return path


def _config(folder: Path, csv: Path, publish: Path) -> Path:
    cfg = folder / "config.yaml"
    cfg.write_text(
        f"target_year: 2026\ndata:\n  source: csv\n  path: {csv}\n"
        "models:\n  enabled: [seasonal_naive, naive]\n  leading: {}\n  n_paths: 100\n"
        "backtest:\n  horizon: 6\n  windows: 2\n  step: 6\n"
        f"publish:\n  dir: {publish}\n"
        f"mlflow:\n  tracking_uri: sqlite:///{folder}/mlflow.db\n  artifact_location: {folder}/artifacts\n"
        "runtime:\n  n_jobs: 1\n",
        encoding="utf-8",
    )
    return cfg


# ----------------------------------------------------------------------------------- --version
def test_version_names_the_package_and_the_git_head(tmp_path):
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    proc = _cli(tmp_path, "--version")
    assert proc.returncode == 0, proc.stderr
    expected = head.stdout.strip() if head.returncode == 0 else "unknown"
    assert proc.stdout == f"exportcast 0.1.0 (git {expected})\n"


def test_version_outside_a_git_checkout_is_unknown(tmp_path):
    from exportcast import git_short_head

    assert git_short_head(tmp_path) == "unknown"  # a folder that is no checkout: never an enclosing repo's HEAD


# ----------------------------------------------------------------------------------- data
def test_data_build_rebuilds_the_committed_files_byte_for_byte(tmp_path):
    out = tmp_path / "data"
    proc = _cli(tmp_path, "data", "build", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"44 series, 3575 rows -> {out}"
    assert proc.stdout.splitlines()[-1] == f"wrote {out}/institutional_projections.csv and {out}/annual_actuals.csv"
    committed = sorted(p.name for p in DATA.glob("*.csv"))
    assert sorted(p.name for p in out.glob("*.csv")) == committed and len(committed) == 6
    assert [name for name in committed if (out / name).read_bytes() != (DATA / name).read_bytes()] == []


def test_data_build_without_the_raw_folder_is_one_line(tmp_path):
    missing = tmp_path / "no-raw"
    _one_error(
        _cli(tmp_path, "data", "build", "--raw", str(missing), "--out", str(tmp_path / "data")),
        f"raw directory {missing} does not exist",
    )
    assert not (tmp_path / "data").exists()


def test_data_summary_lists_every_series(tmp_path):
    proc = _cli(tmp_path, "data", "summary")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "44 series, 3575 observations"
    total = next(line.split() for line in lines if line.startswith("total "))
    assert total[-4:] == ["2000-01", "2025-12", "312", "69.514"]  # first, last, n_obs, Dec 2025 in USD bn
    december = pd.read_csv(DATA / "exports_monthly.csv").query("unique_id == 'total' and ds == '2025-12-01'")
    assert round(float(december["y"].iloc[0]) / 1e9, 3) == 69.514


# ----------------------------------------------------------------------------------- user CSV commands
def test_validate_a_real_file(tmp_path):
    csv = _three_csv(tmp_path)
    proc = _cli(tmp_path, "validate", "--input", str(csv))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{csv}: 216 rows, 3 series, OK",
        "  destination:china: 2020-01..2025-12 (72 months)",
        "  destination:japan: 2020-01..2025-12 (72 months)",
        "  total: 2020-01..2025-12 (72 months)",
    ]


def test_forecast_a_real_file_is_last_years_months_for_seasonal_naive(tmp_path):
    csv = _three_csv(tmp_path)
    out = tmp_path / "fc"
    proc = _cli(
        tmp_path,
        "forecast",
        "--input",
        str(csv),
        "--horizon",
        "3",
        "--models",
        "seasonal_naive",
        "--out",
        str(out),
        env={"EXPORTCAST__RUNTIME__N_JOBS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}/forecast.csv, {out}/model_fits.csv" in proc.stdout, proc.stdout + proc.stderr
    fc = pd.read_csv(out / "forecast.csv")
    got = fc[(fc["unique_id"] == "total") & (fc["model"] == "seasonal_naive")]
    history = pd.read_csv(csv)
    last_year = history[
        (history["unique_id"] == "total") & history["ds"].isin(["2025-01-01", "2025-02-01", "2025-03-01"])
    ]
    assert got["ds"].tolist() == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert got["forecast"].tolist() == last_year["y"].astype(float).tolist()
    fits = pd.read_csv(out / "model_fits.csv")
    assert set(fits["status"]) == {"ok"} and len(fits) == 3


def test_backtest_a_real_file_scores_seasonal_naive_against_the_year_before(tmp_path):
    csv = _three_csv(tmp_path)
    out = tmp_path / "bt"
    proc = _cli(
        tmp_path,
        "backtest",
        "--input",
        str(csv),
        "--horizon",
        "6",
        "--windows",
        "2",
        "--step",
        "6",
        "--models",
        "seasonal_naive",
        "--out",
        str(out),
        env={"EXPORTCAST__RUNTIME__N_JOBS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    forecasts = pd.read_csv(out / "backtest_forecasts.csv", parse_dates=["ds", "cutoff"])
    snaive = forecasts[(forecasts["unique_id"] == "destination:japan") & (forecasts["model"] == "seasonal_naive")]
    assert sorted(snaive["cutoff"].dt.strftime("%Y-%m").unique()) == ["2024-12", "2025-06"]
    y = pd.read_csv(csv, parse_dates=["ds"])
    y = y[y["unique_id"] == "destination:japan"].set_index("ds")["y"].astype(float)
    # each month's forecast is the same month a year earlier (all inside the training part at h <= 6 < 12)
    assert snaive["forecast"].tolist() == [y[d - pd.DateOffset(months=12)] for d in snaive["ds"]]
    assert snaive["y"].tolist() == [y[d] for d in snaive["ds"]]
    metrics = pd.read_csv(out / "backtest_metrics.csv")
    assert len(metrics[metrics["model"] == "seasonal_naive"]) == 6  # 3 series x 2 windows


def test_models_lists_the_registry_in_a_subprocess(tmp_path):
    proc = _cli(tmp_path, "models")
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert {"seasonal_naive", "naive", "ets", "theta", "arima", "prophet", "ensemble", "cycle_blend"} <= set(names)


# ----------------------------------------------------------------------------------- flash / serve
def test_flash_without_the_flash_file_is_one_line_before_prefect(tmp_path):
    cfg = _config(tmp_path, _three_csv(tmp_path), tmp_path / "outputs")
    proc = _cli(tmp_path, "flash", "--config", str(cfg))
    _one_error(
        proc,
        "data.source is 'csv' but data.indicators_path is not set: the flash-nowcast flow needs the "
        "flash figures as a CSV in the format of data/indicators_monthly.csv "
        "(indicator,ds,value,unit,available_from,source)",
    )
    assert not list((tmp_path / "prefect-home").glob("*.db"))  # no Prefect server was started


def test_serve_without_a_prefect_server_is_one_line(tmp_path):
    from flows.deployment import LOCAL_API_URL, START_SERVER

    proc = _cli(tmp_path, "serve", "--config", str(REPO / "config.yaml"))
    _one_error(
        proc,
        "no PREFECT_API_URL: schedules need a Prefect server with its scheduler; start one with "
        f"`{START_SERVER}` and rerun with PREFECT_API_URL={LOCAL_API_URL}",
    )


# ----------------------------------------------------------------------------------- item 6: before Prefect
def _timed(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    proc = _cli(tmp_path, *args, env=env)
    return proc, time.perf_counter() - start


def test_a_missing_user_csv_is_one_line_before_prefect(tmp_path):
    missing = tmp_path / "three.csv"
    proc, seconds = _timed(
        tmp_path,
        "run",
        "--config",
        str(REPO / "config.yaml"),
        env={"EXPORTCAST__DATA__SOURCE": "csv", "EXPORTCAST__DATA__PATH": str(missing)},
    )
    _one_error(proc, f"data.path {missing}: no such file (config data.path or EXPORTCAST__DATA__PATH)")
    assert seconds < 15  # measured 0.45 s of CPU, 3.5 s wall on a loaded 2-core machine (docs/decisions/0110)
    assert not (tmp_path / "prefect-home").exists()  # Prefect never started


def test_a_folder_as_user_csv_is_one_line(tmp_path):
    cfg = _config(tmp_path, tmp_path, tmp_path / "outputs")
    _one_error(
        _cli(tmp_path, "run", "--config", str(cfg)),
        f"data.path {tmp_path}: is a folder, not a CSV file (config data.path or EXPORTCAST__DATA__PATH)",
    )


def test_an_unwritable_publish_dir_is_one_line_before_prefect(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n", encoding="utf-8")
    cfg = _config(tmp_path, _three_csv(tmp_path), tmp_path / "outputs")
    proc, seconds = _timed(tmp_path, "run", "--config", str(cfg), "--publish-dir", str(blocker / "out"))
    _one_error(
        proc,
        f"publish.dir {blocker / 'out'}: cannot write the outputs there (Not a directory); choose a "
        "writable folder (config publish.dir or EXPORTCAST__PUBLISH__DIR)",
    )
    assert seconds < 15
    assert not (tmp_path / "prefect-home").exists()


def test_a_user_csv_run_is_refused_the_production_folder(tmp_path):
    outputs = tmp_path / "outputs"
    cfg = _config(tmp_path, _three_csv(tmp_path), outputs)
    _one_error(
        _cli(tmp_path, "run", "--config", str(cfg), "--publish-dir", str(outputs)),
        f"publish dir {outputs}: is the production outputs folder (publish.dir), and data source csv is not "
        "the production source embedded (mlflow.production_source); choose another folder",
    )


def test_a_bad_setting_is_one_line_before_prefect(tmp_path):
    proc, seconds = _timed(
        tmp_path, "run", "--config", str(REPO / "config.yaml"), env={"EXPORTCAST__BACKTEST__WINDOWS": "0"}
    )
    _one_error(
        proc,
        "environment variable EXPORTCAST__BACKTEST__WINDOWS: invalid configuration: 'backtest.windows': "
        "Input should be greater than or equal to 1 (got '0')",
    )
    assert seconds < 15
    assert not (tmp_path / "prefect-home").exists()


# ----------------------------------------------------------------------------------- item 5: own folder
@pytest.mark.slow  # a real pipeline run (Prefect's temporary server, MLflow) on three series, cheap models
def test_a_user_csv_run_publishes_to_its_own_folder_and_leaves_production_alone(tmp_path):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    production = {
        "report.html": b"<html>production report</html>\n",
        "run.json": b'{"data_source": "embedded"}\n',
        "forecast_annual.csv": b"unique_id,year,model\ntotal,2026,ensemble\n",
    }
    for name, content in production.items():
        (outputs / name).write_bytes(content)
    cfg = _config(tmp_path, _three_csv(tmp_path), outputs)

    proc = _cli(tmp_path, "run", "--config", str(cfg), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    own = outputs / "csv-three"
    assert {p.name: p.read_bytes() for p in outputs.iterdir() if p.is_file()} == production  # byte-identical
    assert f"outputs: {own} (" in proc.stdout
    published = {p.name for p in own.iterdir()}
    assert {
        "forecast_monthly.csv",
        "forecast_annual.csv",
        "backtest_metrics.csv",
        "champions.csv",
        "model_fits.csv",
        "institutional_comparison.csv",
        "institutional_summary.csv",
        "institutional_outlook.csv",
        "nowcast.csv",
        "tracking.csv",
        "report.html",
        "run.json",
    } <= published
    run = json.loads((own / "run.json").read_text())
    assert (run["data_source"], run["institutional_compared"]) == ("csv", False)
    assert run["config"]["publish"]["dir"] == str(own)
    annual = pd.read_csv(own / "forecast_annual.csv")
    assert sorted(annual["unique_id"].unique()) == sorted(THREE)
    # the institutional files of a user CSV's run: header-only, with the published columns, and said in the report
    from flows.results import INSTITUTIONAL_TABLES, SCHEMAS

    for name in INSTITUTIONAL_TABLES:
        assert (own / name).read_text().splitlines() == [",".join(SCHEMAS[name].columns)]
    report = (own / "report.html").read_text()
    assert "institutional_comparison.csv has no rows: the comparison was skipped in this run" in report

    rebuilt = _cli(tmp_path, "report", "--outputs", str(own))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout == f"wrote {own / 'report.html'}\n"
    assert {p.name: p.read_bytes() for p in outputs.iterdir() if p.is_file()} == production
