"""From `Sample` lists to batches: torch Dataset, domain ids for training samples, samplers and loaders.

Threads: the data path (decoding, transforms) runs on one thread, in worker processes (`trainer.num_workers > 0`:
torch already gives workers one thread; OpenCV's is set in `_worker_init`) and in the main process around every
batch fetch when `num_workers=0` (`single_threaded`), so the training math keeps all of torch's threads. Per-image
work is too small to split across threads: with two threads and one core busy elsewhere it ran ~10x slower
(benchmarks/data_threads.py).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler
from torchvision.transforms import v2

from bench.dataset import UnreadableImage, load_image
from bench.errors import BenchError
from bench.records import REAL_DOMAIN, Batch, Sample

NO_DOMAIN = -1


def stable_hash(text: str) -> int:
    """A hash that does not change between processes (Python's hash() is salted)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def assign_domains(samples: Sequence[Sample], fake_domains: Sequence[str], mode: str) -> tuple[list[str], np.ndarray]:
    """Domain names and a domain id per training sample.

    Fakes get the index of their manipulation. Real samples have no manipulation, so:
      "balanced": each real *video* goes to one fake domain by a stable hash of its key (all frames of a video
                  stay together; every domain then holds real and fake samples, as MoA-CLIP's domains do);
      "separate": real samples form one extra domain named "real".
    """
    names = list(fake_domains)
    if mode == "separate":
        names.append(REAL_DOMAIN)
    elif mode != "balanced":
        raise BenchError(f"protocol.real_domain must be 'balanced' or 'separate', got {mode!r}", key="protocol.real_domain")
    index = {n: i for i, n in enumerate(names)}
    ids = np.empty(len(samples), dtype=np.int64)
    for i, s in enumerate(samples):
        if s.domain == REAL_DOMAIN:
            ids[i] = index[REAL_DOMAIN] if mode == "separate" else stable_hash(s.video) % len(fake_domains)
        else:
            ids[i] = index[s.domain]
    return names, ids


def evenly_spaced_frames(samples: Sequence[Sample], k: int | None) -> list[Sample]:
    """Keep at most k evenly spaced frames of each video (never the first k), preserving order."""
    if k is None:
        return list(samples)
    by_video: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_video[s.video].append(i)
    keep: set[int] = set()
    for idx in by_video.values():
        idx.sort(key=lambda i: samples[i].frame)
        if len(idx) <= k:
            keep.update(idx)
        else:
            keep.update(idx[j] for j in np.linspace(0, len(idx) - 1, k).round().astype(int))
    return [s for i, s in enumerate(samples) if i in keep]


class FrameDataset(Dataset):
    """Samples -> (image tensor, label, domain id, index). Transforms come from the detector; with `transform=None`
    no image is read and the image is an empty tensor (a detector that trains from cached features)."""

    def __init__(self, samples: Sequence[Sample], transform: Callable | None, domain_ids: np.ndarray | None = None) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.domain_ids = domain_ids if domain_ids is not None else np.full(len(self.samples), NO_DOMAIN, np.int64)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int, int] | str:
        """The item, or why its file cannot be read: the main process decides (`data.on_bad_image`), so the
        message reaches the user whole even from a loader worker (which would wrap an exception in its traceback)."""
        s = self.samples[i]
        if self.transform is None:  # a detector training from cached features: no image is read
            return torch.empty(0), s.label, int(self.domain_ids[i]), i
        try:
            image = load_image(s)
        except UnreadableImage as err:
            return str(err)
        return self.transform(image), s.label, int(self.domain_ids[i]), i


def collate(items: list[tuple[torch.Tensor, int, int, int] | str]) -> Batch:
    good = [x for x in items if not isinstance(x, str)]
    images, labels, domains, index = zip(*good) if good else ((), (), (), ())
    return Batch(
        images=torch.stack(images) if good else torch.empty(0),  # (B, 3, H, W)
        labels=torch.tensor(labels, dtype=torch.long),
        domains=torch.tensor(domains, dtype=torch.long),
        index=torch.tensor(index, dtype=torch.long),
        unreadable=tuple(x for x in items if isinstance(x, str)),
    )


def count_unreadable(batch: Batch, policy: str) -> int:
    """Apply `data.on_bad_image` to a batch: "error" stops at the first unreadable file, "skip" counts them."""
    if batch.unreadable and policy != "skip":
        raise BenchError(f"{batch.unreadable[0]}; fix or re-create it (`bench data verify` finds them all), or set "
                         f"data.on_bad_image=skip to leave such files out (counted in the results)", key="data.on_bad_image")
    return len(batch.unreadable)


class EpochRandomSampler(Sampler[int]):
    """A shuffle that is a pure function of (seed, epoch), so a resumed run sees the same order as an uninterrupted one."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        return iter(np.random.default_rng((self.seed, self.epoch)).permutation(self.n).tolist())


class DomainBalancedBatchSampler(Sampler[list[int]]):
    """Batches with (as near as possible) equal counts of every training domain.

    Cross-domain losses (MoA-CLIP's L_att, L_sim) need several domains in each batch. One epoch yields
    len(dataset) // batch_size batches; small domains are re-drawn (with a fresh permutation) when exhausted.
    A batch lists its samples domain after domain (a a a b b b c c c ...), so the slices [r::k] of it deal every
    domain's samples evenly over the k slices: each is as balanced as the batch (`ShardedBatchSampler` gives rank r
    slice r).
    """

    def __init__(self, domain_ids: np.ndarray, batch_size: int, seed: int) -> None:
        self.groups = [np.flatnonzero(domain_ids == d) for d in np.unique(domain_ids)]
        if batch_size < len(self.groups):
            raise BenchError(f"batch size {batch_size} is smaller than the number of domains ({len(self.groups)})",
                             key="trainer.batch_size")
        self.batch_size = batch_size
        self.n_batches = max(1, len(domain_ids) // batch_size)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        queues = [list(rng.permutation(g)) for g in self.groups]
        per, extra = divmod(self.batch_size, len(self.groups))
        for _ in range(self.n_batches):
            takes: list[list[int]] = []
            for k, q in enumerate(rng.permutation(len(self.groups))):
                take = per + (1 if k < extra else 0)
                while len(queues[q]) < take:
                    queues[q].extend(rng.permutation(self.groups[q]))
                takes.append([int(queues[q].pop()) for _ in range(take)])
            yield [i for take in takes for i in take]


class ShardedBatchSampler(Sampler[list[int]]):
    """Rank `rank`'s share [rank::world] of every global batch of `batches`, cut to a multiple of `world` first.

    Every rank iterates the same global batches (they are a function of seed and epoch), so together the ranks
    train on exactly the batches one process would, no sample twice; each share has the same size (DDP and the
    gathered batch-level losses need that). With world = 1 it passes the batches through unchanged."""

    def __init__(self, batches: Sampler[list[int]] | Iterable[list[int]], rank: int = 0, world: int = 1) -> None:
        self.batches, self.rank, self.world = batches, rank, world

    def set_epoch(self, epoch: int) -> None:
        for source in (self.batches, getattr(self.batches, "sampler", None)):  # a BatchSampler over an epoch sampler
            if hasattr(source, "set_epoch"):
                source.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            batch = list(batch)
            yield batch[: len(batch) - len(batch) % self.world][self.rank::self.world]


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Torch intra-op and OpenCV on one thread inside the block; the previous thread counts after it."""
    import cv2

    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv2_threads)


def _worker_init(worker_id: int) -> None:
    import cv2

    cv2.setNumThreads(1)  # torch already runs DataLoader workers on one thread


class Loader(DataLoader):
    """A DataLoader whose data path is single-threaded (see the module docstring). With a `device_stage`, batches
    leave it as uint8 images and `to_device` finishes them on the device."""

    device_stage: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __iter__(self) -> Iterator[Batch]:
        batches = super().__iter__()
        return batches if self.num_workers > 0 else _fetch_single_threaded(batches)


def _fetch_single_threaded(batches: Iterator[Batch]) -> Iterator[Batch]:
    while True:
        with single_threaded():
            batch = next(batches, None)
        if batch is None:
            return
        yield batch


def split_transform(transform: Callable | None) -> tuple[Callable | None, Callable[[torch.Tensor], torch.Tensor] | None]:
    """(per-image part, per-batch part) of a detector's transform: a torchvision v2 pipeline ending in
    ToDtype(float32, scale=True) + Normalize runs everything before those two per image on the CPU (uint8 out: a
    quarter of the bytes to copy) and the two on the device, on the whole batch, the same ops on the same values.
    Any other transform stays whole on the CPU."""
    ops = getattr(transform, "transforms", None)
    if not ops or len(ops) < 3 or not isinstance(ops[-1], v2.Normalize) or not isinstance(ops[-2], v2.ToDtype):
        return transform, None
    if ops[-2].dtype != torch.float32 or not ops[-2].scale:
        return transform, None
    return v2.Compose(ops[:-2]), v2.Compose(ops[-2:])


def to_device(loader: DataLoader, batch: Batch, device: torch.device, channels_last: bool = False) -> Batch:
    """The batch on `device` (asynchronously from pinned memory), its images finished there (`Loader.device_stage`)."""
    batch = batch.to(device)
    stage = getattr(loader, "device_stage", None)
    if stage is not None and batch.images.numel():
        batch.images = stage(batch.images)  # (B, 3, S, S) uint8 -> normalised float
    if channels_last and batch.images.dim() == 4:
        batch.images = batch.images.contiguous(memory_format=torch.channels_last)
    return batch


def make_loader(dataset: FrameDataset, *, batch_size: int, train: bool, sampler: str = "random", seed: int = 0,
                num_workers: int = 0, device_stage: bool = False) -> DataLoader:
    """Training: global batches of `batch_size` (random or domain-balanced), each process of a data-parallel run
    taking its share. Evaluation: in dataset order, each process taking every world-th sample (the scores are
    gathered back in order, `bench.distributed.gather_scores`). `device_stage`: normalise on the device."""
    from bench.distributed import world

    w = world()
    stage = None
    if device_stage:
        cpu, stage = split_transform(dataset.transform)
        dataset = FrameDataset(dataset.samples, cpu, dataset.domain_ids)
    common = dict(collate_fn=collate, num_workers=num_workers, persistent_workers=num_workers > 0,
                  pin_memory=torch.cuda.is_available(), worker_init_fn=_worker_init if num_workers > 0 else None)
    if not train:
        loader = Loader(dataset, batch_size=batch_size, shuffle=False, sampler=range(w.rank, len(dataset), w.size), **common)
    else:
        if sampler == "domain_balanced":
            batches: Sampler[list[int]] = DomainBalancedBatchSampler(dataset.domain_ids, batch_size, seed)
        elif sampler == "random":
            batches = BatchSampler(EpochRandomSampler(len(dataset), seed), batch_size, drop_last=len(dataset) > batch_size)
        else:
            raise BenchError(f"trainer.sampler must be 'random' or 'domain_balanced', got {sampler!r}", key="trainer.sampler")
        loader = Loader(dataset, batch_sampler=ShardedBatchSampler(batches, w.rank, w.size), **common)
    loader.device_stage = stage
    return loader
