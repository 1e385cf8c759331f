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
