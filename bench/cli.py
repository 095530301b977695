"""`bench` command line: a small argparse dispatcher; everything after the subcommand is Hydra overrides.

    bench run [-m] [--cfg] [overrides...]     train + select on val + evaluate (default: protocol=demo)
    bench leaderboard --table NAME [--format github|latex|csv] [--experiment NAME] [--uri URI]
    bench list [detectors|datasets|protocols|plugins|tables]
    bench prepare dataset=NAME [overrides...]   videos -> face crops + manifest
    bench data [status] [overrides...]          roots, videos found, prepared frames
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

    combos = list(expand_sweep(args.overrides)) if args.multirun else [args.overrides]
    if not args.multirun:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        if any(o.is_sweep_override() for o in OverridesParser.create().parse_overrides(args.overrides)):
            raise BenchError("a sweep override (a,b) needs -m/--multirun: bench run -m ...")
    configs = [compose_run(c) for c in combos]  # compose all first: a typo fails before any training
    if args.cfg:
        for cfg in configs:
            print(OmegaConf.to_yaml(cfg, resolve=True))
        return 0
    from bench.runner import run

    failures = []
    for i, cfg in enumerate(configs):
        if len(configs) > 1:
            print(f"\n=== run {i + 1}/{len(configs)}: {' '.join(combos[i])}")
        try:
            run(cfg)
        except BenchError as err:
            if len(configs) == 1:
                raise
            print(f"bench: error: {err}", file=sys.stderr)
            failures.append(" ".join(combos[i]))
    if failures:
        print(f"bench: {len(failures)} of {len(configs)} runs failed: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench.leaderboard import leaderboard

    print(leaderboard(args.table, fmt=args.format, experiment=args.experiment, uri=args.uri))
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

    return run_prepare(_prepare_config(args.overrides))


def cmd_data(args: argparse.Namespace) -> int:
    from bench.data_status import data_status

    print(data_status(_prepare_config(args.overrides)))
    return 0


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

    p = sub.add_parser("leaderboard", help="render a results table from the MLflow runs")
    p.add_argument("--table", required=True, help="table name (bench list tables)")
    p.add_argument("--format", default="github", choices=["github", "latex", "csv"])
    p.add_argument("--experiment", default=None, help="MLflow experiment(s) to read, comma-separated (default: the table's)")
    p.add_argument("--uri", default="sqlite:///mlflow.db", help="MLflow tracking URI (default: %(default)s)")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("list", help="list detectors, datasets, protocols, plugins or tables")
    p.add_argument("what", nargs="?", default="detectors", choices=["detectors", "datasets", "protocols", "plugins", "tables"])
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("prepare", help="turn a video dataset into cached face crops and a manifest")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. dataset=ffpp datasets.ffpp.root=/data/ff")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("data", help="per dataset: root, videos found vs expected, prepared frames")
    p.add_argument("status", nargs="?", choices=["status"], default="status")
    p.add_argument("overrides", nargs="*")
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
