"""Video decoding with decord: probing, SoccerNet-style frame sampling and batched frame reads.

Conventions:
- Frame indices are 0-based positions in presentation order, as decord counts them.
- Times are seconds from the first frame; frame ``i`` is at ``i / native_fps``.
- Frames are RGB, uint8, (H, W, 3) at the video's native resolution.

Every failure to read a video raises :class:`VideoError` whose message starts with the path.
Before any frame is returned a video is checked: it must open, hold as many frames as its
container header declares (a cut file fails) and have no gap in its frame timestamps (frames
lost in the middle of a file would shift every later index). While decoding, the decoder's
own error reports (FFmpeg log lines at error level) are collected, and a batch during which
the decoder reported corrupt data fails instead of returning error-concealed frames; decord's
substitution of undecodable frames by copies of earlier ones is turned into an error too.
Damage that the decoder cannot notice (H.264 carries no checksum: a few flipped bytes inside
a slice decode to wrong pixels without any report) is not detected.
FFmpeg's log is routed to the ``matchflow.video.ffmpeg`` logger instead of stderr.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import glob
import logging
import math
import os
import platform
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import decord
import numpy as np

from matchflow.storage import fs

__all__ = [
    "DEFAULT_BATCH_FRAMES",
    "VideoError",
    "VideoInfo",
    "iter_frames",
    "open_video",
    "probe",
    "sample_indices",
]

DEFAULT_BATCH_FRAMES = 16
"""Frames per batch for :func:`iter_frames` callers without a preference (44 MB at 720p)."""

_DOWNLOAD_BLOCK = 8 * 2**20  # bytes per read when staging a remote video to local disk
# decord replaces frames it cannot decode near the end of a file by copies of the last good one
# unless a tolerance is set; a fraction this small of the frame count makes the first copy an error
_NO_SUBSTITUTES = "0.0000001"
_log = logging.getLogger(__name__)
_ffmpeg_log = logging.getLogger(__name__ + ".ffmpeg")


class VideoError(RuntimeError):
    """A video cannot be read correctly; the message names the file and the problem."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video: frame count, rate (frames/s) and size (pixels)."""

    path: str
    n_frames: int
    fps: float
    width: int
    height: int

    @property
    def duration(self) -> float:
        """Duration in seconds (``n_frames / fps``)."""
        return self.n_frames / self.fps if self.fps > 0 else 0.0


# --------------------------------------------------------------------------------------------
# FFmpeg log capture


class _FFmpegLog:
    """Hooks the log callback of the FFmpeg that decord bundles.

    Lines at warning level or above go to the ``matchflow.video.ffmpeg`` logger instead of
    stderr; lines at error level, and warnings that report damaged data, are also appended to
    every active watch list. FFmpeg does not say which file a line is about, so a watch list
    also receives the errors of a corrupt video decoded at the same time in another thread.
    """

    _ERROR = 16  # AV_LOG_ERROR
    _WARNING = 24  # AV_LOG_WARNING
    # (context, level, format, va_list); the format stays a raw pointer: most calls are debug
    # lines dropped at once, and converting arguments is most of a call's cost
    _CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
    _ADDRESS = re.compile(r" @ 0x[0-9a-fA-F]+")
    # warnings that mean a damaged index or bitstream (e.g. mp4 "CTTS invalid", "STSZ atom truncated")
    _DAMAGE = re.compile(r"(?i)invalid|truncated|corrupt|damaged|broken|partial file")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lists: dict[int, list[str]] = {}  # active watch lists by id
        self._installed = False
        self._avutil: ctypes.CDLL | None = None
        self._callback = self._CALLBACK(self._on_log)

    def install(self) -> None:
        """Install the hook once per process; without a usable libavutil, do nothing."""
        with self._lock:
            if self._installed:
                return
            self._installed = True
            if platform.machine().lower() not in ("x86_64", "amd64", "aarch64", "arm64"):
                return  # va_list is passed by pointer only on these ABIs
            pkg_dir = Path(decord.__file__).resolve().parent
            libs = sorted(glob.glob(str(pkg_dir.parent / "decord.libs" / "libavutil*.so*")))
            libs += sorted(glob.glob(str(pkg_dir / "libavutil*.so*")))
            if not libs:
                _log.debug("decord's libavutil not found; FFmpeg errors are not captured")
                return
            try:
                avutil = ctypes.CDLL(libs[0])
                avutil.av_log_set_callback.argtypes = [ctypes.c_void_p]
                avutil.av_log_set_callback.restype = None
                avutil.av_log_format_line2.argtypes = [
                    ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                    ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                ]
                avutil.av_log_format_line2.restype = ctypes.c_int
                default = ctypes.cast(avutil.av_log_default_callback, ctypes.c_void_p)
            except (OSError, AttributeError) as exc:
                _log.debug("cannot hook decord's FFmpeg log: %s", exc)
                return
            self._avutil = avutil
            avutil.av_log_set_callback(ctypes.cast(self._callback, ctypes.c_void_p))
            atexit.register(avutil.av_log_set_callback, default)  # no Python call after shutdown

    def _on_log(self, avcl: int | None, level: int, fmt: int | None, vl: int | None) -> None:
        if level > self._WARNING or self._avutil is None:
            return
        try:
            buf = ctypes.create_string_buffer(1024)
            prefix = ctypes.c_int(1)
            self._avutil.av_log_format_line2(avcl, level, fmt, vl, buf, len(buf), ctypes.byref(prefix))
            line = self._ADDRESS.sub("", buf.value.decode("utf-8", "replace")).strip()
            if not line:
                return
            if level <= self._ERROR or self._DAMAGE.search(line):
                for errors in tuple(self._lists.values()):
                    if len(errors) < 100:
                        errors.append(line)
            _ffmpeg_log.log(logging.ERROR if level <= self._ERROR else logging.WARNING, "%s", line)
        except Exception:  # never let an exception cross into FFmpeg
            pass

    @contextlib.contextmanager
    def watch(self) -> Iterator[list[str]]:
        """Collect the error lines logged while the block runs."""
        self.install()
        errors: list[str] = []
        self._lists[id(errors)] = errors
        try:
            yield errors
        finally:
            self._lists.pop(id(errors), None)


_FFMPEG = _FFmpegLog()


# --------------------------------------------------------------------------------------------
# Opening and checking


def _local_path(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def _stage(path: str, storage_options: dict | None) -> str:
    """Copy a remote video to a local temporary file, block by block; return its path."""
    import fsspec

    suffix = Path(path.split("?", 1)[0]).suffix
    fd, tmp = tempfile.mkstemp(prefix="matchflow-video-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out, fsspec.open(path, "rb", **(storage_options or {})) as src:
            shutil.copyfileobj(src, out, _DOWNLOAD_BLOCK)
    except FileNotFoundError as exc:
        os.unlink(tmp)
        raise VideoError(f"{path}: no such object") from exc
    except BaseException as exc:
        os.unlink(tmp)
        if isinstance(exc, Exception):
            raise VideoError(f"{path}: cannot download: {type(exc).__name__}: {exc}") from exc
        raise
    return tmp


@dataclass(frozen=True)
class _Container:
    """What the container says, read with PyAV without decoding (all fields optional)."""

    frames: int | None = None  # declared frame count (mp4 sample table)
    duration: float | None = None  # declared video duration (s)
    leading_frames: bool = False  # a key frame is followed, in decode order, by frames shown before it


def _container(local: str, max_packets: int = 800, max_keys: int = 4) -> _Container:
    """Read the header and the packet order of the first key frames (open-GOP detection)."""
    try:
        import av
    except ImportError:
        return _Container()
    try:
        with av.open(local, metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            frames = int(stream.frames or 0) or None
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            if duration is None:
                tag = {k.upper(): v for k, v in stream.metadata.items()}.get("DURATION")
                match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d*)?)", tag or "")
                if match:
                    h, m, sec = match.groups()
                    duration = int(h) * 3600 + int(m) * 60 + float(sec)
            if duration is None and container.duration:
                duration = container.duration / 1_000_000
            pts: list[int] = []
            keys: list[int] = []  # decode-order positions of key frames
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                if packet.is_keyframe:
                    if len(keys) == max_keys:
                        break
                    keys.append(len(pts))
                pts.append(int(packet.pts))
                if len(pts) >= max_packets:
                    break
    except Exception:  # unreadable by PyAV: decord's own checks decide
        return _Container()
    # decord takes a key frame's decode-order position for its display position; that holds
    # only if no later packet is shown before it (no open-GOP leading frames)
    order = np.asarray(pts)
    leading = any(np.any(order[k + 1:] < order[k]) for k in keys[1:] if k + 1 < order.size)
    return _Container(frames, duration, bool(leading))


def _problem(exc: BaseException, errors: list[str]) -> str:
    """One line saying what went wrong, from FFmpeg's error lines and decord's exception."""
    text = " ".join(str(exc).split())
    text = re.sub(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ", "", text)  # decord's log prefixes
    parts = list(dict.fromkeys(errors))[:3]
    if text and not any(text in p for p in parts):
        parts.append(f"decord: {text[:300]}")
    return "; ".join(parts) or type(exc).__name__


def _check(path: str, vr: decord.VideoReader, local: str, errors: list[str]) -> _Container:
    """Raise VideoError unless the opened video holds every frame its header declares, gap-free."""
    if errors:
        raise VideoError(f"{path}: corrupt or truncated video: {'; '.join(dict.fromkeys(errors))}")
    n = len(vr)
    fps = float(vr.get_avg_fps())
    if not math.isfinite(fps) or fps <= 0:
        raise VideoError(f"{path}: invalid frame rate {fps}")
    facts = _container(local)
    count, duration = facts.frames, facts.duration
    if count is not None and n < count:
        raise VideoError(
            f"{path}: truncated: the container declares {count} frames but only {n} are present"
        )
    if count is None and duration is not None:
        expected = int(round(duration * fps))
        if n < expected - max(2, int(round(fps))):  # allow 1 s of audio/video duration mismatch
            raise VideoError(
                f"{path}: truncated: the container declares {duration:.3f} s ({expected} frames at "
                f"{fps:g} fps) but only {n} frames ({n / fps:.3f} s) are present"
            )
    if n > 1:
        start = vr.get_frame_timestamp(np.arange(n))[:, 0].astype(np.float64)
        if np.isfinite(start).all():
            step = np.diff(start)
            gaps = np.flatnonzero(step > 1.5 / fps)
            if gaps.size:
                i = int(gaps[0])
                raise VideoError(
                    f"{path}: frames missing: timestamps jump from {start[i]:.3f} s (frame {i}) to "
                    f"{start[i + 1]:.3f} s (frame {i + 1}) at {fps:g} fps "
                    f"({gaps.size} gap(s); corrupt data or variable frame rate)"
                )
    return facts


def _open(
    path: str, storage_options: dict | None, num_threads: int, errors: list[str]
) -> tuple[decord.VideoReader, _Container]:
    """Open and check a video; FFmpeg error lines logged meanwhile land in ``errors``."""
    remote = fs.is_remote(path)
    if remote:
        local = _stage(path, storage_options)
    else:
        local = _local_path(path)
        if not os.path.exists(local):
            raise VideoError(f"{path}: no such file")
        if os.path.isdir(local):
            raise VideoError(f"{path}: is a directory, not a video file")
    try:
        if os.path.getsize(local) == 0:
            raise VideoError(f"{path}: empty file")
        try:
            vr = decord.VideoReader(local, ctx=decord.cpu(0), num_threads=num_threads, fault_tol=_NO_SUBSTITUTES)
        except Exception as exc:
            problem = _problem(exc, errors)
            if any("moov atom not found" in e for e in errors):
                problem += " (not a video, or an mp4 cut before its index was written)"
            raise VideoError(f"{path}: cannot open as a video: {problem}") from exc
        return vr, _check(path, vr, local, errors)
    finally:
        if remote:
            os.unlink(local)  # an open reader keeps the data until it is freed


def _version_key(path: str, storage_options: dict | None) -> tuple:
    """What identifies the current content of a file: size and modification time (ETag on S3)."""
    if fs.is_remote(path):
        filesystem, key = fs.filesystem(path, storage_options), fs.strip_protocol(path)
        filesystem.invalidate_cache(key)
        info = filesystem.info(key)
        return (info.get("size"), info.get("ETag") or info.get("LastModified") or info.get("mtime"))
    st = os.stat(_local_path(path))
    return (st.st_size, st.st_mtime_ns)


class _ReaderCache:
    """The last few checked readers of this process, so that the chunks of a half that run on one
    worker open (and, for remote videos, download) it once instead of once per chunk.

    Readers of open-GOP streams are not kept: they decode from the start without seeking.
    """

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._items: OrderedDict[tuple, tuple[decord.VideoReader, _Container]] = OrderedDict()
        self._lock = threading.Lock()

    def open(
        self, path: str, storage_options: dict | None, num_threads: int, errors: list[str]
    ) -> tuple[decord.VideoReader, _Container]:
        try:
            # a reader is not thread-safe: one per thread
            key = (path, num_threads, threading.get_ident(), _version_key(path, storage_options))
        except FileNotFoundError:
            key = None  # _open says what is wrong
        except OSError as exc:
            raise VideoError(f"{path}: cannot read: {exc}") from exc
        with self._lock:
            if key is not None and key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        vr, facts = _open(path, storage_options, num_threads, errors)
        if key is not None and not facts.leading_frames:
            with self._lock:
                self._items[key] = (vr, facts)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return vr, facts

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_READERS = _ReaderCache()


def open_video(path: str, storage_options: dict | None = None, *, num_threads: int = 0) -> decord.VideoReader:
    """Open a checked decord reader for a local path or an fsspec URL (``s3://bucket/key``).

    A remote video is first copied block by block to a local temporary file (unlinked at once;
    the reader keeps it until freed): decord reads a file object by loading the whole file into
    memory, about three times its size. ``num_threads`` are FFmpeg decoding threads (0: auto).
    In open-GOP streams decord's seeks (``get_batch``, ``seek``, ``skip_frames`` across a key
    frame) can land on the wrong frame; :func:`iter_frames` then decodes without seeking.
    """
    with _FFMPEG.watch() as errors:
        return _open(str(path), storage_options, num_threads, errors)[0]


def probe(path: str, storage_options: dict | None = None) -> VideoInfo:
    """Frame count (frames present in the file), rate (frames/s) and size (pixels) of a video.

    Opens and checks the video like :func:`iter_frames` does and decodes its first frame.
    """
    with _FFMPEG.watch() as errors:
        vr, _ = _open(str(path), storage_options, 0, errors)
        try:
            height, width = vr.next().shape[:2]
        except Exception as exc:
            raise VideoError(f"{path}: cannot decode the first frame: {_problem(exc, errors)}") from exc
        if errors:
            raise VideoError(f"{path}: corrupt data in the first frame: {'; '.join(dict.fromkeys(errors))}")
        return VideoInfo(str(path), len(vr), float(vr.get_avg_fps()), int(width), int(height))


# --------------------------------------------------------------------------------------------
# Sampling and reading


def sample_indices(n_frames: int, native_fps: float, fps: float) -> np.ndarray:
    """Video frame indices (int64) of the samples at ``fps`` frames/s of a ``native_fps`` video.

    SoccerNet convention: sample ``k`` is the frame nearest to ``t = k / fps`` s, i.e. frame
    ``round(k * native_fps / fps)`` with ties going to the later frame (25 -> 2 fps gives
    0, 13, 25, 38, 50, ...); samples continue while that frame exists (index < ``n_frames``).
    At or above the native rate every frame is returned once (``arange(n_frames)``).
    """
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    if not (native_fps > 0 and fps > 0 and math.isfinite(native_fps) and math.isfinite(fps)):
        raise ValueError(f"frame rates must be positive and finite, got native {native_fps}, sampling {fps}")
    if n_frames == 0:
        return np.zeros(0, dtype=np.int64)
    if fps >= native_fps:
        return np.arange(n_frames, dtype=np.int64)
    step = native_fps / fps  # video frames per sample, > 1
    k = np.arange(int(math.ceil(n_frames / step)) + 1, dtype=np.float64)
    idx = np.floor(k * step + 0.5 + 1e-9).astype(np.int64)  # epsilon: exact ties stay ties
    return idx[idx < n_frames]


class _SequentialReader:
    """Reads frames in order without ever seeking: decode-order position == display position.

    ``skip_frames`` seeks when it crosses one of decord's key frame positions, so it is used
    only between them, and ``next`` (which never seeks) steps across them.
    """

    def __init__(self, vr: decord.VideoReader) -> None:
        self.vr = vr
        self.pos = 0  # index of the next frame decord will return
        self.keys = np.asarray(vr.get_key_indices(), dtype=np.int64)

    def read(self, batch: np.ndarray) -> np.ndarray:
        out: np.ndarray | None = None
        for j, i in enumerate(batch):
            while self.pos < i:
                nxt = self.keys[np.searchsorted(self.keys, self.pos, side="right"):]
                stop = int(min(i, nxt[0] - 1)) if nxt.size else int(i)
                if stop > self.pos:
                    self.vr.skip_frames(stop - self.pos)
                    self.pos = stop
                else:
                    self.vr.next()
                    self.pos += 1
            frame = self.vr.next().asnumpy()
            self.pos += 1
            if out is None:
                out = np.empty((batch.size, *frame.shape), dtype=np.uint8)
            out[j] = frame
        assert out is not None
        return out


def iter_frames(
    path: str,
    indices: np.ndarray,
    batch_frames: int,
    storage_options: dict | None = None,
    *,
    num_threads: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Decode the video frames ``indices`` in batches of at most ``batch_frames`` frames.

    ``num_threads``: FFmpeg decoding threads (0: as many as cores; 1 for one worker per core).

    ``indices`` must be strictly increasing video frame indices; they may start anywhere (a
    chunk of a half). Yields ``(indices (B,) int64, frames (B, H, W, 3) uint8 RGB)`` in order.
    The generator drops its reference to a batch before decoding the next, so it holds one
    batch at most (a caller's loop variable may still hold the previous one meanwhile).
    Every frame from the key frame before the first index to the last index is decoded, only
    the asked frames are converted to RGB; decord seeks past a key frame when that skips
    frames (``get_batch``), except in open-GOP streams where it cannot and frames are read in
    order from the start of the file. Raises :class:`VideoError` on unreadable or corrupt data
    and when an index is beyond the frames present; never yields fewer frames than asked.
    """
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"indices must be a 1-D integer array, got shape {idx.shape} dtype {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    if batch_frames < 1:
        raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
    if idx.size and (idx[0] < 0 or np.any(np.diff(idx) <= 0)):
        raise ValueError("indices must be non-negative and strictly increasing")
    if idx.size == 0:
        return
    path = str(path)
    with _FFMPEG.watch() as errors:
        vr, facts = _READERS.open(path, storage_options, num_threads, errors)
        n = len(vr)
        if idx[-1] >= n:
            raise VideoError(f"{path}: frame {int(idx[-1])} asked but the video holds {n} frames (0..{n - 1})")
        sequential = _SequentialReader(vr) if facts.leading_frames else None
        if sequential is not None and idx[0] > 0:
            _log.warning("%s: open-GOP stream, decoding from its start to frame %d (no seeking)", path, idx[0])
        guard = None if sequential else _ReadAheadGuard(vr)
        rate = 0.0  # the decoder's frames/s, measured on batches that started cold (no read-ahead)
        try:
            for start in range(0, idx.size, batch_frames):
                batch = idx[start:start + batch_frames]
                span = f"frames {int(batch[0])}..{int(batch[-1])}"
                try:
                    if sequential:
                        frames = sequential.read(batch)
                    else:
                        assert guard is not None  # guard is None only when sequential is truthy
                        cold = start == 0 or guard.disarm()
                        t0 = time.perf_counter()
                        frames = _as_numpy(vr.get_batch(batch))
                        if cold:
                            rate = max(rate, (int(batch[-1]) - int(batch[0]) + 1) / max(time.perf_counter() - t0, 1e-6))
                        nxt = start + batch_frames
                        if nxt >= idx.size:
                            guard.stop(0)  # nothing more to read: stop now
                        else:
                            guard.arm(READ_AHEAD_BYTES / (rate * frames[0].nbytes), int(idx[nxt]))
                except Exception as exc:
                    raise VideoError(f"{path}: cannot decode {span}: {_problem(exc, errors)}") from exc
                if errors:
                    raise VideoError(f"{path}: corrupt data while decoding {span}: {'; '.join(dict.fromkeys(errors))}")
                if frames.shape[0] != batch.size:
                    raise VideoError(f"{path}: the decoder returned {frames.shape[0]} frames for {batch.size} asked")
                yield batch, frames
                del frames
        finally:
            if guard is not None:  # a caller that stops early leaves no decoder running in the cached reader
                guard.disarm()
                with contextlib.suppress(Exception):
                    guard.stop(0)


#: Memory decord's read-ahead may fill while the caller works on a batch before iter_frames stops it.
READ_AHEAD_BYTES = 64 * 2**20


class _ReadAheadGuard:
    """Bounds decord's background decoding while the caller holds a batch.

    After a read decord goes on decoding ahead (see :func:`_stop_read_ahead`). That overlaps decoding with a
    fast caller's work and is kept; a caller still busy once the decoder could have filled
    :data:`READ_AHEAD_BYTES` (seconds-per-batch stages) gets it stopped by a timer thread, so memory stays
    bounded whatever the caller's speed and fast callers never pay for a stop (re-decoding from a key frame).
    The reader is touched by the timer only while the generator is suspended; :meth:`disarm` waits for it.
    """

    def __init__(self, vr: decord.VideoReader) -> None:
        self._vr = vr
        self._keys = np.asarray(vr.get_key_indices(), dtype=np.int64)
        self._timer: threading.Timer | None = None
        self._stopped = False

    def arm(self, delay_s: float, next_index: int) -> None:
        """Stop the read-ahead in ``delay_s`` seconds unless :meth:`disarm` comes first."""
        self._stopped = False
        self._timer = threading.Timer(delay_s, self._stop_in_timer, args=(next_index,))
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> bool:
        """Cancel the timer (waiting for a stop under way); True when the read-ahead was stopped."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer.join()
            self._timer = None
        stopped, self._stopped = self._stopped, False
        return stopped

    def stop(self, next_index: int) -> None:
        """Stop the read-ahead now, at the key frame where the batch starting at ``next_index`` will decode from."""
        _stop_read_ahead(self._vr, self._keys, next_index)

    def _stop_in_timer(self, next_index: int) -> None:
        try:
            self.stop(next_index)
        except Exception:  # the next get_batch reports a broken reader with the file's name
            _log.debug("stopping the read-ahead failed", exc_info=True)
        self._stopped = True


def _stop_read_ahead(vr: decord.VideoReader, keys: np.ndarray, next_index: int) -> None:
    """Stop decord's background decoder after a read.

    Once a frame has been asked, decord 0.6's CPU reader goes on decoding the rest of the video into
    memory in a background thread while the caller works (dmlc/decord#197, #208): a whole 1080p
    video in seconds, unbounded for a 45-minute half. A seek drops its queues and stops it (a few
    milliseconds) without decoding anything. It goes to the key frame (of ``keys``, decord's key frame
    positions) at or before the next batch's first frame ``next_index``: where that batch starts
    decoding anyway, so a long GOP is not decoded twice.
    The sequential reader of open-GOP streams cannot do this (it must not seek): there the
    read-ahead is bounded only by the end of the video.
    """
    i = int(np.searchsorted(keys, next_index, side="right")) - 1
    vr.seek(int(keys[i]) if i >= 0 else 0)


class _Held:
    """Exposes a compact decord uint8 CPU array to numpy without a copy and keeps it alive."""

    def __init__(self, nd: decord.nd.NDArray) -> None:
        t = nd.handle.contents
        if str(nd.dtype) != "uint8" or bool(t.strides) or t.ctx.device_type != 1:
            raise ValueError("not a compact uint8 CPU array")
        self._nd = nd
        self.__array_interface__ = {
            "shape": tuple(nd.shape),
            "typestr": "|u1",
            "data": (t.data + t.byte_offset, False),  # writable
            "version": 3,
        }


def _as_numpy(nd: decord.nd.NDArray) -> np.ndarray:
    """A writable numpy view of a decord batch (copied only if it is not a compact CPU array)."""
    try:
        return np.asarray(_Held(nd))
    except (ValueError, AttributeError):
        return nd.asnumpy()
