"""Prefect artifacts of a corpus run: a progress bar while games finish, a markdown report at the end.

The formatting is plain functions (``artifact_key``, ``run_report_markdown``); ``RunArtifacts`` holds the
thin Prefect calls, none of which may fail the run: an error there is logged as a warning.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from matchflow.games import _display_url

if TYPE_CHECKING:
    from matchflow.flows.summary import RunSummary


def artifact_key(out: str, suffix: str) -> str:
    """A valid Prefect artifact key (lowercase letters, digits, dashes) for the output root ``out``:
    the tail of the root made a slug, a short hash of the whole root, then ``suffix``."""
    shown = _display_url(out)
    slug = re.sub(r"[^a-z0-9]+", "-", shown.lower()).strip("-")[-32:].strip("-") or "root"
    digest = hashlib.sha1(shown.encode()).hexdigest()[:8]
    tail = re.sub(r"[^a-z0-9]+", "-", suffix.lower()).strip("-")
    return f"matchflow-{slug}-{digest}" + (f"-{tail}" if tail else "")


def _cell(text: Any) -> str:
    """Text fit for one cell of a markdown table: pipes escaped, line breaks as <br>."""
    s = str(text).replace("\\", "\\\\").replace("|", "\\|")
    return re.sub(r"\r\n|\r|\n", "<br>", s).strip()


def run_report_markdown(summary: RunSummary, corpus: str, out: str) -> str:
    """The markdown report of a corpus run: counts, failures with their errors, throughput overall and
    per stage (stage seconds are summed over workers, so a stage's frames/s is per worker)."""
    processed = len(summary.committed) + len(summary.failed)
    lines = [
        f"# Corpus run {_cell(summary.run_id)}",
        "",
        "| | |",
        "|---|---:|",
        f"| corpus | {_cell(_display_url(corpus))} |",
        f"| output root | {_cell(_display_url(out))} |",
        f"| games listed | {summary.games} |",
        f"| corpus folders left out | {len(summary.left_out)} |",
        f"| games processed | {processed} |",
        f"| games skipped (up to date) | {len(summary.skipped)} |",
        f"| games committed | {len(summary.committed)} |",
        f"| games failed | {len(summary.failed)} |",
        f"| frames | {summary.frames} |",
        f"| seconds | {summary.seconds:.2f} |",
        f"| frames/s | {summary.frames_per_second:.2f} |",
    ]
    if summary.stage_seconds:
        lines += ["", "## Stages", "", "| stage | seconds | frames/s |", "|---|---:|---:|"]
        for stage, secs in summary.stage_seconds.items():
            fps = summary.frames / secs if secs > 0 else 0.0
            lines.append(f"| {_cell(stage)} | {secs:.3f} | {fps:.2f} |")
    if summary.failed:
        lines += ["", "## Failed games", "", "| game | errors |", "|---|---|"]
        for game, errors in summary.failed.items():
            lines.append(f"| {_cell(game)} | {'<br>'.join(_cell(e) for e in errors) or '-'} |")
    if summary.left_out:
        lines += ["", "## Corpus folders left out", "", "| folder | why |", "|---|---|"]
        lines += [f"| {_cell(path)} | {_cell(why)} |" for path, why in summary.left_out.items()]
    if summary.committed:
        lines += ["", "## Committed games", "", "| game |", "|---|"]
        lines += [f"| {_cell(g)} |" for g in summary.committed]
    return "\n".join(lines) + "\n"


class RunArtifacts:
    """The artifacts of one corpus run (inside its flow run). At most one API call per finished game."""

    def __init__(self, out: str, logger: logging.Logger | logging.LoggerAdapter) -> None:
        self.out, self.logger = out, logger
        self.total, self.finished = 0, 0
        self.progress_id: UUID | None = None

    def _safe(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:  # an artifact is never worth failing the run
            self.logger.warning("could not %s: %s: %s", what, type(exc).__name__, exc)
            return None

    def start(self, total: int) -> None:
        from prefect.artifacts import create_progress_artifact

        self.total = total
        self.progress_id = self._safe("create the progress artifact", lambda: create_progress_artifact(
            progress=0.0 if total else 100.0,
            key=artifact_key(self.out, "progress"),
            description=f"games finished (committed or failed) of {total} to process",
        ))

    def game_finished(self) -> None:
        from prefect.artifacts import update_progress_artifact

        self.finished += 1
        if self.progress_id is None or not self.total:
            return
        pct = min(100.0, 100.0 * self.finished / self.total)
        self._safe("update the progress artifact", lambda: update_progress_artifact(cast(UUID, self.progress_id), pct))

    def report(self, summary: RunSummary, corpus: str) -> None:
        from prefect.artifacts import create_markdown_artifact

        self._safe("create the run report artifact", lambda: create_markdown_artifact(
            markdown=run_report_markdown(summary, corpus, self.out),
            key=artifact_key(self.out, "report"),
            description=f"corpus run {summary.run_id}",
        ))
