"""The `matchflow` command as a user runs it: subprocesses, real files, a run killed and started again."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from matchflow.storage.query import connect
from matchflow.synth.indexed_video import write_test_video
from matchflow.video import sample_indices

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_api")]


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "matchflow.cli", *args], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-corpus")
    for g in range(3):
        for half in (1, 2):
            folder = root / f"season/game {g}"
            folder.mkdir(parents=True, exist_ok=True)
            write_test_video(folder / f"{half}_720p.mp4", 12.0, size=(192, 108))
    return root


def test_bad_configuration_fails_before_any_work(small_corpus, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("fps: 2\nbatch_frame: 4\n")
    out = tmp_path / "out"
    res = _cli("run", str(small_corpus), "--out", str(out), "--config", str(cfg))
    assert res.returncode == 2
    assert "batch_frame" in res.stderr and str(cfg) in res.stderr
    assert not out.exists()
    cfg.write_text("stages: [frames, nope]\n")
    res = _cli("run", str(small_corpus), "--out", str(out), "--config", str(cfg))
    assert res.returncode == 2 and "unknown stage 'nope'" in res.stderr and not out.exists()


def test_run_killed_at_any_moment_then_rerun_leaves_one_copy(small_corpus, tmp_path):
    out = tmp_path / "out"
    cfg = tmp_path / "run.yaml"
    cfg.write_text("stages: [frames]\nchunk_frames: 2\nbatch_frames: 1\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "matchflow.cli", "run", str(small_corpus), "--out", str(out),
         "--workers", "2", "--config", str(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    deadline = time.time() + 180
    tables = out / "tables" / "frames"
    while time.time() < deadline and proc.poll() is None:
        if tables.exists() and len(list(tables.rglob("*.parquet"))) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI, its Prefect server and its Dask workers at once
    proc.wait()
    committed_before = [json.loads(p.read_text())["status"] for p in (out / "manifests").glob("*.json")] \
        if (out / "manifests").exists() else []
    assert len([s for s in committed_before if s == "committed"]) < 3

    res = _cli("run", str(small_corpus), "--out", str(out), "--workers", "2", "--config", str(cfg))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 games" in res.stdout and "0 failed" in res.stdout
    per_half = len(sample_indices(300, 25.0, 2.0))
    con = connect(str(out))
    assert con.execute("SELECT count(*) FROM frames").fetchone()[0] == 3 * 2 * per_half
    assert con.execute(
        "SELECT count(*) FROM (SELECT game, half, frame FROM frames GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()[0] == 0

    q = _cli("sql", str(out), "SELECT game, count(*) AS n FROM frames GROUP BY game ORDER BY game", "--format", "csv")
    assert q.returncode == 0, q.stderr
    assert q.stdout.strip().splitlines() == ["game,n"] + [f"season/game {g},{2 * per_half}" for g in range(3)]
    st = _cli("status", str(out))
    assert st.returncode == 0 and st.stdout.count("committed") == 3


def test_failed_game_gives_nonzero_exit_and_names_the_file(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "good").mkdir(parents=True)
    write_test_video(corpus / "good" / "1_720p.mp4", 3.0)
    (corpus / "bad").mkdir()
    full = write_test_video(corpus / "bad" / "1_720p.mp4", 3.0).read_bytes()
    (corpus / "bad" / "1_720p.mp4").write_bytes(full[: len(full) // 2])  # truncated
    out = tmp_path / "out"
    res = _cli("run", str(corpus), "--out", str(out), "--workers", "2", "--stages", "frames")
    assert res.returncode == 1
    assert "1 committed" in res.stdout and "1 failed" in res.stdout
    assert "FAILED bad" in res.stdout and "1_720p.mp4" in res.stdout
    assert "1/2 done, 1 failed" in res.stderr  # progress lines
