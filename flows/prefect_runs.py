"""Prefect flow runs left RUNNING by a dead process: set them Crashed, with a note.

The MLflow parent run of a pipeline run names its Prefect flow run (tag ``prefect_flow_run_id``);
when flows/tracking.py finds that parent run left RUNNING by a dead process, it hands the flow run
ids here. Only a flow run that is still RUNNING (or PENDING) is changed; one that is unknown to the
current Prefect API (another server or database) or already final is left as it is. Failures to
reach the API are logged, never raised: cleaning up old runs must not stop the new one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger("exportcast.prefect_runs")


def crash_flow_runs(notes: Mapping[str, str]) -> list[str]:
    """Set each flow run ``id -> note`` that is still RUNNING/PENDING to Crashed with the note as
    its message; returns the ids changed."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    changed: list[str] = []
    try:
        with get_client(sync_client=True) as client:
            for flow_run_id, note in notes.items():
                try:
                    run = client.read_flow_run(flow_run_id)
                except Exception as exc:  # noqa: BLE001 - unknown here (other server) or unreachable
                    log.warning("Prefect flow run %s left RUNNING was not marked: %s", flow_run_id, exc)
                    continue
                if run.state is None or run.state.is_final():
                    continue
                client.set_flow_run_state(flow_run_id, Crashed(message=note), force=True)
                changed.append(flow_run_id)
    except Exception as exc:  # noqa: BLE001 - no Prefect API: the MLflow runs were marked anyway
        log.warning("Prefect flow runs %s left RUNNING were not marked: %s", ", ".join(notes), exc)
    return changed
