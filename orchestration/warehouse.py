"""The build warehouse (`warehouse.duckdb`): connections, quarantine and row accounting."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import tenacity

from orchestration.errors import SourceError
from orchestration.settings import load_settings

QUARANTINE_DDL = """
create schema if not exists quarantine;
create table if not exists quarantine.rejected_rows (
    source varchar not null,
    table_name varchar not null,
    rule varchar not null,
    reason varchar not null,
    run_id varchar not null,
    rejected_at timestamptz not null,
    record varchar not null
);
"""


def _is_lock_conflict(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


@tenacity.retry(
    retry=tenacity.retry_if_exception(_is_lock_conflict),
    wait=tenacity.wait_random_exponential(multiplier=0.5, max=10),
    stop=tenacity.stop_after_delay(600),
    reraise=True,
)
def _open(path: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB allows one writing process: wait for another step (or dbt) to let go."""
    return duckdb.connect(str(path))


def memory_limit() -> str:
    """DuckDB's cap for the pipeline and for dbt (profiles.yml reads the same setting)."""
    return load_settings().duckdb_memory_limit


def spill_directory(data_dir: Path) -> Path:
    """Where DuckDB spills what exceeds its cap (dbt's profiles.yml names the same folder)."""
    return data_dir / "tmp"


class OutOfMemory(SourceError):
    """DuckDB hit its cap in an operation it cannot spill: the setting, not the data, is at
    fault, and retrying changes nothing."""

    def __init__(self, exc: duckdb.OutOfMemoryException):
        super().__init__(
            "warehouse",
            f"CDP_DUCKDB_MEMORY_LIMIT={memory_limit()}",
            f"DuckDB ran out of memory ({str(exc).splitlines()[0]})",
            "raise CDP_DUCKDB_MEMORY_LIMIT (a size such as 2GB or a share of RAM such as "
            "60%); beyond the cap DuckDB spills to disk, but reading a file needs its buffers "
            "in memory",
        )


@contextlib.contextmanager
def connect(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(path)
    try:
        # UTC for text timestamps without an offset; raw tables keep no row order, which
        # lets DuckDB insert in parallel.
        con.execute("set TimeZone = 'UTC'; set preserve_insertion_order = false")
        # as dbt's (profiles.yml): no vacuum at checkpoints, compact_fragmented_tables instead
        con.execute("set max_vacuum_tasks = 0")
        # the same cap as dbt's (profiles.yml): spill to disk rather than be OOM-killed
        con.execute("set memory_limit = ?", [memory_limit()])
        con.execute("set temp_directory = ?", [str(spill_directory(path.parent))])
        con.execute(QUARANTINE_DDL)
        yield con
    except duckdb.OutOfMemoryException as exc:
        raise OutOfMemory(exc) from exc
    finally:
        con.close()


def quarantine(
    con: duckdb.DuckDBPyConnection,
    *,
    source: str,
    table_name: str,
    rule: str,
    reason_sql: str,
    rows_sql: str,
    run_id: str,
    params: list | None = None,
) -> int:
    """Copy the rows of `rows_sql` to quarantine.rejected_rows; `reason_sql` is evaluated per row.

    `record` keeps the whole original row as JSON text so nothing is lost and a fix can be
    replayed. Returns the number of rows quarantined.
    """
    return scalar(
        con,
        f"""
        insert into quarantine.rejected_rows
        select ?, ?, ?, {reason_sql}, ?, now(), to_json(r)::varchar
        from ({rows_sql}) as r
        """,
        [source, table_name, rule, *(params or []), run_id],
    )


@dataclass
class LoadStats:
    """Rows read = rows loaded + rows quarantined + rows unchanged (read again exactly as
    they are already loaded), for one table of one run."""

    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_unchanged: int = 0

    def __add__(self, other: LoadStats) -> LoadStats:
        return LoadStats(
            self.rows_read + other.rows_read,
            self.rows_loaded + other.rows_loaded,
            self.rows_quarantined + other.rows_quarantined,
            self.rows_unchanged + other.rows_unchanged,
        )

    def check(self, what: str) -> LoadStats:
        if self.rows_read != self.rows_loaded + self.rows_quarantined + self.rows_unchanged:
            raise RuntimeError(
                f"{what}: read {self.rows_read} rows but loaded {self.rows_loaded}, "
                f"quarantined {self.rows_quarantined} and found {self.rows_unchanged} "
                "unchanged; refusing to lose rows silently"
            )
        return self

    def as_metadata(self) -> dict[str, int]:
        return {
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "rows_unchanged": self.rows_unchanged,
        }


def replace_durably(new: Path, target: Path) -> None:
    """Flush `new` to disk and rename it over `target`, so a reader or a crash sees the old
    file or the new one, whole."""
    with open(new, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(new, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def quote_ident(name: str) -> str:
    """A column or table name as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """The single value of a query, with the result fully consumed (DuckDB 2 refuses some work
    on a connection while a result is still open)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def table_row_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return scalar(con, f"select count(*) from {table}")


def compact_fragmented_tables(
    con: duckdb.DuckDBPyConnection, min_rows: int = 100_000
) -> dict[str, int]:
    """Write again every table of at least `min_rows` stored rows that stores more deleted
    rows than live ones; returns the deleted rows dropped, by table.

    Neither dbt nor the pipeline lets DuckDB vacuum at its checkpoints (profiles.yml and
    `connect`: max_vacuum_tasks 0). A night replaces a tenth of the rows of the tables kept per
    person, scattered over all of them, and the vacuum then merges the rows left beside the
    deleted ones, which rewrites the whole table: a checkpoint of 5.4 s instead of 0.5 s for
    the profiles of a million persons (docs/benchmarks.md). Without it a deleted row stays
    stored (a row group deleted whole is still dropped) until this rewrites the table: every
    twenty nights or so for those tables at the benchmark's pace. In place, in one transaction,
    so the table keeps its definition."""
    tables = con.execute(
        "select schema_name, table_name, estimated_size from duckdb_tables() "
        "where database_name = current_database() and not temporary and estimated_size >= ? "
        "order by schema_name, table_name",
        [min_rows],
    ).fetchall()
    dropped = {}
    for schema, table, stored in tables:
        name = f"{quote_ident(schema)}.{quote_ident(table)}"
        live = table_row_count(con, name)
        if stored <= 2 * live:
            continue
        con.execute("begin transaction")
        con.execute(f"create temp table _compacting as select * from {name}")
        con.execute(f"delete from {name}")
        con.execute(f"insert into {name} select * from _compacting")
        con.execute("drop table _compacting")
        con.execute("commit")
        dropped[f"{schema}.{table}"] = stored - live
    return dropped
