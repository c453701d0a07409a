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
    """A bad video fails its game with one line naming the file, and no traceback on the console (they are in the
    run's log); folders left out of the corpus are listed with why."""
    corpus = tmp_path / "corpus"
    (corpus / "good").mkdir(parents=True)
    write_test_video(corpus / "good" / "1_720p.mp4", 3.0)
    (corpus / "bad").mkdir()
    full = write_test_video(corpus / "bad" / "1_720p.mp4", 3.0).read_bytes()
    (corpus / "bad" / "1_720p.mp4").write_bytes(full[: len(full) // 2])  # truncated
    (corpus / ".trash").mkdir()
    (corpus / ".trash" / "1_720p.mp4").write_bytes(full)
    elsewhere = tmp_path / "elsewhere" / "game"
    elsewhere.mkdir(parents=True)
    (elsewhere / "1_720p.mp4").write_bytes(full)
    (corpus / "linked").symlink_to(elsewhere, target_is_directory=True)
    out = tmp_path / "out"
    env = {**os.environ, "MATCHFLOW_STATE_DIR": str(tmp_path / "state")}
    res = _cli("run", str(corpus), "--out", str(out), "--workers", "2", "--stages", "frames", env=env)
    assert res.returncode == 1
    assert "2 games, 1 committed" in res.stdout and "1 failed" in res.stdout
    assert "FAILED bad" in res.stdout and "1_720p.mp4" in res.stdout
    assert "LEFT OUT .trash: hidden" in res.stdout and "LEFT OUT linked: a symbolic link to a folder" in res.stdout
    assert "1/2 done, 1 failed" in res.stderr  # progress lines
    assert "Traceback" not in res.stderr and "Error logging to API" not in res.stderr, res.stderr
    logs = list((tmp_path / "state" / "logs").glob("run-*.log"))
    assert len(logs) == 1 and str(logs[0]) in res.stderr
    assert "Traceback" in logs[0].read_text() and "VideoError" in logs[0].read_text()


def test_readers_keep_the_committed_version_while_a_forced_rerun_redoes_it(small_corpus, tmp_path):
    """A reader querying in a loop during `run --force` sees every game whole, in one version, all along; a redo
    killed midway leaves the committed version to readers and the next run removes what it left."""
    from matchflow.storage.layout import OutputLayout
    from matchflow.storage.manifest import committed_versions, leftover_versions
    from matchflow.storage.query import query

    out = tmp_path / "out"
    cfg = tmp_path / "run.yaml"
    cfg.write_text("stages: [frames]\nchunk_frames: 2\nbatch_frames: 1\n")
    base = ["run", str(small_corpus), "--out", str(out), "--workers", "2", "--config", str(cfg)]
    assert _cli(*base).returncode == 0
    per_game = 2 * len(sample_indices(300, 25.0, 2.0))
    layout = OutputLayout.at(str(out))
    sql = "SELECT game, count(*) AS n, count(DISTINCT (half, frame)) AS d FROM frames GROUP BY game ORDER BY game"
    expected = [(f"season/game {g}", per_game, per_game) for g in range(3)]

    proc = subprocess.Popen([sys.executable, "-m", "matchflow.cli", *base, "--force"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reads, seen = 0, set()
    while proc.poll() is None:
        seen.add(tuple(committed_versions(layout).values()))
        assert query(str(out), sql).fetchall() == expected  # never 0, never doubled, never half a game
        reads += 1
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stdout + stderr
    assert reads >= 5
    assert len(seen) >= 2, seen  # the reads spanned at least one switch of version
    assert committed_versions(layout) == {gid: 1 for gid in committed_versions(layout)}
    parts = list((out / "tables" / "frames").rglob("*.parquet"))
    assert parts and all(p.name.startswith("v1-") for p in parts)
    assert sorted(p.name for p in (out / "arrays").iterdir()) == sorted(f"{g}.v1.zarr" for g in committed_versions(layout))
    assert query(str(out), sql).fetchall() == expected

    # killed while it redoes: readers keep version 1, status names what the redo left, the next run removes it
    proc = subprocess.Popen([sys.executable, "-m", "matchflow.cli", *base, "--force"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if len(list((out / "tables" / "frames").rglob("v2-*.parquet"))) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the forced run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert query(str(out), sql).fetchall() == expected
    assert leftover_versions(layout)
    st = _cli("status", str(out))
    assert "leftover" in st.stdout and "version(s) 2" in st.stdout, st.stdout
    res = _cli(*base, "--force")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not leftover_versions(layout)
    assert query(str(out), sql).fetchall() == expected
    versions = set(committed_versions(layout).values())
    assert versions == {2}
    assert all(p.name.startswith("v2-") for p in (out / "tables" / "frames").rglob("*.parquet"))
