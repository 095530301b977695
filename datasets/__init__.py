"""Built-in dataset adapters. They register through the same hook as any third-party plugin."""

from bench.hookspecs import hookimpl


@hookimpl
def bench_register_datasets(register) -> None:
    register("synthetic", "bench.datasets.synthetic:Synthetic", "embedded synthetic forgery benchmark (no data needed)")
    register("ffpp", "bench.datasets.ffpp:FFpp", "FaceForensics++ (official splits; Deepfakes, Face2Face, FaceSwap, NeuralTextures[, FaceShifter])")
    register("dfd", "bench.datasets.dfd:DFD", "DeepFakeDetection (Google/Jigsaw) from the FF++ tree; test-only by default")
    register("celebdf_v1", "bench.datasets.celebdf:CelebDFv1", "Celeb-DF v1 (test = official list; train/val = the rest)")
    register("celebdf_v2", "bench.datasets.celebdf:CelebDFv2", "Celeb-DF v2 (test = official list; train/val = the rest)")
    register("dfdc", "bench.datasets.dfdc:DFDC", "DFDC full release (test set labels.csv; optional training parts)")
    register("dfdcp", "bench.datasets.dfdcp:DFDCP", "DFDC-Preview (original_videos, method_A, method_B; dataset.json sets)")
    register("diff", "bench.datasets.diff:DiFF", "DiFF diffusion facial forgeries (images; t2i, i2i, fs, fe)")
    register("deepfakebench", "bench.datasets.deepfakebench:DeepfakeBench", "any DeepfakeBench JSON + frames, read directly")
