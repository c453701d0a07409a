"""The output contract (v1), in one place: the Parquet schema of every table, the Zarr arrays of a half, and the
version every manifest and Zarr group records. The pipeline's chain check, the table and array writers, the
evaluation and the documentation (``docs/contract.md``, written by ``python -m matchflow.storage.contract``)
all read it from here.

Every row carries the four key columns (``game``, ``half``, ``frame``, ``t``); ``game_id`` is the hive
partition key and is not stored inside the files. Columns a run's stages do not produce are written as
nulls, so every table always has its full schema. Pixels: OpenCV convention, native video resolution.
Pitch: SoccerNet frame, metres, origin at the centre spot, +x to the right goal, +y toward the main camera.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pyarrow as pa

#: "<major>.<minor>": additions (tables, columns, arrays) bump the minor version, changes of meaning or type the
#: major one. 1.1 added the half-level ``tracks`` table. Readers accept the major version they know.
CONTRACT_VERSION = "1.1"
CONTRACT_MAJOR = 1

KEY_FIELDS: list[pa.Field] = [
    pa.field("game", pa.string(), nullable=False),  # the game key: folder path relative to the corpus root
    pa.field("half", pa.int8(), nullable=False),
    pa.field("frame", pa.int32(), nullable=False),  # index of the sampled frame within the half
    pa.field("t", pa.float64(), nullable=False),  # seconds from the start of the half
]
KEY_COLUMNS = [f.name for f in KEY_FIELDS]


def _table(*fields: pa.Field) -> pa.Schema:
    return pa.schema(KEY_FIELDS + list(fields))


def _f(name: str, typ: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, typ, nullable=nullable)


TABLES: dict[str, pa.Schema] = {
    "frames": _table(
        _f("video_frame", pa.int32(), False),  # source frame number in the video
        _f("width", pa.int32(), False),
        _f("height", pa.int32(), False),
    ),
    "calibration": _table(
        _f("homography", pa.list_(pa.float64(), 9)),  # row-major, image pixels -> pitch metres
        _f("homography_inv", pa.list_(pa.float64(), 9)),  # pitch metres -> image pixels
        _f("score", pa.float32()),  # plausibility 0..1
        _f("valid", pa.bool_()),
    ),
    "players": _table(
        _f("det", pa.int16(), False),
        _f("x1", pa.float32()),
        _f("y1", pa.float32()),
        _f("x2", pa.float32()),
        _f("y2", pa.float32()),
        _f("score", pa.float32()),
        _f("cls", pa.dictionary(pa.int8(), pa.string())),  # player, goalkeeper, referee, other
        _f("pitch_x", pa.float32()),
        _f("pitch_y", pa.float32()),
        _f("on_field", pa.bool_()),
        _f("color_r", pa.uint8()),
        _f("color_g", pa.uint8()),
        _f("color_b", pa.uint8()),
        _f("area", pa.float32()),
        _f("team", pa.int8()),
        _f("track", pa.int32()),
    ),
    "graph_edges": _table(
        _f("src", pa.int16(), False),
        _f("dst", pa.int16(), False),
        _f("distance", pa.float32()),
    ),
    "ball": _table(
        _f("x", pa.float32()),
        _f("y", pa.float32()),
        _f("score", pa.float32()),
        _f("pitch_x", pa.float32()),
        _f("pitch_y", pa.float32()),
    ),
    "poses": _table(
        _f("det", pa.int16(), False),
        _f("keypoints", pa.list_(pa.float32(), 51)),  # COCO order, (x, y, score) per keypoint
    ),
    "reid": _table(
        _f("det", pa.int16(), False),
        _f("row", pa.int32(), False),  # index into the half's `reid` Zarr array
    ),
    "tt_ball": _table(
        _f("x", pa.float32()),
        _f("y", pa.float32()),
        _f("score", pa.float32()),
    ),
    "tt_events": _table(
        _f("bounce", pa.float32()),
        _f("net", pa.float32()),
    ),
}

#: Tables with one row per thing of a half rather than per sampled frame, keyed by ``game``, ``half`` and their
#: own key column, without ``frame`` and ``t``; written by game-level stages, one file per half.
HALF_TABLES: dict[str, pa.Schema] = {
    "tracks": pa.schema([
        KEY_FIELDS[0], KEY_FIELDS[1],
        _f("track", pa.int32(), False),  # the players.track it summarises
        _f("first_frame", pa.int32(), False),  # sampled frames
        _f("last_frame", pa.int32(), False),
        _f("frames", pa.int32(), False),  # detections in the track
        _f("team", pa.int8()),
        _f("cls", pa.dictionary(pa.int8(), pa.string())),  # the track's role: player, goalkeeper, referee, other
        _f("pitch_x", pa.float32()),  # mean position, metres
        _f("pitch_y", pa.float32()),
        _f("jersey", pa.string()),
    ]),
}
TABLES.update(HALF_TABLES)

PLAYER_CLASSES = ("player", "goalkeeper", "referee", "other")


@dataclass(frozen=True)
class ArrayContract:
    """A Zarr array of a half, stored at ``arrays/<game_id>.zarr/<half>/<name>``.

    Frame-aligned (``rows_of`` None): the sampled frame is the first axis. Row-aligned (``rows_of`` a table): one
    row per row of that table in the half, which points to it with its ``row`` column. ``name`` ending in ``_``
    is a family (``features_`` holds ``features_<backbone>``); ``shape`` names the axes; ``dtype`` is the stored
    type."""

    name: str
    shape: str
    dtype: str
    description: str
    rows_of: str | None = None

    def matches(self, array: str) -> bool:
        """Whether ``array`` is this array (or, for a family, one of its members)."""
        return array == self.name or (self.name.endswith("_") and array.startswith(self.name) and len(array) > len(self.name))


ARRAYS: tuple[ArrayContract, ...] = (
    ArrayContract("topview_cc", "(T, 224, 224, 3)", "uint8", "colour-composition top view of the pitch"),
    ArrayContract("topview_bc", "(T, 3, 224, 224)", "uint8", "binary-channel top view (players, ball, pitch)"),
    ArrayContract("features_", "(T, D)", "float16", "feature vector of a top view (penultimate layer of the backbone)"),
    ArrayContract("masks", "(T, H', W')", "int16",
                  "player instance ids (`det + 1`, 0 background) on the decoder's grid; attributes give its scale"),
    ArrayContract("reid", "(N, D)", "float16",
                  "re-identification embedding of each `reid` table row (L2-normalised); attributes name the model",
                  rows_of="reid"),
)


def array_contract(name: str) -> ArrayContract:
    """The contract entry of array ``name``; KeyError names the arrays the contract has."""
    for spec in ARRAYS:
        if spec.matches(name):
            return spec
    raise KeyError(f"array {name!r} is not in the output contract; it has {[a.name for a in ARRAYS]}")


def schema(table: str) -> pa.Schema:
    """The contract schema of ``table``; KeyError names the known tables."""
    try:
        return TABLES[table]
    except KeyError:
        raise KeyError(f"unknown table {table!r}; the contract has {sorted(TABLES)}") from None


def key_columns(table: str) -> list[str]:
    """The key columns of ``table``: the four of every frame table, or ``game``, ``half`` and the table's own key
    (``track``) for a half table."""
    if table in HALF_TABLES:
        return ["game", "half", HALF_TABLES[table].names[2]]
    schema(table)
    return list(KEY_COLUMNS)


def columns(table: str) -> list[str]:
    """Column names of ``table`` beyond its key columns."""
    keys = key_columns(table)
    return [f.name for f in schema(table) if f.name not in keys]


def describe() -> str:
    """The contract as Markdown (``docs/contract.md``)."""
    lines = [
        f"# Output contract v{CONTRACT_VERSION}",
        "",
        "Generated from `storage/contract.py` by `python -m matchflow.storage.contract > docs/contract.md`;",
        "a test checks that this page matches the code.",
        "",
        "Under the output root: `tables/<table>/game_id=<game_id>/` (Parquet, one file per half and chunk),",
        "`arrays/<game_id>.zarr` (Zarr v3, arrays per half under `<half>/<name>`, chunked along frames) and",
        "`manifests/<game_id>.json` (written last: a game is visible to readers once it is committed), and",
        "`contract.json`, written when a run starts, which marks the folder as an output root.",
        "Every manifest, Zarr group and `contract.json` records `contract_version`.",
        "",
        "Versions: a game written once has version 0 and the names above. A game redone (`--force`, a changed",
        "configuration) is written beside its committed version as version k (the committed one + 1): Parquet",
        "files `v<k>-h<half>-c<chunk>.parquet` in the same partition, Zarr group `arrays/<game_id>.v<k>.zarr`.",
        "Its manifest, written last, switches readers to it (`version`, and `arrays`, the group's path relative",
        "to the root); the replaced version's files are removed afterwards. A reader takes, per game, the files",
        "of the version its committed manifest names (a manifest without `version` names 0) and nothing else.",
        "",
        "Pixels follow OpenCV's convention at the video's native resolution. Pitch coordinates: SoccerNet's frame,",
        "metres, origin at the centre spot, +x toward the right goal, +y toward the main camera's touchline.",
        "",
        "## Tables",
        "",
        "Every table starts with the key columns " + ", ".join(f"`{c}`" for c in KEY_COLUMNS) + ", except the half",
        "tables (" + ", ".join(f"`{t}`" for t in HALF_TABLES) + "): one row per thing of a half, keyed by `game`,",
        "`half` and their own key, written once per half by game-level stages (file `h<half>-c00000.parquet`).",
        "",
    ]
    for name, sch in TABLES.items():
        lines += [f"### `{name}`", "", "| column | type | nullable |", "| --- | --- | --- |"]
        lines += [f"| `{f.name}` | {f.type} | {'yes' if f.nullable else 'no'} |" for f in sch]
        lines.append("")
    lines += ["## Arrays", "",
              "Frame-aligned arrays have the sampled frame first (T: the half's sampled frames). A row-aligned array",
              "(shape (N, ...)) has one row per row of its table in the half, which names it in its `row` column; it",
              "is assembled once every chunk of the half is written.", "",
              "| name | shape | dtype | what |", "| --- | --- | --- | --- |"]
    lines += [f"| `{a.name}{'<backbone>' if a.name.endswith('_') else ''}` | {a.shape} | {a.dtype} | {a.description} |"
              for a in ARRAYS]
    lines += ["", f"Player classes (`players.cls`): {', '.join(PLAYER_CLASSES)}.", "",
              "Identities (written by the game-level stages `tracking` and `teams`): `players.track` is unique within",
              "a half (0, 1, 2, ... in order of first appearance; the same number in two halves is not the same",
              "person). `players.team` is 0 or 1, null for referees and people off the field, one team per track;",
              "team 0 is the team attacking toward +x in the first half, and it is still team 0 in the second half,",
              "when the teams have swapped ends (it then attacks toward -x).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(describe())
