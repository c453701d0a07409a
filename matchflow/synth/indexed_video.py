"""Synthetic H.264 test clips whose frames carry their own index.

Each frame shows its index as a row of ``INDEX_BITS`` black/white blocks along the top
edge (most significant bit first), which survives H.264 compression and can be read
back from decoded RGB pixels with :func:`read_frame_index`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

INDEX_BITS = 16
BLOCK = 16  # block edge in pixels at the 320x180 reference size


def _block_size(width: int, height: int) -> int:
    return max(8, min(width // (INDEX_BITS + 2), height // 6, BLOCK * width // 320))


def _index_row(index: int, width: int, height: int) -> np.ndarray:
    """The (b, width) luma row that encodes ``index``: white blocks are 1 bits."""
    b = _block_size(width, height)
    row = np.full((b, width), 128, np.uint8)
    for bit in range(INDEX_BITS):
        on = (index >> (INDEX_BITS - 1 - bit)) & 1
        x0 = b * (bit + 1)
        row[:, x0:x0 + b] = 235 if on else 16
    return row


def read_frame_index(frame: np.ndarray) -> int:
    """Read the index drawn by :func:`write_test_video` from a decoded (H, W, 3) RGB frame."""
    h, w = frame.shape[:2]
    b = _block_size(w, h)
    luma = frame[: b, :, :].astype(np.float32).mean(axis=2)
    value = 0
    for bit in range(INDEX_BITS):
        x0 = b * (bit + 1)
        centre = luma[b // 4: b - b // 4, x0 + b // 4: x0 + b - b // 4].mean()
        value = (value << 1) | int(centre > 128)
    return value


def _texture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A grass-like (height, 2 * width, 3) RGB texture: mown stripes plus smoothed noise."""
    rng = np.random.default_rng(seed)
    w2 = 2 * width
    noise = rng.normal(0.0, 1.0, (height // 4 + 1, w2 // 4 + 1)).astype(np.float32)
    noise = np.repeat(np.repeat(noise, 4, axis=0), 4, axis=1)[:height, :w2]
    noise += rng.normal(0.0, 0.6, (height, w2)).astype(np.float32)
    stripes = ((np.arange(w2) // max(1, width // 8)) % 2).astype(np.float32)[None, :]
    g = 110 + 14 * stripes + 10 * noise
    img = np.stack([0.45 * g, g, 0.35 * g], axis=2)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_test_video(
    path: str | Path,
    seconds: float,
    fps: float = 25,
    size: tuple[int, int] = (320, 180),
    gop: int = 25,
    *,
    texture: bool = False,
    faststart: bool = False,
    open_gop: bool = False,
    drop: tuple[int, int] | None = None,
    crf: int = 23,
    preset: str = "veryfast",
) -> Path:
    """Write an H.264 clip of ``round(seconds * fps)`` frames whose frame ``i`` shows index ``i``.

    ``size`` is (width, height) in pixels; ``gop`` is the fixed key-frame interval in frames.
    ``texture`` adds a panning grass texture with moving blobs and sensor grain (realistic
    decoding cost); otherwise the background is a cheap scrolling gradient. ``faststart`` puts the moov atom
    (the frame index of the container) at the start of an mp4 instead of the end.
    ``open_gop`` lets B-frames that follow a key frame in decode order be shown before it.
    ``drop=(a, b)`` leaves frames a..b-1 out, keeping the timestamps of the others (a recording
    that lost frames: a gap in time, and the indices drawn skip from a - 1 to b).
    """
    path = Path(path)
    width, height = size
    n = int(round(seconds * fps))
    ntsc = Fraction(round(fps * 1.001) * 1000, 1001)  # 29.97 -> 30000/1001
    rate = ntsc if abs(float(ntsc) - fps) < 1e-3 else Fraction(fps).limit_denominator(1001)
    options = {"movflags": "+faststart"} if faststart and path.suffix in (".mp4", ".mov") else {}
    bg = _texture(width, height) if texture else None
    grain = np.random.default_rng(1).integers(-6, 7, (8, height, width, 1), dtype=np.int16) if texture else None
    # cheap background: a gradient that scrolls 3 px per frame (period 256 px) plus a colour ramp
    ramp = ((np.arange(width + 256) % 256) // 2)[None, :] + (np.arange(height) // 2)[:, None]
    ramp = (ramp % 256).astype(np.uint8)
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.thread_type = "FRAME"  # one slice per frame, as typical broadcast encodes
        stream.options = {
            "crf": str(crf),
            "preset": preset,
            "keyint_min": str(gop),
            "sc_threshold": "0",
        }
        if open_gop:
            stream.options["x264-params"] = "open-gop=1:bframes=3"
        img = np.empty((height, width, 3), np.uint8)
        for i in range(n):
            if drop is not None and drop[0] <= i < drop[1]:
                continue
            if bg is not None:
                off = (i * 4) % width
                img[:] = bg[:, off: off + width]
                for j in range(6):
                    cx = int((0.15 + 0.14 * j) * width + 3 * i * (1 if j % 2 else -1)) % width
                    cy = int((0.3 + 0.1 * j) * height + 20 * np.sin(i / 10 + j))
                    r = max(3, height // 40)
                    img[max(0, cy - 3 * r): cy + 3 * r, max(0, cx - r): cx + r] = (
                        (230, 40, 40) if j % 2 else (240, 240, 250)
                    )
                assert grain is not None  # grain and bg are both drawn when texture is set
                img[:] = np.clip(img + grain[i % len(grain)], 0, 255)
            else:
                s0 = (3 * i) % 256
                v = ramp[:, s0: s0 + width]
                img[:, :, 0] = v
                np.subtract(255, v, out=img[:, :, 1])
                img[:, :, 2] = (7 * i) % 256
            row = _index_row(i, width, height)
            img[: row.shape[0]] = row[:, :, None]
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
