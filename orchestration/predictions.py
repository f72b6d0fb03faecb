"""Who will buy again and what they are worth: BG/NBD for repeat purchases and Gamma-Gamma for
spend (Fader, Hardie and Lee), fitted by maximum likelihood with SciPy.

The input is one row per buyer in days, as the BTYD models define it: `frequency` (repeat
purchase days), `recency_days` (first to last purchase day), `tenure_days` (first purchase day
to today) and `monetary_value` (mean amount of the repeat purchase days). Too few repeat buyers,
a fit that does not converge or parameters outside their range leave the predictions null with
the reason in `note`; the run goes on.

Both likelihoods and their gradients are written out here (a few lines each, in closed form)
and summed over the distinct histories, each weighted by its number of buyers: at a million
persons that is a third of the rows, and both fits plus the predictions take 3 to 4 s where a
general-purpose probabilistic library spent 15 to 20 s importing, compiling and evaluating the
same formulas (docs/predictions.md compares the two).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, hyp2f1

PURCHASE_PARAMETERS = ["r", "alpha", "a", "b"]
SPEND_PARAMETERS = ["p", "q", "v"]
OUTPUT_COLUMNS = [
    "customer_key",
    "p_alive",
    "expected_orders_90d",
    "expected_avg_order_value",
    "predicted_clv_12m",
    "note",
    "fit",
]
DAYS_PER_MONTH = 30

# When buyers' dropout barely varies, the likelihood keeps rising as the Beta's a and b grow
# together (their ratio fixed): unbounded, the optimizer runs off to ~1e48, where some
# predictions overflow to NaN. a and b are kept at most this, where the Beta is already a near
# point mass; the other parameters within a range no real fit comes near.
DROPOUT_BOUND = 1e4
PARAMETER_RANGE = (1e-9, 1e9)
# A fit whose search ended where the mean log-likelihood's gradient (over the parameters'
# logarithms) is at most this is at its optimum, whatever the optimizer's own verdict.
OPTIMAL_GRADIENT = 1e-6


@dataclass
class Fit:
    """What the asset's metadata shows: parameters, whether the optimizer converged, time."""

    buyers: int = 0
    repeat_buyers: int = 0
    purchase_parameters: dict[str, float] = field(default_factory=dict)
    spend_parameters: dict[str, float] = field(default_factory=dict)
    converged: bool = False
    seconds: float = 0.0
    purchase_note: str | None = None  # why there are no purchase predictions
    spend_note: str | None = None  # why there are no spend predictions

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def _distinct(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The distinct rows of `columns` (sorted, so the same buyers in any order give the same
    arrays and sums, bit for bit), how many buyers each stands for, and each buyer's row."""
    order = np.lexsort(columns[::-1])
    ordered = [column[order] for column in columns]
    first = np.concatenate([[True], np.any([np.diff(c) != 0 for c in ordered], axis=0)])
    starts = np.flatnonzero(first)
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    counts = np.diff(np.append(starts, len(order)))
    return [c[starts] for c in ordered], counts.astype(float), inverse


def _maximize(
    objective, names: list[str], upper: dict[str, float]
) -> tuple[dict[str, float], bool]:
    """Maximize a log-likelihood over positive parameters, on their logarithms (L-BFGS-B).
    `objective(parameters)` returns the mean log-likelihood and its gradient."""

    def negative(theta: np.ndarray) -> tuple[float, np.ndarray]:
        parameters = np.exp(theta)
        value, gradient = objective(*parameters)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(theta)
        return -value, -gradient * parameters  # the chain rule through exp

    bounds = [
        (math.log(PARAMETER_RANGE[0]), math.log(upper.get(name, PARAMETER_RANGE[1])))
        for name in names
    ]
    with np.errstate(all="ignore"):
        result = minimize(
            negative,
            np.zeros(len(names)),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9},
        )
    # Newer SciPy ends a search "ABNORMAL" when no step improves on a point already optimal
    # to float precision (CDNOW's spend fit, gradient 5e-8): judged by the gradient there.
    converged = result.success or bool(np.max(np.abs(result.jac)) < OPTIMAL_GRADIENT)
    return dict(zip(names, np.exp(result.x).tolist(), strict=True)), converged


def fit_purchases(
    frequency: np.ndarray, recency: np.ndarray, tenure: np.ndarray
) -> tuple[dict[str, float], bool]:
    """BG/NBD's maximum likelihood (r, alpha, a, b) for buyers with `frequency` repeat
    purchases, the last at `recency`, observed for `tenure` (any one time unit)."""
    (x, t_x, T), weight, _ = _distinct(frequency, recency, tenure)
    weight /= weight.sum()
    repeat = x > 0
    # terms that depend on the frequency only are computed once per distinct frequency
    xs, at = np.unique(x, return_inverse=True)

    def log_likelihood(r, alpha, a, b):
        log_tx, log_T = np.log(alpha + t_x), np.log(alpha + T)
        log_c3 = (r + x) * (log_tx - log_T)  # ((alpha + t_x) / (alpha + T)) ** (r + x)
        log_c4 = np.where(repeat, np.log(a) - np.log(np.where(repeat, b + x - 1, 1)), -np.inf)
        log_s = np.logaddexp(log_c3, log_c4)
        w3, w4 = np.exp(log_c3 - log_s), np.exp(log_c4 - log_s)
        per_x = (
            gammaln(r + xs)
            - gammaln(r)
            + gammaln(a + b)
            + gammaln(b + xs)
            - gammaln(b)
            - gammaln(a + b + xs)
        )
        value = per_x[at] + r * math.log(alpha) - (r + x) * log_tx + log_s
        d_r = (digamma(r + xs) - digamma(r))[at] + math.log(alpha) - log_tx + w3 * (log_tx - log_T)
        d_alpha = (
            r / alpha
            - (r + x) / (alpha + t_x)
            + w3 * (r + x) * (1 / (alpha + t_x) - 1 / (alpha + T))
        )
        d_ab = digamma(a + b) - digamma(a + b + xs)
        d_a = d_ab[at] + w4 / a
        d_b = (d_ab + digamma(b + xs) - digamma(b))[at] - w4 / np.where(repeat, b + x - 1, 1)
        gradient = np.array([np.sum(weight * d) for d in (d_r, d_alpha, d_a, d_b)])
        return np.sum(weight * value), gradient

    return _maximize(log_likelihood, PURCHASE_PARAMETERS, {"a": DROPOUT_BOUND, "b": DROPOUT_BOUND})


def fit_spend(frequency: np.ndarray, monetary_value: np.ndarray) -> tuple[dict[str, float], bool]:
    """Gamma-Gamma's maximum likelihood (p, q, v) for repeat buyers with `frequency` repeat
    purchases of mean value `monetary_value`."""
    (x, m), weight, _ = _distinct(frequency, monetary_value)
    weight /= weight.sum()
    log_m, log_x = np.log(m), np.log(x)

    def log_likelihood(p, q, v):
        px = p * x
        log_total = np.log(x * m + v)
        value = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * math.log(v)
            + (px - 1) * log_m
            + px * log_x
            - (px + q) * log_total
        )
        psi = digamma(px + q)
        d_p = x * (psi - digamma(px) + log_m + log_x - log_total)
        d_q = psi - digamma(q) + math.log(v) - log_total
        d_v = q / v - (px + q) / (x * m + v)
        gradient = np.array([np.sum(weight * d) for d in (d_p, d_q, d_v)])
        return np.sum(weight * value), gradient

    return _maximize(log_likelihood, SPEND_PARAMETERS, {})


def expected_purchases(parameters: dict[str, float], x, t_x, T, t) -> np.ndarray:
    """BG/NBD: purchases expected in the next `t` of a buyer with history (x, t_x, T)."""
    r, alpha, a, b = (parameters[name] for name in PURCHASE_PARAMETERS)
    numerator = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
        r + x, b + x, a + b + x - 1, t / (alpha + T + t)
    )
    numerator *= (a + b + x - 1) / (a - 1)
    denominator = 1 + (x > 0) * (a / (b + np.maximum(x, 1) - 1)) * (
        (alpha + T) / (alpha + t_x)
    ) ** (r + x)
    return numerator / denominator


def probability_alive(parameters: dict[str, float], x, t_x, T) -> np.ndarray:
    """BG/NBD: the probability that a buyer with history (x, t_x, T) has not left."""
    r, alpha, a, b = (parameters[name] for name in PURCHASE_PARAMETERS)
    log_odds = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(
        a / (b + np.maximum(x, 1) - 1)
    )
    return np.where(x == 0, 1.0, 1 / (1 + np.exp(log_odds)))


def expected_spend(parameters: dict[str, float], x, m) -> np.ndarray:
    """Gamma-Gamma: a purchase's expected value, from the population's mean towards the
    buyer's own mean `m` the more repeat purchases `x` they made."""
    p, q, v = (parameters[name] for name in SPEND_PARAMETERS)
    weight = p * x / (p * x + q - 1)
    return (1 - weight) * (v * p / (q - 1)) + weight * m


def _usable(parameters: dict[str, float], floor: float = 1e-6) -> bool:
    return all(math.isfinite(v) and v > floor for v in parameters.values())


def predict(
    history: pd.DataFrame,
    *,
    min_repeat_buyers: int,
    horizon_days: int = 90,
    clv_months: int = 12,
    monthly_discount_rate: float = 0.0,
) -> tuple[pd.DataFrame, Fit]:
    """One row per buyer of `history` (customer_key, frequency, recency_days, tenure_days,
    monetary_value) with the predictions, a `note` where they are null, and the fit as JSON."""
    started = time.perf_counter()
    frequency = history["frequency"].to_numpy(dtype=float)
    recency = history["recency_days"].to_numpy(dtype=float)
    tenure = history["tenure_days"].to_numpy(dtype=float)
    monetary = history["monetary_value"].astype("Float64").fillna(0).to_numpy(dtype=float)
    fit = Fit(buyers=len(history), repeat_buyers=int((frequency > 0).sum()))
    out = pd.DataFrame({"customer_key": history["customer_key"].reset_index(drop=True)})
    for column in OUTPUT_COLUMNS[1:5]:
        out[column] = np.nan

    if fit.repeat_buyers < min_repeat_buyers:
        fit.purchase_note = (
            f"too few repeat buyers to fit ({fit.repeat_buyers} < {min_repeat_buyers})"
        )
    else:
        fit.purchase_parameters, fit.converged = fit_purchases(frequency, recency, tenure)
        if not fit.converged:
            fit.purchase_note = "the purchase model (BG/NBD) did not converge"
        elif not _usable(fit.purchase_parameters):
            fit.purchase_note = "the purchase model (BG/NBD) has degenerate parameters"

    spends = (frequency > 0) & (monetary > 0)
    if fit.purchase_note is None and not spends.any():
        fit.spend_note = "no repeat purchase has an amount to fit the spend model (Gamma-Gamma)"
    elif fit.purchase_note is None:
        fit.spend_parameters, converged = fit_spend(frequency[spends], monetary[spends])
        fit.converged = fit.converged and converged
        if not converged:
            fit.spend_note = "the spend model (Gamma-Gamma) did not converge"
        elif not _usable(fit.spend_parameters) or fit.spend_parameters["q"] <= 1:
            # the mean spend is p·v / (q − 1): finite only for q > 1
            fit.spend_note = "the spend model (Gamma-Gamma) has degenerate parameters"

    if fit.purchase_note is None:
        # computed once per distinct history, then handed to each of its buyers
        (x, t_x, T), _, buyer = _distinct(frequency, recency, tenure)
        purchases = fit.purchase_parameters
        with np.errstate(all="ignore"):
            out["p_alive"] = probability_alive(purchases, x, t_x, T)[buyer]
            out["expected_orders_90d"] = expected_purchases(purchases, x, t_x, T, horizon_days)[
                buyer
            ]
            if fit.spend_note is None:
                spend = expected_spend(fit.spend_parameters, frequency, monetary)
                # each month's expected purchases, discounted to today
                discounted, before = np.zeros(len(x)), 0.0
                for month in range(1, clv_months + 1):
                    cumulative = expected_purchases(purchases, x, t_x, T, month * DAYS_PER_MONTH)
                    discounted += (cumulative - before) / (1 + monthly_discount_rate) ** month
                    before = cumulative
                out["expected_avg_order_value"] = spend
                out["predicted_clv_12m"] = spend * discounted[buyer]
    note = fit.purchase_note or fit.spend_note
    out["note"] = note
    if fit.purchase_note is None and fit.spend_note is not None:
        out["note"] = f"no spend predictions: {fit.spend_note}"
    fit.seconds = round(time.perf_counter() - started, 2)
    out["fit"] = fit.to_json()
    # nullable types: a missing value reaches the warehouse as NULL, not NaN or an untyped NULL
    out = out.astype({column: "Float64" for column in OUTPUT_COLUMNS[1:5]})
    return out.astype({"note": "string", "fit": "string"})[OUTPUT_COLUMNS], fit


def holdout(
    purchases: pd.DataFrame, cutoff, end, *, min_repeat_buyers: int
) -> dict[str, float | int]:
    """How well the purchase model predicts, on the data itself: fit on the purchase days
    before `cutoff` (`customer_key`, `order_day`), predict each buyer's purchase days in
    [cutoff, end), and compare with what happened, beside the naive forecast that every buyer
    keeps their repeat purchases per day so far."""
    days = purchases[["customer_key", "order_day"]].drop_duplicates()
    days = days.assign(order_day=pd.to_datetime(days["order_day"]))
    cutoff, end = pd.Timestamp(cutoff), pd.Timestamp(end)
    before = days[days["order_day"] < cutoff].groupby("customer_key")["order_day"]
    summary = pd.DataFrame(
        {
            "frequency": before.count() - 1,
            "recency_days": (before.max() - before.min()).dt.days,
            "tenure_days": (cutoff - before.min()).dt.days,
            "monetary_value": 0.0,
        }
    ).reset_index()
    after = days[(days["order_day"] >= cutoff) & (days["order_day"] < end)]
    actual = (
        after.groupby("customer_key").size().reindex(summary["customer_key"], fill_value=0)
    ).to_numpy(dtype=float)
    horizon = (end - cutoff).days
    predicted, fit = predict(summary, min_repeat_buyers=min_repeat_buyers, horizon_days=horizon)
    model = predicted["expected_orders_90d"].to_numpy(dtype=float)
    naive = np.where(
        summary["tenure_days"] > 0,
        summary["frequency"] / summary["tenure_days"].clip(lower=1) * horizon,
        0.0,
    )
    return {
        "buyers": len(summary),
        "holdout_days": horizon,
        "actual_total": float(actual.sum()),
        "model_total": float(model.sum()),
        "naive_total": float(naive.sum()),
        "model_mae": float(np.abs(model - actual).mean()),
        "naive_mae": float(np.abs(naive - actual).mean()),
        "model_correlation": float(np.corrcoef(model, actual)[0, 1]),
        "naive_correlation": float(np.corrcoef(naive, actual)[0, 1]),
        "converged": fit.converged,
    }
