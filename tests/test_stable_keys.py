"""Stable keys on small hand-made observation sets, run after run on one warehouse."""

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from .identity_dbt import dbt, no_erasures

RECORDS = {
    "r1": [("email", "ann@x.org"), ("phone", "+14155550101")],
    "r2": [("email", "bo@x.org"), ("customer_id", "1")],
    "r3": [("phone", "+14155550101"), ("customer_id", "1")],  # the link between r1 and r2
}


@dataclass
class Stitched:
    new_keys: int
    merges: int


class Warehouse:
    """A data dir whose identity observations the test writes, stitched by the project's dbt
    identity models."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        no_erasures(data_dir)

    def execute(self, sql: str, params=None):
        with duckdb.connect(str(self.data_dir / "warehouse.duckdb")) as con:
            return con.execute(sql, params or []).fetchall()


@pytest.fixture
def con(tmp_path):
    return Warehouse(tmp_path)


def stitch(con: Warehouse, run_id: str, *args: str, variables: dict | None = None) -> Stitched:
    built = dbt(
        con.data_dir,
        "build",
        "--select", "identity_blocklist", "path:models/intermediate/identity",
        "--exclude", "int_identity__observations", "int_identity__rejected_identifiers",
        *args,
        run_id=run_id,
        variables=variables,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:]
    ((new_keys,),) = con.execute(
        "select count(*) from identity.int_identity__customer_keys where created_run_id = ?",
        [run_id],
    )
    ((merges,),) = con.execute(
        "select count(*) from identity.int_identity__customer_key_merges where run_id = ?",
        [run_id],
    )
    return Stitched(new_keys, merges)


def observe(con, *record_ids):
    con.execute("create schema if not exists identity")
    con.execute(
        "create or replace table identity.int_identity__observations (source varchar, "
        "record_id varchar, identifier_type varchar, identifier_value varchar, "
        "first_seen_at timestamptz, last_seen_at timestamptz)"
    )
    for day, record in enumerate(record_ids, start=1):
        for kind, value in RECORDS[record]:
            con.execute(
                "insert into identity.int_identity__observations values ('test', ?, ?, ?, ?, ?)",
                [record, kind, value, f"2026-10-0{day} 10:00:00+00", f"2026-10-0{day} 11:00+00"],
            )


def keys(con) -> dict[str, str]:
    return dict(
        con.execute(
            "select identifier_value, customer_key from identity.int_identity__customer_identities"
        )
    )


def test_merge_keeps_the_oldest_key_and_records_the_retired_one(con):
    observe(con, "r1")
    stitch(con, "run-1")
    first = keys(con)["ann@x.org"]
    observe(con, "r1", "r2")
    stitch(con, "run-2")
    second = keys(con)["bo@x.org"]
    assert keys(con)["ann@x.org"] == first and second != first
    observe(con, "r1", "r2", "r3")
    result = stitch(con, "run-3")
    assert set(keys(con).values()) == {first}
    assert result.merges == 1 and result.new_keys == 0
    assert con.execute(
        "select retired_key, surviving_key, run_id from identity.int_identity__customer_key_merges"
    ) == [(second, first, "run-3")]


def test_split_leaves_the_old_key_with_the_largest_part(con, monkeypatch):
    monkeypatch.setitem(
        RECORDS, "r4", [("email", "bo@x.org"), ("device", "d1"), ("phone", "+14155550102")]
    )
    observe(con, "r1", "r2", "r3", "r4")
    stitch(con, "run-1")
    (only,) = set(keys(con).values())
    observe(con, "r1", "r2", "r4")  # r3 was wrong and is gone: two persons again
    result = stitch(con, "run-2")
    after = keys(con)
    assert after["bo@x.org"] == after["d1"] == after["1"] == only  # the larger part
    assert after["ann@x.org"] == after["+14155550101"] != only
    assert result.new_keys == 1 and result.merges == 0


def test_keys_are_reproducible_from_scratch(tmp_path):
    maps = []
    for attempt in range(2):
        con = Warehouse(tmp_path / f"w{attempt}")
        observe(con, "r1", "r2")
        stitch(con, f"run-{attempt}")
        maps.append(keys(con))
    assert maps[0] == maps[1]
    assert all(key.startswith("cus_") and len(key) == 20 for key in maps[0].values())
