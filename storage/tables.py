"""Parquet tables of the output contract: writing one chunk's rows, reading committed games."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from matchflow.storage import fs
from matchflow.storage.contract import KEY_COLUMNS, key_columns, schema
from matchflow.storage.layout import OutputLayout, part_version

PARTITIONING = pads.partitioning(pa.schema([("game_id", pa.string())]), flavor="hive")


def _column(values: Any, field: pa.Field, n: int) -> pa.Array:
    """One column as an Arrow array of the contract type; ``None`` means all null."""
    typ = field.type
    if values is None:
        return pa.nulls(n, type=typ)
    if pa.types.is_fixed_size_list(typ):
        if not isinstance(values, np.ndarray) and any(v is None for v in values):  # null rows
            return pa.array([None if v is None else np.asarray(v, dtype=float).tolist() for v in values], type=typ)
        arr = np.asarray(values, dtype=typ.value_type.to_pandas_dtype()).reshape(n, typ.list_size)
        return pa.FixedSizeListArray.from_arrays(pa.array(arr.ravel(), type=typ.value_type), typ.list_size)
    if pa.types.is_dictionary(typ):
        return pa.array(list(values), type=pa.string()).dictionary_encode().cast(typ)
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.floating) and pa.types.is_floating(typ):
        return pa.array(values, type=typ, from_pandas=True)  # NaN -> null for float columns
    return pa.array(values, type=typ, from_pandas=True)


def build_table(table: str, game: str, half: int, rows: Mapping[str, Any]) -> pa.Table:
    """A contract table from per-row columns; ``rows`` must hold the table's key columns but ``game`` and ``half``
    (``frame`` and ``t``; ``track`` for ``tracks``).

    Columns of the contract missing from ``rows`` are null; a column not in the contract, or of another
    length, raises ValueError naming it.
    """
    sch = schema(table)
    n = len(rows[key_columns(table)[2]])
    unknown = set(rows) - set(sch.names)
    if unknown:
        raise ValueError(f"table {table!r} has no column(s) {sorted(unknown)}; contract columns: {sch.names}")
    for name, values in rows.items():
        if values is not None and len(values) != n:
            raise ValueError(f"table {table!r} column {name!r} has {len(values)} rows, expected {n}")
    arrays = []
    for f in sch:
        if f.name == "game":
            arrays.append(pa.array([game] * n, type=f.type))
        elif f.name == "half":
            arrays.append(pa.array(np.full(n, half, dtype=np.int8), type=f.type))
        else:
            col = _column(rows.get(f.name), f, n)
            if not f.nullable and col.null_count:
                raise ValueError(f"table {table!r} column {f.name!r} must not hold nulls")
            arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=sch)


def write_part(
    layout: OutputLayout,
    table: str,
    game_id: str,
    game: str,
    half: int,
    chunk: int,
    rows: Mapping[str, Any],
    storage_options: dict[str, Any] | None = None,
    version: int = 0,
) -> int:
    """Write one chunk's rows of ``table`` as its own Parquet file of the game's output ``version``
    (atomically); returns the row count."""
    tbl = build_table(table, game, half, rows)
    _write(tbl, layout.part_file(table, game_id, half, chunk, version), storage_options)
    return tbl.num_rows


def _write(tbl: pa.Table, url: str, storage_options: dict[str, Any] | None) -> None:
    """A table as one zstd-compressed Parquet file, written atomically (a rerun replaces it whole)."""
    buf = io.BytesIO()
    pq.write_table(tbl, buf, compression="zstd")
    fs.write_bytes_atomic(url, buf.getvalue(), storage_options)


def read_part(
    layout: OutputLayout,
    table: str,
    game_id: str,
    half: int,
    chunk: int,
    columns: list[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    version: int = 0,
) -> pa.Table:
    """One chunk's rows of ``table`` (the file :func:`write_part` wrote), all columns or ``columns``."""
    data = fs.read_bytes(layout.part_file(table, game_id, half, chunk, version), storage_options)
    return pq.read_table(io.BytesIO(data), columns=columns)


def replace_columns(
    layout: OutputLayout,
    table: str,
    game_id: str,
    half: int,
    chunk: int,
    columns: Mapping[str, Any],
    storage_options: dict[str, Any] | None = None,
    version: int = 0,
) -> int:
    """Rewrite one chunk's file of ``table`` with ``columns`` replaced (same rows, in the same order), atomically:
    a rerun replaces it again, so rows are never duplicated. Returns the row count."""
    tbl = read_part(layout, table, game_id, half, chunk, None, storage_options, version)
    sch = schema(table)
    for name, values in columns.items():
        if name in key_columns(table) or name not in sch.names:
            raise ValueError(f"table {table!r} has no column {name!r} that can be replaced; columns: {sch.names}")
        if values is not None and len(values) != tbl.num_rows:
            raise ValueError(f"table {table!r} column {name!r} has {len(values)} rows, expected {tbl.num_rows}")
        field = sch.field(name)
        tbl = tbl.set_column(sch.get_field_index(name), field, _column(values, field, tbl.num_rows))
    _write(tbl, layout.part_file(table, game_id, half, chunk, version), storage_options)
    return tbl.num_rows


def version_files(
    layout: OutputLayout, table: str, game_id: str, version: int, storage_options: dict[str, Any] | None = None
) -> list[str]:
    """The chunk files (URLs, sorted) of ``table`` in one version of a game's output."""
    return sorted(f for f in fs.list_files(layout.partition(table, game_id), storage_options)
                  if part_version(f.rsplit("/", 1)[-1]) == version)


def other_version_files(
    layout: OutputLayout, table: str, game_id: str, keep: Iterable[int], storage_options: dict[str, Any] | None = None
) -> list[str]:
    """The chunk files of ``table`` of a game that belong to none of the versions ``keep``."""
    kept = set(keep)
    return [f for f in fs.list_files(layout.partition(table, game_id), storage_options)
            if part_version(f.rsplit("/", 1)[-1]) not in kept]


def committed_dataset(
    layout: OutputLayout,
    table: str,
    versions: Mapping[str, int],
    storage_options: dict[str, Any] | None = None,
) -> pads.Dataset:
    """An Arrow dataset of ``table`` over committed games (``{game_id: committed version}``, as
    :func:`matchflow.storage.manifest.committed_versions` gives), with the ``game_id`` column.

    Only the files of each game's committed version are part of it: not those of other games (running, failed
    or half-written) nor those of a version being written beside it or not yet removed.
    """
    filesystem = fs.filesystem(layout.root, storage_options)
    files: list[str] = []
    for gid, version in versions.items():
        files += [fs.strip_protocol(f) for f in version_files(layout, table, gid, version, storage_options)]
    full_schema = schema(table).append(pa.field("game_id", pa.string()))
    return pads.dataset(
        sorted(files),
        schema=full_schema,
        format="parquet",
        filesystem=filesystem,
        partitioning=PARTITIONING,
        partition_base_dir=fs.strip_protocol(layout.table_dir(table)),
    )


__all__ = ["build_table", "write_part", "read_part", "replace_columns", "version_files", "other_version_files",
           "committed_dataset", "KEY_COLUMNS"]
