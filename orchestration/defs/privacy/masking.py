"""Publication without personal data (CDP_PUBLISH_PII=off), for a BI audience without clearance.

Emails and phones are published as the salted SHA-256 hashes erasure keeps identifiers as
(the same salt, the same `salt:type:value` form), so a profile can still be found by a hash
that `cdp hash <email or phone>` prints, and counts by person stay right. Names and the birth
date, useless as hashes, are published as nulls.
"""

from __future__ import annotations

import hashlib

from orchestration.defs.identity.phones import parse_phone

# The hash of `privacy.erased_identifiers` (privacy/erasure.py): `?` is the salt.
HASH_SQL = "sha256(? || ':' || {kind} || ':' || {value})"

# Per published mart: the columns replaced, as SQL over the mart's own columns. Each holds
# one `?` (the salt) per hash.
MASKED_COLUMNS: dict[str, dict[str, str]] = {
    "customer_profiles": {
        "email": HASH_SQL.format(kind="'email'", value="email"),
        "phone": HASH_SQL.format(kind="'phone'", value="phone"),
        "first_name": "null::varchar",
        "last_name": "null::varchar",
        "birth_date": "null::date",
    },
    "customer_identities": {
        "identifier_value": (
            "case when identifier_type in ('email', 'phone') then "
            + HASH_SQL.format(kind="identifier_type", value="identifier_value")
            + " else identifier_value end"
        ),
    },
}


def masked_select(table: str, source: str) -> tuple[str, int]:
    """`select * replace (…) from source` for a masked mart, with the number of salts it
    takes; the column order and types of the mart are kept."""
    columns = MASKED_COLUMNS.get(table)
    if not columns:
        return f"select * from {source}", 0
    replaced = ", ".join(f"{sql} as {name}" for name, sql in columns.items())
    return f"select * replace ({replaced}) from {source}", replaced.count("?")


def identifier_hash(salt: str, value: str, default_region: str = "US") -> tuple[str, str]:
    """The (type, hash) under which an email or phone is published with CDP_PUBLISH_PII=off,
    normalized as identity normalizes it: an email trimmed and lower-cased, a phone in
    E.164 (read in `default_region` unless it starts with +)."""
    value = value.strip(" \t\r\n\xa0")
    if "@" in value:
        kind, normalized = "email", value.lower()
    else:
        normalized, problem = parse_phone(value, default_region)
        if normalized is None:
            raise ValueError(f"{value!r} is neither an email address nor a phone ({problem})")
        kind = "phone"
    return kind, hashlib.sha256(f"{salt}:{kind}:{normalized}".encode()).hexdigest()
