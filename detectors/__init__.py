"""Built-in detectors. They register through the same hook as any third-party plugin."""

from bench.hookspecs import hookimpl


@hookimpl
def bench_register_detectors(register) -> None:
    register("dummy", "bench.detectors.dummy:Dummy", "tiny CNN for tests and the default demo")
    register("clip_probe", "bench.detectors.clip_probe:ClipProbe", "frozen open_clip image tower + linear head")
