"""Who will buy again and what they are worth: BG/NBD for repeat purchases and Gamma-Gamma for
spend (Fader, Hardie and Lee), from pymc-marketing, fitted by maximum likelihood (maximum a
posteriori under flat priors, which is the likelihood's maximum: on the CDNOW benchmark this
reproduces the published parameters).

The input is one row per buyer in days, as the BTYD models define it: `frequency` (repeat
purchase days), `recency_days` (first to last purchase day), `tenure_days` (first purchase day
to today) and `monetary_value` (mean amount of the repeat purchase days). Too few repeat buyers,
a fit that does not converge or parameters outside their range leave the predictions null with
the reason in `note`; the run goes on.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

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


# When buyers' dropout barely varies, the likelihood keeps rising as the Beta's a and b grow
# together (their ratio fixed): the optimizer runs off to ~1e48, where some predictions
# overflow to NaN. Such a fit is redone with a and b flat up to this bound, where the Beta is
# already a near point mass.
DROPOUT_BOUND = 1e4


def _flat(names: list[str], bounded: tuple[str, ...] = ()) -> dict:
    from pymc_extras.prior import Prior

    return {
        name: Prior("Uniform", lower=0, upper=DROPOUT_BOUND)
        if name in bounded
        else Prior("HalfFlat")
        for name in names
    }


def _maximum_likelihood(model, parameters: list[str]) -> tuple[dict[str, float], bool]:
    """Fit `model` (built) by MAP and say whether scipy's optimizer reported success.
    pymc-marketing's `fit` keeps only the optimum from `pymc.find_MAP`: its one call is let
    through with the optimizer's result kept as well (fitting twice would compile the
    model's graphs twice, seconds at a million buyers)."""
    from unittest import mock

    import pymc as pm

    find_map, kept = pm.find_MAP, {}

    def find_map_keeping_the_result(*args, **kwargs):
        point, kept["result"] = find_map(*args, return_raw=True, **kwargs)
        return point

    with warnings.catch_warnings(), mock.patch.object(pm, "find_MAP", find_map_keeping_the_result):
        warnings.simplefilter("ignore")
        model.fit(method="map", progressbar=False)
    estimate = {name: float(model.idata.posterior[name].values.squeeze()) for name in parameters}
    result = kept.get("result")
    converged = result is not None and bool(result.success)
    return estimate, converged


def _usable(parameters: dict[str, float], floor: float = 1e-6) -> bool:
    return all(math.isfinite(v) and v > floor for v in parameters.values())


def fit_purchases(summary: pd.DataFrame):
    """BG/NBD on `customer_id`, `frequency`, `recency`, `T` (any one time unit)."""
    from pymc_marketing.clv import BetaGeoModel

    model = BetaGeoModel(model_config=_flat(PURCHASE_PARAMETERS))
    model.build_model(summary[["customer_id", "frequency", "recency", "T"]])
    parameters, converged = _maximum_likelihood(model, PURCHASE_PARAMETERS)
    if converged and max(parameters["a"], parameters["b"]) > DROPOUT_BOUND:
        model = BetaGeoModel(model_config=_flat(PURCHASE_PARAMETERS, bounded=("a", "b")))
        model.build_model(summary[["customer_id", "frequency", "recency", "T"]])
        parameters, converged = _maximum_likelihood(model, PURCHASE_PARAMETERS)
    return model, parameters, converged


def fit_spend(repeat: pd.DataFrame):
    """Gamma-Gamma on repeat buyers' `customer_id`, `frequency`, `monetary_value`."""
    from pymc_marketing.clv import GammaGammaModel

    model = GammaGammaModel(model_config=_flat(SPEND_PARAMETERS))
    model.build_model(repeat[["customer_id", "frequency", "monetary_value"]])
    parameters, converged = _maximum_likelihood(model, SPEND_PARAMETERS)
    return model, parameters, converged


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
    fit = Fit(buyers=len(history), repeat_buyers=int((history["frequency"] > 0).sum()))
    data = pd.DataFrame(
        {
            "customer_id": np.arange(len(history)),
            "frequency": history["frequency"].to_numpy(dtype=float),
            "recency": history["recency_days"].to_numpy(dtype=float),
            "T": history["tenure_days"].to_numpy(dtype=float),
            "monetary_value": history["monetary_value"].fillna(0).to_numpy(dtype=float),
        }
    )
    # The fits read the buyers in the order of their keys: a likelihood is a sum, and the last
    # bits of a sum depend on the order of its terms, which the warehouse does not fix. So the
    # same buyers give the same fit, bit for bit, however they were read.
    by_key = data.iloc[np.argsort(history["customer_key"].to_numpy(dtype=str), kind="stable")]
    out = pd.DataFrame({"customer_key": history["customer_key"].to_numpy()})
    for column in OUTPUT_COLUMNS[1:5]:
        out[column] = np.nan

    purchases = None
    if fit.repeat_buyers < min_repeat_buyers:
        fit.purchase_note = (
            f"too few repeat buyers to fit ({fit.repeat_buyers} < {min_repeat_buyers})"
        )
    else:
        purchases, fit.purchase_parameters, converged = fit_purchases(by_key)
        fit.converged = converged
        if not converged:
            fit.purchase_note = "the purchase model (BG/NBD) did not converge"
        elif not _usable(fit.purchase_parameters):
            fit.purchase_note = "the purchase model (BG/NBD) has degenerate parameters"
        if fit.purchase_note:
            purchases = None

    spend = None
    repeat = by_key[(by_key["frequency"] > 0) & (by_key["monetary_value"] > 0)]
    if purchases is not None:
        spend, fit.spend_parameters, converged = fit_spend(repeat)
        fit.converged = fit.converged and converged
        if not converged:
            fit.spend_note = "the spend model (Gamma-Gamma) did not converge"
        elif not _usable(fit.spend_parameters) or fit.spend_parameters["q"] <= 1:
            # the mean spend is p·v / (q − 1): finite only for q > 1
            fit.spend_note = "the spend model (Gamma-Gamma) has degenerate parameters"
        if fit.spend_note:
            spend = None

    if purchases is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["p_alive"] = purchases.expected_probability_alive(data=data).values.squeeze()
            out["expected_orders_90d"] = purchases.expected_purchases(
                data=data, future_t=horizon_days
            ).values.squeeze()
            if spend is not None:
                out["expected_avg_order_value"] = spend.expected_customer_spend(
                    data=data
                ).values.squeeze()
                out["predicted_clv_12m"] = spend.expected_customer_lifetime_value(
                    purchases,
                    data=data.copy(),  # the library adds a column to the frame it is given
                    future_t=clv_months,
                    discount_rate=monthly_discount_rate,
                    time_unit="D",
                ).values.squeeze()
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
