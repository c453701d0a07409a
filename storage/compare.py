"""Comparing two output roots: the same tables, arrays and manifests, byte for byte where the contract allows.

Two runs of the same configuration on the same corpus must write the same data. :func:`compare_outputs`
lists every difference: a Parquet file that differs (in its bytes, then in its rows, NaN equal to NaN), a Zarr
array whose values, shape, dtype or attributes differ, and manifest fields that describe the data (status,
configuration, fingerprint, stages, model checksums, halves, rows). Fields of the run itself (run id, times,
workers, code version, the output version a rerun wrote) are not compared. Of a game written more than once, the
version its manifest names is compared.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import zarr

from matchflow.storage.layout import group_version, part_version
from matchflow.storage.manifest import version_of

#: Manifest fields that describe one run rather than the data: never compared.
RUN_FIELDS = frozenset({"run_id", "started_at", "finished_at", "chunk_runs", "seconds", "code_version", "version",
                        "arrays", "last_attempt"})


def _files(root: Path, pattern: str) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.glob(pattern)) if p.is_file()}


def _versions(root: Path) -> dict[str, int]:
    """The version each manifest of ``root`` names, by game id."""
    return {p.stem: version_of(json.loads(p.read_text())) for p in sorted((root / "manifests").glob("*.json"))}


def _table_files(root: Path) -> dict[str, Path]:
    """The chunk files of the version each game's manifest names, by their version-0 relative path."""
    versions, out = _versions(root), {}
    for p in sorted((root / "tables").glob("*/game_id=*/*.parquet")):
        gid, version = p.parent.name.removeprefix("game_id="), part_version(p.name)
        if version is not None and version == versions.get(gid, 0):
            out[p.relative_to(root).as_posix().replace(p.name, _version0(p.name))] = p
    return out


def _version0(name: str) -> str:
    return name.split("-", 1)[1] if name.startswith("v") else name


def _groups(root: Path) -> dict[str, Path]:
    """The Zarr group of the version each game's manifest names, by game id."""
    versions, out = _versions(root), {}
    for p in sorted((root / "arrays").glob("*.zarr")):
        parsed = group_version(p.name)
        if parsed is not None and parsed[1] == versions.get(parsed[0], 0):
            out[parsed[0]] = p
    return out


def _table_diff(name: str, a: Path, b: Path) -> str | None:
    if a.read_bytes() == b.read_bytes():
        return None
    ta, tb = pq.read_table(io.BytesIO(a.read_bytes())), pq.read_table(io.BytesIO(b.read_bytes()))
    if ta.schema != tb.schema:
        return f"{name}: schemas differ ({ta.schema} / {tb.schema})"
    if ta.num_rows != tb.num_rows:
        return f"{name}: {ta.num_rows} rows / {tb.num_rows} rows"
    for col in ta.column_names:
        va, vb = ta.column(col).to_pylist(), tb.column(col).to_pylist()
        if not _same(va, vb):
            return f"{name}: column {col!r} differs"
    return None  # same rows, other encoding


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (a != a and b != b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _arrays_diff(name: str, a: Path, b: Path) -> list[str]:
    ga, gb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    out: list[str] = []
    if dict(ga.attrs) != dict(gb.attrs):
        out.append(f"{name}: group attributes differ")
    for half in sorted(set(ga.group_keys()) | set(gb.group_keys())):
        if half not in ga or half not in gb:
            out.append(f"{name}/{half}: only in one output")
            continue
        ha, hb = ga[half], gb[half]
        assert isinstance(ha, zarr.Group) and isinstance(hb, zarr.Group)
        if dict(ha.attrs) != dict(hb.attrs):
            out.append(f"{name}/{half}: attributes differ")
        for arr in sorted(set(ha.array_keys()) | set(hb.array_keys())):
            where = f"{name}/{half}/{arr}"
            if arr not in ha or arr not in hb:
                out.append(f"{where}: only in one output")
                continue
            xa, xb = ha[arr], hb[arr]
            assert isinstance(xa, zarr.Array) and isinstance(xb, zarr.Array)
            if xa.shape != xb.shape or xa.dtype != xb.dtype or dict(xa.attrs) != dict(xb.attrs):
                out.append(f"{where}: shape, dtype or attributes differ")
            elif not np.array_equal(xa[:], xb[:], equal_nan=np.issubdtype(xa.dtype, np.floating)):
                out.append(f"{where}: values differ")
    return out


def _manifest_diff(name: str, a: Path, b: Path, ignore: frozenset[str]) -> list[str]:
    ma, mb = json.loads(a.read_text()), json.loads(b.read_text())
    out = []
    for key in sorted((set(ma) | set(mb)) - RUN_FIELDS - ignore):
        if ma.get(key) != mb.get(key):
            out.append(f"{name}: {key} differs ({ma.get(key)!r} / {mb.get(key)!r})")
    return out


def compare_outputs(a: str | Path, b: str | Path, ignore_manifest: frozenset[str] = frozenset()) -> list[str]:
    """The differences between the local output roots ``a`` and ``b`` (empty when they hold the same data).
    ``ignore_manifest``: more manifest fields to leave out."""
    ra, rb = Path(a), Path(b)
    out: list[str] = []
    ta, tb = _table_files(ra), _table_files(rb)
    out += [f"{k}: only in {a if k in ta else b}" for k in sorted(set(ta) ^ set(tb))]
    out += [d for k in sorted(set(ta) & set(tb)) if (d := _table_diff(k, ta[k], tb[k]))]
    za, zb = _groups(ra), _groups(rb)
    out += [f"arrays/{k}: only in one output" for k in sorted(set(za) ^ set(zb))]
    for k in sorted(set(za) & set(zb)):
        out += _arrays_diff(f"arrays/{k}", za[k], zb[k])
    ma, mb = _files(ra, "manifests/*.json"), _files(rb, "manifests/*.json")
    out += [f"{k}: only in one output" for k in sorted(set(ma) ^ set(mb))]
    for k in sorted(set(ma) & set(mb)):
        out += _manifest_diff(k, ma[k], mb[k], ignore_manifest)
    return out
