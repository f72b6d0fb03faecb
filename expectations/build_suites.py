"""Writes the Great Expectations file context in `expectations/gx/`: one suite per raw table.

Each suite is named after the raw asset it gates (`raw_shop.orders`, …) and runs as a blocking
Dagster asset check on that asset (orchestration/defs/quality). Edit the expectations here,
run `python expectations/build_suites.py`, and commit `expectations/gx/`. Results and data
docs are written under `$CDP_DATA_DIR/quality/`, never here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe

from orchestration.accepted import accepted_values

ROOT = Path(__file__).resolve().parent
VALUES = accepted_values()  # defined once, in dbt_project/dbt_project.yml
EMAIL = r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$"
PHONE = r"^[\s+0-9().\-/]{6,}$"


def unique_key(*columns: str) -> list:
    if len(columns) == 1:
        return [
            gxe.ExpectColumnValuesToNotBeNull(column=columns[0]),
            gxe.ExpectColumnValuesToBeUnique(column=columns[0]),
        ]
    return [gxe.ExpectCompoundColumnsToBeUnique(column_list=list(columns))] + [
        gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns
    ]


def present(*columns: str) -> list:
    return [gxe.ExpectColumnToExist(column=c) for c in columns]


SUITES: dict[str, list] = {
    "raw_shop.customers": [
        *present("customer_id", "email", "phone", "country", "marketing_consent", "updated_at"),
        *unique_key("customer_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="marketing_consent"),
        gxe.ExpectColumnValuesToNotBeNull(column="updated_at"),
        gxe.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL, mostly=0.95),
        gxe.ExpectColumnValuesToMatchRegex(column="phone", regex=PHONE, mostly=0.9),
    ],
    "raw_shop.products": [
        *present("product_id", "sku", "category", "price"),
        *unique_key("product_id"),
        *unique_key("sku"),
        gxe.ExpectColumnValuesToBeBetween(column="price", min_value=0),
    ],
    "raw_shop.orders": [
        *present(
            "order_id",
            "customer_id",
            "email",
            "phone",
            "status",
            "channel",
            "total_amount",
            "ordered_at",
        ),
        *unique_key("order_id"),
        gxe.ExpectColumnValuesToBeInSet(
            column="status",
            value_set=VALUES["order_status"],
        ),
        gxe.ExpectColumnValuesToBeInSet(column="channel", value_set=VALUES["order_channel"]),
        gxe.ExpectColumnValuesToBeBetween(column="total_amount", min_value=0),
        gxe.ExpectColumnValuesToNotBeNull(column="ordered_at"),
        gxe.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL, mostly=0.9),
        gxe.ExpectColumnValuesToMatchRegex(column="phone", regex=PHONE, mostly=0.9),
    ],
    "raw_shop.order_items": [
        *present("order_id", "line_no", "product_id", "quantity", "unit_price"),
        *unique_key("order_id", "line_no"),
        gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="unit_price", min_value=0),
    ],
    "raw_shop.email_events": [
        *present("event_id", "email", "event_type", "occurred_at"),
        *unique_key("event_id"),
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=VALUES["email_event_type"]),
        gxe.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL, mostly=0.95),
    ],
    "raw_ga4.events": [
        *present("event_date", "event_timestamp", "event_name", "user_pseudo_id", "platform"),
        gxe.ExpectColumnValuesToNotBeNull(column="event_timestamp"),
        gxe.ExpectColumnValuesToNotBeNull(column="event_name"),
        gxe.ExpectColumnValuesToBeInSet(column="platform", value_set=VALUES["ga4_platform"]),
        gxe.ExpectColumnValuesToMatchRegex(column="event_date", regex=r"^\d{8}$"),
    ],
    "raw_sheets.survey_responses": [
        *present("submitted_at", "email", "phone", "interests", "preferred_channel", "buys_for"),
        gxe.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL, mostly=0.9),
        gxe.ExpectColumnValuesToBeInSet(
            column="preferred_channel", value_set=VALUES["preferred_channel"], mostly=0.95
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="buys_for", value_set=VALUES["buys_for"], mostly=0.95
        ),
    ],
    "raw_sheets.b2b_accounts": [
        *present("company_name", "email_domain", "industry"),
        gxe.ExpectColumnValuesToNotBeNull(column="company_name"),
        *unique_key("email_domain"),
    ],
    "raw_sheets.privacy_requests": [
        *present("requested_at", "email", "phone", "request_type"),
        gxe.ExpectColumnValuesToNotBeNull(column="request_type"),
        gxe.ExpectColumnValuesToBeInSet(
            column="request_type", value_set=VALUES["privacy_request_type"]
        ),
    ],
    "raw_sheets.fx_rates": [
        *present("rate_date", "currency", "rate"),
        *unique_key("rate_date", "currency"),
        gxe.ExpectColumnValuesToMatchRegex(column="currency", regex=r"^\s*[A-Za-z]{3}\s*$"),
        gxe.ExpectColumnValuesToMatchRegex(column="rate", regex=r"^\s*\d*[.,]?\d+\s*$"),
    ],
}

CONFIG = """\
config_version: 4.0
config_variables_file_path: null
plugins_directory: null
stores:
  expectations_store:
    class_name: ExpectationsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: expectations/
  validation_results_store:
    class_name: ValidationResultsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: ${CDP_DATA_DIR}/quality/validations/
  checkpoint_store:
    class_name: CheckpointStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      suppress_store_backend_id: true
      base_directory: checkpoints/
  validation_definition_store:
    class_name: ValidationDefinitionStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: validation_definitions/
expectations_store_name: expectations_store
validation_results_store_name: validation_results_store
checkpoint_store_name: checkpoint_store
data_docs_sites:
  local_site:
    class_name: SiteBuilder
    show_how_to_buttons: false
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: ${CDP_DATA_DIR}/quality/data_docs/
    site_index_builder:
      class_name: DefaultSiteIndexBuilder
analytics_enabled: false
progress_bars:
  globally: false
fluent_datasources: {}
"""


def build(root: Path = ROOT) -> None:
    import os

    os.environ.setdefault("CDP_DATA_DIR", str(root.parent / "data"))
    shutil.rmtree(root / "gx", ignore_errors=True)
    (root / "gx").mkdir()
    (root / "gx" / "great_expectations.yml").write_text(CONFIG)
    context = gx.get_context(mode="file", project_root_dir=str(root))
    source = context.data_sources.add_pandas("warehouse")
    for name, expectations in SUITES.items():
        suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("table")
        context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
    for leftover in ("uncommitted", "plugins"):
        shutil.rmtree(root / "gx" / leftover, ignore_errors=True)


if __name__ == "__main__":
    build()
