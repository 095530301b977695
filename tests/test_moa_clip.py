"""MoA-CLIP on a tiny random ViT (CPU): zero-init equivalence, the two training steps, the losses, checkpoints."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock

from bench.detectors.moa_clip import ADAPTERS, ROUTER, MoA, MoABlock, MoAClip, MoAClipConfig, Router
from bench.detectors.moa_losses import attention_alignment_loss, cached_domain_loss, ema_update_, similarity_loss
from bench.errors import BenchError
from bench.openclip import TINY_ARCH, BackboneConfig, build_image_tower
from bench.records import Batch

DOMAINS = ["Deepfakes", "Face2Face", "FaceSwap"]


def tiny_cfg(**kw) -> MoAClipConfig:
    base = MoAClipConfig(backbone=BackboneConfig(arch=TINY_ARCH, pretrained=None))
    return replace(base, **{**MoAClip.config_class.tiny, "backbone": base.backbone, "adapter_dim": 8, **kw})


def make_batch(domains: list[int], seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    b = len(domains)
    return Batch(images=torch.randn(b, 3, 64, 64, generator=g), labels=torch.arange(b) % 2,
                 domains=torch.tensor(domains), index=torch.arange(b))


def build(cfg: MoAClipConfig | None = None, seed: int = 0) -> MoAClip:
    torch.manual_seed(seed)
    return MoAClip(cfg or tiny_cfg(), DOMAINS)


def perturb_up_projections(model: MoAClip, scale: float = 0.05) -> None:
    """Make the adapters non-trivial (they start as zeros)."""
    with torch.no_grad():
        for m in model.moas:
            m.adapters.up_w.normal_(0, scale)


# ---- losses, by hand ----------------------------------------------------------------------------------------

def test_attention_alignment_loss_by_hand():
    attn = torch.rand(4, 3, 3)
    domains = torch.tensor([0, 0, 2, 1])
    means = {0: (attn[0] + attn[1]) / 2, 2: attn[2], 1: attn[3]}
    expected = sum(((means[i] - means[j]) ** 2).sum() for i, j in itertools.combinations(means, 2))
    assert torch.allclose(attention_alignment_loss(attn, domains), expected)
    assert attention_alignment_loss(attn, torch.zeros(4, dtype=torch.long)).item() == 0.0  # one domain: no pairs


def test_cached_domain_loss_and_ema_by_hand():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]])
    domains = torch.tensor([0, 1, 0])
    protos = torch.tensor([[1.0, 0.0], [9.0, 9.0]])
    ready = torch.tensor([True, False])
    # domain 1 has no prototype yet: only samples 0 and 2 count; ||(0,2)||^2 = 4, ||(-1,0)||^2 = 1
    assert cached_domain_loss(f, domains, protos, ready).item() == pytest.approx((4 + 1) / 2)
    ema_update_(protos, ready, f, domains, rate=0.25)
    batch_mean0 = torch.tensor([0.5, 1.0])
    assert torch.allclose(protos[0], 0.75 * torch.tensor([1.0, 0.0]) + 0.25 * batch_mean0)
    assert torch.equal(protos[1], f[1])  # first sight: the batch mean itself
    assert ready.all()
    assert cached_domain_loss(f, domains, torch.zeros(2, 2), torch.zeros(2, dtype=torch.bool)).item() == 0.0


def test_similarity_loss_by_hand():
    f = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    domains = torch.tensor([0, 0, 1])
    labels = torch.tensor([0, 1, 0])
    # cross-domain pairs: (0, 2) -> 4 and (1, 2) -> 1 + 4 = 5
    assert similarity_loss(f, domains).item() == pytest.approx((4 + 5) / 2)
    assert similarity_loss(f, domains, labels).item() == pytest.approx(4.0)  # same label: only (0, 2)
    assert similarity_loss(f, torch.zeros(3, dtype=torch.long)).item() == 0.0


# ---- building blocks ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("heads", ["mean", "heads"])
def test_recorded_attention_equals_softmax_qk(heads):
    torch.manual_seed(0)
    d, n_head, t = 16, 4, 5
    block = ResidualAttentionBlock(d, n_head).eval()
    wrapped = MoABlock(block, MoA(d, 2, tiny_cfg()), "ffn_input")
    x = torch.randn(2, t, d)
    wrapped.record_attention = heads
    out = wrapped(x)
    assert torch.allclose(out, block(x), atol=1e-6)  # zero-init adapters: same block output

    h = block.ln_1(x)
    q, k, _ = F.linear(h, block.attn.in_proj_weight, block.attn.in_proj_bias).chunk(3, dim=-1)  # (B, T, D) each
    q, k = (z.view(2, t, n_head, d // n_head).transpose(1, 2) for z in (q, k))  # (B, H, T, dh)
    ref = (q @ k.transpose(-1, -2) / math.sqrt(d // n_head)).softmax(-1)  # (B, H, T, T)
    ref = ref.mean(1) if heads == "mean" else ref
    assert torch.allclose(wrapped.attention, ref, atol=1e-6)


@pytest.mark.parametrize("source", ["cls", "mean", "token"])
def test_router_alpha_is_a_distribution(source):
    torch.manual_seed(0)
    router = Router(8, 16, 3, source)
    torch.nn.init.normal_(router.mlp[-1].weight)  # away from the uniform start
    alpha = router(torch.randn(2, 5, 8))
    assert alpha.shape == (2, 5 if source == "token" else 1, 3)
    assert torch.allclose(alpha.sum(-1), torch.ones(alpha.shape[:-1]))
    assert (alpha > 0).all() and alpha.std() > 0


# ---- the detector -------------------------------------------------------------------------------------------

def test_zero_init_embedding_equals_frozen_backbone():
    cfg = tiny_cfg()
    model = build(cfg).eval()
    plain = build_image_tower(cfg.backbone).visual.eval()
    result = plain.load_state_dict(model.visual.state_dict(), strict=False)  # backbone keys are unchanged by wrapping
    assert not result.missing_keys and all(".moa." in k for k in result.unexpected_keys)
    images = make_batch([0, 1, 2, 0]).images
    with torch.no_grad():
        reference = plain(images)
        assert torch.allclose(model.embed(images), reference, atol=1e-5)  # router path (Eq. 6)
        with model._routing(F.one_hot(torch.tensor([0, 1, 2, 0]), 3).float(), None):  # step-1 path
            assert torch.allclose(model.embed(images), reference, atol=1e-5)
        perturb_up_projections(model)
        assert not torch.allclose(model.embed(images), reference, atol=1e-3)  # adapters really sit in the path


def test_two_steps_update_only_their_parameters():
    model = build().train()
    perturb_up_projections(model)  # so the router's choice matters in step 2
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2, weight_decay=0.01)
    groups = {"adapters": model.adapter_parameters(), "router": model.router_parameters(),
              "head": list(model.head.parameters())}
    trainable = {id(p) for ps in groups.values() for p in ps}
    groups["backbone"] = [p for p in model.parameters() if id(p) not in trainable]
    assert groups["backbone"] and not any(p.requires_grad for p in groups["backbone"])
    batch = make_batch([0, 1, 2, 0, 1, 2])

    for step, phase, changes in [(0, ADAPTERS, {"adapters", "head"}), (1, ROUTER, {"router", "head"})]:
        assert model.training_phase(epoch=0, step=step) == phase
        before = {name: [p.detach().clone() for p in ps] for name, ps in groups.items()}
        opt.zero_grad(set_to_none=True)
        model.training_loss(batch).total.backward()
        frozen = [p for name, ps in groups.items() if name not in changes for p in ps]
        assert all(p.grad is None for p in frozen)  # None (not zeros): AdamW skips them, weight decay included
        opt.step()
        for name, ps in groups.items():
            moved = any(not torch.equal(a, p) for a, p in zip(before[name], ps))
            assert moved == (name in changes), (phase, name)


def test_step_one_routes_each_sample_to_its_domain_adapter():
    model = build().train()
    model.training_phase(epoch=0, step=0)
    model.training_loss(make_batch([1, 1, 1, 1])).total.backward()  # a batch of domain 1 only
    for m in model.moas:
        touched = m.adapters.up_w.grad.flatten(1).abs().sum(1) > 0  # (N + 1,): expert 0 = shared Adapter_0
        assert touched.tolist() == [True, False, True, False]


def test_schedules():
    def phases(model: MoAClip, points) -> list[str]:
        return [model.phase_at(e, s)[0] for e, s in points]

    steps = [(0, s) for s in range(6)]
    epochs = [(e, 10 * e) for e in range(4)]
    assert phases(build(tiny_cfg(schedule="iteration", phase_period=2)), steps) == list("aarraa")
    assert phases(build(tiny_cfg(schedule="epoch", phase_period=1)), epochs) == list("arar")
    assert phases(build(tiny_cfg(schedule="sequential", adapter_epochs=3)), epochs) == list("aaar")


@pytest.mark.parametrize("term", ["att", "cac", "sim"])
def test_zero_beta_removes_the_term_and_its_gradient(term):
    only = {"beta_cls": 0.0, "beta_att": 0.0, "beta_cac": 0.0, "beta_sim": 0.0, f"beta_{term}": 1.0}
    batch = make_batch([0, 1, 2, 0, 1, 2])
    grads = {}
    for drop in ("none", term):
        model = build(tiny_cfg(**only, ablate=drop)).train()
        model.training_phase(epoch=0, step=0)
        model.training_loss(batch)  # fills the L_cac prototypes, so the next batch has a cac gradient
        model.zero_grad(set_to_none=True)
        out = model.training_loss(make_batch([0, 1, 2, 0, 1, 2], seed=1))
        assert (term in out.terms) == (drop == "none")
        out.total.backward()
        grads[drop] = sum(float(p.grad.abs().sum()) for p in model.trainable_parameters() if p.grad is not None)
    assert grads["none"] > 0 and grads[term] == 0.0


@pytest.mark.parametrize("per", ["domain", "domain_label"])
def test_prototypes_saved_and_restored(per):
    model = build(tiny_cfg(cac_prototypes=per)).train()
    model.training_phase(epoch=0, step=0)
    model.training_loss(make_batch([0, 2, 0, 2]))  # labels 0, 1, 0, 1: domain 0 holds reals, domain 2 fakes
    state = model.state_dict()
    expected = [True, False, True] if per == "domain" else [True, False, False, False, False, True]  # 2 * d + label
    assert state["prototype_ready"].tolist() == expected
    assert state["prototypes"][0].abs().sum() > 0
    fresh = build(tiny_cfg(cac_prototypes=per), seed=1)
    assert not fresh.prototype_ready.any()
    fresh.load_state_dict(state)
    assert torch.equal(fresh.prototypes, model.prototypes) and torch.equal(fresh.prototype_ready, model.prototype_ready)


def test_config_errors_name_the_key():
    with pytest.raises(BenchError, match="detector.schedule"):
        build(tiny_cfg(schedule="weekly"))
    with pytest.raises(BenchError, match="detector.input_size"):
        build(tiny_cfg(input_size=224))
    with pytest.raises(BenchError, match="detector.att_layers"):
        build(tiny_cfg(att_layers=[7]))


def test_feature_norm_bounds_the_embedding_losses():
    batch = make_batch([0, 1, 2, 0, 1, 2])
    terms = {}
    for norm in (False, True):
        model = build(tiny_cfg(feature_norm=norm)).train()
        perturb_up_projections(model, scale=1.0)
        model.training_phase(epoch=0, step=0)
        model.training_loss(batch)  # fills the prototypes; the next batch is another one, so L_cac is not 0
        terms[norm] = model.training_loss(make_batch([0, 1, 2, 0, 1, 2], seed=1)).terms
    assert 0 < terms[True]["sim"] <= 4 and 0 < terms[True]["cac"] <= 4  # squared distances of unit vectors
    assert terms[True]["sim"] != terms[False]["sim"]


def test_one_training_domain_warns_naming_what_degenerates():
    from bench.detectors.moa_clip import DegenerateDomainsWarning

    with pytest.warns(DegenerateDomainsWarning) as record:
        MoAClip(tiny_cfg(), ["fs"])
    message = str(record[0].message)
    assert "one domain (fs)" in message and "router" in message and "L_att and L_sim are 0" in message
    assert "datasets.diff.domain_level=generator" in message
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateDomainsWarning)
        build()  # several domains: no warning
