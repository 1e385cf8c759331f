"""Champion choice: lowest mean MASE, ties to the simpler model, defaults, reasons."""

import json

import pandas as pd
import pytest

from models.selection.champion import choose, choose_at, complexity_key, select_champions

NAN = float("nan")


def test_lowest_mean_mase_wins_with_reason():
    # ets: (0.9 + 0.7) / 2 = 0.8 ; arima: (0.6 + 1.2) / 2 = 0.9 ; seasonal_naive 1.0
    choice = choose({"seasonal_naive": [1.0, 1.0], "ets": [0.9, 0.7], "arima": [0.6, 1.2]}, default="seasonal_naive")
    assert choice.champion == "ets"
    assert choice.reason == "lowest mean MASE 0.800 over 2 windows"
    assert choice.n_windows == 2
    assert choice.mean_score == pytest.approx({"seasonal_naive": 1.0, "ets": 0.8, "arima": 0.9})


def test_tie_goes_to_simpler_model():
    choice = choose({"ensemble": [0.5, 0.7], "prophet": [0.6, 0.6], "theta": [0.7, 0.5 + 1e-10]}, default="x")
    assert choice.champion == "theta"
    assert choice.reason == "lowest mean MASE 0.600 over 2 windows (tied with prophet, ensemble; simpler model kept)"


def test_model_missing_a_window_cannot_win_on_fewer_windows():
    choice = choose({"seasonal_naive": [1.0, 1.0, 1.0], "arima": [0.1, NAN, 0.1]}, default="x")
    assert choice.champion == "seasonal_naive"
    assert choice.reason == "lowest mean MASE 1.000 over 3 windows"


def test_no_window_gives_default():
    choice = choose({"ets": [NAN], "champion": [0.1]}, default="ensemble")
    assert (choice.champion, choice.reason, choice.n_windows) == ("ensemble", "no backtest window: default", 0)


def test_complexity_order_then_unknown_alphabetically():
    names = ["zeta", "ensemble", "alpha", "naive", "arima", "seasonal_naive", "prophet", "theta", "ets"]
    assert sorted(names, key=complexity_key) == [
        "naive",
        "seasonal_naive",
        "theta",
        "ets",
        "arima",
        "prophet",
        "ensemble",
        "alpha",
        "zeta",
    ]


def test_select_champions_table():
    metrics = pd.DataFrame(
        {
            "unique_id": ["a"] * 4 + ["b"] * 4,
            "model": ["seasonal_naive", "seasonal_naive", "ets", "ets"] * 2,
            "cutoff": pd.to_datetime(["2020-01-01", "2020-02-01"] * 4),
            "mase": [1.0, 1.0, 0.5, 0.7, 0.4, 0.4, 0.5, 0.3],
        }
    )
    table = select_champions(metrics, default="seasonal_naive", series=["a", "b", "c"])
    assert table["unique_id"].tolist() == ["a", "b", "c"]
    # a: ets 0.6 < 1.0 ; b: seasonal_naive 0.4 and ets (0.5 + 0.3) / 2 = 0.4 tie -> the simpler one ; c: no window
    assert table["champion"].tolist() == ["ets", "seasonal_naive", "seasonal_naive"]
    assert table.loc[1, "reason"] == "lowest mean MASE 0.400 over 2 windows (tied with ets; default kept)"
    assert json.loads(table.loc[0, "mean_score"]) == {"seasonal_naive": 1.0, "ets": 0.6}
    assert table["metric"].tolist() == ["mase", "mase", "mase"]
    assert table.loc[2, "reason"] == "no backtest window: default"
    assert table["n_windows"].tolist() == [2, 2, 0]


def test_select_champions_needs_columns():
    with pytest.raises(ValueError, match=r"^metrics lacks column\(s\) \['mase'\]; has \['unique_id', 'model'\]$"):
        select_champions(pd.DataFrame({"unique_id": [], "model": []}), default="naive")


def test_default_champion_is_the_ensemble_then_seasonal_naive_then_the_first_model():
    from models.selection.champion import default_champion

    assert default_champion(["seasonal_naive", "ets", "ensemble"]) == "ensemble"
    assert default_champion(["ets", "seasonal_naive"]) == "seasonal_naive"
    assert default_champion(["naive", "ets"]) == "naive"


def test_choose_at_counts_only_windows_fully_observed_by_the_cutoff():
    from models.selection.champion import choose_at

    ts = pd.Timestamp
    windows = [
        (ts("2020-12-01"), {"ets": 0.5, "theta": 0.9}),  # ends before the cutoff: counts
        (ts("2021-10-01"), {"ets": 0.7, "theta": 0.8}),  # ends AT the cutoff: counts
        (ts("2021-12-01"), {"ets": 9.0, "theta": 0.1}),
    ]  # still running at the cutoff: ignored
    # ets (0.5 + 0.7) / 2 = 0.6 < theta (0.9 + 0.8) / 2 = 0.85, beyond the noise margin (differences
    # 0.4, 0.1: mean 0.25 > standard error 0.15); with the third window theta would win
    choice = choose_at(windows, ts("2021-10-01"), default="ensemble")
    assert (choice.champion, choice.n_windows) == ("ets", 2)
    assert choice.reason == "lowest mean MASE 0.600 over 2 windows before 2021-10"
    assert choose_at(windows, ts("2022-01-01"), default="ensemble").champion == "theta"
    early = choose_at(windows, ts("2020-11-01"), default="ensemble")
    assert (early.champion, early.n_windows) == ("ensemble", 0)
    assert early.reason == "no earlier window fully observed by 2020-11: default champion 'ensemble'"


def test_champion_metric_switch_changes_the_choice():
    # window by window: ets has the lower MASE, theta the lower sMAPE (both consistently, so the
    # noise margin does not blur either ranking)
    mase = {"theta": [0.9, 1.0, 1.1], "ets": [0.5, 0.6, 0.7]}
    smape = {"theta": [5.0, 6.0, 7.0], "ets": [8.0, 9.0, 10.5]}
    by_mase = choose(mase, default="x", metric="mase")
    by_smape = choose(smape, default="x", metric="smape")
    assert (by_mase.champion, by_mase.reason) == ("ets", "lowest mean MASE 0.600 over 3 windows")
    assert (by_smape.champion, by_smape.reason) == ("theta", "lowest mean sMAPE 6.000 over 3 windows")
    assert choose(mase, default="x", metric="rmsse").reason == "lowest mean RMSSE 0.600 over 3 windows"
    with pytest.raises(ValueError, match=r"^champion metric must be one of mase, smape, rmsse; got 'mape'$"):
        choose(mase, default="x", metric="mape")


def test_select_champions_ranks_on_the_configured_metric():
    metrics = pd.DataFrame(
        {
            "unique_id": ["a"] * 4,
            "model": ["theta", "theta", "ets", "ets"],
            "cutoff": pd.to_datetime(["2020-01-01", "2020-07-01"] * 2),
            "mase": [1.0, 1.2, 0.5, 0.6],
            "smape": [4.0, 5.0, 9.0, 11.0],
            "rmsse": [1.0, 1.0, 2.0, 2.0],
        }
    )
    assert select_champions(metrics, default="x", metric="mase")["champion"].tolist() == ["ets"]
    table = select_champions(metrics, default="x", metric="smape")
    assert table["champion"].tolist() == ["theta"]
    assert table.loc[0, "reason"] == "lowest mean sMAPE 4.500 over 2 windows"
    assert json.loads(table.loc[0, "mean_score"]) == {"theta": 4.5, "ets": 10.0}
    assert table.loc[0, "metric"] == "smape"
    with pytest.raises(
        ValueError, match=r"^metrics lacks column\(s\) \['rmsse'\]; has \['unique_id', 'model', 'cutoff', 'mase'\]$"
    ):
        select_champions(metrics[["unique_id", "model", "cutoff", "mase"]], default="x", metric="rmsse")


def test_noise_margin_protects_the_default_only():
    # arima is best on average (0.80 vs theta 0.85) but only thanks to one window:
    # differences theta - arima = 0.35, -0.10, -0.10: mean 0.05, sd 0.2598, se 0.15 -> inside the noise
    scores = {"arima": [0.50, 0.95, 0.95], "theta": [0.85, 0.85, 0.85], "seasonal_naive": [1.2, 1.3, 1.4]}
    choice = choose(scores, default="theta", noise_se=1.0)
    assert choice.champion == "theta"
    assert choice.reason == (
        "mean MASE 0.850 over 3 windows, within the noise of arima's 0.800 "
        "(difference 0.050 <= 1 x standard error 0.150); default kept"
    )
    # without the margin (noise_se=0) the best mean wins
    assert choose(scores, default="theta", noise_se=0).champion == "arima"
    # a candidate that is not the default gets no protection, however simple: the best mean wins
    assert choose(scores, default="x", noise_se=1.0).champion == "arima"
    # a CONSISTENT difference of the same size is not noise: theta - arima = 0.04, 0.05, 0.06 (se 0.0058)
    steady = {"arima": [0.80, 0.80, 0.80], "theta": [0.84, 0.85, 0.86]}
    assert choose(steady, default="theta", noise_se=1.0).champion == "arima"


def test_a_noisy_simple_candidate_does_not_win_for_being_noisy():
    # the total's 2019 case: theta beats the default (ensemble) consistently, beyond the noise;
    # seasonal naive is worse on average but so noisy that its standard error against theta covers
    # the gap. The champion is theta (the best), not the simpler, noisier seasonal naive.
    scores = {
        "seasonal_naive": [0.414, 0.401, 0.852, 0.929, 1.529],
        "theta": [0.269, 0.258, 1.293, 0.498, 1.526],
        "ensemble": [0.252, 0.314, 1.374, 0.482, 1.579],
    }
    choice = choose(scores, default="ensemble")
    assert (choice.champion, choice.reason) == ("theta", "lowest mean MASE 0.769 over 5 windows")


def test_noise_margin_pairs_windows_by_cutoff():
    from models.selection.champion import noise_margin

    # hand computed: d = 0.2, 0.4 (the NaN window of the candidate is dropped): sd 0.1414, se 0.1
    assert noise_margin([0.7, float("nan"), 0.9], [0.5, 0.1, 0.5]) == pytest.approx(0.1)
    assert noise_margin([0.7], [0.5]) == float("inf")  # no spread: the noise is unknown
    # choose_at aligns windows by their position even when a model lacks a window
    ts = pd.Timestamp
    windows = [
        (ts("2020-12-01"), {"theta": 0.9, "arima": 0.5}),
        (ts("2021-06-01"), {"arima": 0.6}),
        (ts("2021-12-01"), {"theta": 0.8, "arima": 0.9}),
    ]
    choice = choose_at(windows, ts("2022-01-01"), default="seasonal_naive")
    assert (choice.champion, choice.n_windows) == ("arima", 3)


def test_the_default_is_kept_inside_the_noise_and_loses_only_beyond_it():
    # theta is best on average (0.80) but the ensemble's (the default's) paired differences to it are
    # 0.30, -0.10, -0.05: mean 0.05, sd 0.2179, se 0.1258 -> inside one standard error: the default
    # stays, although theta is also simpler
    scores = {"ensemble": [0.90, 0.85, 0.80], "theta": [0.60, 0.95, 0.85], "seasonal_naive": [1.2, 1.3, 1.4]}
    choice = choose(scores, default="ensemble")
    assert choice.champion == "ensemble"
    assert choice.reason == (
        "mean MASE 0.850 over 3 windows, within the noise of theta's 0.800 "
        "(difference 0.050 <= 1 x standard error 0.126); default kept"
    )
    # the same means with a consistent gap (0.04, 0.05, 0.06: se 0.0058) is beyond the noise: theta wins
    steady = {"ensemble": [0.84, 0.85, 0.86], "theta": [0.80, 0.80, 0.80]}
    beaten = choose(steady, default="ensemble")
    assert (beaten.champion, beaten.reason) == ("theta", "lowest mean MASE 0.800 over 3 windows")
    # a default that is not a contender (no window scored) protects nothing: the best mean wins
    assert choose({"arima": [0.50, 0.95, 0.95], "theta": [0.85, 0.85, 0.85]}, default="ensemble").champion == "arima"


def test_the_margin_is_one_standard_error_by_default():
    from models.selection.champion import NOISE_SE

    assert NOISE_SE == 1.0


def test_champion_rule_is_checked_once_where_it_is_made():
    from models.selection.champion import ChampionRule

    assert (ChampionRule().metric, ChampionRule().noise_se) == ("mase", 1.0)
    with pytest.raises(ValueError, match=r"^champion metric must be one of mase, smape, rmsse; got 'mape'$"):
        ChampionRule("mape")
    with pytest.raises(ValueError, match=r"^champion noise margin must be a finite number >= 0; got -1$"):
        ChampionRule("mase", -1)


def test_a_candidate_that_started_later_wins_on_its_windows_when_beyond_the_noise():
    # cycle starts at window 3; on windows 3-5 the ensemble scores 1.0, 1.2, 1.1 and cycle 0.5, 0.6, 0.7:
    # paired gains 0.5, 0.6, 0.4 -> mean 0.5, standard error sd(0.5, 0.6, 0.4) / sqrt(3) = 0.1 / sqrt(3) = 0.058
    choice = choose(
        {"ensemble": [0.9, 0.8, 1.0, 1.2, 1.1], "ets": [1.0, 0.9, 1.0, 1.1, 1.1], "cycle": [NAN, NAN, 0.5, 0.6, 0.7]},
        default="ensemble",
    )
    assert choice.champion == "cycle"
    assert choice.reason == (
        "mean MASE 0.600 over the 3 windows it was scored on (it started later), 0.500 below "
        "ensemble's on the same windows"
    )
    assert choice.n_windows == 5


def test_a_later_starter_inside_the_noise_keeps_the_default_with_the_paired_figures():
    # gains 1.0 - 0.5 = 0.5 and 1.2 - 1.3 = -0.1: mean 0.2, standard error |0.5 - (-0.1)| / 2 = 0.3
    choice = choose({"ensemble": [0.9, 1.0, 1.2], "cycle": [NAN, 0.5, 1.3]}, default="ensemble")
    assert choice.champion == "ensemble"
    assert choice.reason == (
        "cycle's mean MASE 0.900 over the 2 windows it was scored on (it started later) is 0.200 "
        "below ensemble's on the same windows, within the noise (<= 1 x standard error 0.300); "
        "default kept"
    )


def test_a_later_starter_is_ranked_against_the_full_candidates_by_paired_gain():
    # theta gains 0.3 in every window (mean 0.7 vs 1.0); cycle gains 0.2 on its two windows: theta wins
    choice = choose(
        {"ensemble": [1.0, 1.0, 1.0, 1.0], "theta": [0.7, 0.71, 0.69, 0.7], "cycle": [NAN, NAN, 0.8, 0.8]},
        default="ensemble",
    )
    assert choice.champion == "theta"
    assert choice.reason == "lowest mean MASE 0.700 over 4 windows"


def test_a_candidate_that_failed_after_it_started_stays_out():
    choice = choose({"ensemble": [1.0, 1.0, 1.0, 1.0], "cycle": [NAN, 0.1, NAN, 0.1]}, default="ensemble")
    assert (choice.champion, choice.reason) == ("ensemble", "lowest mean MASE 1.000 over 4 windows")


def test_a_later_starter_with_one_window_keeps_the_default_and_says_so():
    choice = choose({"ensemble": [1.0, 1.0, 1.2], "arimax_flash": [NAN, NAN, 0.4]}, default="ensemble")
    assert choice.champion == "ensemble"
    assert choice.reason == (
        "arimax_flash's mean MASE 0.400 over the 1 window it was scored on (it started later) "
        "against ensemble's 1.200 on the same window: fewer than two windows score both, no "
        "spread to show the difference is more than noise; default kept"
    )
