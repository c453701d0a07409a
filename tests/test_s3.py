"""A whole corpus from and to S3 (a moto server on loopback), queried with SQL."""

import json

import pytest
import s3fs

from matchflow.config import PipelineConfig
from matchflow.flows.corpus import run_corpus
from matchflow.storage.arrays import open_game_group
from matchflow.storage.corpus import game_id, list_games
from matchflow.storage.layout import OutputLayout
from matchflow.storage.query import connect
from matchflow.synth.indexed_video import write_test_video
from matchflow.video import sample_indices

pytestmark = pytest.mark.e2e


def test_corpus_from_and_to_s3(s3_endpoint, prefect_api, tmp_path):
    fs = s3fs.S3FileSystem()
    fs.mkdir("corpus-bucket")
    fs.mkdir("out-bucket")
    keys = ["serie a/2026/match é 1", "serie a/2026/match 2"]
    for key in keys:
        for half in (1, 2):
            local = write_test_video(tmp_path / f"{half}.mp4", 3.0)
            fs.put_file(str(local), f"corpus-bucket/soccer/{key}/{half}_720p.mp4")
    fs.put_file(str(local), "corpus-bucket/soccer/.hidden/1_720p.mp4")

    games = list_games("s3://corpus-bucket/soccer")
    assert [g.key for g in games] == sorted(keys)
    assert games[0].halves[1].startswith("s3://corpus-bucket/soccer/")

    out = "s3://out-bucket/run-1"
    cfg = PipelineConfig(stages=["frames"], workers=2, chunk_frames=4, batch_frames=2, retries=0, memory_limit="2GiB")
    summary = run_corpus("s3://corpus-bucket/soccer", out, cfg)
    assert sorted(summary.committed) == sorted(keys) and not summary.failed

    per_half = len(sample_indices(75, 25.0, 2.0))
    con = connect(out)
    got = con.execute("SELECT game, count(*) FROM frames GROUP BY game ORDER BY game").fetchall()
    assert got == [(k, 2 * per_half) for k in sorted(keys)]
    manifest = json.loads(fs.cat_file(f"out-bucket/run-1/manifests/{game_id(keys[0])}.json"))
    assert manifest["status"] == "committed"
    assert "testing" not in json.dumps(manifest)  # no credentials in what we write
    grp = open_game_group(OutputLayout.at(out).zarr(game_id(keys[1])))
    assert grp["2"].attrs["sampled_frames"] == per_half

    again = run_corpus("s3://corpus-bucket/soccer", out, cfg)
    assert sorted(again.skipped) == sorted(keys)
