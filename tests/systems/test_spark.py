"""Spark's settings and session configuration (no server, no JVM): in-process by default, a
standalone cluster from a setting, the JDBC driver from Debian, installed by the stack."""

from __future__ import annotations

from pathlib import Path

import pytest

import pipeline.systems.spark as spark_module
import stack.__main__ as stack_cli
from config.settings import PostgresSettings, SettingsError, SparkSettings, load_settings
from pipeline.systems.spark import SparkError, jdbc_url, session, spark_conf

NO_FILE = {"PIPELINE_ENV_FILE": "/nonexistent"}


def test_spark_runs_in_process_unless_a_cluster_is_set() -> None:
    local = load_settings(NO_FILE).spark
    assert local.master == "local[*]"
    assert local.jdbc_jar == Path("/usr/share/java/postgresql.jar")
    conf = spark_conf(local)
    assert conf["spark.master"] == "local[*]"
    assert conf["spark.jars"] == "/usr/share/java/postgresql.jar"
    assert conf["spark.driver.host"] == conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.sql.session.timeZone"] == "UTC"

    cluster = load_settings(
        {
            **NO_FILE,
            "PIPELINE_SPARK_MASTER": "spark://spark-master:7077",
            "PIPELINE_SPARK_DRIVER_HOST": "runner",
            "PIPELINE_SPARK_CONF": "spark.executor.cores=2; spark.driver.extraJavaOptions=-Xss4m",
        }
    ).spark
    conf = spark_conf(cluster)
    assert conf["spark.master"] == "spark://spark-master:7077"
    assert (conf["spark.driver.host"], conf["spark.driver.bindAddress"]) == ("runner", "0.0.0.0")
    assert conf["spark.executor.cores"] == "2"
    assert conf["spark.driver.extraJavaOptions"] == "-Xss4m"
    assert conf["spark.ui.enabled"] == "true"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PIPELINE_SPARK_MASTER", "yarn"),
        ("PIPELINE_SPARK_MASTER", "spark://"),
        ("PIPELINE_SPARK_CONF", "executor.cores=2"),
        ("PIPELINE_SALES_ENGINE", "pandas"),
    ],
)
def test_bad_spark_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({**NO_FILE, name: value})


def test_the_engine_is_a_setting() -> None:
    assert load_settings(NO_FILE).flows.sales_engine == "postgres"
    assert (
        load_settings({**NO_FILE, "PIPELINE_SALES_ENGINE": "spark"}).flows.sales_engine == "spark"
    )


def test_the_jdbc_url_carries_timeouts_and_no_password() -> None:
    pg = PostgresSettings("db", 5432, "pipeline", "pipeline", "s3cret-pw")
    url = jdbc_url(pg)
    assert url.startswith("jdbc:postgresql://db:5432/pipeline?")
    assert "connectTimeout=10" in url and "socketTimeout=" in url
    assert "s3cret-pw" not in url


def test_a_missing_jdbc_driver_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spark_module, "_sessions", {})
    with pytest.raises(SparkError, match="libpostgresql-jdbc-java"):
        session(SparkSettings(jdbc_jar=Path("/nonexistent/postgresql.jar")))


def test_the_stack_installs_java_and_the_jdbc_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack_cli.shutil, "which", lambda tool: None if tool == "java" else "/x")
    monkeypatch.setattr(
        stack_cli, "FILES", {Path("/nonexistent/postgresql.jar"): "libpostgresql-jdbc-java"}
    )
    missing = stack_cli.missing_packages([])
    assert "openjdk-17-jre-headless" in missing and "libpostgresql-jdbc-java" in missing
