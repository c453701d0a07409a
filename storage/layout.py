"""Where each piece of a run's output lives under the output root (contract v1)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from matchflow.storage import fs
from matchflow.storage.contract import CONTRACT_VERSION

#: The file a run writes at the root of its output (the contract version): what tells readers a folder is an
#: output root.
CONTRACT_MARKER = "contract.json"


class NotAnOutputRoot(ValueError):
    """A folder given as an output root is not one; the message says what is missing."""


@dataclass(frozen=True)
class OutputLayout:
    """Paths of the output contract under ``root`` (a local folder or an ``s3://`` prefix).

    - ``tables/<table>/game_id=<game_id>/h<half>-c<chunk>.parquet``: one file per chunk, named by its
      position so that a rerun of a chunk replaces its file instead of adding a second copy;
    - ``arrays/<game_id>.zarr``: one Zarr v3 group per game, arrays under ``<half>/<name>``;
    - ``manifests/<game_id>.json``: written last; a game is visible to readers only once it is there
      with status ``committed``;
    - ``contract.json``: the contract version, written when a run starts.
    """

    root: str

    @classmethod
    def at(cls, root: str) -> OutputLayout:
        return cls(fs.normalize(root))

    def table_dir(self, table: str) -> str:
        return fs.join(self.root, "tables", table)

    def partition(self, table: str, game_id: str) -> str:
        return fs.join(self.table_dir(table), f"game_id={game_id}")

    def part_file(self, table: str, game_id: str, half: int, chunk: int) -> str:
        return fs.join(self.partition(table, game_id), f"h{half}-c{chunk:05d}.parquet")

    def zarr(self, game_id: str) -> str:
        return fs.join(self.root, "arrays", f"{game_id}.zarr")

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
    return layout
