"""Runs the Great Expectations suite of a raw table and reports what failed, with samples.

The suites live in the committed file context `expectations/gx/` (built by
expectations/build_suites.py); validation results and data docs go to `$CDP_DATA_DIR/quality/`.
Only the columns a suite looks at are read from DuckDB.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import duckdb
import yaml

from orchestration.settings import REPO_ROOT
from orchestration.warehouse import quote_ident

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
}


@functools.cache
def thresholds() -> dict:
    return yaml.safe_load((EXPECTATIONS_DIR / "checks.yml").read_text())


def _context(data_dir: Path):
    import great_expectations as gx

    os.environ["CDP_DATA_DIR"] = str(data_dir)  # the stores' paths use it
    return gx.get_context(mode="file", project_root_dir=str(EXPECTATIONS_DIR))


def validate_table(
    con: duckdb.DuckDBPyConnection, table: str, data_dir: Path, where: str = "true"
) -> tuple[bool, dict]:
    """Validate the rows of `table` matching `where` (GA4: only the days loaded this run)."""
    context = _context(data_dir)
    definition = context.validation_definitions.get(table)
    existing = {r[0] for r in con.execute(f"describe {table}").fetchall()}
    wanted = {c for e in definition.suite.expectations for c in _columns(e)}
    keys = [k for k in SAMPLE_KEYS[table] if k in existing]
    columns = sorted((wanted | set(keys)) & existing)
    frame = con.execute(
        f"select {', '.join(quote_ident(c) for c in columns)} from {table} where {where}"
    ).fetch_df()
    result = definition.run(
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
    context.build_data_docs()
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
