from pathlib import Path

import pytest

from config.settings import DEFAULT_PORTS, SettingsError, load_settings, read_env_file


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
    example = Path(__file__).resolve().parent.parent / ".env.example"
    values = read_env_file(example)
    assert values.keys() <= {"PIPELINE_PG_PASSWORD"}
    assert values["PIPELINE_PG_PASSWORD"] == "local-stack-only"
