"""The notification ledger on the real PostgreSQL: a key is sent once, a resend once more; a
process SIGKILLed between recording and sending, or between sending and marking, is followed by
a run that sends exactly what the kind's policy allows; a refused send is sent by the next run;
texts are redacted like the logs, failure messages short, outbox files the owner's only."""

from __future__ import annotations

from pathlib import Path

import luigi
import pytest

from pipeline.core import notifications
from pipeline.core.notifications import (
    ALREADY_SENT,
    AT_LEAST_ONCE,
    AT_MOST_ONCE,
    NOT_RESENT,
    POLICY,
    SENT,
    Key,
    Message,
)
from pipeline.core.tasks import failure_text
from pipeline.systems.telegram import NotifyError
from tests.fixtures.periods import forget, killed_at, ledger, outbox, outbox_modes

pytestmark = pytest.mark.integration

FLOW = "ledgertest"


@pytest.fixture
def fresh(stack: None, runtime: Path) -> None:
    forget(FLOW)


def key(kind: str, period: str = "2024-01-15") -> Key:
    return Key(kind, FLOW, period, "views", "os=iOS")


def test_a_key_is_sent_once_and_a_resend_once_more(fresh: None) -> None:
    message = Message("📰 report for 2024-01-15", photo=b"\x89PNG fake", label="report-feed")
    assert notifications.deliver(key("report"), message) == SENT
    assert notifications.deliver(key("report"), message) == ALREADY_SENT
    assert notifications.settled(key("report"))
    assert len(outbox()) == 1 and outbox()[0]["photo"]
    assert notifications.deliver(key("report"), message, resend_token="r1") == SENT
    assert notifications.deliver(key("report"), message, resend_token="r1") == ALREADY_SENT
    assert notifications.settled(key("report"), "r1") and not notifications.settled(
        key("report"), "r2"
    )
    assert len(outbox()) == 2
    assert [(m["status"], m["attempts"]) for m in ledger(FLOW)] == [("sent", 2)]


def test_every_kind_has_a_documented_policy() -> None:
    assert {POLICY[k] for k in ("alert", "repeat", "recovery", "failure", "report")} == {
        AT_LEAST_ONCE
    }
    assert {POLICY[k] for k in ("summary", "warning")} == {AT_MOST_ONCE}
    with pytest.raises(ValueError, match="unknown notification kind"):
        Key("gossip", FLOW, "2024-01-15")


# kind, crash point, messages after the crash, messages after the rerun, final status
CRASHES = [
    ("alert", "notify.before_send", 0, 1, "sent"),
    ("alert", "notify.after_send", 1, 2, "sent"),  # at-least-once: the documented duplicate
    ("report", "notify.after_send", 1, 2, "sent"),
    ("summary", "notify.before_send", 0, 0, "unknown"),  # at-most-once: the documented loss
    ("summary", "notify.after_send", 1, 1, "unknown"),
]


@pytest.mark.parametrize(("kind", "point", "after_crash", "after_rerun", "status"), CRASHES)
def test_a_kill_between_record_send_and_mark_then_a_rerun_follows_the_policy(
    fresh: None, kind: str, point: str, after_crash: int, after_rerun: int, status: str
) -> None:
    message = Message(f"{kind} message", label=kind)

    def send() -> None:
        notifications.deliver(key(kind), message)

    assert killed_at(point, send) == -9
    assert len(outbox()) == after_crash
    assert [m["status"] for m in ledger(FLOW)] == ["pending"]
    again = notifications.deliver(key(kind), message)
    assert again == (SENT if status == "sent" else NOT_RESENT)
    assert len(outbox()) == after_rerun
    assert [m["status"] for m in ledger(FLOW)] == [status]
    # Nothing more, however often it runs; --resend sends it once more.
    assert notifications.deliver(key(kind), message) in (ALREADY_SENT, NOT_RESENT)
    assert len(outbox()) == after_rerun
    assert notifications.deliver(key(kind), message, resend_token="again") == SENT
    assert len(outbox()) == after_rerun + 1


def test_pending_messages_of_a_killed_run_are_settled_from_the_ledger(fresh: None) -> None:
    alert = Message("🚨 views dropped", photo=b"\x89PNG chart", label="alert-alert")
    summary = Message("✅ summary", label="summary")

    def both() -> None:
        notifications.deliver(key("summary"), summary)
        notifications.deliver(key("alert"), alert)

    assert killed_at("notify.before_send@2", both) == -9
    assert len(outbox()) == 1  # the summary went, the alert was recorded and not sent
    done = dict(notifications.deliver_unsettled(FLOW))
    assert done == {key("alert"): SENT}
    sent = outbox()
    assert len(sent) == 2 and sent[-1]["text"] == "🚨 views dropped"
    assert Path(sent[-1]["photo"]).read_bytes() == b"\x89PNG chart"  # kept until it was sent


def test_a_refused_send_is_failed_and_sent_by_the_next_run(
    fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.systems.test_telegram import BotApi

    api = BotApi([(400, {"ok": False, "description": "Bad Request: chat not found"})])
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:SECRET-token")
    monkeypatch.setenv("TELEGRAM_CHAT_ID", "-100777")
    monkeypatch.setenv("TELEGRAM_API_URL", api.url)
    with pytest.raises(NotifyError, match="chat not found"):
        notifications.deliver(key("summary"), Message("✅ summary", label="summary"))
    row = ledger(FLOW)[0]
    assert row["status"] == "failed"
    api.script = [(200, {"ok": True, "result": {"message_id": 1}})]
    assert notifications.deliver(key("summary"), Message("✅ summary", label="summary")) == SENT
    assert ledger(FLOW)[0]["status"] == "sent"
    api.server.shutdown()


def test_texts_are_redacted_like_the_logs_and_outbox_files_are_the_owners_only(
    fresh: None,
) -> None:
    text = "failed for anna.smith@example.org with password=hunter2 Bearer abc.def.ghi"
    notifications.deliver(key("warning"), Message(text, label="warning"))
    said = outbox()[0]["text"]
    assert "anna.smith@example.org" not in said and "hunter2" not in said
    assert "abc.def.ghi" not in said and "[REDACTED]" in said
    assert "anna.smith" not in ledger(FLOW)[0]["body"]
    assert outbox_modes() == {0o600}


class Exploding(luigi.Task):
    task_namespace = "ledgertest"
    day = luigi.DateParameter()


def test_a_failure_message_is_the_type_a_short_line_and_where_to_look() -> None:
    import datetime as dt

    raw = "connection to anna@example.org refused; " + "x" * 1500 + "\nTraceback: secret=abc"
    text = failure_text(Exploding(day=dt.date(2024, 1, 15)), "ConnectionError", raw)
    assert text.startswith("❌ ledgertest: Exploding failed (day=2024-01-15)")
    assert "ConnectionError: connection to [REDACTED] refused; xxx" in text
    assert "Traceback" not in text and "secret" not in text
    assert "Where to look: the logs of run" in text and "labels.run_id" in text
    assert len(text) < 600


def test_one_message_covers_several_keys_without_repeating_a_pending_one(fresh: None) -> None:
    """A message standing for several keys (a backfill's summary for its weeks) covers the keys
    never recorded or refused; one left pending by a dead run may have gone out: at most once,
    it is marked unknown and neither reported again nor covered."""
    from pipeline.systems.postgres import transaction

    pending, fresh_key, sent = key("summary", "w1"), key("summary", "w2"), key("summary", "w3")
    with transaction() as cur:
        notifications._record(cur, pending, Message("week 1"), "")
    assert notifications.deliver(sent, Message("week 3")) == SENT
    assert notifications.settle_pending(fresh_key) is True
    assert notifications.settle_pending(pending) is False
    assert notifications.status(pending)["status"] == "unknown"
    by = key("summary", "w1..w3")
    assert notifications.record_covered([pending, fresh_key, sent], by=by) == 1
    assert notifications.status(fresh_key)["status"] == SENT
    assert notifications.status(fresh_key)["body"] == f"in the message of {by}"
    assert notifications.status(sent)["body"] == "week 3"
    assert notifications.settled(fresh_key) and notifications.settled(pending)
    assert len(outbox()) == 1  # only week 3's own message was ever sent
