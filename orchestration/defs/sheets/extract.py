"""Read the three Google Sheets tabs (CONTRACT §2.3) into `raw_sheets`, whole, as text.

The source is a local folder of `<tab>.csv` files or `gsheets://<spreadsheet_id>`, read with one
Sheets API v4 `values.batchGet` call (service account from GOOGLE_APPLICATION_CREDENTIALS,
base URL from CDP_SHEETS_API_URL). Values stay text exactly as displayed, so leading zeros and
odd dates survive for staging to interpret. Rows shorter than the header (the API omits
trailing empty cells) are padded with NULLs, and an empty cell is NULL too; a row longer than
the header is quarantined.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import duckdb
import pyarrow as pa
import requests

from orchestration.errors import SourceError, TransientSourceError, retry_transient
from orchestration.warehouse import LoadStats, quarantine

SOURCE = "sheets"
TABS: dict[str, list[str]] = {
    "survey_responses": [
        "submitted_at",
        "email",
        "phone",
        "age",
        "gender",
        "education",
        "profession",
        "income_band",
        "interests",
        "values",
        "lifestyle",
        "preferred_channel",
        "buys_for",
    ],
    "b2b_accounts": ["company_name", "email_domain", "industry", "company_size", "account_manager"],
    "privacy_requests": ["requested_at", "email", "phone", "request_type"],
}
SCOPES = ["https://www.googleapis.com/auth/spreadsheets.readonly"]


@dataclass
class Tab:
    name: str
    rows: list[list[str]]  # first row is the header, as the API returns them


def read_local(folder: Path, tabs: list[str]) -> list[Tab]:
    if not folder.is_dir():
        raise SourceError(
            SOURCE,
            str(folder),
            "folder not found",
            "set CDP_SHEETS_URI to a folder of <tab>.csv files or gsheets://<id>",
        )
    result = []
    for name in tabs:
        path = folder / f"{name}.csv"
        if not path.exists():
            raise SourceError(
                SOURCE,
                str(path),
                f"tab '{name}' missing",
                f"export the '{name}' tab as {name}.csv into {folder}",
            )
        with path.open(newline="", encoding="utf-8-sig") as fh:
            result.append(Tab(name, list(csv.reader(fh))))
    return result


def _authorized_session(credentials_path: str | None) -> requests.Session:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError
    from google.auth.transport.requests import AuthorizedSession
    from google.oauth2 import service_account

    try:
        if credentials_path:
            credentials = service_account.Credentials.from_service_account_file(
                credentials_path, scopes=SCOPES
            )
        else:
            credentials, _ = google.auth.default(scopes=SCOPES)
    except (DefaultCredentialsError, OSError, ValueError) as exc:
        raise SourceError(
            SOURCE,
            "credentials",
            f"no usable Google credentials ({exc})",
            "set GOOGLE_APPLICATION_CREDENTIALS to a service-account JSON key file",
        ) from exc
    return AuthorizedSession(credentials)


def read_gsheets(
    spreadsheet_id: str, tabs: list[str], api_url: str, credentials_path: str | None
) -> list[Tab]:
    """One `values:batchGet` for all tabs; 429/5xx and dropped connections are retried."""
    from google.auth.exceptions import RefreshError, TransportError

    session = _authorized_session(credentials_path)
    url = f"{api_url.rstrip('/')}/v4/spreadsheets/{quote(spreadsheet_id, safe='')}/values:batchGet"
    params = [("ranges", tab) for tab in tabs] + [
        ("majorDimension", "ROWS"),
        ("valueRenderOption", "FORMATTED_VALUE"),
    ]
    where = f"spreadsheet {spreadsheet_id}"

    @retry_transient()
    def call() -> dict:
        try:
            response = session.get(url, params=params, timeout=60)
        except (requests.ConnectionError, requests.Timeout, TransportError) as exc:
            raise TransientSourceError(f"{where}: {exc}") from exc
        except RefreshError as exc:
            raise SourceError(
                SOURCE,
                where,
                f"the service account could not get a token ({exc})",
                "check the key in GOOGLE_APPLICATION_CREDENTIALS",
            ) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientSourceError(f"{where}: HTTP {response.status_code}")
        if response.status_code != 200:
            raise _terminal(response, where, tabs)
        return response.json()

    payload = call()
    ranges = payload.get("valueRanges", [])
    return [
        Tab(name, value_range.get("values", []))
        for name, value_range in zip(tabs, ranges, strict=True)
    ]


def _terminal(response: requests.Response, where: str, tabs: list[str]) -> SourceError:
    try:
        message = response.json().get("error", {}).get("message", "")
    except ValueError:
        message = response.text[:200]
    status = response.status_code
    if status == 400 and "parse range" in message.lower():
        missing = next((t for t in tabs if t in message), ", ".join(tabs))
        return SourceError(
            SOURCE,
            f"{where}, tab '{missing}'",
            f"tab not found ({message})",
            f"add a tab named '{missing}' or fix its name",
        )
    fixes = {
        401: "the credentials were rejected: check GOOGLE_APPLICATION_CREDENTIALS",
        403: "share the spreadsheet with the service account's email (read access) and enable "
        "the Sheets API for its project",
        404: "check the spreadsheet id in CDP_SHEETS_URI (gsheets://<id>)",
    }
    return SourceError(
        SOURCE, where, f"HTTP {status}: {message}", fixes.get(status, "see the message above")
    )


def read_tabs(uri: str, tabs: list[str], api_url: str, credentials_path: str | None) -> list[Tab]:
    if uri.startswith("gsheets://"):
        spreadsheet_id = uri.removeprefix("gsheets://").strip("/")
        if not spreadsheet_id or "/" in spreadsheet_id:
            raise SourceError(
                SOURCE,
                uri,
                "malformed Sheets URI",
                "use gsheets://<spreadsheet_id> (the id from the sheet's URL)",
            )
        return read_gsheets(spreadsheet_id, tabs, api_url, credentials_path)
    if "://" in uri and not uri.startswith("file://"):
        raise SourceError(
            SOURCE,
            uri,
            "unsupported Sheets URI",
            "use a local folder of CSV files or gsheets://<spreadsheet_id>",
        )
    return read_local(Path(uri.removeprefix("file://")), tabs)


def load_tab(con: duckdb.DuckDBPyConnection, tab: Tab, run_id: str, where: str) -> LoadStats:
    """Replace `raw_sheets.<tab>` with the tab's rows (text), padded to the header."""
    if not tab.rows or not any(cell.strip() for cell in tab.rows[0]):
        raise SourceError(
            SOURCE,
            f"{where}, tab '{tab.name}'",
            "the tab has no header row",
            "the first row must hold the column names",
        )
    header = [cell.strip() or f"column_{i + 1}" for i, cell in enumerate(tab.rows[0])]
    missing = [c for c in TABS[tab.name] if c not in header]
    if missing:
        raise SourceError(
            SOURCE,
            f"{where}, tab '{tab.name}'",
            f"required column(s) {', '.join(missing)} missing from the header",
            "restore the column(s) (CONTRACT §2.3); extra columns are fine",
        )
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise SourceError(
            SOURCE,
            f"{where}, tab '{tab.name}'",
            f"column name(s) {', '.join(duplicated)} appear twice in the header",
            "give every column a unique name",
        )
    width = len(header)
    good, too_long = [], []
    for number, row in enumerate(tab.rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # an empty row carries no data (the API drops trailing ones anyway)
        if len(row) > width and any(cell.strip() for cell in row[width:]):
            too_long.append({"row_number": number, "cells": row})
            continue
        cells = [cell if cell != "" else None for cell in row[:width]]  # empty cell: no value
        good.append([*cells, *([None] * (width - len(cells)))] + [number])
    columns = list(zip(*good, strict=True)) if good else [[] for _ in range(width + 1)]
    names = [*header, "_row_number"]
    types = [pa.string()] * width + [pa.int32()]
    con.register(
        "_sheet_batch",
        pa.table([pa.array(c, t) for c, t in zip(columns, types, strict=True)], names=names),
    )
    if too_long:
        con.register("_sheet_rejected", pa.Table.from_pylist(too_long))
    target = f"raw_sheets.{tab.name}"
    con.execute("create schema if not exists raw_sheets")
    con.execute("begin transaction")
    try:
        quarantined = 0
        if too_long:
            quarantined = quarantine(
                con,
                source=SOURCE,
                table_name=target,
                rule="row_fits_header",
                run_id=run_id,
                reason_sql=f"'row ' || row_number || ' has ' || len(cells) || ' cells but the "
                f"header has {width} (' || ? || ')'",
                rows_sql="select * from _sheet_rejected",
                params=[f"{where}, tab '{tab.name}'"],
            )
        con.execute(
            f"create or replace table {target} as select *, now() as _loaded_at from _sheet_batch"
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return LoadStats(len(good) + len(too_long), len(good), quarantined).check(target)
