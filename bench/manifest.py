"""The manifest of a prepared video dataset: its row statuses, and reading it back as training/test samples.

`bench prepare` (bench/prepare.py) writes `<cache>/<dataset>/manifests/<config fingerprint>.parquet`; training only
ever reads it, through `prepared_samples`, so a run never imports the video decoder or the face detector.

Columns (one row per sampled frame; a row with frame -1 is a video that could not be read at all):

| column | meaning |
|---|---|
| dataset, split, domain, label, video, source | as the adapter listed the video (`VideoRecord`) |
| frame | frame index in presentation order (-1: unreadable video) |
| status | ok, no_face, off_track (a face jumped off the video's track: not cropped), decode_error, bad_crop (the crop failed `bench data verify`) |
| error | why, for decode_error (empty file / not a video / truncated or corrupt / frame not decodable) |
| crop | the crop file, relative to the dataset's cache folder (null unless ok) |
| face_x0, face_y0, face_x1, face_y1 | the chosen face box in frame pixels |
| face_score, face_candidates, face_source | its confidence [0, 1], the faces the deciding search returned, and that search (anchor / tracked / redetected) |
| track_flags | per video: "unstable" and/or "low_confidence" (bench/faces/track.py), "" when neither |
| mask_guided | per video: the face was chosen inside the manipulation mask (FF++/DFD fakes with masks) |
| video_frames | frames in the video (fewer than asked: every frame is taken) |
| video_path | the video file |
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError
from bench.records import Sample

if TYPE_CHECKING:
    import pandas as pd

    from bench.dataset import DatasetAdapter, VideoDatasetAdapter

log = logging.getLogger(__name__)

# Frame statuses. off_track: a face was found but it jumped away from (or changed size on) the video's face track,
# so it was not cropped (see bench/faces/track.py).
OK, NO_FACE, OFF_TRACK, DECODE_ERROR = "ok", "no_face", "off_track", "decode_error"
META_KEY = b"forgerybench"  # parquet key-value metadata: settings and prepared splits


def failures(frame: pd.DataFrame) -> str:
    """'no_face 3 frames, 2 unreadable videos' for manifest rows (a frame -1 row is a video that could not be read)."""
    counts = Counter(frame.status[(frame.status != OK) & (frame.frame >= 0)])
    parts = [f"{k} {v} frame{'s' * (v != 1)}" for k, v in sorted(counts.items())]
    if (videos := int((frame.frame < 0).sum())):
        parts.append(f"{videos} unreadable video{'s' * (videos != 1)} ({DECODE_ERROR})")
    return ", ".join(parts)


def dataset_fingerprint(adapter: DatasetAdapter) -> str:
    """A short hash of the dataset's config (root resolved): another root, compression, method list or split
    fraction is another manifest, so a run never reads crops prepared from other videos."""
    import dataclasses
    import hashlib

    cfg = dataclasses.asdict(adapter.cfg) if dataclasses.is_dataclass(adapter.cfg) else dict(vars(adapter.cfg))
    if cfg.get("root"):
        cfg["root"] = str(Path(str(cfg["root"])).expanduser().resolve())
    return hashlib.sha1(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:10]


def manifest_path(adapter: DatasetAdapter) -> Path:
    """`<cache>/<dataset>/manifests/<config fingerprint>.parquet`."""
    return adapter.cache_dir / "manifests" / f"{dataset_fingerprint(adapter)}.parquet"


def write_manifest_table(path: Path, frame: pd.DataFrame, meta: dict[str, Any]) -> None:
    """Write `frame` with `meta` in the parquet metadata, atomically (temporary file + rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench.crops import atomic_write

    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    atomic_write(path, buf.getvalue().to_pybytes())


def read_manifest_meta(path: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    return json.loads(pq.read_schema(path).metadata[META_KEY])


def _not_prepared(adapter: VideoDatasetAdapter, why: str) -> BenchError:
    return BenchError(f"dataset {adapter.name!r} {why}: run `bench prepare dataset={adapter.name}` (prepared data is "
                      f"cached under paths.cache, env BENCH_CACHE; here {adapter.cache_dir.parent})", key="paths.cache")


def prepared_samples(adapter: VideoDatasetAdapter, split: str) -> list[Sample]:
    """The ok frames of `split` from the dataset's manifest, in manifest order (per video, frames ascending)."""
    import pandas as pd

    path = manifest_path(adapter)
    if not path.is_file():
        raise _not_prepared(adapter, f"is not prepared (no {path})")
    meta = read_manifest_meta(path)
    if split not in meta["splits"]:
        raise _not_prepared(adapter, f"has no prepared {split!r} split (prepared: {sorted(meta['splits'])}); "
                                     f"add it with prepare.splits=[{split}]")
    frame = pd.read_parquet(path, filters=[("split", "==", split)])
    ok = frame[frame.status == OK]
    if len(ok) < len(frame):
        log.warning("%s/%s: %d prepared frames; not samples: %s [%s]", adapter.name, split, len(ok), failures(frame), path)
    if (limit := meta["splits"][split].get("max_videos")) is not None:
        log.warning("%s/%s: a trial preparation (prepare.max_videos=%d): not the whole split", adapter.name, split, limit)
    return [Sample(dataset=r.dataset, split=r.split, domain=r.domain, label=int(r.label), video=r.video, frame=int(r.frame),
                   path=str(adapter.cache_dir / r.crop), source=r.source)
            for r in ok.itertuples()]
