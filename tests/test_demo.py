"""The first five minutes: `matchflow demo` runs the default preset (every soccer stage) through the real flow,
answers its sample queries with pitch positions and writes a report whose frames show lines and boxes; `matchflow
run` explains what it needs."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from matchflow.config import PRESETS
from matchflow.storage.query import connect

pytestmark = pytest.mark.e2e


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "matchflow.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_demo_runs_the_default_preset_and_ends_with_the_report(tmp_path):
    res = _cli("demo", "--dir", str(tmp_path / "demo"), "--seconds", "2", "--workers", "2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = tmp_path / "demo" / "out"
    [manifest] = [json.loads(p.read_text()) for p in (out / "manifests").glob("*.json")]
    assert manifest["status"] == "committed"
    assert manifest["config"]["stages"] == list(PRESETS["soccer"])  # the default configuration: the whole preset
    assert sorted(manifest["stages"]) == sorted(PRESETS["soccer"])
    # progress during the rendering and the run, the summary with frames per second per stage
    assert "1/4 rendering" in res.stdout and "half 1: 50 frames" in res.stderr
    assert re.search(r"games 1/1 done, 0 failed", res.stderr)
    assert re.search(r"frames per second of worker time, by stage: .*calibration [\d.]+.*detection [\d.]+", res.stdout)
    # the sample queries answer with pitch positions
    assert "the ball's path on the pitch" in res.stdout and "ball_x_m" in res.stdout
    db = connect(str(out))
    positions = db.execute("SELECT count(*) FROM players WHERE on_field AND pitch_x IS NOT NULL").fetchone()[0]
    assert positions > 0
    # every detected person has a re-identification embedding
    assert db.execute("SELECT count(*) FROM reid").fetchone()[0] == \
        db.execute("SELECT count(*) FROM players").fetchone()[0] > 0
    # and a track; players on the field mostly have a team
    assert db.execute("SELECT count(*) FROM players WHERE track IS NULL").fetchone()[0] == 0
    assert db.execute("SELECT count(DISTINCT team) FROM players WHERE team IS NOT NULL").fetchone()[0] == 2
    # the report is written and its path is the last line
    last = res.stdout.strip().splitlines()[-1]
    report = out / "report.html"
    assert last.endswith(str(report)) and report.is_file()
    page = report.read_text()
    assert page.count("data:image/jpeg;base64") >= 4  # frames (lines and boxes drawn in) and top views
    assert "calibration valid" in page and "people" in page


def test_run_says_what_it_needs(tmp_path):
    res = _cli("run", str(tmp_path), timeout=120)
    assert res.returncode == 2 and "needs --out OUT" in res.stderr
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no video here")
    res = _cli("run", str(tmp_path), "--out", str(tmp_path / "out"), timeout=120)
    assert res.returncode == 2
    assert "holds no .mkv or .mp4 video" in res.stderr and "1_<name>.mkv|mp4" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()
