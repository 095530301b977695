"""Frame-accurate sampling of a few frames from a video, by seeking (PyAV).

Frame `i` is the i-th frame in presentation order. Its timestamp comes from one pass over the container's
packets (demuxing only, no decoding): that pass gives the exact frame count, which the stream's `frames`
metadata does not always hold (it is 0 for many mkv/webm/avi files and can disagree with a truncated file),
and the keyframes. Reading frames then costs one seek per group-of-pictures holding a requested frame, plus
decoding from that keyframe to the last requested frame of the group; the rest of the video is never decoded.

Seeking alone saves little on real files: at x264's default keyframe interval (250) sampling 32 of 300 frames
still decodes ~290 of them. What does save is not decoding frames that no other frame refers to: between the
keyframe and a wanted frame, packets of unwanted frames are sent with `skip_frame=NONREF`, so the decoder drops
non-reference frames (most B-frames) unseen. Every frame it does decode is decoded exactly as before, so the
wanted frames' pixels are unchanged (benchmarks/face_prepare.py: ~half the decoding time at 720p).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


class VideoDecodeError(Exception):
    """The file cannot be opened or read as a video (zero bytes, truncated, not a video)."""


def even_indices(n_frames: int, count: int) -> list[int]:
    """`count` evenly spaced frame indices over `n_frames` frames (first and last included; all if fewer)."""
    if n_frames <= 0 or count <= 0:
        return []
    return np.unique(np.linspace(0, n_frames - 1, min(count, n_frames)).round().astype(int)).tolist()


@dataclass(frozen=True)
class FrameIndex:
    """Timestamps of a video stream's frames, in presentation order."""

    pts: np.ndarray  # (N,) int, stream time base, ascending
    keyframes: np.ndarray  # (K,) int, positions in `pts` of the frames a decoder can start from, ascending

    def __len__(self) -> int:
        return len(self.pts)

    def keyframe_before(self, index: int) -> int:
        """Position of the last keyframe at or before frame `index` (0 when the stream starts without one)."""
        k = bisect.bisect_right(self.keyframes.tolist(), index) - 1
        return int(self.keyframes[k]) if k >= 0 else 0


SIGNATURES = ((4, b"ftyp", "MP4/MOV"), (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"), (0, b"RIFF", "AVI"),
              (0, b"FLV", "FLV"), (0, b"\x00\x00\x01\xba", "MPEG-PS"), (0, b"\x47", "MPEG-TS"))


def container_kind(path: Path) -> str | None:
    """The container a file's first bytes announce (None: no known video signature)."""
    with open(path, "rb") as f:
        head = f.read(12)
    return next((name for at, sig, name in SIGNATURES if head[at:at + len(sig)] == sig), None)


def upright(frame: av.VideoFrame, threads: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 RGB as the video is meant to be shown: phone videos store a rotation in their display
    matrix instead of rotating the pixels, and a sideways face is invisible to a frontal face detector.
    `threads`: of the colour conversion (0 = one per core, PyAV's default; 1 in a process pool's worker)."""
    img = frame.to_ndarray(format="rgb24", threads=threads)
    quarter_turns = round(frame.rotation / 90) % 4  # counter-clockwise, as np.rot90 turns
    return np.ascontiguousarray(np.rot90(img, quarter_turns)) if quarter_turns else img


class VideoReader:
    """Random access to the frames of one video file; use as a context manager.

    `decoded` counts frames the decoder produced, so callers (and tests) can check that sampling 32 frames
    of a long video did not decode all of it.
    """

    def __init__(self, path: str | Path, threads: int = 0, skip_unwanted: bool = True) -> None:
        """`threads`: decoder threads (frame + slice threading); 0 = FFmpeg's default, 1 = one core (a worker of a
        process pool, where the processes already fill the cores). `skip_unwanted`: drop unwanted non-reference
        frames undecoded (False: decode every frame up to a wanted one, as before; for comparisons)."""
        self.path = Path(path)
        self.decoded = 0
        self.skip_unwanted = skip_unwanted
        self.threads = threads
        try:
            size = self.path.stat().st_size
        except OSError as err:
            raise VideoDecodeError(f"missing or unreadable file: {err.strerror or err}") from err
        if size == 0:
            raise VideoDecodeError("empty file (0 bytes)")
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
            why = getattr(err, "strerror", None) or err
            kind = container_kind(self.path)
            if kind:  # a video container's signature, yet unreadable: usually a download cut short
                raise VideoDecodeError(f"truncated or corrupt {kind} file ({size} bytes): {why}") from err
            raise VideoDecodeError(f"not a video: no known container signature ({size} bytes): {why}") from err
        if not self._container.streams.video:
            self._container.close()
            raise VideoDecodeError("not a video: the file has no video stream")
        self._stream = self._container.streams.video[0]
        if threads != 1:
            self._stream.thread_type = "AUTO"
        self._stream.thread_count = threads  # 1 included: PyAV's default (0) starts a slice thread per core
        self._index: FrameIndex | None = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    @property
    def index(self) -> FrameIndex:
        if self._index is None:
            self._index = self._build_index()
        return self._index

    def __len__(self) -> int:
        return len(self.index)

    def _build_index(self) -> FrameIndex:
        stamps: list[tuple[int, bool]] = []
        try:
            for packet in self._container.demux(self._stream):
                ts = packet.pts if packet.pts is not None else packet.dts
                if packet.size and ts is not None:  # size 0 = the flush packet at the end
                    stamps.append((ts, packet.is_keyframe))
        except av.FFmpegError as err:
            raise VideoDecodeError(f"truncated or corrupt: unreadable packets after frame {len(stamps)}: {err}") from err
        if not stamps:
            raise VideoDecodeError("truncated or empty stream: no video frames")
        listed = self._stream.frames  # from the container header; 0 when the format does not store it
        if listed and len(stamps) < listed:
            raise VideoDecodeError(f"truncated: the container lists {listed} frames but only {len(stamps)} are present")
        stamps.sort()
        pts = np.array([t for t, _ in stamps], dtype=np.int64)
        keys = np.array([i for i, (_, key) in enumerate(stamps) if key], dtype=np.int64)
        return FrameIndex(pts=pts, keyframes=keys)

    def read(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray | VideoDecodeError]]:
        """Yield `(index, frame)` for each requested index in ascending order; frame is (H, W, 3) uint8 RGB,
        or the VideoDecodeError that prevented decoding it (the other frames are still yielded)."""
        index = self.index
        wanted = sorted({int(i) for i in indices})
        bad = [i for i in wanted if not 0 <= i < len(index)]
        if bad:
            raise IndexError(f"frame indices {bad} outside [0, {len(index)}) of {self.path}")
        # One group per keyframe: a seek to it, then decoding forward to the group's last requested frame.
        groups: dict[int, list[int]] = {}
        for i in wanted:
            groups.setdefault(index.keyframe_before(i), []).append(i)
        for key, members in groups.items():
            yield from self._decode_group(key, members)

    def _decode_from(self, key_pts: int, wanted: set[int]) -> Iterator[av.VideoFrame]:
        """Frames decoded from the keyframe at `key_pts` on, in presentation order; frames whose timestamp is not
        in `wanted` and that no other frame refers to are dropped undecoded."""
        codec = self._stream.codec_context
        self._container.seek(key_pts, backward=True, any_frame=False, stream=self._stream)
        for packet in self._container.demux(self._stream):
            if self.skip_unwanted:  # read per packet, by frame threads too (FFmpeg copies it when a packet is sent)
                codec.skip_frame = "DEFAULT" if packet.pts is None or packet.pts in wanted else "NONREF"
            yield from packet.decode()  # the last packet (size 0) drains the decoder's delayed frames

    def _decode_group(self, key: int, members: list[int]) -> Iterator[tuple[int, np.ndarray | VideoDecodeError]]:
        pts = self.index.pts
        targets = {int(pts[i]): i for i in members}
        last = int(pts[members[-1]])
        found: dict[int, np.ndarray] = {}
        try:
            for frame in self._decode_from(int(pts[key]), set(targets)):
                self.decoded += 1
                if frame.pts is None:
                    raise VideoDecodeError("decoded frame has no timestamp")
                if frame.pts in targets:
                    found[targets[frame.pts]] = upright(frame, self.threads)
                if frame.pts >= last:
                    break
        except av.FFmpegError as err:
            error: VideoDecodeError | None = VideoDecodeError(f"decoding failed: {err}")
        except VideoDecodeError as err:
            error = err
        else:
            error = None
        for i in members:
            yield i, found[i] if i in found else (error or VideoDecodeError(f"frame {i} was not produced by the decoder"))


def read_frames(path: str | Path, count: int) -> tuple[int, list[tuple[int, np.ndarray | VideoDecodeError]]]:
    """`count` evenly spaced frames of the video at `path`: (frame count, [(index, frame or error), ...])."""
    with VideoReader(path) as reader:
        n = len(reader)
        return n, list(reader.read(even_indices(n, count)))


def write_video(path: str | Path, frames: Sequence[np.ndarray], fps: int = 25, gop: int = 12, crf: int = 18,
                rotation: int = 0) -> None:
    """Encode (H, W, 3) uint8 RGB frames (even H and W) as H.264 at `path`; for fixtures and demos.

    `gop` is the keyframe interval; x264's default B-frames are kept, so presentation and decode order differ
    as in real datasets. `rotation` (degrees counter-clockwise) goes into the display matrix, as phones write it.
    """
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        stream.options = {"g": str(gop), "crf": str(crf), "sc_threshold": "0"}  # no extra keyframes at scene cuts
        for img in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
        container.mux(stream.encode())  # flush the encoder's delayed frames
