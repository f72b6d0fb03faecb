"""Copy the shop's operational tables into `raw_shop` (docs/sources.md), incrementally.

Each table is read by its change cursor (`updated_at`, or `occurred_at` for the append-only
email events) from the newest value already loaded minus an overlap window, and merged into
the raw table on its primary key: an updated row replaces the old one, nothing is duplicated.
`order_items` has no cursor: the items of every order changed in the window are replaced.
Deletes in the source are only seen by a full refresh.

Rows travel as text and are cast by DuckDB, so a value that does not parse (an impossible
date, a word in a number column) quarantines its row instead of failing the table. On
Postgres the rows are streamed with `COPY … TO STDOUT` (CSV); any other SQLAlchemy database
is read in batches through the driver.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import sqlalchemy as sa

from orchestration.errors import (
    SourceError,
    TransientSourceError,
    retry_transient,
    source_timeout,
)
from orchestration.row_rules import apply_row_rules
from orchestration.warehouse import LoadStats, quarantine, quote_ident, scalar

SOURCE = "shop"


@dataclass(frozen=True)
class TableSpec:
    primary_key: tuple[str, ...]
    cursor: str | None  # None: follows the cursor of `parent`
    parent: str | None = None


# Children are read by lists of their parents' keys, at most this many per query (a database
# caps the parameters of one statement: SQLite at 32,766).
KEYS_PER_QUERY = 30_000

TABLES: dict[str, TableSpec] = {
    "customers": TableSpec(("customer_id",), "updated_at"),
    "products": TableSpec(("product_id",), "updated_at"),
    "orders": TableSpec(("order_id",), "updated_at"),
    "order_items": TableSpec(("order_id", "line_no"), None, parent="orders"),
    "email_events": TableSpec(("event_id",), "occurred_at"),
}
# The documented columns (docs/sources.md) and the type family each must land as. A missing or
# retyped one blocks the load (schema drift); columns beyond these are loaded and reported.
REQUIRED_COLUMNS: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": "BIGINT",
        "email": "VARCHAR",
        "phone": "VARCHAR",
        "first_name": "VARCHAR",
        "last_name": "VARCHAR",
        "birth_date": "DATE",
        "gender": "VARCHAR",
        "city": "VARCHAR",
        "country": "VARCHAR",
        "company_name": "VARCHAR",
        "marketing_consent": "BOOLEAN",
        "created_at": "TIMESTAMPTZ",
        "updated_at": "TIMESTAMPTZ",
    },
    "products": {
        "product_id": "BIGINT",
        "sku": "VARCHAR",
        "name": "VARCHAR",
        "category": "VARCHAR",
        "price": "DECIMAL",
        "updated_at": "TIMESTAMPTZ",
    },
    "orders": {
        "order_id": "BIGINT",
        "customer_id": "BIGINT",
        "email": "VARCHAR",
        "phone": "VARCHAR",
        "ship_country": "VARCHAR",
        "status": "VARCHAR",
        "channel": "VARCHAR",
        "is_gift": "BOOLEAN",
        "total_amount": "DECIMAL",
        "currency": "VARCHAR",
        "ordered_at": "TIMESTAMPTZ",
        "updated_at": "TIMESTAMPTZ",
    },
    "order_items": {
        "order_id": "BIGINT",
        "line_no": "BIGINT",
        "product_id": "BIGINT",
        "quantity": "BIGINT",
        "unit_price": "DECIMAL",
    },
    "email_events": {
        "event_id": "BIGINT",
        "email": "VARCHAR",
        "campaign_id": "VARCHAR",
        "variant": "VARCHAR",
        "event_type": "VARCHAR",
        "occurred_at": "TIMESTAMPTZ",
    },
}
_TERMINAL_HINTS = (
    "authentication failed",
    "does not exist",
    "no password supplied",
    "permission denied",
    "role ",
)


def duckdb_type(column: sa.Column) -> str:
    """Map a reflected column to the DuckDB type it lands as (timestamps become UTC)."""
    t = column.type
    if isinstance(t, sa.Boolean):
        return "BOOLEAN"
    if isinstance(t, sa.Integer):
        return "BIGINT"
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float):
        precision, scale = t.precision or 38, t.scale if t.scale is not None else 6
        return f"DECIMAL({min(precision, 38)},{scale})"
    if isinstance(t, sa.Float):
        return "DOUBLE"
    if isinstance(t, sa.DateTime):
        return "TIMESTAMPTZ"
    if isinstance(t, sa.Date):
        return "DATE"
    return "VARCHAR"


class ShopSource:
    """One SQLAlchemy database holding the shop tables.

    On Postgres, a connection attempt gives up after `CONNECT_TIMEOUT_SECONDS` and a statement
    after `timeout` (default CDP_SOURCE_TIMEOUT_SECONDS), unless the URL sets its own limits:
    a database that hangs must not hold the night's run."""

    CONNECT_TIMEOUT_SECONDS = 10
    # Faults retrying cannot fix, with what to do about them; anything else from the connection
    # (reset, connect timeout) is transient.
    _TERMINAL = (
        (
            ("connection refused", "failed to resolve host", "could not translate host name"),
            "check the host and port in CDP_SHOP_DB_URL and that the database runs there",
        ),
        (
            ("statement timeout",),
            "raise CDP_SOURCE_TIMEOUT_SECONDS if the query is just slow, or check the database",
        ),
        (_TERMINAL_HINTS, "check CDP_SHOP_DB_URL (host, database, user, password)"),
    )

    def __init__(self, url: str, schema: str | None = None, timeout: float | None = None):
        try:
            parsed = sa.engine.make_url(url)
            self.engine = sa.create_engine(
                parsed,
                pool_pre_ping=True,
                connect_args=self._limits(parsed, source_timeout() if timeout is None else timeout),
            )
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError, ValueError) as exc:
            raise SourceError(
                SOURCE,
                "CDP_SHOP_DB_URL",
                f"not a usable SQLAlchemy URL ({exc})",
                "use e.g. postgresql+psycopg://user@host:5432/shop",
            ) from exc
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self.schema = schema if self.is_postgres or schema else None
        if self.is_postgres and not self.schema:
            self.schema = "shop"

    @classmethod
    def _limits(cls, url: sa.URL, timeout: float) -> dict:
        """libpq's connect_timeout and statement_timeout, for the drivers built on libpq."""
        if url.get_backend_name() != "postgresql" or url.get_driver_name() not in (
            "psycopg",
            "psycopg2",
        ):
            return {}
        limits: dict = {}
        if "connect_timeout" not in url.query:
            limits["connect_timeout"] = max(2, round(min(cls.CONNECT_TIMEOUT_SECONDS, timeout)))
        # Options in the URL come after ours, so their own statement_timeout wins.
        options = url.query.get("options") or ""
        if not isinstance(options, str):
            options = " ".join(options)
        limits["options"] = f"-c statement_timeout={round(timeout * 1000)} {options}".strip()
        return limits

    def describe(self, table: str) -> str:
        return f"{self.schema}.{table}" if self.schema else table

    def _wrap(self, table: str, exc: Exception) -> Exception:
        message = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if isinstance(exc, sa.exc.NoSuchTableError):
            return SourceError(
                SOURCE,
                self.describe(table),
                "table not found",
                "check CDP_SHOP_DB_URL and CDP_SHOP_DB_SCHEMA",
            )
        if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
            for hints, fix in self._TERMINAL:
                if any(hint in message.lower() for hint in hints):
                    return SourceError(SOURCE, self.describe(table), message, fix)
            return TransientSourceError(
                SOURCE,
                self.describe(table),
                message,
                "check that the database in CDP_SHOP_DB_URL is up and reachable",
            )
        return SourceError(
            SOURCE,
            self.describe(table),
            message,
            "check CDP_SHOP_DB_URL (host, database, user, password)",
        )

    def keys(self, table: sa.Table, column: str, where: sa.ColumnElement) -> list:
        """The values of `column` in the rows of `table` that match `where`."""
        try:
            with self.engine.connect() as conn:
                return [row[0] for row in conn.execute(sa.select(table.c[column]).where(where))]
        except sa.exc.SQLAlchemyError as exc:
            raise self._wrap(table.name, exc) from exc

    def reflect(self, table: str) -> sa.Table:
        try:
            return sa.Table(table, sa.MetaData(schema=self.schema), autoload_with=self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise self._wrap(table, exc) from exc

    def fetch_text(
        self, table: sa.Table, where: sa.ColumnElement | list[sa.ColumnElement] | None, path: str
    ) -> int:
        """Write the selected rows as CSV (all text) to `path`; return the row count. A list
        of conditions selects disjoint parts, read one after another into the same file."""
        parts = where if isinstance(where, list) else [where]
        try:
            if os.path.exists(path):
                os.remove(path)
            fetch = self._copy_postgres if self.is_postgres else self._fetch_generic
            return sum(fetch(table, part, path) for part in parts)
        except sa.exc.SQLAlchemyError as exc:
            raise self._wrap(table.name, exc) from exc
        except Exception as exc:  # psycopg errors raised inside COPY
            import psycopg

            if isinstance(exc, psycopg.OperationalError):
                raise self._wrap(table.name, sa.exc.OperationalError("COPY", {}, exc)) from exc
            raise

    def _copy_postgres(self, table: sa.Table, where, path: str) -> int:
        query = sa.select(*table.columns)
        if where is not None:
            query = query.where(where)
        sql = str(query.compile(self.engine, compile_kwargs={"literal_binds": True}))
        raw = self.engine.raw_connection()
        try:
            cursor = raw.driver_connection.cursor()
            cursor.execute("set time zone 'UTC'")
            rows = 0
            with (
                open(path, "ab") as out,
                cursor.copy(f"copy ({sql}) to stdout (format csv)") as copy,
            ):
                for chunk in copy:
                    out.write(chunk)
            rows = cursor.rowcount
            raw.driver_connection.rollback()
            return rows
        finally:
            raw.close()

    def _fetch_generic(self, table: sa.Table, where, path: str, batch: int = 50_000) -> int:
        import pyarrow.csv as pacsv

        query = sa.select(*[sa.cast(c, sa.Text).label(c.name) for c in table.columns])
        if where is not None:
            query = query.where(where)
        names = [c.name for c in table.columns]
        schema = pa.schema([(n, pa.string()) for n in names])
        rows = 0
        with (
            self.engine.connect().execution_options(stream_results=True) as conn,
            open(path, "ab") as out,
        ):
            writer = pacsv.CSVWriter(
                out,
                schema,
                write_options=pacsv.WriteOptions(include_header=False, quoting_style="all_valid"),
            )
            for part in conn.execute(query).partitions(batch):
                columns = list(zip(*part, strict=True)) if part else [[] for _ in names]
                writer.write_table(
                    pa.table([pa.array(col, pa.string()) for col in columns], schema=schema)
                )
                rows += len(part)
            writer.close()
        return rows


def check_schema(source: ShopSource, name: str, types: dict[str, str]) -> list[str]:
    """Block on a missing or retyped contract column; return the columns beyond the contract."""
    expected = REQUIRED_COLUMNS[name]
    missing = [c for c in expected if c not in types]
    retyped = [
        f"{c} is {types[c]}, expected {kind}"
        for c, kind in expected.items()
        if c in types and not types[c].startswith(kind)
    ]
    if missing or retyped:
        problems = ([f"required column(s) missing: {', '.join(missing)}"] if missing else []) + (
            [f"column(s) retyped: {'; '.join(retyped)}"] if retyped else []
        )
        raise SourceError(
            SOURCE,
            source.describe(name),
            "schema drift, " + "; ".join(problems),
            "restore the column(s) and type(s) listed in docs/sources.md (shop database)",
        )
    return [c for c in types if c not in expected]


def _watermarks(
    con: duckdb.DuckDBPyConnection, clock: dt.datetime
) -> dict[str, dt.datetime | None]:
    """The newest cursor value already loaded, per table (None: table not loaded yet), never
    later than `clock`: a change stamped in the future (a wrong server clock, a typo such as
    9999-12-31) must not become the point from which the next runs read, or every real
    change after it would be skipped."""
    marks = {}
    for name, spec in TABLES.items():
        column = spec.cursor or TABLES[spec.parent].cursor
        source_table = spec.parent or name
        exists = scalar(
            con,
            "select count(*) from information_schema.tables "
            "where table_schema = 'raw_shop' and table_name = ?",
            [source_table],
        )
        newest = (
            scalar(con, f"select max({column}) from raw_shop.{source_table}") if exists else None
        )
        marks[name] = min(newest, clock) if newest is not None else None
    return marks


def tables_with_news(con: duckdb.DuckDBPyConnection, source: ShopSource) -> dict[str, str]:
    """The tables whose source holds a change past what is loaded (a child table with its
    parent), with the newest change, from one `max()` per table; changes stamped in the
    future are left to the extract, which quarantines them."""
    now = dt.datetime.now(dt.UTC)
    marks = _watermarks(con, now)
    news = {}
    with source.engine.connect() as conn:
        for name, spec in TABLES.items():
            if spec.parent:
                continue
            table = source.reflect(name)
            newest = conn.execute(
                sa.select(sa.func.max(table.c[spec.cursor])).where(table.c[spec.cursor] <= now)
            ).scalar()
            if isinstance(newest, str):  # SQLite keeps timestamps as text
                newest = dt.datetime.fromisoformat(newest)
            if newest is not None and newest.tzinfo is None:
                newest = newest.replace(tzinfo=dt.UTC)
            if newest is not None and (marks[name] is None or newest > marks[name]):
                for table in [name] + [n for n, s in TABLES.items() if s.parent == name]:
                    news[table] = newest.isoformat()
    return news


def extract_table(
    con: duckdb.DuckDBPyConnection,
    source: ShopSource,
    name: str,
    watermark: dt.datetime | None,
    run_id: str,
    *,
    overlap: dt.timedelta,
) -> dict:
    spec = TABLES[name]
    table = source.reflect(name)
    missing = [c for c in spec.primary_key if c not in table.columns]
    if missing:
        raise SourceError(
            SOURCE,
            source.describe(name),
            f"primary key column(s) {missing} missing",
            "the shop tables must have the columns listed in docs/sources.md (shop database)",
        )
    since = watermark - overlap if watermark is not None else None
    where, changed_parents = None, None
    if since is not None:
        if spec.parent:
            # the changed parents are read once: their children are fetched by this list and
            # replaced by the same list, so a parent changing in between cannot lose its
            # children; and a list of keys lets the source use its primary-key index
            parent = source.reflect(spec.parent)
            changed_parents = retry_transient()(source.keys)(
                parent, spec.primary_key[0], parent.c[TABLES[spec.parent].cursor] >= since
            )
            key = table.c[spec.primary_key[0]]
            where = [
                key.in_(changed_parents[start : start + KEYS_PER_QUERY])
                for start in range(0, len(changed_parents), KEYS_PER_QUERY)
            ] or [key.in_([])]
        else:
            where = table.c[spec.cursor] >= since
    types = {c.name: duckdb_type(c) for c in table.columns}
    added = check_schema(source, name, types)

    @retry_transient()
    def fetch(path: str) -> int:
        return source.fetch_text(table, where, path)

    with tempfile.TemporaryDirectory(prefix="cdp-shop-") as tmp:
        path = os.path.join(tmp, f"{name}.csv")
        rows_read = fetch(path)
        text_columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in types) + "}"
        con.execute(
            f"create or replace temp table _shop_text as select * from read_csv('{path}', "
            f"columns={text_columns}, header=false, quote='\"', escape='\"', "
            f"allow_quoted_nulls=false, auto_detect=false)"
        )
    stats = _merge(
        con,
        name,
        spec,
        types,
        run_id,
        rows_read,
        full=since is None,
        changed_parents=changed_parents,
        source=source,
        unique_in_source=[c.name for c in table.primary_key.columns] == list(spec.primary_key),
    )
    return {
        "stats": stats,
        "columns_added": added,
        "mode": "full" if since is None else "incremental",
        "since": since.isoformat() if since else None,
    }


def _merge(
    con, name, spec, types, run_id, rows_read, *, full, changed_parents, source, unique_in_source
) -> LoadStats:
    target = f"raw_shop.{name}"
    pk = ", ".join(quote_ident(c) for c in spec.primary_key)
    bad_cast = [
        f"({quote_ident(c)} is not null and try_cast({quote_ident(c)} as {t}) is null)"
        for c, t in types.items()
        if t != "VARCHAR"
    ]
    null_pk = [f"{quote_ident(c)} is null" for c in spec.primary_key]
    invalid = " or ".join(bad_cast + null_pk) or "false"
    reason = " || ".join(
        [
            f"case when {quote_ident(c)} is not null and try_cast({quote_ident(c)} as {t}) "
            f"is null then '{c} is not a valid {t}: ' || {quote_ident(c)} || '; ' else '' end"
            for c, t in types.items()
            if t != "VARCHAR"
        ]
        + [
            f"case when {quote_ident(c)} is null then '{c} (primary key) is null; ' else '' end"
            for c in spec.primary_key
        ]
    )
    cursor = spec.cursor and quote_ident(spec.cursor)
    con.execute("begin transaction")
    try:
        quarantined = quarantine(
            con,
            source=SOURCE,
            table_name=target,
            rule="values_parse",
            run_id=run_id,
            reason_sql=f"rtrim({reason}, '; ') || ' (' || ? || ')'",
            rows_sql=f"select * from _shop_text where {invalid}",
            params=[source.describe(name)],
        )
        casts = ", ".join(
            f"cast({quote_ident(c)} as {t}) as {quote_ident(c)}" for c, t in types.items()
        )
        typed = f"select {casts}, now() as _loaded_at from _shop_text where not ({invalid})"
        if unique_in_source:  # the source enforces the key: no duplicates to look for
            con.execute(f"create or replace temp view _shop_new as {typed}")
        else:
            order = f"{cursor} desc" if cursor else "1"
            con.execute(f"create or replace temp table _shop_typed as {typed}")
            quarantined += quarantine(
                con,
                source=SOURCE,
                table_name=target,
                rule="unique_primary_key",
                run_id=run_id,
                reason_sql="'duplicate primary key in source, kept the newest (' || ? || ')'",
                rows_sql=f"select * from _shop_typed qualify row_number() over "
                f"(partition by {pk} order by {order}) > 1",
                params=[source.describe(name)],
            )
            con.execute(
                f"create or replace temp view _shop_new as select * from _shop_typed "
                f"qualify row_number() over (partition by {pk} order by {order}) = 1"
            )
        columns = ", ".join(f"{quote_ident(c)} {t}" for c, t in types.items())
        con.execute("create schema if not exists raw_shop")
        con.execute(f"create table if not exists {target} ({columns}, _loaded_at TIMESTAMPTZ)")
        existing = {
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'raw_shop' and table_name = ?",
                [name],
            ).fetchall()
        }
        for column, kind in types.items():  # a column added in the source is added here
            if column not in existing:
                con.execute(f"alter table {target} add column {quote_ident(column)} {kind}")
        # A row read again as it is already loaded (the overlap window re-reads the last
        # hours) keeps its _loaded_at: it is not news, and nothing downstream rebuilds for it.
        same = ", ".join(quote_ident(c) for c in types)
        unchanged = 0
        if full:
            con.execute(f"delete from {target}")
            news = "_shop_new"
        elif spec.parent:
            parent_key = quote_ident(spec.primary_key[0])
            # one list parameter: executemany would run one insert per key
            con.execute(
                "create or replace temp table _shop_parents as select unnest(?::BIGINT[]) as k",
                [changed_parents],
            )
            # a parent whose children differ in any way (added, changed, removed) has them
            # replaced as a whole; the others keep theirs
            old = f"select {same} from {target} where {parent_key} in (select k from _shop_parents)"
            con.execute(
                f"""create or replace temp table _shop_parents as
                select distinct {parent_key} as k from (
                    (select {same} from _shop_new except {old})
                    union all ({old} except select {same} from _shop_new))"""
            )
            con.execute(f"delete from {target} where {parent_key} in (select k from _shop_parents)")
            news = f"(select * from _shop_new where {parent_key} in (select k from _shop_parents))"
        else:
            con.execute(
                "create or replace temp table _shop_changed as select * from _shop_new where "
                f"({pk}) in (select {pk} from "
                f"(select {same} from _shop_new except select {same} from {target} "
                f"where ({pk}) in (select {pk} from _shop_new)))"
            )
            con.execute(f"delete from {target} where ({pk}) in (select {pk} from _shop_changed)")
            news = "_shop_changed"
        loaded = scalar(con, f"insert into {target} by name select * from {news}")
        if not full:
            unchanged = scalar(con, "select count(*) from _shop_new") - loaded
        # the rows just merged carry this transaction's now() as _loaded_at
        moved = apply_row_rules(con, target, SOURCE, run_id, where="_loaded_at = now()")
        loaded, quarantined = loaded - moved, quarantined + moved
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    stats = LoadStats(rows_read, loaded, quarantined, unchanged)
    return stats.check(f"shop table {source.describe(name)}")


def extract_all(
    con: duckdb.DuckDBPyConnection,
    source: ShopSource,
    tables: list[str],
    run_id: str,
    *,
    full_refresh: bool = False,
    overlap: dt.timedelta = dt.timedelta(hours=2),
    log=None,
) -> dict[str, dict]:
    marks = {} if full_refresh else _watermarks(con, dt.datetime.now(dt.UTC))
    results = {}
    for name in tables:  # parents before children: watermarks were taken before any load
        results[name] = extract_table(con, source, name, marks.get(name), run_id, overlap=overlap)
        if log:
            s = results[name]["stats"]
            log.info(
                f"{source.describe(name)}: {results[name]['mode']}, {s.rows_read} read, "
                f"{s.rows_loaded} loaded, {s.rows_quarantined} quarantined"
            )
    return results
