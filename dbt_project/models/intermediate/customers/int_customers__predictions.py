"""Predicted purchases, spend and churn risk per buyer (orchestration/predictions.py: BG/NBD and
Gamma-Gamma, fitted by maximum likelihood with SciPy). A Python model because the fit is a
numerical optimization; the `customer_predictions` mart types the columns under a contract.
Every row carries the fit (parameters, convergence, seconds) as JSON, which the Dagster asset
shows as metadata."""

from orchestration.predictions import predict
from orchestration.spark import from_pandas, to_pandas


def model(dbt, session):
    dbt.config(materialized="table")
    history = to_pandas(dbt.ref("int_customers__purchase_history"))
    predictions, _ = predict(
        history,
        min_repeat_buyers=int(dbt.config.get("min_repeat_buyers")),
        monthly_discount_rate=float(dbt.config.get("monthly_discount_rate")),
    )
    return from_pandas(session, predictions)
