"""The training loss: the van Rossum stages and the explained-variance final stage (FitConfig.final_loss)."""

import dataclasses

import numpy as np
import pytest
import torch

from cellfit.data.synthetic import alif_panel, synthetic_recordings
from cellfit.fit import ALIFFitter, FitConfig, TrainingSet, fit_recordings, metrics
from cellfit.fit.fitter import training_tensors
from cellfit.fit.loss import LossTargets, repeat_variance

from test_fitter import DT, alif_cell

TAUS = (30.0, 10.0)


def _targets(rec: np.ndarray, final_ev: bool) -> LossTargets:
    """(R, E, T) recorded trains of one cell -> its loss targets (one stimulus per epoch, equal weights)."""
    R, E, T = rec.shape
    mean = torch.as_tensor(rec.mean(0)[:, None, :])  # (U=E, K=1, T)
    w = torch.full((E, 1), 1.0 / E, dtype=torch.float64)
    var = torch.tensor([repeat_variance(rec, TAUS[-1], DT)], dtype=torch.float64) if final_ev else None
    return LossTargets(mean, w, TAUS, DT, var)


def _jittered_repeats(rng, R=4, E=2, T=2000, jitter_steps=90) -> np.ndarray:
    """Each epoch: one spike every repeat fires at the same time, one that each repeat fires at its own time."""
    rec = np.zeros((R, E, T))
    rec[:, :, 400] = 1.0
    for r in range(R):
        for e in range(E):
            rec[r, e, 1200 + rng.integers(-jitter_steps, jitter_steps + 1)] = 1.0
    return rec


def test_explained_variance_loss_is_one_minus_the_held_out_form():
    """Against identical repeats the final stage is 1 - EV(model, repeat) of the filtered, concatenated trains."""
    rng = np.random.default_rng(1)
    one = (rng.random((3, 1500)) < 0.01).astype(float)
    rec = np.broadcast_to(one, (4,) + one.shape).copy()
    model = (rng.random((3, 1, 1500)) < 0.01).astype(float)
    loss = _targets(rec, True).loss(torch.as_tensor(model), np.array([1]))
    x = metrics.exp_filter(torch.as_tensor(model[:, 0]), TAUS[-1], DT).reshape(-1).numpy()
    y = metrics.exp_filter(torch.as_tensor(one), TAUS[-1], DT).reshape(-1).numpy()
    # the same sums in another order (float64): equal to rounding
    assert float(loss) == pytest.approx(1.0 - metrics.explained_variance(x, y), abs=1e-12)
    # the recorded train itself scores 0, a silent model 1
    assert float(_targets(rec, True).loss(torch.as_tensor(one[:, None]), np.array([1]))) == pytest.approx(0, abs=1e-12)
    assert float(_targets(rec, True).loss(torch.zeros(3, 1, 1500, dtype=torch.float64), np.array([1]))) == 1.0


def test_van_rossum_drops_a_jittered_spike_that_the_explained_variance_keeps():
    """What the noise term (V, one repeat's variance) asks: a spike every repeat fires at its own time lowers the
    explained-variance loss and raises the distance to the repeats' mean (a deterministic model that skips it scores
    the better distance). The losses differ here by 0.02 and 0.08, far above float64 rounding."""
    rec = _jittered_repeats(np.random.default_rng(0))
    reliable = np.zeros(rec.shape[1:])
    reliable[:, 400] = 1.0
    both = reliable.copy()
    both[:, 1200] = 1.0
    final = np.array([1])
    vr, ev = _targets(rec, False), _targets(rec, True)
    as_model = lambda s: torch.as_tensor(s[:, None, :])
    assert float(vr.loss(as_model(reliable), final)) < float(vr.loss(as_model(both), final))
    assert float(ev.loss(as_model(both), final)) < float(ev.loss(as_model(reliable), final))


def test_only_the_final_stage_changes():
    rng = np.random.default_rng(2)
    rec = _jittered_repeats(rng)
    model = torch.as_tensor((rng.random((2, 1, 2000)) < 0.002).astype(float))
    coarse = np.array([0])
    assert float(_targets(rec, True).loss(model, coarse)) == float(_targets(rec, False).loss(model, coarse))
    assert float(_targets(rec, True).loss(model, np.array([1]))) != float(_targets(rec, False).loss(model, np.array([1])))


def test_explained_variance_loss_of_several_cells_and_its_gradient():
    """Cells in one batch (padded stimuli weigh 0) score as alone; the loss has a finite, non-zero gradient."""
    rng = np.random.default_rng(3)
    recs = [_jittered_repeats(rng, E=2), _jittered_repeats(rng, E=3)]
    # every repeat of an epoch sees the same stimulus: one distinct trace per epoch (U = 2 and 3)
    sets = [TrainingSet(current=np.broadcast_to(rng.normal(size=r.shape[1:]), r.shape).astype(np.float32),
                        spikes=r.astype(np.float32)) for r in recs]
    cfg = FitConfig(dt_ms=DT, coarse_to_fine_ms=TAUS[:1], van_rossum_tau_ms=TAUS[-1], final_loss="explained_variance",
                    dtype="float64")
    _, both = training_tensors(sets, cfg, "cpu")
    spikes = torch.as_tensor((rng.random((3, 2, 2000)) < 0.003).astype(float), dtype=torch.float64)
    spikes[2, 0] = 0.0  # cell 0's padding row
    spikes.requires_grad_(True)
    together = both.loss(spikes, np.array([1, 1]))
    for k, s in enumerate(sets):
        _, alone = training_tensors([s], cfg, "cpu")
        U = s.spikes.shape[1]
        # one cell's sums in another batch shape (float64): equal to rounding
        assert float(together[k].detach()) == pytest.approx(float(alone.loss(spikes[:U, k:k + 1].detach(), np.array([1]))),
                                                   abs=1e-12)
    together.sum().backward()
    assert torch.isfinite(spikes.grad).all() and spikes.grad.abs().sum() > 0


def test_fit_with_the_explained_variance_loss_recovers_a_known_cell():
    cell = alif_cell()
    cur, spk, volt = cell["train"]
    cfg = FitConfig(dt_ms=DT, arp_ms=2.0, epochs=60, final_loss="explained_variance")
    fitter = ALIFFitter(cfg, device="cpu").fit(cur, spk, volt)
    # the fixture's bar for the default loss (test_fitter.py)
    assert fitter.score(cell["test"][0], cell["test"][1]) >= 0.8
    assert fitter.params_["tau_m_ms"] == pytest.approx(20.0, rel=0.15)
    assert FitConfig.from_dict(cfg.to_dict()) == cfg


def test_an_unknown_final_loss_is_refused():
    with pytest.raises(ValueError, match="final_loss must be one of"):
        FitConfig(final_loss="poisson")
    with pytest.raises(ValueError, match="ev_rescue must be"):
        FitConfig(ev_rescue=0.0)
    with pytest.raises(ValueError, match="ev_rescue_margin"):
        FitConfig(ev_rescue_margin=-0.1)


def test_a_cell_predicted_poorly_is_fitted_again_with_the_explained_variance_loss():
    """``FitConfig.ev_rescue``: a cell whose kept fit's validation ETV is below the gate is fitted again with the
    explained-variance final loss, and keeps the fit whose validation ETV is the margin higher; the result names
    both scores and the loss kept, and carries the caller's configuration. Above the gate nothing changes."""
    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=0.5, window_s=3.0)
    base = FitConfig(dt_ms=0.5, epochs=4, bootstrap=2, coarse_to_fine_ms=())  # the final loss from the first epoch
    run = lambda cfg: fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)[0].result
    vr, ev = run(base), run(dataclasses.replace(base, final_loss="explained_variance"))
    kept_val = lambda r: r.selection["candidates"][r.selection["chosen"]]["validation_etv"]
    # the two losses reach different fits, the refit's validation ETV the higher (1.15 against 1.08 here: a gap far
    # above float rounding), so that margin 0 switches and a huge margin does not
    assert vr.etv != ev.etv and kept_val(ev) > kept_val(vr) + 0.02
    for margin in (0.0, 1e9):  # 0: the higher validation ETV of the two; 1e9: never the refit
        cfg = dataclasses.replace(base, ev_rescue=100.0, ev_rescue_margin=margin)  # every validation ETV is below 100
        r = run(cfg)
        note = r.selection["ev_rescue"]
        assert note["validation_etv"] == [kept_val(vr), kept_val(ev)]
        switched = margin == 0.0
        assert note["final_loss"] == ("explained_variance" if switched else "van_rossum")
        assert r.etv == (ev.etv if switched else vr.etv)
        assert r.config == cfg.to_dict()
    # not gated: the default fit, bit for bit, and no note
    r = run(dataclasses.replace(base, ev_rescue=1e-9))
    assert "ev_rescue" not in r.selection and r.etv == vr.etv and r.selection == vr.selection


def test_the_rescue_leaves_a_kept_bursting_start_alone():
    """``FitConfig.ev_rescue_bursting`` False (the default): a kept fit from a bursting start is not fitted again
    however low its validation ETV (the validation seconds do not judge it); True gates it as any other. A fit
    predicting the validation seconds at or above the gate, or without a score, is never gated."""
    from types import SimpleNamespace

    from cellfit.fit.api import _ev_rescue_gated

    def fit(validation_etv, burst):
        init = dict(model="alif_asc", burst=1) if burst else dict(model="alif")
        selection = dict(chosen=0, candidates=[dict(validation_etv=validation_etv)])
        return SimpleNamespace(result=SimpleNamespace(status="ok", selection=selection),
                               state=SimpleNamespace(init=init))

    cfg = FitConfig(ev_rescue=0.9)
    assert cfg.ev_rescue_bursting is False
    both = dataclasses.replace(cfg, ev_rescue_bursting=True)
    assert _ev_rescue_gated(fit(0.3, burst=False), cfg) and _ev_rescue_gated(fit(0.3, burst=False), both)
    assert not _ev_rescue_gated(fit(0.3, burst=True), cfg) and _ev_rescue_gated(fit(0.3, burst=True), both)
    for c in (cfg, both):
        assert not _ev_rescue_gated(fit(0.9, burst=False), c) and not _ev_rescue_gated(fit(None, burst=False), c)
    assert FitConfig.from_dict(both.to_dict()) == both
