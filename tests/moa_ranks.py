"""MoA-CLIP training steps for the data-parallel tests: one process on the global batch, or one rank of a gloo group
on its share (`ShardedBatchSampler`'s [rank::world]). Importable by spawned processes (tests/ is on sys.path)."""

from __future__ import annotations

import os
from dataclasses import replace

import torch
import torch.distributed as dist

from bench.detectors.moa_clip import MoAClip, MoAClipConfig
from bench.openclip import TINY_ARCH, BackboneConfig
from bench.records import Batch

DOMAINS = ["a", "b", "c"]
GLOBAL_DOMAINS = [0, 1, 2, 0, 1, 2, 0, 1]  # 8 samples, every domain on each rank's share of 4


def tiny_model() -> MoAClip:
    base = MoAClipConfig(backbone=BackboneConfig(arch=TINY_ARCH, pretrained=None))
    cfg = replace(base, **{**MoAClip.config_class.tiny, "backbone": base.backbone, "adapter_dim": 8})
    torch.manual_seed(0)
    model = MoAClip(cfg, DOMAINS).train()
    with torch.no_grad():
        for m in model.moas:  # adapters that matter (they start as zeros)
            m.adapters.up_w.normal_(0, 0.05)
        for m in model.moas:
            m.router.mlp[-1].weight.normal_(0, 0.5)
        model.prototypes.normal_()
        model.prototype_ready.fill_(True)
    return model


def global_batch() -> Batch:
    g = torch.Generator().manual_seed(1)
    n = len(GLOBAL_DOMAINS)
    return Batch(images=torch.randn(n, 3, 64, 64, generator=g), labels=torch.tensor([0, 1, 1, 0, 0, 1, 1, 0]),
                 domains=torch.tensor(GLOBAL_DOMAINS), index=torch.arange(n))


def step(model: MoAClip, batch: Batch, loss_fn, phase_step: int) -> dict:
    """One training step's loss terms, the trainable parameters' gradients and the prototypes after it."""
    model.training_phase(epoch=0, step=phase_step)
    out = loss_fn(batch)
    out.total.backward()
    return {"terms": {k: float(v) for k, v in out.terms.items() if k != "cls"},
            "grads": [None if p.grad is None else p.grad.clone() for p in model.trainable_parameters()],
            "prototypes": model.prototypes.clone()}


def rank_main(rank: int, world: int, port: int, phase_step: int, out) -> None:
    from bench.distributed import wrap

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    model = tiny_model()
    b = global_batch()
    share = Batch(*(t[rank::world] for t in (b.images, b.labels, b.domains, b.index)))
    result = step(model, share, wrap(model, torch.device("cpu")), phase_step)
    if rank == 0:  # numpy: tensors would be shared through files this process takes with it when it exits
        out.put({"terms": result["terms"], "prototypes": result["prototypes"].numpy(),
                 "grads": [None if g is None else g.numpy() for g in result["grads"]]})
    dist.destroy_process_group()
