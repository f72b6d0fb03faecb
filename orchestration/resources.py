"""Dagster resources: the build warehouse and the three sources, configured from settings."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from orchestration import warehouse
from orchestration.defs.shop.demo import ensure_demo_shop_db
from orchestration.defs.shop.extract import ShopSource
from orchestration.run_lock import RunInProgress, run_lock


class WarehouseResource(dg.ConfigurableResource):
    """The build warehouse `$CDP_DATA_DIR/warehouse.duckdb`.

    Set up once per run (the in-process executor), it holds the data dir's run lock for the
    whole run, so a run launched from the UI refuses to start beside another one."""

    data_dir: str
    _lock: contextlib.ExitStack | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._lock = contextlib.ExitStack()
        try:
            self._lock.enter_context(run_lock(Path(self.data_dir)))
        except RunInProgress as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._lock is not None:
            self._lock.close()

    @property
    def path(self) -> Path:
        return Path(self.data_dir) / "warehouse.duckdb"

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.path) as con:
            yield con


class GA4ExportResource(dg.ConfigurableResource):
    """Where the GA4 BigQuery export lives: a folder or an fsspec URL."""

    uri: str


class ShopDatabaseResource(dg.ConfigurableResource):
    """The shop's database; without a URL, the demo SQLite database built from `seeds/shop`."""

    url: str | None = None
    schema_name: str | None = None
    demo_db_path: str

    def source(self) -> ShopSource:
        url = self.url or ensure_demo_shop_db(Path(self.demo_db_path))
        return ShopSource(url, self.schema_name)


class SheetsResource(dg.ConfigurableResource):
    """A folder of `<tab>.csv` files or `gsheets://<spreadsheet_id>`."""

    uri: str
    api_url: str = "https://sheets.googleapis.com"
    credentials_path: str | None = None
