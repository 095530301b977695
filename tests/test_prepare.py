"""`bench prepare`: frames -> face crops -> manifest, resuming, failure reporting, `bench data status`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from bench.dataset import DatasetConfig, VideoDatasetAdapter, VideoRecord, load_image
from bench.errors import BenchError
from bench.crops import DONE, source_dir, variant, video_dir
from bench.faces import crop_box, largest, square_crop
from bench.faces.haar import HaarConfig, HaarFaceDetector
from bench.plugins import load_plugins
from bench.data_status import data_status
from bench.manifest import DECODE_ERROR, NO_FACE, OK, manifest_path, prepared_samples
from bench.prepare import PrepareConfig, prepare_dataset, run_prepare
from bench.records import REAL_DOMAIN
from bench.video import even_indices, write_video

# Hand-annotated on skimage.data.astronaut() (512 x 512): the face from brow to chin, and eye/mouth centres.
ASTRONAUT_FACE = (180, 75, 272, 172)
ASTRONAUT_LANDMARKS = ((202, 100), (247, 102), (222, 145))
CLIP = 192  # fixture frames are the astronaut photo scaled to CLIP x CLIP
FRAMES = 8


def astronaut_frames(n: int = FRAMES) -> list[np.ndarray]:
    from skimage import data

    base = cv2.resize(data.astronaut(), (CLIP, CLIP), interpolation=cv2.INTER_AREA).astype(np.int16)
    return [np.clip(base + 4 * i, 0, 255).astype(np.uint8) for i in range(n)]  # frames differ, face stays put


def blank_frames(n: int = FRAMES) -> list[np.ndarray]:
    ramp = np.linspace(40, 200, CLIP, dtype=np.uint8)
    return [np.stack([np.tile(ramp, (CLIP, 1))] * 3, axis=-1) for _ in range(n)]  # a smooth gradient: no face


def scaled(box, f: float = CLIP / 512):
    return tuple(round(v * f) for v in box)


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


class ClipFolder(VideoDatasetAdapter):
    """Test adapter: `<root>/<split>/<domain>/<file>`; every file is listed, video or not."""

    name = "clips"

    def videos(self, split: str) -> list[VideoRecord]:
        folder = self.root / split
        files = sorted(p for p in folder.glob("*/*") if p.is_file()) if folder.is_dir() else []
        return [VideoRecord(dataset=self.name, split=split, domain=p.parent.name, label=int(p.parent.name != REAL_DOMAIN),
                            video=f"clips/{p.parent.name}/{p.stem}", path=str(p)) for p in files]

    def domains(self) -> list[str]:
        return ["fake"]


def make_tree(root: Path) -> Path:
    for rel, frames in {"train/real/alice.mp4": astronaut_frames(), "train/fake/bob.mp4": astronaut_frames()[::-1],
                        "val/real/wall.mp4": blank_frames(), "test/real/carol.mp4": astronaut_frames(6)}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / rel, frames, gop=4)
    good = (root / "train/real/alice.mp4").read_bytes()
    (root / "test/fake").mkdir(parents=True)
    (root / "test/fake/truncated.mp4").write_bytes(good[: len(good) // 2])
    (root / "test/fake/empty.mp4").write_bytes(b"")
    (root / "test/fake/readme.mp4").write_text("this is not a video\n" * 20)
    return root


@pytest.fixture
def adapter(tmp_path) -> ClipFolder:
    return ClipFolder(DatasetConfig(name="clips", root=str(make_tree(tmp_path / "data"))), tmp_path / "cache" / "clips")


def config(**kw) -> PrepareConfig:
    return PrepareConfig(**{"frames": {"train": 4, "val": 3, "test": 4}, "workers": 1, "progress": False, **kw})


def manifest(adapter: ClipFolder) -> pd.DataFrame:
    return pd.read_parquet(manifest_path(adapter))


def test_haar_finds_the_astronaut_at_fixture_size() -> None:
    face = largest(HaarFaceDetector(HaarConfig()).detect(astronaut_frames(1)[0]))
    assert face is not None and iou(face.box, scaled(ASTRONAUT_FACE)) > 0.5 and face.score > 0.5
    assert largest(HaarFaceDetector(HaarConfig()).detect(blank_frames(1)[0])) is None


def test_crop_box_is_square_scaled_and_inside_the_frame() -> None:
    assert crop_box((40, 40, 60, 80), 1.5, 200, 200) == (20, 30, 80, 90)  # 1.5 x the longer side (40), same centre
    assert crop_box((0, 0, 20, 20), 2.0, 200, 100) == (0, 0, 40, 40)  # shifted inside at the corner, not padded
    x0, y0, x1, y1 = crop_box((10, 10, 90, 90), 1.5, 100, 100)  # 120 > frame: centred, padded
    assert (x1 - x0, y1 - y0) == (120, 120) and (x0, y0) == (-10, -10)
    frame = np.full((100, 100, 3), 255, np.uint8)
    crop = square_crop(frame, (x0, y0, x1, y1), 60)
    assert crop.shape == (60, 60, 3) and crop[0, 0].max() == 0 and crop[30, 30].min() == 255


def test_prepare_turns_a_face_video_into_face_crops(adapter) -> None:
    summary = prepare_dataset(adapter, config(), HaarFaceDetector)
    m = manifest(adapter)
    alice = m[m.video == "clips/real/alice"]
    assert alice.frame.tolist() == even_indices(FRAMES, 4) and (alice.status == OK).all()
    assert summary.videos == 7 and summary.ok == 4 + 4 + 4
    for row in alice.itertuples():
        face = (row.face_x0, row.face_y0, row.face_x1, row.face_y1)
        assert iou(face, scaled(ASTRONAUT_FACE)) > 0.5
        x0, y0, x1, y1 = crop_box(face, 1.3, CLIP, CLIP)
        assert all(x0 <= x < x1 and y0 <= y < y1 for x, y in map(scaled, ASTRONAUT_LANDMARKS))
    samples = [s for s in prepared_samples(adapter, "train") if s.video == "clips/real/alice"]
    assert [s.frame for s in samples] == even_indices(FRAMES, 4) and {s.label for s in samples} == {0}
    for s in samples:
        crop = load_image(s)
        assert crop.shape == (256, 256, 3)
        face = largest(HaarFaceDetector(HaarConfig()).detect(crop))  # the face is found again, filling the crop
        assert face is not None and (face.box[2] - face.box[0]) > 256 / 2


def test_no_face_and_corrupt_inputs_are_reported_while_the_rest_is_prepared(adapter, caplog) -> None:
    summary = prepare_dataset(adapter, config(), HaarFaceDetector)
    m = manifest(adapter)
    wall = m[m.video == "clips/real/wall"]
    assert wall.frame.tolist() == even_indices(FRAMES, 3) and (wall.status == NO_FACE).all() and wall.crop.isna().all()
    broken = m[m.domain == "fake"].query("split == 'test'")
    assert sorted(broken.video) == ["clips/fake/empty", "clips/fake/readme", "clips/fake/truncated"]
    assert (broken.status == DECODE_ERROR).all() and (broken.frame == -1).all() and (broken.error.str.len() > 0).all()
    assert (m[m.video == "clips/real/carol"].status == OK).sum() == 4  # the good video of that split is prepared
    assert summary.frames[NO_FACE] == 3 and len(summary.unreadable) == 3
    reasons = dict(zip(broken.video, broken.error))  # each failure says what is wrong with the file
    assert reasons["clips/fake/empty"] == "empty file (0 bytes)"
    assert reasons["clips/fake/readme"].startswith("not a video: no known container signature")
    assert reasons["clips/fake/truncated"].startswith("truncated")
    assert "clips/fake/empty: empty file (0 bytes)" in summary.render()
    with caplog.at_level(logging.WARNING, logger="bench.manifest"):
        test = prepared_samples(adapter, "test")
        val = prepared_samples(adapter, "val")
    assert {s.video for s in test} == {"clips/real/carol"} and val == []
    assert "test: 4 prepared frames; not samples: 3 unreadable videos" in caplog.text
    assert "val: 0 prepared frames; not samples: no_face 3 frames" in caplog.text


def test_resume_skips_finished_videos_and_redoes_unfinished_ones(adapter, monkeypatch) -> None:
    prepare_dataset(adapter, config(), HaarFaceDetector)
    first = manifest(adapter)
    # Simulate a run killed while cropping `bob`: its done marker is missing and a temporary file is left over.
    bob_path = str(adapter.root / "train/fake/bob.mp4")
    bob = adapter.cache_dir / "crops" / variant(config()) / source_dir(bob_path) / video_dir("clips/fake/bob")
    (bob / DONE).unlink()
    (bob / ".000000.jpg.123.tmp").write_bytes(b"half a jpeg")
    redone = []
    import bench.workers as workers

    real = workers.prepare_video
    monkeypatch.setattr(workers, "prepare_video", lambda job, *a, **k: redone.append(job.record.video) or real(job, *a, **k))
    summary = prepare_dataset(adapter, config(), HaarFaceDetector)
    assert redone == ["clips/fake/bob"] and summary.reused == summary.videos - 1
    assert not list(adapter.cache_dir.rglob("*.tmp"))
    pd.testing.assert_frame_equal(manifest(adapter), first)
    # A changed video file, or another frame count, invalidates its results.
    os.utime(adapter.root / "train/real/alice.mp4", ns=(1, 1))
    redone.clear()
    prepare_dataset(adapter, config(frames={"train": 4, "val": 5, "test": 4}), HaarFaceDetector)
    assert sorted(redone) == ["clips/real/alice", "clips/real/wall"]
    assert len(manifest(adapter).query("video == 'clips/real/wall'")) == 5


def test_preparing_one_split_keeps_the_others(adapter) -> None:
    prepare_dataset(adapter, config(splits=["train"]), HaarFaceDetector)
    with pytest.raises(BenchError, match=r"no prepared 'test' split.*prepare.splits=\[test\]"):
        prepared_samples(adapter, "test")
    prepare_dataset(adapter, config(splits=["test"]), HaarFaceDetector)
    assert set(manifest(adapter).split) == {"train", "test"}
    assert len(prepared_samples(adapter, "train")) == 8


def test_two_workers_give_the_same_manifest(tmp_path, adapter) -> None:
    prepare_dataset(adapter, config(), HaarFaceDetector)
    other = ClipFolder(adapter.cfg, tmp_path / "cache2" / "clips")
    prepare_dataset(other, config(workers=2), HaarFaceDetector)
    a, b = manifest(adapter), manifest(other)
    assert (a.crop.dropna().map(lambda c: (adapter.cache_dir / c).read_bytes())
            == b.crop.dropna().map(lambda c: (other.cache_dir / c).read_bytes())).all()
    pd.testing.assert_frame_equal(a, b)


def test_never_prepared_names_the_command_and_cache(adapter) -> None:
    with pytest.raises(BenchError, match=r"bench prepare dataset=clips.*BENCH_CACHE") as err:
        prepared_samples(adapter, "train")
    assert err.value.key == "paths.cache"


def test_video_dirs_are_distinct_and_inside_the_cache() -> None:
    keys = ["ffpp/Deepfakes/000_003", "ffpp/Face2Face/000_003", "a/b c", "a/b_c", "x/../y", "x/..", "x/_"]
    dirs = [video_dir(k) for k in keys]
    assert len(set(dirs)) == len(keys) and all(".." not in d.parts for d in dirs)
    assert dirs[0] == Path("ffpp/Deepfakes/000_003")


@pytest.fixture
def plugins(monkeypatch):
    import bench.plugins

    plugins = load_plugins(external=False)
    plugins.datasets.add("clips", ClipFolder, dist="tests")
    monkeypatch.setattr(bench.plugins, "get_plugins", lambda: plugins)
    return plugins


def cli_config(tmp_path: Path, root: Path | None, **prepare) -> OmegaConf:
    return OmegaConf.create({
        "prepare": OmegaConf.structured(config(**{"dataset": "clips", **prepare})),
        "paths": {"cache": str(tmp_path / "cache")},
        "datasets": {"clips": OmegaConf.structured(DatasetConfig(name="clips", root=str(root) if root else None))},
    })


def test_run_prepare_exit_codes(tmp_path, adapter, plugins, capsys) -> None:
    assert run_prepare(cli_config(tmp_path, adapter.root)) == 0
    assert "7 videos" in capsys.readouterr().out
    broken = tmp_path / "broken"
    (broken / "test/fake").mkdir(parents=True)
    (broken / "test/fake/empty.mp4").write_bytes(b"")
    assert run_prepare(cli_config(tmp_path, broken)) == 1  # everything failed
    with pytest.raises(BenchError, match="datasets.clips.root"):
        run_prepare(cli_config(tmp_path, None))


def test_data_status(tmp_path, adapter, plugins) -> None:
    from bench.data_status import status_frame

    cfg = cli_config(tmp_path, adapter.root, dataset=None)
    text = data_status(cfg)
    assert "clips" in text and str(adapter.root) in text and "not prepared" in text
    assert "synthetic" in text and "diff" in text  # image and generated datasets are shown too
    run_prepare(cli_config(tmp_path, adapter.root, splits=["train", "test"]))
    rows = status_frame(cli_config(tmp_path, adapter.root)).set_index("split")
    assert rows.loc["train", "listed"] == "2 videos" and rows.loc["train", "on disk"] == 2
    assert rows.loc["train", "by label"] == "real 1, fake 1" and rows.loc["train", "by domain"] == "fake 1, real 1"
    assert rows.loc["train", "frames ok"] == 8 and "3 unreadable videos" in rows.loc["test", "failed"]
    assert rows.loc["val", "frames ok"] == "not prepared"
    unset = status_frame(cli_config(tmp_path, None))
    assert "has no root configured: set datasets.clips.root" in unset.root[0]  # the real error, not "(missing)"


def test_trial_run_prepares_a_few_videos_per_split_over_domains(tmp_path, adapter, plugins, caplog) -> None:
    summary = prepare_dataset(adapter, config(splits=["test"], max_videos=2), HaarFaceDetector)
    m = manifest(adapter)
    assert summary.videos == 2 and m.video.nunique() == 2 and set(m.domain) == {"real", "fake"}
    with caplog.at_level(logging.WARNING, logger="bench.manifest"):
        prepared_samples(adapter, "test")
    assert "trial preparation (prepare.max_videos=2)" in caplog.text
    from bench.data_status import status_frame

    rows = status_frame(cli_config(tmp_path, adapter.root)).set_index("split")
    assert "trial: 2 videos" in str(rows.loc["test", "frames ok"])


def test_cache_is_keyed_by_root(tmp_path, adapter) -> None:
    import shutil

    prepare_dataset(adapter, config(splits=["train"]), HaarFaceDetector)
    copy = tmp_path / "copy"
    shutil.copytree(adapter.root, copy)
    other = ClipFolder(DatasetConfig(name="clips", root=str(copy)), adapter.cache_dir)  # same cache folder
    summary = prepare_dataset(other, config(splits=["train"]), HaarFaceDetector)
    assert summary.reused == 0 and manifest_path(other) != manifest_path(adapter)  # nothing shared with the first root
    assert set(manifest(other).video_path.map(lambda p: Path(p).parent.parent.parent)) == {copy}
    assert len(prepared_samples(adapter, "train")) == len(prepared_samples(other, "train")) == 8


def test_crops_of_another_face_choice_version_or_setting_never_mix(monkeypatch) -> None:
    import bench.crops

    base = variant(PrepareConfig())
    assert variant(PrepareConfig(detect_every=4)) != base and variant(PrepareConfig(selection="best")) != base
    monkeypatch.setattr(bench.crops, "FACES_VERSION", bench.crops.FACES_VERSION + 1)  # a change that moves crops
    assert variant(PrepareConfig()) != base


def test_data_verify_marks_bad_crops_in_the_manifest(tmp_path, adapter, plugins, capsys) -> None:
    from bench.data_verify import run_verify

    run_prepare(cli_config(tmp_path, adapter.root, splits=["train"]))
    cfg = cli_config(tmp_path, adapter.root, splits=["train"])
    assert run_verify(cfg, "clips") == 0
    crops = sorted((tmp_path / "cache/clips/crops").rglob("*.jpg"))
    crops[0].write_bytes(crops[0].read_bytes()[:3000])  # truncated: libjpeg only warns
    crops[1].unlink()  # deleted
    crops[2].write_text("not a jpeg")
    capsys.readouterr()
    assert run_verify(cfg, "clips") == 1
    out = capsys.readouterr().out
    assert "3 failed" in out and "truncated" in out and "missing" in out and "not an image file" in out
    from bench.data_verify import BAD_CROP

    m = pd.read_parquet(next((tmp_path / "cache/clips/manifests").glob("*.parquet")))
    assert (m.status == BAD_CROP).sum() == 3 and len(prepared_samples(ClipFolder(adapter.cfg, tmp_path / "cache/clips"), "train")) == 5


def test_prepare_cfg_prints_the_config(capsys) -> None:
    from bench.cli import main

    assert main(["prepare", "--cfg", "dataset=ffpp", "prepare.max_videos=3"]) == 0
    out = capsys.readouterr().out
    assert "dataset: ffpp" in out and "max_videos: 3" in out and "selection: track" in out
