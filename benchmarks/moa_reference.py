"""MoA-CLIP's plain paths, as they were before the fast ones: for the test that the fast paths compute the same
losses and gradients (tests/test_moa_fast_paths.py) and for the before/after rows of benchmarks/moa_gpu.py.

  - attention: the frozen nn.MultiheadAttention itself (need_weights=True, per head, where L_att reads them; once
    its input requires grad it leaves its fused path and runs the in-projection batched over the tokens);
  - adapters: every adapter of the bank computed, a one-hot routing weighting the unused ones by zero.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from bench.detectors.moa_clip import MoA, MoABlock


def mha_attention(self: MoABlock, h: torch.Tensor, mask: torch.Tensor | None):
    record = self.record_attention is not None
    return self.attn(h, h, h, need_weights=record, average_attn_weights=False, attn_mask=mask)


def dense_moa_forward(self: MoA, h: torch.Tensor) -> torch.Tensor:
    alpha = self.fixed_alpha.unsqueeze(1) if self.fixed_alpha is not None else self.router(h)  # (B, 1 or T, N)
    weights = torch.cat([torch.ones_like(alpha[..., :1]), alpha], dim=-1)  # (B, 1 or T, N + 1)
    return self.adapters(h, weights)


@contextlib.contextmanager
def plain_paths() -> Iterator[None]:
    """MoA-CLIP computes with the plain paths inside the block."""
    fast = MoABlock._attention, MoA.forward
    MoABlock._attention, MoA.forward = mha_attention, dense_moa_forward
    try:
        yield
    finally:
        MoABlock._attention, MoA.forward = fast
