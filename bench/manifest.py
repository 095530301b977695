"""The manifest of a prepared video dataset: its row statuses, and reading it back as training/test samples.

`bench prepare` (bench/prepare.py) writes `<cache>/<dataset>/manifest.parquet`; training only ever reads it, through
`prepared_samples`, so a run never imports the video decoder or the face detector.
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

    from bench.dataset import VideoDatasetAdapter

log = logging.getLogger(__name__)

OK, NO_FACE, DECODE_ERROR = "ok", "no_face", "decode_error"
MANIFEST = "manifest.parquet"
META_KEY = b"forgerybench"  # parquet key-value metadata: settings and prepared splits


def failures(frame: pd.DataFrame) -> str:
    """'no_face 3 frames, 2 unreadable videos' for manifest rows (a frame -1 row is a video that could not be read)."""
    counts = Counter(frame.status[(frame.status != OK) & (frame.frame >= 0)])
    parts = [f"{k} {v} frame{'s' * (v != 1)}" for k, v in sorted(counts.items())]
    if (videos := int((frame.frame < 0).sum())):
        parts.append(f"{videos} unreadable video{'s' * (videos != 1)} ({DECODE_ERROR})")
    return ", ".join(parts)


def read_manifest_meta(path: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    return json.loads(pq.read_schema(path).metadata[META_KEY])


def _not_prepared(adapter: VideoDatasetAdapter, why: str) -> BenchError:
    return BenchError(f"dataset {adapter.name!r} {why}: run `bench prepare dataset={adapter.name}` (prepared data is "
                      f"cached under paths.cache, env BENCH_CACHE; here {adapter.cache_dir.parent})", key="paths.cache")


def prepared_samples(adapter: VideoDatasetAdapter, split: str) -> list[Sample]:
    """The ok frames of `split` from the dataset's manifest, in manifest order (per video, frames ascending)."""
    import pandas as pd

    path = adapter.cache_dir / MANIFEST
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
    return [Sample(dataset=r.dataset, split=r.split, domain=r.domain, label=int(r.label), video=r.video, frame=int(r.frame),
                   path=str(adapter.cache_dir / r.crop), source=r.source)
            for r in ok.itertuples()]
