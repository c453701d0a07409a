"""Zarr v3 arrays of the output contract: one group per game, arrays per half under ``<half>/<name>``.

Frame-aligned arrays have the sampled frame as their first axis and are chunked along it with the
batch size of the run, so every batch of every chunk task writes whole Zarr chunks of its own and
parallel tasks never touch the same chunk.
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
