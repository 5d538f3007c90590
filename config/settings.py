"""Settings: defaults point at the local stack; environment variables override them.

Secrets (passwords, the Telegram token) come only from the environment or from an ignored
``.env`` file at the project root (see ``.env.example``). They are excluded from ``repr`` so a
settings object can be logged without leaking them.

This module imports only the standard library: the stack scripts use it before the virtualenv
has anything else.
"""

from __future__ import annotations

import os
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
    # The project's demo stand-in for a CRM (demo.crm_service); not a server of the stack.
    "crm": 18090,
}

# Logical ClickHouse databases (DESIGN.md); tests map them to prefixed copies.
CLICKHOUSE_DATABASES = ("simulator", "test", "sales", "bionicpro_reports", "ops")
POSTGRES_SCHEMAS = ("sales", "telemetry", "ops")


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


def environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The effective environment: the process environment over the ``.env`` file."""
    base = dict(os.environ if env is None else env)
    env_file = Path(base.get("PIPELINE_ENV_FILE", PROJECT_ROOT / ".env"))
    merged = read_env_file(env_file)
    merged.update(base)
    return merged


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


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

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg2.connect``: never a DSN string that could be logged."""
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": self.user,
            "password": self.password,
            "connect_timeout": 10,
            "application_name": "luigi-etl",
        }


@dataclass(frozen=True)
class RedisSettings:
    host: str
    port: int
    db: int
    password: str = field(repr=False)


@dataclass(frozen=True)
class ClickHouseSettings:
    host: str
    port: int
    http_port: int
    user: str
    password: str = field(repr=False)
    # Tests map the logical databases to prefixed copies so they never touch the demo's data.
    database_prefix: str = ""

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


@dataclass(frozen=True)
class TelegramSettings:
    token: str = field(repr=False)
    chat_id: str = ""
    api_url: str = "https://api.telegram.org"

    @property
    def configured(self) -> bool:
        return bool(self.token and self.chat_id)


@dataclass(frozen=True)
class CrmSettings:
    """The CRM's HTTP JSON API (seed 003): the demo points at the project's stand-in service."""

    url: str
    token: str = field(repr=False)
    timeout_s: float = 30.0
    # Attempts per request on connection errors and 5xx (429 waits for Retry-After instead).
    max_attempts: int = 4
    backoff_s: float = 0.5
    page_size: int = 500


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
    environment_name: str = "local"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the environment (and ``.env``), falling back to the local stack."""
    e = environment(env)
    runtime = Path(e.get("PIPELINE_RUNTIME_DIR") or PROJECT_ROOT / "var").resolve()
    stack = Path(e.get("PIPELINE_STACK_DIR") or runtime / "stack").resolve()
    p = DEFAULT_PORTS
    ch_http = _int(e, "PIPELINE_CH_HTTP_PORT", p["clickhouse_http"])
    return Settings(
        environment_name=e.get("PIPELINE_ENV", "local"),
        paths=Paths(runtime=runtime, stack=stack),
        postgres=PostgresSettings(
            host=e.get("PIPELINE_PG_HOST", "127.0.0.1"),
            port=_int(e, "PIPELINE_PG_PORT", p["postgres"]),
            database=_identifier(e, "PIPELINE_PG_DATABASE", "pipeline"),
            user=_identifier(e, "PIPELINE_PG_USER", "pipeline"),
            password=e.get("PIPELINE_PG_PASSWORD", ""),
        ),
        redis=RedisSettings(
            host=e.get("PIPELINE_REDIS_HOST", "127.0.0.1"),
            port=_int(e, "PIPELINE_REDIS_PORT", p["redis"]),
            db=_int(e, "PIPELINE_REDIS_DB", 0),
            password=e.get("PIPELINE_REDIS_PASSWORD", ""),
        ),
        clickhouse=ClickHouseSettings(
            host=e.get("PIPELINE_CH_HOST", "127.0.0.1"),
            port=_int(e, "PIPELINE_CH_PORT", p["clickhouse"]),
            http_port=ch_http,
            user=e.get("PIPELINE_CH_USER", "default"),
            password=e.get("PIPELINE_CH_PASSWORD", ""),
            database_prefix=_identifier(e, "PIPELINE_CH_DB_PREFIX", ""),
        ),
        monitoring=MonitoringSettings(
            prometheus_url=e.get("PIPELINE_PROMETHEUS_URL", f"http://127.0.0.1:{p['prometheus']}"),
            pushgateway_url=e.get(
                "PIPELINE_PUSHGATEWAY_URL", f"http://127.0.0.1:{p['pushgateway']}"
            ),
            luigid_url=e.get("PIPELINE_LUIGID_URL", f"http://127.0.0.1:{p['luigid']}"),
            elasticsearch_url=e.get("PIPELINE_ELASTICSEARCH_URL", ""),
            elasticsearch_api_key=e.get("PIPELINE_ELASTICSEARCH_API_KEY", ""),
        ),
        crm=CrmSettings(
            url=e.get("PIPELINE_CRM_URL", f"http://127.0.0.1:{p['crm']}"),
            token=e.get("PIPELINE_CRM_TOKEN", ""),
            timeout_s=_float(e, "PIPELINE_CRM_TIMEOUT_S", 30.0),
            max_attempts=_int(e, "PIPELINE_CRM_MAX_ATTEMPTS", 4),
            backoff_s=_float(e, "PIPELINE_CRM_BACKOFF_S", 0.5),
            page_size=_int(e, "PIPELINE_CRM_PAGE_SIZE", 500),
        ),
        telegram=TelegramSettings(
            token=e.get("TELEGRAM_BOT_TOKEN", ""),
            chat_id=e.get("TELEGRAM_CHAT_ID", ""),
            api_url=e.get("TELEGRAM_API_URL", "https://api.telegram.org"),
        ),
    )
