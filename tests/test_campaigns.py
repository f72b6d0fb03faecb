"""campaign_results and ab_tests: the statistics against statsmodels on counts made by hand,
the counts against the source events of the demo, and on generated data with planted
differences (tests/marketing_data.py) every figure computed here on its own."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import pandas as pd
import phonenumbers
import pytest
import yaml
from statsmodels.stats import proportion

from orchestration.ab_tests import ab_tests, compare
from orchestration.settings import DBT_PROJECT_DIR

from . import marketing_data
from .conftest import SEEDS, run_cdp

VARS = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
MIN_RECIPIENTS = VARS["ab_tests"]["min_recipients"]
SIGNIFICANCE = VARS["ab_tests"]["significance"]
ATTRIBUTION = dt.timedelta(days=VARS["attribution_days"])
VALID = set(VARS["valid_order_statuses"])
METRICS = {"open": "unique_opens", "click": "unique_clicks", "conversion": "conversions"}
COUNTS = ["recipients", "delivered", "unique_opens", "unique_clicks", "unsubscribes"]


def variants(*rows) -> pd.DataFrame:
    """(campaign, variant, recipients, opens, clicks, conversions) as the Python model gets them."""
    return pd.DataFrame(
        rows,
        columns=[
            "campaign_id",
            "variant",
            "recipients",
            "unique_opens",
            "unique_clicks",
            "conversions",
        ],
    )


def row(frame: pd.DataFrame, campaign: str, metric: str) -> pd.Series:
    found = frame[(frame.campaign_id == campaign) & (frame.metric == metric)]
    assert len(found) == 1, found
    return found.iloc[0]


# --- the statistics -----------------------------------------------------------------------


def test_difference_p_value_and_interval_are_statsmodels_wald():
    result = compare(120, 1000, 160, 1000)
    # rate_b - rate_a: B is statsmodels' first sample
    test = proportion.test_proportions_2indep(160, 1000, 120, 1000, method="wald", compare="diff")
    low, high = proportion.confint_proportions_2indep(
        160, 1000, 120, 1000, method="wald", compare="diff"
    )
    assert result.lift == pytest.approx(0.04)
    assert result.p_value == pytest.approx(test.pvalue, rel=1e-12)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), rel=1e-12)
    assert result.p_value < 0.05 and 0 < result.ci_low < result.lift < result.ci_high
    # the test and the interval agree: significant at 5 % exactly when 0 is outside
    for k_b in range(120, 200, 3):
        other = compare(120, 1000, k_b, 1000, alpha=0.05)
        assert (other.p_value < 0.05) == (not other.ci_low <= 0 <= other.ci_high)


def test_winner_only_for_a_significant_difference_between_large_enough_arms():
    frame = ab_tests(
        variants(
            ("c_real", "A", 1000, 120, 50, 10),
            ("c_real", "B", 1000, 160, 50, 10),
            ("c_none", "A", 1000, 150, 40, 10),
            ("c_none", "B", 1000, 160, 40, 12),
            ("c_small", "A", 150, 30, 10, 1),
            ("c_small", "B", 150, 70, 10, 1),
            ("c_worse", "A", 1000, 200, 50, 10),
            ("c_worse", "B", 1000, 140, 50, 10),
        ),
        min_recipients=200,
        significance=0.05,
    )
    real = row(frame, "c_real", "open")
    assert (real.variant_a, real.variant_b, real.rate_a, real.rate_b) == ("A", "B", 0.12, 0.16)
    assert (real.recipients_a, real.recipients_b) == (1000, 1000)
    assert real.p_value == pytest.approx(
        proportion.test_proportions_2indep(160, 1000, 120, 1000, method="wald").pvalue
    )
    assert real.winner == "B"
    # the same counts in both arms: p = 1, no winner
    assert row(frame, "c_real", "click").p_value == pytest.approx(1.0)
    assert pd.isna(row(frame, "c_real", "click").winner)
    # 15 % against 16 %: no real difference at this size
    assert row(frame, "c_none", "open").p_value > 0.05
    assert frame[frame.campaign_id == "c_none"].winner.isna().all()
    # 20 % against 47 % of 150 each: significant, but the arms are below min_recipients
    small = row(frame, "c_small", "open")
    assert small.p_value < 0.05 and pd.isna(small.winner)
    # the control can win
    assert row(frame, "c_worse", "open").winner == "A"
    assert len(frame) == 4 * 3


def test_more_than_two_variants_compare_the_best_challenger_with_the_control():
    frame = ab_tests(
        variants(
            ("c", "C", 500, 150, 20, 5),
            ("c", "A", 500, 100, 20, 5),
            ("c", "B", 500, 100, 45, 5),
        ),
        min_recipients=200,
        significance=0.05,
    )
    assert list(frame.variant_a.unique()) == ["A"]
    assert row(frame, "c", "open").variant_b == "C" and row(frame, "c", "open").winner == "C"
    assert row(frame, "c", "click").variant_b == "B" and row(frame, "c", "click").winner == "B"
    # B and C tie on conversions: the alphabetically first
    assert row(frame, "c", "conversion").variant_b == "B"


def test_degenerate_counts_give_no_test_and_no_winner():
    frame = ab_tests(
        variants(
            ("none", "A", 500, 0, 0, 0),
            ("none", "B", 500, 0, 0, 0),
            ("all", "A", 500, 500, 500, 500),
            ("all", "B", 500, 500, 500, 500),
            ("solo", "A", 900, 100, 10, 1),
        ),
        min_recipients=200,
        significance=0.05,
    )
    assert set(frame.campaign_id) == {"none", "all"}  # one variant: nothing to compare
    assert frame.p_value.isna().all() and frame.ci_low.isna().all()
    assert frame.ci_high.isna().all() and frame.winner.isna().all()
    assert (frame.lift == 0).all()
    empty = ab_tests(variants(("solo", "A", 900, 100, 10, 1)), 200, 0.05)
    assert empty.empty and list(empty.columns) == list(frame.columns)


# --- the demo -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_marts(demo_warehouse):
    with duckdb.connect(str(demo_warehouse.parent / "marts.duckdb"), read_only=True) as con:
        yield {
            "results": con.execute("select * from campaign_results").fetch_df(),
            "ab": con.execute("select * from ab_tests").fetch_df(),
        }


def erased_emails() -> set[str]:
    """Every email of the persons the demo's erasure requests name (by their ground truth)."""
    truth = pd.read_csv(SEEDS / "ground_truth.csv", dtype=str)
    owner = dict(
        zip(
            zip(truth.identifier_type, truth.identifier_value, strict=True),
            truth.person_id,
            strict=True,
        )
    )
    requests = pd.read_csv(SEEDS / "sheets" / "privacy_requests.csv", dtype=str)
    persons = set()
    for request in requests[requests.request_type == "erasure"].itertuples():
        if isinstance(request.email, str):
            persons.add(owner.get(("email", request.email.strip().lower())))
        if isinstance(request.phone, str):
            number = phonenumbers.parse(request.phone, "US")
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            persons.add(owner.get(("phone", e164)))
    persons.discard(None)
    assert persons
    return set(
        truth[truth.person_id.isin(persons) & (truth.identifier_type == "email")].identifier_value
    )


def counts_from_events(events: pd.DataFrame) -> pd.DataFrame:
    """campaign_results' counts from raw events (email, campaign_id, variant, event_type)."""
    events = events.assign(email=events.email.str.strip().str.lower())
    flags = events.assign(
        sent=events.event_type == "sent",
        bounced=events.event_type == "bounce",
        opened=events.event_type.isin(["open", "click"]),
        clicked=events.event_type == "click",
        unsubscribed=events.event_type == "unsubscribe",
    )
    per_recipient = flags.groupby(["campaign_id", "variant", "email"])[
        ["sent", "bounced", "opened", "clicked", "unsubscribed"]
    ].any()
    per_recipient = per_recipient[per_recipient.sent]
    grouped = per_recipient.groupby(["campaign_id", "variant"])
    return pd.DataFrame(
        {
            "recipients": grouped.size(),
            "delivered": grouped.size() - grouped.bounced.sum(),
            "unique_opens": grouped.opened.sum(),
            "unique_clicks": grouped.clicked.sum(),
            "unsubscribes": grouped.unsubscribed.sum(),
        }
    ).astype("int64")


def test_demo_counts_match_the_source_events(demo_marts):
    events = pd.read_csv(SEEDS / "shop" / "email_events.csv", dtype=str)
    gone = erased_emails()
    events = events[~events.email.str.strip().str.lower().isin(gone)]
    expected = counts_from_events(events)
    results = demo_marts["results"].set_index(["campaign_id", "variant"]).sort_index()
    assert len(results) == len(expected) == events.groupby(["campaign_id", "variant"]).ngroups
    pd.testing.assert_frame_equal(results[COUNTS], expected.sort_index(), check_names=False)
    for rate in ("open_rate", "click_rate", "click_to_open_rate"):
        assert results[rate].between(0, 1).all(), rate
    assert (results.open_rate == results.unique_opens / results.recipients).all()
    assert (results.conversions <= results.unique_clicks).all()
    assert (results.conversion_revenue >= 0).all()
    # one row per campaign with two variants and metric
    ab = demo_marts["ab"]
    campaigns = events.groupby("campaign_id").variant.nunique()
    assert sorted(ab.campaign_id.unique()) == sorted(campaigns[campaigns >= 2].index)
    assert len(ab) == 3 * (campaigns >= 2).sum()
    assert ab[["rate_a", "rate_b"]].stack().between(0, 1).all()


# --- generated data -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("marketing")
    sources = marketing_data.write_sources(root / "sources")
    data_dir = root / "data"
    result = run_cdp(
        data_dir,
        CDP_AS_OF=marketing_data.AS_OF.isoformat(),
        CDP_SHOP_DB_URL=sources.shop_db_url,
        CDP_SHEETS_URI=str(sources.sheets),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with duckdb.connect(str(data_dir / "marts.duckdb"), read_only=True) as con:
        results = con.execute("select * from campaign_results").fetch_df()
        ab = con.execute("select * from ab_tests").fetch_df()
    return sources, results.set_index(["campaign_id", "variant"]).sort_index(), ab


def _moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("+00", "+00:00"))


def attributed(sources) -> dict[tuple[str, str], list[tuple[str, Decimal]]]:
    """(campaign, variant) -> (email, amount in USD) of each order its clicks won: the
    person's latest click before a valid order, if the order came within the window."""
    person_of = {p["email"]: p["person_id"] for p in sources.persons}
    clicks = defaultdict(list)
    for event in sources.events:
        if event["event_type"] == "click":
            email = event["email"].strip().lower()
            clicks[person_of[email]].append(
                (
                    _moment(event["occurred_at"]),
                    event["event_id"],
                    event["campaign_id"],
                    event["variant"],
                    email,
                )
            )
    rates = defaultdict(list)
    for rate in sources.fx_rates:
        rates[rate["currency"]].append((rate["rate_date"], Decimal(rate["rate"])))
    won = defaultdict(list)
    for order in sources.orders:
        if order["status"] not in VALID:
            continue
        at = _moment(order["ordered_at"])
        before = [c for c in clicks[order["person"]] if c[0] < at]
        if not before:
            continue
        clicked_at, _, campaign, variant, email = max(before)
        if at > clicked_at + ATTRIBUTION:
            continue
        rate = Decimal(1)
        if order["currency"] != "USD":
            rate = max(r for r in rates[order["currency"]] if r[0] <= at.date())[1]
        amount = (Decimal(order["total_amount"]) * rate).quantize(Decimal("0.01"), ROUND_HALF_UP)
        won[(campaign, variant)].append((email, amount))
    return won


def test_generated_counts_match_the_events(generated):
    sources, results, _ = generated
    expected = counts_from_events(pd.DataFrame(sources.events)).sort_index()
    pd.testing.assert_frame_equal(results[COUNTS], expected, check_names=False)
    assert len(sources.arms) == len(results)
    for (campaign, variant), arm in sources.arms.items():
        planted = results.loc[(campaign, variant)]
        assert (planted.recipients, planted.unique_opens, planted.unique_clicks) == (
            arm.recipients,
            arm.opens,
            arm.clicks,
        )
    assert results.click_to_open_rate.between(0, 1).all()


def test_generated_conversions_and_revenue_in_the_reporting_currency(generated):
    sources, results, _ = generated
    won = attributed(sources)
    assert sum(len(orders) for orders in won.values()) > 300
    foreign = {o["currency"] for o in sources.orders} - {"USD"}
    assert foreign == {"EUR", "GBP"}
    for (campaign, variant), values in results.iterrows():
        orders = won.get((campaign, variant), [])
        assert values.conversions == len({email for email, _ in orders}), (campaign, variant)
        assert Decimal(str(values.conversion_revenue)) == sum(
            (amount for _, amount in orders), Decimal("0.00")
        ), (campaign, variant)
    assert set(won) <= set(results.index)


def test_generated_planted_differences_are_found(generated):
    sources, results, ab = generated
    assert "cmp_solo" not in set(ab.campaign_id)
    for campaign in marketing_data.CAMPAIGNS:
        if len(campaign.arms) < 2:
            continue
        for metric, successes in METRICS.items():
            test = row(ab, campaign.campaign_id, metric)
            assert test.variant_a == min(campaign.arms)
            a = results.loc[(campaign.campaign_id, test.variant_a)]
            b = results.loc[(campaign.campaign_id, test.variant_b)]
            assert (test.recipients_a, test.recipients_b) == (a.recipients, b.recipients)
            assert test.rate_a == pytest.approx(a[successes] / a.recipients)
            assert test.rate_b == pytest.approx(b[successes] / b.recipients)
            reference = proportion.test_proportions_2indep(
                b[successes], b.recipients, a[successes], a.recipients, method="wald"
            )
            assert test.p_value == pytest.approx(reference.pvalue)
            expected = campaign.better.get(metric)
            assert (None if pd.isna(test.winner) else test.winner) == expected, (
                campaign.campaign_id,
                metric,
            )
    assert row(ab, "cmp_three", "open").variant_b == "C"
    small = row(ab, "cmp_small", "open")
    assert small.p_value < SIGNIFICANCE and small.recipients_a < MIN_RECIPIENTS
