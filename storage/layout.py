"""Where each piece of a run's output lives under the output root (contract v1)."""

from __future__ import annotations

from dataclasses import dataclass

from matchflow.storage import fs


@dataclass(frozen=True)
class OutputLayout:
    """Paths of the output contract under ``root`` (a local folder or an ``s3://`` prefix).

    - ``tables/<table>/game_id=<game_id>/h<half>-c<chunk>.parquet``: one file per chunk, named by its
      position so that a rerun of a chunk replaces its file instead of adding a second copy;
    - ``arrays/<game_id>.zarr``: one Zarr v3 group per game, arrays under ``<half>/<name>``;
    - ``manifests/<game_id>.json``: written last; a game is visible to readers only once it is there
      with status ``committed``.
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
