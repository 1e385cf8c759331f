"""Reconciliation over two partitions of one total (models/selection/reconcile.py): hand-computed
projections, the shrinkage covariance, coherent paths, the hierarchy checks, the backtest's
``mint`` rows and the published champion tables of a small hierarchy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exportcast.errors import ExportcastError
from models.core.engine import ForecastResult
from models.selection.reconcile import (
    RECONCILED,
    Hierarchy,
    HierarchyError,
    covariance,
    hierarchy_from_table,
    projection,
    reconcile,
    reconcile_forecasts,
    reconcile_paths,
    seasonal_residuals,
)

MONTHS = pd.date_range("2026-01-01", periods=2, freq="MS")


def _two_partitions() -> Hierarchy:
    return hierarchy_from_table(
        pd.DataFrame(
            {
                "unique_id": ["total", "a", "b", "c", "d"],
                "hierarchy": ["total", "item", "item", "destination", "destination"],
                "parent": ["", "total", "total", "total", "total"],
            }
        )
    )


def _one_partition() -> Hierarchy:
    return hierarchy_from_table(
        pd.DataFrame(
            {"unique_id": ["total", "a", "b"], "hierarchy": ["total", "item", "item"], "parent": ["", "total", "total"]}
        )
    )


def _base(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for uid, v in values.items():
        for ds, x in zip(MONTHS, v):
            rows.append(
                {
                    "unique_id": uid,
                    "ds": ds,
                    "model": "ets",
                    "forecast": x,
                    "lo_80": x - 1,
                    "hi_80": x + 1,
                    "lo_95": x - 2,
                    "hi_95": x + 2,
                }
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- by hand
def test_the_constraints_of_two_partitions() -> None:
    h = _two_partitions()
    assert h.series == ("total", "c", "d", "a", "b")  # parents, then the partitions' children (sorted by name)
    assert h.partitions == (("total", "destination", ("c", "d")), ("total", "item", ("a", "b")))
    assert h.constraints.tolist() == [[1, -1, -1, 0, 0], [1, 0, 0, -1, -1]]


def test_ols_projection_of_one_partition_by_hand() -> None:
    # C = [1 -1 -1], y^ = (10, 4, 3): C y^ = 3, shared equally: y~ = y^ - C'(3/3) = (9, 5, 4)
    rec = reconcile(_one_partition(), method="ols", keep=())
    out = reconcile_forecasts(_base({"total": [10, 20], "a": [4, 12], "b": [3, 6]}), rec)
    got = out.pivot(index="ds", columns="unique_id", values="forecast")
    assert got.loc[MONTHS[0]].to_dict() == pytest.approx({"total": 9.0, "a": 5.0, "b": 4.0}, abs=1e-12)
    # month 2: C y^ = 2 -> (20 - 2/3, 12 + 2/3, 6 + 2/3)
    assert got.loc[MONTHS[1]].to_dict() == pytest.approx({"total": 58 / 3, "a": 38 / 3, "b": 20 / 3}, abs=1e-12)
    # the bounds move with their forecast
    first = out[(out["unique_id"] == "a") & (out["ds"] == MONTHS[0])].iloc[0]
    assert (first["lo_95"], first["lo_80"], first["hi_80"], first["hi_95"]) == pytest.approx((3.0, 4.0, 6.0, 7.0))
    assert set(out["model"]) == {RECONCILED}


def test_ols_projection_of_two_partitions_by_hand() -> None:
    # C y^ = (10-5-6, 10-4-3) = (-1, 3) in the (destination, item) order; C C' = [[3, 1], [1, 3]]
    # lambda = (C C')^-1 C y^ = (1/8)(3*-1 - 3, -(-1) + 3*3) = (-0.75, 1.25); y~ = y^ - C' lambda
    rec = reconcile(_two_partitions(), method="ols", keep=())
    base = _base({"total": [10, 10], "a": [4, 4], "b": [3, 3], "c": [5, 5], "d": [6, 6]})
    got = reconcile_forecasts(base, rec).query("ds == @MONTHS[0]").set_index("unique_id")["forecast"].to_dict()
    assert got == pytest.approx({"total": 9.5, "a": 5.25, "b": 4.25, "c": 4.25, "d": 5.25}, abs=1e-12)
    # the default keeps the total (its W row and column 0): each partition's children share their gap
    # equally, a and b +1.5 (10 - 7 = 3), c and d -0.5 (10 - 11 = -1)
    rec = reconcile(_two_partitions(), method="ols")
    assert rec.kept == ("total",)
    got = reconcile_forecasts(base, rec).query("ds == @MONTHS[0]").set_index("unique_id")["forecast"].to_dict()
    assert got == pytest.approx({"total": 10.0, "a": 5.5, "b": 4.5, "c": 4.5, "d": 5.5}, abs=1e-12)


def test_weighted_projection_moves_the_noisy_series_most() -> None:
    # W = diag(4, 1, 1): C W C' = 6, W C' = (4, -1, -1); C y^ = 3 -> y~ = y^ - (4, -1, -1) * 3/6 = (8, 4.5, 3.5)
    C = _one_partition().constraints
    P = projection(C, np.diag([4.0, 1.0, 1.0]))
    assert (P @ np.array([10.0, 4.0, 3.0])).tolist() == pytest.approx([8.0, 4.5, 3.5], abs=1e-12)


def test_shrinkage_covariance_at_its_two_ends() -> None:
    r = np.array([1.0, -1.0, 1.0, -1.0])
    # identical columns: every product z_i z_j is the same (3/4), its variance 0 -> lambda 0, the sample covariance
    W, lam = covariance(np.column_stack([r, r]), "mint_shrink")
    assert lam == 0.0
    assert W.ravel().tolist() == pytest.approx([4 / 3, 4 / 3, 4 / 3, 4 / 3])
    # orthogonal columns: correlation 0 -> lambda 1, the diagonal
    W, lam = covariance(np.column_stack([r, [1.0, 1.0, -1.0, -1.0]]), "mint_shrink")
    assert lam == 1.0
    assert W.ravel().tolist() == pytest.approx([4 / 3, 0.0, 0.0, 4 / 3])
    assert covariance(np.column_stack([r, 2 * r]), "wls_var")[0].ravel().tolist() == pytest.approx(
        [4 / 3, 0, 0, 16 / 3]
    )
    assert covariance(np.zeros((1, 2)), "mint_shrink")[0].tolist() == [[1.0, 0.0], [0.0, 1.0]]  # < 2 rows: ols
    with pytest.raises(
        ValueError, match=r"^reconciliation covariance must be one of mint_shrink, wls_var, ols; got 'x'$"
    ):
        covariance(r[:, None], "x")


def test_paths_are_reconciled_path_by_path_and_centred_on_the_point() -> None:
    h = _two_partitions()
    rng = np.random.default_rng(1)
    residuals = rng.standard_normal((30, 5)) * [5, 1, 2, 3, 1]
    rec = reconcile(h, residuals=residuals, method="mint_shrink")
    assert 0.0 <= rec.shrinkage <= 1.0 and rec.n_residuals == 30
    point = {
        "total": np.array([10.0, 11.0]),
        "a": np.array([4.0, 4.0]),
        "b": np.array([3.0, 5.0]),
        "c": np.array([5.0, 5.0]),
        "d": np.array([6.0, 7.0]),
    }
    paths = {uid: p + rng.standard_normal((500, 2)) for uid, p in point.items()}
    out = reconcile_paths(paths, rec, point=point)
    assert np.abs(out["total"] - out["a"] - out["b"]).max() < 1e-9
    assert np.abs(out["total"] - out["c"] - out["d"]).max() < 1e-9
    reconciled_point = rec.P @ np.stack([point[u] for u in h.series])
    for j, uid in enumerate(h.series):
        assert out[uid].mean(axis=0) == pytest.approx(reconciled_point[j], abs=1e-9)


# ----------------------------------------------------------------------------- bad input
def _history(last: dict[str, str] | None = None, broken: bool = False) -> dict[str, pd.Series]:
    idx = pd.date_range("2023-01-01", "2025-12-01", freq="MS")
    rng = np.random.default_rng(0)
    a, b, c = (pd.Series(rng.uniform(1, 2, len(idx)), index=idx) for _ in range(3))
    out = {"a": a, "b": b, "total": a + b + (0.5 if broken else 0.0), "c": c, "d": a + b - c}
    for uid, month in (last or {}).items():
        out[uid] = out[uid].loc[:month]
    return out


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": ["total", "a", "b", "c", "d", "x"],
            "hierarchy": ["total", "item", "item", "destination", "destination", "item"],
            "parent": ["", "total", "total", "total", "total", ""],
        }
    )


def test_a_coherent_history_passes() -> None:
    assert hierarchy_from_table(_table(), _history()).series == ("total", "c", "d", "a", "b")
    assert hierarchy_from_table(_table().assign(parent=""), _history()) is None


def test_a_parent_not_in_the_data_is_one_line_naming_it() -> None:
    table = _table().assign(parent=["", "totl", "totl", "total", "total", ""])
    assert issubclass(HierarchyError, ExportcastError)  # the CLI prints it as one line, exit 2
    with pytest.raises(
        HierarchyError, match=r"^hierarchy: parent 'totl' of the item series \(a, \.\.\.\) is not in the data$"
    ):
        hierarchy_from_table(table, _history())


def test_a_child_not_in_the_data_is_one_line_naming_it() -> None:
    history = _history()
    del history["d"]
    with pytest.raises(
        ValueError, match=r"^hierarchy: series 'd' \(destination child of 'total'\) is not in the data$"
    ):
        hierarchy_from_table(_table(), history)


def test_a_child_ending_in_another_month_is_one_line_naming_it() -> None:
    with pytest.raises(
        ValueError,
        match=r"^hierarchy: series 'b' ends 2025-11, its parent 'total' ends 2025-12: "
        r"every series of the hierarchy must end in the same month$",
    ):
        hierarchy_from_table(_table(), _history(last={"b": "2025-11-01"}))


def test_a_history_that_does_not_add_up_is_one_line_naming_the_parent() -> None:
    with pytest.raises(
        ValueError,
        match=r"^hierarchy: 'total' differs from the sum of its destination children by "
        r"\d+\.\d\d% in 2023-\d\d \(tolerance 0\.1%\): a child is missing or mislabelled$",
    ):
        hierarchy_from_table(_table(), _history(broken=True))


def test_base_forecasts_over_different_months_are_refused() -> None:
    rec = reconcile(_one_partition(), method="ols", keep=())
    base = _base({"total": [10, 20], "a": [4, 12], "b": [3, 6]})
    base = base[~((base["unique_id"] == "b") & (base["ds"] == MONTHS[1]))]
    with pytest.raises(
        ValueError,
        match=r"^reconcile: series 'b' is forecast for 1 month\(s\) \(2026-01\.\.2026-01\), "
        r"series 'total' for 2 \(2026-01\.\.2026-02\): every series of the hierarchy "
        r"must be forecast for the same months$",
    ):
        reconcile_forecasts(base, rec)


# ----------------------------------------------------------------------------- backtest and published tables
def small_frame(n: int = 60) -> pd.DataFrame:
    """total = a + b = c + d (two partitions), 2020-01 .. 2024-12, seeded, with different shapes."""
    rng = np.random.default_rng(3)
    ds = pd.date_range("2020-01-01", periods=n, freq="MS")
    t = np.arange(n)
    season = 1 + 0.15 * np.sin(2 * np.pi * t / 12)
    a = 6e9 * (1 + 0.01 * t) * season * rng.lognormal(0, 0.05, n)
    b = 3e9 * (1 - 0.004 * t) * season[::-1] * rng.lognormal(0, 0.08, n)
    total = a + b
    c = total * (0.3 + 0.1 * np.sin(t / 7)) * rng.lognormal(0, 0.03, n)
    values = {"total": total, "a": a, "b": b, "c": c, "d": total - c}
    return pd.concat([pd.DataFrame({"unique_id": u, "ds": ds, "y": v}) for u, v in values.items()], ignore_index=True)


def _small_table() -> pd.DataFrame:
    return _table().iloc[:5]


@pytest.mark.slow
def test_backtest_scores_the_reconciled_champions_at_every_cutoff() -> None:
    from models.core.backtest import backtest
    from models.core.engine import EngineSettings, frame_to_series

    frame = small_frame()
    h = hierarchy_from_table(_small_table(), frame_to_series(frame))
    settings = EngineSettings(models=("seasonal_naive", "naive", "ets"), n_jobs=1, n_paths=50)
    bt = backtest(frame, settings, horizon=6, windows=2, step=6, hierarchy=h, combinations=True)
    mint = bt.forecasts[bt.forecasts["model"] == RECONCILED]
    assert sorted(mint["cutoff"].unique()) == [pd.Timestamp("2023-12-01"), pd.Timestamp("2024-06-01")]
    assert len(mint) == 5 * 2 * 6
    for _, g in mint.groupby(["cutoff", "ds"]):
        v = g.set_index("unique_id")["forecast"]
        assert abs(v["total"] - v["a"] - v["b"]) <= 1e-9 * v["total"]
        assert abs(v["total"] - v["c"] - v["d"]) <= 1e-9 * v["total"]
    assert len(bt.metrics[bt.metrics["model"] == RECONCILED]) == 10
    assert RECONCILED not in set(bt.champions["champion"])  # a hierarchy-wide candidate, not a per-series one
    fits = bt.fits[bt.fits["model"] == RECONCILED]
    assert len(fits) == 10 and set(fits["status"]) == {"ok"}
    # the window's base is that window's champion: at the first cutoff the default (seasonal naive)
    first = bt.forecasts[(bt.forecasts["cutoff"] == pd.Timestamp("2023-12-01")) & (bt.forecasts["unique_id"] == "a")]
    base = first[first["model"] == "champion"]["forecast"].to_numpy()
    assert np.allclose(base, first[first["model"] == "seasonal_naive"]["forecast"].to_numpy())


@pytest.mark.slow
def test_published_champion_tables_of_a_small_hierarchy_are_coherent(tmp_path) -> None:
    from flows import jobs
    from flows.pipeline import reconcile_step
    from flows.plan import build_plan
    from flows.results import FORECAST_ANNUAL, FORECAST_MONTHLY, SCHEMAS, RunRecord, assemble, csv_bytes
    from flows.settings import load_settings
    from models.core.engine import frame_to_series
    from models.selection.champion import with_champions
    from tests.flows.conftest import write_config

    frame = small_frame()
    settings = load_settings(write_config(tmp_path, tmp_path / "unused.csv"))
    h = hierarchy_from_table(_small_table(), frame_to_series(frame))
    bt = jobs.backtest_frame(frame, settings, horizon=6, windows=2, step=6, hierarchy=h)
    fc = jobs.forecast_frame(frame, settings, until=settings.forecast_end, annual_year=2025, keep_models=True)
    fc = with_champions(jobs.with_combinations(fc, bt, settings), bt.champions)
    base_champion = dict(zip(bt.champions["unique_id"], bt.champions["champion"]))
    plan = build_plan(settings, frame, until=settings.forecast_end, hierarchy=h)
    fc = reconcile_step(fc, bt, frame, plan)
    reasons = fc.champions.loc[fc.champions["unique_id"].isin(h.series), "reason"]
    assert reasons.str.contains("; published( for coherence although)? reconciled mean MASE ").all()
    results = assemble(frame, bt, fc, None, run=RunRecord(run_id="t", target_year=2025))

    paths = {}
    for name in (FORECAST_MONTHLY, FORECAST_ANNUAL):  # the published CSV text, read back
        (tmp_path / name).write_bytes(csv_bytes(results.tables[name]))
        paths[name] = SCHEMAS[name].read(tmp_path / name)
    monthly, annual = paths[FORECAST_MONTHLY], paths[FORECAST_ANNUAL]

    def gaps(table: pd.DataFrame, key: str, champion: bool = True, models: dict | None = None) -> list[float]:
        if models is None:
            rows = table[table["is_champion"]]
        else:
            rows = table[[models[u] == m for u, m in zip(table["unique_id"], table["model"])]]
        wide = rows.pivot(index=key, columns="unique_id", values="forecast")
        assert list(wide.columns) == ["a", "b", "c", "d", "total"] and len(wide) > 0
        return [
            *(abs(wide["total"] - wide["a"] - wide["b"]) / wide["total"]),
            *(abs(wide["total"] - wide["c"] - wide["d"]) / wide["total"]),
        ]

    assert len(monthly[monthly["is_champion"]]) == 5 * 12
    assert set(monthly.loc[monthly["is_champion"], "model"]) == {RECONCILED}
    assert max(gaps(monthly, "ds")) <= 1e-3  # every month, both partitions, within 0.1%
    assert max(gaps(annual, "year")) <= 1e-3  # and the annual totals
    # the total is kept: its reconciled months are its base champion's
    total = monthly[monthly["unique_id"] == "total"]
    kept = total[total["is_champion"]]["forecast"].to_numpy()
    assert kept == pytest.approx(total[total["model"] == base_champion["total"]]["forecast"].to_numpy(), rel=1e-12)
    # the base champions (their rows kept as they were) do not add up: the test bites
    assert max(gaps(monthly, "ds", models=base_champion)) > 1e-3
    # annual bounds from the reconciled paths: ordered around the point
    champ = annual[annual["is_champion"]]
    assert (
        (champ["lo_95"] <= champ["lo_80"])
        & (champ["lo_80"] <= champ["forecast"])
        & (champ["forecast"] <= champ["hi_80"])
        & (champ["hi_80"] <= champ["hi_95"])
    ).all()
    champions = results.tables["champions.csv"].set_index("unique_id")
    assert champions.loc["a", "reason"].startswith(
        f"reconciled over the hierarchy (base champion {base_champion['a']}: "
    )
    assert (results.tables["model_fits.csv"]["model"] == RECONCILED).sum() == 5


class _PathStub:
    """A fitted model's stand-in: fixed-centre normal draws with a given spread."""

    uses_exog = False

    def __init__(self, centre: float, sd: float, last_ds: pd.Timestamp, n_obs: int) -> None:
        self.centre, self.sd, self.last_ds_, self.n_obs_ = centre, sd, last_ds, n_obs

    def sample_paths(self, h: int, n_paths: int, seed: int, X=None) -> np.ndarray:
        return self.centre + self.sd * np.random.default_rng(seed).standard_normal((n_paths, h))


def test_a_small_childs_bounds_stay_at_or_above_zero_and_its_points_are_unchanged() -> None:
    """The total's wide paths minus the sum of the children's are spread over the children: the
    small child's reconciled paths go below zero; its published bounds are floored at zero while
    its reconciled point (the coherent mean) is not taken from the paths."""
    from models.selection.reconcile import reconcile_published

    rng = np.random.default_rng(0)
    a = 100 + rng.normal(0, 5, 36)
    b = 3 + np.abs(rng.normal(0, 3, 36))
    centres = {"total": 104.0, "a": 100.0, "b": 3.0}
    history, h, forecasts, fits = _published_case(a, b, centres, "ets")
    fitted = {
        (u, "ets"): _PathStub(c, 40.0 if u == "total" else 1.0, history["a"].index[-1], 36) for u, c in centres.items()
    }
    fc = ForecastResult(forecasts=forecasts, fits=fits, fitted=fitted)
    out = reconcile_published(fc, {u: "ets" for u in centres}, history, h, n_paths=500, seed=0, year=None).forecasts
    rec = reconcile(h, residuals=seasonal_residuals(history, h.series))
    raw = reconcile_paths({u: fitted[(u, "ets")].sample_paths(12, 500, 0) for u in centres}, rec)
    assert (np.quantile(raw["b"], 0.025, axis=0) < 0).all()  # unfloored, the small child's 95% bound is negative
    mint = out[out["model"] == RECONCILED].set_index(["unique_id", "ds"])
    assert (mint.loc["b", "lo_95"] >= 0).all() and (mint.loc["b", "lo_80"] >= 0).all()
    assert (mint.loc["b", "lo_95"] == 0).any()
    points = mint["forecast"].unstack("unique_id")
    assert np.allclose(points["total"], points["a"] + points["b"], rtol=1e-12)  # still coherent
    assert np.allclose(points["total"], 104.0)  # the total's base forecast is kept


def _published_case(a: np.ndarray, b: np.ndarray, centres: dict[str, float], model: str):
    """total = a + b over 2022-01..2024-12, and a flat published forecast of 2025 per series
    (``centres``) under ``model``: (history, hierarchy, forecasts, fits) for reconcile_published."""
    ds = pd.date_range("2022-01-01", periods=len(a), freq="MS")
    history = {"total": pd.Series(a + b, index=ds), "a": pd.Series(a, index=ds), "b": pd.Series(b, index=ds)}
    fidx = pd.date_range("2025-01-01", periods=12, freq="MS")
    forecasts = pd.concat(
        [
            pd.DataFrame(
                {
                    "unique_id": u,
                    "ds": fidx,
                    "model": model,
                    "forecast": c,
                    "lo_80": c - 1,
                    "hi_80": c + 1,
                    "lo_95": c - 2,
                    "hi_95": c + 2,
                }
            )
            for u, c in centres.items()
        ],
        ignore_index=True,
    )
    fits = pd.DataFrame(
        {
            "unique_id": list(centres),
            "model": model,
            "model_used": model,
            "status": "ok",
            "reason": "",
            "error": "",
            "n_obs": len(a),
            "description": "{}",
        }
    )
    return history, hierarchy_from_table(_one_partition_table(), history), forecasts, fits


def _one_partition_table() -> pd.DataFrame:
    return pd.DataFrame(
        {"unique_id": ["total", "a", "b"], "hierarchy": ["total", "item", "item"], "parent": ["", "total", "total"]}
    )


# ---------------------------------------------------------------- joint paths: empirical copula
def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(np.argsort(np.argsort(x)), np.argsort(np.argsort(y)))[0, 1])


def test_copula_order_permutes_whole_paths_by_the_ranks_of_the_residuals() -> None:
    from models.selection.reconcile import copula_order

    rng = np.random.default_rng(1)
    paths = {u: rng.normal(size=(400, 6)) for u in ("x", "y", "z")}
    months = np.arange(50.0)
    residuals = np.column_stack([months, 2 * months + 1, -months])  # y with x, z against x
    out = copula_order(paths, residuals, ["x", "y", "z"], np.random.default_rng(0))
    for u in paths:  # every series keeps exactly its own paths, whole (rows permuted, never mixed)
        assert out[u].shape == (400, 6)
        assert np.array_equal(
            np.sort(out[u].view([("", float)] * 6), axis=0), np.sort(paths[u].view([("", float)] * 6), axis=0)
        )
    sums = {u: out[u].sum(axis=1) for u in out}
    # 400 draws of 50 months: ties inside a month are broken at random, so about 1 - 1/50^2 of the order is fixed
    assert _spearman(sums["x"], sums["y"]) > 0.95
    assert _spearman(sums["x"], sums["z"]) < -0.95
    # independent draws before: no rank correlation to speak of
    assert abs(_spearman(paths["x"].sum(axis=1), paths["y"].sum(axis=1))) < 0.15


def test_copula_order_without_two_complete_residual_months_changes_nothing() -> None:
    from models.selection.reconcile import copula_order

    paths = {"x": np.arange(12.0).reshape(4, 3), "y": -np.arange(12.0).reshape(4, 3)}
    residuals = np.array([[1.0, np.nan], [2.0, 3.0]])
    out = copula_order(paths, residuals, ["x", "y"], np.random.default_rng(0))
    assert np.array_equal(out["x"], paths["x"]) and np.array_equal(out["y"], paths["y"])
    with pytest.raises(ValueError, match=r"^residuals must have 2 columns \(one per series\); got shape \(2, 3\)$"):
        copula_order(paths, np.zeros((2, 3)), ["x", "y"], np.random.default_rng(0))


class _LevelStub(_PathStub):
    """Draws that shift the whole path: centre + sd * z (one z per path), as strongly
    month-to-month correlated as a model's annual range assumes."""

    def sample_paths(self, h: int, n_paths: int, seed: int, X=None) -> np.ndarray:
        return self.centre + self.sd * np.random.default_rng(seed).standard_normal((n_paths, 1)) * np.ones((1, h))


def test_published_children_keep_their_own_range_when_the_residuals_move_together() -> None:
    """total = a + b and their residuals move together. The reconciled child's 80% range stays
    about its base width with the copula ordering. Paired at random (independent draws),
    the projection adds the total's sampling noise to the child and widens its range."""
    from models.selection.reconcile import reconcile_published

    rng = np.random.default_rng(3)
    ds = pd.date_range("2020-01-01", periods=60, freq="MS")
    common = rng.normal(0, 5, 60).cumsum()
    a = 50 + 0.5 * common + rng.normal(0, 0.5, 60)
    b = 50 + 0.5 * common + rng.normal(0, 0.5, 60)
    history = {"total": pd.Series(a + b, index=ds), "a": pd.Series(a, index=ds), "b": pd.Series(b, index=ds)}
    h = hierarchy_from_table(_one_partition_table(), history)
    fidx = pd.date_range("2025-01-01", periods=12, freq="MS")
    # the total's range is the sum of its children's: comonotone children add up to it; paired at
    # random, a = a + (T - a - b) / 2 has sd sqrt(25 + 25 + 100) / 2 = 6.1, not 5
    centres, sds = {"total": 100.0, "a": 50.0, "b": 50.0}, {"total": 10.0, "a": 5.0, "b": 5.0}
    forecasts = pd.concat(
        [
            pd.DataFrame(
                {
                    "unique_id": u,
                    "ds": fidx,
                    "model": "ets",
                    "forecast": c,
                    "lo_80": c - 1,
                    "hi_80": c + 1,
                    "lo_95": c - 2,
                    "hi_95": c + 2,
                }
            )
            for u, c in centres.items()
        ],
        ignore_index=True,
    )
    fits = pd.DataFrame(
        {
            "unique_id": list(centres),
            "model": "ets",
            "model_used": "ets",
            "status": "ok",
            "reason": "",
            "error": "",
            "n_obs": 60,
            "description": "{}",
        }
    )
    fitted = {(u, "ets"): _LevelStub(c, sds[u], ds[-1], 60) for u, c in centres.items()}
    fc = ForecastResult(forecasts=forecasts, fits=fits, fitted=fitted)
    out = reconcile_published(fc, {u: "ets" for u in centres}, history, h, n_paths=2000, seed=0, year=None).forecasts
    rec = reconcile(h, residuals=seasonal_residuals(history, h.series))
    mint = out[out["model"] == RECONCILED].set_index(["unique_id", "ds"])
    width = float((mint.loc["a", "hi_80"] - mint.loc["a", "lo_80"]).mean())
    base_width = 2 * 1.2816 * sds["a"]
    independent = reconcile_paths({u: fitted[(u, "ets")].sample_paths(12, 2000, s) for s, u in enumerate(centres)}, rec)
    independent_width = float(
        np.mean(np.quantile(independent["a"], 0.9, axis=0) - np.quantile(independent["a"], 0.1, axis=0))
    )
    assert independent_width > 1.15 * base_width  # random pairing: the total's noise lands on the child
    assert width < 1.1 * base_width  # copula pairing: about its own range
    assert width < 0.85 * independent_width


class _LeadingStub(_PathStub):
    """A leading champion's stand-in: its paths are its indicator column where known, else its
    centre; it refuses an X without that column (as ARIMAX does)."""

    uses_exog = True

    def sample_paths(self, h: int, n_paths: int, seed: int, X=None) -> np.ndarray:
        if X is None or "lead:x" not in X.columns:
            raise ValueError(f"needs X with 'lead:x'; got {None if X is None else list(X.columns)}")
        x = X["lead:x"].to_numpy(dtype=float)[:h]
        return np.tile(np.where(np.isnan(x), self.centre, x), (n_paths, 1))


def test_a_leading_champion_draws_its_paths_with_its_own_columns() -> None:
    """The published reconciliation hands a series its own regressor columns (``own_exog``, as
    the engine did): the total's leading champion draws from its indicator (120 in the first
    month, public; unknown after); without them it cannot draw at all."""
    from models.selection.reconcile import reconcile_published

    rng = np.random.default_rng(1)
    a, b = 100 + rng.normal(0, 5, 36), 10 + rng.normal(0, 1, 36)
    centres = {"total": 110.0, "a": 100.0, "b": 10.0}
    history, h, forecasts, fits = _published_case(a, b, centres, "m")
    fitted = {
        (u, "m"): (_LeadingStub if u == "total" else _PathStub)(c, 0.0, history["a"].index[-1], 36)
        for u, c in centres.items()
    }
    fidx = pd.date_range("2025-01-01", periods=12, freq="MS")
    own = {"total": pd.DataFrame({"lead:x": [120.0] + [np.nan] * 11}, index=fidx)}
    args = (ForecastResult(forecasts=forecasts, fits=fits, fitted=fitted), {u: "m" for u in centres}, history, h)
    out = reconcile_published(*args, n_paths=20, seed=0, year=None, own_exog=own).forecasts
    total = out[(out["model"] == RECONCILED) & (out["unique_id"] == "total")].sort_values("ds")
    # the total is kept (immutable parent): its paths are 120 in the first month, then 110; its
    # bounds span the paths and its point (110)
    assert total["hi_80"].tolist() == pytest.approx([120.0] + [110.0] * 11)
    assert total["lo_80"].tolist() == pytest.approx([110.0] * 12)
    with pytest.raises(ValueError, match=r"^needs X with 'lead:x'; got None$"):
        reconcile_published(*args, n_paths=20, seed=0, year=None)
