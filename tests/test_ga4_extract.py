import gzip
import json
import shutil
from datetime import datetime

import duckdb
import fastavro
import fsspec
import polars as pl
import pyarrow as pa
import pytest

from orchestration.defs.ga4 import extract
from orchestration.defs.ga4.extract import GA4_SCHEMA, list_export, sync_export
from orchestration.errors import SourceError
from orchestration.warehouse import connect

from .conftest import SEEDS

DEMO = SEEDS / "ga4"


def shard_events(con, path: str) -> int:
    return con.execute(f"select count(*) from read_json('{path}')").fetchone()[0]


@pytest.fixture
def export(tmp_path):
    """A copy of four demo days: Parquet, Avro, gzipped NDJSON in two files, plain NDJSON."""
    root = tmp_path / "export"
    root.mkdir()
    for name in ("events_20261001", "events_20261003", "events_20261005"):
        shutil.copytree(DEMO / name, root / name)
    for path in DEMO.glob("events_20261006-*.json.gz"):  # file-prefix layout
        shutil.copy(path, root / path.name)
    return root


def count(con, sql: str) -> int:
    return con.execute(sql).fetchone()[0]


def test_every_format_loads_with_ga4_types(export, tmp_path):
    formats = {p.suffix for p in export.rglob("*.*")}
    assert {".parquet", ".avro", ".gz", ".json"} <= formats
    expected = {}
    with duckdb.connect() as scratch:
        expected["20261001"] = count(
            scratch, f"select count(*) from read_parquet('{export}/events_20261001/*')"
        )
        expected["20261005"] = sum(
            shard_events(scratch, str(p)) for p in (export / "events_20261005").iterdir()
        )
        expected["20261006"] = sum(
            shard_events(scratch, str(p)) for p in export.glob("events_20261006-*")
        )
    with connect(tmp_path / "w.duckdb") as con:
        result = sync_export(con, str(export), "run-1")
        assert result["stats"].rows_quarantined == 0
        assert result["stats"].rows_read == result["stats"].rows_loaded
        assert len(result["days_loaded"]) == 4
        per_day = dict(
            con.execute(
                "select strftime(_export_day, '%Y%m%d'), count(*) from raw_ga4.events group by 1"
            ).fetchall()
        )
        for day, n in expected.items():
            assert per_day[day] == n
        assert per_day["20261003"] > 0  # the Avro day
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'raw_ga4' and table_name = 'events'"
            ).fetchall()
        )
        assert types["event_timestamp"] == "BIGINT"
        assert types["event_params"].startswith("STRUCT(")
        assert types["event_params"].endswith("[]")
        # INT64 carried as JSON strings arrives as integers, nested ones included
        row = con.execute(
            "select event_timestamp, list_filter(event_params, lambda p: p.key = "
            "'ga_session_id')[1].value.int_value from raw_ga4.events "
            "where _export_day = '2026-10-06' limit 1"
        ).fetchone()
        assert isinstance(row[0], int) and row[0] > 1_700_000_000_000_000
        assert isinstance(row[1], int)
        # every format produced the same nested shape for purchases
        purchases = con.execute(
            "select strftime(_export_day, '%Y%m%d'), count(*) from raw_ga4.events "
            "where event_name = 'purchase' and ecommerce.transaction_id is not null "
            "group by 1"
        ).fetchall()
        assert {d for d, _ in purchases} == set(per_day)
        sessions = con.execute(
            "select strftime(_export_day, '%Y%m%d'), count(*) from raw_ga4.events, "
            "unnest(event_params) as p(param) where param.key = 'ga_session_id' "
            "and param.value.int_value > 1_700_000_000 group by 1"
        ).fetchall()
        assert {d for d, _ in sessions} == set(per_day)


def test_reexported_day_replaces_and_new_days_are_picked_up(export, tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        sync_export(con, str(export), "run-1")
        before = count(con, "select count(*) from raw_ga4.events")
        # nothing changed: nothing is read again
        again = sync_export(con, str(export), "run-2")
        assert again["days_loaded"] == [] and again["stats"].rows_read == 0
        # a re-export of 2026-10-05 with one more (late) event
        day = export / "events_20261005"
        lines = (day / "000000000000.json").read_text().splitlines()
        late = json.loads(lines[0])
        late["event_timestamp"] = str(int(late["event_timestamp"]) + 1)
        (day / "000000000000.json").write_text("\n".join([*lines, json.dumps(late)]) + "\n")
        # and a brand-new day
        shutil.copytree(DEMO / "events_20261007", export / "events_20261007")
        third = sync_export(con, str(export), "run-3")
        assert sorted(third["days_loaded"]) == ["events_20261005", "events_20261007"]
        new_day = count(con, "select count(*) from raw_ga4.events where _export_day='2026-10-07'")
        assert count(con, "select count(*) from raw_ga4.events") == before + 1 + new_day
        assert (
            count(con, "select count(*) from raw_ga4.events where _export_day='2026-10-05'")
            == len(lines) + 1
        )


def test_daily_shard_supersedes_intraday(tmp_path):
    export = tmp_path / "export"
    (export / "events_intraday_20261007").mkdir(parents=True)
    shutil.copy(
        DEMO / "events_20261005" / "000000000000.json",
        export / "events_intraday_20261007" / "000000000000.json",
    )
    with connect(tmp_path / "w.duckdb") as con:
        first = sync_export(con, str(export), "run-1")
        assert first["days_loaded"] == ["events_intraday_20261007"]
        shutil.copytree(DEMO / "events_20261007", export / "events_20261007")
        second = sync_export(con, str(export), "run-2")
        assert second["days_loaded"] == ["events_20261007"]
        expected = count(con, f"select count(*) from '{DEMO}/events_20261007/*.parquet'")
        assert count(con, "select count(*) from raw_ga4.events") == expected


def test_broken_lines_and_bad_timestamps_are_quarantined(tmp_path):
    export = tmp_path / "export" / "events_20261005"
    export.mkdir(parents=True)
    good = (DEMO / "events_20261005" / "000000000000.json").read_text().splitlines()
    bad_ts = json.loads(good[1])
    bad_ts["event_timestamp"] = "yesterday"
    lines = [
        good[0],
        '{"event_date":"20261005", "event_name": broken',
        json.dumps(bad_ts),
        *good[2:10],
    ]
    with gzip.open(export / "000000000000.json.gz", "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    with connect(tmp_path / "w.duckdb") as con:
        result = sync_export(con, str(tmp_path / "export"), "run-q")
        stats = result["stats"]
        assert (stats.rows_read, stats.rows_loaded, stats.rows_quarantined) == (11, 9, 2)
        rows = con.execute(
            "select rule, reason, record, run_id from quarantine.rejected_rows order by rule"
        ).fetchall()
        assert [r[0] for r in rows] == ["ga4_event_parses", "valid_json"]
        assert 'event_timestamp is not an INT64: "yesterday" at line 3 of' in rows[0][1]
        assert rows[0][2] == lines[2]  # the line as written
        assert rows[1][1].startswith("malformed JSON (")
        assert " at line 2 of " in rows[1][1]
        assert rows[1][2] == lines[1]
        assert {r[3] for r in rows} == {"run-q"}


def test_fsspec_url_and_clear_errors(tmp_path):
    fs = fsspec.filesystem("memory")
    for path in (DEMO / "events_20261001").iterdir():
        fs.pipe(f"/export/events_20261001/{path.name}", path.read_bytes())
    with connect(tmp_path / "w.duckdb") as con:
        result = sync_export(con, "memory://export", "run-m")
        assert result["stats"].rows_loaded > 0
        with pytest.raises(SourceError, match=r"\[ga4\].*does not exist.*CDP_GA4_EXPORT_URI"):
            sync_export(con, str(tmp_path / "missing"), "run-x")
    (tmp_path / "empty").mkdir()
    with (
        pytest.raises(SourceError, match="no events_YYYYMMDD shards"),
        connect(tmp_path / "w2.duckdb") as con,
    ):
        sync_export(con, str(tmp_path / "empty"), "run-y")


def test_listing_reads_both_layouts():
    _, days = list_export(str(DEMO))
    shards = [d.shard for d in days]
    assert "events_20261006" in shards  # file-prefix layout
    assert shards[-1] == "events_intraday_20261022"
    assert all(len(d.files) >= 1 for d in days)


def test_parquet_without_a_required_column_is_schema_drift(tmp_path):
    day = tmp_path / "export" / "events_20261101"
    day.mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute(
            f"copy (select * exclude (event_name) from "
            f"read_parquet('{DEMO}/events_20261001/*.parquet')) to '{day}/000000000000.parquet'"
        )
    with (
        pytest.raises(SourceError, match="schema drift, required column.*event_name"),
        connect(tmp_path / "w.duckdb") as con,
    ):
        sync_export(con, str(tmp_path / "export"), "run-d")


# --- Avro from different writers: the same events must load as they do from NDJSON ---

AVRO_DAY = "events_20261105"
LOAD_COLUMNS = ("_export_day", "_source_file", "_loaded_at")


def avro_type(kind: pa.DataType, name: str):
    """A nullable Avro type for an Arrow type, every record defined where it is used."""
    if pa.types.is_struct(kind):
        fields = [{"name": f.name, "type": avro_type(f.type, f"{name}_{f.name}")} for f in kind]
        return ["null", {"type": "record", "name": name, "fields": fields}]
    if pa.types.is_list(kind):
        return ["null", {"type": "array", "items": avro_type(kind.value_type, name)[1]}]
    plain = {"string": "string", "int64": "long", "double": "double", "bool": "boolean"}
    return ["null", plain[str(kind)]]


def bq_json(value):
    """BigQuery's JSON export: INT64 as strings, NULL fields left out."""
    if isinstance(value, dict):
        return {k: bq_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [bq_json(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


@pytest.fixture(scope="module")
def ga4_events(tmp_path_factory):
    """GA4 events with every column of the export schema (as Arrow), and the rows they load
    as from NDJSON, the reference every Avro writer is compared with."""
    tmp = tmp_path_factory.mktemp("ga4_events")
    with connect(tmp / "demo.duckdb") as con:
        day = tmp / "demo" / "events_20261005"
        day.mkdir(parents=True)
        shutil.copy(DEMO / "events_20261005" / "000000000000.json", day)
        sync_export(con, str(tmp / "demo"), "demo")
        columns = ", ".join(f'"{c}"' for c in GA4_SCHEMA)
        table = con.sql(
            f"select {columns} from raw_ga4.events order by event_timestamp limit 300"
        ).to_arrow_table()
    events = table.to_pylist()
    # Fill what the demo day leaves empty, so every kind of value goes through each writer.
    for n, event in enumerate(events):
        event["event_date"] = "20261105"
        event["is_active_user"] = n % 2 == 0
        event["event_value_in_usd"] = n / 8 if n % 3 else None
        event["event_previous_timestamp"] = event["event_timestamp"] - 1_000_123
        if n % 3 == 0:
            value = dict.fromkeys(("string_value", "int_value", "float_value", "double_value"))
            event["user_properties"] = [
                {
                    "key": "tier",
                    "value": {
                        **value,
                        "string_value": "gold",
                        "set_timestamp_micros": event["event_timestamp"] - 7,
                    },
                },
                {"key": "visits", "value": {**value, "int_value": n, "set_timestamp_micros": None}},
            ]
    table = pa.Table.from_pylist(events, schema=table.schema)
    export = tmp / "json" / AVRO_DAY
    export.mkdir(parents=True)
    lines = "".join(json.dumps(bq_json(e)) + "\n" for e in events)
    (export / "000000000000.json").write_text(lines)
    with connect(tmp / "json.duckdb") as con:
        sync_export(con, str(tmp / "json"), "json")
        rows = loaded_rows(con)
    assert len(rows) == len(events)
    return table, rows


def loaded_rows(con) -> list[tuple]:
    """The GA4 export schema's columns, with the types GA4_SCHEMA gives them (a field a file
    added inside one is compared apart)."""
    columns = ", ".join(f'"{c}"::{t}' for c, t in GA4_SCHEMA.items())
    return con.execute(f"select {columns} from raw_ga4.events order by all").fetchall()


def fastavro_file(path, table: pa.Table, style: str, codec: str) -> None:
    """Write the events as Avro in one of several schema styles other writers use."""
    schema = {
        "type": "record",
        "name": "Root",
        "fields": [{"name": f.name, "type": avro_type(f.type, f.name)} for f in table.schema],
    }
    fields = {f["name"]: f for f in schema["fields"]}
    param = fields["user_properties"]["type"][1]["items"]  # key, value (with a set time)
    events = table.to_pylist()
    if style in ("named", "namespaced", "fallback"):
        # One record type for both key/value lists, defined once and then referred to by name
        # (so the event params' value gains a set time, NULL, which the table gains too).
        param["name"] = "param"
        reference = "param"
        if style == "namespaced":
            param["namespace"] = "com.google.analytics"
            reference = "com.google.analytics.param"
        fields["event_params"]["type"][1]["items"] = param
        fields["user_properties"]["type"][1]["items"] = reference
    if style in ("logical", "fallback"):
        micros = ["null", {"type": "long", "logicalType": "timestamp-micros"}]
        for name in ("event_timestamp", "event_previous_timestamp", "user_first_touch_timestamp"):
            fields[name]["type"] = micros
        value = next(f for f in param["fields"] if f["name"] == "value")["type"][1]
        value["fields"][-1] = {"name": "set_timestamp_micros", "type": micros}
        fields["event_date"]["type"] = ["null", {"type": "int", "logicalType": "date"}]
        for event in events:
            event["event_date"] = datetime.strptime(event["event_date"], "%Y%m%d").date()
    if style == "fallback":
        # Columns outside GA4's schema that polars cannot read: loaded all the same.
        schema["fields"] += [
            {"name": "labels", "type": {"type": "map", "values": "string"}},
            {"name": "score", "type": ["null", "long", "string"]},
        ]
        for n, event in enumerate(events):
            event["labels"] = {"n": str(n)}
            event["score"] = n if n % 2 else str(n)
    with open(path, "wb") as fh:
        fastavro.writer(fh, fastavro.parse_schema(schema), events, codec=codec)


def polars_file(path, table: pa.Table) -> None:
    """polars' own Avro writer, with GA4's times and day as timestamp and date types."""
    frame = (
        pl.from_arrow(table)
        .with_columns(
            pl.from_epoch(pl.col(c), time_unit="us")
            for c in ("event_timestamp", "event_previous_timestamp", "user_first_touch_timestamp")
        )
        .with_columns(pl.col("event_date").str.to_date("%Y%m%d"))
    )
    frame.write_avro(path, compression="snappy")


@pytest.mark.parametrize(
    ("writer", "codec"),
    [
        ("named", "deflate"),
        ("namespaced", "null"),
        ("named", "snappy"),
        ("logical", "deflate"),
        ("fallback", "snappy"),
        ("polars", "snappy"),
    ],
)
def test_avro_from_any_writer_loads_like_ndjson(ga4_events, tmp_path, monkeypatch, writer, codec):
    table, expected = ga4_events
    day = tmp_path / "export" / AVRO_DAY
    day.mkdir(parents=True)
    path = day / "000000000000.avro"
    if writer == "polars":
        polars_file(path, table)
    else:
        fastavro_file(path, table, writer, codec)
    decoded_by_fastavro = []
    monkeypatch.setattr(
        extract,
        "_read_with_fastavro",
        lambda p, read=extract._read_with_fastavro: decoded_by_fastavro.append(p) or read(p),
    )
    with connect(tmp_path / "w.duckdb") as con:
        result = sync_export(con, str(tmp_path / "export"), "run-a")
        stats = result["stats"]
        assert (stats.rows_read, stats.rows_loaded) == (table.num_rows, table.num_rows)
        assert loaded_rows(con) == expected
        added = {
            "named": ["event_params[].value.set_timestamp_micros BIGINT"],
            "namespaced": ["event_params[].value.set_timestamp_micros BIGINT"],
            "fallback": [
                "event_params[].value.set_timestamp_micros BIGINT",
                "labels MAP(VARCHAR, VARCHAR)",
                "score JSON",
            ],
        }
        assert result["columns_added"] == added.get(writer, [])
        if (
            writer == "fallback"
        ):  # a map, and a field that is a long in some rows, a string in others
            extra = con.execute(
                "select labels['n'], score from raw_ga4.events order by event_timestamp limit 2"
            ).fetchall()
            assert extra == [("0", '"0"'), ("1", "1")]
    # named types keep the file on polars' fast path; only what polars cannot read is not
    assert bool(decoded_by_fastavro) == (writer == "fallback")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [("truncated", r"Expected \d+ bytes, read \d+"), ("not_avro", "not an Avro file")],
)
def test_corrupt_avro_is_a_clear_error_naming_the_file(ga4_events, tmp_path, damage, reason):
    table, _ = ga4_events
    day = tmp_path / "export" / AVRO_DAY
    day.mkdir(parents=True)
    path = day / "000000000000.avro"
    fastavro_file(path, table, "named", "deflate")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3] if damage == "truncated" else b"{}\n" * 50)
    with (
        pytest.raises(
            SourceError,
            match=rf"\[ga4\] .*{AVRO_DAY}/000000000000\.avro: cannot read this avro file "
            rf"\({reason}",
        ),
        connect(tmp_path / "w.duckdb") as con,
    ):
        sync_export(con, str(tmp_path / "export"), "run-c")
    with connect(tmp_path / "w.duckdb") as con:
        assert count(con, "select count(*) from raw_ga4.events") == 0
