"""The team set (flows/team.py): up, run, backup, down on a real PostgreSQL, Prefect server,
worker and MLflow server; and the one-line refusals, without servers."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pandas as pd
import psutil
import pytest

from flows import team as team_mod
from flows.settings import TeamSettings

REPO = Path(__file__).resolve().parents[2]
SERIES = "item:semiconductors"
# a run small enough for a test: one series from a CSV cut out of the embedded data, one model,
# one backtest window; on the CSV source, made the production source so that it moves the alias
TINY_RUN_ENV = {
    "EXPORTCAST__MLFLOW__PRODUCTION_SOURCE": "csv",
    "EXPORTCAST__MODELS__ENABLED": '["seasonal_naive"]',
    "EXPORTCAST__MODELS__LEADING": "{}",
    "EXPORTCAST__INSTITUTIONAL__SELECTION_FIRST_YEAR": "2024",
    "EXPORTCAST__INSTITUTIONAL__FIRST_YEAR": "2025",
    "EXPORTCAST__BACKTEST__WINDOWS": "1",
    "EXPORTCAST__BACKTEST__COMBINATIONS": "false",
    "EXPORTCAST__MODELS__N_PATHS": "100",
    "EXPORTCAST__RUNTIME__N_JOBS": "1",
}


def team_dir() -> Path:
    """A folder the ``postgres`` user can enter (pytest's own tmp folders are mode 700 when root)."""
    root = Path(tempfile.mkdtemp(prefix="exportcast-team-", dir="/tmp"))
    root.chmod(0o755)
    return root


def team_cli(root: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTCAST__")}
    env["EXPORTCAST__TEAM__DIR"] = str(root)
    return subprocess.run(
        [sys.executable, "-m", "flows.team", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def settings_for(root: Path, **values) -> TeamSettings:
    return TeamSettings(dir=root, **values)


# ------------------------------------------------------------------ without servers
def test_a_public_address_without_auth_is_refused(tmp_path: Path) -> None:
    with pytest.raises(team_mod.TeamError) as exc:
        team_mod.load_team(settings_for(tmp_path, host="0.0.0.0", auth=False), create=True)
    assert str(exc.value) == (
        "team.host 0.0.0.0 is not a loopback address and team.auth is false: the servers would "
        "be open to the network without authentication; set team.auth true or bind 127.0.0.1"
    )
    assert not (tmp_path / "env").exists()


def test_env_file_is_private_and_holds_the_urls(tmp_path: Path) -> None:
    team = team_mod.load_team(
        settings_for(tmp_path, postgres_port=55599, prefect_port=4598, mlflow_port=4599), create=True
    )
    assert (tmp_path / "env").stat().st_mode & 0o777 == 0o600
    values = team_mod.read_env_file(tmp_path / "env")
    assert values["PREFECT_API_URL"] == "http://127.0.0.1:4598/api"
    assert values["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:4599"
    assert values["MLFLOW_TRACKING_USERNAME"] == "admin"
    assert values["MLFLOW_TRACKING_PASSWORD"] == team.secrets.mlflow_password
    assert values["EXPORTCAST_PG_DSN"] == f"postgresql://exportcast:{team.secrets.pg_password}@127.0.0.1:55599/mlflow"
    assert len(set(team.secrets.all)) == 4 and all(len(s) == 32 for s in team.secrets.all)
    # a second load keeps the passwords and the ports
    again = team_mod.load_team(settings_for(tmp_path))
    assert again.secrets == team.secrets and again.ports == team.ports
    assert json.loads((tmp_path / "state.json").read_text()) == {
        "ports": {"postgres": 55599, "prefect": 4598, "mlflow": 4599}
    }


def test_a_port_in_use_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        monkeypatch.setenv("EXPORTCAST__TEAM__DIR", str(tmp_path))
        monkeypatch.setenv("EXPORTCAST__TEAM__POSTGRES_PORT", str(port))
        assert team_mod.main(["up"]) == 2
    assert capsys.readouterr().err == (
        f"error: port {port} on 127.0.0.1 (for postgres) is in use by another process; "
        f"stop it, or set EXPORTCAST__TEAM__POSTGRES_PORT to a free port\n"
    )


def test_a_stale_pid_file_is_one_line_and_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = team_mod.TeamPaths(tmp_path)
    paths.pids.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    paths.pid_file("worker").write_text(f"{dead.pid} 12345.000\n")
    assert team_mod.running_process(paths, "worker") is None
    assert capsys.readouterr().out == (
        f"stale pid file {paths.pid_file('worker')} (process {dead.pid} is not running): removed\n"
    )
    assert not paths.pid_file("worker").exists()


def test_run_without_a_team_set_says_how_to_start_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORTCAST__TEAM__DIR", str(tmp_path))
    assert team_mod.main(["run"]) == 2
    assert capsys.readouterr().err == (
        f"error: no team set in {tmp_path} (no {tmp_path / 'env'}); start it with `make team-up`\n"
    )


# ------------------------------------------------------------------ the real thing
def postgres_available() -> str | None:
    try:
        team_mod.pg_bin()
    except team_mod.TeamError as exc:
        return str(exc)
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no postgres user to run PostgreSQL as"
    return None


def rest(url: str, auth: tuple[str, str] | None = None, **params) -> httpx.Response:
    return httpx.get(url, params=params, auth=auth, timeout=60)


def psql(dsn: str, sql: str) -> list[str]:
    psql_bin = shutil.which("psql") or str(team_mod.pg_bin() / "psql")
    done = subprocess.run([psql_bin, dsn, "-tAc", sql], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def family(pid_file: Path) -> list[psutil.Process]:
    pid = int(pid_file.read_text().split()[0])
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


@pytest.mark.slow
def test_team_up_run_backup_down_on_real_servers() -> None:
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    root = team_dir()
    try:
        _up_run_backup_down(root)
    finally:
        team_cli(root, "down")
        shutil.rmtree(root, ignore_errors=True)


def _up_run_backup_down(root: Path) -> None:
    paths = team_mod.TeamPaths(root)
    first = team_cli(root, "up")
    assert first.returncode == 0, first.stderr + first.stdout
    env = team_mod.read_env_file(paths.env)
    secrets = [env[k] for k in env if k.startswith("EXPORTCAST_TEAM_")]
    assert len(secrets) == 4
    prefect, mlflow = env["PREFECT_API_URL"], env["MLFLOW_TRACKING_URI"]
    port = re.fullmatch(r"postgresql://exportcast:[^@]+@127\.0\.0\.1:(\d+)/mlflow", env["EXPORTCAST_PG_DSN"]).group(1)
    assert first.stdout.splitlines()[-1] == (
        f"team set up: Prefect {prefect}, MLflow {mlflow}, PostgreSQL "
        f"127.0.0.1:{port} (databases prefect, mlflow); `source {paths.env}`"
    )
    second = team_cli(root, "up")
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout.splitlines()[-1].replace("team set up:", "team set already running:") + "\n"

    # authentication: MLflow and Prefect answer 401 without credentials
    mlflow_auth = (env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"])
    prefect_auth = tuple(env["PREFECT_API_AUTH_STRING"].split(":", 1))
    assert rest(f"{mlflow}/api/2.0/mlflow/experiments/search", max_results=1).status_code == 401
    assert rest(f"{mlflow}/api/2.0/mlflow/experiments/search", mlflow_auth, max_results=1).status_code == 200
    assert rest(f"{prefect}/deployments/name/monthly-forecast/monthly").status_code == 401

    # both deployments from prefect.yaml, on the process pool, one run at a time
    for name in ("monthly-forecast/monthly", "flash-nowcast/flash-nowcast"):
        deployment = rest(f"{prefect}/deployments/name/{name}", prefect_auth).json()
        assert deployment["work_pool_name"] == "exportcast-process"
        assert deployment["global_concurrency_limit"]["limit"] == 1

    # the monthly deployment, run on the worker (a tiny configuration)
    work = Path(tempfile.mkdtemp(prefix="exportcast-team-run-", dir="/tmp"))
    try:
        data = pd.read_csv(REPO / "data" / "exports_monthly.csv")
        data[data["unique_id"] == SERIES][["unique_id", "ds", "y"]].to_csv(work / "tiny.csv", index=False)
        job_env = {
            **TINY_RUN_ENV,
            "EXPORTCAST__DATA__PATH": str(work / "tiny.csv"),
            "EXPORTCAST__PUBLISH__DIR": str(work / "out"),
        }
        run = team_cli(
            root,
            "run",
            "--param",
            "source=csv",
            *(f"--job-env={k}={v}" for k, v in job_env.items()),
            "--timeout",
            "600",
        )
        assert run.returncode == 0, run.stdout + run.stderr + paths.log("worker").read_text()[-3000:]
        flow_run_id = re.search(r"flow run (\S+): COMPLETED\n", run.stdout).group(1)
        url = re.search(rf"mlflow run: {re.escape(mlflow)}/#/experiments/(\d+)/runs/(\w+)\n", run.stdout)
        assert url is not None, run.stdout
        run_json = (work / "out" / "run.json").read_text()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    flow_run = rest(f"{prefect}/flow_runs/{flow_run_id}", prefect_auth).json()
    assert flow_run["state_type"] == "COMPLETED"
    assert flow_run["work_pool_name"] == "exportcast-process"
    assert flow_run["infrastructure_pid"]  # set by the worker that ran it

    # the MLflow run, its dataset, the model version and the alias, over REST
    api = f"{mlflow}/api/2.0/mlflow"
    got = rest(f"{api}/runs/get", mlflow_auth, run_id=url.group(2)).json()["run"]
    assert got["info"]["status"] == "FINISHED"
    assert got["inputs"]["dataset_inputs"][0]["dataset"]["name"] == "tiny.csv"
    alias = rest(f"{api}/registered-models/alias", mlflow_auth, name="exportcast-champion", alias="champion")
    assert alias.status_code == 200 and alias.json()["model_version"]["version"] == "1"
    assert rest(f"{api}/registered-models/alias", name="exportcast-champion", alias="champion").status_code == 401
    # no password in MLflow params or tags, run.json, logs or any command line
    logged = json.dumps(got["data"])
    logs = "".join(p.read_text(errors="replace") for p in paths.logs.iterdir())
    commands = " ".join(" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"]))
    for secret in secrets:
        assert secret not in logged and secret not in run_json and secret not in logs and secret not in commands

    # Prefect's and MLflow's tables in PostgreSQL (psql takes the DSN), no SQLite file anywhere
    dsn = env["EXPORTCAST_PG_DSN"]
    mlflow_tables = set(psql(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    assert {"runs", "registered_model_aliases", "model_versions", "users", "alembic_version_auth"} <= mlflow_tables
    prefect_tables = set(
        psql(dsn.removesuffix("/mlflow") + "/prefect", "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    )
    assert {"flow_run", "deployment", "work_pool", "worker"} <= prefect_tables
    assert psql(
        dsn.removesuffix("/mlflow") + "/prefect", f"SELECT state_type FROM flow_run WHERE id = '{flow_run_id}'"
    ) == ["COMPLETED"]
    assert [p for p in root.rglob("*") if p.suffix in (".db", ".sqlite", ".sqlite3")] == []
    # nor in the flow run's logs kept by the Prefect server
    conn = team_mod.connect("127.0.0.1", int(port), env["EXPORTCAST_TEAM_PG_PASSWORD"], "prefect")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT message FROM log WHERE flow_run_id = %s", (flow_run_id,))
            prefect_logs = "\n".join(row[0] for row in cur.fetchall())
    finally:
        conn.close()
    assert "Finished in state Completed()" in prefect_logs
    assert not any(secret in prefect_logs for secret in secrets)

    # backup, restored into a fresh PostgreSQL: the same runs and alias
    backup = team_cli(root, "backup")
    assert backup.returncode == 0, backup.stderr
    folder = Path(
        re.fullmatch(r"team backup: (\S+) \(artifacts\.tar\.gz, mlflow\.dump, prefect\.dump\)\n", backup.stdout).group(
            1
        )
    )
    runs_sql = "SELECT run_uuid || ':' || status FROM runs ORDER BY run_uuid"
    alias_sql = "SELECT name || '@' || alias || '=' || version FROM registered_model_aliases"
    before = (psql(dsn, runs_sql), psql(dsn, alias_sql))
    assert before[1] == ["exportcast-champion@champion=1"] and f"{url.group(2)}:FINISHED" in before[0]
    _check_restore(folder, root, before, runs_sql, alias_sql)

    # down: nothing left
    started = [proc for name in team_mod.SERVICES for proc in family(paths.pid_file(name))]
    down = team_cli(root, "down")
    assert down.returncode == 0, down.stderr
    assert down.stdout == "team set stopped (worker, mlflow, prefect, postgres)\n"
    assert [p for p in started if team_mod.alive(p)] == []
    assert list(team_mod.processes_of(paths)) == []
    assert not team_mod.pg_running(paths)


def _check_restore(
    folder: Path, root: Path, before: tuple[list[str], list[str]], runs_sql: str, alias_sql: str
) -> None:
    data = root / "restore" / "data"
    password = "restore-" + os.urandom(8).hex()
    port = team_mod.free_port("127.0.0.1")
    team_mod.init_cluster(data, password)
    team_mod.start_cluster(data, root / "restore" / "run", root / "restore" / "postgres.log", "127.0.0.1", port)
    try:
        for name in team_mod.DATABASES:
            team_mod.restore_database(folder / f"{name}.dump", "127.0.0.1", port, password, name)
        dsn = f"postgresql://exportcast:{password}@127.0.0.1:{port}/mlflow"
        assert (psql(dsn, runs_sql), psql(dsn, alias_sql)) == before
        assert psql(dsn.removesuffix("/mlflow") + "/prefect", "SELECT count(*) FROM deployment") == ["2"]
    finally:
        team_mod.stop_cluster(data)
    import tarfile

    with tarfile.open(folder / "artifacts.tar.gz") as tar:
        assert any(name.endswith("/MLmodel") for name in tar.getnames())
