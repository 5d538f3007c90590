"""ClickHouse I/O: a thin HTTP client that only sends named statements (``clickhouse_sql``).

HTTP because it is the fastest bulk path measured here (a POST of CSV bytes) and speaks the same
on 18.16 and 24+. Results come back as ``JSONCompact`` with 64-bit integers unquoted.

Every request has a timeout (``PIPELINE_CH_TIMEOUT_S``). ClickHouse may fail a query after it
has started streaming the answer: the status is already 200 and the error text ("Code: 241.
DB::Exception: ...") ends the body. Such an answer is an error here, never data.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import luigi
import pandas as pd
import requests

from config.settings import CLICKHOUSE_DATABASES, ClickHouseSettings, load_settings
from pipeline.core.errors import ServerUnavailable
from pipeline.core.faults import crash_point
from pipeline.core.sql import render
from pipeline.systems import postgres

# An exception ClickHouse wrote into a body it had begun as a 200: "Code: 241. DB::Exception: …"
# (24+), "Code: 241, e.displayText() = DB::Exception: …" (18.16). It ends the body, so only the
# tail is searched.
_EXCEPTION_IN_BODY = re.compile(r"Code: \d+[.,] (?:e\.displayText\(\) = )?DB::Exception")
_TAIL = 8192


# Statements ``ClickHouse.ensure_once`` ran: (pid, server, databases..., statement).
_made: set[tuple[Any, ...]] = set()


class ClickHouseError(RuntimeError):
    """ClickHouse refused a statement; the message names the statement and the server's reason."""


class ClickHouseUnavailable(ClickHouseError, ServerUnavailable):
    """ClickHouse does not answer (refused, reset, timed out): no file's or period's fault."""


class ClickHouse:
    def __init__(
        self, settings: ClickHouseSettings | None = None, timeout: float | None = None
    ) -> None:
        self.settings = settings or load_settings().clickhouse
        self.timeout = self.settings.timeout_s if timeout is None else timeout
        self.session = requests.Session()
        self.session.headers["X-ClickHouse-User"] = self.settings.user
        if self.settings.password:
            self.session.headers["X-ClickHouse-Key"] = self.settings.password

    def params(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Statement parameters: every logical database's real name, then the caller's."""
        merged: dict[str, Any] = {db: self.settings.database(db) for db in CLICKHOUSE_DATABASES}
        merged.update(extra or {})
        return merged

    def _post(self, name: str, sql: str, body: bytes | Iterable[bytes] | None = None) -> str:
        url_params: dict[str, str] = {"output_format_json_quote_64bit_integers": "0"}
        if body is None:
            data: bytes | Iterable[bytes] = sql.encode()
        else:
            # The statement travels in the URL, the rows in the body (streamed if an iterator).
            url_params["query"] = sql
            data = body
        try:
            response = self.session.post(
                self.settings.http_url, params=url_params, data=data, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise ClickHouseUnavailable(
                f"{name}: ClickHouse at {self.settings.http_url} unreachable: {exc}"
            ) from exc
        if response.status_code != 200:
            reason = response.text.strip().splitlines()[0] if response.text.strip() else ""
            raise ClickHouseError(f"{name}: HTTP {response.status_code}: {reason[:500]}")
        return checked_body(
            name, response.text, response.headers.get("X-ClickHouse-Exception-Code")
        )

    def execute(self, name: str, **params: Any) -> str:
        """Run a statement that returns nothing of interest (DDL, ALTER, INSERT ... SELECT)."""
        return self._post(name, render(name, self.params(params)))

    def query(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run a SELECT; rows as dicts keyed by column name."""
        text = self._post(name, render(name, self.params(params)) + "\nFORMAT JSONCompact")
        payload = json.loads(text)
        columns = [c["name"] for c in payload["meta"]]
        return [dict(zip(columns, row, strict=True)) for row in payload["data"]]

    def frame(self, name: str, **params: Any) -> pd.DataFrame:
        """Run a SELECT; the rows as a DataFrame (CSV with a header: fast for many rows; strings
        stay strings, an empty string stays empty)."""
        text = self._post(name, render(name, self.params(params)) + "\nFORMAT CSVWithNames")
        return pd.read_csv(io.StringIO(text), keep_default_na=False)

    def insert(self, name: str, body: bytes | Iterable[bytes], **params: Any) -> None:
        """Run an ``INSERT ... FORMAT <fmt>`` statement with ``body`` as its data."""
        self._post(name, render(name, self.params(params)), body)

    def ensure(self, *names: str) -> None:
        """Run idempotent DDL statements (``CREATE ... IF NOT EXISTS``) in order."""
        for name in names:
            self.execute(name)

    def ensure_once(self, name: str) -> None:
        """Run an idempotent ``CREATE ... IF NOT EXISTS`` once per process and server: a warm
        worker process runs many tasks (``pipeline.core.runners``), and each statement is a
        round trip of ~5 ms on 18.16."""
        key = (os.getpid(), self.settings.http_url, *self.params().values(), name)
        if key not in _made:
            self.execute(name)
            _made.add(key)

    def ping(self) -> bool:
        try:
            return self.session.get(self.settings.http_url + "ping", timeout=5).text == "Ok.\n"
        except requests.RequestException:
            return False


def checked_body(name: str, text: str, exception_code: str | None = None) -> str:
    """The body of a 200 answer, or ``ClickHouseError`` when the server put an exception in it
    (it failed the query after the status line had gone out)."""
    tail = text[-_TAIL:]
    found = _EXCEPTION_IN_BODY.search(tail)
    if found is None and not exception_code:
        return text
    reason = tail[found.start() :] if found else f"exception code {exception_code}"
    first = reason.strip().splitlines()[0] if reason.strip() else reason
    raise ClickHouseError(
        f"{name}: ClickHouse failed the query after its answer had begun (HTTP 200): {first[:500]}"
    )


def csv_chunks(rows: Iterable[Iterable[Any]], chunk_rows: int = 100_000) -> Iterator[bytes]:
    """CSV bytes for an INSERT body, in bounded chunks (None becomes \\N)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for count, row in enumerate(rows, start=1):
        writer.writerow(["\\N" if v is None else v for v in row])
        if count % chunk_rows == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def replace_partition(
    ch: ClickHouse,
    logical_database: str,
    table: str,
    partition: int,
    rows: Iterable[bytes],
    keep: tuple[str, dt.date] | None = None,
    expected_rows: int | None = None,
) -> None:
    """Replace one partition of ``table`` with ``rows`` (CSV in the table's column order),
    atomically for readers: the one way every flow replaces a period in ClickHouse.

    The partition is rebuilt in a stage table and swapped in with ``REPLACE PARTITION``: readers
    see the old period or the new one, never an empty one; a rerun gives the same table; a crash
    leaves the table as it was (the next run drops the stage first). ``keep = (date_column, day)``
    first copies the partition's other days as they are (a day replaced inside a monthly
    partition). ``expected_rows``: the rows sent, checked in the stage before the swap (a
    short insert never replaces a period).

    The whole replace holds the period lock (a PostgreSQL advisory lock named after the table
    and partition): two runs replacing the same partition, two days of one month included, take
    turns instead of losing each other's rows, with or without luigid."""
    database = ch.settings.database(logical_database)
    names = {"database": database, "table": table, "stage": f"{table}_stage_{partition}"}
    wait_s = load_settings().flows.period_lock_timeout_s
    with postgres.advisory_lock(f"clickhouse {database}.{table} partition {partition}", wait_s):
        ch.execute("replace/drop_stage", **names)
        ch.execute("replace/create_stage", **names)
        if keep is not None:
            date_column, day = keep
            ch.execute(
                "replace/keep_month", **names, date_column=date_column, month=partition, day=day
            )
        ch.insert("replace/insert_stage", rows, **names)
        if expected_rows is not None:
            if keep is None:
                staged = ch.query("replace/count_stage", **names)
            else:
                staged = ch.query(
                    "replace/count_stage_day", **names, date_column=keep[0], day=keep[1]
                )
            got = int(staged[0]["rows"]) if staged else 0
            if got != expected_rows:
                raise ClickHouseError(
                    f"{database}.{table} partition {partition}: the stage holds {got} row(s) of"
                    f" the period, {expected_rows} were sent; the table is left as it was"
                )
        crash_point("replace.before_swap")
        ch.execute("replace/replace_partition", **names, partition=partition)
        crash_point("replace.after_swap")
        ch.execute("replace/drop_stage", **names)


def replace_day(
    ch: ClickHouse,
    logical_database: str,
    table: str,
    date_column: str,
    day: dt.date,
    rows: Iterable[bytes],
    expected_rows: int | None = None,
) -> None:
    """Replace one day of a table partitioned by ``toYYYYMM(date_column)``: its month is rebuilt
    (the other days as they are, then ``rows``) and swapped in (``replace_partition``)."""
    month = int(f"{day:%Y%m}")
    replace_partition(
        ch,
        logical_database,
        table,
        month,
        rows,
        keep=(date_column, day),
        expected_rows=expected_rows,
    )


class ClickHouseMarkerTarget(luigi.Target):
    """Exists once a load ``update_id`` into ``target_table`` has been recorded in ClickHouse.

    Written after the data, so a crash before it means the load is redone; loads are written to
    be replayable (the partition is dropped first), so redoing gives the same table.
    """

    def __init__(self, target_table: str, update_id: str, client: ClickHouse | None = None):
        self.target_table = target_table
        self.update_id = update_id
        self._client = client

    @property
    def client(self) -> ClickHouse:
        if self._client is None:
            self._client = ClickHouse()
        return self._client

    # Databases whose marker table this process has created: one DDL per process, not per check.
    _ready: set[str] = set()

    def _marker_call(self, call: Callable[[], Any]) -> Any:
        database = self.client.settings.database("ops")
        if database not in self._ready:
            self.client.execute("ops/create_load_markers")
            self._ready.add(database)
        try:
            return call()
        except ClickHouseError as exc:
            if "doesn't exist" not in str(exc):
                raise
            self.client.execute("ops/create_load_markers")  # dropped since (tests, a reset)
            return call()

    def exists(self) -> bool:
        rows = self._marker_call(
            lambda: self.client.query(
                "ops/load_marker_exists", target_table=self.target_table, update_id=self.update_id
            )
        )
        return bool(rows and rows[0]["present"])

    def touch(self, rows_loaded: int) -> None:
        self._marker_call(
            lambda: self.client.execute(
                "ops/insert_load_marker",
                target_table=self.target_table,
                update_id=self.update_id,
                rows_loaded=rows_loaded,
            )
        )
