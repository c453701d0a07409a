"""The corpus run's markdown report and artifact keys (plain functions, no Prefect API)."""

import re

from matchflow.flows.report import RunArtifacts, artifact_key, run_report_markdown
from matchflow.flows.summary import RunSummary


def _row_cells(line: str) -> list[str]:
    """The cells of a markdown table row, splitting on unescaped pipes only."""
    assert line.startswith("| ") and line.endswith(" |")
    return [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]


def test_report_escapes_errors_and_computes_stage_rates():
    summary = RunSummary(
        run_id="r1", games=4, skipped=["league/s"], committed=["league/a", "league/b"],
        failed={"league/bad": ["ValueError: a | b\nsecond line", "OSError: x"]},
        frames=120, seconds=10.0, stage_seconds={"decode": 4.0, "frames": 0.5, "write": 0.0},
    )
    md = run_report_markdown(summary, "s3://user:pw@bucket/corpus", "s3://key:secret@bucket/out")
    assert "pw" not in md and "secret" not in md
    assert "| corpus | s3://bucket/corpus |" in md and "| output root | s3://bucket/out |" in md
    for label, n in (("games listed", 4), ("games processed", 3), ("games skipped (up to date)", 1),
                     ("games committed", 2), ("games failed", 1), ("frames", 120)):
        assert f"| {label} | {n} |" in md
    assert "| frames/s | 12.00 |" in md

    # the failed game: one table row, two cells, the pipe escaped and the line breaks as <br>
    (row,) = [line for line in md.splitlines() if line.startswith("| league/bad |")]
    assert _row_cells(row) == ["league/bad", r"ValueError: a \| b<br>second line<br>OSError: x"]

    # per stage: frames / seconds of the stage (0 seconds: no rate)
    assert "| decode | 4.000 | 30.00 |" in md and "| frames | 0.500 | 240.00 |" in md
    assert "| write | 0.000 | 0.00 |" in md
    assert "| league/a |" in md and "| league/b |" in md


def test_artifact_keys_are_valid_and_distinct():
    keys = {artifact_key(o, "progress") for o in ("/tmp/A_b/out", "/tmp/a-b/out", "s3://k:s@bucket/Out 1")}
    assert len(keys) == 3
    for k in keys | {artifact_key("", "report"), artifact_key("/x/" + "y" * 300, "report")}:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", k) and len(k) <= 64
    assert "s-bucket" not in artifact_key("s3://k:s@bucket/out", "report")  # no credentials in the key


def test_artifacts_never_fail_outside_a_flow_run(caplog):
    """Without a flow run or API the Prefect calls fail; the run only gets warnings."""
    import logging

    arts = RunArtifacts("/tmp/out", logging.getLogger("test.report"))
    arts.game_finished()  # no progress artifact was created: no call at all
    arts._safe("do something", lambda: 1 / 0)
    assert "could not do something: ZeroDivisionError" in caplog.text
