"""``exportcast data update`` and the update step of the scheduled flows: settings -> upstreams ->
``features.vintages.update``.

The update concerns the embedded dataset (``data.source: embedded``): it fetches every upstream
(``data.upstream``, ``data.upstream_base``, else the public defaults of features/upstreams.py),
rebuilds the dataset in the data home's staging folder with every check, and makes the result
the active vintage only if everything passed. A refused update is an
:class:`features.vintages.UpdateError`: one line, exit 2, the active data untouched.
"""

from __future__ import annotations

from pathlib import Path

from features import upstreams as up
from features import vintages
from flows.settings import DataSettings, Settings


def upstreams_of(data: DataSettings) -> dict[str, str | None]:
    """Raw path -> upstream of these settings (None: a local file)."""
    return up.resolve_upstreams(data.upstream, data.upstream_base or None)


def policy_of(data: DataSettings) -> up.FetchPolicy:
    return up.FetchPolicy(
        timeout=data.upstream_timeout,
        attempts=data.upstream_attempts,
        backoff=data.upstream_backoff,
        max_bytes=int(data.upstream_max_mb * 1024 * 1024),
    )


def run_update(settings: Settings) -> vintages.UpdateOutcome:
    """Fetch, check, build and (if anything is new and everything passed) activate a new vintage."""
    data = settings.data
    return vintages.update(data.home, upstreams_of(data), data.raw, policy=policy_of(data))


def active_vintage(settings: Settings) -> vintages.Vintage:
    return vintages.active(settings.data.home)


def active_data_dir(settings: Settings | DataSettings) -> Path:
    """The folder the readers of the embedded source read: the active vintage's, else data/."""
    data = settings.data if isinstance(settings, Settings) else settings
    return vintages.active_data_dir(data.home)


def scheduled_settings(config: Path | None, source: str | None, update: bool, record_name: str) -> Settings | None:
    """The settings of a deployment's run (the two flows' shared start): read once, the source
    applied and the publish folder chosen and checked (a non-production source gets its own), then,
    with ``update``, ``exportcast data update``; None (after printing the one line) when nothing is
    new since the run whose ``record_name`` (run.json / flash_run.json) was last published."""
    from flows.preflight import prepare_run
    from flows.settings import load_settings

    settings = prepare_run(load_settings(config), source)
    if update and (nothing_new := update_before_run(settings, settings.publish.dir / record_name)):
        print(nothing_new, flush=True)
        return None
    return settings


def update_before_run(settings: Settings, record: Path) -> str | None:
    """The first step of the scheduled flows (``update=True``): update the embedded data; the one
    line to print and stop with when nothing is new (no new vintage, and ``record``, the run.json
    or flash_run.json of the last published run, was made on the active vintage), else None (run).
    A refused update raises :class:`features.vintages.UpdateError`: the flow fails, nothing is published."""
    import json

    if settings.data.source != "embedded":
        return None
    outcome = run_update(settings)
    print(f"[exportcast] update: {outcome.message}", flush=True)
    if outcome.vintage is not None:
        return None
    active = active_vintage(settings)
    try:
        published = json.loads(record.read_text(encoding="utf-8")).get("vintage")
    except (OSError, ValueError):
        return None
    if published != active.id:
        return None
    return (
        f"nothing new since the last run ({active.describe()}): {record.parent}'s published files are left as they were"
    )


def resolve_target_year(settings: Settings) -> Settings:
    """``target_year: auto`` -> the calendar year of the first month not yet observed: after the last
    month of the total (embedded: the active vintage's data-through month; csv: the file's
    ``total``, else its last month; customs_api: ``data.customs.end``). With the data in the
    fourth quarter (October or November observed) the forecasts also run through next year.
    An explicit year is returned as it is."""
    import pandas as pd

    if settings.target_year != "auto":
        return settings
    data = settings.data
    if data.source == "embedded":
        last = pd.Timestamp(active_vintage(settings).data_through + "-01")
    elif data.source == "csv":
        from features.readers import read_user_csv

        frame = read_user_csv(data.path, **data.checks())
        total = frame.loc[frame["unique_id"] == "total", "ds"]
        last = (total if not total.empty else frame["ds"]).max()
    else:
        last = pd.Timestamp(f"{data.customs.end[:4]}-{data.customs.end[4:]}-01")
    first_unobserved = last + pd.DateOffset(months=1)
    return settings.with_target_year(int(first_unobserved.year), next_year=last.month in (10, 11))
