"""frame_to_series builds the regular monthly series from one month range (decision 0184): the
same series, to the bit and the index freq, as ``regularize`` of each series' observed rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.core.base import is_regular, regularize
from models.core.engine import frame_to_series

DATA = Path(__file__).resolve().parents[2] / "data" / "exports_monthly.csv"


def regularized_one_by_one(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """frame_to_series as before 0184: one ``regularize`` (one month range) per series."""
    observed = frame.loc[frame["y"].notna(), ["unique_id", "ds", "y"]]
    out = {}
    for uid, group in observed.groupby("unique_id", sort=True):
        y = pd.Series(group["y"].to_numpy(dtype=float), index=pd.DatetimeIndex(group["ds"], name="ds"), name=str(uid))
        out[str(uid)] = regularize(y.sort_index())
    return out


def frames() -> list[tuple[str, pd.DataFrame]]:
    real = pd.read_csv(DATA, parse_dates=["ds"])[["unique_id", "ds", "y"]]
    holes = real.assign(y=real["y"].where(np.arange(len(real)) % 7 != 0))  # missing months, some at the ends
    return [
        ("embedded data", real),
        ("every 7th row missing", holes),
        ("rows shuffled", holes.sample(frac=1.0, random_state=4)),
        ("ds in seconds", holes.assign(ds=holes["ds"].astype("datetime64[s]"))),
    ]


@pytest.mark.parametrize("label,frame", frames(), ids=lambda v: v if isinstance(v, str) else "")
def test_frame_to_series_is_regularize_of_each_series(label, frame):
    expected = regularized_one_by_one(frame)
    got = frame_to_series(frame)
    assert list(got) == list(expected)
    assert len(got) == 44
    for uid, y in expected.items():
        pd.testing.assert_series_equal(got[uid], y, check_exact=True, check_freq=True)
        assert got[uid].index.freqstr == "MS"
        assert is_regular(got[uid])


def test_is_regular_only_where_regularize_would_return_the_series_unchanged():
    y = frame_to_series(frames()[1][1])["total"]
    assert is_regular(y)
    pd.testing.assert_series_equal(regularize(y), y, check_exact=True, check_freq=True)
    # the full path (an index without freq is checked and rebuilt) gives the same series as the fast one
    unmarked = pd.Series(y.to_numpy(), index=pd.DatetimeIndex(list(y.index), name="ds"), name=y.name)
    pd.testing.assert_series_equal(regularize(unmarked), regularize(y), check_exact=True, check_freq=True)
    assert regularize(y) is not y  # a copy: the caller may change it
    gapped_end = y.copy()
    gapped_end.iloc[-1] = np.nan
    assert not is_regular(gapped_end)
    assert not is_regular(y.rename_axis("month"))
    assert not is_regular(y.astype("float32"))
    assert not is_regular(y.iloc[::2])  # every other month: no freq MS
    assert not is_regular(pd.Series(y.to_numpy(), index=pd.DatetimeIndex(list(y.index), name="ds")))
