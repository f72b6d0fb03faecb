import csv
import logging
import re
import shutil
import socket
import time
import uuid

import pytest

from orchestration.defs.sheets.extract import TABS, load_tab, read_tabs
from orchestration.errors import SourceError, SourceUnavailableError
from orchestration.warehouse import connect

from .conftest import SEEDS
from .sheets_server import SheetsServer

SHEET_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789"


def api_tabs() -> dict[str, list[list[str]]]:
    """The tabs as the API returns them: trailing empty cells left out, leading zeros kept."""
    return {
        "survey_responses": [
            TABS["survey_responses"],
            ["2026-10-01 10:00:00", "Ann@Example.org ", "0612345678", "41", "F", "master"],
            [
                "2026-10-02 11:00:00",
                "bo@example.org",
                "",
                "",
                "m",
                "",
                "",
                "",
                "yoga; Running",
                "",
                "",
                "email",
                "gift",
            ],
        ],
        "b2b_accounts": [TABS["b2b_accounts"], ["Acme", "acme.com", "logistics"]],
        "privacy_requests": [TABS["privacy_requests"]],
        "fx_rates": [TABS["fx_rates"], ["2026-10-01", "eur", "1,0812"]],
    }


def test_gsheets_batchget_pads_short_rows_and_keeps_text(tmp_path):
    with SheetsServer(SHEET_ID, api_tabs()) as server, connect(tmp_path / "w.duckdb") as con:
        creds = server.service_account_file(tmp_path / "sa.json")
        server.responses.append(
            (
                429,
                {
                    "error": {
                        "code": 429,
                        "message": "Quota exceeded",
                        "status": "RESOURCE_EXHAUSTED",
                    }
                },
            )
        )
        tabs = read_tabs(f"gsheets://{SHEET_ID}", list(TABS), server.url, creds)
        assert len(server.requests) == 2  # the 429, then the retry that succeeded
        stats = {t.name: load_tab(con, t, "run-1", "sheet") for t in tabs}
        assert stats["survey_responses"].rows_loaded == 2
        assert stats["privacy_requests"].rows_loaded == 0
        row = con.execute(
            "select phone, age, education, profession, buys_for, _row_number "
            "from raw_sheets.survey_responses order by _row_number"
        ).fetchone()
        assert row == ("0612345678", "41", "master", None, None, 2)
        types = {
            r[1]
            for r in con.execute(
                "select column_name, data_type from information_schema.columns where "
                "table_schema = 'raw_sheets' and table_name = 'survey_responses' "
                "and column_name not like '\\_%' escape '\\'"
            ).fetchall()
        }
        assert types == {"VARCHAR"}
        assert con.execute("select count(*) from raw_sheets.privacy_requests").fetchone()[0] == 0


def test_gsheets_terminal_errors_are_clear(tmp_path):
    with SheetsServer(SHEET_ID, api_tabs()) as server:
        creds = server.service_account_file(tmp_path / "sa.json")
        server.responses.append(
            (
                403,
                {
                    "error": {
                        "code": 403,
                        "message": "The caller does not have permission",
                        "status": "PERMISSION_DENIED",
                    }
                },
            )
        )
        with pytest.raises(SourceError, match=r"\[sheets\].*HTTP 403.*share the spreadsheet"):
            read_tabs(f"gsheets://{SHEET_ID}", list(TABS), server.url, creds)
        assert len(server.requests) == 1  # not retried
        tabs = api_tabs()
        del tabs["b2b_accounts"]
        server.tabs = tabs
        with pytest.raises(SourceError, match=r"tab 'b2b_accounts'.*tab not found"):
            read_tabs(f"gsheets://{SHEET_ID}", list(TABS), server.url, creds)
        with pytest.raises(SourceError, match="HTTP 404.*spreadsheet id"):
            read_tabs("gsheets://wrong-id", list(TABS), server.url, creds)
    with pytest.raises(SourceError, match="malformed Sheets URI"):
        read_tabs("gsheets://", list(TABS), "http://127.0.0.1:9", None)
    with pytest.raises(SourceError, match="no usable Google credentials"):
        read_tabs(
            f"gsheets://{SHEET_ID}",
            list(TABS),
            "http://127.0.0.1:9",
            str(tmp_path / "missing.json"),
        )


def test_a_spreadsheet_without_the_fx_rates_tab_reads_it_as_empty(tmp_path):
    """A shop selling in the reporting currency alone needs no rates: the optional tab reads
    as empty (locally and through the API), while a missing required tab still fails."""
    with SheetsServer(SHEET_ID, api_tabs()) as server:
        creds = server.service_account_file(tmp_path / "sa.json")
        server.tabs = {k: v for k, v in api_tabs().items() if k != "fx_rates"}
        tabs = {
            t.name: t for t in read_tabs(f"gsheets://{SHEET_ID}", list(TABS), server.url, creds)
        }
        assert set(tabs) == set(TABS)
        assert tabs["fx_rates"].rows == [TABS["fx_rates"]]
        assert tabs["b2b_accounts"].rows[1][:2] == ["Acme", "acme.com"]
    folder = tmp_path / "sheets"
    folder.mkdir()
    for name in ("survey_responses", "b2b_accounts", "privacy_requests"):
        (folder / f"{name}.csv").write_text((SEEDS / "sheets" / f"{name}.csv").read_text())
    tabs = {t.name: t for t in read_tabs(str(folder), list(TABS), "", None)}
    assert tabs["fx_rates"].rows == [TABS["fx_rates"]]
    with connect(tmp_path / "w.duckdb") as con:
        load_tab(con, tabs["fx_rates"], "run-1", str(folder))
        assert con.execute("select count(*) from raw_sheets.fx_rates").fetchone() == (0,)
    (folder / "privacy_requests.csv").unlink()
    with pytest.raises(SourceError, match="tab 'privacy_requests' missing"):
        read_tabs(str(folder), list(TABS), "", None)


def test_local_csv_folder(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        for tab in read_tabs(str(SEEDS / "sheets"), list(TABS), "", None):
            stats = load_tab(con, tab, "run-1", "seeds")
            assert stats.rows_read == len(tab.rows) - 1 == stats.rows_loaded


def test_a_tab_read_again_unchanged_is_kept_and_a_changed_one_replaced(tmp_path):
    folder = tmp_path / "sheets"
    folder.mkdir()
    shutil.copy(SEEDS / "sheets" / "b2b_accounts.csv", folder)
    (tab,) = read_tabs(str(folder), ["b2b_accounts"], "", None)
    newest = "select count(*), max(_loaded_at) from raw_sheets.b2b_accounts"
    with connect(tmp_path / "w.duckdb") as con:
        load_tab(con, tab, "run-1", "seeds")
        first = con.execute(newest).fetchall()
        (again_tab,) = read_tabs(str(folder), ["b2b_accounts"], "", None)
        again = load_tab(con, again_tab, "run-2", "seeds")
        assert (again.rows_loaded, again.rows_unchanged) == (0, again.rows_read)
        assert again.rows_read == first[0][0]
        assert again_tab._rows is None  # the file unchanged: never parsed
        assert con.execute(newest).fetchall() == first
        rows = tab.rows
        rows[1][3] = "1000+"  # one cell changed
        with (folder / "b2b_accounts.csv").open("w", newline="") as fh:
            csv.writer(fh).writerows(rows)
        (changed_tab,) = read_tabs(str(folder), ["b2b_accounts"], "", None)
        changed = load_tab(con, changed_tab, "run-3", "seeds")
        assert changed.rows_loaded == changed.rows_read == len(rows) - 1
        assert con.execute(newest).fetchall() != first
        company_size = "select company_size from raw_sheets.b2b_accounts where _row_number = 2"
        assert con.execute(company_size).fetchall() == [("1000+",)]


def test_missing_column_and_overlong_rows(tmp_path):
    folder = tmp_path / "sheets"
    folder.mkdir()
    (folder / "b2b_accounts.csv").write_text(
        "company_name,email_domain,industry,company_size,account_manager\n"
        "Acme,acme.com,logistics,10-49,Dana\n"
        "Bolt,bolt.io,energy,10-49,Sam,stray note\n"
    )
    (folder / "privacy_requests.csv").write_text("requested_at,email,request_type\n")
    with connect(tmp_path / "w.duckdb") as con:
        (b2b,) = read_tabs(str(folder), ["b2b_accounts"], "", None)
        stats = load_tab(con, b2b, "run-1", str(folder))
        assert (stats.rows_read, stats.rows_loaded, stats.rows_quarantined) == (2, 1, 1)
        reason = con.execute("select reason from quarantine.rejected_rows").fetchone()[0]
        assert "row 3 has 6 cells but the header has 5" in reason
        (privacy,) = read_tabs(str(folder), ["privacy_requests"], "", None)
        with pytest.raises(SourceError, match=r"tab 'privacy_requests'.*phone missing"):
            load_tab(con, privacy, "run-1", str(folder))
    with pytest.raises(SourceError, match="tab 'survey_responses' missing"):
        read_tabs(str(folder), ["survey_responses"], "", None)


def error_body(status: int, message: str) -> dict:
    return {"error": {"code": status, "message": message, "status": "UNAVAILABLE"}}


def recording_logger() -> tuple[logging.Logger, list[str]]:
    """A logger of its own (the suite runs with pytest's log capture off) and its messages."""
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger(f"test-sheets-{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.propagate = False
    return logger, messages


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_retry_after_is_honoured_and_each_retry_logged(tmp_path):
    log, messages = recording_logger()
    with SheetsServer(SHEET_ID, api_tabs()) as server:
        creds = server.service_account_file(tmp_path / "sa.json")
        server.responses += [
            (429, error_body(429, "Quota exceeded"), {"Retry-After": "2"}),
            (503, error_body(503, "Backend unavailable"), {"Retry-After": "1"}),
        ]
        tabs = read_tabs(f"gsheets://{SHEET_ID}", list(TABS), server.url, creds, log=log)
        first, second, third = server.request_times
    assert [t.name for t in tabs] == list(TABS)
    assert second - first >= 2 and third - second >= 1
    assert len(messages) == 2
    assert "HTTP 429 (attempt 1 of 5); retrying in 2.0s" in messages[0]
    assert "(the server's Retry-After)" in messages[0]
    assert "HTTP 503 (attempt 2 of 5); retrying in 1.0s" in messages[1]


def test_a_retry_after_past_the_deadline_fails_at_once(tmp_path):
    """Retry-After is capped at a minute; a wait the deadline cannot hold ends the call now,
    and the step is not retried: the time it was given is spent."""
    with SheetsServer(SHEET_ID, api_tabs()) as server:
        creds = server.service_account_file(tmp_path / "sa.json")
        server.responses.append((429, error_body(429, "Quota"), {"Retry-After": "3600"}))
        started = time.monotonic()
        with pytest.raises(SourceError) as failure:
            read_tabs(f"gsheets://{SHEET_ID}", list(TABS), server.url, creds, timeout=5)
        assert time.monotonic() - started < 4
    assert not isinstance(failure.value, SourceUnavailableError)
    assert "waiting 60.0s more would pass the 5s deadline" in str(failure.value)


def test_retries_that_run_out_say_what_to_fix(tmp_path):
    log, messages = recording_logger()
    with SheetsServer(SHEET_ID, api_tabs()) as server:
        creds = server.service_account_file(tmp_path / "sa.json")
        server.responses += [(503, error_body(503, "down"), {"Retry-After": "0"})] * 5
        with pytest.raises(SourceUnavailableError) as failure:
            read_tabs(f"gsheets://{SHEET_ID}", list(TABS), server.url, creds, log=log)
        assert len(server.requests) == 5
    assert re.fullmatch(
        rf"\[sheets\] spreadsheet {SHEET_ID}: HTTP 503 \(failed 5 times\)\. "
        r"Fix: check the Sheets API's status .*",
        str(failure.value),
    )
    assert [m.split("(attempt ")[1][:6] for m in messages] == [
        "1 of 5",
        "2 of 5",
        "3 of 5",
        "4 of 5",
    ]


def test_a_trickling_answer_ends_at_the_deadline(tmp_path):
    """One byte every 50 ms: each read is quick, the whole answer would take a minute."""
    with SheetsServer(SHEET_ID, api_tabs()) as server:
        creds = server.service_account_file(tmp_path / "sa.json")
        server.trickle = 0.05
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"no complete answer within 3s.*Fix: check that"):
            read_tabs(f"gsheets://{SHEET_ID}", list(TABS), server.url, creds, timeout=3)
        assert time.monotonic() - started < 6
        assert len(server.requests) == 1  # the deadline is spent: no retry


@pytest.mark.parametrize(
    ("stall", "where"), [("values", f"spreadsheet {SHEET_ID}"), ("token", "token endpoint")]
)
def test_a_server_that_never_answers_ends_at_the_deadline(tmp_path, stall, where):
    with SheetsServer(SHEET_ID, api_tabs()) as server:
        creds = server.service_account_file(tmp_path / "sa.json")
        server.stall = stall
        started = time.monotonic()
        with pytest.raises(SourceError, match=rf"{where}.*no complete answer within 2s"):
            read_tabs(f"gsheets://{SHEET_ID}", list(TABS), server.url, creds, timeout=2)
        assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("api_url", "expected"),
    [
        ("http://127.0.0.1:{closed}", r"connection to .* refused.*Fix: check the host and port"),
        ("http://nohost.invalid", r"unknown host nohost.invalid.*Fix: check the host name in CDP"),
        ("http://127.0.0.1:54x2", r"malformed URL.*Fix: correct CDP_SHEETS_API_URL"),
        ("127.0.0.1:8080", r"malformed URL.*Fix: correct CDP_SHEETS_API_URL"),
    ],
)
def test_unreachable_or_malformed_api_url_fails_at_once(tmp_path, api_url, expected):
    with SheetsServer(SHEET_ID, api_tabs()) as server:
        creds = server.service_account_file(tmp_path / "sa.json")
        started = time.monotonic()
        with pytest.raises(SourceError, match=rf"^\[sheets\] spreadsheet {SHEET_ID}: {expected}"):
            read_tabs(
                f"gsheets://{SHEET_ID}", list(TABS), api_url.format(closed=closed_port()), creds
            )
        assert time.monotonic() - started < 15


def test_an_unreachable_token_endpoint_fails_at_once(tmp_path):
    with SheetsServer(SHEET_ID, api_tabs()) as server:
        key = tmp_path / "sa.json"
        server.service_account_file(key)
        key.write_text(key.read_text().replace(server.url, f"http://127.0.0.1:{closed_port()}"))
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"token endpoint .*refused.*Fix: .*token_uri"):
            read_tabs(f"gsheets://{SHEET_ID}", list(TABS), server.url, str(key))
        assert time.monotonic() - started < 15
        assert server.requests == []
