"""`bench data verify DATASET`: decode every listed image or prepared crop, in parallel, before any training does.

A truncated crop used to be trained on silently (libjpeg only warns), a corrupt one crashed mid-epoch naming no
file, a deleted one was reported ok. Here every file is opened and decoded (threads: OpenCV releases the GIL) by
`bench.dataset.check_image`, the check training itself applies: a JPEG or PNG without its end marker must pass PIL's
strict decoder, which is how a truncated file is told from one with trailing bytes. A video dataset's failures are
written into its manifest (status `bad_crop`, the reason in `error`), so training never sees them; an image
dataset's are listed. Exit code 1 if any file failed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.dataset import SPLITS, VideoDatasetAdapter, check_image
from bench.records import Sample

BAD_CROP = "bad_crop"


def check_file(sample: Sample) -> str | None:
    """Why the sample's image cannot be used (the same check as loading it for training), or None."""
    return None if sample.path is None else check_image(sample.path)


def verify_samples(samples: list[Sample], workers: int, progress: bool, desc: str) -> dict[str, str]:
    """Sample key -> reason, for every sample whose file failed."""
    from tqdm import tqdm

    with ThreadPoolExecutor(max(1, workers)) as pool:
        reasons = list(tqdm(pool.map(check_file, samples), total=len(samples), desc=desc, unit="file", disable=not progress))
    return {s.key: r for s, r in zip(samples, reasons) if r}


def run_verify(cfg: Any, name: str) -> int:
    import os

    import pandas as pd

    from bench.data_status import build_adapter
    from bench.manifest import manifest_path, prepared_samples
    from bench.manifest import read_manifest_meta, write_manifest_table
    from bench.prepare import prepare_config

    pcfg = prepare_config(cfg)
    adapter = build_adapter(name, cfg)
    adapter.check()
    workers = pcfg.workers or os.cpu_count() or 1
    if isinstance(adapter, VideoDatasetAdapter):
        path = manifest_path(adapter)
        if not path.is_file():
            prepared_samples(adapter, SPLITS[0])  # raises the "not prepared: run bench prepare" error
        frame = pd.read_parquet(path)
        samples = [s for split in sorted(set(frame.split)) for s in prepared_samples(adapter, split)]
        bad = verify_samples(samples, workers, pcfg.progress, f"verify {name}")
        keys = frame.video + "#" + frame.frame.astype(str)
        hit = keys.isin(list(bad))
        frame.loc[hit, "error"] = keys[hit].map(bad)
        frame.loc[hit, "status"] = BAD_CROP
        if hit.any():
            write_manifest_table(path, frame, read_manifest_meta(path))
        print(f"verified {len(samples)} crops of {name}: {len(bad)} failed" + (f" (marked {BAD_CROP} in {path})" if bad else ""))
    else:
        samples = [s for split in SPLITS for s in adapter.samples(split)]
        bad = verify_samples(samples, workers, pcfg.progress, f"verify {name}")
        paths = {s.key: s.path for s in samples}
        print(f"verified {len(samples)} images of {name}: {len(bad)} failed")
    for key, reason in list(bad.items())[:20]:
        print(f"  {paths[key] if not isinstance(adapter, VideoDatasetAdapter) else key}: {reason}")
    if len(bad) > 20:
        print(f"  ... and {len(bad) - 20} more")
    return 1 if bad else 0
