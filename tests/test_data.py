"""Training-data plumbing: domain ids for real samples, evenly spaced frames, domain-balanced batches."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from bench.data import DomainBalancedBatchSampler, assign_domains, evenly_spaced_frames
from bench.errors import BenchError
from bench.records import Sample

DOMAINS = ["Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"]


def frames(domain: str, label: int, n_videos: int, n_frames: int) -> list[Sample]:
    return [Sample("ffpp", "train", domain, label, f"ffpp/{domain}/{v:03d}", f, path=f"/x/{domain}/{v}/{f}.png")
            for v in range(n_videos) for f in range(n_frames)]


def test_balanced_assignment_keeps_videos_whole_and_covers_all_domains():
    samples = frames("real", 0, 40, 3) + [s for d in DOMAINS for s in frames(d, 1, 5, 3)]
    names, ids = assign_domains(samples, DOMAINS, "balanced")
    assert names == DOMAINS
    per_video = defaultdict(set)
    for s, i in zip(samples, ids):
        per_video[s.video].add(int(i))
        if s.label == 1:
            assert names[i] == s.domain
    assert all(len(v) == 1 for v in per_video.values())  # a real video never spans two domains
    real_domains = {int(i) for s, i in zip(samples, ids) if s.label == 0}
    assert real_domains == set(range(4))  # 40 real videos hashed over 4 domains hit all of them


def test_separate_assignment_adds_a_real_domain():
    samples = frames("real", 0, 2, 2) + frames("FaceSwap", 1, 2, 2)
    names, ids = assign_domains(samples, DOMAINS, "separate")
    assert names[-1] == "real" and len(names) == 5
    assert set(ids[:4]) == {4} and set(ids[4:]) == {DOMAINS.index("FaceSwap")}
    with pytest.raises(BenchError, match="protocol.real_domain"):
        assign_domains(samples, DOMAINS, "bogus")


def test_evenly_spaced_frames_spread_over_the_video():
    samples = frames("real", 0, 2, 10)
    kept = evenly_spaced_frames(samples, 3)
    assert [s.frame for s in kept if s.video.endswith("000")] == [0, 4, 9]  # not the first three
    assert len(kept) == 6
    assert evenly_spaced_frames(samples, None) == samples


def test_domain_balanced_batches_hold_every_domain():
    ids = np.array([0] * 100 + [1] * 10 + [2] * 30 + [3] * 5)
    sampler = DomainBalancedBatchSampler(ids, batch_size=8, seed=0)
    batches = list(sampler)
    assert len(batches) == len(ids) // 8
    for b in batches:
        counts = np.bincount(ids[b], minlength=4)
        assert counts.tolist() == [2, 2, 2, 2]
    sampler.set_epoch(1)
    assert list(sampler) != batches  # reshuffled per epoch
    with pytest.raises(BenchError, match="trainer.batch_size"):
        DomainBalancedBatchSampler(ids, batch_size=3, seed=0)
