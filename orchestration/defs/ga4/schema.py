"""GA4's BigQuery export schema, and the type trees the loader compares files and tables with.

`raw_ga4.events` starts as GA4_SCHEMA and grows: a field an export brings that the table does
not have yet (Google adds fields over time, at any depth) is added to the table, as JSON when
it comes from a JSON file (whose values carry no declared type) and with the file's own type
when it comes from Parquet or Avro. The table itself is the schema every later file is read
with, so a field is discovered once. A field the table has, arriving with a type that cannot
be converted without loss (an INT64 `user_id`, a string `event_timestamp` in Parquet), is
schema drift and stops the load.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import duckdb

from orchestration.warehouse import quote_ident


def _kv(*extra: str) -> str:
    fields = "string_value VARCHAR, int_value BIGINT, float_value DOUBLE, double_value DOUBLE"
    return f'STRUCT("key" VARCHAR, "value" STRUCT({", ".join([fields, *extra])}))[]'


def _struct(*fields: str, kind: str = "VARCHAR") -> str:
    return "STRUCT(" + ", ".join(f"{quote_ident(f)} {kind}" for f in fields) + ")"


# GA4's BigQuery export schema (Google's "BigQuery Export schema" for GA4 properties and
# Firebase), in BigQuery's column order and DuckDB's types: INTEGER is BIGINT, FLOAT is
# DOUBLE, RECORD is STRUCT, REPEATED is a list.
GA4_SCHEMA: dict[str, str] = {
    "event_date": "VARCHAR",
    "event_timestamp": "BIGINT",
    "event_name": "VARCHAR",
    "event_params": _kv(),
    "event_previous_timestamp": "BIGINT",
    "event_value_in_usd": "DOUBLE",
    "event_bundle_sequence_id": "BIGINT",
    "event_server_timestamp_offset": "BIGINT",
    "user_id": "VARCHAR",
    "user_pseudo_id": "VARCHAR",
    "privacy_info": _struct("analytics_storage", "ads_storage", "uses_transient_token"),
    "user_properties": _kv("set_timestamp_micros BIGINT"),
    "user_first_touch_timestamp": "BIGINT",
    "user_ltv": "STRUCT(revenue DOUBLE, currency VARCHAR)",
    "device": "STRUCT(category VARCHAR, mobile_brand_name VARCHAR, mobile_model_name VARCHAR, "
    "mobile_marketing_name VARCHAR, mobile_os_hardware_model VARCHAR, operating_system VARCHAR, "
    "operating_system_version VARCHAR, vendor_id VARCHAR, advertising_id VARCHAR, "
    '"language" VARCHAR, is_limited_ad_tracking VARCHAR, time_zone_offset_seconds BIGINT, '
    "browser VARCHAR, browser_version VARCHAR, "
    "web_info STRUCT(browser VARCHAR, browser_version VARCHAR, hostname VARCHAR))",
    "geo": _struct("city", "country", "continent", "region", "sub_continent", "metro"),
    "app_info": _struct("id", "version", "install_store", "firebase_app_id", "install_source"),
    "traffic_source": _struct("name", "medium", "source"),
    "stream_id": "VARCHAR",
    "platform": "VARCHAR",
    "event_dimensions": _struct("hostname"),
    "ecommerce": "STRUCT(total_item_quantity BIGINT, purchase_revenue_in_usd DOUBLE, "
    "purchase_revenue DOUBLE, refund_value_in_usd DOUBLE, refund_value DOUBLE, "
    "shipping_value_in_usd DOUBLE, shipping_value DOUBLE, tax_value_in_usd DOUBLE, "
    "tax_value DOUBLE, unique_items BIGINT, transaction_id VARCHAR)",
    "items": "STRUCT(item_id VARCHAR, item_name VARCHAR, item_brand VARCHAR, "
    "item_variant VARCHAR, item_category VARCHAR, item_category2 VARCHAR, "
    "item_category3 VARCHAR, item_category4 VARCHAR, item_category5 VARCHAR, "
    "price_in_usd DOUBLE, price DOUBLE, quantity BIGINT, item_revenue_in_usd DOUBLE, "
    "item_revenue DOUBLE, item_refund_in_usd DOUBLE, item_refund DOUBLE, coupon VARCHAR, "
    "affiliation VARCHAR, location_id VARCHAR, item_list_id VARCHAR, item_list_name VARCHAR, "
    "item_list_index VARCHAR, promotion_id VARCHAR, promotion_name VARCHAR, "
    f"creative_name VARCHAR, creative_slot VARCHAR, item_params {_kv()})[]",
    "collected_traffic_source": _struct(
        "manual_campaign_id",
        "manual_campaign_name",
        "manual_source",
        "manual_medium",
        "manual_term",
        "manual_content",
        "manual_source_platform",
        "manual_creative_format",
        "manual_marketing_tactic",
        "gclid",
        "dclid",
        "srsltid",
    ),
    "is_active_user": "BOOLEAN",
    "batch_event_index": "BIGINT",
    "batch_page_id": "BIGINT",
    "batch_ordering_id": "BIGINT",
    "session_traffic_source_last_click": "STRUCT("
    + ", ".join(
        f"{name} {_struct(*fields)}"
        for name, fields in {
            "manual_campaign": (
                "campaign_id",
                "campaign_name",
                "source",
                "medium",
                "term",
                "content",
                "source_platform",
                "creative_format",
                "marketing_tactic",
            ),
            "google_ads_campaign": (
                "customer_id",
                "account_name",
                "campaign_id",
                "campaign_name",
                "ad_group_id",
                "ad_group_name",
            ),
            "cross_channel_campaign": (
                "campaign_id",
                "campaign_name",
                "source",
                "medium",
                "source_platform",
                "default_channel_group",
                "primary_channel_group",
            ),
            "sa360_campaign": (
                "campaign_id",
                "campaign_name",
                "source",
                "medium",
                "ad_group_id",
                "ad_group_name",
                "creative_format",
                "engine_account_name",
                "engine_account_type",
                "manager_account_name",
            ),
            "cm360_campaign": (
                "campaign_id",
                "campaign_name",
                "source",
                "medium",
                "account_id",
                "account_name",
                "advertiser_id",
                "advertiser_name",
                "creative_id",
                "creative_format",
                "creative_name",
                "creative_type",
                "creative_type_id",
                "creative_version",
                "placement_id",
                "placement_cost_structure",
                "placement_name",
                "rendering_id",
                "site_id",
                "site_name",
            ),
            "dv360_campaign": (
                "campaign_id",
                "campaign_name",
                "source",
                "medium",
                "advertiser_id",
                "advertiser_name",
                "creative_id",
                "creative_format",
                "creative_name",
                "exchange_id",
                "exchange_name",
                "insertion_order_id",
                "insertion_order_name",
                "line_item_id",
                "line_item_name",
                "partner_id",
                "partner_name",
            ),
        }.items()
    )
    + ")",
    "publisher": "STRUCT(ad_revenue_in_usd DOUBLE, ad_format VARCHAR, ad_source_name VARCHAR, "
    "ad_unit_id VARCHAR)",
}
REQUIRED_COLUMNS = ("event_date", "event_timestamp", "event_name", "user_pseudo_id")
# Identifiers: strings in the export, never read as numbers (a JSON number loses digits as a
# double: 950658449.1697698986 would become 950658449.1697699).
IDENTIFIERS = (
    ("user_pseudo_id",),
    ("user_id",),
    ("ecommerce", "transaction_id"),
    ("items", None, "item_id"),
)

INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
# Wider integers cast to INT64 too, as long as each value fits (else the cast fails, loudly).
WIDE_INTEGERS = {"UBIGINT", "HUGEINT", "UHUGEINT"}
FLOATS = {"FLOAT", "DOUBLE"}


@dataclass(frozen=True)
class Kind:
    """A DuckDB type as a tree: STRUCT with named fields, LIST with an element, else a leaf
    (a scalar, or a MAP, UNION or array compared as a whole)."""

    sql: str
    fields: tuple[tuple[str, Kind], ...] = ()
    element: Kind | None = None

    @property
    def is_struct(self) -> bool:
        return self.element is None and self.sql.startswith("STRUCT(")

    @property
    def is_list(self) -> bool:
        return self.element is not None

    @property
    def is_leaf(self) -> bool:
        return not self.is_struct and not self.is_list

    @functools.cached_property
    def field_map(self) -> dict[str, Kind]:
        return dict(self.fields)

    @classmethod
    def of(cls, ty: duckdb.DuckDBPyType) -> Kind:
        if ty.id == "struct":
            return cls(str(ty), tuple((name, cls.of(child)) for name, child in ty.children))
        if ty.id == "list":
            return cls(str(ty), element=cls.of(ty.children[0][1]))
        return cls(str(ty))

    @classmethod
    def parse(cls, sql: str) -> Kind:
        return cls.of(duckdb.sqltype(sql))

    @classmethod
    def record(cls, columns: dict[str, Kind]) -> Kind:
        """The STRUCT of a row with these columns."""
        body = ", ".join(f"{quote_ident(n)} {k.sql}" for n, k in columns.items())
        return cls(f"STRUCT({body})", tuple(columns.items()))


def relation_kind(rel: duckdb.DuckDBPyRelation) -> Kind:
    return Kind.record({n: Kind.of(t) for n, t in zip(rel.columns, rel.types, strict=True)})


def ga4_kind() -> Kind:
    return Kind.record({n: Kind.parse(t) for n, t in GA4_SCHEMA.items()})


def path_text(parts: tuple) -> str:
    """`items[].item_params` for a schema path (None stands for "any list element")."""
    text = ""
    for part in parts:
        text += "[]" if part is None else (f".{part}" if text else part)
    return text


def missing_fields(table: Kind, source: Kind, parts: tuple = ()) -> list[tuple[tuple, Kind]]:
    """Fields of `source` that `table` lacks, at any depth, with their type in `source`."""
    if table.is_struct and source.is_struct:
        found = []
        for name, kind in source.fields:
            if name not in table.field_map:
                found.append(((*parts, name), kind))
            else:
                found += missing_fields(table.field_map[name], kind, (*parts, name))
        return found
    if table.is_list and source.is_list:
        return missing_fields(table.element, source.element, (*parts, None))
    return []


def add_fields(con: duckdb.DuckDBPyConnection, table: str, fields: list[tuple[tuple, Kind]]):
    """ALTER `table` to hold the new fields (a nested one inside its struct, or inside the
    element of a list of structs)."""
    for parts, kind in fields:
        target = ".".join("element" if p is None else quote_ident(p) for p in parts)
        con.execute(f"alter table {table} add column {target} {kind.sql}")


def _leaf_converts(source: str, target: str) -> bool:
    if source == target or target == "JSON":
        return True
    if target == "BIGINT":
        return source in INTEGERS | WIDE_INTEGERS or source.startswith("TIMESTAMP")
    if target == "DOUBLE":
        return source in INTEGERS | WIDE_INTEGERS | FLOATS or source.startswith("DECIMAL")
    if target == "VARCHAR":
        return source == "DATE" or source.startswith("ENUM(")
    return False


def drifted(table: Kind, source: Kind, parts: tuple = ()) -> list[tuple[tuple, str, str]]:
    """Fields both have whose type in `source` does not convert to the table's without loss
    (path, source type, table type)."""
    if table.sql == "JSON":
        return []
    if table.is_struct and source.is_struct:
        return [
            d
            for name, kind in source.fields
            if name in table.field_map
            for d in drifted(table.field_map[name], kind, (*parts, name))
        ]
    if table.is_list and source.is_list:
        return drifted(table.element, source.element, (*parts, None))
    if table.is_leaf and source.is_leaf and _leaf_converts(source.sql, table.sql):
        return []
    return [(parts, source.sql, table.sql)]


def convert_sql(expr: str, source: Kind, target: Kind, depth: int = 0) -> str:
    """SQL turning `expr` (of type `source`) into `target`, given drifted() found nothing and
    every source field exists in the target. One cast where DuckDB's own conversion is exact
    (missing struct fields become NULL, integers widen); field by field where GA4 keeps a value
    differently (a timestamp as INT64 microseconds, a date as YYYYMMDD text, any value in a
    JSON field as its JSON text, a JSON string in a text field as the string)."""
    if source.sql == target.sql:
        return expr
    if not _needs_rewrite(source, target):
        return f"cast({expr} as {target.sql})"
    if target.sql == "JSON":
        return f"to_json({expr})"
    if source.sql == "JSON" and target.sql == "VARCHAR":
        return f"({expr} ->> '$')"
    if target.is_struct:
        values = ", ".join(
            f"{quote_ident(name)} := "
            + (
                convert_sql(f"{expr}.{quote_ident(name)}", source.field_map[name], kind, depth)
                if name in source.field_map
                else f"null::{kind.sql}"
            )
            for name, kind in target.fields
        )
        return f"case when {expr} is null then null else struct_pack({values}) end"
    if target.is_list:
        item = f"x{depth}"
        inner = convert_sql(item, source.element, target.element, depth + 1)
        return f"list_transform({expr}, lambda {item}: {inner})"
    if source.sql.startswith("TIMESTAMP"):
        return f"epoch_us({expr})"
    if source.sql == "DATE":
        return f"strftime({expr}, '%Y%m%d')"
    return f"cast({expr} as {target.sql})"


def _needs_rewrite(source: Kind, target: Kind) -> bool:
    if source.sql == target.sql:
        return False
    if target.sql == "JSON" or (source.sql == "JSON" and target.sql == "VARCHAR"):
        return True
    if target.is_struct and source.is_struct:
        return any(
            _needs_rewrite(kind, target.field_map[name])
            for name, kind in source.fields
            if name in target.field_map
        )
    if target.is_list and source.is_list:
        return _needs_rewrite(source.element, target.element)
    return source.sql.startswith("TIMESTAMP") or source.sql == "DATE"
