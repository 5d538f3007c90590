"""Spark: the session (one per process), PostgreSQL through JDBC, and the template task.

The Luigi worker process is the Spark driver (client mode), exactly as ``spark-submit`` in
client mode would make it: ``PIPELINE_SPARK_MASTER=local[*]`` (the default) runs the executors
inside it, ``spark://host:7077`` sends them to a standalone cluster (compose: ``spark-master``
and ``spark-worker``). PostgreSQL is read through Debian's JDBC driver
(``libpostgresql-jdbc-java``, ``/usr/share/java/postgresql.jar``), which Spark ships to the
executors with the job.

Why in-process and not ``luigi.contrib.spark.PySparkTask``: that template pickles the task and
runs it under ``spark-submit`` in a new driver (a JVM and a Python) for every task. Measured
here, a driver takes 10-15 s to start while a week's aggregation takes 1-2 s; the week's result
must be written to PostgreSQL in the task's own transaction with its marker (a pickled task
holds no connection); and the tests would start a JVM per test instead of one per session.
``SparkTask`` keeps PySparkTask's shape (a ``main`` hook given the running entry point, the
application's name from the task) with the driver started once per process. A ``spark://``
master is still just a setting: the driver submits to it directly.

Fork-safety: a py4j gateway must not cross a fork, so the session is kept per pid. Luigi's
``--workers N`` (and a task with a ``worker_timeout``) runs tasks in other processes: warm
ones kept for the next task (``pipeline.core.runners``), each starting a driver at its first Spark
task, or with ``PIPELINE_TASKS_PER_PROCESS=1`` a fork per task, each starting its own. Spark's
tasks therefore have no ``worker_timeout`` (with one Luigi worker they run in the worker's own
process: one driver serves every week of a backfill) and bound their time on Spark's side
instead (``job_timeout``: the jobs still running are cancelled). Run Spark work with one Luigi
worker; Spark parallelises inside.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from config.settings import PostgresSettings, SparkSettings, load_settings
from pipeline.core.tasks import PipelineTask
from pipeline.systems import postgres

if TYPE_CHECKING:
    import datetime as dt

    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

# A JDBC read or statement that takes longer than this is stuck, not slow (seconds).
JDBC_TIMEOUT_S = 1800

_sessions: dict[int, SparkSession] = {}


class SparkError(RuntimeError):
    """Spark could not start or run a job; the message says what to install or set."""


def spark_conf(settings: SparkSettings) -> dict[str, str]:
    """The session's configuration, from the settings (the same for every task of a process)."""
    conf = {
        "spark.master": settings.master,
        "spark.jars": str(settings.jdbc_jar),
        "spark.driver.memory": settings.driver_memory,
        "spark.executor.memory": settings.executor_memory,
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        # Dates are calendar dates: no time zone may shift a sale into another day or week.
        "spark.sql.session.timeZone": "UTC",
        # Decimal arithmetic that does not fit its type fails instead of returning NULL.
        "spark.sql.ansi.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        # The UI of an in-process driver would take a port per process; a cluster's is useful.
        "spark.ui.enabled": "false" if settings.master.startswith("local") else "true",
    }
    if settings.driver_host:
        conf["spark.driver.host"] = settings.driver_host
        conf["spark.driver.bindAddress"] = "0.0.0.0"
    elif settings.master.startswith("local"):
        # Everything in one process: listen on loopback only.
        conf["spark.driver.host"] = conf["spark.driver.bindAddress"] = "127.0.0.1"
    conf.update(settings.extra_conf)
    return conf


def session(settings: SparkSettings | None = None) -> SparkSession:
    """This process's SparkSession, started on first use (10-15 s here, then reused)."""
    found = _sessions.get(os.getpid())
    if found is not None and found.sparkContext._jsc is not None:  # not stopped since
        return found
    spark_settings = settings or load_settings().spark
    if not spark_settings.jdbc_jar.is_file():
        raise SparkError(
            f"the PostgreSQL JDBC driver {spark_settings.jdbc_jar} is missing: "
            "make stack-up installs it (apt-get install libpostgresql-jdbc-java)"
        )
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise SparkError("pyspark is not installed: make venv") from exc
    began = time.perf_counter()
    builder = SparkSession.builder.appName("luigi-etl")
    for key, value in spark_conf(spark_settings).items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: Java missing, a bad master URL
        raise SparkError(
            f"Spark did not start (master {spark_settings.master}): {exc}; is Java installed "
            "(make stack-up installs openjdk-17-jre-headless)?"
        ) from exc
    spark.sparkContext.setLogLevel("WARN")
    _sessions[os.getpid()] = spark
    log.info(
        "Spark %s started: application %s on %s in %.1f s",
        spark.version,
        application_id(spark),
        spark_settings.master,
        time.perf_counter() - began,
    )
    return spark


def application_id(spark: SparkSession) -> str:
    """The application's id as the master knows it (``local-…`` in-process, ``app-…`` on a
    cluster): what a run's summary names so its jobs can be found in Spark's UI and logs."""
    return str(spark.sparkContext.applicationId)


def jdbc_url(pg: PostgresSettings) -> str:
    """The JDBC URL of the project's PostgreSQL database (the password travels apart)."""
    return (
        f"jdbc:postgresql://{pg.host}:{pg.port}/{pg.database}"
        f"?connectTimeout={pg.connect_timeout_s}&socketTimeout={JDBC_TIMEOUT_S}"
        "&ApplicationName=luigi-etl-spark"
    )


def postgres_query(name: str, params: dict[str, Any]) -> str:
    """The named PostgreSQL statement with its values bound by psycopg2, as text for Spark's
    JDBC reader (which sends a query without parameters)."""
    with postgres.transaction() as cur:
        return cur.mogrify(postgres.statement(name).as_string(cur), params).decode()


def read_postgres(
    spark: SparkSession,
    name: str,
    params: dict[str, Any],
    partition_column: str,
    lower: dt.date,
    upper: dt.date,
    partitions: int | None = None,
    settings: PostgresSettings | None = None,
) -> DataFrame:
    """The rows of the named PostgreSQL query, read in ``partitions`` parallel slices of
    ``partition_column`` between ``lower`` and ``upper`` (each slice one JDBC query, run by
    an executor): on a cluster the workers read PostgreSQL, not the driver."""
    pg = settings or load_settings().postgres
    slices = partitions or load_settings().spark.jdbc_partitions
    return (
        spark.read.format("jdbc")
        .option("url", jdbc_url(pg))
        .option("driver", "org.postgresql.Driver")
        .option("user", pg.user)
        .option("password", pg.password)  # Spark redacts options named *password*
        .option("dbtable", f"({postgres_query(name, params)}) AS spark_source")
        .option("partitionColumn", partition_column)
        .option("lowerBound", lower.isoformat())
        .option("upperBound", upper.isoformat())
        .option("numPartitions", str(slices))
        .option("fetchsize", "10000")
        .option("queryTimeout", str(JDBC_TIMEOUT_S))
        .load()
    )


@contextlib.contextmanager
def job_timeout(spark: SparkSession, group: str, seconds: float) -> Iterator[None]:
    """Run the block's Spark jobs as job group ``group`` and cancel them if they are still
    running after ``seconds`` (the block then fails with Spark's cancellation): a task's
    timeout on Spark's side, for tasks that keep the driver in the worker's process."""
    context = spark.sparkContext
    context.setJobGroup(group, f"{group} (cancelled after {seconds:g} s)", interruptOnCancel=True)
    timer = threading.Timer(seconds, context.cancelJobGroup, args=(group,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


class SparkTask(PipelineTask):
    """A task whose work is a Spark job: ``main(spark)`` runs with this process's session (the
    ``main`` hook of ``luigi.contrib.spark.PySparkTask``, on a driver started once per process;
    see the module's docstring). The application id is in the task's status message and log;
    its jobs are cancelled after ``PIPELINE_TASK_TIMEOUT_S``."""

    # In the worker's process, where the driver lives: Luigi forks a task with a timeout.
    worker_timeout = None

    def main(self, spark: SparkSession) -> None:
        raise NotImplementedError("a SparkTask defines main(spark)")

    def run(self) -> None:
        spark = session()
        app = application_id(spark)
        self.progress(f"Spark application {app} ({spark.sparkContext.master})")
        log.info("%s: Spark application %s", self.task_id, app)
        with job_timeout(spark, self.task_id, load_settings().flows.task_timeout_s):
            self.main(spark)
