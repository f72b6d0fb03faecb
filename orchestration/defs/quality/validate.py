"""Runs the Great Expectations suite of a raw table and reports what failed, with samples.

The suites live in the committed file context `expectations/gx/` (built by
expectations/build_suites.py); validation results and data docs go to `$CDP_DATA_DIR/quality/`.
Only the columns a suite looks at, and only the rows loaded since the table last passed, are
read from DuckDB: a nightly run validates what it brought in, not the whole history again.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from pathlib import Path

import duckdb
import yaml

from orchestration.settings import REPO_ROOT
from orchestration.warehouse import quote_ident, scalar

EXPECTATIONS_DIR = REPO_ROOT / "expectations"
# Columns that identify a row in the samples of failing values.
SAMPLE_KEYS = {
    "raw_shop.customers": ["customer_id"],
    "raw_shop.products": ["product_id"],
    "raw_shop.orders": ["order_id"],
    "raw_shop.order_items": ["order_id", "line_no"],
    "raw_shop.email_events": ["event_id"],
    "raw_ga4.events": ["user_pseudo_id", "event_timestamp"],
    "raw_sheets.survey_responses": ["_row_number"],
    "raw_sheets.b2b_accounts": ["_row_number"],
    "raw_sheets.privacy_requests": ["_row_number"],
    "raw_sheets.fx_rates": ["_row_number"],
}


@functools.cache
def thresholds() -> dict:
    return yaml.safe_load((EXPECTATIONS_DIR / "checks.yml").read_text())


def _context(data_dir: Path):
    import great_expectations as gx

    os.environ["CDP_DATA_DIR"] = str(data_dir)  # the stores' paths use it
    return gx.get_context(mode="file", project_root_dir=str(EXPECTATIONS_DIR))


WATERMARK_DDL = """
create schema if not exists quality;
create table if not exists quality.validated_through (
    table_name varchar primary key,
    loaded_at timestamptz not null,
    run_id varchar not null
);
"""


def unvalidated_rows(con: duckdb.DuckDBPyConnection, table: str) -> tuple[str, dt.datetime | None]:
    """A filter for the rows loaded since `table` last passed its suite, and the load time to
    record once they pass. Rows of a run that failed stay unvalidated until a run passes."""
    con.execute(WATERMARK_DDL)
    previous = scalar(
        con, "select loaded_at from quality.validated_through where table_name = ?", [table]
    )
    newest = scalar(con, f"select max(_loaded_at) from {table}")
    after, through = _literal(previous, "-infinity"), _literal(newest, "infinity")
    return f"_loaded_at > {after} and _loaded_at <= {through}", newest


def _literal(moment: dt.datetime | None, otherwise: str) -> str:
    return f"'{moment.isoformat() if moment else otherwise}'::timestamptz"


def mark_validated(
    con: duckdb.DuckDBPyConnection, table: str, loaded_at: dt.datetime | None, run_id: str
) -> None:
    if loaded_at is not None:
        con.execute(
            "insert or replace into quality.validated_through values (?, ?, ?)",
            [table, loaded_at, run_id],
        )


def validate_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    data_dir: Path,
    where: str = "true",
    run_name: str | None = None,
) -> tuple[bool, dict]:
    """Validate the rows of `table` matching `where`; `run_name` (the Dagster run id) files
    the result in the data docs."""
    context = _context(data_dir)
    definition = context.validation_definitions.get(table)
    existing = {r[0]: r[1] for r in con.execute(f"describe {table}").fetchall()}
    wanted = {c for e in definition.suite.expectations for c in _columns(e)}
    keys = [k for k in SAMPLE_KEYS[table] if k in existing]
    columns = sorted((wanted | set(keys)) & existing.keys())
    # DECIMAL as DOUBLE, as pandas compares numbers (Arrow would hand over Decimal objects)
    select = ", ".join(
        f"{quote_ident(c)}::double as {quote_ident(c)}"
        if existing[c].startswith("DECIMAL")
        else quote_ident(c)
        for c in columns
    )
    # Through Arrow: `fetch_df` builds Python strings and pandas converts them back to Arrow,
    # 5x slower and twice the memory for 30M GA4 events.
    frame = (
        con.sql(f"select {select} from {table} where {where}")
        .to_arrow_table()
        .combine_chunks()
        .to_pandas(self_destruct=True)
    )
    from great_expectations.core.run_identifier import RunIdentifier

    run_id = RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC))
    result = definition.run(
        run_id=run_id,
        batch_parameters={"dataframe": frame},
        result_format={
            "result_format": "COMPLETE",
            "unexpected_index_column_names": keys,
            "partial_unexpected_count": 5,
        },
    )
    failures = []
    for outcome in result.results:
        if outcome.success:
            continue
        details = outcome.result or {}
        failures.append(
            {
                "expectation": outcome.expectation_config.type,
                "column": outcome.expectation_config.kwargs.get("column")
                or outcome.expectation_config.kwargs.get("column_list"),
                "unexpected": details.get("unexpected_count"),
                "unexpected_percent": round(details.get("unexpected_percent") or 0, 2),
                "sample_keys": [
                    {k: str(v) for k, v in row.items()}
                    for row in (details.get("unexpected_index_list") or [])[:5]
                ],
                "sample_values": [
                    str(v) for v in (details.get("partial_unexpected_list") or [])[:5]
                ],
            }
        )
    # Render this result's page and the index only: rebuilding every stored result's page
    # would grow with each night's history.
    stored = [k for k in context.validation_results_store.list_keys() if k.run_id == run_id]
    context.build_data_docs(resource_identifiers=stored)
    docs = data_dir / "quality" / "data_docs" / "index.html"
    metadata = {
        "rows_validated": len(frame),
        "expectations": len(result.results),
        "failed_expectations": failures,
        "data_docs": str(docs),
    }
    return result.success, metadata


def _columns(expectation) -> list[str]:
    kwargs = expectation.configuration.kwargs
    return [kwargs["column"]] if "column" in kwargs else list(kwargs.get("column_list") or [])
