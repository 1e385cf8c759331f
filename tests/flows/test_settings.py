from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from exportcast.errors import ExportcastError
from flows.settings import ConfigError, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


def test_defaults_mirror_the_shipped_config_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    from_file = load_settings(REPO / "config.yaml")
    defaults = load_settings(None)
    assert defaults.to_dict() == from_file.to_dict()
    assert defaults.config_file is None and from_file.config_file == REPO / "config.yaml"
    assert from_file.target_year == 2026
    assert str(from_file.forecast_end.date()) == "2026-12-01"
    assert from_file.backtest.horizon == 12 and from_file.backtest.windows == 3 and from_file.backtest.step == 6
    assert from_file.models.params["arima"] == {
        "max_p": 2,
        "max_q": 2,
        "max_P": 1,
        "max_Q": 1,
        "max_d": 1,
        "working_days": False,
    }
    assert from_file.runtime.n_jobs == 2 and from_file.models.n_paths == 1000


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "conf" / "config.yaml"
    cfg.parent.mkdir()
    cfg.write_text("data:\n  source: csv\n  path: in/x.csv\npublish:\n  dir: out\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # somewhere else than the config folder
    s = load_settings(cfg)
    assert s.data.path == cfg.parent / "in" / "x.csv"
    assert s.publish.dir == cfg.parent / "out"
    assert s.mlflow.tracking_uri == f"sqlite:///{cfg.parent}/mlruns/mlflow.db"
    assert s.mlflow.artifact_location == str(cfg.parent / "mlruns" / "artifacts")
    assert s.mlflow.sqlite_path == cfg.parent / "mlruns" / "mlflow.db"


def test_only_a_sqlite_store_has_a_database_file() -> None:
    from flows.settings import MlflowSettings

    assert MlflowSettings(tracking_uri="sqlite:////srv/mlruns/mlflow.db").sqlite_path == Path("/srv/mlruns/mlflow.db")
    assert MlflowSettings(tracking_uri="sqlite:///:memory:").sqlite_path is None
    assert MlflowSettings(tracking_uri="http://127.0.0.1:5000").sqlite_path is None


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("target_year: 2026\nruntime:\n  n_jobs: 2\n  seed: 5\n", encoding="utf-8")
    monkeypatch.setenv("EXPORTCAST__TARGET_YEAR", "2027")
    monkeypatch.setenv("EXPORTCAST__RUNTIME__N_JOBS", "1")
    monkeypatch.setenv("EXPORTCAST__DATA__SERIES", '["total", "item:ships"]')
    monkeypatch.setenv("EXPORTCAST__MODELS__PARAMS__ARIMA__MAX_P", "3")
    s = load_settings(cfg)
    assert s.target_year == 2027
    assert s.runtime.n_jobs == 1 and s.runtime.seed == 5  # the file's other key survives
    assert s.data.series == ["total", "item:ships"]
    assert s.models.params["arima"]["max_p"] == 3  # read as a YAML scalar, not the string "3"


def test_unknown_key_in_file_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("backtest:\n  horizon: 12\n  horizn: 6\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert str(err.value) == (
        f"{cfg}: invalid configuration: "
        "unknown key 'backtest.horizn' (in the config file or environment variable EXPORTCAST__BACKTEST__HORIZN)"
    )


def test_unknown_top_level_env_key_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORTCAST__TARGET_YEARS", "2027")
    with pytest.raises(ConfigError) as err:
        load_settings(None)
    assert str(err.value) == (
        "environment variable EXPORTCAST__TARGET_YEARS: unknown key 'target_years'; known top-level keys: "
        "backtest, data, institutional, mlflow, models, publish, runtime, target_year, team"
    )


def test_unknown_nested_env_key_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORTCAST__RUNTIME__THREADS", "4")
    with pytest.raises(ConfigError) as err:
        load_settings(None)
    assert str(err.value) == (
        "environment variable EXPORTCAST__RUNTIME__THREADS: invalid configuration: "
        "unknown key 'runtime.threads' (from environment variable EXPORTCAST__RUNTIME__THREADS)"
    )


def test_bad_values_are_named(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("models:\n  enabled: [arima, lstm]\nbacktest:\n  windows: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert str(err.value) == (
        f"{cfg}: invalid configuration:\n"
        "  'models.enabled': unknown model(s) ['lstm']; available: seasonal_naive, naive, ets, theta, arima, prophet, "
        "ensemble, arimax, arimax_wsts, arimax_flash, cycle, cycle_wsts, cycle_blend, chip_momentum, chip_momentum_blend (got ['arima', 'lstm'])\n"
        "  'backtest.windows': Input should be greater than or equal to 1 (got 0)"
    )


def test_a_bad_value_from_the_environment_names_the_variable_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("runtime:\n  n_jobs: 2\n", encoding="utf-8")
    monkeypatch.setenv("EXPORTCAST__RUNTIME__N_JOBS", "0")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert str(err.value) == (
        "environment variable EXPORTCAST__RUNTIME__N_JOBS: invalid configuration: "
        "'runtime.n_jobs': Input should be greater than or equal to 1 (got '0')"
    )
    monkeypatch.delenv("EXPORTCAST__RUNTIME__N_JOBS")
    cfg.write_text("runtime:\n  n_jobs: 0\n", encoding="utf-8")  # the same value from the file names the file
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert (
        str(err.value)
        == f"{cfg}: invalid configuration: 'runtime.n_jobs': Input should be greater than or equal to 1 (got 0)"
    )


def test_problems_from_file_and_environment_name_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("backtest:\n  windows: 0\n", encoding="utf-8")
    monkeypatch.setenv("EXPORTCAST__MODELS__PARAMS", '{"arima": {"max_p": 2}, "lstm": {}}')  # a JSON mapping
    monkeypatch.setenv("EXPORTCAST__TARGET_YEAR", "1999")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert str(err.value).splitlines() == [
        f"environment variable EXPORTCAST__TARGET_YEAR; environment variable EXPORTCAST__MODELS__PARAMS; {cfg}: "
        "invalid configuration:",
        "  'target_year': must be a year (2000-2100) or auto (got '1999')",
        "  'models.params': parameters given for unknown model(s) ['lstm']; available: seasonal_naive, naive, ets, "
        "theta, arima, prophet, ensemble, arimax, arimax_wsts, arimax_flash, cycle, cycle_wsts, cycle_blend, chip_momentum, chip_momentum_blend (got {'arima': {'max_p': 2}, 'lstm': {}})",
        "  'backtest.windows': Input should be greater than or equal to 1 (got 0)",
    ]


def test_updated_with_a_bad_value_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None).updated("models", enabled=["foo"])
    assert str(err.value) == (
        "models settings: invalid configuration: 'models.enabled': unknown model(s) ['foo']; available: "
        "seasonal_naive, naive, ets, theta, arima, prophet, ensemble, arimax, arimax_wsts, arimax_flash, cycle, cycle_wsts, cycle_blend, chip_momentum, chip_momentum_blend (got ['foo'])"
    )
    assert isinstance(err.value, ExportcastError)


def test_csv_source_needs_a_path(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("data:\n  source: csv\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="data.source is 'csv' but data.path is not set"):
        load_settings(cfg)


def test_selection_years_come_before_the_compared_years(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("institutional:\n  first_year: 2013\n  selection_first_year: 2014\n", encoding="utf-8")
    with pytest.raises(
        ConfigError, match="institutional.selection_first_year 2014 is after institutional.first_year 2013"
    ):
        load_settings(cfg)
    cfg.write_text("institutional:\n  selection_first_year: null\n", encoding="utf-8")
    assert load_settings(cfg).institutional.selection_first_year is None


def test_leading_models_are_checked_per_series(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("models:\n  leading:\n    total: [arimax_flash]\n", encoding="utf-8")
    settings = load_settings(cfg)
    assert settings.models.leading == {"total": ["arimax_flash"]} and settings.models.leading_names() == [
        "arimax_flash"
    ]
    assert "arimax_flash" not in settings.engine_settings().model_names  # not run for every series
    for body, message in (
        (
            "leading:\n    total: [ets]",
            "models.leading['total'] lists ['ets']: not a leading-indicator model; "
            "choose from arimax, arimax_wsts, arimax_flash, cycle, cycle_wsts, cycle_blend, chip_momentum, chip_momentum_blend",
        ),
        (
            "enabled: [ets, arimax_flash]\n  leading:\n    total: [arimax_flash]",
            "models.leading['total'] lists ['arimax_flash'], which models.enabled runs for every series; "
            "a leading model belongs to one of the two",
        ),
        (
            "leading:\n    total: [arimax_flash, arimax_flash]",
            "models.leading['total'] lists a model twice: ['arimax_flash', 'arimax_flash']",
        ),
    ):
        cfg.write_text(f"models:\n  {body}\n", encoding="utf-8")
        with pytest.raises(ConfigError) as err:
            load_settings(cfg)
        assert message in str(err.value)


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"config file not found: {tmp_path / 'nope.yaml'}"):
        load_settings(tmp_path / "nope.yaml")
    cfg = tmp_path / "list.yaml"
    cfg.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="the top level must be a mapping of sections; got list"):
        load_settings(cfg)


def test_engine_settings_carry_the_config(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "models:\n  enabled: [ets, theta]\n  n_paths: 300\n  params:\n    ets: {damped_trend: false}\n"
        "runtime:\n  n_jobs: 1\n  seed: 9\n",
        encoding="utf-8",
    )
    engine = load_settings(cfg).engine_settings()
    assert [spec.name for spec in engine.models] == ["seasonal_naive", "ets", "theta"]
    assert dict(engine.models[1].params) == {"damped_trend": False}
    assert (engine.n_paths, engine.n_jobs, engine.seed, engine.fallback) == (300, 1, 9, "naive")


def test_no_secret_in_settings_or_flat_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KCS_SERVICE_KEY", "kcs-secret-0123456789")
    s = load_settings(None)
    assert "kcs-secret-0123456789" not in repr(s.flat()) + repr(s.to_dict())
    assert not any("key" in name.split(".")[-1] for name in Settings.model_fields)


def test_settings_ask_the_registry_for_the_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """No model list in settings (issue 21, part 2): a combination computed after the fit is not a
    configurable model, and a model class registered with leading traits is accepted at once."""
    from models.core import registry
    from models.core.base import Traits
    from models.families.baselines import Theta

    settings = load_settings(None)
    with pytest.raises(ConfigError) as err:
        settings.updated("models", enabled=["ets", "combo_mean"])
    assert str(err.value) == (
        "models settings: invalid configuration: 'models.enabled': unknown model(s) ['combo_mean']; available: "
        "seasonal_naive, naive, ets, theta, arima, prophet, ensemble, arimax, arimax_wsts, arimax_flash, cycle, "
        "cycle_wsts, cycle_blend, chip_momentum, chip_momentum_blend (got ['ets', 'combo_mean'])"
    )

    class LeadingTheta(Theta):
        name = "theta_leading"
        traits = Traits(family="baseline", min_obs=4, leading=True)

    monkeypatch.setitem(registry._MODULES, "theta_leading", "tests")
    monkeypatch.setitem(registry._REGISTRY, "theta_leading", LeadingTheta)
    updated = settings.updated("models", leading={"total": ["theta_leading"]})
    assert updated.models.leading == {"total": ["theta_leading"]}
    with pytest.raises(ConfigError) as err:
        settings.updated("models", leading={"total": ["theta"]})
    assert str(err.value) == (
        "models settings: invalid configuration: 'models.leading': models.leading['total'] lists ['theta']: "
        "not a leading-indicator model; choose from arimax, arimax_wsts, arimax_flash, cycle, cycle_wsts, "
        "cycle_blend, chip_momentum, chip_momentum_blend, theta_leading (got {'total': ['theta']})"
    )


def test_the_data_checks_of_a_user_csv_come_from_the_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19, items 2-4: data.strict, data.allow_negative, data.signed, data.plausibility_factor
    (and runtime.verbose, item 10) reach the reader and the engine."""
    defaults = load_settings(None)
    assert defaults.data.checks() == {
        "strict": False,
        "allow_negative": False,
        "signed": [],
        "plausibility_factor": 1e6,
    }
    assert defaults.runtime.verbose is False
    engine = defaults.engine_settings()
    assert engine.signed == () and engine.plausibility_factor == 1e6 and not engine.is_signed("total")
    cfg = tmp_path / "config.yaml"
    cfg.write_text("data:\n  signed: ['balance:total']\n  plausibility_factor: 1.0e+4\n", encoding="utf-8")
    monkeypatch.setenv("EXPORTCAST__DATA__STRICT", "true")
    monkeypatch.setenv("EXPORTCAST__RUNTIME__VERBOSE", "1")
    s = load_settings(cfg)
    assert s.data.checks() == {
        "strict": True,
        "allow_negative": False,
        "signed": ["balance:total"],
        "plausibility_factor": 1e4,
    }
    assert s.runtime.verbose is True
    assert s.data.is_signed("balance:total") and not s.data.is_signed("total")
    assert s.engine_settings().signed == ("balance:total",) and s.engine_settings().is_signed("balance:total")
    monkeypatch.setenv("EXPORTCAST__DATA__ALLOW_NEGATIVE", "true")
    every = load_settings(cfg)
    assert every.data.is_signed("total") and every.engine_settings().signed is True
    monkeypatch.setenv("EXPORTCAST__DATA__PLAUSIBILITY_FACTOR", "1")
    with pytest.raises(ConfigError, match=r"'data.plausibility_factor': Input should be greater than 1 \(got '1'\)"):
        load_settings(cfg)


@pytest.mark.parametrize(
    ("last", "year", "end"),
    [
        ("2025-10", 2025, "2026-12-01"),
        ("2025-11", 2025, "2026-12-01"),
        ("2025-12", 2026, "2026-12-01"),
        ("2026-03", 2026, "2026-12-01"),
    ],
)
def test_target_year_auto_is_the_year_of_the_first_unobserved_month(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, last: str, year: int, end: str
) -> None:
    from flows.update import resolve_target_year

    months = pd.date_range("2023-01-01", last + "-01", freq="MS")
    csv = tmp_path / "x.csv"
    pd.DataFrame({"unique_id": "total", "ds": months.strftime("%Y-%m"), "y": 1.0}).to_csv(csv, index=False)
    monkeypatch.setenv("EXPORTCAST__TARGET_YEAR", "auto")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data:\n  source: csv\n  path: {csv}\ninstitutional:\n  first_year: 2020\n", encoding="utf-8")
    settings = load_settings(cfg)
    assert settings.target_year == "auto"
    with pytest.raises(ConfigError, match="target_year is auto: resolve it from the data first"):
        _ = settings.forecast_end
    resolved = resolve_target_year(settings)
    assert resolved.target_year == year and str(resolved.forecast_end.date()) == end
    assert resolved.next_year_shown == (last[5:] in ("10", "11"))
    assert resolve_target_year(resolved) is resolved  # an explicit year stays


def test_target_year_auto_on_the_embedded_seed_is_2026(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.update import resolve_target_year

    monkeypatch.setenv("EXPORTCAST__TARGET_YEAR", "auto")
    monkeypatch.setenv("EXPORTCAST__DATA__HOME", str(tmp_path / "empty-home"))
    resolved = resolve_target_year(load_settings(REPO / "config.yaml"))
    assert (resolved.target_year, resolved.next_year_shown) == (2026, False)
