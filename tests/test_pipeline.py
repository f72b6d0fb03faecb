"""End to end: `cdp run` on the demo sources, as a user runs it."""

import csv
import filecmp
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.defs.sheets.extract import TABS
from orchestration.defs.shop.extract import TABLES
from orchestration.settings import DBT_PROJECT_DIR

from .conftest import DEMO_AS_OF, SEEDS, run_cdp


def csv_rows(path: Path) -> int:
    with path.open(newline="") as fh:
        return sum(1 for row in csv.reader(fh) if any(cell.strip() for cell in row)) - 1


def ga4_events_in_export() -> int:
    with duckdb.connect() as con:
        parquet = con.execute(
            f"select count(*) from read_parquet('{SEEDS}/ga4/**/*.parquet')"
        ).fetchone()[0]
        json_ = con.execute(f"select count(*) from read_json('{SEEDS}/ga4/**/*.json*')").fetchone()[
            0
        ]
    import polars as pl

    avro = sum(pl.read_avro(p).height for p in (SEEDS / "ga4").rglob("*.avro"))
    return parquet + json_ + avro


def test_cdp_run_loads_every_source_completely(demo_warehouse):
    data_dir = demo_warehouse.parent
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:

        def count(table: str) -> int:
            return con.execute(f"select count(*) from {table}").fetchone()[0]

        erased = dict(
            con.execute(
                "select table_name, sum(rows_deleted) from privacy.erasure_log group by 1"
            ).fetchall()
        )
        assert erased["persons"] >= 1  # the demo has erasure requests
        # of persons not stitched before: the erasure step stitched them with dbt files kept
        # in this data dir, which runs on other data dirs never share
        assert list((data_dir / "dbt-target").rglob("manifest.json"))

        def loaded(table: str) -> int:  # what the run loaded, before erasure removed people
            return count(table) + erased.get(table, 0)

        assert loaded("raw_ga4.events") == ga4_events_in_export()
        for table in TABLES:
            assert loaded(f"raw_shop.{table}") == csv_rows(SEEDS / "shop" / f"{table}.csv")
        for tab in TABS:
            assert loaded(f"raw_sheets.{tab}") == csv_rows(SEEDS / "sheets" / f"{tab}.csv")
        assert count("quarantine.rejected_rows") == 0
        assert count("staging.stg_ga4__events") == count("raw_ga4.events")
        assert count("staging.stg_shop__orders") == count("raw_shop.orders")
        snapshot = {t: count(f"raw_shop.{t}") for t in TABLES}

    second = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF)  # incremental: nothing new, nothing duplicated
    assert second.returncode == 0, second.stderr[-3000:]
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        for table, n in snapshot.items():
            assert con.execute(f"select count(*) from raw_shop.{table}").fetchone()[0] == n
        assert con.execute("select count(*) from raw_ga4.events").fetchone()[0] == (
            ga4_events_in_export() - erased["raw_ga4.events"]
        )
        assert not con.execute(  # requests are kept only as salted hashes
            "select * from raw_sheets.privacy_requests where request_type = 'erasure'"
        ).fetchall()


def test_cdp_run_fails_loudly_on_a_bad_source(tmp_path):
    result = run_cdp(tmp_path / "data", CDP_SHEETS_URI=str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "FAILED" in result.stderr and "sheets_tabs" in result.stderr
    assert "[sheets]" in result.stdout + result.stderr


def test_dbt_reuses_its_parse_in_any_data_dir(tmp_path):
    """A build in another data dir than the last parse's re-parses only what changed, not the
    whole project (the warehouse's path is not part of what dbt compares)."""
    command = [
        str(Path(sys.executable).parent / "cdp-dbt"), "parse",
        "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(tmp_path / "target"), "--log-path", "logs",
    ]  # fmt: skip
    outputs = []
    for data_dir in ("first", "second"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_")}
        env["CDP_DATA_DIR"] = str(tmp_path / data_dir)
        parsed = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert parsed.returncode == 0, parsed.stdout[-3000:]
        outputs.append(parsed.stdout)
    assert "saved manifest not found. Starting full parse" in outputs[0]
    assert "Unable to do partial parsing" not in outputs[1]
    assert (tmp_path / "logs" / "dbt.log").exists()  # relative to where dbt started


def test_definitions_load_as_one_connected_graph():
    from orchestration.definitions import defs

    definitions = defs()
    graph = definitions.resolve_asset_graph()
    staging = {
        "staging/stg_ga4__events": "raw_ga4/events",
        "staging/stg_shop__orders": "raw_shop/orders",
        "staging/stg_sheets__survey_responses": "raw_sheets/survey_responses",
        "identity/int_identity__nodes": "identity/int_identity__observations",
        "identity/int_identity__persons": "privacy/erased_identifiers",
        "intermediate/int_customers__orders": "identity/int_identity__order_keys",
        "intermediate/int_customers__profiles": "intermediate/int_customers__attribute_candidates",
        "marts/customer_profiles": "intermediate/int_customers__profiles",
        "published/marts": "marts/customer_recommendations",
    }
    for model, raw in staging.items():
        parents = graph.get(dg.AssetKey.from_user_string(model)).parent_keys
        assert dg.AssetKey.from_user_string(raw) in parents
    nightly = definitions.resolve_job_def("nightly")  # every asset, publication last
    every_asset = {spec.key for spec in definitions.resolve_all_asset_specs()}
    assert set(nightly.asset_layer.executable_asset_keys) == every_asset


def test_committed_seeds_match_the_generator(tmp_path):
    subprocess.run(
        [sys.executable, str(SEEDS / "generate.py"), str(tmp_path)], check=True, capture_output=True
    )
    for path in tmp_path.rglob("*"):
        if path.is_file():
            committed = SEEDS / path.relative_to(tmp_path)
            assert committed.exists(), f"{committed} is not committed"
            assert filecmp.cmp(path, committed, shallow=False), f"{committed} is stale"
