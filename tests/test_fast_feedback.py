"""Issue 14: a feature cache that skips the images, and a single-threaded data path that leaves torch its threads."""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import torch

import bench.data
from bench.compose import compose_run
from bench.data import FrameDataset, make_loader
from bench.records import Sample
from bench.runner import run
from bench.testing import SMALL_DEMO


def test_cached_clip_probe_epochs_open_no_training_image(monkeypatch, tmp_path):
    reads: Counter[str] = Counter()
    load = bench.data.load_image

    def counting_load(sample):
        reads[sample.split] += 1
        return load(sample)

    monkeypatch.setattr(bench.data, "load_image", counting_load)
    # batch 16 divides the 144 training frames: epoch 1 sees (and caches) every one of them
    cfg = compose_run(["detector=clip_probe", *SMALL_DEMO, "trainer.epochs=3", "trainer.batch_size=16",
                       f"paths.output={tmp_path}"])
    result = run(cfg)
    n_train = 4 * 6 * 4 + 12 * 4  # 4 families x 6 fake videos + 12 real videos, 4 frames each
    assert reads["train"] == n_train  # epoch 1 only: epochs 2 and 3 trained on the cached embeddings
    assert reads["val"] == 3 * (4 * 3 + 6) * 4  # validation still reads its images every epoch
    assert all(0.0 <= m["auc"] <= 1.0 for m in result.metrics.values())


def test_without_the_cache_every_epoch_reads_its_images(monkeypatch, tmp_path):
    reads: Counter[str] = Counter()
    load = bench.data.load_image
    monkeypatch.setattr(bench.data, "load_image", lambda s: (reads.update([s.split]), load(s))[1])
    run(compose_run(["detector=clip_probe", "detector.cache_features=false", *SMALL_DEMO, "trainer.epochs=2",
                     "trainer.batch_size=16", f"paths.output={tmp_path}"]))
    assert reads["train"] == 2 * (4 * 6 * 4 + 12 * 4)


def test_the_data_path_runs_on_one_thread_and_gives_the_threads_back():
    seen = []

    def transform(image: np.ndarray) -> torch.Tensor:
        seen.append((torch.get_num_threads(), cv2.getNumThreads()))
        return torch.zeros(3, 4, 4)

    samples = [Sample("t", "train", "real", i % 2, f"t/{i}", 0, array=np.zeros((4, 4, 3), np.uint8)) for i in range(6)]
    torch.set_num_threads(2)
    before = (torch.get_num_threads(), cv2.getNumThreads())
    for batch in make_loader(FrameDataset(samples, transform), batch_size=3, train=False):
        assert (torch.get_num_threads(), cv2.getNumThreads()) == before  # the training step sees its own threads
        assert batch.images.shape == (3, 3, 4, 4)
    assert seen == [(1, 1)] * 6


def test_a_dataset_without_transform_reads_no_image():
    samples = [Sample("t", "train", "real", 0, "t/0", 0, path="/nonexistent.png")]
    image, label, domain, index = FrameDataset(samples, None)[0]
    assert image.numel() == 0 and (label, index) == (0, 0)
