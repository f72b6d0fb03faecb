"""Operations: the failure alert reaches a webhook; the sensor asks for what has news; a
publication records what it was built from."""

import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
import sqlalchemy as sa

from orchestration.changes import (
    changed_sources,
    definition_changed,
    published_signatures,
    record_publication,
    signatures,
)
from orchestration.definitions import defs
from orchestration.defs.dbt.project import dbt_project
from orchestration.defs.ga4.extract import sync_export
from orchestration.defs.pipeline.schedules import default_status, source_changes
from orchestration.defs.shop.demo import load_shop_seeds
from orchestration.defs.shop.extract import TABLES, ShopSource, extract_all
from orchestration.settings import load_settings
from orchestration.warehouse import connect

from .conftest import DEMO_AS_OF, SEEDS, run_cdp


def test_failed_run_posts_an_alert_to_the_webhook(tmp_path):
    received = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_cdp(
            tmp_path / "data",
            CDP_AS_OF=DEMO_AS_OF,
            CDP_SHEETS_URI=str(tmp_path / "missing"),
            CDP_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{server.server_address[1]}/",
        )
    finally:
        server.shutdown()
    assert result.returncode == 1
    assert [a["step"] for a in received] == ["sheets_tabs"]
    assert "folder not found" in received[0]["error"] and received[0]["run_id"]


def test_the_sensor_requests_what_depends_on_the_sources_with_news(tmp_path, monkeypatch):
    export, data_dir, shop = tmp_path / "export", tmp_path / "data", tmp_path / "shop.sqlite"
    shutil.copytree(SEEDS / "ga4" / "events_20261001", export / "events_20261001")
    engine = sa.create_engine(f"sqlite:///{shop}")
    load_shop_seeds(engine)
    for name, value in {
        "CDP_GA4_EXPORT_URI": str(export),
        "CDP_DATA_DIR": str(data_dir),
        "CDP_SHOP_DB_URL": f"sqlite:///{shop}",
    }.items():
        monkeypatch.setenv(name, value)
    definitions = defs()
    graph = definitions.resolve_asset_graph()

    def evaluate():
        with dg.instance_for_test() as instance:
            context = dg.build_sensor_context(instance=instance, definitions=definitions)
            return source_changes(context)

    first = evaluate()  # nothing loaded yet: everything
    assert isinstance(first, dg.RunRequest)
    assert set(first.asset_selection) == set(graph.get_all_asset_keys())

    with connect(data_dir / "warehouse.duckdb") as con:  # as a run would have loaded them
        sync_export(con, str(export), "run-1")
        extract_all(con, ShopSource(f"sqlite:///{shop}"), list(TABLES), "run-1")
    assert isinstance(evaluate(), dg.SkipReason)

    shutil.copytree(SEEDS / "ga4" / "events_20261002", export / "events_intraday_20261002")
    intraday = evaluate()
    assert isinstance(intraday, dg.RunRequest) and intraday.tags["cdp/trigger"] == "raw_ga4/events"
    selected = {k.to_user_string() for k in intraday.asset_selection}
    assert {"raw_ga4/events", "marts/customer_profiles", "published/marts"} <= selected
    assert not {"raw_shop/orders", "raw_sheets/fx_rates"} & selected
    assert evaluate().run_key == intraday.run_key  # the same news: the same run, not another

    with engine.begin() as db:  # an order changed a minute ago
        db.execute(
            sa.text(
                "update orders set status = 'refunded', updated_at = :at "
                "where order_id = (select min(order_id) from orders)"
            ),
            {"at": f"{dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1):%Y-%m-%d %H:%M:%S}+00"},
        )
    both = evaluate()
    assert both.tags["cdp/trigger"] == "raw_ga4/events, raw_shop/order_items, raw_shop/orders"
    assert both.run_key != intraday.run_key


def test_schedules_are_off_unless_switched_on():
    assert default_status(load_settings({})) == dg.DefaultScheduleStatus.STOPPED
    assert default_status(load_settings({"CDP_SCHEDULES": "on"})) == (
        dg.DefaultScheduleStatus.RUNNING
    )


def test_a_publication_records_its_inputs_only_when_it_rebuilt_what_they_feed(tmp_path):
    """What `cdp run` later compares with: recorded by the publication of any run (UI,
    schedule, sensor), but only when every source that moved had all of its downstream
    rebuilt by that run, and the build's definition or date moved only in a run of all."""
    settings = load_settings({"CDP_DATA_DIR": str(tmp_path)})
    after = {"raw_shop/orders": {"orders", "profiles"}, "raw_ga4/events": {"events", "profiles"}}
    with connect(tmp_path / "warehouse.duckdb") as con:
        con.execute("create schema raw_shop; create schema raw_ga4")
        con.execute("create table raw_shop.orders as select now() as _loaded_at")
        con.execute("create table raw_ga4.events as select now() as _loaded_at")

        # a first publication: only a run of everything knows what all marts were built from
        assert "rebuilt a part" in record_publication(con, after, {"events"}, settings, "r1")
        assert record_publication(con, after, None, settings, "r2") is None
        now = signatures(con, sorted(after), settings)
        assert not changed_sources(published_signatures(con), now, sorted(after))

        con.execute("insert into raw_shop.orders values (now() + interval 1 hour)")
        why = record_publication(con, after, {"events", "profiles"}, settings, "r3")
        assert why == "raw_shop/orders changed and this run did not rebuild everything after it"
        now = signatures(con, sorted(after), settings)
        owed = changed_sources(published_signatures(con), now, sorted(after))
        assert owed == ["raw_shop/orders"]  # still owed
        assert record_publication(con, after, {"orders", "profiles"}, settings, "r4") is None
        assert changed_sources(published_signatures(con), now, sorted(after)) == []


def test_unit_tests_run_only_when_the_definition_moved(tmp_path, monkeypatch):
    """dbt's unit tests test the project's SQL: a new date or new data does not call for them,
    a changed setting or a new DuckDB does."""
    settings = load_settings({"CDP_DATA_DIR": str(tmp_path), "CDP_AS_OF": "2026-10-21"})
    with connect(tmp_path / "warehouse.duckdb") as con:
        nothing_published = published_signatures(con)
        assert definition_changed(nothing_published, signatures(con, [], settings))
        assert record_publication(con, {}, None, settings, "r1") is None
        tomorrow = load_settings({"CDP_DATA_DIR": str(tmp_path), "CDP_AS_OF": "2026-10-22"})
        assert not definition_changed(published_signatures(con), signatures(con, [], tomorrow))
        other = load_settings({"CDP_DATA_DIR": str(tmp_path), "CDP_REPORTING_CURRENCY": "EUR"})
        assert definition_changed(published_signatures(con), signatures(con, [], other))
        monkeypatch.setattr(
            "orchestration.changes.metadata.version",
            lambda name: "9.9" if name == "duckdb" else "1.0",
        )
        assert definition_changed(published_signatures(con), signatures(con, [], tomorrow))


def test_a_process_loading_definitions_waits_for_the_one_parsing_the_project():
    """A manifest older than the project is parsed again when definitions load; processes
    starting side by side (test workers, the UI beside a run) take turns instead of writing
    it together, and the later ones find it current."""
    manifest = dbt_project.manifest_path
    with open(manifest.parent / "parse.lock", "w") as parsing:  # as a parsing process holds it
        fcntl.flock(parsing, fcntl.LOCK_EX)
        os.utime(manifest, (0, 0))  # older than every project file
        loading = subprocess.Popen(
            [sys.executable, "-c", "import orchestration.defs.dbt.project"],
            stderr=subprocess.PIPE,
            text=True,
        )
        with pytest.raises(subprocess.TimeoutExpired):
            loading.wait(timeout=5)
        assert manifest.stat().st_mtime == 0  # it has not parsed while the lock was held
    assert loading.wait(timeout=300) == 0, loading.stderr.read()
    assert manifest.stat().st_mtime > 0
    assert "model.cdp.int_identity__observations" in json.loads(manifest.read_text())["nodes"]
