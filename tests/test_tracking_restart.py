"""A run killed in the middle of the game-level tracking stage, then started again: one copy of every row, and
the tracks and teams of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from matchflow.storage.query import connect

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_api")]

CONFIG = """\
workers: 2
chunk_frames: 4
batch_frames: 2
retries: 0
memory_limit: 3GiB
stages: [frames, calibration, detection, localization, "tests.stages:PausingTracking", teams]
stage_params:
  detection: {input_height: 360}
  tracking: {appearance: colour}
  teams: {appearance: colour}
"""


def _run(corpus: Path, out: Path, cfg: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "matchflow.cli", "run", str(corpus), "--out", str(out),
                             "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, **(env or {})})


def _rows(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    db = connect(str(out))
    players = db.execute("SELECT half, frame, det, x1, y1, track, team FROM players ORDER BY half, frame, det").df()
    tracks = db.execute("SELECT half, track, first_frame, last_frame, frames, team, cls FROM tracks "
                        "ORDER BY half, track").df()
    return players, tracks


def test_a_run_killed_inside_the_tracking_stage_then_rerun_equals_an_uninterrupted_one(tmp_path):
    from matchflow.synth import synthesize_corpus

    corpus = tmp_path / "corpus"
    synthesize_corpus(corpus, games=1, halves=2, seconds=6.0, seed=4, width=640, height=360)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(CONFIG)

    reference = _run(corpus, tmp_path / "reference", cfg)
    stdout, stderr = reference.communicate(timeout=600)
    assert reference.returncode == 0, stdout + stderr

    out, flag = tmp_path / "out", tmp_path / "paused"
    proc = _run(corpus, out, cfg, {"MATCHFLOW_TEST_PAUSE": str(flag)})
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not flag.exists():
        time.sleep(0.05)
    assert flag.exists(), "the run never reached the tracking stage: " + (proc.stderr.read() if proc.poll() is not None else "")
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI, its Dask workers and the stage in the middle of its writes
    proc.wait()
    # killed in the middle: the first chunk of a half has its tracks, later chunks not yet, nothing committed
    parts = sorted((out / "tables" / "players").rglob("*.parquet"))
    tracked = [pq.read_table(p, columns=["track"]).column("track").null_count == 0 for p in parts]
    assert any(tracked) and not all(tracked)
    statuses = [json.loads(m.read_text())["status"] for m in (out / "manifests").glob("*.json")]
    assert "committed" not in statuses

    again = _run(corpus, out, cfg)  # the flag file exists: the stage runs through this time
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stdout + stderr
    assert "1 committed" in stdout

    players, tracks = _rows(out)
    ref_players, ref_tracks = _rows(tmp_path / "reference")
    assert len(players) > 50 and players.track.notna().all()
    assert not players.duplicated(["half", "frame", "det"]).any()  # exactly one copy of every row
    pd.testing.assert_frame_equal(players, ref_players)  # the tracks and teams of the uninterrupted run
    pd.testing.assert_frame_equal(tracks, ref_tracks)
