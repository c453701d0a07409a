"""Per-game manifests: the commit record that makes a game visible to readers.

A manifest is written last, atomically, once every chunk of the game has been written. Its ``status``
is ``committed`` (readers see the game, in the ``version`` it names) or ``failed`` (readers do not; the errors
say why). A game being redone keeps its committed manifest until the new version is whole (see
:class:`matchflow.storage.layout.OutputLayout`), so readers never lose it meanwhile.
"""

from __future__ import annotations

import json
from typing import Any

from matchflow.storage import fs
from matchflow.storage.layout import OutputLayout, group_version

COMMITTED = "committed"
FAILED = "failed"


def write_manifest(layout: OutputLayout, game_id: str, manifest: dict[str, Any], storage_options: dict | None = None) -> None:
    """Write the manifest of a game atomically (the commit point)."""
    if manifest.get("status") not in (COMMITTED, FAILED):
        raise ValueError(f"manifest status must be {COMMITTED!r} or {FAILED!r}, got {manifest.get('status')!r}")
    data = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
    fs.write_bytes_atomic(layout.manifest(game_id), data, storage_options)


def read_manifest(layout: OutputLayout, game_id: str, storage_options: dict | None = None) -> dict[str, Any] | None:
    """The manifest of a game, or None when the game has none (never run, running, or being redone)."""
    try:
        data = fs.read_bytes(layout.manifest(game_id), storage_options)
    except FileNotFoundError:
        return None
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValueError(f"manifest {layout.manifest(game_id)} is not valid JSON: {exc}") from exc


def version_of(manifest: dict[str, Any]) -> int:
    """The output version a manifest names (manifests written before versions existed name version 0)."""
    return int(manifest.get("version", 0))


def committed_version(manifest: dict[str, Any] | None) -> int | None:
    """The version readers see of a game with this manifest (None when it has no committed version)."""
    return version_of(manifest) if manifest is not None and manifest.get("status") == COMMITTED else None


def read_all_manifests(layout: OutputLayout, storage_options: dict | None = None) -> dict[str, dict[str, Any]]:
    """Every manifest under the output root, by game id."""
    out: dict[str, dict[str, Any]] = {}
    for url in fs.list_files(layout.manifest_dir(), storage_options):
        name = url.rsplit("/", 1)[-1]
        if not name.endswith(".json"):
            continue
        gid = name[: -len(".json")]
        manifest = read_manifest(layout, gid, storage_options)
        if manifest is not None:
            out[gid] = manifest
    return out


def committed_game_ids(layout: OutputLayout, storage_options: dict | None = None) -> list[str]:
    """Ids of the games readers may see."""
    return sorted(committed_versions(layout, storage_options))


def committed_versions(layout: OutputLayout, storage_options: dict | None = None) -> dict[str, int]:
    """The committed version of each game readers may see, by game id."""
    return {g: version_of(m) for g, m in sorted(read_all_manifests(layout, storage_options).items())
            if m.get("status") == COMMITTED}


def interrupted_game_ids(layout: OutputLayout, storage_options: dict | None = None) -> list[str]:
    """Games with a lock or written output but no manifest: a run stopped (or still running) before it committed
    or failed them. Readers do not see them; the next run redoes them."""
    ids: set[str] = set()
    locks = fs.join(layout.root, "locks")
    ids |= {name[: -len(".lock")] for name in _names(locks, storage_options) if name.endswith(".lock")}
    ids |= set(group_versions(layout, storage_options))
    for table in _names(fs.join(layout.root, "tables"), storage_options):
        ids |= {name.removeprefix("game_id=") for name in _names(fs.join(layout.root, "tables", table), storage_options)
                if name.startswith("game_id=")}
    return sorted(ids - set(read_all_manifests(layout, storage_options)))


def group_versions(layout: OutputLayout, storage_options: dict | None = None) -> dict[str, list[int]]:
    """The versions of each game that have a Zarr group under ``arrays/`` (every version written has one)."""
    out: dict[str, list[int]] = {}
    for name in _names(layout.arrays_dir(), storage_options):
        parsed = group_version(name)
        if parsed is not None:
            out.setdefault(parsed[0], []).append(parsed[1])
    return {g: sorted(v) for g, v in out.items()}


def leftover_versions(layout: OutputLayout, storage_options: dict | None = None) -> dict[str, list[int]]:
    """Committed games that also hold output of other versions: a redo that stopped before it committed (the
    committed version is still the one readers see; the next run of the game removes the rest)."""
    committed = committed_versions(layout, storage_options)
    return {g: [v for v in versions if v != committed[g]] for g, versions in group_versions(layout, storage_options).items()
            if g in committed and set(versions) != {committed[g]}}


def _names(url: str, storage_options: dict | None) -> list[str]:
    """The names of the entries directly under ``url`` (none when it does not exist)."""
    if not fs.exists(url, storage_options):
        return []
    return [str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.filesystem(url, storage_options).ls(fs.strip_protocol(url), detail=False)]
