"""Rows breaking a row rule are quarantined with their rule; nothing is lost."""

import json

import sqlalchemy as sa

from orchestration.defs.ga4.extract import sync_export
from orchestration.defs.shop.demo import load_shop_seeds
from orchestration.defs.shop.extract import TABLES, ShopSource, extract_all
from orchestration.warehouse import connect

from .conftest import SEEDS


def test_bad_rows_of_each_kind_are_quarantined_and_counted(tmp_path):
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = sa.create_engine(url)
    load_shop_seeds(engine)
    with engine.begin() as db:
        ids = [
            r[0]
            for r in db.execute(sa.text("select order_id from orders order by order_id limit 3"))
        ]
        db.execute(sa.text("update orders set status = 'lost' where order_id = :i"), {"i": ids[0]})
        db.execute(
            sa.text("update orders set total_amount = -5 where order_id = :i"), {"i": ids[1]}
        )
        db.execute(
            sa.text("update orders set ordered_at = '2099-01-01 00:00:00' where order_id = :i"),
            {"i": ids[2]},
        )
        db.execute(sa.text("update order_items set quantity = 0 where rowid = 1"))
        db.execute(sa.text("update email_events set event_type = 'opened' where event_id = 1"))
    export = tmp_path / "ga4" / "events_20261005"
    export.mkdir(parents=True)
    lines = (SEEDS / "ga4" / "events_20261005" / "000000000000.json").read_text().splitlines()
    bad = json.loads(lines[0])
    bad["platform"] = "FAX"
    (export / "000000000000.json").write_text("\n".join([json.dumps(bad), *lines[1:]]) + "\n")
    with connect(tmp_path / "w.duckdb") as con:
        shop = extract_all(con, ShopSource(url), list(TABLES), "run-r")
        ga4 = sync_export(con, str(tmp_path / "ga4"), "run-r")
        rules = con.execute(
            "select table_name, rule, reason from quarantine.rejected_rows order by 1, 2"
        ).fetchall()
    assert ("raw_shop.orders", "valid_status", "broke row rule(s): valid_status") in rules
    assert (
        "raw_shop.orders",
        "total_not_negative",
        "broke row rule(s): total_not_negative",
    ) in rules
    assert (
        "raw_shop.orders",
        "ordered_not_in_future",
        "broke row rule(s): ordered_not_in_future",
    ) in rules
    assert (
        "raw_shop.order_items",
        "quantity_positive",
        "broke row rule(s): quantity_positive",
    ) in rules
    assert (
        "raw_shop.email_events",
        "valid_event_type",
        "broke row rule(s): valid_event_type",
    ) in rules
    assert ("raw_ga4.events", "valid_platform", "broke row rule(s): valid_platform") in rules
    assert shop["orders"]["stats"].rows_quarantined == 3
    for result in [*shop.values(), ga4]:
        stats = result["stats"]
        assert stats.rows_read == stats.rows_loaded + stats.rows_quarantined
    assert ga4["stats"].rows_quarantined == 1
