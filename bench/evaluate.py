"""`bench evaluate RUN [overrides...] [--perturb jpeg=90,70,50 blur=1,2 resize=0.5]`: the checkpoint a finished run
selected on validation (its best.pt), evaluated on other test sets (`protocol=...` or `protocol.test...`) or on
perturbed copies of its own, without retraining.

Each perturbation level (and the unperturbed "none") is its own run: a run folder and an MLflow run tagged
`bench.run_kind=evaluate`, `bench.source_run` (the evaluated run's MLflow id) and `bench.perturbation`
(docs/run-record.md). The leaderboard's `robustness` table reads them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from bench import checkpoint, guards, preflight
from bench.config import RunConfig, TrackingConfig
from bench.errors import BenchError
from bench.perturb import Perturbation, parse
from bench.plugins import get_plugins
from bench.rundir import FAILED, FINISHED, RunFolder
from bench.runner import cache_errors, collect, open_log, resolve_device, run_tags, use_bf16
from bench.testsets import evaluate_all
from bench.tracking import flatten, run_dir_of


@dataclass
class EvaluateResult:
    run_dir: Path
    run_id: str | None
    perturbation: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)


def source_folder(ref: str, overrides: list[str]) -> RunFolder:
    """A run folder given as a path, or the folder of an MLflow run id (looked up in tracking.uri)."""
    path = Path(ref).expanduser()
    if path.name == "run.json":
        path = path.parent
    if not path.is_dir():
        uri = next((o.split("=", 1)[1] for o in overrides if o.startswith("tracking.uri=")), TrackingConfig.uri)
        path = Path(run_dir_of(uri, ref))
    folder = RunFolder.open(path)
    if folder.record.status != FINISHED or not (folder.path / "best.pt").is_file():
        raise BenchError(f"{folder.path} is not a finished run with a selected checkpoint (status {folder.record.status}, "
                         f"best.pt {'present' if (folder.path / 'best.pt').is_file() else 'missing'})")
    if folder.record.tags.get("bench.run_kind", "train") != "train":
        raise BenchError(f"{folder.path} is itself an evaluation; pass the training run it evaluated")
    return folder


def source_samples(saved_overrides: list[str], c: RunConfig) -> tuple[list, list] | None:
    """The evaluated run's training and validation samples, or None (with a warning) where its data is not readable
    here (evaluating on another machine)."""
    from bench.compose import compose_run

    src = compose_run([o for o in saved_overrides if not o.startswith("trainer.resume=")])
    protocol = OmegaConf.to_object(src.protocol)
    val = preflight.val_spec(protocol)
    try:
        adapters = preflight.build_adapters(src.datasets, c.paths, {protocol.train.dataset, val.dataset})
        with cache_errors(c.paths.cache):
            return (collect(adapters, protocol.train, "the training set"), collect(adapters, val, "the validation set"))
    except BenchError as err:
        print(f"bench: warning: the evaluated run's training data is not readable here ({err}); the test sets are not "
              "checked against it", file=sys.stderr)
        return None


def evaluate_run(ref: str, overrides: list[str], perturb_specs: list[str]) -> list[EvaluateResult]:
    from bench.compose import compose_run

    levels: list[Perturbation | None] = [None, *parse(perturb_specs)]
    source = source_folder(ref, overrides)
    saved = OmegaConf.load(source.configs()[-1])
    # The source run's own overrides reproduce its config; the new ones choose test sets, store, batch size...
    cfg = compose_run([*(o for o in saved.meta.overrides if not o.startswith("trainer.resume=")), *overrides])
    if any(o.split("=", 1)[0].lstrip("+~").startswith(("detector", "scale")) for o in overrides):
        raise BenchError("bench evaluate keeps the evaluated run's detector; drop the detector/scale overrides", key="detector")
    cfg.detector = OmegaConf.merge(cfg.detector, saved.detector)  # exactly the trained model, whatever today's defaults
    adapters = preflight.check_run(cfg, evaluate_only=True)
    c: RunConfig = OmegaConf.to_object(cfg)
    with cache_errors(c.paths.cache):
        tests = {name: collect(adapters, spec, f"test set {name!r}") for name, spec in c.protocol.test.items()}
    guards.check_files_exist(tests)
    trained_on = source_samples(saved.meta.overrides, c)
    if trained_on is not None:  # the runner's guard, against the data the evaluated run trained and selected on
        guards.check_leakage(*trained_on, tests)

    device = resolve_device(c.trainer.device)
    bf16 = use_bf16(c.trainer.precision, device)
    domains = source.record.tags.get("bench.domains", "").split(",")
    model = get_plugins().detectors.get(c.detector.name)(c.detector, domains).to(device)
    checkpoint.restore(checkpoint.load(source.path / "best.pt", key="RUN"), model=model)
    src_name = source.record.tags.get("mlflow.runName", c.detector.name)
    print(f"evaluating {source.path} ({src_name}) on {', '.join(tests)}; perturbations: "
          f"{', '.join(p.name if p else 'none' for p in levels)}")

    out = []
    for level in levels:
        name = level.name if level else "none"
        folder = RunFolder.create(c.paths.output, c.protocol.name, f"{c.detector.name}-eval")
        folder.write_config(OmegaConf.to_yaml(cfg, resolve=True))
        log = open_log(c, folder, f"{src_name} | eval {name}")
        try:
            log.params(flatten(OmegaConf.to_container(cfg, resolve=True)))
            log.tags({**run_tags(c, folder, "evaluate", device, bf16, model), "bench.perturbation": name,
                      "bench.source_run": source.record.mlflow.run_id or "", "bench.source_run_dir": str(source.path),
                      "bench.domains": ",".join(domains), "bench.complete": source.record.tags.get("bench.complete", "false")})
            print(f"\n=== perturbation {name}")
            results, predictions = evaluate_all(model, tests, c, device, bf16, log, perturb=level)
            health, reason = guards.scores_health({n: f["score"].to_numpy() for n, f in predictions.groupby("test_set", sort=False)})
            log.tags({"bench.health": health})
            log.finish(FINISHED)
        except BaseException as err:
            log.finish(FAILED, error=f"{type(err).__name__}: {err}")
            raise
        if reason:
            print(f"bench: warning: {reason}; the evaluation is marked bench.health={health}", file=sys.stderr)
        out.append(EvaluateResult(folder.path, log.record.mlflow.run_id, name, results))
        print(f"run folder: {folder.path}" + (f" | MLflow run {log.record.mlflow.run_id}" if log.record.mlflow.run_id else ""))
    return out
