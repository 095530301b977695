"""`bench prepare`: video dataset -> evenly spaced frames -> one face per frame (cached crops) -> parquet manifest.

Cache layout, under the dataset's cache folder (`<paths.cache>/<dataset>`, the adapter's `cache_dir`):

    manifests/<fingerprint>.parquet                     every sampled frame, whatever its status (bench/manifest.py)
    crops/<variant>/<source>/<video key>/000123.jpg     face crop of frame 123 (JPEG q95: see benchmarks/crop_loading.py)
    crops/<variant>/<source>/<video key>/done.json      the video's per-frame results, written last: the resume marker

`<fingerprint>` hashes the dataset's config (root, compression, methods, fractions), `<source>` the folder of the
video file and `<variant>` everything that changes the pixels or the face chosen: two roots, c23 and c40, or two
detector settings never share crops or a manifest, and switching back to earlier settings resumes instantly. A
`done.json` is reused only while the video file keeps its size and mtime and the frame count asked for is
unchanged. The work per video is `bench.crops.prepare_video`; backends run it in-process, in a local process pool
(default; its workers die with the parent) or as Ray tasks (`prepare.backend=ray`, bench/prepare_ray.py).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.config import PrepareConfig
from bench.crops import DONE, HOST, TMP_SUFFIX, VideoJob, VideoResult, file_stamp, source_dir, variant, video_dir
from bench.dataset import SPLITS, VideoDatasetAdapter
from bench.datasets._common import hash_unit
from bench.errors import BenchError
from bench.faces import FaceDetector, build_face_detector
from bench.faces.track import SELECTIONS
from bench.manifest import OK, failures, manifest_path, read_manifest_meta, write_manifest_table
from bench.workers import run_pool

if TYPE_CHECKING:  # pandas is imported where used: the CLI imports this module for every `bench prepare`
    import pandas as pd

FORMATS = ("jpg", "png")  # both are read by bench.dataset.load_image
BACKENDS = ("process", "ray")
OTHER_HOST_STALE_S = 3600  # a temporary file of another machine is stale after this long


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
    flagged: dict[str, list[str]] = field(default_factory=dict)  # unstable / low_confidence -> video keys

    @property
    def ok(self) -> int:
        return self.frames[OK]

    def render(self) -> str:
        lines = [f"prepared {self.dataset} [{self.variant}] in {self.seconds:.1f} s: {self.videos} videos "
                 f"({self.reused} already done), {self.ok} frames ok; failures: {self.failed or 'none'}"]
        lines += [f"  {key}: {reason}" for key, reason in self.unreadable[:10]]
        if len(self.unreadable) > 10:
            lines.append(f"  ... and {len(self.unreadable) - 10} more (column `error` of the manifest)")
        for flag, keys in self.flagged.items():
            lines.append(f"{len(keys)} {flag} face track{'s' * (len(keys) != 1)} (check their crops; column "
                         f"`track_flags`): {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}")
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
    if cfg.selection not in SELECTIONS:
        raise BenchError(f"prepare.selection must be one of {SELECTIONS}, got {cfg.selection!r}", key="prepare.selection")
    if cfg.detect_every < 1:
        raise BenchError("prepare.detect_every must be >= 1 (1 = search every frame in full)", key="prepare.detect_every")
    if cfg.max_videos is not None and cfg.max_videos < 1:
        raise BenchError("prepare.max_videos must be >= 1, or null for every video", key="prepare.max_videos")
    if cfg.backend not in BACKENDS:
        raise BenchError(f"prepare.backend must be one of {BACKENDS}, got {cfg.backend!r}", key="prepare.backend")


def reusable(job: VideoJob) -> VideoResult | None:
    try:
        done = VideoResult.from_json((job.folder / DONE).read_text())
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return done if done.count == job.count and done.stamp == file_stamp(job.record.path) else None


def _trial_subset(records: list, limit: int | None) -> list:
    """At most `limit` videos, a fixed subset spread over domains (round robin in a stable hashed order)."""
    if limit is None or len(records) <= limit:
        return records
    by_domain: dict[str, list] = {}
    for r in sorted(records, key=lambda r: hash_unit(r.video)):
        by_domain.setdefault(r.domain, []).append(r)
    queues, keep = list(by_domain.values()), []
    while len(keep) < limit:
        for q in queues:
            if q and len(keep) < limit:
                keep.append(q.pop(0))
    kept = {r.video for r in keep}
    return [r for r in records if r.video in kept]  # listing order


def list_jobs(adapter: VideoDatasetAdapter, cfg: PrepareConfig) -> list[VideoJob]:
    base = adapter.cache_dir / "crops" / variant(cfg)
    jobs, split_of = [], {}
    for split in cfg.splits:
        for rec in _trial_subset(adapter.videos(split), cfg.max_videos):
            if rec.video in split_of:
                raise BenchError(f"dataset {adapter.name!r} lists video {rec.video!r} in splits {split_of[rec.video]!r} "
                                 f"and {split!r}; a video must belong to one split")
            split_of[rec.video] = split
            jobs.append(VideoJob(rec, cfg.frames[split], base / source_dir(rec.path) / video_dir(rec.video)))
    return jobs


def clean_stale_tmp(folder: Path) -> int:
    """Remove temporary files that a dead writer on this host left (a live one's name carries its pid)."""
    removed = 0
    if not folder.is_dir():
        return 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
                continue
            path = Path(dirpath, name)
            parts = name[1:-len(TMP_SUFFIX)].rsplit(".", 2)  # [file name, host, pid]
            if len(parts) == 3 and parts[1] == HOST and parts[2].isdigit() and _alive(int(parts[2])):
                continue  # a live writer on this machine
            if (len(parts) != 3 or parts[1] != HOST) and time.time() - path.stat().st_mtime < OTHER_HOST_STALE_S:
                continue  # maybe a live writer on another machine of a cluster sharing this cache
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    clean_stale_tmp(adapter.cache_dir)
    results = {} if cfg.overwrite else {j.record.video: r for j in jobs if (r := reusable(j)) is not None}
    todo = [j for j in jobs if j.record.video not in results]
    bar = tqdm(total=len(jobs), initial=len(results), desc=f"prepare {adapter.name}", unit="video", disable=not cfg.progress)
    tally: Counter[str] = Counter()

    def done(job: VideoJob, result: VideoResult) -> None:
        results[job.record.video] = result
        tally.update(f.status for f in result.frames)
        bar.set_postfix(tally, refresh=False)
        bar.update()

    with bar:
        if cfg.backend == "ray":
            from bench.prepare_ray import run_ray

            run_ray(todo, cfg, detector_cls, done)
        else:
            run_pool(todo, cfg, detector_cls, detector, done)
    frame = manifest_frame(adapter, jobs, results)
    path = write_manifest(adapter, frame, cfg)
    counts = Counter(frame.loc[frame.frame >= 0, "status"])
    unreadable = [(r.video, r.error) for r in frame[frame.frame < 0].itertuples()]
    flagged: dict[str, list[str]] = {}
    for job in jobs:
        for flag in results[job.record.video].flags:
            flagged.setdefault(flag, []).append(job.record.video)
    return PrepareSummary(adapter.name, variant(cfg), len(jobs), len(jobs) - len(todo), counts, failures(frame), unreadable,
                          time.perf_counter() - t0, path, flagged)


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
                "face_score": f.score, "face_candidates": f.candidates, "face_source": f.source,
                "track_flags": ",".join(res.flags), "mask_guided": res.mask_guided,
                "video_frames": res.n_frames, "video_path": rec.path, "source": rec.source,
            })
    frame = pd.DataFrame(rows)
    for col in ("face_x0", "face_y0", "face_x1", "face_y1"):
        frame[col] = frame[col].astype("Int64")
    frame["face_score"] = frame["face_score"].astype("Float64")
    return frame


def write_manifest(adapter: VideoDatasetAdapter, frame: pd.DataFrame, cfg: PrepareConfig) -> Path:
    """Write the manifest of `cfg.splits`, keeping earlier-prepared other splits when their settings match."""
    import pandas as pd

    path = manifest_path(adapter)
    path.parent.mkdir(parents=True, exist_ok=True)
    ignored = ("dataset", "splits", "workers", "overwrite", "progress", "max_videos", "backend", "ray_address")
    settings = {k: v for k, v in asdict(cfg).items() if k not in ignored}
    splits = {s: {"frames": cfg.frames[s], "max_videos": cfg.max_videos} for s in cfg.splits}
    if path.is_file():
        old_meta = read_manifest_meta(path)
        if old_meta["variant"] == variant(cfg):
            kept = [s for s in old_meta["splits"] if s not in splits]
            old = pd.read_parquet(path)
            frame = pd.concat([old[old.split.isin(kept)], frame], ignore_index=True)
            splits = {**{s: old_meta["splits"][s] for s in kept}, **splits}
    meta = {"variant": variant(cfg), "settings": settings, "splits": splits,
            "dataset_config": json.loads(json.dumps(asdict(adapter.cfg), default=str))}
    write_manifest_table(path, frame, meta)
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
