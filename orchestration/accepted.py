"""Accepted values of source columns, defined once: the var `accepted_values` in
`dbt_project/dbt_project.yml`. dbt's tests read the var itself; the row rules
(`{order_status}` in expectations/row_rules.yml) and the Great Expectations suites
(expectations/build_suites.py) read it from here."""

from __future__ import annotations

import functools
import re

import yaml

from orchestration.settings import DBT_PROJECT_DIR


@functools.cache
def dbt_vars() -> dict:
    """The business thresholds of `dbt_project.yml`, for the Python checks that state them."""
    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]


def accepted_values() -> dict[str, list[str]]:
    return dbt_vars()["accepted_values"]


def with_accepted_values(condition: str) -> str:
    """`{name}` in a SQL condition becomes the list of accepted values as SQL: ('a', 'b')."""

    def sql_list(match: re.Match) -> str:
        values = accepted_values()[match.group(1)]
        return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"

    return re.sub(r"\{(\w+)\}", sql_list, condition)
