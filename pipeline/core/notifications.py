"""The notification ledger: every message people get (report, alert, repeat, recovery, summary,
warning, failure) goes through PostgreSQL ``ops.notifications``, once per key.

A key is (kind, flow, period, metric, slice): ``("report", "reports", "2024-01-15", "feed", "")``,
``("alert", "alerts", "2024-04-08T14:00", "views", "os=iOS")``, ``("summary", "sales",
"2024-01-15", "", "<inputs digest>")``. ``deliver`` records the message (``pending``) before it is
sent and marks it ``sent`` after, so the record of a message people received can never be lost
after the fact, and a key already sent is never sent again unless a ``--resend`` brings a new
resend token. Redis holds none of it: a flushed Redis changes nothing a person sees.

A run that dies between sending and marking leaves the message ``pending``; what its next run
does is the kind's **delivery policy**:

- at-least-once (alert, repeat, recovery, failure, report): send it again. A duplicate is
  possible after such a crash (rare: the window is one HTTP call); a lost alert, failure or
  morning report is not.
- at-most-once (summary, warning): do not send it again; mark it ``unknown`` and log a warning
  (``--resend`` sends it). A lost informational message costs less than a confusing second one;
  the figures are in the tables and dashboards anyway.

A send the channel refused (Telegram down after its retries) is ``failed`` and is sent by the
next run whatever the policy: nobody received it. One delivery of a key at a time: ``deliver``
holds a PostgreSQL advisory lock on the key, so two overlapping runs never both send it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from config.settings import load_settings
from monitoring.logs import redact
from pipeline.core.faults import crash_point
from pipeline.systems import postgres
from pipeline.systems.postgres import PostgresUnavailable, transaction
from pipeline.systems.telegram import Notifier

log = logging.getLogger(__name__)

AT_LEAST_ONCE = "at-least-once"
AT_MOST_ONCE = "at-most-once"
POLICY = {
    "alert": AT_LEAST_ONCE,
    "repeat": AT_LEAST_ONCE,
    "recovery": AT_LEAST_ONCE,
    "failure": AT_LEAST_ONCE,
    "report": AT_LEAST_ONCE,
    "summary": AT_MOST_ONCE,
    "warning": AT_MOST_ONCE,
}

# What ``deliver`` did.
SENT = "sent"
ALREADY_SENT = "already sent"
NOT_RESENT = "not resent (unknown)"


@dataclass(frozen=True)
class Key:
    """What makes a message one message: sent once per key."""

    kind: str
    flow: str
    period: str
    metric: str = ""
    slice: str = ""

    def __post_init__(self) -> None:
        if self.kind not in POLICY:
            raise ValueError(f"unknown notification kind {self.kind!r} (known: {sorted(POLICY)})")

    @property
    def policy(self) -> str:
        return POLICY[self.kind]

    def params(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "flow": self.flow,
            "period": self.period,
            "metric": self.metric,
            "slice": self.slice,
        }

    def __str__(self) -> str:
        return " | ".join(p for p in (self.kind, self.flow, self.period, self.metric, self.slice))


@dataclass(frozen=True)
class Message:
    """A message's content: the text (a photo's caption when there is a photo), what the outbox
    file is named after (``label``), and machine-readable details kept with the record."""

    text: str
    photo: bytes | None = None
    label: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def ensure_table() -> None:
    """``ops.notifications`` (once per process and database)."""
    postgres.ensure_table_once("ops.notifications", "ops/create_notifications")


def _row(cur: Any, key: Key) -> dict[str, Any] | None:
    postgres.run(cur, "ops/notification_get", key.params())
    found = cur.fetchone()
    if found is None:
        return None
    columns = ("status", "policy", "label", "body", "photo", "details", "attempts", "token")
    return dict(zip(columns, found, strict=True))


def status(key: Key) -> dict[str, Any] | None:
    """The ledger's row of ``key`` (status, attempts, ...), or None if it was never recorded."""
    ensure_table()
    with transaction() as cur:
        return _row(cur, key)


def settled(key: Key, resend_token: str = "") -> bool:
    """Done with ``key``: sent (or, at-most-once, possibly sent and not to be repeated), and
    resent already if a resend token asks for it."""
    row = status(key)
    if row is None or row["status"] not in (SENT, "unknown"):
        return False
    return not resend_token or row["token"] == resend_token


def _record(cur: Any, key: Key, message: Message, resend_token: str) -> None:
    postgres.run(
        cur,
        "ops/notification_record",
        {
            **key.params(),
            "policy": key.policy,
            "label": message.label or key.kind,
            "body": redact(message.text),
            "photo": message.photo,
            "details": json.dumps(message.details, default=str, sort_keys=True),
            "resend_token": resend_token,
        },
    )


def _mark(key: Key, state: str, delivered_to: str = "", error: str = "") -> None:
    with transaction() as cur:
        postgres.run(
            cur,
            "ops/notification_mark",
            {**key.params(), "status": state, "delivered_to": delivered_to, "error": error},
        )


def _decide(cur: Any, key: Key, message: Message, resend_token: str) -> str | None:
    """Record the message and return None to send it now, or say why it is not sent."""
    row = _row(cur, key)
    if row is None or row["status"] == "failed":
        _record(cur, key, message, resend_token)
        return None
    if resend_token and row["token"] != resend_token:
        _record(cur, key, message, resend_token)  # --resend: once per resend
        return None
    if row["status"] == SENT:
        return ALREADY_SENT
    if row["status"] == "unknown":
        return NOT_RESENT
    # 'pending': a run recorded it and died before marking it (sent or not, nobody knows).
    if key.policy == AT_LEAST_ONCE:
        _record(cur, key, message, row["token"])
        return None
    _mark_unknown(cur, key)
    return NOT_RESENT


def _mark_unknown(cur: Any, key: Key) -> None:
    """A message a dead run left pending, at most once: it may have gone out; not sent again."""
    postgres.run(
        cur,
        "ops/notification_mark",
        {**key.params(), "status": "unknown", "delivered_to": "", "error": ""},
    )
    log.warning(
        "notification %s: a run died between recording and confirming it; %s: not sent again"
        " (--resend sends it)",
        key,
        key.policy,
    )


def send_now(message: Message, kind: str, notifier: Notifier | None = None) -> str:
    """Hand one message to the channel (Telegram, or the outbox): one photo with its caption,
    or one text. Returns where it went."""
    notifier = notifier or Notifier()
    label = message.label or kind
    if message.photo is not None:
        return notifier.send_photo(message.photo, message.text, kind=label)
    return notifier.send(message.text, kind=label)


def deliver(
    key: Key,
    message: Message,
    resend_token: str = "",
    notifier: Notifier | None = None,
    before_send: Callable[[], None] | None = None,
) -> str:
    """Send ``message`` once for ``key``: record, send, mark. Returns ``SENT``, ``ALREADY_SENT``
    or ``NOT_RESENT``. ``resend_token`` (a ``--resend`` run's) sends a sent key once more.
    ``before_send`` runs inside the key's lock right after the record commits (the alerts write
    their state in the same transaction instead; see ``deliver_recorded``)."""
    ensure_table()
    wait_s = load_settings().postgres.lock_timeout_s
    with postgres.advisory_lock(f"notification {key}", wait_s, "PIPELINE_PG_LOCK_TIMEOUT_S"):
        with transaction() as cur:
            outcome = _decide(cur, key, message, resend_token)
        if outcome is not None:
            return outcome
        if before_send is not None:
            before_send()
        return _send_recorded(key, message, notifier)


def _send_recorded(key: Key, message: Message, notifier: Notifier | None) -> str:
    crash_point("notify.before_send")
    try:
        where = send_now(message, key.kind, notifier)
    except Exception as exc:
        _mark(key, "failed", error=f"{type(exc).__name__}: {redact(str(exc))[:300]}")
        raise
    crash_point("notify.after_send")
    _mark(key, SENT, delivered_to=where if where == "telegram" else "outbox")
    return SENT


def record_with(cur: Any, key: Key, message: Message) -> bool:
    """Record ``message`` for ``key`` inside the caller's transaction (with the caller's own
    writes: the alerts' state), to be sent by ``send_recorded`` once that commits. False when
    the key is already recorded (sent, or to be settled by ``deliver_unsettled``). Call
    ``ensure_table`` before the transaction opens."""
    if _row(cur, key) is not None:
        return False
    _record(cur, key, message, "")
    return True


def send_recorded(key: Key, message: Message, notifier: Notifier | None = None) -> str:
    """Send a message ``record_with`` recorded (its transaction committed)."""
    wait_s = load_settings().postgres.lock_timeout_s
    with postgres.advisory_lock(f"notification {key}", wait_s, "PIPELINE_PG_LOCK_TIMEOUT_S"):
        row = status(key)
        if row is None or row["status"] != "pending":
            return ALREADY_SENT  # another run sent it meanwhile
        return _send_recorded(key, message, notifier)


def record_covered(keys: list[Key], by: Key) -> int:
    """Record ``keys`` as sent by the message of ``by`` (one message standing for several, e.g.
    a backfill's summary for its weeks): a later run of any of them finds it settled and sends
    nothing unless ``--resend`` asks. Each key under its delivery lock, as ``deliver`` takes it;
    only keys never recorded, or refused by the channel, are covered (one sent, being sent or
    pending is left as it is). Returns how many were recorded."""
    ensure_table()
    wait_s = load_settings().postgres.lock_timeout_s
    recorded = 0
    for key in keys:
        with (
            postgres.advisory_lock(f"notification {key}", wait_s, "PIPELINE_PG_LOCK_TIMEOUT_S"),
            transaction() as cur,
        ):
            row = _row(cur, key)
            if row is not None and row["status"] != "failed":
                continue
            _record(cur, key, Message(f"in the message of {by}", label=key.kind), "")
            postgres.run(
                cur,
                "ops/notification_mark",
                {**key.params(), "status": SENT, "delivered_to": "covered", "error": ""},
            )
            recorded += 1
    return recorded


def settle_pending(key: Key) -> bool:
    """True when ``key``'s message may still be sent: never recorded, or refused by the channel.
    A message left ``pending`` by a run that died is settled here by its policy first: an
    at-most-once one is marked ``unknown`` (it may have gone out) and is not to be sent."""
    ensure_table()
    with transaction() as cur:
        row = _row(cur, key)
        if row is None or row["status"] == "failed":
            return True
        if row["status"] == "pending" and key.policy == AT_MOST_ONCE:
            _mark_unknown(cur, key)
            return False
        return row["status"] == "pending"


def deliver_unsettled(
    flow: str, notifier: Notifier | None = None, kinds: tuple[str, ...] | None = None
) -> list[tuple[Key, str]]:
    """The flow's messages (of ``kinds``, default all) left pending (a run died) or failed (the
    channel refused them), settled per policy from what the ledger kept: at-least-once ones
    sent, at-most-once ones marked unknown, failed ones sent. Returns what was done with each."""
    ensure_table()
    with transaction() as cur:
        postgres.run(cur, "ops/notifications_unsettled", {"flow": flow})
        keys = [Key(*row) for row in cur.fetchall()]
    keys = [k for k in keys if kinds is None or k.kind in kinds]
    done = []
    for key in keys:
        row = status(key)
        if row is None:
            continue
        stored = Message(
            text=row["body"],
            photo=bytes(row["photo"]) if row["photo"] is not None else None,
            label=row["label"],
            details=row["details"] or {},
        )
        done.append((key, deliver(key, stored, row["token"], notifier)))
    return done


def failure_key(flow: str, period: str, family: str, run_id: str) -> Key:
    """A failed task's message key: one message per failed attempt of a run (the slice is
    ``<run id>/<attempt>``), so a retry that fails again says so, and nothing is sent twice."""
    ensure_table()
    with transaction() as cur:
        count = postgres.fetch_value(
            cur,
            "ops/notifications_count",
            {
                "kind": "failure",
                "flow": flow,
                "period": period,
                "metric": family,
                "prefix": f"{run_id}/%",
            },
        )
    return Key("failure", flow, period, family, f"{run_id}/{int(count or 0) + 1}")


def deliver_failure(key_args: tuple[str, str, str, str], message: Message) -> str:
    """A failure message through the ledger, or straight to the channel when the ledger's
    database is the thing that is down (a failure must still be told)."""
    try:
        return deliver(failure_key(*key_args), message)
    except PostgresUnavailable:
        log.warning("notification ledger unreachable: failure message sent without a record")
        send_now(message, "failure")
        return SENT
