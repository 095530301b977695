"""Adapters of the real datasets, on fixture trees laid out as published (tests/dataset_trees.py)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bench.dataset import dataset_node
from bench.datasets.celebdf import CelebDFv1, CelebDFv2
from bench.datasets.deepfakebench import DeepfakeBench
from bench.datasets.dfd import DFD
from bench.datasets.dfdc import DFDC
from bench.datasets.dfdcp import DFDCP
from bench.datasets.diff import DiFF
from bench.datasets.ffpp import FFpp
from bench.errors import BenchError, DataRootMissing
from bench.records import FAKE, REAL, REAL_DOMAIN
from tests.dataset_trees import (FFPP_OFFICIAL_PAIRS, clip_bytes, make_celebdf, make_deepfakebench, make_dfd,
                                 make_dfdc, make_dfdcp, make_diff, make_ffpp)

ADAPTERS = [FFpp, DFD, CelebDFv1, CelebDFv2, DFDC, DFDCP, DiFF, DeepfakeBench]
SPLITS = ("train", "val", "test")


@pytest.fixture(autouse=True)
def _no_env_roots(monkeypatch):
    for cls in ADAPTERS:
        monkeypatch.delenv(cls.config_class.root_env, raising=False)
    monkeypatch.delenv("BENCH_FFPP_SPLITS", raising=False)


def build(cls, tmp_path: Path, **cfg):
    """The adapter as the runner builds it: its config schema merged with `datasets.<name>.*` values."""
    node = OmegaConf.merge(dataset_node(cls.config_class, cls.name), {k: v for k, v in cfg.items()})
    return cls(node, tmp_path / "cache")


def listing(adapter, split):
    return adapter.videos(split) if hasattr(adapter, "videos") else adapter.samples(split)


def domain_counts(records) -> Counter:
    return Counter(r.domain for r in records)


# ---- every adapter ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ADAPTERS, ids=lambda c: c.name)
def test_missing_root_names_key_and_env(cls, tmp_path):
    for root in (None, str(tmp_path / "nowhere")):
        adapter = build(cls, tmp_path, root=root)
        with pytest.raises(DataRootMissing) as err:
            listing(adapter, "test")
        assert f"datasets.{cls.name}.root" in str(err.value) and cls.config_class.root_env in str(err.value)
        with pytest.raises(DataRootMissing):
            adapter.check()


@pytest.mark.parametrize("cls", ADAPTERS, ids=lambda c: c.name)
def test_root_defaults_to_its_env_var(cls, tmp_path, monkeypatch):
    assert OmegaConf.to_object(dataset_node(cls.config_class, cls.name)).root is None
    monkeypatch.setenv(cls.config_class.root_env, str(tmp_path))
    node = dataset_node(cls.config_class, cls.name)
    assert node.root == str(tmp_path) and node.name == cls.name
    assert OmegaConf.to_object(node).root == str(tmp_path)
    assert cls(None, tmp_path / "cache").root == tmp_path  # defaults resolved even without Hydra
    others = {c.config_class.root_env for c in ADAPTERS} - {cls.config_class.root_env}
    assert not any(env in OmegaConf.to_yaml(node, resolve=False) for env in others)


def test_unknown_split_is_an_error(tmp_path):
    tree = make_ffpp(tmp_path / "ff", video=False)
    with pytest.raises(BenchError, match="split"):
        build(FFpp, tmp_path, root=str(tree.root), splits_dir=str(tree.root / "splits")).videos("validation")


# ---- FaceForensics++ ------------------------------------------------------------------------------------------------
def test_ffpp_split_sizes_labels_and_keys(tmp_path):
    pairs = (3, 2, 1)
    tree = make_ffpp(tmp_path / "ff", pairs=pairs, video=False)
    ffpp = build(FFpp, tmp_path, root=str(tree.root), splits_dir=str(tree.root / "splits"))
    ffpp.check()
    by_split = {s: ffpp.videos(s) for s in SPLITS}
    for split, p in zip(SPLITS, pairs):
        records = by_split[split]
        assert domain_counts(records) == Counter({REAL_DOMAIN: 2 * p, **{m: 2 * p for m in ffpp.domains()}})
        assert domain_counts(records) == tree.expected[split]
        assert all(r.label == (REAL if r.domain == REAL_DOMAIN else FAKE) and r.split == split for r in records)
        real_ids = {r.source for r in records if r.label == REAL}
        for r in records:  # a fake's source is its target id, a real video of the same split
            stem = Path(r.path).stem
            assert r.source == stem.split("_")[0] and r.source in real_ids
            assert r.video == f"ffpp/{r.domain}/{stem}"
    keys = [r.video for rs in by_split.values() for r in rs]
    assert len(keys) == len(set(keys))
    ids = {s: {i for r in rs for i in Path(r.path).stem.split("_")} for s, rs in by_split.items()}
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    stem = Path(next(r for r in by_split["test"] if r.label == FAKE).path).stem  # e.g. "000_003"
    same = [r.video for r in by_split["test"] if Path(r.path).stem == stem]
    assert len(same) == len(set(same)) == 4


def test_ffpp_official_split_sizes(tmp_path):
    tree = make_ffpp(tmp_path / "ff", pairs=FFPP_OFFICIAL_PAIRS, video=False)
    ffpp = build(FFpp, tmp_path, root=str(tree.root), splits_dir=str(tree.root / "splits"))
    sizes = {s: domain_counts(ffpp.videos(s)) for s in SPLITS}
    assert sizes["test"] == Counter({REAL_DOMAIN: 140, "Deepfakes": 140, "Face2Face": 140, "FaceSwap": 140,
                                     "NeuralTextures": 140})
    assert sizes["train"][REAL_DOMAIN] == 720 and sizes["val"]["FaceSwap"] == 140
    assert sum(c[REAL_DOMAIN] for c in sizes.values()) == 1000


def test_ffpp_needs_only_configured_methods_and_reports_missing_videos(tmp_path):
    tree = make_ffpp(tmp_path / "ff", pairs=(2, 1, 1), methods=("Deepfakes", "FaceShifter"), video=False)
    kw = dict(root=str(tree.root), splits_dir=str(tree.root / "splits"))
    assert domain_counts(build(FFpp, tmp_path, methods=["Deepfakes"], **kw).videos("train")) == \
        Counter({REAL_DOMAIN: 4, "Deepfakes": 4})
    assert domain_counts(build(FFpp, tmp_path, methods=["FaceShifter"], **kw).videos("test"))["FaceShifter"] == 2
    with pytest.raises(BenchError, match="12 of 20 train videos"):  # default methods: 3 of 4 absent, 4 each
        build(FFpp, tmp_path, **kw).videos("train")
    gone = tree.root / "original_sequences/youtube/c23/videos" / f"{json.loads((tree.root / 'splits/test.json').read_text())[0][0]}.mp4"
    gone.unlink()
    with pytest.raises(BenchError, match="1 of 4 test videos") as err:
        build(FFpp, tmp_path, methods=["Deepfakes"], **kw).videos("test")
    assert str(gone) in str(err.value)
    with pytest.raises(BenchError):  # c40 was not downloaded
        build(FFpp, tmp_path, methods=["Deepfakes"], compression="c40", **kw).videos("val")


def test_ffpp_split_files(tmp_path):
    tree = make_ffpp(tmp_path / "ff", video=False, splits_dir=tmp_path / "splits")
    with pytest.raises(BenchError) as err:
        build(FFpp, tmp_path, root=str(tree.root)).check()
    msg = str(err.value)
    assert "datasets.ffpp.splits_dir" in msg and "BENCH_FFPP_SPLITS" in msg and "dataset/splits" in msg
    (tree.root / "splits").mkdir()
    for f in (tmp_path / "splits").iterdir():  # in <root>/splits/, as the repository names the folder, they are found
        f.rename(tree.root / "splits" / f.name)
    assert len(build(FFpp, tmp_path, root=str(tree.root)).videos("test")) == 2 * 5
    for f in (tree.root / "splits").iterdir():  # next to the videos, as some users keep them, too
        f.rename(tree.root / f.name)
    assert len(build(FFpp, tmp_path, root=str(tree.root)).videos("test")) == 2 * 5
    test = json.loads((tree.root / "test.json").read_text())
    (tree.root / "val.json").write_text(json.dumps(test))  # a leak between splits must not pass
    with pytest.raises(BenchError, match="both"):
        build(FFpp, tmp_path, root=str(tree.root)).check()
    (tree.root / "val.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(BenchError, match="pairs"):
        build(FFpp, tmp_path, root=str(tree.root)).check()


@pytest.mark.parametrize("cfg, key", [({"methods": ["DeepFakeDetection"]}, "methods"),
                                      ({"methods": []}, "methods"), ({"compression": "c30"}, "compression")])
def test_ffpp_rejects_bad_config(tmp_path, cfg, key):
    tree = make_ffpp(tmp_path / "ff", video=False)
    with pytest.raises(BenchError) as err:
        build(FFpp, tmp_path, root=str(tree.root), splits_dir=str(tree.root / "splits"), **cfg).check()
    assert err.value.key == f"datasets.ffpp.{key}"


# ---- DFD ------------------------------------------------------------------------------------------------------------
def test_dfd_is_test_only_by_default(tmp_path):
    tree = make_dfd(tmp_path / "ff", actors=4, video=False)
    dfd = build(DFD, tmp_path, root=str(tree.root))
    test = dfd.videos("test")
    assert domain_counts(test) == tree.expected["test"] and not dfd.videos("train") and not dfd.videos("val")
    assert len({r.video for r in test}) == len(test)
    for r in test:
        name = Path(r.path).stem
        actor, scene = name[:2], name.split("__")[1]
        assert r.source == f"{actor}__{scene}" and r.label == (FAKE if r.domain == "DeepFakeDetection" else REAL)
        assert r.video == f"dfd/{r.domain}/{name}"


def test_dfd_actor_split_keeps_actors_apart(tmp_path):
    tree = make_dfd(tmp_path / "ff", actors=12, video=False)
    dfd = build(DFD, tmp_path, root=str(tree.root), test_only=False, val_fraction=0.3, test_fraction=0.3)
    by_split = {s: dfd.videos(s) for s in SPLITS}
    assert sum(len(v) for v in by_split.values()) == sum(tree.expected["test"].values())
    actors = {s: {r.source.split("__")[0] for r in rs} for s, rs in by_split.items()}
    assert all(actors.values())  # 12 actors hashed at 0.4/0.3/0.3 fill every split
    assert not (actors["train"] & actors["val"] or actors["train"] & actors["test"] or actors["val"] & actors["test"])


def test_dfd_unexpected_file_name_fails(tmp_path):
    tree = make_dfd(tmp_path / "ff", video=False)
    (tree.root / "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__scene.mp4").write_bytes(b"")
    with pytest.raises(BenchError, match="01_02__scene.mp4"):
        build(DFD, tmp_path, root=str(tree.root)).videos("test")


# ---- Celeb-DF -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [CelebDFv1, CelebDFv2], ids=lambda c: c.name)
def test_celebdf_test_list_labels_and_rest(cls, tmp_path):
    tree = make_celebdf(tmp_path / "cdf", name=cls.name, identities=4, clips=4, youtube=4, video=False)
    cdf = build(cls, tmp_path, root=str(tree.root), val_fraction=0.5)
    test = cdf.videos("test")
    assert domain_counts(test) == tree.expected["test"]
    lines = (tree.root / "List_of_testing_videos.txt").read_text().splitlines()
    listed = {rel: int(label) for label, rel in (line.split() for line in lines)}
    for r in test:  # the list says 1 = real, 0 = fake; ours is the opposite
        rel = f"{Path(r.path).parent.name}/{Path(r.path).name}"
        assert r.label == 1 - listed[rel] and r.video == f"{cls.name}/{rel[:-4]}"
    rest = {s: cdf.videos(s) for s in ("train", "val")}
    assert domain_counts(rest["train"] + rest["val"]) == tree.expected["train+val"]
    assert all(rest.values())
    paths = {s: {r.path for r in rs} for s, rs in {**rest, "test": test}.items()}
    assert not (paths["train"] & paths["val"] or paths["test"] & (paths["train"] | paths["val"]))
    split_of = {r.video: s for s, rs in rest.items() for r in rs}
    for s, rs in rest.items():  # a fake lands with the real clip it was made from
        for r in rs:
            if r.label == FAKE:
                assert split_of[f"{cls.name}/Celeb-real/{r.source}"] == s


@pytest.mark.parametrize("line", ["1 Celeb-synthesis/id0_id1_0002.mp4", "2 Celeb-real/id0_0002.mp4",
                                  "0 Celeb-real/id0_0002.mp4", "1 Other/x.mp4", "Celeb-real/id0_0002.mp4"])
def test_celebdf_bad_list_line_is_named(tmp_path, line):
    tree = make_celebdf(tmp_path / "cdf", video=False)
    lst = tree.root / "List_of_testing_videos.txt"
    lines = lst.read_text().splitlines()
    lst.write_text("\n".join([lines[0], line, *lines[1:]]) + "\n")
    with pytest.raises(BenchError, match="line 2") as err:
        build(CelebDFv2, tmp_path, root=str(tree.root)).videos("test")
    assert err.value.key == "datasets.celebdf_v2.test_list"


# ---- DFDC and DFDC-Preview ------------------------------------------------------------------------------------------
def test_dfdc_test_set_alone(tmp_path):
    tree = make_dfdc(tmp_path / "dfdc", test=(3, 5), video=False)
    dfdc = build(DFDC, tmp_path, root=str(tree.root))
    test = dfdc.videos("test")
    assert domain_counts(test) == tree.expected["test"]
    with (tree.root / "test/labels.csv").open() as f:
        labels = {row["filename"]: int(row["label"]) for row in csv.DictReader(f)}  # 1 = fake, as ours
    assert {Path(r.path).name: r.label for r in test} == labels
    assert all(Path(r.path).parent.name == "videos" for r in test)
    assert dfdc.videos("train") == [] and dfdc.videos("val") == []  # no training part downloaded


def test_dfdc_training_parts(tmp_path):
    tree = make_dfdc(tmp_path / "dfdc", test=(1, 1), parts=[(4, 8), (3, 3)], videos_subdir=False, video=False)
    dfdc = build(DFDC, tmp_path, root=str(tree.root), val_fraction=0.5)
    rest = {s: dfdc.videos(s) for s in ("train", "val")}
    assert domain_counts(rest["train"] + rest["val"]) == tree.expected["train+val"]
    assert all(rest.values())
    split_of = {Path(r.path).name: s for s, rs in rest.items() for r in rs}
    for part in tree.root.glob("dfdc_train_part_*"):  # a fake lands in the split of the real video it was made from
        for name, info in json.loads((part / "metadata.json").read_text()).items():
            if info["label"] == "FAKE":
                assert split_of[name] == split_of[info["original"]]
    assert len(dfdc.videos("test")) == 2
    (tree.root / "test/labels.csv").unlink()  # training parts alone work too
    assert dfdc.videos("test") == [] and len(dfdc.videos("train") + dfdc.videos("val")) == 4 + 8 + 3 + 3
    for part in tree.root.glob("dfdc_train_part_*"):
        part.rename(tree.root / f"old_{part.name}")
    with pytest.raises(BenchError, match="neither") as err:
        dfdc.videos("test")
    assert err.value.key == "datasets.dfdc.test_labels"


def test_dfdcp_sets_and_domains(tmp_path):
    tree = make_dfdcp(tmp_path / "dfdcp", identities=6, test_identities=2, video=False)
    dfdcp = build(DFDCP, tmp_path, root=str(tree.root), val_fraction=0.5)
    assert dfdcp.domains() == ["method_A", "method_B"]
    test = dfdcp.videos("test")
    assert domain_counts(test) == tree.expected["test"]
    rest = dfdcp.videos("train") + dfdcp.videos("val")
    assert domain_counts(rest) == tree.expected["train+val"]
    index = json.loads((tree.root / "dataset.json").read_text())
    for r in test + rest:
        rel = Path(r.path).relative_to(tree.root.absolute()).as_posix()
        assert (index[rel]["set"] == "test") == (r.split == "test")
        assert r.label == (FAKE if index[rel]["label"] == "fake" else REAL)
        assert r.video == f"dfdcp/{rel[:-4]}"
    assert len({r.video for r in test + rest}) == len(test + rest)


def test_dfdcp_label_folder_mismatch_is_named(tmp_path):
    tree = make_dfdcp(tmp_path / "dfdcp", video=False)
    index = json.loads((tree.root / "dataset.json").read_text())
    rel = next(k for k in index if k.startswith("method_B/"))
    index[rel]["label"] = "real"
    (tree.root / "dataset.json").write_text(json.dumps(index))
    with pytest.raises(BenchError, match=rel):
        build(DFDCP, tmp_path, root=str(tree.root)).videos("test")


# ---- DiFF -----------------------------------------------------------------------------------------------------------
def test_diff_mixed_case_nested_folders(tmp_path):
    tree = make_diff(tmp_path / "diff", per_subset=2, methods=3, image=False)
    diff = build(DiFF, tmp_path, root=str(tree.root), domain_level="subset")  # generator level: test_diff_domains.py
    assert diff.domains() == ["t2i", "i2i", "fs", "fe"]
    for split in SPLITS:
        samples = diff.samples(split)
        assert domain_counts(samples) == tree.expected[split]  # real images included in every split
        for s in samples:
            rel = Path(s.path).relative_to(tree.root.absolute()).as_posix()
            assert s.video == f"diff/{rel}" and s.frame == 0 and s.split == split
            assert s.label == (REAL if s.domain == REAL_DOMAIN else FAKE)
    assert len({s.video for s in diff.samples("test")}) == len(diff.samples("test"))


def test_diff_custom_mapping_and_unknown_folders(tmp_path):
    folders = {"real": "pristine", "t2i": "text2img", "i2i": "I2I", "fs": "FS", "fe": "FE"}
    tree = make_diff(tmp_path / "diff", folders=folders, split_folders=("Train", "Validation", "Test"), image=False)
    with pytest.raises(BenchError, match="pristine"):  # not in the default mapping: an error, never skipped
        build(DiFF, tmp_path, root=str(tree.root)).samples("train")
    subsets = {"pristine": "real", "TEXT2IMG": "t2i", "i2i": "i2i", "fs": "fs", "fe": None}
    diff = build(DiFF, tmp_path, root=str(tree.root), subsets=subsets, domain_level="subset",
                 splits={"train": "train", "val": "validation", "test": "test"})
    assert diff.domains() == ["t2i", "i2i", "fs"]
    assert domain_counts(diff.samples("val")) == Counter({k: v for k, v in tree.expected["val"].items() if k != "fe"})
    with pytest.raises(BenchError, match="split"):
        build(DiFF, tmp_path, root=str(tree.root), subsets=subsets).samples("val")


# ---- DeepfakeBench JSON ---------------------------------------------------------------------------------------------
def test_deepfakebench_json_with_compression_level(tmp_path):
    videos, frames = (3, 1, 2), 3
    tree = make_deepfakebench(tmp_path / "dfb", videos=videos, frames=frames, image=False)
    dfb = DeepfakeBench(OmegaConf.from_dotlist(tree.overrides).datasets.deepfakebench, tmp_path / "cache")
    assert dfb.domains() == ["Deepfakes"]
    for split, n in zip(SPLITS, videos):
        samples = dfb.samples(split)
        assert domain_counts(samples) == Counter({REAL_DOMAIN: n * frames, "Deepfakes": n * frames})
        assert all(s.label == (REAL if s.domain == REAL_DOMAIN else FAKE) for s in samples)
        by_video = {}
        for s in samples:
            by_video.setdefault(s.video, []).append(s.frame)
            assert Path(s.path).is_file()
        assert len(by_video) == 2 * n and all(f == [0, 10, 20] for f in by_video.values())
        assert all(v.startswith("deepfakebench/FaceForensics++/FF-") for v in by_video)


def test_deepfakebench_foreign_paths_without_compression(tmp_path):
    prefix = "/home/someone/DeepfakeBench/datasets/rgb/"
    tree = make_deepfakebench(tmp_path / "dfb", compression=None, dataset="Celeb-DF-v2", path_prefix=prefix,
                              labels=("CelebDFv2_real", "CelebDFv2_fake"), image=False)
    json_file = str(tree.root / "dataset_json/Celeb-DF-v2.json")
    with pytest.raises(BenchError, match="frames"):  # the author's paths do not exist here
        build(DeepfakeBench, tmp_path, root=str(tree.root), json_file=json_file).samples("test")
    dfb = build(DeepfakeBench, tmp_path, root=str(tree.root), json_file=json_file, strip_prefix=prefix)
    assert domain_counts(dfb.samples("test")) == Counter({REAL_DOMAIN: 3, "Celeb-synthesis": 3})


def test_deepfakebench_errors_name_what_to_set(tmp_path):
    tree = make_deepfakebench(tmp_path / "dfb", labels=("FF-real", "My-new-fake"), image=False)
    json_file = str(tree.root / "dataset_json/FaceForensics++.json")
    with pytest.raises(BenchError, match="json_file"):
        build(DeepfakeBench, tmp_path, root=str(tree.root)).samples("test")
    with pytest.raises(BenchError, match="My-new-fake") as err:
        build(DeepfakeBench, tmp_path, root=str(tree.root), json_file=json_file).samples("test")
    assert err.value.key == "datasets.deepfakebench.labels"
    mapped = build(DeepfakeBench, tmp_path, root=str(tree.root), json_file=json_file,
                   labels={"My-new-fake": {"label": 1, "domain": "newfake"}})
    assert mapped.domains() == ["newfake"]
    with pytest.raises(BenchError) as err:
        build(DeepfakeBench, tmp_path, root=str(tree.root), json_file=json_file, compression="c40").samples("test")
    assert err.value.key == "datasets.deepfakebench.compression"
    with pytest.raises(BenchError) as err:
        build(DeepfakeBench, tmp_path, root=str(tree.root), json_file=json_file, dataset="DFDC").samples("test")
    assert err.value.key == "datasets.deepfakebench.dataset"


# ---- the fixture media themselves -----------------------------------------------------------------------------------
def test_fixture_clip_is_h264_with_a_detectable_face(tmp_path):
    import av
    import cv2

    path = tmp_path / "clip.mp4"
    path.write_bytes(clip_bytes())
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (128, 128, 3)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    for frame in (frames[0], frames[-1]):
        assert len(cascade.detectMultiScale(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), 1.1, 5)) == 1
