"""Zarr v3 arrays of the output contract: one group per game, arrays per half under ``<half>/<name>``.

Frame-aligned arrays have the sampled frame as their first axis and are chunked along it with the
batch size of the run, so every batch of every chunk task writes whole Zarr chunks of its own and
parallel tasks never touch the same chunk.

Row-aligned arrays (one row per row of a table, :class:`matchflow.storage.contract.ArrayContract`) cannot be
placed before every chunk is done: each chunk task writes its rows as a part, ``<half>/_parts/<name>/c<chunk>``,
and :func:`assemble_rows` concatenates the parts in chunk order into ``<half>/<name>`` once the half's chunks are
all written, then removes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import zarr
import zarr.storage

from matchflow.storage import fs


@dataclass(frozen=True)
class ArraySpec:
    """Shape of one frame's entry (the frame axis excluded), dtype and fill value."""

    shape: tuple[int, ...]
    dtype: str
    fill_value: Any = 0
    attrs: dict[str, Any] = field(default_factory=dict)  # Zarr attributes of the array (units, scale)


def _store(url: str, storage_options: dict[str, Any] | None, read_only: bool) -> Any:
    if fs.is_remote(url):
        return zarr.storage.FsspecStore.from_url(url, storage_options=storage_options or {}, read_only=read_only)
    return url


def open_game_group(
    url: str, storage_options: dict[str, Any] | None = None, mode: Literal["r", "r+", "a", "w", "w-"] = "r"
) -> zarr.Group:
    """Open (``r``, ``a``) or create afresh (``w``) the Zarr group of a game."""
    return zarr.open_group(store=_store(url, storage_options, mode == "r"), mode=mode, zarr_format=3)


def create_half(
    url: str,
    half: int,
    n_frames: int,
    specs: dict[str, ArraySpec],
    frames_per_chunk: int,
    attrs: dict[str, Any],
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Create the group of one half with its attributes and empty frame-aligned arrays."""
    root = open_game_group(url, storage_options, mode="a")
    grp = root.require_group(str(half))
    grp.attrs.update(attrs)
    for name, spec in specs.items():
        arr = grp.create_array(
            name,
            shape=(n_frames, *spec.shape),
            chunks=(max(1, min(frames_per_chunk, n_frames)), *spec.shape),
            dtype=spec.dtype,
            fill_value=spec.fill_value,
            overwrite=True,
        )
        if spec.attrs:
            arr.attrs.update(spec.attrs)


def write_frames(
    url: str, half: int, name: str, start: int, data: np.ndarray, storage_options: dict[str, Any] | None = None
) -> None:
    """Write ``data`` (frames first) into array ``<half>/<name>`` from sampled frame ``start`` on."""
    arr = zarr.open_array(store=_store(url, storage_options, False), path=f"{half}/{name}", mode="r+")
    arr[start : start + len(data)] = data


def _part_path(half: int, name: str, chunk: int) -> str:
    return f"{half}/_parts/{name}/c{chunk:05d}"


def write_row_part(
    url: str, half: int, name: str, chunk: int, data: np.ndarray, dtype: str, attrs: dict[str, Any] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Write one chunk's rows (N, ...) of row-aligned array ``name`` as its part (replacing an earlier one)."""
    root = open_game_group(url, storage_options, mode="a")
    data = np.asarray(data, dtype=dtype)
    arr = root.create_array(_part_path(half, name, chunk), shape=data.shape,
                            chunks=(max(1, len(data)), *data.shape[1:]), dtype=dtype, overwrite=True)
    if data.size:
        arr[...] = data
    if attrs:
        arr.attrs.update(attrs)


def assemble_rows(
    url: str, half: int, name: str, chunks: list[int], storage_options: dict[str, Any] | None = None,
    rows_per_chunk: int = 4096,
) -> list[int]:
    """Concatenate the parts of row-aligned array ``name`` of ``half`` in the order of ``chunks`` into
    ``<half>/<name>`` and remove them; returns each chunk's row count. Done again, it finds the array assembled and
    returns the counts it recorded (the parts are gone)."""
    root = open_game_group(url, storage_options, mode="a")
    grp = root.require_group(str(half))
    parts_path = f"_parts/{name}"
    if parts_path not in grp:
        done = grp.get(name)
        if isinstance(done, zarr.Array) and "chunk_rows" in done.attrs:
            return [int(n) for n in done.attrs["chunk_rows"]]  # type: ignore[union-attr, arg-type]  # a list of ints
        raise FileNotFoundError(f"{url}/{half}: no parts of array {name!r} to assemble")
    parts = [grp[f"{parts_path}/c{c:05d}"] for c in chunks]
    if not all(isinstance(p, zarr.Array) for p in parts):
        raise ValueError(f"{url}/{half}/{parts_path}: a part is not an array")
    arrays = [p for p in parts if isinstance(p, zarr.Array)]
    counts = [int(p.shape[0]) for p in arrays]
    total = sum(counts)
    first = arrays[0]
    out = grp.create_array(name, shape=(total, *first.shape[1:]), chunks=(max(1, min(total, rows_per_chunk)),
                           *first.shape[1:]), dtype=first.dtype, overwrite=True)
    pos = 0
    for p, n in zip(arrays, counts):
        if n:
            out[pos:pos + n] = np.asarray(p[...])
        pos += n
    out.attrs.update({**dict(first.attrs), "chunk_rows": counts})
    del grp[parts_path]
    if "_parts" in grp and not list(grp["_parts"].keys()):  # type: ignore[union-attr]
        del grp["_parts"]
    return counts
