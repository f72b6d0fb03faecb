"""The one place that reads the `CDP_*` environment (docs/configuration.md) and knows the
repo layout."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = REPO_ROOT / "seeds"
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    ga4_export_uri: str
    shop_db_url: str | None  # None: the demo database built from seeds/
    shop_db_schema: str | None
    sheets_uri: str
    sheets_api_url: str
    default_phone_region: str
    as_of: dt.date | None
    source_timeout_seconds: float  # one call to a source, retries and waits included

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def marts_path(self) -> Path:
        return self.data_dir / "marts.duckdb"

    @property
    def demo_shop_db_path(self) -> Path:
        """The demo's shop database: a source, built from `seeds/shop`, so it lives outside
        the data dir, which holds only what the pipeline owns (and erases from)."""
        checkout = hashlib.sha256(str(SEEDS_DIR).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"cdp-demo-shop-{checkout}.sqlite"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    as_of = env.get("CDP_AS_OF")
    return Settings(
        data_dir=Path(env.get("CDP_DATA_DIR") or "data").resolve(),
        ga4_export_uri=env.get("CDP_GA4_EXPORT_URI") or str(SEEDS_DIR / "ga4"),
        shop_db_url=env.get("CDP_SHOP_DB_URL") or None,
        shop_db_schema=env.get("CDP_SHOP_DB_SCHEMA") or None,
        sheets_uri=env.get("CDP_SHEETS_URI") or str(SEEDS_DIR / "sheets"),
        sheets_api_url=env.get("CDP_SHEETS_API_URL") or "https://sheets.googleapis.com",
        default_phone_region=env.get("CDP_DEFAULT_PHONE_REGION") or "US",
        as_of=dt.date.fromisoformat(as_of) if as_of else None,
        source_timeout_seconds=_positive_seconds(env, "CDP_SOURCE_TIMEOUT_SECONDS", 300.0),
    )


def _positive_seconds(env, name: str, default: float) -> float:
    """A bad value stops the run with the variable's name, not a bare `float()` error."""
    value = env.get(name)
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ValueError(f"{name}={value!r}: expected a number of seconds above 0")
    return seconds
