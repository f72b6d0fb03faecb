"""Identifier normalization that SQL cannot do well: phone numbers to E.164 with Google's
libphonenumber metadata (the `phonenumbers` package).

Registered as DuckDB scalar functions by the dbt-duckdb plugin below, so staging models call
`cdp_phone_e164(raw, region)` and `cdp_phone_problem(raw, region)` like built-ins. Parsing is
cached per (value, region): real data repeats the same numbers across orders, so each distinct
value is parsed once per process.
"""

from __future__ import annotations

import functools

import phonenumbers
from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection
from duckdb.sqltypes import VARCHAR


@functools.lru_cache(maxsize=2_000_000)
def parse_phone(raw: str | None, region: str | None) -> tuple[str | None, str | None]:
    """(E.164, None) for a valid number, else (None, why it was rejected)."""
    if raw is None or not raw.strip():
        return None, None
    try:
        number = phonenumbers.parse(raw, (region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        reason = {
            phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "no country code or region",
            phonenumbers.NumberParseException.NOT_A_NUMBER: "not a number",
            phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
            phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
            phonenumbers.NumberParseException.TOO_LONG: "too long",
        }.get(exc.error_type, "unparsable")
        return None, reason
    if not phonenumbers.is_valid_number(number):
        return None, "not a valid number for its region"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def phone_e164(raw: str | None, region: str | None) -> str | None:
    return parse_phone(raw, region)[0]


def phone_problem(raw: str | None, region: str | None) -> str | None:
    return parse_phone(raw, region)[1]


def register(con: DuckDBPyConnection) -> None:
    for name, fn in (("cdp_phone_e164", phone_e164), ("cdp_phone_problem", phone_problem)):
        con.create_function(
            name, fn, [VARCHAR, VARCHAR], VARCHAR, null_handling="special", side_effects=False
        )


class Plugin(BasePlugin):
    """dbt-duckdb plugin (`profiles.yml` → `plugins`): adds the functions to dbt's connection."""

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        register(conn)
