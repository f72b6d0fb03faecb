"""The Spark engine (CDP_ENGINE=spark): dbt builds staging, identity and marts on Spark.

Extraction, quarantine and erasure stay where they are, in `warehouse.duckdb`. Around each
dbt invocation `cdp-dbt` (orchestration/dbt_child.py) does three things here:

1. lands every table dbt reads as a source as Parquet under `$CDP_DATA_DIR/spark/raw` and
   registers it in Spark's catalog (`land_sources`);
2. starts the Spark session dbt-spark's `session` method then picks up, with the project's
   functions on it: phone parsing as vectorized pandas UDFs, the erasure salt as a session
   variable, and a runner for dbt's Python models (`start_session`);
3. after dbt, makes every table Spark built readable from `warehouse.duckdb` as a view on
   its Parquet files (`mirror_built_tables`), so the quality suites, the publication of
   `marts.duckdb` and the audits read the same schemas on either engine.

On a cluster the same session is a Spark Connect client (`SPARK_REMOTE`) or runs against a
master named by CDP_SPARK_MASTER (docs/engines.md).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import uuid
from pathlib import Path

import duckdb

from orchestration.settings import DBT_PROJECT_DIR, Settings, load_settings


def spark_dir(data_dir: Path) -> Path:
    return data_dir / "spark"


def session_conf(settings: Settings) -> dict[str, str]:
    """The session's settings. Static ones (master, warehouse, metastore, memory) only apply
    to the session that starts the JVM, which is why the session is started here and not by
    dbt-spark from profiles.yml."""
    root = spark_dir(settings.data_dir)
    return {
        "spark.master": settings.spark_master,
        "spark.app.name": "cdp",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        # the catalog (an embedded Derby database) and its log inside the data dir
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={root / 'metastore'};create=true"
        ),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={root}",
        "spark.local.dir": str(root / "tmp"),
        "spark.sql.session.timeZone": "UTC",
        # timestamps as Parquet's own type, so DuckDB reads them back as timestamptz
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        # few, adaptive shuffle partitions: the default 200 costs more than the work here
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }


def start_session():
    """The Spark session dbt-spark (`method: session`) will use, with the project's functions."""
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise SystemExit(
            "CDP_ENGINE=spark: Spark needs a Java runtime (17 or newer), and there is no `java` "
            "on the PATH and no JAVA_HOME; install one (Debian: openjdk-17-jre-headless) or "
            "run with CDP_ENGINE=duckdb"
        )
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # a local session needs no network
    from pyspark.sql import SparkSession

    settings = load_settings()
    (spark_dir(settings.data_dir) / "tmp").mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in session_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    # dbt reports a failing statement itself; PySpark would also print it as JSON
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    _register_functions(spark)
    _declare_salt(spark, settings.data_dir)
    _run_python_models_in_session()
    return spark


def _register_functions(spark) -> None:
    """cdp_phone_e164 / cdp_phone_problem, as on DuckDB: libphonenumber over whole batches."""
    from pyspark.sql.functions import pandas_udf

    spark.udf.register("cdp_phone_e164", pandas_udf(_phone_e164, "string"))
    spark.udf.register("cdp_phone_problem", pandas_udf(_phone_problem, "string"))


def _phone_e164(raws, regions):
    import pandas as pd

    from orchestration.defs.identity.phones import parse_phones

    parsed = parse_phones(_texts(raws), _texts(regions))
    return pd.Series([e164 for e164, _ in parsed], dtype=object)


def _phone_problem(raws, regions):
    import pandas as pd

    from orchestration.defs.identity.phones import parse_phones

    parsed = parse_phones(_texts(raws), _texts(regions))
    return pd.Series([problem for _, problem in parsed], dtype=object)


def _texts(series) -> list[str | None]:
    return [None if value is None or value != value else str(value) for value in series]


def _declare_salt(spark, data_dir: Path) -> None:
    """The erasure salt as the session variable the `erasure_hash` macro reads, so it never
    appears in SQL that dbt logs."""
    from orchestration.defs.privacy.erasure import privacy_salt

    salt = privacy_salt(data_dir).replace("\\", "\\\\").replace("'", "\\'")
    spark.sql(f"declare or replace variable cdp_privacy_salt string default '{salt}'")


class SessionPythonJob:
    """Runs a dbt Python model in this process's Spark session. dbt-spark submits Python
    models only to Databricks; the compiled code itself (the model, then dbt-spark's writer)
    needs nothing but a `spark` global."""

    def __init__(self, parsed_model: dict, credentials) -> None:
        self.name = parsed_model.get("unique_id", "python model")

    def submit(self, compiled_code: str):
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        exec(compile(compiled_code, self.name, "exec"), {"spark": spark})


def _run_python_models_in_session() -> None:
    from dbt.adapters.spark.impl import SparkAdapter

    helpers = dict(SparkAdapter.python_submission_helpers.fget(None), session=SessionPythonJob)
    SparkAdapter.python_submission_helpers = property(lambda self: helpers)
    SparkAdapter.default_python_submission_method = property(lambda self: "session")


def _source_tables() -> list[tuple[str, str]]:
    """(schema, table) of every dbt source, from the parsed project."""
    manifest = DBT_PROJECT_DIR / load_settings().dbt_target_path / "manifest.json"
    if not manifest.exists():
        raise RuntimeError(f"{manifest} is missing: run `cdp-dbt parse` first")
    sources = json.loads(manifest.read_text())["sources"].values()
    return sorted({(s["schema"], s["identifier"]) for s in sources})


def land_sources(spark, warehouse: Path, data_dir: Path) -> dict[str, int]:
    """Write each source table of `warehouse.duckdb` as Parquet and register it in Spark.

    Each file is named by its rows' count and latest load time (`_loaded_at`), which every
    load, upsert and erasure changes, so a file whose name matches is already current. A
    table loaded per GA4 export day (`_export_day`) lands one file per day, so a night
    rewrites only the days it loaded or erased from. Returns rows written per table."""
    root = spark_dir(data_dir) / "raw"
    landed: dict[str, int] = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        columns: dict[tuple[str, str], set[str]] = {}
        for schema, table, column in con.execute(
            "select schema_name, table_name, column_name from duckdb_columns()"
        ).fetchall():
            columns.setdefault((schema, table), set()).add(column)
        for schema, table in _source_tables():
            if (schema, table) not in columns:
                continue
            name, folder = f"{schema}.{table}", root / schema / table
            if "_export_day" in columns[(schema, table)]:
                landed[name] = _land_by_day(con, name, folder)
            else:
                loaded = "_loaded_at" in columns[(schema, table)]
                landed[name] = _land_whole(con, name, folder, loaded)
            spark.sql(f"create database if not exists {schema}")
            spark.sql(f"drop table if exists {schema}.{table}")
            spark.sql(
                f"create table {schema}.{table} using parquet location '{folder}' "
                "options (recursiveFileLookup 'true')"
            )
    return landed


def _land_whole(con: duckdb.DuckDBPyConnection, table: str, folder: Path, loaded: bool) -> int:
    """The table as one file, unless the file there is current (a table without load times
    is always rewritten: only the small ones lack them)."""
    rows, latest = con.execute(
        f"select count(*), {'epoch_us(max(_loaded_at))' if loaded else 'null'} from {table}"
    ).fetchone()
    file = f"{rows}-{latest}.parquet" if loaded else f"{uuid.uuid4().hex}.parquet"
    return _write(con, f"select * from {table}", folder, file, rows)


def _land_by_day(con: duckdb.DuckDBPyConnection, table: str, folder: Path) -> int:
    days = con.execute(
        f"select _export_day, count(*), epoch_us(max(_loaded_at)) from {table} group by all"
    ).fetchall()
    wanted = {f"day={day}": (day, rows, f"{rows}-{loaded}.parquet") for day, rows, loaded in days}
    folder.mkdir(parents=True, exist_ok=True)
    for stale in {p.name for p in folder.iterdir()} - set(wanted):
        _remove(folder / stale)  # a day no longer in raw (a full refresh, an erasure)
    return sum(
        _write(
            con,
            f"select * from {table} where _export_day = '{day.isoformat()}'",
            folder / name,
            file,
            rows,
        )
        for name, (day, rows, file) in wanted.items()
    )


def _write(con: duckdb.DuckDBPyConnection, query: str, folder: Path, file: str, rows: int) -> int:
    """`query` as `folder/file`, the only file left there; nothing to do if it is there
    already. Written under a temporary name first, so a crash never leaves a partial file
    under a current one's name. Returns the rows written."""
    folder.mkdir(parents=True, exist_ok=True)
    if [p.name for p in folder.iterdir()] == [file]:
        return 0
    partial = folder / f"{file}.partial"
    con.execute(f"copy ({query}) to '{partial}' (format parquet)")
    partial.rename(folder / file)
    for old in folder.iterdir():
        if old.name != file:
            _remove(old)
    return rows


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def mirror_built_tables(warehouse: Path, data_dir: Path) -> None:
    """A view in `warehouse.duckdb` on every table Spark built (its managed tables live in
    `<warehouse dir>/<schema>.db/<table>`), replacing what an earlier run left there."""
    built = spark_dir(data_dir) / "warehouse"
    with duckdb.connect(str(warehouse)) as con:
        tables = set(con.execute("select schema_name, table_name from duckdb_tables()").fetchall())
        for schema_dir in sorted(built.glob("*.db")):
            schema = schema_dir.name.removesuffix(".db")
            con.execute(f"create schema if not exists {schema}")
            for table_dir in sorted(p for p in schema_dir.iterdir() if p.is_dir()):
                files = table_dir / "**" / "*.parquet"
                if not any(table_dir.rglob("*.parquet")):
                    continue
                name = f"{schema}.{table_dir.name}"
                if (schema, table_dir.name) in tables:  # built by the DuckDB engine before
                    con.execute(f"drop table {name}")
                con.execute(
                    f"create or replace view {name} as select * from read_parquet('{files}')"
                )


def to_pandas(relation):
    """A dbt Python model's input as pandas: a DuckDB relation or a Spark DataFrame. DuckDB's
    through Arrow: its own conversion makes a Python object of every string first, 5 to 10
    times slower for millions of person keys."""
    if hasattr(relation, "toPandas"):
        return relation.toPandas()
    return relation.to_arrow_table().to_pandas()


def from_pandas(session, frame):
    """A dbt Python model's output: pandas for DuckDB, a Spark DataFrame for Spark (dbt-spark's
    own conversion goes through pandas-on-Spark, which changes dtypes)."""
    if hasattr(session, "createDataFrame"):
        return session.createDataFrame(frame)
    return frame
