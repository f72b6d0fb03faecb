"""`docs/marts.md`, written from the marts' dbt YAML so the reference cannot drift from the
models: `python -m orchestration.reference` rewrites it, a test checks it is current."""

from __future__ import annotations

import re
import sys

import yaml

from orchestration.defs.dbt.marts import PUBLISHED_MARTS
from orchestration.settings import DBT_PROJECT_DIR, REPO_ROOT

# one YAML per folder of marts: customers/_customers__models.yml, campaigns/...
MARTS_YAMLS = sorted((DBT_PROJECT_DIR / "models" / "marts").glob("*/_*__models.yml"))
MARTS_DOC = REPO_ROOT / "docs" / "marts.md"


def _tests(column: dict) -> str:
    names = []
    for test in column.get("data_tests") or []:
        if isinstance(test, str):
            names.append(test.replace("_", " "))
        else:
            (name, spec), *_ = test.items()
            values = ((spec or {}).get("arguments") or {}).get("values")
            names.append(f"one of {', '.join(map(str, values))}" if values else name)
    return "; ".join(names)


def _cell(text) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def render_marts() -> str:
    models = {
        m["name"]: m for path in MARTS_YAMLS for m in yaml.safe_load(path.read_text())["models"]
    }
    sources = ", ".join(f"`{path.relative_to(REPO_ROOT)}`" for path in MARTS_YAMLS)
    lines = [
        "# Published marts",
        "",
        "<!-- Written by `python -m orchestration.reference` from "
        f"{sources}; edit the YAML, not this file. -->",
        "",
        "After every run whose blocking checks all passed, these tables are copied into a new "
        "file that replaces `$CDP_DATA_DIR/marts.duckdb` atomically (schema `main`), written "
        "in DuckDB 1.4's storage format. BI tools open it read-only. Column types are enforced "
        "by dbt contracts: a change fails the build instead of surprising a dashboard. With "
        "`CDP_PUBLISH_PII=off`, `email` and `phone` (and the email and phone values of "
        "`customer_identities`) hold salted SHA-256 hashes, and `first_name`, `last_name` and "
        "`birth_date` are null.",
        "",
    ]
    for name in PUBLISHED_MARTS:
        model = models[name]
        lines += [f"## `{name}`", "", _cell(model.get("description")), ""]
        lines += ["| column | type | description | tested |", "|---|---|---|---|"]
        for column in model.get("columns", []):
            lines.append(
                f"| `{column['name']}` | {_cell(column.get('data_type'))} | "
                f"{_cell(column.get('description'))} | {_cell(_tests(column))} |"
            )
        lines.append("")
    return "\n".join(lines + _run_quality())


def _run_quality() -> list[str]:
    """The table the publication writes itself, not a dbt model: documented from its DDL."""
    from orchestration.defs.publish.assets import RUN_QUALITY_DDL, RUN_QUALITY_DOC

    types = dict(re.findall(r"^\s+(\w+) (\w+)", RUN_QUALITY_DDL, flags=re.M))
    lines = [
        "## `run_quality`",
        "",
        "Written by the publication (`orchestration/defs/publish/assets.py`), not by dbt: the "
        "publishing run's checks, the quarantine by table and rule (counts only) and the "
        "freshness of every raw source table, for the dashboard's data quality page.",
        "",
        "| column | type | description | tested |",
        "|---|---|---|---|",
    ]
    for column, description in RUN_QUALITY_DOC.items():
        lines.append(f"| `{column}` | {types[column]} | {_cell(description)} |  |")
    lines.append("")
    return lines


def main() -> int:
    MARTS_DOC.write_text(render_marts())
    print(f"wrote {MARTS_DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
