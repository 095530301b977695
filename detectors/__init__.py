"""Built-in detectors. They register through the same hook as any third-party plugin.

Each names its config class in `detectors/configs.py` (torch-free), so composing a config never imports a model file.
"""

from bench.hookspecs import hookimpl

CONFIGS = "bench.detectors.configs"


@hookimpl
def bench_register_detectors(register) -> None:
    register("dummy", "bench.detectors.dummy:Dummy", "tiny CNN for tests and the default demo (not a published model)",
             config=f"{CONFIGS}:DummyConfig")
    register("clip_probe", "bench.detectors.clip_probe:ClipProbe", "frozen open_clip image tower + linear head",
             config=f"{CONFIGS}:ClipProbeConfig")
    register("clip_ft", "bench.detectors.clip_ft:ClipFt",
             "CLIP ViT fine-tuned end to end + linear head (DeepfakeBench's `clip`)", config=f"{CONFIGS}:ClipFtConfig")
    register("xception", "bench.detectors.xception:Xception",
             "Xception fine-tuned end to end (FF++ / DeepfakeBench baseline)", config=f"{CONFIGS}:XceptionConfig")
    register("f3net", "bench.detectors.f3net:F3Net",
             "F3-Net: FAD + LFS Xception streams fused by MixBlocks (Qian et al., ECCV 2020)", config=f"{CONFIGS}:F3NetConfig")
    register("moa_clip", "bench.detectors.moa_clip:MoAClip",
             "frozen CLIP ViT + dynamic Mixture-of-Adapters (two-phase; MoA-CLIP paper)", config=f"{CONFIGS}:MoAClipConfig")
