"""Phone normalization (phones.py) as DuckDB functions, and the plugin that gives dbt them.

Registered by the dbt-duckdb plugin below, so staging models call `cdp_phone_e164(raw, region)`
and `cdp_phone_problem(raw, region)` like built-ins. The functions take DuckDB's vectors as
Arrow arrays, so each call sees a whole chunk and its distinct new numbers are parsed at once.
"""

from __future__ import annotations

import pyarrow as pa
from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection
from duckdb.sqltypes import VARCHAR

from orchestration.defs.identity.phones import parse_phones


def phone_e164(raws: pa.Array, regions: pa.Array) -> pa.Array:
    parsed = parse_phones(raws.to_pylist(), regions.to_pylist())
    return pa.array([e164 for e164, _ in parsed], pa.string())


def phone_problem(raws: pa.Array, regions: pa.Array) -> pa.Array:
    parsed = parse_phones(raws.to_pylist(), regions.to_pylist())
    return pa.array([problem for _, problem in parsed], pa.string())


def register(con: DuckDBPyConnection) -> None:
    for name, fn in (("cdp_phone_e164", phone_e164), ("cdp_phone_problem", phone_problem)):
        con.create_function(
            name,
            fn,
            [VARCHAR, VARCHAR],
            VARCHAR,
            type="arrow",
            null_handling="special",
            side_effects=False,
        )


class Plugin(BasePlugin):
    """dbt-duckdb plugin (`profiles.yml` → `plugins`): adds the functions to dbt's connection,
    and the erasure salt as the variable `cdp_privacy_salt`, so models can hash identifiers
    as erasure does (macro `erasure_hash`) without the salt appearing in any SQL dbt logs."""

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        from orchestration.defs.privacy.erasure import privacy_salt
        from orchestration.settings import load_settings

        register(conn)
        self.salt = privacy_salt(load_settings().data_dir).replace("'", "''")

    def configure_cursor(self, cursor) -> None:
        # variables belong to a cursor; the functions carry over from the connection
        cursor.execute(f"set variable cdp_privacy_salt = '{self.salt}'")
