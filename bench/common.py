"""Steps the benchmark scripts share: a work folder, a synthesized corpus, timed rounds, the command line,
the machine and its load, and the script's section of bench/RESULTS.md (written by bench/results.py)."""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from results import machine_description, update_section

__all__ = [
    "header", "invocation", "load_average", "machine_description", "machine_with_load", "publish",
    "synthesized_corpus", "timed_rounds", "update_section", "work_folder",
]

T = TypeVar("T")


def work_folder(keep: str | None, prefix: str) -> tuple[tempfile.TemporaryDirectory, Path]:
    """A temporary directory and the folder to work in: ``keep`` when given, else the temporary one."""
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    return tmp, Path(keep or tmp.name)


def synthesized_corpus(corpus: Path, games: int, seconds: float, seed: int) -> Path:
    """``games`` games x 2 halves x ``seconds`` s synthesized into ``corpus``; an existing one is reused."""
    if not corpus.exists():
        from matchflow.synth import synthesize_corpus

        print(f"synthesizing {games} games x 2 halves x {seconds:g} s into {corpus}", flush=True)
        synthesize_corpus(corpus, games=games, halves=2, seconds=seconds, seed=seed)
    return corpus


def timed_rounds(run: Callable[[], T], rounds: int, device: str = "cpu") -> tuple[list[float], list[float], T | None]:
    """Wall and process (CPU) seconds of each of ``rounds`` calls of ``run``, and the last call's result.
    On ``cuda`` the device is synchronized before and after each call."""
    wall: list[float] = []
    cpu: list[float] = []
    out: T | None = None
    for _ in range(rounds):
        _synchronize(device)
        t0, c0 = time.perf_counter(), time.process_time()
        out = run()
        _synchronize(device)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu, out


def _synchronize(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def invocation(script: str) -> str:
    """The command line that ran ``script`` (its ``__file__``) with this process's arguments, from the repository
    root; it ends with a space when there are no arguments."""
    return f".venv/bin/python bench/{Path(script).name} {shlex.join(sys.argv[1:])}"


def load_average() -> float:
    """The 1-minute load average of the machine."""
    return os.getloadavg()[0]


def machine_with_load(before: float, after: float) -> str:
    """``Machine: ...`` with the 1-minute load averages taken before and after the run."""
    return f"Machine: {machine_description()}; 1-minute load average {before:.1f} before and {after:.1f} after"


def header(command: str, machine_note: str = "") -> list[str]:
    """The first lines of a section: the command and the machine (``machine_note`` after its description)."""
    return [f"Command: `{command}`  ", f"Machine: {machine_description()}{machine_note}  "]


def publish(title: str, body: str, write: bool = True) -> None:
    """Print ``body`` and, when ``write``, make it the section ``title`` of bench/RESULTS.md."""
    print(body)
    if write:
        update_section(title, body)
