"""Typed config schemas (dataclasses) and their registration in Hydra's ConfigStore.

The YAML groups shipped in `bench/conf/` (protocol/, trainer/, tracking/, scale/) are validated against these
schemas; detector and dataset configs are the `config_class` dataclasses of the registered classes, so a typo
in any key fails with the key's name.

Composition order (see conf/config.yaml): trainer defaults < the detector's published `recipe` < the `scale`
budget (scale=tiny: minutes on a CPU) < command-line overrides. Each protocol names its default scale.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from bench.checks import Check, at_least, between, each, length, matches, one_of, optional, positive
from bench.dataset import SPLITS, dataset_node
from bench.errors import BenchError
from bench.plugins import BUILTIN_DIST, PluginWarning, Plugins
from bench.registry import Entry


@dataclass
class SplitSpec:
    """A set of samples: one split of one dataset, optionally restricted to some fake domains."""

    checks: ClassVar[dict[str, Check]] = {"split": one_of(*SPLITS)}

    dataset: str = MISSING  # registered dataset name (its config lives at datasets.<name>)
    split: str = "test"
    domains: list[str] | None = None  # fake domains to keep; null = all the dataset has
    real: bool = True  # include the split's real samples (AUC needs both classes)


@dataclass
class ProtocolConfig:
    checks: ClassVar[dict[str, Check]] = {"version": at_least(1), "real_domain": one_of("balanced", "separate")}

    name: str = MISSING
    version: int = MISSING  # bump when the protocol's data or splits change; recorded with every run
    description: str = ""
    scale: str = "full"  # default `scale` for this protocol (the demo uses "tiny")
    train: SplitSpec = MISSING  # split: train; its `domains` are the training forgery domains
    # checkpoint selection; defaults to the train spec on split "val" (a node, so `protocol.val.split=...` overrides work)
    val: SplitSpec | None = field(default_factory=lambda: SplitSpec(
        dataset="${..train.dataset}", split="val", domains="${..train.domains}", real="${..train.real}"))
    test: dict[str, SplitSpec] = field(default_factory=dict)  # test-set name -> spec
    # How real training samples get a domain id (MoA-CLIP's per-domain adapters/losses need one):
    # "balanced": each real video is assigned to one fake domain by a stable hash of its key, so every domain
    # holds real and fake samples; "separate": real samples form their own extra domain.
    real_domain: str = "balanced"


@dataclass
class TrainerConfig:
    checks: ClassVar[dict[str, Check]] = {
        "epochs": at_least(1), "batch_size": at_least(1), "eval_batch_size": at_least(1), "lr": positive,
        "weight_decay": at_least(0), "betas": length(2), "optimizer": one_of("adam", "adamw", "sgd"),
        "scheduler": one_of("none", "cosine"), "warmup_steps": at_least(0), "min_lr": at_least(0),
        "grad_clip": optional(positive), "sampler": one_of("random", "domain_balanced"),
        "frames_per_video": optional(at_least(1)), "max_steps_per_epoch": optional(at_least(1)),
        "select_metric": one_of("auc", "loss"), "device": matches(r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, cuda or cuda:N"),
        "precision": one_of("auto", "bf16", "fp32"), "num_workers": at_least(0), "bootstrap": at_least(0),
        "log_every": at_least(1), "devices": at_least(1),
    }

    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 2e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    scheduler: str = "none"  # none | cosine (with linear warm-up)
    warmup_steps: int = 0
    min_lr: float = 0.0
    grad_clip: float | None = None  # max gradient norm; null = off
    sampler: str = "random"  # random | domain_balanced (every batch holds every training domain)
    frames_per_video: int | None = None  # keep this many evenly spaced frames per training video; null = all
    max_steps_per_epoch: int | None = None  # cap for smoke runs; null = full epochs
    eval_batch_size: int = 64
    select_metric: str = "auc"  # validation metric that picks the checkpoint: auc | loss
    device: str = "auto"  # auto (cuda if available) | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 autocast on cuda, fp32 on cpu) | bf16 | fp32
    num_workers: int = 0
    # processes of one data-parallel run on this node (GPUs, or CPU processes): `bench run` starts them with torchrun.
    # batch_size stays the global batch (each process takes batch_size / devices); under torchrun its own count wins.
    devices: int = 1
    channels_last: bool = False  # NHWC images and weights: faster convolutions on GPUs (CNN detectors), no effect on ViTs
    compile: bool = False  # torch.compile the training step and the forward (minutes of compiling first)
    seed: int = 0
    bootstrap: int = 1000  # bootstrap resamples for the AUC 95% CI (0 = off)
    resume: str | None = None  # path to a checkpoint (last.pt) to resume from
    progress: bool = True  # tqdm progress bars
    log_every: int = 10  # log per-step training losses every N steps


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: str = "sqlite:///mlflow.db"  # relative to the working directory
    experiment: str | None = None  # null = the protocol's name (one experiment per protocol)
    run_name: str | None = None  # null = "<detector>" + overrides
    log_predictions: bool = True  # per-frame predictions parquet as an artifact
    log_checkpoint: bool = False  # the selected checkpoint as an artifact (large for CLIP models)


@dataclass
class DataConfig:
    """How training and testing read images."""

    checks: ClassVar[dict[str, Check]] = {"on_bad_image": one_of("error", "skip")}

    on_bad_image: str = "error"  # error (stop, naming the file) | skip (leave it out; counts logged and shown in the results)


@dataclass
class PathsConfig:
    cache: str = "${oc.env:BENCH_CACHE,${oc.env:HOME,.}/.cache/forgerybench}"  # generated/prepared data
    output: str = "${oc.env:BENCH_OUTPUT,outputs}"  # checkpoints and run folders


@dataclass
class RunMeta:
    """Filled in by the CLI, recorded with the run."""

    scale: str = "full"  # the `scale` choice used (full | tiny)
    overrides: list[str] = field(default_factory=list)  # the command-line overrides


@dataclass
class RunConfig:
    detector: Any = MISSING  # the selected detector's config_class
    protocol: ProtocolConfig = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    datasets: Any = MISSING  # name -> that dataset's config_class; every registered dataset is present
    meta: RunMeta = field(default_factory=RunMeta)


@dataclass
class PrepareConfig:
    """`bench prepare`: frames per video, face detector, crop geometry and format (see bench/prepare.py)."""

    checks: ClassVar[dict[str, Check]] = {
        "splits": each(one_of(*SPLITS)), "frames": each(at_least(1)), "margin": at_least(1.0), "size": at_least(8),
        "format": one_of("jpg", "png"), "quality": between(1, 100), "workers": at_least(0),
    }

    dataset: str | None = None  # dataset to prepare (`bench prepare dataset=<name>`); for `bench data`: null = all
    splits: list[str] = field(default_factory=lambda: list(SPLITS))
    frames: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 32))  # evenly spaced frames per video
    face_detector: str = "haar"  # a registered face detector (bench list plugins)
    face_detector_options: dict[str, Any] = field(default_factory=dict)  # fields of that detector's config_class
    margin: float = 1.3  # crop side = margin x the face box's longer side
    size: int = 256  # crops are size x size
    format: str = "jpg"  # jpg (q=quality, ~1/9 the disk of raw pixels, >1,000 loads/s per core) | png (lossless, ~4x slower to load)
    quality: int = 95
    workers: int = 0  # processes; 0 = one per CPU core
    overwrite: bool = False  # redo videos that are already prepared
    progress: bool = True  # tqdm progress bar
    # Which face of a frame is kept (bench/faces/track.py): "track" = one face track per video, detected in full on
    # every `detect_every`-th sampled frame and followed in small regions between them; "best" = the most confident
    # face of every frame; "largest" = the largest box of every frame (the common practice, fooled by large false
    # positives). `detect_every=1` searches every frame in full; 32 = two full searches of 32 frames (the first and
    # the last; more while they hold no face), the rest near the track (README, "Speed").
    selection: str = "track"
    detect_every: int = 32
    min_confidence: float = 0.5  # videos whose median face confidence is lower are reported as low_confidence
    max_videos: int | None = None  # per split, for a trial run (a fixed subset, spread over domains); null = all
    backend: str = "process"  # process (a local process pool) | ray (videos as Ray tasks, on a cluster)
    ray_address: str | None = None  # backend=ray: null = start a local Ray; "auto" or "ray://host:10001" = a cluster


@dataclass
class PrepareRunConfig:
    """`bench prepare` / `bench data`: which dataset, how to crop, where the cache is."""

    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    datasets: Any = MISSING


def _config_classes(entries: list[Entry]) -> list[tuple[Entry, type]]:
    """(entry, config class) for every entry whose config imports; a broken third-party one is skipped with a warning.

    Entries registered with a `config=` target import only that (torch-free) module, never the class's."""
    out = []
    for entry in entries:
        try:
            out.append((entry, entry.config_class()))
        except BenchError as err:
            if entry.dist == BUILTIN_DIST:
                raise
            warnings.warn(f"{err} (skipped)", PluginWarning, stacklevel=2)
    return out


def register_configs(plugins: Plugins) -> None:
    """Fill Hydra's ConfigStore from the schemas above and from everything the plugins registered."""
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    cs.store(name="prepare_schema", node=PrepareRunConfig)
    cs.store(name="prepare", node={"defaults": ["prepare_schema", "datasets_all", "_self_"]})
    cs.store(group="protocol", name="protocol_schema", node=ProtocolConfig)
    cs.store(group="trainer", name="trainer_schema", node=TrainerConfig)
    cs.store(group="tracking", name="tracking_schema", node=TrackingConfig)
    datasets = _config_classes(plugins.datasets.entries())
    # one typed node per registered dataset, so `datasets.<name>.root=...` works for plugins too
    all_datasets = {e.name: dataset_node(cfg_cls, e.name) for e, cfg_cls in datasets}
    cs.store(name="datasets_all", node=OmegaConf.create(all_datasets), package="datasets")
    for entry, cfg_cls in _config_classes(plugins.detectors.entries()):
        cs.store(group="detector", name=entry.name, node=cfg_cls(name=entry.name))
        if cfg_cls.recipe:
            cs.store(group="recipe", name=entry.name, node=dict(cfg_cls.recipe), package="trainer")
        if cfg_cls.tiny:
            cs.store(group="detector_scale", name=f"{entry.name}_tiny", node=dict(cfg_cls.tiny), package="detector")
    for n in plugins.configs:
        cs.store(group=n.group, name=n.name, node=n.node, package="trainer" if n.group == "scale" else None)
        if n.detector is not None:  # a variant keeps its detector's recipe and tiny variant
            base = plugins.detectors.entry(n.detector).config_class()
            if base.recipe:
                cs.store(group="recipe", name=n.name, node=dict(base.recipe), package="trainer")
            if base.tiny:
                cs.store(group="detector_scale", name=f"{n.name}_tiny", node=dict(base.tiny), package="detector")
