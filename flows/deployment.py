"""The scheduled deployments, and ``exportcast serve``.

- ``monthly`` (flow ``monthly-forecast``): the Korea Customs Service publishes the previous
  month's final export figures mid-month, so the pipeline runs on the 16th at 09:00 Seoul time.
- ``flash-nowcast`` (flow ``flash-nowcast``, flows/flash.py): the 10-day and 20-day export flash
  is published on the 11th and the 21st, so the nowcast runs at 09:00 Seoul time on both days
  (``0 9 11,21 * *``) and publishes nowcast.csv and tracking.csv only.

``build_deployment`` and ``build_flash_deployment`` return the ``RunnerDeployment`` of each
(same names, schedules and parameters as ``prefect.yaml``; each cron and time zone can be
changed, e.g. ``* * * * *`` to watch a schedule fire); ``serve()`` (``exportcast serve``) serves
both from this process.

Schedules need a real Prefect server: it is the server's scheduler service that turns a cron
into flow runs, and Prefect's temporary (ephemeral) server, which Prefect starts when no
``PREFECT_API_URL`` is set, runs no scheduler. So with no ``PREFECT_API_URL``, ``serve`` refuses
with a one-line instruction (``prefect server start --host 127.0.0.1``, then set
``PREFECT_API_URL``) rather than start a server itself. Why refuse rather than start one:

- a monthly schedule must outlive any one ``serve`` process; the server holds the runs, their
  history and the UI, and belongs to whatever keeps services up (systemd, a container), not to
  a child of a CLI command that dies with it;
- a hidden server is one more child to orphan when ``serve`` is killed with SIGKILL, takes
  port 4200 (or a surprising other one) and writes a database under ``PREFECT_HOME`` the user
  did not ask for;
- silently "working" against a server without a scheduler is how the schedule came to never
  fire; the one-line refusal makes the dependency explicit and costs the user one command.

A ``PREFECT_API_URL`` that does not answer is refused the same way, before serving.

**One run at a time.** Each deployment has ``concurrency_limit: 1`` with the collision strategy
``CANCEL_NEW`` (``CONCURRENCY``; docs/decisions/0120-deployment-concurrency-cancel-new.md says
why not ``ENQUEUE``): a run the scheduler (or a user) starts while one of the same deployment is
still running is set CANCELLED by the server before it starts, so full runs never stack.

**Nothing outlives serve.** ``exportcast serve`` runs the Prefect runner in the same supervised
child process as ``exportcast run`` (flows/supervise.py, :func:`serve_supervised`): a SIGINT /
SIGTERM of serve, or a SIGKILL of it (the child's parent-death signal), ends every flow-run
process the runner started (``prefect.engine`` and its loky workers) at once, and the runs they
carried that are not final yet are set CRASHED (:func:`flows.supervise.end_flow_run_processes`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from pydantic import ValidationError

from exportcast.errors import ExportcastError
from flows.flash import flash_nowcast
from flows.pipeline import monthly_forecast

DEPLOYMENT_NAME = "monthly"
CRON = "0 9 16 * *"
TIMEZONE = "Asia/Seoul"
DEFAULT_SOURCE = "embedded"
TAGS = ["exportcast", "monthly"]
FLASH_DEPLOYMENT_NAME = "flash-nowcast"
#: 09:00 on the 11th (days 1-10 published) and the 21st (days 1-20 published)
FLASH_CRON = "0 9 11,21 * *"
FLASH_TAGS = ["exportcast", "flash"]
START_SERVER = "prefect server start --host 127.0.0.1"
LOCAL_API_URL = "http://127.0.0.1:4200/api"
#: seconds the served child may take to unwind after a stop (its flow-run processes are ended at once)
SERVE_GRACE_SECONDS = 10.0
#: one run of a deployment at a time; a run due while one is running is cancelled (decision 0120)
CONCURRENCY = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


class ScheduleError(ExportcastError, ValueError):
    """A cron expression or time zone the scheduler cannot use (one line, names the option)."""


class PrefectServerError(ExportcastError, RuntimeError):
    """No Prefect server to serve against: unset or unreachable ``PREFECT_API_URL`` (one line)."""


def check_schedule(
    cron: str = CRON,
    timezone: str = TIMEZONE,
    *,
    option: str = "--cron",
    tz_option: str = "--timezone",
    example: str = CRON,
) -> None:
    """Raise :class:`ScheduleError` unless the server would accept ``cron`` in ``timezone``
    (the same validation as Prefect's ``CronSchedule``: five fields or a ``@`` nickname, an
    IANA time zone). ``option``/``tz_option`` name the command-line options in the message."""
    try:
        CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "cron"
        message = str(error["msg"]).removeprefix("Value error, ")
        if field == "timezone":
            raise ScheduleError(f"{tz_option} {timezone!r}: {message}") from None
        raise ScheduleError(
            f"{option} {cron!r}: {message}; expected five fields 'minute hour day-of-month month day-of-week', "
            f"e.g. {example!r}"
        ) from None


def build_deployment(
    source: str = DEFAULT_SOURCE,
    config_path: str | None = None,
    cron: str = CRON,
    timezone: str = TIMEZONE,
) -> RunnerDeployment:
    """The deployment: cron ``cron`` (default ``0 9 16 * *``) in ``timezone`` (default
    Asia/Seoul), parameters ``source`` (and ``config_path`` when given; the flow defaults to the
    repo's config.yaml). Raises :class:`ScheduleError` for a bad cron or time zone."""
    check_schedule(cron, timezone)
    return _to_deployment(
        monthly_forecast,
        DEPLOYMENT_NAME,
        source,
        config_path,
        cron,
        timezone,
        TAGS,
        "Monthly exportcast run: backtest, forecast through December of the target year, publish.",
    )


def build_flash_deployment(
    source: str = DEFAULT_SOURCE,
    config_path: str | None = None,
    cron: str = FLASH_CRON,
    timezone: str = TIMEZONE,
) -> RunnerDeployment:
    """The flash deployment: cron ``cron`` (default ``0 9 11,21 * *``) in ``timezone`` (default
    Asia/Seoul), the same parameters as the monthly one. Raises :class:`ScheduleError` (naming
    ``--flash-cron`` / ``--flash-timezone``) for a bad cron or time zone."""
    check_schedule(cron, timezone, option="--flash-cron", tz_option="--flash-timezone", example=FLASH_CRON)
    return _to_deployment(
        flash_nowcast,
        FLASH_DEPLOYMENT_NAME,
        source,
        config_path,
        cron,
        timezone,
        FLASH_TAGS,
        "Flash exportcast run: nowcast this month from the customs 10-day/20-day flash, publish "
        "nowcast.csv and tracking.csv.",
    )


def _to_deployment(
    flow_: Any,
    name: str,
    source: str,
    config_path: str | None,
    cron: str,
    timezone: str,
    tags: list[str],
    description: str,
) -> RunnerDeployment:
    """One of the two deployments: the flow with its cron schedule, parameters ``source`` (and
    ``config_path`` when given; the flows default to the repo's config.yaml) and the concurrency
    limit ``CONCURRENCY``."""
    parameters: dict[str, Any] = {"source": source}
    if source == "embedded":  # the scheduled runs first update the embedded data (flows/update.py)
        parameters["update"] = True
    if config_path is not None:
        parameters["config_path"] = config_path
    return flow_.to_deployment(
        name=name,
        schedules=[Cron(cron, timezone=timezone)],
        parameters=parameters,
        tags=tags,
        description=description,
        concurrency_limit=CONCURRENCY,
    )


def require_server() -> str:
    """The API URL of a reachable Prefect server, or :class:`PrefectServerError` with the one
    line that tells the user what to do (see the module docstring for why serve never starts
    one itself)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    url = PREFECT_API_URL.value()
    if not url:
        raise PrefectServerError(
            "no PREFECT_API_URL: schedules need a Prefect server with its scheduler; start one with "
            f"`{START_SERVER}` and rerun with PREFECT_API_URL={LOCAL_API_URL}"
        )
    with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}):
        with get_client(sync_client=True) as client:
            failure = client.api_healthcheck()
    if failure is not None:
        reason = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
        raise PrefectServerError(
            f"the Prefect server at PREFECT_API_URL={url} does not answer ({reason}); start it with "
            f"`{START_SERVER}` or fix PREFECT_API_URL"
        )
    return str(url)


def build_deployments(
    source: str = DEFAULT_SOURCE,
    config_path: str | None = None,
    cron: str = CRON,
    timezone: str = TIMEZONE,
    flash_cron: str = FLASH_CRON,
    flash_timezone: str = TIMEZONE,
) -> list[RunnerDeployment]:
    """Both deployments, ``monthly`` then ``flash-nowcast`` (what ``exportcast serve`` serves)."""
    return [
        build_deployment(source, config_path, cron, timezone),
        build_flash_deployment(source, config_path, flash_cron, flash_timezone),
    ]


def serve(
    source: str = DEFAULT_SOURCE,
    config_path: str | None = None,
    cron: str = CRON,
    timezone: str = TIMEZONE,
    flash_cron: str = FLASH_CRON,
    flash_timezone: str = TIMEZONE,
) -> None:
    """Serve both deployments from this process until interrupted: check the schedules, then the
    server, then hand over to Prefect's runner, which polls the server for the runs its scheduler
    creates and executes each in a subprocess. ``exportcast serve`` runs it supervised
    (:func:`serve_supervised`)."""
    from prefect import serve as prefect_serve

    deployments = build_deployments(source, config_path, cron, timezone, flash_cron, flash_timezone)
    require_server()
    prefect_serve(*deployments)


def serve_supervised(
    settings: Any,
    source: str = DEFAULT_SOURCE,
    config_path: str | None = None,
    cron: str = CRON,
    timezone: str = TIMEZONE,
    flash_cron: str = FLASH_CRON,
    flash_timezone: str = TIMEZONE,
    *,
    grace: float = SERVE_GRACE_SECONDS,
) -> int:
    """``exportcast serve``: the schedules and the server are checked here (one-line errors), then
    :func:`serve` runs in the supervised child process of ``exportcast run`` (flows/supervise.py),
    whose stop ends every flow-run process at once and marks their runs CRASHED
    (``end_flow_run_processes``). Returns the child's exit code (128 + N after signal N)."""
    from flows.supervise import end_flow_run_processes, run_supervised

    build_deployments(source, config_path, cron, timezone, flash_cron, flash_timezone)
    require_server()
    target = partial(
        _serve_child,
        config_path=config_path,
        cron=cron,
        timezone=timezone,
        flash_cron=flash_cron,
        flash_timezone=flash_timezone,
    )
    return run_supervised(settings, source, grace=grace, target=target, on_stop=end_flow_run_processes)


def _serve_child(
    settings: Any,
    source: str | None,
    *,
    config_path: str | None,
    cron: str,
    timezone: str,
    flash_cron: str,
    flash_timezone: str,
) -> None:
    """The supervised child of ``exportcast serve``: Prefect's runner until a stop, then no flow-run
    process left (a run started between the stop's clean-up and the runner's end included)."""
    from flows.supervise import end_flow_run_processes

    try:
        serve(source or DEFAULT_SOURCE, config_path, cron, timezone, flash_cron, flash_timezone)
    finally:
        end_flow_run_processes()
