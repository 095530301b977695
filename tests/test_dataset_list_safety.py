"""Dataset adapters and untrusted list files: entries stay inside the dataset's root, and the sources and masks the
leakage guard and face selection rely on (fixture trees of tests/dataset_trees.py)."""

from __future__ import annotations

import json

import pytest

from bench.datasets.celebdf import CelebDFv2
from bench.datasets.deepfakebench import DeepfakeBench
from bench.datasets.dfd import DFD
from bench.datasets.dfdc import DFDC
from bench.datasets.dfdcp import DFDCP
from bench.datasets.ffpp import FFpp
from bench.errors import BenchError
from tests.dataset_trees import clip_bytes, make_celebdf, make_deepfakebench, make_dfd, make_dfdc, make_dfdcp, make_ffpp
from tests.test_dataset_adapters import _no_env_roots, build  # noqa: F401 (_no_env_roots: the autouse fixture)

# ---- list entries stay inside the root, sources for the leakage guard ---------------------------------------------
def test_celebdf_list_entry_outside_the_root_is_refused(tmp_path):
    tree = make_celebdf(tmp_path / "cdf", video=False)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret.mp4").write_bytes(clip_bytes())
    lst = tree.root / "List_of_testing_videos.txt"
    lst.write_text(lst.read_text() + "1 Celeb-real/../../outside/secret.mp4\n")
    n = len(lst.read_text().splitlines())
    with pytest.raises(BenchError, match=rf"List_of_testing_videos.txt line {n}: .*outside the dataset root") as err:
        build(CelebDFv2, tmp_path, root=str(tree.root)).videos("test")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd"])
def test_dfdc_labels_and_metadata_entries_outside_the_root_are_refused(tmp_path, name):
    tree = make_dfdc(tmp_path / "dfdc", test=(1, 1), parts=[(1, 1)], video=False)
    labels = tree.root / "test/labels.csv"
    labels.write_text(labels.read_text() + f"{name},1\n")
    with pytest.raises(BenchError, match=r"labels.csv line 4: .*(outside the dataset root|absolute path)"):
        build(DFDC, tmp_path, root=str(tree.root)).videos("test")
    part = tree.root / "dfdc_train_part_0"
    meta = json.loads((part / "metadata.json").read_text())
    meta[name] = {"label": "REAL"}
    (part / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BenchError, match=r"metadata.json entry .*(outside the dataset root|absolute path)"):
        build(DFDC, tmp_path, root=str(tree.root), val_fraction=0.0).videos("train")


@pytest.mark.parametrize("entry", ["original_videos/../../../secret.mp4", "/etc/passwd.mp4"])
def test_dfdcp_index_entries_outside_the_root_are_refused(tmp_path, entry):
    tree = make_dfdcp(tmp_path / "dfdcp", video=False)
    index = json.loads((tree.root / "dataset.json").read_text())
    index[entry] = {"label": "real", "set": "test"}
    (tree.root / "dataset.json").write_text(json.dumps(index))
    with pytest.raises(BenchError, match=r"dataset.json entry .*(outside the dataset root|absolute path)"):
        build(DFDCP, tmp_path, root=str(tree.root)).videos("test")


def test_deepfakebench_frames_outside_the_root_need_the_option(tmp_path):
    tree = make_deepfakebench(tmp_path / "dfb", videos=(1, 1, 1), frames=1, image=False)
    json_file = tree.root / "dataset_json/FaceForensics++.json"
    data = json.loads(json_file.read_text())
    video = data["FaceForensics++"]["FF-DF"]["test"]["c23"]
    name = next(iter(video))
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(b"")
    for frame, match in (("../../elsewhere.png", "outside the dataset root"), (str(outside), "absolute path")):
        video[name]["frames"] = [frame]
        json_file.write_text(json.dumps(data))
        with pytest.raises(BenchError, match=match) as err:
            build(DeepfakeBench, tmp_path, root=str(tree.root), json_file=str(json_file)).samples("test")
        assert f"FF-DF/test/{name}" in str(err.value)
    allowed = build(DeepfakeBench, tmp_path, root=str(tree.root), json_file=str(json_file), allow_absolute=True)
    assert str(outside) in {s.path for s in allowed.samples("test")}


def test_ffpp_split_ids_cannot_name_paths(tmp_path):
    tree = make_ffpp(tmp_path / "ff", video=False)
    test = json.loads((tree.root / "splits/test.json").read_text())
    (tree.root / "splits/test.json").write_text(json.dumps([["../../x", test[0][1]]]))
    with pytest.raises(BenchError, match="letters and digits"):
        build(FFpp, tmp_path, root=str(tree.root)).check()


@pytest.mark.parametrize("keep", [False, True])
def test_celebdf_keeps_test_sources_out_of_training(tmp_path, keep):
    tree = make_celebdf(tmp_path / "cdf", identities=3, clips=3, video=False)
    lst = tree.root / "List_of_testing_videos.txt"
    lst.write_text(lst.read_text() + "0 Celeb-synthesis/id0_id1_0000.mp4\n")  # a fake of id0_0000, which trains
    cdf = build(CelebDFv2, tmp_path, root=str(tree.root), keep_test_sources=keep)
    test_sources = {r.source for r in cdf.videos("test")}
    assert {"id0_0000", "id0_0002"} <= test_sources  # a fake's source is the real clip it alters
    rest = cdf.videos("train") + cdf.videos("val")
    leaked = {r.video for r in rest if r.source in test_sources}
    if keep:  # the documented switch: e.g. the real id0_0000 and the fake id0_id2... of it train
        assert "celebdf_v2/Celeb-real/id0_0000" in leaked
    else:
        assert not leaked and len(rest) == sum(tree.expected["train+val"].values()) - 2  # the fake, and its real clip


def test_ffpp_and_dfd_fakes_carry_their_mask_videos(tmp_path):
    ff = make_ffpp(tmp_path / "ff", video=False)
    stem = json.loads((ff.root / "splits/test.json").read_text())[0]
    mask = ff.root / "manipulated_sequences/Deepfakes/masks/videos" / f"{stem[0]}_{stem[1]}.mp4"
    mask.parent.mkdir(parents=True)
    mask.write_bytes(b"")
    records = build(FFpp, tmp_path, root=str(ff.root)).videos("test")
    assert {r.video: r.mask for r in records if r.mask} == {f"ffpp/Deepfakes/{stem[0]}_{stem[1]}": str(mask)}
    assert not any(r.mask for r in build(FFpp, tmp_path, root=str(ff.root), masks=False).videos("test"))
    dfd = make_dfd(tmp_path / "dfd", video=False)
    fake = next((dfd.root / "manipulated_sequences/DeepFakeDetection/c23/videos").iterdir())
    dmask = dfd.root / "manipulated_sequences/DeepFakeDetection/masks/videos" / fake.name
    dmask.parent.mkdir(parents=True)
    dmask.write_bytes(b"")
    assert [r.mask for r in build(DFD, tmp_path, root=str(dfd.root)).videos("test") if r.mask] == [str(dmask)]
