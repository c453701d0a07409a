"""A synthetic SoccerNet-like corpus: games of H.264 broadcast halves with frame-exact ground truth.

Layout: ``OUT_DIR/synthetic/2026-2027/<YYYY-MM-DD - HH-MM Home 0 - 0 Away>/`` holding per half ``<h>_<H>p.mp4``,
``<h>_gt_frames.parquet`` and ``<h>_gt_players.parquet``, and ``game.json``. Homographies map image pixels to
pitch metres (SoccerNet pitch frame: origin at the centre spot, +y toward the main camera, z down) and are
stored as 9 float64, row-major, normalised so that the last entry is 1. Colours in game.json are BGR.

Each half's main camera is a camera of the World Cup 2014 prior, drawn from all of it or from one split of it
(``cameras``: the cameras that build a calibration's dictionary of views, or the held-out ones). With
``cutaways`` > 0 the director cuts away from it for close-ups of players and crowd shots; the ``shot`` column
of the frame truth says which shot each frame is ("main", "closeup", "crowd"), and its homography is that of
the camera that filmed it.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from matchflow.models.geometry.camera import camera_to_soccernet_dict, normalize_homography
from matchflow.models.geometry.camera_prior import prior_split

from .cutaways import Cutaway, insert_cutaways
from .director import follow_play, pick_base_camera
from .play import simulate_half
from .render import FrameRenderer
from .stadium import REFEREE_KIT, Stadium, Team, random_stadium, random_teams
from .video import H264Writer

__all__ = ["synthesize_corpus", "render_half", "HalfJob", "GENERATOR_VERSION", "FRAMES_SCHEMA", "PLAYERS_SCHEMA"]

GENERATOR_VERSION = "3"  # 3: shirt numbers, and skin, hair, boots and sleeves vary per person
CAMERA_SPLITS = ("all", "dictionary", "heldout")
SEASON = "2026-2027"
LEAGUE = "synthetic"

FRAMES_SCHEMA = pa.schema(
    [
        ("frame", pa.int32()), ("t", pa.float64()),
        ("homography", pa.list_(pa.float64())), ("homography_inv", pa.list_(pa.float64())),
        ("ball_x", pa.float64()), ("ball_y", pa.float64()),
        ("ball_pitch_x", pa.float64()), ("ball_pitch_y", pa.float64()), ("ball_z", pa.float64()),
        ("ball_visible", pa.bool_()), ("pitch_fraction", pa.float32()),
        ("focal_length_px", pa.float64()), ("pan_degrees", pa.float64()), ("tilt_degrees", pa.float64()),
        ("roll_degrees", pa.float64()), ("shot", pa.string()),
    ]
)
PLAYERS_SCHEMA = pa.schema(
    [
        ("frame", pa.int32()), ("person", pa.int16()), ("team", pa.int8()), ("role", pa.string()),
        ("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
        ("visible_fraction", pa.float32()), ("pitch_x", pa.float32()), ("pitch_y", pa.float32()),
    ]
)


@dataclass(frozen=True)
class HalfJob:
    """Everything a worker needs to render one half into ``game_dir``."""

    game_dir: str
    seed: int
    game: int
    half: int
    frames: int
    fps: int
    width: int
    height: int
    gop: int
    stadium: Stadium
    teams: tuple[Team, Team]
    cameras: str = "all"  # split of the camera prior the main camera is drawn from
    cutaways: float = 0.0  # share of the half's time in cut-away shots


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def video_name(half: int, height: int) -> str:
    """SoccerNet-style video file name of a half, e.g. ``1_720p.mp4``."""
    return f"{half}_{height}p.mp4"


def render_half(job: HalfJob) -> dict:
    """Simulate, film, encode and annotate one half; returns its camera and timings (JSON-able)."""
    start = time.perf_counter()
    size = (job.width, job.height)
    team0_attacks = 1.0 if job.half % 2 == 1 else -1.0
    play = simulate_half(_rng(job.seed, job.game, 2, job.half), job.teams, job.frames, job.fps, team0_attacks)
    cam_rng = _rng(job.seed, job.game, 3, job.half)
    base = pick_base_camera(cam_rng, job.cameras)
    cameras = follow_play(cam_rng, play, base, size)
    shots = ["main"] * len(cameras)
    cutaways: list[Cutaway] = []
    if job.cutaways > 0:
        cameras, shots, cutaways = insert_cutaways(
            _rng(job.seed, job.game, 4, job.half), play, job.stadium, base, cameras, job.cutaways, size
        )
    # the stadium's textures are the same in both halves of a game
    renderer = FrameRenderer(job.stadium, job.teams, play, _rng(job.seed, job.game, 1), size, job.half)
    pitch = job.stadium.pitch
    game_dir = Path(job.game_dir)
    frame_rows: dict[str, list] = {name: [] for name in FRAMES_SCHEMA.names}
    person_rows: dict[str, list] = {name: [] for name in PLAYERS_SCHEMA.names}
    persons = play.persons
    with H264Writer(game_dir / video_name(job.half, job.height), job.width, job.height, job.fps, job.gop) as video:
        for f, cam in enumerate(cameras):
            image, truth = renderer.render(cam, f)
            video.write(image)
            h_inv = normalize_homography(cam.homography())
            h = normalize_homography(np.linalg.inv(h_inv))
            pan, tilt, roll = np.degrees(cam.pan_tilt_roll)
            ball = play.ball[f]
            row = {
                "frame": f, "t": f / job.fps, "homography": h.ravel().tolist(),
                "homography_inv": h_inv.ravel().tolist(), "ball_x": truth.ball_xy[0], "ball_y": truth.ball_xy[1],
                "ball_pitch_x": float(ball[0]), "ball_pitch_y": float(ball[1]), "ball_z": float(ball[2]),
                "ball_visible": truth.ball_visible, "pitch_fraction": pitch.visible_fraction(h_inv, size),
                "focal_length_px": cam.focal_px, "pan_degrees": pan, "tilt_degrees": tilt, "roll_degrees": roll,
                "shot": shots[f],
            }
            for k, v in row.items():
                frame_rows[k].append(v)
            for pt in truth.persons:
                who = persons[pt.person]
                for k, v in (
                    ("frame", f), ("person", pt.person), ("team", who.team), ("role", who.role),
                    ("x1", pt.box[0]), ("y1", pt.box[1]), ("x2", pt.box[2]), ("y2", pt.box[3]),
                    ("visible_fraction", pt.visible_fraction), ("pitch_x", pt.pitch_xy[0]), ("pitch_y", pt.pitch_xy[1]),
                ):
                    person_rows[k].append(v)
    pq.write_table(pa.table(frame_rows, schema=FRAMES_SCHEMA), game_dir / f"{job.half}_gt_frames.parquet")
    pq.write_table(pa.table(person_rows, schema=PLAYERS_SCHEMA), game_dir / f"{job.half}_gt_players.parquet")
    return {
        "half": job.half,
        "video": video_name(job.half, job.height),
        "frames": job.frames,
        "home_attacks_toward_x": float(team0_attacks * 52.5),
        "prior_camera": base.name,
        "prior_split": prior_split(base.name),
        "camera_position_meters": [float(v) for v in base.camera.position],
        "first_frame_camera": camera_to_soccernet_dict(cameras[0]),
        "cutaway_shots": [c.as_dict() for c in cutaways],
        "persons": [
            {"person": p.person, "team": p.team, "role": p.role, "number": p.number, "height_m": round(p.height, 3)} for p in play.persons
        ],
        "seconds": time.perf_counter() - start,
    }


def _game_folder(rng: np.random.Generator, game: int, teams: tuple[Team, Team]) -> str:
    day = dt.date(2026, 8, 14) + dt.timedelta(days=7 * game + int(rng.integers(0, 3)))
    kickoff = ["13-30", "15-30", "16-00", "18-00", "18-30", "20-45", "21-00"][int(rng.integers(7))]
    return f"{day.isoformat()} - {kickoff} {teams[0].name} 0 - 0 {teams[1].name}"


def _team_json(team: Team) -> dict:
    kits = {"kit": team.kit.as_dict(), "goalkeeper_kit": team.goalkeeper_kit.as_dict()}
    return {"name": team.name, "code": team.code, **kits}


def _init_worker(threads: int) -> None:
    cv2.setNumThreads(threads)


def synthesize_corpus(
    out_dir: str | Path,
    games: int = 2,
    halves: int = 2,
    seconds: float = 30.0,
    seed: int = 0,
    fps: int = 25,
    width: int = 1280,
    height: int = 720,
    gop: int = 25,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
    cameras: str = "all",
    cutaways: float = 0.0,
) -> list[Path]:
    """Write a synthetic broadcast corpus of ``games`` games of ``halves`` halves, each ``seconds`` long, under
    ``out_dir``; returns the game folders. The same seed gives the same corpus. Halves are rendered in
    parallel over ``workers`` processes (default: one per CPU core, at most one per half).

    ``cameras``: the split of the camera prior the main cameras are drawn from: "all", "dictionary" or
    "heldout" (see :func:`matchflow.models.geometry.camera_prior.prior_split`). ``cutaways``: the share (0..1) of each
    half's time spent in cut-away shots (close-ups of players, crowd shots), 2 to 5 s each, with hard cuts."""
    if games < 1 or halves < 1 or seconds <= 0 or fps < 1 or gop < 1:
        raise ValueError("games, halves, seconds, fps and gop must be positive")
    if cameras not in CAMERA_SPLITS:
        raise ValueError(f"cameras must be one of {', '.join(CAMERA_SPLITS)}, not {cameras!r}")
    if not 0.0 <= cutaways <= 1.0:
        raise ValueError("cutaways must be a share of the time within 0..1")
    cutaways = float(cutaways)
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError("width and height must be even (yuv420p) and at least 16 pixels")
    say = progress or (lambda message: None)
    frames = int(round(seconds * fps))
    root = Path(out_dir) / LEAGUE / SEASON
    jobs: list[HalfJob] = []
    folders: list[Path] = []
    for g in range(games):
        look = _rng(seed, g, 0)
        stadium = random_stadium(look)
        teams = random_teams(look)
        folder = root / _game_folder(look, g, teams)
        folder.mkdir(parents=True, exist_ok=True)
        folders.append(folder)
        for h in range(1, halves + 1):
            jobs.append(
                HalfJob(str(folder), seed, g, h, frames, fps, width, height, gop, stadium, teams, cameras, cutaways)
            )
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    say(f"synthesizing {games} game(s) x {halves} half(s) x {frames} frames on {n_workers} process(es)")
    started = time.perf_counter()
    results: dict[tuple[int, int], dict] = {}

    def finished(job: HalfJob, result: dict) -> None:
        results[(job.game, job.half)] = result
        say(f"game {job.game + 1}/{games} half {job.half}: {frames} frames in {result['seconds']:.1f} s")

    if n_workers == 1:
        for job in jobs:
            finished(job, render_half(job))
    else:
        threads = max(1, (os.cpu_count() or 1) // n_workers)
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker, initargs=(threads,)) as pool:
            futures = {pool.submit(render_half, job): job for job in jobs}
            for fut, job in futures.items():
                finished(job, fut.result())
    elapsed = time.perf_counter() - started
    for g, folder in enumerate(folders):
        job = next(j for j in jobs if j.game == g)
        meta = {
            "generator": "matchflow.synth",
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "game_index": g,
            "fps": fps,
            "width": width,
            "height": height,
            "gop": gop,
            "cameras": cameras,
            "cutaways": cutaways,
            "colour_order": "BGR",
            "pitch": {"length": job.stadium.pitch.length, "width": job.stadium.pitch.width},
            "home": _team_json(job.teams[0]),
            "away": _team_json(job.teams[1]),
            "referee_kit": REFEREE_KIT.as_dict(),
            "stadium": {k: v for k, v in asdict(job.stadium).items() if k != "pitch"},
            "halves": [
                {k: v for k, v in results[(g, h)].items() if k != "seconds"} for h in range(1, halves + 1)
            ],
        }
        (folder / "game.json").write_text(json.dumps(meta, indent=1))
    total = games * halves * frames
    say(f"done: {total} frames in {elapsed:.1f} s ({total / max(elapsed, 1e-9):.1f} frames/s)")
    return folders
