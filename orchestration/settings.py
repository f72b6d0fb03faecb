"""The one place that reads the `CDP_*` environment (docs/configuration.md) and knows the
repo layout."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = REPO_ROOT / "seeds"
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
# "Today" on the embedded demo: the morning after its last full export day, so the demo's
# customers do not drift to "churned" as the calendar moves.
DEMO_AS_OF = dt.date(2026, 10, 22)


def dbt_project_files() -> list[Path]:
    """Every file of the dbt project that decides what it builds, in a stable order."""
    files = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "seeds", "tests"):
        files += sorted((DBT_PROJECT_DIR / folder).rglob("*"))
    return [f for f in files if f.is_file()]


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    ga4_export_uri: str
    shop_db_url: str | None  # None: the demo database built from seeds/
    shop_db_schema: str | None
    sheets_uri: str
    sheets_api_url: str
    default_phone_region: str
    reporting_currency: str  # ISO 4217 code of every amount in the marts
    as_of: dt.date | None  # None: the run's own date
    source_timeout_seconds: float  # one call to a source, retries and waits included
    duckdb_memory_limit: str
    privacy_salt: str | None  # None: a random salt kept in the data dir
    publish_pii: bool  # False: marts.duckdb holds personal data only as salted hashes
    alert_webhook_url: str | None
    schedules_on: bool
    nightly_cron: str
    intraday_minutes: int  # how often the source_changes sensor looks for news
    timezone: str
    engine: str  # where dbt builds: "duckdb" or "spark" (orchestration/spark.py)
    spark_master: str  # the Spark engine's master: local[N], yarn, spark://host:port, k8s://...
    spark_driver_memory: str
    spark_shuffle_partitions: int

    @property
    def on_demo_ga4(self) -> bool:
        return self.ga4_export_uri.startswith(str(SEEDS_DIR))

    def today(self) -> dt.date:
        return self.as_of or dt.date.today()

    def dbt_env(self) -> dict[str, str]:
        """What dbt reads with `env_var`, resolved here: the data dir made absolute, the
        demo's "today", the phone region, the reporting currency, the memory cap, and the
        build's definition."""
        env = self._settings_for_dbt()
        env["CDP_BUILD_DEFINITION"] = self.build_definition()
        return env

    def _settings_for_dbt(self) -> dict[str, str]:
        env = {
            "CDP_DATA_DIR": str(self.data_dir),
            "CDP_DEFAULT_PHONE_REGION": self.default_phone_region,
            "CDP_REPORTING_CURRENCY": self.reporting_currency,
            "CDP_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit,
            "CDP_ENGINE": self.engine,
        }
        if self.as_of:
            env["CDP_AS_OF"] = self.as_of.isoformat()
        return env

    def build_definition(self) -> str:
        """What decides what a build computes, the date aside: the dbt project's files, the
        settings dbt and the publication read, this package's version. The models kept per
        person recompute everyone when it moves."""
        digest = hashlib.sha256()
        for path in dbt_project_files():
            digest.update(str(path.relative_to(DBT_PROJECT_DIR)).encode())
            digest.update(path.read_bytes())
        # where the data dir is and how much memory dbt may use do not change what it builds
        ignored = {"CDP_DATA_DIR", "CDP_DUCKDB_MEMORY_LIMIT", "CDP_AS_OF"}
        env = {k: v for k, v in self._settings_for_dbt().items() if k not in ignored}
        facts = {"env": env, "publish_pii": self.publish_pii, "cdp": version("cdp")}
        digest.update(json.dumps(facts, sort_keys=True).encode())
        return digest.hexdigest()

    @property
    def dbt_target_path(self) -> Path:
        """dbt's target folder, relative to the dbt project, one per engine: runs on the two
        engines side by side never read each other's manifest."""
        return Path("target") / self.engine

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
    ga4_export_uri = env.get("CDP_GA4_EXPORT_URI") or str(SEEDS_DIR / "ga4")
    as_of = env.get("CDP_AS_OF")
    return Settings(
        data_dir=Path(env.get("CDP_DATA_DIR") or "data").resolve(),
        ga4_export_uri=ga4_export_uri,
        shop_db_url=env.get("CDP_SHOP_DB_URL") or None,
        shop_db_schema=env.get("CDP_SHOP_DB_SCHEMA") or None,
        sheets_uri=env.get("CDP_SHEETS_URI") or str(SEEDS_DIR / "sheets"),
        sheets_api_url=env.get("CDP_SHEETS_API_URL") or "https://sheets.googleapis.com",
        default_phone_region=env.get("CDP_DEFAULT_PHONE_REGION") or "US",
        reporting_currency=_currency_code(env, "CDP_REPORTING_CURRENCY", "USD"),
        as_of=(
            dt.date.fromisoformat(as_of)
            if as_of
            else DEMO_AS_OF
            if ga4_export_uri.startswith(str(SEEDS_DIR))
            else None
        ),
        source_timeout_seconds=_positive_seconds(env, "CDP_SOURCE_TIMEOUT_SECONDS", 300.0),
        duckdb_memory_limit=env.get("CDP_DUCKDB_MEMORY_LIMIT") or "40%",
        privacy_salt=env.get("CDP_PRIVACY_SALT") or None,
        publish_pii=_on_off(env, "CDP_PUBLISH_PII", True),
        alert_webhook_url=env.get("CDP_ALERT_WEBHOOK_URL") or None,
        schedules_on=env.get("CDP_SCHEDULES") == "on",
        nightly_cron=env.get("CDP_NIGHTLY_CRON") or "0 3 * * *",
        intraday_minutes=_positive_int(env, "CDP_INTRADAY_MINUTES", 15),
        timezone=env.get("CDP_TIMEZONE") or "UTC",
        engine=_engine(env),
        spark_master=env.get("CDP_SPARK_MASTER") or "local[2]",
        spark_driver_memory=env.get("CDP_SPARK_DRIVER_MEMORY") or "4g",
        spark_shuffle_partitions=int(env.get("CDP_SPARK_SHUFFLE_PARTITIONS") or 8),
    )


def _engine(env) -> str:
    value = (env.get("CDP_ENGINE") or "duckdb").strip().lower()
    if value not in ("duckdb", "spark"):
        raise ValueError(f"CDP_ENGINE={env.get('CDP_ENGINE')!r}: expected duckdb or spark")
    return value


def _currency_code(env, name: str, default: str) -> str:
    value = (env.get(name) or default).strip().upper()
    if len(value) != 3 or not value.isalpha():
        raise ValueError(f"{name}={env.get(name)!r}: expected an ISO 4217 code such as USD")
    return value


def _on_off(env, name: str, default: bool) -> bool:
    """A typo must not publish personal data: only `on` and `off` are accepted."""
    value = (env.get(name) or "").strip().lower()
    if not value:
        return default
    if value not in ("on", "off"):
        raise ValueError(f"{name}={env.get(name)!r}: expected on or off")
    return value == "on"


def _positive_int(env, name: str, default: int) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name}={env.get(name)!r}: expected a whole number above 0")
    return int(value)


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
