"""Erasure requests (right to be forgotten): the whole stitched person leaves every layer.

A request names an email or phone. Once persons are stitched, every identifier of each
requested person is recorded as a salted SHA-256 hash in `privacy.erased_identifiers` (the
request itself survives only in that form), and every row holding one of those identifiers is
deleted from the raw tables, staging, identity, quarantine and the request tab's copy. The
hashes keep applying: data extracted again later (a full refresh, a re-exported GA4 day) is
stitched, recognized by its hash and deleted again before any mart is built. The marts, and
so the published file, are then built without the person.

The salt is CDP_PRIVACY_SALT, else a random value kept in `$CDP_DATA_DIR/privacy.salt`.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import duckdb
import phonenumbers

from orchestration.defs.identity.normalize import register as register_phone_functions
from orchestration.defs.privacy.access import delete_access_exports
from orchestration.settings import load_settings
from orchestration.warehouse import scalar

DDL = """
create schema if not exists privacy;
create table if not exists privacy.erased_identifiers (
    identifier_type varchar not null,
    identifier_hash varchar not null,
    recorded_at timestamptz not null,
    primary key (identifier_type, identifier_hash)
);
create table if not exists privacy.erasure_log (
    run_id varchar not null,
    table_name varchar not null,
    rows_deleted bigint not null,
    erased_at timestamptz not null
);
"""


def privacy_salt(data_dir: Path) -> str:
    configured = load_settings().privacy_salt
    if configured:
        return configured
    path = data_dir / "privacy.salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        f"{schema}.{name}"
        for schema, name in con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    }


# Which rows of which table belong to an erased person: SQL conditions over the table's own
# columns and the temp table `_erase(identifier_type, identifier_value)` of plain identifiers.
def _is(kind: str, expression: str) -> str:
    return (
        f"exists (select 1 from _erase as x where x.identifier_type = '{kind}' "
        f"and x.identifier_value = {expression})"
    )


_SAME_IDENTIFIER = (
    "(identifier_type, identifier_value) in (select identifier_type, identifier_value from _erase)"
)
_EMAIL = "lower(trim(email, ' ' || chr(9) || chr(10) || chr(13) || chr(160)))"
_REGION = "coalesce(upper(nullif(trim({}), '')), '{}')"
ROW_RULES: dict[str, str] = {
    "raw_shop.customers": " or ".join(
        [
            _is("customer_id", "customer_id::varchar"),
            _is("email", _EMAIL),
            _is("phone", "cdp_phone_e164(phone, {region:country})"),
        ]
    ),
    "raw_shop.orders": " or ".join(
        [
            _is("order_id", "order_id::varchar"),
            _is("customer_id", "customer_id::varchar"),
            _is("email", _EMAIL),
            _is("phone", "cdp_phone_e164(phone, {region:ship_country})"),
        ]
    ),
    "raw_shop.order_items": _is("order_id", "order_id::varchar"),
    "raw_shop.email_events": _is("email", _EMAIL),
    "raw_ga4.events": " or ".join(
        [
            _is("device", "user_pseudo_id"),
            _is("customer_id", "trim(user_id)"),
            _is("order_id", "trim(ecommerce.transaction_id)"),
        ]
    ),
    "raw_sheets.survey_responses": " or ".join(
        [
            _is("email", _EMAIL),
            _is("phone", "cdp_phone_e164(phone, {region:})"),
        ]
    ),
    "raw_sheets.privacy_requests": " or ".join(
        [
            _is("email", _EMAIL),
            _is("phone", "cdp_phone_e164(phone, {region:})"),
            "lower(trim(request_type)) = 'erasure'",
        ]
    ),
    "staging.stg_ga4__events": " or ".join(
        [
            _is("device", "device_id"),
            _is("customer_id", "user_id"),
            _is("order_id", "transaction_id"),
        ]
    ),
    "staging.stg_ga4__items": " or ".join(
        [
            _is("device", "device_id"),
            _is("customer_id", "user_id"),
            _is("order_id", "transaction_id"),
        ]
    ),
    "staging.stg_shop__customers": _is("customer_id", "customer_id::varchar"),
    "staging.stg_shop__orders": _is("order_id", "order_id::varchar"),
    "staging.stg_shop__order_items": _is("order_id", "order_id::varchar"),
    "staging.stg_shop__email_events": _is("email", "email"),
    "staging.stg_sheets__survey_responses": " or ".join(
        [
            _is("email", "email"),
            _is("phone", "phone"),
        ]
    ),
    "staging.stg_sheets__privacy_requests": " or ".join(
        [
            _is("email", "email"),
            _is("phone", "phone"),
            "request_type = 'erasure'",
        ]
    ),
    "identity.int_identity__observations": _SAME_IDENTIFIER,
    "identity.int_identity__rejected_identifiers": (
        "(source = 'shop.customers' and " + _is("customer_id", "record_id") + ") or "
        "(source = 'shop.orders' and " + _is("order_id", "record_id") + ") or "
        "(source = 'sheets.survey_responses' and record_id in (select survey_row::varchar "
        "from _erased_surveys))"
    ),
    "identity.guard_audit": _SAME_IDENTIFIER,
    # A quarantined record is the original row or line, in whatever shape it failed in (a
    # Sheets row as a list of cells, a GA4 line as text): searched as text, not by field.
    "quarantine.rejected_rows": " or ".join(
        [
            "exists (select 1 from _erase_text as x where contains(lower(record), x.needle))",
            "exists (select 1 from _erase_digits as x where "
            "contains(regexp_replace(record, '[^0-9]', '', 'g'), x.digits))",
            "exists (select 1 from _erase as x where x.identifier_type in ('customer_id', "
            "'order_id') and regexp_matches(record, '(customer_id|user_id|order_id|"
            'transaction_id)\\\\?"\\s*:\\s*\\\\?"?\' || x.identifier_value || '
            "'(\\\\?\"|\\s*[,}])'))",
        ]
    ),
}
KEYED_TABLES = (
    "identity.identifier_keys",
    "identity.customer_identities",
    "identity.order_keys",
    "identity.customer_keys",
)


def erase(con: duckdb.DuckDBPyConnection, salt: str, default_region: str, run_id: str) -> Erased:
    """Record new erasure requests, find their persons, delete them everywhere in the
    warehouse, with their access exports.

    The rows deleted per table are appended to `privacy.erasure_log`, which holds counts
    only, so operators can account for rows that left the raw tables."""
    register_phone_functions(con)
    con.execute(DDL)
    digest = "sha256(? || ':' || {kind} || ':' || {value})"
    requests = "staging.stg_sheets__privacy_requests"
    con.execute(
        f"""
        insert or ignore into privacy.erased_identifiers
        select distinct identifier_type, {
            digest.format(kind="identifier_type", value="identifier_value")
        }, now()
        from (
            select 'email' as identifier_type, email as identifier_value from {requests}
            where request_type = 'erasure' and email is not null
            union all
            select 'phone', phone from {requests}
            where request_type = 'erasure' and phone is not null
        )
        """,
        [salt],
    )
    con.execute(
        f"""
        create or replace temp table _erased_keys as
        select distinct i.customer_key
        from identity.identifier_keys as i
        join privacy.erased_identifiers as e
          on e.identifier_type = i.identifier_type
         and e.identifier_hash = {
            digest.format(kind="i.identifier_type", value="i.identifier_value")
        }
        """,
        [salt],
    )
    con.execute(
        """
        create or replace temp table _erase as
        select identifier_type, identifier_value from identity.identifier_keys
        where customer_key in (select customer_key from _erased_keys)
        """
    )
    persons = scalar(con, "select count(*) from _erased_keys")
    requarantined = _requarantined(con, salt, default_region)
    if persons == 0:  # nobody to remove; the requests themselves still go (hashes stay)
        deleted = {
            "persons": 0,
            "quarantine.rejected_rows": requarantined,
            "raw_sheets.privacy_requests": scalar(
                con,
                "delete from raw_sheets.privacy_requests "
                "where lower(trim(request_type)) = 'erasure'",
            ),
            requests: scalar(con, f"delete from {requests} where request_type = 'erasure'"),
        }
        if any(deleted.values()):  # read again from the sources: logged, so the
            # publication rewrites the file these rows' bytes were written to
            con.executemany(
                "insert into privacy.erasure_log values (?, ?, ?, now())",
                [[run_id, table, rows] for table, rows in deleted.items()],
            )
        return Erased(deleted, [])
    identifiers = _searchable_identifiers(con)
    con.execute(
        f"""
        insert or ignore into privacy.erased_identifiers
        select identifier_type, {digest.format(kind="identifier_type", value="identifier_value")},
               now()
        from _erase
        """,
        [salt],
    )
    existing = _tables(con)
    surveys = "staging.stg_sheets__survey_responses"
    con.execute(
        f"create or replace temp table _erased_surveys as select survey_row from {surveys} "
        f"where {ROW_RULES[surveys]}"
        if surveys in existing
        else "create or replace temp table _erased_surveys (survey_row integer)"
    )
    deleted: dict[str, int] = {"persons": persons}
    quarantined_before = requarantined
    con.execute("begin transaction")
    try:
        for table, rule in ROW_RULES.items():
            if table not in existing:
                continue
            condition = _with_regions(rule, default_region)
            deleted[table] = scalar(con, f"delete from {table} where {condition}")
        deleted["quarantine.rejected_rows"] += quarantined_before
        for table in KEYED_TABLES:
            deleted[table] = scalar(
                con,
                f"delete from {table} where customer_key in "
                "(select customer_key from _erased_keys)",
            )
        deleted["identity.customer_key_merges"] = scalar(
            con,
            "delete from identity.customer_key_merges where retired_key in "
            "(select customer_key from _erased_keys) or surviving_key in "
            "(select customer_key from _erased_keys)",
        )
        deleted["privacy.access_exports"] = delete_access_exports(con)
        con.executemany(
            "insert into privacy.erasure_log values (?, ?, ?, now())",
            [[run_id, table, rows] for table, rows in deleted.items()],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return Erased(deleted, identifiers)


def _requarantined(con: duckdb.DuckDBPyConnection, salt: str, default_region: str) -> int:
    """Delete quarantined records of persons erased in earlier runs. A source read whole (a
    sheet) brings their rows back every night; those that fail a rule never reach identity,
    so they are found by the salted hashes of the emails, phones and device ids in their
    text."""
    return scalar(
        con,
        f"""
        delete from quarantine.rejected_rows as q where exists (
            select 1
            from (
                select 'email' as kind, found as value from unnest(regexp_extract_all(
                    lower(q.record), '[a-z0-9._%+-]+@[a-z0-9.-]+[.][a-z]{{2,}}')) as u(found)
                union all
                select 'phone', cdp_phone_e164(found, '{default_region}')
                from unnest(regexp_extract_all(
                    q.record, '[+]?[0-9][0-9 ().-]{{5,}}[0-9]')) as u(found)
                union all
                select 'device', found
                from unnest(regexp_extract_all(q.record, '[0-9]+[.][0-9]+')) as u(found)
            ) as candidates
            join privacy.erased_identifiers as erased
              on erased.identifier_type = candidates.kind
             and erased.identifier_hash
                 = sha256(? || ':' || candidates.kind || ':' || candidates.value)
        )
        """,
        [salt],
    )


@dataclass
class Erased:
    """What one erasure pass removed: rows per table (logged), and the identifiers as text
    (kept in memory only) to search the files beside the warehouse for."""

    deleted: dict[str, int]
    identifiers: list[str]


def _searchable_identifiers(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Fill `_erase_text` and `_erase_digits` with the forms in which the erased persons'
    emails, phones and devices may appear in an original record: the normalized value
    (lower-case) and, for a phone, its national digits (found in any formatting once the
    record is reduced to its digits). Customer and order ids are plain numbers, searched by
    field name instead. Returns the text forms."""
    rows = con.execute(
        "select identifier_type, identifier_value from _erase "
        "where identifier_type in ('email', 'phone', 'device')"
    ).fetchall()
    needles = sorted({value.lower() for _, value in rows})
    digits = sorted(
        {str(phonenumbers.parse(value).national_number) for kind, value in rows if kind == "phone"}
    )
    con.execute(
        "create or replace temp table _erase_text as select unnest(?::varchar[]) as needle",
        [needles],
    )
    con.execute(
        "create or replace temp table _erase_digits as select unnest(?::varchar[]) as digits",
        [digits],
    )
    return needles


def _with_regions(rule: str, default_region: str) -> str:
    """Fill `{region:<country column>}` with the phone region used by staging."""
    return re.sub(
        r"\{region:(\w*)\}",
        lambda m: (
            _REGION.format(m.group(1), default_region) if m.group(1) else f"'{default_region}'"
        ),
        rule,
    )
