"""A small, complete set of sources for the campaign marts, written independently of the demo.

A shop database (SQLite) and a Sheets folder hold persons with shop accounts, campaign emails
and orders in three currencies; GA4 stays the demo's export (no person here has a device).
Each campaign has exact numbers of openers, clickers and converters per variant, chosen at
random among its recipients, so which variants truly differ is known by construction; only
cmp_equal draws its counts at random from the same rates in both arms, as a real test would:

- cmp_equal:  2 x 1500 recipients, both drawn at 30 % opens, 10 % clicks, 3 % converters
- cmp_open:   2 x 1500, opens 300 vs 525 (20 % vs 35 %), clicks and conversions alike
- cmp_conv:   2 x 1500, opens and clicks alike, converters 30 vs 75 (2 % vs 5 %)
- cmp_three:  3 x 400, opens 100 / 100 / 160 (A, B, C): C wins opens against the control A
- cmp_small:  2 x 150, opens 30 vs 70: significant, but below min_recipients, so no winner
- cmp_solo:   one variant only: no A/B rows

Around that: resends, repeated opens and clicks, bounces and unsubscribes, email addresses in
mixed case with spaces, orders placed at checkout by email without the account, a second
order of some converters, cancelled orders after clicks, orders 9 days after a click, orders
before any click and orders of people never mailed. Exchange rates exist on weekdays only, so
a weekend order takes Friday's rate. The truth returned is the generated rows, for the test to
compute every figure on its own.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from orchestration.defs.sheets.extract import TABS
from orchestration.defs.shop.demo import load_shop_seeds

AS_OF = dt.date(2026, 10, 22)
SEED = 20261022
PERSONS = 4200
CURRENCIES = ["USD", "EUR", "GBP"]  # USD is the reporting currency (the default)


@dataclass(frozen=True)
class Arm:
    recipients: int
    opens: int
    clicks: int
    converters: int


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    sent_on: dt.date
    arms: dict[str, Arm]
    # metric -> the variant that truly does better (absent: no true difference)
    better: dict[str, str]
    drawn: bool = False  # counts drawn at the arms' rates instead of exact


CAMPAIGNS = [
    Campaign(
        "cmp_equal",
        dt.date(2026, 9, 1),
        {"A": Arm(1500, 450, 150, 45), "B": Arm(1500, 450, 150, 45)},
        {},
        drawn=True,
    ),
    Campaign(
        "cmp_open",
        dt.date(2026, 9, 10),
        {"A": Arm(1500, 300, 90, 30), "B": Arm(1500, 525, 90, 30)},
        {"open": "B"},
    ),
    Campaign(
        "cmp_conv",
        dt.date(2026, 9, 19),
        {"A": Arm(1500, 450, 180, 30), "B": Arm(1500, 450, 180, 75)},
        {"conversion": "B"},
    ),
    Campaign(
        "cmp_three",
        dt.date(2026, 9, 28),
        {"A": Arm(400, 100, 30, 8), "B": Arm(400, 100, 30, 8), "C": Arm(400, 160, 30, 8)},
        {"open": "C"},
    ),
    Campaign(
        "cmp_small",
        dt.date(2026, 10, 5),
        {"A": Arm(150, 30, 10, 3), "B": Arm(150, 70, 10, 3)},
        {},
    ),
    Campaign("cmp_solo", dt.date(2026, 10, 12), {"A": Arm(300, 90, 30, 6)}, {}),
]


@dataclass
class Sources:
    shop_db_url: str
    sheets: Path
    persons: list[dict]  # person_id, customer_id, email (normalized), currency
    arms: dict[tuple[str, str], Arm]  # (campaign, variant) -> the counts generated
    events: list[dict]  # as written, email as typed
    orders: list[dict]  # as written, plus `person`
    fx_rates: list[dict]  # rate_date (date), currency, rate (str, as written)


def _ts(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S+00")


def _write(path: Path, rows: list[dict], header: list[str]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in header})


class _Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.events: list[dict] = []
        self.orders: list[dict] = []
        self.arms: dict[tuple[str, str], Arm] = {}
        self.persons = [
            {
                "person_id": f"M{i:05d}",
                "customer_id": 700000 + i,
                "email": f"person{i:05d}@mail-{i % 7}.example.com",
                "currency": CURRENCIES[i % 3],
            }
            for i in range(PERSONS)
        ]

    def moment(self, day: dt.date, hours: float) -> dt.datetime:
        start = dt.datetime.combine(day, dt.time(6), dt.UTC)
        return start + dt.timedelta(seconds=self.rng.uniform(0, hours * 3600))

    def typed(self, email: str) -> str:
        """The address as a mail tool logs it: sometimes capitalized, sometimes padded."""
        roll = self.rng.random()
        if roll < 0.1:
            return email.upper()
        if roll < 0.2:
            return f"  {email.capitalize()} "
        return email

    def event(self, person: dict, campaign: str, variant: str, kind: str, at: dt.datetime):
        self.events.append(
            {
                "event_id": len(self.events) + 1,
                "email": self.typed(person["email"]),
                "campaign_id": campaign,
                "variant": variant,
                "event_type": kind,
                "occurred_at": _ts(at),
            }
        )

    def order(self, person: dict, at: dt.datetime, status: str, by_account: bool = True):
        total = round(self.rng.uniform(15, 400), 2)
        self.orders.append(
            {
                "order_id": 5_000_001 + len(self.orders),
                "customer_id": person["customer_id"] if by_account else None,
                # checkout without the account: only the typed address ties it to the person
                "email": person["email"] if by_account else self.typed(person["email"]),
                "phone": None,
                "ship_country": "US",
                "status": status,
                "channel": "web",
                "is_gift": "false",
                "total_amount": f"{total:.2f}",
                "currency": person["currency"],
                "ordered_at": _ts(at),
                "updated_at": _ts(at + dt.timedelta(hours=2)),
                "person": person["person_id"],
            }
        )

    def campaign(self, campaign: Campaign) -> None:
        size = sum(arm.recipients for arm in campaign.arms.values())
        chosen = self.rng.sample(self.persons, size)
        for variant, arm in campaign.arms.items():
            recipients, chosen = chosen[: arm.recipients], chosen[arm.recipients :]
            if campaign.drawn:
                opens = self.draw(arm.recipients, arm.opens / arm.recipients)
                clicks = self.draw(opens, arm.clicks / arm.opens)
                arm = Arm(
                    arm.recipients, opens, clicks, self.draw(clicks, arm.converters / arm.clicks)
                )
            self.arms[(campaign.campaign_id, variant)] = arm
            self.arm(campaign, variant, arm, recipients)

    def draw(self, trials: int, rate: float) -> int:
        return sum(self.rng.random() < rate for _ in range(trials))

    def arm(self, campaign: Campaign, variant: str, arm: Arm, recipients: list[dict]) -> None:
        rng, cid = self.rng, campaign.campaign_id
        sent = {}
        for person in recipients:
            sent[person["person_id"]] = self.moment(campaign.sent_on, 6)
            self.event(person, cid, variant, "sent", sent[person["person_id"]])
            if rng.random() < 0.05:  # a resend the next day
                self.event(
                    person, cid, variant, "sent", sent[person["person_id"]] + dt.timedelta(1)
                )
        openers = rng.sample(recipients, arm.opens)
        clickers = rng.sample(openers, arm.clicks)
        converters = rng.sample(clickers, arm.converters)
        closed = [p for p in recipients if p not in openers]
        for person in rng.sample(closed, len(closed) // 25):
            self.event(
                person, cid, variant, "bounce", sent[person["person_id"]] + dt.timedelta(0, 60)
            )
        last_click = {}
        clicking = {p["person_id"] for p in clickers}
        for person in openers:
            opened = sent[person["person_id"]] + dt.timedelta(minutes=rng.uniform(5, 24 * 60))
            # a clicker's open pixel is sometimes blocked: the click alone says it was opened
            if person["person_id"] not in clicking or rng.random() > 0.1:
                self.event(person, cid, variant, "open", opened)
                if rng.random() < 0.3:
                    self.event(person, cid, variant, "open", opened + dt.timedelta(hours=3))
            if person["person_id"] in clicking:
                clicked = opened + dt.timedelta(minutes=rng.uniform(1, 60))
                self.event(person, cid, variant, "click", clicked)
                if rng.random() < 0.2:
                    clicked += dt.timedelta(hours=rng.uniform(1, 30))
                    self.event(person, cid, variant, "click", clicked)
                last_click[person["person_id"]] = clicked
            if rng.random() < 0.03:
                self.event(person, cid, variant, "unsubscribe", opened + dt.timedelta(0, 30))
        converting = {p["person_id"] for p in converters}
        for person in clickers:
            clicked = last_click[person["person_id"]]
            status = rng.choice(["paid", "shipped", "delivered"])
            if person["person_id"] in converting:
                self.order(
                    person,
                    clicked + dt.timedelta(hours=rng.uniform(1, 130)),
                    status,
                    by_account=rng.random() > 0.25,
                )
                if rng.random() < 0.25:  # a second order in the window
                    self.order(
                        person,
                        clicked + dt.timedelta(hours=rng.uniform(131, 166)),
                        rng.choice(["paid", "shipped", "delivered"]),
                    )
                continue
            roll = rng.random()
            if roll < 0.15:  # cancelled or refunded: never a conversion
                self.order(
                    person,
                    clicked + dt.timedelta(hours=rng.uniform(1, 100)),
                    rng.choice(["cancelled", "refunded"]),
                )
            elif roll < 0.25:  # 9 days after the click: outside the window
                self.order(person, clicked + dt.timedelta(days=9), status)
            elif roll < 0.35:  # the day before the campaign was sent
                self.order(person, sent[person["person_id"]] - dt.timedelta(days=1), status)

    def background_orders(self, count: int) -> None:
        for _ in range(count):
            person = self.rng.choice(self.persons)
            day = dt.date(2026, 8, 15) + dt.timedelta(days=self.rng.randrange(0, 67))
            self.order(person, self.moment(day, 16), self.rng.choice(["paid", "delivered"]))


def _fx_rates(rng: random.Random) -> list[dict]:
    """EUR and GBP in USD on weekdays from August to the day before AS_OF."""
    rows, level = [], {"EUR": 1.08, "GBP": 1.27}
    day = dt.date(2026, 8, 1)
    while day < AS_OF:
        if day.weekday() < 5:
            for currency in level:
                level[currency] = round(level[currency] * rng.uniform(0.99, 1.01), 4)
                rows.append({"rate_date": day, "currency": currency, "rate": f"{level[currency]}"})
        day += dt.timedelta(days=1)
    return rows


def write_sources(root: Path, seed: int = SEED) -> Sources:
    gen = _Generator(seed)
    for campaign in CAMPAIGNS:
        gen.campaign(campaign)
    gen.background_orders(300)
    mailed = {e["email"].strip().lower() for e in gen.events}
    rest = [p for p in gen.persons if p["email"] not in mailed]
    for person in rest[:20]:
        gen.order(person, gen.moment(dt.date(2026, 10, 21), 4), "delivered")  # fresh shop data

    shop = root / "shop_csv"
    shop.mkdir(parents=True)
    shutil.copy(Path(__file__).parent.parent / "seeds" / "shop" / "schema.sql", shop)
    created = _ts(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    customers = [
        {
            "customer_id": p["customer_id"],
            "email": p["email"],
            "first_name": f"First{p['person_id']}",
            "last_name": f"Last{p['person_id']}",
            "country": "US",
            "marketing_consent": "true",
            "created_at": created,
            "updated_at": created,
        }
        for p in gen.persons
    ]
    _write(
        shop / "customers.csv",
        customers,
        [
            "customer_id",
            "email",
            "phone",
            "first_name",
            "last_name",
            "birth_date",
            "gender",
            "city",
            "country",
            "company_name",
            "marketing_consent",
            "created_at",
            "updated_at",
        ],
    )
    products = [
        {
            "product_id": 901 + i,
            "sku": f"MKT-{i:03d}",
            "name": f"Thing {i}",
            "category": c,
            "price": "25.00",
            "updated_at": created,
        }
        for i, c in enumerate(["books", "garden", "kitchen"])
    ]
    _write(
        shop / "products.csv",
        products,
        ["product_id", "sku", "name", "category", "price", "updated_at"],
    )
    order_header = [
        "order_id",
        "customer_id",
        "email",
        "phone",
        "ship_country",
        "status",
        "channel",
        "is_gift",
        "total_amount",
        "currency",
        "ordered_at",
        "updated_at",
    ]
    _write(shop / "orders.csv", gen.orders, order_header)
    items = [
        {
            "order_id": o["order_id"],
            "line_no": 1,
            "product_id": 901 + o["order_id"] % 3,
            "quantity": 1,
            "unit_price": o["total_amount"],
        }
        for o in gen.orders
    ]
    _write(
        shop / "order_items.csv",
        items,
        ["order_id", "line_no", "product_id", "quantity", "unit_price"],
    )
    _write(
        shop / "email_events.csv",
        gen.events,
        ["event_id", "email", "campaign_id", "variant", "event_type", "occurred_at"],
    )
    database = root / "shop.sqlite"
    engine = sa.create_engine(f"sqlite:///{database}")
    load_shop_seeds(engine, seeds=shop)
    engine.dispose()

    sheets = root / "sheets"
    sheets.mkdir()
    rates = _fx_rates(gen.rng)
    _write(sheets / "fx_rates.csv", rates, TABS["fx_rates"])
    _write(
        sheets / "b2b_accounts.csv",
        [
            {
                "company_name": "Example Works",
                "email_domain": "example-works.com",
                "industry": "retail",
                "company_size": "10-49",
                "account_manager": "Sam Lee",
            }
        ],
        ["company_name", "email_domain", "industry", "company_size", "account_manager"],
    )
    _write(sheets / "privacy_requests.csv", [], TABS["privacy_requests"])
    _write(
        sheets / "survey_responses.csv",
        [
            {
                "submitted_at": "2026-09-02 10:00:00",
                "email": gen.persons[0]["email"],
                "age": "41",
                "gender": "f",
                "interests": "books",
                "preferred_channel": "email",
                "buys_for": "self",
            }
        ],
        TABS["survey_responses"],
    )
    return Sources(
        f"sqlite:///{database}", sheets, gen.persons, gen.arms, gen.events, gen.orders, rates
    )
