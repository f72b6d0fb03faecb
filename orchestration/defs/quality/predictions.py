"""Predictions that could not be made are reported, never blocking: with too few repeat
buyers, or a fit that does not converge, `customer_predictions` publishes null values with the
reason in `note`, and this check turns that into a warning in the run and the UI."""

import dagster as dg

from orchestration.resources import WarehouseResource


@dg.asset_check(
    asset=dg.AssetKey(["marts", "customer_predictions"]),
    name="predictions_made",
    blocking=False,
    description="Warns when the purchase or spend model could not be fitted.",
)
def predictions_made(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        notes = con.execute(
            "select note, count(*) from marts.customer_predictions "
            "where note is not null group by 1 order by 2 desc"
        ).fetchall()
    return dg.AssetCheckResult(
        passed=not notes,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"buyers_without_predictions": sum(n for _, n in notes)},
        description="; ".join(f"{note} ({n} buyers)" for note, n in notes) or None,
    )
