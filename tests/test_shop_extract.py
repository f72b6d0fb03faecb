import csv
import datetime as dt

import pytest
import sqlalchemy as sa

from orchestration.defs.shop import extract as shop_extract
from orchestration.defs.shop.demo import load_shop_seeds
from orchestration.defs.shop.extract import TABLES, ShopSource, extract_all
from orchestration.errors import SourceError
from orchestration.warehouse import connect

from .conftest import SEEDS


def seed_count(table: str) -> int:
    with (SEEDS / "shop" / f"{table}.csv").open() as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


def counts(con) -> dict[str, tuple[int, int]]:
    """Rows and distinct primary keys per raw table."""
    result = {}
    for name, spec in TABLES.items():
        key = ", ".join(spec.primary_key)
        result[name] = con.execute(
            f"select count(*), count(distinct ({key})) from raw_shop.{name}"
        ).fetchone()
    return result


def test_items_of_changed_orders_are_read_by_key_lists_in_parts(
    postgres_url, tmp_path, monkeypatch
):
    """The items of changed orders are read by lists of those orders' keys, a few per query
    here: every part arrives, and the raw items end equal to the shop's."""
    monkeypatch.setattr(shop_extract, "KEYS_PER_QUERY", 2)
    engine = sa.create_engine(postgres_url)
    load_shop_seeds(engine, "shop")
    source = ShopSource(postgres_url)
    items = "select order_id, line_no, quantity from {} order by 1, 2"
    with connect(tmp_path / "w.duckdb") as con:
        extract_all(con, source, ["orders", "order_items"], "run-1")
        with engine.begin() as db:
            changed = (
                db.execute(sa.text("select order_id from shop.orders order by order_id limit 5"))
                .scalars()
                .all()
            )
            db.execute(
                sa.text("update shop.orders set updated_at = now() where order_id = any(:ids)"),
                {"ids": changed},
            )
            db.execute(
                sa.text(
                    "update shop.order_items set quantity = quantity + 1 where order_id = any(:ids)"
                ),
                {"ids": changed},
            )
            in_shop = [tuple(r) for r in db.execute(sa.text(items.format("shop.order_items")))]
            changed_items = db.execute(
                sa.text("select count(*) from shop.order_items where order_id = any(:ids)"),
                {"ids": changed},
            ).scalar()
        second = extract_all(con, source, ["orders", "order_items"], "run-2")
        assert second["order_items"]["mode"] == "incremental"
        assert second["order_items"]["stats"].rows_loaded == changed_items > 5
        assert con.execute(items.format("raw_shop.order_items")).fetchall() == in_shop


def test_postgres_full_then_incremental_merge(postgres_url, tmp_path):
    engine = sa.create_engine(postgres_url)
    load_shop_seeds(engine, "shop")
    source = ShopSource(postgres_url)  # schema defaults to `shop` on Postgres
    with connect(tmp_path / "w.duckdb") as con:
        first = extract_all(con, source, list(TABLES), "run-1")
        for name in TABLES:
            assert first[name]["mode"] == "full"
            assert counts(con)[name] == (seed_count(name), seed_count(name))
        customer = con.execute(
            "select customer_id, email, marketing_consent, created_at "
            "from raw_shop.customers order by customer_id limit 1"
        ).fetchone()
        assert isinstance(customer[3], dt.datetime) and customer[3].utcoffset() == dt.timedelta(0)

        with engine.begin() as db:
            db.execute(
                sa.text(
                    "update shop.customers set email = 'moved@example.org', "
                    "updated_at = :now where customer_id = :id"
                ),
                {"now": dt.datetime.now(dt.UTC), "id": customer[0]},
            )
            order_id = db.execute(
                sa.text("select order_id from shop.orders order by order_id limit 1")
            ).scalar()
            db.execute(
                sa.text(
                    "update shop.orders set status = 'refunded', updated_at = now() "
                    "where order_id = :id"
                ),
                {"id": order_id},
            )
            db.execute(
                sa.text("delete from shop.order_items where order_id = :id and line_no > 1"),
                {"id": order_id},
            )
            db.execute(
                sa.text("update shop.order_items set quantity = 7 where order_id = :id"),
                {"id": order_id},
            )
            db.execute(
                sa.text(
                    "insert into shop.customers (customer_id, email, marketing_consent, "
                    "created_at, "
                    "updated_at) values (1, ' NEW@Example.org', true, now(), now())"
                )
            )

        second = extract_all(con, source, list(TABLES), "run-2")
        assert all(r["mode"] == "incremental" for r in second.values())
        # only the overlap window was read, not whole tables
        assert second["orders"]["stats"].rows_read < seed_count("orders") / 5
        after = counts(con)
        assert after["customers"] == (seed_count("customers") + 1,) * 2
        assert after["orders"] == (seed_count("orders"),) * 2
        assert (
            con.execute(
                "select email from raw_shop.customers where customer_id = ?", [customer[0]]
            ).fetchone()[0]
            == "moved@example.org"
        )
        assert (
            con.execute(
                "select status from raw_shop.orders where order_id = ?", [order_id]
            ).fetchone()[0]
            == "refunded"
        )
        assert con.execute(
            "select list(quantity) from raw_shop.order_items where order_id = ?", [order_id]
        ).fetchone()[0] == [7]

        # read again unchanged (the overlap window): nothing loaded, load times kept
        newest = "select max(_loaded_at) from raw_shop.{}"
        before = {name: con.execute(newest.format(name)).fetchall() for name in TABLES}
        third = extract_all(con, source, list(TABLES), "run-2b")
        assert third["orders"]["stats"].rows_read >= 1  # at least the order refunded above
        for name in TABLES:
            stats = third[name]["stats"]
            assert (stats.rows_loaded, stats.rows_unchanged) == (0, stats.rows_read), name
            assert con.execute(newest.format(name)).fetchall() == before[name], name

        with engine.begin() as db:
            db.execute(sa.text("delete from shop.customers where customer_id = 1"))
        extract_all(con, source, ["customers"], "run-3", full_refresh=True)
        assert counts(con)["customers"] == (seed_count("customers"),) * 2


@pytest.mark.parametrize("table", ["orders", "customers", "products"])
def test_a_change_stamped_in_the_future_is_quarantined_and_does_not_stop_loading(
    postgres_url, tmp_path, table
):
    engine = sa.create_engine(postgres_url)
    load_shop_seeds(engine, "shop")
    source = ShopSource(postgres_url)
    key = TABLES[table].primary_key[0]
    with engine.connect() as db:
        first_id, second_id = db.execute(
            sa.text(f"select {key} from shop.{table} order by {key} limit 2")
        ).scalars()
    with connect(tmp_path / "w.duckdb") as con:
        extract_all(con, source, list(TABLES), "run-1")
        with engine.begin() as db:
            db.execute(
                sa.text(f"update shop.{table} set updated_at = '9999-12-31' where {key} = :id"),
                {"id": first_id},
            )
        poisoned = extract_all(con, source, list(TABLES), "run-2")[table]["stats"]
        assert poisoned.rows_quarantined >= 1
        rule = con.execute(
            "select rule from quarantine.rejected_rows where table_name = ? and run_id = 'run-2'",
            [f"raw_shop.{table}"],
        ).fetchone()[0]
        assert rule == "updated_not_in_future"
        newest = con.execute(f"select max(updated_at) from raw_shop.{table}").fetchone()[0]
        assert newest <= dt.datetime.now(dt.UTC)

        with engine.begin() as db:  # a normal change after the poisoned one
            db.execute(
                sa.text(f"update shop.{table} set updated_at = now() where {key} = :id"),
                {"id": second_id},
            )
        extract_all(con, source, list(TABLES), "run-3")
        loaded_at = con.execute(
            f"select updated_at from raw_shop.{table} where {key} = ?", [second_id]
        ).fetchone()[0]
        assert loaded_at > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)


def test_a_change_within_the_clock_tolerance_does_not_move_the_watermark_past_now(
    postgres_url, tmp_path
):
    engine = sa.create_engine(postgres_url)
    load_shop_seeds(engine, "shop")
    source = ShopSource(postgres_url)
    with connect(tmp_path / "w.duckdb") as con:
        extract_all(con, source, ["orders"], "run-1")
        with engine.begin() as db:  # a server clock 12 hours ahead: loaded, not quarantined
            db.execute(
                sa.text(
                    "update shop.orders set updated_at = now() + interval '12 hours' "
                    "where order_id = (select min(order_id) from shop.orders)"
                )
            )
        assert extract_all(con, source, ["orders"], "run-2")["orders"]["stats"].rows_loaded >= 1
        with engine.begin() as db:
            db.execute(
                sa.text(
                    "update shop.orders set status = 'refunded', updated_at = now() "
                    "where order_id = (select max(order_id) from shop.orders)"
                )
            )
        extract_all(con, source, ["orders"], "run-3")
        assert con.execute(
            "select status from raw_shop.orders order by order_id desc limit 1"
        ).fetchone() == ("refunded",)


def test_postgres_errors_name_source_object_and_fix(postgres_url, tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        with pytest.raises(SourceError, match=r"\[shop\] shop.customers: table not found.*Fix"):
            extract_all(con, ShopSource(postgres_url), ["customers"], "run-1")
        bad_db = sa.engine.make_url(postgres_url).set(database="cdp_no_such_db")
        with pytest.raises(SourceError, match=r"\[shop\].*does not exist.*CDP_SHOP_DB_URL"):
            extract_all(
                con,
                ShopSource(bad_db.render_as_string(hide_password=False)),
                ["customers"],
                "run-2",
            )
    with pytest.raises(SourceError, match="not a usable SQLAlchemy URL"):
        ShopSource("nosuchdriver://x")


def test_sqlite_unparsable_values_are_quarantined(tmp_path):
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = sa.create_engine(url)
    load_shop_seeds(engine)
    with engine.begin() as db:
        db.execute(
            sa.text(
                "update orders set ordered_at = 'last tuesday' where order_id = "
                "(select min(order_id) from orders)"
            )
        )
        db.execute(sa.text("update order_items set quantity = 'two' where rowid = 1"))
    with connect(tmp_path / "w.duckdb") as con:
        result = extract_all(con, ShopSource(url), list(TABLES), "run-s")
        orders, items = result["orders"]["stats"], result["order_items"]["stats"]
        assert (orders.rows_read, orders.rows_quarantined) == (seed_count("orders"), 1)
        assert orders.rows_loaded == seed_count("orders") - 1
        # the bad item, and the items of the quarantined order with their order
        bad_order_items = con.execute(
            "select count(*) from quarantine.rejected_rows "
            "where table_name = 'raw_shop.order_items' and rule = 'order_loaded'"
        ).fetchone()[0]
        assert bad_order_items >= 1
        assert items.rows_quarantined == 1 + bad_order_items
        assert items.rows_loaded == seed_count("order_items") - items.rows_quarantined
        assert not con.execute(
            "select * from raw_shop.order_items where order_id not in "
            "(select order_id from raw_shop.orders)"
        ).fetchall()
        reasons = dict(
            con.execute(
                "select table_name, reason from quarantine.rejected_rows "
                "where rule = 'values_parse'"
            ).fetchall()
        )
        assert "ordered_at is not a valid TIMESTAMPTZ: last tuesday" in reasons["raw_shop.orders"]
        assert "quantity is not a valid BIGINT: two" in reasons["raw_shop.order_items"]


def test_duplicate_keys_in_a_source_without_constraints_are_quarantined(tmp_path):
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as db:
        db.execute(
            sa.text(
                "create table email_events (event_id bigint, email text, "
                "campaign_id text, variant text, event_type text, occurred_at timestamp)"
            )
        )
        db.execute(
            sa.text(
                "insert into email_events values "
                "(1, 'a@x.org', 'c1', 'A', 'sent', '2026-10-01 10:00:00+00'), "
                "(1, 'a@x.org', 'c1', 'A', 'open', '2026-10-01 11:00:00+00'), "
                "(2, 'b@x.org', 'c1', 'A', 'sent', '2026-10-01 10:00:00+00')"
            )
        )
    with connect(tmp_path / "w.duckdb") as con:
        stats = extract_all(con, ShopSource(url), ["email_events"], "run-d")["email_events"]
        assert (
            stats["stats"].rows_read,
            stats["stats"].rows_loaded,
            stats["stats"].rows_quarantined,
        ) == (3, 2, 1)
        assert con.execute(
            "select event_type from raw_shop.email_events where event_id = 1"
        ).fetchall() == [("open",)]  # the newest version wins
        rule, record = con.execute("select rule, record from quarantine.rejected_rows").fetchone()
        assert rule == "unique_primary_key" and '"sent"' in record


def test_schema_drift_blocks_removed_or_retyped_columns_and_reports_added_ones(tmp_path):
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = sa.create_engine(url)
    load_shop_seeds(engine)
    with engine.begin() as db:
        db.execute(sa.text("alter table customers add column loyalty_tier text"))
    with connect(tmp_path / "w.duckdb") as con:
        result = extract_all(con, ShopSource(url), ["customers"], "run-1")
        assert result["customers"]["columns_added"] == ["loyalty_tier"]
        with engine.begin() as db:
            db.execute(sa.text("alter table orders drop column ship_country"))
            db.execute(sa.text("alter table order_items rename to order_items_old"))
            db.execute(
                sa.text(
                    "create table order_items (order_id bigint, line_no int, "
                    "product_id bigint, quantity text, unit_price numeric(12, 2))"
                )
            )
        with pytest.raises(
            SourceError,
            match=r"\[shop\] orders: schema drift, required "
            r"column\(s\) missing: ship_country",
        ):
            extract_all(con, ShopSource(url), ["orders"], "run-2")
        with pytest.raises(
            SourceError,
            match=r"order_items: schema drift, column\(s\) retyped: "
            r"quantity is VARCHAR, expected BIGINT",
        ):
            extract_all(con, ShopSource(url), ["order_items"], "run-2")
