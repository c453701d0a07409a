"""SQL over the output tables with DuckDB: one view per table, committed games only (local or S3).

The connection is read-only toward the outside: once the views are registered (Arrow datasets over the output
root, read by pyarrow), DuckDB's external access is turned off and the configuration locked, so a query can
neither read files elsewhere (``read_csv('/etc/passwd')``) nor write any (``COPY ... TO``), attach databases or
load extensions.
"""

from __future__ import annotations

from typing import Any

import duckdb

from matchflow.storage.contract import TABLES
from matchflow.storage.layout import OutputLayout
from matchflow.storage.manifest import committed_game_ids
from matchflow.storage.tables import committed_dataset


def connect(out: str, storage_options: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per contract table over the committed games of ``out``.

    Each view has the table's contract columns plus ``game_id``; tables no stage wrote are empty views.
    """
    layout = OutputLayout.at(out)
    games = committed_game_ids(layout, storage_options)
    con = duckdb.connect()
    for table in TABLES:
        ds = committed_dataset(layout, table, games, storage_options)
        con.register(f"_arrow_{table}", ds)
        con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM "_arrow_{table}"')
    for setting in ("autoinstall_known_extensions = false", "autoload_known_extensions = false",
                    "enable_external_access = false", "lock_configuration = true"):
        con.execute(f"SET {setting}")
    return con


def query(out: str, sql: str, storage_options: dict[str, Any] | None = None) -> duckdb.DuckDBPyRelation | None:
    """Run ``sql`` against the output of a run; returns the relation (None for statements without rows)."""
    return connect(out, storage_options).sql(sql)
