"""A problem the user can fix ends a command with ONE clear message on stderr and exit code 2;
the traceback shows only with ``exportcast --debug``; a bug keeps its traceback.

Commands go through typer's CliRunner in-process. ``exportcast run`` also goes through real
subprocesses: a bad setting, an unwritable publish.dir (both before any compute) and bad data
inside the Prefect flow (Prefect's re-raising and its logged tracebacks are part of what is
tested); the customs API cases run `run` in-process with the pipeline reduced to its ingest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exportcast.cli import app

REPO = Path(__file__).resolve().parents[2]
AVAILABLE = "seasonal_naive, naive, ets, theta, arima, prophet, ensemble, arimax, arimax_wsts, arimax_flash, cycle, cycle_wsts, cycle_blend, chip_momentum, chip_momentum_blend"
runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args))


def _one_error_line(result, message: str) -> None:
    """Exit 2, the output is exactly the one error line, and no traceback."""
    assert result.exit_code == 2, result.output
    assert result.output == f"error: {message}\n"
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------- in-process
def test_validate_on_a_directory_is_one_line(tmp_path):
    _one_error_line(_invoke("validate", "--input", str(tmp_path)), f"{tmp_path}: is a directory, expected a CSV file")


def test_validate_on_a_missing_file_is_one_line(tmp_path):
    path = tmp_path / "nope.csv"
    _one_error_line(_invoke("validate", "--input", str(path)), f"{path}: no such file")


def test_a_permission_error_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.csv"
    path.write_text("unique_id,ds,y\ntotal,2024-01,1\n", encoding="utf-8")
    real = Path.read_bytes

    def denied(self):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)  # the tests run as root: chmod would not stop a read
    _one_error_line(_invoke("validate", "--input", str(path)), f"{path}: Permission denied")


def test_an_unknown_model_name_is_one_line(tmp_path):
    path = tmp_path / "good.csv"
    path.write_text("unique_id,ds,y\ntotal,2024-01,1\n", encoding="utf-8")
    _one_error_line(
        _invoke("forecast", "--input", str(path), "--models", "foo", "--out", str(tmp_path / "fc")),
        f"models settings: invalid configuration: 'models.enabled': unknown model(s) ['foo']; available: {AVAILABLE} "
        "(got ['foo'])",
    )
    assert not (tmp_path / "fc").exists()


def test_a_bad_setting_from_the_environment_names_the_variable(tmp_path, monkeypatch):
    path = tmp_path / "good.csv"
    path.write_text("unique_id,ds,y\ntotal,2024-01,1\n", encoding="utf-8")
    monkeypatch.setenv("EXPORTCAST__RUNTIME__N_JOBS", "0")
    _one_error_line(
        _invoke("backtest", "--input", str(path), "--out", str(tmp_path / "bt")),
        "environment variable EXPORTCAST__RUNTIME__N_JOBS: invalid configuration: 'runtime.n_jobs': Input should be "
        "greater than or equal to 1 (got '0')",
    )


def test_report_on_a_missing_folder_is_one_line(tmp_path):
    folder = tmp_path / "outputs"
    _one_error_line(
        _invoke("report", "--outputs", str(folder)),
        f"outputs folder {folder} does not exist: run the pipeline (`exportcast run`) first",
    )


def test_report_on_an_empty_published_file_is_one_line(tmp_path):
    folder = tmp_path / "outputs"
    folder.mkdir()
    for name in ("forecast_monthly.csv", "forecast_annual.csv", "champions.csv"):
        (folder / name).write_text("", encoding="utf-8")
    _one_error_line(
        _invoke("report", "--outputs", str(folder)), f"{folder / 'forecast_monthly.csv'}: the file is empty"
    )


def test_a_model_that_cannot_be_built_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "good.csv"
    path.write_text("unique_id,ds,y\ntotal,2024-01,1\n", encoding="utf-8")
    monkeypatch.setenv("EXPORTCAST__MODELS__PARAMS__ARIMA__MAX_P", "-1")
    _one_error_line(
        _invoke("forecast", "--input", str(path), "--models", "arima", "--out", str(tmp_path / "fc")),
        "model 'arima' cannot be created with params {'max_p': -1, 'max_q': 2, 'max_P': 1, 'max_Q': 1, 'max_d': 1, "
        "'working_days': False}: ModelInputError: arima: max_p must be a non-negative integer; got -1",
    )


def test_the_contract_message_keeps_its_lines_without_a_traceback(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("unique_id,ds,y\ntotal,2024-13,1\ntotal,2024-02,-5\ntotal,2024-03,7\n", encoding="utf-8")
    result = _invoke("validate", "--input", str(path))
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"error: {path}: 2 problems found",
        f"{path} line 2, column ds: '2024-13' is not a month (month 13 out of 01-12; expected YYYY-MM or YYYY-MM-DD)",
        f"{path} line 3, column y: '-5' is negative (exports in USD are >= 0)",
    ]


def test_debug_shows_the_traceback_then_the_message(tmp_path):
    result = _invoke("--debug", "validate", "--input", str(tmp_path))
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-2] == f"IsADirectoryError: [Errno 21] {tmp_path}: is a directory, expected a CSV file: '{tmp_path}'"
    assert lines[-1] == f"error: {tmp_path}: is a directory, expected a CSV file"


def test_a_bug_is_not_dressed_up_as_a_user_error(tmp_path, monkeypatch):
    import features.readers

    def broken(path, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(features.readers, "read_user_csv", broken)
    result = _invoke("validate", "--input", str(tmp_path / "x.csv"))
    assert result.exit_code == 1
    assert isinstance(result.exception, KeyError)
    assert "error:" not in result.output


def test_a_file_cut_short_is_accepted_with_a_warning(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_bytes(b"unique_id,ds,y\ntotal,2024-01,1500\ntotal,2024-02,25")
    result = _invoke("validate", "--input", str(path))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        f"warning: {path} line 3: the file does not end with a line end, so its last line may be cut short "
        "(it reads 'total,2024-02,25'); check it against the source"
    )
    assert f"{path}: 2 rows, 1 series, OK" in result.output


def test_user_errors_are_found_behind_a_wrapper():
    from exportcast.cli import error_message, user_error
    from features.contract import DataValidationError

    original = DataValidationError("f.csv", ["f.csv line 2: bad"])
    try:
        try:
            raise original
        except DataValidationError as exc:
            raise RuntimeError("task failed") from exc
    except RuntimeError as wrapped:
        assert user_error(wrapped) is original
    assert user_error(RuntimeError("plain bug")) is None
    assert (
        error_message(FileNotFoundError(2, "No such file or directory", "/x/y.csv"))
        == "/x/y.csv: No such file or directory"
    )
    from pydantic import ValidationError

    from flows.settings import RuntimeSettings

    with pytest.raises(ValidationError) as info:
        RuntimeSettings(n_jobs=0)
    assert user_error(info.value) is info.value
    assert (
        error_message(info.value)
        == "invalid settings (RuntimeSettings): 'n_jobs': Input should be greater than or equal to 1 (got 0)"
    )


# ------------------------------------------------------------------------------- `exportcast run`
def _run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EXPORTCAST__", "PREFECT_API_URL"))}
    environ.update(
        {
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "MPLBACKEND": "Agg",
            "PYTHONPATH": str(REPO),
            **(env or {}),
        }
    )  # the code of this checkout
    return subprocess.run(
        [sys.executable, "-m", "exportcast.cli", *args],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _config(tmp_path: Path, text: str) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def _assert_one_line(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.splitlines()[-1] == f"error: {message}"
    assert proc.stderr.count("error: ") == 1


@pytest.mark.slow  # a subprocess importing the pipeline
def test_run_with_a_bad_setting_is_one_line_and_debug_adds_the_traceback(tmp_path):
    cfg = _config(tmp_path, "backtest:\n  windows: 0\n")
    message = f"{cfg}: invalid configuration: 'backtest.windows': Input should be greater than or equal to 1 (got 0)"
    proc = _run(tmp_path, "run", "--config", str(cfg))
    _assert_one_line(proc, message)
    assert proc.stderr == f"error: {message}\n"
    debug = _run(tmp_path, "--debug", "run", "--config", str(cfg))
    assert debug.returncode == 2
    assert "Traceback (most recent call last):" in debug.stderr
    assert debug.stderr.splitlines()[-1] == f"error: {message}"


@pytest.mark.slow  # a subprocess importing the pipeline
def test_run_with_an_unwritable_publish_dir_fails_before_any_compute(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the outputs' parent folder should be\n", encoding="utf-8")
    out = blocker / "outputs"
    cfg = _config(tmp_path, f"publish:\n  dir: {out}\nmlflow:\n  tracking_uri: sqlite:///{tmp_path}/mlflow.db\n")
    proc = _run(tmp_path, "run", "--config", str(cfg))
    _assert_one_line(
        proc,
        f"publish.dir {out}: cannot write the outputs there (Not a directory); choose a writable "
        "folder (config publish.dir or EXPORTCAST__PUBLISH__DIR)",
    )
    assert not (tmp_path / "mlflow.db").exists()  # nothing ran: not even the tracker was opened
    assert not list((tmp_path / "prefect-home").glob("*.db"))  # nor Prefect's server (no database created)


# ------------------------------------------------------------- `exportcast run`: errors inside the flow
def _flow_config(tmp_path: Path, data: str) -> Path:
    return _config(
        tmp_path,
        f"data:\n{data}publish:\n  dir: {tmp_path / 'out'}\nmlflow:\n  tracking_uri: "
        f"sqlite:///{tmp_path}/mlflow.db\n  artifact_location: {tmp_path / 'artifacts'}\n",
    )


def _assert_flow_error(proc: subprocess.CompletedProcess, lines: list[str]) -> None:
    """Exit 2; the message (its first line after 'error: ') appears once, in full; no traceback.
    Prefect's own log lines about the failed task stay (they name the flow run)."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    err = proc.stderr.splitlines()
    start = err.index(f"error: {lines[0]}")
    assert err[start : start + len(lines)] == [f"error: {lines[0]}", *lines[1:]]
    assert sum(line.startswith("error: ") for line in err) == 1


@pytest.mark.slow  # a Prefect temporary server in a subprocess
def test_run_on_bad_data_shows_the_contract_message_not_prefects_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("unique_id,ds,y\ntotal,2024-13,1\ntotal,2024-02,-5\ntotal,2024-03,7\n", encoding="utf-8")
    cfg = _flow_config(tmp_path, f"  source: csv\n  path: {bad}\n")
    proc = _run(tmp_path, "run", "--config", str(cfg))
    _assert_flow_error(
        proc,
        [
            f"{bad}: 2 problems found",
            f"{bad} line 2, column ds: '2024-13' is not a month (month 13 out of 01-12; expected YYYY-MM or YYYY-MM-DD)",
            f"{bad} line 3, column y: '-5' is negative (exports in USD are >= 0)",
        ],
    )
    assert not (tmp_path / "out" / "run.json").exists()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def down_api():
    """A loopback HTTP server answering 503 to every call (the customs API "down")."""
    import http.server
    import threading

    class Down(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Down)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _ingest_only(monkeypatch) -> None:
    """`run` in-process with the pipeline reduced to its ingest step (the customs reader) and no
    backoff wait; the Prefect subprocess test above shows what Prefect adds around it."""
    import flows.supervise
    from features.customs_api import CustomsClient
    from features.readers import read_source

    def pipeline(settings, source, **_):  # in-process instead of the supervised child (whose error `run` re-raises)
        client = CustomsClient("fake-key", base_url=settings.data.customs.base_url, base_delay=0)
        read_source("customs_api", customs={**settings.data.customs.model_dump(), "client": client})
        return 0

    monkeypatch.setattr(flows.supervise, "run_supervised", pipeline)


def _customs_config(tmp_path: Path, base_url: str) -> Path:
    return _config(
        tmp_path,
        f"data:\n  source: customs_api\n  customs:\n    base_url: {base_url}\npublish:\n  dir: {tmp_path / 'out'}\n",
    )


def test_run_with_the_customs_api_unreachable_says_so(tmp_path, monkeypatch):
    _ingest_only(monkeypatch)
    cfg = _customs_config(tmp_path, f"http://127.0.0.1:{_closed_port()}/")  # refused: no network involved
    _one_error_line(
        _invoke("run", "--config", str(cfg)),
        "customs API Newtrade/getNewtradeList 202201-202212: network unreachable: no connection to 127.0.0.1 "
        "after 4 attempts (last: ConnectError: [Errno 111] Connection refused); check this machine's "
        "internet connection, DNS and firewall, and data.customs.base_url",
    )


def test_run_with_the_customs_api_down_says_so_and_debug_shows_the_traceback(tmp_path, monkeypatch, down_api):
    _ingest_only(monkeypatch)
    cfg = _customs_config(tmp_path, down_api)
    message = (
        "customs API Newtrade/getNewtradeList 202201-202212: the service is down: failed after 4 attempts "
        "(last: HTTP 503 Service Unavailable); the customs API answered with errors or timed out, try again later"
    )
    _one_error_line(_invoke("run", "--config", str(cfg)), message)
    debug = _invoke("--debug", "run", "--config", str(cfg))
    assert debug.exit_code == 2
    lines = debug.output.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-2:] == [f"features.customs_api.CustomsServiceDownError: {message}", f"error: {message}"]
