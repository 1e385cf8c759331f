"""The institutional comparison on hand-made data with two hand-computable toy models.

Toy models (injected through ``factory``; the engine runs them like any model):
- ``naive``: every future month = the last observed month; sample paths = forecast x s with
  s = 0.80, 0.84, ..., 1.20 (11 paths), the same s for every month of a path, so the 80% range
  of an annual total is [0.84, 1.16] x its point forecast and the 95% range [0.81, 1.19].
- ``seasonal_naive``: the last 12 observed months repeated; paths s = 0.95 .. 1.05 (11 paths):
  80% range [0.96, 1.04] x point.

Series ``total`` (USD bn per month; every month 50 in 2011-2012 except October 2012 = 60, then
every month of 2013 = 60 except October 2013 = 30, every month of 2014 = 60, of 2015 = 66):
with the information through October of Y-1 the annual forecasts of Y are
    naive Y          = 12 x Oct(Y-1)
    seasonal naive Y = Nov(Y-2) + Dec(Y-2) + Jan..Sep(Y-1) + Oct(Y-1)
and the actuals are 2013: 11 x 60 + 30 = 690, 2014: 720, 2015: 792.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.applications.institutional import (
    ReplayInputs,
    annual_actuals_table,
    compare_with_institutions,
    replay_outlooks,
)
from models.core.backtest import backtest
from models.core.base import Forecaster
from models.core.engine import EngineSettings, ModelSpec
from models.selection.champion import ChampionRule, choose

BN = 1e9


class _ToyScaled(Forecaster):
    width = 0.2

    def _fit(self, y, X):
        self.y_ = y.dropna()

    def _point(self, h: int) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _predict(self, h, X_future):
        f = self._point(h)
        w = self.width
        return {
            "forecast": f,
            "lo_80": f * (1 - 0.8 * w),
            "hi_80": f * (1 + 0.8 * w),
            "lo_95": f * (1 - 0.95 * w),
            "hi_95": f * (1 + 0.95 * w),
        }

    def _sample_paths(self, h, n_paths, rng, X_future):
        scale = np.linspace(1 - self.width, 1 + self.width, n_paths)
        return scale[:, None] * self._point(h)[None, :]


class ToyNaive(_ToyScaled):
    name = "naive"
    width = 0.20

    def _point(self, h):
        return np.full(h, float(self.y_.iloc[-1]))


class ToySeasonal(_ToyScaled):
    name = "seasonal_naive"
    width = 0.05

    def _point(self, h):
        last12 = self.y_.iloc[-12:].to_numpy(dtype=float)
        return np.array([last12[i % 12] for i in range(h)])


def toy_factory(name, params):
    return {"naive": ToyNaive, "seasonal_naive": ToySeasonal}[name](**params)


SETTINGS = EngineSettings(
    models=(ModelSpec("seasonal_naive"), ModelSpec("naive")),
    min_obs_seasonal=1,
    max_missing_share=1.0,
    fallback="naive",
    n_paths=11,
    n_jobs=1,
    seed=0,
)


def _months(start: str, values_bn: list[float], uid: str) -> pd.DataFrame:
    ds = pd.date_range(start, periods=len(values_bn), freq="MS")
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.asarray(values_bn, dtype=float) * BN})


def _year(level: float, october: float | None = None) -> list[float]:
    months = [level] * 12
    if october is not None:
        months[9] = october
    return months


def total_frame() -> pd.DataFrame:
    values = _year(50) + _year(50, october=60) + _year(60, october=30) + _year(60) + _year(66)
    return _months("2011-01-01", values, "total")


def semis_frame() -> pd.DataFrame:
    # 10 bn a month 2012-01 .. 2014-06: 2014 is incomplete in the data (actual from the actuals table)
    return _months("2012-01-01", [10.0] * 30, "item:semiconductors")


def projection(
    institution,
    year,
    uid,
    level=None,
    growth=None,
    kind="pre-year outlook",
    published=None,
    in_target_year=False,
    note="",
):
    return {
        "institution": institution,
        "kind": kind,
        "published": published or f"{year - 1}-11-25",
        "target_year": year,
        "unique_id": uid,
        "projected_usd_bn": level,
        "projected_growth_pct": growth,
        "published_in_target_year": in_target_year,
        "note": note,
    }


def toy_projections() -> pd.DataFrame:
    rows = [
        projection("KITA", 2013, "total", level=700.0),
        projection("KITA", 2014, "total", growth=5.0),  # growth only: 690 x 1.05 = 724.5
        projection("KITA", 2015, "total", level=780.0),
        projection("KIET", 2013, "total", level=680.0),
        projection("KIET", 2014, "total", level=730.0, published="2013-11-20"),
        projection(
            "KIET", 2014, "total", level=740.0, published="2013-12-20"
        ),  # reprint a month later: kept, not summarised
        projection("KIET", 2014, "total", level=715.0, kind="mid-year revision", published="2014-06-30"),
        projection("MOTIE", 2015, "total", level=800.0, published="2015-01-01", in_target_year=True),
        projection("MOTIE", 2015, "total", level=850.0, kind="target", published="2015-01-10"),
        projection("KITA", 2014, "item:semiconductors", growth=10.0),  # 120 x 1.10 = 132
        projection("KITA", 2014, None, growth=3.0, note="SSD: not a series"),
        projection("KITA", 2016, "total", level=800.0),
        projection("KIET", 2016, "total", growth=-1.0),  # 792 x 0.99 = 784.08
    ]
    return pd.DataFrame(rows)


def toy_actuals() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"year": 2013, "unique_id": "total", "actual_usd_bn": 999.0, "note": "ignored: the data has all 12 months"},
            {"year": 2014, "unique_id": "item:semiconductors", "actual_usd_bn": 130.0, "note": "first row wins"},
            {"year": 2014, "unique_id": "item:semiconductors", "actual_usd_bn": 131.0, "note": "conflicting print"},
            {"year": 2014, "unique_id": "total", "actual_usd_bn": ">700", "note": "not a number"},
        ]
    ).assign(partial_year="")


def test_partial_year_actuals_are_not_annual_totals():
    actuals = pd.DataFrame(
        [{"year": 2014, "unique_id": "item:semiconductors", "actual_usd_bn": 60.0, "partial_year": "Jan-Jun"}]
    )
    table = annual_actuals_table(semis_frame(), actuals)
    assert list(table["year"]) == [2012, 2013]  # 2014: only the partial figure


@pytest.fixture(scope="module")
def result():
    frame = pd.concat([total_frame(), semis_frame()], ignore_index=True)
    return compare_with_institutions(
        frame,
        toy_projections(),
        toy_actuals(),
        SETTINGS,
        info_month=10,
        first_year=2013,
        factory=toy_factory,
        combinations=False,  # the singles (combinations: test_institutional_combinations.py)
        champion_rule=ChampionRule(noise_se=0),
    )  # the information sets are the point here; the margin: below


def _ape(forecast, actual):
    return abs(forecast - actual) / actual * 100


# hand-computed annual forecasts (USD bn) with data through October of Y-1
NAIVE = {2013: 12 * 60, 2014: 12 * 30, 2015: 12 * 60}
SEASONAL = {2013: 50 + 50 + 9 * 50 + 60, 2014: 50 + 50 + 9 * 60 + 30, 2015: 60 + 60 + 9 * 60 + 60}
ACTUAL = {2013: 11 * 60 + 30, 2014: 12 * 60, 2015: 12 * 66}


def _row(table, **where):
    mask = np.ones(len(table), dtype=bool)
    for key, value in where.items():
        mask &= (table[key] == value).to_numpy()
    rows = table[mask]
    assert len(rows) == 1, f"{len(rows)} rows for {where}"
    return rows.iloc[0]


def test_model_forecasts_use_data_through_october_of_the_year_before(result):
    c = result.comparison
    for year in (2013, 2014, 2015):
        naive = _row(c, target_year=year, unique_id="total", institution="KITA", model="naive")
        seasonal = _row(c, target_year=year, unique_id="total", institution="KITA", model="seasonal_naive")
        assert naive["model_usd_bn"] == pytest.approx(NAIVE[year])
        assert seasonal["model_usd_bn"] == pytest.approx(SEASONAL[year])
        assert naive["model_data_through"] == f"{year - 1}-10"
        assert naive["model_lo_80"] == pytest.approx(0.84 * NAIVE[year])
        assert naive["model_hi_80"] == pytest.approx(1.16 * NAIVE[year])
        assert naive["model_lo_95"] == pytest.approx(0.81 * NAIVE[year])
        assert seasonal["model_hi_80"] == pytest.approx(1.04 * SEASONAL[year])
        assert naive["actual_usd_bn"] == pytest.approx(ACTUAL[year])
        assert naive["actual_source"] == "dataset (12 months)"
        assert naive["model_ape"] == pytest.approx(_ape(NAIVE[year], ACTUAL[year]))


def test_institution_ape_and_growth_only_conversion(result):
    c = result.comparison
    kita13 = _row(c, target_year=2013, unique_id="total", institution="KITA", model="champion")
    assert kita13["projected_level_usd_bn"] == 700.0
    assert kita13["level_basis"] == "level as published"
    assert kita13["institution_ape"] == pytest.approx(10 / 690 * 100)  # |700 - 690| / 690
    assert kita13["institution_error_pct"] == pytest.approx(10 / 690 * 100)

    kita14 = _row(c, target_year=2014, unique_id="total", institution="KITA", model="champion")
    assert np.isnan(kita14["projected_usd_bn"])
    assert kita14["projected_level_usd_bn"] == pytest.approx(690 * 1.05)  # 724.5
    assert kita14["level_basis"] == "growth x prior-year actual"
    assert kita14["institution_ape"] == pytest.approx(4.5 / 720 * 100)


def test_actual_from_the_actuals_table_when_the_year_is_incomplete(result):
    semis = _row(result.comparison, target_year=2014, unique_id="item:semiconductors", model="naive")
    assert semis["actual_usd_bn"] == 130.0
    assert semis["actual_source"] == "annual_actuals.csv (first of 2 rows)"
    assert semis["projected_level_usd_bn"] == pytest.approx(120 * 1.10)  # 2013 from the data: 12 x 10
    assert semis["institution_ape"] == pytest.approx(2 / 130 * 100)
    assert semis["model_usd_bn"] == pytest.approx(120.0)
    assert semis["model_ape"] == pytest.approx(10 / 130 * 100)
    # 2013 is not compared for semiconductors: the data starts 2012-01 but the item has no 2013 projection
    assert set(result.comparison.loc[result.comparison["unique_id"] == "item:semiconductors", "target_year"]) == {2014}


def test_annual_actuals_table_prefers_complete_data_years():
    frame = pd.concat([total_frame(), semis_frame()], ignore_index=True)
    table = annual_actuals_table(frame, toy_actuals())
    got = {(r.unique_id, r.year): (round(r.actual_usd_bn, 6), r.actual_source) for r in table.itertuples()}
    assert got[("total", 2013)] == (690.0, "dataset (12 months)")  # 999 in the table is ignored
    assert got[("item:semiconductors", 2014)] == (130.0, "annual_actuals.csv (first of 2 rows)")
    assert got[("item:semiconductors", 2013)] == (120.0, "dataset (12 months)")
    assert ("total", 2016) not in got


def test_champion_of_a_year_uses_only_years_known_at_its_information_cutoff(result):
    champs = result.champions[result.champions["unique_id"] == "total"].set_index("target_year")
    # 2013 and 2014: no target year whose months were all observed by Oct 2012 / Oct 2013 -> default
    assert champs.loc[2013, "champion_model"] == "seasonal_naive"
    assert (
        champs.loc[2013, "champion_reason"]
        == "no earlier window fully observed by 2012-10: default champion 'seasonal_naive'"
    )
    assert champs.loc[2014, "champion_model"] == "seasonal_naive"  # 2013's Nov-Dec were unknown in Oct 2013
    assert (
        champs.loc[2014, "champion_reason"]
        == "no earlier window fully observed by 2013-10: default champion 'seasonal_naive'"
    )
    assert champs.loc[2014, "n_prior_years"] == 0
    # 2015: on 2013's monthly forecasts (Nov 2012 .. Dec 2013, from data through Oct 2012).
    # MASE scale: |y_t - y_t-12| over Jan-Oct 2012 = 10 / 10 pairs = 1.0
    # naive (60): errors 10, 10, 0 x 9, 30, 0, 0 -> 50 / 14;  seasonal naive: 0, 0, 10 x 9, 30, 10, 10 -> 140 / 14
    assert champs.loc[2015, "champion_model"] == "naive"
    assert champs.loc[2015, "champion_reason"] == f"lowest mean MASE {50 / 14:.3f} over 1 window before 2014-10"
    assert champs.loc[2015, "n_prior_years"] == 1
    # 2016: 2013 and 2014. 2014 from data through Oct 2013, scale 130 / 22 (2012: 10 over 12 pairs;
    # 2013: 9 x 10 + 30 over 10 pairs): naive (30) 30 x 14 / 14 = 30; seasonal 70 / 14 = 5
    scale14 = 130 / 22
    naive_mean = (50 / 14 + 30 / scale14) / 2
    seasonal_mean = (140 / 14 + 5 / scale14) / 2
    assert naive_mean < seasonal_mean
    assert champs.loc[2016, "champion_model"] == "naive"
    assert champs.loc[2016, "champion_reason"] == f"lowest mean MASE {naive_mean:.3f} over 2 windows before 2015-10"
    assert champs.loc[2016, "n_prior_years"] == 2
    champion15 = _row(result.comparison, target_year=2015, unique_id="total", institution="KITA", model="champion")
    assert champion15["champion_model"] == "naive"
    assert champion15["model_usd_bn"] == pytest.approx(NAIVE[2015])


def test_champion_of_each_year_is_the_champion_rule_on_earlier_years_only(result):
    """models.selection.champion.choose (the rule of the rolling backtest) on the monthly MASE of the target
    years before Y-1 (their months were all observed by October of Y-1) gives the year's champion;
    letting Y-1 in would change 2014's, so the test sees a leak."""
    cutoffs = [pd.Timestamp(f"{year - 1}-10-01") for year in (2013, 2014, 2015, 2016)]
    bt = backtest(total_frame(), SETTINGS, horizon=14, cutoffs=cutoffs, keep_unscored=True, factory=toy_factory)
    scores = bt.metrics[bt.metrics["model"] != "champion"].assign(year=lambda m: m["cutoff"].dt.year + 1)
    champs = result.champions[result.champions["unique_id"] == "total"].set_index("target_year")["champion_model"]

    def rule(years):
        earlier = scores[scores["year"].isin(years)]
        return choose(
            {m: g["mase"].tolist() for m, g in earlier.groupby("model")}, default="seasonal_naive", noise_se=0
        ).champion

    for year in (2013, 2014, 2015, 2016):
        assert champs.loc[year] == rule(range(2013, year - 1))
    assert rule([2013]) == "naive" != champs.loc[2014]


def test_summary_mape_bias_and_coverage_by_hand(result):
    s = result.summary
    kita = _row(s, unique_id="total", institution="KITA", model="naive")
    # KITA pre-year outlooks: 2013 700 (actual 690), 2014 724.5 from growth (720), 2015 780 (792)
    inst_ape = [10 / 690 * 100, 4.5 / 720 * 100, 12 / 792 * 100]
    inst_err = [10 / 690 * 100, 4.5 / 720 * 100, -12 / 792 * 100]
    naive_err = [100 * (NAIVE[y] - ACTUAL[y]) / ACTUAL[y] for y in (2013, 2014, 2015)]
    assert kita["n_years"] == 3
    assert kita["years"] == "2013-2015"
    assert kita["institution_mape"] == pytest.approx(np.mean(inst_ape))
    assert kita["institution_bias_pct"] == pytest.approx(np.mean(inst_err))
    assert kita["model_mape"] == pytest.approx(np.mean(np.abs(naive_err)))
    assert kita["model_bias_pct"] == pytest.approx(np.mean(naive_err))
    # naive 80% ranges: 2013 [604.8, 835.2] holds 690; 2014 [302.4, 417.6] misses 720; 2015 [604.8, 835.2] holds 792
    assert kita["model_coverage_80"] == pytest.approx(2 / 3)
    assert kita["n_growth_only"] == 1
    assert "1 growth-only outlook(s)" in kita["note"]

    champion = _row(s, unique_id="total", institution="KITA", model="champion")
    # champion: seasonal naive 2013 and 2014 (default), naive 2015
    champ = [SEASONAL[2013], SEASONAL[2014], NAIVE[2015]]
    errs = [100 * (f - ACTUAL[y]) / ACTUAL[y] for f, y in zip(champ, (2013, 2014, 2015))]
    assert champion["model_mape"] == pytest.approx(np.mean(np.abs(errs)))
    # seasonal 2013 [585.6, 634.4] misses 690; seasonal 2014 670 x [0.96, 1.04] misses 720;
    # naive 2015 720 x [0.84, 1.16] = [604.8, 835.2] holds 792
    assert champion["model_coverage_80"] == pytest.approx(1 / 3)


def test_only_first_pre_year_outlook_enters_the_summary(result):
    c, s = result.comparison, result.summary
    kiet = _row(s, unique_id="total", institution="KIET", model="naive")
    assert kiet["n_years"] == 2
    assert kiet["institution_mape"] == pytest.approx((10 / 690 * 100 + 10 / 720 * 100) / 2)  # 680 and 730, not 740
    reprint = c[(c["institution"] == "KIET") & (c["target_year"] == 2014) & (c["projected_usd_bn"] == 740.0)]
    assert len(reprint) == 3 and not reprint["in_summary"].any()  # champion + 2 models, kept
    assert reprint["summary_note"].iloc[0].startswith("another outlook of this institution")
    revision = c[(c["kind"] == "mid-year revision")]
    assert len(revision) == 3 and not revision["in_summary"].any()
    assert revision["institution_ape"].iloc[0] == pytest.approx(5 / 720 * 100)  # still compared, 715 vs 720
    target = c[c["kind"] == "target"]
    assert not target["in_summary"].any()
    assert target["summary_note"].iloc[0] == "target: kept, not in the pre-year summary"


def test_january_outlook_is_flagged_and_compared_with_the_october_model(result):
    c, s = result.comparison, result.summary
    motie = _row(c, institution="MOTIE", kind="pre-year outlook", model="naive")
    assert bool(motie["published_in_target_year"]) and bool(motie["in_summary"])
    assert motie["model_data_through"] == "2014-10"
    assert motie["summary_note"].startswith("published in the target year")
    row = _row(s, unique_id="total", institution="MOTIE", model="champion")
    assert row["n_years"] == 1 and row["n_published_in_target_year"] == 1
    assert row["institution_mape"] == pytest.approx(8 / 792 * 100)
    assert "published in the target year" in row["note"]


def test_rows_without_a_series_are_left_out(result):
    assert result.comparison["unique_id"].notna().all()
    assert "SSD" not in " ".join(result.comparison["note"].astype(str))


def test_outlook_puts_target_year_projections_beside_the_champion(result):
    o = result.outlook
    assert list(o["institution"]) == ["KITA", "KIET"]
    assert (o["target_year"] == 2016).all()
    kiet = _row(o, institution="KIET")
    assert kiet["prior_year_actual_usd_bn"] == pytest.approx(792.0)
    assert kiet["projected_level_usd_bn"] == pytest.approx(792 * 0.99)
    # champion for 2016 from 2013-2014 (see the champion test): naive
    assert kiet["champion_model"] == "naive"
    # latest data (through 2015-12): naive 12 x 66 = 792; same information (through 2015-10): 12 x 66 too
    assert kiet["model_usd_bn"] == pytest.approx(792.0)
    assert kiet["model_data_through"] == "2015-12"
    assert kiet["model_lo_80"] == pytest.approx(0.84 * 792)
    assert kiet["model_growth_pct"] == pytest.approx(0.0)
    assert kiet["same_info_usd_bn"] == pytest.approx(12 * 66)
    assert kiet["same_info_data_through"] == "2015-10"
    kita = _row(o, institution="KITA")
    assert kita["institution_vs_model_pct"] == pytest.approx((800 - 792) / 792 * 100)


def test_inputs_are_not_modified():
    frame = total_frame()
    projections, actuals = toy_projections(), toy_actuals()
    before = (frame.copy(), projections.copy(), actuals.copy())
    compare_with_institutions(
        frame, projections, actuals, SETTINGS, first_year=2015, last_year=2015, target_year=2015, factory=toy_factory
    )
    pd.testing.assert_frame_equal(frame, before[0])
    pd.testing.assert_frame_equal(projections, before[1])
    pd.testing.assert_frame_equal(actuals, before[2])


def test_inputs_as_a_dataclass_or_as_keywords_give_one_result():
    frame, projections, actuals = total_frame(), toy_projections(), toy_actuals()
    inputs = ReplayInputs(first_year=2015, last_year=2015, target_year=2015, factory=toy_factory)
    by_value = compare_with_institutions(frame, projections, actuals, SETTINGS, inputs)
    by_keyword = compare_with_institutions(
        frame, projections, actuals, SETTINGS, first_year=2015, last_year=2015, target_year=2015, factory=toy_factory
    )
    pd.testing.assert_frame_equal(by_value.comparison, by_keyword.comparison)
    pd.testing.assert_frame_equal(by_value.outlook, by_keyword.outlook)
    assert len(by_value.comparison) > 0
    with pytest.raises(ValueError, match=r"^info_month must be a month number 1\.\.12; got 13$"):
        compare_with_institutions(frame, projections, actuals, SETTINGS, inputs, info_month=13)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'info_mnth'"):
        compare_with_institutions(frame, projections, actuals, SETTINGS, info_mnth=10)


def test_a_replay_made_beforehand_gives_the_same_comparison_and_is_not_refitted():
    """The pipeline replays the outlooks beside its other stages (``replay_outlooks``) and hands
    them to ``compare_with_institutions`` (``replay=``): the same tables as replaying there, and
    the replay's fits are not made again (only the target year's outlook fits, here where no
    ``latest_annual`` is given)."""
    frame = pd.concat([total_frame(), semis_frame()], ignore_index=True)
    projections, actuals = toy_projections(), toy_actuals()
    fits = [0]

    def counting(name, params):
        model = toy_factory(name, params)
        fit = model.fit

        def counted(*args, **kwargs):
            fits[0] += 1
            return fit(*args, **kwargs)

        model.fit = counted
        return model

    inputs = ReplayInputs(first_year=2013, factory=counting, combinations=False)
    replay = replay_outlooks(frame, projections, actuals, SETTINGS, inputs)
    replay_fits, fits[0] = fits[0], 0
    given = compare_with_institutions(frame, projections, actuals, SETTINGS, inputs, replay=replay)
    given_fits, fits[0] = fits[0], 0
    here = compare_with_institutions(frame, projections, actuals, SETTINGS, inputs)
    assert replay_fits > 0 and len(replay.annual) > 0
    assert fits[0] == replay_fits + given_fits
    for table in ("comparison", "summary", "outlook", "champions", "annual"):
        pd.testing.assert_frame_equal(getattr(given, table), getattr(here, table))


def test_bad_input_messages():
    frame = total_frame()
    with pytest.raises(ValueError, match=r"^projections lacks column\(s\) kind, unique_id; has "):
        compare_with_institutions(frame, toy_projections().drop(columns=["kind", "unique_id"]), toy_actuals(), SETTINGS)
    with pytest.raises(
        ValueError, match=r"^actuals lacks column\(s\) actual_usd_bn; has year, unique_id, note, partial_year$"
    ):
        compare_with_institutions(frame, toy_projections(), toy_actuals().drop(columns=["actual_usd_bn"]), SETTINGS)
    with pytest.raises(ValueError, match=r"^info_month must be a month number 1\.\.12; got 13$"):
        compare_with_institutions(frame, toy_projections(), toy_actuals(), SETTINGS, info_month=13)
    with pytest.raises(ValueError, match=r"^last_year 2012 is before first_year 2013$"):
        compare_with_institutions(frame, toy_projections(), toy_actuals(), SETTINGS, last_year=2012)
    bad = toy_projections().astype({"target_year": object})
    bad.loc[3, "target_year"] = "next year"
    with pytest.raises(ValueError, match=r"^projections: target_year is not a year in row 3: 'next year'$"):
        compare_with_institutions(frame, bad, toy_actuals(), SETTINGS)


def test_outlook_shows_the_published_champion_and_reuses_the_given_annual_forecast():
    frame = pd.concat([total_frame(), semis_frame()], ignore_index=True)
    latest_annual = pd.DataFrame(
        {
            "unique_id": ["total", "total"],
            "year": [2016, 2016],
            "model": ["naive", "seasonal_naive"],
            "forecast": [801e9, 790e9],
            "lo_80": [700e9, 690e9],
            "hi_80": [900e9, 890e9],
            "lo_95": [650e9, 640e9],
            "hi_95": [950e9, 940e9],
        }
    )
    out = compare_with_institutions(
        frame,
        toy_projections(),
        toy_actuals(),
        SETTINGS,
        info_month=10,
        first_year=2013,
        factory=toy_factory,
        latest_annual=latest_annual,
        latest_champions={"total": "naive"},
    )
    kiet = _row(out.outlook, institution="KIET")
    assert kiet["champion_model"] == "naive"  # the published champion, not the annual-APE one
    assert kiet["model_usd_bn"] == pytest.approx(801.0)  # taken from latest_annual, not refitted
    assert kiet["model_lo_80"] == pytest.approx(700.0)


def test_outlook_champion_of_a_series_without_a_same_information_window():
    # data through June 2015: the October 2015 information set of 2016 does not exist, so 2016 has
    # no window; its champion still comes from the one rule over the windows known by October 2015
    # (2013 and 2014, as in the champion test: naive), not the default seasonal naive
    frame = total_frame()
    frame = frame[frame["ds"] <= pd.Timestamp("2015-06-01")]
    out = compare_with_institutions(
        frame,
        toy_projections(),
        toy_actuals(),
        SETTINGS,
        info_month=10,
        first_year=2013,
        last_year=2015,
        target_year=2016,
        factory=toy_factory,
        champion_rule=ChampionRule(noise_se=0),
    )
    assert 2016 not in set(out.champions["target_year"])
    kita = _row(out.outlook, institution="KITA")
    assert kita["champion_model"] == "naive"
    assert kita["model_usd_bn"] == pytest.approx(12 * 66)  # naive from June 2015
    assert kita["model_data_through"] == "2015-06"
    assert np.isnan(kita["same_info_usd_bn"])


def test_with_the_noise_margin_two_noisy_years_keep_the_default():
    # 2016 from 2013 and 2014 (the champion test's numbers): naive's mean MASE is lower, but its
    # paired differences to seasonal naive (the default here: no ensemble) have opposite signs, so
    # one standard error covers the gap and the default stays; 2015 (one window, no spread to
    # measure the noise by) keeps the default too
    out = compare_with_institutions(
        total_frame(),
        toy_projections(),
        toy_actuals(),
        SETTINGS,
        info_month=10,
        first_year=2013,
        factory=toy_factory,
        combinations=False,
    )
    champs = out.champions[out.champions["unique_id"] == "total"].set_index("target_year")
    scale14 = 130 / 22
    naive, seasonal = [50 / 14, 30 / scale14], [140 / 14, 5 / scale14]
    d = [s - n for s, n in zip(seasonal, naive)]
    se = abs(d[0] - d[1]) / 2  # sd of two values / sqrt(2)
    assert sum(d) / 2 <= se
    assert champs.loc[2015, "champion_model"] == "seasonal_naive"
    assert champs.loc[2015, "champion_reason"] == (
        f"mean MASE {140 / 14:.3f} against naive's {50 / 14:.3f} over 1 window: fewer than two windows score both, "
        "no spread to show the difference is more than noise; default kept before 2014-10"
    )
    assert champs.loc[2016, "champion_model"] == "seasonal_naive"
    assert champs.loc[2016, "champion_reason"] == (
        f"mean MASE {sum(seasonal) / 2:.3f} over 2 windows, within the noise of naive's {sum(naive) / 2:.3f} "
        f"(difference {sum(d) / 2:.3f} <= 1 x standard error {se:.3f}); default kept before 2015-10"
    )


def _selection_run(settings: EngineSettings = SETTINGS, selection_first_year: int | None = 2013):
    return compare_with_institutions(
        total_frame(),
        toy_projections(),
        toy_actuals(),
        settings,
        info_month=10,
        first_year=2015,
        last_year=2015,
        target_year=2016,
        factory=toy_factory,
        combinations=False,
        champion_rule=ChampionRule(noise_se=0),
        selection_first_year=selection_first_year,
    )


def test_selection_years_inform_the_champion_but_are_not_compared(result):
    with_selection = _selection_run()
    champs = with_selection.champions.set_index("target_year")
    # 2015 and 2016 are chosen on the same earlier windows as when 2013 and 2014 were compared
    # (see test_champion_of_a_year_uses_only_years_known_at_its_information_cutoff)
    reference = result.champions[result.champions["unique_id"] == "total"].set_index("target_year")
    for year in (2015, 2016):
        assert champs.loc[year, "champion_model"] == reference.loc[year, "champion_model"] == "naive"
        assert champs.loc[year, "champion_reason"] == reference.loc[year, "champion_reason"]
    assert champs.loc[2015, "champion_reason"] == f"lowest mean MASE {50 / 14:.3f} over 1 window before 2014-10"
    # the selection years have no comparison row and no summary row
    assert set(with_selection.comparison["target_year"]) == {2015}
    # without them, 2015 has no earlier window fully observed: the default
    plain = _selection_run(selection_first_year=None).champions.set_index("target_year")
    assert plain.loc[2015, "champion_model"] == "seasonal_naive"
    assert (
        plain.loc[2015, "champion_reason"]
        == "no earlier window fully observed by 2014-10: default champion 'seasonal_naive'"
    )


def test_a_selection_year_needs_the_history_the_full_models_fit_on():
    # with min_obs_seasonal 24: October 2012 has 22 months of the total (2011-01..2012-10), so 2013
    # is no selection year; October 2013 has 34, so 2014 is one
    strict = EngineSettings(
        models=SETTINGS.models,
        min_obs_seasonal=24,
        max_missing_share=1.0,
        fallback="naive",
        n_paths=11,
        n_jobs=1,
        seed=0,
    )
    champs = _selection_run(strict).champions.set_index("target_year")
    assert 2013 not in champs.index
    assert (
        champs.loc[2014, "champion_reason"]
        == "no earlier window fully observed by 2013-10: default champion 'seasonal_naive'"
    )
    assert (
        champs.loc[2015, "champion_reason"]
        == "no earlier window fully observed by 2014-10: default champion 'seasonal_naive'"
    )
    # 2016: on the 2014 window only (data through October 2013; see the champion test: seasonal
    # naive's MASE 5 / (130 / 22), naive's 30 / (130 / 22)), where with 2013 it was naive
    assert champs.loc[2016, "champion_model"] == "seasonal_naive"
    assert champs.loc[2016, "champion_reason"] == f"lowest mean MASE {5 / (130 / 22):.3f} over 1 window before 2015-10"


def test_selection_years_must_come_before_the_compared_years():
    with pytest.raises(
        ValueError, match=r"^selection_first_year must be a year on or before first_year 2015; got 2016$"
    ):
        _selection_run(selection_first_year=2016)


class ToyMeanLevel(_ToyScaled):
    """A series' own model (as a leading model would be): the mean of the history every month."""

    name = "mean_toy"

    def _point(self, h):
        return np.full(h, float(self.y_.mean()))


def test_a_series_own_models_are_compared_and_summarised_for_that_series_only():
    from models.core.engine import SeriesExtras

    def factory(name, params):
        return ToyMeanLevel(**params) if name == "mean_toy" else toy_factory(name, params)

    def extras(uid, cutoff, months):
        return SeriesExtras(models=(ModelSpec("mean_toy"),)) if uid == "total" else SeriesExtras()

    frame = pd.concat([total_frame(), semis_frame()], ignore_index=True)
    out = compare_with_institutions(
        frame,
        toy_projections(),
        toy_actuals(),
        SETTINGS,
        info_month=10,
        first_year=2013,
        factory=factory,
        combinations=False,
        extras=extras,
    )
    own = out.comparison[out.comparison["model"] == "mean_toy"]
    assert set(own["unique_id"]) == {"total"}
    # 2013 from data through October 2012: 21 months of 50 and one of 60 -> 1110 / 22 a month
    kita13 = own[(own["target_year"] == 2013) & (own["institution"] == "KITA")].iloc[0]
    assert kita13["model_usd_bn"] == pytest.approx(12 * 1110 / 22)
    summary = out.summary[(out.summary["model"] == "mean_toy")]
    assert set(summary["unique_id"]) == {"total"} and "KITA" in set(summary["institution"])
