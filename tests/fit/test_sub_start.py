"""Round 10: a cell whose subthreshold voltage shows a subthreshold adaptation current starts as ``alif_sub``.

The voltage fit with the current recovers known parameters from a voltage made by the linear model; the gate
(``FitConfig.sub_r2_gain``) takes such a cell and leaves a plain leaky integrator and an uninformative voltage
alone; the default search fits a mixed batch, each cell in its own variant. Round 11: a cell in the zone below the
gate (``FitConfig.sub_zone_gain``) is fitted in both variants and keeps alif_sub only by the extension margin.
"""

import dataclasses

import numpy as np
import pytest
import torch

from cellfit import ALIF
from cellfit.fit import FitConfig
from cellfit.fit.config import GRID_RESTARTS, fit_config
from cellfit.fit.fitter import TrainingSet
from cellfit.fit.init import (VOLTAGE_MIN_R2, initial_starts, initial_values, post_spike_voltage, sub_start,
                              subthreshold_init)
from cellfit.fit.select import choose, fit_candidates

F64 = torch.float64
GRID = (30.0, 100.0, 300.0, 1000.0)


def _stimulus(seed: int, shape=(2, 3, 10_000), dt_ms: float = 0.1, spread: float = 0.3) -> np.ndarray:
    """Noise epochs at three amplitudes, smoothed over ~3 ms (the protocol's pink noise, roughly); ``spread``: the
    fluctuations' size relative to the epoch's mean."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(shape)
    a = np.exp(-dt_ms / 3.0)
    for t in range(1, shape[-1]):
        z[..., t] = a * z[..., t - 1] + np.sqrt(1 - a * a) * z[..., t]
    return (np.array([0.75, 1.0, 1.5])[None, :, None] * 0.5 * (1.0 + spread * z)).astype(np.float32)


def _voltage(x: np.ndarray, tau_m: float, gain: float, bias: float, k: float, tau_sub: float, dt_ms: float = 0.1):
    """The subthreshold potential of the linear model, from rest: membrane filter of g (x - k L x) + b."""
    flat = torch.as_tensor(x.reshape(-1, 1, x.shape[-1]), dtype=F64)
    layer = ALIF(1, 1, dt_ms=dt_ms, dtype=F64, sub=k > 0, **(dict(sub_amp=k, tau_sub_ms=tau_sub) if k > 0 else {}))
    with torch.no_grad():
        layer.weight.fill_(gain)
        layer.bias.fill_(bias)
        cur = layer.input_current(flat)[:, 0]
    beta = np.exp(-dt_ms / tau_m)
    v = np.zeros_like(cur.numpy())
    for t in range(1, v.shape[-1]):
        v[:, t] = beta * v[:, t - 1] + (1 - beta) * cur[:, t].numpy()
    return v.reshape(x.shape).astype(np.float32)


def test_voltage_fit_with_the_current_recovers_its_parameters():
    x = _stimulus(0)
    v = _voltage(x, tau_m=20.0, gain=2.0, bias=0.2, k=0.6, tau_sub=100.0)
    no_spikes = np.zeros_like(x)
    fit = subthreshold_init(x, v, no_spikes, 0.1, sub_tau_ms=GRID, n_grid=24)
    plain = subthreshold_init(x, v, no_spikes, 0.1)
    assert fit.tau_sub_ms == 100.0  # the grid point of the truth
    # the model that made the voltage is in the fitted family: only the tau_m grid (24 coarse points, 9 fine
    # around the best over 1-200 ms, about 6% apart) keeps the estimates from the truth
    assert fit.sub_amp == pytest.approx(0.6, rel=0.05)
    assert fit.tau_m_ms == pytest.approx(20.0, rel=0.1) and fit.gain == pytest.approx(2.0, rel=0.1)
    assert fit.r2 > 0.99 and fit.r2 - plain.r2 > 0.15  # without the current the fit misses a lot
    assert plain.sub_amp is None and plain.tau_sub_ms is None
    with pytest.raises(ValueError, match="give one"):
        subthreshold_init(x, v, no_spikes, 0.1, sub_tau_ms=GRID, spike_tau_ms=(100.0,))


def test_the_gate_takes_a_cell_with_the_current_and_leaves_the_others():
    cfg = FitConfig()
    assert cfg.sub_candidates and cfg.sub_r2_gain == 0.15
    x = _stimulus(1)
    quiet = np.zeros_like(x)
    # (with tau_sub = tau_m the two filters are hard to tell apart, and the plain fit explains more of the voltage)
    with_current = TrainingSet(x, quiet, _voltage(x, tau_m=20.0, gain=2.0, bias=0.1, k=0.6, tau_sub=100.0))
    start = sub_start(cfg, with_current, subthreshold_init(x, with_current.voltage, quiet, 0.1))
    assert start["model"] == "alif_sub" and start["tau_sub_ms"] == 100.0
    assert start["sub_amp"] == pytest.approx(0.6, rel=0.05) and start["voltage_r2"] > start["voltage_r2_plain"] + 0.15
    init = initial_values(cfg, with_current)
    assert init["model"] == "alif_sub" and init["method"] == "voltage with subthreshold current"
    assert "model" not in initial_values(cfg, with_current, allow_sub=False)  # a bursting cell: ALIF (and bursts)
    assert "model" not in initial_values(dataclasses.replace(cfg, sub_r2_gain=None), with_current)
    # a plain leaky integrator: the current explains nothing more
    plain = TrainingSet(x, quiet, _voltage(x, tau_m=30.0, gain=3.0, bias=0.1, k=0.0, tau_sub=30.0))
    assert sub_start(cfg, plain, subthreshold_init(x, plain.voltage, quiet, 0.1)) is None
    assert "model" not in initial_values(cfg, plain)
    # a voltage that says little (noise): no start from it
    noisy = TrainingSet(x, quiet, np.random.default_rng(2).standard_normal(x.shape).astype(np.float32) * 0.3)
    assert sub_start(cfg, noisy, subthreshold_init(x, noisy.voltage, quiet, 0.1, min_r2=0.0)) is None


def test_only_the_default_search_starts_cells_as_alif_sub():
    assert not fit_config(model="alif").sub_candidates and fit_config(model="alif").sub_r2_gain is None
    assert fit_config(model=None).sub_candidates
    assert not FitConfig(restarts=1, **GRID_RESTARTS).sub_candidates
    assert not FitConfig(init="default").sub_candidates
    with pytest.raises(ValueError, match="sub_r2_gain"):
        FitConfig(sub_r2_gain=0.0)
    with pytest.raises(ValueError, match="sub_r2_gain"):
        FitConfig(sub_tau_grid_ms=())


def test_a_batch_fits_each_cell_in_its_own_variant():
    """An ALIF cell and a cell with a subthreshold current (spikes and voltage of the model itself) in one call:
    the first gets ALIF candidates, the second ``alif_sub`` ones from its voltage fit, trained as two models."""
    dt = 0.5
    x = _stimulus(3, shape=(2, 3, 2000), dt_ms=dt)
    sets = []
    for sub in (False, True):
        layer = ALIF(1, 1, dt_ms=dt, dtype=F64, tau_mem_ms=20.0, tau_adapt_ms=150.0, adapt_scale=0.3, sub=sub,
                     **(dict(sub_amp=0.6, tau_sub_ms=100.0) if sub else {}))
        with torch.no_grad():
            layer.weight.fill_(4.0 if sub else 2.2)
            layer.bias.fill_(0.0)
        flat = torch.as_tensor(x.reshape(-1, 1, x.shape[-1]), dtype=F64)
        with torch.no_grad():
            trace = layer.simulate(flat, record=("v",))
        spikes = trace.spikes.reshape(x.shape).numpy().astype(np.float32)
        volt = trace.v.reshape(x.shape).numpy().astype(np.float32)
        assert spikes.sum() > 20
        sets.append(TrainingSet(x, spikes, volt))
    cfg = FitConfig(dt_ms=dt, epochs=4, bootstrap=2, validation_s=0.0, burst_fraction=None)
    cands, refits = fit_candidates(sets, cfg, device="cpu", progress=False)
    assert {c.init.get("model", "alif") for c in cands[0]} == {"alif"}
    assert {c.init["model"] for c in cands[1]} == {"alif_sub"} and len(cands[1]) == cfg.restarts
    assert all(c.init["method"].startswith("voltage with subthreshold current") for c in cands[1])
    assert cands[1][0].model.sub and cands[1][0].model.sub_amp.item() == pytest.approx(0.6, abs=0.15)
    assert refits is not None and {r.init["model"] for r in refits[1]} == {"alif_sub"}
    assert {r.init.get("model", "alif") for r in refits[0]} == {"alif"}


def test_a_forced_alif_sub_fit_ranks_its_grid_starts_with_the_current(monkeypatch):
    """``--model alif_sub``: the adaptation grid simulates the subthreshold current the fit will train with (its
    configured start), not the ALIF model without it."""
    import cellfit.fit.select as select

    seen = []

    def spy(inits, *args, **kwargs):
        seen.extend(dict(i) for i in inits)
        return [[dict(i)] for i in inits]

    monkeypatch.setattr(select, "grid_init", spy)
    dt = 0.5
    x = _stimulus(4, shape=(2, 3, 2000), dt_ms=dt)
    sets = [TrainingSet(x, (np.random.default_rng(5).random(x.shape) < 0.01).astype(np.float32))]
    cfg = fit_config(model="alif_sub", dt_ms=dt, epochs=1, bootstrap=0, validation_s=0.0)
    fit_candidates(sets, cfg, device="cpu", progress=False)
    assert seen and all(i["model"] == "alif_sub" and i["sub_amp"] == cfg.sub_amp_init
                        and i["tau_sub_ms"] == cfg.tau_sub_init_ms for i in seen)


def _zone_config(data: TrainingSet, **fields) -> FitConfig:
    """A configuration whose zone brackets ``data``'s measured gain from the current (half of it to 1.5 times it),
    so the test does not hang on where the default thresholds fall for a made-up voltage."""
    x, v, s = data.current, data.voltage, data.spikes
    plain = subthreshold_init(x, v, s, fields.get("dt_ms", 0.1))
    full = subthreshold_init(x, v, s, fields.get("dt_ms", 0.1), n_grid=24, sub_tau_ms=GRID)
    gain = full.r2 - plain.r2
    assert gain > 0.02
    return FitConfig(sub_r2_gain=1.5 * gain, sub_zone_gain=0.5 * gain, sub_min_r2=min(0.5, plain.r2 - 0.01), **fields)


def test_a_cell_in_the_zone_starts_in_both_variants():
    """Round 11: a voltage the current explains somewhat better (between ``sub_zone_gain`` and ``sub_r2_gain``)
    gives the ALIF start and an alif_sub one; above the zone only alif_sub, below it only ALIF."""
    x = _stimulus(6)
    quiet = np.zeros_like(x)
    v = _voltage(x, tau_m=20.0, gain=2.0, bias=0.1, k=0.3, tau_sub=300.0)
    data = TrainingSet(x, quiet, v + np.random.default_rng(7).standard_normal(v.shape).astype(np.float32) * 0.05)
    cfg = _zone_config(data)
    both = initial_starts(cfg, data)
    assert [s.get("model", "alif") for s in both] == ["alif", "alif_sub"]
    assert both[0]["method"] == "voltage" and both[1]["method"] == "voltage with subthreshold current"
    assert initial_values(cfg, data) == both[0]
    assert [s.get("model", "alif") for s in initial_starts(cfg, data, allow_sub=False)] == ["alif"]
    above = dataclasses.replace(cfg, sub_r2_gain=cfg.sub_zone_gain * 1.01)  # the gain is above the gate now
    assert [s["model"] for s in initial_starts(above, data)] == ["alif_sub"]
    # sub_alone False (round 28): above the gate too, both ways, from the same two voltage fits as in the zone
    assert initial_starts(dataclasses.replace(above, sub_alone=False), data) == both
    assert initial_starts(dataclasses.replace(above, sub_alone=False), data, allow_sub=False) == [both[0]]
    assert len(initial_starts(dataclasses.replace(cfg, sub_zone_gain=None), data)) == 1
    with pytest.raises(ValueError, match="sub_zone_gain"):
        FitConfig(sub_zone_gain=0.2)  # above sub_r2_gain 0.15


def test_a_rejected_plain_fit_counts_as_the_acceptance_level():
    """A plain voltage fit below :data:`VOLTAGE_MIN_R2` is rejected (None); with ``sub_min_r2`` 0 its gain is
    measured from that level (understated, never overstated), and with the default floor the cell is left alone."""
    x = _stimulus(8)
    quiet = np.zeros_like(x)
    v = _voltage(x, tau_m=20.0, gain=2.0, bias=0.1, k=0.9, tau_sub=30.0)
    data = TrainingSet(x, quiet, v)
    full = subthreshold_init(x, v, quiet, 0.1, n_grid=24, sub_tau_ms=GRID)
    assert sub_start(FitConfig(), data, None) is None  # default floor 0.5
    start = sub_start(FitConfig(sub_min_r2=0.0, sub_r2_gain=full.r2 - VOLTAGE_MIN_R2 - 0.01), data, None)
    assert start["model"] == "alif_sub" and start["voltage_r2_plain"] is None
    assert sub_start(FitConfig(sub_min_r2=0.0, sub_r2_gain=full.r2 - VOLTAGE_MIN_R2 + 0.01), data, None) is None


def test_a_cell_between_the_low_floor_and_the_floor_starts_in_both_variants():
    """Rounds 17-18: a plain voltage fit under ``sub_min_r2`` but at least ``sub_low_r2`` whose fit with the current
    gains ``sub_r2_gain`` gives the ALIF start and an alif_sub one (fitted both ways, as a zone cell); without
    ``sub_low_r2``, or with a gain under ``sub_r2_gain``, only ALIF."""
    x = _stimulus(8)
    quiet = np.zeros_like(x)
    v = _voltage(x, tau_m=20.0, gain=2.0, bias=0.1, k=0.9, tau_sub=30.0)
    data = TrainingSet(x, quiet, v)
    plain = subthreshold_init(x, v, quiet, 0.1)
    full = subthreshold_init(x, v, quiet, 0.1, n_grid=24, sub_tau_ms=GRID)
    assert plain is not None and full.r2 - plain.r2 > 0.1  # a strong current: the plain fit explains less
    cfg = FitConfig(sub_min_r2=min(0.99, plain.r2 + 0.05), sub_r2_gain=0.5 * (full.r2 - plain.r2), sub_zone_gain=None,
                    sub_low_r2=None)
    assert [s.get("model", "alif") for s in initial_starts(cfg, data)] == ["alif"]  # under the floor: ALIF
    low = dataclasses.replace(cfg, sub_low_r2=max(0.0, plain.r2 - 0.05))
    both = initial_starts(low, data)
    assert [s.get("model", "alif") for s in both] == ["alif", "alif_sub"]
    assert both[0]["method"] == "voltage" and both[0]["voltage_r2"] == pytest.approx(plain.r2)
    assert both[1]["method"] == "voltage with subthreshold current"
    assert initial_starts(dataclasses.replace(low, sub_low_r2=min(0.98, plain.r2 + 0.01)), data) == [both[0]]
    weak = dataclasses.replace(low, sub_r2_gain=1.01 * (full.r2 - plain.r2))  # the gain is under the gate
    assert [s.get("model", "alif") for s in initial_starts(weak, data)] == ["alif"]
    assert FitConfig().sub_low_r2 == 0.3  # the default since round 18
    with pytest.raises(ValueError, match="sub_low_r2"):
        FitConfig(sub_low_r2=1.0)


def _spike_at_end(x: np.ndarray, v: np.ndarray, after: float, lead: int = 100):
    """One spike ``lead`` bins before each trace's end, the voltage after it held at ``after`` (where it resets)."""
    spikes = np.zeros_like(x)
    spikes[..., -lead] = 1.0
    v = v.copy()
    v[..., -lead + 1:] = after
    return spikes, v


def test_post_spike_voltage_is_the_median_voltage_after_the_spikes_that_stand_alone():
    v = np.zeros((1, 2, 400), np.float32)
    s = np.zeros_like(v)
    s[0, 0, 100], v[0, 0, 150] = 1.0, 0.8
    s[0, 1, 100], v[0, 1, 150] = 1.0, 0.6
    s[0, 1, 300], s[0, 1, 320], v[0, 1, 350] = 1.0, 1.0, -5.0  # a spike 2 ms later: only the second one counts
    assert post_spike_voltage(v, s, 0.1) == pytest.approx(np.median([0.8, 0.6, 0.0]))
    assert post_spike_voltage(v, np.zeros_like(v), 0.1) is None
    s_end = np.zeros_like(v)
    s_end[0, 0, 380] = 1.0  # too close to the end to be measured
    assert post_spike_voltage(v, s_end, 0.1) is None


def test_a_cell_under_the_band_that_resets_near_threshold_starts_both_ways_from_the_default_current():
    """Round 19: a plain voltage fit under ``sub_default_below`` (and under the band of ``sub_low_r2``) whose fit with
    the current gains ``sub_r2_gain`` and whose voltage after a spike is at least ``sub_default_reset`` gives the ALIF
    start and an alif_sub one that is the same start with the default current (not the voltage fit's current); with
    a gain under the gate, a reset low, or None, only ALIF."""
    x = _stimulus(8)
    spikes, v = _spike_at_end(x, _voltage(x, tau_m=20.0, gain=2.0, bias=0.1, k=0.9, tau_sub=30.0), after=0.8)
    data = TrainingSet(x, spikes, v)
    plain = subthreshold_init(x, v, spikes, 0.1)
    full = subthreshold_init(x, v, spikes, 0.1, n_grid=24, sub_tau_ms=GRID)
    assert plain is not None and full.r2 - plain.r2 > 0.1
    cfg = FitConfig(sub_min_r2=min(0.99, plain.r2 + 0.05), sub_r2_gain=0.5 * (full.r2 - plain.r2), sub_zone_gain=None,
                    sub_low_r2=min(0.99, plain.r2 + 0.02), sub_default_below=None)
    assert [s.get("model", "alif") for s in initial_starts(cfg, data)] == ["alif"]  # under the band: ALIF
    under = dataclasses.replace(cfg, sub_default_below=min(1.0, plain.r2 + 0.01))
    both = initial_starts(under, data)
    assert [s.get("model", "alif") for s in both] == ["alif", "alif_sub"]
    assert both[0]["method"] == "voltage" and both[0]["voltage_r2"] == pytest.approx(plain.r2)
    assert both[1]["method"] == "voltage with default subthreshold current"
    assert both[1]["sub_amp"] == under.sub_amp_init and both[1]["tau_sub_ms"] == under.tau_sub_init_ms
    assert {k: both[1][k] for k in ("tau_m_ms", "gain", "bias")} == {k: both[0][k] for k in ("tau_m_ms", "gain", "bias")}
    assert initial_starts(dataclasses.replace(under, sub_default_below=max(0.01, plain.r2 - 0.01)), data) == [both[0]]
    weak = dataclasses.replace(under, sub_r2_gain=1.01 * (full.r2 - plain.r2))  # the gain is under the gate
    assert [s.get("model", "alif") for s in initial_starts(weak, data)] == ["alif"]
    assert [s.get("model", "alif") for s in initial_starts(dataclasses.replace(under, sub_default_reset=0.81), data)] \
        == ["alif"]  # its voltage after the spike, 0.8, is under a gate of 0.81
    band = dataclasses.replace(under, sub_low_r2=max(0.0, plain.r2 - 0.05))  # a band cell keeps its voltage-fit start
    assert initial_starts(band, data)[1]["method"] == "voltage with subthreshold current"
    assert (FitConfig().sub_default_below, FitConfig().sub_default_reset) == (None, 0.5)  # opt-in (round 19's verdict)
    with pytest.raises(ValueError, match="sub_default_below"):
        FitConfig(sub_default_below=0.0)


def test_a_zone_cell_gets_candidates_of_both_variants_and_keeps_alif_sub_only_by_the_margin():
    dt = 0.5
    x = _stimulus(9, shape=(2, 3, 2000), dt_ms=dt)
    layer = ALIF(1, 1, dt_ms=dt, dtype=F64, tau_mem_ms=20.0, tau_adapt_ms=150.0, adapt_scale=0.3, sub=True,
                 sub_amp=0.3, tau_sub_ms=300.0)
    with torch.no_grad():
        layer.weight.fill_(3.0)
        layer.bias.fill_(0.0)
        trace = layer.simulate(torch.as_tensor(x.reshape(-1, 1, x.shape[-1]), dtype=F64), record=("v",))
    spikes = trace.spikes.reshape(x.shape).numpy().astype(np.float32)
    volt = trace.v.reshape(x.shape).numpy().astype(np.float32)
    data = TrainingSet(x, spikes, volt + np.random.default_rng(10).standard_normal(x.shape).astype(np.float32) * 0.05)
    cfg = _zone_config(data, dt_ms=dt, epochs=3, bootstrap=0, validation_s=0.0, burst_fraction=None)
    cands, _ = fit_candidates([data], cfg, device="cpu", progress=False)
    models = [c.init.get("model", "alif") for c in cands[0]]
    assert models == ["alif"] * cfg.restarts + ["alif_sub"] * cfg.restarts
    best = {m: min(c.best_loss for c, mm in zip(cands[0], models) if mm == m) for m in ("alif", "alif_sub")}
    for margin in (0.0, 0.05, 0.5):  # equal validation scores (none vetoed): the training loss and the margin decide
        index, basis = choose(cands[0], [1.0] * len(models), cfg.validation_veto, margin)
        keep_sub = best["alif_sub"] < best["alif"] * (1.0 - margin)
        assert models[index] == ("alif_sub" if keep_sub else "alif") and "another variant" in basis
    assert all("patience" not in c.init for c in cands[0])
    # sub_patience (round 29): every candidate of a cell with alif_sub candidates carries it, both variants
    longer, _ = fit_candidates([data], dataclasses.replace(cfg, sub_patience=7), device="cpu", progress=False)
    assert [c.init.get("model", "alif") for c in longer[0]] == models
    assert all(c.init["patience"] == 7 for c in longer[0])
    plain = dataclasses.replace(cfg, sub_patience=7, sub_r2_gain=None)  # no alif_sub start: the usual patience
    assert all("patience" not in c.init for c in fit_candidates([data], plain, device="cpu", progress=False)[0][0])
    # sub_patience_scope "both_ways" (round 32): this cell (fitted both ways) carries it, one fitted alif_sub alone not
    both = dataclasses.replace(cfg, sub_patience=7, sub_patience_scope="both_ways")
    assert all(c.init["patience"] == 7 for c in fit_candidates([data], both, device="cpu", progress=False)[0][0])
    alone = dataclasses.replace(both, sub_r2_gain=1.5 * cfg.sub_zone_gain)  # its voltage gain is now above the gate
    cands = fit_candidates([data], alone, device="cpu", progress=False)[0][0]
    assert [c.init.get("model") for c in cands] == ["alif_sub"] * cfg.restarts
    assert all("patience" not in c.init for c in cands)
    assert all(c.init["patience"] == 7 for c in fit_candidates(
        [data], dataclasses.replace(alone, sub_patience_scope="any"), device="cpu", progress=False)[0][0])
    with pytest.raises(ValueError, match="sub_patience_scope"):
        FitConfig(sub_patience_scope="zone")
    # burst_patience (round 31): every candidate of a bursting cell (every cell here, burst_isi_ms 1 s), the
    # bursting and reset candidates too; such a cell gets no alif_sub start, so sub_patience does not apply
    burst = dataclasses.replace(cfg, sub_patience=7, burst_patience=9, burst_isi_ms=1000.0,
                                burst_fraction=FitConfig().burst_fraction, burst_reset_restarts=1,
                                burst_reset_starts=(0.8,))
    cands = fit_candidates([data], burst, device="cpu", progress=False)[0][0]
    assert [c.init.get("model", "alif") for c in cands] == ["alif"] * cfg.restarts + ["alif_asc"] * 2 + ["alif_reset_asc"]
    assert all(c.init["patience"] == 9 for c in cands)
    assert all("patience" not in c.init for c in fit_candidates(
        [data], dataclasses.replace(cfg, burst_patience=9), device="cpu", progress=False)[0][0])  # not bursting
