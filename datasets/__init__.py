"""Built-in dataset adapters. They register through the same hook as any third-party plugin."""

from bench.hookspecs import hookimpl


@hookimpl
def bench_register_datasets(register) -> None:
    register("synthetic", "bench.datasets.synthetic:Synthetic", "embedded synthetic forgery benchmark (no data needed)")
