"""An example ForgeryBench plugin, living entirely outside the ForgeryBench repository: a detector, a dataset whose
root comes from an environment variable, a protocol on that dataset and a leaderboard table.

Installing this distribution is all it takes: its entry point (group `bench`) points at this module, whose hooks
register everything; `bench list plugins` names the distribution. This module is imported by every `bench`
command, so it stays light: classes are named by "module:Class" strings (imported when a run uses them) and the
config classes live in a torch-free module (`config.py`).
"""

from __future__ import annotations

import bench


@bench.hookimpl
def bench_register_detectors(register) -> None:
    register("toy_color", "bench_toy_plugin.model:ToyColor", "example plugin detector: colour and high-pass statistics + MLP",
             config="bench_toy_plugin.config:ToyColorConfig")


@bench.hookimpl
def bench_register_datasets(register) -> None:
    register("toy_faces", "bench_toy_plugin.data:ToyFaces", "example plugin dataset: images listed in labels.csv",
             config="bench_toy_plugin.config:ToyFacesConfig")


@bench.hookimpl
def bench_register_configs(store) -> None:
    from bench.config import ProtocolConfig, SplitSpec

    store("protocol", "toy_blend_only", ProtocolConfig(
        name="toy_blend_only", version=1, scale="tiny",
        description="example plugin protocol: train on the synthetic blend family, test on warp",
        train=SplitSpec(dataset="synthetic", split="train", domains=["blend"]),
        test={"warp": SplitSpec(dataset="synthetic", domains=["warp"])}))
    store("protocol", "toy_faces_cross", ProtocolConfig(
        name="toy_faces_cross", version=1, scale="tiny",
        description="example plugin protocol: train on toy_faces' swap fakes, test on its reenact fakes",
        train=SplitSpec(dataset="toy_faces", split="train", domains=["swap"]),
        test={"swap": SplitSpec(dataset="toy_faces", domains=["swap"]),
              "reenact": SplitSpec(dataset="toy_faces", domains=["reenact"])}))


@bench.hookimpl
def bench_register_tables(register) -> None:
    register("toy_table", "bench_toy_plugin.tables:TOY_TABLE")
