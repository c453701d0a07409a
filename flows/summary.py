"""What a corpus run did: the summary the flow returns, the CLI prints and the run report shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunSummary:
    """What a corpus run did; ``failed`` maps game keys to their errors, ``left_out`` the corpus folders not read
    as games (hidden ones, links to folders) to why."""

    run_id: str
    games: int = 0
    skipped: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    committed: list[str] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "games": self.games,
            "skipped": self.skipped,
            "left_out": self.left_out,
            "committed": self.committed,
            "failed": self.failed,
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(self.frames_per_second, 2),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        """The summary :meth:`as_dict` gave (as the flow returns it)."""
        return cls(run_id=data["run_id"], games=data["games"], skipped=data["skipped"],
                   left_out=data.get("left_out", {}), committed=data["committed"], failed=data["failed"],
                   frames=data["frames"], seconds=data["seconds"], stage_seconds=data["stage_seconds"])

    def add_seconds(self, seconds: dict[str, float]) -> None:
        for k, s in seconds.items():
            self.stage_seconds[k] = self.stage_seconds.get(k, 0.0) + s
