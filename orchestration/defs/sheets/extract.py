"""Read the four Google Sheets tabs (docs/sources.md) into `raw_sheets`, whole, as text.

The source is a local folder of `<tab>.csv` files or `gsheets://<spreadsheet_id>`, read with one
Sheets API v4 `values.batchGet` call (service account from GOOGLE_APPLICATION_CREDENTIALS,
base URL from CDP_SHEETS_API_URL). Values stay text exactly as displayed, so leading zeros and
odd dates survive for staging to interpret. Rows shorter than the header (the API omits
trailing empty cells) are padded with NULLs, and an empty cell is NULL too; a row longer than
the header is quarantined.
"""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import duckdb
import pyarrow as pa
import requests
import urllib3
from requests.exceptions import InvalidSchema, InvalidURL, MissingSchema

from orchestration.errors import Deadline, SourceError, TransientSourceError, retry_transient
from orchestration.warehouse import LoadStats, quarantine, scalar, table_row_count

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
    "fx_rates": ["rate_date", "currency", "rate"],
}
# A spreadsheet without these tabs reads as if they were empty: a shop selling only in the
# reporting currency needs no exchange rates (a missing rate still blocks the run).
OPTIONAL_TABS = {"fx_rates"}
# The digest of each tab as last loaded: a tab read again unchanged is not loaded again.
TABS_DDL = """
create schema if not exists raw_sheets;
create table if not exists raw_sheets._tabs (
    tab varchar primary key, content_sha256 varchar not null, loaded_at timestamptz not null
);
"""
SCOPES = ["https://www.googleapis.com/auth/spreadsheets.readonly"]
CONNECT_TIMEOUT_SECONDS = 10.0


@dataclass
class Tab:
    name: str
    rows: list[list[str]]  # first row is the header, as the API returns them

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.rows).encode()).hexdigest()

    @property
    def header(self) -> list[str]:
        return self.rows[0] if self.rows else []


class CsvTab(Tab):
    """A tab exported as a CSV file: its digest is the file's bytes', and the file is parsed
    only when the rows are asked for, so a night with the file unchanged never parses it
    (a survey tab of 200k rows: about a second, before the run and again in its step)."""

    def __init__(self, name: str, path: Path):
        self.name, self.path, self._rows = name, path, None

    @property
    def rows(self) -> list[list[str]]:
        if self._rows is None:
            with self.path.open(newline="", encoding="utf-8-sig") as fh:
                self._rows = list(csv.reader(fh))
        return self._rows

    @property
    def header(self) -> list[str]:
        if self._rows is not None:
            return super().header
        with self.path.open(newline="", encoding="utf-8-sig") as fh:
            return next(csv.reader(fh), [])

    @functools.cached_property
    def digest(self) -> str:
        with self.path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()


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
        if not path.exists() and name in OPTIONAL_TABS:
            result.append(Tab(name, [TABS[name]]))
            continue
        if not path.exists():
            raise SourceError(
                SOURCE,
                str(path),
                f"tab '{name}' missing",
                f"export the '{name}' tab as {name}.csv into {folder}",
            )
        result.append(CsvTab(name, path))
    return result


def _credentials(credentials_path: str | None):
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError
    from google.oauth2 import service_account

    try:
        if credentials_path:
            return service_account.Credentials.from_service_account_file(
                credentials_path, scopes=SCOPES
            )
        credentials, _ = google.auth.default(scopes=SCOPES)
        return credentials
    except (DefaultCredentialsError, OSError, ValueError) as exc:
        raise SourceError(
            SOURCE,
            "credentials",
            f"no usable Google credentials ({exc})",
            "set GOOGLE_APPLICATION_CREDENTIALS to a service-account JSON key file",
        ) from exc


@dataclass
class _Answer:
    status: int
    headers: Mapping[str, str]
    data: bytes


def _exchange(
    session: requests.Session,
    method: str,
    url: str,
    deadline: Deadline,
    *,
    where: str,
    setting: str,
    **kwargs,
) -> _Answer:
    """One HTTP request whose answer must be complete by the deadline. The timeout of
    `requests` bounds each read only, so a server sending a byte now and then would hold the
    run forever: the body is read as it arrives, the socket's timeout shrinking with the time
    left. Faults retrying cannot fix (malformed URL, unknown host, nothing listening) are
    terminal; dropped connections and timeouts short of the deadline are transient."""
    try:
        if deadline.remaining() <= 0:
            raise deadline.exceeded(SOURCE, where, f"check that {setting} answers")
        with session.request(
            method,
            url,
            stream=True,
            timeout=(min(CONNECT_TIMEOUT_SECONDS, deadline.remaining()), deadline.remaining()),
            **kwargs,
        ) as response:
            body = bytearray()
            while chunk := _read_some(response.raw, deadline.remaining()):
                body += chunk
            return _Answer(response.status_code, response.headers, bytes(body))
    except (InvalidURL, InvalidSchema, MissingSchema) as exc:
        raise SourceError(SOURCE, where, f"malformed URL ({exc})", f"correct {setting}") from exc
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        if deadline.remaining() <= 0:
            raise deadline.exceeded(SOURCE, where, f"check that {setting} answers") from exc
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        host = urlsplit(url).netloc
        if isinstance(reason, urllib3.exceptions.NameResolutionError):
            raise SourceError(
                SOURCE, where, f"unknown host {host}", f"check the host name in {setting}"
            ) from exc
        if isinstance(reason, urllib3.exceptions.NewConnectionError) and isinstance(
            reason.__cause__, ConnectionRefusedError
        ):
            raise SourceError(
                SOURCE,
                where,
                f"connection to {host} refused (nothing listens there)",
                f"check the host and port in {setting}",
            ) from exc
        if isinstance(exc, requests.exceptions.SSLError):
            raise SourceError(
                SOURCE, where, f"TLS failed ({exc})", f"check the URL in {setting}"
            ) from exc
        raise TransientSourceError(
            SOURCE, where, f"{type(exc).__name__}: {exc}", f"check that {setting} answers"
        ) from exc


def _read_some(raw, seconds: float) -> bytes:
    """What has arrived of the body, waiting at most `seconds` for it; b"" at its end."""
    if seconds <= 0:
        raise TimeoutError("the deadline passed while the answer was still arriving")
    sock = getattr(raw.connection, "sock", None)
    if sock is not None:
        sock.settimeout(seconds)
    return raw.read1(1 << 16, decode_content=True)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds, given as a number or as an HTTP date."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


class _TokenRequest:
    """google-auth's HTTP hook for the service account's token call, so that call keeps the
    same deadline and retry rules (and logs) as the Sheets call itself."""

    def __init__(self, session: requests.Session, deadline: Deadline):
        self.session, self.deadline = session, deadline

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        where = f"token endpoint {urlsplit(url).netloc}"
        setting = "the token_uri of the key in GOOGLE_APPLICATION_CREDENTIALS"
        answer = _exchange(
            self.session,
            method,
            url,
            self.deadline,
            where=where,
            setting=setting,
            data=body,
            headers=headers,
        )
        if answer.status == 429 or answer.status >= 500:
            raise TransientSourceError(
                SOURCE,
                where,
                f"HTTP {answer.status}",
                f"check {setting}",
                _retry_after(answer.headers),
            )
        return answer


def read_gsheets(
    spreadsheet_id: str,
    tabs: list[str],
    api_url: str,
    credentials_path: str | None,
    *,
    timeout: float | None = None,
    log=None,
) -> list[Tab]:
    """One `values:batchGet` for all tabs within one deadline, the token call included;
    429/5xx and dropped connections are retried, each retry logged."""
    from google.auth.exceptions import RefreshError

    credentials = _credentials(credentials_path)
    url = f"{api_url.rstrip('/')}/v4/spreadsheets/{quote(spreadsheet_id, safe='')}/values:batchGet"
    params = [("ranges", tab) for tab in tabs] + [
        ("majorDimension", "ROWS"),
        ("valueRenderOption", "FORMATTED_VALUE"),
    ]
    where = f"spreadsheet {spreadsheet_id}"
    deadline = Deadline(timeout)

    @retry_transient(deadline=deadline, log=log)
    def call(session: requests.Session) -> dict:
        headers: dict[str, str] = {}
        try:
            credentials.before_request(_TokenRequest(session, deadline), "GET", url, headers)
        except RefreshError as exc:
            if getattr(exc, "retryable", False):
                raise TransientSourceError(
                    SOURCE,
                    where,
                    f"no token yet ({exc})",
                    "check the key in GOOGLE_APPLICATION_CREDENTIALS",
                ) from exc
            raise SourceError(
                SOURCE,
                where,
                f"the service account could not get a token ({exc})",
                "check the key in GOOGLE_APPLICATION_CREDENTIALS",
            ) from exc
        answer = _exchange(
            session,
            "GET",
            url,
            deadline,
            where=where,
            setting="CDP_SHEETS_API_URL",
            params=params,
            headers=headers,
        )
        if answer.status == 429 or answer.status >= 500:
            raise TransientSourceError(
                SOURCE,
                where,
                f"HTTP {answer.status}",
                "check the Sheets API's status and the project's quota, then run again",
                _retry_after(answer.headers),
            )
        if answer.status != 200:
            raise _terminal(answer, where, tabs)
        return json.loads(answer.data)

    try:
        with requests.Session() as session:
            payload = call(session)
    except MissingTabError as exc:
        if exc.tab not in OPTIONAL_TABS:
            raise
        rest = [t for t in tabs if t != exc.tab]
        found = (
            read_gsheets(spreadsheet_id, rest, api_url, credentials_path, timeout=timeout, log=log)
            if rest
            else []
        )
        return [*found, Tab(exc.tab, [TABS[exc.tab]])]
    ranges = payload.get("valueRanges", [])
    return [
        Tab(name, value_range.get("values", []))
        for name, value_range in zip(tabs, ranges, strict=True)
    ]


class MissingTabError(SourceError):
    def __init__(self, tab: str, where: str, message: str):
        super().__init__(
            SOURCE,
            f"{where}, tab '{tab}'",
            f"tab not found ({message})",
            f"add a tab named '{tab}' or fix its name",
        )
        self.tab = tab


def _terminal(answer: _Answer, where: str, tabs: list[str]) -> SourceError:
    try:
        message = json.loads(answer.data).get("error", {}).get("message", "")
    except (ValueError, AttributeError):
        message = answer.data[:200].decode("utf-8", "replace")
    status = answer.status
    if status == 400 and "parse range" in message.lower():
        missing = next((t for t in tabs if t in message), ", ".join(tabs))
        return MissingTabError(missing, where, message)
    fixes = {
        401: "the credentials were rejected: check GOOGLE_APPLICATION_CREDENTIALS",
        403: "share the spreadsheet with the service account's email (read access) and enable "
        "the Sheets API for its project",
        404: "check the spreadsheet id in CDP_SHEETS_URI (gsheets://<id>)",
    }
    return SourceError(
        SOURCE, where, f"HTTP {status}: {message}", fixes.get(status, "see the message above")
    )


def read_tabs(
    uri: str,
    tabs: list[str],
    api_url: str,
    credentials_path: str | None,
    *,
    timeout: float | None = None,
    log=None,
) -> list[Tab]:
    if uri.startswith("gsheets://"):
        spreadsheet_id = uri.removeprefix("gsheets://").strip("/")
        if not spreadsheet_id or "/" in spreadsheet_id:
            raise SourceError(
                SOURCE,
                uri,
                "malformed Sheets URI",
                "use gsheets://<spreadsheet_id> (the id from the sheet's URL)",
            )
        return read_gsheets(
            spreadsheet_id, tabs, api_url, credentials_path, timeout=timeout, log=log
        )
    if "://" in uri and not uri.startswith("file://"):
        raise SourceError(
            SOURCE,
            uri,
            "unsupported Sheets URI",
            "use a local folder of CSV files or gsheets://<spreadsheet_id>",
        )
    return read_local(Path(uri.removeprefix("file://")), tabs)


def loaded_digest(con: duckdb.DuckDBPyConnection, tab: str) -> str | None:
    """The digest of the tab as it was last loaded (None: not loaded)."""
    if not scalar(
        con,
        "select count(*) from information_schema.tables "
        "where table_schema = 'raw_sheets' and table_name = '_tabs'",
    ):
        return None
    return scalar(
        con,
        "select content_sha256 from raw_sheets._tabs join information_schema.tables "
        "on table_schema = 'raw_sheets' and table_name = tab where tab = ?",
        [tab],
    )


def load_tab(con: duckdb.DuckDBPyConnection, tab: Tab, run_id: str, where: str) -> LoadStats:
    """Replace `raw_sheets.<tab>` with the tab's rows (text), padded to the header; a tab read
    again as it was last loaded is kept (its rows counted as read and unchanged)."""
    con.execute(TABS_DDL)
    digest = tab.digest
    if loaded_digest(con, tab.name) == digest:
        rows = table_row_count(con, f"raw_sheets.{tab.name}")
        return LoadStats(rows, 0, 0, rows_unchanged=rows)
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
            "restore the column(s) listed in docs/sources.md (Google Sheets); extra columns "
            "are fine",
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
        con.execute(
            "insert or replace into raw_sheets._tabs values (?, ?, now())", [tab.name, digest]
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return LoadStats(len(good) + len(too_long), len(good), quarantined).check(target)
