"""A/B test statistics per campaign and metric (orchestration/ab_tests.py: statsmodels' Wald
test and interval for the difference of two proportions). A Python model because the
statistics come from a library, not from formulas written out in SQL; the `ab_tests` mart
types its columns under a contract."""

from orchestration.ab_tests import ab_tests
from orchestration.spark import from_pandas, to_pandas


def model(dbt, session):
    dbt.config(materialized="table")
    variants = to_pandas(dbt.ref("int_campaigns__variant_results"))
    results = ab_tests(
        variants,
        min_recipients=int(dbt.config.get("min_recipients")),
        significance=float(dbt.config.get("significance")),
    )
    return from_pandas(session, results)
