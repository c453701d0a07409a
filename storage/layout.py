"""Where each piece of a run's output lives under the output root (contract v1)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from matchflow.storage import fs
from matchflow.storage.contract import CONTRACT_MAJOR, CONTRACT_VERSION

#: The file a run writes at the root of its output (the contract version): what tells readers a folder is an
#: output root.
CONTRACT_MARKER = "contract.json"


_PART = re.compile(r"(?:v(\d+)-)?h(\d+)-c(\d+)\.parquet")
_GROUP = re.compile(r"(.+?)(?:\.v(\d+))?\.zarr")


def part_name(half: int, chunk: int, version: int = 0) -> str:
    """The file name of one chunk's rows of a table in version ``version`` of a game's output."""
    name = f"h{half}-c{chunk:05d}.parquet"
    return name if version == 0 else f"v{version}-{name}"


def part_version(name: str) -> int | None:
    """The version a chunk file name belongs to (None when the name is not one of a chunk file)."""
    m = _PART.fullmatch(name)
    return None if m is None else int(m.group(1) or 0)


def group_version(name: str) -> tuple[str, int] | None:
    """``(game_id, version)`` of a game's Zarr group name under ``arrays/`` (None for other names)."""
    m = _GROUP.fullmatch(name)
    return None if m is None else (m.group(1), int(m.group(2) or 0))


class NotAnOutputRoot(ValueError):
    """A folder given as an output root is not one; the message says what is missing."""


@dataclass(frozen=True)
class OutputLayout:
    """Paths of the output contract under ``root`` (a local folder or an ``s3://`` prefix).

    - ``tables/<table>/game_id=<game_id>/h<half>-c<chunk>.parquet``: one file per chunk, named by its
      position so that a rerun of a chunk replaces its file instead of adding a second copy;
    - ``arrays/<game_id>.zarr``: one Zarr v3 group per game, arrays under ``<half>/<name>``;
    - ``manifests/<game_id>.json``: written last; a game is visible to readers only once it is there
      with status ``committed``, and only in the version it names;
    - ``contract.json``: the contract version, written when a run starts.

    Versions: a game's first output is version 0, at the paths above. Redoing a committed game writes version
    ``k + 1`` beside version ``k`` (chunk files ``v<k+1>-h<half>-c<chunk>.parquet``, the group
    ``arrays/<game_id>.v<k+1>.zarr``), then the manifest naming it, then removes version ``k``: readers that go
    by the manifest see one whole version at every moment.
    """

    root: str

    @classmethod
    def at(cls, root: str) -> OutputLayout:
        return cls(fs.normalize(root))

    def table_dir(self, table: str) -> str:
        return fs.join(self.root, "tables", table)

    def partition(self, table: str, game_id: str) -> str:
        return fs.join(self.table_dir(table), f"game_id={game_id}")

    def part_file(self, table: str, game_id: str, half: int, chunk: int, version: int = 0) -> str:
        return fs.join(self.partition(table, game_id), part_name(half, chunk, version))

    def arrays_dir(self) -> str:
        return fs.join(self.root, "arrays")

    def zarr(self, game_id: str, version: int = 0) -> str:
        return fs.join(self.arrays_dir(), f"{game_id}.zarr" if version == 0 else f"{game_id}.v{version}.zarr")

    def manifest_dir(self) -> str:
        return fs.join(self.root, "manifests")

    def manifest(self, game_id: str) -> str:
        return fs.join(self.manifest_dir(), f"{game_id}.json")

    def marker(self) -> str:
        return fs.join(self.root, CONTRACT_MARKER)


def write_marker(layout: OutputLayout, storage_options: dict[str, Any] | None = None) -> None:
    """Mark ``layout.root`` as an output root of this contract version (atomically; a rerun rewrites it)."""
    data = json.dumps({"product": "matchflow", "contract_version": CONTRACT_VERSION}, indent=1).encode()
    fs.write_bytes_atomic(layout.marker(), data, storage_options)


def output_root(root: str, storage_options: dict[str, Any] | None = None) -> OutputLayout:
    """The layout of ``root`` once checked to be an output root (its marker, or the ``manifests/`` folder of
    outputs written before the marker existed); NotAnOutputRoot says what is missing."""
    layout = OutputLayout.at(root)
    if not fs.exists(layout.root, storage_options):
        raise NotAnOutputRoot(f"output root {root} does not exist")
    if not (fs.exists(layout.marker(), storage_options) or fs.exists(layout.manifest_dir(), storage_options)):
        raise NotAnOutputRoot(f"{root} is not a Matchflow output root: it holds no {CONTRACT_MARKER} and no "
                              "manifests/ folder (an output root is the --out of matchflow run)")
    if fs.exists(layout.marker(), storage_options):
        written = json.loads(fs.read_bytes(layout.marker(), storage_options)).get("contract_version")
        if contract_major(written) != CONTRACT_MAJOR:
            raise NotAnOutputRoot(f"{root} was written under output contract v{written}; this version of Matchflow "
                                  f"reads contract v{CONTRACT_MAJOR}.x (it writes v{CONTRACT_VERSION})")
    return layout


def contract_major(version: object) -> int | None:
    """The major number of a recorded ``contract_version`` (1 for ``1``, ``"1.1"``; None when unreadable)."""
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None
