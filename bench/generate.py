"""Scale generator: contract-format sources for N persons, vectorized in DuckDB SQL.

    python bench/generate.py --persons 1000000 --out /tmp/cdp-scale [--postgres URL]

Per million persons: GA4 events over 30 days from ~4% of persons a day, ~14M in all (with
--worst-case: 30M, over half of all persons every day; Parquet and gzipped NDJSON shards; item
views, cart adds and purchases carry a product), ~2M orders in USD, EUR, GBP and CAD with ~5M
items, weekday exchange rates, ~5M email events, 1.5M shop accounts, survey answers for 20% of
persons. The shop tables go to a SQLite file (`shop.sqlite`) and, with --postgres, to schema
`shop` of that database. Deterministic for a given --persons (DuckDB `setseed` + hashes).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import time
from pathlib import Path

import duckdb
import sqlalchemy as sa

from orchestration.defs.ga4.extract import GA4_SCHEMA
from orchestration.defs.shop.extract import TABLES as SHOP_SPECS
from orchestration.settings import SEEDS_DIR

DAYS = 30
FIRST_DAY = "2026-09-22"

# How people visit a shop (the default shape). Google's public GA4 sample e-commerce export
# (the Google Merchandise Store, bigquery-public-data.ga4_obfuscated_sample_ecommerce) has
# about 270k users over 92 days and a few thousand a day: ~1% of its users on a given day,
# and ~16 events each. A shop's own customers come back more often than a store's passers-by,
# so the bench is denser than that, and still a few per cent a day: a quarter of the devices
# (persons have 1-3) visit in the 30 days, on 3 days each on average, with a session of 10
# events on average a day.
VISITING_SHARE = 0.25
DAYS_PER_VISITOR = 3
EVENTS_PER_VISIT_DAY = (4, 16)  # uniform: 10 on average


WORST_CASE_HELP = (
    "GA4 activity with as many events a day as persons, over half the persons active on "
    "every day (instead of a few per cent a day)"
)


def _h(expr: str, salt: int) -> str:
    """A deterministic pseudo-random number in [0, 1) from an integer expression."""
    return f"((hash(({expr}) * 7919 + {salt}) % 1000000) / 1000000.0)"


def _active_spell_time(person: str, fraction: str) -> str:
    """A time `fraction` of the way through the person's active spell: buyers start at some
    point of the two years, and half stop after a spell of some months (150 days on
    average)."""
    end = "timestamptz '2026-10-21 00:00:00+00'"
    start = f"(timestamptz '2024-10-01 00:00:00+00' + ({_h(person, 14)} * 600) * interval 1 day)"
    spell = (
        f"case when {_h(person, 15)} < 0.5 then {end} - {start} "
        f"else least({end} - {start}, (-150 * ln(1 - {_h(person, 16)})) * interval 1 day) end"
    )
    return f"date_trunc('second', {start} + {fraction} * ({spell}))"


def build(con: duckdb.DuckDBPyConnection, persons: int) -> None:
    countries = "['US','US','US','GB','DE','FR','NL','CA']"
    con.execute(f"""
        create or replace table persons as
        select p,
               {countries}[1 + (hash(p) % 8)::int] as country,
               'person' || p || '@' || ['gmail.com','yahoo.com','web.de','orange.fr',
                   'outlook.com'][1 + (hash(p + 1) % 5)::int] as email,
               '+1201' || lpad((2000000 + (p * 7 % 7999999))::varchar, 7, '0') as phone,
               {_h("p", 1)} < 0.75 as registered,
               1 + (hash(p + 2) % 3)::int as devices
        from range({persons}) t(p)
    """)
    con.execute("""
        create or replace table customers as
        select 1000000 + p as customer_id,
               case when hash(p) % 5 = 0 then ' ' || upper(email) else email end as email,
               case when hash(p) % 4 = 0 then '(201) ' || substr(phone, 6, 3) || '-'
                    || substr(phone, 9) else phone end as phone,
               'First' || (p % 997) as first_name, 'Last' || (p % 1999) as last_name,
               date '1950-01-01' + (hash(p) % 20000)::int as birth_date,
               ['F','female','M','male','x',null][1 + (hash(p + 3) % 6)::int] as gender,
               'City' || (p % 300) as city, country,
               case when hash(p) % 50 = 0 then 'Company ' || (p % 100) end as company_name,
               hash(p) % 10 < 7 as marketing_consent,
               timestamptz '2024-01-01 00:00:00+00' + (hash(p) % 600) * interval 1 day
                   as created_at,
               timestamptz '2026-09-01 00:00:00+00' + (hash(p + 4) % 50) * interval 1 day
                   as updated_at
        from persons where registered
    """)
    con.execute("""
        create or replace table products as
        select 1 + i as product_id, 'SKU-' || lpad((1 + i)::varchar, 6, '0') as sku,
               'Product ' || i as name,
               ['apparel','shoes','sports','outdoor','electronics','home','beauty','books']
                   [1 + (i % 8)] as category,
               round(5 + (hash(i) % 25000) / 100.0, 2)::decimal(12, 2) as price,
               timestamptz '2026-01-01 00:00:00+00' as updated_at
        from range(2000) t(i)
    """)
    orders = persons * 2
    # Buyers as the purchase models see them: rates differ from person to person (a skewed
    # draw of the buyer), each buyer starts at some point of the two years, and half stop
    # after a spell of some months; an order falls somewhere in its buyer's active spell.
    buyer = f"least({persons} - 1, floor({persons} * pow({_h('o', 13)}, 1.6)))::bigint"
    con.execute(f"""
        create or replace table orders as
        with o as (select o, {buyer} as p from range({orders}) t(o))
        select 10000000 + o.o as order_id,
               case when ps.registered and hash(o.o) % 10 < 8 then 1000000 + ps.p end
                   as customer_id,
               case when hash(o.o + 1) % 10 = 0 then 'noemail@store.com' else ps.email end
                   as email,
               case when hash(o.o + 2) % 2 = 0 then ps.phone end as phone,
               ps.country as ship_country,
               ['delivered','delivered','delivered','delivered','shipped','paid','placed',
                'cancelled','refunded','delivered'][1 + (hash(o.o + 3) % 10)::int] as status,
               ['web','web','app','store','phone'][1 + (hash(o.o + 4) % 5)::int] as channel,
               hash(o.o + 5) % 10 = 0 as is_gift,
               -- some buyers spend more than others on average
               round((10 + (hash(o.o + 6) % 30000) / 100.0) * (0.4 + 1.2 * {_h("ps.p", 17)}), 2)
                   ::decimal(12, 2) as total_amount,
               case ps.country when 'GB' then 'GBP' when 'CA' then 'CAD'
                    when 'US' then 'USD' else 'EUR' end as currency,
               {_active_spell_time("ps.p", _h("o.o", 7))} as ordered_at,
               timestamptz '2026-10-21 00:00:00+00' - (hash(o.o + 8) % 40000000) * interval 1 second
                   as updated_at
        from o join persons as ps using (p)
    """)
    # Purchase events carry one of their own person's orders, as the GA4 tag on the
    # checkout page would: k-th order of person p.
    con.execute(f"""
        create or replace table person_orders as
        select {buyer} as p, 10000000 + o as order_id,
               row_number() over (partition by {buyer} order by o) - 1 as k
        from range({orders}) t(o)
    """)
    con.execute("""
        create or replace table persons as
        select persons.*, coalesce(n.n_orders, 0) as n_orders
        from persons
        left join (select p, count(*) as n_orders from person_orders group by p) as n using (p)
    """)
    con.execute("""
        create or replace table order_items as
        select order_id, l as line_no, 1 + (hash(order_id + l) % 2000) as product_id,
               1 + (hash(order_id * 3 + l) % 3)::int as quantity,
               round(5 + (hash(order_id * 5 + l) % 25000) / 100.0, 2)::decimal(12, 2)
                   as unit_price
        from orders, range(1, 1 + 1 + (hash(order_id) % 4)::int) t(l)
    """)
    con.execute(f"""
        create or replace table email_events as
        select 1 + e as event_id, ps.email,
               'cmp_' || (e % 40) as campaign_id, ['A','B'][1 + (hash(e + 5) % 2)::int] as variant,
               ['sent','sent','open','open','click','bounce','sent','open','sent','unsubscribe']
                   [1 + (hash(e) % 10)::int] as event_type,
               timestamptz '2026-04-01 00:00:00+00' + (hash(e + 1) % 17000000) * interval 1 second
                   as occurred_at
        from range({persons * 5}) t(e) join persons as ps on ps.p = hash(e + 2) % {persons}
    """)
    con.execute("""
        create or replace table devices as
        select p, p * 3 + d as device, (hash(p * 3 + d) % 9000000000 + 1000000000)::varchar
               || '.' || (1700000000 + p % 10000000) as user_pseudo_id,
               ['WEB','WEB','IOS','ANDROID'][1 + (hash(p * 3 + d) % 4)::int] as platform
        from persons, range(devices) t(d)
    """)


def _day_devices(day: int, devices: int, persons: int, worst_case: bool) -> str:
    """(i, n): one row per event of the day, `n` the device it comes from.

    Realistic: a visiting device is active on a day with probability DAYS_PER_VISITOR / DAYS
    and then sends one session of EVENTS_PER_VISIT_DAY events. Worst case: as many events a
    day as persons, each from a device drawn at random, so that over half the persons are
    active on every single day."""
    if worst_case:
        return f"select i, hash(i * 31 + {day}) % {devices} as n from range({persons}) t(i)"
    low, high = EVENTS_PER_VISIT_DAY
    return f"""
        select row_number() over () - 1 as i, n from (
            select n, unnest(range({low} + (hash(n * 17 + {day}) % {high - low + 1})::int)) as k
            from range({devices}) t(n)
            where {_h("n", 21)} < {VISITING_SHARE}
              and {_h(f"n * 37 + {day}", 22)} < {DAYS_PER_VISITOR / DAYS})"""


def write_ga4(
    con: duckdb.DuckDBPyConnection, persons: int, out: Path, worst_case: bool = False
) -> int:
    """One export day at a time (see _day_devices for how many events)."""
    devices = con.execute("select count(*) from devices").fetchall()[0][0]
    con.execute(
        "create or replace table devices_n as select row_number() over () - 1 as n, * from devices"
    )
    total = 0
    for day in range(DAYS):
        date = con.execute(f"select strftime(date '{FIRST_DAY}' + {day}, '%Y%m%d')").fetchall()[0][
            0
        ]
        con.execute(f"""
            create or replace table day_events as
            with e as ({_day_devices(day, devices, persons, worst_case)})
            select '{date}' as event_date,
                   (epoch_us(timestamptz '{FIRST_DAY} 00:00:00+00' + interval {day} day)
                       + (hash(i + {day}) % 86400000000))::bigint as event_timestamp,
                   ['page_view','page_view','page_view','session_start','view_item',
                    'add_to_cart','login','purchase'][1 + (hash(i * 7 + {day}) % 8)::int]
                       as event_name,
                   [struct_pack(key := 'ga_session_id', value := struct_pack(
                        string_value := null::varchar,
                        int_value := (1700000000 + hash(d.device + {day}) % 100000000)::bigint,
                        float_value := null::double, double_value := null::double)),
                    struct_pack(key := 'page_location', value := struct_pack(
                        string_value := 'https://shop.example.com/p/' || (i % 500),
                        int_value := null::bigint, float_value := null::double,
                        double_value := null::double))] as event_params,
                   case when hash(i + 11) % 10 < 4 and p.registered
                        then (1000000 + d.p)::varchar end as user_id,
                   d.user_pseudo_id,
                   epoch_us(timestamptz '2025-01-01 00:00:00+00') as user_first_touch_timestamp,
                   struct_pack(category := case when d.platform = 'WEB' then 'desktop'
                                               else 'mobile' end,
                               operating_system := d.platform) as device,
                   struct_pack(country := 'United States', city := 'City' || (d.p % 300))
                       as geo,
                   struct_pack(name := '(organic)', medium := 'organic', source := 'google')
                       as traffic_source,
                   d.platform,
                   case when hash(i * 7 + {day}) % 8 = 7 and po.order_id is not null
                        then struct_pack(transaction_id := po.order_id::varchar,
                                         purchase_revenue := 42.0) end as ecommerce,
                   -- one product per item view, cart add and purchase; a person keeps to a
                   -- few categories (the product's id follows the person's category)
                   case when hash(i * 7 + {day}) % 8 in (4, 5, 7)
                        then [struct_pack(
                            item_id := 'SKU-' || lpad((1 + (d.p % 8 + 8 * (hash(i) % 250))
                                % 2000)::varchar, 6, '0'),
                            item_name := null::varchar, item_category := null::varchar,
                            price := 20.0, quantity := 1::bigint)]
                        else [] end as items
            from e join devices_n as d using (n) join persons as p using (p)
            left join person_orders as po
                on po.p = p.p and po.k = hash(i + {day}) % greatest(p.n_orders, 1)
        """)
        total += con.execute("select count(*) from day_events").fetchone()[0]
        if day % 3 == 2:  # every third day as gzipped NDJSON in BigQuery's convention
            ints = [c for c, t in GA4_SCHEMA.items() if t == "BIGINT"]
            cols = [r[0] for r in con.execute("describe day_events").fetchall()]
            text = ", ".join(f'"{c}"::varchar as "{c}"' if c in ints else f'"{c}"' for c in cols)
            line = "to_json(t)"
            for pattern, replacement in (
                ('"[A-Za-z0-9_]+":null,', ""),
                (',"[A-Za-z0-9_]+":null', ""),
            ):
                line = f"regexp_replace({line}, '{pattern}', '{replacement}', 'g')"
            target = out / "ga4" / f"events_{date}"
            target.mkdir(parents=True)
            con.execute(
                f"copy (select {line} from (select {text} from day_events) as t) to "
                f"'{target}/000000000000.json.gz' (format csv, header false, quote '', "
                "escape '', delimiter '\\x01', compression gzip)"
            )
        else:
            target = out / "ga4" / f"events_{date}"
            target.mkdir(parents=True)
            con.execute(
                f"copy day_events to '{target}/000000000000.parquet' "
                "(format parquet, compression zstd)"
            )
    return total


def write_sheets(con: duckdb.DuckDBPyConnection, persons: int, out: Path) -> None:
    sheets = out / "sheets"
    sheets.mkdir(parents=True)
    con.execute(f"""
        copy (select '2026-09-' || lpad((1 + p % 28)::varchar, 2, '0') || ' 10:00:00'
                  as submitted_at, email, phone, (18 + p % 60)::varchar as age,
                  ['F','M','x'][1 + (p % 3)::int] as gender, 'bachelor' as education,
                  'engineer' as profession, '50-100k' as income_band,
                  'running; yoga' as interests, 'quality' as "values", 'active' as lifestyle,
                  ['email','sms','push','phone'][1 + (p % 4)::int] as preferred_channel,
                  ['self','gift','business'][1 + (p % 3)::int] as buys_for
              from persons where hash(p + 9) % 5 = 0)
        to '{sheets}/survey_responses.csv' (header true)
    """)
    shutil.copy(SEEDS_DIR / "sheets" / "b2b_accounts.csv", sheets / "b2b_accounts.csv")
    con.execute(f"""
        copy (select strftime(day, '%Y-%m-%d') as rate_date, currency,
                     round(level * (1 + 0.02 * sin(epoch(day) / 2e6)), 4) as rate
              from range(date '2024-09-01', date '2026-12-01', interval 1 day) t(day),
                   (values ('EUR', 1.08), ('GBP', 1.27), ('CAD', 0.73)) r(currency, level)
              where dayofweek(day) between 1 and 5
              order by 1, 2)
        to '{sheets}/fx_rates.csv' (header true)
    """)
    con.execute(f"""
        copy (select '2026-10-01 10:00:00' as requested_at, email, '' as phone,
                     case when p % 2 = 0 then 'erasure' else 'marketing_opt_out' end
                         as request_type
              from persons where p % {max(persons // 20, 1)} = 1)
        to '{sheets}/privacy_requests.csv' (header true)
    """)


SHOP_TABLES = ["customers", "products", "orders", "order_items", "email_events"]


# The shop is set up as README ("Shop database") asks: the columns each run reads changes by
# (`updated_at`, `occurred_at`) indexed, made after the bulk load.
CURSOR_INDEXES = "".join(
    f"create index {name}_{spec.cursor} on {{schema}}{name} ({spec.cursor});\n"
    for name, spec in SHOP_SPECS.items()
    if spec.cursor
)


def write_shop(con: duckdb.DuckDBPyConnection, out: Path, postgres: str | None) -> None:
    csvs = out / "shop_csv"
    csvs.mkdir(parents=True)
    for table in SHOP_TABLES:
        con.execute(f"copy {table} to '{csvs / table}.csv' (header true)")
    ddl = (SEEDS_DIR / "shop" / "schema.sql").read_text()
    sqlite = sqlite3.connect(out / "shop.sqlite")
    sqlite.executescript(ddl.replace("timestamptz", "timestamp"))
    for table in SHOP_TABLES:  # SQLite has no bulk loader: batches through the driver
        columns = [r[0] for r in con.execute(f"describe {table}").fetchall()]
        select = ", ".join(f'"{c}"::varchar' for c in columns)
        reader = con.execute(f"select {select} from {table}")
        insert = f"insert into {table} values ({', '.join('?' for _ in columns)})"
        while rows := reader.fetchmany(200_000):
            sqlite.executemany(insert, rows)
    sqlite.executescript(CURSOR_INDEXES.format(schema=""))
    sqlite.commit()
    sqlite.close()
    if postgres:
        engine = sa.create_engine(postgres)
        with engine.begin() as conn:
            conn.execute(sa.text("drop schema if exists shop cascade; create schema shop"))
            conn.execute(sa.text("set search_path to shop"))
            for statement in [s for s in ddl.split(";") if s.strip()]:
                conn.execute(sa.text(statement))
            cursor = conn.connection.driver_connection.cursor()
            for table in SHOP_TABLES:
                with (
                    (csvs / f"{table}.csv").open("rb") as fh,
                    cursor.copy(f"copy shop.{table} from stdin (format csv, header true)") as copy,
                ):
                    while chunk := fh.read(1 << 22):
                        copy.write(chunk)
            conn.execute(sa.text(CURSOR_INDEXES.format(schema="shop.")))


def generate(
    persons: int, out: Path, postgres: str | None = None, worst_case: bool = False
) -> dict[str, int]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("set preserve_insertion_order = false")
    build(con, persons)
    events = write_ga4(con, persons, out, worst_case)
    write_sheets(con, persons, out)
    write_shop(con, out, postgres)
    counts = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in SHOP_TABLES}
    return {"persons": persons, "ga4_events": events, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cdp-scale"))
    parser.add_argument("--postgres", help="also load the shop tables into this database")
    parser.add_argument("--worst-case", action="store_true", help=WORST_CASE_HELP)
    args = parser.parse_args()
    started = time.perf_counter()
    counts = generate(args.persons, args.out, args.postgres, args.worst_case)
    print(f"generated in {time.perf_counter() - started:.1f}s: {counts}")


if __name__ == "__main__":
    main()
