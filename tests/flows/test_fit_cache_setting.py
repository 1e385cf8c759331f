"""runtime.fit_cache and runtime.report_cache: a folder relative to the config file, or off."""

from pathlib import Path

import yaml

from flows.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_fit_cache_is_a_folder_beside_the_config_or_off(tmp_path, monkeypatch):
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.delenv("EXPORTCAST__RUNTIME__FIT_CACHE", raising=False)
    settings = load_settings(path)
    assert settings.runtime.fit_cache == str(tmp_path / ".cache" / "fits")
    assert settings.engine_settings().fit_cache == str(tmp_path / ".cache" / "fits")
    monkeypatch.setenv("EXPORTCAST__RUNTIME__FIT_CACHE", "off")
    assert load_settings(path).engine_settings().fit_cache == ""
    monkeypatch.setenv("EXPORTCAST__RUNTIME__FIT_CACHE", "/srv/fits")
    assert load_settings(path).engine_settings().fit_cache == "/srv/fits"


def test_report_cache_is_a_folder_beside_the_config_or_off(tmp_path, monkeypatch):
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.delenv("EXPORTCAST__RUNTIME__REPORT_CACHE", raising=False)
    assert load_settings(path).runtime.report_cache_dir == tmp_path / ".cache" / "report"
    monkeypatch.setenv("EXPORTCAST__RUNTIME__REPORT_CACHE", "off")
    assert load_settings(path).runtime.report_cache_dir is None
