"""Dagster resources: the build warehouse and the three sources, configured from settings."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb

from orchestration import warehouse
from orchestration.defs.shop.demo import ensure_demo_shop_db
from orchestration.defs.shop.extract import ShopSource


class WarehouseResource(dg.ConfigurableResource):
    """The build warehouse `$CDP_DATA_DIR/warehouse.duckdb`."""

    data_dir: str

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
