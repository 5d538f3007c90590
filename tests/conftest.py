"""Test settings and the real servers.

Tests run against the local stack's servers (``make test`` starts them; this file starts them too
when pytest is run alone) but never touch the demo's data: PostgreSQL database
``pipeline_test``, Redis db 15, ClickHouse databases prefixed ``t_``, and a runtime folder of
their own. A server that does not answer fails the run; nothing is skipped.

``PIPELINE_TEST_NS=N`` (1-9) gives a test session databases of its own (``pipeline_testN``, Redis
db 15-N, ``tN_``), so two sessions can share the servers without touching each other's data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_runtime = Path(tempfile.mkdtemp(prefix="pipeline-tests-"))
_ns = os.environ.get("PIPELINE_TEST_NS", "")
if _ns and not (_ns.isdigit() and 1 <= int(_ns) <= 9):
    raise SystemExit(f"PIPELINE_TEST_NS must be 1-9, got {_ns!r}")

# Set before any project module reads settings. The stack folder stays the demo's: the servers
# are shared, the data is not.
os.environ.update(
    {
        "PIPELINE_RUNTIME_DIR": str(_runtime),
        "PIPELINE_STACK_DIR": str(ROOT / "var" / "stack"),
        "PIPELINE_PG_DATABASE": f"pipeline_test{_ns}",
        "PIPELINE_REDIS_DB": str(15 - int(_ns or 0)),
        "PIPELINE_CH_DB_PREFIX": f"t{_ns}_",
        # Metrics pushed by the tests form a Pushgateway group of their own (one per session
        # namespace: two sessions pushing to one group would overwrite each other's counts).
        "PIPELINE_METRICS_INSTANCE": f"tests{_ns}",
        # Spark on small data: a quick JIT and no code generation (a cold job 6 s, not 25 s).
        "PIPELINE_SPARK_SHUFFLE_PARTITIONS": "2",
        "PIPELINE_SPARK_CONF": ";".join(
            [
                "spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
                "spark.sql.codegen.wholeStage=false",
                "spark.sql.adaptive.enabled=false",
            ]
        ),
        # luigi.cfg's behaviour on a shorter clock (retry delay, keep-alive idle time).
        "LUIGI_CONFIG_PATH": str(ROOT / "tests" / "luigi-test.cfg"),
    }
)

from config.settings import CLICKHOUSE_DATABASES, load_settings  # noqa: E402

# Fixtures shared by the flows' test folders (the inbox feeds the sales and retention flows).
pytest_plugins = ["tests.fixtures.inbox"]

TEST_ONLY = ("PIPELINE_PG_DATABASE", "PIPELINE_REDIS_DB", "PIPELINE_CH_DB_PREFIX")


def _stack_up() -> None:
    """`python -m stack up` exactly as `make stack-up` runs it (the demo's defaults)."""
    env = {k: v for k, v in os.environ.items() if k not in TEST_ONLY}
    env["PIPELINE_RUNTIME_DIR"] = str(ROOT / "var")
    result = subprocess.run(
        [sys.executable, "-m", "stack", "up"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"the local stack did not come up:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def stack() -> Iterator[None]:
    """The local stack's servers, up and healthy, with the test databases created."""
    _stack_up()
    settings = load_settings()
    import psycopg2

    pg = settings.postgres
    assert pg.database != "pipeline", "tests must never use the demo's database"
    # Every session starts from empty test databases, so results never depend on an earlier run.
    admin = psycopg2.connect(**{**pg.connect_kwargs(), "dbname": "pipeline"})
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {pg.database} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {pg.database}")
    admin.close()

    from pipeline.bootstrap import create_clickhouse_databases, create_postgres_schemas
    from pipeline.systems.clickhouse import ClickHouse

    assert settings.clickhouse.database_prefix, "tests must never use the demo's databases"
    for logical in CLICKHOUSE_DATABASES:
        ClickHouse().execute("stack/drop_database", database=settings.clickhouse.database(logical))
    create_postgres_schemas(settings)
    create_clickhouse_databases(settings)
    yield


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh runtime folder (inbox, flags, archive, ...) for one test."""
    monkeypatch.setenv("PIPELINE_RUNTIME_DIR", str(tmp_path))
    load_settings().paths.ensure()
    return tmp_path
