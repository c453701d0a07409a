"""Decoding real H.264 clips: sampling, frame identity, batching, corrupt files, memory, S3."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import numpy as np
import pytest

from matchflow.synth.indexed_video import read_frame_index, write_test_video
from matchflow.video import VideoError, VideoInfo, iter_frames, open_video, probe, sample_indices


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """12 s 320x180 25 fps clips: mp4 and mkv, GOP 25 and 250, faststart, open GOP, 29.97 fps."""
    d = tmp_path_factory.mktemp("clips")
    return {
        "mp4": write_test_video(d / "g25.mp4", 12),
        "mp4_gop250": write_test_video(d / "g250.mp4", 12, gop=250),
        "mkv": write_test_video(d / "g25.mkv", 12),
        "mkv_gop250": write_test_video(d / "g250.mkv", 12, gop=250),
        "faststart": write_test_video(d / "fast.mp4", 12, faststart=True),
        "open_gop": write_test_video(d / "open.mkv", 12, open_gop=True),
        "ntsc": write_test_video(d / "ntsc.mp4", 6, fps=29.97),
    }


def _decode(path, indices, batch_frames=8, **kw) -> tuple[list[int], list[int], list[np.ndarray]]:
    """Yielded indices, indices read back from the pixels, and the batches."""
    got, drawn, batches = [], [], []
    for idx, frames in iter_frames(str(path), indices, batch_frames, **kw):
        assert idx.dtype == np.int64 and frames.dtype == np.uint8 and frames.ndim == 4
        assert frames.shape[0] == idx.size <= batch_frames and frames.shape[3] == 3
        got += idx.tolist()
        drawn += [read_frame_index(f) for f in frames]
        batches.append(frames)
    return got, drawn, batches


def _damaged(src: Path, dst: Path, *, keep: float | None = None, garbage_at: float | None = None) -> Path:
    data = bytearray(src.read_bytes())
    if keep is not None:
        data = data[: int(len(data) * keep)]
    if garbage_at is not None:
        n = len(data) // 10
        start = int(len(data) * garbage_at) - n // 2
        data[start:start + n] = np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


# ------------------------------------------------------------------------------------------
# sample_indices


def test_sample_indices_25_to_2_fps_ties_go_to_the_later_frame():
    idx = sample_indices(100, 25.0, 2.0)
    assert idx.dtype == np.int64
    assert idx.tolist() == [0, 13, 25, 38, 50, 63, 75, 88]  # 12.5 -> 13, 37.5 -> 38
    assert sample_indices(101, 25.0, 2.0)[-1] == 100  # t = 4.0 s exists only with 101 frames


def test_sample_indices_other_rates():
    assert sample_indices(26, 25.0, 1.0).tolist() == [0, 25]
    assert sample_indices(10, 25.0, 5.0).tolist() == [0, 5]
    # 29.97 fps (30000/1001) at 2 fps: nearest frame to k / 2 s, no tie
    native = 30000 / 1001
    idx = sample_indices(300, native, 2.0)
    assert idx.tolist() == [int(np.floor(k / 2 * native + 0.5)) for k in range(len(idx))]
    assert idx[:5].tolist() == [0, 15, 30, 45, 60] and idx[-1] == 285
    assert np.all(np.abs(idx / native - np.arange(len(idx)) / 2) <= 0.5 / native)


def test_sample_indices_at_or_above_native_rate_and_empty():
    assert sample_indices(5, 25.0, 25.0).tolist() == [0, 1, 2, 3, 4]
    assert sample_indices(5, 25.0, 50.0).tolist() == [0, 1, 2, 3, 4]  # no frame repeated
    assert sample_indices(0, 25.0, 2.0).size == 0 and sample_indices(0, 25.0, 2.0).dtype == np.int64
    assert sample_indices(1, 25.0, 2.0).tolist() == [0]
    with pytest.raises(ValueError):
        sample_indices(10, 0.0, 2.0)
    with pytest.raises(ValueError):
        sample_indices(-1, 25.0, 2.0)


# ------------------------------------------------------------------------------------------
# probe and decoding


def test_probe(clips):
    info = probe(str(clips["mp4"]))
    assert info == VideoInfo(str(clips["mp4"]), 300, 25.0, 320, 180)
    assert info.duration == pytest.approx(12.0)
    assert probe(str(clips["mkv"])).n_frames == 300
    ntsc = probe(str(clips["ntsc"]))
    assert ntsc.fps == pytest.approx(30000 / 1001) and ntsc.n_frames == 180


@pytest.mark.parametrize("kind", ["mp4", "mp4_gop250", "mkv", "mkv_gop250", "faststart", "open_gop", "ntsc"])
def test_sampled_frames_are_the_right_video_frames(clips, kind):
    info = probe(str(clips[kind]))
    idx = sample_indices(info.n_frames, info.fps, 2.0)
    got, drawn, _ = _decode(clips[kind], idx, batch_frames=5)
    assert got == idx.tolist() and drawn == idx.tolist()


@pytest.mark.parametrize("kind", ["mp4", "mkv_gop250", "open_gop"])
def test_chunks_start_anywhere_and_batches_split(clips, kind):
    full = sample_indices(300, 25.0, 2.0)
    for start, stop, batch in [(0, 4, 4), (1, 2, 3), (5, 13, 3), (11, 24, 32), (23, 24, 1)]:
        idx = full[start:stop]
        got, drawn, batches = _decode(clips[kind], idx, batch_frames=batch)
        assert got == drawn == idx.tolist()
        assert [b.shape[0] for b in batches] == [min(batch, len(idx) - i) for i in range(0, len(idx), batch)]


def test_every_frame_and_the_last_frame(clips):
    got, drawn, _ = _decode(clips["mkv"], np.arange(240, 300), batch_frames=16)
    assert got == drawn == list(range(240, 300))
    assert _decode(clips["mp4_gop250"], np.array([299]))[1] == [299]


def test_batches_are_independent_writable_arrays(clips):
    batches = [f for _, f in iter_frames(str(clips["mp4"]), np.arange(0, 40, 5), 2)]
    assert all(b.flags.writeable and b.flags.c_contiguous for b in batches)
    batches[0][:] = 0
    assert [read_frame_index(b[0]) for b in batches] == [0, 10, 20, 30]


def test_bad_arguments(clips):
    with pytest.raises(ValueError, match="strictly increasing"):
        list(iter_frames(str(clips["mp4"]), np.array([5, 5]), 4))
    with pytest.raises(ValueError, match="strictly increasing"):
        list(iter_frames(str(clips["mp4"]), np.array([-1, 3]), 4))
    with pytest.raises(ValueError, match="batch_frames"):
        list(iter_frames(str(clips["mp4"]), np.array([1]), 0))
    assert list(iter_frames(str(clips["mp4"]), np.zeros(0, np.int64), 4)) == []


def test_open_video_reads_the_file(clips):
    vr = open_video(str(clips["mp4"]))
    assert len(vr) == 300 and read_frame_index(vr[7].asnumpy()) == 7


# ------------------------------------------------------------------------------------------
# errors: always VideoError naming the file and the problem


def test_index_beyond_the_frames_present(clips):
    with pytest.raises(VideoError, match=r"g25\.mp4: frame 300 asked but the video holds 300 frames"):
        list(iter_frames(str(clips["mp4"]), np.array([10, 300]), 4))


def test_missing_empty_and_non_video_files(tmp_path):
    with pytest.raises(VideoError, match=r"nope\.mp4: no such file"):
        probe(str(tmp_path / "nope.mp4"))
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match=r"empty\.mp4: empty file"):
        list(iter_frames(str(tmp_path / "empty.mp4"), np.array([0]), 1))
    (tmp_path / "notes.mp4").write_text("not a video\n" * 200)
    with pytest.raises(VideoError, match=r"notes\.mp4: cannot open as a video: .*moov atom not found"):
        probe(str(tmp_path / "notes.mp4"))
    (tmp_path / "junk.mkv").write_bytes(b"\x00garbage" * 500)
    with pytest.raises(VideoError, match=r"junk\.mkv: cannot open as a video"):
        list(iter_frames(str(tmp_path / "junk.mkv"), np.array([0]), 1))


def test_truncated_mp4_with_index_at_the_end(clips, tmp_path):
    bad = _damaged(clips["mp4"], tmp_path / "cut.mp4", keep=0.5)
    with pytest.raises(VideoError, match=r"cut\.mp4: cannot open as a video: .*moov atom not found"):
        probe(str(bad))


def test_truncated_faststart_mp4_whose_header_promises_more_frames(clips, tmp_path):
    bad = _damaged(clips["faststart"], tmp_path / "cut_fast.mp4", keep=0.5)
    with pytest.raises(VideoError, match=r"cut_fast\.mp4: cannot open as a video: .*partial file"):
        list(iter_frames(str(bad), np.array([0, 10]), 2))  # even frames before the cut: the file is cut


def test_truncated_mkv(clips, tmp_path):
    bad = _damaged(clips["mkv"], tmp_path / "cut.mkv", keep=0.5)
    with pytest.raises(VideoError, match=r"cut\.mkv: corrupt or truncated video"):
        probe(str(bad))


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_frames_missing_in_the_middle(tmp_path, ext):
    """Frames lost from a recording would shift every later index: a gap in time is an error."""
    path = write_test_video(tmp_path / f"gap.{ext}", 8, drop=(100, 110))
    with pytest.raises(VideoError, match=rf"gap\.{ext}: frames missing: timestamps jump from 3\.960 s \(frame 99\)"):
        probe(str(path))


@pytest.mark.parametrize("kind", ["mp4", "faststart", "mkv", "mkv_gop250"])
def test_garbage_in_the_middle(clips, tmp_path, kind):
    src = clips[kind]
    bad = _damaged(src, tmp_path / f"garbage{src.suffix}", garbage_at=0.5)
    with pytest.raises(VideoError, match=rf"garbage{src.suffix}: .*(corrupt|truncated|missing|cannot decode)"):
        list(iter_frames(str(bad), np.arange(300), 32))


def test_ffmpeg_noise_goes_to_logging_not_stderr(clips, tmp_path, capfd, caplog):
    bad = _damaged(clips["mp4"], tmp_path / "noisy.mp4", garbage_at=0.5)
    with caplog.at_level(logging.WARNING, logger="matchflow.video.ffmpeg"), pytest.raises(VideoError):
        list(iter_frames(str(bad), np.arange(300), 32))
    assert "[h264" not in capfd.readouterr().err
    assert any(r.name == "matchflow.video.ffmpeg" for r in caplog.records)


# ------------------------------------------------------------------------------------------
# bounded memory


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def test_memory_does_not_grow_with_video_length(tmp_path):
    path = write_test_video(tmp_path / "long.mp4", 48, size=(640, 360), preset="ultrafast")
    batch_mib = 16 * 640 * 360 * 3 / 2**20  # 10.5 MiB per batch
    rss = []
    for i, (_, frames) in enumerate(iter_frames(str(path), np.arange(0, 1184, 2), 16)):
        assert frames.shape == (16, 360, 640, 3)
        del frames
        if i >= 6:
            gc.collect()
            rss.append(_rss_mib())
    # allocator and decoder-thread buffers settle within a few batches (up to about 40 MiB seen);
    # a leak of one batch per batch would add 330 MiB over these 31 batches
    assert len(rss) == 31 and max(rss) - rss[0] < 6 * batch_mib, rss


def test_the_decoder_does_not_read_ahead_while_the_stages_work(tmp_path):
    """decord's reader, left alone after a read, decodes the rest of the video into memory (690 MiB
    for these 250 frames of 1280x720); the stages take seconds per batch, so iter_frames must stop it once
    it could have filled READ_AHEAD_BYTES."""
    import time

    from matchflow.video import READ_AHEAD_BYTES

    path = write_test_video(tmp_path / "hd.mp4", 10, size=(1280, 720), preset="ultrafast")
    frames_mib = 1280 * 720 * 3 / 2**20
    it = iter_frames(str(path), np.arange(0, 250, 13), 4)
    seen, grown = [], []
    for _ in range(2):  # the first batch, then one after a slow caller
        _, frames = next(it)
        before = _rss_mib()  # at once: the decoder runs ahead from the moment the batch is returned
        seen += [read_frame_index(f) for f in frames]
        time.sleep(3.0)  # a slow stage; decord decodes 720p at well over 80 frames/s on one core
        grown.append(_rss_mib() - before)
    print("read ahead while the caller slept, MiB:", grown)
    seen += [read_frame_index(f) for _, b in it for f in b]
    assert seen == list(range(0, 250, 13))
    # allowed: the read-ahead budget plus decoder buffers (a few frames)
    assert max(grown) < READ_AHEAD_BYTES / 2**20 + 8 * frames_mib, f"{grown} MiB decoded ahead while nothing was asked"


# ------------------------------------------------------------------------------------------
# S3


def test_s3_via_moto(clips, s3_endpoint):
    import s3fs

    options = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing",
               "client_kwargs": {"region_name": "us-east-1"}}
    fs = s3fs.S3FileSystem(endpoint_url=s3_endpoint, key="testing", secret="testing")
    fs.mkdir("videos")
    fs.put_file(str(clips["mkv"]), "videos/game 1/1_720p.mkv")
    url = "s3://videos/game 1/1_720p.mkv"
    info = probe(url, options)
    assert info == VideoInfo(url, 300, 25.0, 320, 180)
    vr = open_video(url, options)
    assert len(vr) == 300 and read_frame_index(vr[100].asnumpy()) == 100
    idx = sample_indices(info.n_frames, info.fps, 2.0)[3:9]
    got, drawn, _ = _decode(url, idx, 4, storage_options=options)
    assert got == drawn == idx.tolist()
    with pytest.raises(VideoError, match=r"s3://videos/missing\.mkv: no such object"):
        probe("s3://videos/missing.mkv", options)
    fs.pipe_file("videos/half.mp4", clips["mp4"].read_bytes()[:20000])
    with pytest.raises(VideoError, match=r"s3://videos/half\.mp4: cannot open as a video"):
        list(iter_frames("s3://videos/half.mp4", np.array([0]), 1, options))


def test_chunks_of_a_half_reuse_the_open_reader_until_the_file_changes(tmp_path):
    from matchflow import video

    path = write_test_video(tmp_path / "half.mp4", 2.0)
    video._READERS.clear()
    first = [read_frame_index(f) for _, frames in iter_frames(str(path), np.array([0, 10]), 2) for f in frames]
    (reader,) = [vr for vr, _ in video._READERS._items.values()]
    later = [read_frame_index(f) for _, frames in iter_frames(str(path), np.array([30, 40]), 2) for f in frames]
    again = [read_frame_index(f) for _, frames in iter_frames(str(path), np.array([5]), 1) for f in frames]
    assert (first, later, again) == ([0, 10], [30, 40], [5])
    assert [vr for vr, _ in video._READERS._items.values()] == [reader]  # opened once
    write_test_video(path, 1.0)  # the file is replaced: a fresh reader sees the new content
    with pytest.raises(VideoError, match="frame 40 asked but the video holds 25 frames"):
        list(iter_frames(str(path), np.array([40]), 1))
