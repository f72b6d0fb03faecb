"""Phone numbers to E.164 through the DuckDB functions the staging models call."""

import os

import duckdb
import pytest

from orchestration.defs.identity import normalize, phones


def _normalized(values: list[tuple[str | None, str | None]]) -> list[tuple]:
    con = duckdb.connect()
    normalize.register(con)
    con.execute("create table t (i int, raw varchar, region varchar)")
    con.executemany("insert into t values (?, ?, ?)", [(i, *v) for i, v in enumerate(values)])
    return con.execute(
        "select cdp_phone_e164(raw, region), cdp_phone_problem(raw, region) from t order by i"
    ).fetchall()


# (raw, region) pairs covering each outcome; the Spark engine's test parses them too
EXAMPLES = [
    ("(415) 555-2671", "US"),
    ("+44 20 7946 0958", "US"),  # an explicit country code wins over the region
    ("020 7946 0958", "gb"),
    ("555 2671", None),
    ("12", "US"),
    ("call me", "US"),
    ("+1 41555526710000000000", "US"),
    ("   ", "US"),
    (None, "US"),
]


def test_numbers_become_e164_or_say_why_not():
    assert _normalized(EXAMPLES) == [
        ("+14155552671", None),
        ("+442079460958", None),
        ("+442079460958", None),
        (None, "no country code or region"),
        (None, "not a valid number for its region"),
        (None, "not a number"),
        (None, "too long"),
        (None, None),
        (None, None),
    ]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the pool needs two cores")
def test_many_new_numbers_are_parsed_by_the_worker_pool_with_the_same_results():
    phones._cache.clear()
    values = [(f"+1 415 555 {i:04d}", "US") for i in range(1500)]
    values += [(f"0{i:09d}", "GB") for i in range(1500)] + [("not a phone", "US")] * 10
    assert len(set(values)) > phones.POOL_MIN_NUMBERS
    assert _normalized(values) == [phones.parse_phone(*v) for v in values]
    assert phones._pool is not None and not phones._pool_broken
