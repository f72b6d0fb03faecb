"""Extract throughput: GA4 events/s from NDJSON and Parquet, shop extract vs pandas.read_sql.

    python bench/extract_speed.py --events 2000000 --orders 1000000

The GA4 input is the demo export replicated (new device ids and timestamps per copy) into one
export day split into numbered files, written in BigQuery's JSON convention (INT64 as
strings), and once more with one value per file that does not cast, which sends each file
through the line-by-line check. Beside cdp's loader, DuckDB alone loads the same files into
memory and into a table on disk: the ceiling of any loader built on it. The shop table is
`orders` in a scratch Postgres database filled by `generate_series`. Results are printed as a
Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import duckdb
import pandas as pd
import sqlalchemy as sa

from orchestration.defs.ga4.extract import GA4_SCHEMA, json_columns, sync_export
from orchestration.defs.shop.demo import load_shop_seeds
from orchestration.defs.shop.extract import ShopSource, extract_table
from orchestration.settings import SEEDS_DIR
from orchestration.warehouse import connect

ROWS_PER_FILE = 500_000


def write_export(root: Path, events: int) -> None:
    """One export day of `events` events, as NDJSON under root/json and Parquet under
    root/parquet."""
    with connect(root / "demo.duckdb") as con:
        sync_export(con, str(SEEDS_DIR / "ga4"), "bench")
        demo = con.execute("select count(*) from raw_ga4.events").fetchall()[0][0]
        copies = -(-events // demo)
        columns = ", ".join(
            f'"{c}"'
            for c in GA4_SCHEMA
            if c not in ("event_timestamp", "user_pseudo_id", "event_date")
        )
        con.execute(f"""
            create table big as
            select '20260101' as event_date,
                   event_timestamp + copy * 1000 as event_timestamp,
                   user_pseudo_id || '.' || copy as user_pseudo_id, {columns}
            from raw_ga4.events, range({copies}) as r(copy)
            limit {events}
        """)
        ints = [c for c, t in GA4_SCHEMA.items() if t == "BIGINT"]
        as_text = ", ".join(
            f'"{c}"::varchar as "{c}"' if c in ints else f'"{c}"' for c in GA4_SCHEMA
        )
        # BigQuery's JSON: INT64 as strings and NULL fields left out entirely.
        line = "to_json(t)"
        for pattern, replacement in (
            ('"[A-Za-z0-9_]+":null,', ""),
            (',"[A-Za-z0-9_]+":null', ""),
            ('[{]"[A-Za-z0-9_]+":null[}]', "{}"),
        ):
            line = f"regexp_replace({line}, '{pattern}', '{replacement}', 'g')"
        for fmt in ("json", "parquet"):
            day = root / fmt / "events_20260101"
            day.mkdir(parents=True)
            for n, offset in enumerate(range(0, events, ROWS_PER_FILE)):
                rows = f"from big order by event_timestamp limit {ROWS_PER_FILE} offset {offset}"
                if fmt == "json":
                    con.execute(
                        f"copy (select {line} from (select {as_text} {rows}) as t) "
                        f"to '{day / f'{n:012d}.json'}' "
                        "(format csv, header false, quote '', escape '', delimiter '\x01')"
                    )
                else:
                    con.execute(
                        f"copy (select * {rows}) to '{day / f'{n:012d}.parquet'}' "
                        "(format parquet, compression zstd)"
                    )


def time_ga4(root: Path, fmt: str) -> tuple[int, float]:
    with connect(root / f"wh_{fmt}.duckdb") as con:
        started = time.perf_counter()
        result = sync_export(con, str(root / fmt), "bench")
        seconds = time.perf_counter() - started
    return result["stats"].rows_read, seconds


def spoil_one_line_per_file(root: Path) -> None:
    """The NDJSON export again, with one value in the middle of each file that does not cast
    (`event_params[0].value.int_value: "abc"`): each file is then checked line by line."""
    for path in sorted((root / "json" / "events_20260101").iterdir()):
        target = root / "json_bad" / "events_20260101" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = path.read_text().splitlines()
        middle = json.loads(lines[len(lines) // 2])
        middle["event_params"][0]["value"] = {"int_value": "abc"}
        lines[len(lines) // 2] = json.dumps(middle)
        target.write_text("\n".join(lines) + "\n")


def time_duckdb_alone(root: Path, fmt: str) -> dict[str, float]:
    """DuckDB's own speed on the same files, the ceiling of any loader built on it: parsing
    every column into memory, and the same into a table on disk (parse + storage write)."""
    files = str(root / fmt / "events_20260101" / "*")
    reader = (
        f"read_json('{files}', format='newline_delimited', columns={json_columns()})"
        if fmt == "json"
        else f"read_parquet('{files}')"
    )
    timings = {}
    for target, database in (("into memory", ":memory:"), ("into a table on disk", None)):
        with duckdb.connect(database or str(root / f"alone_{fmt}.duckdb")) as con:
            con.execute("set preserve_insertion_order = false")
            started = time.perf_counter()
            con.execute(f"create table events as select * from {reader}")
            timings[target] = time.perf_counter() - started
    return timings


def time_shop(admin_url: str, orders: int, root: Path) -> dict[str, float]:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"cdp_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = sa.create_engine(url)
    try:
        load_shop_seeds(engine, "shop")
        with engine.begin() as db:
            db.execute(sa.text("truncate shop.orders"))
            db.execute(
                sa.text(f"""
                insert into shop.orders
                select g, case when g % 4 = 0 then null else g % 50000 end,
                       ' Person' || g || '@Example.com ',
                       '+1 415 555 ' || lpad((g % 10000)::text, 4, '0'),
                       'US', 'delivered', 'web', g % 10 = 0, (g % 500) + 0.99, 'USD',
                       now() - (g || ' minutes')::interval, now() - (g || ' seconds')::interval
                from generate_series(1, {orders}) as g
            """)
            )
            db.execute(sa.text("analyze shop.orders"))
        timings = {}
        for attempt in range(2):  # the second round runs on a warm cache
            started = time.perf_counter()
            frame = pd.read_sql("select * from shop.orders", engine)
            timings["pandas.read_sql"] = time.perf_counter() - started
            assert len(frame) == orders
            del frame
            with connect(root / f"shop{attempt}.duckdb") as con:
                started = time.perf_counter()
                result = extract_table(
                    con,
                    ShopSource(url),
                    "orders",
                    None,
                    "bench",
                    overlap=pd.Timedelta(0).to_pytimedelta(),
                )
                timings["cdp shop extract"] = time.perf_counter() - started
            assert result["stats"].rows_loaded == orders
        return timings
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cdp-bench-"))
    try:
        write_export(root, args.events)
        spoil_one_line_per_file(root)
        print("| measurement | rows | seconds | rows/s |\n|---|---:|---:|---:|")
        rows, seconds = time_ga4(root, "json_bad")
        print(
            f"| GA4 NDJSON, one bad value per file (checked line by line) → raw_ga4.events "
            f"| {rows:,} | {seconds:.2f} | {rows / seconds:,.0f} |"
        )
        for fmt in ("json", "parquet"):
            rows, seconds = time_ga4(root, fmt)
            label = "GA4 NDJSON" if fmt == "json" else "GA4 Parquet"
            print(
                f"| {label} → raw_ga4.events | {rows:,} | {seconds:.2f} | {rows / seconds:,.0f} |"
            )
            for target, seconds in time_duckdb_alone(root, fmt).items():
                print(
                    f"| DuckDB alone, {label} {target} | {rows:,} | {seconds:.2f} | "
                    f"{rows / seconds:,.0f} |"
                )
        timings = time_shop(args.postgres, args.orders, root)
        for label, seconds in timings.items():
            print(
                f"| {label} (Postgres orders) | {args.orders:,} | {seconds:.2f} | "
                f"{args.orders / seconds:,.0f} |"
            )
        ratio = timings["pandas.read_sql"] / timings["cdp shop extract"]
        print(f"\nshop extract is {ratio:.1f}x faster than pandas.read_sql")
        threads = duckdb.connect().execute("select current_setting('threads')").fetchall()[0][0]
        print(f"DuckDB {duckdb.__version__}, threads={threads}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
