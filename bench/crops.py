"""One video -> evenly spaced frames -> one face per frame (bench/faces/track.py) -> cached crops + `done.json`.

This is the unit of work of every `bench prepare` backend (in-process, process pool, Ray task): it reads one video,
writes only inside its own folder, and returns a `VideoResult`. Every file is written to a temporary name and
renamed (atomic on POSIX): a killed run leaves no half-written crop, and a video without `done.json` is redone.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench.config import PrepareConfig
from bench.dataset import VideoRecord
from bench.faces import FACES_VERSION, Box, FaceDetector, crop_box, square_crop
from bench.faces.track import select_faces
from bench.manifest import DECODE_ERROR, OK
from bench.video import VideoDecodeError, VideoReader, even_indices

DONE = "done.json"
TMP_SUFFIX = ".tmp"
HOST = socket.gethostname().replace(".", "_")  # no dots: temporary names are split on them


def variant(cfg: PrepareConfig) -> str:
    """Names everything that changes the pixels or the face chosen, so crops of other settings never mix (and crops
    of an earlier version of the face choice neither: FACES_VERSION)."""
    name = f"{cfg.face_detector}_m{cfg.margin:g}_s{cfg.size}_{cfg.format}" + (f"{cfg.quality}" if cfg.format == "jpg" else "")
    choice = {"selection": cfg.selection, "faces": FACES_VERSION,
              **({"detect_every": cfg.detect_every} if cfg.selection == "track" else {})}
    options = json.dumps({**dict(cfg.face_detector_options), **choice}, sort_keys=True, default=str)
    return f"{name}_{hashlib.sha1(options.encode()).hexdigest()[:8]}"


def video_dir(key: str) -> Path:
    """Folder of a video key ("ffpp/Deepfakes/000_003" -> ffpp/Deepfakes/000_003); odd characters are replaced
    and a hash of the key appended, so distinct keys never share a folder."""
    parts = [re.sub(r"[^\w.\-]", "_", p) for p in key.split("/")]
    parts = [p if p.strip(".") else "_" for p in parts]
    if "/".join(parts) != key:
        parts[-1] += "_" + hashlib.sha1(key.encode()).hexdigest()[:8]
    return Path(*parts)


def source_dir(path: str) -> str:
    """A short name of the folder a video file lies in: two roots (or c23 and c40 of one) never share crops."""
    return hashlib.sha1(str(Path(path).parent).encode()).hexdigest()[:10]


def tmp_name(path: Path) -> Path:
    """`.<name>.<host>.<pid>.tmp`: the writer is named, so a later run can tell a dead writer's leftovers."""
    return path.with_name(f".{path.name}.{HOST}.{os.getpid()}{TMP_SUFFIX}")


def atomic_write(path: Path, data: bytes) -> None:
    tmp = tmp_name(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def encode_image(crop: np.ndarray, fmt: str, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    # JPEG keeps PIL's default 4:2:0 chroma subsampling: the source videos are yuv420 already.
    Image.fromarray(crop).save(buf, format="JPEG" if fmt == "jpg" else "PNG", **({"quality": quality} if fmt == "jpg" else {}))
    return buf.getvalue()


@dataclass(frozen=True)
class VideoJob:
    record: VideoRecord
    count: int  # frames to sample
    folder: Path  # this video's crops and done.json


@dataclass
class FrameResult:
    frame: int  # -1: the video itself could not be read
    status: str
    error: str = ""
    crop: str | None = None  # file name inside the video's folder
    face: Box | None = None  # the chosen face, frame pixels
    score: float | None = None  # its confidence in [0, 1]
    candidates: int = 0  # faces the deciding search returned
    source: str = ""  # anchor | tracked | redetected (bench/faces/track.py)


@dataclass
class VideoResult:
    stamp: list[int] | None  # (size, mtime_ns) of the video file when it was prepared
    count: int
    n_frames: int
    frames: list[FrameResult]
    flags: list[str] = field(default_factory=list)  # unstable / low_confidence
    mask_guided: bool = False  # the face was chosen inside the manipulation mask

    @classmethod
    def from_json(cls, text: str) -> VideoResult:
        d = json.loads(text)
        frames = [FrameResult(**{**f, "face": tuple(f["face"]) if f["face"] else None}) for f in d.pop("frames")]
        return cls(frames=frames, **d)


def file_stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def mask_boxes(path: str, indices: list[int]) -> list[Box | None]:
    """Bounding box of the manipulated region at each frame of a mask video (None where it is empty or unreadable)."""
    out: dict[int, Box | None] = {}
    try:
        with VideoReader(path, threads=1) as reader:
            usable = [i for i in indices if i < len(reader)]
            for i, img in reader.read(usable):
                if isinstance(img, VideoDecodeError):
                    continue
                ys, xs = np.nonzero(img.max(axis=-1) > 127)  # (H, W) mask pixels
                out[i] = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else None
    except VideoDecodeError:
        pass
    return [out.get(i) for i in indices]


def prepare_video(job: VideoJob, cfg: PrepareConfig, detector: FaceDetector, threads: int = 1) -> VideoResult:
    job.folder.mkdir(parents=True, exist_ok=True)
    for stale in job.folder.glob(f".*{TMP_SUFFIX}"):  # left by a killed run (only this worker writes here now)
        stale.unlink(missing_ok=True)
    stamp = file_stamp(job.record.path)
    try:
        with VideoReader(job.record.path, threads=threads) as reader:
            n = len(reader)
            decoded = list(reader.read(even_indices(n, job.count)))  # [(index, (H, W, 3) frame or error)]
    except VideoDecodeError as err:
        result = VideoResult(stamp=stamp, count=job.count, n_frames=0, frames=[FrameResult(-1, DECODE_ERROR, str(err))])
    else:
        result = _crop_video(job, cfg, detector, n, decoded, stamp)
    atomic_write(job.folder / DONE, json.dumps(asdict(result)).encode())
    return result


def _crop_video(job: VideoJob, cfg: PrepareConfig, detector: FaceDetector, n: int,
                decoded: list[tuple[int, np.ndarray | VideoDecodeError]], stamp: list[int] | None) -> VideoResult:
    indices = [i for i, _ in decoded]
    images = [None if isinstance(img, VideoDecodeError) else img for _, img in decoded]
    hints = mask_boxes(job.record.mask, indices) if job.record.mask else None
    guided = hints is not None and any(h is not None for h in hints)
    faces = select_faces(images, detector, selection=cfg.selection, detect_every=cfg.detect_every,
                         min_confidence=cfg.min_confidence, hints=hints if guided else None)
    frames = []
    for (index, img), choice in zip(decoded, faces.choices):
        if isinstance(img, VideoDecodeError):
            frames.append(FrameResult(index, DECODE_ERROR, str(img)))
            continue
        result = FrameResult(index, choice.status, candidates=choice.candidates, source=choice.source)
        if choice.face is not None:
            result.face, result.score = choice.face.box, round(choice.face.score, 4)
            crop = square_crop(img, crop_box(choice.face.box, cfg.margin, img.shape[1], img.shape[0]), cfg.size)
            result.crop = f"{index:06d}.{cfg.format}"  # crop: (size, size, 3)
            atomic_write(job.folder / result.crop, encode_image(crop, cfg.format, cfg.quality))
        frames.append(result)
    if not any(f.status == OK for f in frames):
        faces.flags = []  # nothing was cropped: the frame statuses already say why
    return VideoResult(stamp=stamp, count=job.count, n_frames=n, frames=frames, flags=faces.flags, mask_guided=guided)
