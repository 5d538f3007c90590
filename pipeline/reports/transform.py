"""The morning reports' text and pictures: pure, frames in, text/PNG out.

The feed report: DAU, views, likes and CTR for the day, each with its change against the day
before and the same day a week before, and a picture of the last 7 days of each metric. The app
report: users of the feed only, the messenger only and both; messages per sending user; new users
by source; with the same 7-day picture.
"""

from __future__ import annotations

import datetime as dt
import io

import matplotlib

matplotlib.use("Agg")  # no display: render to PNG bytes
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

FEED_METRICS = (("dau", "DAU"), ("views", "Views"), ("likes", "Likes"), ("ctr", "CTR"))
APP_METRICS = (
    ("feed_only", "Feed only"),
    ("messenger_only", "Messenger only"),
    ("both", "Feed and messenger"),
    ("messages_per_user", "Messages per sender"),
    ("new_ads", "New users (ads)"),
    ("new_organic", "New users (organic)"),
)


def change(now: float | None, then: float | None) -> str:
    if now is None or then is None or pd.isna(now) or pd.isna(then) or then == 0:
        return "n/a"
    return f"{(now - then) / then:+.1%}"


def _value(value: float, metric: str) -> str:
    if metric in ("ctr",):
        return f"{value:.3f}"
    if metric == "messages_per_user":
        return f"{value:.2f}"
    return f"{int(value):,}"


def _lines(frame: pd.DataFrame, day: dt.date, metrics: tuple[tuple[str, str], ...]) -> list[str]:
    by_day = frame.set_index("day")
    lines = []
    for metric, label in metrics:
        now = by_day[metric].get(day)
        if now is None or pd.isna(now):
            lines.append(f"{label}: no data")
            continue
        before = by_day[metric].get(day - dt.timedelta(days=1))
        week = by_day[metric].get(day - dt.timedelta(days=7))
        lines.append(
            f"{label}: {_value(now, metric)} ({change(now, before)} vs day before, "
            f"{change(now, week)} vs week before)"
        )
    return lines


def feed_frame(daily: pd.DataFrame) -> pd.DataFrame:
    """Per day: dau, views, likes, ctr (days as dates)."""
    frame = daily.copy()
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    frame["ctr"] = (frame["likes"] / frame["views"].where(frame["views"] > 0)).astype(float)
    return frame


def app_frame(audience: pd.DataFrame, new_users: pd.DataFrame) -> pd.DataFrame:
    """Per day: the audience split, messages per sender, new users by source."""
    frame = audience.copy()
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    frame["messages_per_user"] = (
        frame["messages"] / frame["senders"].where(frame["senders"] > 0)
    ).astype(float)
    news = new_users.copy()
    news["day"] = pd.to_datetime(news["day"]).dt.date
    pivot = news.pivot_table(index="day", columns="source", values="new_users", aggfunc="sum")
    for source in ("ads", "organic"):
        values = pivot[source] if source in pivot.columns else pd.Series(dtype=float)
        frame[f"new_{source}"] = frame["day"].map(values).fillna(0).astype(int)
    return frame


def feed_text(frame: pd.DataFrame, day: dt.date) -> str:
    return "\n".join([f"📰 Feed report for {day}", *_lines(frame, day, FEED_METRICS)])


def app_text(frame: pd.DataFrame, day: dt.date) -> str:
    return "\n".join([f"📱 App report for {day}", *_lines(frame, day, APP_METRICS)])


def chart(
    frame: pd.DataFrame, day: dt.date, metrics: tuple[tuple[str, str], ...], title: str
) -> bytes:
    """A PNG with one small chart per metric over the 7 days ending with ``day``."""
    week = frame[frame["day"] > day - dt.timedelta(days=7)].sort_values("day")
    columns = 2
    rows = (len(metrics) + 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(10, 3 * rows), squeeze=False)
    for axis, (metric, label) in zip(axes.flat, metrics, strict=False):
        axis.plot([d.strftime("%d.%m") for d in week["day"]], week[metric], marker="o")
        axis.set_title(label)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(metrics) :]:
        axis.set_visible(False)
    figure.suptitle(f"{title}, 7 days to {day}")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()
