"""Data-parallel training throughput on CPU: 2 gloo processes against 1 process, the same global batch.

    python benchmarks/ddp_cpu.py [--detector dummy] [--batch 64] [--steps 20] [--warmup 3] [--procs 2] [--smoke]

Builds a registered detector at its tiny scale (random init), a synthetic global batch at its input size, and times
training steps (forward + `training_loss` + backward + AdamW) as the runner takes them: one process with every core
as torch threads, then `--procs` processes (cores / procs threads each) through `bench.distributed.wrap` (DDP over
gloo), each on its share of the global batch. Prints images/s of both and their ratio, with the machine. On a CPU
the processes share the cores the single process had: the ratio says what DDP costs (or gains from smaller
per-process batches), not what GPUs would gain.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from omegaconf import OmegaConf

from bench.plugins import get_plugins
from bench.records import Batch
from loader_speed import machine

DOMAINS = ["a", "b", "c", "d"]


def build(name: str):
    cls = get_plugins().detectors.get(name)
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls.config_class(name=name)), cls.config_class.tiny))
    torch.manual_seed(0)
    return cls(cfg, DOMAINS), cfg.input_size


def batch_of(n: int, size: int, offset: int = 0) -> Batch:
    g = torch.Generator().manual_seed(offset)
    return Batch(images=torch.randn(n, 3, size, size, generator=g), labels=torch.arange(n) % 2,
                 domains=(torch.arange(n) + offset) % len(DOMAINS), index=torch.arange(n))


def images_per_second(name: str, global_batch: int, steps: int, warmup: int, rank: int = 0, world: int = 1) -> float:
    from bench.distributed import wrap

    model, size = build(name)
    model.train()
    loss_fn = wrap(model, torch.device("cpu"))
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    batch = batch_of(global_batch // world, size, offset=rank)
    for i in range(warmup + steps):
        if i == warmup:
            if world > 1:
                dist.barrier()
            t0 = time.perf_counter()
        model.training_phase(0, i)
        loss = loss_fn(batch).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if world > 1:
        dist.barrier()
    return global_batch * steps / (time.perf_counter() - t0)


def _rank(rank: int, world: int, port: int, args: argparse.Namespace, out) -> None:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    ips = images_per_second(args.detector, args.batch, args.steps, args.warmup, rank, world)
    if rank == 0:
        out.put(ips)
    dist.destroy_process_group()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--detector", default="dummy")
    p.add_argument("--batch", type=int, default=64, help="global batch")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--smoke", action="store_true", help="a few steps: check that the script runs")
    args = p.parse_args()
    if args.smoke:
        args.batch, args.steps, args.warmup = 8, 2, 1
    torch.set_num_threads(os.cpu_count() or 1)
    one = images_per_second(args.detector, args.batch, args.steps, args.warmup)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    mp.start_processes(_rank, args=(args.procs, port, args, out), nprocs=args.procs, start_method="spawn")
    many = out.get()
    print(f"DDP on CPU: {args.detector} (tiny), global batch {args.batch}, {args.steps} steps | {machine()}")
    print(f"1 process ({os.cpu_count()} threads): {one:.1f} images/s")
    print(f"{args.procs} processes (gloo, {max(1, (os.cpu_count() or 1) // args.procs)} threads each): {many:.1f} images/s")
    print(f"ratio DDP {args.procs}-process / 1-process throughput: {many / one:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
