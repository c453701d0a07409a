"""Commands that read an output root, through the real CLI: they refuse what is not one, `sql` is read-only, and
`status` tells committed, failed and interrupted games apart; `run` rejects bad options before any work."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from matchflow.storage.layout import OutputLayout, write_marker
from matchflow.storage.manifest import write_manifest
from matchflow.storage.tables import write_part


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "matchflow.cli", *args], capture_output=True, text=True, timeout=120)


def _one_error_line(res: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2 with one ``error:`` line on stderr that holds ``words``, and no traceback."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert all(w in lines[0] for w in words), (words, lines[0])


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An output root with one committed game (two frames)."""
    root = tmp_path / "out"
    layout = OutputLayout.at(str(root))
    write_marker(layout)
    write_part(layout, "frames", "gid", "game", 1, 0, {
        "frame": np.array([0, 1], np.int32), "t": np.array([0.0, 0.5]), "video_frame": np.array([0, 12], np.int32),
        "width": np.array([64, 64], np.int32), "height": np.array([36, 36], np.int32)})
    write_manifest(layout, "gid", {"status": "committed", "game": "game", "sampled_frames": 2})
    return root


def test_sql_is_read_only(out: Path, tmp_path: Path) -> None:
    ok = _cli("sql", str(out), "SELECT count(*) AS n FROM frames", "--format", "csv")
    assert ok.returncode == 0 and ok.stdout.split() == ["n", "2"]
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    escapes = [
        f"COPY (SELECT * FROM frames) TO '{tmp_path / 'copy.csv'}'",
        f"SELECT * FROM read_csv('{secret}')",
        f"ATTACH '{tmp_path / 'other.duckdb'}' AS other",
        "SET enable_external_access = true",
        "INSTALL httpfs",
    ]
    for sql in escapes:
        res = _cli("sql", str(out), sql)
        assert res.returncode == 2, (sql, res.stdout, res.stderr)
        assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "copy.csv").exists() and not (tmp_path / "other.duckdb").exists()


def test_sql_errors_are_one_line(out: Path) -> None:
    for sql, word in (("SELEC 1", "syntax error"), ("SELECT * FROM nothere", "nothere")):
        res = _cli("sql", str(out), sql)
        assert res.returncode == 2 and word in res.stderr and "Traceback" not in res.stderr


def test_readers_refuse_what_is_not_an_output_root(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for args in (("sql", str(plain), "SELECT 1"), ("status", str(plain)), ("report", str(plain)),
                 ("export", str(plain), "--format", "mot", "--dest", str(tmp_path / "dest"))):
        res = _cli(*args)
        assert res.returncode == 2, args
        assert "is not a Matchflow output root" in res.stderr and "Traceback" not in res.stderr
    assert not list(plain.iterdir()) and not (tmp_path / "dest").exists()  # nothing written
    res = _cli("status", str(tmp_path / "nothere"))
    assert res.returncode == 2 and "does not exist" in res.stderr


def test_status_lists_failed_and_interrupted_games(out: Path) -> None:
    assert _cli("status", str(out)).returncode == 0
    layout = OutputLayout.at(str(out))
    write_part(layout, "frames", "half-done", "half done", 1, 0, {
        "frame": np.array([0], np.int32), "t": np.array([0.0]), "video_frame": np.array([0], np.int32),
        "width": np.array([64], np.int32), "height": np.array([36], np.int32)})  # a killed run's chunk
    res = _cli("status", str(out))
    assert res.returncode == 1 and "interrupted" in res.stdout and "half-done" in res.stdout
    write_manifest(layout, "half-done", {"status": "failed", "game": "half done", "errors": ["boom"]})
    res = _cli("status", str(out))
    assert res.returncode == 1 and "failed" in res.stdout and "boom" in res.stdout and "interrupted" not in res.stdout


def test_run_rejects_bad_options_before_any_work(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus" / "g"
    corpus.mkdir(parents=True)
    (corpus / "1_720p.mp4").write_bytes(b"")
    t0 = time.perf_counter()
    res = _cli("run", str(tmp_path / "corpus"), "--out", str(tmp_path / "o"), "--memory-limit", "foo")
    assert res.returncode == 2 and "memory_limit" in res.stderr and "'foo'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and time.perf_counter() - t0 < 30
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = _cli("run", str(tmp_path / "corpus"), "--out", str(afile), "--stages", "frames")
    assert res.returncode == 2 and "is a file" in res.stderr and afile.read_text() == "x"
    assert not (tmp_path / "o").exists()


def test_every_command_rejects_bad_options_in_one_line(tmp_path: Path) -> None:
    d = str(tmp_path / "d")
    cases = [
        (("run", d, "--out", d, "--workers", "x"), ("--workers", "'x'")),
        (("run", d, "--out", d, "--nope"), ("--nope",)),
        (("synth", d, "--games", "0"), ("--games", "greater than or equal to 1")),
        (("synth", d, "--cutaways", "2"), ("--cutaways", "less than or equal to 1")),
        (("synth-detection", d, "--width", "3"), ("--width", "'3'")),
        (("sql", d, "SELECT 1", "--max-rows", "-1"), ("--max-rows",)),
        (("report", d, "--width", "5"), ("--width",)),
        (("export", d, "--format", "csv", "--dest", d), ("--format", "'csv'")),
        (("demo", "--seconds", "0"), ("--seconds", "greater than 0")),
        (("train", "detector", "--out", d, "--crop", "30"), ("--crop", "multiple of 16")),
        (("eval", "calibration", d, d, "--min-pitch-fraction", "nan"), ("--min-pitch-fraction", "finite")),
        (("status",), ("out",)),
    ]
    for args, words in cases:
        _one_error_line(_cli(*args), *words)
    assert not (tmp_path / "d").exists()  # nothing was started


def test_debug_shows_the_traceback_of_a_user_error(out: Path) -> None:
    res = _cli("sql", str(out), "SELEC 1")
    assert res.returncode == 2 and res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    res = _cli("--debug", "sql", str(out), "SELEC 1")
    assert res.returncode == 2 and "Traceback (most recent call last)" in res.stderr
    assert "\nerror: " in res.stderr


def test_an_export_with_nothing_to_export_exits_nonzero_unless_allowed(out: Path, tmp_path: Path) -> None:
    layout = OutputLayout.at(str(out))
    write_part(layout, "players", "gid", "game", 1, 0, {
        "frame": np.array([0, 1], np.int32), "t": np.array([0.0, 0.5]), "det": np.array([0, 0], np.int16),
        "track": [None, None], "x1": np.ones(2, np.float32), "y1": np.ones(2, np.float32),
        "x2": np.full(2, 9, np.float32), "y2": np.full(2, 9, np.float32), "cls": ["player"] * 2})
    dest = tmp_path / "mot"
    res = _cli("export", str(out), "--format", "mot", "--dest", str(dest))
    assert res.returncode == 1 and "nothing to export" in res.stderr and "no tracked box" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not dest.exists()
    res = _cli("export", str(out), "--format", "mot", "--dest", str(dest), "--allow-empty")
    assert res.returncode == 0 and (dest / "gid" / "1_mot.txt").read_text() == ""
