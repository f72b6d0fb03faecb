"""How runs end when a source misbehaves: faults retrying cannot fix fail at once with the fix,
transient ones are retried (and logged where the run's log is read), and nothing waits past the
source deadline."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time

import dagster as dg
import fsspec
import fsspec.implementations.local
import pytest
import sqlalchemy as sa

from orchestration.defs.ga4.extract import list_export
from orchestration.defs.sheets.assets import sheets_tabs
from orchestration.defs.sheets.extract import TABS
from orchestration.defs.shop.assets import shop_tables
from orchestration.defs.shop.demo import load_shop_seeds
from orchestration.defs.shop.extract import ShopSource, extract_all
from orchestration.errors import (
    SourceError,
    SourceUnavailableError,
    TransientSourceError,
    fail_at_once_on_terminal_errors,
)
from orchestration.resources import SheetsResource, ShopDatabaseResource, WarehouseResource
from orchestration.warehouse import connect

from .conftest import PG_ADMIN_URL, run_cdp
from .sheets_server import SheetsServer
from .test_sheets_extract import SHEET_ID, api_tabs, closed_port, error_body

MALFORMED_SHOP_URL = "postgresql+psycopg://postgres@127.0.0.1:54x2/shop"


@contextlib.contextmanager
def silent_server(give_up_after: float = 20.0):
    """A TCP port that takes connections and never says a word. It closes after
    `give_up_after` seconds, so code without a deadline fails slowly instead of hanging."""
    listener = socket.create_server(("127.0.0.1", 0))
    timer = threading.Timer(give_up_after, listener.close)
    timer.start()
    try:
        yield listener.getsockname()[1]
    finally:
        timer.cancel()
        listener.close()


class CuttingProxy:
    """A loopback TCP proxy to Postgres that drops the first connection to send a COPY, as a
    network fault mid-extract would; every later connection is passed through."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cuts = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for source, sink, watch in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, sink, client, upstream, watch), daemon=True
                ).start()

    def _pump(self, source, sink, client, upstream, watch: bool) -> None:
        try:
            while data := source.recv(65536):
                if watch and b"copy (" in data.lower():
                    with self.lock:
                        cut, self.cuts = self.cuts == 0, self.cuts + 1
                    if cut:
                        for sock in (client, upstream):
                            with contextlib.suppress(OSError):
                                sock.shutdown(socket.SHUT_RDWR)
                        return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


def pg_url(**parts) -> str:
    return sa.engine.make_url(PG_ADMIN_URL).set(**parts).render_as_string(hide_password=False)


def log_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(run_id)]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (lambda: MALFORMED_SHOP_URL, r"CDP_SHOP_DB_URL: not a usable SQLAlchemy URL .*54x2"),
        (
            lambda: pg_url(host="127.0.0.1", port=closed_port()),
            r"Connection refused.*Fix: check the host and port in CDP_SHOP_DB_URL",
        ),
        (
            lambda: pg_url(host="nohost.invalid"),
            r"nohost\.invalid.*Fix: check the host and port in CDP_SHOP_DB_URL",
        ),
        (
            lambda: pg_url(username="cdp_no_such_role"),
            r"role \"cdp_no_such_role\" does not exist.*Fix: check CDP_SHOP_DB_URL",
        ),
    ],
    ids=["malformed", "refused", "unknown-host", "unknown-role"],
)
def test_shop_faults_retrying_cannot_fix_fail_at_once(tmp_path, url, expected):
    started = time.monotonic()
    with connect(tmp_path / "w.duckdb") as con, pytest.raises(SourceError, match=expected) as err:
        extract_all(con, ShopSource(url()), ["customers"], "run-1")
    assert time.monotonic() - started < 15
    assert not isinstance(err.value, SourceUnavailableError)
    assert str(err.value).startswith("[shop] ")


def test_a_database_that_never_answers_times_out_connecting():
    with silent_server() as port:
        source = ShopSource(pg_url(host="127.0.0.1", port=port), timeout=2)
        started = time.monotonic()
        with pytest.raises(TransientSourceError, match="timeout") as err:
            source.reflect("customers")
        assert time.monotonic() - started < 8
        assert "CDP_SHOP_DB_URL" in err.value.fix


def test_a_query_past_the_deadline_is_stopped_and_names_the_setting(postgres_url, tmp_path):
    engine = sa.create_engine(postgres_url)
    with engine.begin() as db:
        db.execute(sa.text("create schema shop"))
        db.execute(sa.text("create view shop.slow as select 1 as x from pg_sleep(30)"))
    source = ShopSource(postgres_url, timeout=1)
    table = source.reflect("slow")
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"statement timeout.*CDP_SOURCE_TIMEOUT_SECONDS"):
        source.fetch_text(table, None, str(tmp_path / "slow.csv"))
    assert time.monotonic() - started < 10
    engine.dispose()


def test_a_connection_cut_mid_copy_is_retried_and_logged_in_the_run(postgres_url, tmp_path):
    url = sa.engine.make_url(postgres_url)
    engine = sa.create_engine(url)
    load_shop_seeds(engine, "shop")
    engine.dispose()
    proxy = CuttingProxy(url.host, url.port or 5432)
    instance = dg.DagsterInstance.ephemeral()
    try:
        result = dg.materialize(
            [shop_tables],
            instance=instance,
            resources={
                "warehouse": WarehouseResource(data_dir=str(tmp_path)),
                "shop_db": ShopDatabaseResource(
                    url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(False),
                    demo_db_path=str(tmp_path / "demo.sqlite"),
                ),
            },
        )
    finally:
        proxy.close()
    assert result.success and proxy.cuts >= 2
    retries = [m for m in log_messages(instance, result.run_id) if "(attempt 1 of 5)" in m]
    assert len(retries) == 1
    assert retries[0].startswith("[shop] shop.") and "retrying in" in retries[0]


def test_sheets_retries_show_in_the_run_log(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    with SheetsServer(SHEET_ID, api_tabs()) as server:
        server.responses.append((503, error_body(503, "down"), {"Retry-After": "1"}))
        result = dg.materialize(
            [sheets_tabs],
            instance=instance,
            resources={
                "warehouse": WarehouseResource(data_dir=str(tmp_path)),
                "sheets": SheetsResource(
                    uri=f"gsheets://{SHEET_ID}",
                    api_url=server.url,
                    credentials_path=server.service_account_file(tmp_path / "sa.json"),
                ),
            },
        )
    assert result.success
    assert any(
        "HTTP 503 (attempt 1 of 5); retrying in 1.0s" in m
        for m in log_messages(instance, result.run_id)
    )
    assert len(result.get_asset_materialization_events()) == len(TABS)


def test_a_terminal_error_skips_the_step_retries(tmp_path):
    started = time.monotonic()
    result = dg.materialize(
        [shop_tables],
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        resources={
            "warehouse": WarehouseResource(data_dir=str(tmp_path)),
            "shop_db": ShopDatabaseResource(
                url=pg_url(host="127.0.0.1", port=closed_port()),
                demo_db_path=str(tmp_path / "demo.sqlite"),
            ),
        },
    )
    assert not result.success
    assert time.monotonic() - started < 15
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_only_an_unavailable_source_is_left_to_the_step_retries():
    def failure(exc: Exception) -> dg.Failure:
        with pytest.raises(dg.Failure) as caught, fail_at_once_on_terminal_errors():
            raise exc
        return caught.value

    terminal = failure(SourceError("shop", "shop.orders", "table not found", "check it"))
    assert not terminal.allow_retries
    assert terminal.description == "[shop] shop.orders: table not found. Fix: check it"
    unavailable = TransientSourceError("shop", "shop.orders", "reset", "check it").gave_up("5x")
    assert failure(unavailable).allow_retries
    assert failure(TransientSourceError("shop", "shop", "reset", "check it")).allow_retries


def test_a_ga4_export_that_never_answers_ends_at_the_deadline():
    with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"\[ga4\] ftp://.*no complete answer within 2s"):
            list_export(f"ftp://127.0.0.1:{port}/export", timeout=2)
        assert time.monotonic() - started < 5


def test_cdp_run_names_the_source_and_fix_without_a_traceback(tmp_path):
    data_dir = tmp_path / "data"
    result = run_cdp(data_dir, CDP_SHOP_DB_URL=MALFORMED_SHOP_URL)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "Traceback" not in output and "Stack Trace" not in output, output[-3000:]
    failures = [line for line in result.stderr.splitlines() if line.startswith("  shop_tables:")]
    assert failures == [
        "  shop_tables: [shop] CDP_SHOP_DB_URL: not a usable SQLAlchemy URL (invalid literal "
        "for int() with base 10: '54x2'). Fix: use e.g. postgresql+psycopg://user@host:5432/shop"
    ]
    # the run's event log, which the UI shows, keeps the whole error
    with dg.DagsterInstance.local_temp(tempdir=str(data_dir / "dagster")) as instance:
        (run,) = instance.get_runs()
        entries = {
            entry.dagster_event.event_type_value: entry
            for entry in instance.all_logs(run.run_id)
            if entry.dagster_event and entry.dagster_event.step_key == "shop_tables"
        }
    failure = entries["STEP_FAILURE"]
    assert "ValueError" in failure.dagster_event.step_failure_data.error.to_string()
    assert failure.timestamp - entries["STEP_START"].timestamp < 15
    assert "STEP_UP_FOR_RETRY" not in entries


class StallingDownloads(fsspec.implementations.local.LocalFileSystem):
    """An object store that lists its files at once but never finishes a download."""

    protocol = ("stallfs",)

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(str(path).removeprefix("stallfs://"))

    def get(self, *args, **kwargs):
        time.sleep(60)


def test_a_ga4_download_that_stalls_ends_at_the_deadline(tmp_path, monkeypatch):
    from orchestration.defs.ga4.extract import sync_export

    from .conftest import SEEDS

    fsspec.register_implementation("stallfs", StallingDownloads, clobber=True)
    export = tmp_path / "export"
    shutil.copytree(SEEDS / "ga4" / "events_20261001", export / "events_20261001")
    monkeypatch.setenv("CDP_SOURCE_TIMEOUT_SECONDS", "2")
    started = time.monotonic()
    with (
        connect(tmp_path / "w.duckdb") as con,
        pytest.raises(SourceError, match=r"\[ga4\] stallfs://.*no complete answer within 2s"),
    ):
        sync_export(con, f"stallfs://{export}", "run-1")
    assert time.monotonic() - started < 10
