"""Load the demo shop tables (`seeds/shop/*.csv`) into a database: SQLite for the default run,
Postgres in tests. The DDL is `seeds/shop/schema.sql`, the contract's schema."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import sqlalchemy as sa

from orchestration.defs.shop.extract import TABLES
from orchestration.settings import SEEDS_DIR

SHOP_SEEDS = SEEDS_DIR / "shop"


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def load_shop_seeds(engine: sa.Engine, schema: str | None = None, seeds: Path = SHOP_SEEDS) -> None:
    """Create the shop tables (dropping old ones) and load the seed CSVs."""
    ddl = (seeds / "schema.sql").read_text()
    if engine.dialect.name == "sqlite":
        ddl = ddl.replace("timestamptz", "timestamp")
    prefix = f'"{schema}".' if schema else ""
    with engine.begin() as conn:
        if schema:
            conn.execute(sa.text(f'create schema if not exists "{schema}"'))
        for name in TABLES:
            conn.execute(sa.text(f"drop table if exists {prefix}{name}"))
        for statement in _statements(ddl):
            conn.execute(sa.text(statement.replace("create table ", f"create table {prefix}")))
        for name in TABLES:
            path = seeds / f"{name}.csv"
            if engine.dialect.name == "postgresql":
                cursor = conn.connection.driver_connection.cursor()
                with (
                    path.open("rb") as fh,
                    cursor.copy(
                        f"copy {prefix}{name} from stdin (format csv, header true)"
                    ) as copy,
                ):
                    while chunk := fh.read(1 << 20):
                        copy.write(chunk)
            else:
                with path.open(newline="") as fh:
                    reader = csv.reader(fh)
                    header = next(reader)
                    rows = [
                        {k: (v if v != "" else None) for k, v in zip(header, row, strict=True)}
                        for row in reader
                    ]
                columns = ", ".join(header)
                values = ", ".join(f":{c}" for c in header)
                conn.execute(
                    sa.text(f"insert into {prefix}{name} ({columns}) values ({values})"), rows
                )


def ensure_demo_shop_db(path: Path) -> str:
    """Build the demo SQLite database once (again when the seeds change); return its URL."""
    newest_seed = max(p.stat().st_mtime for p in SHOP_SEEDS.iterdir())
    if not path.exists() or path.stat().st_mtime < newest_seed:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".building-{os.getpid()}")  # runs may build it at once
        tmp.unlink(missing_ok=True)
        engine = sa.create_engine(f"sqlite:///{tmp}")
        load_shop_seeds(engine)
        engine.dispose()
        tmp.replace(path)
    return f"sqlite:///{path}"
