"""Money in one currency: every valid order must have a usable exchange rate (the Sheets tab
`fx_rates`, at most `fx_max_rate_age_days` old) before any amount is published. An order
without one would count as nothing, or as the wrong money, in revenue, order values, value
tiers and campaign revenue; so the check blocks, naming each currency and the days missing."""

import dagster as dg
import duckdb

from orchestration.accepted import dbt_vars
from orchestration.resources import WarehouseResource

ORDERS = "intermediate.int_customers__orders"


def missing_rates(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per currency: valid orders without a usable rate, and their days (UTC)."""
    rows = con.execute(
        f"select currency, count(*), list(distinct order_day order by order_day) "
        f"from {ORDERS} where is_valid and reporting_amount is null group by 1 order by 1"
    ).fetchall()
    return [
        {"currency": currency, "orders": orders, "days": [d.isoformat() for d in days]}
        for currency, orders, days in rows
    ]


def describe(missing: list[dict], reporting_currency: str) -> str:
    def days(found: list[str]) -> str:
        shown = ", ".join(found[:5])
        return shown + (f" and {len(found) - 5} more days" if len(found) > 5 else "")

    gaps = "; ".join(f"{m['currency']}: {m['orders']} orders on {days(m['days'])}" for m in missing)
    return (
        f"no rate into {reporting_currency} at most {dbt_vars()['fx_max_rate_age_days']} days "
        f"old for {gaps}. Add the rates "
        "(rate_date, currency, rate) to the fx_rates tab and run again"
    )


@dg.asset_check(
    asset=dg.AssetKey(ORDERS.split(".")),
    name="fx_rates_cover_orders",
    blocking=True,
    description="Every valid order has a rate into the reporting currency (fx_rates tab).",
)
def fx_rates_cover_orders(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        missing = missing_rates(con)
        reporting = con.execute(f"select any_value(reporting_currency) from {ORDERS}").fetchone()
    metadata = {"missing": missing, "reporting_currency": reporting[0]}
    if not missing:
        return dg.AssetCheckResult(passed=True, metadata=metadata)
    return dg.AssetCheckResult(
        passed=False, metadata=metadata, description=describe(missing, reporting[0])
    )
