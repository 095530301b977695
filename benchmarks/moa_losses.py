"""MoA-CLIP's loss terms and their gradient shares, at initialisation and after training, per loss setting.

    python benchmarks/moa_losses.py                      # the demo: pretrained tiny tower, synthetic benchmark, CPU
    python benchmarks/moa_losses.py --epochs 0 --arch ViT-B-16 --batch 64   # at init only, random ViT-B/16 at 224 px
    python benchmarks/moa_losses.py --smoke              # seconds: checks that the script runs

Settings (`SETTINGS`): the paper's literal Eqs. 10-11 (raw embeddings, one prototype per domain, L_sim over all
cross-domain pairs) and the candidate fixes, alone and together (our defaults). For each:
  - at init (after one batch has filled the L_cac prototypes) and after training: every term of Eq. 12, and the
    norm of the gradient of each weighted term over the trainable parameters in the adapter step, with its share
    of the sum of those norms (how much of the update direction each term claims before clipping);
  - after training: validation AUC in-domain, and the spread of the embedding f(x) on the validation images
    (total variance of the L2-normalised embeddings, in [0, 1]: 0 = every image maps to one direction).
The demo settings are the demo protocol's (4 training families, real_domain=balanced, batch 32, domain-balanced
batches, the paper's AdamW recipe with the tiny scale's warm-up).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from bench.config import TrainerConfig
from bench.data import FrameDataset, assign_domains, make_loader
from bench.detectors.moa_clip import ADAPTERS, MoAClip, MoAClipConfig
from bench.checkpoint import TrainState
from bench.engine import predict, train_one_epoch
from bench.openclip import TINY_ARCH, BackboneConfig
from bench.optim import build_optimizer, build_scheduler
from bench.records import REAL_DOMAIN, Batch, Sample

SETTINGS = {  # name -> MoAClipConfig fields
    "paper": dict(feature_norm=False, cac_prototypes="domain", sim_pairs="all"),  # Eqs. 10-11 as written
    "norm": dict(feature_norm=True, cac_prototypes="domain", sim_pairs="all"),
    "norm+label_protos": dict(feature_norm=True, cac_prototypes="domain_label", sim_pairs="all"),
    "norm+same_label": dict(feature_norm=True, cac_prototypes="domain", sim_pairs="same_label"),
    "defaults": dict(feature_norm=True, cac_prototypes="domain_label", sim_pairs="same_label"),  # all three
    "cls_only": dict(beta_att=0.0, beta_cac=0.0, beta_sim=0.0),  # reference: cross-entropy alone
}
DEMO_DOMAINS = ["blend", "gan_upsample", "warp", "double_jpeg"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default=TINY_ARCH, help=f"{TINY_ARCH} (demo data) or an open_clip ViT (random images)")
    p.add_argument("--epochs", type=int, default=4, help="demo epochs to train (0 = at init only)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4, help="AdamW learning rate (the paper's: 5e-4)")
    p.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--smoke", action="store_true", help="tiny random tower, random images, 3 steps")
    return p.parse_args()


def term_report(model: MoAClip, batch: Batch) -> dict[str, tuple[float, float]]:
    """term -> (beta * value, gradient norm of beta * term over the trainable parameters), in the adapter step.

    The prototypes are not moved (the report does not change the model)."""
    model.training_phase(epoch=0, step=0)  # adapter step (schedule "iteration": even steps)
    assert model.phase == ADAPTERS
    beta = model.betas()
    params = [p for p in model.trainable_parameters() if p.requires_grad]
    terms, _ = model.loss_terms(batch, update_prototypes=False)
    out = {}
    for name, value in terms.items():
        grads = torch.autograd.grad(beta[name] * value, params, retain_graph=True, allow_unused=True)
        norm = torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)) if any(
            g is not None for g in grads) else torch.zeros(())
        out[name] = (beta[name] * float(value.detach()), float(norm))
    return out


def embedding_spread(model: MoAClip, images: torch.Tensor) -> tuple[float, float]:
    """(mean L2 norm of f(x), total variance of the L2-normalised f(x)) over `images` (B, 3, S, S)."""
    model.eval()
    with torch.no_grad():
        f = torch.cat([model.embed(images[i:i + 256]) for i in range(0, len(images), 256)]).float()  # (N, E)
    u = torch.nn.functional.normalize(f, dim=-1)
    return float(f.norm(dim=-1).mean()), float((u - u.mean(0)).pow(2).sum(-1).mean())


def fmt(report: dict[str, tuple[float, float]]) -> str:
    total = sum(g for _, g in report.values()) or 1.0
    return "  ".join(f"{k} {v:.3g} (grad {g:.3g}, {100 * g / total:.0f}%)" for k, (v, g) in report.items())


def demo_data(smoke: bool) -> tuple[list[Sample], np.ndarray, list[Sample]]:
    """Training samples, their domain ids and validation samples of the demo protocol (synthetic benchmark, default
    config); `smoke`: a few random images instead."""
    if smoke:
        rng = np.random.default_rng(0)
        train, val = ([Sample("smoke", split, d if i % 2 else REAL_DOMAIN, i % 2, f"smoke/{split}/{d}/{i}", 0,
                              array=rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
                       for i in range(16) for d in DEMO_DOMAINS] for split in ("train", "val"))
    else:
        from bench.datasets.synthetic import Synthetic
        from bench.tiny_tower import cache_dir

        ds = Synthetic(None, cache_dir())
        train, val = ds.select("train", DEMO_DOMAINS), ds.select("val", DEMO_DOMAINS)
    _, ids = assign_domains(train, DEMO_DOMAINS, "balanced")
    return train, ids, val


def random_batches(n_domains: int, batch: int, size: int) -> list[Batch]:
    g = torch.Generator().manual_seed(0)
    return [Batch(images=torch.randn(batch, 3, size, size, generator=g), labels=torch.arange(batch) % 2,
                  domains=torch.arange(batch) // 2 % n_domains, index=torch.arange(batch)) for _ in range(2)]


def main() -> int:
    args = parse_args()
    arch = TINY_ARCH if args.smoke else args.arch
    demo = arch == TINY_ARCH  # the demo's data; other archs: random images at their size, at init only
    pretrained = "synthetic" if demo and not args.smoke else None
    base = MoAClipConfig(backbone=BackboneConfig(arch=arch, pretrained=pretrained))
    if arch == TINY_ARCH:
        base = replace(base, **{k: v for k, v in MoAClip.config_class.tiny.items() if k != "backbone"})
    trainer = TrainerConfig(optimizer="adamw", lr=args.lr, weight_decay=0.01, scheduler="cosine", warmup_steps=10,
                            min_lr=1e-6, grad_clip=1.0, batch_size=args.batch, sampler="domain_balanced")
    epochs = (1 if args.smoke else args.epochs) if demo else 0
    print(f"MoA-CLIP loss terms | {arch} ({pretrained or 'random init'}) | batch {args.batch} | "
          f"{'demo data' if demo else 'random images'} | {epochs} epochs | torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    if demo:
        train, ids, val = demo_data(args.smoke)
    for name in args.settings:
        t0 = time.perf_counter()
        torch.manual_seed(0)
        model = MoAClip(replace(base, **SETTINGS[name]), DEMO_DOMAINS).train()
        if demo:
            loader = make_loader(FrameDataset(train, model.train_transform(), ids), batch_size=args.batch, train=True,
                                 sampler="domain_balanced", seed=0)
            first, probe = (b for _, b in zip(range(2), loader))
        else:
            first, probe = random_batches(len(DEMO_DOMAINS), args.batch, model.tower_info.image_size)
        model.training_phase(0, 0)
        model.loss_terms(first)  # fills the prototypes, as the first training step does
        print(f"\n[{name}]\n  init: {fmt(term_report(model, probe))}")
        if demo:
            val_loader = make_loader(FrameDataset(val, model.eval_transform()), batch_size=256, train=False)
            val_images = torch.cat([b.images for b in val_loader])
            norm, spread = embedding_spread(model, val_images)
            print(f"  init: |f(x)| {norm:.3g} | spread of f/|f| {spread:.3f}")
            model.train()
        if epochs:
            steps = 3 if args.smoke else len(loader)
            opt = build_optimizer(model.trainable_parameters(), trainer)
            sched = build_scheduler(opt, trainer, total_steps=epochs * steps)
            state = TrainState()
            for _ in range(epochs):
                train_one_epoch(model, loader, opt, sched, state, device=torch.device("cpu"), bf16=False,
                                grad_clip=trainer.grad_clip, max_steps=steps, progress=False)
                state.epoch += 1
            print(f"  after {state.step} steps: {fmt(term_report(model, probe))}")
            scores = predict(model, val_loader, device=torch.device("cpu"), bf16=False, progress=False).scores
            norm, spread = embedding_spread(model, val_images)
            auc = roc_auc_score([s.label for s in val], scores)
            print(f"  val AUC {auc:.3f} | |f(x)| {norm:.3g} | spread of f/|f| {spread:.3f} | "
                  f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
