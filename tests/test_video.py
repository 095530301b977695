"""Frame-accurate sampling by seeking (bench.video)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.video import VideoDecodeError, VideoReader, even_indices, read_frames, write_video

STEP = 4  # frame i is a flat grey image of brightness i * STEP, so a decoded frame names its own index


def ramp(n: int, size: int = 32) -> list[np.ndarray]:
    return [np.full((size, size, 3), i * STEP, np.uint8) for i in range(n)]


def index_of(img: np.ndarray) -> int:
    return round(float(img.mean()) / STEP)


@pytest.mark.parametrize(("n", "k"), [(100, 32), (300, 32), (32, 32), (10, 32), (1, 5), (7, 1)])
def test_even_indices(n: int, k: int) -> None:
    idx = even_indices(n, k)
    assert len(idx) == min(n, k)
    assert idx == sorted(set(idx)) and idx[0] == 0 and all(0 <= i < n for i in idx)
    if len(idx) > 1:
        assert idx[-1] == n - 1
        gaps = np.diff(idx)
        assert gaps.max() - gaps.min() <= 1  # evenly spaced, up to rounding


def test_even_indices_empty() -> None:
    assert even_indices(0, 8) == [] and even_indices(8, 0) == []


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])  # .mkv stores no frame count: it must come from the packets
def test_reads_the_requested_frames_by_seeking(tmp_path, suffix) -> None:
    n, gop = 60, 6
    path = tmp_path / f"ramp{suffix}"
    write_video(path, ramp(n), gop=gop)  # x264 B-frames: decode order differs from presentation order
    wanted = [3, 31, 32, 59]
    with VideoReader(path) as reader:
        assert len(reader) == n
        got = list(reader.read(wanted))
        decoded = reader.decoded
    assert [i for i, _ in got] == wanted
    assert [index_of(img) for _, img in got] == wanted
    # one seek per group of pictures holding a wanted frame: at most `gop` frames decoded per wanted frame
    assert decoded <= gop * len(wanted) < n


@pytest.mark.parametrize("threads", [1, 0])  # 0: frame threading, where packets are decoded out of step
def test_unwanted_non_reference_frames_are_skipped_without_changing_a_pixel(tmp_path, threads) -> None:
    path = tmp_path / "pan.mp4"
    texture = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    write_video(path, [np.roll(texture, 2 * i, axis=1) for i in range(90)], gop=250)  # one keyframe, x264 B-frames
    wanted = even_indices(90, 8)
    frames, decoded = {}, {}
    for skip in (False, True):
        with VideoReader(path, threads=threads, skip_unwanted=skip) as reader:
            frames[skip] = [img for _, img in reader.read(wanted)]
            decoded[skip] = reader.decoded
    assert len(frames[True]) == len(wanted) and all(np.array_equal(a, b) for a, b in zip(frames[False], frames[True]))
    assert decoded[False] == 90 and decoded[True] < 0.8 * 90  # B-frames nothing refers to were never decoded


def test_read_frames_evenly_spaced(tmp_path) -> None:
    path = tmp_path / "ramp.mp4"
    write_video(path, ramp(60), gop=30)
    n, frames = read_frames(path, 8)
    assert n == 60
    assert [i for i, _ in frames] == even_indices(60, 8)
    assert [index_of(img) for _, img in frames] == even_indices(60, 8)


def test_out_of_range_index(tmp_path) -> None:
    path = tmp_path / "ramp.mp4"
    write_video(path, ramp(10))
    with VideoReader(path) as reader, pytest.raises(IndexError):
        list(reader.read([10]))


def test_corrupt_inputs_raise_decode_error(tmp_path) -> None:
    good = tmp_path / "good.mp4"
    write_video(good, [np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in range(30)])
    data = good.read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video\n" * 50)
    for name in ("truncated.mp4", "empty.mp4", "text.mp4", "missing.mp4"):
        with pytest.raises(VideoDecodeError):
            read_frames(tmp_path / name, 4)


@pytest.mark.parametrize(("rotation", "corner"), [(90, (-1, 0)), (-90, (0, -1)), (180, (-1, -1))])
def test_frames_come_out_upright(tmp_path, rotation, corner) -> None:
    img = np.zeros((32, 64, 3), np.uint8)
    img[:8, :8] = 255  # a white top-left corner on a landscape frame
    path = tmp_path / "phone.mp4"
    write_video(path, [img] * 3, rotation=rotation)
    _, [(_, frame)] = read_frames(path, 1)
    assert frame.shape == ((64, 32, 3) if rotation % 180 else (32, 64, 3))
    y, x = (4 if c == 0 else frame.shape[i] - 5 for i, c in enumerate(corner))
    assert frame[y, x].min() > 200 and frame.mean() < 60  # the white corner moved where the rotation puts it
