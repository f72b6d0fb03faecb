"""Dagster's SQLite event log with its database connections kept open.

Dagster's own SQLite storage creates a SQLAlchemy engine, connects and disposes of it for every
event it stores (two or three times for an asset or check event: the run's file and the index),
about 8 ms an event. A night stores ~900 events (each dbt model and test is one or more, and
the run plans every asset and check before its first step): 7–8 s of `cdp run`'s main thread,
3 s of it before the first step. Keeping one engine per file open, and not waiting for the
disk on each commit, stores an event in ~1.5 ms. The files, tables and transactions are
Dagster's own: the UI reads them as always.
"""

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

# the index and the last few runs' files: a long-lived process does not keep every run's open
KEPT_FILES = 4


def _synchronous_normal(connection, _record) -> None:
    connection.execute("pragma synchronous = normal")


class KeptConnectionSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose connection to each database file stays open between events,
    still used by one thread at a time (the storage's lock) and committed after each event."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, sa.Engine] = OrderedDict()  # before the index is made
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = sa.create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=StaticPool,
                    connect_args={
                        "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                        "check_same_thread": False,  # the lock above keeps it to one thread
                    },
                )
                # in WAL mode (Dagster's), a commit that waits for no disk flush: a power cut
                # may lose the last events, never corrupts the file (SQLite's documented trade)
                sa.event.listen(engine, "connect", _synchronous_normal)
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                self._engines[shard] = engine
                while len(self._engines) > KEPT_FILES:
                    self._engines.popitem(last=False)[1].dispose()
            self._engines.move_to_end(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _close_all(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self._close_all()  # before the run files are deleted
        super().wipe()

    def dispose(self) -> None:
        self._close_all()
        super().dispose()
