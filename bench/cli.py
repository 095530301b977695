"""`bench` command line: a small argparse dispatcher; everything after the subcommand is Hydra overrides.

    bench run [-m] [--cfg] [overrides...]     train + select on val + evaluate (default: protocol=demo)
    bench sync RUN_DIR... [--uri URI]            upload run folders to MLflow (after a tracking failure)
    bench evaluate RUN [overrides] [--perturb jpeg=90,70 blur=1 resize=0.5]   re-evaluate a run's checkpoint
    bench leaderboard --table NAME [--format github|latex|csv] [--experiment NAME] [--uri URI] [--show-runs]
                      [--include-dirty] [--include-incomplete] [--include-unhealthy] [--baseline DETECTOR]
    bench compare RUN_A RUN_B [--uri URI]    ΔAUC per test set: DeLong's test and a paired video bootstrap
    bench list [detectors|datasets|protocols|plugins|tables]
    bench prepare dataset=NAME [overrides...]   videos -> face crops + manifest
    bench data [status] [overrides...]          roots, videos found, prepared frames
    bench data verify DATASET [overrides...]    decode every listed image / prepared crop
    bench predict PATH... --run RUN | --checkpoint best.pt   probability of fake per image / video
    bench new detector|dataset NAME             a plugin distribution skeleton that installs and passes its test
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from bench.errors import BenchError, BenchWarning

DEBUG_ENV = "BENCH_DEBUG"  # =1: show tracebacks instead of one-line errors


def _user_errors() -> tuple[type[BaseException], ...]:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return (BenchError, HydraException, OmegaConfBaseException)


def cmd_run(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from bench.compose import compose_run, expand_sweep
    from bench.sweep import is_hydra_override

    hydra = [o for o in args.overrides if is_hydra_override(o)]  # hydra/launcher=..., hydra.launcher.*=...
    overrides = [o for o in args.overrides if not is_hydra_override(o)]
    if hydra and not args.multirun:
        raise BenchError(f"{hydra[0]}: Hydra's launcher settings apply to sweeps: bench run -m ...", key="hydra/launcher")
    combos = list(expand_sweep(overrides)) if args.multirun else [overrides]
    if not args.multirun:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        if any(o.is_sweep_override() for o in OverridesParser.create().parse_overrides(overrides)):
            raise BenchError("a sweep override (a,b) needs -m/--multirun: bench run -m ...")
    configs = [compose_run(c) for c in combos]  # compose all first: a typo fails before any training
    if args.cfg:
        for cfg in configs:
            print(OmegaConf.to_yaml(cfg, resolve=True))
        return 0
    from bench.preflight import check_run

    for cfg in configs:  # roots, store, resume file: before importing torch, for every run of a sweep
        check_run(cfg)
    from bench.sweep import run_sequential, run_with_launcher

    return run_with_launcher(overrides, hydra, combos) if hydra else run_sequential(combos, configs)


def cmd_sync(args: argparse.Namespace) -> int:
    from bench.tracking import sync

    for run_dir in args.run_dirs:
        r = sync(run_dir, uri=args.uri)
        print(f"{run_dir}: {'new' if r.created else 'its own'} MLflow run {r.run_id}, {r.metrics} metric points and "
              f"{r.artifacts} files uploaded")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from bench.evaluate import evaluate_run

    evaluate_run(args.run, args.overrides, args.perturb)
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench.leaderboard import leaderboard

    include = frozenset(name for name in ("dirty", "incomplete", "unhealthy") if getattr(args, f"include_{name}"))
    print(leaderboard(args.table, fmt=args.format, experiment=args.experiment, uri=args.uri, include=include,
                      show_runs=args.show_runs, baseline=args.baseline, resamples=args.resamples))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare import compare

    print(compare(args.run_a, args.run_b, uri=args.uri, resamples=args.resamples, seed=args.seed))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate  # here, not at the top: ~0.1 s that `bench run --cfg` does not need

    from bench.plugins import PluginWarning, get_plugins

    what = args.what
    if what == "plugins":  # the table says it all; and it must work to diagnose a clash
        warnings.simplefilter("ignore", PluginWarning)
    plugins = get_plugins(strict=what != "plugins")
    if what in ("detectors", "datasets"):
        reg = plugins.detectors if what == "detectors" else plugins.datasets
        rows = [[e.name, e.description, e.dist] for e in reg.entries()]
        print(tabulate(rows, headers=["name", "description", "provided by"]))
    elif what == "protocols":
        from bench.compose import compose_config, group_options

        providers = {n.name: n.dist for n in plugins.configs if n.group == "protocol"}
        rows = []
        for name in group_options("protocol"):
            p = compose_config("config", [f"protocol={name}"]).protocol
            rows.append([name, p.version, p.description, providers.get(name, "forgerybench")])
        print(tabulate(rows, headers=["name", "version", "description", "provided by"]))
    elif what == "plugins":
        from bench.plugins import DISABLE_ENV, plugin_rows

        print(tabulate(plugin_rows(plugins), headers=["distribution", "version", "registers", "status"],
                       maxcolwidths=[None, None, 60, 70]))
        if plugins.disabled:
            print(f"\n{DISABLE_ENV}={plugins.disabled}: " + ("external plugins are not loaded" if plugins.disabled.lower()
                  in ("1", "true", "yes", "all") else "the distributions named there are not loaded"))
    elif what == "tables":
        from bench.leaderboard import list_tables

        print(list_tables())
    return 0


def _prepare_config(overrides: list[str]):
    from bench.compose import compose_config

    # `dataset=ffpp` reads naturally but `dataset` is also a config group: route it to prepare.dataset
    return compose_config("prepare", [f"prepare.{o}" if o.split("=", 1)[0] == "dataset" else o for o in overrides])


def cmd_prepare(args: argparse.Namespace) -> int:
    from bench.prepare import run_prepare

    cfg = _prepare_config(args.overrides)
    if args.cfg:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(cfg, resolve=True))
        return 0
    return run_prepare(cfg)


def cmd_data(args: argparse.Namespace) -> int:
    if args.action == "verify":
        from bench.data_verify import run_verify

        names = [o for o in args.overrides if "=" not in o]
        if len(names) != 1:
            raise BenchError("which dataset? bench data verify DATASET [overrides...]", key="dataset")
        overrides = [o for o in args.overrides if "=" in o]
        return run_verify(_prepare_config([f"dataset={names[0]}", *overrides]), names[0])
    from bench.data_status import data_status

    print(data_status(_prepare_config(args.overrides)))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from bench.predict import run_predict

    return run_predict(args)


def cmd_new(args: argparse.Namespace) -> int:
    from bench.scaffold import new_plugin

    target = new_plugin(args.kind, args.name, args.dir, args.description)
    print(f"wrote {target}\nnext: pip install -e '{target}[test]' && pytest {target} && bench list plugins")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="ForgeryBench: cross-domain benchmarking of face-forgery detectors.")
    parser.add_argument("-p", dest="plugins", action="append", default=[], metavar="MODULE",
                        help="load an importable module as a plugin (repeatable; like BENCH_PLUGINS=MODULE)")
    parser.set_defaults(func=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="train, select on validation, evaluate on the test sets (default protocol: demo)")
    p.add_argument("-m", "--multirun", action="store_true", help="sweep over comma-separated override values")
    p.add_argument("--cfg", action="store_true", help="print the resolved config(s) and exit")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. detector=moa_clip trainer.epochs=3")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sync", help="upload finished run folders to MLflow (after a tracking failure); idempotent")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--uri", default=None, help="MLflow tracking URI (default: the one the run was started with)")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("evaluate", help="re-evaluate a finished run's selected checkpoint on other or perturbed test sets")
    p.add_argument("run", metavar="RUN", help="a run folder, or an MLflow run id (looked up in tracking.uri)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. protocol=ff_to_all tracking.uri=... (before --perturb)")
    p.add_argument("--perturb", nargs="+", default=[], metavar="KIND=LEVELS",
                   help="jpeg=QUALITY,..  blur=SIGMA,..  resize=FACTOR,..: one extra evaluation per level")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("leaderboard", help="render a results table from the MLflow runs")
    p.add_argument("--table", required=True, help="table name (bench list tables)")
    p.add_argument("--format", default="github", choices=["github", "latex", "csv"])
    p.add_argument("--experiment", default=None, help="MLflow experiment(s) to read, comma-separated (default: the table's)")
    p.add_argument("--uri", default="sqlite:///mlflow.db", help="MLflow tracking URI (default: %(default)s)")
    p.add_argument("--show-runs", action="store_true", help="list every run used (and left out) below the table")
    for name, what in (("dirty", "runs from a modified work tree"), ("incomplete", "smoke / interrupted runs"),
                       ("unhealthy", "diverged or constant-score runs")):
        p.add_argument(f"--include-{name}", action="store_true", help=f"show {what} as their own, marked rows")
    p.add_argument("--baseline", default=None, metavar="DETECTOR",
                   help="mark cells that differ significantly from this detector's default row (paired video bootstrap)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for --baseline (default: %(default)s)")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("compare", help="ΔAUC of two runs per test set: DeLong's test and a paired video bootstrap")
    p.add_argument("run_a", metavar="RUN_A", help="a run folder or an MLflow run id (or its first characters)")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--uri", default="sqlite:///mlflow.db", help="MLflow tracking URI (default: %(default)s)")
    p.add_argument("--resamples", type=int, default=1000, help="paired bootstrap resamples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("list", help="list detectors, datasets, protocols, plugins or tables")
    p.add_argument("what", nargs="?", default="detectors", choices=["detectors", "datasets", "protocols", "plugins", "tables"])
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("prepare", help="turn a video dataset into cached face crops and a manifest")
    p.add_argument("--cfg", action="store_true", help="print the resolved config and exit")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. dataset=ffpp datasets.ffpp.root=/data/ff")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("predict", help="probability of fake for images, folders and videos, with a trained run")
    p.add_argument("paths", nargs="+", metavar="PATH", help="images, videos or folders of them")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="a run folder (holding config.yaml and best.pt) or an MLflow run id")
    which.add_argument("--checkpoint", help="a checkpoint file (best.pt) with the run's config.yaml beside it")
    p.add_argument("--format", default="table", choices=["table", "csv", "json"])
    p.add_argument("--per-frame", action="store_true", help="one row per frame instead of per input (table, csv)")
    p.add_argument("--frames", type=int, default=32, help="evenly spaced frames per video (default: %(default)s)")
    p.add_argument("--face-detector", default="haar", help="a registered face detector (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: %(default)s)")
    p.add_argument("--uri", default="sqlite:///mlflow.db", help="MLflow URI to look a run id up in (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("data", help="status: per dataset and split, what is listed, on disk and prepared; "
                                    "verify DATASET: decode every image / crop")
    p.add_argument("action", nargs="?", choices=["status", "verify"], default="status")
    p.add_argument("overrides", nargs="*", help="verify: the dataset name first; then Hydra overrides")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("new", help="write a plugin package skeleton (a detector or a dataset) that passes its own test")
    p.add_argument("kind", choices=["detector", "dataset"])
    p.add_argument("name", help="registry name, e.g. srm_cnn (lowercase, digits, _)")
    p.add_argument("--dir", default=".", help="where to write bench-<name>/ (default: the working directory)")
    p.add_argument("--description", default=None, help="one line for `bench list`")
    p.set_defaults(func=cmd_new)
    return parser


def _one_line_warnings() -> None:
    """ForgeryBench's own warnings print as `bench: warning: ...`, without Python's file and source line."""
    default = warnings.formatwarning

    def fmt(message, category, filename, lineno, line=None):  # noqa: ANN001 - warnings' own signature
        if issubclass(category, BenchWarning):
            return f"bench: warning: {message}\n"
        return default(message, category, filename, lineno, line)

    warnings.formatwarning = fmt
    warnings.filterwarnings("ignore", module="hydra")


def _error(message: str) -> None:
    from bench.errors import report_rank_error

    if not report_rank_error(f"bench: error: {message}"):
        print(f"bench: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.func is None:
        args = parser.parse_args([*argv, "run"])  # `bench` alone (or `bench -p x`) runs the demo
    if args.plugins:
        from bench.plugins import LOCAL_ENV

        os.environ[LOCAL_ENV] = ",".join(filter(None, [os.environ.get(LOCAL_ENV, ""), *args.plugins]))
    _one_line_warnings()
    try:
        return args.func(args)
    except BrokenPipeError:  # `bench ... | head` closed the pipe: stop quietly, as a killed-by-SIGPIPE tool would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        if isinstance(err, _user_errors()):
            from bench.compose import friendly_error

            _error(friendly_error(err))
            return 2
        first = next((line for line in str(err).splitlines() if line.strip()), "")
        _error(f"unexpected {type(err).__name__}{': ' + first if first else ''} (set {DEBUG_ENV}=1 for the traceback)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
