"""SQL over the output tables with DuckDB: one view per table, committed games only (local or S3).

The connection is read-only toward the outside: once the views are registered (Arrow datasets over the output
root, read by pyarrow), DuckDB's external access is turned off and the configuration locked, so a query can
neither read files elsewhere (``read_csv('/etc/passwd')``) nor write any (``COPY ... TO``), attach databases or
load extensions.

Each view covers the version of each game its manifest names. A run that redoes a game meanwhile commits a new
version and then removes the old one's files. So :func:`connect` reads the manifests before and after listing
the files, and lists again when a game's version changed in between (else it could list a version whose files
were just removed, and miss the game); and a query that was reading files when they were removed fails to open
one, and :func:`query` then reads the manifests again and runs the query once more. It answers from one whole
version of every game.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from matchflow.storage.contract import TABLES
from matchflow.storage.layout import OutputLayout
from matchflow.storage.manifest import committed_versions
from matchflow.storage.tables import committed_dataset

T = TypeVar("T")

#: How many times a read is started again when a file of the version it read was removed meanwhile.
RETRIES = 5


def connect(out: str, storage_options: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per contract table over the committed games of ``out``.

    Each view has the table's contract columns plus ``game_id``; tables no stage wrote are empty views.
    """
    layout = OutputLayout.at(out)
    for _ in range(RETRIES + 1):  # the files listed must belong to the versions the manifests name throughout
        versions = committed_versions(layout, storage_options)
        datasets = {table: committed_dataset(layout, table, versions, storage_options) for table in TABLES}
        if committed_versions(layout, storage_options) == versions:
            break
    con = duckdb.connect()
    for table, ds in datasets.items():
        con.register(f"_arrow_{table}", ds)
        con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM "_arrow_{table}"')
    for setting in ("autoinstall_known_extensions = false", "autoload_known_extensions = false",
                    "enable_external_access = false", "lock_configuration = true"):
        con.execute(f"SET {setting}")
    return con


def vanished(exc: BaseException) -> bool:
    """Whether an error is a file of the output that was removed while it was being read."""
    if isinstance(exc, FileNotFoundError):
        return True
    text = str(exc)
    return isinstance(exc, (duckdb.Error, OSError)) and any(
        s in text for s in ("No such file", "does not exist", "NoSuchKey", "Not Found", "Failed to open"))


def retrying(read: Callable[[], T], retries: int = RETRIES) -> T:
    """``read()``, started again (it must read the manifests anew) when a file it read was removed meanwhile."""
    for attempt in range(retries + 1):
        try:
            return read()
        except Exception as exc:
            if attempt == retries or not vanished(exc):
                raise
    raise AssertionError("unreachable")


def query(out: str, sql: str, storage_options: dict[str, Any] | None = None) -> duckdb.DuckDBPyRelation | None:
    """Run ``sql`` against the committed games of ``out``; returns its result, read whole, as a relation (None for
    statements without rows)."""

    def run() -> pa.Table | None:
        rel = connect(out, storage_options).sql(sql)
        return None if rel is None else rel.arrow().read_all()

    result = retrying(run)
    return None if result is None else duckdb.connect().from_arrow(result)
