"""Synthetic training frames for the detection network: rendered broadcast frames with exact instance masks,
boxes, classes, COCO body keypoints and the ball (``matchflow synth-detection``).

Every frame is an independent view: each job of a few frames builds its own stadium, teams and short
simulated play, and films frames a few seconds apart, each from a fresh camera of the World Cup 2014 prior
(following play as the main camera does, sometimes zoomed in further or framing one player in close-up).

Layout of ``OUT_DIR``:

- ``images/000000.jpg``: the frame (JPEG, quality 95).
- ``masks/000000.png``: uint16 instance map of what is seen at each pixel: 0 background (grass, stands,
  goals, the score overlay), i + 1 the i-th person of the frame's label list, 65535 the ball.
- ``labels/000000.json``: ``{"width", "height", "scene", "persons": [{"box": [x1, y1, x2, y2], "class",
  "person", "team", "number", "keypoints": [[x, y, v] * 17]}], "ball": {"x", "y", "radius"} | null}``. ``scene``: the job
  (stadium, teams, play) the frame was filmed in; ``person``: the person's id in that scene's play (the same
  person in every frame of the scene: identities for re-identification, valid within a scene only); ``team``:
  0, 1, or -1 for the referee; ``number``: the shirt number (0 for the referee).
- ``dataset.json``: generator version, seed, frame count, size, camera split, and a description.

Pixels follow OpenCV's convention (x right, y down, the centre of the top-left pixel at (0, 0)). A box is
the extent of the person's visible mask pixels: x1, y1 the first column and row, x2, y2 one past the last
(as :func:`cv2.boundingRect`). Only persons with at least one visible pixel are listed, in the order of
their ids in the play. The ball is listed when at least one of its pixels is visible; x, y is its projected
centre (possibly hidden) and radius its projected radius, in pixels.

Keypoints are in COCO order (:data:`COCO_KEYPOINTS`), "left" being the person's own left. Body points are the
projected joints of the rendered figure; face points lie on the head sphere (nose in front of its centre,
eyes in front and to the sides, ears at the sides). Visibility v: 0 when the rounded pixel is outside the
image (x, y are still the projection), 2 when the instance map at that pixel or one of its 8 neighbours
belongs to the person, 1 otherwise (inside the image but hidden by someone or something nearer, by the
overlay, or, for face points, on the far side of the head from the camera).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from matchflow.models.detection.labels import COCO_KEYPOINTS, PERSON_CLASSES
from matchflow.models.geometry.camera import PinholeCamera

from .cutaways import closeup_cameras
from .director import follow_play, pick_base_camera
from .figure import _HEAD_RADIUS, JOINTS
from .play import BALL_RADIUS, HalfPlay, simulate_half
from .render import _ID_BALL, FrameRenderer
from .stadium import Stadium, random_stadium, random_teams

if TYPE_CHECKING:
    from matchflow.training.detection.data import DetectionSample

__all__ = [
    "render_detection_dataset", "read_detection_dir", "coco_keypoints_3d", "project_keypoints", "COCO_KEYPOINTS",
    "GENERATOR_VERSION", "BALL_INSTANCE", "PERSON_CLASSES",
]

GENERATOR_VERSION = "3"  # 2: labels name the scene, each person's id and team; 3: shirt numbers, varied looks
CAMERA_SPLITS = ("all", "dictionary", "heldout")
BALL_INSTANCE = 65535  # the ball's value in the uint16 mask PNGs
_FRAMES_PER_JOB = 8  # frames filmed from one stadium and play
_FPS = 25
_SALT = 0xD37EC7  # keeps this generator's random streams apart from the corpus's for the same seed
_CLOSEUP_SHARE = 0.12
_ZOOM_SHARE = 0.28  # of the remaining frames: the main camera zoomed in further
_NEAR_M = 0.5
_FOLLOW_SECONDS = 8.0  # the camera operator's smoothing settles well within this

_J = {name: i for i, name in enumerate(JOINTS)}
# body keypoints 5..16 as (COCO side, figure joint name without its side prefix)
_BODY = [(s, part) for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle") for s in ("left", "right")]
_UP = np.array([0.0, 0.0, -1.0])  # z points down in the pitch frame


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _SALT, *keys]))


def _frame_name(index: int) -> str:
    return f"{index:06d}"


# ------------------------------------------------------------------------------------------------ keypoints
def coco_keypoints_3d(
    joints: np.ndarray, heading: np.ndarray, height: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """COCO keypoints (P, 17, 3) in pitch metres (SoccerNet frame, z down) of P figures from their joints
    (P, len(JOINTS), 3) metres (:func:`matchflow.synth.figure.figure_joints`), headings (P,) radians and
    heights (P,) metres; also the outward unit normals (P, 17, 3) of the face points on the head sphere
    (zero for the body points). "Left" is each figure's own left, found from its heading and the up direction."""
    joints = np.asarray(joints, dtype=float)
    heading = np.asarray(heading, dtype=float)
    n = len(joints)
    fwd = np.stack([np.cos(heading), np.sin(heading), np.zeros(n)], axis=1)
    left = np.cross(_UP, fwd)  # the person's own left: up x forward in a right-handed frame
    down = -_UP

    # which of the figure's sides is the person's own left
    figure_l_is_left = np.einsum("pk,pk->p", joints[:, _J["l_hip"]] - joints[:, _J["r_hip"]], left) > 0
    points = np.zeros((n, len(COCO_KEYPOINTS), 3))
    normals = np.zeros_like(points)
    for i, (side, part) in enumerate(_BODY, start=5):
        same = joints[:, _J[f"l_{part}"]]
        other = joints[:, _J[f"r_{part}"]]
        if side == "right":
            same, other = other, same
        points[:, i] = np.where(figure_l_is_left[:, None], same, other)

    face = [
        fwd + 0.25 * down,  # nose: in front, a little below the centre
        0.85 * fwd + 0.4 * left - 0.15 * down,  # left eye
        0.85 * fwd - 0.4 * left - 0.15 * down,  # right eye
        left - 0.1 * fwd,  # left ear
        -left - 0.1 * fwd,  # right ear
    ]
    radius = (_HEAD_RADIUS * np.asarray(height, dtype=float))[:, None]
    head = joints[:, _J["head"]]
    for i, d in enumerate(face):
        unit = d / np.linalg.norm(d, axis=1, keepdims=True)
        normals[:, i] = unit
        points[:, i] = head + radius * unit
    return points, normals


def project_keypoints(
    points: np.ndarray, normals: np.ndarray, cam: PinholeCamera, ids: np.ndarray, instance: int
) -> np.ndarray:
    """Keypoints (17, 3) of x, y pixels (to 0.01) and visibility v of one person from its 3D keypoints and normals
    (:func:`coco_keypoints_3d`, one person's (17, 3) each) seen by ``cam``, whose instance map ``ids``
    (height, width) holds ``instance`` where the person is seen. v: 0 outside the image (or behind the
    camera, x = y = 0), 2 when ``ids`` holds ``instance`` at the rounded pixel or one of its 8 neighbours,
    1 otherwise; a face point whose normal faces away from the camera is 1 at most."""
    xy, depth = cam.project(points)
    h, w = ids.shape
    out = np.zeros((len(points), 3))
    facing = np.einsum("kc,kc->k", normals, np.asarray(cam.position, dtype=float) - points) >= 0.0
    for i in range(len(points)):
        if not (depth[i] > _NEAR_M and np.all(np.isfinite(xy[i]))):
            continue
        x, y = round(float(xy[i, 0]), 2), round(float(xy[i, 1]), 2)  # as stored, to 0.01 pixel
        out[i, :2] = x, y
        rx, ry = int(round(x)), int(round(y))
        if not (0 <= rx < w and 0 <= ry < h):
            continue
        seen = bool(np.any(ids[max(ry - 1, 0) : ry + 2, max(rx - 1, 0) : rx + 2] == instance))
        out[i, 2] = 2.0 if seen and facing[i] else 1.0
    return out


# ------------------------------------------------------------------------------------------------ rendering
@dataclass(frozen=True)
class _Job:
    out_dir: str
    seed: int
    job: int
    first: int  # index of the job's first frame in the dataset
    count: int
    width: int
    height: int
    cameras: str


def _camera(
    rng: np.random.Generator, play: HalfPlay, stadium: Stadium, split: str, f: int, size: tuple[int, int]
) -> PinholeCamera:
    """A camera filming frame ``f`` of ``play``: a fresh prior camera following the last seconds of play,
    sometimes zoomed in further or framing one player in close-up."""
    base = pick_base_camera(rng, split)
    lo = max(0, f - int(_FOLLOW_SECONDS * play.fps))
    recent = replace(
        play, position=play.position[lo : f + 1], velocity=play.velocity[lo : f + 1],
        heading=play.heading[lo : f + 1], phase=play.phase[lo : f + 1], ball=play.ball[lo : f + 1],
        possessor=play.possessor[lo : f + 1],
    )
    cam = follow_play(rng, recent, base, size)[-1]
    u = rng.random()
    if u < _CLOSEUP_SHARE:
        close = closeup_cameras(rng, play, stadium.pitch, base, f, f + 1, size, float(cam.pan_tilt_roll[2]))
        if close is not None:
            return close[0][0]
    elif u < _CLOSEUP_SHARE + _ZOOM_SHARE:
        cam = PinholeCamera(cam.focal_px * float(rng.uniform(1.25, 2.2)), cam.rotation, cam.position, size)
    return cam


def _boxes(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel counts (256,) of every id in ``ids`` and boxes (256, 4) x1, y1, x2 (exclusive), y2 (exclusive)."""
    h, w = ids.shape
    flat = ids.ravel()
    nz = np.flatnonzero(flat)
    vals = flat[nz]
    ys, xs = np.divmod(nz, w)
    counts = np.bincount(vals, minlength=256)
    lo_x, lo_y = np.full(256, w), np.full(256, h)
    hi_x, hi_y = np.full(256, -1), np.full(256, -1)
    np.minimum.at(lo_x, vals, xs)
    np.minimum.at(lo_y, vals, ys)
    np.maximum.at(hi_x, vals, xs)
    np.maximum.at(hi_y, vals, ys)
    return counts, np.stack([lo_x, lo_y, hi_x + 1, hi_y + 1], axis=1)


def _render_job(job: _Job) -> dict:
    """Build one stadium, teams and play, film ``job.count`` frames of it and write them; returns counts."""
    start = time.perf_counter()
    size = (job.width, job.height)
    look = _rng(job.seed, job.job, 0)
    stadium, teams = random_stadium(look), random_teams(look)
    rng = _rng(job.seed, job.job, 1)
    gaps = rng.uniform(2.0, 4.5, job.count)
    frames = np.round((rng.uniform(1.0, 4.0) + np.cumsum(gaps)) * _FPS).astype(int)
    attacks = 1.0 if rng.random() < 0.5 else -1.0
    play = simulate_half(_rng(job.seed, job.job, 2), teams, int(frames[-1]) + 1, _FPS, attacks)
    renderer = FrameRenderer(stadium, teams, play, _rng(job.seed, job.job, 3), size, 1 if attacks > 0 else 2)
    cam_rng = _rng(job.seed, job.job, 4)
    heights = np.array([p.height for p in play.persons])
    out = Path(job.out_dir)
    persons_total = balls = 0
    for i, f in enumerate(frames.tolist()):
        cam = _camera(cam_rng, play, stadium, job.cameras, f, size)
        image, _, ids = renderer.render_with_ids(cam, f)
        counts, boxes = _boxes(ids)
        points, normals = coco_keypoints_3d(renderer.joints[f], play.heading[f], heights)
        lut = np.zeros(256, np.uint16)
        persons = []
        for k, person in enumerate(play.persons):
            if counts[k + 1] == 0:
                continue
            kps = project_keypoints(points[k], normals[k], cam, ids, k + 1)
            persons.append({
                "box": [float(v) for v in boxes[k + 1]],
                "class": person.role,
                "person": int(person.person),
                "team": int(person.team),
                "number": int(person.number),
                "keypoints": [[round(float(x), 2), round(float(y), 2), int(v)] for x, y, v in kps],
            })
            lut[k + 1] = len(persons)
        ball = None
        if counts[_ID_BALL] > 0:
            (bxy,), (bdepth,) = cam.project(play.ball[f][None])
            lut[_ID_BALL] = BALL_INSTANCE
            ball = {
                "x": round(float(bxy[0]), 2), "y": round(float(bxy[1]), 2),
                "radius": round(float(BALL_RADIUS * cam.focal_px / bdepth), 3),
            }
            balls += 1
        name = _frame_name(job.first + i)
        if not cv2.imwrite(str(out / "images" / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f"cannot write {out / 'images' / f'{name}.jpg'}")
        if not cv2.imwrite(str(out / "masks" / f"{name}.png"), lut[ids], [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise OSError(f"cannot write {out / 'masks' / f'{name}.png'}")
        label = {"width": job.width, "height": job.height, "scene": job.job, "persons": persons, "ball": ball}
        (out / "labels" / f"{name}.json").write_text(json.dumps(label, separators=(",", ":")))
        persons_total += len(persons)
    return {"job": job.job, "frames": job.count, "persons": persons_total, "balls": balls,
            "seconds": time.perf_counter() - start}


def _init_worker(threads: int) -> None:
    cv2.setNumThreads(threads)


def render_detection_dataset(
    out_dir: str | Path,
    frames: int,
    seed: int = 0,
    width: int = 1280,
    height: int = 720,
    cameras: str = "all",
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Render ``frames`` independent labelled frames of ``width`` x ``height`` pixels into ``out_dir`` (layout
    in the module docstring); returns the contents of its ``dataset.json`` with the number of persons and
    balls listed, the seconds taken and frames per second. The same seed gives the same frames whatever the
    number of ``workers`` (processes; default one per CPU core). ``cameras``: the split of the World Cup 2014
    camera prior the cameras are drawn from ("all", "dictionary" or "heldout"). ``progress`` gets one line of
    text as each job of frames is done. ``dataset.json`` is written last; readers take its frame count, so
    files of a larger earlier dataset in the same folder are ignored."""
    if frames < 1:
        raise ValueError("frames must be positive")
    if width < 16 or height < 16:
        raise ValueError("width and height must be at least 16 pixels")
    if cameras not in CAMERA_SPLITS:
        raise ValueError(f"cameras must be one of {', '.join(CAMERA_SPLITS)}, not {cameras!r}")
    say = progress or (lambda message: None)
    out = Path(out_dir)
    for sub in ("images", "masks", "labels"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    (out / "dataset.json").unlink(missing_ok=True)  # written last: its presence marks a complete dataset
    jobs = [
        _Job(str(out), seed, j, first, min(_FRAMES_PER_JOB, frames - first), width, height, cameras)
        for j, first in enumerate(range(0, frames, _FRAMES_PER_JOB))
    ]
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    say(f"rendering {frames} detection frames ({width}x{height}) in {len(jobs)} job(s) on {n_workers} process(es)")
    started = time.perf_counter()
    results: list[dict] = []

    def finished(result: dict) -> None:
        results.append(result)
        done = sum(r["frames"] for r in results)
        rate = done / max(time.perf_counter() - started, 1e-9)
        say(f"{done}/{frames} frames ({rate:.1f} frames/s)")

    if n_workers == 1:
        for job in jobs:
            finished(_render_job(job))
    else:
        threads = max(1, (os.cpu_count() or 1) // n_workers)
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker, initargs=(threads,)) as pool:
            for fut in as_completed([pool.submit(_render_job, job) for job in jobs]):
                finished(fut.result())
    elapsed = time.perf_counter() - started
    meta = {
        "generator": "matchflow.synth.detection",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "frames": frames,
        "width": width,
        "height": height,
        "cameras": cameras,
        "frames_per_scene": _FRAMES_PER_JOB,
        "classes": list(PERSON_CLASSES),
        "keypoints": list(COCO_KEYPOINTS),
        "note": (
            "Synthetic broadcast frames for person/ball detection, instance segmentation and COCO keypoints. "
            "images/NNNNNN.jpg: the frame (JPEG q95). masks/NNNNNN.png: uint16 instance map, 0 background "
            "(goals and the score overlay included), i+1 the i-th person of the frame's label list, 65535 the "
            "ball. labels/NNNNNN.json: persons with at least one visible pixel (box x1,y1,x2,y2 of the visible "
            "mask, x2/y2 exclusive; class; 17 COCO keypoints x,y,v with v 0 outside the image, 1 hidden, 2 "
            "visible; left = the person's own left) and the ball (projected centre and radius) or null. Pixels "
            "in OpenCV's convention (x right, y down, top-left pixel centre at 0,0)."
        ),
    }
    (out / "dataset.json").write_text(json.dumps(meta, indent=1))
    persons = sum(r["persons"] for r in results)
    balls = sum(r["balls"] for r in results)
    say(f"done: {frames} frames in {elapsed:.1f} s ({frames / max(elapsed, 1e-9):.2f} frames/s), "
        f"{persons} persons, {balls} balls")
    return {**meta, "persons": persons, "balls": balls, "seconds": elapsed,
            "frames_per_second": frames / max(elapsed, 1e-9)}


# ------------------------------------------------------------------------------------------------ reading
def _read_frame(root: Path, index: int) -> DetectionSample:
    from matchflow.training.detection.data import DatasetError, DetectionSample, read_image_rgb

    name = _frame_name(index)
    image_path = root / "images" / f"{name}.jpg"
    mask_path = root / "masks" / f"{name}.png"
    label_path = root / "labels" / f"{name}.json"
    image = read_image_rgb(image_path)
    try:
        label = json.loads(label_path.read_text())
        persons = label["persons"]
        boxes = np.asarray([p["box"] for p in persons], np.float32).reshape(-1, 4)
        classes = np.asarray([PERSON_CLASSES.index(p["class"]) for p in persons], np.int64)
        keypoints = np.asarray([p["keypoints"] for p in persons], np.float32).reshape(-1, len(COCO_KEYPOINTS), 3)
        ball = label["ball"]
        balls = np.asarray([] if ball is None else [[ball["x"], ball["y"], ball["radius"]]], np.float32).reshape(-1, 3)
        size = (int(label["width"]), int(label["height"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{label_path}: cannot read the labels ({type(exc).__name__}: {exc})") from exc
    if size != (image.shape[1], image.shape[0]):
        raise DatasetError(f"{label_path}: labelled size {size} but {image_path} is {image.shape[1]}x{image.shape[0]}")
    mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise DatasetError(f"cannot read mask {mask_path}")
    if mask.dtype != np.uint16 or mask.shape != image.shape[:2]:
        raise DatasetError(f"{mask_path}: expected a {image.shape[1]}x{image.shape[0]} uint16 instance map, "
                           f"got {mask.dtype} {mask.shape}")
    instances = mask.astype(np.int32)
    instances[mask == BALL_INSTANCE] = -1
    if int(instances.max()) > len(boxes):
        raise DatasetError(f"{mask_path}: instance {int(instances.max())} but {label_path} lists {len(boxes)} persons")
    return DetectionSample(image, boxes, classes, balls, keypoints, instances, name=str(image_path))


def read_detection_dir(path: str | Path) -> Iterator[DetectionSample]:
    """The frames of a dataset written by :func:`render_detection_dataset`, in order, as
    :class:`~matchflow.training.detection.data.DetectionSample` (image RGB; instances int32 with -1 the ball).
    Missing or corrupt files raise :class:`~matchflow.training.detection.data.DatasetError` naming the file
    (``dataset.json`` at once, a frame's files when it is reached)."""
    from matchflow.training.detection.data import DatasetError

    root = Path(path)
    meta_path = root / "dataset.json"
    try:
        frames = int(json.loads(meta_path.read_text())["frames"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{meta_path}: cannot read the dataset description ({type(exc).__name__}: {exc})") from exc
    return (_read_frame(root, i) for i in range(frames))
