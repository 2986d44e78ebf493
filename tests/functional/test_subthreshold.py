"""The ``alif_sub`` variant: a linear subthreshold adaptation current that follows the stimulus.

It changes the input current only (``cellfit.functional.linear.subthreshold_adapted``), so both
engines receive the same current and must produce identical spike trains; the tests check the
filter against its recursion, the engines' spikes and gradients, and the layer's parameters.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cellfit import ALIF
from cellfit.fit.config import MODELS, FitConfig
from cellfit.fit.fitter import parameter_names, physical_parameters, predict_population, predict_spikes
from cellfit.functional.alif import block_spikes
from cellfit.functional.linear import subthreshold_adapted
from cellfit.functional.triton_blocks import available
from cellfit.modules import SUB_AMP_MAX

from test_glif import assert_same_spikes_up_to_ties, first_near_tie
from test_triton_blocks import HAS_TRITON

F64 = torch.float64


def _recursion(x: torch.Tensor, k: torch.Tensor, log_r: torch.Tensor) -> torch.Tensor:
    """w[t] = r w[t-1] + (1 - r) x[t] from w = 0, y = x - k w: the definition, one step at a time."""
    r = log_r.exp()[:, None]
    w = torch.zeros_like(x[..., 0])
    out = torch.empty_like(x)
    for t in range(x.shape[-1]):
        w = r.T * w + (1 - r.T) * x[..., t]
        out[..., t] = x[..., t] - k * w
    return out


def test_filter_equals_its_recursion_and_a_step_response():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 700, dtype=F64)
    k = torch.tensor([0.1, 0.5, 0.9], dtype=F64)
    log_r = -0.1 / torch.tensor([5.0, 50.0, 2000.0], dtype=F64)
    # FFT convolution vs the recursion in float64: rounding of a 2^k-point FFT, far below 1e-10
    torch.testing.assert_close(subthreshold_adapted(x, k, log_r), _recursion(x, k, log_r), rtol=0, atol=1e-10)
    # a sustained step: the whole step at onset (less one step of the low-pass), 1 - k of it in the steady state
    step = torch.ones(1, 1, 20_000, dtype=F64)
    y = subthreshold_adapted(step, torch.tensor([0.6], dtype=F64), torch.tensor([-0.1 / 100.0], dtype=F64))[0, 0]
    assert y[0] == pytest.approx(1 - 0.6 * (1 - math.exp(-0.001)), abs=1e-12)
    assert y[-1] == pytest.approx(0.4, abs=1e-6)  # 2000 ms = 20 time constants: e^-20 of the transient left
    assert bool((y[1:] <= y[:-1]).all())  # it decays monotonically
    with pytest.raises(ValueError, match="amp and log_decay"):
        subthreshold_adapted(x, k[:2], log_r[:2])


def _layer(engine: str, n: int, k, tau_sub, seed: int = 1) -> ALIF:
    torch.manual_seed(seed)
    layer = ALIF(1, n, dt_ms=0.1, arp_ms=2.0, engine=engine, dtype=F64, tau_adapt_ms=80.0, adapt_scale=0.4,
                 sub=True, sub_amp=k, tau_sub_ms=tau_sub)
    with torch.no_grad():
        layer.weight.fill_(2.5)
        layer.bias.fill_(0.3)
    return layer


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.02, 0.9), min_size=1, max_size=4), st.floats(12.0, 2500.0), st.integers(0, 2**31 - 1),
       st.floats(0.5, 3.0))
def test_engines_give_identical_spikes(ks, tau_sub, seed, scale):
    """Property: for any amplitude, time constant and stimulus, the Block algorithm and the step-by-step
    engine spike at exactly the same steps (one current, computed once, goes into both)."""
    n = len(ks)
    g = torch.Generator().manual_seed(seed)
    x = scale * (1.0 + 0.4 * torch.randn(2, 1, 3000, generator=g, dtype=F64))
    spikes = {e: _layer(e, n, torch.tensor(ks, dtype=F64), tau_sub)(x) for e in ("standard", "blocks")}
    assert torch.equal(spikes["standard"], spikes["blocks"])


def test_gradients_reach_the_current_and_engines_agree():
    x = 1.2 * (1.0 + 0.4 * torch.randn(2, 1, 2000, generator=torch.Generator().manual_seed(3), dtype=F64))
    grads = {}
    for engine in ("standard", "blocks"):
        layer = _layer(engine, 3, torch.tensor([0.2, 0.5, 0.8], dtype=F64), 150.0)
        loss = layer(x).sum()
        loss.backward()
        assert loss.item() > 10
        grads[engine] = {k: p.grad.clone() for k, p in layer.named_parameters()}
    for name in ("sub_amp_raw", "tau_sub.raw"):
        assert grads["blocks"][name].abs().sum() > 0, name
    for name, g in grads["blocks"].items():
        # replay vs back-propagation through the recursion: float64 rounding (as for the other variants)
        torch.testing.assert_close(g, grads["standard"][name], rtol=1e-8, atol=1e-10, msg=name)


def test_layer_adds_exactly_the_named_parameters_and_checks_them():
    plain = [k for k, _ in ALIF(1, 2).named_parameters()]
    layer = ALIF(1, 2, sub=True, sub_amp=0.3, tau_sub_ms=[100.0, 400.0], dtype=F64)
    assert [k for k, _ in layer.named_parameters()] == plain[:3] + ["sub_amp_raw"] + plain[3:] + ["tau_sub.raw"]
    torch.testing.assert_close(layer.sub_amp, torch.full((2,), 0.3, dtype=F64))
    torch.testing.assert_close(layer.tau_sub_ms, torch.tensor([100.0, 400.0], dtype=F64))
    assert ALIF(1, 2).sub_amp is None and ALIF(1, 2).tau_sub_ms is None and "sub=True" in repr(layer)
    with torch.no_grad():
        layer.sub_amp_raw.fill_(60.0)
    assert layer.sub_amp.max() <= SUB_AMP_MAX
    with pytest.raises(ValueError, match="sub_amp"):
        ALIF(1, 2, sub=True, sub_amp=0.97)
    with pytest.raises(ValueError, match="one input"):
        ALIF(3, 2, sub=True)
    # a constant stimulus at k = 0.5: the current the neuron sees settles at half the stimulus
    small = ALIF(1, 1, sub=True, sub_amp=0.5, tau_sub_ms=20.0, dtype=F64)
    with torch.no_grad():
        small.weight.fill_(1.0)
        small.bias.fill_(0.0)
    cur = small.input_current(torch.full((1, 1, 5000), 0.8, dtype=F64))
    assert cur[0, 0, -1].item() == pytest.approx(0.4, abs=1e-9)


def test_fit_model_of_the_variant_round_trips_and_predicts_like_the_layer():
    assert MODELS["alif_sub"] == dict(reset=False, n_asc=0, sub=True)
    cfg = FitConfig(model="alif_sub")
    start = cfg.variant_start("alif_sub")
    assert start == dict(model="alif_sub", sub_amp=cfg.sub_amp_init, tau_sub_ms=cfg.tau_sub_init_ms)
    init = dict(cfg.initial_values(), **start, gain=2.0, bias=0.4)
    model = cfg.build_model(init)
    names = parameter_names(model)
    assert names[-2:] == ("sub_amp", "tau_sub_ms")
    params = physical_parameters(model)
    assert params["sub_amp"] == pytest.approx(cfg.sub_amp_init, rel=1e-6)
    assert params["tau_sub_ms"] == pytest.approx(cfg.tau_sub_init_ms, rel=1e-5)
    assert set(cfg.at_bound(params)) == set()
    assert cfg.at_bound(dict(params, sub_amp=1e-4)) == ["sub_amp"]
    again = cfg.build_model(init)
    again.load_state_dict(model.state_dict())
    rng = np.random.default_rng(0)
    current = (1.0 + 0.5 * rng.standard_normal((3, 4000))).astype(np.float32)
    one = predict_spikes(again, current)["spikes"]
    both = predict_population([model, again], current)
    assert one.sum() > 0 and np.array_equal(both[0], one) and np.array_equal(both[1], one)
    plain = FitConfig().build_model(dict(cfg.initial_values(), gain=2.0, bias=0.4))
    assert not np.array_equal(predict_spikes(plain, current)["spikes"], one)  # the current changes the spikes


def _combined(engine: str, ks, tau_sub: float, v_reset: float, amps, taus) -> ALIF:
    """``alif_sub_reset_asc``: the subthreshold current, a learnable reset and two after-spike currents."""
    layer = ALIF(1, len(ks), dt_ms=0.1, arp_ms=2.0, engine=engine, dtype=F64, tau_adapt_ms=80.0, adapt_scale=0.4,
                 sub=True, sub_amp=torch.tensor(ks, dtype=F64), tau_sub_ms=tau_sub, reset=True, v_reset=v_reset,
                 n_asc=2, asc_amp=torch.tensor(amps, dtype=F64), tau_asc_ms=torch.tensor(taus, dtype=F64))
    with torch.no_grad():
        layer.weight.fill_(2.5)
        layer.bias.fill_(0.3)
    return layer


@settings(max_examples=20, deadline=None)  # 20, not the 40 of the test above: each example runs three engines, the
# slowest (the loop) over 3,000 steps (about 1.5 s per example on 2 cores); the parts it combines keep their own
# property tests (above, and test_glif's reset with after-spike currents)
@given(st.lists(st.floats(0.02, 0.9), min_size=1, max_size=3), st.floats(12.0, 2500.0), st.floats(-0.9, 0.9),
       st.tuples(st.floats(-0.6, 0.6), st.floats(-0.6, 0.6)), st.tuples(st.floats(2.0, 50.0), st.floats(20.0, 1500.0)),
       st.integers(0, 2**31 - 1), st.floats(0.5, 3.0))
def test_the_combined_variant_spikes_identically_in_every_engine(ks, tau_sub, v_reset, amps, taus, seed, scale):
    """Property: with the subthreshold current, a reset anywhere from below rest to just under threshold and
    after-spike currents of either sign, the Block algorithm (and its fused kernel where Triton runs) spike at
    exactly the steps of the step-by-step engine, up to a decision within float64 rounding of the threshold
    (``test_glif.first_near_tie``: after it the two may part, as for ``alif_reset_asc``)."""
    g = torch.Generator().manual_seed(seed)
    x = scale * (1.0 + 0.4 * torch.randn(2, 1, 3000, generator=g, dtype=F64))
    ref_layer = _combined("standard", ks, tau_sub, v_reset, amps, taus)
    ref = ref_layer.simulate(x, record=("v", "theta"))
    tie_at = first_near_tie(ref)
    blk = _combined("blocks", ks, tau_sub, v_reset, amps, taus)(x)
    assert_same_spikes_up_to_ties(blk, ref.spikes, tie_at)
    if HAS_TRITON and available("cpu"):  # the fused kernel (Triton's interpreter here: its block loop runs in
        # Python, so the first 100 steps, five refractory periods and more; test_triton_blocks does the same)
        with torch.no_grad():
            current = ref_layer.input_current(x)[..., :100]
            fused = block_spikes(current, ref_layer.step_parameters(), kernel="triton").spikes
        assert_same_spikes_up_to_ties(fused, ref.spikes[..., :100], tie_at.clamp(max=100))


def test_the_combined_variant_round_trips_as_a_fit_model():
    """The fit's ``alif_sub_reset_asc`` model holds every extra parameter and builds again from its values."""
    assert MODELS["alif_sub_reset_asc"] == dict(reset=True, n_asc=2, sub=True)
    cfg = FitConfig(model="alif_sub_reset_asc")
    start = cfg.variant_start("alif_sub_reset_asc")
    assert set(start) == {"model", "v_reset", "asc_amp", "tau_asc_ms", "sub_amp", "tau_sub_ms"}
    init = dict(cfg.initial_values(), **dict(start, v_reset=0.5, asc_amp=[0.2, -0.1]), gain=2.0, bias=0.4)
    params = physical_parameters(cfg.build_model(init))
    assert params["v_reset"] == pytest.approx(0.5, rel=1e-5) and params["sub_amp"] == pytest.approx(cfg.sub_amp_init, rel=1e-5)
    assert (params["asc_amp_1"], params["asc_amp_2"]) == pytest.approx((0.2, -0.1), rel=1e-5)
    rng = np.random.default_rng(0)
    current = (1.0 + 0.5 * rng.standard_normal((2, 3000))).astype(np.float32)
    both = predict_spikes(cfg.build_model(init), current)["spikes"]
    assert both.sum() > 0
    # each extra changes the spikes: without the current (alif_reset_asc) and without the reset and currents (alif_sub)
    no_sub = {k: v for k, v in init.items() if k not in ("sub_amp", "tau_sub_ms")}
    no_reset = {k: v for k, v in init.items() if k not in ("v_reset", "asc_amp", "tau_asc_ms")}
    for other in (dict(no_sub, model="alif_reset_asc"), dict(no_reset, model="alif_sub")):
        assert not np.array_equal(predict_spikes(cfg.build_model(other), current)["spikes"], both), other["model"]
