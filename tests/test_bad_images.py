"""Bad images never reach a batch silently: truncated, corrupt, empty, text and missing files are named, and
`data.on_bad_image=skip` leaves them out with counts in the metrics and the results table."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.dataset import UnreadableImage, check_image, decode_file
from bench.records import Sample
from cli_tools import assert_one_line_error, record, run_folders
from dataset_trees import make_diff


def _image_bytes(fmt: str, size: int = 64) -> bytes:
    rng = np.random.default_rng(0)
    pixels = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


JPEG, PNG = _image_bytes("JPEG"), _image_bytes("PNG")
BAD = {
    "truncated_jpeg_tail": (".jpg", JPEG[:-2], "cannot be decoded"),  # only the end-of-image marker is gone
    "truncated_jpeg_half": (".jpg", JPEG[: len(JPEG) // 2], "cannot be decoded"),
    "truncated_png": (".png", PNG[: len(PNG) // 2], "cannot be decoded"),
    "corrupt_jpeg": (".jpg", JPEG[:20] + bytes(range(256)) * 4, "not an image file"),
    "text_named_jpg": (".jpg", b"this is not an image\n", "not an image file"),
    "empty": (".jpg", b"", "is empty"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_check_image_names_the_file_and_the_problem(tmp_path, name):
    suffix, data, needle = BAD[name]
    path = tmp_path / f"{name}{suffix}"
    path.write_bytes(data)
    problem = check_image(path)
    assert problem is not None and str(path) in problem and needle in problem
    with pytest.raises(UnreadableImage, match=name):
        decode_file(path)


def test_good_images_pass_including_a_jpeg_with_trailing_data(tmp_path):
    for name, data in (("a.jpg", JPEG), ("b.png", PNG), ("c.jpg", JPEG + b"\0" * 300 + b"trailer")):
        (tmp_path / name).write_bytes(data)
        assert check_image(tmp_path / name) is None
        assert decode_file(tmp_path / name).shape == (64, 64, 3)
    assert "is missing" in check_image(tmp_path / "missing.jpg")


@pytest.fixture
def diff_tree(tmp_path) -> list[str]:
    tree = make_diff(tmp_path / "diff")
    return ["run", "protocol=diff_t2i", *tree.overrides, "scale=tiny", "trainer.epochs=1", "trainer.bootstrap=20",
            "trainer.progress=false", "tracking.enabled=false", f"paths.output={tmp_path / 'out'}"]


def _first(root: Path, split: str, folder: str) -> Path:
    return sorted((root / split / folder).rglob("*.jpg"))[0]


@pytest.mark.parametrize("workers", [0, 1])  # from a loader worker the message arrives whole too
def test_a_truncated_training_crop_stops_the_run_naming_it(diff_tree, tmp_path, capsys, workers):
    crop = _first(tmp_path / "diff", "train", "T2I")
    crop.write_bytes(crop.read_bytes()[:-200])
    code = main([*diff_tree, f"trainer.num_workers={workers}"])
    assert_one_line_error(code, capsys.readouterr().err, str(crop), "data.on_bad_image=skip")
    [folder] = run_folders(tmp_path / "out")
    assert record(folder)["status"] == "FAILED"


def test_skip_leaves_bad_files_out_and_counts_them(diff_tree, tmp_path, capsys):
    crop = _first(tmp_path / "diff", "train", "T2I")
    crop.write_bytes(crop.read_bytes()[:-200])
    _first(tmp_path / "diff", "test", "Fe").write_text("a text file named .jpg in a test split\n")
    assert main([*diff_tree, "data.on_bad_image=skip"]) == 0
    out = capsys.readouterr().out
    assert "unreadable (skipped)" in out  # the results table shows the counts
    [folder] = run_folders(tmp_path / "out")
    metrics = {}
    for line in (folder / "metrics.jsonl").read_text().splitlines():
        metrics.update(json.loads(line)["metrics"])
    assert metrics["epoch/unreadable_images"] == 1 and metrics["FE/unreadable_images"] == 1
    assert metrics["T2I/unreadable_images"] == 0
    results = json.loads((folder / "results.json").read_text())
    assert results["FE"]["n_frames"] == 7 and results["T2I"]["n_frames"] == 8  # 8 listed, one left out
    assert "unreadable (skipped)" in (folder / "results.md").read_text()


def test_a_listed_file_that_is_gone_fails_before_training(diff_tree, tmp_path, monkeypatch, capsys):
    from bench.datasets.diff import DiFF

    real_samples = DiFF.samples
    gone = [str(tmp_path / "diff" / "train" / f"gone{i}.jpg") for i in range(7)]

    def with_deleted_crops(self, split):  # as a manifest still listing crops deleted since `bench prepare`
        listed = real_samples(self, split)
        domain = self.expand_domains(["t2i"])[0]  # a generator of the subset trained on (DiFF domains are generators)
        extra = [Sample("diff", split, domain, 1, f"diff/t2i/gone{i}", 0, path=p) for i, p in enumerate(gone)] if split == "train" else []
        return listed + extra

    monkeypatch.setattr(DiFF, "samples", with_deleted_crops)
    code = main(diff_tree)
    line = assert_one_line_error(code, capsys.readouterr().err, "7 of", "listed image files are missing", gone[0])
    assert "and 2 more" in line
    assert not run_folders(tmp_path / "out")  # refused before the run folder exists
