"""`bench run` beyond one process: sweeps through Hydra launchers, and runs on several devices through torchrun.

    bench run -m detector=a,b                               # plain sweep: one run after the other, in this process
    bench run -m hydra/launcher=joblib detector=a,b         # local parallel runs (hydra-joblib-launcher)
    bench run -m hydra/launcher=submitit_slurm ...          # one SLURM job per run (hydra-submitit-launcher)
    bench run -m hydra/launcher=ray ...                     # Ray tasks, local or on a cluster (hydra-ray-launcher)
    bench run trainer.devices=8 ...                         # one run on 8 GPUs of this node (torchrun)

With a `hydra/launcher` choice the sweep goes through Hydra's own multirun (its sweeper and the chosen launcher);
each job composes its config exactly as `bench run <its overrides>` would (`compose_run`), so a run from a sweep
is the same run as one started alone, and logs to the same tracking store (`tracking.uri`: an `mlflow server` for
jobs on other machines; see README "Scaling out"). Every config of a sweep is composed and checked before any
job starts.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from omegaconf import DictConfig

from bench.errors import BenchError

# Where Hydra puts a sweep's own files (its config, submitit logs): under the run folders, not the working directory.
# Hydra's job logging is left alone (`none`): runs print their progress and MLflow keeps its own log levels.
HYDRA_DEFAULTS = ["hydra.sweep.dir=${paths.output}/sweeps/${now:%Y%m%d-%H%M%S}", "hydra/job_logging=none"]


def is_hydra_override(override: str) -> bool:
    return override.lstrip("+~").startswith(("hydra/", "hydra."))


@dataclass
class JobResult:
    """What a sweep job sends back to the process that launched it (pickled by joblib, submitit or Ray)."""

    overrides: list[str]
    error: str | None = None  # the one-line error of a failed run
    run_dir: str | None = None  # its run folder (unknown when the run went to torchrun's processes)


def run_one(cfg: DictConfig, overrides: Sequence[str]) -> tuple[int, str | None]:
    """One run: in this process, or on `trainer.devices` processes through torchrun (unless already under it).
    Returns the exit code and the run folder (None when torchrun's processes ran it)."""
    from bench.distributed import launch, launched

    devices = cfg.trainer.devices
    if devices > 1 and not launched():
        check_devices(cfg.trainer.device, devices)
        return launch(devices, list(overrides)), None
    from bench.runner import run

    return 0, str(run(cfg).run_dir)


def check_devices(device: str, devices: int) -> None:
    import torch

    gpus = torch.cuda.device_count()
    if device.startswith("cuda") and not gpus:
        raise BenchError("trainer.device asks for CUDA but no GPU is visible; use trainer.device=cpu for CPU processes",
                         key="trainer.device")
    if device in ("auto", "cuda") and gpus and devices > gpus:
        raise BenchError(f"trainer.devices={devices} but this node has {gpus} GPUs; use at most {gpus} (or "
                         f"torchrun --nnodes=... for several nodes)", key="trainer.devices")


def run_sequential(combos: list[list[str]], configs: list[DictConfig]) -> int:
    """Each config in turn in this process (a plain `-m` sweep, or a single run); a failed run of a sweep is one line
    and the sweep goes on."""
    failures = []
    for i, cfg in enumerate(configs):
        if len(configs) > 1:
            print(f"\n=== run {i + 1}/{len(configs)}: {' '.join(combos[i])}")
        try:
            code, _ = run_one(cfg, combos[i])
        except BenchError as err:
            if len(configs) == 1:
                raise
            print(f"bench: error: {err}", file=sys.stderr)
            code = 2
        if code:
            if len(configs) == 1:
                return code
            failures.append(" ".join(combos[i]))
    return _summary(failures, len(configs))


def _summary(failures: list[str], total: int) -> int:
    if failures:
        print(f"bench: {len(failures)} of {total} runs failed: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


def run_job(combos: list[list[str]], cfg: DictConfig) -> JobResult:
    """Hydra's task function: job i of a launcher sweep runs combination i, as typed (Hydra's own copy of the
    overrides is re-quoted), in whatever process or machine the launcher chose."""
    from hydra.core.hydra_config import HydraConfig

    from bench.compose import compose_run

    overrides = combos[HydraConfig.get().job.num]
    try:
        code, run_dir = run_one(compose_run(overrides), overrides)
    except BenchError as err:
        print(f"bench: error: {err}", file=sys.stderr)
        return JobResult(overrides, str(err))
    return JobResult(overrides, None if code == 0 else f"exit code {code}", run_dir)


def run_with_launcher(job_overrides: list[str], hydra_overrides: list[str], combos: list[list[str]]) -> int:
    """The sweep through Hydra's multirun with the launcher the `hydra/launcher=...` override chose; `combos`:
    `expand_sweep(job_overrides)`, in the order of Hydra's jobs."""
    from hydra.core.global_hydra import GlobalHydra

    from bench.compose import CONFIG_ERRORS, init_hydra

    init_hydra()
    hydra = GlobalHydra.instance().hydra
    try:
        batches = hydra.multirun(config_name="config", task_function=functools.partial(run_job, combos),
                                 overrides=[*HYDRA_DEFAULTS, *hydra_overrides, *job_overrides])
    except CONFIG_ERRORS as err:  # e.g. a launcher that is not installed, or a typo in its options
        raise _launcher_error(err, hydra_overrides) from err
    results: list[JobResult] = [job.return_value for batch in batches for job in batch]
    for r in results:  # the jobs' own output went where the launcher puts it (submitit: its log files)
        print(f"{' '.join(r.overrides)}: " + (f"failed: {r.error}" if r.error else f"run folder {r.run_dir or '(torchrun)'}"))
    return _summary([" ".join(r.overrides) for r in results if r.error], len(results))


def _launcher_error(err: BaseException, hydra_overrides: list[str]) -> BenchError:
    from bench.compose import config_error

    text = str(err)
    if "hydra/launcher" in text:
        choice = next((o.split("=", 1)[1] for o in hydra_overrides if o.startswith("hydra/launcher=")), "?")
        package = {"joblib": "hydra-joblib-launcher", "ray": "hydra-ray-launcher"}.get(
            choice, "hydra-submitit-launcher" if choice.startswith("submitit") else None)
        hint = f"pip install {package} (or forgerybench[launchers])" if package else "check the name"
        return BenchError(f"unknown Hydra launcher {choice!r}: {hint}", key="hydra/launcher")
    return config_error(err, "config", hydra_overrides)
