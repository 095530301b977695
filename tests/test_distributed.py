"""Data-parallel training: sharded global batches, 2 gloo processes = 1 process with the same global batch, rank 0
alone writes, a kill -9 of the process group resumes on another number of processes, and rank errors are one line.

The end-to-end runs use `clip_probe` (a frozen tiny tower and a linear head): no BatchNorm, whose statistics are per
rank on CPU (gloo has no SyncBatchNorm), so the two runs must agree to float precision. Measured on this project's
2-core machine: every metric and every score equal to the last bit (difference 0.0); TOLERANCE leaves room for
another BLAS summing the two half-batch gradients in another order.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from torch.utils.data import BatchSampler

from bench.data import DomainBalancedBatchSampler, EpochRandomSampler, ShardedBatchSampler
from bench.tracking import search_runs
from cli_tools import SMALL, assert_one_line_error, bench_popen, bench_subprocess, record, run_folders

TOLERANCE = 1e-6
RUN = [*SMALL, "detector=clip_probe", "trainer.epochs=3", "trainer.device=cpu", "trainer.log_every=1"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # both runs: CPU results depend on the thread count (README, Reproducibility)


@pytest.mark.parametrize("world", [2, 3])
def test_shards_of_a_global_batch_are_equal_disjoint_and_cover_it(world):
    domains = np.repeat(np.arange(4), [30, 12, 9, 5])  # unequal domains: the small ones are re-drawn
    samplers = {"random": BatchSampler(EpochRandomSampler(len(domains), seed=3), 24, drop_last=True),
                "domain_balanced": DomainBalancedBatchSampler(domains, 24, seed=3)}
    for name, batches in samplers.items():
        shards = [ShardedBatchSampler(batches, rank, world) for rank in range(world)]
        for s in shards:
            s.set_epoch(1)
        alone = ShardedBatchSampler(batches)
        alone.set_epoch(1)
        seen = Counter()
        for whole, *parts in zip(alone, *shards):
            assert sorted(sum(parts, [])) == sorted(whole[: len(whole) - len(whole) % world]), name
            assert len({len(p) for p in parts}) == 1, name  # equal shares: DDP steps together
            seen.update(i for p in parts for i in p)
            if name == "domain_balanced":  # every rank holds every domain, as evenly as its share allows
                for p in parts:
                    counts = np.bincount(domains[p], minlength=4)
                    assert counts.max() - counts.min() <= 1, (world, counts)
        if name == "random":
            assert max(seen.values()) == 1  # no sample twice in an epoch, whatever the number of ranks


def _results(folder: Path) -> tuple[dict, pd.DataFrame]:
    return json.loads((folder / "results.json").read_text()), pd.read_parquet(folder / "predictions.parquet")


def _assert_same_results(a: Path, b: Path) -> None:
    (ra, pa), (rb, pb) = _results(a), _results(b)
    assert ra.keys() == rb.keys()
    for test_set, values in ra.items():
        for metric, value in values.items():
            assert abs(value - rb[test_set][metric]) <= TOLERANCE, (test_set, metric, value, rb[test_set][metric])
    assert list(pa["key"]) == list(pb["key"])  # gathered back in dataset order
    assert np.abs(pa["score"].to_numpy() - pb["score"].to_numpy()).max() <= TOLERANCE


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    """The reference: one process, the same global batch (trainer.batch_size is global)."""
    out = tmp_path_factory.mktemp("one")
    res = bench_subprocess("run", *RUN, "tracking.enabled=false", f"paths.output={out}", env=ONE_THREAD)
    assert res.returncode == 0, res.stderr[-3000:]
    [folder] = run_folders(out)
    return folder


@pytest.mark.slow
def test_two_gloo_processes_give_the_metrics_of_one_process(one_process, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    res = bench_subprocess("run", *RUN, "trainer.devices=2", f"tracking.uri={uri}", f"paths.output={tmp_path / 'out'}",
                           cwd=tmp_path, env=ONE_THREAD)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("epoch 3/3") == 1  # one progress report: ranks > 0 print nothing
    [folder] = run_folders(tmp_path / "out")  # rank 0 alone writes the run folder ...
    _assert_same_results(one_process, folder)
    runs = search_runs(uri, ["demo"])  # ... and the MLflow run
    assert len(runs) == 1 and runs.loc[0, "status"] == "FINISHED" and runs.loc[0, "tags.bench.world_size"] == "2"
    assert record(folder)["tags"]["bench.world_size"] == "2"


def _alive(marker: str) -> list[int]:
    """Processes whose command line names `marker` (the run's unique output folder)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


@pytest.mark.slow
def test_kill_9_of_the_process_group_then_resume_on_one_process(one_process, tmp_path):
    uri, out = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "killed"
    proc = bench_popen("run", *RUN, "trainer.devices=2", f"tracking.uri={uri}", f"paths.output={out}", cwd=tmp_path,
                       env=ONE_THREAD, new_session=True)
    deadline = time.time() + 600
    while not list(out.rglob("last.pt")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its group; torchrun's ranks run in sessions of their own
    proc.communicate()
    for _ in range(50):  # ... and die with their parent (PR_SET_PDEATHSIG), not training on
        if not _alive(str(out)):
            break
        time.sleep(0.1)
    assert not _alive(str(out))
    [folder] = run_folders(out)
    killed = record(folder)
    assert killed["status"] == "RUNNING" and (folder / "metrics.jsonl").read_text().count("epoch/train_loss") < 3

    res = bench_subprocess("run", *RUN, f"tracking.uri={uri}", f"trainer.resume={folder / 'last.pt'}", cwd=tmp_path,
                           env=ONE_THREAD)  # one process now: the same global batches, so the same run
    assert res.returncode == 0, res.stderr[-3000:]
    runs = search_runs(uri, ["demo"])
    assert len(runs) == 1 and runs.loc[0, "status"] == "FINISHED" and runs.loc[0, "run_id"] == killed["mlflow"]["run_id"]
    assert runs.loc[0, "tags.bench.world_size"] == "1"  # the last session's
    _assert_same_results(one_process, folder)


def test_an_error_in_the_ranks_is_one_line_from_the_launcher(tmp_path):
    res = bench_subprocess("run", *SMALL, "trainer.devices=2", "trainer.device=cpu", "trainer.batch_size=15",
                           "tracking.enabled=false", f"paths.output={tmp_path}", env=ONE_THREAD)
    assert_one_line_error(res.returncode, res.stderr, "trainer.batch_size=15 is the global batch", "2 equal shares")
    assert not run_folders(tmp_path)
