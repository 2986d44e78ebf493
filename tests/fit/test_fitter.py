"""The fitter on arrays from a known ALIF cell: recovery, engines, batching, config, errors."""

import dataclasses
import json

import math

import numpy as np
import pytest
import torch

from cellfit.fit import ALIFFitter, FitConfig, TrainingSet, fit_population, predict_spikes
from cellfit.fit.fitter import unique_stimuli
from cellfit.fit.init import subthreshold_init
from cellfit.functional import ALIFParameters, alif_blocks

DT = 0.2  # ms: coarse enough to keep the tests fast on 2 CPU cores, fine enough for ARP 2 ms


def smooth_noise(rng, T, corr_steps=25):
    x = rng.normal(size=T + 4 * corr_steps)
    k = np.exp(-np.arange(4 * corr_steps) / corr_steps)
    y = np.convolve(x, k, mode="valid")[:T]
    return y / y.std()


def alif_cell(tau_m=20.0, tau_a=150.0, d=0.5, gain=2.0, bias=0.3, noise=1.0, T=5000, repeats=(3, 4), seed=0):
    """Training/test sets of an ALIF neuron with intrinsic noise (repeats differ), normalised units."""
    rng = np.random.default_rng(seed)
    params = ALIFParameters(*(torch.tensor([v], dtype=torch.float64) for v in (tau_m, tau_a, d)), 2.0).discretise(DT)
    out = {}
    for split, R in zip(("train", "test"), repeats):
        stim = np.stack([a * (0.6 + 0.5 * smooth_noise(rng, T)) for a in (0.8, 1.0, 1.4)])  # (E, T)
        cur = np.broadcast_to(stim, (R,) + stim.shape).copy()
        drive = gain * cur + bias + noise * rng.normal(size=cur.shape)
        tr = alif_blocks(torch.tensor(drive.reshape(-1, 1, T)), params, record=("v",))
        out[split] = (
            cur.astype(np.float32),
            tr.spikes.reshape(cur.shape).numpy().astype(np.float32),
            tr.v.reshape(cur.shape).numpy().astype(np.float32),
        )
    return out


@pytest.fixture(scope="module")
def cell():
    return alif_cell()


FAST = dict(dt_ms=DT, arp_ms=2.0, epochs=60)


def test_recovers_known_cell_and_predicts_held_out(cell):
    cur, spk, volt = cell["train"]
    fitter = ALIFFitter(FitConfig(**FAST), device="cpu").fit(cur, spk, volt)
    etv = fitter.score(cell["test"][0], cell["test"][1])
    assert etv >= 0.8
    assert fitter.params_["tau_m_ms"] == pytest.approx(20.0, rel=0.15)
    assert fitter.params_["tau_adapt_ms"] == pytest.approx(150.0, rel=0.3)


def test_fit_beats_its_initialisation_without_voltage(cell):
    cur, spk, _ = cell["train"]
    cfg = FitConfig(**FAST, init="default", grid_init=False)
    fitter = ALIFFitter(cfg, device="cpu").fit(cur, spk)
    init = ALIFFitter(dataclasses.replace(cfg, epochs=1, lr=1e-12), device="cpu").fit(cur, spk)
    test_cur, test_spk, _ = cell["test"]
    assert fitter.score(test_cur, test_spk) > init.score(test_cur, test_spk) + 0.1


def test_engines_follow_the_same_loss_trajectory():
    data = alif_cell(T=1500, seed=3)
    cur, spk, volt = data["train"]
    runs = {}
    for engine in ("blocks", "standard"):
        cfg = FitConfig(dt_ms=DT, arp_ms=2.0, epochs=4, engine=engine, dtype="float64", grid_init=False)
        runs[engine] = fit_population([TrainingSet(cur, spk, volt)], cfg, device="cpu", progress=False, seed=1)[0]
    np.testing.assert_allclose(runs["blocks"].history, runs["standard"].history, rtol=1e-6)
    for a, b in zip(runs["blocks"].model.parameters(), runs["standard"].model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_cells_fitted_together_match_cells_fitted_alone():
    cells = [alif_cell(T=1500, seed=s, tau_m=tm) for s, tm in ((4, 15.0), (5, 30.0), (6, 20.0))]
    sets = [TrainingSet(*c["train"]) for c in cells]
    cfg = FitConfig(dt_ms=DT, arp_ms=2.0, epochs=200, dtype="float64")
    together = fit_population(sets, cfg, device="cpu", progress=False)
    # the cells stop at three different epochs: the batch then simulates only the cells still training
    assert len({st.epochs for st in together}) == 3
    for k, s in enumerate(sets):
        alone = fit_population([s], cfg, device="cpu", progress=False)[0]
        # same data, same schedule: equal up to float64 rounding of the batched kernels
        np.testing.assert_allclose(together[k].history, alone.history, rtol=1e-6)
        assert together[k].epochs == alone.epochs
        assert together[k].model.tau_mem_ms.item() == pytest.approx(alone.model.tau_mem_ms.item(), rel=1e-6)


def test_a_start_may_carry_its_own_patience():
    """``init["patience"]`` (``FitConfig.sub_patience``, round 29): that cell's plateaus last that many epochs, the
    others' ``config.patience``; each cell's fit equals its fit alone with that patience as the configuration's."""
    from cellfit.fit.init import initial_values

    cells = [alif_cell(T=1500, seed=s, tau_m=tm) for s, tm in ((4, 15.0), (5, 30.0))]
    sets = [TrainingSet(*c["train"]) for c in cells]
    cfg = FitConfig(dt_ms=DT, arp_ms=2.0, epochs=200, dtype="float64", grid_init=False)
    inits = [initial_values(cfg, s) for s in sets]
    together = fit_population(sets, cfg, device="cpu", progress=False, inits=[inits[0], dict(inits[1], patience=10)])
    first = fit_population([sets[0]], cfg, device="cpu", progress=False, inits=[inits[0]])[0]
    second = fit_population([sets[1]], dataclasses.replace(cfg, patience=10), device="cpu", progress=False,
                            inits=[inits[1]])[0]
    for got, alone in ((together[0], first), (together[1], second)):  # float64 rounding of the batched kernels
        np.testing.assert_allclose(got.history, alone.history, rtol=1e-6)
        assert got.epochs == alone.epochs
    short = fit_population([sets[1]], cfg, device="cpu", progress=False, inits=[inits[1]])[0]
    assert second.epochs > short.epochs  # ten epochs per plateau instead of five: a longer schedule
    with pytest.raises(ValueError, match="sub_patience"):
        FitConfig(sub_patience=0)


def test_same_seed_same_result(cell):
    cur, spk, volt = cell["train"]
    cfg = FitConfig(**dict(FAST, epochs=8))
    a = fit_population([TrainingSet(cur, spk, volt)], cfg, device="cpu", progress=False, seed=7)[0]
    b = fit_population([TrainingSet(cur, spk, volt)], cfg, device="cpu", progress=False, seed=7)[0]
    assert a.history == b.history
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)


def test_parameters_stay_in_range_without_spikes_or_at_high_rates(cell):
    cur, spk, volt = cell["train"]
    cfg = FitConfig(**dict(FAST, epochs=20))
    silent = TrainingSet(cur, np.zeros_like(spk), volt)
    busy = TrainingSet(cur, (np.random.default_rng(0).random(spk.shape) < 0.2).astype(np.float32), volt)
    for st in fit_population([silent, busy], cfg, device="cpu", progress=False):
        m = st.model
        assert cfg.tau_mem_bounds_ms[0] <= m.tau_mem_ms.item() <= cfg.tau_mem_bounds_ms[1]
        assert cfg.tau_adapt_bounds_ms[0] <= m.tau_adapt_ms.item() <= cfg.tau_adapt_bounds_ms[1]
        assert m.adapt_scale.item() >= 0
        assert all(np.isfinite(st.history))


def test_subthreshold_init_recovers_membrane_parameters(cell):
    cur, spk, volt = cell["train"]
    est = subthreshold_init(cur, volt, spk, DT)
    assert est.tau_m_ms == pytest.approx(20.0, rel=0.1)
    assert est.gain == pytest.approx(2.0, rel=0.1)
    assert est.r2 > 0.8
    assert subthreshold_init(cur, np.random.default_rng(0).normal(size=volt.shape), spk, DT) is None


def _cell_with_after_spike_current(amplitude: float, seed: int = 1):
    """(x, spikes, v): a leaky integrator (tau_m 10 ms, gain 2, bias 0.1) with a current of -``amplitude`` after
    each spike that decays with 100 ms. Spike times are given (no threshold needed for the estimator)."""
    rng = np.random.default_rng(seed)
    dt, T, n = 0.1, 10_000, 6
    x = rng.normal(0.5, 0.3, (n, T))
    x = np.stack([np.convolve(row, np.ones(50) / 50, mode="same") for row in x])  # smooth (5 ms) noise
    spikes = (rng.random((n, T)) < 8e-4).astype(float)  # ~8 spikes per second
    v = np.zeros((n, T))
    w = np.zeros(n)
    for t in range(1, T):
        w = w * np.exp(-dt / 100.0) + spikes[:, t]
        v[:, t] = v[:, t - 1] + dt / 10.0 * (-v[:, t - 1] + 2.0 * x[:, t] + 0.1 - amplitude * w)
    return x, spikes, v


def test_subthreshold_init_with_a_spike_triggered_current_recovers_tau_m():
    """Without the after-spike current in the voltage model tau_m comes out several times too long (here at its
    200 ms bound); with it (``spike_tau_ms``) within 10%."""
    dt = 0.1
    x, spikes, v = _cell_with_after_spike_current(1.5)
    plain = subthreshold_init(x, v, spikes, dt)
    with_current = subthreshold_init(x, v, spikes, dt, spike_tau_ms=(100.0,))
    assert with_current.tau_m_ms == pytest.approx(10.0, rel=0.1) and with_current.r2 > 0.95
    assert with_current.gain == pytest.approx(2.0, rel=0.1)
    assert plain is None or plain.tau_m_ms > 15.0  # the after-spike current taken for a slow membrane
    no_spikes = subthreshold_init(x, v, np.zeros_like(spikes), dt, spike_tau_ms=(100.0,))  # falls back, no error
    assert no_spikes is None or math.isfinite(no_spikes.tau_m_ms)


def test_initial_values_switch_to_the_spike_current_start_only_where_the_plain_one_took_it_for_the_membrane():
    from cellfit.fit.init import initial_values

    cfg = FitConfig(dt_ms=0.1)
    assert (cfg.voltage_spike_tau_ms, cfg.voltage_spike_ratio) == ((100.0,), 3.0)
    def traces(amplitude):  # as (repeats, epochs, T)
        return TrainingSet(*(a.reshape(2, 3, -1) for a in _cell_with_after_spike_current(amplitude)))

    data = traces(1.5)  # plain tau_m 200 ms, with the current 10 ms
    init = initial_values(cfg, data)
    assert init["method"] == "voltage with spike current" and init["tau_m_ms"] == pytest.approx(10.0, rel=0.1)
    plain = initial_values(dataclasses.replace(cfg, voltage_spike_tau_ms=()), data)
    assert plain["method"] == "voltage" and plain["tau_m_ms"] > 30.0
    assert initial_values(cfg, traces(0.0))["method"] == "voltage"  # no current: both fits agree, plain stays
    everywhere = initial_values(dataclasses.replace(cfg, voltage_spike_ratio=None), traces(0.0))  # 6a's option
    assert everywhere["method"] == "voltage with spike current"


def test_unique_stimuli_groups_repeats():
    a, b = np.zeros(5), np.ones(5)
    cur = np.stack([np.stack([a, b]), np.stack([a, b]), np.stack([a, b + 1])])  # (R=3, E=2, T)
    stimuli, index = unique_stimuli(cur)
    assert len(stimuli) == 3
    assert index.tolist() == [[0, 1], [0, 1], [0, 2]]


def test_predict_records_traces(cell):
    from cellfit import ALIF

    model = ALIF(1, 1, dt_ms=DT, arp_ms=2.0)
    out = predict_spikes(model, cell["test"][0][0], record=("v", "theta"))
    assert out["spikes"].shape == out["v"].shape == out["theta"].shape == cell["test"][0][0].shape


def test_config_round_trip_and_validation():
    cfg = FitConfig(dt_ms=0.5, arp_ms=2.0, coarse_to_fine_ms=(50.0,))
    assert FitConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="not a whole number"):
        FitConfig(dt_ms=0.3, arp_ms=2.0)
    with pytest.raises(ValueError, match="engine"):
        FitConfig(engine="fast")
    with pytest.raises(ValueError, match="surrogate"):
        FitConfig(surrogate="tanh")
    with pytest.raises(ValueError, match="epochs"):
        FitConfig(epochs=0)


def test_fitter_to_dict_round_trip(cell):
    cur, spk, volt = cell["train"]
    fitter = ALIFFitter(FitConfig(**dict(FAST, epochs=3)), device="cpu").fit(cur, spk, volt)
    again = ALIFFitter.from_dict(json.loads(fitter.to_json()))
    np.testing.assert_array_equal(again.predict(cell["test"][0][0]), fitter.predict(cell["test"][0][0]))


def test_training_set_validation():
    with pytest.raises(ValueError, match="n_repeats, n_epochs, T"):
        TrainingSet(np.zeros((2, 10)), np.zeros((2, 10)))
    with pytest.raises(ValueError, match="NaN"):
        TrainingSet(np.full((1, 1, 10), np.nan), np.zeros((1, 1, 10)))


def test_batch_that_does_not_fit_in_memory_is_split(monkeypatch, caplog):
    import cellfit.fit.api as api
    import cellfit.fit.select as select

    cells = [TrainingSet(*alif_cell(T=1000, seed=s)["train"]) for s in (8, 9, 10)]
    cfg = FitConfig(dt_ms=DT, arp_ms=2.0, epochs=6, dtype="float64", restarts=1, bootstrap=0)
    real = select.fit_population
    sizes = []

    def small_device(sets, *args, **kwargs):  # pretend only one cell fits at a time
        sizes.append(len(sets))
        if len(sets) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(sets, *args, **kwargs)

    monkeypatch.setattr(select, "fit_population", small_device)
    candidates, refits = api._fit_in_chunks(cells, cfg, torch.device("cpu"), 0, False, ["a", "b", "c"])
    assert sizes == [3, 1, 2, 1, 1] and len(candidates) == 3 and refits is None
    assert "do not fit" in caplog.text
    for s, (st,) in zip(cells, candidates):
        alone = fit_population([s], cfg, device="cpu", progress=False)[0]
        assert st.history == alone.history
    monkeypatch.setattr(select, "fit_population", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("bad shape")))
    with pytest.raises(RuntimeError, match="bad shape"):  # other errors are not swallowed
        api._fit_in_chunks(cells, cfg, torch.device("cpu"), 0, False, ["a", "b", "c"])


def test_cellwise_adam_equals_one_torch_adam_per_cell():
    """The masked, cell-wise Adam of the fitter makes the same updates as K separate torch.optim.Adam."""
    from cellfit.fit.optim import CellwiseAdam as _CellwiseAdam

    g = torch.Generator().manual_seed(0)
    K = 5
    # float64: the two implementations evaluate the same formula with different kernels
    # (torch's foreach/fused Adam vs masked tensor ops), so they may differ in the last bit of
    # each step on some CPUs (one float32 ulp was seen on an AMD EPYC); in float64 that
    # rounding stays below 1e-12 relative over these 12 steps, far below any real difference
    # (a wrong bias correction or a missed step changes values by > 1e-3).
    init = [torch.randn(K, generator=g, dtype=torch.float64), torch.randn(K, 1, generator=g, dtype=torch.float64)]
    batched = [p.clone().requires_grad_() for p in init]
    opt = _CellwiseAdam(batched, lr=0.03)
    singles = [[p[k].clone().reshape(1, *p.shape[1:]).requires_grad_() for p in init] for k in range(K)]
    opts = [torch.optim.Adam(ps, lr=0.03) for ps in singles]
    for it in range(12):
        grads = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in init]
        stepping = (torch.rand(K, generator=g) < 0.7).numpy()
        if it == 6:  # a cell restarts (fresh moments) and another gets a decayed learning rate
            opt.restart(np.arange(K) == 1)
            opts[1] = torch.optim.Adam(singles[1], lr=opts[1].param_groups[0]["lr"])
            opt.lr[3] *= 0.5
            opts[3].param_groups[0]["lr"] *= 0.5
        for p, gr in zip(batched, grads):
            p.grad = gr.clone()
        opt.step(stepping)
        for k in np.flatnonzero(stepping):
            for p, gr in zip(singles[k], grads):
                p.grad = gr[k].reshape(p.shape).clone()
            opts[k].step()
    for k in range(K):
        for p, q in zip(batched, singles[k]):
            torch.testing.assert_close(p[k].reshape(q.shape), q.detach(), rtol=1e-12, atol=1e-14)


def test_cellwise_adam_leaves_resting_cells_bit_identical():
    """A cell that does not step keeps its parameters and moments exactly (a selection, no arithmetic)."""
    from cellfit.fit.optim import CellwiseAdam as _CellwiseAdam

    g = torch.Generator().manual_seed(1)
    p = torch.randn(4, 3, generator=g).requires_grad_()
    opt = _CellwiseAdam([p], lr=0.1)
    stepping = np.array([True, False, True, False])
    for _ in range(3):
        p.grad = torch.randn(4, 3, generator=g)
        before = p.detach().clone()
        opt.step(stepping)
        assert torch.equal(p[~torch.from_numpy(stepping)], before[~torch.from_numpy(stepping)])
        assert not torch.equal(p[torch.from_numpy(stepping)], before[torch.from_numpy(stepping)])
    assert torch.equal(opt.exp_avg[0][1], torch.zeros(3)) and opt.steps.tolist() == [3, 0, 3, 0]
