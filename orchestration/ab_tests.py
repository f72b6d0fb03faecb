"""A/B test statistics for the `ab_tests` mart (its dbt Python model calls `ab_tests`).

Per campaign with two or more variants and per metric (open, click, conversion), the control
`variant_a` (the alphabetically first variant) is compared with `variant_b`: the other variant,
or with more than two variants the other one with the highest rate for that metric (ties: the
alphabetically first). The difference rate_b - rate_a is tested with statsmodels' two-sided
Wald test for two independent proportions and given its Wald confidence interval: both use the
same unpooled variance, so the interval excludes 0 exactly when p < its alpha.

A winner is named only when p < `significance` and both arms have at least `min_recipients`
recipients: the variant with the higher rate. Where the Wald variance is 0 (both arms at 0 %
or both at 100 %, or one at each) there is nothing to test: p-value and interval are null and
there is no winner.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

METHOD = "wald"
# metric -> the column of successes among `recipients`
METRICS = {"open": "unique_opens", "click": "unique_clicks", "conversion": "conversions"}
COLUMNS = [
    "campaign_id",
    "metric",
    "variant_a",
    "variant_b",
    "rate_a",
    "rate_b",
    "recipients_a",
    "recipients_b",
    "lift",
    "p_value",
    "ci_low",
    "ci_high",
    "winner",
]


@dataclass(frozen=True)
class Comparison:
    lift: float  # rate_b - rate_a
    p_value: float | None
    ci_low: float | None
    ci_high: float | None


def compare(
    successes_a: int, recipients_a: int, successes_b: int, recipients_b: int, alpha: float = 0.05
) -> Comparison:
    """rate_b - rate_a, its two-sided p-value and (1 - alpha) interval (None when untestable)."""
    lift = successes_b / recipients_b - successes_a / recipients_a
    args = (successes_b, recipients_b, successes_a, recipients_a)
    # a variance of 0 divides by 0 inside statsmodels: it returns NaN, checked below
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        test = test_proportions_2indep(*args, method=METHOD, compare="diff")
        low, high = confint_proportions_2indep(*args, method=METHOD, compare="diff", alpha=alpha)
    p_value = float(test.pvalue)
    if not math.isfinite(p_value) or not float(test.variance) > 0:
        return Comparison(lift, None, None, None)
    return Comparison(lift, p_value, float(low), float(high))


def winner(
    variant_a: str,
    variant_b: str,
    rate_a: float,
    rate_b: float,
    recipients_a: int,
    recipients_b: int,
    p_value: float | None,
    min_recipients: int,
    significance: float,
) -> str | None:
    if p_value is None or p_value >= significance:
        return None
    if min(recipients_a, recipients_b) < min_recipients or rate_a == rate_b:
        return None
    return variant_b if rate_b > rate_a else variant_a


def ab_tests(variants: pd.DataFrame, min_recipients: int, significance: float) -> pd.DataFrame:
    """One row per campaign and metric from one row per campaign and variant with
    `recipients`, `unique_opens`, `unique_clicks` and `conversions`. Rows without a variant
    (a campaign that was not split) take no part."""
    rows = []
    variants = variants[variants["variant"].notna() & (variants["recipients"] > 0)]
    for campaign_id, arms in variants.groupby("campaign_id", sort=True):
        if len(arms) < 2:
            continue
        arms = arms.sort_values("variant")
        control, others = arms.iloc[0], arms.iloc[1:]
        for metric, successes in METRICS.items():
            rates = others[successes] / others["recipients"]
            # the best challenger; on equal rates the alphabetically first (stable sort)
            challenger = others.loc[rates.sort_values(ascending=False, kind="stable").index[0]]
            n_a, n_b = int(control["recipients"]), int(challenger["recipients"])
            k_a, k_b = int(control[successes]), int(challenger[successes])
            result = compare(k_a, n_a, k_b, n_b, alpha=significance)
            rate_a, rate_b = k_a / n_a, k_b / n_b
            rows.append(
                {
                    "campaign_id": campaign_id,
                    "metric": metric,
                    "variant_a": control["variant"],
                    "variant_b": challenger["variant"],
                    "rate_a": rate_a,
                    "rate_b": rate_b,
                    "recipients_a": n_a,
                    "recipients_b": n_b,
                    "lift": result.lift,
                    "p_value": result.p_value,
                    "ci_low": result.ci_low,
                    "ci_high": result.ci_high,
                    "winner": winner(
                        control["variant"],
                        challenger["variant"],
                        rate_a,
                        rate_b,
                        n_a,
                        n_b,
                        result.p_value,
                        min_recipients,
                        significance,
                    ),
                }
            )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype(
        {
            "campaign_id": "string",
            "metric": "string",
            "variant_a": "string",
            "variant_b": "string",
            "rate_a": "float64",
            "rate_b": "float64",
            "recipients_a": "int64",
            "recipients_b": "int64",
            "lift": "float64",
            "p_value": "float64",
            "ci_low": "float64",
            "ci_high": "float64",
            "winner": "string",
        }
    )
