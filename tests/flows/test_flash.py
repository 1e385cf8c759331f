"""The flash flow ``flash-nowcast`` (issue 10, part 4): the flash through the source switch, the
nowcast published beside (never over) the monthly outputs, MLflow, failures, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.flows.conftest import write_config

HEADER = "indicator,ds,value,unit,available_from,source"
TRACKING_HEADER = (
    "target_year,as_of,information,unique_id,months_observed,forecast_usd_bn,lo_80,hi_80,model,actual_usd_bn,ape,note\n"
)
#: the monthly run's files a flash run must leave byte for byte
MONTHLY_FILES = {
    "forecast_monthly.csv": b"unique_id,ds,model\ntotal,2026-01-01,ets\n",
    "run.json": b'{"run_id": "the-monthly-run"}\n',
    "report.html": b"<html>monthly report</html>\n",
    "institutional_comparison.csv": b"target_year\n2025\n",
}


def _settings(folder: Path, **overrides):
    from flows.settings import load_settings

    return load_settings(write_config(folder, folder / "exports.csv", **overrides))


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------- the source switch
def test_customs_api_source_fails_at_once_naming_the_missing_endpoint(tmp_path: Path, monkeypatch) -> None:
    from features.customs_api import CustomsFlashUnavailableError
    from flows.flash import check_flash_source

    monkeypatch.delenv("KCS_SERVICE_KEY", raising=False)  # no key read, no call made
    settings = _settings(tmp_path, **{"data.source": "customs_api"})
    with pytest.raises(CustomsFlashUnavailableError) as info:
        check_flash_source(settings)
    assert str(info.value) == (
        "customs API: the open API documents no 10-day or 20-day export endpoint (its endpoints, "
        "Itemtrade/getItemtradeList, nitemtrade/getNitemtradeList, nationtrade/getNationtradeList, "
        "Newtrade/getNewtradeList, return whole months only), so the flash figures cannot come from it; run the "
        "flash-nowcast flow with data.source embedded (data/indicators_monthly.csv) or csv (data.indicators_path: "
        "a CSV in the indicator format)"
    )


def test_csv_source_needs_the_indicators_path(tmp_path: Path) -> None:
    from flows.flash import FlashSourceError, check_flash_source

    with pytest.raises(FlashSourceError) as info:
        check_flash_source(_settings(tmp_path))
    assert str(info.value) == (
        "data.source is 'csv' but data.indicators_path is not set: the flash-nowcast flow needs the flash figures as "
        "a CSV in the format of data/indicators_monthly.csv (indicator,ds,value,unit,available_from,source)"
    )


def test_a_bad_indicator_csv_is_named_by_file_line_and_column(tmp_path: Path) -> None:
    from features.contract import DataValidationError
    from flows.flash import check_flash_source

    bad = _write(
        tmp_path / "flash.csv",
        [
            "customs_10d:total,2024-01-01,15000000000,USD,2024-01-11,press",
            "customs_20d:total,2024-01-01,lots,USD,2024-01-21,press",
        ],
    )
    settings = _settings(tmp_path, **{"data.indicators_path": str(bad)})
    assert settings.data.indicators_path == bad
    with pytest.raises(DataValidationError) as info:
        check_flash_source(settings)
    assert str(info.value) == (f"{bad}: 1 problem found\n{bad} line 3, column value: 'lots' is not a number")


def test_a_flash_dated_before_it_could_exist_is_rejected(tmp_path: Path) -> None:
    from features.contract import DataValidationError
    from flows.flash import check_flash_source

    bad = _write(tmp_path / "flash.csv", ["customs_20d:total,2024-01-01,30000000000,USD,2024-01-15,press"])
    with pytest.raises(DataValidationError) as info:
        check_flash_source(_settings(tmp_path, **{"data.indicators_path": str(bad)}))
    assert str(info.value) == (
        f"{bad}: 1 problem found\n{bad} line 2, column available_from: 2024-01-15 is before "
        "the days 1-20 figure of 2024-01 could exist (2024-01-21)"
    )


def test_an_indicator_csv_without_the_total_flash_says_what_is_missing(tmp_path: Path) -> None:
    from flows.flash import FlashSourceError, check_flash_source

    path = _write(
        tmp_path / "flash.csv",
        [
            "customs_10d:total,2024-01-01,15000000000,USD,2024-01-11,press",
            "customs_20d:group_ships,2024-01-01,1000000000,USD,2024-01-21,press",
        ],
    )
    with pytest.raises(FlashSourceError) as info:
        check_flash_source(_settings(tmp_path, **{"data.indicators_path": str(path)}))
    assert str(info.value) == (
        f"{path}: no rows of indicator(s) customs_20d:total, customs_month:total: the nowcast "
        "of 'total' needs the 10-day, 20-day and whole-month customs figures"
    )


def test_cli_flash_with_a_bad_indicator_csv_exits_2_with_the_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from exportcast.cli import app

    bad = _write(tmp_path / "flash.csv", ["customs_10d:total,2024-13-01,15000000000,USD,2024-01-11,press"])
    cfg = write_config(tmp_path, tmp_path / "exports.csv", **{"data.indicators_path": str(bad)})
    result = CliRunner().invoke(app, ["flash", "--config", str(cfg)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {bad}: 1 problem found\n"
        f"{bad} line 2, column ds: '2024-13-01' is not a month (month 13 out of 01-12; expected YYYY-MM or YYYY-MM-DD)\n"
    )
    assert not (tmp_path / "outputs" / "nowcast.csv").exists()


def test_cli_flash_on_the_customs_api_exits_2_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from exportcast.cli import app

    cfg = write_config(tmp_path, tmp_path / "exports.csv")
    result = CliRunner().invoke(app, ["flash", "--config", str(cfg), "--source", "customs_api"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: customs API: the open API documents no 10-day or 20-day export endpoint")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_in_year_tables_without_customs_flash_publish_a_header_only_tracking() -> None:
    """No customs rows in the flash table: the nowcast as given, tracking.csv header-only with its schema."""
    from flows.flash import in_year_tables
    from flows.results import SCHEMAS, TRACKING_COLUMNS, csv_bytes, format_table

    nowcast = pd.DataFrame(
        {
            "unique_id": ["total"],
            "ds": [pd.Timestamp("2025-12-01")],
            "information": ["d20"],
            "as_of": [pd.Timestamp("2025-12-21")],
            "nowcast": [69.0e9],
            "lo_80": [67.0e9],
            "hi_80": [71.0e9],
            "actual": [69.5e9],
            "ape": [0.719424],
        }
    )
    no_flash = pd.DataFrame(columns=["indicator", "ds", "value", "unit", "available_from", "source"])
    tables = in_year_tables(pd.DataFrame(), no_flash, nowcast, settings=None)
    assert set(tables) == {"nowcast.csv", "tracking.csv"}
    assert tables["nowcast.csv"] is nowcast
    assert SCHEMAS["tracking.csv"].columns == TRACKING_COLUMNS
    assert csv_bytes(format_table("tracking.csv", tables["tracking.csv"])).decode() == TRACKING_HEADER


# ---------------------------------------------------------------------- a flash run on the embedded data
@pytest.fixture(scope="module")
def flash_run(prefect_harness, tmp_path_factory: pytest.TempPathFactory):
    """A flash run on the embedded source, its flash cut to 2016-2018 (data_dir: a copy of the
    committed indicator file; a minute less of ETS fits than the full file), into an outputs
    folder that already holds a monthly run's files."""
    from features.readers import DEFAULT_DATA_DIR
    from flows.flash import run_flash

    folder = tmp_path_factory.mktemp("flash")
    data_dir = folder / "data"
    data_dir.mkdir()
    text = (DEFAULT_DATA_DIR / "indicators_monthly.csv").read_text(encoding="utf-8").splitlines()
    keep = [text[0]] + [line for line in text[1:] if line.split(",")[1] < "2019-01-01"]
    (data_dir / "indicators_monthly.csv").write_text("\n".join(keep) + "\n", encoding="utf-8")
    # tracking from 2017: the years the cut flash covers (2017-2018) and after it (2019-2025)
    settings = _settings(folder, **{"data.source": "embedded", "institutional.first_year": 2017})
    out = settings.publish.dir
    out.mkdir(parents=True)
    for name, data in MONTHLY_FILES.items():
        (out / name).write_bytes(data)
    result = run_flash(settings, data_dir=data_dir)
    return settings, data_dir, result


@pytest.mark.slow
def test_flash_run_publishes_the_nowcast_and_the_tracking(flash_run) -> None:
    from flows.results import SCHEMAS

    settings, _, result = flash_run
    out = settings.publish.dir
    assert [p.name for p in result.paths] == ["nowcast.csv", "tracking.csv", "flash_run.json"]
    rows = SCHEMAS["nowcast.csv"].read(out / "nowcast.csv")
    counts = rows.groupby("information")["ds"].agg(["min", "max", "count"])
    assert counts.to_dict("index") == {
        "d10": {"min": pd.Timestamp("2017-02-01"), "max": pd.Timestamp("2018-12-01"), "count": 23},
        "d20": {"min": pd.Timestamp("2017-01-01"), "max": pd.Timestamp("2018-12-01"), "count": 24},
        "none": {"min": pd.Timestamp("2016-01-01"), "max": pd.Timestamp("2018-12-01"), "count": 36},
    }
    tracking = SCHEMAS["tracking.csv"].read(out / "tracking.csv")
    assert set(tracking["unique_id"]) == {"total", "item:semiconductors_ministry"}
    assert tracking["target_year"].min() == settings.institutional.first_year
    # the flash file was cut at 2018: flash information dates exist only while it has figures
    flash_dates = tracking.loc[tracking["information"].isin(["d10", "d20"]), "as_of"]
    assert not flash_dates.empty and flash_dates.max() <= pd.Timestamp("2018-12-21")
    assert (tracking.loc[tracking["as_of"] > pd.Timestamp("2019-01-01"), "information"] == "month").all()
    record = json.loads((out / "flash_run.json").read_text(encoding="utf-8"))
    assert record["kind"] == "flash-nowcast" and record["data_source"] == "embedded"
    assert record["nowcast_rows"] == 83 and record["tracking_rows"] == len(tracking)
    scored = rows.dropna(subset=["ape"])
    assert record["mape"] == pytest.approx(scored.groupby("information")["ape"].mean().to_dict(), abs=1e-5)
    assert record["latest"]["month"] == "2018-12"
    assert set(record["latest"]["nowcast"]) == {"none", "d10", "d20"}
    assert record["latest"]["nowcast"]["d20"]["as_of"] == "2018-12-21"
    assert set(record["stage_seconds"]) == {
        "ingest-flash",
        "ingest",
        "validate",
        "nowcast",
        "in-year",
        "mlflow",
        "publish",
    }


@pytest.mark.slow
def test_flash_run_leaves_the_monthly_outputs_untouched(flash_run) -> None:
    settings, _, _ = flash_run
    out = settings.publish.dir
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in MONTHLY_FILES} == MONTHLY_FILES
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*MONTHLY_FILES, "nowcast.csv", "tracking.csv", "flash_run.json"]
    )


@pytest.mark.slow
def test_flash_run_is_an_mlflow_run_of_its_kind_and_moves_no_alias(flash_run) -> None:
    from mlflow import MlflowClient

    settings, _, result = flash_run
    client = MlflowClient(tracking_uri=settings.mlflow.tracking_uri, registry_uri=settings.mlflow.tracking_uri)
    run = client.get_run(result.record["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["kind"] == "flash-nowcast"
    assert run.data.metrics["nowcast_months_d20"] == 24.0
    assert run.data.metrics["nowcast_mape_d20"] == pytest.approx(result.record["mape"]["d20"])
    artifacts = sorted(a.path for a in client.list_artifacts(run.info.run_id, "flash"))
    assert artifacts == ["flash/nowcast.csv", "flash/tracking.csv"]
    assert client.search_registered_models() == []  # nothing registered, no alias moved


@pytest.mark.slow
def test_a_failed_flash_run_leaves_the_last_published_files(flash_run) -> None:
    from mlflow import MlflowClient
    from prefect import flow

    from flows.flash import execute_flash

    settings, data_dir, _ = flash_run
    out = settings.publish.dir
    before = {p.name: p.read_bytes() for p in sorted(out.iterdir())}

    def refuse(tables):  # the tables are computed and logged; publishing is next
        assert set(tables) == {"nowcast.csv", "tracking.csv"}
        raise RuntimeError("simulated failure before publishing")

    @flow(name="flash-nowcast-failure")
    def failing() -> None:
        execute_flash(settings, data_dir=data_dir, before_publish=refuse)

    with pytest.raises(RuntimeError, match="simulated failure before publishing"):
        failing()
    assert {p.name: p.read_bytes() for p in sorted(out.iterdir())} == before
    client = MlflowClient(tracking_uri=settings.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(settings.mlflow.experiment)
    latest = client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.kind = 'flash-nowcast'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    assert latest.info.status == "FAILED"
    assert latest.data.tags["error"] == "RuntimeError: simulated failure before publishing"
