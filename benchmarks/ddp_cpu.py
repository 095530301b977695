"""Data-parallel training throughput on CPU: 2 gloo processes against 1 process, the same global batch.

    python benchmarks/ddp_cpu.py [--detector dummy] [--batch 64] [--steps 20] [--warmup 3] [--procs 2] [--smoke]

Builds a registered detector at its tiny scale (random init), a synthetic global batch at its input size, and times
training steps (`training_phase`, `training_loss`, backward, AdamW) as the runner takes them: one process with every
core as torch threads, then `--procs` processes (cores / procs threads each) through `bench.distributed.wrap` (DDP
over gloo), each on its share of the global batch. Prints images/s of both and their ratio, with the machine. On a
CPU the processes share the cores the single process had: the ratio says what DDP costs (or gains from smaller
per-process batches), not what GPUs would gain. `measure` and `spawn` serve benchmarks/moa_gpu.py on GPUs too.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from omegaconf import OmegaConf

from bench.plugins import get_plugins
from bench.records import Batch
from loader_speed import machine

DOMAINS = ["a", "b", "c", "d"]


def tiny_detector(name: str) -> tuple[Any, int]:
    """(detector at its tiny scale, input size), random init, the same on every rank."""
    cls = get_plugins().detectors.get(name)
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls.config_class(name=name)), cls.config_class.tiny))
    torch.manual_seed(0)
    return cls(cfg, DOMAINS), cfg.input_size


def synthetic_batch(n: int, size: int, n_domains: int, offset: int = 0) -> Batch:
    g = torch.Generator().manual_seed(offset)
    return Batch(images=torch.randn(n, 3, size, size, generator=g), labels=torch.arange(n) % 2,
                 domains=(torch.arange(n) + offset) % n_domains, index=torch.arange(n))


def measure(build: Callable[[], tuple[Any, int]], global_batch: int, steps: int, warmup: int,
            device: torch.device = torch.device("cpu"), bf16: bool = False) -> float:
    """Training images/s (global) of this process's share; call in every rank of a process group, or alone."""
    from bench.distributed import wrap, world

    w = world()
    model, size = build()
    model = model.to(device).train()
    loss_fn = wrap(model, device)
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    batch = synthetic_batch(global_batch // w.size, size, len(model.domains), offset=w.rank).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device, w.size)
            t0 = time.perf_counter()
        model.training_phase(0, i)
        with autocast:
            loss = loss_fn(batch).total
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        opt.step()
    _sync(device, w.size)
    return global_batch * steps / (time.perf_counter() - t0)


def _sync(device: torch.device, world: int) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    if world > 1:
        dist.barrier()


def _rank(rank: int, world: int, port: int, backend: str, fn: Callable[[torch.device], float], out) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
    if backend == "nccl":
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    result = fn(device)
    if rank == 0:
        out.put(result)
    dist.destroy_process_group()


def spawn(world: int, backend: str, fn: Callable[[torch.device], float]) -> float:
    """Run `fn(device)` in `world` fresh processes joined in a process group; rank 0's result (fn must pickle)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = mp.get_context("spawn").SimpleQueue()
    mp.start_processes(_rank, args=(world, port, backend, fn, out), nprocs=world, start_method="spawn")
    return out.get()


def _measure_on(device: torch.device, build, batch: int, steps: int, warmup: int, bf16: bool = False) -> float:
    return measure(build, batch, steps, warmup, device, bf16)


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
    build = functools.partial(tiny_detector, args.detector)
    one = measure(build, args.batch, args.steps, args.warmup)
    many = spawn(args.procs, "gloo", functools.partial(_measure_on, build=build, batch=args.batch, steps=args.steps,
                                                       warmup=args.warmup))
    threads = max(1, (os.cpu_count() or 1) // args.procs)
    print(f"DDP on CPU: {args.detector} (tiny), global batch {args.batch}, {args.steps} steps | {machine()}")
    print(f"1 process ({os.cpu_count()} threads): {one:.1f} images/s")
    print(f"{args.procs} processes (gloo, {threads} threads each): {many:.1f} images/s")
    print(f"ratio DDP {args.procs}-process / 1-process throughput: {many / one:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
