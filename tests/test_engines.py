"""The Spark engine (CDP_ENGINE=spark) publishes the marts the DuckDB engine publishes."""

import math
from pathlib import Path

import duckdb

from orchestration import spark
from orchestration.defs.identity import normalize
from orchestration.settings import DEMO_AS_OF
from tests.conftest import run_cdp
from tests.test_normalize import EXAMPLES

PHONES = [
    *EXAMPLES[:3],
    ("01512 3937987", "DE"),
    *EXAMPLES[3:],
    *[(f"+1 415 555 {i:04d}", "US") for i in range(600)],  # enough for the worker pool
]

# per run, not per engine: its run ids and timestamps differ by construction
SKIPPED = {"run_quality"}


def _tables(path: Path) -> dict[str, list[tuple[str, str]]]:
    with duckdb.connect(str(path), read_only=True) as con:
        names = [r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()]
        return {
            name: [(c[0], c[1]) for c in con.execute(f"describe {name}").fetchall()]
            for name in names
            if name not in SKIPPED
        }


def _rows(path: Path, table: str, columns: list[tuple[str, str]]) -> list[tuple]:
    """Rows in an order both engines share: by every column, floats rounded for the order."""
    order = [
        f'round("{name}", 6)' if kind in ("DOUBLE", "FLOAT") else f'"{name}"::varchar'
        for name, kind in columns
    ]
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(f"select * from {table} order by {', '.join(order)}").fetchall()


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_phones_parse_alike_in_spark_udfs_and_duckdb_functions(data_dir):
    con = duckdb.connect()
    normalize.register(con)
    con.execute("create table t (i int, raw varchar, region varchar)")
    con.executemany("insert into t values (?, ?, ?)", [(i, *p) for i, p in enumerate(PHONES)])
    query = "select cdp_phone_e164(raw, region), cdp_phone_problem(raw, region) from t order by i"
    on_duckdb = con.execute(query).fetchall()

    session = spark.start_session()
    try:
        session.createDataFrame(
            [(i, *p) for i, p in enumerate(PHONES)], "i int, raw string, region string"
        ).createOrReplaceTempView("t")
        on_spark = [tuple(row) for row in session.sql(query).collect()]
    finally:
        session.stop()
    assert on_spark == on_duckdb
    assert on_duckdb[3] == ("+4915123937987", None) and on_duckdb[7] == (None, "too long")


def test_spark_engine_publishes_the_same_marts_as_duckdb(demo_warehouse, tmp_path):
    data_dir = tmp_path / "data"
    result = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF.isoformat(), CDP_ENGINE="spark")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " 0 failed" in result.stdout  # the quality gates ran, on Spark's tables

    duckdb_marts = _tables(demo_warehouse.parent / "marts.duckdb")
    spark_marts = _tables(data_dir / "marts.duckdb")
    assert spark_marts == duckdb_marts  # the same tables, columns and types
    for table, columns in duckdb_marts.items():
        expected = _rows(demo_warehouse.parent / "marts.duckdb", table, columns)
        actual = _rows(data_dir / "marts.duckdb", table, columns)
        assert len(actual) == len(expected), table
        for want, got in zip(expected, actual, strict=True):
            assert all(_same(w, g) for w, g in zip(want, got, strict=True)), (table, want, got)
        # and Spark holds each mart as a table of its own
        assert list((data_dir / "spark" / "warehouse" / "marts.db" / table).glob("*.parquet"))


class _Catalog:
    """Records the statements land_sources sends to Spark's catalog."""

    def __init__(self):
        self.statements: list[str] = []

    def sql(self, statement: str) -> None:
        self.statements.append(statement)


def test_sources_land_once_and_again_only_where_they_changed(tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "create schema raw_ga4; create schema raw_shop; create table raw_ga4.events as "
            "select (date '2026-10-01' + (i % 3)::integer) as _export_day, i as n, "
            "timestamptz '2026-10-02 00:00:00+00' as _loaded_at from range(30) t(i); "
            "create table raw_shop.orders as select i as order_id, "
            "timestamptz '2026-10-02 00:00:00+00' as _loaded_at from range(5) t(i)"
        )
    monkeypatch.setattr(
        spark, "_source_tables", lambda: [("raw_ga4", "events"), ("raw_shop", "orders")]
    )

    def land():
        return spark.land_sources(_Catalog(), warehouse, tmp_path)

    assert land() == {"raw_ga4.events": 30, "raw_shop.orders": 5}
    assert land() == {"raw_ga4.events": 0, "raw_shop.orders": 0}  # nothing changed
    with duckdb.connect(str(warehouse)) as con:  # one day re-exported, one order erased
        con.execute(
            "update raw_ga4.events set _loaded_at = now() where _export_day = '2026-10-02'; "
            "delete from raw_shop.orders where order_id = 3"
        )
    assert land() == {"raw_ga4.events": 10, "raw_shop.orders": 4}
    events = tmp_path / "spark" / "raw" / "raw_ga4" / "events" / "**" / "*.parquet"
    landed = duckdb.sql(f"select count(*), count(distinct n) from '{events}'").fetchall()
    assert landed == [(30, 30)]  # each day once, old files gone
    orders = duckdb.sql(f"select order_id from '{tmp_path}/spark/raw/raw_shop/orders/*.parquet'")
    assert sorted(r[0] for r in orders.fetchall()) == [0, 1, 2, 4]


def test_importing_great_expectations_beside_pyspark_keeps_the_process_alive():
    """Great Expectations probes pyspark.sql.connect, which ends a process without a main
    file (`python -c`, some workers) unless Spark Connect's client libraries are installed."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "import great_expectations; print('imported')"],
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "imported", done.stderr[-2000:]
