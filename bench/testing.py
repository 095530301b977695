"""Checks for plugin authors: the same checks the built-in detectors and datasets pass, one call each.

    from bench.testing import check_detector, check_dataset

    def test_my_detector(tmp_path):
        check_detector("my_detector", workdir=tmp_path)      # tiny build, 2 training steps, checkpoint, demo run

    def test_my_dataset(tmp_path):
        check_dataset("my_faces", root=make_tiny_tree(tmp_path), workdir=tmp_path)

Each check raises AssertionError (or a BenchError from ForgeryBench itself) naming what failed, and returns a
report of what it measured. Everything runs on the CPU in seconds at the detector's `tiny` scale, with tracking off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# A demo benchmark small enough for a test: a handful of synthetic videos per split, one epoch.
SMALL_DEMO = [
    "datasets.synthetic.fake_videos.train=6", "datasets.synthetic.fake_videos.val=3", "datasets.synthetic.fake_videos.test=4",
    "datasets.synthetic.real_videos.train=12", "datasets.synthetic.real_videos.val=6", "datasets.synthetic.real_videos.test=8",
    "trainer.epochs=1", "trainer.bootstrap=20", "trainer.progress=false", "tracking.enabled=false",
]
DOMAINS = ["blend", "gan_upsample", "warp", "double_jpeg"]


@dataclass
class DetectorReport:
    name: str
    params_trainable: int
    losses: list[float]  # the two training steps
    demo_auc: dict[str, float] = field(default_factory=dict)  # test set -> frame AUC of the demo run (if run)


@dataclass
class DatasetReport:
    name: str
    samples: dict[str, int]  # split -> number of samples
    domains: list[str]


def check_detector(name: str, *, workdir: str | Path, demo: bool = True, overrides: list[str] | None = None) -> DetectorReport:
    """Build registered detector `name` at tiny scale, train two steps, round-trip a checkpoint, run the demo protocol.

    `workdir`: a scratch folder (pytest's tmp_path) for the checkpoint and the demo run's outputs.
    `overrides`: extra config overrides for every step, e.g. ["detector.hidden=8"].
    """
    import torch
    from omegaconf import OmegaConf

    from bench import checkpoint
    from bench.compose import compose_run
    from bench.detector import Detector
    from bench.plugins import get_plugins

    workdir, extra = Path(workdir), list(overrides or [])
    cfg = compose_run([f"detector={name}", "scale=tiny", *extra])
    cls = get_plugins().detectors.get(name)

    def build() -> Detector:
        torch.manual_seed(0)  # as the runner does: frozen random towers are rebuilt identically
        return cls(OmegaConf.to_object(cfg.detector), DOMAINS)

    model = build()
    assert isinstance(model, Detector), f"{name}: {cls.__name__} is not a bench.detector.Detector"
    params = model.trainable_parameters()
    assert params, f"{name}: trainable_parameters() is empty: the optimiser would have nothing to train"
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.Adam(params, lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    model.train()
    losses = []
    for step in range(2):  # two: some detectors gate parts of the graph shut at step 0 by design
        model.training_phase(epoch=0, step=step)
        out = model.training_loss(_batch(model, train=True))
        assert out.logits.shape == (8, 2), f"{name}: training_loss logits are {tuple(out.logits.shape)}, not (8, 2)"
        assert out.total.dim() == 0 and torch.isfinite(out.total), f"{name}: the total loss is not a finite scalar"
        optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        optimizer.step()
        losses.append(out.total.item())
    assert any(not torch.equal(b, p) for b, p in zip(before, params)), f"{name}: two training steps changed no parameter"

    model.eval()
    images = _batch(model, train=False).images
    probs = model.predict_proba(images)
    assert probs.shape == (8,) and bool(((probs >= 0) & (probs <= 1)).all()), f"{name}: predict_proba is not (B,) in [0, 1]"
    path = workdir / f"{name}-check.pt"
    checkpoint.save(path, model=model, optimizer=optimizer, scheduler=scheduler, state=checkpoint.TrainState(epoch=1))
    clone = build()
    assert checkpoint.restore(checkpoint.load(path), model=clone).epoch == 1
    assert torch.allclose(probs, clone.eval().predict_proba(images), atol=1e-5), \
        f"{name}: predictions differ after a checkpoint round trip (state the state_dict does not hold?)"
    report = DetectorReport(name, sum(p.numel() for p in params), losses)
    if demo:
        result = _run([f"detector={name}", *SMALL_DEMO, f"paths.output={workdir / 'runs'}", *extra])
        report.demo_auc = {k: v["auc"] for k, v in result.metrics.items()}
    return report


def check_dataset(name: str, *, workdir: str | Path, root: str | Path | None = None, overrides: list[str] | None = None,
                  train: bool = True) -> DatasetReport:
    """List every split of registered dataset `name`, check its samples and images, and (`train`) run a one-epoch
    in-domain benchmark on it with the `dummy` detector (train on its train split, select on val, test on test)."""
    from bench.compose import compose_run
    from bench.dataset import SPLITS, load_image
    from bench.plugins import get_plugins
    from bench.records import REAL_DOMAIN, Sample

    extra = [*([f"datasets.{name}.root={root}"] if root is not None else []), *(overrides or [])]
    cfg = compose_run(extra)
    adapter = get_plugins().datasets.get(name)(cfg.datasets[name], Path(workdir) / "cache" / name)
    adapter.check()
    domains = adapter.domains()
    assert domains and REAL_DOMAIN not in domains, f"{name}: domains() must list the fake domains (not {REAL_DOMAIN!r})"
    counts = {}
    for split in SPLITS:
        samples = adapter.samples(split)
        counts[split] = len(samples)
        assert all(isinstance(s, Sample) and s.split == split and s.dataset == name for s in samples), \
            f"{name}: samples({split!r}) must return Sample records of that dataset and split"
        unknown = {s.domain for s in samples} - {*domains, REAL_DOMAIN}
        assert not unknown, f"{name}: samples({split!r}) has domains {sorted(unknown)} that domains() does not list"
        assert samples == adapter.samples(split), f"{name}: samples({split!r}) is not deterministic"
        assert len({s.key for s in samples}) == len(samples), f"{name}: samples({split!r}) repeats a frame key"
        for s in samples[:2]:
            image = load_image(s)
            assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8, f"{name}: {s.key} is not (H, W, 3) uint8"
    if train:
        assert counts["train"] and counts["val"] and counts["test"], f"{name}: a benchmark needs train, val and test samples"
        _run(["detector=dummy", "scale=tiny", *SMALL_DEMO, f"paths.output={Path(workdir) / 'runs'}", *extra],
             protocol={"name": f"{name}_check", "version": 1, "train": {"dataset": name, "split": "train"},
                       "test": {name: {"dataset": name, "split": "test"}}})
    return DatasetReport(name, counts, domains)


def _batch(model: Any, train: bool):
    """8 odd-sized random images through the detector's own transform, labels alternating."""
    from bench.data import collate

    rng = np.random.default_rng(0)
    transform = model.train_transform() if train else model.eval_transform()
    items = [(transform(rng.integers(0, 256, (80, 72, 3), dtype=np.uint8)), i % 2, i % len(DOMAINS), i) for i in range(8)]
    return collate(items)


def _run(overrides: list[str], protocol: dict[str, Any] | None = None):
    from omegaconf import OmegaConf

    from bench.compose import compose_run
    from bench.config import ProtocolConfig
    from bench.runner import run

    cfg = compose_run(overrides)
    if protocol is not None:
        cfg.protocol = OmegaConf.merge(OmegaConf.structured(ProtocolConfig), protocol)
    result = run(cfg)
    bad = {k: v["auc"] for k, v in result.metrics.items() if not 0.0 <= v["auc"] <= 1.0}
    assert result.metrics and not bad, f"the benchmark run gave no or invalid AUCs: {bad}"
    return result
