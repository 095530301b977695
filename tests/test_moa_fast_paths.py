"""MoA-CLIP's fast paths compute what the plain ones did: attention from one qkv linear and
scaled_dot_product_attention (explicit softmax only where L_att reads it), the adapters as two grouped matmuls,
step 1 skipping the adapters its one-hot routing zeroes; and its batch-level losses in a data-parallel run see the
global batch, so 2 gloo ranks take the step one process takes on the whole batch."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp

from bench.detectors.moa_clip import AdapterBank
from moa_ranks import global_batch, rank_main, step, tiny_model
from moa_reference import plain_paths


@pytest.mark.parametrize("phase_step", [0, 1])  # step 1 (adapters, one-hot routing) and step 2 (router)
def test_fast_attention_and_adapters_give_the_losses_and_gradients_of_the_plain_path(phase_step):
    model = tiny_model()
    fast = step(model, global_batch(), model.training_loss, phase_step)
    model = tiny_model()
    with plain_paths():
        plain = step(model, global_batch(), model.training_loss, phase_step)
    assert fast["terms"].keys() == plain["terms"].keys() == {"att", "cac", "sim"}
    for k in fast["terms"]:
        assert fast["terms"][k] == pytest.approx(plain["terms"][k], rel=1e-5, abs=1e-7), k
    for a, b in zip(fast["grads"], plain["grads"]):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    assert any(g is not None and g.abs().sum() > 0 for g in fast["grads"])


def test_selected_adapters_equal_the_dense_bank_with_one_hot_weights():
    torch.manual_seed(0)
    bank = AdapterBank(4, 6, 3)
    with torch.no_grad():
        bank.up_w.normal_()
        bank.up_b.normal_()
    h = torch.randn(5, 7, 6)
    own = torch.tensor([1, 3, 2, 1, 3])
    weights = torch.zeros(5, 1, 4).index_fill_(2, torch.tensor([0]), 1.0)
    weights[torch.arange(5), 0, own] = 1.0
    dense = bank(h, weights)
    sparse = bank.selected(h, torch.stack([torch.zeros_like(own), own], 1))
    assert torch.allclose(dense, sparse, atol=1e-6)
    g_dense = torch.autograd.grad(dense.square().sum(), list(bank.parameters()))
    g_sparse = torch.autograd.grad(bank.selected(h, torch.stack([torch.zeros_like(own), own], 1)).square().sum(),
                                   list(bank.parameters()))
    for a, b in zip(g_dense, g_sparse):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("phase_step", [0, 1])
def test_two_ranks_with_gathered_batch_losses_take_the_step_of_one_process(phase_step):
    model = tiny_model()
    alone = step(model, global_batch(), model.training_loss, phase_step)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = mp.get_context("spawn").SimpleQueue()
    mp.start_processes(rank_main, args=(2, port, phase_step, out), nprocs=2, start_method="spawn")
    ranks = out.get()
    for k, v in alone["terms"].items():  # L_att, L_cac, L_sim over the gathered global batch
        assert ranks["terms"][k] == pytest.approx(v, rel=1e-5, abs=1e-7), k
    for a, b in zip(alone["grads"], ranks["grads"]):  # DDP's average of the ranks' gradients
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, torch.from_numpy(b), rtol=1e-4, atol=1e-6)
    assert torch.allclose(alone["prototypes"], torch.from_numpy(ranks["prototypes"]), atol=1e-6)  # the EMA saw the global batch too
