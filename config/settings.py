"""Settings: defaults point at the local stack; environment variables override them.

This is the one route for settings: no other module reads ``os.environ``. Every variable read
here is listed, with its default, in ``.env.example`` (a test holds the two equal). Settings are
read once per process: ``load_settings()`` caches them on the effective environment, so an
unchanged environment gives the same object and a changed one (a test's ``monkeypatch.setenv``)
gives new settings.

Secrets (passwords, the Telegram token) come only from the environment or from an ignored
``.env`` file at the project root (see ``.env.example``). They are excluded from ``repr`` so a
settings object can be logged without leaking them.

This module imports only the standard library: the stack scripts use it before the virtualenv
has anything else.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The loopback ports of the local stack (DESIGN.md, "Fixed names").
DEFAULT_PORTS = {
    "postgres": 15432,
    "redis": 16379,
    "clickhouse": 19000,
    "clickhouse_http": 18123,
    "prometheus": 19090,
    "pushgateway": 19091,
    "luigid": 18082,
    "alertmanager": 19093,
    # The project's own servers in the stack: Alertmanager's webhook receiver that sends to
    # Telegram or the outbox (monitoring.alert_relay), and the log shipper's health endpoint
    # (monitoring.shipper: var/logs/ to Elasticsearch).
    "alert_relay": 19095,
    "log_shipper": 19096,
    # The project's demo stand-in for a CRM (demo.crm_service); not a server of the stack.
    "crm": 18090,
}

# Logical ClickHouse databases (DESIGN.md); tests map them to prefixed copies.
CLICKHOUSE_DATABASES = ("simulator", "test", "sales", "bionicpro_reports", "ops")
POSTGRES_SCHEMAS = ("sales", "telemetry", "ops")

# The settings' variables start with one of these; nothing else in the environment changes them.
PREFIXES = ("PIPELINE_", "TELEGRAM_")
# Variables whose values are secrets, whatever their prefix: the log redaction scrubs their values.
SECRET_NAME = re.compile(r"(PASSWORD|TOKEN|SECRET|API_KEY|_KEY)$")


class SettingsError(ValueError):
    """A setting has a value the project cannot use; the message names the variable."""


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``KEY=value`` file (comments, blank lines, optional quotes); no interpolation."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise SettingsError(f"{path}:{number}: expected KEY=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def _env_file(base: Mapping[str, str]) -> Path:
    return Path(base.get("PIPELINE_ENV_FILE") or PROJECT_ROOT / ".env")


def _stamp(path: Path) -> tuple[int, int] | None:
    """What identifies a version of the ``.env`` file (None: there is none)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The effective environment: the process environment over the ``.env`` file."""
    base = dict(os.environ if env is None else env)
    merged = read_env_file(_env_file(base))
    merged.update(base)
    return merged


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """The values of the secret variables (``*_PASSWORD``, ``*_TOKEN``, ``*_KEY``, ...) of the
    effective environment, longest first: what the log redaction scrubs. Cached like the
    settings (the log filter asks for every record)."""
    base = os.environ if env is None else env
    own = tuple(sorted((k, v) for k, v in base.items() if SECRET_NAME.search(k.upper())))
    path = _env_file(base)
    return list(_secret_values(own, str(path), _stamp(path)))


@functools.lru_cache(maxsize=32)
def _secret_values(
    own: tuple[tuple[str, str], ...], path: str, stamp: tuple[int, int] | None
) -> tuple[str, ...]:
    merged = {k: v for k, v in read_env_file(Path(path)).items() if SECRET_NAME.search(k.upper())}
    merged.update(own)
    values = {v for v in merged.values() if len(v) >= 4}
    return tuple(sorted(values, key=len, reverse=True))


def _int(env: Mapping[str, str], name: str, default: int, minimum: int | None = None) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(
    env: Mapping[str, str], name: str, default: float, minimum: float | None = None
) -> float:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and not value >= minimum:  # NaN fails too
        raise SettingsError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def _identifier(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "") or default
    if value and not (value.replace("_", "a").isalnum() and value.isascii()):
        raise SettingsError(f"{name} must be letters, digits and underscores, got {value!r}")
    return value


@dataclass(frozen=True)
class PostgresSettings:
    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    # Seconds to wait for a connection (libpq counts whole seconds, at least 2).
    connect_timeout_s: int = 10
    # Bounded time (pipeline.systems.postgres sets them on every connection): a statement
    # running longer, or waiting longer for a lock, is cancelled with an error naming it; TCP
    # keepalives find a half-open connection (the peer gone without a word) in
    # idle + interval x count seconds instead of never.
    statement_timeout_s: float = 900.0
    lock_timeout_s: float = 60.0
    keepalives_idle_s: int = 30
    keepalives_interval_s: int = 10
    keepalives_count: int = 3

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg2.connect``: never a DSN string that could be logged."""
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": self.user,
            "password": self.password,
            "connect_timeout": self.connect_timeout_s,
            "application_name": "luigi-etl",
        }


@dataclass(frozen=True)
class RedisSettings:
    host: str
    port: int
    db: int
    password: str = field(repr=False)
    # Seconds for a connection and for each command: Redis answers in milliseconds or is away.
    timeout_s: float = 2.0


@dataclass(frozen=True)
class ClickHouseSettings:
    host: str
    port: int
    http_port: int
    user: str
    password: str = field(repr=False)
    # Tests map the logical databases to prefixed copies so they never touch the demo's data.
    database_prefix: str = ""
    # Seconds for one HTTP request (a statement, or an insert streaming its rows).
    timeout_s: float = 300.0

    def database(self, logical: str) -> str:
        if logical not in CLICKHOUSE_DATABASES:
            raise SettingsError(f"unknown ClickHouse database {logical!r}")
        return f"{self.database_prefix}{logical}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/"


@dataclass(frozen=True)
class MonitoringSettings:
    prometheus_url: str
    pushgateway_url: str
    luigid_url: str
    elasticsearch_url: str
    elasticsearch_api_key: str = field(repr=False)
    # The Pushgateway group the metrics go to: one per environment, so the tests' pushes never
    # overwrite the demo's. Defaults to the environment's name.
    metrics_instance: str = "local"
    # Seconds for a push to the Pushgateway and for a bulk request to Elasticsearch.
    pushgateway_timeout_s: float = 5.0
    # A task's success pushes the metrics at most this often (shared by every process of the
    # host's runs); a failure pushes at once, and every run pushes when its worker ends.
    metrics_push_every_s: float = 5.0
    elasticsearch_timeout_s: float = 5.0
    # One id for every log record of a run (``labels.run_id``); empty: each process makes one.
    run_id: str = ""
    # Alertmanager (Prometheus' alerts go there) and its receiver, the alert relay.
    alertmanager_url: str = "http://127.0.0.1:19093"
    alert_relay_url: str = "http://127.0.0.1:19095"
    # The log shipper's health endpoint (it ships var/logs/ to elasticsearch_url).
    log_shipper_url: str = "http://127.0.0.1:19096"
    # The console: "text" (one concise line per task start and finish, warnings) for people;
    # "json" (the same JSON lines as the log files) for containers. Files are always JSON.
    log_format: str = "text"


@dataclass(frozen=True)
class TelegramSettings:
    token: str = field(repr=False)
    chat_id: str = ""
    api_url: str = "https://api.telegram.org"
    # Seconds for one Bot API request, and attempts per message on connection errors and 5xx
    # (a 429 waits for its retry_after instead).
    timeout_s: float = 30.0
    max_attempts: int = 4

    @property
    def configured(self) -> bool:
        return bool(self.token and self.chat_id)


@dataclass(frozen=True)
class CrmSettings:
    """The CRM's HTTP JSON API (telemetry mart): the demo points at the project's stand-in
    service."""

    url: str
    token: str = field(repr=False)
    timeout_s: float = 30.0
    # Attempts per request on connection errors and 5xx (429 waits for Retry-After instead).
    max_attempts: int = 4
    backoff_s: float = 0.5
    page_size: int = 500


SPARK_MASTER = re.compile(
    r"local(\[(\*|[0-9]+)\])?|spark://[A-Za-z0-9_.-]+(:[0-9]+)?(,[A-Za-z0-9_.-]+(:[0-9]+)?)*"
)
SALES_ENGINES = ("postgres", "spark")


@dataclass(frozen=True)
class SparkSettings:
    """Spark, the sales flow's second engine and the history job's. The Luigi worker process is
    the driver (client mode): ``local[*]`` runs the executors in it, ``spark://host:7077``
    submits them to a standalone cluster (compose: ``spark-master``)."""

    master: str = "local[*]"
    # The PostgreSQL JDBC driver (Debian's libpostgresql-jdbc-java); Spark ships it to executors.
    jdbc_jar: Path = Path("/usr/share/java/postgresql.jar")
    # The address executors reach the driver at (compose: the runner's service name); empty:
    # Spark's own guess, right on one machine.
    driver_host: str = ""
    # The driver's heap (with local[*] the executors' too) and each executor's on a cluster.
    driver_memory: str = "2g"
    executor_memory: str = "2g"
    # Partitions after a shuffle: Spark's 200 is for big clusters; a week here is a few MB.
    shuffle_partitions: int = 8
    # Parallel JDBC reads of a date range (one slice of sale_date each).
    jdbc_partitions: int = 4
    # Any other Spark configuration, applied last (spark-submit's --conf): "key=value;key=value".
    extra_conf: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RedashSettings:
    """Redash's REST API, for the provisioning command (``python -m monitoring.redash``)."""

    url: str = "http://127.0.0.1:5000"
    # A Redash user's API key (an admin's: it creates the data source); sent as
    # "Authorization: Key ...", never logged.
    api_key: str = field(default="", repr=False)
    timeout_s: float = 30.0
    # ClickHouse's HTTP URL as Redash's server reaches it (compose: http://clickhouse:8123).
    clickhouse_url: str = "http://127.0.0.1:18123"


@dataclass(frozen=True)
class FlowSettings:
    """The flows' knobs. Each is the default of a task parameter or a constant of the flow;
    a command-line parameter still overrides it for one run."""

    # Inbox: files per ingestion task (Luigi's scheduling cost grows faster than linearly with
    # the number of tasks, so files go in batches).
    inbox_batch_size: int = 50
    # Inbox: a file is taken once unchanged for this long (an upload in progress keeps changing).
    inbox_min_file_age_s: float = 10.0
    # Inbox: automatic attempts of a failed file; after that it waits for ``flags retry``.
    inbox_max_attempts: int = 5
    # Inbox watcher: quiet seconds after the last file-system event before a sweep, and a sweep
    # at least this often in case an event was missed.
    watch_settle_s: float = 2.0
    watch_sweep_every_s: float = 60.0
    # Retention: rows older than this many days move from a hot table to its archive table;
    # archived files older than this many days are deleted.
    retention_hot_days: int = 400
    retention_archive_days: int = 365
    # Daily flows (activity, telemetry): retries of a failed task, ``[scheduler] retry_delay``
    # apart (luigi.cfg: 5 minutes). Luigi's ``retry_count`` is this plus one.
    daily_retries: int = 2
    # Weekly sales: the engine of the aggregates, "postgres" (SQL in the database) or "spark"
    # (SalesWeekly --engine; the same table either way).
    sales_engine: str = "postgres"
    # The anomaly alerts' metrics, slices, sensitivity and links.
    alerts_config: Path = PROJECT_ROOT / "config" / "alerts.toml"
    # Catch-up: cron runs each daily flow over the last this many days (the weekly sales flow
    # over the last catchup_weeks weeks), so a night the machine was down, or a late file, is
    # done by the next run; a period already complete costs one check.
    catchup_days: int = 7
    catchup_weeks: int = 4
    # Seconds a run waits for another run replacing the same ClickHouse period (the period lock,
    # a PostgreSQL advisory lock: two overlapping runs never lose each other's days).
    period_lock_timeout_s: float = 600.0
    # Seconds a task may run before its Luigi worker kills it (each flow's tasks' worker_timeout);
    # the 15-minute alert check has a shorter one.
    task_timeout_s: int = 3600
    alerts_task_timeout_s: int = 600
    # Tasks one worker process runs before it is replaced (pipeline.core.runners): Luigi forks a
    # process per task with --workers 2 or a worker_timeout; a process kept warm for the next
    # task saves the fork, the database login and the caches. 1: a fresh process per task.
    tasks_per_process: int = 100
    # ...and the size (resident MB) above which it is replaced after its task.
    task_process_max_mb: int = 1024
    # Seconds a cron entry's run may take before the runner kills it (a crontab line may set
    # PIPELINE_CRON_DEADLINE_S above it for the entries below).
    cron_deadline_s: float = 3 * 3600.0
    # Telemetry mart: share of the day's rows whose user the CRM does not know above which the
    # run warns, and above which it fails (an empty CRM answer fails any day with telemetry).
    crm_unmatched_warn_share: float = 0.2
    crm_unmatched_fail_share: float = 0.5
    # Retention: work files with personal data (the telemetry mart's CRM and mart Parquet) are
    # deleted this many days after they were written.
    retention_personal_days: int = 7


@dataclass(frozen=True)
class Paths:
    """The runtime folder: everything the pipeline writes, never beside the code."""

    runtime: Path
    stack: Path

    @property
    def inbox(self) -> Path:
        return self.runtime / "inbox"

    @property
    def work(self) -> Path:
        return self.runtime / "work"

    @property
    def flags(self) -> Path:
        return self.runtime / "flags"

    @property
    def archive(self) -> Path:
        return self.runtime / "archive"

    @property
    def quarantine(self) -> Path:
        return self.runtime / "quarantine"

    @property
    def reports(self) -> Path:
        return self.runtime / "reports"

    @property
    def outbox(self) -> Path:
        return self.runtime / "outbox"

    @property
    def logs(self) -> Path:
        return self.runtime / "logs"

    def data_dirs(self) -> list[Path]:
        return [
            self.inbox,
            self.work,
            self.flags,
            self.archive,
            self.quarantine,
            self.reports,
            self.outbox,
            self.logs,
        ]

    def ensure(self) -> None:
        for path in self.data_dirs():
            path.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class Settings:
    paths: Paths
    postgres: PostgresSettings
    redis: RedisSettings
    clickhouse: ClickHouseSettings
    monitoring: MonitoringSettings
    telegram: TelegramSettings
    crm: CrmSettings
    flows: FlowSettings = field(default_factory=FlowSettings)
    spark: SparkSettings = field(default_factory=SparkSettings)
    redash: RedashSettings = field(default_factory=RedashSettings)
    environment_name: str = "local"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the environment (and ``.env``), falling back to the local stack.

    Read once per process: cached on the settings' variables of the environment (``PIPELINE_*``,
    ``TELEGRAM_*``) and the version of the ``.env`` file, so the same environment gives the same
    object and a changed one new settings."""
    base = os.environ if env is None else env
    own = _own_variables() if env is None else _own_of(env)
    path = _env_file(base)
    return _load(own, str(path), _stamp(path))


_PREFIXES_BYTES = tuple(prefix.encode() for prefix in PREFIXES)


def _own_of(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(PREFIXES)))


def _own_variables() -> tuple[tuple[str, str], ...]:
    """The settings' variables of the process environment. Settings are asked for often (a year's
    backfill: over a thousand times), and walking ``os.environ`` decodes every variable: the
    raw bytes it keeps (POSIX) are read instead, and only the few that match are decoded."""
    raw = getattr(os.environ, "_data", None)
    if not isinstance(raw, dict) or not isinstance(next(iter(raw), b""), bytes):
        return _own_of(os.environ)
    decode = os.fsdecode
    return tuple(
        sorted((decode(k), decode(v)) for k, v in raw.items() if k.startswith(_PREFIXES_BYTES))
    )


@functools.lru_cache(maxsize=32)
def _load(own: tuple[tuple[str, str], ...], path: str, stamp: tuple[int, int] | None) -> Settings:
    e = read_env_file(Path(path))
    e.update(own)
    environment_name = e.get("PIPELINE_ENV", "local")
    runtime = Path(e.get("PIPELINE_RUNTIME_DIR") or PROJECT_ROOT / "var").resolve()
    stack = Path(e.get("PIPELINE_STACK_DIR") or runtime / "stack").resolve()
    p = DEFAULT_PORTS
    ch_http = _int(e, "PIPELINE_CH_HTTP_PORT", p["clickhouse_http"])
    return Settings(
        environment_name=environment_name,
        paths=Paths(runtime=runtime, stack=stack),
        postgres=PostgresSettings(
            host=e.get("PIPELINE_PG_HOST", "127.0.0.1"),
            port=_int(e, "PIPELINE_PG_PORT", p["postgres"]),
            database=_identifier(e, "PIPELINE_PG_DATABASE", "pipeline"),
            user=_identifier(e, "PIPELINE_PG_USER", "pipeline"),
            password=e.get("PIPELINE_PG_PASSWORD", ""),
            connect_timeout_s=_int(e, "PIPELINE_PG_CONNECT_TIMEOUT_S", 10, minimum=1),
            statement_timeout_s=_float(e, "PIPELINE_PG_STATEMENT_TIMEOUT_S", 900.0, minimum=0.01),
            lock_timeout_s=_float(e, "PIPELINE_PG_LOCK_TIMEOUT_S", 60.0, minimum=0.01),
            keepalives_idle_s=_int(e, "PIPELINE_PG_KEEPALIVES_IDLE_S", 30, minimum=1),
            keepalives_interval_s=_int(e, "PIPELINE_PG_KEEPALIVES_INTERVAL_S", 10, minimum=1),
            keepalives_count=_int(e, "PIPELINE_PG_KEEPALIVES_COUNT", 3, minimum=1),
        ),
        redis=RedisSettings(
            host=e.get("PIPELINE_REDIS_HOST", "127.0.0.1"),
            port=_int(e, "PIPELINE_REDIS_PORT", p["redis"]),
            db=_int(e, "PIPELINE_REDIS_DB", 0),
            password=e.get("PIPELINE_REDIS_PASSWORD", ""),
            timeout_s=_float(e, "PIPELINE_REDIS_TIMEOUT_S", 2.0, minimum=0.01),
        ),
        clickhouse=ClickHouseSettings(
            host=e.get("PIPELINE_CH_HOST", "127.0.0.1"),
            port=_int(e, "PIPELINE_CH_PORT", p["clickhouse"]),
            http_port=ch_http,
            user=e.get("PIPELINE_CH_USER", "default"),
            password=e.get("PIPELINE_CH_PASSWORD", ""),
            database_prefix=_identifier(e, "PIPELINE_CH_DB_PREFIX", ""),
            timeout_s=_float(e, "PIPELINE_CH_TIMEOUT_S", 300.0, minimum=0.01),
        ),
        monitoring=MonitoringSettings(
            prometheus_url=e.get("PIPELINE_PROMETHEUS_URL", f"http://127.0.0.1:{p['prometheus']}"),
            pushgateway_url=e.get(
                "PIPELINE_PUSHGATEWAY_URL", f"http://127.0.0.1:{p['pushgateway']}"
            ),
            luigid_url=e.get("PIPELINE_LUIGID_URL", f"http://127.0.0.1:{p['luigid']}"),
            elasticsearch_url=e.get("PIPELINE_ELASTICSEARCH_URL", ""),
            elasticsearch_api_key=e.get("PIPELINE_ELASTICSEARCH_API_KEY", ""),
            alertmanager_url=e.get(
                "PIPELINE_ALERTMANAGER_URL", f"http://127.0.0.1:{p['alertmanager']}"
            ),
            alert_relay_url=e.get(
                "PIPELINE_ALERT_RELAY_URL", f"http://127.0.0.1:{p['alert_relay']}"
            ),
            log_shipper_url=e.get(
                "PIPELINE_LOG_SHIPPER_URL", f"http://127.0.0.1:{p['log_shipper']}"
            ),
            log_format=_choice(
                "PIPELINE_LOG_FORMAT", e.get("PIPELINE_LOG_FORMAT", ""), ("text", "json")
            ),
            metrics_instance=e.get("PIPELINE_METRICS_INSTANCE", "") or environment_name,
            pushgateway_timeout_s=_float(e, "PIPELINE_PUSHGATEWAY_TIMEOUT_S", 5.0, minimum=0.01),
            metrics_push_every_s=_float(e, "PIPELINE_METRICS_PUSH_EVERY_S", 5.0, minimum=0.0),
            elasticsearch_timeout_s=_float(
                e, "PIPELINE_ELASTICSEARCH_TIMEOUT_S", 5.0, minimum=0.01
            ),
            run_id=e.get("PIPELINE_RUN_ID", ""),
        ),
        crm=CrmSettings(
            url=e.get("PIPELINE_CRM_URL", f"http://127.0.0.1:{p['crm']}"),
            token=e.get("PIPELINE_CRM_TOKEN", ""),
            timeout_s=_float(e, "PIPELINE_CRM_TIMEOUT_S", 30.0),
            max_attempts=_int(e, "PIPELINE_CRM_MAX_ATTEMPTS", 4),
            backoff_s=_float(e, "PIPELINE_CRM_BACKOFF_S", 0.5),
            page_size=_int(e, "PIPELINE_CRM_PAGE_SIZE", 500),
        ),
        spark=_spark(e),
        redash=RedashSettings(
            url=e.get("PIPELINE_REDASH_URL", "http://127.0.0.1:5000"),
            api_key=e.get("PIPELINE_REDASH_API_KEY", ""),
            timeout_s=_float(e, "PIPELINE_REDASH_TIMEOUT_S", 30.0, minimum=0.01),
            clickhouse_url=e.get("PIPELINE_REDASH_CLICKHOUSE_URL", "")
            or f"http://{e.get('PIPELINE_CH_HOST', '127.0.0.1')}:{ch_http}",
        ),
        telegram=TelegramSettings(
            token=e.get("TELEGRAM_BOT_TOKEN", ""),
            chat_id=e.get("TELEGRAM_CHAT_ID", ""),
            api_url=e.get("TELEGRAM_API_URL", "https://api.telegram.org"),
            timeout_s=_float(e, "PIPELINE_TELEGRAM_TIMEOUT_S", 30.0, minimum=0.01),
            max_attempts=_int(e, "PIPELINE_TELEGRAM_MAX_ATTEMPTS", 4, minimum=1),
        ),
        flows=FlowSettings(
            inbox_batch_size=_int(e, "PIPELINE_INBOX_BATCH_SIZE", 50, minimum=1),
            inbox_min_file_age_s=_float(e, "PIPELINE_INBOX_MIN_FILE_AGE_S", 10.0, minimum=0),
            inbox_max_attempts=_int(e, "PIPELINE_INBOX_MAX_ATTEMPTS", 5, minimum=1),
            watch_settle_s=_float(e, "PIPELINE_WATCH_SETTLE_S", 2.0, minimum=0),
            watch_sweep_every_s=_float(e, "PIPELINE_WATCH_SWEEP_EVERY_S", 60.0, minimum=1),
            retention_hot_days=_int(e, "PIPELINE_RETENTION_HOT_DAYS", 400, minimum=1),
            retention_archive_days=_int(e, "PIPELINE_RETENTION_ARCHIVE_DAYS", 365, minimum=1),
            daily_retries=_int(e, "PIPELINE_DAILY_RETRIES", 2, minimum=0),
            sales_engine=_choice(
                "PIPELINE_SALES_ENGINE", e.get("PIPELINE_SALES_ENGINE", ""), SALES_ENGINES
            ),
            alerts_config=Path(
                e.get("PIPELINE_ALERTS_CONFIG") or PROJECT_ROOT / "config" / "alerts.toml"
            ),
            catchup_days=_int(e, "PIPELINE_CATCHUP_DAYS", 7, minimum=1),
            catchup_weeks=_int(e, "PIPELINE_CATCHUP_WEEKS", 4, minimum=1),
            period_lock_timeout_s=_float(e, "PIPELINE_PERIOD_LOCK_TIMEOUT_S", 600.0, minimum=0.01),
            task_timeout_s=_int(e, "PIPELINE_TASK_TIMEOUT_S", 3600, minimum=1),
            alerts_task_timeout_s=_int(e, "PIPELINE_ALERTS_TASK_TIMEOUT_S", 600, minimum=1),
            tasks_per_process=_int(e, "PIPELINE_TASKS_PER_PROCESS", 100, minimum=1),
            task_process_max_mb=_int(e, "PIPELINE_TASK_PROCESS_MAX_MB", 1024, minimum=64),
            cron_deadline_s=_float(e, "PIPELINE_CRON_DEADLINE_S", 3 * 3600.0, minimum=0.01),
            crm_unmatched_warn_share=_float(e, "PIPELINE_CRM_UNMATCHED_WARN_SHARE", 0.2, minimum=0),
            crm_unmatched_fail_share=_float(e, "PIPELINE_CRM_UNMATCHED_FAIL_SHARE", 0.5, minimum=0),
            retention_personal_days=_int(e, "PIPELINE_RETENTION_PERSONAL_DAYS", 7, minimum=1),
        ),
    )


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices`` (empty: the first, the default)."""
    value = value or choices[0]
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _spark(e: Mapping[str, str]) -> SparkSettings:
    master = e.get("PIPELINE_SPARK_MASTER", "") or "local[*]"
    if not SPARK_MASTER.fullmatch(master):
        raise SettingsError(
            f"PIPELINE_SPARK_MASTER must be local, local[N], local[*] or spark://host:port, "
            f"got {master!r}"
        )
    return SparkSettings(
        master=master,
        jdbc_jar=Path(e.get("PIPELINE_SPARK_JDBC_JAR") or "/usr/share/java/postgresql.jar"),
        driver_host=e.get("PIPELINE_SPARK_DRIVER_HOST", ""),
        driver_memory=e.get("PIPELINE_SPARK_DRIVER_MEMORY", "") or "2g",
        executor_memory=e.get("PIPELINE_SPARK_EXECUTOR_MEMORY", "") or "2g",
        shuffle_partitions=_int(e, "PIPELINE_SPARK_SHUFFLE_PARTITIONS", 8, minimum=1),
        jdbc_partitions=_int(e, "PIPELINE_SPARK_JDBC_PARTITIONS", 4, minimum=1),
        extra_conf=_spark_conf(e.get("PIPELINE_SPARK_CONF", "")),
    )


def _spark_conf(raw: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in filter(None, (part.strip() for part in raw.split(";"))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip().startswith("spark."):
            raise SettingsError(f"PIPELINE_SPARK_CONF: expected spark.key=value, got {item!r}")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)
