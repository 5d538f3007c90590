"""The local stack's servers: how each is installed, configured, started, checked and stopped.

Every server runs under the stack folder (``var/stack`` by default) on a loopback port from
DESIGN.md. A server's pid is kept in ``<stack>/run/<name>.pid`` together with the executable it
was started from, so ``down`` stops exactly what ``up`` started and never a stranger that has
reused the pid.

Only the standard library is used here.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.settings import PROJECT_ROOT, Settings
from pipeline.core.files import atomic_write

PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class StackError(RuntimeError):
    """Something the person running the stack must act on; the message says what."""


def is_root() -> bool:
    return os.geteuid() == 0


def write_if_changed(path: Path, text: str, mode: int | None = None) -> bool:
    """Write ``text`` unless the file already holds it; a second ``up`` then changes nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    atomic_write(path, text, mode=0o644 if mode is None else mode)
    return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def process_exe(pid: int) -> str | None:
    """The executable of a live process, or None when there is no such process."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except FileNotFoundError:
        return None
    except PermissionError:
        return "?"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited: only its parent has not collected it yet.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


OFF = "off: not configured"


@dataclass
class Status:
    name: str
    port: int
    pid: int | None
    running: bool
    healthy: bool
    detail: str


class Server:
    """One server of the local stack. Subclasses fill in the specifics."""

    name: str = ""
    debian_packages: tuple[str, ...] = ()
    stop_signal: int = signal.SIGTERM

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.paths.stack / self.name
        self.run_dir = settings.paths.stack / "run"
        self.pidfile = self.run_dir / f"{self.name}.pid"
        self.logfile = self.home / f"{self.name}.out"

    # -- what subclasses describe -------------------------------------------------------------
    @property
    def port(self) -> int:
        raise NotImplementedError

    def executable(self) -> Path | None:
        """The server binary, or None if it is not installed."""
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> bool:
        """Write configuration and initialise data; idempotent. True if the configuration
        changed (a running server is then restarted to pick it up)."""
        return False

    def health(self) -> tuple[bool, str]:
        raise NotImplementedError

    def after_start(self) -> None:
        """Create roles, databases and the like once the server answers; idempotent."""

    def run_as(self) -> str | None:
        return None

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    # -- shared machinery ---------------------------------------------------------------------
    def read_pid(self) -> tuple[int, str] | None:
        try:
            pid_text, _, exe = self.pidfile.read_text(encoding="utf-8").partition("\n")
            return int(pid_text), exe.strip()
        except (FileNotFoundError, ValueError):
            return None

    def our_pid(self) -> int | None:
        """The pid from our pid file if that process is alive and is still our server."""
        record = self.read_pid()
        if record is None:
            return None
        pid, exe = record
        if not process_alive(pid):
            return None
        if process_exe(pid) not in (exe, "?"):
            return None
        return pid

    def status(self) -> Status:
        pid = self.our_pid()
        healthy, detail = self.health() if port_open(self.port) else (False, "port closed")
        if pid is None and healthy:
            detail = f"answering, but not started by this stack ({detail})"
        return Status(self.name, self.port, pid, pid is not None, healthy, detail)

    def start(self, timeout: float = 90.0) -> str:
        pid = self.our_pid()
        restarted = ""
        if pid is not None:
            if self.prepare():
                self.stop()
                restarted = " after a configuration change"
            else:
                healthy, detail = self.health()
                if not healthy:
                    self.wait_healthy(timeout, pid)
                self.after_start()
                return f"already running (pid {pid})"
        if port_open(self.port):
            raise StackError(
                f"{self.name}: port {self.port} is taken by a process this stack did not start; "
                f"stop it, or point the stack elsewhere (see .env.example)"
            )
        exe = self.executable()
        if exe is None:
            raise StackError(f"{self.name}: not installed; {install_hint(self.debian_packages)}")
        self.home.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        user = self.run_as()
        log = open(self.logfile, "ab")  # noqa: SIM115 (handed to the child)
        try:
            proc = subprocess.Popen(  # noqa: S603 (fixed argv)
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                env=self.env(),
                start_new_session=True,
                **as_user(user),
            )
        finally:
            log.close()
        # Record the resolved binary: /proc/<pid>/exe shows it so (redis-server is a symlink).
        write_if_changed(self.pidfile, f"{proc.pid}\n{os.path.realpath(self.command()[0])}\n")
        self.wait_healthy(timeout, proc.pid)
        self.after_start()
        return f"{'restarted' if restarted else 'started'} (pid {proc.pid}){restarted}"

    def wait_healthy(self, timeout: float, pid: int) -> None:
        deadline = time.monotonic() + timeout
        detail = "no answer yet"
        while time.monotonic() < deadline:
            if not process_alive(pid):
                raise StackError(
                    f"{self.name}: exited during start-up; last lines of {self.logfile}:\n"
                    + tail(self.logfile)
                )
            if port_open(self.port):
                ok, detail = self.health()
                if ok:
                    return
            time.sleep(0.3)
        raise StackError(
            f"{self.name}: no healthy answer on port {self.port} after {timeout:.0f}s "
            f"({detail}); see {self.logfile}"
        )

    def stop(self, timeout: float = 60.0) -> str:
        pid = self.our_pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return "not running"
        os.kill(pid, self.stop_signal)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process_alive(pid):
            time.sleep(0.2)
        if process_alive(pid):
            os.killpg(pid, signal.SIGKILL)
            outcome = f"killed (pid {pid}) after {timeout:.0f}s"
        else:
            outcome = f"stopped (pid {pid})"
        self.pidfile.unlink(missing_ok=True)
        return outcome


def ready_endpoint(port: int) -> tuple[bool, str]:
    """Health of a Prometheus-family server: its ``/-/ready`` answers 200."""
    try:
        code, _ = http_get(f"http://127.0.0.1:{port}/-/ready")
    except OSError as exc:
        return False, str(exc)
    return code == 200, f"HTTP {code}"


def url_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].strip("/"))


def url_address(url: str) -> str:
    """``host:port`` of a URL."""
    return url.split("://", 1)[1].rstrip("/")


def compose_only_removed(text: str) -> str:
    """A compose config without its ``# compose only: begin`` .. ``end`` blocks (services the
    local stack does not run)."""
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if "# compose only: begin" in line:
            skipping = True
        elif "# compose only: end" in line:
            skipping = False
        elif not skipping:
            kept.append(line)
    return "".join(kept)


def http_health(port: int, path: str = "/health") -> tuple[bool, str]:
    try:
        code, body = http_get(f"http://127.0.0.1:{port}{path}")
    except OSError as exc:
        return False, str(exc)
    return code == 200, f"HTTP {code}, {body[:80].decode(errors='replace')}"


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def install_hint(packages: tuple[str, ...]) -> str:
    return f"run: sudo apt-get update && sudo apt-get install -y {' '.join(packages)}"


def as_user(user: str | None) -> dict[str, Any]:
    """subprocess arguments to run as ``user`` with that user's group only (not root's)."""
    if user is None:
        return {}
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


# ---------------------------------------------------------------------------------------------
class Postgres(Server):
    name = "postgres"
    debian_packages = ("postgresql",)
    # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for every client to leave.
    stop_signal = signal.SIGINT

    @property
    def port(self) -> int:
        return self.settings.postgres.port

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "socket"

    def bin(self, tool: str) -> Path | None:
        for candidate in PG_BIN_CANDIDATES:
            if (candidate / tool).is_file():
                return candidate / tool
        return None

    def executable(self) -> Path | None:
        return self.bin("postgres")

    def run_as(self) -> str | None:
        # initdb and postgres refuse root: as root, the data belongs to the `postgres` user.
        return "postgres" if is_root() else None

    def command(self) -> list[str]:
        return [
            str(self.executable()),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.socket_dir}",
        ]

    def prepare(self) -> bool:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.chmod(0o700)
        user = self.run_as()
        if user:
            chown_tree(self.home, user)
            # The postgres user must be able to reach its folder through the stack's parents.
            for parent in [self.home, *self.home.parents]:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o001)
        if not (self.data / "PG_VERSION").is_file():
            initdb = self.bin("initdb")
            if initdb is None:
                raise StackError(
                    f"postgres: initdb not found; {install_hint(self.debian_packages)}"
                )
            cmd = [str(initdb), "-D", str(self.data), "-A", "trust", "-E", "UTF8", "--no-locale"]
            out = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                check=False,
                **as_user(user),
            )
            if out.returncode != 0:
                raise StackError(f"postgres: initdb failed:\n{out.stdout}\n{out.stderr}")
        hba = (
            "# Generated by the local stack. The socket folder is private to the server's user.\n"
            "local all all trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        changed = write_if_changed(self.data / "pg_hba.conf", hba)
        if changed and user:
            chown_tree(self.data / "pg_hba.conf", user)
        conf = (
            "# Generated by the local stack.\n"
            "password_encryption = 'scram-sha-256'\n"
            "shared_buffers = '256MB'\n"
            "max_connections = 100\n"
            "fsync = on\n"
            "logging_collector = off\n"
        )
        if write_if_changed(self.data / "postgresql.auto.conf", conf):
            changed = True
            if user:
                chown_tree(self.data / "postgresql.auto.conf", user)
        return changed

    def health(self) -> tuple[bool, str]:
        ready = self.bin("pg_isready")
        if ready is None:
            return port_open(self.port), "port open"
        out = subprocess.run(
            [str(ready), "-h", "127.0.0.1", "-p", str(self.port), "-t", "2"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.returncode == 0, out.stdout.strip() or out.stderr.strip()

    def psql(self, sql: str, database: str = "postgres") -> str:
        psql = self.bin("psql")
        if psql is None:
            raise StackError(f"postgres: psql not found; {install_hint(('postgresql-client',))}")
        out = subprocess.run(
            [
                str(psql),
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                self.superuser(),
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAtX",
            ],
            input=sql,
            **as_user(self.run_as()),
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise StackError(f"postgres: {out.stderr.strip()}")
        return out.stdout

    def superuser(self) -> str:
        return self.run_as() or pwd.getpwuid(os.geteuid()).pw_name

    def after_start(self) -> None:
        pg = self.settings.postgres
        if not pg.password:
            raise StackError(
                "postgres: PIPELINE_PG_PASSWORD is empty; run `make .env` (it generates one) or"
                " export it"
            )
        # The password travels on stdin as a psql variable, never on a command line.
        quoted = pg.password.replace("'", "''")
        self.psql(
            f"SELECT 'CREATE ROLE {pg.user} LOGIN CREATEDB' "
            f"WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{pg.user}')\\gexec\n"
            f"ALTER ROLE {pg.user} WITH LOGIN CREATEDB PASSWORD '{quoted}';\n"
            f"SELECT 'CREATE DATABASE {pg.database} OWNER {pg.user}' "
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{pg.database}')\\gexec\n"
        )
        from config.settings import POSTGRES_SCHEMAS

        self.psql(
            "".join(
                f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {pg.user};\n"
                for schema in POSTGRES_SCHEMAS
            ),
            database=pg.database,
        )


# ---------------------------------------------------------------------------------------------
class Redis(Server):
    name = "redis"
    debian_packages = ("redis-server",)

    @property
    def port(self) -> int:
        return self.settings.redis.port

    def executable(self) -> Path | None:
        found = shutil.which("redis-server")
        return Path(found) if found else None

    def config_path(self) -> Path:
        return self.home / "redis.conf"

    def prepare(self) -> bool:
        password = self.settings.redis.password
        return write_if_changed(
            self.config_path(),
            "# Generated by the local stack.\n"
            f"bind 127.0.0.1\nport {self.port}\nprotected-mode yes\ndaemonize no\n"
            f"dir {self.home}\nappendonly yes\nappendfsync everysec\n"
            "save 60 1000\n" + (f"requirepass {password}\n" if password else ""),
            mode=0o600,
        )

    def command(self) -> list[str]:
        return [str(self.executable()), str(self.config_path())]

    def health(self) -> tuple[bool, str]:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                if self.settings.redis.password:
                    pw = self.settings.redis.password
                    sock.sendall(f"*2\r\n$4\r\nAUTH\r\n${len(pw)}\r\n{pw}\r\n".encode())
                    sock.recv(64)
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                answer = sock.recv(64)
        except OSError as exc:
            return False, str(exc)
        return answer.startswith(b"+PONG"), answer.decode(errors="replace").strip()


# ---------------------------------------------------------------------------------------------
class ClickHouse(Server):
    name = "clickhouse"
    debian_packages = ("clickhouse-server", "clickhouse-client")

    @property
    def port(self) -> int:
        return self.settings.clickhouse.http_port

    def executable(self) -> Path | None:
        for candidate in ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"):
            if Path(candidate).is_file():
                return Path(candidate)
        found = shutil.which("clickhouse-server")
        return Path(found) if found else None

    def prepare(self) -> bool:
        ch = self.settings.clickhouse
        h = self.home
        for sub in ("data", "tmp", "user_files", "format_schemas"):
            (h / sub).mkdir(parents=True, exist_ok=True)
        # `<yandex>` is the root element 18.16 needs; 24+ still accepts it.
        config_changed = write_if_changed(
            h / "config.xml",
            f"""<?xml version="1.0"?>
<!-- Generated by the local stack. -->
<yandex>
  <logger><level>warning</level><log>{h}/server.log</log><errorlog>{h}/error.log</errorlog>
    <size>50M</size><count>3</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{ch.http_port}</http_port>
  <tcp_port>{ch.port}</tcp_port>
  <max_connections>256</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>100</max_concurrent_queries>
  <uncompressed_cache_size>1073741824</uncompressed_cache_size>
  <mark_cache_size>536870912</mark_cache_size>
  <path>{h}/data/</path>
  <tmp_path>{h}/tmp/</tmp_path>
  <user_files_path>{h}/user_files/</user_files_path>
  <format_schema_path>{h}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
""",
        )
        password = f"<password>{ch.password}</password>" if ch.password else "<password></password>"
        users_changed = write_if_changed(
            h / "users.xml",
            f"""<?xml version="1.0"?>
<!-- Generated by the local stack. -->
<yandex>
  <profiles><default><max_memory_usage>8000000000</max_memory_usage></default></profiles>
  <users><{ch.user}>{password}<networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></{ch.user}></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
""",
            mode=0o600,
        )
        return config_changed or users_changed

    def command(self) -> list[str]:
        return [str(self.executable()), f"--config-file={self.home / 'config.xml'}"]

    def health(self) -> tuple[bool, str]:
        try:
            code, body = http_get(f"http://127.0.0.1:{self.port}/ping")
        except OSError as exc:
            return False, str(exc)
        return code == 200 and body.strip() == b"Ok.", body.decode(errors="replace").strip()

    def after_start(self) -> None:
        from pipeline.bootstrap import create_clickhouse_databases

        create_clickhouse_databases(self.settings)


# ---------------------------------------------------------------------------------------------
class Pushgateway(Server):
    name = "pushgateway"
    debian_packages = ("prometheus-pushgateway",)

    @property
    def port(self) -> int:
        return url_port(self.settings.monitoring.pushgateway_url)

    def executable(self) -> Path | None:
        found = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
        return Path(found) if found else None

    def command(self) -> list[str]:
        return [
            str(self.executable()),
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--persistence.file={self.home / 'metrics.store'}",
            "--persistence.interval=1m",
        ]

    def health(self) -> tuple[bool, str]:
        return ready_endpoint(self.port)


# ---------------------------------------------------------------------------------------------
class Luigid(Server):
    name = "luigid"

    @property
    def port(self) -> int:
        return url_port(self.settings.monitoring.luigid_url)

    def executable(self) -> Path | None:
        candidate = Path(sys.executable).parent / "luigid"
        return candidate if candidate.is_file() else None

    def config_path(self) -> Path:
        return self.home / "luigid.cfg"

    def prepare(self) -> bool:
        # The compose stack's file, with its paths moved under the stack folder.
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        template = (PROJECT_ROOT / "config" / "compose" / "luigid.cfg").read_text()
        return write_if_changed(
            self.config_path(),
            "# Generated by the local stack from config/compose/luigid.cfg.\n"
            + template.replace("/var/lib/luigid", str(self.home)),
        )

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["LUIGI_CONFIG_PATH"] = str(self.config_path())
        return env

    def command(self) -> list[str]:
        # The executable is a Python script: run it with our interpreter so the pid's exe is
        # the interpreter and the pid file records that.
        return [
            sys.executable,
            str(self.executable()),
            "--address",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--logdir",
            str(self.home / "logs"),
            "--state-path",
            str(self.home / "state.pickle"),
        ]

    def start(self, timeout: float = 90.0) -> str:
        if self.executable() is None:
            raise StackError(
                "luigid: not in the virtualenv; run `make venv` (pip install -e '.[dev]')"
            )
        return super().start(timeout)

    def health(self) -> tuple[bool, str]:
        try:
            code, body = http_get(f"http://127.0.0.1:{self.port}/metrics")
        except OSError as exc:
            return False, str(exc)
        return code == 200, f"HTTP {code}, {len(body)} bytes of metrics"


# ---------------------------------------------------------------------------------------------
class Prometheus(Server):
    name = "prometheus"
    debian_packages = ("prometheus",)

    @property
    def port(self) -> int:
        return url_port(self.settings.monitoring.prometheus_url)

    def executable(self) -> Path | None:
        found = shutil.which("prometheus")
        return Path(found) if found else None

    def config_path(self) -> Path:
        return self.home / "prometheus.yml"

    def prepare(self) -> bool:
        # The compose stack's file, with loopback targets and a shorter scrape interval.
        m = self.settings.monitoring
        template = (PROJECT_ROOT / "monitoring" / "prometheus" / "prometheus.yml").read_text()
        replacements = {
            "pushgateway:9091": m.pushgateway_url.split("://", 1)[1].rstrip("/"),
            "luigid:8082": m.luigid_url.split("://", 1)[1].rstrip("/"),
            "alertmanager:9093": m.alertmanager_url.split("://", 1)[1].rstrip("/"),
            "localhost:9090": f"127.0.0.1:{self.port}",
            "/etc/prometheus/rules": str(PROJECT_ROOT / "monitoring" / "prometheus" / "rules"),
            "scrape_interval: 15s": "scrape_interval: 5s",
            "evaluation_interval: 15s": "evaluation_interval: 5s",
        }
        text = compose_only_removed(template)
        for old, new in replacements.items():
            if old not in text:
                raise StackError(f"prometheus: {old!r} not found in monitoring/prometheus")
            text = text.replace(old, new)
        return write_if_changed(
            self.config_path(),
            "# Generated by the local stack from monitoring/prometheus.\n" + text,
        )

    def command(self) -> list[str]:
        return [
            str(self.executable()),
            f"--config.file={self.config_path()}",
            f"--storage.tsdb.path={self.home / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=15d",
        ]

    def health(self) -> tuple[bool, str]:
        return ready_endpoint(self.port)


# ---------------------------------------------------------------------------------------------
class Alertmanager(Server):
    name = "alertmanager"
    debian_packages = ("prometheus-alertmanager",)

    @property
    def port(self) -> int:
        return url_port(self.settings.monitoring.alertmanager_url)

    def executable(self) -> Path | None:
        found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        return Path(found) if found else None

    def config_path(self) -> Path:
        return self.home / "alertmanager.yml"

    def prepare(self) -> bool:
        # The compose stack's file, sending to the local alert relay, grouping sooner.
        template = (PROJECT_ROOT / "monitoring" / "alertmanager" / "alertmanager.yml").read_text()
        relay = url_address(self.settings.monitoring.alert_relay_url)
        text = template
        for old, new in {"alert-relay:9095": relay, "group_wait: 30s": "group_wait: 2s"}.items():
            if old not in text:
                raise StackError(f"alertmanager: {old!r} not found in monitoring/alertmanager")
            text = text.replace(old, new)
        return write_if_changed(
            self.config_path(),
            "# Generated by the local stack from monitoring/alertmanager.\n" + text,
        )

    def command(self) -> list[str]:
        return [
            str(self.executable()),
            f"--config.file={self.config_path()}",
            f"--storage.path={self.home / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url=http://127.0.0.1:{self.port}",
            # One instance: no cluster port (it would listen on every interface).
            "--cluster.listen-address=",
        ]

    def health(self) -> tuple[bool, str]:
        return ready_endpoint(self.port)


# ---------------------------------------------------------------------------------------------
class ProjectService(Server):
    """A long-running Python service of the project, run with the virtualenv's interpreter."""

    module = ""

    def executable(self) -> Path | None:
        return Path(sys.executable)

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(PROJECT_ROOT)
        return env

    def health(self) -> tuple[bool, str]:
        return http_health(self.port)


class AlertRelay(ProjectService):
    """Alertmanager's receiver: Telegram with the token from the environment, else the outbox."""

    name = "alert-relay"
    module = "monitoring.alert_relay"

    @property
    def port(self) -> int:
        return url_port(self.settings.monitoring.alert_relay_url)


class LogShipper(ProjectService):
    """The JSON log files to Elasticsearch; only when PIPELINE_ELASTICSEARCH_URL is set (no
    Elasticsearch can be installed here: the compose stack has one)."""

    name = "log-shipper"
    module = "monitoring.shipper"

    @property
    def port(self) -> int:
        return url_port(self.settings.monitoring.log_shipper_url)

    @property
    def enabled(self) -> bool:
        return bool(self.settings.monitoring.elasticsearch_url)

    def start(self, timeout: float = 90.0) -> str:
        if not self.enabled:
            self.stop()  # was it on before? the setting went away
            return "off (PIPELINE_ELASTICSEARCH_URL is not set: the logs stay in var/logs)"
        return super().start(timeout)

    def status(self) -> Status:
        if not self.enabled:
            return Status(self.name, self.port, None, False, True, OFF)
        return super().status()


SERVER_CLASSES: list[Callable[[Settings], Server]] = [
    Postgres,
    Redis,
    ClickHouse,
    Pushgateway,
    Luigid,
    AlertRelay,
    Alertmanager,
    Prometheus,
    LogShipper,
]


def all_servers(settings: Settings) -> list[Server]:
    return [cls(settings) for cls in SERVER_CLASSES]
