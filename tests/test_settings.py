import ast
import os
import re
from pathlib import Path

import pytest

from config.settings import (
    DEFAULT_PORTS,
    PREFIXES,
    PROJECT_ROOT,
    SECRET_NAME,
    SettingsError,
    load_settings,
    read_env_file,
)

ROOT = PROJECT_ROOT


def test_defaults_point_at_the_local_stack(tmp_path: Path) -> None:
    s = load_settings({"PIPELINE_ENV_FILE": str(tmp_path / "none")})
    assert (s.postgres.host, s.postgres.port, s.postgres.database) == (
        "127.0.0.1",
        15432,
        "pipeline",
    )
    assert s.redis.port == DEFAULT_PORTS["redis"] == 16379
    assert (s.clickhouse.port, s.clickhouse.http_port) == (19000, 18123)
    assert s.monitoring.prometheus_url.endswith(":19090")
    assert s.monitoring.pushgateway_url.endswith(":19091")
    assert s.monitoring.luigid_url.endswith(":18082")
    assert s.clickhouse.database("sales") == "sales"
    assert not s.telegram.configured


def test_environment_overrides_env_file_which_overrides_defaults(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nPIPELINE_PG_PORT=6000\nexport PIPELINE_PG_PASSWORD='from-file'\n"
        "PIPELINE_REDIS_DB=3\n"
    )
    s = load_settings({"PIPELINE_ENV_FILE": str(env_file), "PIPELINE_PG_PORT": "7000"})
    assert s.postgres.port == 7000
    assert s.postgres.password == "from-file"
    assert s.redis.db == 3


def test_runtime_folder_is_one_configurable_directory(tmp_path: Path) -> None:
    s = load_settings({"PIPELINE_ENV_FILE": "/nonexistent", "PIPELINE_RUNTIME_DIR": str(tmp_path)})
    s.paths.ensure()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        ["inbox", "work", "flags", "archive", "quarantine", "reports", "outbox", "logs"]
    )
    assert s.paths.stack == tmp_path / "stack"


def test_secrets_never_appear_in_repr() -> None:
    s = load_settings(
        {
            "PIPELINE_ENV_FILE": "/nonexistent",
            "PIPELINE_PG_PASSWORD": "pg-s3cret",
            "PIPELINE_CH_PASSWORD": "ch-s3cret",
            "PIPELINE_REDIS_PASSWORD": "redis-s3cret",
            "TELEGRAM_BOT_TOKEN": "123:tg-s3cret",
            "TELEGRAM_CHAT_ID": "42",
        }
    )
    text = repr(s) + str(s)
    for secret in ("pg-s3cret", "ch-s3cret", "redis-s3cret", "tg-s3cret"):
        assert secret not in text
    assert s.telegram.configured


def test_bad_values_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="PIPELINE_PG_PORT"):
        load_settings({"PIPELINE_ENV_FILE": "/nonexistent", "PIPELINE_PG_PORT": "fifteen"})
    with pytest.raises(SettingsError, match="PIPELINE_CH_DB_PREFIX"):
        load_settings({"PIPELINE_ENV_FILE": "/nonexistent", "PIPELINE_CH_DB_PREFIX": "x; DROP"})


def test_env_file_syntax_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / ".env"
    bad.write_text("GOOD=1\nthis is not a setting\n")
    with pytest.raises(SettingsError, match=r"\.env:2"):
        read_env_file(bad)


def test_committed_example_has_no_real_secrets() -> None:
    """Its only assignments are empty secrets, which `make` generates (stack.envfile)."""
    example = Path(__file__).resolve().parent.parent / ".env.example"
    values = read_env_file(example)
    assert "PIPELINE_PG_PASSWORD" in values
    assert all(SECRET_NAME.search(name) and value == "" for name, value in values.items()), values


def test_make_writes_env_with_generated_secrets_once(tmp_path: Path) -> None:
    from stack.envfile import add_missing, write

    target = tmp_path / ".env"
    assert write(target, ROOT / ".env.example")
    values = read_env_file(target)
    secrets = {k: v for k, v in values.items() if v}
    assert secrets.keys() == read_env_file(ROOT / ".env.example").keys()
    assert all(len(v) >= 32 for v in secrets.values()) and len(set(secrets.values())) == len(
        secrets
    )
    assert target.stat().st_mode & 0o777 == 0o600
    assert (
        load_settings({"PIPELINE_ENV_FILE": str(target)}).postgres.password
        == secrets["PIPELINE_PG_PASSWORD"]
    )
    assert not write(target, ROOT / ".env.example")  # an existing .env is never replaced
    assert read_env_file(target) == values
    older = tmp_path / "older.env"
    older.write_text("PIPELINE_PG_PASSWORD=kept\n")
    added = add_missing(older, ROOT / ".env.example")
    assert "PIPELINE_PG_PASSWORD" not in added and "CLICKHOUSE_PASSWORD" in added
    assert read_env_file(older)["PIPELINE_PG_PASSWORD"] == "kept"
    assert read_env_file(older).keys() == values.keys()
    assert add_missing(older, ROOT / ".env.example") == []


def test_flow_knobs_have_their_documented_defaults_and_overrides(tmp_path: Path) -> None:
    flows = load_settings({"PIPELINE_ENV_FILE": str(tmp_path / "none")}).flows
    assert (flows.inbox_batch_size, flows.inbox_min_file_age_s, flows.inbox_max_attempts) == (
        50,
        10.0,
        5,
    )
    assert (flows.retention_hot_days, flows.retention_archive_days) == (400, 365)
    assert flows.daily_retries == 2
    assert flows.alerts_config == ROOT / "config" / "alerts.toml"
    changed = load_settings(
        {
            "PIPELINE_ENV_FILE": "/nonexistent",
            "PIPELINE_INBOX_BATCH_SIZE": "7",
            "PIPELINE_RETENTION_HOT_DAYS": "30",
            "PIPELINE_ALERTS_CONFIG": str(tmp_path / "alerts.toml"),
        }
    ).flows
    assert (changed.inbox_batch_size, changed.retention_hot_days) == (7, 30)
    assert changed.alerts_config == tmp_path / "alerts.toml"
    with pytest.raises(SettingsError, match="PIPELINE_INBOX_BATCH_SIZE must be at least 1"):
        load_settings({"PIPELINE_ENV_FILE": "/nonexistent", "PIPELINE_INBOX_BATCH_SIZE": "0"})


def test_timeouts_and_the_metrics_group_are_settings() -> None:
    s = load_settings({"PIPELINE_ENV_FILE": "/nonexistent", "PIPELINE_ENV": "staging"})
    assert s.postgres.connect_kwargs()["connect_timeout"] == 10
    assert (s.clickhouse.timeout_s, s.redis.timeout_s, s.telegram.timeout_s) == (300.0, 2.0, 30.0)
    assert s.monitoring.metrics_instance == "staging"  # one Pushgateway group per environment
    s = load_settings({"PIPELINE_ENV_FILE": "/nonexistent", "PIPELINE_METRICS_INSTANCE": "tests"})
    assert s.monitoring.metrics_instance == "tests"


def test_settings_are_read_once_per_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PIPELINE_CRM_PAGE_SIZE=3\n")
    monkeypatch.delenv("PIPELINE_CRM_PAGE_SIZE", raising=False)
    monkeypatch.setenv("PIPELINE_ENV_FILE", str(env_file))
    first = load_settings()
    assert load_settings() is first  # the same environment: not read again
    monkeypatch.setenv("PIPELINE_RUNTIME_DIR", str(tmp_path))
    moved = load_settings()
    assert moved is not first and moved.paths.runtime == tmp_path
    assert moved.crm.page_size == 3
    env_file.write_text("PIPELINE_CRM_PAGE_SIZE=4\n# a longer file\n")
    assert load_settings().crm.page_size == 4  # a changed .env file is read again
    monkeypatch.setenv("UNRELATED_VARIABLE", "x")
    assert load_settings() is load_settings()


def _variables_read_by_settings() -> set[str]:
    """Every variable name ``config/settings.py`` passes to ``get``, ``_int``, ``_float`` or
    ``_identifier``."""
    tree = ast.parse((ROOT / "config" / "settings.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in {"get", "_int", "_float", "_identifier"}:
            names |= {
                a.value
                for a in node.args
                if isinstance(a, ast.Constant)
                and isinstance(a.value, str)
                and re.fullmatch(r"[A-Z][A-Z0-9_]+", a.value)
            }
    return names


def test_env_example_lists_exactly_the_variables_the_settings_read() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"(?m)^#?\s*([A-Z][A-Z0-9_]*)=", example))
    read = _variables_read_by_settings()
    assert len(read) > 40  # the parser found them
    assert all(name.startswith(PREFIXES) for name in read)
    ours = {name for name in listed if name.startswith(PREFIXES)}
    assert ours == read, f"missing: {sorted(read - ours)}; not read: {sorted(ours - read)}"
    # The rest is for the compose file: variables it interpolates, and compose's own.
    compose = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    assert listed - ours <= compose | {"COMPOSE_PROJECT_NAME"}


def test_no_module_reads_the_environment_but_the_settings() -> None:
    # The cron runner hands its environment to the jobs it starts; it reads no setting from it.
    # The crash points read a variable only the fault-injection tests set in a child process.
    allowed = {ROOT / "pipeline" / "cron.py", ROOT / "pipeline" / "core" / "faults.py"}
    readers = [
        str(path.relative_to(ROOT))
        for folder in ("pipeline", "flags", "monitoring", "demo")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path not in allowed and re.search(r"os\.environ|os\.getenv|getenv\(", path.read_text())
    ]
    assert readers == []


def test_the_environment_is_read_as_it_is_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the process environment's raw bytes (fast: asked for over a thousand times
    in a backfill): the same variables as walking os.environ, non-ASCII values included, and a
    change is seen by the next call."""
    from config import settings as module

    monkeypatch.setenv("PIPELINE_TEST_ONLY_VALUE", "é-1")
    assert module._own_variables() == module._own_of(os.environ)
    assert ("PIPELINE_TEST_ONLY_VALUE", "é-1") in module._own_variables()
    monkeypatch.setenv("PIPELINE_METRICS_PUSH_EVERY_S", "7")
    assert load_settings().monitoring.metrics_push_every_s == 7
    monkeypatch.delenv("PIPELINE_METRICS_PUSH_EVERY_S")
    assert load_settings().monitoring.metrics_push_every_s == 5
