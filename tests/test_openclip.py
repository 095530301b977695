"""bench.openclip: tiny towers on CPU, weight resolution (tag / file / random), key checks, preprocessing."""

from __future__ import annotations

import time
import warnings

import open_clip
import pytest
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from torch import nn

from bench.errors import BenchError
from bench.openclip import TINY_ARCH, BackboneConfig, build_image_tower, freeze, resblocks


def tiny(**kw) -> BackboneConfig:
    return BackboneConfig(arch=TINY_ARCH, pretrained=kw.pop("pretrained", None), **kw)


def test_tiny_tower_builds_fast_and_embeds():
    start = time.perf_counter()
    tower = build_image_tower(tiny())
    assert time.perf_counter() - start < 1.0
    x = torch.randn(3, 3, tower.image_size, tower.image_size)
    assert tower.visual(x).shape == (3, tower.embed_dim)
    assert tower.weights == "random"
    assert (tower.mean, tower.std) == (tuple(OPENAI_DATASET_MEAN), tuple(OPENAI_DATASET_STD))


def test_block_structure_matches_docstring():
    tower = build_image_tower(tiny())
    blocks = tower.blocks
    assert blocks is resblocks(tower.visual) and len(blocks) == 2
    block = blocks[0]
    assert isinstance(block.attn, nn.MultiheadAttention) and block.attn.batch_first
    assert {"ln_1", "attn", "ls_1", "ln_2", "mlp", "ls_2"} <= {n for n, _ in block.named_children()}
    assert block.attn.embed_dim == tower.width
    assert isinstance(block.mlp.gelu, open_clip.transformer.QuickGELU)  # OpenAI's activation for random init


def test_freeze_stops_gradients_and_sets_eval():
    tower = build_image_tower(tiny())
    freeze(tower.visual)
    assert not tower.visual.training
    assert all(not p.requires_grad for p in tower.visual.parameters())


def test_unknown_arch_and_tag_fail_naming_key(tmp_path):
    with pytest.raises(BenchError, match="unknown open_clip arch") as e:
        build_image_tower(BackboneConfig(arch="ViT-Nope-1", pretrained=None))
    assert e.value.key == "detector.backbone.arch"
    with pytest.raises(BenchError, match="neither a pretrained tag") as e:
        build_image_tower(BackboneConfig(arch="ViT-B-32", pretrained=str(tmp_path / "missing.pt")))
    assert e.value.key == "detector.backbone.pretrained"


def test_offline_tag_asks_for_a_local_file(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no internet")

    monkeypatch.setattr(open_clip.pretrained, "download_pretrained", offline)
    with pytest.raises(BenchError) as e:
        build_image_tower(BackboneConfig(arch="ViT-B-32", pretrained="openai"), key="detector.backbone")
    assert "detector.backbone.pretrained=/path/to/file" in str(e.value)
    assert "no internet" in str(e.value)


def test_tag_takes_its_own_preprocessing_and_activation(monkeypatch, tmp_path):
    """A tag's pretrained config decides mean/std/QuickGELU (here a fake tag for the tiny arch, no network)."""
    src = build_image_tower(tiny(quick_gelu=False))
    path = tmp_path / "tag.pt"
    torch.save(src.visual.state_dict(), path)
    tag_cfg = {"hf_hub": "org/repo/", "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "quick_gelu": False}
    fake_table = {"faketag": tag_cfg}
    monkeypatch.setattr(open_clip.pretrained, "get_pretrained_cfg", lambda arch, tag: fake_table.get(tag, {}))
    monkeypatch.setattr(open_clip.pretrained, "download_pretrained", lambda cfg, **kw: str(path))
    tower = build_image_tower(tiny(pretrained="faketag"))
    assert tower.weights == "faketag"
    assert (tower.mean, tower.std) == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert isinstance(tower.blocks[0].mlp.gelu, nn.GELU)
    x = torch.randn(2, 3, tower.image_size, tower.image_size)
    torch.testing.assert_close(tower.visual(x), src.visual(x))


@pytest.mark.parametrize("layout", ["tower", "full_clip"])
def test_local_checkpoint_round_trips(tmp_path, layout):
    torch.manual_seed(0)
    src = build_image_tower(tiny())
    state = src.visual.state_dict()
    if layout == "full_clip":  # open_clip's CLIP layout: visual.* plus a text tower, wrapped in "state_dict"
        text = {"token_embedding.weight": torch.zeros(4, 8)}
        state = {"state_dict": {**{f"visual.{k}": v for k, v in state.items()}, **text}}
    path = tmp_path / "tower.pt"
    torch.save(state, path)
    torch.manual_seed(1)
    tower = build_image_tower(tiny(pretrained=str(path)))
    assert tower.weights == str(path)
    for (name, a), b in zip(src.visual.state_dict().items(), tower.visual.state_dict().values()):
        assert torch.equal(a, b), name


def test_raw_path_gets_explicit_preprocessing(tmp_path):
    """A file carries no preprocessing: OpenAI CLIP's by default, the config's when set."""
    path = tmp_path / "tower.pt"
    torch.save(build_image_tower(tiny()).visual.state_dict(), path)
    tower = build_image_tower(tiny(pretrained=str(path)))
    assert (tower.mean, tower.std) == (tuple(OPENAI_DATASET_MEAN), tuple(OPENAI_DATASET_STD))
    custom = build_image_tower(tiny(pretrained=str(path), mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6)))
    assert (custom.mean, custom.std) == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))


def test_bad_checkpoint_names_missing_and_unexpected_keys(tmp_path):
    state = build_image_tower(tiny()).visual.state_dict()
    state.pop("ln_post.weight")
    state["adapter.bogus"] = torch.zeros(3)
    state["conv1.weight"] = torch.zeros(5, 3, 8, 8)  # wrong width
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(BenchError) as e:
        build_image_tower(tiny(pretrained=str(path)))
    msg = str(e.value)
    assert "missing keys 1 (ln_post.weight)" in msg
    assert "unexpected keys 1 (adapter.bogus)" in msg
    assert "shape mismatches 1 (conv1.weight)" in msg
    assert e.value.key == "detector.backbone.pretrained"


def test_unreadable_file_is_a_bench_error(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(BenchError, match="cannot read checkpoint"):
        build_image_tower(tiny(pretrained=str(path)))


# ---- OpenAI TorchScript archives and files that are no checkpoint ---------------------------------------------------

class _OpenAIStyleCLIP(nn.Module):
    """CLIP's key layout as OpenAI's `ViT-*.pt` archives hold it: `visual.*` beside a text tower and plain attributes."""

    def __init__(self, visual: nn.Module) -> None:
        super().__init__()
        self.visual = visual
        self.token_embedding = nn.Embedding(10, 8)
        self.logit_scale = nn.Parameter(torch.ones([]))
        self.register_buffer("attn_mask", torch.ones(4, 4))
        self.input_resolution = 64  # an int attribute, as in OpenAI's archives: not a tensor, not loaded

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.visual(images) * self.logit_scale


def test_openai_torchscript_archive_loads_without_running_its_code(tmp_path, monkeypatch):
    torch.manual_seed(0)
    src = build_image_tower(tiny())
    clip = _OpenAIStyleCLIP(src.visual).eval().half()  # OpenAI ships fp16 weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about the tower's Python control flow
        archive = torch.jit.trace(clip, torch.randn(1, 3, 64, 64).half(), check_trace=False)
    path = tmp_path / "ViT-Tiny.pt"
    archive.save(str(path))
    with pytest.raises(RuntimeError, match="TorchScript"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.load(path, weights_only=True)  # what open_clip's weights-only loader meets

    def refuse(*args, **kwargs):
        raise AssertionError("torch.jit.load runs the archive's code; the reader must not call it")

    monkeypatch.setattr(torch.jit, "load", refuse)
    tower = build_image_tower(tiny(pretrained=str(path)))
    for (name, expected), got in zip(src.visual.state_dict().items(), tower.visual.state_dict().values()):
        assert got.dtype == torch.float32 and torch.equal(got, expected.half().float()), name


def test_torchscript_reader_refuses_other_globals(tmp_path):
    import pickle
    import zipfile

    from bench.torchscript import state_dict_from_torchscript

    path = tmp_path / "evil.pt"
    payload = pickle.dumps(_Boom())  # a GLOBAL that is neither a module record nor a tensor
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", payload)
        z.writestr("evil/constants.pkl", pickle.dumps(()))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        state_dict_from_torchscript(str(path))
    pickled = tmp_path / "pickled.pt"
    torch.save({"visual.proj": torch.zeros(2), "extra": _Boom()}, pickled)  # a torch.save file with an object
    for bad in (path, pickled):
        with pytest.raises(BenchError, match="objects other than tensors") as err:
            build_image_tower(tiny(pretrained=str(bad)))
        assert "\n" not in str(err.value) and err.value.key == "detector.backbone.pretrained"


@pytest.mark.parametrize("content", [b"\x65" * 64, b"not a checkpoint", b"PK\x03\x04 broken zip"])
def test_a_file_that_is_no_checkpoint_is_one_clear_line(tmp_path, content):
    path = tmp_path / "weights.pt"
    path.write_bytes(content)
    with pytest.raises(BenchError, match="not a weights file") as err:
        build_image_tower(tiny(pretrained=str(path)))
    msg = str(err.value)
    assert "\n" not in msg and "KeyError: 101" not in msg and "OpenAI TorchScript" in msg


class _Boom:
    def __reduce__(self):
        return (print, ("this must never run",))

