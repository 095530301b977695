"""`moa_clip`: a frozen CLIP ViT with a dynamic Mixture-of-Adapters in every block, trained in two alternating steps.

Source: "Unlocking CLIP for Generalized Deepfake Detection with Dynamic Mixture-of-Adapters" (the MoA-CLIP paper,
Sections 4.2-4.4 and 5.1). There is no public code; this file is our reading of the text.

Faithful to the paper
  - Frozen open_clip ViT image tower (default ViT-B/16, OpenAI weights); B/32 and L/14 via `backbone.arch`.
  - In every block, a MoA module parallel to the FFN (Eq. 6):
        h_out = h_FFN + Adapter_0(h_in) + sum_k alpha_k * Adapter_k(h_in),   alpha = softmax(Router(h_in))
    Adapter_0 is shared by all domains; Adapter_1..N belong to the N training domains. Adapter = down-projection
    to d_a, GELU, up-projection (Eq. 4 plus the GELU of Section 5.1). Router = MLP + softmax (Eq. 5).
  - Two steps (Fig. 2). "adapters": no router; each sample goes through Adapter_0 and its own domain's adapter
    (alpha = one-hot of its domain); adapters + head train. "router": adapters frozen; router + head train with
    Eq. 6. Inference (eval mode) always uses Eq. 6. The backbone never trains.
  - Loss (Eq. 12) = beta_cls L_cls + beta_att L_att + beta_cac L_cac + beta_sim L_sim with betas 1 / 1 / 0.5 / 0.1;
    the regularisers are in `moa_losses.py`. f(x) is the final image embedding (`visual(x)`, i.e. after ln_post and
    the CLIP projection), the input of the MLP head.
  - `recipe` = Section 5.1: AdamW, lr 5e-4, weight decay 0.01, cosine with 500 warm-up steps to 1e-6, gradient
    clipping 1.0, batch 64, 50 epochs.

Our choices (the paper leaves them open; each is a config field)
  - adapter_dim (d_a) = 128, not the 256 of Section 5.1: the paper's headline numbers (Table 1) are Table 5's 128 row.
  - h_in = the FFN's input ln_2(x) (adapter_input="ffn_input"), the AdaptFormer-style parallel adapter; "residual"
    feeds the un-normalised residual stream x instead. The adapter output is added unscaled beside the FFN output.
  - The router reads the CLS token of h_in (router_input="cls": one alpha per image and block, as the paper routes
    "input images"); "mean" pools all tokens, "token" routes every token on its own. Its last layer is zero-initialised,
    so routing starts uniform; the adapters' up-projections are zero-initialised, so training starts from CLIP.
  - Domains: N = len(domains), the training domains the runner passes in; `Batch.domains` indexes them. Real
    samples get a domain from `protocol.real_domain` ("balanced": each real video joins one fake domain by a
    stable hash, so N = number of fake domains; "separate": real is an extra domain, N = fakes + 1).
  - Schedule (schedule=...): "iteration" alternates the steps every `phase_period` optimisation steps (default 1:
    the paper's "alternates between two iterative steps"), "epoch" every `phase_period` epochs, "sequential" runs
    `adapter_epochs` epochs of step 1 and then step 2. All four losses are on in both steps.
  - L_att uses the attention probabilities of `att_layers` (default: the last block), averaged over heads
    (att_head_mean), over all tokens including CLS, mean over the chosen layers. They come from an explicit softmax
    in those blocks only, in training and only when beta_att > 0; every other attention is fused
    (scaled_dot_product_attention, with qkv from one linear on the (B, T, D) tensor).
  - Data-parallel runs: L_att, L_cac (and its prototype update) and L_sim see the global batch (features, maps,
    domains gathered from every rank with their gradients: `bench.distributed.gather_batch`), so N processes train
    as one process on the same global batch; L_cls is per rank (DDP averages it).
  - Step 1 computes only each sample's two adapters (shared + its domain's); the others' weights are zero.
  - L_cac: prototypes are buffers (saved in checkpoints) updated by EMA with rate `cac_rate` from the detached batch
    means, after the loss is computed against the previous prototypes; reduction details in `moa_losses.py`.
  - `ablate` zeroes one beta (Table 3's ablation as one sweep key).
  - Head: Linear(embed_dim, head_hidden) - GELU - Linear(head_hidden, 2).
  - Preprocessing (size, mean, std) follows the tower (`bench.openclip`); `input_size` must match it.

Departures from the paper's literal text, measured (README, "Losses that train"; feature_norm=false
cac_prototypes=domain sim_pairs=all is the text)
  - feature_norm=true: L_cac and L_sim on the L2-normalised embedding. On the raw one their size follows CLIP's
    projection and they take 99% of the gradient at init (ViT-B/16), collapsing the embedding.
  - cac_prototypes="domain_label" and sim_pairs="same_label": real samples sit in fake domains
    (real_domain=balanced), so per-domain prototypes and "all" pairs pull real and fake together, against L_cls.
  - Also ours: `evaluation_stats` reports the mean route weight of each domain adapter per test set, and one
    training domain (N = 1, nothing to route) raises a DegenerateDomainsWarning.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock
from torch import Tensor, nn

from bench.detector import Detector, Transform
from bench.detectors.configs import MOA_CHOICES, MoAClipConfig
from bench.detectors.moa_losses import attention_alignment_loss, cached_domain_loss, ema_update_, similarity_loss
from bench.distributed import gather_batch, gather_labels
from bench.errors import BenchError
from bench.openclip import detector_tower, freeze, resblocks
from bench.records import Batch, LossOutput

ADAPTERS, ROUTER = "adapters", "router"  # the two training steps (phase names, logged by the runner)


class DegenerateDomainsWarning(UserWarning):
    """MoA-CLIP was given one training domain: routing and the cross-domain losses have nothing to do."""


class AdapterBank(nn.Module):
    """K bottleneck adapters (down d->a, GELU, up a->d) evaluated together and mixed with per-sample weights."""

    def __init__(self, k: int, dim: int, hidden: int) -> None:
        super().__init__()
        bound = dim**-0.5  # nn.Linear's default init range for the down-projection
        self.down_w = nn.Parameter(torch.empty(k, dim, hidden).uniform_(-bound, bound))
        self.down_b = nn.Parameter(torch.zeros(k, hidden))
        self.up_w = nn.Parameter(torch.zeros(k, hidden, dim))  # zero: the adapters start as a no-op
        self.up_b = nn.Parameter(torch.zeros(k, dim))

    def forward(self, h: Tensor, weights: Tensor) -> Tensor:
        """h (B, T, D), weights (B, T or 1, K) -> sum_k weights_k * Adapter_k(h), (B, T, D).

        All K adapters as two matmuls (the K down-projections side by side, the K up-projections stacked)."""
        b, t, d = h.shape
        k, _, a = self.down_w.shape
        down = self.down_w.to(h.dtype).permute(1, 0, 2).reshape(d, k * a)  # (D, K*A)
        z = F.gelu(h.reshape(b * t, d) @ down + self.down_b.to(h.dtype).reshape(k * a))  # (B*T, K*A)
        z = z.view(b, t, k, a) * weights.unsqueeze(-1).to(z.dtype)  # weighting before the (linear) up-projection
        out = z.view(b * t, k * a) @ self.up_w.to(z.dtype).reshape(k * a, d)  # (B*T, D)
        return out.view(b, t, d) + weights.to(z.dtype) @ self.up_b.to(z.dtype)

    def selected(self, h: Tensor, experts: Tensor) -> Tensor:
        """h (B, T, D), experts (B, E) long -> sum over each sample's E experts of Adapter_e(h), (B, T, D): the
        experts a one-hot routing weights 1 and nothing else (the others' weights are zero: their work is skipped)."""
        b, t, d = h.shape
        e, a = experts.shape[1], self.down_w.shape[2]
        down = self.down_w[experts].to(h.dtype).permute(0, 2, 1, 3).reshape(b, d, e * a)  # (B, D, E*A)
        z = F.gelu(torch.bmm(h, down) + self.down_b[experts].to(h.dtype).reshape(b, 1, e * a))  # (B, T, E*A)
        up = self.up_w[experts].to(z.dtype).reshape(b, e * a, d)  # (B, E*A, D)
        return torch.bmm(z, up) + self.up_b[experts].to(z.dtype).sum(1, keepdim=True)


class Router(nn.Module):
    """Eq. 5: alpha = softmax(MLP(h_in)) over the N domain adapters."""

    def __init__(self, dim: int, hidden: int, n: int, source: str) -> None:
        super().__init__()
        self.source = source
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, n))
        nn.init.zeros_(self.mlp[-1].weight)  # uniform routing at the start
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, h: Tensor) -> Tensor:
        """h (B, T, D) -> alpha (B, 1, N) for "cls"/"mean", (B, T, N) for "token"; sums to 1 over N."""
        if self.source == "cls":
            h = h[:, :1]
        elif self.source == "mean":
            h = h.mean(dim=1, keepdim=True)
        return self.mlp(h).float().softmax(dim=-1)


class MoA(nn.Module):
    """Shared Adapter_0 plus N domain adapters (one bank; expert 0 is Adapter_0, always weighted 1) and a router."""

    def __init__(self, dim: int, n: int, cfg: MoAClipConfig) -> None:
        super().__init__()
        self.adapters = AdapterBank(n + 1, dim, cfg.adapter_dim)
        self.router = Router(dim, cfg.router_hidden, n, cfg.router_input)
        self.fixed_alpha: Tensor | None = None  # (B, N), set by the detector in step 1 (router off)
        self.alpha: Tensor | None = None  # (B, 1 or T, N): the last forward's routing, kept while keep_alpha is set
        self.keep_alpha = False

    def forward(self, h: Tensor) -> Tensor:
        """h (B, T, D) -> Adapter_0(h) + sum_k alpha_k Adapter_k(h), (B, T, D)."""
        if self.fixed_alpha is not None:  # step 1: one-hot alpha, so Adapter_0 and the sample's own adapter only
            own = self.fixed_alpha.argmax(-1, keepdim=True) + 1  # (B, 1); expert 0 is Adapter_0
            return self.adapters.selected(h, torch.cat([torch.zeros_like(own), own], dim=1))
        alpha = self.router(h)  # (B, 1 or T, N)
        self.alpha = alpha.detach() if self.keep_alpha else None
        weights = torch.cat([torch.ones_like(alpha[..., :1]), alpha], dim=-1)  # (B, 1 or T, N + 1)
        return self.adapters(h, weights)


class MoABlock(nn.Module):
    """An open_clip `ResidualAttentionBlock` with a MoA module parallel to its FFN.

    Keeps the block's call signature (`blk(x, attn_mask=...)`, and `checkpoint(blk, x, None, None, mask)`) and its
    submodule names, so the tower's own weights keep their state-dict keys (resblocks.<i>.ln_1.weight, ...).
    """

    def __init__(self, block: nn.Module, moa: MoA, adapter_input: str) -> None:
        super().__init__()
        if type(block) is not ResidualAttentionBlock or hasattr(block, "ln_1_kv"):
            raise BenchError(f"MoA-CLIP wraps open_clip's self-attention ResidualAttentionBlock, got {type(block).__name__}; "
                             "choose a plain CLIP ViT arch (no qk_norm / custom blocks)", "detector.backbone.arch")
        self.ln_1, self.attn, self.ls_1 = block.ln_1, block.attn, block.ls_1
        self.ln_2, self.mlp, self.ls_2 = block.ln_2, block.mlp, block.ls_2
        self.moa = moa
        self.adapter_input = adapter_input
        self.record_attention: str | None = None  # None | "mean" | "heads": keep attention probabilities
        self.attention: Tensor | None = None  # (B, T, T) or (B, H, T, T), from the last recorded forward

    def forward(self, q_x: Tensor, k_x: Tensor | None = None, v_x: Tensor | None = None,
                attn_mask: Tensor | None = None) -> Tensor:
        if k_x is not None or v_x is not None:
            raise ValueError("MoABlock is self-attention only")
        h = self.ln_1(q_x)  # (B, T, D)
        out, probs = self._attention(h, attn_mask.to(h.dtype) if attn_mask is not None else None)
        if self.record_attention is not None:
            self.attention = probs.mean(1) if self.record_attention == "mean" else probs
        x = q_x + self.ls_1(out)
        ffn_in = self.ln_2(x)
        h_in = ffn_in if self.adapter_input == "ffn_input" else x
        return x + self.ls_2(self.mlp(ffn_in)) + self.moa(h_in)  # Eq. 6

    def _attention(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The frozen nn.MultiheadAttention's math on the contiguous (B, T, D) tensor: qkv in one linear (not the
        (T, B, D) transposes and token-batched in-projection nn.MultiheadAttention takes once its input requires
        grad), fused scaled_dot_product_attention, and the explicit softmax only where L_att reads the
        probabilities. Returns (output (B, T, D), probabilities (B, H, T, T) or None)."""
        attn = self.attn
        b, t, d = h.shape
        heads = attn.num_heads
        qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias)  # (B, T, 3D)
        q, k, v = qkv.view(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)  # each (B, H, T, dh)
        probs = None
        if self.record_attention is None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, T, dh)
        else:
            scores = (q * (d // heads) ** -0.5) @ k.transpose(-2, -1)  # (B, H, T, T)
            probs = (scores if mask is None else scores + mask).softmax(-1)
            out = probs @ v
        out = out.transpose(1, 2).reshape(b, t, d)  # (B, T, D)
        return F.linear(out, attn.out_proj.weight, attn.out_proj.bias), probs


class MoAClip(Detector):
    name = "moa_clip"
    description = "frozen CLIP ViT + dynamic Mixture-of-Adapters (two-phase)"
    config_class = MoAClipConfig

    def __init__(self, cfg: MoAClipConfig, domains: Sequence[str]) -> None:
        super().__init__(cfg, domains)
        for key, allowed in MOA_CHOICES.items():  # a hand-built config gets the composed one's check too
            if getattr(cfg, key) not in allowed:
                raise BenchError(f"detector.{key}={getattr(cfg, key)!r}; choose one of {', '.join(allowed)}", f"detector.{key}")
        n = len(self.domains)
        if n < 1:
            raise BenchError("MoA-CLIP needs at least one training domain", "protocol.train.domains")
        if n == 1:
            warnings.warn(f"MoA-CLIP trains with one domain ({self.domains[0]}): the router's weight is always 1 and "
                          "gets no gradient, L_att and L_sim are 0, and every router step trains only the head. Give "
                          "the dataset finer domains (DiFF: datasets.diff.domain_level=generator) or train on several",
                          DegenerateDomainsWarning, stacklevel=2)
        tower = detector_tower(cfg, own_mean_std=False)  # preprocessing follows the weights (bench.openclip)
        self.tower_info = tower
        self.visual = freeze(tower.visual)
        blocks = resblocks(self.visual)
        for i, blk in enumerate(blocks):
            blocks[i] = MoABlock(blk, MoA(tower.width, n, cfg), cfg.adapter_input)  # MoA params are trainable
        self.moas = [b.moa for b in blocks]  # plain list: no second registration of the same modules
        try:
            self.att_blocks = [blocks[i] for i in cfg.att_layers]
        except IndexError:
            raise BenchError(f"detector.att_layers={list(cfg.att_layers)} outside the {len(blocks)} blocks",
                             "detector.att_layers") from None
        self.head = nn.Sequential(nn.Linear(tower.embed_dim, cfg.head_hidden), nn.GELU(), nn.Linear(cfg.head_hidden, 2))
        # L_cac's EMA prototypes (Eq. 9), one per domain or per (domain, label), saved with the model
        n_protos = n * (2 if cfg.cac_prototypes == "domain_label" else 1)
        self.register_buffer("prototypes", torch.zeros(n_protos, tower.embed_dim))
        self.register_buffer("prototype_ready", torch.zeros(n_protos, dtype=torch.bool))
        self.phase = ADAPTERS
        self.route_sum = torch.zeros(n, dtype=torch.float64)  # sum over predicted images of alpha (mean over blocks)
        self.route_count = 0

    # ---- parameters and phases ----------------------------------------------------------------------------
    def adapter_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.moas for p in m.adapters.parameters()]

    def router_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.moas for p in m.router.parameters()]

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Adapters, routers and head: one optimiser for both steps (frozen-phase params get no grad, AdamW skips them)."""
        return [*self.adapter_parameters(), *self.router_parameters(), *self.head.parameters()]

    def phase_at(self, epoch: int, step: int) -> str:
        c = self.cfg
        if c.schedule == "sequential":
            return ADAPTERS if epoch < c.adapter_epochs else ROUTER
        tick = step if c.schedule == "iteration" else epoch
        return ADAPTERS if (tick // max(1, c.phase_period)) % 2 == 0 else ROUTER

    def training_phase(self, epoch: int, step: int) -> str:
        self.phase = self.phase_at(epoch, step)
        for p in self.adapter_parameters():
            p.requires_grad_(self.phase == ADAPTERS)
        for p in self.router_parameters():
            p.requires_grad_(self.phase == ROUTER)
        return self.phase

    def train(self, mode: bool = True) -> MoAClip:
        super().train(mode)
        self.visual.eval()  # the frozen tower stays in eval mode (MoA modules have no train-time behaviour)
        return self

    # ---- forward --------------------------------------------------------------------------------------------
    @contextmanager
    def _routing(self, fixed_alpha: Tensor | None, record: str | None) -> Iterator[None]:
        """Route with one-hot alphas (step 1) or the router (None), optionally recording attention maps."""
        for m in self.moas:
            m.fixed_alpha = fixed_alpha
        for b in self.att_blocks:
            b.record_attention = record
        try:
            yield
        finally:
            for m in self.moas:
                m.fixed_alpha = None
            for b in self.att_blocks:
                b.record_attention = None
                b.attention = None

    def embed(self, images: Tensor) -> Tensor:
        """f(x): (B, 3, S, S) -> (B, embed_dim), routed by the routers (Eq. 6)."""
        return self.visual(images)

    def routed(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """Eq. 6 forward that also returns the routing: logits (B, 2) and alpha (B, N), averaged over blocks (and
        over tokens for router_input="token"); alpha is None if a replaced MoA.forward did not keep it."""
        for m in self.moas:
            m.keep_alpha = True
        try:
            logits = self.head(self.visual(images))
            kept = [m.alpha for m in self.moas]
            alpha = None if any(a is None for a in kept) else torch.stack([a.float().mean(1) for a in kept]).mean(0)
        finally:
            for m in self.moas:
                m.keep_alpha, m.alpha = False, None
        return logits, alpha

    def forward(self, images: Tensor) -> Tensor:
        if self.training:
            return self.head(self.visual(images))  # (B, 2)
        logits, alpha = self.routed(images)  # evaluation: tally which adapters the router picks
        if alpha is not None:
            self.route_sum += alpha.sum(0).double().cpu()
            self.route_count += len(alpha)
        return logits

    def evaluation_stats(self) -> dict[str, float]:
        """`route_<domain>`: the mean route weight alpha of each domain adapter (over blocks and images) on the images
        predicted since the previous call, i.e. which training domains' adapters a test set is sent to."""
        if not self.route_count:
            return {}
        mean = (self.route_sum / self.route_count).tolist()
        self.route_sum.zero_()
        self.route_count = 0
        return {f"route_{d}": w for d, w in zip(self.domains, mean)}

    def betas(self) -> dict[str, float]:
        c = self.cfg
        b = {"cls": c.beta_cls, "att": c.beta_att, "cac": c.beta_cac, "sim": c.beta_sim}
        if c.ablate != "none":
            b[c.ablate] = 0.0
        return b

    def training_loss(self, batch: Batch) -> LossOutput:
        terms, logits = self.loss_terms(batch)
        beta = self.betas()
        total = sum(beta[k] * v for k, v in terms.items())
        return LossOutput(total=total, logits=logits, terms={k: v.detach() for k, v in terms.items()})

    def loss_terms(self, batch: Batch, update_prototypes: bool = True) -> tuple[dict[str, Tensor], Tensor]:
        """The unweighted terms of Eq. 12 whose beta is not 0 (attached to the graph) and the logits (B, 2), in the
        current phase. In training mode the L_cac prototypes then move (EMA) unless `update_prototypes` is False."""
        beta, domains, n = self.betas(), batch.domains, len(self.domains)
        if domains.device.type == "cpu" and bool(((domains < 0) | (domains >= n)).any()):  # on a GPU: no sync per
            raise BenchError(f"training batch has domain ids outside 0..{n - 1}", "protocol.real_domain")  # step
        fixed = F.one_hot(domains, n).float() if self.phase == ADAPTERS else None  # (B, N) or router
        record = ("mean" if self.cfg.att_head_mean else "heads") if beta["att"] > 0 and self.training else None
        with self._routing(fixed, record):
            f = self.visual(batch.images)  # (B, E)
            maps = [b.attention for b in self.att_blocks] if record else []
        logits = self.head(f)  # (B, 2)
        f = F.normalize(f.float(), dim=-1) if self.cfg.feature_norm else f.float()

        terms = {"cls": F.cross_entropy(logits.float(), batch.labels)}
        # L_att, L_cac and L_sim compare domains across the batch: in a data-parallel run they see the global batch
        # (every rank's features, gathered with their gradients; README "Scaling out"), as one process would.
        f, domains, labels = gather_batch(f), gather_labels(domains), gather_labels(batch.labels)
        if maps:
            terms["att"] = torch.stack([attention_alignment_loss(gather_batch(a.float()), domains) for a in maps]).mean()
        if beta["cac"] > 0:
            groups = domains * 2 + labels if self.cfg.cac_prototypes == "domain_label" else domains
            terms["cac"] = cached_domain_loss(f, groups, self.prototypes, self.prototype_ready)
            if self.training and update_prototypes:  # after the loss: it compares with the previous prototypes
                ema_update_(self.prototypes, self.prototype_ready, f, groups, self.cfg.cac_rate)
        if beta["sim"] > 0:
            terms["sim"] = similarity_loss(f, domains, labels if self.cfg.sim_pairs == "same_label" else None)
        return terms, logits

    def frozen_keys(self) -> set[str]:
        # the CLIP tower is frozen and rebuilt from the config; the MoA modules inside its blocks are not
        return {k for k in self.state_dict() if k.startswith("visual.") and ".moa." not in k}

    def describe(self) -> dict[str, Any]:
        n_adapt = sum(p.numel() for p in self.adapter_parameters())
        n_route = sum(p.numel() for p in self.router_parameters())
        return {**super().describe(), **self.tower_info.facts(), "n_domain_adapters": len(self.domains),
                "params_adapters": n_adapt, "params_router": n_route}

    # ---- data -----------------------------------------------------------------------------------------------
    def train_transform(self) -> Transform:
        return self.tower_info.transform(self.cfg.augment)

    def eval_transform(self) -> Transform:
        return self.tower_info.transform()
