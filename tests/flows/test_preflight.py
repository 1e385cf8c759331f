"""Where a run publishes and what it checks before Prefect starts (flows/preflight.py; issue 19
items 5 and 6). The subprocess tests of the same checks are in tests/cli/test_commands.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.preflight import InputError, prepare_run, publish_dir_of, run_name
from flows.settings import load_settings


def _settings(tmp_path: Path, text: str = "", publish: str = ""):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"publish:\n  dir: outputs\n{publish}{text}", encoding="utf-8")
    return load_settings(cfg)


def test_the_production_source_publishes_to_publish_dir(tmp_path):
    settings = _settings(tmp_path)
    assert publish_dir_of(settings) == tmp_path / "outputs"
    assert prepare_run(settings).publish.dir == tmp_path / "outputs"


def test_a_user_csv_publishes_to_a_folder_named_after_it(tmp_path):
    settings = _settings(tmp_path, "data:\n  source: csv\n  path: in/three.csv\n")
    assert run_name(settings) == "csv-three"
    assert publish_dir_of(settings) == tmp_path / "outputs" / "csv-three"
    odd = settings.updated("data", path=tmp_path / "my exports (2).v2.csv")
    assert run_name(odd) == "csv-my-exports-2-.v2"


def test_the_customs_api_and_a_non_production_embedded_run_get_their_own_folders(tmp_path):
    assert publish_dir_of(_settings(tmp_path, "data:\n  source: customs_api\n")) == tmp_path / "outputs" / "customs_api"
    csv_production = _settings(tmp_path, "mlflow:\n  production_source: csv\n")
    assert publish_dir_of(csv_production) == tmp_path / "outputs" / "embedded"


def test_a_csv_production_source_publishes_to_publish_dir(tmp_path):
    settings = _settings(tmp_path, "data:\n  source: csv\n  path: three.csv\nmlflow:\n  production_source: csv\n")
    assert publish_dir_of(settings) == tmp_path / "outputs"


def test_the_configured_folder_and_the_option_win(tmp_path, monkeypatch):
    settings = _settings(tmp_path, "data:\n  source: csv\n  path: three.csv\n", publish="  non_production_dir: mine\n")
    assert settings.publish.non_production_dir == tmp_path / "mine"
    assert publish_dir_of(settings) == tmp_path / "mine"
    assert publish_dir_of(settings, tmp_path / "elsewhere") == tmp_path / "elsewhere"
    monkeypatch.setenv("EXPORTCAST__PUBLISH__NON_PRODUCTION_DIR", str(tmp_path / "from-env"))
    assert publish_dir_of(_settings(tmp_path, "data:\n  source: csv\n  path: three.csv\n")) == tmp_path / "from-env"


def test_prepare_run_applies_the_source_and_checks_the_data_path(tmp_path):
    csv = tmp_path / "three.csv"
    settings = _settings(tmp_path, f"data:\n  path: {csv}\n")
    with pytest.raises(InputError) as info:
        prepare_run(settings, "csv")
    assert str(info.value) == f"data.path {csv}: no such file (config data.path or EXPORTCAST__DATA__PATH)"
    assert not (tmp_path / "outputs").exists()  # nothing created before the inputs are known good
    csv.write_text("unique_id,ds,y\ntotal,2024-01,1\n", encoding="utf-8")
    prepared = prepare_run(settings, "csv")
    assert (prepared.data.source, prepared.publish.dir) == ("csv", tmp_path / "outputs" / "csv-three")
    assert prepared.publish.dir.is_dir() and not list(prepared.publish.dir.iterdir())  # the probe is gone
