"""The published marts on the demo, checked against the seed files worked by hand."""

import re
from pathlib import Path

import duckdb
import pandas as pd
import phonenumbers
import pytest

from .conftest import DEMO_AS_OF, SEEDS

CONTRACT_COLUMNS = {
    "customer_identities": "identifier_type identifier_value customer_key first_seen_at "
    "last_seen_at",
    "customer_profiles": "customer_key email phone first_name last_name birth_date age gender "
    "city country education profession income_band interests preferred_channel customer_type "
    "company_name industry buyer_group first_seen_at last_seen_at sessions page_views orders "
    "revenue avg_order_value first_order_at last_order_at favorite_category preferred_device "
    "acquisition_source acquisition_medium emails_opened emails_clicked marketing_consent "
    "identifiers currency emails_sent emails_bounced gift_orders online_orders offline_orders "
    "company_size",
    "customer_segments": "customer_key recency_score frequency_score monetary_score rfm_segment "
    "lifecycle_stage value_tier engagement_segment top_category",
    "segment_personas": "segment_type segment customers share avg_age dominant_gender "
    "top_interests avg_order_value orders_per_customer revenue_share preferred_channel "
    "description",
    "customer_key_merges": "retired_key surviving_key merged_at",
    "customer_recommendations": "customer_key rank sku category score reason",
}
VALID = {"paid", "shipped", "delivered"}


def in_usd(orders: pd.DataFrame) -> pd.Series:
    """Order totals in US dollars by hand: the fx_rates row of the order's UTC day, else the
    latest one before it, at most 7 days old."""
    rates = pd.read_csv(SEEDS / "sheets" / "fx_rates.csv", parse_dates=["rate_date"])

    def convert(order) -> float:
        if order.currency == "USD":
            return float(order.total_amount)
        day = pd.Timestamp(order.ordered_at).tz_convert("UTC").tz_localize(None).normalize()
        usable = rates[
            (rates.currency == order.currency)
            & (rates.rate_date <= day)
            & (rates.rate_date >= day - pd.Timedelta(days=7))
        ]
        return round(float(order.total_amount) * usable.sort_values("rate_date").rate.iloc[-1], 2)

    return orders.apply(convert, axis=1)


@pytest.fixture(scope="module")
def marts(demo_warehouse):
    path = demo_warehouse.parent / "marts.duckdb"
    assert not Path(str(path) + ".new").exists()
    with duckdb.connect(str(path), read_only=True) as con:
        yield con


def e164(raw, region) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@pytest.fixture(scope="module")
def seeds():
    """The seed files, with each order and survey answer attributed to its true person."""
    truth = pd.read_csv(SEEDS / "ground_truth.csv", dtype=str)
    truth = truth[~truth.person_id.str.contains("|", regex=False)]
    owner = {(r.identifier_type, r.identifier_value): r.person_id for r in truth.itertuples()}

    def person(customer_id, email, phone):
        for key in (("customer_id", customer_id), ("email", email), ("phone", phone)):
            if isinstance(key[1], str) and key in owner:
                return owner[key]
        return None

    orders = pd.read_csv(SEEDS / "shop" / "orders.csv", dtype=str)
    orders["person"] = [
        person(
            o.customer_id,
            str(o.email).strip(" \t").lower(),
            e164(o.phone, o.ship_country) if isinstance(o.phone, str) else None,
        )
        for o in orders.itertuples()
    ]
    surveys = pd.read_csv(SEEDS / "sheets" / "survey_responses.csv", dtype=str)
    surveys["person"] = [
        person(
            None,
            str(s.email).strip(" \t").lower(),
            e164(s.phone, "US") if isinstance(s.phone, str) else None,
        )
        for s in surveys.itertuples()
    ]
    customers = pd.read_csv(SEEDS / "shop" / "customers.csv", dtype=str)
    b2b = pd.read_csv(SEEDS / "sheets" / "b2b_accounts.csv", dtype=str)
    return {
        "truth": truth,
        "orders": orders,
        "surveys": surveys,
        "customers": customers,
        "b2b_domains": set(b2b.email_domain),
        "company_sizes": dict(zip(b2b.email_domain, b2b.company_size, strict=True)),
        "email_events": pd.read_csv(SEEDS / "shop" / "email_events.csv", dtype=str),
    }


def key_of(marts, seeds, person_id: str) -> str:
    identifiers = seeds["truth"][seeds["truth"].person_id == person_id]
    keys = {
        marts.execute(
            "select customer_key from customer_identities "
            "where identifier_type = ? and identifier_value = ?",
            [t, v],
        ).fetchall()[0][0]
        for t, v in zip(identifiers.identifier_type, identifiers.identifier_value, strict=True)
        if t in ("customer_id", "email")
    }
    assert len(keys) == 1, keys
    return keys.pop()


def test_marts_have_the_contract_columns(marts):
    for table, columns in CONTRACT_COLUMNS.items():
        present = {r[0] for r in marts.execute(f"describe {table}").fetchall()}
        assert set(columns.split()) <= present, (table, set(columns.split()) - present)
    assert (
        marts.execute("select count(*) from customer_profiles").fetchall()[0][0]
        == marts.execute("select count(distinct customer_key) from customer_identities").fetchall()[
            0
        ][0]
    )


def engagement_by_hand(events: pd.DataFrame) -> str:
    """The engagement segment from a person's email events (thresholds of dbt_project.yml)."""
    at = pd.to_datetime(events.occurred_at, utc=True)
    recent = at >= pd.Timestamp(DEMO_AS_OF, tz="UTC") - pd.Timedelta(days=90)
    kind = events.event_type
    reactions = at[kind.isin(["open", "click"])]
    if not (kind == "sent").any():
        return "never_mailed"
    if (kind == "unsubscribe").any():
        return "unsubscribed"
    last_bounce = at[kind == "bounce"].max()
    if (kind == "bounce").any() and (reactions.empty or reactions.max() < last_bounce):
        return "bounced"
    for event_type, segment in (
        ("click", "clicking"),
        ("open", "opening"),
        ("sent", "not_opening"),
    ):
        if ((kind == event_type) & recent).any():
            return segment
    return "dormant"


@pytest.mark.parametrize("person_id", ["P00092", "P00020", "P00153", "P00962", "P00234"])
def test_hand_worked_persons(marts, seeds, person_id):
    """Orders, revenue, type, buyer group and lifecycle recomputed from the seed rows."""
    key = key_of(marts, seeds, person_id)
    orders = seeds["orders"][seeds["orders"].person == person_id]
    valid = orders[orders.status.isin(VALID)]
    emails = set(
        seeds["truth"]
        .query("person_id == @person_id and identifier_type == 'email'")
        .identifier_value
    )
    ids = set(
        seeds["truth"]
        .query("person_id == @person_id and identifier_type == 'customer_id'")
        .identifier_value
    )
    accounts = seeds["customers"][seeds["customers"].customer_id.isin(ids)]
    survey = seeds["surveys"][seeds["surveys"].person == person_id]
    b2b = accounts.company_name.notna().any() or any(
        e.split("@")[1] in seeds["b2b_domains"] for e in emails
    )
    gift = (orders.is_gift == "true").sum() * 2 > len(orders) or (survey.buys_for == "gift").any()

    profile = (
        marts.execute("select * from customer_profiles where customer_key = ?", [key])
        .fetch_df()
        .iloc[0]
    )
    assert profile.orders == len(valid)
    assert profile.currency == "USD"
    assert float(profile.revenue) == pytest.approx(in_usd(valid).sum() if len(valid) else 0)
    assert profile.gift_orders == (valid.is_gift == "true").sum()
    assert profile.online_orders == valid.channel.isin(["web", "app"]).sum()
    assert profile.offline_orders == valid.channel.isin(["store", "phone"]).sum()
    sizes = {seeds["company_sizes"].get(e.split("@")[1]) for e in emails} - {None}
    assert profile.company_size == (sizes.pop() if sizes else None)
    events = seeds["email_events"]
    mine = events[events.email.str.strip(" \t").str.lower().isin(emails)]
    assert profile.emails_sent == (mine.event_type == "sent").sum()
    assert profile.emails_bounced == (mine.event_type == "bounce").sum()
    assert profile.customer_type == ("B2B" if b2b else "B2C")
    assert profile.buyer_group == ("indirect" if gift else "primary")

    segments = (
        marts.execute("select * from customer_segments where customer_key = ?", [key])
        .fetch_df()
        .iloc[0]
    )
    assert segments.engagement_segment == engagement_by_hand(mine)
    as_of = pd.Timestamp(DEMO_AS_OF, tz="UTC")
    if valid.empty:
        assert segments.lifecycle_stage == "prospect" and segments.rfm_segment == "Prospect"
    else:
        first = pd.to_datetime(valid.ordered_at, utc=True).min().normalize()
        last = pd.to_datetime(valid.ordered_at, utc=True).max().normalize()
        stage = (
            "new"
            if (as_of - first).days <= 30
            else "active"
            if (as_of - last).days <= 180
            else "at_risk"
            if (as_of - last).days <= 365
            else "churned"
        )
        assert segments.lifecycle_stage == stage
        assert 1 <= segments.recency_score <= 5 and 1 <= segments.frequency_score <= 5
        grid = pd.read_csv(Path(__file__).parent.parent / "dbt_project/seeds/rfm_segments.csv")
        expected = grid.query(
            "recency_score == @segments.recency_score and "
            "frequency_score == @segments.frequency_score"
        ).rfm_segment
        assert segments.rfm_segment == expected.iloc[0]


def test_rfm_scores_keep_ties_together(marts):
    """Each score is 1 + the whole fifths of buyers with a strictly lower value: equal order
    counts and equal revenue score alike, and the lowest value scores 1."""
    buyers = marts.execute(
        "select p.orders, p.revenue, s.frequency_score, s.monetary_score "
        "from customer_segments s join customer_profiles p using (customer_key) "
        "where p.orders > 0"
    ).fetch_df()
    for value, score in (("orders", "frequency_score"), ("revenue", "monetary_score")):
        below = buyers[value].apply(lambda v, column=buyers[value]: (column < v).sum())
        expected = (1 + (5 * below // len(buyers))).clip(upper=5)
        assert (buyers[score] == expected).all(), value
        assert buyers.groupby(value)[score].nunique().max() == 1
    one_order = buyers[buyers.orders == 1]
    assert len(one_order) > len(buyers) / 5 and set(one_order.frequency_score) == {1}
    assert (
        marts.execute(
            "select count(*) from customer_segments s join customer_profiles p "
            "using (customer_key) where p.orders = 0 and s.recency_score is not null"
        ).fetchall()[0][0]
        == 0
    )


def test_personas_and_recommendations(marts):
    personas = marts.execute(
        "select segment_type, sum(customers), sum(share) from segment_personas group by 1"
    ).fetchall()
    people = marts.execute("select count(*) from customer_profiles").fetchall()[0][0]
    assert {t for t, _, _ in personas} == {
        "rfm_segment",
        "lifecycle_stage",
        "value_tier",
        "engagement_segment",
        "customer_type",
        "buyer_group",
        "churn_risk",
        "retention_segment",
    }
    assert all(n == people and s == pytest.approx(1, abs=0.01) for _, n, s in personas)
    assert all(
        d.endswith(".") and len(d) > 20
        for (d,) in marts.execute("select description from segment_personas").fetchall()
    )
    assert (
        marts.execute("""
        select count(*) from customer_recommendations r
        join customer_identities i on i.customer_key = r.customer_key
            and i.identifier_type = 'customer_id'
        where r.rank > 5""").fetchall()[0][0]
        == 0
    )


# A trait named in a description, as a condition on the published marts.
TRAITS = {
    r"women": "p.gender = 'female'",
    r"men": "p.gender = 'male'",
    r"in (\w\w)": "p.country = '{0}'",
    r"buying mostly gifts": "p.buyer_group = 'indirect'",
    r"business buyers": "p.customer_type = 'B2B'",
    r"buying in stores or by phone": "p.offline_orders > 0",
    r"buying again": "p.orders >= 2",
    r"mostly on (\w+)": "p.preferred_device = '{0}'",
    r"spending most on (\w+)": "p.favorite_category = '{0}'",
    r"value tier (\w+)": "s.value_tier = '{0}'",
    r"lifecycle stage (\w+(?: \w+)?)": "s.lifecycle_stage = replace('{0}', ' ', '_')",
}


def test_personas_name_what_sets_each_segment_apart(marts):
    """Every share and lift in a description is recomputed from the profiles: the segment's
    share of the trait, the base's share, their ratio, and the ratio at least 1.25."""
    rows = marts.execute(
        "select segment_type, segment, description from segment_personas"
    ).fetchall()
    for segment_type in {t for t, _, _ in rows}:
        descriptions = [d for t, _, d in rows if t == segment_type]
        assert len(set(descriptions)) == len(descriptions), segment_type
    people = marts.execute("select count(*) from customer_profiles").fetchone()[0]
    checked = 0
    for segment_type, segment, description in rows:
        found = re.findall(r"(\d+)% ([^(,]+?) \(([\d.]+)× the base's (\d+)%\)", description)
        for share, trait, lift, base_share in found:
            condition = next(
                (
                    sql.format(*match.groups())
                    for pattern, sql in TRAITS.items()
                    if (match := re.fullmatch(pattern, trait))
                ),
                None,
            )
            if condition is None:
                continue
            column = ("p." if segment_type in ("customer_type", "buyer_group") else "s.") + (
                segment_type
            )
            in_segment, members, in_base = marts.execute(
                f"""select count(*) filter (where {column} = ? and {condition}),
                           count(*) filter (where {column} = ?),
                           count(*) filter (where {condition})
                    from customer_segments s
                    join customer_profiles p using (customer_key)""",
                [segment, segment],
            ).fetchone()
            # SQL rounds halves away from zero, Python's round() to even
            assert int(100 * in_segment / members + 0.5) == int(share), (segment, trait)
            assert int(100 * in_base / people + 0.5) == int(base_share), (segment, trait)
            lift_exact = (in_segment / members) / (in_base / people)
            assert float(lift) == pytest.approx(lift_exact, abs=0.051) and lift_exact >= 1.25
            checked += 1
    assert checked >= 20
    b2b = next(d for t, s, d in rows if (t, s) == ("customer_type", "B2B"))
    gift = next(d for t, s, d in rows if (t, s) == ("buyer_group", "indirect"))
    assert "Stand out:" in b2b and "Stand out:" in gift


def test_recommendations_are_not_already_bought(demo_warehouse):
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:
        bought_again = con.execute("""
            select count(*) from marts.customer_recommendations as r
            join (
                select distinct o.customer_key, p.sku
                from intermediate.int_customers__orders as o
                join staging.stg_shop__order_items as i using (order_id)
                join staging.stg_shop__products as p using (product_id)
                where o.is_valid
            ) as bought using (customer_key, sku)
        """).fetchall()[0][0]
        recommended = con.execute(
            "select count(distinct customer_key) from marts.customer_recommendations"
        ).fetchall()[0][0]
        people = con.execute("select count(*) from marts.customer_profiles").fetchall()[0][0]
    assert bought_again == 0
    assert recommended == people


def test_opt_out_keeps_the_profile_without_consent(marts, seeds):
    requests = pd.read_csv(SEEDS / "sheets" / "privacy_requests.csv", dtype=str)
    opt_outs = requests[requests.request_type == "marketing_opt_out"]
    assert len(opt_outs) >= 3
    for request in opt_outs.itertuples():
        kind, value = (
            ("email", str(request.email).strip(" \t").lower())
            if isinstance(request.email, str)
            else ("phone", e164(request.phone, "US"))
        )
        rows = marts.execute(
            "select p.marketing_consent from customer_identities i join customer_profiles p "
            "using (customer_key) where i.identifier_type = ? and i.identifier_value = ?",
            [kind, value],
        ).fetchall()
        assert rows == [(False,)], (kind, value)  # the profile is kept, without consent


def ga4_logins() -> pd.DataFrame:
    """(device, user_id) pairs in the demo export, all formats."""
    import polars as pl

    frames = [
        pl.read_avro(p).select("user_pseudo_id", "user_id").to_pandas()
        for p in (SEEDS / "ga4").rglob("*.avro")
    ]
    with duckdb.connect() as con:
        for reader in ("read_parquet('{}/**/*.parquet')", "read_json('{}/**/*.json*')"):
            query = f"select user_pseudo_id, user_id from {reader.format(SEEDS / 'ga4')}"
            frames.append(con.execute(query).fetch_df())
    logins = pd.concat(frames)
    return logins[logins.user_id.notna()].drop_duplicates()


def test_erased_persons_are_gone_from_both_files(demo_warehouse, seeds):
    requests = pd.read_csv(SEEDS / "sheets" / "privacy_requests.csv", dtype=str)
    erasures = requests[requests.request_type == "erasure"]
    truth = seeds["truth"]
    owner = dict(
        zip(
            zip(truth.identifier_type, truth.identifier_value, strict=True),
            truth.person_id,
            strict=True,
        )
    )
    persons = {
        owner.get(("email", str(r.email).strip(" \t").lower()))
        or owner.get(("phone", e164(r.phone, "US") if isinstance(r.phone, str) else None))
        for r in erasures.itertuples()
    } - {None}
    assert len(persons) == len(erasures)
    # what the sources connect to each person: their accounts' identifiers and the devices
    # they logged in on (a device never used logged in cannot be known to be theirs)
    mine = truth[
        truth.person_id.isin(persons)
        & truth.identifier_type.isin(["customer_id", "email", "phone"])
    ]
    logins = ga4_logins()
    devices = logins[logins.user_id.isin(mine.identifier_value)].user_pseudo_id
    values = [*mine.identifier_value, *devices]
    assert len(devices) >= 1 and len(values) >= len(persons) * 3
    pattern = "(^|[^a-z0-9.])(" + "|".join(re.escape(v.lower()) for v in values) + ")($|[^a-z0-9])"
    for path in (demo_warehouse, demo_warehouse.parent / "marts.duckdb"):
        with duckdb.connect(str(path), read_only=True) as con:
            tables = con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_type = 'BASE TABLE'"
            ).fetchall()
            for schema, table in tables:
                hits = con.execute(
                    f'select count(*) from "{schema}"."{table}" as t '
                    "where regexp_matches(lower(t::varchar), ?)",
                    [pattern],
                ).fetchall()[0][0]
                assert hits == 0, f"{path.name}: {schema}.{table} still holds an erased person"
