"""`bench predict` on a fixture video and images with a tiny run trained by `bench run` in the test."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from dataset_trees import clip_bytes, face_frames
from test_cli import SMALL


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    assert main(["run", *SMALL, "tracking.enabled=false", f"paths.output={out}"]) == 0
    return next(out.rglob("best.pt")).parent


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    video = tmp_path / "clip.mp4"
    video.write_bytes(clip_bytes(frames=8, size=128))
    face = tmp_path / "faces" / "face.png"
    face.parent.mkdir()
    cv2.imwrite(str(face), cv2.cvtColor(face_frames(1, 192)[0], cv2.COLOR_RGB2BGR))
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((96, 96, 3), 128, np.uint8))
    return {"video": video, "face": face, "wall": wall, "folder": face.parent}


def test_predict_scores_a_video_and_an_image(run_dir, inputs, capsys) -> None:
    assert main(["predict", str(inputs["video"]), str(inputs["folder"]), "--run", str(run_dir), "--format", "json",
                 "--frames", "4", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    video, image = out["inputs"]
    assert video["kind"] == "video" and video["frames"] == 4 and video["faces"] == 4
    assert image["kind"] == "image" and image["path"].endswith("face.png") and image["faces"] == 1
    frames = [f for f in out["frames"] if f["path"] == video["path"]]
    assert [f["frame"] for f in frames] == [0, 2, 5, 7] and all(0 <= f["p_fake"] <= 1 for f in frames)
    assert video["p_fake"] == pytest.approx(np.mean([f["p_fake"] for f in frames]))  # a video = the mean of its frames
    assert all(f["face"] and f["face_score"] > 0 for f in out["frames"])


def test_predict_table_csv_checkpoint_and_no_face(run_dir, inputs, capsys) -> None:
    assert main(["predict", str(inputs["face"]), str(inputs["wall"]), "--checkpoint", str(run_dir / "best.pt"),
                 "--format", "csv", "--no-progress"]) == 0
    captured = capsys.readouterr()
    rows = pd.read_csv(pd.io.common.StringIO(captured.out))
    assert list(rows.path.map(lambda p: Path(p).name)) == ["face.png", "wall.png"]
    assert 0 <= rows.p_fake[0] <= 1 and np.isnan(rows.p_fake[1]) and rows.note[1] == "no face found"
    assert "wall.png: no face found" in captured.err
    assert main(["predict", str(inputs["video"]), "--run", str(run_dir), "--per-frame", "--frames", "3",
                 "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "p_fake" in table and table.count("clip.mp4") == 3
    assert main(["predict", str(inputs["wall"]), "--run", str(run_dir), "--no-progress"]) == 2  # nothing scored
    assert "bench: error: no face was found in any input" in capsys.readouterr().err
    uri = f"sqlite:///{inputs['folder'].parent / 'mlflow.db'}"
    assert main(["predict", str(inputs["face"]), "--run", str(run_dir.parent / "nope"), "--uri", uri]) == 2
    assert "neither a run folder nor an MLflow run id" in capsys.readouterr().err
