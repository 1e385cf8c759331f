from __future__ import annotations

import asyncio
from datetime import UTC
from pathlib import Path

import pytest
import yaml

from flows import deployment

REPO = Path(__file__).resolve().parents[2]


def test_build_deployment_schedule_and_parameters() -> None:
    dep = deployment.build_deployment()
    assert dep.name == "monthly"
    assert dep.entrypoint.endswith("flows/pipeline.py:monthly_forecast")
    (schedule,) = dep.schedules
    assert schedule.schedule.cron == "0 9 16 * *" and schedule.schedule.timezone == "Asia/Seoul"
    assert dep.parameters == {"source": "embedded", "update": True}
    assert set(dep._parameter_openapi_schema.properties) == {"config_path", "source", "update"}


def test_build_flash_deployment_schedule_and_parameters() -> None:
    dep = deployment.build_flash_deployment()
    assert dep.name == "flash-nowcast"
    assert dep.entrypoint.endswith("flows/flash.py:flash_nowcast")
    (schedule,) = dep.schedules
    assert schedule.schedule.cron == "0 9 11,21 * *" and schedule.schedule.timezone == "Asia/Seoul"
    assert dep.parameters == {"source": "embedded", "update": True}
    assert set(dep._parameter_openapi_schema.properties) == {"config_path", "source", "update"}
    assert dep.tags == ["exportcast", "flash"]


def test_flash_schedule_fires_at_nine_seoul_time_on_the_11th_and_the_21st() -> None:
    """The next runs of the flash cron after 2026-11-29, as the server's scheduler computes them:
    09:00 KST = 00:00 UTC on the 11th and the 21st."""
    from datetime import datetime

    from prefect.server.schemas.schedules import CronSchedule as ServerCron

    built = deployment.build_flash_deployment().schedules[0].schedule
    server = ServerCron(cron=built.cron, timezone=built.timezone)
    dates = asyncio.run(server.get_dates(n=4, start=datetime(2026, 11, 29, tzinfo=UTC)))
    assert [d.astimezone(UTC).strftime("%Y-%m-%d %H:%M") for d in dates] == [
        "2026-12-11 00:00",
        "2026-12-21 00:00",
        "2027-01-11 00:00",
        "2027-01-21 00:00",
    ]


def test_both_deployments_take_their_own_cron_and_time_zone() -> None:
    monthly, flash = deployment.build_deployments(
        source="csv",
        config_path="/x/config.yaml",
        cron="0 9 17 * *",
        timezone="UTC",
        flash_cron="* * * * *",
        flash_timezone="Asia/Tokyo",
    )
    assert (monthly.name, flash.name) == ("monthly", "flash-nowcast")
    assert (monthly.schedules[0].schedule.cron, monthly.schedules[0].schedule.timezone) == ("0 9 17 * *", "UTC")
    assert (flash.schedules[0].schedule.cron, flash.schedules[0].schedule.timezone) == ("* * * * *", "Asia/Tokyo")
    assert monthly.parameters == flash.parameters == {"source": "csv", "config_path": "/x/config.yaml"}


def test_bad_flash_cron_is_one_line_naming_its_option() -> None:
    with pytest.raises(deployment.ScheduleError) as info:
        deployment.build_deployments(flash_cron="0 9 11,21 *")
    assert str(info.value) == (
        "--flash-cron '0 9 11,21 *': Invalid cron string: \"0 9 11,21 *\"; expected five fields "
        "'minute hour day-of-month month day-of-week', e.g. '0 9 11,21 * *'"
    )
    with pytest.raises(deployment.ScheduleError) as info:
        deployment.build_flash_deployment(timezone="Seoul")
    assert str(info.value).startswith("--flash-timezone 'Seoul': Invalid timezone")


def test_serve_serves_both_deployments(monkeypatch: pytest.MonkeyPatch) -> None:
    served = []
    monkeypatch.setattr("prefect.serve", lambda *deps, **k: served.extend(deps))
    monkeypatch.setattr(deployment, "require_server", lambda: "http://127.0.0.1:4200/api")
    deployment.serve(cron="0 9 16 * *", flash_cron="0 9 11,21 * *")
    assert [(d.name, d.schedules[0].schedule.cron, d.schedules[0].schedule.timezone) for d in served] == [
        ("monthly", "0 9 16 * *", "Asia/Seoul"),
        ("flash-nowcast", "0 9 11,21 * *", "Asia/Seoul"),
    ]


def test_prefect_yaml_declares_the_same_deployments() -> None:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    monthly, flash = spec["deployments"]
    for dep, built, entry in (
        (monthly, deployment.build_deployment(), "flows/pipeline.py:monthly_forecast"),
        (flash, deployment.build_flash_deployment(), "flows/flash.py:flash_nowcast"),
    ):
        assert dep["name"] == built.name
        assert dep["entrypoint"] == entry
        assert built.entrypoint.endswith(entry)
        assert dep["parameters"] == built.parameters
        assert dep["tags"] == built.tags
        # one run at a time, a run due meanwhile cancelled (issue 19 item 7, decision 0120)
        assert dep["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
        assert (built.concurrency_limit, built.concurrency_options.collision_strategy.value) == (1, "CANCEL_NEW")
        (sched,) = dep["schedules"]
        assert (sched["cron"], sched["timezone"]) == (
            built.schedules[0].schedule.cron,
            built.schedules[0].schedule.timezone,
        )
    assert (monthly["schedules"][0]["cron"], flash["schedules"][0]["cron"]) == (deployment.CRON, deployment.FLASH_CRON)
    import prefect

    assert spec["prefect-version"] == prefect.__version__


@pytest.mark.slow
def test_applied_deployment_reads_back(prefect_harness) -> None:
    from prefect.client.orchestration import get_client

    deployment_id = deployment.build_deployment(source="customs_api").apply()

    async def read():
        async with get_client() as client:
            return await client.read_deployment(deployment_id)

    dep = asyncio.run(read())
    assert dep.name == "monthly"
    assert dep.parameters == {"source": "customs_api"}
    (schedule,) = dep.schedules
    assert schedule.schedule.cron == "0 9 16 * *"
    assert schedule.schedule.timezone == "Asia/Seoul"

    flash_id = deployment.build_flash_deployment(source="csv").apply()

    async def read_flash():
        async with get_client() as client:
            return await client.read_deployment(flash_id)

    flash = asyncio.run(read_flash())
    assert (flash.name, flash.parameters) == ("flash-nowcast", {"source": "csv"})
    (schedule,) = flash.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 9 11,21 * *", "Asia/Seoul")


def test_build_deployment_takes_a_cron_and_time_zone() -> None:
    dep = deployment.build_deployment(source="csv", config_path="/x/config.yaml", cron="* * * * *", timezone="UTC")
    (schedule,) = dep.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("* * * * *", "UTC")
    assert dep.parameters == {"source": "csv", "config_path": "/x/config.yaml"}


@pytest.mark.parametrize("cron", ["61 * * * *", "* * * *", "every month", ""])
def test_bad_cron_is_one_line_naming_the_option(cron: str) -> None:
    with pytest.raises(deployment.ScheduleError) as info:
        deployment.build_deployment(cron=cron)
    assert str(info.value) == (
        f'--cron {cron!r}: Invalid cron string: "{cron}"; expected five fields '
        "'minute hour day-of-month month day-of-week', e.g. '0 9 16 * *'"
    )


def test_bad_time_zone_is_one_line_naming_the_option() -> None:
    with pytest.raises(deployment.ScheduleError) as info:
        deployment.check_schedule("0 9 16 * *", "Asia/Busan")
    assert str(info.value) == (
        "--timezone 'Asia/Busan': Invalid timezone: \"Asia/Busan\" (specify in IANA tzdata format, "
        "for example, America/New_York)"
    )


def test_serve_refuses_without_a_prefect_api_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    served = []
    monkeypatch.setattr("prefect.serve", lambda *a, **k: served.append(a))
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with pytest.raises(deployment.PrefectServerError) as info:
            deployment.serve()
    assert str(info.value) == (
        "no PREFECT_API_URL: schedules need a Prefect server with its scheduler; start one with "
        "`prefect server start --host 127.0.0.1` and rerun with PREFECT_API_URL=http://127.0.0.1:4200/api"
    )
    assert served == []


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_refuses_an_api_url_that_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    served = []
    monkeypatch.setattr("prefect.serve", lambda *a, **k: served.append(a))
    url = f"http://127.0.0.1:{_closed_port()}/api"
    with temporary_settings({PREFECT_API_URL: url}):
        with pytest.raises(deployment.PrefectServerError) as info:
            deployment.serve()
    message = str(info.value)
    assert message.startswith(f"the Prefect server at PREFECT_API_URL={url} does not answer (")
    assert message.endswith("); start it with `prefect server start --host 127.0.0.1` or fix PREFECT_API_URL")
    assert "\n" not in message and served == []


def test_cli_serve_bad_cron_is_one_line_exit_2() -> None:
    from typer.testing import CliRunner

    from exportcast.cli import app

    result = CliRunner().invoke(app, ["serve", "--cron", "0 9 16 *"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --cron '0 9 16 *': Invalid cron string: \"0 9 16 *\"; expected five fields "
        "'minute hour day-of-month month day-of-week', e.g. '0 9 16 * *'\n"
    )
    assert "Traceback" not in result.output


def test_cli_serve_without_server_is_one_line_exit_2() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from typer.testing import CliRunner

    from exportcast.cli import app

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = CliRunner().invoke(app, ["serve", "--cron", "* * * * *", "--timezone", "UTC"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no PREFECT_API_URL: schedules need a Prefect server")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_cli_serve_defaults_are_the_deployment_schedule() -> None:
    import inspect

    from exportcast.cli import serve

    params = inspect.signature(serve).parameters
    assert params["cron"].default.default == deployment.CRON == "0 9 16 * *"
    assert params["timezone"].default.default == deployment.TIMEZONE == "Asia/Seoul"
    assert params["flash_cron"].default.default == deployment.FLASH_CRON == "0 9 11,21 * *"
    assert params["flash_timezone"].default.default == deployment.TIMEZONE


def test_cli_serve_bad_flash_cron_is_one_line_exit_2() -> None:
    from typer.testing import CliRunner

    from exportcast.cli import app

    result = CliRunner().invoke(app, ["serve", "--flash-cron", "0 9 32 * *"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --flash-cron '0 9 32 * *': Invalid cron string: \"0 9 32 * *\"; expected five fields "
        "'minute hour day-of-month month day-of-week', e.g. '0 9 11,21 * *'\n"
    )
