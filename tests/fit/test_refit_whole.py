"""The refit on all of Noise 1 (``FitConfig.refit_models``): after the choice, a kept fit of the named variants is
trained again from its own parameters on the training window and the validation seconds together."""

import dataclasses

import numpy as np
import pytest

from cellfit.data.synthetic import alif_panel, synthetic_recordings
from cellfit.fit import FitConfig, fit_recordings
from cellfit.fit.fitter import CellFitState, physical_parameters
from cellfit.fit.select import start_from_fit

DT = 0.5


def _state(init: dict, config: FitConfig) -> CellFitState:
    return CellFitState(config.build_model(init), dict(init), [], [], 1, 0.0, "ok")


@pytest.mark.parametrize("variant", ["alif", "alif_sub", "alif_reset_asc"])
def test_a_start_from_a_fit_builds_the_fitted_model_again(variant):
    """:func:`start_from_fit`: the start dict of a fitted candidate builds a model with its parameters (every
    variant's extras: reset, after-spike currents, subthreshold current) and keeps its variant and reset range."""
    cfg = FitConfig(dt_ms=DT)
    init = dict(cfg.initial_values(), model=variant, tau_m_ms=17.0, tau_adapt_ms=230.0, adapt_scale=0.3,
                method="voltage")
    if variant == "alif_sub":
        init.update(sub_amp=0.4, tau_sub_ms=60.0)
    if variant == "alif_reset_asc":
        init.update(v_reset=0.6, asc_amp=(0.2, -0.1), tau_asc_ms=(8.0, 90.0))
    state = _state(init, cfg)
    start = start_from_fit(state)
    assert start["model"] == variant and start["method"] == "voltage + refit"
    assert cfg.reset_bounds(start) == cfg.reset_bounds(init)
    again = physical_parameters(cfg.build_model(start))
    fitted = physical_parameters(state.model)
    assert again.keys() == fitted.keys()
    for name, value in fitted.items():  # through the float32 model and back: equal to its rounding
        assert again[name] == pytest.approx(value, rel=1e-5), name


def test_the_configuration_names_variants():
    with pytest.raises(ValueError, match="refit_models must name model variants"):
        FitConfig(refit_models=("glif",))
    cfg = FitConfig(refit_models=("alif_sub", "alif"))
    assert FitConfig.from_dict(cfg.to_dict()) == cfg
    assert FitConfig.from_dict({}).refit_models == FitConfig().refit_models  # a result without it: today's default


def test_a_refitted_cell_reports_the_refit_and_intervals_that_hold_both_fits():
    """Through :func:`fit_recordings`: a kept fit of a named variant is trained on all of Noise 1 (3 s here) and
    that fit is reported and scored; the candidate it started from is the state; the intervals hold both fits'
    values; a variant not named, or no validation seconds, leaves the result bit for bit as without the option."""
    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=DT, window_s=3.0)
    base = FitConfig(dt_ms=DT, epochs=4, bootstrap=2, refit_models=())
    run = lambda cfg: fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)[0]  # noqa: E731
    off, on = run(base), run(dataclasses.replace(base, refit_models=("alif",)))
    assert "refit" not in off.result.selection
    note = on.result.selection["refit"]
    assert note["seconds"] == pytest.approx(3.0) and 1 <= note["epochs"] <= base.epochs
    assert not note["stop_reason"].startswith("failed")
    # the same candidates and choice; the reported model is the refit, not the kept candidate
    assert on.result.selection["candidates"] == off.result.selection["candidates"]
    assert physical_parameters(on.state.model) == physical_parameters(off.state.model)
    reported = physical_parameters(on.model)
    assert on.result.tau_m_ms == pytest.approx(reported["tau_m_ms"], rel=1e-6)
    assert reported != physical_parameters(on.state.model)  # trained again: moved
    kept = physical_parameters(on.state.model)
    for name in ("tau_m_ms", "tau_adapt_ms", "adapt_scale", "gain", "bias"):
        lo, hi = on.result.intervals[name]
        assert lo <= reported[name] <= hi and lo <= kept[name] <= hi, name
    assert np.isfinite(on.result.etv)
    # a refitted cell gets no bias tie-break (its validation seconds were trained on): the same refit, no shift
    both = run(dataclasses.replace(base, refit_models=("alif",), bias_tiebreak=0.1))
    assert "bias_tiebreak" not in both.result.selection and both.result.selection["refit"] == note
    assert both.result.etv == on.result.etv
    for cfg in (dataclasses.replace(base, refit_models=("alif_sub",)),
                dataclasses.replace(base, refit_models=("alif",), validation_s=0.0)):
        other = run(cfg)
        ref = off if cfg.validation_s else run(dataclasses.replace(cfg, refit_models=()))
        assert "refit" not in other.result.selection
        assert other.result.etv == ref.result.etv and other.result.intervals == ref.result.intervals


def test_the_refit_guard_drops_a_refit_that_explains_noise_1_less_well(monkeypatch):
    """``FitConfig.refit_guard`` (:func:`keeps_refit`): a refit is kept where its ETV over all of Noise 1 is at least
    the first fit's (equal included) and dropped where it is lower (a silent refit: 0). Through :func:`fit_recordings`, a dropped refit reports the first fit, bit for
    bit as without a refit, and ``selection.refit_dropped`` gives both ETVs."""
    import cellfit.fit.api as api
    from cellfit.fit.fitter import TrainingSet
    from cellfit.fit.select import keeps_refit, refit_explains_as_well

    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=DT, window_s=3.0)
    base = FitConfig(dt_ms=DT, epochs=4, bootstrap=2, refit_models=())
    run = lambda cfg: fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)[0]  # noqa: E731
    off = run(base)
    whole = TrainingSet(rec.normalised_current("train"), rec.train.spikes, rec.normalised_voltage("train"))
    first = off.state
    silent = _state(dict(start_from_fit(first), bias=-5.0, gain=0.01), base)
    keep, a, b = keeps_refit(first, first, whole, base)
    assert keep and a == b and np.isfinite(a)
    keep, a, b = keeps_refit(first, silent, whole, base)
    assert not keep and b < a  # a silent model: ETV 0
    nan = float("nan")  # the rule without a score: a first fit without one keeps the refit, a refit without one is dropped
    assert refit_explains_as_well(nan, 0.5) and refit_explains_as_well(nan, nan) and not refit_explains_as_well(0.5, nan)
    guarded = dataclasses.replace(base, refit_models=("alif",), refit_guard=True)
    kept = run(guarded)  # the real guard: whichever way it goes, the result says so
    assert ("refit" in kept.result.selection) != ("refit_dropped" in kept.result.selection)
    monkeypatch.setattr(api, "keeps_refit", lambda first, refit, whole, config: (False, 0.9, 0.8))
    dropped = run(guarded)
    assert "refit" not in dropped.result.selection
    note = dropped.result.selection["refit_dropped"]
    assert note["noise1_etv_first"] == 0.9 and note["noise1_etv_refit"] == 0.8 and note["epochs"] >= 1
    assert dropped.result.etv == off.result.etv and dropped.result.intervals == off.result.intervals
    assert physical_parameters(dropped.model) == physical_parameters(off.model)
    monkeypatch.setattr(api, "keeps_refit", lambda first, refit, whole, config: (True, 0.8, 0.9))
    on = run(guarded)
    assert "refit_dropped" not in on.result.selection and on.result.etv == run(
        dataclasses.replace(base, refit_models=("alif",))).result.etv
