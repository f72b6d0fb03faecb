"""Erasure requests (right to be forgotten): the whole stitched person leaves every layer.

Runs before dbt. A request names an email or phone. Its person is found in the previous
run's stitching (`identity.int_identity__identifier_keys`); every identifier of that person
is recorded as a salted SHA-256 hash in `privacy.erased_identifiers` (the request itself
survives only in that form) and every raw and quarantined row holding one of them is
deleted. The hashes keep applying: raw rows loaded later (a re-exported GA4 day, a sheet read
whole) are hashed once after they land and deleted when they hold an erased identifier, and
the dbt models do their part from the same hashes: incremental models delete such rows
(macro `forget_erased`) and stitching drops any person holding one. The marts, and so the
published file, are built without the person.

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


# Where each raw table holds identifiers: SQL expressions over the table's own columns, giving
# the identifier as staging normalizes it. `{region:<country column>}` is the phone region
# staging reads the number in.
_EMAIL = "lower(trim(email, ' ' || chr(9) || chr(10) || chr(13) || chr(160)))"
_REGION = "coalesce(upper(nullif(trim({}), '')), '{}')"
RAW_IDENTIFIERS: dict[str, dict[str, str]] = {
    "raw_shop.customers": {
        "customer_id": "customer_id::varchar",
        "email": _EMAIL,
        "phone": "cdp_phone_e164(phone, {region:country})",
    },
    "raw_shop.orders": {
        "order_id": "order_id::varchar",
        "customer_id": "customer_id::varchar",
        "email": _EMAIL,
        "phone": "cdp_phone_e164(phone, {region:ship_country})",
    },
    "raw_shop.order_items": {"order_id": "order_id::varchar"},
    "raw_shop.email_events": {"email": _EMAIL},
    "raw_ga4.events": {
        "device": "user_pseudo_id",
        "customer_id": "trim(user_id)",
        "order_id": "trim(ecommerce.transaction_id)",
    },
    "raw_sheets.survey_responses": {
        "email": _EMAIL,
        "phone": "cdp_phone_e164(phone, {region:})",
    },
    "raw_sheets.privacy_requests": {
        "email": _EMAIL,
        "phone": "cdp_phone_e164(phone, {region:})",
    },
}
REQUESTS = "raw_sheets.privacy_requests"
IS_ERASURE_REQUEST = "lower(trim(request_type)) = 'erasure'"
PREVIOUS_KEYS = "identity.int_identity__identifier_keys"
SCANS_DDL = """
create table if not exists privacy.erasure_scans (
    table_name varchar primary key, loaded_to timestamptz not null
);
"""
# A quarantined record is the original row or line, in whatever shape it failed in (a Sheets
# row as a list of cells, a GA4 line as text): searched as text, not by field.
QUARANTINE_RULE = " or ".join(
    [
        "exists (select 1 from _erase_text as x where contains(lower(record), x.needle))",
        "exists (select 1 from _erase_digits as x where "
        "contains(regexp_replace(record, '[^0-9]', '', 'g'), x.digits))",
        "exists (select 1 from _erase as x where x.identifier_type in ('customer_id', "
        "'order_id') and regexp_matches(record, '(customer_id|user_id|order_id|"
        'transaction_id)\\\\?"\\s*:\\s*\\\\?"?\' || x.identifier_value || '
        "'(\\\\?\"|\\s*[,}])'))",
    ]
)
_DIGEST = "sha256(? || ':' || {kind} || ':' || {value})"


def _holds_erased(table: str, default_region: str) -> str:
    """The condition on a row of `table` that it holds an identifier listed in `_erase`."""
    return " or ".join(
        f"('{kind}', {_with_regions(expression, default_region)}) in "
        "(select identifier_type, identifier_value from _erase)"
        for kind, expression in RAW_IDENTIFIERS[table].items()
    )


NODES = "identity.int_identity__nodes"
COMPONENTS = "identity.int_identity__components"


def _requested(default_region: str) -> str:
    """The identifiers erasure requests name, normalized as staging does."""
    return f"""
        select distinct identifier_type, identifier_value from (
            select 'email' as identifier_type, {_EMAIL} as identifier_value
            from {REQUESTS} where {IS_ERASURE_REQUEST}
            union all
            select 'phone', {_with_regions(RAW_IDENTIFIERS[REQUESTS]["phone"], default_region)}
            from {REQUESTS} where {IS_ERASURE_REQUEST}
        ) where nullif(identifier_value, '') is not null
    """


def unknown_requests(con: duckdb.DuckDBPyConnection, salt: str, default_region: str) -> int:
    """New erasure requests naming an identifier the previous run's stitching does not hold
    (a first run, or a person whose data arrived with the request): their persons must be
    stitched from this run's data before anything can be erased."""
    register_phone_functions(con)
    con.execute(DDL)
    existing = _tables(con)
    if REQUESTS not in existing:
        return 0
    con.execute(f"create or replace temp table _requested as {_requested(default_region)}")
    if scalar(con, "select count(*) from _requested") == 0:
        return 0  # most nights: no request, and nothing to compare with every identifier
    known = (
        f"and (identifier_type, identifier_value) not in "
        f"(select identifier_type, identifier_value from {PREVIOUS_KEYS})"
        if PREVIOUS_KEYS in existing
        else ""
    )
    return scalar(
        con,
        f"""
        select count(*) from _requested
        where (identifier_type,
               {_DIGEST.format(kind="identifier_type", value="identifier_value")})
              not in (select identifier_type, identifier_hash from privacy.erased_identifiers)
        {known}
        """,
        [salt],
    )


def erase(
    con: duckdb.DuckDBPyConnection,
    salt: str,
    default_region: str,
    run_id: str,
    *,
    stitched_now: bool = False,
) -> Erased:
    """Record new erasure requests, find their persons, delete their raw and quarantined
    rows and their access exports. Persons are found in the previous run's stitching, and,
    with `stitched_now`, also in the identity graph just built from this run's data.

    The rows deleted per table are appended to `privacy.erasure_log`, which holds counts
    only, so operators can account for rows that left the raw tables."""
    register_phone_functions(con)
    con.execute(DDL + SCANS_DDL)
    existing = _tables(con)
    raw = [table for table in RAW_IDENTIFIERS if table in existing]
    con.execute(
        "create or replace temp table _erase (identifier_type varchar, identifier_value varchar)"
    )
    if REQUESTS in raw:
        con.execute(f"insert into _erase {_requested(default_region)}")
    con.execute("create or replace temp table _erased_keys (customer_key varchar)")
    # what to look for in the stitching: the identifiers requested, and those erased before
    # (hashed: only when there are any; neither, and nobody is looked up)
    held = _holding_erased(con)
    if PREVIOUS_KEYS in existing and held:  # the persons of the requests, as last stitched
        con.execute(
            f"""
            insert into _erased_keys
            select distinct i.customer_key
            from {PREVIOUS_KEYS} as i
            where {held.format(alias="i.")}
            """,
            [salt] * held.count("?"),
        )
        con.execute(
            f"""
            insert into _erase
            select identifier_type, identifier_value from {PREVIOUS_KEYS}
            where customer_key in (select customer_key from _erased_keys)
            """
        )
    if stitched_now and {NODES, COMPONENTS} <= existing:
        con.execute(
            f"""
            create or replace temp table _erased_components as
            select distinct c.label
            from {NODES} as n join {COMPONENTS} as c using (node)
            where {held.format(alias="n.") if held else "false"}
            """,
            [salt] * held.count("?"),
        )
        con.execute(
            f"""
            insert into _erase
            select n.identifier_type, n.identifier_value
            from {NODES} as n join {COMPONENTS} as c using (node)
            where c.label in (select label from _erased_components)
            """
        )
    _newly_loaded_erased(con, raw, salt, default_region)
    con.execute(
        f"""
        insert or ignore into privacy.erased_identifiers
        select distinct identifier_type,
               {_DIGEST.format(kind="identifier_type", value="identifier_value")}, now()
        from _erase
        """,
        [salt],
    )
    persons = scalar(
        con,
        # the graph just built holds everybody the previous stitching held, and the newcomers
        "select count(*) from _erased_components"
        if stitched_now and {NODES, COMPONENTS} <= existing
        else "select count(*) from _erased_keys",
    )
    identifiers = _searchable_identifiers(con)
    deleted: dict[str, int] = {
        "persons": persons,
        "quarantine.rejected_rows": _requarantined(con, salt, default_region),
    }
    con.execute("begin transaction")
    try:
        anybody = scalar(con, "select count(*) from _erase") > 0
        for table in raw if anybody else [t for t in raw if t == REQUESTS]:
            condition = _holds_erased(table, default_region) if anybody else "false"
            if table == REQUESTS:
                condition += f" or {IS_ERASURE_REQUEST}"
            deleted[table] = scalar(con, f"delete from {table} where {condition}")
        if "quarantine.rejected_rows" in existing:
            deleted["quarantine.rejected_rows"] += scalar(
                con, f"delete from quarantine.rejected_rows where {QUARANTINE_RULE}"
            )
        if persons:
            deleted["privacy.access_exports"] = delete_access_exports(con)
        if any(deleted.values()):  # logged, so the publication rewrites the file these rows'
            # bytes were written to
            con.executemany(
                "insert into privacy.erasure_log values (?, ?, ?, now())",
                [[run_id, table, rows] for table, rows in deleted.items()],
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return Erased(deleted, identifiers)


def _holding_erased(con: duckdb.DuckDBPyConnection) -> str:
    """The condition on an identifier row (`{alias}identifier_type`, `{alias}identifier_value`)
    that it is requested for erasure (`_erase`) or was erased before, with one `?` for the salt
    where it hashes; empty when neither can hold for any row, so that no identifier is read."""
    conditions = []
    if scalar(con, "select count(*) from _erase") > 0:
        conditions.append(
            "({alias}identifier_type, {alias}identifier_value) in (select * from _erase)"
        )
    if scalar(con, "select count(*) from privacy.erased_identifiers") > 0:
        digest = _DIGEST.format(kind="{alias}identifier_type", value="{alias}identifier_value")
        conditions.append(
            f"({{alias}}identifier_type, {digest}) "
            "in (select identifier_type, identifier_hash from privacy.erased_identifiers)"
        )
    return " or ".join(conditions)


def _newly_loaded_erased(
    con: duckdb.DuckDBPyConnection, raw: list[str], salt: str, default_region: str
) -> None:
    """Add to `_erase` the identifiers of raw rows loaded since the last pass that hash to an
    erased identifier (data delivered again after its person was erased). Rows loaded before
    were checked then, or are found by their plain identifiers; each row is hashed once."""
    anything_erased = scalar(con, "select count(*) from privacy.erased_identifiers") > 0
    for table in raw:
        (loaded_to,) = con.execute(
            "select loaded_to from privacy.erasure_scans where table_name = ?", [table]
        ).fetchone() or (None,)
        since = "where _loaded_at > ?" if loaded_to else ""
        params = [loaded_to] if loaded_to else []
        if anything_erased:
            candidates = " union ".join(
                f"select '{kind}' as identifier_type, "
                f"{_with_regions(expression, default_region)} as identifier_value "
                f"from {table} {since}"
                for kind, expression in RAW_IDENTIFIERS[table].items()
            )
            con.execute(
                f"""
                insert into _erase
                select identifier_type, identifier_value
                from ({candidates})
                where identifier_value is not null
                  and (identifier_type,
                       {_DIGEST.format(kind="identifier_type", value="identifier_value")})
                      in (select identifier_type, identifier_hash from privacy.erased_identifiers)
                """,
                params * len(RAW_IDENTIFIERS[table]) + [salt],
            )
        con.execute(
            f"""
            insert or replace into privacy.erasure_scans
            select ?, max(_loaded_at) from {table} having max(_loaded_at) is not null
            """,
            [table],
        )


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
