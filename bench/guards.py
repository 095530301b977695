"""What keeps a run from turning into a wrong number: test data reaching training, listed files that are gone,
and runs that cannot be results (diverged training, constant test scores). Torch-free: pure checks over samples
and numbers, called by the runner.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from bench.errors import BenchError
from bench.records import Sample

SHOWN = 5  # names quoted in a message; the count covers the rest
DIVERGENCE_FACTOR = 100.0  # a final training loss this many times the first step's loss = diverged
LOSS_FLOOR = 0.1  # ... measured against at least this, so a tiny first loss does not make normal noise look like divergence
OK, DIVERGED, CONSTANT_SCORES = "ok", "diverged", "constant_scores"


class Diverged(BenchError):
    """Training produced non-finite losses or weights."""


def _shown(names: Iterable[str]) -> str:
    names = sorted(names)
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def check_leakage(train: Sequence[Sample], val: Sequence[Sample], tests: Mapping[str, Sequence[Sample]]) -> None:
    """Refuse when a test video, or the source clip of a test video (where the adapter knows it: `Sample.source`,
    compared within one dataset), is also in the training or validation set."""
    test_videos = {s.video for samples in tests.values() for s in samples}
    test_sources = {(s.dataset, s.source) for samples in tests.values() for s in samples if s.source}
    problems = []
    for what, samples in (("training", train), ("validation", val)):
        videos = {s.video for s in samples} & test_videos
        if videos:
            problems.append(f"{len(videos)} test video(s) are in the {what} set ({_shown(videos)})")
        sources = {(s.dataset, s.source) for s in samples if s.source} & test_sources
        if sources:
            problems.append(f"{what} videos are made from the source clips of {len(sources)} test video(s) "
                            f"({_shown(f'{d}:{src}' for d, src in sources)})")
    if problems:
        raise BenchError("test data would reach training: " + "; ".join(problems) + ". Check protocol.train.split / "
                         "protocol.val and the datasets' split settings", key="protocol")


def check_files_exist(sets: Mapping[str, Sequence[Sample]]) -> None:
    """Every listed image file is on disk, before any training (a deleted crop would crash mid-epoch)."""
    missing: dict[str, list[str]] = defaultdict(list)
    listed: dict[str, set[str]] = defaultdict(set)
    for samples in sets.values():
        for s in samples:
            if s.path is not None and s.path not in listed[s.dataset]:
                listed[s.dataset].add(s.path)
                if not os.path.isfile(s.path):
                    missing[s.dataset].append(s.path)
    if missing:
        parts = [f"dataset {name!r}: {len(paths)} of {len(listed[name])} listed image files are missing ({_shown(paths)})"
                 for name, paths in sorted(missing.items())]
        first = sorted(missing)[0]
        raise BenchError("; ".join(parts) + f"; restore them, or re-create crops with `bench prepare dataset={first}` "
                         f"(`bench data status` shows what is prepared)", key=f"datasets.{first}.root")


def training_health(initial_loss: float | None, final_loss: float | None) -> tuple[str, str]:
    """(health, reason): `diverged` when the last epoch's mean training loss is non-finite or has grown by orders of
    magnitude over the first step's (Adam at lr 1e6 trains to losses ~1e10 and finishes with every AUC at 0.5)."""
    if final_loss is None:
        return OK, ""
    if not math.isfinite(final_loss):
        return DIVERGED, f"final training loss is {final_loss}"
    if initial_loss is not None and final_loss > DIVERGENCE_FACTOR * max(initial_loss, LOSS_FLOOR):
        return DIVERGED, (f"final training loss {final_loss:.3g} is over {DIVERGENCE_FACTOR:.0f}x the first step's "
                          f"{initial_loss:.3g}")
    return OK, ""


def scores_health(scores: Mapping[str, np.ndarray]) -> tuple[str, str]:
    """(health, reason): `constant_scores` when every score of a test set is the same (a dead model; AUC 0.5)."""
    constant = [name for name, s in scores.items() if len(s) and float(np.nanmax(s) - np.nanmin(s)) == 0.0]
    if constant:
        return CONSTANT_SCORES, f"every score is the same on test set(s) {_shown(constant)}"
    return OK, ""
