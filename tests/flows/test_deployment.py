from __future__ import annotations

import asyncio
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
    assert dep.parameters == {"source": "embedded"}
    assert set(dep._parameter_openapi_schema.properties) == {"config_path", "source"}


def test_prefect_yaml_declares_the_same_deployment() -> None:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    (dep,) = spec["deployments"]
    built = deployment.build_deployment()
    assert dep["name"] == built.name
    assert dep["entrypoint"] == "flows/pipeline.py:monthly_forecast"
    assert dep["parameters"] == built.parameters
    (sched,) = dep["schedules"]
    assert (sched["cron"], sched["timezone"]) == (deployment.CRON, deployment.TIMEZONE)
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
        f"--cron {cron!r}: Invalid cron string: \"{cron}\"; expected five fields "
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
