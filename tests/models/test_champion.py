"""Champion choice: lowest mean MASE, ties to the simpler model, defaults, reasons."""
import json

import pandas as pd
import pytest

from models.champion import choose, complexity_key, select_champions

NAN = float("nan")


def test_lowest_mean_mase_wins_with_reason():
    # ets: (0.9 + 0.7) / 2 = 0.8 ; arima: (0.6 + 1.2) / 2 = 0.9 ; seasonal_naive 1.0
    choice = choose({"seasonal_naive": [1.0, 1.0], "ets": [0.9, 0.7], "arima": [0.6, 1.2]}, default="seasonal_naive")
    assert choice.champion == "ets"
    assert choice.reason == "lowest mean MASE 0.800 over 2 windows"
    assert choice.n_windows == 2
    assert choice.mean_mase == pytest.approx({"seasonal_naive": 1.0, "ets": 0.8, "arima": 0.9})


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
        "naive", "seasonal_naive", "theta", "ets", "arima", "prophet", "ensemble", "alpha", "zeta"]


def test_select_champions_table():
    metrics = pd.DataFrame({
        "unique_id": ["a"] * 4 + ["b"] * 4,
        "model": ["seasonal_naive", "seasonal_naive", "ets", "ets"] * 2,
        "cutoff": pd.to_datetime(["2020-01-01", "2020-02-01"] * 4),
        "mase": [1.0, 1.0, 0.5, 0.7, 0.4, 0.4, 0.5, 0.3],
    })
    table = select_champions(metrics, default="seasonal_naive", series=["a", "b", "c"])
    assert table["unique_id"].tolist() == ["a", "b", "c"]
    # a: ets 0.6 < 1.0 ; b: seasonal_naive 0.4 and ets (0.5 + 0.3) / 2 = 0.4 tie -> the simpler one ; c: no window
    assert table["champion"].tolist() == ["ets", "seasonal_naive", "seasonal_naive"]
    assert table.loc[1, "reason"] == "lowest mean MASE 0.400 over 2 windows (tied with ets; simpler model kept)"
    assert json.loads(table.loc[0, "mean_mase"]) == {"seasonal_naive": 1.0, "ets": 0.6}
    assert table.loc[2, "reason"] == "no backtest window: default"
    assert table["n_windows"].tolist() == [2, 2, 0]


def test_select_champions_needs_columns():
    with pytest.raises(ValueError, match=r"^metrics lacks column\(s\) \['mase'\]; has \['unique_id', 'model'\]$"):
        select_champions(pd.DataFrame({"unique_id": [], "model": []}), default="naive")


def test_default_champion_is_the_ensemble_then_seasonal_naive_then_the_first_model():
    from models.champion import default_champion

    assert default_champion(["seasonal_naive", "ets", "ensemble"]) == "ensemble"
    assert default_champion(["ets", "seasonal_naive"]) == "seasonal_naive"
    assert default_champion(["naive", "ets"]) == "naive"


def test_choose_at_counts_only_windows_fully_observed_by_the_cutoff():
    from models.champion import choose_at

    ts = pd.Timestamp
    windows = [(ts("2020-12-01"), {"ets": 0.5, "theta": 0.9}),   # ends before the cutoff: counts
               (ts("2021-10-01"), {"ets": 0.7, "theta": 0.5}),   # ends AT the cutoff: counts
               (ts("2021-12-01"), {"ets": 9.0, "theta": 0.1})]   # still running at the cutoff: ignored
    # ets (0.5 + 0.7) / 2 = 0.6 < theta (0.9 + 0.5) / 2 = 0.7; with the third window theta would win
    choice = choose_at(windows, ts("2021-10-01"), default="ensemble")
    assert (choice.champion, choice.n_windows) == ("ets", 2)
    assert choice.reason == "lowest mean MASE 0.600 over 2 windows before 2021-10"
    assert choose_at(windows, ts("2022-01-01"), default="ensemble").champion == "theta"
    early = choose_at(windows, ts("2020-11-01"), default="ensemble")
    assert (early.champion, early.n_windows) == ("ensemble", 0)
    assert early.reason == "no earlier window fully observed by 2020-11: default champion 'ensemble'"
