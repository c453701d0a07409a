"""The output contract (v1): the Parquet schema of every table.

Every row carries the four key columns (``game``, ``half``, ``frame``, ``t``); ``game_id`` is the hive
partition key and is not stored inside the files. Columns a run's stages do not produce are written as
nulls, so every table always has its full schema. Pixels: OpenCV convention, native video resolution.
Pitch: SoccerNet frame, metres, origin at the centre spot, +x to the right goal, +y toward the main camera.
"""

from __future__ import annotations

import pyarrow as pa

CONTRACT_VERSION = 1

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

PLAYER_CLASSES = ("player", "goalkeeper", "referee", "other")


def schema(table: str) -> pa.Schema:
    """The contract schema of ``table``; KeyError names the known tables."""
    try:
        return TABLES[table]
    except KeyError:
        raise KeyError(f"unknown table {table!r}; the contract has {sorted(TABLES)}") from None


def columns(table: str) -> list[str]:
    """Column names of ``table`` beyond the four key columns."""
    return [f.name for f in schema(table) if f.name not in KEY_COLUMNS]
