"""Load GA4 / Firebase BigQuery export shards into `raw_ga4.events` (docs/sources.md).

Design: an incremental sync by export day, not a Dagster-partitioned asset. Every run lists
the export, fingerprints each day's files (name, size, modification time or generation) and
reloads exactly the days whose fingerprint changed: new days are picked up, a re-exported day
(late events arrive for up to 3 days) replaces that day, unchanged days are not read again.
A day's delete + insert + manifest row commit in one transaction, so a killed run leaves each
day either fully old or fully new. A daily `events_` shard supersedes the `events_intraday_`
shard of the same day. Days that disappear from the export (bucket lifecycle rules) are kept.

All parsing is done by DuckDB (`read_json`, `read_parquet`) or polars (Avro), streaming whole
files: no Python loop over events. The one exception is an Avro file polars cannot read, which
fastavro decodes event by event (see `_read_avro`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import fastavro
import fsspec
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.errors import Deadline, SourceError, within_deadline
from orchestration.row_rules import apply_row_rules
from orchestration.warehouse import LoadStats, quarantine, quote_ident, scalar

SOURCE = "ga4"
TABLE = "raw_ga4.events"

_KV_VALUE = (
    "STRUCT(string_value VARCHAR, int_value BIGINT, float_value DOUBLE, double_value DOUBLE)"
)
_USER_VALUE = (
    "STRUCT(string_value VARCHAR, int_value BIGINT, float_value DOUBLE, double_value DOUBLE, "
    "set_timestamp_micros BIGINT)"
)

# GA4's BigQuery export schema in DuckDB types. Fields missing from a file load as NULL;
# fields not listed here are not loaded.
GA4_SCHEMA: dict[str, str] = {
    "event_date": "VARCHAR",
    "event_timestamp": "BIGINT",
    "event_name": "VARCHAR",
    "event_params": f"STRUCT(key VARCHAR, value {_KV_VALUE})[]",
    "event_previous_timestamp": "BIGINT",
    "event_value_in_usd": "DOUBLE",
    "event_bundle_sequence_id": "BIGINT",
    "event_server_timestamp_offset": "BIGINT",
    "user_id": "VARCHAR",
    "user_pseudo_id": "VARCHAR",
    "privacy_info": "STRUCT(analytics_storage VARCHAR, ads_storage VARCHAR, "
    "uses_transient_token VARCHAR)",
    "user_properties": f"STRUCT(key VARCHAR, value {_USER_VALUE})[]",
    "user_first_touch_timestamp": "BIGINT",
    "user_ltv": "STRUCT(revenue DOUBLE, currency VARCHAR)",
    "device": "STRUCT(category VARCHAR, mobile_brand_name VARCHAR, mobile_model_name VARCHAR, "
    "mobile_marketing_name VARCHAR, mobile_os_hardware_model VARCHAR, operating_system VARCHAR, "
    "operating_system_version VARCHAR, vendor_id VARCHAR, advertising_id VARCHAR, "
    "language VARCHAR, is_limited_ad_tracking VARCHAR, time_zone_offset_seconds BIGINT, "
    "browser VARCHAR, browser_version VARCHAR, "
    "web_info STRUCT(browser VARCHAR, browser_version VARCHAR, hostname VARCHAR))",
    "geo": "STRUCT(city VARCHAR, country VARCHAR, continent VARCHAR, region VARCHAR, "
    "sub_continent VARCHAR, metro VARCHAR)",
    "app_info": "STRUCT(id VARCHAR, version VARCHAR, install_store VARCHAR, "
    "firebase_app_id VARCHAR, install_source VARCHAR)",
    "traffic_source": "STRUCT(name VARCHAR, medium VARCHAR, source VARCHAR)",
    "stream_id": "VARCHAR",
    "platform": "VARCHAR",
    "event_dimensions": "STRUCT(hostname VARCHAR)",
    "ecommerce": "STRUCT(total_item_quantity BIGINT, purchase_revenue_in_usd DOUBLE, "
    "purchase_revenue DOUBLE, refund_value_in_usd DOUBLE, refund_value DOUBLE, "
    "shipping_value_in_usd DOUBLE, shipping_value DOUBLE, tax_value_in_usd DOUBLE, "
    "tax_value DOUBLE, unique_items BIGINT, transaction_id VARCHAR)",
    "items": "STRUCT(item_id VARCHAR, item_name VARCHAR, item_brand VARCHAR, "
    "item_variant VARCHAR, item_category VARCHAR, item_category2 VARCHAR, "
    "item_category3 VARCHAR, item_category4 VARCHAR, item_category5 VARCHAR, "
    "price_in_usd DOUBLE, price DOUBLE, quantity BIGINT, item_revenue_in_usd DOUBLE, "
    "item_revenue DOUBLE, item_refund_in_usd DOUBLE, item_refund DOUBLE, coupon VARCHAR, "
    "affiliation VARCHAR, location_id VARCHAR, item_list_id VARCHAR, item_list_name VARCHAR, "
    "item_list_index VARCHAR, promotion_id VARCHAR, promotion_name VARCHAR, "
    "creative_name VARCHAR, creative_slot VARCHAR)[]",
    "collected_traffic_source": "STRUCT(manual_campaign_id VARCHAR, "
    "manual_campaign_name VARCHAR, manual_source VARCHAR, manual_medium VARCHAR, "
    "manual_term VARCHAR, manual_content VARCHAR, gclid VARCHAR, dclid VARCHAR, srsltid VARCHAR)",
    "is_active_user": "BOOLEAN",
    "batch_event_index": "BIGINT",
    "batch_page_id": "BIGINT",
    "batch_ordering_id": "BIGINT",
}
# Top-level INT64 columns arrive as JSON strings: read them as text and cast in SQL, so a
# value that is not an integer quarantines its row instead of failing the whole file.
_TOP_LEVEL_INTS = [name for name, kind in GA4_SCHEMA.items() if kind == "BIGINT"]
REQUIRED_COLUMNS = ("event_date", "event_timestamp", "event_name", "user_pseudo_id")
_LOAD_COLUMNS = {"_export_day": "DATE", "_source_file": "VARCHAR", "_loaded_at": "TIMESTAMPTZ"}

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
        fs.get(shard.url, target)
        yield target


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def json_columns() -> str:
    """GA4_SCHEMA as `read_json`'s `columns`; the top-level INT64s stay text, as BigQuery
    writes them, and are cast once every line has been checked."""
    columns = {k: ("VARCHAR" if k in _TOP_LEVEL_INTS else v) for k, v in GA4_SCHEMA.items()}
    return "{" + ", ".join(f"{_sql_str(k)}: {_sql_str(v)}" for k, v in columns.items()) + "}"


def _read_avro(path: str) -> pa.Table:
    """The file's events as Arrow. polars decodes Avro several times faster than fastavro but
    not every valid file (a map or a union of several types fails, sometimes with a panic), so
    fastavro reads what polars refuses, and its error is the one reported for a broken file."""
    import polars as pl

    data = _inline_named_types(path)
    try:
        table = pl.read_avro(data).to_arrow()
    except (Exception, pl.exceptions.PanicException):
        table = _read_with_fastavro(path)
    for name in GA4_SCHEMA:
        if name in table.column_names:
            column = table.column(name)
            chunks = [_ga4_values(c) for c in column.chunks or [pa.array([], column.type)]]
            table = table.set_column(table.column_names.index(name), name, pa.chunked_array(chunks))
    return table


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


def _read_with_fastavro(path: str) -> pa.Table:
    """Reads any valid file, at a fraction of polars' speed (a Python object per value).
    Columns outside GA4_SCHEMA are not converted, so their types do not matter."""
    with open(path, "rb") as fh:
        reader = fastavro.reader(fh)
        schema = fastavro.parse_schema(json.loads(reader.metadata["avro.schema"]), expand=True)
        columns = pa.schema(
            [
                (f["name"], _arrow_type(f["type"]))
                for f in schema["fields"]
                if f["name"] in GA4_SCHEMA
            ]
        )
        batches = []
        while events := list(itertools.islice(reader, 50_000)):
            batches.append(pa.RecordBatch.from_pylist(events, schema=columns))
    return pa.Table.from_batches(batches, columns)


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
            raise ValueError(f"a union of {json.dumps(types)} cannot be one GA4 column")
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


def _relation(con: duckdb.DuckDBPyConnection, path: str, shard: ShardFile) -> str:
    """SQL for the file as GA4_SCHEMA columns; in JSON the top-level ints stay text."""
    if shard.fmt == "json":
        # ignore_errors: a malformed line comes back as an all-NULL row, found by _stage_file
        return (
            f"read_json({_sql_str(path)}, format='newline_delimited', columns={json_columns()}, "
            "ignore_errors=true)"
        )
    if shard.fmt == "parquet":
        source = f"read_parquet({_sql_str(path)})"
    else:
        con.register("_ga4_avro", _read_avro(path))
        source = "_ga4_avro"
    present = {row[0] for row in con.execute(f"describe select * from {source}").fetchall()}
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing:
        raise SourceError(
            SOURCE,
            shard.url,
            f"schema drift, required column(s) missing: {', '.join(missing)}",
            "re-export the day with GA4's full schema",
        )
    select = ", ".join(
        f"cast({quote_ident(c)} as {t}) as {quote_ident(c)}"
        if c in present
        else f"null::{t} as {quote_ident(c)}"
        for c, t in GA4_SCHEMA.items()
    )
    return f"(select {select} from {source})"


def _stage_file(con: duckdb.DuckDBPyConnection, path: str, shard: ShardFile, relation: str) -> int:
    """Slow path for a file with bad rows: stage it in temp table `_ga4_file`.

    Malformed JSON lines are moved out of the staged rows into `_ga4_lines` (line number and
    text) so they can be quarantined as they were written. Returns their number.
    """
    con.execute(f"create or replace temp table _ga4_file as select * from {relation}")
    if shard.fmt != "json":
        return 0
    all_null = " and ".join(f"{c} is null" for c in GA4_SCHEMA)
    broken = scalar(con, f"select count(*) from _ga4_file where {all_null}")
    if broken:
        con.execute(f"delete from _ga4_file where {all_null}")
        con.execute("set preserve_insertion_order = true")  # row_number() is the line number
        con.execute(
            "create or replace temp table _ga4_lines as select "
            f"row_number() over () as line_no, line from read_csv({_sql_str(path)}, "
            "columns={'line': 'VARCHAR'}, "
            f"delim=chr(1), quote='', escape='', header=false, comment='', auto_detect=false)"
        )
        con.execute("set preserve_insertion_order = false")
    return broken


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(MANIFEST_DDL)
    columns = ", ".join(f"{quote_ident(c)} {t}" for c, t in {**GA4_SCHEMA, **_LOAD_COLUMNS}.items())
    con.execute(f"create table if not exists {TABLE} ({columns})")


def load_day(
    con: duckdb.DuckDBPyConnection, fs: fsspec.AbstractFileSystem, day: ExportDay, run_id: str
) -> LoadStats:
    """Replace one export day in one transaction; returns its row accounting."""
    stats = LoadStats()
    con.execute("begin transaction")
    try:
        con.execute(f"delete from {TABLE} where _export_day = ?", [day.day])
        for shard in day.files:
            stats += _load_file(con, fs, shard, run_id)
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
    except BaseException:
        con.execute("rollback")
        raise
    return stats


_INVALID = " or ".join(
    ["event_timestamp is null", "event_name is null"]
    + [f"({c} is not null and try_cast({c} as BIGINT) is null)" for c in _TOP_LEVEL_INTS]
)
_CASTS = ", ".join(
    f"cast({quote_ident(c)} as {t})" if c in _TOP_LEVEL_INTS else quote_ident(c)
    for c, t in GA4_SCHEMA.items()
)


def _load_file(con, fs, shard: ShardFile, run_id: str) -> LoadStats:
    """Append one file's events. A cheap first pass (a few columns) looks for bad rows; a
    clean file (the usual case) is then inserted straight from the file, a file with bad rows
    goes through the slow path that quarantines them."""
    with _local(fs, shard) as path:
        try:
            relation = _relation(con, path, shard)
            rows, invalid = con.execute(
                f"select count(*), count(*) filter (where {_INVALID}) from {relation}"
            ).fetchall()[0]
            if not invalid:
                loaded = scalar(
                    con,
                    f"insert into {TABLE} select {_CASTS}, ?, ?, now() from {relation}",
                    [shard.day, shard.url],
                )
                return LoadStats(rows, loaded, 0)
            broken = _stage_file(con, path, shard, relation)
        except duckdb.OutOfMemoryException:
            raise  # the memory cap's fault, not the file's (warehouse.OutOfMemory)
        except duckdb.Error as exc:
            raise SourceError(
                SOURCE,
                shard.url,
                f"cannot read this {shard.fmt} file ({exc})",
                "re-export the day or remove the file; every file of a day must be a valid "
                "GA4 export in JSON, Parquet or Avro",
            ) from exc
        except Exception as exc:  # fastavro's and pyarrow's errors for Avro
            raise SourceError(
                SOURCE,
                shard.url,
                f"cannot read this {shard.fmt} file ({exc})",
                "re-export the day or remove the file",
            ) from exc
        quarantined = 0
        if broken:
            keys = "[" + ", ".join(_sql_str(c) for c in GA4_SCHEMA) + "]"
            quarantined += quarantine(
                con,
                source=SOURCE,
                table_name=TABLE,
                rule="valid_json",
                run_id=run_id,
                reason_sql="case when json_valid(line) then 'no GA4 event field' "
                "else 'malformed JSON' end || ' at line ' || line_no || ' of ' || ?",
                rows_sql="select line_no, line from _ga4_lines where trim(line) <> '' and "
                f"(not json_valid(line) or not list_has_any(json_keys(line), {keys}))",
                params=[shard.url],
            )
    staged = scalar(con, "select count(*) from _ga4_file")
    reasons = " || ".join(
        f"case when {c} is not null and try_cast({c} as BIGINT) is null "
        f"then '{c} is not an INT64: ' || {c} || '; ' else '' end"
        for c in _TOP_LEVEL_INTS
    )
    quarantined += quarantine(
        con,
        source=SOURCE,
        table_name=TABLE,
        rule="ga4_event_parses",
        run_id=run_id,
        reason_sql=f"""rtrim(case when event_timestamp is null then 'event_timestamp missing; '
            else '' end || case when event_name is null then 'event_name missing; ' else '' end
            || {reasons}, '; ') || ' (' || ? || ')'""",
        rows_sql=f"select * from _ga4_file where {_INVALID}",
        params=[shard.url],
    )
    loaded = scalar(
        con,
        f"insert into {TABLE} select {_CASTS}, ?, ?, now() from _ga4_file where not ({_INVALID})",
        [shard.day, shard.url],
    )
    return LoadStats(staged + broken, loaded, quarantined)


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
    ensure_tables(con)
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
        stats = load_day(con, fs, day, run_id)
        total += stats
        loaded_days.append(day.shard)
        for shard in day.files:
            formats[shard.fmt] = formats.get(shard.fmt, 0) + 1
        if log:
            log.info(
                f"{day.shard}: {len(day.files)} file(s), {stats.rows_loaded} events loaded, "
                f"{stats.rows_quarantined} quarantined"
            )
    return {
        "stats": total,
        "days_in_export": len(days),
        "days_loaded": loaded_days,
        "days_unchanged": len(days) - len(loaded_days),
        "files_by_format": formats,
        "newest_day": days[-1].shard,
    }
