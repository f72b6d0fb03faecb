"""GA4 exports as they really are: the full export schema in NDJSON, Parquet and Avro, consent
mode, fields Google adds, values that do not cast at any depth, identifiers written as
numbers, event days that do not belong to their shard."""

import datetime as dt
import gzip
import json

import duckdb
import pyarrow as pa
import pytest

from orchestration.defs.ga4 import extract
from orchestration.defs.ga4.extract import sync_export
from orchestration.errors import SourceError
from orchestration.warehouse import connect

from .ga4_export import (
    EXPORT_SCHEMA,
    arrow_schema,
    avro_schema,
    events,
    leaf_paths,
    ndjson_lines,
    write_avro,
    write_ndjson,
    write_parquet,
)

DAY = dt.date(2026, 10, 21)
SHARD = f"events_{DAY:%Y%m%d}"
LOAD_COLUMNS = "_source_file, _loaded_at"
BQ_TYPES = {"STRING": "VARCHAR", "INTEGER": "BIGINT", "FLOAT": "DOUBLE", "BOOLEAN": "BOOLEAN"}


def rows(con) -> list[tuple]:
    return con.execute(
        f"select * exclude ({LOAD_COLUMNS}) from raw_ga4.events order by event_timestamp"
    ).fetchall()


def quarantined(con) -> list[tuple]:
    return con.execute(
        "select rule, reason, record from quarantine.rejected_rows order by reason"
    ).fetchall()


def leaf_types(con) -> dict[str, str]:
    """The loaded table's scalar fields, named as leaf_paths() names them."""
    found = {}

    def walk(ty, path: str) -> None:
        if ty.id == "struct":
            for name, child in ty.children:
                walk(child, f"{path}.{name}" if path else name)
        elif ty.id == "list":
            walk(ty.children[0][1], f"{path}[]")
        else:
            found[path] = str(ty)

    rel = con.sql("select * from raw_ga4.events")
    for name, ty in zip(rel.columns, rel.types, strict=True):
        walk(ty, name)
    return found


@pytest.fixture(scope="module")
def day_rows():
    """A day of 200 events in the full export schema, 40% of them in consent mode."""
    return events(DAY, 200, consent_share=0.4)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, day_rows):
    """The day exported as NDJSON (gzipped, two files), Parquet and Avro, each loaded into a
    warehouse of its own: format → (sync result, loaded rows, leaf types)."""
    root = tmp_path_factory.mktemp("formats")
    writers = {
        "json": lambda d: [
            write_ndjson(d / "000000000000.json.gz", day_rows[:120]),
            write_ndjson(d / "000000000001.json.gz", day_rows[120:]),
        ],
        "parquet": lambda d: write_parquet(d / "000000000000.parquet", day_rows),
        "avro": lambda d: write_avro(d / "000000000000.avro", day_rows),
    }
    results = {}
    for fmt, write in writers.items():
        write(root / fmt / SHARD)
        with connect(root / f"{fmt}.duckdb") as con:
            result = sync_export(con, str(root / fmt), f"run-{fmt}")
            results[fmt] = (result, rows(con), leaf_types(con), quarantined(con))
    return results


@pytest.mark.parametrize("fmt", ["json", "parquet", "avro"])
def test_every_field_of_the_export_schema_lands_with_its_type(loaded, fmt):
    result, _, types, rejected = loaded[fmt]
    stats = result["stats"]
    assert (stats.rows_read, stats.rows_loaded, stats.rows_quarantined) == (200, 200, 0)
    assert rejected == [] and result["columns_added"] == []
    assert len(EXPORT_SCHEMA) == 30
    expected = {path: BQ_TYPES[kind] for path, kind in leaf_paths().items()}
    assert {p: types.get(p) for p in expected} == expected


def test_ndjson_parquet_and_avro_load_the_same_rows(loaded):
    json_rows = loaded["json"][1]
    assert loaded["parquet"][1] == json_rows
    assert loaded["avro"][1] == json_rows


def test_nested_values_are_all_there(tmp_path, day_rows):
    write_ndjson(tmp_path / "export" / SHARD / "000000000000.json", day_rows)
    with connect(tmp_path / "w.duckdb") as con:
        sync_export(con, str(tmp_path / "export"), "run-n")
        (params, last_click, ads, collected, active, batch) = con.execute(
            """
            select list_transform(items[1].item_params, lambda p: p.key || '=' ||
                       coalesce(p.value.string_value, p.value.int_value::varchar)),
                   session_traffic_source_last_click.cross_channel_campaign
                       .default_channel_group,
                   session_traffic_source_last_click.google_ads_campaign.campaign_name,
                   collected_traffic_source.manual_marketing_tactic,
                   is_active_user, batch_page_id
            from raw_ga4.events where event_name = 'view_item' and user_pseudo_id is not null
            order by event_timestamp limit 1
            """
        ).fetchone()
        assert params == ["color_code=B12", "size_eu=42"]
        assert (last_click, ads, active) == ("Email", "Brand", True)
        assert collected is None and batch > 1_700_000
        revenue = con.execute(
            "select sum(publisher.ad_revenue_in_usd), "
            "count(distinct privacy_info.analytics_storage) from raw_ga4.events"
        ).fetchone()
        assert revenue == (pytest.approx(0.0125 * 33), 2)


def test_consent_mode_events_load_and_are_counted(loaded):
    for fmt in ("json", "parquet", "avro"):
        result, loaded_rows, _, _ = loaded[fmt]
        assert result["events_without_user_pseudo_id"] == 80
        assert result["user_pseudo_id_null_share"] == 0.4
        denied = [r for r in loaded_rows if r[9] is None]  # user_pseudo_id
        assert len(denied) == 80
        assert all(r[10]["analytics_storage"] == "No" for r in denied)  # privacy_info


# --- what a real export gets wrong -------------------------------------------------------------


def messy_day(tmp_path) -> tuple[list[str], dict[int, str]]:
    """A consent-mode day of good lines with, in between, lines each wrong in one way."""
    good = ndjson_lines(events(DAY, 40, consent_share=0.4))
    base = json.loads(good[5])

    def variant(**changes) -> str:
        event = json.loads(json.dumps(base))
        for path, value in changes.items():
            target, *keys = path.split("__")
            holder = event
            for key in [target, *keys][:-1]:
                holder = holder[int(key)] if key.isdigit() else holder[key]
            last = [target, *keys][-1]
            holder[int(last) if last.isdigit() else last] = value
        return json.dumps(event)

    bad = {
        "items[0].quantity is not an INT64": variant(
            event_name="view_item", items=[{"item_id": "SKU-1", "quantity": "abc"}]
        ),
        "event_params[1].value.int_value is not an INT64": variant(
            event_params__1__value={"int_value": "abc"}
        ),
        "items is not an ARRAY but an object": variant(items={"item_id": "SKU-1"}),
        "event_timestamp is not an INT64": variant(event_timestamp="yesterday"),
        "ecommerce is not a RECORD but a string": variant(ecommerce="none"),
        "event_name missing": variant(event_name=None),
        "malformed JSON": good[7][:-20] + ", broken",
        "duplicate key": good[8][:-1] + ',"event_name":"twice"}',
        "event_date_is_yyyymmdd": variant(event_date="2024-04-03"),
        "event_date_matches_shard": variant(event_date="20261020"),
    }
    lines = good[:10] + list(bad.values()) + [" "] + good[10:]
    write_ndjson(tmp_path / "export" / SHARD / "000000000000.json.gz", lines)
    return lines, bad


def test_bad_values_at_any_depth_are_quarantined_with_their_path_and_line(tmp_path):
    lines, bad = messy_day(tmp_path)
    with connect(tmp_path / "w.duckdb") as con:
        stats = sync_export(con, str(tmp_path / "export"), "run-bad")["stats"]
        assert (stats.rows_read, stats.rows_loaded, stats.rows_quarantined) == (50, 40, 10)
        rejected = quarantined(con)
        assert con.execute("select count(*) from raw_ga4.events").fetchone()[0] == 40
    by_problem = {}
    for rule, reason, record in rejected:
        problem = next(p for p in bad if p in reason or p == rule)
        by_problem[problem] = (rule, reason, record)
    assert set(by_problem) == set(bad)
    for problem, line in bad.items():
        rule, reason, record = by_problem[problem]
        assert record == line  # the line as written, byte for byte
        if rule in ("valid_json", "ga4_event_parses"):
            number = lines.index(line) + 1
            assert f"at line {number} of file://" in reason and SHARD in reason
    assert by_problem["items[0].quantity is not an INT64"][0] == "ga4_event_parses"
    assert (
        'items[0].quantity is not an INT64: "abc"'
        in by_problem["items[0].quantity is not an INT64"][1]
    )
    assert by_problem["malformed JSON"][0] == "valid_json"
    assert by_problem["duplicate key"][0] == "ga4_event_parses"
    assert by_problem["event_date_is_yyyymmdd"][0] == "event_date_is_yyyymmdd"
    assert "event_date_matches_shard" in by_problem["event_date_is_yyyymmdd"][1]
    assert by_problem["event_date_matches_shard"][0] == "event_date_matches_shard"


def test_fields_never_seen_before_are_added_and_kept(tmp_path, monkeypatch):
    day = tmp_path / "export" / SHARD
    first = events(DAY, 20)
    first[3]["consent_signals"] = {"ad_user_data": "granted", "score": 0.75}  # a new top field
    first[4]["device"]["screen"] = {"w": 1920, "h": 1080}  # new in a known record
    first[2]["items"][0]["item_rating"] = 4.5  # new in a list's records
    write_ndjson(day / "000000000000.json", first)
    later = events(DAY, 40)[20:]
    later[0]["consent_signals"] = {"ad_user_data": "denied"}
    write_ndjson(day / "000000000001.json", later)
    checked = []
    monkeypatch.setattr(
        extract,
        "_load_json_lines",
        lambda *a, f=extract._load_json_lines: checked.append(a[2].relpath) or f(*a),
    )
    with connect(tmp_path / "w.duckdb") as con:
        result = sync_export(con, str(tmp_path / "export"), "run-new")
        assert result["stats"].rows_loaded == 40 and result["stats"].rows_quarantined == 0
        assert result["columns_added"] == [
            "items[].item_rating JSON",
            "consent_signals JSON",
            "device.screen JSON",
        ]
        # the first file taught the table the fields: the second is read whole again
        assert checked == [f"{SHARD}/000000000000.json"]
        values = con.execute(
            "select consent_signals->>'$.ad_user_data', device.screen->>'$.w', "
            "items[1].item_rating from raw_ga4.events "
            "where consent_signals is not null or device.screen is not null "
            "or items[1].item_rating is not null order by event_timestamp"
        ).fetchall()
        assert values == [
            (None, None, "4.5"),
            ("granted", None, None),
            (None, "1920", None),
            ("denied", None, None),
        ]


@pytest.mark.parametrize("fmt", ["parquet", "avro"])
def test_a_new_column_in_parquet_or_avro_is_added_with_its_type(tmp_path, fmt):
    rows_ = events(DAY, 12)
    for n, row in enumerate(rows_):
        row["engagement_score"] = n * 10
        row["geo"]["postal_code"] = f"2010{n % 9}"
    schema = {**EXPORT_SCHEMA, "engagement_score": "INTEGER"}
    schema["geo"] = {**schema["geo"], "postal_code": "STRING"}
    day = tmp_path / "export" / SHARD
    if fmt == "parquet":
        write_parquet(day / "000000000000.parquet", rows_, arrow_schema(schema))
    else:
        write_avro(day / "000000000000.avro", rows_, avro_schema(schema))
    with connect(tmp_path / "w.duckdb") as con:
        result = sync_export(con, str(tmp_path / "export"), "run-col")
        assert sorted(result["columns_added"]) == [
            "engagement_score BIGINT",
            "geo.postal_code VARCHAR",
        ]
        assert con.execute(
            "select sum(engagement_score), count(distinct geo.postal_code) from raw_ga4.events"
        ).fetchone() == (660, 9)


def test_an_identifier_written_as_a_number_keeps_every_digit(tmp_path):
    good = ndjson_lines(events(DAY, 3))
    line = json.loads(good[1])
    text = json.dumps({k: v for k, v in line.items() if k not in ("user_pseudo_id", "user_id")})
    numbered = (
        text[:-1] + ',"user_pseudo_id":950658449.1697698986,"user_id":123456789012345678901234}'
    )
    purchase = json.loads(good[0])
    purchase["ecommerce"] = {"transaction_id": 0}
    purchase_text = json.dumps(purchase).replace(
        '"transaction_id": 0', '"transaction_id": 70012.50'
    )
    write_ndjson(
        tmp_path / "export" / SHARD / "000000000000.json", [numbered, purchase_text, good[2]]
    )
    with connect(tmp_path / "w.duckdb") as con:
        stats = sync_export(con, str(tmp_path / "export"), "run-id")["stats"]
        assert (stats.rows_loaded, stats.rows_quarantined) == (3, 0)
        ids = con.execute(
            "select user_pseudo_id, user_id, ecommerce.transaction_id from raw_ga4.events "
            "order by event_timestamp"
        ).fetchall()
    assert ("950658449.1697698986", "123456789012345678901234", None) in ids
    assert any(t == "70012.50" for _, _, t in ids)


def test_event_dates_in_parquet_that_do_not_fit_the_shard_are_quarantined_by_rule(tmp_path):
    rows_ = events(DAY, 10)
    rows_[2]["event_date"] = "2026-10-21"
    rows_[3]["event_date"] = "20261019"
    rows_[4]["event_timestamp"] = None
    write_parquet(tmp_path / "export" / SHARD / "000000000000.parquet", rows_)
    with connect(tmp_path / "w.duckdb") as con:
        stats = sync_export(con, str(tmp_path / "export"), "run-date")["stats"]
        assert (stats.rows_read, stats.rows_loaded, stats.rows_quarantined) == (10, 7, 3)
        rejected = quarantined(con)
    rules = sorted(r[0] for r in rejected)
    assert rules == ["event_date_is_yyyymmdd", "event_date_matches_shard", "ga4_event_parses"]
    for rule, reason, record in rejected:
        original = json.loads(record)  # the record as read, every field of it
        assert set(original) == set(EXPORT_SCHEMA)
        if rule == "ga4_event_parses":
            assert reason.startswith("event_timestamp missing at row 5 of")
            assert reason.endswith(f"{SHARD}/000000000000.parquet")
        else:
            assert reason.startswith("broke row rule(s): ")


@pytest.mark.parametrize(
    ("field", "arrow", "message"),
    [
        ("user_id", pa.int64(), "user_id is BIGINT in this file but VARCHAR"),
        ("event_timestamp", pa.string(), "event_timestamp is VARCHAR in this file but BIGINT"),
        ("items", pa.struct([("quantity", pa.string())]), "items is STRUCT"),
    ],
)
def test_a_known_field_of_another_type_is_schema_drift(tmp_path, field, arrow, message):
    rows_ = events(DAY, 5)
    for n, row in enumerate(rows_):
        row[field] = {"user_id": n, "event_timestamp": str(n), "items": {"quantity": "1"}}[field]
    schema = arrow_schema()
    schema = schema.set(schema.get_field_index(field), pa.field(field, arrow))
    write_parquet(tmp_path / "export" / SHARD / "000000000000.parquet", rows_, schema)
    with (
        pytest.raises(SourceError, match=rf"\[ga4\] .*parquet: schema drift: {message}"),
        connect(tmp_path / "w.duckdb") as con,
    ):
        sync_export(con, str(tmp_path / "export"), "run-drift")


def test_a_table_of_an_older_cdp_gains_the_fields_added_since(tmp_path):
    old = {
        name: kind
        for name, kind in extract.GA4_SCHEMA.items()
        if name not in ("session_traffic_source_last_click", "publisher")
    }
    old["items"] = "STRUCT(item_id VARCHAR, quantity BIGINT)[]"
    with connect(tmp_path / "w.duckdb") as con:
        columns = ", ".join(f'"{c}" {t}' for c, t in {**old, **extract.LOAD_COLUMNS}.items())
        con.execute(f"create schema raw_ga4; create table raw_ga4.events ({columns})")
        con.execute(
            "insert into raw_ga4.events (event_name, items, _export_day) "
            "values ('old', [{'item_id': 'SKU-1', 'quantity': 2}], '2026-10-01')"
        )
        write_ndjson(tmp_path / "export" / SHARD / "000000000000.json.gz", events(DAY, 6))
        result = sync_export(con, str(tmp_path / "export"), "run-up")
        added = [a.split(" ")[0] for a in result["columns_added"]]
        assert "session_traffic_source_last_click" in added and "publisher" in added
        assert "items[].item_params" in added and "items[].price" in added
        assert con.execute(
            "select count(*) filter (where event_name = 'old' and items[1].quantity = 2), "
            "count(session_traffic_source_last_click), count(items[1].item_params) "
            "from raw_ga4.events"
        ).fetchone() == (1, 6, 3)


def test_lines_are_read_as_written_whatever_the_compression(tmp_path):
    lines = ndjson_lines(events(DAY, 4))
    lines.insert(2, '{"event_name": "page_view", "event_timestamp": "x1"}')
    path = tmp_path / "export" / SHARD / "000000000000.json.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(("\n".join(lines)).encode(), mtime=0))  # no final newline
    with connect(tmp_path / "w.duckdb") as con:
        stats = sync_export(con, str(tmp_path / "export"), "run-gz")["stats"]
        assert (stats.rows_read, stats.rows_loaded, stats.rows_quarantined) == (5, 4, 1)
        ((record,),) = con.execute("select record from quarantine.rejected_rows").fetchall()
    assert record == lines[2]


# --- consent mode in a run ------------------------------------------------------------------


def test_a_day_mostly_in_consent_mode_is_a_warning_not_a_failure(tmp_path):
    import dagster as dg

    from orchestration.defs.ga4.assets import ga4_events
    from orchestration.defs.quality.ga4_consent import ga4_user_pseudo_id_null_share
    from orchestration.resources import GA4ExportResource, WarehouseResource

    export = tmp_path / "export"
    write_ndjson(export / SHARD / "000000000000.json", events(DAY, 50, consent_share=0.6))
    before = DAY - dt.timedelta(days=1)
    write_ndjson(
        export / f"events_{before:%Y%m%d}" / "000000000000.json",
        events(before, 50, consent_share=0.4),
    )
    result = dg.materialize(
        [ga4_events, ga4_user_pseudo_id_null_share],
        resources={
            "warehouse": WarehouseResource(data_dir=str(tmp_path / "data")),
            "ga4_export": GA4ExportResource(uri=str(export)),
        },
        raise_on_error=False,
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("raw_ga4__events")
    metadata = materialization.metadata
    assert metadata["events_without_user_pseudo_id"].value == 50
    assert metadata["user_pseudo_id_null_share"].value == 0.5
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "user_pseudo_id_null_share"
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    days = check.metadata["days"].value
    assert [(d["day"], d["share"]) for d in days] == [(f"{before:%Y%m%d}", 0.4), (SHARD[7:], 0.6)]
    assert "60% of events without user_pseudo_id" in check.description


def test_cdp_run_publishes_a_day_with_consent_mode_new_fields_and_bad_values(tmp_path):
    """The demo export plus one more file for its last day: 200 events in the full schema,
    40% in consent mode, a field no export had, and lines wrong at depth."""
    import shutil

    from .conftest import DEMO_AS_OF, SEEDS, run_cdp

    export = tmp_path / "ga4"
    shutil.copytree(SEEDS / "ga4", export)
    rows_ = events(DAY, 200, consent_share=0.4)
    for row in rows_:
        row["user_id"] = None  # visitors the shop does not know
    rows_[11]["consent_signals"] = {"ad_user_data": "granted"}
    lines = ndjson_lines(rows_)
    quantity = json.loads(lines[14])  # a view_item
    quantity["items"][0]["quantity"] = "abc"
    as_object = json.loads(lines[15])
    as_object["items"] = as_object["items"][0]
    bad = [json.dumps(quantity), json.dumps(as_object), lines[16].replace(SHARD[7:], "2026-10-21")]
    write_ndjson(export / SHARD / "000000000009.json", lines + bad)

    data_dir = tmp_path / "data"
    result = run_cdp(data_dir, CDP_AS_OF=DEMO_AS_OF, CDP_GA4_EXPORT_URI=str(export))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (data_dir / "marts.duckdb").exists()
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        mine = "_source_file like '%000000000009.json'"
        assert con.execute(
            f"select count(*), count(*) - count(user_pseudo_id), count(consent_signals) "
            f"from raw_ga4.events where {mine}"
        ).fetchone() == (200, 80, 1)
        rejected = con.execute(
            "select rule, reason, record from quarantine.rejected_rows order by reason"
        ).fetchall()
        assert sorted(r[2] for r in rejected) == sorted(bad)
        reasons = " | ".join(r[1] for r in rejected)
        assert 'items[0].quantity is not an INT64: "abc"' in reasons
        assert "items is not an ARRAY" in reasons and "event_date_is_yyyymmdd" in reasons
        # consent-mode events count in activity, identify nobody
        staged = con.execute(
            "select count(*), count(*) - count(device_id) from staging.stg_ga4__events "
            "where export_day = '2026-10-21'"
        ).fetchone()
        raw = con.execute(
            "select count(*), count(*) - count(user_pseudo_id) from raw_ga4.events "
            "where _export_day = '2026-10-21'"
        ).fetchone()
        assert staged == raw and staged[1] == 80
        assert not con.execute(
            "select count(*) from identity.int_identity__observations "
            "where identifier_type = 'device' and identifier_value is null"
        ).fetchone()[0]


def test_a_bad_file_among_good_ones_is_the_only_one_checked_line_by_line(tmp_path, monkeypatch):
    day = tmp_path / "export" / SHARD
    rows_ = events(DAY, 60, consent_share=0.4)
    lines = ndjson_lines(rows_)
    bad = json.loads(lines[25])
    bad["items"] = [{"item_id": "SKU-1", "quantity": "many"}]
    write_ndjson(day / "000000000000.json", lines[:20])
    write_ndjson(day / "000000000001.json.gz", [*lines[20:40], json.dumps(bad)])
    write_ndjson(day / "000000000002.json", lines[40:])
    checked, probed = [], []
    monkeypatch.setattr(
        extract,
        "_load_json_lines",
        lambda *a, f=extract._load_json_lines: checked.append(a[2].relpath) or f(*a),
    )
    monkeypatch.setattr(
        extract,
        "_insert_json",
        lambda *a, f=extract._insert_json, **k: (
            probed.append((a[2].relpath, k["probe"])) or f(*a, **k)
        ),
    )
    with connect(tmp_path / "w.duckdb") as con:
        stats = sync_export(con, str(tmp_path / "export"), "run-3")["stats"]
        assert (stats.rows_read, stats.rows_loaded, stats.rows_quarantined) == (61, 60, 1)
        assert con.execute("select count(*) from raw_ga4.events").fetchone()[0] == 60
    assert checked == [f"{SHARD}/000000000001.json.gz"]
    # the day started again once: the files after it are tried on a connection of their own
    assert probed == [
        (f"{SHARD}/000000000000.json", False),
        (f"{SHARD}/000000000001.json.gz", False),
        (f"{SHARD}/000000000000.json", True),
        (f"{SHARD}/000000000002.json", True),
    ]


def test_zstd_compressed_ndjson_reads_both_ways(tmp_path):
    import cramjam

    lines = ndjson_lines(events(DAY, 10))
    day = tmp_path / "export" / SHARD
    day.mkdir(parents=True)
    (day / "000000000000.json.zst").write_bytes(
        bytes(cramjam.zstd.compress(("\n".join(lines) + "\n").encode()))
    )
    broken = [*lines[:5], lines[5][:40], *lines[6:]]
    (day / "000000000001.json.zst").write_bytes(
        bytes(cramjam.zstd.compress(("\n".join(broken) + "\n").encode()))
    )
    with connect(tmp_path / "w.duckdb") as con:
        stats = sync_export(con, str(tmp_path / "export"), "run-zst")["stats"]
        assert (stats.rows_read, stats.rows_loaded, stats.rows_quarantined) == (20, 19, 1)
        ((record,),) = con.execute("select record from quarantine.rejected_rows").fetchall()
    assert record == lines[5][:40]


def test_fields_a_parquet_file_added_are_read_from_ndjson_with_their_types(tmp_path):
    first = events(DAY, 4)
    for n, row in enumerate(first):
        row["labels"] = [("tier", "gold"), ("n", str(n))]
        row["engagement_score"] = n
    schema = arrow_schema().append(pa.field("labels", pa.map_(pa.string(), pa.string())))
    schema = schema.append(pa.field("engagement_score", pa.int32()))
    write_parquet(tmp_path / "export" / SHARD / "000000000000.parquet", first, schema)
    later = events(DAY, 8)[4:]
    later[0]["labels"] = {"tier": "silver"}
    later[1]["engagement_score"] = 7
    later[2]["engagement_score"] = "lots"  # not an INTEGER: this line alone is quarantined
    write_ndjson(tmp_path / "export" / SHARD / "000000000001.json", later)
    with connect(tmp_path / "w.duckdb") as con:
        result = sync_export(con, str(tmp_path / "export"), "run-map")
        assert sorted(result["columns_added"]) == [
            "engagement_score INTEGER",
            "labels MAP(VARCHAR, VARCHAR)",
        ]
        stats = result["stats"]
        assert (stats.rows_read, stats.rows_loaded, stats.rows_quarantined) == (8, 7, 1)
        assert con.execute(
            "select labels['tier'], engagement_score from raw_ga4.events "
            "where labels is not null or engagement_score is not null order by event_timestamp"
        ).fetchall() == [
            ("gold", 0),
            ("gold", 1),
            ("gold", 2),
            ("gold", 3),
            ("silver", None),
            (None, 7),
        ]
        (reason,) = con.execute("select reason from quarantine.rejected_rows").fetchone()
        assert reason.startswith('engagement_score is not an INTEGER: "lots" at line 3 of')


def test_a_file_adding_hundreds_of_fields_is_refused_not_loaded(tmp_path):
    row = events(DAY, 1)[0]
    row.update({f"user_property_{n}": n for n in range(250)})  # a key per value, not GA4
    write_ndjson(tmp_path / "export" / SHARD / "000000000000.json", [row])
    with (
        pytest.raises(SourceError, match=r"250 fields no GA4 export had before \(user_property_0"),
        connect(tmp_path / "w.duckdb") as con,
    ):
        sync_export(con, str(tmp_path / "export"), "run-wide")
    with connect(tmp_path / "w.duckdb") as con:
        assert "user_property_0" not in {
            r[0] for r in con.execute("describe raw_ga4.events").fetchall()
        }


def test_without_duckdb_refusing_unknown_keys_every_json_file_is_checked_by_line(
    tmp_path, monkeypatch
):
    rows_ = events(DAY, 10)
    rows_[7]["consent_signals"] = {"ad_user_data": "granted"}
    write_ndjson(tmp_path / "export" / SHARD / "000000000000.json", rows_)
    assert extract._duckdb_refuses_unknown_keys()  # this DuckDB does refuse them
    monkeypatch.setattr(extract, "_duckdb_refuses_unknown_keys", lambda: False)
    with connect(tmp_path / "w.duckdb") as con:
        result = sync_export(con, str(tmp_path / "export"), "run-old-duckdb")
        assert result["stats"].rows_loaded == 10
        assert result["columns_added"] == ["consent_signals JSON"]
