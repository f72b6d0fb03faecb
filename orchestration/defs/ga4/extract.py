"""Load GA4 / Firebase BigQuery export shards into `raw_ga4.events` (docs/sources.md).

Design: an incremental sync by export day, not a Dagster-partitioned asset. Every run lists
the export, fingerprints each day's files (name, size, modification time or generation) and
reloads exactly the days whose fingerprint changed: new days are picked up, a re-exported day
(late events arrive for up to 3 days) replaces that day, unchanged days are not read again.
A day's delete + insert + manifest row commit in one transaction, so a killed run leaves each
day either fully old or fully new. A daily `events_` shard supersedes the `events_intraday_`
shard of the same day. Days that disappear from the export (bucket lifecycle rules) are kept.

Every value lands. The table is GA4's export schema and grows with it (schema.py): a field
no file had before is added, as JSON from a JSON file, with its type from Parquet or Avro,
and reported in `columns_added`. A clean file is read whole by DuckDB (`read_json`,
`read_parquet`) or polars (Avro), with no Python loop over events. A JSON file is read
strictly, against the table's own schema: a value that does not cast, a field the table lacks,
an identifier written as a number or a missing `event_timestamp` stops that read, and the
file is then checked line by line (lines.py), so that each bad line is quarantined as it was
written, with the path of what is wrong, and everything else loads.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import cramjam
import duckdb
import fastavro
import fsspec
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.defs.ga4.lines import LineChecker
from orchestration.defs.ga4.schema import (
    GA4_SCHEMA,
    IDENTIFIERS,
    REQUIRED_COLUMNS,
    Kind,
    add_fields,
    convert_sql,
    drifted,
    ga4_kind,
    missing_fields,
    path_text,
    relation_kind,
)
from orchestration.errors import Deadline, SourceError, within_deadline
from orchestration.row_rules import apply_row_rules, rule_sql
from orchestration.warehouse import LoadStats, quote_ident, scalar

__all__ = ["GA4_SCHEMA", "TABLE", "json_columns", "list_export", "sync_export"]

SOURCE = "ga4"
TABLE = "raw_ga4.events"
LOAD_COLUMNS = {"_export_day": "DATE", "_source_file": "VARCHAR", "_loaded_at": "TIMESTAMPTZ"}
# Rows without these, or breaking a row rule (expectations/row_rules.yml), are quarantined by
# the loader itself, which still has the line or record as the export wrote it.
_MISSING = "event_timestamp is null or event_name is null"
_RULES = rule_sql(TABLE)
_BAD = f"({_MISSING}) or ({_RULES.broken})" if _RULES else _MISSING
_BAD_RULE = (
    f"case when {_MISSING} then 'ga4_event_parses' else {_RULES.first} end"
    if _RULES
    else "'ga4_event_parses'"
)
_BAD_REASON = (
    "case when event_timestamp is null then 'event_timestamp missing' "
    "when event_name is null then 'event_name missing' "
    + (f"else {_RULES.reason} " if _RULES else "")
    + "end"
)

_SHARD = re.compile(r"(?:^|/)events_(intraday_)?(\d{8})(?=[/_\-.]|$)")
_FORMATS = {
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
    ".avro": "avro",
}
_COMPRESSIONS = (".gz", ".zst")

MANIFEST_DDL = """
create schema if not exists raw_ga4;
create table if not exists raw_ga4._shards (
    export_day date primary key,
    shard varchar not null,
    fingerprint varchar not null,
    files integer not null,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_quarantined bigint not null,
    run_id varchar not null,
    loaded_at timestamptz not null
);
"""


@dataclass(frozen=True)
class ShardFile:
    url: str  # what fsspec opens
    relpath: str
    day: date
    intraday: bool
    fmt: str
    size: int
    version: str


@dataclass
class ExportDay:
    day: date
    files: list[ShardFile] = field(default_factory=list)

    @property
    def shard(self) -> str:
        prefix = "events_intraday_" if self.files[0].intraday else "events_"
        return f"{prefix}{self.day:%Y%m%d}"

    @property
    def fingerprint(self) -> str:
        parts = sorted(f"{f.relpath}|{f.size}|{f.version}" for f in self.files)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _file_format(name: str) -> str | None:
    lower = name.lower()
    for suffix in _COMPRESSIONS:
        lower = lower.removesuffix(suffix)
    return next((fmt for ext, fmt in _FORMATS.items() if lower.endswith(ext)), None)


def list_export(
    uri: str, timeout: float | None = None
) -> tuple[fsspec.AbstractFileSystem, list[ExportDay]]:
    """Find the export's shards; a day's daily files win over its intraday files. Connecting
    and listing share one deadline (CDP_SOURCE_TIMEOUT_SECONDS): fsspec's backends take no
    overall time limit, and a bucket that never answers must not hold the run."""
    deadline = Deadline(timeout)
    too_slow = deadline.exceeded(SOURCE, uri, "check that the export's storage answers")
    try:
        fs, root = within_deadline(lambda: fsspec.core.url_to_fs(uri), deadline, too_slow)
    except (ValueError, ImportError) as exc:
        raise SourceError(
            SOURCE,
            uri,
            f"cannot open this export location ({exc})",
            "set CDP_GA4_EXPORT_URI to a folder or a file://, gs:// or s3:// URL "
            "(gs:// needs `pip install cdp[gcs]`)",
        ) from exc
    if not within_deadline(lambda: fs.exists(root), deadline, too_slow):
        raise SourceError(
            SOURCE,
            uri,
            "the export location does not exist",
            "point CDP_GA4_EXPORT_URI at the folder holding events_YYYYMMDD shards",
        )
    root = root.rstrip("/")
    by_day: dict[tuple[date, bool], list[ShardFile]] = {}
    found = within_deadline(lambda: fs.find(root, detail=True), deadline, too_slow)
    for path, info in sorted(found.items()):
        relpath = path[len(root) :].lstrip("/")
        match, fmt = _SHARD.search(relpath), _file_format(relpath)
        if not match or not fmt or info.get("type") == "directory":
            continue
        try:
            day = datetime.strptime(match.group(2), "%Y%m%d").date()
        except ValueError:
            continue
        version = str(
            info.get("generation")
            or info.get("mtime")
            or info.get("ETag")
            or info.get("updated")
            or ""
        )
        url = fs.unstrip_protocol(path)
        by_day.setdefault((day, bool(match.group(1))), []).append(
            ShardFile(
                url, relpath, day, bool(match.group(1)), fmt, int(info.get("size") or 0), version
            )
        )
    days = {}
    # Intraday shards first, daily ones after: a day's daily shard replaces its intraday one.
    for (day, _intraday), files in sorted(by_day.items(), key=lambda kv: not kv[0][1]):
        days[day] = ExportDay(day, files)
    return fs, [days[d] for d in sorted(days)]


@contextlib.contextmanager
def _local(fs: fsspec.AbstractFileSystem, shard: ShardFile) -> Iterator[str]:
    """DuckDB reads local files itself; remote objects are downloaded to a temp file first."""
    if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        yield fs._strip_protocol(shard.url)
        return
    with tempfile.TemporaryDirectory(prefix="cdp-ga4-") as tmp:
        target = str(Path(tmp) / Path(shard.relpath).name)
        deadline = Deadline()  # a download that stalls must not hold the night
        within_deadline(
            lambda: fs.get(shard.url, target),
            deadline,
            deadline.exceeded(SOURCE, shard.url, "check the export's storage and the network"),
        )
        yield target


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def json_columns(kind: Kind | None = None) -> str:
    """The table's columns (GA4_SCHEMA unless a table's type tree is given) as `read_json`'s
    `columns`."""
    columns = kind.fields if kind else [(n, Kind.parse(t)) for n, t in GA4_SCHEMA.items()]
    return "{" + ", ".join(f"{_sql_str(n)}: {_sql_str(k.sql)}" for n, k in columns) + "}"


def table_kind(con: duckdb.DuckDBPyConnection) -> Kind:
    """`raw_ga4.events` as it is now (it may have grown), without cdp's own columns."""
    exclude = ", ".join(LOAD_COLUMNS)
    return relation_kind(con.sql(f"select * exclude ({exclude}) from {TABLE} limit 0"))


def ensure_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create the tables; give a table created by an older cdp the fields GA4_SCHEMA has
    gained since. Returns the fields added."""
    con.execute(MANIFEST_DDL)
    columns = ", ".join(f"{quote_ident(c)} {t}" for c, t in {**GA4_SCHEMA, **LOAD_COLUMNS}.items())
    con.execute(f"create table if not exists {TABLE} ({columns})")
    missing = missing_fields(table_kind(con), ga4_kind())
    add_fields(con, TABLE, missing)
    return [f"{path_text(parts)} {kind.sql}" for parts, kind in missing]


# Google adds a few fields a year; a file bringing more than this many at once is not a GA4
# export (say, a key per user property), and the table is not grown by it.
MAX_NEW_FIELDS = 200


def _few_enough(new: list[tuple[tuple, Kind]], shard: ShardFile) -> None:
    if len(new) > MAX_NEW_FIELDS:
        names = ", ".join(path_text(parts) for parts, _ in new[:5])
        raise SourceError(
            SOURCE,
            shard.url,
            f"{len(new)} fields no GA4 export had before ({names}, …); more than the "
            f"{MAX_NEW_FIELDS} a file may add to {TABLE}",
            "check that the file is a GA4 BigQuery export, or remove it from the export",
        )


class _Recheck(Exception):
    """A JSON file the strict read refused: it is loaded line by line instead. `aborted`: the
    refusal came from a statement of the day's transaction, which must then start again."""

    def __init__(self, url: str, reason: str, *, aborted: bool):
        super().__init__(f"{url}: {reason}")
        self.url, self.reason, self.aborted = url, reason, aborted


# --- JSON, the fast path: the whole file in one strict read ---------------------------------

_MARK = "__cdp_schema_line__"
_SAMPLES = {"VARCHAR": "a", "BIGINT": -1, "DOUBLE": 1.5, "BOOLEAN": True}
_ABSENT = object()


def _identifier_paths(kind: Kind) -> list[tuple]:
    """The identifiers the table holds as text."""
    found = []
    for parts in IDENTIFIERS:
        node = kind
        for part in parts:
            node = (
                node.element
                if part is None
                else (node.field_map.get(part) if node.is_struct else None)
            )
            if node is None:
                break
        if node is not None and node.sql == "VARCHAR":
            found.append(parts)
    return found


def _samples(kind: Kind, parts: tuple, mixed: set[tuple]):
    """Two values whose JSON types make DuckDB's detection give `kind`. A field in `mixed`
    (an identifier) gets a string and a number, so it is read as JSON and its JSON type can
    be checked; so does any type JSON has no literal for, to be cast afterwards."""
    if kind.is_struct:
        first, second = {}, {}
        for name, child in kind.fields:
            first[name], value = _samples(child, (*parts, name), mixed)
            if value is not _ABSENT:
                second[name] = value
        return first, second or _ABSENT
    if kind.is_list:
        first, second = _samples(kind.element, (*parts, None), mixed)
        return [first], _ABSENT if second is _ABSENT else [second]
    if parts in mixed or kind.sql not in _SAMPLES:
        return "a", 1 if parts in mixed else {"a": 1}
    return _SAMPLES[kind.sql], _ABSENT


def _schema_lines(kind: Kind, mixed: set[tuple]) -> bytes:
    first, second = _samples(kind, (), mixed)
    second = {} if second is _ABSENT else second
    return "".join(json.dumps({**line, _MARK: True}) + "\n" for line in (first, second)).encode()


def _compression(path: str) -> str:
    lower = path.lower()
    return "gzip" if lower.endswith(".gz") else "zstd" if lower.endswith(".zst") else "none"


@contextlib.contextmanager
def _with_schema_lines(path: str, header: bytes) -> Iterator[str]:
    """A copy of the file led by the two schema lines (compressed as the file is: gzip and
    zstd read concatenated members as one stream). DuckDB detects the columns from them and
    then refuses any key it has not seen, anywhere in the file, which it never does for
    columns it is given."""
    compression = _compression(path)
    if compression == "gzip":
        header = gzip.compress(header, mtime=0)
    elif compression == "zstd":
        header = bytes(cramjam.zstd.compress(header))
    with tempfile.TemporaryDirectory(prefix="cdp-ga4-") as tmp:
        copy = os.path.join(tmp, "events.json")
        with open(path, "rb") as src, open(copy, "wb") as dst:
            dst.write(header)
            dst.flush()
            _copy_rest(src, dst)
        yield copy


def _copy_rest(src, dst) -> None:
    """The file's bytes after what `dst` holds, copied by the kernel where it can."""
    size, offset = os.fstat(src.fileno()).st_size, 0
    with contextlib.suppress(OSError, AttributeError):
        while offset < size:
            copied = os.copy_file_range(src.fileno(), dst.fileno(), size - offset, offset)
            if not copied:
                break
            offset += copied
    if offset < size:
        src.seek(offset)
        dst.seek(0, os.SEEK_END)
        shutil.copyfileobj(src, dst, 16 << 20)


def _is_text_sql(expr: str, parts: tuple) -> str:
    """SQL: the JSON value at `parts` under `expr` is a string (or absent)."""
    head, rest = parts[0], parts[1:]
    if head is None:
        each = _is_text_sql("v", rest)
        return f"coalesce(list_bool_and(list_transform({expr}, lambda v: {each})), true)"
    inner = f"{expr}.{quote_ident(head)}" if expr else quote_ident(head)
    if not rest:
        return f"({inner} is null or left({inner}::varchar, 1) = '\"')"
    return _is_text_sql(inner, rest)


@functools.cache
def _duckdb_refuses_unknown_keys() -> bool:
    """Whether this DuckDB refuses a key its schema lines did not show (the fast path relies on
    it; without it every JSON file is checked line by line, slower but losing nothing)."""
    with tempfile.TemporaryDirectory(prefix="cdp-ga4-") as tmp, duckdb.connect() as con:
        path = os.path.join(tmp, "probe.json")
        Path(path).write_text('{"a": "x"}\n{"a": "y", "b": 1}\n')
        try:
            con.sql(
                f"select * from read_json('{path}', format='newline_delimited', "
                "records='true', sample_size=1, ignore_errors=false)"
            ).fetchall()
        except duckdb.InvalidInputException:
            return True
    return False


def _insert_json(con, path: str, shard: ShardFile, *, probe: bool) -> int:
    """Insert the whole file in one statement. Anything short of a clean file (see _Recheck)
    raises before a row is kept."""
    if not _duckdb_refuses_unknown_keys():
        raise _Recheck(shard.url, "this DuckDB reads unknown keys silently", aborted=False)
    table = table_kind(con)
    identifiers = _identifier_paths(table)
    with _with_schema_lines(path, _schema_lines(table, set(identifiers))) as copy:
        reader = (
            f"read_json({_sql_str(copy)}, format='newline_delimited', records='true', "
            f"sample_size=2, compression='{_compression(path)}', ignore_errors=false)"
        )
        try:
            detected = relation_kind(con.sql(f"select * from {reader}"))
        except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
            raise _Recheck(shard.url, _first_line(exc), aborted=False) from exc
        columns = ", ".join(
            convert_sql(quote_ident(name), detected.field_map[name], kind)
            + f" as {quote_ident(name)}"
            for name, kind in table.fields
        )
        clean = " and ".join(
            ["event_timestamp is not null", "event_name is not null"]
            + [_is_text_sql("", parts) for parts in identifiers]
        )
        select = (
            f"select {columns}, ?::date as _export_day, case when {clean} then ? else "
            "error('a missing event_timestamp or event_name, or an identifier written as a "
            f"number') end as _source_file, now() as _loaded_at from {reader} "
            f"where {_MARK} is null"
        )
        params = [shard.day, shard.url]
        if probe:  # on a connection of its own: a refusal leaves the day's transaction intact
            cursor = con.cursor()
            try:
                cursor.execute(f"select count(columns(*)) from ({select})", params).fetchall()
            except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
                raise _Recheck(shard.url, _first_line(exc), aborted=False) from exc
            finally:
                cursor.close()
        try:
            return scalar(con, f"insert into {TABLE} by name {select}", params)
        except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
            raise _Recheck(shard.url, _first_line(exc), aborted=True) from exc


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# --- JSON, line by line ----------------------------------------------------------------------


def _lines(path: str) -> Iterator[tuple[int, bytes]]:
    """The file's lines as written (without the newline), numbered from 1."""
    compression = _compression(path)
    if compression == "zstd":
        opened = io.BytesIO(bytes(cramjam.zstd.decompress(Path(path).read_bytes())))
    else:
        opened = (gzip.open if compression == "gzip" else open)(path, "rb")
    with opened as fh:
        for number, raw in enumerate(fh, 1):
            yield number, raw[:-1] if raw.endswith(b"\n") else raw


@dataclass
class _Rejected:
    line_no: int
    rule: str
    reason: str
    text: str


_LINE_KEY = "__cdp_line__"


def _numbered(text: str, line_no: int) -> str:
    """The JSON object with its line number as one more key, to find the line again."""
    head = text.rstrip()[:-1].rstrip()
    return f'{head}{"" if head.endswith("{") else ","}"{_LINE_KEY}":{line_no}}}'


def _texts(path: str, numbers: set[int]) -> dict[int, str]:
    """Lines of the file by number, as written."""
    found = {}
    if not numbers:
        return found
    for line_no, raw in _lines(path):
        if line_no in numbers:
            found[line_no] = raw.decode("utf-8", "backslashreplace")
            if len(found) == len(numbers):
                break
    return found


def _load_json_lines(con, path: str, shard: ShardFile, run_id: str, added: list[str], log):
    """Check every line (lines.py), add the fields no file had, load the good lines and
    quarantine the others as they were written."""
    checker = LineChecker(table_kind(con), reserved=set(LOAD_COLUMNS))
    rejected: list[_Rejected] = []
    good_lines: list[int] = []
    read = rewritten = 0
    with tempfile.TemporaryDirectory(prefix="cdp-ga4-") as tmp:
        good = os.path.join(tmp, "events.json")
        with open(good, "w", encoding="utf-8") as out:
            for line_no, raw in _lines(path):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    text = raw.decode("utf-8", "backslashreplace")
                    read += 1
                    rejected.append(_Rejected(line_no, "valid_json", "not UTF-8 text", text))
                    continue
                if not text.strip():
                    continue
                read += 1
                outcome = checker.check(text, first_line=line_no == 1)
                if outcome.rule:
                    rejected.append(_Rejected(line_no, outcome.rule, outcome.reason, text))
                    continue
                out.write(_numbered(outcome.line or text, line_no) + "\n")
                good_lines.append(line_no)
                rewritten += outcome.numbers_as_text
        new = [(parts, Kind("JSON")) for parts in checker.new_fields]
        if new:
            _few_enough(new, shard)
            add_fields(con, TABLE, new)
            added += [f"{path_text(parts)} JSON" for parts, _ in new]
        columns = json_columns(table_kind(con))[:-1] + f", '{_LINE_KEY}': 'BIGINT'}}"
        reader = (
            f"read_json({_sql_str(good)}, format='newline_delimited', columns={columns}, "
            "ignore_errors=false)"
        )
        loaded = 0
        if _verified(con, reader, good, good_lines, path, rejected):
            checked = f"(select *, '{shard.day}'::date as _export_day from {reader})"
            keep = "true"
            if _RULES:
                broke = con.execute(
                    f"select {_LINE_KEY}, {_RULES.first}, {_RULES.reason} from {checked} "
                    f"where {_RULES.broken}"
                ).fetchall()
                texts = _texts(path, {line_no for line_no, _, _ in broke})
                rejected += [_Rejected(n, rule, why, texts[n]) for n, rule, why in broke]
                keep = f"not ({_RULES.broken})"
            loaded = scalar(
                con,
                f"insert into {TABLE} by name select * exclude ({_LINE_KEY}), ? as _source_file, "
                f"now() as _loaded_at from {checked} where {keep}",
                [shard.url],
            )
    if log and rewritten:
        log.warning(
            f"{shard.url}: {rewritten} string value(s) written as JSON numbers were loaded "
            "as the text of their digits"
        )
    for item in rejected:  # a row rule's reason reads as for every table (row_rules.py)
        if item.rule in ("valid_json", "ga4_event_parses"):
            item.reason = f"{item.reason} at line {item.line_no} of {shard.url}"
    return LoadStats(read, loaded, _quarantine_lines(con, rejected, run_id))


_LINE = re.compile(r"\bin line (\d+)\b")


def _verified(con, reader: str, good: str, good_lines: list[int], path: str, rejected) -> int:
    """Read the checked lines as the load will, on a connection of its own; a line DuckDB
    still refuses (say, a key written twice) moves to `rejected` with DuckDB's reason.
    Returns the number of lines left."""
    cursor = con.cursor()
    try:
        for _ in range(100):
            if not good_lines:
                return 0
            try:
                cursor.execute(f"select count(columns(*)) from {reader}").fetchall()
                return len(good_lines)
            except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
                found = _LINE.search(str(exc))
                if not found or not 1 <= int(found.group(1)) <= len(good_lines):
                    raise
                index = int(found.group(1)) - 1
                with open(good, encoding="utf-8") as fh:
                    kept = fh.readlines()
                del kept[index]
                line_no = good_lines.pop(index)
                text = _texts(path, {line_no})[line_no]
                why = "DuckDB refused it: " + _first_line(exc)[found.end() :].lstrip(": ")
                rejected.append(_Rejected(line_no, "ga4_event_parses", why, text))
                with open(good, "w", encoding="utf-8") as fh:
                    fh.writelines(kept)
        raise RuntimeError("more than 100 lines refused after the line-by-line check")
    finally:
        cursor.close()


def _quarantine_lines(con, rejected: list[_Rejected], run_id: str) -> int:
    if not rejected:
        return 0
    rows = pa.table(
        {
            "rule": [r.rule for r in rejected],
            "reason": [r.reason for r in rejected],
            "record": [r.text for r in rejected],
        }
    )
    con.register("_ga4_rejected", rows)
    try:
        return scalar(
            con,
            "insert into quarantine.rejected_rows select ?, ?, rule, reason, ?, now(), record "
            "from _ga4_rejected",
            [SOURCE, TABLE, run_id],
        )
    finally:
        con.unregister("_ga4_rejected")


# --- Parquet and Avro --------------------------------------------------------------------------


def _load_columnar(con, path: str, shard: ShardFile, run_id: str, added: list[str]) -> LoadStats:
    """A Parquet or Avro file carries its schema: new fields are added to the table with
    their types, a known field of another type is schema drift, and the rows are cast to the
    table's types in one statement. Rows without `event_timestamp` or `event_name` are
    quarantined as read, every field of the record included."""
    if shard.fmt == "parquet":
        source = f"read_parquet({_sql_str(path)})"
    else:
        table, text_as_json = _read_avro(path)
        con.register("_ga4_avro", table)
        source = "_ga4_avro"
        if text_as_json:
            recast = ", ".join(f"{quote_ident(c)}::JSON as {quote_ident(c)}" for c in text_as_json)
            source = f"(select * replace ({recast}) from _ga4_avro)"
    try:
        return _load_relation(con, source, shard, run_id, added)
    finally:
        if shard.fmt == "avro":
            con.unregister("_ga4_avro")


def _load_relation(con, source: str, shard: ShardFile, run_id: str, added: list[str]):
    kind = relation_kind(con.sql(f"select * from {source}"))
    missing = [c for c in REQUIRED_COLUMNS if c not in kind.field_map]
    if missing:
        raise SourceError(
            SOURCE,
            shard.url,
            f"schema drift, required column(s) missing: {', '.join(missing)}",
            "re-export the day with GA4's full schema",
        )
    reserved = [c for c in LOAD_COLUMNS if c in kind.field_map]
    table = table_kind(con)
    drift = drifted(table, kind)
    if drift or reserved:
        found = [
            f"{path_text(p)} is {src} in this file but {dst} in {TABLE}" for p, src, dst in drift
        ]
        found += [f"{c} is a column cdp adds to each event" for c in reserved]
        raise SourceError(
            SOURCE,
            shard.url,
            "schema drift: " + "; ".join(found[:5]),
            "re-export the day with GA4's schema (BigQuery writes INT64, FLOAT64, STRING and BOOL "
            "fields as such), or load the field under another name",
        )
    new = missing_fields(table, kind)
    if new:
        _few_enough(new, shard)
        add_fields(con, TABLE, new)
        added += [f"{path_text(parts)} {k.sql}" for parts, k in new]
        table = table_kind(con)

    def typed(base: str) -> str:
        return ", ".join(
            f"{convert_sql(base + quote_ident(n), k, table.field_map[n])} as {quote_ident(n)}"
            for n, k in kind.fields
        )

    day = f"'{shard.day}'::date as _export_day"
    rows, invalid = con.execute(
        f"select count(*), count(*) filter (where {_BAD}) "
        f"from (select {typed('')}, {day} from {source})"
    ).fetchall()[0]
    if not invalid:
        loaded = scalar(
            con,
            f"insert into {TABLE} by name select {typed('')}, {day}, ? as _source_file, "
            f"now() as _loaded_at from {source}",
            [shard.url],
        )
        return LoadStats(rows, loaded, 0)
    con.execute("set preserve_insertion_order = true")  # row_number() is the row in the file
    try:
        con.execute(
            "create or replace temp table _ga4_rows as select row_number() over () as _cdp_row, "
            f"s as _cdp_record from {source} as s"
        )
    finally:
        con.execute("set preserve_insertion_order = false")
    rows_typed = f"(select _cdp_row, _cdp_record, {typed('_cdp_record.')}, {day} from _ga4_rows)"
    quarantined = scalar(
        con,
        f"""insert into quarantine.rejected_rows
        select ?, ?, {_BAD_RULE},
               {_BAD_REASON} || case when {_MISSING} then ' at row ' || _cdp_row || ' of ' || ?
                                     else '' end,
               ?, now(), to_json(_cdp_record)::varchar
        from {rows_typed} where {_BAD}""",
        [SOURCE, TABLE, shard.url, run_id],
    )
    loaded = scalar(
        con,
        f"insert into {TABLE} by name select * exclude (_cdp_row, _cdp_record), "
        f"? as _source_file, now() as _loaded_at from {rows_typed} where not ({_BAD})",
        [shard.url],
    )
    con.execute("drop table _ga4_rows")
    return LoadStats(rows, loaded, quarantined)


def _read_avro(path: str) -> tuple[pa.Table, list[str]]:
    """The file's events as Arrow, and the columns held as JSON text (a field of several
    types). polars decodes Avro several times faster than fastavro but not every valid file (a
    map or a union of several types fails, sometimes with a panic), so fastavro reads what
    polars refuses, and its error is the one reported for a broken file."""
    import polars as pl

    data = _inline_named_types(path)
    text_as_json: list[str] = []
    try:
        table = pl.read_avro(data).to_arrow()
    except (Exception, pl.exceptions.PanicException):
        table, text_as_json = _read_with_fastavro(path)
    for index, name in enumerate(table.column_names):
        column = table.column(name)
        chunks = [_ga4_values(c) for c in column.chunks or [pa.array([], column.type)]]
        table = table.set_column(index, name, pa.chunked_array(chunks))
    return table, text_as_json


# An Avro object container file starts with these bytes, then this header (Avro specification).
_AVRO_MAGIC = b"Obj\x01"
_AVRO_HEADER = {
    "type": "record",
    "name": "org.apache.avro.file.Header",
    "fields": [
        {"name": "meta", "type": {"type": "map", "values": "bytes"}},
        {"name": "sync", "type": {"type": "fixed", "name": "Sync", "size": 16}},
    ],
}


def _inline_named_types(path: str) -> io.BytesIO:
    """The file with its schema's named types written out wherever they are used.

    polars does not resolve a reference to a type defined earlier in the schema, which BigQuery
    and other writers use when two fields share a record type. How the schema names its types
    does not change how the data blocks are encoded, so only the header is rewritten and the
    file stays on polars' fast path."""
    with open(path, "rb") as fh:
        if fh.read(len(_AVRO_MAGIC)) != _AVRO_MAGIC:
            raise ValueError("not an Avro file: it does not start with Avro's marker Obj\\x01")
        header = fastavro.schemaless_reader(fh, _AVRO_HEADER, None)
        schema = fastavro.parse_schema(json.loads(header["meta"]["avro.schema"]), expand=True)
        schema = {k: v for k, v in schema.items() if not k.startswith("__")}  # fastavro's own
        header["meta"]["avro.schema"] = json.dumps(schema).encode()
        out = io.BytesIO(_AVRO_MAGIC)
        out.seek(len(_AVRO_MAGIC))
        fastavro.schemaless_writer(out, _AVRO_HEADER, header)
        shutil.copyfileobj(fh, out)
    out.seek(0)
    return out


def _read_with_fastavro(path: str) -> tuple[pa.Table, list[str]]:
    """Reads any valid file, at a fraction of polars' speed (a Python object per value). A
    field whose values may be of several types (a union of a long and a string) is kept as
    each value's JSON text, and named in the list returned."""
    with open(path, "rb") as fh:
        reader = fastavro.reader(fh)
        schema = fastavro.parse_schema(json.loads(reader.metadata["avro.schema"]), expand=True)
        columns, text_as_json = [], []
        for f in schema["fields"]:
            try:
                columns.append((f["name"], _arrow_type(f["type"])))
            except _SeveralTypes:
                columns.append((f["name"], pa.string()))
                text_as_json.append(f["name"])
        columns = pa.schema(columns)
        batches = []
        while events := list(itertools.islice(reader, 50_000)):
            for event in events:
                for name in text_as_json:
                    if event.get(name) is not None:
                        event[name] = json.dumps(event[name], default=str)
            batches.append(pa.RecordBatch.from_pylist(events, schema=columns))
    return pa.Table.from_batches(batches, columns), text_as_json


class _SeveralTypes(ValueError):
    """A union of several Avro types: no single Arrow type holds its values."""


# Avro types whose values fastavro gives as plain Python values (enum symbols as text).
_AVRO_TYPES = {
    "null": pa.null(),
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "bytes": pa.binary(),
    "string": pa.string(),
    "enum": pa.string(),
    "fixed": pa.binary(),
}
# The Python values fastavro gives for logical types, as Arrow types.
_AVRO_LOGICAL = {
    "timestamp-millis": pa.timestamp("ms", "UTC"),
    "timestamp-micros": pa.timestamp("us", "UTC"),
    "local-timestamp-millis": pa.timestamp("ms"),
    "local-timestamp-micros": pa.timestamp("us"),
    "date": pa.date32(),
    "time-millis": pa.time32("ms"),
    "time-micros": pa.time64("us"),
    "uuid": pa.uuid(),
}


def _arrow_type(avro) -> pa.DataType:
    """The Arrow type of values fastavro decodes with this (expanded) Avro schema."""
    if isinstance(avro, list):
        types = [t for t in avro if t != "null"]
        if len(types) != 1:
            raise _SeveralTypes(f"a union of {json.dumps(types)}")
        return _arrow_type(types[0])
    if isinstance(avro, str):
        return _AVRO_TYPES[avro]
    logical, kind = avro.get("logicalType"), avro["type"]
    if logical == "decimal":
        precision, scale = avro["precision"], avro.get("scale", 0)
        return (pa.decimal128 if precision <= 38 else pa.decimal256)(precision, scale)
    if logical in _AVRO_LOGICAL:
        return _AVRO_LOGICAL[logical]
    if kind == "record":
        return pa.struct([(f["name"], _arrow_type(f["type"])) for f in avro["fields"]])
    if kind == "array":
        return pa.list_(_arrow_type(avro["items"]))
    if kind == "map":
        return pa.map_(pa.string(), _arrow_type(avro["values"]))
    return _arrow_type(kind)


def _temporal(kind: pa.DataType) -> bool:
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return True
    return any(_temporal(kind.field(i).type) for i in range(kind.num_fields))


def _ga4_values(array: pa.Array) -> pa.Array:
    """GA4 keeps times as INT64 microseconds since the epoch and days as YYYYMMDD text; an Avro
    writer may give the same fields its timestamp and date logical types instead."""
    kind = array.type
    if not _temporal(kind):
        return array
    if pa.types.is_timestamp(kind):
        return array.cast(pa.timestamp("us", kind.tz)).cast(pa.int64())
    if pa.types.is_date(kind):
        return pc.strftime(array, "%Y%m%d")
    if pa.types.is_struct(kind):
        children = [_ga4_values(child) for child in array.flatten()]
        return pa.StructArray.from_arrays(
            children, names=[f.name for f in kind], mask=array.is_null()
        )
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        array = pa.concat_arrays([array])  # from_arrays takes no sliced list with nulls
        return type(array).from_arrays(
            array.offsets, _ga4_values(array.values), mask=array.is_null()
        )
    return array


# --- Days and files ------------------------------------------------------------------------------


def load_day(
    con: duckdb.DuckDBPyConnection,
    fs: fsspec.AbstractFileSystem,
    day: ExportDay,
    run_id: str,
    *,
    added: list[str] | None = None,
    log=None,
) -> LoadStats:
    """Replace one export day in one transaction; returns its row accounting. A JSON file the
    strict read refused starts the day again with that file checked line by line, and the
    day's remaining JSON files tried first on a connection of their own."""
    by_line: set[str] = set()
    while True:
        day_added: list[str] = []
        con.execute("begin transaction")
        try:
            con.execute(f"delete from {TABLE} where _export_day = ?", [day.day])
            per_file = {}
            for shard in day.files:
                per_file[shard.url] = _load_file(
                    con,
                    fs,
                    shard,
                    run_id,
                    by_line=shard.url in by_line,
                    probe=bool(by_line),
                    added=day_added,
                    log=log,
                )
            # A JSON file read whole with rows breaking a row rule is read again line by
            # line, so each such row is quarantined as the line it was.
            for shard in _breaking_rules(con, day):
                con.execute(
                    f"delete from {TABLE} where _export_day = ? and _source_file = ?",
                    [day.day, shard.url],
                )
                per_file[shard.url] = _load_file(
                    con, fs, shard, run_id, by_line=True, probe=False, added=day_added, log=log
                )
            stats = sum(per_file.values(), LoadStats())
            moved = apply_row_rules(con, TABLE, SOURCE, run_id, where=f"_export_day = '{day.day}'")
            stats = LoadStats(
                stats.rows_read, stats.rows_loaded - moved, stats.rows_quarantined + moved
            )
            stats.check(f"GA4 shard {day.shard}")
            con.execute(
                "insert or replace into raw_ga4._shards values (?, ?, ?, ?, ?, ?, ?, ?, now())",
                [
                    day.day,
                    day.shard,
                    day.fingerprint,
                    len(day.files),
                    stats.rows_read,
                    stats.rows_loaded,
                    stats.rows_quarantined,
                    run_id,
                ],
            )
            con.execute("commit")
        except _Recheck as exc:
            con.execute("rollback")
            by_line.add(exc.url)
            if log:
                log.info(f"{exc.reason}: checking {exc.url} line by line")
            continue
        except BaseException:
            con.execute("rollback")
            raise
        if added is not None:
            added += [a for a in day_added if a not in added]
        return stats


def _breaking_rules(con, day: ExportDay) -> list[ShardFile]:
    if not _RULES:
        return []
    urls = {
        row[0]
        for row in con.execute(
            f"select distinct _source_file from {TABLE} where _export_day = ? and "
            f"({_RULES.broken})",
            [day.day],
        ).fetchall()
    }
    return [f for f in day.files if f.url in urls and f.fmt == "json"]


def _load_file(con, fs, shard: ShardFile, run_id: str, *, by_line, probe, added, log) -> LoadStats:
    """Append one file's events."""
    with _local(fs, shard) as path:
        try:
            if shard.fmt != "json":
                return _load_columnar(con, path, shard, run_id, added)
            if not by_line:
                try:
                    loaded = _insert_json(con, path, shard, probe=probe)
                    return LoadStats(loaded, loaded, 0)
                except _Recheck as exc:
                    if exc.aborted:
                        raise
                    if log:
                        log.info(f"{exc.reason}: checking {shard.url} line by line")
            return _load_json_lines(con, path, shard, run_id, added, log)
        except (_Recheck, SourceError, duckdb.OutOfMemoryException):
            raise  # OutOfMemory: the memory cap's fault, not the file's (warehouse.OutOfMemory)
        except duckdb.Error as exc:
            raise SourceError(
                SOURCE,
                shard.url,
                f"cannot read this {shard.fmt} file ({exc})",
                "re-export the day or remove the file; every file of a day must be a valid "
                "GA4 export in JSON, Parquet or Avro",
            ) from exc
        except Exception as exc:  # fastavro's and pyarrow's errors for Avro, gzip's for JSON
            raise SourceError(
                SOURCE,
                shard.url,
                f"cannot read this {shard.fmt} file ({exc})",
                "re-export the day or remove the file",
            ) from exc


def sync_export(
    con: duckdb.DuckDBPyConnection,
    uri: str,
    run_id: str,
    *,
    full_refresh: bool = False,
    force_days: set[date] = frozenset(),
    log=None,
) -> dict:
    """Load every new or changed export day; return a summary for asset metadata."""
    added = ensure_tables(con)
    fs, days = list_export(uri)
    if not days:
        raise SourceError(
            SOURCE,
            uri,
            "no events_YYYYMMDD shards found",
            "point CDP_GA4_EXPORT_URI at the folder of the BigQuery export "
            "(files in .json, .json.gz, .parquet or .avro)",
        )
    if full_refresh:
        con.execute(f"delete from {TABLE}")
        con.execute("delete from raw_ga4._shards")
    known = dict(con.execute("select export_day, fingerprint from raw_ga4._shards").fetchall())
    total, loaded_days, formats = LoadStats(), [], {}
    for day in days:
        if known.get(day.day) == day.fingerprint and day.day not in force_days:
            continue
        stats = load_day(con, fs, day, run_id, added=added, log=log)
        total += stats
        loaded_days.append(day)
        for shard in day.files:
            formats[shard.fmt] = formats.get(shard.fmt, 0) + 1
        if log:
            log.info(
                f"{day.shard}: {len(day.files)} file(s), {stats.rows_loaded} events loaded, "
                f"{stats.rows_quarantined} quarantined"
            )
    events, without_device = 0, 0
    if loaded_days:
        events, without_device = con.execute(
            f"select count(*), count(*) - count(user_pseudo_id) from {TABLE} "
            "where _export_day in (select unnest(?::date[]))",
            [[d.day for d in loaded_days]],
        ).fetchall()[0]
    return {
        "stats": total,
        "days_in_export": len(days),
        "days_loaded": [d.shard for d in loaded_days],
        "days_unchanged": len(days) - len(loaded_days),
        "files_by_format": formats,
        "newest_day": days[-1].shard,
        "columns_added": added,
        # consent mode: events GA4 exported without a device id (analytics storage denied)
        "events_without_user_pseudo_id": without_device,
        "user_pseudo_id_null_share": round(without_device / events, 4) if events else 0.0,
    }
