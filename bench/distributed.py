"""Data-parallel training (PyTorch DDP): the process group, who writes, and `trainer.devices=N` launching torchrun.

One run, several processes: one per GPU (NCCL), or CPU processes (gloo). `torchrun --nproc_per_node=N -m bench run
...` starts them (and `--nnodes`/`--rdzv-endpoint` spread them over nodes); `bench run trainer.devices=N` calls
torchrun itself on this node. Inside a SLURM job started by submitit with several tasks, submitit's own environment
is exported instead. What each rank does:

  - data: every rank sees the same global batches (a function of seed and epoch) and trains on its share of each
    (`bench.data.ShardedBatchSampler`), so N processes see the batches one process with the same global batch sees;
  - gradients: averaged by DDP; batch-level losses gather their per-sample inputs first (`gather_batch`);
  - evaluation: every rank predicts its shard; the scores are gathered back into dataset order (`gather_scores`);
  - writing: rank 0 alone writes the run folder, checkpoints and MLflow; the other ranks print nothing to stdout.

The only module that imports torch.distributed; everything here is a no-op in a single process.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from bench.errors import RANK_ERRORS_ENV, BenchError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def world() -> World:
    """This process's place in the process group (rank 0 of 1 when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def launched() -> bool:
    """Started by torchrun (or another launcher that sets the torch.distributed environment)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def _submitit_tasks() -> None:
    """A submitit job with several tasks (hydra.launcher.tasks_per_node=N): export its ranks as torchrun would."""
    if launched() or "SUBMITIT_EXECUTOR" not in os.environ:
        return
    from submitit import JobEnvironment
    from submitit.helpers import TorchDistributedEnvironment

    if JobEnvironment().num_tasks > 1:  # every GPU stays visible: rank r takes cuda:LOCAL_RANK
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def setup(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group when launched with several processes; returns this rank and its device (cuda:LOCAL_RANK
    on GPUs). Rank > 0 prints nothing to stdout: one progress report per run."""
    _submitit_tasks()
    if not launched() or int(os.environ["WORLD_SIZE"]) <= 1 or dist.is_initialized():
        return world(), device
    if "TORCHELASTIC_RUN_ID" in os.environ:  # torchrun starts ranks in sessions of their own: a kill -9 of it must
        from bench.workers import die_with_parent  # not leave them training on

        die_with_parent(os.getppid())
    local = int(os.environ.get("LOCAL_RANK", 0))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", device_id=device if device.type == "cuda" else None)
    w = world()
    if not w.main:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    return w, device


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if world().size > 1:
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block before the others (it fills caches, e.g. generated datasets, the others then read)."""
    if not world().main:
        barrier()
    yield
    if world().main:
        barrier()


def collective_device() -> torch.device:
    """Where tensors for collectives live: the rank's GPU with NCCL, the CPU with gloo."""
    if world().size > 1 and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (in place; returned for chaining)."""
    if world().size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_min(tensor: torch.Tensor) -> torch.Tensor:
    if world().size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return tensor


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (pickled: for small things such as RNG states and score arrays)."""
    if world().size == 1:
        return [obj]
    out: list[Any] = [None] * world().size
    dist.all_gather_object(out, obj)
    return out


def gather_tensors(obj: Any) -> list[Any]:
    """`gather_objects` for values holding tensors (RNG states): sent as torch.save bytes, read back weights-only."""
    if world().size == 1:
        return [obj]
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return [torch.load(io.BytesIO(blob), weights_only=True) for blob in gather_objects(buffer.getvalue())]


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    if world().size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_state(model: nn.Module) -> None:
    """Rank 0's weights and buffers on every rank (after rank 0 alone loaded a checkpoint)."""
    if world().size > 1:
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)


def gather_batch(x: torch.Tensor) -> torch.Tensor:
    """(B, ...) per rank -> (world * B, ...), in rank order, differentiable.

    For losses over the whole global batch (MoA-CLIP's L_att, L_sim, L_cac): every rank computes the same loss on
    the gathered tensor. The backward sums the gradient every rank sends to a rank's slice (world times the loss's
    own gradient), and DDP divides by world when it averages: the update equals one process's on the global batch.
    Needs equal B on every rank (`ShardedBatchSampler` gives equal shares)."""
    if world().size == 1:
        return x
    return _GatherBatch.apply(x)


class _GatherBatch(torch.autograd.Function):
    """all_gather forward; backward: all_reduce (sum) of the whole gradient, then this rank's slice (gloo has no
    reduce_scatter; the tensors gathered here are per-sample features and attention maps, small)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(world().size)]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = x.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = world().rank * ctx.rows
        return grad[start:start + ctx.rows]


def gather_labels(x: torch.Tensor) -> torch.Tensor:
    """Non-differentiable `gather_batch`, for labels and domain ids."""
    if world().size == 1:
        return x
    out = [torch.empty_like(x) for _ in range(world().size)]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)


class _LossStep(nn.Module):
    """`detector.training_loss` as a forward, so DDP prepares its gradient reduction for every step."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, batch):
        out = self.detector.training_loss(batch)
        return out.total, out.logits, out.terms


def wrap(model: nn.Module, device: torch.device):
    """A callable batch -> LossOutput that averages gradients over ranks (the detector itself when alone).

    find_unused_parameters for multi-phase detectors (those overriding `training_phase`, e.g. MoA-CLIP): they switch
    requires_grad on parts of their parameters between steps, and DDP must not wait for gradients a step never
    produces. Other detectors must give every trainable parameter a gradient at every step (DDP says so if not). On GPUs, BatchNorm layers become
    SyncBatchNorm (statistics over the global batch); gloo has no SyncBatchNorm, so CPU ranks normalise per rank."""
    if world().size == 1:
        return model.training_loss
    from torch.nn.parallel import DistributedDataParallel

    from bench.records import LossOutput

    from bench.detector import Detector

    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    multi_phase = type(model).training_phase is not Detector.training_phase
    params = model.trainable_parameters()
    flags = [p.requires_grad for p in params]
    for p in params:  # DDP reduces the gradients of the parameters that require them when it is built: all of them
        p.requires_grad_(True)
    ddp = DistributedDataParallel(_LossStep(model), device_ids=[device] if device.type == "cuda" else None,
                                  find_unused_parameters=multi_phase)
    for p, flag in zip(params, flags):
        p.requires_grad_(flag)

    def step(batch) -> LossOutput:
        total, logits, terms = ddp(batch)
        return LossOutput(total=total, logits=logits, terms=terms)

    return step


# ---- launching: `bench run trainer.devices=N` ------------------------------------------------------------------


def launch(devices: int, argv: Sequence[str]) -> int:
    """Run `bench run <argv>` as `torchrun --standalone --nproc_per_node=<devices>` on this node; returns the exit code.

    The ranks write a failure's one-line message to a folder instead of stderr; the launcher prints the first one
    (the root cause: the other ranks were stopped because of it)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // devices)))  # torchrun's default is 1
    errors = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-ranks-{uuid.uuid4().hex[:8]}"
    errors.mkdir(parents=True)
    os.environ[RANK_ERRORS_ENV] = str(errors)
    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)  # the ranks' own lines say what went wrong
    args = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={devices}", "--max-restarts=0",
                                         "-m", "bench", "run", *argv])
    try:
        run(args)
        return 0
    except ChildFailedError as err:
        codes = [f.exitcode for f in err.failures.values()]
        lines = sorted(errors.glob("rank*.txt"), key=lambda p: p.stat().st_mtime)
        message = lines[0].read_text().strip() if lines else ""
        print(message or f"bench: error: a training process exited with code {codes[0]} (run it with "
              f"trainer.devices=1 to see why)", file=sys.stderr)
        return next((c for c in codes if c > 0), 1)
    finally:
        os.environ.pop(RANK_ERRORS_ENV, None)
        for path in errors.iterdir():
            path.unlink()
        errors.rmdir()


def check_batch(batch_size: int, n_domains: int | None, size: int) -> None:
    """The global batch splits into equal shares; a domain-balanced share still holds every domain."""
    if size == 1:
        return
    if batch_size % size:
        raise BenchError(f"trainer.batch_size={batch_size} is the global batch and does not split into {size} equal "
                         f"shares; use a multiple of {size}", key="trainer.batch_size")
    if n_domains is not None and batch_size // size < n_domains:
        raise BenchError(f"each of the {size} processes gets {batch_size // size} samples per batch, fewer than the "
                         f"{n_domains} training domains a domain-balanced batch holds; raise trainer.batch_size",
                         key="trainer.batch_size")
