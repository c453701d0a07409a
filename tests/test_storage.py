import json

import numpy as np
import pytest

from matchflow.storage import arrays, manifest
from matchflow.storage import contract as schema
from matchflow.storage.layout import OutputLayout
from matchflow.storage.query import connect
from matchflow.storage.tables import build_table, committed_dataset, write_part


def test_build_table_fills_the_contract_schema():
    rows = {
        "frame": np.array([0, 0, 1], dtype=np.int32),
        "t": np.array([0.0, 0.0, 0.48]),
        "det": np.array([0, 1, 0], dtype=np.int16),
        "x1": np.array([1.0, 2.0, np.nan], dtype=np.float32),
        "cls": ["player", "referee", "goalkeeper"],
    }
    tbl = build_table("players", "g/key", 2, rows)
    assert tbl.schema == schema.schema("players")
    assert tbl.column("half").to_pylist() == [2, 2, 2]
    assert tbl.column("game").to_pylist() == ["g/key"] * 3
    assert tbl.column("x1").null_count == 1  # NaN becomes null
    assert tbl.column("pitch_x").null_count == 3  # not produced: null
    assert tbl.column("cls").to_pylist() == ["player", "referee", "goalkeeper"]


def test_build_table_rejects_bad_columns():
    rows = {"frame": np.zeros(2, np.int32), "t": np.zeros(2)}
    with pytest.raises(ValueError, match="no column"):
        build_table("frames", "g", 1, {**rows, "bogus": np.zeros(2)})
    with pytest.raises(ValueError, match="has 3 rows"):
        build_table("frames", "g", 1, {**rows, "width": np.zeros(3)})
    with pytest.raises(ValueError, match="must not hold nulls"):
        build_table("frames", "g", 1, rows)
    with pytest.raises(KeyError, match="unknown table"):
        build_table("nope", "g", 1, rows)


def test_fixed_size_list_columns():
    h = np.arange(18, dtype=np.float64).reshape(2, 9)
    rows = {"frame": np.array([0, 1], np.int32), "t": np.array([0.0, 0.5]), "homography": h,
            "valid": np.array([True, False])}
    tbl = build_table("calibration", "g", 1, rows)
    assert tbl.column("homography").to_pylist()[1] == list(range(9, 18))


def _frames_rows(n, start=0):
    f = np.arange(start, start + n, dtype=np.int32)
    return {"frame": f, "t": f * 0.5, "video_frame": f * 12, "width": np.full(n, 64, np.int32),
            "height": np.full(n, 36, np.int32)}


def test_parts_are_replaced_not_duplicated_and_only_committed_games_are_read(tmp_path):
    layout = OutputLayout.at(str(tmp_path))
    write_part(layout, "frames", "gA", "game A", 1, 0, _frames_rows(4))
    write_part(layout, "frames", "gA", "game A", 1, 0, _frames_rows(4))  # rerun of the chunk
    write_part(layout, "frames", "gA", "game A", 1, 1, _frames_rows(2, 4))
    write_part(layout, "frames", "gB", "game B", 1, 0, _frames_rows(3))
    files = sorted(p.name for p in (tmp_path / "tables" / "frames" / "game_id=gA").iterdir())
    assert files == ["h1-c00000.parquet", "h1-c00001.parquet"]
    ds = committed_dataset(layout, "frames", {"gA": 0})
    tbl = ds.to_table()
    assert tbl.num_rows == 6 and set(tbl.column("game_id").to_pylist()) == {"gA"}
    # only gA is committed: gB stays invisible to SQL
    manifest.write_manifest(layout, "gA", {"status": "committed", "game": "game A"})
    manifest.write_manifest(layout, "gB", {"status": "failed", "game": "game B", "errors": ["boom"]})
    con = connect(str(tmp_path))
    assert con.execute("SELECT count(*) FROM frames").fetchone()[0] == 6
    assert con.execute("SELECT count(*) FROM players").fetchone()[0] == 0  # empty view, full schema
    assert "pitch_x" in con.sql("SELECT * FROM players").columns


def test_readers_see_only_the_version_the_manifest_names(tmp_path):
    layout = OutputLayout.at(str(tmp_path))
    write_part(layout, "frames", "gA", "game A", 1, 0, _frames_rows(4))  # version 0, committed
    manifest.write_manifest(layout, "gA", {"status": "committed", "game": "game A"})
    write_part(layout, "frames", "gA", "game A", 1, 0, _frames_rows(3), version=1)  # a redo, written beside it
    names = sorted(p.name for p in (tmp_path / "tables" / "frames" / "game_id=gA").iterdir())
    assert names == ["h1-c00000.parquet", "v1-h1-c00000.parquet"]
    assert connect(str(tmp_path)).execute("SELECT count(*) FROM frames").fetchone()[0] == 4
    manifest.write_manifest(layout, "gA", {"status": "committed", "game": "game A", "version": 1})  # the switch
    assert connect(str(tmp_path)).execute("SELECT count(*) FROM frames").fetchone()[0] == 3
    assert manifest.committed_versions(layout) == {"gA": 1}


def test_manifest_roundtrip_and_validation(tmp_path):
    layout = OutputLayout.at(str(tmp_path))
    assert manifest.read_manifest(layout, "g") is None
    with pytest.raises(ValueError, match="status"):
        manifest.write_manifest(layout, "g", {"status": "running"})
    manifest.write_manifest(layout, "g", {"status": "committed", "rows": {"frames": 3}})
    assert manifest.read_manifest(layout, "g")["rows"] == {"frames": 3}
    assert manifest.committed_game_ids(layout) == ["g"]
    manifest.write_manifest(layout, "g", {"status": "failed", "errors": ["boom"]})
    assert manifest.committed_game_ids(layout) == []
    (tmp_path / "manifests" / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        manifest.read_manifest(layout, "bad")


def test_zarr_half_arrays(tmp_path):
    url = str(tmp_path / "arrays" / "g.zarr")
    arrays.open_game_group(url, mode="w").attrs["game"] = "g"
    arrays.create_half(url, 1, 10, {"topview_cc": arrays.ArraySpec((4, 4, 3), "uint8")}, 4, {"fps": 2.0})
    arrays.write_frames(url, 1, "topview_cc", 4, np.full((4, 4, 4, 3), 7, np.uint8))
    grp = arrays.open_game_group(url)
    arr = grp["1/topview_cc"]
    assert arr.shape == (10, 4, 4, 3) and arr.chunks == (4, 4, 4, 3)
    assert int(arr[5, 0, 0, 0]) == 7 and int(arr[0, 0, 0, 0]) == 0
    assert grp["1"].attrs["fps"] == 2.0 and grp.attrs["game"] == "g"
    meta = json.loads((tmp_path / "arrays" / "g.zarr" / "zarr.json").read_text())
    assert meta["zarr_format"] == 3
