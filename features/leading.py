"""Leading-indicator columns for a forecast made at a cutoff: lagged and filtered as of the day
the forecast could have been made (issue 9, part 3).

    cols = leading_columns(indicators, [LeadingSpec("wsts_month:billings_worldwide", lag=1)],
                           cutoff="2023-12-01", months=pd.date_range("2013-01-01", "2024-12-01", freq="MS"))

**Information date of a cutoff.** A forecast with data through month ``c`` (the cutoff) is made
the day ``c``'s confirmed figure became public: the customs service confirms a whole month on the
16th of the next month (``features.publication.information_date``), so the information
date of cutoff 2023-12 is 2024-01-16. That is the day the monthly pipeline runs (09:00 on the
16th). On that day the model may use every indicator value whose ``available_from`` is on or
before it, and nothing else. E.g. at cutoff 2023-12 (2024-01-16): the customs flash of days 1-10
of 2024-01 (public 2024-01-11) is known, days 1-20 (2024-01-21) are not; WSTS billings are known
through 2023-11 (public 2024-01-15), 2023-12 is not (2024-02-15).

**Columns.** One column per :class:`LeadingSpec`, named ``lead:<indicator>`` (``lead:<indicator>@<lag>``
with a lag): at month ``t`` it holds the indicator of month ``t - lag`` when that value was public
on the information date, NaN otherwise. NaN therefore means "not known then": before the
indicator starts, or after its last public month (the months the model must forecast the
indicator for). A column needs the value at the cutoff month itself (the regression of the
history runs through the cutoff); when that value was not public yet, or a month inside the
known span has no value, :class:`LeadingIndicatorError` names the indicator, the month, the
cutoff and when the value became public.

This module reads no file: it takes the indicator table of
``features.readers.read_indicators`` (``indicator, ds, value, available_from``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from features.errors import ExportcastError
from features.publication import information_date

__all__ = [
    "LEAD_PREFIX",
    "LeadingIndicatorError",
    "LeadingSpec",
    "information_date",
    "leading_columns",
    "public_values",
]

LEAD_PREFIX = "lead:"
MONTH = pd.offsets.MonthBegin(1)


class LeadingIndicatorError(ExportcastError, ValueError):
    """An indicator cannot provide the columns a cutoff needs (one line, naming indicator and month)."""


@dataclass(frozen=True)
class LeadingSpec:
    """An indicator of the table used as a regressor: the column at month t holds its month t - lag."""

    indicator: str
    lag: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.indicator, str) or not self.indicator:
            raise ValueError(f"LeadingSpec.indicator must be an indicator name; got {self.indicator!r}")
        if not isinstance(self.lag, int) or self.lag < 0:
            raise ValueError(f"LeadingSpec.lag must be a non-negative integer (months); got {self.lag!r}")

    @property
    def column(self) -> str:
        return f"{LEAD_PREFIX}{self.indicator}" + (f"@{self.lag}" if self.lag else "")

    @classmethod
    def from_column(cls, column: str) -> LeadingSpec:
        """The spec of a column name ``lead:<indicator>`` or ``lead:<indicator>@<lag>`` (the inverse of ``column``)."""
        if not isinstance(column, str) or not column.startswith(LEAD_PREFIX) or column == LEAD_PREFIX:
            raise ValueError(f"a leading column is named '{LEAD_PREFIX}<indicator>[@<lag>]'; got {column!r}")
        name, _, lag = column[len(LEAD_PREFIX) :].partition("@")
        if lag and not lag.isdigit():
            raise ValueError(f"the lag of leading column {column!r} must be a whole number of months")
        return cls(name, int(lag) if lag else 0)


def leading_columns(
    indicators: pd.DataFrame,
    specs: Sequence[LeadingSpec],
    *,
    cutoff: pd.Timestamp | str,
    months: pd.DatetimeIndex,
    as_of: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """The regressor columns (index ``ds`` = ``months``) a model may see at ``cutoff``: values public
    on ``as_of`` (default :func:`information_date` of the cutoff), lagged, NaN where not known.
    Raises :class:`LeadingIndicatorError` when the cutoff month's value is not known or the known
    span has a gap."""
    cutoff = pd.Timestamp(cutoff).to_period("M").to_timestamp()
    info = information_date(cutoff) if as_of is None else pd.Timestamp(as_of)
    months = pd.DatetimeIndex(months, name="ds")
    out = pd.DataFrame(index=months)
    for spec in specs:
        values = public_values(indicators, spec.indicator, as_of=info, cutoff=cutoff)
        needed = cutoff - spec.lag * MONTH  # the indicator month the cutoff month's column holds
        if needed not in values.index:
            rows = indicators[indicators["indicator"] == spec.indicator]
            later = rows.loc[rows["ds"] == needed, "available_from"]
            when = f"public only from {later.iloc[0]:%Y-%m-%d}" if len(later) else "no row in the table"
            raise LeadingIndicatorError(
                f"leading indicator '{spec.indicator}' (lag {spec.lag}): month {needed:%Y-%m}, needed at cutoff "
                f"{cutoff:%Y-%m}, is not known on the information date {info:%Y-%m-%d} ({when})"
            )
        out[spec.column] = values.reindex(months - spec.lag * MONTH).to_numpy()
    return out


def public_values(
    indicators: pd.DataFrame, indicator: str, *, as_of: pd.Timestamp | str, cutoff: pd.Timestamp | str | None = None
) -> pd.Series:
    """The values of ``indicator`` public on ``as_of`` (index: the indicator's months, all of them
    from its first), e.g. the whole history a model learns a reference's dynamics from. Raises
    :class:`LeadingIndicatorError` when the table lacks the indicator or a month inside the known
    span has no value (``cutoff``, when given, is named in the message)."""
    info = pd.Timestamp(as_of)
    if indicator not in set(indicators["indicator"].unique()):
        raise LeadingIndicatorError(f"leading indicator '{indicator}' is not in the indicator table")
    rows = indicators[indicators["indicator"] == indicator]
    public = rows[rows["available_from"] <= info].sort_values("ds")
    values = pd.Series(
        public["value"].to_numpy(dtype=float), index=pd.DatetimeIndex(public["ds"], name="ds"), name=indicator
    )
    if values.empty:
        return values
    span = pd.date_range(values.index.min(), values.index.max(), freq="MS")
    gaps = span.difference(values.index)
    if len(gaps):
        at = f" (cutoff {pd.Timestamp(cutoff):%Y-%m})" if cutoff is not None else ""
        raise LeadingIndicatorError(
            f"leading indicator '{indicator}': month {gaps[0]:%Y-%m} has no value known on "
            f"{info:%Y-%m-%d} inside its known span {span[0]:%Y-%m}..{span[-1]:%Y-%m}{at}"
        )
    return values
