"""Row-level rules (expectations/row_rules.yml): breaking rows move to quarantine."""

from __future__ import annotations

import functools
from pathlib import Path

import duckdb
import yaml

from orchestration.settings import REPO_ROOT
from orchestration.warehouse import scalar

RULES_PATH = REPO_ROOT / "expectations" / "row_rules.yml"


@functools.cache
def load_rules(path: Path = RULES_PATH) -> dict[str, dict[str, str]]:
    return yaml.safe_load(path.read_text()) or {}


def apply_row_rules(
    con: duckdb.DuckDBPyConnection, table: str, source: str, run_id: str, where: str = "true"
) -> int:
    """Quarantine and delete the rows of `table` (limited by `where`) that break a rule.

    A row breaking several rules is quarantined once, under the first rule it breaks, with
    every broken rule in the reason. Returns the number of rows moved."""
    rules = load_rules().get(table)
    if not rules:
        return 0
    broken = " or ".join(f"not coalesce({condition}, false)" for condition in rules.values())
    reason = " || ".join(
        f"case when not coalesce({condition}, false) then '{name}; ' else '' end"
        for name, condition in rules.items()
    )
    first = (
        "case "
        + " ".join(
            f"when not coalesce({condition}, false) then '{name}'"
            for name, condition in rules.items()
        )
        + " end"
    )
    rows = f"select * from {table} where ({where}) and ({broken})"
    if not scalar(con, f"select count(*) from ({rows})"):
        return 0
    con.execute(
        f"""
        insert into quarantine.rejected_rows
        select ?, ?, {first}, 'broke row rule(s): ' || rtrim({reason}, '; '),
               ?, now(), to_json(r)::varchar
        from ({rows}) as r
        """,
        [source, table, run_id],
    )
    return scalar(con, f"delete from {table} where ({where}) and ({broken})")
