"""Right of access: a request of type `access` gets one JSON file with everything the
warehouse keeps on the stitched person, in `$CDP_DATA_DIR/privacy/exports/<request id>.json`.

The request id is a salted hash of the request row (time, email, phone), so a request is
exported once however often it is read again, and the file name tells nothing about the
person. `privacy.access_exports` remembers which person each file is about, so that an
erasure of that person deletes the file too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import duckdb

from orchestration.warehouse import scalar

DDL = """
create schema if not exists privacy;
create table if not exists privacy.access_exports (
    request_id varchar primary key,
    customer_key varchar,
    path varchar not null,
    exported_at timestamptz not null
);
"""

# What an export holds, per section: a query over the person's key (`$key`), emails, phones,
# devices and customer ids. Tables missing in this warehouse are left out.
SECTIONS: dict[str, str] = {
    "identifiers": "select identifier_type, identifier_value, first_seen_at, last_seen_at "
    "from marts.customer_identities where customer_key = $key order by all",
    "profile": "select * from marts.customer_profiles where customer_key = $key",
    "segments": "select * from marts.customer_segments where customer_key = $key",
    "predictions": "select * from marts.customer_predictions where customer_key = $key",
    "recommendations": "select * from marts.customer_recommendations "
    "where customer_key = $key order by rank",
    "orders": "select o.* exclude (_loaded_at), (select list(i order by i.line_no) from "
    "(select * exclude (_loaded_at) from staging.stg_shop__order_items) as i "
    "where i.order_id = o.order_id) as items "
    "from staging.stg_shop__orders as o "
    "join identity.int_identity__order_keys as k using (order_id) "
    "where k.customer_key = $key order by o.ordered_at",
    "email_events": "select campaign_id, variant, event_type, occurred_at, email "
    "from staging.stg_shop__email_events where list_contains($emails, email) "
    "order by occurred_at",
    "web_activity": "select event_name, count(*) as events, "
    "count(distinct (device_id, ga_session_id)) as sessions, min(event_at) as first_at, "
    "max(event_at) as last_at from staging.stg_ga4__events "
    "where list_contains($devices, device_id) or list_contains($customer_ids, user_id) "
    "group by all order by all",
    "survey_answers": "select * exclude (email_problem, phone_problem, _loaded_at) "
    "from staging.stg_sheets__survey_responses "
    "where list_contains($emails, email) or list_contains($phones, phone) order by submitted_at",
}


def exports_dir(data_dir: Path) -> Path:
    return data_dir / "privacy" / "exports"


def request_id(salt: str, requested_at, email: str | None, phone: str | None) -> str:
    text = f"{salt}:{requested_at}:{email or ''}:{phone or ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> list[dict]:
    wanted = {name: value for name, value in params.items() if f"${name}" in sql}
    return [
        json.loads(row[0])
        for row in con.execute(f"select to_json(t) from ({sql}) as t", wanted).fetchall()
    ]


def person_export(con: duckdb.DuckDBPyConnection, customer_key: str) -> dict:
    """Everything kept on one person, section by section."""
    identifiers: dict[str, list[str]] = {}
    for kind, value in con.execute(
        "select identifier_type, identifier_value from marts.customer_identities "
        "where customer_key = ?",
        [customer_key],
    ).fetchall():
        identifiers.setdefault(kind, []).append(value)
    params = {
        "key": customer_key,
        "emails": identifiers.get("email", []),
        "phones": identifiers.get("phone", []),
        "devices": identifiers.get("device", []),
        "customer_ids": identifiers.get("customer_id", []),
    }
    export = {}
    for section, sql in SECTIONS.items():
        try:
            export[section] = _rows(con, sql, params)
        except duckdb.CatalogException:
            continue  # a table this warehouse does not have (yet)
    for single in ("profile", "segments", "predictions"):
        if single in export:
            export[single] = export[single][0] if export[single] else None
    return export


def export_access_requests(con: duckdb.DuckDBPyConnection, data_dir: Path, salt: str) -> dict:
    """Write one export per access request not exported yet; returns counts for metadata."""
    con.execute(DDL)
    requests = con.execute(
        "select requested_at, email, phone from staging.stg_sheets__privacy_requests "
        "where request_type = 'access'"
    ).fetchall()
    done = {r[0] for r in con.execute("select request_id from privacy.access_exports").fetchall()}
    folder = exports_dir(data_dir)
    written = unmatched = 0
    for requested_at, email, phone in requests:
        rid = request_id(salt, requested_at, email, phone)
        if rid in done:
            continue
        key = scalar(
            con,
            "select any_value(customer_key) from marts.customer_identities where "
            "(identifier_type = 'email' and identifier_value = ?) or "
            "(identifier_type = 'phone' and identifier_value = ?)",
            [email, phone],
        )
        document = {
            "request": {
                "request_id": rid,
                "requested_at": str(requested_at) if requested_at else None,
                "email": email,
                "phone": phone,
            },
            "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "customer_key": key,
        }
        if key is None:
            unmatched += 1
            document["note"] = "no person with this email or phone is held in the warehouse"
        else:
            document.update(person_export(con, key))
        path = folder / f"{rid}.json"
        _write_private(path, json.dumps(document, indent=2, default=str))
        con.execute(
            "insert into privacy.access_exports values (?, ?, ?, now())", [rid, key, str(path)]
        )
        written += 1
    return {"access_requests": len(requests), "exports_written": written, "unmatched": unmatched}


def _write_private(path: Path, text: str) -> None:
    """Readable by the owner only, and complete or absent (written aside, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(partial, path)


def delete_access_exports(con: duckdb.DuckDBPyConnection) -> int:
    """Delete the exports of the persons in `_erased_keys` (files and records)."""
    con.execute(DDL)
    paths = con.execute(
        "select path from privacy.access_exports "
        "where customer_key in (select customer_key from _erased_keys)"
    ).fetchall()
    for (path,) in paths:
        Path(path).unlink(missing_ok=True)
    con.execute(
        "delete from privacy.access_exports "
        "where customer_key in (select customer_key from _erased_keys)"
    )
    return len(paths)
