"""The benchmark scripts still run (tiny settings, CPU): they are tools, not timed tests, so only their output is checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *args: str) -> str:
    res = subprocess.run([sys.executable, str(BENCHMARKS / name), *args], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def test_moa_gpu_benchmark_smoke_mode_prints_its_ratios():
    out = run_script("moa_gpu.py", "--smoke")
    assert "inference frozen CLIP tower" in out and "ratio inference time MoA-CLIP / frozen CLIP tower" in out
    assert "single-adapter fine-tune" in out and "ratio training step time with L_att / without" in out
    assert "DDP 2 CPU processes" in out and "ratio training throughput DDP / one device" in out and "loader, 1 workers" in out


def test_loader_and_ddp_benchmarks_smoke_mode_print_their_ratios():
    out = run_script("loader_speed.py", "--smoke")
    assert "decode JPEG 256x256" in out and "num_workers=1" in out and "images/s per core" in out
    assert "ratio DDP 2-process / 1-process throughput" in run_script("ddp_cpu.py", "--smoke")


def test_crop_loading_benchmark_measures_every_format():
    out = run_script("crop_loading.py", "--images", "16", "--repeat", "1")
    for fmt in ("png", "jpeg q95 (cv2: bench.dataset.load_image)", "raw .npy per crop"):
        assert fmt in out


def test_face_prepare_benchmark_compares_detectors():
    out = run_script("face_prepare.py", "--smoke")
    assert "| haar | largest |" in out and "| haar | best |" in out


def test_prepare_speed_benchmark_prints_stages_ratio_quality_and_projections():
    out = run_script("prepare_speed.py", "--smoke")
    for stage in ("| decode |", "| detect |", "| encode |", "| **whole path** |"):
        assert stage in out
    assert "speed-up of the whole path (after / before, same run)" in out and "unwanted non-reference" in out
    assert "crop quality, after: the drawn face in 8 of 8 frames" in out  # the smoke clip's face is found every time
    assert "FF++ c23" in out and "4-node cluster" in out


def test_bootstrap_memory_benchmark_reports_both_resampling_modes():
    out = run_script("bootstrap_memory.py", "--scores", "4000", "--resamples", "20")
    assert "4,000 scores" in out and out.count("\nframes") == 1 and out.count("\nvideos") == 1


def test_startup_benchmark_prints_the_ratio_to_importing_torch():
    out = run_script("startup.py", "--smoke")
    assert "bench list" in out and "ratio" in out


def test_clip_cache_benchmark_smoke_mode_prints_its_ratio():
    out = run_script("clip_cache.py", "--smoke")
    assert "ratio cached epoch (2..2) / uncached epoch" in out


def test_data_threads_benchmark_smoke_mode_prints_its_ratio():
    out = run_script("data_threads.py", "--smoke", "--no-busy")
    assert "ratio single-threaded / multi-threaded" in out


def test_moa_losses_benchmark_smoke_mode_reports_terms_and_shares():
    out = run_script("moa_losses.py", "--smoke", "--settings", "paper", "defaults")
    for line in ("[paper]", "[defaults]", "init: cls", "after 2 steps: cls", "val AUC", "spread of f/|f|"):
        assert line in out
