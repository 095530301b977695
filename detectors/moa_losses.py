"""MoA-CLIP's regularisers (Eqs. 8-11 of the MoA-CLIP paper) as pure functions over tensors.

Every function takes per-sample quantities plus `domains` (B,) long (index into the run's training domains) and
returns a () scalar. A term that has no pairs in the batch (e.g. a batch holding one domain) is an exact zero that
still depends on the input, so `backward()` works and gives zero gradients rather than failing.

Reductions are our choice where the paper leaves them open; each function says which it uses.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _zero(x: Tensor) -> Tensor:
    return x.new_zeros(()) + 0.0 * x.sum()  # () zero attached to x's graph (+0.0, never -0.0)


def domain_means(x: Tensor, domains: Tensor) -> tuple[Tensor, Tensor]:
    """Per-domain mean of per-sample tensors. x (B, *S), domains (B,) -> (present (K,), means (K, *S))."""
    present, inverse = domains.unique(sorted=True, return_inverse=True)
    onehot = torch.nn.functional.one_hot(inverse, len(present)).to(x.dtype)  # (B, K)
    sums = onehot.T @ x.flatten(1)  # (K, prod(S))
    means = sums / onehot.sum(0).unsqueeze(1)
    return present, means.view(len(present), *x.shape[1:])


def attention_alignment_loss(attn: Tensor, domains: Tensor) -> Tensor:
    """Eq. 8: sum over unordered pairs i < j of the domains present of ||A^i - A^j||_F^2.

    attn (B, *S): one attention map per sample, e.g. (B, T, T) head-averaged or (B, H, T, T) per head;
    A^i is the mean map of domain i's samples in the batch. Unordered pairs: the paper's "all domain pairs"
    counted once each (ordered pairs would only double the value).
    """
    _, means = domain_means(attn, domains)  # (K, *S)
    k = means.shape[0]
    if k < 2:
        return _zero(attn)
    flat = means.flatten(1)  # (K, P)
    sq = (flat.unsqueeze(0) - flat.unsqueeze(1)).pow(2).sum(-1)  # (K, K) squared Frobenius distances
    return torch.triu(sq, diagonal=1).sum()


def cached_domain_loss(features: Tensor, domains: Tensor, prototypes: Tensor, initialised: Tensor) -> Tensor:
    """Eq. 10: mean over the batch of ||f(x) - mu_domain(x)||_2^2 (squared L2 summed over the feature axis).

    features (B, D); prototypes (N, D) (treated as constants); initialised (N,) bool. Samples whose domain has no
    prototype yet are left out (a zero prototype would pull features towards the origin); the mean is over the
    samples that count. Mean rather than the paper's sum, so beta_cac does not depend on the batch size.
    """
    mask = initialised[domains]  # (B,)
    if not bool(mask.any()):
        return _zero(features)
    dist = (features - prototypes[domains].detach().to(features.dtype)).pow(2).sum(-1)  # (B,)
    return dist[mask].mean()


@torch.no_grad()
def ema_update_(prototypes: Tensor, initialised: Tensor, features: Tensor, domains: Tensor, rate: float) -> None:
    """Eq. 9, in place: mu_i <- (1 - rate) mu_i + rate * mean of domain i's features in this batch.

    A domain seen for the first time takes its batch mean as prototype. Only domains present in the batch move.
    """
    present, means = domain_means(features.detach().to(prototypes.dtype), domains)  # (K,), (K, D)
    old = prototypes[present]
    fresh = initialised[present].unsqueeze(1)  # (K, 1): False where the domain has no prototype yet
    prototypes[present] = torch.where(fresh, (1.0 - rate) * old + rate * means, means)
    initialised[present] = True


def similarity_loss(features: Tensor, domains: Tensor, labels: Tensor | None = None) -> Tensor:
    """Eq. 11: mean of ||f(x_i) - f(x_j)||_2^2 over the pairs of samples from different domains.

    features (B, D). With `labels`, only pairs that also share a label count (the "same_label" variant: real is
    pulled to real and fake to fake across domains, instead of every sample to every other domain's samples).
    """
    diff = features.unsqueeze(0) - features.unsqueeze(1)  # (B, B, D)
    sq = diff.pow(2).sum(-1)  # (B, B)
    pairs = domains.unsqueeze(0) != domains.unsqueeze(1)
    if labels is not None:
        pairs &= labels.unsqueeze(0) == labels.unsqueeze(1)
    pairs = torch.triu(pairs, diagonal=1)
    if not bool(pairs.any()):
        return _zero(features)
    return sq[pairs].mean()
