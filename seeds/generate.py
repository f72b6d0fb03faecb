"""Deterministic generator of the demo sources in `seeds/`.

Writes, in the source formats of docs/sources.md, the data of about 2,000 invented persons:
GA4 BigQuery export shards (NDJSON, gzipped NDJSON, Parquet, Avro), the shop tables as CSV
(the pipeline loads them into SQLite; tests load them into Postgres), the four Sheets tabs
as CSV, and `ground_truth.csv`: the person behind every identifier. The pipeline never reads
the ground truth; tests score identity stitching against it.

The data is deliberately messy, like real data: mixed-case emails with stray spaces, phones
in national and international formats of six countries, guest checkouts, mistyped emails,
placeholder emails at store checkouts, shared family devices, people registered twice, gift
orders and business buyers.

Run: `python seeds/generate.py` (same output on every run; commit what it writes).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import fastavro
import phonenumbers
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20261001
N_PERSONS = 2000
GA4_FIRST_DAY = dt.date(2026, 10, 1)
GA4_DAYS = 21
INTRADAY_DAY = GA4_FIRST_DAY + dt.timedelta(days=GA4_DAYS)
NOW = dt.datetime.combine(INTRADAY_DAY, dt.time(6, 0), dt.UTC)
HISTORY_START = NOW - dt.timedelta(days=730)
OUT = Path(__file__).resolve().parent  # `python seeds/generate.py DIR` writes elsewhere

COUNTRIES = {  # iso: (weight, GA4 country name, currency, cities)
    "US": (40, "United States", "USD", ["New York", "Chicago", "Austin", "Seattle", "Denver"]),
    "GB": (18, "United Kingdom", "GBP", ["London", "Manchester", "Leeds", "Bristol"]),
    "DE": (15, "Germany", "EUR", ["Berlin", "Hamburg", "Munich", "Cologne"]),
    "FR": (10, "France", "EUR", ["Paris", "Lyon", "Marseille", "Lille"]),
    "NL": (10, "Netherlands", "EUR", ["Amsterdam", "Rotterdam", "Utrecht"]),
    "CA": (7, "Canada", "CAD", ["Toronto", "Vancouver", "Montreal"]),
}
FIRST_NAMES = {
    "female": [
        "Anna",
        "Emma",
        "Olivia",
        "Sophie",
        "Mia",
        "Laura",
        "Julia",
        "Sarah",
        "Lea",
        "Chloe",
        "Grace",
        "Ella",
        "Nora",
        "Ava",
        "Lina",
        "Marie",
        "Clara",
        "Hannah",
        "Zoe",
        "Ruby",
    ],
    "male": [
        "Liam",
        "Noah",
        "Lucas",
        "Ben",
        "Paul",
        "Jonas",
        "Leon",
        "Oliver",
        "James",
        "Jack",
        "Tom",
        "Max",
        "Felix",
        "Hugo",
        "Louis",
        "Daniel",
        "Adam",
        "Ethan",
        "Samuel",
        "Finn",
    ],
}
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Brown",
    "Miller",
    "Garcia",
    "Wilson",
    "Taylor",
    "Martin",
    "Moore",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "King",
    "Wright",
    "Lopez",
    "Hill",
    "Green",
    "Baker",
    "Nelson",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Dubois",
    "Laurent",
    "Bernard",
    "Petit",
    "Durand",
    "Jansen",
    "DeVries",
    "Bakker",
    "Visser",
    "Smit",
    "Roy",
    "Tremblay",
    "Gagnon",
]
GENDER_SPELLINGS = {
    "female": ["F", "f", "female", "Female", "FEMALE", "w", "woman", "Frau"],
    "male": ["M", "m", "male", "Male", "MALE", "man", "Mann"],
    "other": ["diverse", "non-binary", "X"],
    "unknown": ["", "", "prefer not to say", "n/a"],
}
FREE_MAIL = ["gmail.com", "yahoo.com", "outlook.com", "web.de", "orange.fr", "icloud.com"]
CATEGORIES = ["apparel", "shoes", "sports", "outdoor", "electronics", "home", "beauty", "books"]
PRODUCT_WORDS = {
    "apparel": ["T-Shirt", "Hoodie", "Jacket", "Jeans", "Dress"],
    "shoes": ["Sneaker", "Boot", "Sandal", "Loafer"],
    "sports": ["Yoga Mat", "Dumbbell Set", "Tennis Racket", "Running Belt"],
    "outdoor": ["Tent", "Backpack", "Sleeping Bag", "Headlamp"],
    "electronics": ["Headphones", "Speaker", "Charger", "Smartwatch"],
    "home": ["Mug", "Lamp", "Cushion", "Throw Blanket"],
    "beauty": ["Face Cream", "Shampoo", "Perfume", "Lip Balm"],
    "books": ["Cookbook", "Novel", "Travel Guide", "Notebook"],
}
COMPANIES = [  # company_name, email_domain, industry, company_size, account_manager
    ("Acme Logistics", "acme-logistics.com", "logistics", "200-499", "Dana Reed"),
    ("Bright Dental", "brightdental.co.uk", "healthcare", "10-49", "Sam Patel"),
    ("Nordlicht GmbH", "nordlicht.de", "manufacturing", "50-199", "Jana Voss"),
    ("Café Lumière", "cafelumiere.fr", "hospitality", "10-49", "Luc Martin"),
    ("Tulip Offices", "tulipoffices.nl", "real estate", "50-199", "Eva de Wit"),
    ("Maple Schools", "mapleschools.ca", "education", "500+", "Ryan Cole"),
    ("Summit Fitness", "summitfitness.com", "fitness", "10-49", "Dana Reed"),
    ("Harbor Studios", "harborstudios.com", "media", "50-199", "Sam Patel"),
]
PLACEHOLDER_EMAILS = ["noemail@store.com", "none@none.com", "test@test.com", "NOEMAIL@STORE.COM "]
PLACEHOLDER_PHONES = ["0000000000", "000-000-0000"]
TRAFFIC = [
    ("google", "organic"),
    ("google", "cpc"),
    ("newsletter", "email"),
    ("(direct)", "(none)"),
    ("facebook", "social"),
    ("bing", "organic"),
]
INTERESTS = [
    "running",
    "yoga",
    "cooking",
    "travel",
    "gaming",
    "gardening",
    "music",
    "fashion",
    "hiking",
    "photography",
    "reading",
    "cycling",
]

rng = random.Random(SEED)


@dataclass
class Person:
    person_id: str
    gender: str
    first_name: str
    last_name: str
    birth_date: dt.date | None
    country: str
    city: str
    email: str
    phone: phonenumbers.PhoneNumber | None
    company: tuple | None = None
    customer_ids: list[int] = field(default_factory=list)
    extra_emails: list[str] = field(default_factory=list)
    devices: list[dict] = field(default_factory=list)
    favorite_categories: list[str] = field(default_factory=list)
    buys_for: str = "self"
    consent: bool = True


# ---------------------------------------------------------------- identifiers, messily typed


def weighted(options: dict) -> str:
    return rng.choices(list(options), weights=[v[0] for v in options.values()])[0]


def messy_email(email: str) -> str:
    roll = rng.random()
    if roll < 0.25:
        email = email.capitalize()
    elif roll < 0.35:
        email = email.upper()
    elif roll < 0.5:
        email = "".join(c.upper() if rng.random() < 0.2 else c for c in email)
    if rng.random() < 0.2:
        email = rng.choice([" ", "  ", "\t"]) + email
    if rng.random() < 0.2:
        email = email + rng.choice([" ", "  "])
    return email


def typo(email: str) -> str:
    local, domain = email.split("@")
    i = rng.randrange(len(local))
    return local[:i] + local[i + 1 :] + "@" + domain if len(local) > 3 else "x" + email


USED_PHONES: set[str] = set()


def new_phone(country: str) -> phonenumbers.PhoneNumber:
    """A valid mobile number of the country that no other person has."""
    template = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    digits = str(template.national_number)
    while True:
        tail = "".join(rng.choice("0123456789") for _ in range(6))
        candidate = phonenumbers.PhoneNumber(
            country_code=template.country_code, national_number=int(digits[:-6] + tail)
        )
        if phonenumbers.is_valid_number(candidate) and e164(candidate) not in USED_PHONES:
            USED_PHONES.add(e164(candidate))
            return candidate


def e164(phone: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(phone, phonenumbers.PhoneNumberFormat.E164)


def messy_phone(phone: phonenumbers.PhoneNumber, national_ok: bool = True) -> str:
    fmt = phonenumbers.PhoneNumberFormat
    roll = rng.random()
    if national_ok and roll < 0.4:
        text = phonenumbers.format_number(phone, fmt.NATIONAL)
        return text.replace(" ", rng.choice([" ", ".", "-", ""])) if rng.random() < 0.3 else text
    if roll < 0.75:
        return phonenumbers.format_number(phone, fmt.INTERNATIONAL)
    text = e164(phone)
    europe = phone.country_code not in (1,)  # "00" is the international prefix there
    return "00" + text[1:] if europe and rng.random() < 0.3 else text


def ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S+00")


def random_time(start: dt.datetime, end: dt.datetime) -> dt.datetime:
    seconds = int((end - start).total_seconds())
    return start + dt.timedelta(seconds=rng.randrange(max(seconds, 1)))


# ---------------------------------------------------------------------------- the persons


def make_persons() -> list[Person]:
    persons, used_emails = [], set()
    for n in range(N_PERSONS):
        gender = rng.choices(["female", "male", "other", "unknown"], [47, 45, 3, 5])[0]
        pool = FIRST_NAMES.get(gender) or FIRST_NAMES[rng.choice(["female", "male"])]
        first, last = rng.choice(pool), rng.choice(LAST_NAMES)
        country = weighted(COUNTRIES)
        company = rng.choice(COMPANIES) if rng.random() < 0.05 else None
        domain = company[1] if company else rng.choice(FREE_MAIL)
        email = f"{first}.{last}@{domain}".lower()
        k = 1
        while email in used_emails:
            k += 1
            email = f"{first}.{last}{k}@{domain}".lower()
        used_emails.add(email)
        birth = None
        if rng.random() < 0.8:
            birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(365 * 55))
        persons.append(
            Person(
                person_id=f"P{n + 1:05d}",
                gender=gender,
                first_name=first,
                last_name=last,
                birth_date=birth,
                country=country,
                city=rng.choice(COUNTRIES[country][3]),
                email=email,
                phone=new_phone(country) if rng.random() < 0.8 else None,
                company=company,
                favorite_categories=rng.sample(CATEGORIES, 2),
                buys_for=rng.choices(["self", "gift", "business"], [80, 15, 5])[0]
                if not company
                else "business",
                consent=rng.random() < 0.7,
            )
        )
    return persons


def new_device(person: Person, kind: str) -> dict:
    platform = {"desktop": "WEB", "mobile_web": "WEB", "ios": "IOS", "android": "ANDROID"}[kind]
    first_touch = random_time(HISTORY_START, NOW - dt.timedelta(days=GA4_DAYS + 1))
    device = {
        "user_pseudo_id": f"{rng.randrange(10**9, 10**10)}.{int(first_touch.timestamp())}",
        "kind": kind,
        "platform": platform,
        "category": "desktop" if kind == "desktop" else "mobile",
        "os": {
            "desktop": rng.choice(["Windows", "Macintosh"]),
            "mobile_web": "Android",
            "ios": "iOS",
            "android": "Android",
        }[kind],
        "browser": "Chrome" if kind != "ios" else "Safari",
        "first_touch": first_touch,
        "traffic": rng.choice(TRAFFIC),
        "owners": [person],
    }
    person.devices.append(device)
    return device


def assign_accounts_and_devices(persons: list[Person]) -> None:
    next_customer_id = iter(rng.sample(range(10_000, 99_999), N_PERSONS * 2))
    for p in persons:
        if rng.random() < 0.75 or p.company:
            p.customer_ids.append(next(next_customer_id))
            if rng.random() < 0.05:  # registered twice: forgot the first account
                p.customer_ids.append(next(next_customer_id))
                if rng.random() < 0.5:
                    local, domain = p.email.split("@")
                    p.extra_emails.append(f"{local}.{rng.randrange(10, 99)}@{domain}")
        kinds = ["desktop", "mobile_web", "ios", "android"]
        for _ in range(rng.choices([1, 2, 3], [60, 28, 12])[0]):
            new_device(p, rng.choice(kinds))
    # Shared family devices: a second registered person logs in on somebody's desktop.
    registered = [p for p in persons if p.customer_ids]
    for _ in range(30):
        a, b = rng.sample(registered, 2)
        shared = next((d for d in a.devices if d["kind"] == "desktop"), None) or new_device(
            a, "desktop"
        )
        if b not in shared["owners"]:
            shared["owners"].append(b)
            b.devices.append(shared)
            b.last_name = a.last_name


# ------------------------------------------------------------------------------ shop tables


def make_products() -> list[dict]:
    products = []
    for i in range(120):
        category = CATEGORIES[i % len(CATEGORIES)]
        word = rng.choice(PRODUCT_WORDS[category])
        products.append(
            {
                "product_id": 501 + i,
                "sku": f"SKU-{i + 1:05d}",
                "name": f"{rng.choice(['Classic', 'Pro', 'Eco', 'Urban', 'Trail'])} {word}",
                "category": category,
                "price": round(rng.uniform(6, 250), 2),
                "updated_at": ts(random_time(HISTORY_START, NOW - dt.timedelta(days=30))),
            }
        )
    return products


def make_customers(persons: list[Person]) -> list[dict]:
    rows = []
    for p in persons:
        for i, customer_id in enumerate(p.customer_ids):
            created = random_time(
                HISTORY_START - dt.timedelta(days=400), NOW - dt.timedelta(days=40)
            )
            email = p.extra_emails[0] if i and p.extra_emails else p.email
            phone = p.phone if not (i and p.extra_emails) else None
            rows.append(
                {
                    "customer_id": customer_id,
                    "email": messy_email(email),
                    "phone": (
                        messy_phone(phone)
                        if rng.random() < 0.97
                        else rng.choice(["12345", "n/a", "555"])
                    )
                    if phone and rng.random() < 0.8
                    else None,
                    "first_name": p.first_name if rng.random() < 0.9 else p.first_name.upper(),
                    "last_name": p.last_name,
                    "birth_date": p.birth_date.isoformat() if p.birth_date and i == 0 else None,
                    "gender": rng.choice(GENDER_SPELLINGS[p.gender]) or None,
                    "city": p.city,
                    "country": p.country,
                    "company_name": p.company[0] if p.company and rng.random() < 0.7 else None,
                    "marketing_consent": p.consent,
                    "created_at": ts(created),
                    "updated_at": ts(random_time(created, NOW - dt.timedelta(hours=1))),
                }
            )
    return rows


def customer_life(draw: random.Random) -> tuple[dt.datetime, dt.datetime, float]:
    """When a buyer started and stopped buying, and how much they spend against the average:
    customers join over time, about half are still buying, the others left after a spell
    (a few months on average), and spend per order differs from person to person."""
    start = HISTORY_START + dt.timedelta(days=draw.uniform(0, 600))
    end = NOW if draw.random() < 0.5 else start + dt.timedelta(days=draw.expovariate(1 / 150))
    return start, min(end, NOW), draw.gammavariate(4, 0.25)


def make_orders(persons, products, devices_by_person) -> tuple[list, list, list]:
    orders, items, web_purchases = [], [], []
    by_category = {c: [p for p in products if p["category"] == c] for c in CATEGORIES}
    order_ids = iter(rng.sample(range(100_000, 999_999), 20_000))
    ga4_start = dt.datetime.combine(GA4_FIRST_DAY, dt.time(), dt.UTC)
    # Lifetimes come from a separate random stream, so identities and GA4 stay as they were.
    lives = random.Random(SEED + 3)
    for p in persons:
        if rng.random() < 0.35:
            continue
        start, end, spend = customer_life(lives)
        for _ in range(min(1 + int(rng.expovariate(1 / 1.6)), 15)):
            # Every fourth order falls into the GA4 window so web orders have purchase events;
            # the others fall into the customer's active spell.
            ordered = (
                random_time(ga4_start, NOW - dt.timedelta(hours=7))
                if rng.random() < 0.25
                else random_time(HISTORY_START, NOW - dt.timedelta(hours=7))
            )
            if ordered < ga4_start:  # and stays before it: the window's orders are as drawn
                spell = min(end, ga4_start) - start
                ordered = start + (ordered - HISTORY_START) * (spell / (ga4_start - HISTORY_START))
            channel = rng.choices(["web", "app", "store", "phone"], [55, 25, 12, 8])[0]
            logged_in = bool(p.customer_ids) and channel != "store" and rng.random() < 0.85
            email, phone = messy_email(p.email), None
            if p.phone and rng.random() < 0.6:
                phone = messy_phone(p.phone)
            if not logged_in and channel in ("web", "app") and rng.random() < 0.04:
                email = typo(email)
            if channel == "store" and rng.random() < 0.5:
                email = rng.choice(PLACEHOLDER_EMAILS)
                if rng.random() < 0.3:
                    phone = rng.choice(PLACEHOLDER_PHONES)
            age_days = (NOW - ordered).days
            status = rng.choices(
                ["placed", "paid", "shipped", "delivered", "cancelled", "refunded"],
                [30, 30, 30, 10, 5, 3] if age_days < 3 else [1, 1, 3, 82, 7, 6],
            )[0]
            order_id = next(order_ids)
            lines, total = [], 0.0
            for line_no in range(1, rng.choices([1, 2, 3, 4], [50, 30, 15, 5])[0] + 1):
                category = (
                    rng.choice(p.favorite_categories)
                    if rng.random() < 0.7
                    else rng.choice(CATEGORIES)
                )
                product = rng.choice(by_category[category])
                quantity = rng.choices([1, 2, 3], [80, 15, 5])[0]
                unit_price = round(product["price"] * rng.choice([1, 1, 1, 0.9, 0.8]) * spend, 2)
                total += quantity * unit_price
                lines.append(
                    {
                        "order_id": order_id,
                        "line_no": line_no,
                        "product_id": product["product_id"],
                        "quantity": quantity,
                        "unit_price": f"{unit_price:.2f}",
                    }
                )
            gift = rng.random() < (0.6 if p.buys_for == "gift" else 0.08)
            orders.append(
                {
                    "order_id": order_id,
                    "customer_id": rng.choice(p.customer_ids) if logged_in else None,
                    "email": email,
                    "phone": phone,
                    "ship_country": p.country,
                    "status": status,
                    "channel": channel,
                    "is_gift": gift,
                    "total_amount": f"{total:.2f}",
                    "currency": COUNTRIES[p.country][2],
                    "ordered_at": ts(ordered),
                    "updated_at": ts(min(ordered + dt.timedelta(days=rng.uniform(0, 9)), NOW)),
                    "_person": p.person_id,
                }
            )
            items.extend(lines)
            if ordered >= ga4_start and channel in ("web", "app"):
                kinds = {"web": ("desktop", "mobile_web"), "app": ("ios", "android")}[channel]
                own = [d for d in devices_by_person[p.person_id] if len(d["owners"]) == 1]
                fitting = [d for d in own if d["kind"] in kinds] or own
                if fitting:
                    web_purchases.append((ordered, rng.choice(fitting), p, orders[-1], lines))
    return orders, items, web_purchases


def make_email_events(persons: list[Person]) -> list[dict]:
    rows, event_id = [], 1
    for p in persons:
        if not p.customer_ids or not p.consent:
            continue
        opener = rng.random()
        for _ in range(rng.randrange(2, 14)):
            sent = random_time(NOW - dt.timedelta(days=180), NOW - dt.timedelta(hours=12))
            campaign = f"cmp_{rng.randrange(1, 25):03d}"
            variant = rng.choice(["A", "B"])
            email = messy_email(p.email)
            chain = ["sent"]
            if rng.random() < 0.03:
                chain.append("bounce")
            elif rng.random() < opener:
                chain.append("open")
                if rng.random() < 0.3:
                    chain.append("click")
                if rng.random() < 0.02:
                    chain.append("unsubscribe")
            for k, event_type in enumerate(chain):
                rows.append(
                    {
                        "event_id": event_id,
                        "email": email,
                        "campaign_id": campaign,
                        "variant": variant,
                        "event_type": event_type,
                        "occurred_at": ts(sent + dt.timedelta(minutes=37 * k)),
                    }
                )
                event_id += 1
    return rows


def make_newsletter(persons: list[Person], first_event_id: int) -> list[dict]:
    """An A/B test with a real difference: one newsletter to every consenting customer,
    variant B's subject line opened more often (34% against 22%); clicks follow opens alike.
    A separate random stream, so the other sources stay as they were."""
    draw = random.Random(SEED + 2)
    sent_at = dt.datetime(2026, 8, 18, 7, 0, tzinfo=dt.UTC)
    open_rate = {"A": 0.22, "B": 0.34}
    rows, event_id = [], first_event_id
    for p in persons:
        if not p.customer_ids or not p.consent:
            continue
        variant = draw.choice(["A", "B"])
        sent = sent_at + dt.timedelta(seconds=draw.randrange(3 * 3600))
        chain = ["sent"]
        if draw.random() < 0.02:
            chain.append("bounce")
        elif draw.random() < open_rate[variant]:
            chain.append("open")
            if draw.random() < 0.3:
                chain.append("click")
        email = p.email.upper() if draw.random() < 0.1 else p.email
        for k, event_type in enumerate(chain):
            rows.append(
                {
                    "event_id": event_id,
                    "email": email,
                    "campaign_id": "cmp_025",
                    "variant": variant,
                    "event_type": event_type,
                    "occurred_at": ts(sent + dt.timedelta(minutes=53 * k)),
                }
            )
            event_id += 1
    return rows


# --------------------------------------------------------------------------------- GA4 events

KV = pa.struct(
    [
        ("key", pa.string()),
        (
            "value",
            pa.struct(
                [
                    ("string_value", pa.string()),
                    ("int_value", pa.int64()),
                    ("float_value", pa.float64()),
                    ("double_value", pa.float64()),
                ]
            ),
        ),
    ]
)
USER_KV = pa.struct(
    [
        ("key", pa.string()),
        (
            "value",
            pa.struct(
                [
                    ("string_value", pa.string()),
                    ("int_value", pa.int64()),
                    ("float_value", pa.float64()),
                    ("double_value", pa.float64()),
                    ("set_timestamp_micros", pa.int64()),
                ]
            ),
        ),
    ]
)
EXPORT_SCHEMA = pa.schema(
    [
        ("event_date", pa.string()),
        ("event_timestamp", pa.int64()),
        ("event_name", pa.string()),
        ("event_params", pa.list_(KV)),
        ("event_bundle_sequence_id", pa.int64()),
        ("user_id", pa.string()),
        ("user_pseudo_id", pa.string()),
        ("user_properties", pa.list_(USER_KV)),
        ("user_first_touch_timestamp", pa.int64()),
        (
            "device",
            pa.struct(
                [
                    ("category", pa.string()),
                    ("operating_system", pa.string()),
                    ("browser", pa.string()),
                    ("language", pa.string()),
                    ("time_zone_offset_seconds", pa.int64()),
                ]
            ),
        ),
        (
            "geo",
            pa.struct(
                [
                    ("continent", pa.string()),
                    ("country", pa.string()),
                    ("region", pa.string()),
                    ("city", pa.string()),
                ]
            ),
        ),
        (
            "traffic_source",
            pa.struct([("name", pa.string()), ("medium", pa.string()), ("source", pa.string())]),
        ),
        ("stream_id", pa.string()),
        ("platform", pa.string()),
        (
            "ecommerce",
            pa.struct(
                [
                    ("total_item_quantity", pa.int64()),
                    ("purchase_revenue", pa.float64()),
                    ("unique_items", pa.int64()),
                    ("transaction_id", pa.string()),
                ]
            ),
        ),
        (
            "items",
            pa.list_(
                pa.struct(
                    [
                        ("item_id", pa.string()),
                        ("item_name", pa.string()),
                        ("item_category", pa.string()),
                        ("price", pa.float64()),
                        ("quantity", pa.int64()),
                    ]
                )
            ),
        ),
    ]
)


def param(key: str, value) -> dict:
    slot = "int_value" if isinstance(value, int) else "string_value"
    return {"key": key, "value": {slot: value}}


def session_events(day, device, person, purchase, products_by_id, sku_of) -> list[dict]:
    start = (
        purchase[0] - dt.timedelta(minutes=rng.randrange(3, 20))
        if purchase
        else dt.datetime.combine(day, dt.time(), dt.UTC)
        + dt.timedelta(seconds=rng.randrange(86_400 - 3_600))
    )
    session_id = int(start.timestamp())
    logged_in = bool(person.customer_ids) and (
        (purchase and purchase[3]["customer_id"]) or rng.random() < 0.5
    )
    user_id = (
        str(
            purchase[3]["customer_id"]
            if purchase and purchase[3]["customer_id"]
            else rng.choice(person.customer_ids)
        )
        if logged_in
        else None
    )
    country_iso = person.country
    base = {
        "event_date": day.strftime("%Y%m%d"),
        "user_id": user_id,
        "user_pseudo_id": device["user_pseudo_id"],
        "user_first_touch_timestamp": int(device["first_touch"].timestamp() * 1_000_000),
        "device": {
            "category": device["category"],
            "operating_system": device["os"],
            "browser": device["browser"],
            "language": rng.choice(["en-us", "de", "fr"]),
            "time_zone_offset_seconds": 0 if device["platform"] == "WEB" else 3600,
        },
        "geo": {
            "continent": "Americas" if country_iso in ("US", "CA") else "Europe",
            "country": COUNTRIES[country_iso][1],
            "region": None,
            "city": person.city,
        },
        "traffic_source": {
            "name": "(organic)",
            "medium": device["traffic"][1],
            "source": device["traffic"][0],
        },
        "stream_id": "4000000001" if device["platform"] == "WEB" else "4000000002",
        "platform": device["platform"],
        "user_properties": (
            [
                {
                    "key": "customer_tier",
                    "value": {
                        "string_value": "member",
                        "set_timestamp_micros": session_id * 1_000_000,
                    },
                }
            ]
            if user_id
            else []
        ),
    }
    names = ["session_start"] + ["page_view"] * rng.randrange(1, 4)
    if user_id and rng.random() < 0.3:
        names.insert(1, "login")
    viewed = [rng.choice(list(products_by_id.values())) for _ in range(rng.randrange(0, 3))]
    names += ["view_item"] * len(viewed)
    if purchase:
        names += ["add_to_cart", "begin_checkout", "purchase"]
    events, clock = [], start
    for seq, name in enumerate(names):
        clock += dt.timedelta(seconds=rng.randrange(5, 90))
        if purchase and name == "purchase":
            clock = max(clock, purchase[0])
        page = (
            "/checkout"
            if name in ("begin_checkout", "purchase")
            else rng.choice(["/", "/new", "/sale", "/c/" + rng.choice(CATEGORIES)])
        )
        event = dict(
            base,
            event_name=name,
            event_timestamp=int(clock.timestamp() * 1_000_000) + rng.randrange(1000),
            event_bundle_sequence_id=seq + 1,
            event_params=[
                param("ga_session_id", session_id),
                param("ga_session_number", rng.randrange(1, 30)),
                param("page_location", "https://shop.example.com" + page),
                param("page_title", page.strip("/").title() or "Home"),
            ],
            items=[],
            ecommerce=None,
        )
        if name == "view_item" and viewed:
            product = viewed.pop()
            event["items"] = [
                {
                    "item_id": product["sku"],
                    "item_name": product["name"],
                    "item_category": product["category"],
                    "price": product["price"],
                    "quantity": 1,
                }
            ]
        if name in ("add_to_cart", "begin_checkout", "purchase"):
            lines = purchase[4]
            event["items"] = [
                {
                    "item_id": sku_of[line["product_id"]],
                    "item_name": products_by_id[line["product_id"]]["name"],
                    "item_category": products_by_id[line["product_id"]]["category"],
                    "price": float(line["unit_price"]),
                    "quantity": line["quantity"],
                }
                for line in lines
            ]
        if name == "purchase":
            order = purchase[3]
            event["ecommerce"] = {
                "transaction_id": str(order["order_id"]),
                "purchase_revenue": float(order["total_amount"]),
                "total_item_quantity": sum(line["quantity"] for line in purchase[4]),
                "unique_items": len(purchase[4]),
            }
        events.append(event)
    return events


def bq_json(value):
    """BigQuery's JSON export: INT64 as strings, NULL fields left out."""
    if isinstance(value, dict):
        return {k: bq_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [bq_json(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def avro_type(arrow_type: pa.DataType, name: str):
    if pa.types.is_struct(arrow_type):
        fields = [
            {"name": f.name, "type": avro_type(f.type, f"{name}_{f.name}")} for f in arrow_type
        ]
        return ["null", {"type": "record", "name": name, "fields": fields}]
    if pa.types.is_list(arrow_type):
        return ["null", {"type": "array", "items": avro_type(arrow_type.value_type, name)[1]}]
    return ["null", {"string": "string", "int64": "long", "double": "double"}[str(arrow_type)]]


def write_shard(day_dir_name: str, events: list[dict], fmt: str, parts: int) -> None:
    ga4 = OUT / "ga4"
    chunks = [events[i::parts] for i in range(parts)]
    prefix_layout = fmt.endswith("-prefix")
    fmt = fmt.removesuffix("-prefix")
    for n, chunk in enumerate(chunks):
        chunk.sort(key=lambda e: e["event_timestamp"])
        ext = {"json": ".json", "json.gz": ".json.gz", "parquet": ".parquet", "avro": ".avro"}[fmt]
        path = (
            ga4 / f"{day_dir_name}-{n:012d}{ext}"
            if prefix_layout
            else ga4 / day_dir_name / f"{n:012d}{ext}"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt in ("json", "json.gz"):
            text = "".join(json.dumps(bq_json(e), separators=(",", ":")) + "\n" for e in chunk)
            if fmt == "json":
                path.write_text(text)
            else:
                path.write_bytes(gzip.compress(text.encode(), mtime=0))
        elif fmt == "parquet":
            pq.write_table(
                pa.Table.from_pylist(chunk, schema=EXPORT_SCHEMA), path, compression="zstd"
            )
        else:
            schema = {
                "type": "record",
                "name": "Root",
                "fields": [
                    {"name": f.name, "type": avro_type(f.type, f.name)} for f in EXPORT_SCHEMA
                ],
            }
            with path.open("wb") as fh:
                fastavro.writer(
                    fh,
                    fastavro.parse_schema(schema),
                    chunk,
                    codec="deflate",
                    sync_marker=b"cdp-demo-sync-16",
                )


def make_ga4(persons, products, web_purchases) -> None:
    products_by_id = {p["product_id"]: p for p in products}
    sku_of = {p["product_id"]: p["sku"] for p in products}
    purchases_by_day: dict[dt.date, list] = {}
    for purchase in web_purchases:
        purchases_by_day.setdefault(purchase[0].date(), []).append(purchase)
    formats = ["parquet", "json.gz", "avro", "json.gz", "json", "json.gz-prefix", "parquet"]
    for d in range(GA4_DAYS + 1):
        day = GA4_FIRST_DAY + dt.timedelta(days=d)
        events = []
        for p in persons:
            for device in p.devices:  # a shared device appears under each of its owners
                if rng.random() < 0.045:
                    events += session_events(day, device, p, None, products_by_id, sku_of)
        for purchase in purchases_by_day.get(day, []):
            events += session_events(
                day, purchase[1], purchase[2], purchase, products_by_id, sku_of
            )
        if day == INTRADAY_DAY:  # today's streaming export: only the early hours so far
            cutoff = int(NOW.timestamp() * 1_000_000)
            events = [e for e in events if e["event_timestamp"] < cutoff]
            write_shard(f"events_intraday_{day:%Y%m%d}", events, "json", 1)
        else:
            fmt = formats[d % len(formats)]
            write_shard(f"events_{day:%Y%m%d}", events, fmt, 2 if "json.gz" in fmt else 1)


# ------------------------------------------------------------------------------------ sheets


def make_sheets(persons: list[Person]) -> tuple[list, list, list]:
    surveys = []
    for p in rng.sample(persons, N_PERSONS // 4):
        age = ""
        if p.birth_date and rng.random() < 0.8:
            age = str((NOW.date() - p.birth_date).days // 365)
        interests = rng.sample(INTERESTS, rng.randrange(1, 4))
        sep = rng.choice([", ", ";", " ; ", ","])
        surveys.append(
            {
                "submitted_at": ts(random_time(NOW - dt.timedelta(days=200), NOW))[:-3],
                "email": messy_email(p.email) if rng.random() < 0.9 else "",
                "phone": messy_phone(p.phone, national_ok=p.country == "US")
                if p.phone and rng.random() < 0.5
                else "",
                "age": age,
                "gender": rng.choice(GENDER_SPELLINGS[p.gender]),
                "education": rng.choice(["high school", "bachelor", "master", "phd", ""]),
                "profession": rng.choice(
                    [
                        "engineer",
                        "teacher",
                        "nurse",
                        "designer",
                        "student",
                        "manager",
                        "retired",
                        "",
                    ]
                ),
                "income_band": rng.choice(["<25k", "25-50k", "50-100k", "100k+", ""]),
                "interests": sep.join(
                    i.capitalize() if rng.random() < 0.3 else i for i in interests
                ),
                "values": rng.choice(["sustainability", "quality", "price", "convenience", ""]),
                "lifestyle": rng.choice(["active", "family", "urban", "outdoor", "homebody", ""]),
                "preferred_channel": rng.choice(["email", "sms", "push", "phone", ""]),
                "buys_for": p.buys_for if rng.random() < 0.9 else "",
            }
        )
    surveys.sort(key=lambda r: r["submitted_at"])
    b2b = [
        dict(
            zip(
                ["company_name", "email_domain", "industry", "company_size", "account_manager"],
                c,
                strict=True,
            )
        )
        for c in COMPANIES
    ]
    privacy = []
    for p in rng.sample([p for p in persons if p.customer_ids], 14):
        by_phone = p.phone is not None and rng.random() < 0.3
        privacy.append(
            {
                "requested_at": ts(random_time(NOW - dt.timedelta(days=60), NOW))[:-3],
                "email": "" if by_phone else messy_email(p.email),
                "phone": messy_phone(p.phone, national_ok=False) if by_phone else "",
                "request_type": "erasure" if len(privacy) < 5 else "marketing_opt_out",
            }
        )
    return surveys, b2b, privacy


def make_fx_rates() -> list[dict]:
    """Weekday reference rates (no weekend rows, as central banks publish them) for the
    shop's currencies in US dollars, a small random walk around a realistic level. A
    separate random stream, so the other sources stay as they were."""
    walk = random.Random(SEED + 1)
    levels = {"EUR": 1.08, "GBP": 1.27, "CAD": 0.73}
    rows = []
    day = (HISTORY_START - dt.timedelta(days=7)).date()
    while day < NOW.date():
        if day.weekday() < 5:
            for currency in levels:
                levels[currency] *= 1 + walk.gauss(0, 0.004)
                rows.append(
                    {
                        "rate_date": day.isoformat(),
                        "currency": currency,
                        "rate": f"{levels[currency]:.4f}",
                    }
                )
        day += dt.timedelta(days=1)
    return rows


# ------------------------------------------------------------------------------------ output


def write_csv(path: Path, rows: list[dict], trim_trailing: bool = False) -> None:
    """Write rows; for Sheets tabs drop trailing empty cells as the Sheets API does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(rows[0].keys())
        for row in rows:
            values = [
                "" if v is None else ("true" if v is True else "false" if v is False else v)
                for v in row.values()
            ]
            while trim_trailing and values and values[-1] == "":
                values.pop()
            writer.writerow(values)


def ground_truth(persons, orders) -> list[dict]:
    owners: dict[tuple[str, str], set[str]] = {}

    def add(kind: str, value: str | None, person: Person) -> None:
        if value:
            owners.setdefault((kind, value), set()).add(person.person_id)

    by_email = {}
    for p in persons:
        for customer_id in p.customer_ids:
            add("customer_id", str(customer_id), p)
        for email in [p.email, *p.extra_emails]:
            add("email", email, p)
            by_email[email] = p
        if p.phone:
            add("phone", e164(p.phone), p)
        for device in p.devices:
            add("device", device["user_pseudo_id"], p)
    customer_owner = {c: p for p in persons for c in p.customer_ids}
    for order in orders:  # mistyped and placeholder emails belong to whoever typed them
        email = order["email"].strip().lower()
        if email not in by_email:
            owner = customer_owner.get(order["customer_id"])
            if owner is None:
                owner = next(p for p in persons if p.person_id == order["_person"])
            add("email", email, owner)
    return [
        {"identifier_type": k, "identifier_value": v, "person_id": "|".join(sorted(ids))}
        for (k, v), ids in sorted(owners.items())
    ]


def main() -> None:
    shutil.rmtree(OUT / "ga4", ignore_errors=True)  # the CSVs are overwritten in place
    persons = make_persons()
    assign_accounts_and_devices(persons)
    devices_by_person = {p.person_id: p.devices for p in persons}
    products = make_products()
    customers = make_customers(persons)
    orders, items, web_purchases = make_orders(persons, products, devices_by_person)
    email_events = make_email_events(persons)
    make_ga4(persons, products, web_purchases)
    surveys, b2b, privacy = make_sheets(persons)
    email_events += make_newsletter(persons, len(email_events) + 1)

    write_csv(OUT / "shop" / "customers.csv", customers)
    write_csv(OUT / "shop" / "products.csv", products)
    write_csv(
        OUT / "shop" / "orders.csv",
        [{k: v for k, v in o.items() if k != "_person"} for o in orders],
    )
    write_csv(OUT / "shop" / "order_items.csv", items)
    write_csv(OUT / "shop" / "email_events.csv", email_events)
    write_csv(OUT / "sheets" / "survey_responses.csv", surveys, trim_trailing=True)
    write_csv(OUT / "sheets" / "b2b_accounts.csv", b2b, trim_trailing=True)
    write_csv(OUT / "sheets" / "privacy_requests.csv", privacy, trim_trailing=True)
    write_csv(OUT / "sheets" / "fx_rates.csv", make_fx_rates(), trim_trailing=True)
    write_csv(OUT / "ground_truth.csv", ground_truth(persons, orders))
    print(
        f"persons={len(persons)} customers={len(customers)} orders={len(orders)} "
        f"order_items={len(items)} email_events={len(email_events)} surveys={len(surveys)}"
    )


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1:
        OUT = Path(sys.argv[1]).resolve()
    main()
