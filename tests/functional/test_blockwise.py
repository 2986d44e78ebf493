"""The blockwise CPU path of the Block engine: gradients against the step-by-step engine, its pieces."""

import pytest
import torch
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from cellfit.functional import ALIFParameters, ALIFState, alif_blocks, alif_standard
from cellfit.functional import blockwise
from cellfit.functional.alif import block_spikes, use_block_kernel
from cellfit.functional.linear import channel_linear
from cellfit.functional.surrogate import fast_sigmoid, multi_gaussian

from test_alif import TIE_MARGIN, scenarios

F64 = torch.float64


def gradients(engine, current, tau_m, tau_a, d, w_rec, t_ref, dt_ms, state, weights, spike_fn):
    """Spikes, final state and the gradients of a loss on spikes and state, for one engine."""
    leaves = [t.clone().requires_grad_() for t in (current, tau_m, tau_a, d)]
    w = None if w_rec is None else w_rec.clone().requires_grad_()
    sv, sa = (state.v.clone().requires_grad_(), state.a.clone().requires_grad_())
    params = ALIFParameters(*leaves[1:], arp_ms=t_ref * dt_ms).discretise(dt_ms)
    fn = alif_standard if engine == "standard" else alif_blocks
    with use_block_kernel("blockwise"):
        out = fn(leaves[0], params, w_rec=w, state=ALIFState(sv, sa, state.spikes), spike_fn=spike_fn)
    loss = (out.spikes * weights).sum() + 1.3 * out.state.v.sum() - 0.7 * out.state.a.sum()
    inputs = leaves + ([w] if w is not None else []) + [sv, sa]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    return out, [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]


@settings(max_examples=60)
@given(scenario=scenarios(max_T=lambda t_ref: 4 * t_ref + 120), split=st.integers(0, 30),
       surrogate=st.sampled_from(["multi_gaussian", "fast_sigmoid"]))  # fmt: skip
def test_gradients_equal_standard(scenario, split, surrogate):
    current, params, w_rec = scenario
    dt_ms = 1.0
    tau_m, tau_a = -dt_ms / params.log_beta, -dt_ms / params.log_p
    d, L = params.adapt_scale, params.t_ref
    # a state from a short prefix run (spikes in its tail exercise the refractory entry)
    cut = min(split, current.shape[-1] - 1)
    prefix = current[..., :cut] if cut else current[..., :1] * 0
    p = ALIFParameters(tau_m, tau_a, d, arp_ms=L * dt_ms).discretise(dt_ms)
    state = alif_standard(prefix, p, w_rec=w_rec).state
    rest = current[..., cut:]
    ref_trace = alif_standard(rest, p, w_rec=w_rec, state=state, record=("v", "theta"))
    margin = float((ref_trace.v - ref_trace.theta).abs().min())
    assume(margin > TIE_MARGIN)  # see test_alif.TIE_MARGIN
    spike_fn = multi_gaussian() if surrogate == "multi_gaussian" else fast_sigmoid(10.0)
    weights = torch.randn(rest.shape, dtype=F64, generator=torch.Generator().manual_seed(cut))
    args = (rest, tau_m, tau_a, d, w_rec, L, dt_ms, state, weights, spike_fn)
    ref, g_ref = gradients("standard", *args)
    out, g_blk = gradients("blocks", *args)
    n = int(ref.spikes.sum())
    event("no spikes" if n == 0 else "1-9 spikes" if n < 10 else "10+ spikes")
    assert torch.equal(out.spikes.detach(), ref.spikes.detach())
    names = ["current", "tau_mem", "tau_adapt", "adapt_scale"] + (["w_rec"] if w_rec is not None else []) + ["state.v", "state.a"]
    for name, a, b in zip(names, g_blk, g_ref):
        # float64; both engines sum the same terms (up to T x T_R products per entry) in different
        # orders, so entries differ by ~1e-16 relative per term: 1e-7 relative to the largest
        # entry leaves room for the cancellation between the terms of the parameter gradients
        scale = max(1.0, float(b.abs().max()))
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-7 * scale, msg=name)


@pytest.mark.parametrize("recurrent", [False, True])
def test_sparse_first_crossing_gives_the_same_spikes(monkeypatch, recurrent):
    """Large blocks look for crossings only in the rows whose maximum is above threshold."""
    g = torch.Generator().manual_seed(2)
    n, L = 6, 7
    params = ALIFParameters(torch.linspace(2.0, 30.0, n, dtype=F64), torch.linspace(5.0, 300.0, n, dtype=F64),
                            torch.linspace(0.0, 1.5, n, dtype=F64), arp_ms=L * 0.1).discretise(0.1)  # fmt: skip
    current = 1.5 + 2.0 * torch.randn(3, n, 300, dtype=F64, generator=g)
    w_rec = torch.randn(n, n, dtype=F64, generator=g) if recurrent else None
    ref = alif_standard(current, params, w_rec=w_rec)
    assert ref.spikes.sum() > 20
    for size in (1, 10**9):  # every block takes the sparse route / none does
        monkeypatch.setattr(blockwise, "_SPARSE_ARGMAX_SIZE", size)
        out = block_spikes(current, params, w_rec=w_rec, kernel="blockwise")
        assert torch.equal(out.spikes, ref.spikes)


@pytest.mark.parametrize("dense", [False, True])
def test_dense_and_sparse_spike_handling_agree(monkeypatch, dense):
    """Refractory prefixes, recurrent input and its weight gradient are handled per spike or by whole-block
    passes depending on the number of spikes: both ways must give the step-by-step engine's results."""
    for name in ("_DENSE_GATE", "_DENSE_REC"):
        monkeypatch.setattr(blockwise, name, 10**9 if dense else 0)
    layer, x = network_layer(2)
    grads = {}
    for engine in ("standard", "blocks"):
        layer.engine = engine
        layer.zero_grad()
        with use_block_kernel("blockwise"):
            out = layer(x)
        out.sum().backward()
        grads[engine] = (out.detach(), [p.grad.clone() for p in layer.parameters()])
    assert grads["standard"][0].sum() > 50
    assert torch.equal(grads["blocks"][0], grads["standard"][0])
    for a, b in zip(grads["blocks"][1], grads["standard"][1]):
        # float64, the same terms summed in other orders (see test_gradients_equal_standard)
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-7 * max(1.0, float(b.abs().max())))


def network_layer(seed=0):
    from cellfit import ALIF

    torch.manual_seed(seed)
    layer = ALIF(20, 8, dt_ms=0.5, arp_ms=2.0, recurrent=True, dtype=F64, tau_adapt_ms=40.0, adapt_scale=0.4)
    with torch.no_grad():
        layer.weight.mul_(3.0).abs_()
    x = (torch.rand(4, 20, 203, dtype=F64) < 0.2).to(F64)
    return layer, x


def test_repeated_and_retained_backward_reuse_buffers_safely():
    """The recorded blocks and the backward's scratch are recycled: results must not depend on it."""
    layer, x = network_layer()
    with use_block_kernel("blockwise"):
        grads = []
        for _ in range(3):  # buffers from the previous step are reused
            layer.zero_grad()
            layer(x).sum().backward()
            grads.append(layer.weight.grad.clone())
        # two graphs alive at once, backward in the opposite order
        layer.zero_grad()
        out1, out2 = layer(x), layer(x * 0.5)
        out2.sum().backward()
        layer.zero_grad()
        out1.sum().backward()
        grads.append(layer.weight.grad.clone())
        # the same graph twice
        layer.zero_grad()
        loss = layer(x).sum()
        loss.backward(retain_graph=True)
        loss.backward()
        twice = layer.weight.grad.clone()
    for g in grads[1:]:
        assert torch.equal(g, grads[0])
    torch.testing.assert_close(twice, 2 * grads[0], rtol=1e-12, atol=0)  # float64 doubling: one rounding
    blockwise.clear_workspace()


def test_linear_scan_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 37, 2, dtype=F64, generator=g)
    b = torch.randn(3, 37, 2, dtype=F64, generator=g)
    fwd, rev = torch.zeros_like(b), torch.zeros_like(b)
    h = torch.zeros(3, 2, dtype=F64)
    for m in range(37):
        h = a[:, m] * h + b[:, m]
        fwd[:, m] = h
    h = torch.zeros(3, 2, dtype=F64)
    for m in reversed(range(37)):
        h = a[:, m] * h + b[:, m]
        rev[:, m] = h
    # log-depth scan: the same products summed in another order (float64 rounding)
    torch.testing.assert_close(blockwise.linear_scan(a, b), fwd, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(blockwise.linear_scan(a, b, reverse=True), rev, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_grad", [False, True])
def test_channel_linear_matches_einsum(x_grad):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 11, dtype=F64, generator=g).requires_grad_(x_grad)
    w = torch.randn(4, 5, dtype=F64, generator=g, requires_grad=True)
    b = torch.randn(4, dtype=F64, generator=g, requires_grad=True)
    up = torch.randn(3, 4, 11, dtype=F64, generator=g)
    got = channel_linear(x, w, b)
    want = torch.einsum("oi,bit->bot", w, x) + b[None, :, None]
    inputs = [w, b] + ([x] if x_grad else [])
    # float64 products summed in another order: agree to rounding
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for a, c in zip(torch.autograd.grad(got, inputs, up), torch.autograd.grad(want, inputs, up)):
        torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="expected x"):
        channel_linear(x, w[:, :3])


def test_float32_blockwise_matches_the_torch_loop():
    """float32 on a network-sized layer: both CPU implementations find the same spikes as the
    float64 reference where no decision is a near tie."""
    layer, x = network_layer(3)
    with torch.no_grad():
        ref = alif_standard(layer.input_current(x), layer.step_parameters(), w_rec=layer.weight_rec,
                            record=("v", "theta"))  # fmt: skip
    # float32 sums over these 203 steps err by ~1e-6 relative; the reference keeps every decision
    # 1e-4 (100x that) away from the threshold on this seed, so float32 must agree exactly
    assert (ref.v - ref.theta).abs().min() > 1e-4
    layer = layer.float()
    with torch.no_grad():
        cur = layer.input_current(x.float())
        outs = {k: block_spikes(cur, layer.step_parameters(), w_rec=layer.weight_rec, kernel=k).spikes
                for k in ("torch", "blockwise")}  # fmt: skip
    assert outs["torch"].sum() > 10
    assert torch.equal(outs["torch"], outs["blockwise"])
    assert torch.equal(outs["blockwise"].double(), ref.spikes)
