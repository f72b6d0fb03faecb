"""GA4 export rows in the full current BigQuery export schema, written as BigQuery writes them.

The schema below is GA4's BigQuery export schema as Google documents it (its 30 top-level
fields, `items[].item_params`, `session_traffic_source_last_click` with its six campaign
records, `collected_traffic_source`, `publisher`, `privacy_info`, `is_active_user`, the
`batch_*` fields), written here independently of the loader's own copy so that each checks
the other. `events()` invents a day of a web and an app stream: page views, ecommerce with
items and item parameters, ad impressions with publisher revenue, and consent-mode events (
analytics storage denied: GA4 exports them without `user_pseudo_id`). The writers produce
NDJSON (BigQuery's convention: INT64 as strings, NULL fields left out), Parquet and Avro (a
nullable union per field, named records, repeated fields as arrays).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq

S, INT, F, B = "STRING", "INTEGER", "FLOAT", "BOOLEAN"


def _fields(*names: str, kind: str = S) -> dict:
    return dict.fromkeys(names, kind)


VALUE = {"string_value": S, "int_value": INT, "float_value": F, "double_value": F}
# A dict is a RECORD, a one-element list of a dict a REPEATED RECORD, a string a scalar type.
EXPORT_SCHEMA: dict = {
    "event_date": S,
    "event_timestamp": INT,
    "event_name": S,
    "event_params": [{"key": S, "value": VALUE}],
    "event_previous_timestamp": INT,
    "event_value_in_usd": F,
    "event_bundle_sequence_id": INT,
    "event_server_timestamp_offset": INT,
    "user_id": S,
    "user_pseudo_id": S,
    "privacy_info": _fields("analytics_storage", "ads_storage", "uses_transient_token"),
    "user_properties": [{"key": S, "value": {**VALUE, "set_timestamp_micros": INT}}],
    "user_first_touch_timestamp": INT,
    "user_ltv": {"revenue": F, "currency": S},
    "device": {
        **_fields(
            "category",
            "mobile_brand_name",
            "mobile_model_name",
            "mobile_marketing_name",
            "mobile_os_hardware_model",
            "operating_system",
            "operating_system_version",
            "vendor_id",
            "advertising_id",
            "language",
            "is_limited_ad_tracking",
        ),
        "time_zone_offset_seconds": INT,
        "browser": S,
        "browser_version": S,
        "web_info": _fields("browser", "browser_version", "hostname"),
    },
    "geo": _fields("city", "country", "continent", "region", "sub_continent", "metro"),
    "app_info": _fields("id", "version", "install_store", "firebase_app_id", "install_source"),
    "traffic_source": _fields("name", "medium", "source"),
    "stream_id": S,
    "platform": S,
    "event_dimensions": {"hostname": S},
    "ecommerce": {
        "total_item_quantity": INT,
        **_fields(
            "purchase_revenue_in_usd",
            "purchase_revenue",
            "refund_value_in_usd",
            "refund_value",
            "shipping_value_in_usd",
            "shipping_value",
            "tax_value_in_usd",
            "tax_value",
            kind=F,
        ),
        "unique_items": INT,
        "transaction_id": S,
    },
    "items": [
        {
            **_fields(
                "item_id",
                "item_name",
                "item_brand",
                "item_variant",
                "item_category",
                "item_category2",
                "item_category3",
                "item_category4",
                "item_category5",
            ),
            "price_in_usd": F,
            "price": F,
            "quantity": INT,
            **_fields(
                "item_revenue_in_usd", "item_revenue", "item_refund_in_usd", "item_refund", kind=F
            ),
            **_fields(
                "coupon",
                "affiliation",
                "location_id",
                "item_list_id",
                "item_list_name",
                "item_list_index",
                "promotion_id",
                "promotion_name",
                "creative_name",
                "creative_slot",
            ),
            "item_params": [{"key": S, "value": VALUE}],
        }
    ],
    "collected_traffic_source": _fields(
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
    "is_active_user": B,
    "batch_event_index": INT,
    "batch_page_id": INT,
    "batch_ordering_id": INT,
    "session_traffic_source_last_click": {
        "manual_campaign": _fields(
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
        "google_ads_campaign": _fields(
            "customer_id",
            "account_name",
            "campaign_id",
            "campaign_name",
            "ad_group_id",
            "ad_group_name",
        ),
        "cross_channel_campaign": _fields(
            "campaign_id",
            "campaign_name",
            "source",
            "medium",
            "source_platform",
            "default_channel_group",
            "primary_channel_group",
        ),
        "sa360_campaign": _fields(
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
        "cm360_campaign": _fields(
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
        "dv360_campaign": _fields(
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
    },
    "publisher": {"ad_revenue_in_usd": F, "ad_format": S, "ad_source_name": S, "ad_unit_id": S},
}


def leaf_paths(schema: dict = EXPORT_SCHEMA, prefix: str = "") -> dict[str, str]:
    """Every scalar field as `items[].item_params[].value.int_value` → its BigQuery type."""
    found = {}
    for name, kind in schema.items():
        path = f"{prefix}{name}"
        if isinstance(kind, list):
            found |= leaf_paths(kind[0], f"{path}[].")
        elif isinstance(kind, dict):
            found |= leaf_paths(kind, f"{path}.")
        else:
            found[path] = kind
    return found


# --- the events -------------------------------------------------------------------------------

NAMES = ("session_start", "page_view", "view_item", "add_to_cart", "purchase", "ad_impression")


def _param(key: str, value) -> dict:
    slot = {str: "string_value", int: "int_value", float: "double_value"}[type(value)]
    return {"key": key, "value": {slot: value}}


def events(day: dt.date, count: int, consent_share: float = 0.0) -> list[dict]:
    """`count` events of `day`; in every ten, the first `consent_share * 10` are consent-mode
    events (analytics storage denied: no user_pseudo_id, no user data, a transient token)."""
    start = dt.datetime.combine(day, dt.time(6), dt.UTC)
    rows = []
    for n in range(count):
        denied = n % 10 < round(consent_share * 10)
        app = n % 7 == 3
        name = NAMES[n % len(NAMES)]
        micros = int((start + dt.timedelta(seconds=37 * n)).timestamp() * 1_000_000) + n
        device_no = n % 23
        session = 1_792_000_000 + device_no
        item = {
            "item_id": f"SKU-{100 + n % 9}",
            "item_name": "Trail shoe",
            "item_brand": "Stride",
            "item_variant": "blue",
            "item_category": "shoes",
            "item_category2": "outdoor",
            "item_category3": None,
            "item_category4": None,
            "item_category5": None,
            "price_in_usd": 89.5,
            "price": 82.25,
            "quantity": 1 + n % 3,
            "item_revenue_in_usd": 89.5 if name == "purchase" else None,
            "item_revenue": 82.25 if name == "purchase" else None,
            "item_refund_in_usd": None,
            "item_refund": None,
            "coupon": "AUTUMN" if n % 2 else None,
            "affiliation": "Online store",
            "location_id": None,
            "item_list_id": "related",
            "item_list_name": "Related products",
            "item_list_index": str(n % 4),
            "promotion_id": None,
            "promotion_name": None,
            "creative_name": None,
            "creative_slot": None,
            "item_params": [_param("color_code", "B12"), _param("size_eu", 42 + n % 4)],
        }
        rows.append(
            {
                "event_date": day.strftime("%Y%m%d"),
                "event_timestamp": micros,
                "event_name": name,
                "event_params": [
                    *([] if denied else [_param("ga_session_id", session)]),
                    _param("ga_session_number", 1 + n % 5),
                    _param("page_location", f"https://shop.example.com/p/{n % 9}"),
                    _param("page_title", "Trail shoe"),
                    _param("engagement_time_msec", 1200 + n),
                    *([_param("value", 82.25)] if name == "purchase" else []),
                ],
                "event_previous_timestamp": None if denied else micros - 86_400_000_000,
                "event_value_in_usd": 89.5 if name == "purchase" else None,
                "event_bundle_sequence_id": 10_000 + n,
                "event_server_timestamp_offset": 1_234 + n % 50,
                "user_id": None if denied or n % 5 else f"C-{900_000 + device_no}",
                "user_pseudo_id": None if denied else f"{1_500_000_000 + device_no}.1791000000",
                "privacy_info": {
                    "analytics_storage": "No" if denied else "Yes",
                    "ads_storage": "No" if denied else "Yes",
                    "uses_transient_token": "Yes" if denied else "No",
                },
                "user_properties": []
                if denied
                else [
                    {
                        "key": "member_tier",
                        "value": {
                            "string_value": "gold",
                            "int_value": None,
                            "float_value": None,
                            "double_value": None,
                            "set_timestamp_micros": micros - 5_000_000,
                        },
                    }
                ],
                "user_first_touch_timestamp": None if denied else micros - 9_000_000_000,
                "user_ltv": None if denied else {"revenue": 164.5, "currency": "EUR"},
                "device": {
                    "category": "mobile" if app else "desktop",
                    "mobile_brand_name": "Google" if app else None,
                    "mobile_model_name": "Pixel 8" if app else None,
                    "mobile_marketing_name": "Pixel 8" if app else None,
                    "mobile_os_hardware_model": "shiba" if app else None,
                    "operating_system": "Android" if app else "Windows",
                    "operating_system_version": "Android 14" if app else "Windows 11",
                    "vendor_id": None,
                    "advertising_id": None,
                    "language": "de-de",
                    "is_limited_ad_tracking": "No",
                    "time_zone_offset_seconds": 3600 if app else None,
                    "browser": None,
                    "browser_version": None,
                    "web_info": None
                    if app
                    else {
                        "browser": "Chrome",
                        "browser_version": "129.0.6668.71",
                        "hostname": "shop.example.com",
                    },
                },
                "geo": {
                    "city": "Hamburg",
                    "country": "Germany",
                    "continent": "Europe",
                    "region": "Hamburg",
                    "sub_continent": "Western Europe",
                    "metro": "(not set)",
                },
                "app_info": {
                    "id": "com.example.shop",
                    "version": "5.2.1",
                    "install_store": "com.android.vending",
                    "firebase_app_id": "1:4000000002:android:5e1f",
                    "install_source": "com.android.vending",
                }
                if app
                else None,
                "traffic_source": {"name": "(organic)", "medium": "organic", "source": "google"},
                "stream_id": "4000000002" if app else "4000000001",
                "platform": "ANDROID" if app else "WEB",
                "event_dimensions": None if app else {"hostname": "shop.example.com"},
                "ecommerce": {
                    "total_item_quantity": item["quantity"],
                    "purchase_revenue_in_usd": 89.5,
                    "purchase_revenue": 82.25,
                    "refund_value_in_usd": None,
                    "refund_value": None,
                    "shipping_value_in_usd": 4.9,
                    "shipping_value": 4.5,
                    "tax_value_in_usd": 14.29,
                    "tax_value": 13.13,
                    "unique_items": 1,
                    "transaction_id": f"T-{70_000 + n}",
                }
                if name == "purchase"
                else None,
                "items": [item] if name in ("view_item", "add_to_cart", "purchase") else [],
                "collected_traffic_source": {
                    "manual_campaign_id": "c-17",
                    "manual_campaign_name": "autumn",
                    "manual_source": "newsletter",
                    "manual_medium": "email",
                    "manual_term": None,
                    "manual_content": "hero",
                    "manual_source_platform": "Manual",
                    "manual_creative_format": None,
                    "manual_marketing_tactic": "prospecting",
                    "gclid": None,
                    "dclid": None,
                    "srsltid": "AfmBOoq1",
                }
                if name == "session_start"
                else None,
                "is_active_user": not denied,
                "batch_event_index": None if app else n % 4,
                "batch_page_id": None if app else 1_700_000 + n // 4,
                "batch_ordering_id": None if app else n // 4,
                "session_traffic_source_last_click": {
                    "manual_campaign": {
                        "campaign_id": "c-17",
                        "campaign_name": "autumn",
                        "source": "newsletter",
                        "medium": "email",
                        "term": None,
                        "content": "hero",
                        "source_platform": "Manual",
                        "creative_format": None,
                        "marketing_tactic": "prospecting",
                    },
                    "google_ads_campaign": {
                        "customer_id": "123-456-7890",
                        "account_name": "Shop",
                        "campaign_id": "20931",
                        "campaign_name": "Brand",
                        "ad_group_id": "5501",
                        "ad_group_name": "Shoes",
                    },
                    "cross_channel_campaign": {
                        "campaign_id": "c-17",
                        "campaign_name": "autumn",
                        "source": "newsletter",
                        "medium": "email",
                        "source_platform": "Manual",
                        "default_channel_group": "Email",
                        "primary_channel_group": "Email",
                    },
                    "sa360_campaign": None,
                    "cm360_campaign": None,
                    "dv360_campaign": None,
                },
                "publisher": {
                    "ad_revenue_in_usd": 0.0125,
                    "ad_format": "Banner",
                    "ad_source_name": "AdMob Network",
                    "ad_unit_id": "ca-app-pub-1234/5678",
                }
                if name == "ad_impression"
                else None,
            }
        )
    return rows


# --- the writers --------------------------------------------------------------------------------


def bq_json(value):
    """BigQuery's JSON export: INT64 as strings, NULL fields left out."""
    if isinstance(value, dict):
        return {k: bq_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [bq_json(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def ndjson_lines(rows: list[dict]) -> list[str]:
    return [json.dumps(bq_json(row), separators=(",", ":")) for row in rows]


def write_ndjson(path: Path, rows_or_lines: list) -> None:
    lines = [r if isinstance(r, str) else ndjson_lines([r])[0] for r in rows_or_lines]
    text = "".join(line + "\n" for line in lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        path.write_text(text)


_ARROW = {S: pa.string(), INT: pa.int64(), F: pa.float64(), B: pa.bool_()}
_AVRO = {S: "string", INT: "long", F: "double", B: "boolean"}


def arrow_type(kind) -> pa.DataType:
    if isinstance(kind, list):
        return pa.list_(arrow_type(kind[0]))
    if isinstance(kind, dict):
        return pa.struct([(name, arrow_type(k)) for name, k in kind.items()])
    return _ARROW[kind]


def arrow_schema(schema: dict = EXPORT_SCHEMA) -> pa.Schema:
    return pa.schema([(name, arrow_type(kind)) for name, kind in schema.items()])


def write_parquet(path: Path, rows: list[dict], schema: pa.Schema | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema or arrow_schema()), path)


def _avro_type(kind, name: str):
    """BigQuery's Avro: a nullable union per field, a named record per RECORD, an array (not
    nullable) per REPEATED field."""
    if isinstance(kind, list):
        return {"type": "array", "items": _avro_type(kind[0], name)[1]}
    if isinstance(kind, dict):
        fields = [
            {"name": f, "type": _avro_type(k, f"{name}_{f}"), "default": None}
            if not isinstance(k, list)
            else {"name": f, "type": _avro_type(k, f"{name}_{f}"), "default": []}
            for f, k in kind.items()
        ]
        return ["null", {"type": "record", "name": name, "namespace": "bq", "fields": fields}]
    return ["null", _AVRO[kind]]


def avro_schema(schema: dict = EXPORT_SCHEMA) -> dict:
    return _avro_type(schema, "Root")[1]


def write_avro(path: Path, rows: list[dict], schema: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fastavro.writer(fh, fastavro.parse_schema(schema or avro_schema()), rows, codec="deflate")
