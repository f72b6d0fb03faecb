"""Row-level rules (expectations/row_rules.yml): breaking rows move to quarantine."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from orchestration.accepted import with_accepted_values
from orchestration.settings import REPO_ROOT
from orchestration.warehouse import scalar

RULES_PATH = REPO_ROOT / "expectations" / "row_rules.yml"


@functools.cache
def load_rules(path: Path = RULES_PATH) -> dict[str, dict[str, str]]:
    tables = yaml.safe_load(path.read_text()) or {}
    return {
        table: {name: with_accepted_values(condition) for name, condition in rules.items()}
        for table, rules in tables.items()
    }


@dataclass(frozen=True)
class RuleSql:
    """A table's rules as SQL over its columns."""

    broken: str  # true when a row breaks any rule
    first: str  # the name of the first rule the row breaks
    reason: str  # 'broke row rule(s): a; b'


def rule_sql(table: str) -> RuleSql | None:
    rules = load_rules().get(table)
    if not rules:
        return None
    broken = " or ".join(f"not coalesce({condition}, false)" for condition in rules.values())
    names = " || ".join(
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
    return RuleSql(broken, first, f"'broke row rule(s): ' || rtrim({names}, '; ')")


def apply_row_rules(
    con: duckdb.DuckDBPyConnection, table: str, source: str, run_id: str, where: str = "true"
) -> int:
    """Quarantine and delete the rows of `table` (limited by `where`) that break a rule.

    A row breaking several rules is quarantined once, under the first rule it breaks, with
    every broken rule in the reason. Returns the number of rows moved."""
    sql = rule_sql(table)
    if sql is None:
        return 0
    rows = f"select * from {table} where ({where}) and ({sql.broken})"
    if not scalar(con, f"select count(*) from ({rows})"):
        return 0
    con.execute(
        f"""
        insert into quarantine.rejected_rows
        select ?, ?, {sql.first}, {sql.reason}, ?, now(), to_json(r)::varchar
        from ({rows}) as r
        """,
        [source, table, run_id],
    )
    return scalar(con, f"delete from {table} where ({where}) and ({sql.broken})")
