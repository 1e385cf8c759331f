"""One fit row: what became of one model on one series (and one backtest cutoff).

Every stage that decides a model's fate writes a ``FitRow``: the engine (fit, fallback, skip),
the backtest (the champion and combination rows of each window, the reconciled ``mint`` rows),
the published combinations and the published reconciliation. ``fits_frame`` turns rows into the
``model_fits.csv`` table (``FIT_COLUMNS``, with ``cutoff`` second in a backtest's table).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["FIT_COLUMNS", "FitRow", "fits_frame"]

FIT_COLUMNS: tuple[str, ...] = ("unique_id", "model", "model_used", "status", "reason", "error", "n_obs", "description")


@dataclass(frozen=True)
class FitRow:
    """One model on one series: the model asked for, the model that produced the forecast
    (``model_used``: a fallback, or None), ``status`` (ok | fallback | failed | skipped), why
    (``reason``), the errors met (``error``), the observed months (``n_obs``) and the fitted
    model's ``description`` (JSON). ``cutoff``: the backtest window's cutoff (None: a forecast)."""

    unique_id: str
    model: str
    model_used: str | None = None
    status: str = "failed"
    reason: str = ""
    error: str = ""
    n_obs: int = 0
    description: str = "{}"
    cutoff: pd.Timestamp | None = None

    def record(self, *, with_cutoff: bool = False) -> dict[str, Any]:
        """The row as ``model_fits.csv`` holds it (``with_cutoff``: a backtest's, cutoff second)."""
        row = {name: getattr(self, name) for name in FIT_COLUMNS}
        return {"unique_id": row.pop("unique_id"), "cutoff": self.cutoff, **row} if with_cutoff else row


def fits_frame(rows: Iterable[FitRow], *, with_cutoff: bool = False, extra: Iterable[str] = ()) -> pd.DataFrame:
    """The fits table of ``rows`` (``with_cutoff``: a backtest's, with the ``cutoff`` column)."""
    columns = [*extra, "unique_id", "cutoff", *FIT_COLUMNS[1:]] if with_cutoff else [*extra, *FIT_COLUMNS]
    return pd.DataFrame([r.record(with_cutoff=with_cutoff) for r in rows], columns=columns)
