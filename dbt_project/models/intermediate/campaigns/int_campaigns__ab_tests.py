"""A/B test statistics per campaign and metric (orchestration/ab_tests.py: statsmodels' Wald
test and interval for the difference of two proportions). A Python model because the
statistics come from a library, not from formulas written out in SQL; the `ab_tests` mart
types its columns under a contract."""

from orchestration.ab_tests import ab_tests


def model(dbt, session):
    dbt.config(materialized="table")
    variants = dbt.ref("int_campaigns__variant_results").df()
    return ab_tests(
        variants,
        min_recipients=int(dbt.config.get("min_recipients")),
        significance=float(dbt.config.get("significance")),
    )
