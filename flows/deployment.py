"""The scheduled deployment of ``monthly-forecast``.

The Korea Customs Service publishes the previous month's final export figures mid-month, so
the pipeline runs on the 16th at 09:00 Seoul time. ``build_deployment`` returns the one
``RunnerDeployment`` (same name, schedule and parameters as ``prefect.yaml``); ``serve()``
(``exportcast serve``) serves it from this process.
"""
from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.pipeline import monthly_forecast

DEPLOYMENT_NAME = "monthly"
CRON = "0 9 16 * *"
TIMEZONE = "Asia/Seoul"
DEFAULT_SOURCE = "embedded"
TAGS = ["exportcast", "monthly"]


def build_deployment(source: str = DEFAULT_SOURCE, config_path: str | None = None) -> RunnerDeployment:
    """The deployment: cron ``0 9 16 * *`` in Asia/Seoul, parameters ``source`` (and
    ``config_path`` when given; the flow defaults to the repo's config.yaml)."""
    parameters: dict[str, str] = {"source": source}
    if config_path is not None:
        parameters["config_path"] = config_path
    return monthly_forecast.to_deployment(
        name=DEPLOYMENT_NAME,
        schedules=[Cron(CRON, timezone=TIMEZONE)],
        parameters=parameters,
        tags=TAGS,
        description="Monthly exportcast run: backtest, forecast through December of the target year, publish.",
    )


def serve(source: str = DEFAULT_SOURCE, config_path: str | None = None) -> None:
    """Serve the deployment from this process until interrupted (``exportcast serve``)."""
    from prefect import serve as prefect_serve

    prefect_serve(build_deployment(source, config_path))
