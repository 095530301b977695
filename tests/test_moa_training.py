"""MoA-CLIP trained on the demo's pretrained tiny tower (its "CLIP", bench.tiny_tower, trained once per session) and a
small synthetic benchmark: the default losses learn without collapsing the embedding, the router sends training
domains to different adapters, and the runner logs the route weights per test set.

Thresholds come from one measurement of this exact setup (2-core CPU, torch 2.14.1): defaults val AUC 0.642, spread
0.0179, adapter choices [3, 3, 2, 3]; literal paper val AUC 0.619, spread 0.0044, choices [2, 2, 2, 2]. They leave
room for thread-count noise, not for a different outcome."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from bench.config import TrainerConfig
from bench.data import FrameDataset, assign_domains, make_loader
from bench.datasets.synthetic import SplitSizes, Synthetic, SyntheticConfig
from bench.detectors.moa_clip import MoAClip
from bench.engine import train_one_epoch
from bench.checkpoint import TrainState
from bench.optim import build_optimizer, build_scheduler
from tests.tiny import tiny_cfg

DOMAINS = ["blend", "gan_upsample", "warp", "double_jpeg"]
EPOCHS, LR = 10, 2e-3  # ~230 steps: the tiny head and adapters need more than the paper's 5e-4 over so few steps
PAPER = dict(feature_norm=False, cac_prototypes="domain", sim_pairs="all")  # Eqs. 10-11 as written


@dataclass
class Trained:
    model: MoAClip
    auc: float  # in-domain validation AUC
    spread: float  # total variance of the L2-normalised embeddings on validation images (0 = collapsed)
    routes: np.ndarray  # (N, N): mean route weight of adapter k (column) on the validation fakes of domain d (row)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    cfg = SyntheticConfig(frames_per_video=2, fake_videos=SplitSizes(train=60, val=15), real_videos=SplitSizes(
        train=120, val=30))
    ds = Synthetic(cfg, tmp_path_factory.mktemp("synthetic"))
    return ds.select("train", DOMAINS), ds.select("val", DOMAINS)


def train(data, epochs: int = EPOCHS, lr: float = LR, **overrides) -> Trained:
    train_samples, val_samples = data
    torch.manual_seed(0)
    model = MoAClip(tiny_cfg(MoAClip, **overrides), DOMAINS)
    names, ids = assign_domains(train_samples, DOMAINS, "balanced")
    loader = make_loader(FrameDataset(train_samples, model.train_transform(), ids), batch_size=32, train=True,
                         sampler="domain_balanced", seed=0)
    trainer = TrainerConfig(optimizer="adamw", lr=lr, weight_decay=0.01, scheduler="cosine", warmup_steps=10,
                            grad_clip=1.0)
    opt = build_optimizer(model.trainable_parameters(), trainer)
    sched = build_scheduler(opt, trainer, total_steps=epochs * len(loader))
    state = TrainState()
    for _ in range(epochs):
        train_one_epoch(model, loader, opt, sched, state, device=torch.device("cpu"), bf16=False, grad_clip=1.0,
                        max_steps=None, progress=False)
        state.epoch += 1
    model.eval()
    transform = model.eval_transform()
    images = torch.stack([transform(s.array) for s in val_samples])  # (V, 3, S, S)
    labels = np.array([s.label for s in val_samples])
    with torch.no_grad():
        logits, alpha = model.routed(images)
        u = torch.nn.functional.normalize(model.embed(images), dim=-1)
    domains = np.array([s.domain for s in val_samples])
    routes = np.stack([alpha[torch.from_numpy(domains == d)].mean(0).numpy() for d in DOMAINS])
    auc = roc_auc_score(labels, logits.softmax(-1)[:, 1].numpy())
    return Trained(model, auc, float((u - u.mean(0)).pow(2).sum(-1).mean()), routes)


@pytest.fixture(scope="module")
def defaults(data) -> Trained:
    return train(data)


def weighted_terms_at_init(data, **overrides) -> dict[str, float]:
    """beta * term of each loss term on the second training batch (the first fills the L_cac prototypes)."""
    torch.manual_seed(0)
    model = MoAClip(tiny_cfg(MoAClip, **overrides), DOMAINS).train()
    samples = data[0]
    _, ids = assign_domains(samples, DOMAINS, "balanced")
    loader = make_loader(FrameDataset(samples, model.train_transform(), ids), batch_size=32, train=True,
                         sampler="domain_balanced", seed=0)
    first, second = (b for _, b in zip(range(2), loader))
    model.training_phase(0, 0)
    model.loss_terms(first)
    terms, _ = model.loss_terms(second)
    beta = model.betas()
    return {k: beta[k] * float(v.detach()) for k, v in terms.items()}


def test_four_loss_terms_are_order_one_at_init_with_the_defaults(data):
    weighted = weighted_terms_at_init(data)
    assert set(weighted) == {"cls", "att", "cac", "sim"}
    assert 0.5 < weighted["cls"] < 1.0  # cross-entropy of a fresh head: about log 2
    for k in ("att", "cac", "sim"):  # order one: none is vanishingly small, none dwarfs the classifier
        assert 1e-3 < weighted[k] < 2 * weighted["cls"], (k, weighted)  # measured: att 0.91, cac 0.35, sim 0.12
    paper = weighted_terms_at_init(data, **PAPER)  # raw embeddings: L_cac alone is several times L_cls
    assert paper["cac"] > 5 * paper["cls"], paper


def test_default_losses_learn_and_keep_the_embedding_spread(defaults):
    assert defaults.auc > 0.6, defaults.auc  # measured 0.642; chance is 0.5
    assert defaults.spread > 0.01, defaults.spread  # measured 0.0179


def test_literal_paper_losses(data, defaults):
    """What Eqs. 10-11 as written do on the same data: documented here, not endorsed (README)."""
    paper = train(data, **PAPER)
    assert paper.spread < defaults.spread / 2, (paper.spread, defaults.spread)  # measured 0.0044 vs 0.0179: collapsing


def test_router_sends_training_domains_to_different_adapters(defaults):
    """The router starts uniform (zero last layer: every alpha exactly 1/N for every image), so any difference
    between domains' mean routes was learned. Which adapter a domain leans on most is not stable across thread
    counts on this small set (measured argmax [3, 3, 2, 3] and [0, 0, 0, 0]); how far the routes part is: the
    largest gap between two domains' mean weight of one adapter measured 0.041 and 0.062."""
    routes = defaults.routes  # (N domains, N adapters)
    assert np.allclose(routes.sum(1), 1.0, atol=1e-5)
    gap = (routes.max(0) - routes.min(0)).max()
    assert gap > 0.02, routes
    fresh = MoAClip(tiny_cfg(MoAClip), DOMAINS).eval()
    with torch.no_grad():
        _, alpha = fresh.routed(torch.rand(4, 3, 64, 64))
    assert torch.allclose(alpha, torch.full_like(alpha, 1 / len(DOMAINS)))  # what "learned" is measured against


def test_evaluation_stats_are_the_route_weights_since_the_last_call(defaults):
    model = defaults.model.eval()
    model.evaluation_stats()
    assert model.evaluation_stats() == {}  # nothing predicted since the last call
    model(torch.zeros(3, 3, 64, 64))
    stats = model.evaluation_stats()
    assert set(stats) == {f"route_{d}" for d in DOMAINS} and abs(sum(stats.values()) - 1) < 1e-5


def test_a_run_logs_route_weights_per_test_set(tmp_path, monkeypatch, mlflow_uri):
    from bench.cli import main
    from bench.tracking import search_runs

    monkeypatch.chdir(tmp_path)
    small = [f"datasets.synthetic.{k}_videos.{s}={n}" for k, sizes in (("fake", (6, 3, 4)), ("real", (12, 6, 8)))
             for s, n in zip(("train", "val", "test"), sizes)]
    assert main(["run", "detector=moa_clip", *small, "trainer.epochs=1", "trainer.batch_size=16", "trainer.bootstrap=0",
                 "trainer.progress=false", f"tracking.uri={mlflow_uri}"]) == 0
    run = search_runs(mlflow_uri, ["demo"]).iloc[0]
    for test_set in ("blend", "diffusion_heldout"):
        weights = [run[f"metrics.{test_set}/route_{d}"] for d in DOMAINS]
        assert min(weights) > 0 and sum(weights) == pytest.approx(1.0, abs=1e-4)
