"""Settings: one place reads CDP_*, and the demo's "today" is the demo's."""

import datetime as dt
import re
import subprocess

import pytest

from orchestration.settings import DEMO_AS_OF, SEEDS_DIR, load_settings

from .conftest import REPO


def test_the_demo_has_its_own_today_and_real_data_the_run_date():
    assert load_settings({}).as_of == DEMO_AS_OF
    assert load_settings({}).today() == DEMO_AS_OF
    real = load_settings({"CDP_GA4_EXPORT_URI": "gs://bucket/analytics_1"})
    assert real.as_of is None and real.today() == dt.date.today()
    fixed = load_settings({"CDP_GA4_EXPORT_URI": "gs://b/a", "CDP_AS_OF": "2026-01-31"})
    assert fixed.today() == dt.date(2026, 1, 31)
    assert load_settings({"CDP_GA4_EXPORT_URI": str(SEEDS_DIR / "ga4")}).as_of == DEMO_AS_OF


def test_dbt_gets_the_resolved_settings():
    env = load_settings({"CDP_DATA_DIR": "rel/dir", "CDP_DEFAULT_PHONE_REGION": "DE"}).dbt_env()
    assert env["CDP_DATA_DIR"].startswith("/") and env["CDP_DATA_DIR"].endswith("rel/dir")
    assert env["CDP_DEFAULT_PHONE_REGION"] == "DE"
    assert env["CDP_AS_OF"] == DEMO_AS_OF.isoformat()
    assert env["CDP_DUCKDB_MEMORY_LIMIT"] == "40%"


def test_a_bad_timeout_names_the_variable():
    with pytest.raises(ValueError, match="CDP_SOURCE_TIMEOUT_SECONDS"):
        load_settings({"CDP_SOURCE_TIMEOUT_SECONDS": "soon"})


def test_the_intraday_interval_is_whole_minutes_above_zero():
    assert load_settings({}).intraday_minutes == 15
    assert load_settings({"CDP_INTRADAY_MINUTES": "5"}).intraday_minutes == 5
    for bad in ("0", "2.5", "soon"):
        with pytest.raises(ValueError, match=f"CDP_INTRADAY_MINUTES='{bad}'"):
            load_settings({"CDP_INTRADAY_MINUTES": bad})


def test_the_engine_is_duckdb_or_spark_and_reaches_dbt():
    assert load_settings({}).engine == "duckdb"
    assert load_settings({"CDP_ENGINE": " Spark "}).dbt_env()["CDP_ENGINE"] == "spark"
    with pytest.raises(ValueError, match="CDP_ENGINE='bigquery': expected duckdb or spark"):
        load_settings({"CDP_ENGINE": "bigquery"})


def test_only_the_settings_module_reads_cdp_variables():
    python = subprocess.run(
        ["git", "grep", "-n", "-E", r"environ(\.get)?[\[(]\s*\"CDP_", "--", "orchestration"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    reads = [line for line in python if not re.search(r"environ\[\"CDP_\w+\"\] =", line)]
    assert [line for line in reads if not line.startswith("orchestration/settings.py")] == []
    # dbt reads them with env_var; the settings module sets every one it reads
    dbt = subprocess.run(
        ["git", "grep", "-h", "-o", "-E", r"env_var\('CDP_[A-Z_]+'", "--", "dbt_project"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.split()
    read_by_dbt = {re.search(r"CDP_[A-Z_]+", call).group() for call in dbt}
    assert read_by_dbt <= set(load_settings({}).dbt_env()), read_by_dbt
