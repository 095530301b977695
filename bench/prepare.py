"""`bench prepare`: video dataset -> evenly spaced frames -> largest-face crops (cached) -> parquet manifest.

Cache layout, under the dataset's cache folder (`<paths.cache>/<dataset>`, the adapter's `cache_dir`):

    manifest.parquet                          every sampled frame, whatever its status (ok / no_face / decode_error)
    crops/<variant>/<video key>/000123.jpg    face crop of frame 123 (JPEG q95: see benchmarks/crop_loading.py)
    crops/<variant>/<video key>/done.json     the video's per-frame results, written last: the resume marker

`<variant>` names everything that changes the pixels (face detector and its options, margin, size, format), so
crops of different settings never mix and switching back to earlier settings resumes instantly. Every file is
written to a temporary name and renamed (atomic on POSIX): a killed run leaves no half-written crop, and a video
without `done.json` is simply redone. A `done.json` is reused only while the video file keeps its size and
mtime and the frame count asked for is unchanged.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.config import PrepareConfig
from bench.dataset import SPLITS, VideoDatasetAdapter, VideoRecord
from bench.errors import BenchError
from bench.faces import Box, FaceDetector, build_face_detector, crop_box, largest, square_crop
from bench.manifest import DECODE_ERROR, MANIFEST, META_KEY, NO_FACE, OK, failures, read_manifest_meta
from bench.video import VideoDecodeError, VideoReader, even_indices

if TYPE_CHECKING:  # pandas is imported where used: bench.config imports PrepareConfig from here on every command
    import pandas as pd

DONE = "done.json"
FORMATS = ("jpg", "png")  # both are read by bench.dataset.load_image (PIL)


def variant(cfg: PrepareConfig) -> str:
    name = f"{cfg.face_detector}_m{cfg.margin:g}_s{cfg.size}_{cfg.format}" + (f"{cfg.quality}" if cfg.format == "jpg" else "")
    if cfg.face_detector_options:
        options = json.dumps(dict(cfg.face_detector_options), sort_keys=True, default=str)
        name += "_" + hashlib.sha1(options.encode()).hexdigest()[:8]
    return name


def video_dir(key: str) -> Path:
    """Folder of a video key ("ffpp/Deepfakes/000_003" -> ffpp/Deepfakes/000_003); odd characters are replaced
    and a hash of the key appended, so distinct keys never share a folder."""
    parts = [re.sub(r"[^\w.\-]", "_", p) for p in key.split("/")]
    parts = [p if p.strip(".") else "_" for p in parts]
    if "/".join(parts) != key:
        parts[-1] += "_" + hashlib.sha1(key.encode()).hexdigest()[:8]
    return Path(*parts)


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def encode_image(crop: np.ndarray, fmt: str, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    # JPEG keeps PIL's default 4:2:0 chroma subsampling: the source videos are yuv420 already.
    Image.fromarray(crop).save(buf, format="JPEG" if fmt == "jpg" else "PNG", **({"quality": quality} if fmt == "jpg" else {}))
    return buf.getvalue()


# ---- one video (runs in a worker process) ---------------------------------------------------------------------

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
    face: Box | None = None  # largest detected face, frame pixels


@dataclass
class VideoResult:
    stamp: list[int] | None  # (size, mtime_ns) of the video file when it was prepared
    count: int
    n_frames: int
    frames: list[FrameResult]

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


def prepare_video(job: VideoJob, cfg: PrepareConfig, detector: FaceDetector) -> VideoResult:
    job.folder.mkdir(parents=True, exist_ok=True)
    for stale in job.folder.glob(".*.tmp"):  # left by a killed run
        stale.unlink()
    stamp = file_stamp(job.record.path)
    try:
        with VideoReader(job.record.path) as reader:
            n = len(reader)
            frames = [crop_frame(i, img, job.folder, cfg, detector) for i, img in reader.read(even_indices(n, job.count))]
    except VideoDecodeError as err:
        n, frames = 0, [FrameResult(-1, DECODE_ERROR, str(err))]
    result = VideoResult(stamp=stamp, count=job.count, n_frames=n, frames=frames)
    atomic_write(job.folder / DONE, json.dumps(asdict(result)).encode())
    return result


def crop_frame(index: int, img: np.ndarray | VideoDecodeError, folder: Path, cfg: PrepareConfig,
               detector: FaceDetector) -> FrameResult:
    if isinstance(img, VideoDecodeError):
        return FrameResult(index, DECODE_ERROR, str(img))
    face = largest(detector.detect(img))  # (H, W, 3) frame; other faces are ignored
    if face is None:
        return FrameResult(index, NO_FACE)
    crop = square_crop(img, crop_box(face, cfg.margin, img.shape[1], img.shape[0]), cfg.size)  # (size, size, 3)
    name = f"{index:06d}.{cfg.format}"
    atomic_write(folder / name, encode_image(crop, cfg.format, cfg.quality))
    return FrameResult(index, OK, crop=name, face=face)


_worker_detector: FaceDetector | None = None  # one per worker process (detectors hold unpicklable native state)


def _init_worker(detector_cls: type[FaceDetector], cfg: PrepareConfig) -> None:
    import cv2

    global _worker_detector
    cv2.setNumThreads(1)  # parallelism comes from the processes
    _worker_detector = build_face_detector(detector_cls, cfg.face_detector_options)


def _run_job(job: VideoJob, cfg: PrepareConfig) -> VideoResult:
    assert _worker_detector is not None
    return prepare_video(job, cfg, _worker_detector)


# ---- a whole dataset -------------------------------------------------------------------------------------------

@dataclass
class PrepareSummary:
    dataset: str
    variant: str
    videos: int
    reused: int  # already prepared by an earlier run
    frames: Counter[str]  # status -> sampled frames (frames of unreadable videos are unknown, so not counted)
    failed: str  # failures by reason, as text
    unreadable: list[tuple[str, str]]  # (video key, reason)
    seconds: float
    manifest: Path

    @property
    def ok(self) -> int:
        return self.frames[OK]

    def render(self) -> str:
        lines = [f"prepared {self.dataset} [{self.variant}] in {self.seconds:.1f} s: {self.videos} videos "
                 f"({self.reused} already done), {self.ok} frames ok; failures: {self.failed or 'none'}"]
        lines += [f"  {key}: {reason}" for key, reason in self.unreadable[:10]]
        if len(self.unreadable) > 10:
            lines.append(f"  ... and {len(self.unreadable) - 10} more (column `error` of the manifest)")
        lines.append(f"manifest: {self.manifest}")
        return "\n".join(lines)


def check_config(cfg: PrepareConfig) -> None:
    if cfg.format not in FORMATS:
        raise BenchError(f"prepare.format must be one of {FORMATS}, got {cfg.format!r}", key="prepare.format")
    for split in cfg.splits:
        if split not in SPLITS:
            raise BenchError(f"unknown split {split!r} in prepare.splits; splits are {SPLITS}", key="prepare.splits")
        if cfg.frames.get(split, 0) <= 0:
            raise BenchError(f"prepare.frames.{split} must be a positive frame count", key=f"prepare.frames.{split}")
    if cfg.margin < 1 or cfg.size <= 0:
        raise BenchError("prepare.margin must be >= 1 and prepare.size > 0", key="prepare.margin")


def _reusable(job: VideoJob) -> VideoResult | None:
    try:
        done = VideoResult.from_json((job.folder / DONE).read_text())
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return done if done.count == job.count and done.stamp == file_stamp(job.record.path) else None


def list_jobs(adapter: VideoDatasetAdapter, cfg: PrepareConfig) -> list[VideoJob]:
    base = adapter.cache_dir / "crops" / variant(cfg)
    jobs, split_of = [], {}
    for split in cfg.splits:
        for rec in adapter.videos(split):
            if rec.video in split_of:
                raise BenchError(f"dataset {adapter.name!r} lists video {rec.video!r} in splits {split_of[rec.video]!r} "
                                 f"and {split!r}; a video must belong to one split")
            split_of[rec.video] = split
            jobs.append(VideoJob(rec, cfg.frames[split], base / video_dir(rec.video)))
    return jobs


def prepare_dataset(adapter: VideoDatasetAdapter, cfg: PrepareConfig, detector_cls: type[FaceDetector]) -> PrepareSummary:
    """Prepare `cfg.splits` of `adapter` (resuming), then write its manifest. Returns the counts."""
    from tqdm import tqdm

    check_config(cfg)
    t0 = time.perf_counter()
    detector = build_face_detector(detector_cls, cfg.face_detector_options)  # bad options fail before any work
    jobs = list_jobs(adapter, cfg)
    if not jobs:
        raise BenchError(f"dataset {adapter.name!r} lists no videos in splits {cfg.splits} under {adapter.root}",
                         key=f"datasets.{adapter.name}.root")
    results = {} if cfg.overwrite else {j.record.video: r for j in jobs if (r := _reusable(j)) is not None}
    todo = [j for j in jobs if j.record.video not in results]
    workers = min(cfg.workers or os.cpu_count() or 1, max(len(todo), 1))
    bar = tqdm(total=len(jobs), initial=len(results), desc=f"prepare {adapter.name}", unit="video", disable=not cfg.progress)

    tally: Counter[str] = Counter()

    def done(job: VideoJob, result: VideoResult) -> None:
        results[job.record.video] = result
        tally.update(f.status for f in result.frames)
        bar.set_postfix(tally, refresh=False)
        bar.update()

    with bar:
        if workers <= 1:
            for job in todo:
                done(job, prepare_video(job, cfg, detector))
        else:
            import multiprocessing

            # spawn, not fork: OpenCV's and FFmpeg's thread pools do not survive a fork
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                                     initargs=(detector_cls, cfg)) as pool:
                futures = {pool.submit(_run_job, job, cfg): job for job in todo}
                try:
                    for fut in as_completed(futures):
                        done(futures[fut], fut.result())
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    frame = manifest_frame(adapter, jobs, results)
    path = write_manifest(adapter.cache_dir, frame, cfg)
    counts = Counter(frame.loc[frame.frame >= 0, "status"])
    unreadable = [(r.video, r.error) for r in frame[frame.frame < 0].itertuples()]
    return PrepareSummary(adapter.name, variant(cfg), len(jobs), len(jobs) - len(todo), counts, failures(frame), unreadable,
                          time.perf_counter() - t0, path)


def manifest_frame(adapter: VideoDatasetAdapter, jobs: list[VideoJob], results: dict[str, VideoResult]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for job in jobs:
        rec, res = job.record, results[job.record.video]
        folder = job.folder.relative_to(adapter.cache_dir)
        for f in res.frames:
            x0, y0, x1, y1 = f.face or (None,) * 4
            rows.append({
                "dataset": adapter.name, "split": rec.split, "domain": rec.domain, "label": rec.label,
                "video": rec.video, "frame": f.frame, "status": f.status, "error": f.error,
                "crop": (folder / f.crop).as_posix() if f.crop else None,  # relative to the dataset's cache folder
                "face_x0": x0, "face_y0": y0, "face_x1": x1, "face_y1": y1,
                "video_frames": res.n_frames, "video_path": rec.path, "source": rec.source,
            })
    frame = pd.DataFrame(rows)
    for col in ("face_x0", "face_y0", "face_x1", "face_y1"):
        frame[col] = frame[col].astype("Int64")
    return frame


def write_manifest(cache_dir: Path, frame: pd.DataFrame, cfg: PrepareConfig) -> Path:
    """Write the manifest of `cfg.splits`, keeping earlier-prepared other splits when their settings match."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = cache_dir / MANIFEST
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("dataset", "splits", "workers", "overwrite", "progress")}
    splits = {s: {"frames": cfg.frames[s]} for s in cfg.splits}
    if path.is_file():
        old_meta = read_manifest_meta(path)
        if old_meta["variant"] == variant(cfg):
            kept = [s for s in old_meta["splits"] if s not in splits]
            old = pd.read_parquet(path)
            frame = pd.concat([old[old.split.isin(kept)], frame], ignore_index=True)
            splits = {**{s: old_meta["splits"][s] for s in kept}, **splits}
    meta = {"variant": variant(cfg), "settings": settings, "splits": splits}
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    atomic_write(path, buf.getvalue().to_pybytes())
    return path


# ---- CLI entry points ------------------------------------------------------------------------------------------

def video_adapter(name: str, cfg: Any) -> VideoDatasetAdapter:
    """The registered adapter `name`, built from `cfg.datasets.<name>` with cache folder `<paths.cache>/<name>`."""
    from bench.plugins import get_plugins

    cls = get_plugins().datasets.get(name)
    if not issubclass(cls, VideoDatasetAdapter):
        raise BenchError(f"dataset {name!r} is not a video dataset; it needs no `bench prepare`", key="dataset")
    if name not in cfg.datasets:
        raise BenchError(f"no config for dataset {name!r}", key=f"datasets.{name}")
    return cls(cfg.datasets[name], Path(cfg.paths.cache).expanduser() / name)


def prepare_config(cfg: Any) -> PrepareConfig:
    from omegaconf import OmegaConf

    return OmegaConf.to_object(cfg.prepare)


def run_prepare(cfg: Any) -> int:
    """`bench prepare`. `cfg` has `prepare` (PrepareConfig), `paths.cache` and `datasets.<name>`. Exit code: 0 if
    any frame was prepared, 1 if everything failed."""
    from bench.plugins import get_plugins

    pcfg = prepare_config(cfg)
    if not pcfg.dataset:
        raise BenchError("which dataset? bench prepare dataset=<name> (see bench data status)", key="dataset")
    adapter = video_adapter(pcfg.dataset, cfg)
    adapter.check()
    summary = prepare_dataset(adapter, pcfg, get_plugins().face_detectors.get(pcfg.face_detector))
    print(summary.render())
    return 0 if summary.ok else 1
