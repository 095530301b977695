"""MoA-CLIP training and inference throughput on one CUDA GPU, beside the frozen CLIP image tower it wraps.

    python benchmarks/moa_gpu.py [--arch ViT-B-16] [--batch 64] [--steps 20] [--warmup 5] [--domains 4]
                                 [--ddp N] [--loader-workers K]
    python benchmarks/moa_gpu.py --smoke        # tiny tower, 2 steps, runs on CPU: checks the script only
    python benchmarks/moa_gpu.py --device cpu --batch 4 --steps 3 --warmup 1 --ddp 0 --loader-workers -1   # CPU ratios

Random init (no weights needed). Synthetic batch of `--batch` images at the tower's size (224 for the CLIP ViTs),
domains assigned round-robin as the domain-balanced sampler would; bf16 autocast on CUDA, as the runner does.
Measures, all in one process and on the same batch (`--repeat` R: R interleaved rounds, the best of each row):
  - training images/s with all four losses on (beta_att > 0 takes the non-fused attention path in the
    recorded block), for each of the two steps (adapters / router) and their alternation, plus the same with
    L_att off (fused attention everywhere), and the peak memory (torch.cuda.max_memory_allocated) of each;
  - training images/s of a single-adapter fine-tune (the same frozen tower with one AdaptFormer-style adapter of
    width adapter_dim per block, beside the FFN, and the cross-entropy only): what MoA-CLIP's step costs over it;
  - inference images/s of MoA-CLIP (router on, Eq. 6) and of the frozen CLIP tower alone, and their ratio;
  - the alternating training step and inference with MoA-CLIP's plain paths (benchmarks/moa_reference.py: the
    frozen nn.MultiheadAttention, every adapter computed), before / after;
  - `--ddp N` (default: every GPU, when there are 2 or more): the alternating training step as N DDP processes
    (NCCL, `bench.distributed.wrap`, each on batch / N) against one GPU with the whole batch: the scaling ratio;
  - the loader (`benchmarks/loader_speed.py`): images/s of 256px JPEG crops through MoA-CLIP's transform with
    DeepfakeBench's augmentations and `--loader-workers` workers (default: every core), uint8 to the GPU and
    normalised there, and per core;
  - host-device syncs per training step of the runner's loop (`bench.engine.train_one_epoch`, counted with
    torch.cuda.set_sync_debug_mode): 0 is the goal, the loop itself reads only every `log_every` steps.
In --smoke mode on a CPU the DDP part runs 2 gloo processes and the loader 1 worker.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F

from bench.detectors.moa_clip import ADAPTERS, ROUTER, MoAClip, MoAClipConfig
from bench.openclip import TINY_ARCH, BackboneConfig, build_image_tower, resblocks
from bench.records import Batch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling benchmark scripts
import ddp_cpu  # noqa: E402
import loader_speed  # noqa: E402
from moa_reference import plain_paths  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="ViT-B-16")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before each measurement")
    p.add_argument("--domains", type=int, default=4, help="training domains N (FF++: 4)")
    p.add_argument("--ddp", type=int, default=None, help="DDP processes (default: every GPU; 0 = skip)")
    p.add_argument("--loader-workers", type=int, default=None, help="loader workers (default: every core; -1 = skip)")
    p.add_argument("--repeat", type=int, default=1, help="interleaved rounds; each row keeps its best (noisy machines)")
    p.add_argument("--device", default=None, help="cuda (default when there is one) or cpu (fp32, for CPU ratios)")
    p.add_argument("--smoke", action="store_true", help="tiny tower, batch 8, 2 steps, CPU allowed")
    return p.parse_args()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], None], steps: int, warmup: int, device: torch.device) -> tuple[float, float]:
    """Seconds per call and peak memory (GiB; 0 on CPU) over `steps` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    synchronize(device)
    seconds = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    return seconds, peak


class SingleAdapterFineTune(MoAClip):
    """The baseline MoA-CLIP is compared with: one bottleneck adapter per block, no router, no domain adapters."""

    def __init__(self, cfg: MoAClipConfig, domains: list[str]) -> None:
        super().__init__(cfg, domains)
        for block in resblocks(self.visual):
            d = block.ln_2.normalized_shape[0]
            block.moa = torch.nn.Sequential(torch.nn.Linear(d, cfg.adapter_dim), torch.nn.GELU(),
                                            torch.nn.Linear(cfg.adapter_dim, d))

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for b in resblocks(self.visual) for p in b.moa.parameters()] + list(self.head.parameters())


def _plain(fn: Callable[..., None], *args) -> None:
    """`fn` with MoA-CLIP's plain attention and dense adapters (benchmarks/moa_reference.py)."""
    with plain_paths():
        fn(*args)


def build_moa(cfg: MoAClipConfig, domains: list[str]) -> tuple[MoAClip, int]:
    torch.manual_seed(0)  # every DDP rank builds the same model
    return MoAClip(cfg, domains), cfg.input_size


def ddp_rows(args: argparse.Namespace, cfg: MoAClipConfig, domains: list[str], device: torch.device) -> list[tuple[str, float, float]]:
    """The alternating training step on one device (whole batch) and as `--ddp` DDP processes (batch / N each)."""
    cuda = device.type == "cuda"
    world = args.ddp if args.ddp is not None else (torch.cuda.device_count() if cuda else 2 * args.smoke)
    if world < 2:
        return []
    build = functools.partial(build_moa, cfg, domains)
    one = ddp_cpu.measure(build, args.batch, args.steps, args.warmup, device, bf16=cuda)
    many = ddp_cpu.spawn(world, "nccl" if cuda else "gloo", functools.partial(
        ddp_cpu._measure_on, build=build, batch=args.batch, steps=args.steps, warmup=args.warmup, bf16=cuda))
    one_of, many_of = ("GPU", "GPUs") if cuda else ("CPU process", "CPU processes")
    return [(f"train alternating, 1 {one_of}, batch {args.batch}", one, 0.0),
            (f"train alternating, DDP {world} {many_of}, batch {args.batch}", many, 0.0)]


def loader_rows(args: argparse.Namespace, model: MoAClip, device: torch.device) -> list[tuple[str, float, float]]:
    """JPEG crops -> MoA-CLIP's transform with DeepfakeBench's augmentations -> uint8 on the device, normalised there."""
    workers = args.loader_workers if args.loader_workers is not None else (1 if args.smoke else os.cpu_count() or 1)
    if workers < 0:
        return []
    transform = model.tower_info.transform(loader_speed.AUGMENT)
    with tempfile.TemporaryDirectory() as tmp:
        samples = loader_speed.jpeg_samples(32 if args.smoke else 4 * args.batch * max(1, workers), tmp)
        ips = loader_speed.loader_ips(samples, transform, args.batch, workers, device)
    return [(f"loader, {workers} workers (augmented JPEG crops)", ips, 0.0),
            ("loader per worker", ips / max(1, workers), 0.0)]


def syncs_per_step(model: MoAClip, batch: Batch, device: torch.device, steps: int) -> float | None:
    """Host-device synchronisations per step of the runner's loop (bench.engine.train_one_epoch) on CUDA: the loop's
    own reads happen every `log_every` steps (here never but at the end), so this counts the detector's."""
    if device.type != "cuda":
        return None
    from torch.utils.data import DataLoader

    from bench.checkpoint import TrainState
    from bench.engine import train_one_epoch

    loader = DataLoader([batch] * steps, batch_size=None, collate_fn=lambda b: b)
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    model.to(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train_one_epoch(model, loader, opt, sched, TrainState(), device=device, bf16=True, grad_clip=1.0,
                            max_steps=None, progress=False, log_every=10**9)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchronizing" in str(w.message) for w in caught)
    return max(0, syncs - 3) / steps  # the epoch's end reads three values (checks, mean losses, first loss)


def main() -> int:
    args = parse_args()
    if args.smoke:
        args.arch, args.batch, args.steps, args.warmup = TINY_ARCH, 8, 2, 1
    cuda = torch.cuda.is_available() and args.device != "cpu"
    if not cuda and not args.smoke and args.device != "cpu":
        print("moa_gpu.py: no CUDA device found; this benchmark needs a GPU (--device cpu for the CPU ratios, --smoke "
              "to check the script)", file=sys.stderr)
        return 2
    device = torch.device("cuda" if cuda else "cpu")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    domains = [f"domain{i}" for i in range(args.domains)]
    backbone = BackboneConfig(arch=args.arch, pretrained=None)
    size = build_image_tower(backbone).image_size
    base = MoAClipConfig(backbone=backbone, input_size=size)
    if args.smoke:
        base = replace(base, **{k: v for k, v in MoAClip.config_class.tiny.items() if k not in ("backbone", "input_size")})

    g = torch.Generator().manual_seed(0)
    batch = Batch(images=torch.randn(args.batch, 3, size, size, generator=g),
                  labels=torch.randint(0, 2, (args.batch,), generator=g),
                  domains=torch.arange(args.batch) % args.domains, index=torch.arange(args.batch)).to(device)

    def trainer(model: torch.nn.Module, loss: Callable[[], torch.Tensor]) -> Callable[[int | None], None]:
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4, weight_decay=0.01)
        count = [0]

        def train_step(phase_step: int | None) -> None:
            # schedule="iteration", phase_period=1: even steps are step 1 (adapters), odd steps step 2 (router)
            model.training_phase(epoch=0, step=count[0] if phase_step is None else phase_step)
            with autocast:
                value = loss()
            opt.zero_grad(set_to_none=True)
            value.float().backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            opt.step()
            count[0] += 1

        return train_step

    def forward(model: torch.nn.Module) -> Callable[[], None]:
        model = model.to(device).eval()

        @torch.no_grad()
        def run() -> None:
            with autocast:
                model(batch.images)

        return run

    cases: dict[str, Callable[[], None]] = {}  # row -> one timed call
    for cfg, label in ((base, "all losses"), (replace(base, beta_att=0.0), "L_att off")):
        model = MoAClip(cfg, domains).to(device).train()
        step = trainer(model, lambda model=model: model.training_loss(batch).total)
        for name, fixed in ((ADAPTERS, 0), (ROUTER, 1), ("alternating", None)):
            cases[f"train {label}, {name}"] = functools.partial(step, fixed)
        if label == "all losses":
            cases[f"train {label}, alternating, plain paths (before)"] = functools.partial(_plain, step, None)
    single = SingleAdapterFineTune(base, domains).to(device).train()
    cases["train single-adapter fine-tune (L_cls)"] = functools.partial(trainer(single, lambda: F.cross_entropy(
        single(batch.images).float(), batch.labels)), None)
    moa_eval = forward(MoAClip(base, domains))
    cases["inference MoA-CLIP (router, Eq. 6)"] = moa_eval
    cases["inference MoA-CLIP, plain paths (before)"] = functools.partial(_plain, moa_eval)
    cases["inference frozen CLIP tower"] = forward(build_image_tower(backbone).visual)
    best: dict[str, tuple[float, float]] = {}  # row -> (images/s, peak GiB): the best of --repeat interleaved rounds
    for _ in range(args.repeat):
        for what, fn in cases.items():
            sec, peak = timed(fn, args.steps, args.warmup, device)
            best[what] = max(best.get(what, (0.0, 0.0)), (args.batch / sec, peak))
    rows: list[tuple[str, float, float]] = [(what, ips, peak) for what, (ips, peak) in best.items()]
    moa_ips, clip_ips = best["inference MoA-CLIP (router, Eq. 6)"][0], best["inference frozen CLIP tower"][0]
    rows += ddp_rows(args, base, domains, device)
    rows += loader_rows(args, MoAClip(base, domains), device)
    syncs = syncs_per_step(MoAClip(base, domains).train(), batch, device, args.steps)

    card = torch.cuda.get_device_name(device) if cuda else ("CPU (smoke run: numbers mean nothing)" if args.smoke
                                                             else f"CPU: {loader_speed.machine()}")
    print(f"MoA-CLIP {args.arch} @ {size}px, batch {args.batch}, N={args.domains}, "
          f"{'bf16 autocast' if cuda else 'fp32'}, torch {torch.__version__}, {card}")
    print(f"{'measurement':<54}{'images/s':>12}{'peak GiB':>10}")
    for what, ips, peak in rows:
        print(f"{what:<54}{ips:>12.{1 if ips >= 10 else 3}f}{peak:>10.2f}")
    train_all = next(ips for what, ips, _ in rows if what == "train all losses, alternating")
    train_fused = next(ips for what, ips, _ in rows if what == "train L_att off, alternating")
    single_ips = next(ips for what, ips, _ in rows if what.startswith("train single-adapter"))
    print(f"ratio inference time MoA-CLIP / frozen CLIP tower: {clip_ips / moa_ips:.3f}")
    print(f"ratio training step time MoA-CLIP (all losses, alternating) / single-adapter fine-tune: {single_ips / train_all:.3f}")
    print(f"ratio training step time with L_att / without: {train_fused / train_all:.3f}")
    print(f"ratio training step time plain paths (before) / fast paths: "
          f"{train_all / best['train all losses, alternating, plain paths (before)'][0]:.3f}; inference: "
          f"{moa_ips / best['inference MoA-CLIP, plain paths (before)'][0]:.3f}")
    ddp = [ips for what, ips, _ in rows if what.startswith("train alternating, ")]
    if ddp:
        print(f"ratio training throughput DDP / one device (same global batch): {ddp[1] / ddp[0]:.3f}")
    if syncs is not None:
        print(f"host-device syncs per training step (bench.engine loop + MoA-CLIP): {syncs:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
