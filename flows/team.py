"""The team deployment: PostgreSQL, a Prefect server with a work pool and a worker, and an MLflow
tracking server with basic auth, all on this machine (``make team-up`` / ``team-run`` /
``team-down`` / ``team-backup``, i.e. ``python -m flows.team up|run|down|backup|status``).

Every piece of state lives under ``team.dir`` (default ``.team/``, git-ignored)::

    env                 PREFECT_API_URL, MLFLOW_TRACKING_URI/_USERNAME/_PASSWORD, EXPORTCAST_PG_DSN ... (mode 600)
    state.json          the ports chosen at the first start (kept, so the URLs in env stay valid)
    pids/NAME.pid       "pid start-time" of the Prefect server, the MLflow server and the worker
    pg/data, pg/run     the PostgreSQL cluster (databases ``prefect`` and ``mlflow``) and its socket
    mlflow/artifacts    the artifacts the MLflow server serves (``--serve-artifacts``)
    prefect/            PREFECT_HOME of the server and the worker (no database: Prefect's is in PostgreSQL)
    logs/               one log per server
    backups/STAMP/      ``team-backup``: pg_dump of both databases and a tarball of the artifacts

Secrets: three passwords (PostgreSQL's, the MLflow admin's, Prefect's API auth string) are
generated at the first start and written only to ``env`` (mode 600). They reach the servers
through the environment (``PGPASSWORD``, ``MLFLOW_AUTH_ADMIN_PASSWORD``,
``PREFECT_SERVER_API_AUTH_STRING``, ...), never through a command line (which ``ps`` shows to
every user) and never through a log line. MLflow's store URI carries no password at all: libpq
(psycopg2) takes it from ``PGPASSWORD``.

PostgreSQL refuses to run as root: as root, the cluster's files belong to the ``postgres`` user
and its commands run through ``runuser -u postgres``.

docs/decisions/0140-team-deployment.md says why it is built this way.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import psutil

from exportcast.errors import ExportcastError
from flows.settings import TeamSettings, load_settings

REPO = Path(__file__).resolve().parents[1]
PG_USER = "exportcast"
DATABASES = ("prefect", "mlflow")
#: the database EXPORTCAST_PG_DSN names (the other is reached by changing the name)
DSN_DATABASE = "mlflow"
MLFLOW_ADMIN = "admin"
PREFECT_USER = "exportcast"
WORK_POOL = "exportcast-process"
MONTHLY = "monthly-forecast/monthly"
#: the servers and the worker, in the order they start (PostgreSQL comes first, outside this list)
SERVICES = ("prefect", "mlflow", "worker")
START_TIMEOUT_SECONDS = 300.0
STOP_TIMEOUT_SECONDS = 20.0
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class TeamError(ExportcastError, RuntimeError):
    """A problem with the team set-up that the user can fix (one line, names what to fix)."""


# ------------------------------------------------------------------ layout and state
@dataclass(frozen=True)
class TeamPaths:
    root: Path

    @property
    def env(self) -> Path:
        return self.root / "env"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def pg(self) -> Path:
        return self.root / "pg"

    @property
    def pg_data(self) -> Path:
        return self.pg / "data"

    @property
    def pg_run(self) -> Path:
        return self.pg / "run"

    @property
    def pg_log(self) -> Path:
        return self.pg / "postgres.log"

    @property
    def artifacts(self) -> Path:
        return self.root / "mlflow" / "artifacts"

    @property
    def auth_ini(self) -> Path:
        return self.root / "mlflow" / "basic_auth.ini"

    @property
    def prefect_home(self) -> Path:
        return self.root / "prefect"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"


@dataclass(frozen=True)
class Secrets:
    pg_password: str
    mlflow_password: str
    prefect_password: str
    #: signs the MLflow auth app's CSRF tokens (MLFLOW_FLASK_SERVER_SECRET_KEY)
    flask_secret_key: str

    @property
    def all(self) -> tuple[str, ...]:
        return (self.pg_password, self.mlflow_password, self.prefect_password, self.flask_secret_key)


@dataclass(frozen=True)
class Ports:
    postgres: int
    prefect: int
    mlflow: int


@dataclass(frozen=True)
class Team:
    """Where the team set lives and how it is reached."""

    paths: TeamPaths
    host: str
    auth: bool
    ports: Ports
    secrets: Secrets

    @property
    def client_host(self) -> str:
        """The address clients on this machine use (a wildcard bind is reached on loopback)."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host

    @property
    def prefect_api_url(self) -> str:
        return f"http://{self.client_host}:{self.ports.prefect}/api"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.client_host}:{self.ports.mlflow}"

    @property
    def prefect_auth_string(self) -> str:
        return f"{PREFECT_USER}:{self.secrets.prefect_password}"

    def pg_dsn(self, database: str = DSN_DATABASE, *, password: bool = True) -> str:
        """libpq URL of a database (``psql`` accepts it); without the password for MLflow's store."""
        user = f"{PG_USER}:{self.secrets.pg_password}" if password else PG_USER
        return f"postgresql://{user}@{self.client_host}:{self.ports.postgres}/{database}"

    def client_env(self) -> dict[str, str]:
        """What ``env`` exports: an analyst (or the worker) that sources it uses the team servers."""
        env = {
            "PREFECT_API_URL": self.prefect_api_url,
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            # the pipeline's own setting (flows/settings.py), so `exportcast run` logs to the server too
            "EXPORTCAST__MLFLOW__TRACKING_URI": self.mlflow_url,
            "EXPORTCAST__MLFLOW__ARTIFACT_LOCATION": "",
            "EXPORTCAST_PG_DSN": self.pg_dsn(),
        }
        if self.auth:
            env.update(
                {
                    "MLFLOW_TRACKING_USERNAME": MLFLOW_ADMIN,
                    "MLFLOW_TRACKING_PASSWORD": self.secrets.mlflow_password,
                    "PREFECT_API_AUTH_STRING": self.prefect_auth_string,
                }
            )
        return env

    def prefect_auth(self) -> httpx.BasicAuth | None:
        return httpx.BasicAuth(PREFECT_USER, self.secrets.prefect_password) if self.auth else None

    def mlflow_auth(self) -> httpx.BasicAuth | None:
        return httpx.BasicAuth(MLFLOW_ADMIN, self.secrets.mlflow_password) if self.auth else None


def team_paths(settings: TeamSettings, base: Path = REPO) -> TeamPaths:
    root = settings.dir.expanduser()
    return TeamPaths(root if root.is_absolute() else (base / root).resolve())


def check_host(settings: TeamSettings) -> None:
    """Refuse a non-loopback address without authentication."""
    try:
        loopback = ipaddress.ip_address(settings.host).is_loopback
    except ValueError:
        loopback = settings.host == "localhost"
    if not loopback and not settings.auth:
        raise TeamError(
            f"team.host {settings.host} is not a loopback address and team.auth is false: the servers "
            "would be open to the network without authentication; set team.auth true or bind 127.0.0.1"
        )


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, value = words[1].split("=", 1)
            values[key] = value
    return values


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 600 from the first byte (never readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_env_file(team: Team) -> None:
    lines = ["# the team servers (flows/team.py): `source` this file. Secrets: keep it mode 600."]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in team.client_env().items()]
    lines += [
        f"export EXPORTCAST_TEAM_PG_PASSWORD={shlex.quote(team.secrets.pg_password)}",
        f"export EXPORTCAST_TEAM_PREFECT_PASSWORD={shlex.quote(team.secrets.prefect_password)}",
        f"export EXPORTCAST_TEAM_MLFLOW_PASSWORD={shlex.quote(team.secrets.mlflow_password)}",
        f"export EXPORTCAST_TEAM_FLASK_SECRET_KEY={shlex.quote(team.secrets.flask_secret_key)}",
    ]
    write_private(team.paths.env, "\n".join(lines) + "\n")


def load_secrets(paths: TeamPaths) -> Secrets | None:
    if not paths.env.is_file():
        return None
    values = read_env_file(paths.env)
    try:
        return Secrets(
            values["EXPORTCAST_TEAM_PG_PASSWORD"],
            values["EXPORTCAST_TEAM_MLFLOW_PASSWORD"],
            values["EXPORTCAST_TEAM_PREFECT_PASSWORD"],
            values["EXPORTCAST_TEAM_FLASK_SECRET_KEY"],
        )
    except KeyError as exc:
        raise TeamError(
            f"{paths.env}: no {exc.args[0]}; restore the file, or remove {paths.root} to start afresh"
        ) from None


def new_secrets() -> Secrets:
    return Secrets(*(secrets.token_urlsafe(24) for _ in range(4)))


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def resolve_ports(settings: TeamSettings, paths: TeamPaths, host: str) -> Ports:
    """Configured ports, else the ports of the last start, else free ones (then recorded)."""
    recorded = json.loads(paths.state.read_text())["ports"] if paths.state.is_file() else {}
    chosen = {}
    for name in ("postgres", "prefect", "mlflow"):
        configured = getattr(settings, f"{name}_port")
        chosen[name] = configured or int(recorded.get(name) or 0) or free_port(host)
    if len(set(chosen.values())) < 3:
        raise TeamError(
            f"team ports must differ; got postgres {chosen['postgres']}, prefect {chosen['prefect']}, "
            f"mlflow {chosen['mlflow']}"
        )
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.state.write_text(json.dumps({"ports": chosen}, indent=2) + "\n")
    return Ports(**chosen)


def load_team(settings: TeamSettings, *, create: bool = False) -> Team:
    check_host(settings)
    paths = team_paths(settings)
    found = load_secrets(paths)
    if found is None:
        if not create:
            raise TeamError(f"no team set in {paths.root} (no {paths.env}); start it with `make team-up`")
        if paths.pg_data.exists():
            raise TeamError(
                f"{paths.pg_data} exists but {paths.env} is gone with its passwords; restore {paths.env}, "
                f"or remove {paths.root} to start afresh"
            )
        found = new_secrets()
    ports = resolve_ports(settings, paths, settings.host)
    team = Team(paths, settings.host, settings.auth, ports, found)
    write_env_file(team)
    return team


# ------------------------------------------------------------------ processes
def pid_record(paths: TeamPaths, name: str) -> tuple[int, float] | None:
    path = paths.pid_file(name)
    if not path.is_file():
        return None
    try:
        pid, started = path.read_text().split()
        return int(pid), float(started)
    except ValueError:
        return None


def running_process(paths: TeamPaths, name: str) -> psutil.Process | None:
    """The live process a pid file names, or None; a stale pid file (process gone, or the pid now
    another process's) is removed with one line saying so."""
    path = paths.pid_file(name)
    if not path.exists():
        return None
    record = pid_record(paths, name)
    if record is not None:
        pid, started = record
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - started) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE:
                return proc
        except psutil.NoSuchProcess:
            pass
    print(f"stale pid file {path} (process {record[0] if record else '?'} is not running): removed")
    path.unlink(missing_ok=True)
    return None


def spawn(paths: TeamPaths, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> psutil.Process:
    """Start ``argv`` in its own session with its output in logs/NAME.log; record its pid."""
    paths.logs.mkdir(parents=True, exist_ok=True)
    paths.pids.mkdir(parents=True, exist_ok=True)
    with open(paths.log(name), "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    started = psutil.Process(proc.pid).create_time()
    paths.pid_file(name).write_text(f"{proc.pid} {started:.3f}\n")
    return psutil.Process(proc.pid)


def stop_tree(proc: psutil.Process, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM a process and all its descendants, SIGKILL whatever is left after ``timeout``."""
    from flows.supervise import kill_processes

    try:
        family = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    kill_processes(family, timeout=timeout)


def base_env() -> dict[str, str]:
    """This process's environment without anything that would point a server at another set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "EXPORTCAST_", "PG"))}
    env.update(
        {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def venv_script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def wait_for(what: str, check, timeout: float, proc: psutil.Process | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and not alive(proc):
            raise TeamError(f"{what} exited while starting; see {log}")
        time.sleep(0.5)
    raise TeamError(f"{what} did not answer within {timeout:.0f} s; see {log}")


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def answers(url: str, auth: httpx.Auth | None = None) -> bool:
    try:
        return httpx.get(url, auth=auth, timeout=30).status_code == 200
    except httpx.HTTPError:
        return False


# ------------------------------------------------------------------ PostgreSQL
def pg_bin() -> Path:
    """The folder of the machine's PostgreSQL programs (on PATH, else the newest /usr/lib/postgresql/N/bin)."""
    found = shutil.which("pg_ctl")
    if found:
        folder = Path(found).resolve().parent
        if (folder / "initdb").exists() and (folder / "pg_dump").exists():
            return folder
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise TeamError(
            "PostgreSQL not found: no pg_ctl on PATH nor in /usr/lib/postgresql/*/bin; "
            "install it (apt-get install postgresql)"
        )
    return versions[-1].parent


def as_root() -> bool:
    return os.geteuid() == 0


def pg_command(program: str, *args: str) -> list[str]:
    """A PostgreSQL server command, run as ``postgres`` when this process is root."""
    argv = [str(pg_bin() / program), *args]
    return ["runuser", "-u", "postgres", "--", *argv] if as_root() else argv


def give_to_postgres(path: Path) -> None:
    if as_root():
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def check_reachable_by_postgres(folder: Path) -> None:
    """As root, the ``postgres`` user must be able to walk down to the cluster's folder."""
    if not as_root():
        return
    for parent in [*reversed(folder.parents)]:
        if parent.exists() and not os.stat(parent).st_mode & 0o001:
            raise TeamError(
                f"PostgreSQL runs as the user postgres, which cannot enter {parent} (mode "
                f"{oct(os.stat(parent).st_mode & 0o777)}); put team.dir under a folder others can enter"
            )


def pg_running(paths: TeamPaths) -> bool:
    if not (paths.pg_data / "PG_VERSION").exists():
        return False
    return subprocess.run(pg_command("pg_ctl", "-D", str(paths.pg_data), "status"), capture_output=True).returncode == 0


def init_cluster(data: Path, password: str) -> None:
    """A new cluster in ``data`` with superuser PG_USER, password (scram) auth for every connection."""
    data.parent.mkdir(parents=True, exist_ok=True)
    check_reachable_by_postgres(data.parent)
    data.mkdir(mode=0o700)
    give_to_postgres(data)
    pwfile = data.parent / ".pwfile"
    write_private(pwfile, password + "\n")
    give_to_postgres(pwfile)
    try:
        done = subprocess.run(
            pg_command(
                "initdb",
                "-D",
                str(data),
                "-U",
                PG_USER,
                f"--pwfile={pwfile}",
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ),
            capture_output=True,
            text=True,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode != 0:
        raise TeamError(f"initdb failed for {data}: {last_line(done.stderr)}")


def start_cluster(data: Path, run: Path, log: Path, host: str, port: int) -> None:
    run.mkdir(parents=True, exist_ok=True)
    give_to_postgres(run)
    log.touch()
    give_to_postgres(log)
    options = f"-p {port} -k {run} -c listen_addresses={host}"
    done = subprocess.run(
        pg_command("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise TeamError(
            f"PostgreSQL did not start on {host}:{port}: {last_line(done.stderr or done.stdout)}; see {log}"
        )


def stop_cluster(data: Path) -> None:
    if (data / "postmaster.pid").exists():
        subprocess.run(
            pg_command("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"),
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )


def connect(host: str, port: int, password: str, database: str = "postgres"):
    import psycopg2

    return psycopg2.connect(host=host, port=port, user=PG_USER, password=password, dbname=database, connect_timeout=10)


def create_databases(host: str, port: int, password: str, names: Sequence[str] = DATABASES) -> None:
    conn = connect(host, port, password)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def start_postgres(team: Team) -> bool:
    """Start (and at the first start, create) the cluster; False when it was running already."""
    paths = team.paths
    if pg_running(paths):
        return False
    if port_in_use(team.host, team.ports.postgres):
        raise port_taken(team, "postgres")
    if not (paths.pg_data / "PG_VERSION").exists():
        if paths.pg_data.exists():
            shutil.rmtree(paths.pg_data)
        init_cluster(paths.pg_data, team.secrets.pg_password)
    start_cluster(paths.pg_data, paths.pg_run, paths.pg_log, team.host, team.ports.postgres)
    create_databases(team.client_host, team.ports.postgres, team.secrets.pg_password)
    return True


def port_taken(team: Team, name: str) -> TeamError:
    port = getattr(team.ports, name)
    return TeamError(
        f"port {port} on {team.host} (for {name}) is in use by another process; stop it, or set "
        f"EXPORTCAST__TEAM__{name.upper()}_PORT to a free port"
    )


# ------------------------------------------------------------------ Prefect and MLflow
def prefect_env(team: Team) -> dict[str, str]:
    env = base_env()
    env.update(
        {
            "PREFECT_HOME": str(team.paths.prefect_home),
            "PREFECT_API_URL": team.prefect_api_url,
            "PREFECT_LOGGING_LEVEL": "INFO",
        }
    )
    if team.auth:
        env["PREFECT_API_AUTH_STRING"] = team.prefect_auth_string
    return env


@dataclass(frozen=True)
class Starting:
    """A server spawned and not yet answering: :meth:`wait` until it answers."""

    what: str
    name: str
    proc: psutil.Process
    url: str
    auth: httpx.Auth | None
    paths: TeamPaths

    def wait(self) -> psutil.Process:
        wait_for(
            self.what, lambda: answers(self.url, self.auth), START_TIMEOUT_SECONDS, self.proc, self.paths.log(self.name)
        )
        return self.proc


def start_prefect(team: Team) -> Starting:
    env = prefect_env(team)
    env["PREFECT_API_DATABASE_CONNECTION_URL"] = team.pg_dsn("prefect").replace(
        "postgresql://", "postgresql+asyncpg://"
    )
    if team.auth:
        env["PREFECT_SERVER_API_AUTH_STRING"] = team.prefect_auth_string
    team.paths.prefect_home.mkdir(parents=True, exist_ok=True)
    argv = [venv_script("prefect"), "server", "start", "--host", team.host, "--port", str(team.ports.prefect)]
    proc = spawn(team.paths, "prefect", argv, env, team.paths.root)
    return Starting(
        "the Prefect server", "prefect", proc, f"{team.prefect_api_url}/health", team.prefect_auth(), team.paths
    )


def write_auth_ini(team: Team) -> None:
    """MLflow's basic-auth config: its users live in the mlflow database (tables of their own)."""
    write_private(
        team.paths.auth_ini,
        "\n".join(
            [
                "[mlflow]",
                "default_permission = READ",
                f"database_uri = {team.pg_dsn('mlflow', password=False).replace('postgresql://', 'postgresql+psycopg2://')}",
                f"admin_username = {MLFLOW_ADMIN}",
                "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
                # a checked password is remembered a minute (its hash costs ~1 s of CPU per request)
                "auth_cache_ttl_seconds = 60",
                "",
            ]
        ),
    )


def start_mlflow(team: Team) -> Starting:
    env = base_env()
    # no password in the store URI: libpq (psycopg2) takes it from PGPASSWORD
    env.update(
        {
            "MLFLOW_BACKEND_STORE_URI": team.pg_dsn("mlflow", password=False).replace(
                "postgresql://", "postgresql+psycopg2://"
            ),
            "PGPASSWORD": team.secrets.pg_password,
        }
    )
    team.paths.artifacts.mkdir(parents=True, exist_ok=True)
    argv = [
        venv_script("mlflow"),
        "server",
        "--host",
        team.host,
        "--port",
        str(team.ports.mlflow),
        "--workers",
        "1",
        "--serve-artifacts",
        "--artifacts-destination",
        str(team.paths.artifacts),
    ]
    if team.auth:
        write_auth_ini(team)
        env.update(
            {
                "MLFLOW_AUTH_CONFIG_PATH": str(team.paths.auth_ini),
                "MLFLOW_AUTH_ADMIN_PASSWORD": team.secrets.mlflow_password,
                "MLFLOW_FLASK_SERVER_SECRET_KEY": team.secrets.flask_secret_key,
            }
        )
        argv += ["--app-name", "basic-auth"]
    if team.client_host != "127.0.0.1":
        argv += ["--allowed-hosts", f"{team.host}:{team.ports.mlflow},{team.host}"]
    proc = spawn(team.paths, "mlflow", argv, env, team.paths.root)
    return Starting(
        "the MLflow server",
        "mlflow",
        proc,
        f"{team.mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1",
        team.mlflow_auth(),
        team.paths,
    )


def prefect_cli(team: Team, *args: str) -> None:
    env = prefect_env(team)
    env["EXPORTCAST_HOME"] = str(REPO)
    done = subprocess.run(
        [venv_script("prefect"), "--no-prompt", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    with open(team.paths.log("prefect-cli"), "a", encoding="utf-8") as log:
        log.write(f"$ prefect {' '.join(args)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        raise TeamError(
            f"`prefect {' '.join(args)}` failed: {last_line(done.stderr or done.stdout)}; "
            f"see {team.paths.log('prefect-cli')}"
        )


def register_deployments(team: Team) -> None:
    """The process work pool, then both deployments of prefect.yaml (idempotent)."""
    response = httpx.get(f"{team.prefect_api_url}/work_pools/{WORK_POOL}", auth=team.prefect_auth(), timeout=30)
    if response.status_code == 404:
        prefect_cli(team, "work-pool", "create", WORK_POOL, "--type", "process")
    prefect_cli(team, "deploy", "--all", "--prefect-file", str(REPO / "prefect.yaml"))


def worker_env(team: Team) -> dict[str, str]:
    env = prefect_env(team)
    env.update(team.client_env())
    env.update({"EXPORTCAST_HOME": str(REPO), "PREFECT_WORKER_QUERY_SECONDS": "5"})
    return env


def start_worker(team: Team) -> psutil.Process:
    argv = [
        venv_script("prefect"),
        "worker",
        "start",
        "--pool",
        WORK_POOL,
        "--type",
        "process",
        "--name",
        worker_name(),
    ]
    proc = spawn(team.paths, "worker", argv, worker_env(team), REPO)
    since = proc.create_time()
    wait_for(
        "the Prefect worker", lambda: worker_online(team, since), START_TIMEOUT_SECONDS, proc, team.paths.log("worker")
    )
    return proc


def worker_name() -> str:
    return f"exportcast-{socket.gethostname()}"


def worker_online(team: Team, since: float) -> bool:
    """Whether this machine's worker has sent a heartbeat to the pool after ``since`` (epoch seconds)."""
    try:
        response = httpx.post(
            f"{team.prefect_api_url}/work_pools/{WORK_POOL}/workers/filter",
            json={},
            auth=team.prefect_auth(),
            timeout=10,
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and any(
        w.get("name") == worker_name()
        and w.get("last_heartbeat_time")
        and datetime.fromisoformat(w["last_heartbeat_time"]).timestamp() >= since
        for w in response.json()
    )


# ------------------------------------------------------------------ the commands
def up(settings: TeamSettings) -> Team:
    team = load_team(settings, create=True)
    paths = team.paths
    running = {name: running_process(paths, name) for name in SERVICES}
    started = []
    if start_postgres(team):
        started.append("postgres")
    servers = [name for name in ("prefect", "mlflow") if running[name] is None]
    for name in servers:
        if port_in_use(team.host, getattr(team.ports, name)):
            raise port_taken(team, name)
    # both servers start side by side (each takes tens of seconds: migrations, imports)
    for starting in [{"prefect": start_prefect, "mlflow": start_mlflow}[name](team) for name in servers]:
        starting.wait()
    started += servers
    if running["worker"] is None:
        register_deployments(team)
        start_worker(team)
        started.append("worker")
    where = (
        f"Prefect {team.prefect_api_url}, MLflow {team.mlflow_url}, PostgreSQL "
        f"{team.client_host}:{team.ports.postgres} (databases {', '.join(DATABASES)}); `source {paths.env}`"
    )
    if started:
        print(f"team set up: {where}")
    else:
        print(f"team set already running: {where}")
    return team


def down(settings: TeamSettings) -> None:
    paths = team_paths(settings)
    stopped = []
    for name in reversed(SERVICES):
        proc = running_process(paths, name)
        if proc is not None:
            stop_tree(proc)
            stopped.append(name)
        paths.pid_file(name).unlink(missing_ok=True)
    if pg_running(paths):
        stop_cluster(paths.pg_data)
        stopped.append("postgres")
    print(f"team set stopped ({', '.join(stopped)})" if stopped else f"team set in {paths.root} was not running")


def require_running(team: Team) -> None:
    missing = [name for name in SERVICES if running_process(team.paths, name) is None]
    if not pg_running(team.paths):
        missing.insert(0, "postgres")
    if missing:
        raise TeamError(f"the team set is not running ({', '.join(missing)} down); start it with `make team-up`")


def run_monthly(
    settings: TeamSettings,
    *,
    parameters: Mapping[str, str] | None = None,
    job_env: Mapping[str, str] | None = None,
    timeout: float = 6 * 3600.0,
) -> int:
    """Trigger the monthly deployment through the Prefect API, wait, print the final state and
    the MLflow run's URL. Exit code 0 when COMPLETED, 1 otherwise."""
    team = load_team(settings)
    require_running(team)
    api, auth = team.prefect_api_url, team.prefect_auth()
    with httpx.Client(base_url=api, auth=auth, timeout=30) as client:
        deployment = client.get(f"/deployments/name/{MONTHLY}")
        if deployment.status_code == 404:
            raise TeamError(f"no deployment {MONTHLY} on {api}; run `make team-up` to register it")
        deployment.raise_for_status()
        body: dict = {"parameters": dict(parameters or {})}
        if job_env:
            body["job_variables"] = {"env": dict(job_env)}
        flow_run = client.post(f"/deployments/{deployment.json()['id']}/create_flow_run", json=body)
        flow_run.raise_for_status()
        run_id = flow_run.json()["id"]
        print(f"flow run {flow_run.json()['name']} ({run_id}) of {MONTHLY} submitted to work pool {WORK_POOL}")
        deadline = time.monotonic() + timeout
        state = flow_run.json()["state"]["type"]
        while state not in FINAL_STATES:
            if time.monotonic() > deadline:
                raise TeamError(
                    f"flow run {run_id} still {state} after {timeout:.0f} s; see {api.removesuffix('/api')}"
                )
            time.sleep(2)
            state = client.get(f"/flow_runs/{run_id}").json()["state"]["type"]
    print(f"flow run {run_id}: {state}")
    url = mlflow_run_url(team, run_id)
    print(f"mlflow run: {url}" if url else "mlflow run: none recorded for this flow run")
    return 0 if state == "COMPLETED" else 1


def mlflow_run_url(team: Team, flow_run_id: str) -> str | None:
    """The MLflow UI URL of the parent run tagged with this Prefect flow run."""
    with httpx.Client(base_url=f"{team.mlflow_url}/api/2.0/mlflow", auth=team.mlflow_auth(), timeout=30) as client:
        experiments = client.post("/experiments/search", json={"max_results": 1000}).json().get("experiments", [])
        ids = [e["experiment_id"] for e in experiments]
        if not ids:
            return None
        runs = (
            client.post(
                "/runs/search",
                json={
                    "experiment_ids": ids,
                    "filter": f"tags.prefect_flow_run_id = '{flow_run_id}'",
                    "max_results": 10,
                },
            )
            .json()
            .get("runs", [])
        )
    parents = [r for r in runs if not any(t["key"] == "mlflow.parentRunId" for t in r["data"].get("tags", []))]
    if not parents:
        return None
    info = parents[0]["info"]
    return f"{team.mlflow_url}/#/experiments/{info['experiment_id']}/runs/{info['run_id']}"


def backup(settings: TeamSettings) -> Path:
    """pg_dump (custom format) of both databases and a tarball of the artifacts, under backups/STAMP."""
    team = load_team(settings)
    if not pg_running(team.paths):
        raise TeamError(f"PostgreSQL of {team.paths.root} is not running; start it with `make team-up`")
    target = team.paths.backups / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target.mkdir(parents=True)
    env = {**base_env(), "PGPASSWORD": team.secrets.pg_password}
    for name in DATABASES:
        dump = target / f"{name}.dump"
        done = subprocess.run(
            [
                str(pg_bin() / "pg_dump"),
                "-Fc",
                "-h",
                team.client_host,
                "-p",
                str(team.ports.postgres),
                "-U",
                PG_USER,
                "-d",
                name,
                "-f",
                str(dump),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise TeamError(f"pg_dump of database {name} failed: {last_line(done.stderr)}")
    with tarfile.open(target / "artifacts.tar.gz", "w:gz") as tar:
        tar.add(team.paths.artifacts, arcname="artifacts")
    print(f"team backup: {target} ({', '.join(sorted(p.name for p in target.iterdir()))})")
    return target


def restore_database(dump: Path, host: str, port: int, password: str, database: str) -> None:
    """Load a ``team-backup`` dump into an empty database of a running cluster."""
    create_databases(host, port, password, [database])
    done = subprocess.run(
        [
            str(pg_bin() / "pg_restore"),
            "--no-owner",
            "-h",
            host,
            "-p",
            str(port),
            "-U",
            PG_USER,
            "-d",
            database,
            str(dump),
        ],
        env={**base_env(), "PGPASSWORD": password},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise TeamError(f"pg_restore of {dump} failed: {last_line(done.stderr)}")


def status(settings: TeamSettings) -> int:
    paths = team_paths(settings)
    states = {"postgres": pg_running(paths), **{n: running_process(paths, n) is not None for n in SERVICES}}
    print(", ".join(f"{name} {'running' if on else 'stopped'}" for name, on in states.items()))
    return 0 if all(states.values()) else 1


def processes_of(paths: TeamPaths) -> Iterator[psutil.Process]:
    """Every process whose command line or working folder is under the team folder (what
    ``down`` must leave none of)."""
    root = str(paths.root)
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if root in cmdline or (proc.info["cwd"] or "").startswith(root):
            yield proc


def parse_pairs(pairs: Sequence[str], option: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise TeamError(f"{option} {pair!r}: expected KEY=VALUE")
        key, value = pair.split("=", 1)
        out[key] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.team", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "run", "down", "backup", "status"])
    parser.add_argument("--config", default=str(REPO / "config.yaml"), help="config file (its team section)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="run: a flow parameter of this run (e.g. source=csv)",
    )
    parser.add_argument(
        "--job-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="run: an environment variable of this run's process on the worker",
    )
    parser.add_argument("--timeout", type=float, default=6 * 3600.0, help="run: seconds to wait for the flow run")
    args = parser.parse_args(argv)
    try:
        loaded = load_settings(args.config)
        base = loaded.config_file.parent if loaded.config_file else Path.cwd()
        settings = loaded.team.model_copy(update={"dir": team_paths(loaded.team, base).root})
        if args.command == "up":
            up(settings)
        elif args.command == "down":
            down(settings)
        elif args.command == "backup":
            backup(settings)
        elif args.command == "status":
            return status(settings)
        else:
            return run_monthly(
                settings,
                parameters=parse_pairs(args.param, "--param"),
                job_env=parse_pairs(args.job_env, "--job-env"),
                timeout=args.timeout,
            )
    except ExportcastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
