"""End to end: the real corpus flow on a real Dask LocalCluster (2 worker processes) over real video."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from matchflow.config import PipelineConfig
from matchflow.flows.corpus import run_corpus
from matchflow.storage.arrays import open_game_group
from matchflow.storage.contract import CONTRACT_VERSION
from matchflow.storage.corpus import game_id
from matchflow.storage.layout import OutputLayout
from matchflow.storage.query import connect
from matchflow.synth.indexed_video import read_frame_index, write_test_video
from matchflow.video import sample_indices

pytestmark = pytest.mark.e2e

GOOD = {"league/2026/game one": (4.0, 3.0), "league/2026/game two": (2.6, 0.0)}  # seconds per half (0: none)
BAD = "league/2026/broken game"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for key, (s1, s2) in GOOD.items():
        folder = root / key
        folder.mkdir(parents=True)
        if s2:
            write_test_video(folder / "1_224p.mp4", s1, size=(160, 90))
            write_test_video(folder / "1_720p.mp4", s1)  # highest resolution wins (320x180 here)
            write_test_video(folder / "2_720p.mp4", s2)
        else:
            write_test_video(folder / "clip.mp4", s1)  # a one-half game
    bad = root / BAD
    bad.mkdir(parents=True)
    good = write_test_video(bad / "1_720p.mp4", 2.0)
    data = bytearray(good.read_bytes())
    (bad / "2_720p.mkv").write_bytes(b"\x00garbage" * 500)  # not a video at all
    (bad / "1_720p.mp4").write_bytes(bytes(data))
    return root


def _config(**kw):
    base = dict(workers=2, chunk_frames=4, batch_frames=2, retries=0, memory_limit="2GiB", stages=["frames"])
    base.update(kw)
    return PipelineConfig(**base)


def _expected_frames(seconds: float, fps: float = 2.0) -> int:
    return len(sample_indices(int(round(seconds * 25)), 25.0, fps))


def _partition_files(out: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in (out / "tables").rglob("*.parquet")}


def _read_artifacts(out: str):
    """The latest progress and report artifacts of the runs into ``out``, read back from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    from matchflow.flows.report import artifact_key

    found = []
    with get_client(sync_client=True) as client:
        for suffix in ("progress", "report"):
            arts = client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[artifact_key(out, suffix)])),
                sort=ArtifactSort.CREATED_DESC,
                limit=1,
            )
            assert len(arts) == 1, suffix
            found.append(arts[0])
    return found


def test_corpus_run_rerun_force_and_config_change(corpus, tmp_path, prefect_api):
    out = tmp_path / "out"
    layout = OutputLayout.at(str(out))
    summary = run_corpus(str(corpus), str(out), _config())

    # the run's Prefect artifacts: the progress reached 100 %, the report names committed and failed games
    progress, report = _read_artifacts(str(out))
    assert progress.type == "progress" and float(progress.data) == 100.0
    assert report.type == "markdown" and progress.flow_run_id == report.flow_run_id
    assert all(f"| {key} |" in report.data for key in GOOD) and f"| {BAD} | " in report.data
    assert "2_720p.mkv" in report.data and f"| games committed | {len(GOOD)} |" in report.data

    # the corrupt game fails with its file named; the good ones are committed
    assert sorted(summary.committed) == sorted(GOOD)
    assert list(summary.failed) == [BAD]
    assert "2_720p.mkv" in " ".join(summary.failed[BAD])
    expected_total = sum(_expected_frames(s1) + (_expected_frames(s2) if s2 else 0) for s1, s2 in GOOD.values())
    assert summary.frames == expected_total

    # the frames table: one row per sampled frame, the right source frames, only committed games visible
    con = connect(str(out))
    rows = con.execute("SELECT game, half, frame, t, video_frame, width, height, game_id FROM frames ORDER BY ALL").df()
    assert set(rows["game"]) == set(GOOD)
    for key, (s1, s2) in GOOD.items():
        for half, secs in ((1, s1), (2, s2)):
            sub = rows[(rows.game == key) & (rows.half == half)]
            if not secs:
                assert len(sub) == 0
                continue
            idx = sample_indices(int(round(secs * 25)), 25.0, 2.0)
            assert list(sub.frame) == list(range(len(idx)))
            assert list(sub.video_frame) == list(idx)
            np.testing.assert_allclose(sub.t, idx / 25.0)
            assert set(sub.width) == {320} and set(sub.height) == {180}
            assert set(sub.game_id) == {game_id(key)}

    # manifests: committed ones say what produced them; the failed one holds the error
    for key in GOOD:
        m = json.loads((out / "manifests" / f"{game_id(key)}.json").read_text())
        assert m["status"] == "committed" and m["config_fingerprint"] == _config().fingerprint()
        assert m["rows"]["frames"] == len(rows[rows.game == key]) and m["code_version"]
        assert m["stages"] == {"frames": "1"} and m["contract_version"] == CONTRACT_VERSION
    bad_m = json.loads((out / "manifests" / f"{game_id(BAD)}.json").read_text())
    assert bad_m["status"] == "failed" and "2_720p.mkv" in bad_m["errors"][0]

    # the Zarr group of a game, a group per half with the video's attributes
    grp = open_game_group(layout.zarr(game_id("league/2026/game one")))
    assert grp.attrs["game"] == "league/2026/game one"
    assert grp["1"].attrs["sampled_frames"] == _expected_frames(4.0) and grp["2"].attrs["width"] == 320
    assert grp["1"].attrs["video"].endswith("1_720p.mp4")

    # a rerun skips committed up-to-date games and retries the failed one
    before = _partition_files(out)
    again = run_corpus(str(corpus), str(out), _config())
    assert sorted(again.skipped) == sorted(GOOD) and list(again.failed) == [BAD]
    assert _partition_files(out) == before

    # --force redoes everything, with exactly one copy of every row
    forced = run_corpus(str(corpus), str(out), _config(), force=True)
    assert sorted(forced.committed) == sorted(GOOD) and not forced.skipped
    con = connect(str(out))
    assert con.execute("SELECT count(*) FROM frames").fetchone()[0] == expected_total
    dup = con.execute("SELECT count(*) FROM (SELECT game, half, frame FROM frames GROUP BY ALL HAVING count(*) > 1)")
    assert dup.fetchone()[0] == 0

    # another configuration (1 fps, other chunking) redoes the committed games; old rows are gone
    changed = run_corpus(str(corpus), str(out), _config(fps=1.0, chunk_frames=6, batch_frames=3))
    assert sorted(changed.committed) == sorted(GOOD)
    con = connect(str(out))
    n1 = sum(_expected_frames(s1, 1.0) + (_expected_frames(s2, 1.0) if s2 else 0) for s1, s2 in GOOD.values())
    assert con.execute("SELECT count(*) FROM frames").fetchone()[0] == n1


def test_decoded_frames_reach_the_stages(corpus, tmp_path):
    """The frames a chunk decodes are the sampled video frames (read back from the pixels)."""
    from matchflow.pipeline import build_pipeline, plan_chunks, process_chunk
    from matchflow.stages.base import Batch, FrameStage
    from matchflow.video import probe

    seen: list[tuple[int, int]] = []

    class Spy(FrameStage):
        name = "spy"
        reads = ("image",)

        def process(self, batch: Batch) -> None:
            seen.extend((int(v), read_frame_index(img)) for v, img in zip(batch.video_frame, batch.image))

    cfg = _config()
    pipe = build_pipeline(cfg)
    pipe.stages.append(Spy())
    video = corpus / "league/2026/game one/1_720p.mp4"
    info = probe(str(video))
    layout = OutputLayout.at(str(tmp_path))
    for spec in plan_chunks("g", "gid", 1, info, cfg):
        res = process_chunk(spec, cfg, layout, pipe)
        assert res.frames == spec.stop - spec.start and res.rows == {"frames": res.frames}
    assert [v for v, _ in seen] == list(sample_indices(info.n_frames, info.fps, 2.0))
    assert all(v == drawn for v, drawn in seen)
    parts = sorted((tmp_path / "tables" / "frames" / "game_id=gid").glob("*.parquet"))
    assert len(parts) == len(plan_chunks("g", "gid", 1, info, cfg))
    assert sum(pq.read_table(p).num_rows for p in parts) == len(seen)


def test_synthetic_broadcast_corpus_through_the_flow(tmp_path, prefect_api):
    """`matchflow synth` output is a corpus the flow reads: every sampled frame matches the ground truth."""
    import pandas as pd

    from matchflow.synth import synthesize_corpus

    (folder,) = synthesize_corpus(tmp_path / "corpus", games=1, halves=2, seconds=3.0, seed=5, width=640, height=360)
    out = tmp_path / "out"
    summary = run_corpus(str(tmp_path / "corpus"), str(out), _config())
    key = folder.relative_to(tmp_path / "corpus").as_posix()
    assert summary.committed == [key] and not summary.failed
    frames = connect(str(out)).execute("SELECT half, frame, video_frame, t, width, height FROM frames").df()
    for half in (1, 2):
        truth = pd.read_parquet(folder / f"{half}_gt_frames.parquet")
        got = frames[frames.half == half].sort_values("frame")
        assert list(got.video_frame) == list(sample_indices(len(truth), 25.0, 2.0))
        np.testing.assert_allclose(got.t, truth.set_index("frame").loc[got.video_frame, "t"].to_numpy())
        assert set(got.width) == {640} and set(got.height) == {360}
