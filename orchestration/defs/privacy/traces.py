"""Erasure beyond the warehouse tables: the files under `$CDP_DATA_DIR` that may hold a copy.

Deleting rows leaves their bytes in the files that held them until the space is reused, and
the pipeline writes identifiers to more places than its tables: the Great Expectations
results and data docs (sample values), Dagster's run storage (asset previews, log lines),
step logs, access exports. After an erasure:

- every text file under `quality/`, `dagster/` and `logs/` has each erased identifier replaced by
  `[erased]` (case-insensitive), written aside and renamed over the original;
- every SQLite database under `dagster/` (run history, event logs) has the same replacement
  applied to its text values, then is vacuumed, which rewrites the file without free pages;
- an access export that mentions an erased identifier is deleted;
- the build warehouse is rewritten into a fresh file (`compact_warehouse`, run by the
  publication once the marts were rebuilt without the person), since DuckDB keeps deleted
  rows' bytes in free blocks.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import duckdb

from orchestration.defs.privacy.access import exports_dir
from orchestration.warehouse import replace_durably

ERASED = "[erased]"
_SQLITE_HEADER = b"SQLite format 3\x00"


def _pattern(identifiers: list[str]) -> re.Pattern[bytes]:
    alternatives = sorted({i.lower() for i in identifiers if i}, key=len, reverse=True)
    return re.compile(b"|".join(re.escape(a.encode()) for a in alternatives), re.IGNORECASE)


def _replace_file(path: Path, content: bytes) -> None:
    if path.parent.name == "logs":
        # the running run appends to its log (O_APPEND): rewritten in place, it goes on
        # writing at the new end; renamed over, its lines would go to the unlinked file
        with open(path, "r+b") as fh:
            fh.write(content)
            fh.truncate()
        return
    partial = path.with_name(path.name + ".scrub")
    with open(partial, "wb") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, path)


def _scrub_sqlite(path: Path, needles: list[str], pattern: re.Pattern[bytes]) -> int:
    """Replace the identifiers in every text value; vacuum so no old page keeps them."""
    changed = 0
    found = " or ".join(["instr(lower(cast({c} as text)), ?) > 0"] * len(needles))
    with sqlite3.connect(path, timeout=60) as db:
        db.text_factory = bytes
        tables = [
            r[0].decode() for r in db.execute("select name from sqlite_master where type = 'table'")
        ]
        for table in tables:
            columns = [r[1].decode() for r in db.execute(f'pragma table_info("{table}")')]
            for column in columns:
                quoted = f'"{column}"'
                try:
                    rows = db.execute(
                        f'select rowid, {quoted} from "{table}" where typeof({quoted}) in '
                        f"('text', 'blob') and ({found.format(c=quoted)})",
                        needles,
                    ).fetchall()
                except sqlite3.OperationalError:
                    break  # a table without rowid: Dagster's storage has none
                for rowid, value in rows:
                    scrubbed = pattern.sub(ERASED.encode(), bytes(value))
                    db.execute(
                        f'update "{table}" set {quoted} = ? where rowid = ?',
                        [scrubbed.decode(errors="replace"), rowid],
                    )
                    changed += 1
        db.commit()
    if changed:
        with sqlite3.connect(path, timeout=60, isolation_level=None) as db:
            db.execute("vacuum")
            if db.execute("pragma journal_mode").fetchone()[0].lower() == "wal":
                db.execute("pragma wal_checkpoint(truncate)")
    return changed


def scrub_files(data_dir: Path, identifiers: list[str]) -> dict[str, int]:
    """Remove the identifiers from every file the pipeline keeps beside its warehouse."""
    counts = {"files_scrubbed": 0, "database_values_scrubbed": 0, "exports_deleted": 0}
    if not identifiers:
        return counts
    needles = sorted({i.lower() for i in identifiers if i})
    pattern = _pattern(needles)
    exports = exports_dir(data_dir)
    if exports.exists():
        for path in exports.glob("*.json"):
            if pattern.search(path.read_bytes()):
                path.unlink()
                counts["exports_deleted"] += 1
    for folder in (data_dir / "quality", data_dir / "dagster", data_dir / "logs"):
        if not folder.exists():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            try:
                content = path.read_bytes()
            except OSError:
                continue  # removed while we looked
            if content.startswith(_SQLITE_HEADER):
                changed = _scrub_sqlite(path, needles, pattern)
                counts["database_values_scrubbed"] += changed
                counts["files_scrubbed"] += bool(changed)
            elif pattern.search(content):
                _replace_file(path, pattern.sub(ERASED.encode(), content))
                counts["files_scrubbed"] += 1
    return counts


def compact_warehouse(path: Path, register_functions=None) -> None:
    """Rewrite the DuckDB file into a fresh one holding only live data, then rename it over
    the old one. `register_functions` adds the functions views refer to."""
    fresh = path.with_name(path.name + ".compact")
    fresh.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        if register_functions:
            register_functions(con)
        con.execute("checkpoint")
        name = con.execute("select current_database()").fetchone()[0]
        con.execute(f"attach '{fresh}' as compact")
        con.execute(f'copy from database "{name}" to compact')
        con.execute("detach compact")
    replace_durably(fresh, path)
