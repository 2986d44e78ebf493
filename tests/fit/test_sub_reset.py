"""A reset for a subthreshold fit (``FitConfig.sub_reset_asc``): a kept ``alif_sub`` fit trained again as
``alif_sub_reset_asc`` from its own values, kept where its training loss is the extension margin lower."""

import dataclasses

import numpy as np
import pytest

from cellfit.fit import FitConfig
from cellfit.fit.fitter import CellFitState, TrainingSet, physical_parameters, predict_spikes
from cellfit.fit.select import ValidationSet, fit_by_variant, sub_reset_fits, sub_reset_start, with_sub_reset

DT = 0.5
CFG = FitConfig(dt_ms=DT, epochs=6, bootstrap=0, sub_reset_asc=True)


def _state(init: dict, loss: float, failed: bool = False) -> CellFitState:
    return CellFitState(CFG.build_model(init), dict(init), [loss], [], 1, loss, "failed: x" if failed else "ok")


def _sub_init(**kw) -> dict:
    return {**CFG.initial_values(), **CFG.variant_start("alif_sub"), "method": "voltage with subthreshold", **kw}


def test_the_start_keeps_the_fitted_current_and_adds_the_reset_and_zero_currents():
    kept = _state(_sub_init(tau_m_ms=17.0, sub_amp=0.4, tau_sub_ms=80.0, gain=2.0), 1.0)
    start = sub_reset_start(kept, CFG)
    fitted = physical_parameters(kept.model)
    assert start["model"] == "alif_sub_reset_asc" and start["method"].endswith("+ reset and after-spike currents")
    assert start["v_reset"] == CFG.burst_reset_starts[0] and list(start["asc_amp"]) == [0.0, 0.0]
    for name in ("tau_m_ms", "sub_amp", "tau_sub_ms", "gain", "bias"):
        assert start[name] == fitted[name], name
    again = physical_parameters(CFG.build_model(start))
    assert again["sub_amp"] == pytest.approx(fitted["sub_amp"], rel=1e-5)
    assert again["v_reset"] == pytest.approx(CFG.burst_reset_starts[0], rel=1e-5)
    with pytest.raises(ValueError, match="burst_reset_starts"):
        FitConfig(sub_reset_asc=True, burst_reset_starts=())
    with pytest.raises(ValueError, match="or set sub_reset_asc=False"):  # the default asks for it too
        FitConfig(burst_reset_starts=())


def test_the_extension_is_kept_only_by_the_margin_and_is_scored_like_the_others():
    rng = np.random.default_rng(0)
    # 2 repeats of 2 epochs, the repeats alike (their reliability, by which ETV is normalised, is then defined)
    current = np.broadcast_to(1.0 + 0.5 * rng.standard_normal((2, 1200)), (2, 2, 1200)).astype(np.float32)
    spikes = np.broadcast_to(rng.random((2, 1200)) < 0.01, (2, 2, 1200)).astype(np.float32)
    data = TrainingSet(current[..., :400], spikes[..., :400])
    val = ValidationSet(current, spikes, 400)
    alif = _state(dict(CFG.initial_values(), method="grid"), 1.2)
    sub = _state(_sub_init(gain=3.0, bias=0.2), 1.0)  # fires on this current: its scores are defined
    pick = (1, "training loss", [0.5, 0.6], [0.7, 0.8])
    for loss, kept in ((0.949, True), (0.951, False)):  # margin 0.05 of the kept 1.0
        ext = _state(sub_reset_start(sub, CFG), loss)
        cands, (index, basis, scores, train) = with_sub_reset([alif, sub], pick, ext, data, val, CFG)
        assert cands == [alif, sub, ext] and len(scores) == len(train) == 3
        assert np.isfinite(scores[2]) and np.isfinite(train[2])
        assert (index == 2) == kept and (basis.endswith("loss 0.05 lower") == kept)
    failed = _state(sub_reset_start(sub, CFG), 0.1, failed=True)
    assert with_sub_reset([alif, sub], pick, failed, data, val, CFG)[1][0] == 1  # a failed fit is never kept
    assert with_sub_reset([alif, sub], (1, "b", None, None), failed, data, None, CFG)[1][2:] == (None, None)


def test_a_bursting_cell_with_the_current_is_fitted_better_with_the_reset():
    """A cell made by the combined model (reset near threshold, rebound from the current): the kept ``alif_sub``
    fit trained again with the reset reaches a lower training loss; only kept ``alif_sub`` fits are extended."""
    truth = dict(CFG.initial_values(), model="alif_sub_reset_asc", tau_m_ms=20.0, tau_adapt_ms=150.0,
                 adapt_scale=0.3, gain=3.0, bias=0.2, v_reset=0.9, asc_amp=[0.2, 0.0], tau_asc_ms=[10.0, 200.0],
                 sub_amp=0.5, tau_sub_ms=100.0)
    rng = np.random.default_rng(1)
    x = (0.6 + 0.5 * np.convolve(rng.standard_normal(2 * 2000), np.ones(20) / np.sqrt(20), "same")).astype(np.float32)
    current = np.broadcast_to(x.reshape(2, 2000)[None], (2, 2, 2000)).copy()  # 2 repeats of 2 epochs
    spikes = predict_spikes(CFG.build_model(truth), current.reshape(-1, 2000))["spikes"].reshape(2, 2, 2000)
    assert spikes.sum() > 20
    data = TrainingSet(current, spikes.astype(np.float32))
    (sub,) = fit_by_variant([(0, data, _sub_init())], CFG, "cpu", 0, False, None)
    plain = _state(dict(CFG.initial_values(), method="grid"), 1.0)
    extended = sub_reset_fits([sub, plain], [data, data], CFG, device="cpu", progress=False)
    assert extended[1] is None and extended[0] is not None and not extended[0].failed
    assert extended[0].init["model"] == "alif_sub_reset_asc"
    assert extended[0].best_loss < sub.best_loss
    loose = dataclasses.replace(CFG, extension_margin=0.0)
    assert with_sub_reset([sub], (0, "b", None, None), extended[0], data, None, loose)[1][0] == 1


def test_a_kept_reset_fit_gets_the_subthreshold_current_only_with_burst_sub_reset():
    """``FitConfig.burst_sub_reset`` (round 50, opt-in): a kept ``alif_reset_asc`` fit, whatever its reset range (a
    start above threshold keeps its own), is trained again as ``alif_sub_reset_asc`` from its own values with the
    current at its default start; off (the default), only kept ``alif_sub`` fits are."""
    from cellfit.fit.select import burst_sub_start

    reset = _state(dict(CFG.initial_values(), model="alif_reset_asc", method="grid + reset start 1.4", v_reset=1.4,
                        v_reset_bounds=list(CFG.high_reset_bounds), asc_amp=(0.3, -0.1), tau_asc_ms=(15.0, 300.0)),
                   1.0)
    start = burst_sub_start(reset, CFG)
    assert start["model"] == "alif_sub_reset_asc" and start["method"].endswith("+ subthreshold current")
    assert (start["sub_amp"], start["tau_sub_ms"]) == (CFG.sub_amp_init, CFG.tau_sub_init_ms)
    assert CFG.reset_bounds(start) == CFG.reset_bounds(reset.init)
    fitted, again = physical_parameters(reset.model), physical_parameters(CFG.build_model(start))
    for name in ("tau_m_ms", "v_reset", "asc_amp_1", "tau_asc_2_ms", "gain"):
        assert again[name] == pytest.approx(fitted[name], rel=1e-5), name
    rng = np.random.default_rng(2)
    current = (1.0 + 0.5 * rng.standard_normal((1, 1, 600))).astype(np.float32)
    data = TrainingSet(current, (rng.random((1, 1, 600)) < 0.02).astype(np.float32))
    assert sub_reset_fits([reset], [data], CFG, device="cpu", progress=False) == [None]
    on = dataclasses.replace(CFG, burst_sub_reset=True)
    (ext,) = sub_reset_fits([reset], [data], on, device="cpu", progress=False)
    assert ext is not None and ext.init["model"] == "alif_sub_reset_asc"
    assert CFG.reset_bounds(ext.init) == CFG.reset_bounds(reset.init)
