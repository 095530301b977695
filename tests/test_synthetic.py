"""The embedded synthetic benchmark: determinism, caching, split layout, and that each forgery family leaves
the artifact its docstring promises."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict

import numpy as np
import pytest
from omegaconf import OmegaConf

from bench import synthetic_ops as ops
from bench.dataset import SPLITS
from bench.datasets.synthetic import SplitSizes, Strengths, Synthetic, SyntheticConfig
from bench.errors import BenchError
from bench.records import FAKE, REAL, REAL_DOMAIN


def tiny_config(**overrides) -> SyntheticConfig:
    base = dict(image_size=32, frames_per_video=3, fake_videos=SplitSizes(train=2, val=1, test=2),
                real_videos=SplitSizes(train=3, val=2, test=1), photo_fraction=0.5)
    return SyntheticConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Synthetic:
    return Synthetic(tiny_config(), tmp_path_factory.mktemp("cache"))


def stack(ds: Synthetic, split: str) -> np.ndarray:
    return np.stack([s.array for s in ds.samples(split)])


def sources(n: int, size: int = 64, noise: float = 4 / 255) -> list[np.ndarray]:
    """Real-like frames (procedural and photo crops, with camera noise) for the family-level checks."""
    rng = np.random.default_rng(123)
    out = []
    for i in range(n):
        img = ops.procedural_scene(rng, size) if i % 2 else ops.photo_crop(rng, size, "train")
        out.append(np.clip(img + noise * rng.standard_normal(img.shape), 0, 1).astype(np.float32))
    return out


# ---- determinism and cache ----------------------------------------------------------------------------------------


def test_same_seed_same_pixels_other_seed_other_pixels(tiny, tmp_path):
    again = Synthetic(tiny_config(), tmp_path / "a")
    other = Synthetic(tiny_config(seed=1), tmp_path / "b")
    for split in SPLITS:
        np.testing.assert_array_equal(stack(tiny, split), stack(again, split))
        assert [s.key for s in tiny.samples(split)] == [s.key for s in again.samples(split)]
        assert not np.array_equal(stack(tiny, split), stack(other, split))


def test_second_construction_loads_the_cache(tmp_path, monkeypatch):
    first = Synthetic(tiny_config(), tmp_path)
    pixels = stack(first, "val")
    path = first.cache_path("val")
    assert path.is_file() and not list(path.parent.glob("*.tmp"))  # written atomically, no temp file left
    mtime = path.stat().st_mtime_ns

    def no_generation(self, split):
        raise AssertionError("the cached split was regenerated")

    monkeypatch.setattr(Synthetic, "_generate", no_generation)
    second = Synthetic(tiny_config(), tmp_path)
    np.testing.assert_array_equal(stack(second, "val"), pixels)
    assert path.stat().st_mtime_ns == mtime


def test_cache_key_covers_the_config(tmp_path):
    base = Synthetic(tiny_config(), tmp_path)
    changed = [tiny_config(seed=5), tiny_config(image_size=40), tiny_config(frames_per_video=2),
               tiny_config(fake_videos=SplitSizes(train=2, val=1, test=3)), tiny_config(strength=Strengths(warp=0.5))]
    paths = {Synthetic(c, tmp_path).cache_path("test") for c in changed}
    assert base.cache_path("test") not in paths and len(paths) == len(changed)
    # neither the name nor the (unused) root changes pixels, so neither changes the key
    assert Synthetic(tiny_config(root="/elsewhere"), tmp_path).cache_path("test") == base.cache_path("test")


def test_omegaconf_node_is_accepted_like_the_dataclass(tiny, tmp_path):
    node = OmegaConf.structured(tiny_config())
    from_node = Synthetic(node, tmp_path)
    assert isinstance(from_node.cfg, SyntheticConfig)
    assert from_node.cache_path("train").name == tiny.cache_path("train").name
    assert from_node.cache_path("train").parent.name == tiny.cache_path("train").parent.name


@pytest.mark.parametrize("key, value", [("image_size", 36), ("frames_per_video", 0), ("photo_fraction", 1.5),
                                        ("final_jpeg", (90, 80)), ("strength", Strengths(blend=3.0))])
def test_invalid_config_names_its_key(tmp_path, key, value):
    with pytest.raises(BenchError) as err:
        Synthetic(tiny_config(**{key: value}), tmp_path)
    assert err.value.key.startswith(f"datasets.synthetic.{key}")


# ---- layout ---------------------------------------------------------------------------------------------------------


def test_counts_per_split_domain_and_label(tiny):
    cfg = tiny.cfg
    assert tiny.domains() == list(ops.FAMILIES) and len(tiny.domains()) >= 5
    for split in SPLITS:
        samples = tiny.samples(split)
        videos = defaultdict(set)
        for s in samples:
            assert s.dataset == "synthetic" and s.split == split
            assert s.label == (REAL if s.domain == REAL_DOMAIN else FAKE)
            assert s.array.shape == (cfg.image_size, cfg.image_size, 3) and s.array.dtype == np.uint8
            videos[s.domain].add(s.video)
        assert len(videos[REAL_DOMAIN]) == getattr(cfg.real_videos, split)
        for family in tiny.domains():
            assert len(videos[family]) == getattr(cfg.fake_videos, split)
        n_videos = getattr(cfg.real_videos, split) + len(tiny.domains()) * getattr(cfg.fake_videos, split)
        assert len(samples) == n_videos * cfg.frames_per_video


def test_video_keys_unique_frames_grouped_and_splits_disjoint(tiny):
    seen: dict[str, str] = {}
    for split in SPLITS:
        frames = defaultdict(list)
        for s in tiny.samples(split):
            frames[s.video].append(s.frame)
            assert s.video == f"synthetic/{s.domain}/{split}_{s.video.rsplit('_', 1)[1]}"
        assert all(f == list(range(tiny.cfg.frames_per_video)) for f in frames.values())
        assert len({s.key for s in tiny.samples(split)}) == len(tiny.samples(split))
        for video in frames:
            assert seen.setdefault(video, split) == split, f"{video} is in two splits"


def test_frames_of_a_video_are_similar_but_not_identical(tiny):
    by_video = defaultdict(list)
    for s in tiny.samples("train"):
        by_video[s.video].append(s.array.astype(np.float32))
    within = np.mean([np.abs(f[0] - f[1]).mean() for f in by_video.values()])
    firsts = [f[0] for f in by_video.values()]
    across = np.mean([np.abs(a - b).mean() for a, b in zip(firsts, firsts[1:])])
    assert 0 < within < across / 2


def test_photo_regions_of_the_splits_do_not_overlap():
    regions = list(ops.SPLIT_REGIONS.values())
    for i, (ay0, ay1, ax0, ax1) in enumerate(regions):
        for by0, by1, bx0, bx1 in regions[i + 1:]:
            assert min(ay1, by1) <= max(ay0, by0) or min(ax1, bx1) <= max(ax0, bx0)


def test_every_family_has_a_strength_knob():
    assert {f.name for f in dataclasses.fields(Strengths)} == set(ops.FAMILIES)


# ---- the artifacts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", list(ops.FAMILIES))
def test_family_changes_pixels_only_under_its_mask(family):
    local = family in ("blend", "warp")
    for i, img in enumerate(sources(4)):
        out, mask = ops.FAMILIES[family](img, np.random.default_rng(i), 1.0)
        assert out.shape == img.shape and out.dtype == np.float32 and mask.shape == img.shape[:2]
        diff = np.abs(out - img).max(-1)
        assert diff[mask > 0].mean() > 2 / 255
        if local:
            assert 0.05 < (mask > 0).mean() < 0.9
            assert diff[mask == 0].max() < 1e-6  # untouched outside the blended / warped region
        else:
            assert (mask == 1).all()


@pytest.mark.parametrize("family", list(ops.FAMILIES))
def test_artifact_grows_with_strength(family):
    def change(strength: float) -> float:
        return float(np.mean([np.abs(ops.FAMILIES[family](img, np.random.default_rng(i), strength)[0] - img).mean()
                              for i, img in enumerate(sources(6))]))

    assert change(0.5) < change(2.0)


def nyquist_peak(img: np.ndarray) -> float:
    """Spectral magnitude at the three period-2 frequencies, relative to the median of the upper half-band."""
    spec = np.abs(np.fft.fft2(img.mean(-1) - img.mean()))
    h, w = spec.shape
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    peak = (spec[h // 2, 0] + spec[0, w // 2] + spec[h // 2, w // 2]) / 3
    return float(peak / np.median(spec[f > 0.25]))


def test_gan_upsample_adds_periodic_spectral_peaks():
    imgs = sources(8)
    fakes = [ops.gan_upsample(img, np.random.default_rng(i), 1.0)[0] for i, img in enumerate(imgs)]
    real_peaks, fake_peaks = [nyquist_peak(x) for x in imgs], [nyquist_peak(x) for x in fakes]
    assert np.mean(fake_peaks) > 5 * np.mean(real_peaks)
    assert sum(f > r for f, r in zip(fake_peaks, real_peaks)) >= 7


def test_diffusion_keeps_the_low_band_and_weakens_the_high_band():
    for i, img in enumerate(sources(6)):
        out, _ = ops.diffusion(img, np.random.default_rng(i), 1.0)
        low_change = np.abs(ops.blur(out, 3.0) - ops.blur(img, 3.0)).mean()
        high_in, high_out = img - ops.blur(img, 1.0), out - ops.blur(out, 1.0)
        assert low_change < 0.25 * np.abs(high_out - high_in).mean()
        assert high_out.std() < high_in.std()  # re-synthesised with less energy than the camera frame had


def test_double_jpeg_loses_more_than_the_final_save():
    for i, img in enumerate(sources(6)):
        out, _ = ops.double_jpeg(img, np.random.default_rng(i), 1.0)
        assert np.abs(out - img).mean() > np.abs(ops.jpeg(img, 95) - img).mean()
        assert np.abs(ops.jpeg(out, 90) - img).mean() > np.abs(ops.jpeg(img, 90) - img).mean()


def test_blend_mismatches_colour_inside_the_mask():
    for i, img in enumerate(sources(6)):
        out, mask = ops.blend(img, np.random.default_rng(i), 1.0)
        inside = mask > 0.99
        assert np.abs(out[inside].mean(0) - img[inside].mean(0)).max() > 1 / 255


def test_generated_fakes_differ_from_real_in_the_documented_way(tmp_path):
    """End to end (after the final JPEG): gan_upsample frames carry stronger period-2 peaks than real frames."""
    ds = Synthetic(SyntheticConfig(fake_videos=SplitSizes(test=6), real_videos=SplitSizes(test=6),
                                   frames_per_video=2, image_size=64), tmp_path)
    peaks = defaultdict(list)
    for s in ds.samples("test"):
        peaks[s.domain].append(nyquist_peak(s.array.astype(np.float32) / 255))
    assert np.mean(peaks["gan_upsample"]) > 4 * np.mean(peaks[REAL_DOMAIN])
    assert Counter(s.domain for s in ds.samples("test"))[REAL_DOMAIN] == 12
