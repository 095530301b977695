"""The training loop keeps the device busy: no host-device read per step (losses summed on the device, read every
`log_every` steps), a NaN still named by the step that produced it, and uint8 batches normalised on the device to
exactly the values the CPU transform gives."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.checkpoint import TrainState
from bench.data import FrameDataset, make_loader, split_transform, to_device
from bench.detector import Detector
from bench.detector_config import AugmentConfig
from bench.engine import train_one_epoch
from bench.errors import BenchError
from bench.records import Batch, LossOutput, Sample
from bench.transforms import build_transform

ENGINE = str(Path(sys.modules["bench.engine"].__file__))


class Tiny(Detector):
    name = "tiny_engine_test"

    def __init__(self, nan_at: int | None = None) -> None:
        super().__init__(None, ["a"])
        self.fc = torch.nn.Linear(3 * 8 * 8, 2)
        self.nan_at, self.calls = nan_at, 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(images.flatten(1))

    def training_loss(self, batch: Batch) -> LossOutput:
        logits = self(batch.images)
        loss = F.cross_entropy(logits, batch.labels)
        if self.calls == self.nan_at:
            loss = loss * float("nan")
        self.calls += 1
        return LossOutput(total=loss, logits=logits, terms={"cls": loss.detach()})


def _loader(n: int, batch_size: int = 4, **kw):
    rng = np.random.default_rng(0)
    samples = [Sample("t", "train", "x", i % 2, f"t/{i}", 0, array=rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
               for i in range(n)]
    transform = build_transform(8, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), kw.pop("augment", None))
    return make_loader(FrameDataset(samples, transform), batch_size=batch_size, train=True, **kw)


def _epoch(model: Tiny, loader, log_every: int, state: TrainState | None = None):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return train_one_epoch(model, loader, opt, sched, state or TrainState(), device=torch.device("cpu"), bf16=False,
                           grad_clip=1.0, max_steps=None, progress=False, log_every=log_every)


def _reads_by_the_loop(monkeypatch) -> list[str]:
    """Every tensor -> Python value conversion called from bench/engine.py (each is a device sync on a GPU)."""
    reads: list[str] = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        real = getattr(torch.Tensor, name)

        def wrapper(self, *args, _real=real, _name=name):
            if sys._getframe(1).f_code.co_filename == ENGINE:
                reads.append(_name)
            return _real(self, *args)

        monkeypatch.setattr(torch.Tensor, name, wrapper)
    return reads


def test_the_loop_reads_the_device_every_log_every_steps_not_every_step(monkeypatch):
    reads = _reads_by_the_loop(monkeypatch)
    counts = []
    for n in (48, 96):  # 12 and 24 steps, below log_every: only the epoch's end reads
        reads.clear()
        stats = _epoch(Tiny(), _loader(n), log_every=100)
        counts.append(len(reads))
        assert stats.steps == n // 4 and np.isfinite(stats.loss)
    assert counts[0] == counts[1] <= 4, counts  # a constant, not one per step (the old loop: 3+ per step)
    reads.clear()
    _epoch(Tiny(), _loader(96), log_every=6)  # 24 steps: every 6th step adds one read (the non-finite check)
    assert len(reads) == counts[0] + 24 // 6, reads


def test_a_nan_is_caught_within_log_every_steps_and_names_its_step():
    model = Tiny(nan_at=3)
    with pytest.raises(BenchError, match=r"non-finite at step 3; lower trainer.lr") as err:
        _epoch(model, _loader(96), log_every=5)
    assert err.value.key == "trainer.lr" and model.calls == 5  # seen at the 5th step's read, named step 3


def test_the_epoch_mean_loss_is_the_mean_of_the_steps():
    model, state = Tiny(), TrainState()
    stats = _epoch(model, _loader(48), log_every=100, state=state)
    assert state.initial_loss is not None and stats.terms["cls"] == pytest.approx(stats.loss)


def test_uint8_batches_normalised_on_the_device_equal_the_cpu_transform():
    augment = AugmentConfig(hflip=0.5, blur=0.5, color=0.5)
    transform = build_transform(8, (0.48, 0.45, 0.4), (0.27, 0.26, 0.28), augment)
    per_image, per_batch = split_transform(transform)
    assert per_batch is not None and split_transform(lambda x: x)[1] is None  # other transforms stay whole
    image = np.random.default_rng(1).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    torch.manual_seed(5)
    whole = transform(image)
    torch.manual_seed(5)  # the same augmentation draws
    half = per_image(image)
    assert half.dtype == torch.uint8 and torch.equal(per_batch(half[None])[0], whole)

    plain = _loader(8, batch_size=8)  # the loader's stage: uint8 out of the workers, float on the device
    staged = _loader(8, batch_size=8, device_stage=True)
    [a], [b] = list(plain), list(staged)
    assert b.images.dtype == torch.uint8 and a.images.dtype == torch.float32
    assert torch.equal(to_device(staged, b, torch.device("cpu")).images, a.images)
    assert to_device(staged, b, torch.device("cpu"), channels_last=True).images.is_contiguous(memory_format=torch.channels_last)


def test_the_opencv_gaussian_blur_is_torchvisions_within_one_grey_level():
    from torchvision.transforms import v2

    from bench.transforms import GaussianBlur

    image = v2.ToImage()(np.random.default_rng(2).integers(0, 256, (40, 30, 3), dtype=np.uint8))  # (3, 40, 30)
    for sigma in (0.1, 0.8, 2.0):
        ours = GaussianBlur(5, (0.1, 2.0)).transform(image, {"sigma": [sigma, sigma]})
        theirs = v2.GaussianBlur(5, (0.1, 2.0)).transform(image, {"sigma": [sigma, sigma]})
        assert ours.shape == theirs.shape and type(ours) is type(theirs)
        assert (ours.int() - theirs.int()).abs().max() <= 1
