"""A news feed and messenger app's events, generated into ClickHouse ``simulator``.

``feed_actions`` (user_id, post_id, action 'view'|'like', time, gender, age, country, city,
os 'iOS'|'Android', source 'ads'|'organic', exp_group) and ``message_actions`` (user_id,
receiver_id, time and the sender's same attributes), with:

- a population that grows: ``base_users`` on ``start``, ``new_users_per_day`` more each day;
  each user's attributes and habits are fixed (derived from the seed and the user id);
- users who only read (45%), only message (10%) or both (45%); each active on a day with their
  own probability, more at weekends;
- a daily rhythm (quiet at night, peaks at lunch and in the evening) in 15-minute slots;
- a like for about one view in five (CTR ~0.2), varying by user;
- messages to other users active in the messenger that day;
- incidents: a metric (views, likes, feed, messages) multiplied by a factor (0.4 = a 60% drop,
  2.0 = a spike) for a time range, overall or for a slice (e.g. os=Android).

Deterministic for (seed, day); writing a day replaces it (its partitions are dropped first).
Vectorised (numpy) and streamed to ClickHouse as CSV by Arrow in chunks: memory stays bounded.

    python -m demo.simulator --day 2024-01-15 --days 3 --feed-actions 200000 \\
        --incident views:0.4:2024-01-17T14:00:2024-01-17T15:00:os=Android
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from pipeline.activity.contract import SOURCE_TABLES_DDL
from pipeline.systems.clickhouse import ClickHouse

GENDERS = ("male", "female")
OSES = ("Android", "iOS")
SOURCES = ("organic", "ads")
COUNTRIES = {
    "Russia": ("Moscow", "Saint Petersburg", "Kazan", "Novosibirsk", "Yekaterinburg"),
    "Belarus": ("Minsk", "Gomel"),
    "Kazakhstan": ("Almaty", "Astana"),
    "Ukraine": ("Kyiv", "Odesa"),
}
COUNTRY_SHARE = (0.75, 0.09, 0.09, 0.07)
CITIES = [(c, city) for c, cities in COUNTRIES.items() for city in cities]
BLOCK = 10_000  # users' traits are drawn in blocks, so a grown population keeps the old users'
SLOTS = 96
FEED_COLUMNS = (
    "user_id",
    "post_id",
    "action",
    "time",
    *("gender", "age", "country", "city", "os", "source", "exp_group"),
)
MESSAGE_COLUMNS = ("user_id", "receiver_id", "time", *FEED_COLUMNS[4:])
CHUNK_ROWS = 1_000_000


@dataclass(frozen=True)
class Incident:
    metric: str  # "views", "likes", "feed" (every feed action), "messages"
    start: dt.datetime
    end: dt.datetime
    factor: float
    slice: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.metric not in {"views", "likes", "feed", "messages"}:
            raise ValueError(
                f"incident metric must be views, likes, feed or messages: {self.metric}"
            )
        if self.factor < 0 or self.end <= self.start:
            raise ValueError("an incident needs a factor >= 0 and an end after its start")

    @classmethod
    def parse(cls, text: str) -> Incident:
        """``metric:factor:start:end[:os=value]``, times ISO with a ``T`` between date and time."""
        parts = text.split(":")
        try:
            metric, factor = parts[0], float(parts[1])
            rest = ":".join(parts[2:])
            times, _, where = rest.partition(":os=") if ":os=" in rest else (rest, "", "")
            start_text, end_text = _split_times(times)
            sliced = (("os", where),) if where else ()
            return cls(
                metric,
                dt.datetime.fromisoformat(start_text),
                dt.datetime.fromisoformat(end_text),
                factor,
                sliced,
            )
        except (IndexError, ValueError) as exc:
            raise ValueError(f"incident {text!r}: {exc} (metric:factor:start:end[:os=X])") from None


def _split_times(text: str) -> tuple[str, str]:
    # "2024-01-17T14:00:2024-01-17T15:00": the second time starts at the second date.
    cut = text.index("T", text.index("T") + 1) - 10
    return text[: cut - 1], text[cut:]


@dataclass(frozen=True)
class SimSpec:
    seed: int = 1
    start: dt.date = dt.date(2024, 1, 1)
    base_users: int = 20_000
    new_users_per_day: int = 300
    feed_actions_per_day: int = 200_000
    messages_per_day: int = 20_000
    incidents: tuple[Incident, ...] = field(default=())

    def users_on(self, day: dt.date) -> int:
        return self.base_users + self.new_users_per_day * max((day - self.start).days, 0)


def rhythm() -> np.ndarray:
    """The share of a day's activity in each 15-minute slot (UTC): night low, two peaks."""
    hours = (np.arange(SLOTS) + 0.5) / 4
    shape = (
        0.15
        + 0.9 * np.exp(-((hours - 13) ** 2) / 8)
        + 1.3 * np.exp(-((hours - 20.5) ** 2) / 6)
        + 0.4 * np.exp(-((hours - 8.5) ** 2) / 3)
    )
    return shape / shape.sum()


@dataclass
class Population:
    """Every user's fixed traits, index = user_id - 1."""

    gender: np.ndarray
    age: np.ndarray
    city: np.ndarray
    os: np.ndarray
    source: np.ndarray
    exp_group: np.ndarray
    kind: np.ndarray  # 0 feed only, 1 messenger only, 2 both
    activity: np.ndarray  # chance to be active on a weekday
    feed_weight: np.ndarray
    like_share: np.ndarray
    message_weight: np.ndarray


def population(spec: SimSpec, users: int) -> Population:
    parts: list[dict[str, np.ndarray]] = []
    country_of_city = np.array([list(COUNTRIES).index(c) for c, _ in CITIES])
    for block in range((users + BLOCK - 1) // BLOCK):
        rng = np.random.default_rng([spec.seed, block])
        n = BLOCK
        country = rng.choice(len(COUNTRIES), n, p=COUNTRY_SHARE)
        # a city of the user's country
        pick = rng.random(n)
        cities_per_country = np.bincount(country_of_city)
        first_city = np.concatenate([[0], np.cumsum(cities_per_country)[:-1]])
        city = first_city[country] + (pick * cities_per_country[country]).astype(int)
        parts.append(
            {
                "gender": rng.integers(0, 2, n),
                "age": np.clip(rng.lognormal(np.log(27), 0.3, n), 14, 80).astype(np.int64),
                "city": city,
                "os": (rng.random(n) < 0.35).astype(np.int64),  # 35% iOS
                "source": (rng.random(n) < 0.4).astype(np.int64),  # 40% from ads
                "exp_group": rng.integers(0, 5, n),
                "kind": rng.choice(3, n, p=[0.45, 0.10, 0.45]),
                "activity": rng.beta(2.0, 2.5, n),
                "feed_weight": rng.lognormal(0, 0.8, n),
                "like_share": rng.beta(4, 20, n),  # ~1 like per 5 views
                "message_weight": rng.lognormal(0, 0.7, n),
            }
        )
    return Population(**{k: np.concatenate([p[k] for p in parts])[:users] for k in parts[0]})


@dataclass
class Day:
    feed_user: np.ndarray  # index into the population
    feed_post: np.ndarray
    feed_like: np.ndarray  # bool
    feed_time: np.ndarray  # seconds since the epoch
    message_user: np.ndarray
    message_receiver: np.ndarray
    message_time: np.ndarray


def _times(rng: np.random.Generator, day: dt.date, n: int) -> np.ndarray:
    midnight = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    slot = rng.choice(SLOTS, n, p=rhythm())
    return midnight + slot * 900 + rng.integers(0, 900, n)


def _apply(
    rng: np.random.Generator,
    keep: np.ndarray,
    times: np.ndarray,
    users: np.ndarray,
    pop: Population,
    incident: Incident,
) -> np.ndarray:
    """Row indexes after the incident: rows it touches are thinned or repeated by its factor."""
    lo, hi = (int(t.replace(tzinfo=dt.UTC).timestamp()) for t in (incident.start, incident.end))
    hit = keep & (times >= lo) & (times < hi)
    for column, value in incident.slice:
        values = {"os": OSES, "gender": GENDERS, "source": SOURCES}[column]
        hit &= getattr(pop, column)[users] == values.index(value)
    rows = np.arange(len(times))
    untouched = rows[~hit]
    touched = rows[hit]
    copies = rng.poisson(incident.factor, len(touched))
    return np.concatenate([untouched, np.repeat(touched, copies)])


def generate_day(day: dt.date, spec: SimSpec, pop: Population | None = None) -> Day:
    users = spec.users_on(day)
    pop = pop or population(spec, users)
    rng = np.random.default_rng([spec.seed, day.toordinal()])
    weekend = 1.15 if day.weekday() >= 5 else 1.0
    active = rng.random(users) < np.minimum(pop.activity * weekend, 1)
    readers = np.flatnonzero(active & (pop.kind != 1))
    weights = pop.feed_weight[readers]
    counts = rng.poisson(weights / weights.sum() * spec.feed_actions_per_day * weekend)
    feed_user = np.repeat(readers, counts)
    n = len(feed_user)
    feed_like = rng.random(n) < pop.like_share[feed_user]
    feed_time = _times(rng, day, n)
    feed_post = (rng.zipf(1.4, n) % 5000 + 1).astype(np.int64)
    talkers = np.flatnonzero(active & (pop.kind != 0))
    if len(talkers) >= 2:
        mw = pop.message_weight[talkers]
        m_counts = rng.poisson(mw / mw.sum() * spec.messages_per_day * weekend)
        message_user = np.repeat(talkers, m_counts)
        receiver = talkers[rng.integers(0, len(talkers), len(message_user))]
        same = receiver == message_user
        receiver[same] = talkers[(np.searchsorted(talkers, receiver[same]) + 1) % len(talkers)]
    else:
        message_user = receiver = np.zeros(0, dtype=np.int64)
    message_time = _times(rng, day, len(message_user))
    for incident in spec.incidents:
        if incident.metric == "messages":
            rows = _apply(
                rng, np.ones(len(message_user), bool), message_time, message_user, pop, incident
            )
            message_user, receiver, message_time = (
                message_user[rows],
                receiver[rows],
                message_time[rows],
            )
        else:
            mask = {"views": ~feed_like, "likes": feed_like, "feed": np.ones(n, bool)}[
                incident.metric
            ]
            rows = _apply(rng, mask, feed_time, feed_user, pop, incident)
            feed_user, feed_post, feed_like, feed_time = (
                feed_user[rows],
                feed_post[rows],
                feed_like[rows],
                feed_time[rows],
            )
            n = len(feed_user)
    return Day(feed_user, feed_post, feed_like, feed_time, message_user, receiver, message_time)


def _attributes(pop: Population, users: np.ndarray) -> dict[str, pa.Array]:
    city = pop.city[users]
    country_names = pa.array([c for c, _ in CITIES])
    city_names = pa.array([name for _, name in CITIES])
    return {
        "gender": pa.array(np.asarray(GENDERS)[pop.gender[users]]),
        "age": pa.array(pop.age[users]),
        "country": country_names.take(pa.array(city)),
        "city": city_names.take(pa.array(city)),
        "os": pa.array(np.asarray(OSES)[pop.os[users]]),
        "source": pa.array(np.asarray(SOURCES)[pop.source[users]]),
        "exp_group": pa.array(pop.exp_group[users]),
    }


def _csv(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
    return buffer.getvalue()


def _chunks(
    users: np.ndarray, pop: Population, own: Callable[[slice], dict[str, pa.Array]]
) -> Iterator[bytes]:
    """CSV bytes of ``CHUNK_ROWS`` rows at a time: the table's own columns, then the user's."""
    for lo in range(0, len(users), CHUNK_ROWS):
        part = slice(lo, lo + CHUNK_ROWS)
        yield _csv(pa.table({**own(part), **_attributes(pop, users[part])}))


def feed_chunks(day: Day, pop: Population) -> Iterator[bytes]:
    return _chunks(
        day.feed_user,
        pop,
        lambda part: {
            "user_id": pa.array(day.feed_user[part] + 1),
            "post_id": pa.array(day.feed_post[part]),
            "action": pa.array(np.where(day.feed_like[part], "like", "view")),
            "time": pa.array(day.feed_time[part].astype("datetime64[s]")),
        },
    )


def message_chunks(day: Day, pop: Population) -> Iterator[bytes]:
    return _chunks(
        day.message_user,
        pop,
        lambda part: {
            "user_id": pa.array(day.message_user[part] + 1),
            "receiver_id": pa.array(day.message_receiver[part] + 1),
            "time": pa.array(day.message_time[part].astype("datetime64[s]")),
        },
    )


def ensure_tables(ch: ClickHouse | None = None) -> None:
    """The app's event tables, as the activity flow declares them."""
    (ch or ClickHouse()).ensure(*SOURCE_TABLES_DDL)


def write_day(
    day: dt.date, spec: SimSpec = SimSpec(), ch: ClickHouse | None = None
) -> dict[str, int]:
    """Replace the day in ``simulator.feed_actions`` and ``simulator.message_actions``."""
    ch = ch or ClickHouse()
    ensure_tables(ch)
    pop = population(spec, spec.users_on(day))
    generated = generate_day(day, spec, pop)
    partition = int(f"{day:%Y%m%d}")
    for table in ("feed_actions", "message_actions"):
        ch.execute("demo/drop_day", table=table, partition=partition)
    if len(generated.feed_user):
        ch.insert("demo/insert_feed", feed_chunks(generated, pop))
    if len(generated.message_user):
        ch.insert("demo/insert_messages", message_chunks(generated, pop))
    return {
        "feed_actions": len(generated.feed_user),
        "message_actions": len(generated.message_user),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate feed and messenger events.")
    parser.add_argument("--day", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--feed-actions", type=int, default=SimSpec.feed_actions_per_day)
    parser.add_argument("--messages", type=int, default=SimSpec.messages_per_day)
    parser.add_argument("--seed", type=int, default=SimSpec.seed)
    parser.add_argument(
        "--incident",
        action="append",
        default=[],
        type=Incident.parse,
        help="metric:factor:start:end[:os=X], e.g. "
        "views:0.4:2024-01-17T14:00:2024-01-17T15:00:os=Android",
    )
    args = parser.parse_args(argv)
    spec = SimSpec(
        seed=args.seed,
        start=args.day,
        feed_actions_per_day=args.feed_actions,
        messages_per_day=args.messages,
        incidents=tuple(args.incident),
    )
    for i in range(args.days):
        day = args.day + dt.timedelta(days=i)
        print(day, write_day(day, spec), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
