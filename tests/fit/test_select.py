"""Choosing among candidate fits on held-out Noise 1 data, and intervals from bootstrap refits."""

import dataclasses
import json

import numpy as np
import torch
import pytest

from cellfit.data.synthetic import alif_panel, synthetic_recordings
from cellfit.fit import FitConfig, fit_recordings
from cellfit.fit.config import GRID_RESTARTS
from cellfit.fit.fitter import CellFitState, TrainingSet
from cellfit.fit.select import (choose, equivalent_candidates, interval_table, resample_traces, variant_members,
                                widen_to_starts)


def state(loss, failed=False, tau_m=20.0, tau_a=100.0):
    cfg = FitConfig()
    model = cfg.build_model(dict(cfg.initial_values(), tau_m_ms=tau_m, tau_adapt_ms=tau_a))
    return CellFitState(model=model, init={}, history=[loss], lr_history=[], epochs=1, best_loss=loss,
                        stop_reason="failed: nan" if failed else "converged")


def test_choose_prefers_validation_then_training_loss():
    cands = [state(1.0), state(0.5), state(0.2, failed=True)]
    assert choose(cands, [0.7, 0.6, 0.9]) == (0, "validation ETV")  # a failed candidate is never chosen
    assert choose(cands, None) == (1, "training loss")
    assert choose(cands, [float("nan")] * 3) == (1, "training loss")  # no usable validation score
    assert choose([state(1.0, failed=True)], None)[1].startswith("none")


def test_choose_with_a_validation_veto_ranks_by_training_loss():
    """The default (``validation_veto`` 0.1): the lowest training loss among the candidates whose validation
    ETV is at least the first's minus the veto; the first is always eligible, a failed one never."""
    cands = [state(1.0), state(0.5), state(0.4), state(0.2, failed=True)]
    basis = "training loss, validation veto 0.1"
    assert choose(cands, [0.9, 0.85, 0.7, 0.95], veto=0.1) == (1, basis)  # 2 predicts the validation seconds worse
    assert choose(cands, [0.9, 0.85, 0.8, 0.95], veto=0.1) == (2, basis)  # 0.8 is exactly at the veto: eligible
    assert choose(cands, [0.9, 0.7, 0.7, 0.95], veto=0.1) == (0, basis)  # both vetoed: the first, whatever its loss
    assert choose(cands, [0.9, float("nan"), 0.85, 0.95], veto=0.1) == (2, basis)  # no score: vetoed
    # the first without a usable score (no reliable validation spikes), or no validation data: lowest loss
    assert choose(cands, [float("nan"), 0.5, 0.1, 0.9], veto=0.1) == (2, "training loss")
    assert choose(cands, None, veto=0.1) == (2, "training loss")


def test_a_validation_penalty_weighs_the_loss_by_the_validation_etv_a_start_gives_up():
    """``FitConfig.validation_penalty`` (round 21): among the starts the veto keeps, the lowest training loss times
    ``1 + penalty * (best validation ETV - own)``; not where the veto does not apply."""
    cands = [state(1.0), state(0.9), state(0.85), state(0.2, failed=True)]
    scores = [0.8, 1.0, 0.75, 1.2]  # the failed one's score is never the best
    assert choose(cands, scores, veto=0.1)[0] == 2  # the loss alone: 0.85
    index, basis = choose(cands, scores, veto=0.1, penalty=1.0)
    # 1.0 x 1.2 = 1.2, 0.9 x 1.0 = 0.9, 0.85 x 1.25 = 1.0625: the start that gives up 0.25 of validation ETV pays
    assert index == 1 and basis.endswith("validation penalty 1")
    assert choose(cands, scores, veto=0.1, penalty=0.1)[0] == 2  # 0.85 x 1.025 < 0.9: a small penalty keeps the loss
    assert choose(cands, scores, veto=0.1, penalty=0.0)[0] == 2  # a penalty of 0 is the loss alone
    assert choose(cands, [float("nan"), 1.0, 0.5, 1.0], veto=0.1, penalty=1.0)[0] == 2  # the first unscored: loss
    burst = [dataclasses.replace(c, init={"model": "alif_asc", "burst": 1}) for c in cands]
    assert choose(burst, scores, veto=0.1, penalty=1.0)[0] == 2  # bursting starts: no veto, no penalty
    with pytest.raises(ValueError, match="validation_penalty"):
        FitConfig(validation_penalty=-1.0)


def test_choose_among_variants_keeps_an_extension_only_by_a_loss_margin():
    """``model="auto"`` (round 4): the veto within each variant, then another variant's pick replaces the first
    variant's (ALIF's) only where its training loss is lower by at least ``margin``."""
    def of(variant, loss):
        st = state(loss)
        return dataclasses.replace(st, init={"model": variant})

    cands = [of("alif", 1.0), of("alif", 0.8), of("alif_asc", 0.78), of("alif_asc", 0.5), of("alif_reset_asc", 0.7)]
    scores = [0.9, 0.85, 0.9, 0.5, 0.88]  # alif_asc's 0.5-loss start is vetoed (0.5 < 0.9 - 0.1)
    # picks: alif 0.8 (index 1), alif_asc 0.78 (2), alif_reset_asc 0.7 (4); 0.7 < 0.8 x 0.95, 0.78 is not
    index, basis = choose(cands, scores, veto=0.1, margin=0.05)
    assert index == 4 and "0.05 lower" in basis
    assert choose(cands, scores, veto=0.1, margin=0.2)[0] == 1  # no extension 20% lower: ALIF's pick
    assert choose(cands, scores, veto=0.1)[0] == 2  # no margin: the picks compared on validation ETV (0.9)
    assert choose(cands, scores)[0] == 0  # no veto: the best validation ETV overall (first of the ties)


def test_choose_among_variants_by_validation_etv():
    """``FitConfig.variant_choice == "validation"`` (round 27): the veto and the loss within each variant, then the
    pick with the highest validation ETV, the first variant's kept on ties; a training-window comparison (a
    bursting cell) still decides where it is given."""
    def of(variant, loss):
        return dataclasses.replace(state(loss), init={"model": variant})

    cands = [of("alif", 1.0), of("alif", 0.8), of("alif_sub", 0.9), of("alif_sub", 0.85)]
    # picks: alif 0.8 (index 1, validation 0.85), alif_sub 0.85 (index 3); the loss rule keeps ALIF (0.85 > 0.76)
    assert choose(cands, [0.9, 0.85, 0.95, 0.9], veto=0.1, margin=0.05)[0] == 1
    index, basis = choose(cands, [0.9, 0.85, 0.95, 0.9], veto=0.1, margin=0.05, variant_choice="validation")
    assert index == 3 and "validation ETV is higher" in basis  # 0.9 > 0.85: alif_sub, although its loss is higher
    assert choose(cands, [0.9, 0.85, 0.95, 0.85], veto=0.1, margin=0.05, variant_choice="validation")[0] == 1  # a tie: ALIF
    low = [of("alif", 1.0), of("alif", 0.8), of("alif_sub", 0.9), of("alif_sub", 0.5)]  # alif_sub's loss 37% lower
    assert choose(low, [0.9, 0.85, 0.95, 0.86], veto=0.1, margin=0.05)[0] == 3  # the loss rule keeps it
    assert choose(low, [0.9, 0.85, 0.95, 0.86], veto=0.1, margin=0.05, variant_choice="validation")[0] == 3
    assert choose(low, [0.9, 0.85, 0.9, 0.84], veto=0.1, margin=0.05, variant_choice="validation")[0] == 1  # predicts worse
    nan = float("nan")
    assert choose(cands, [nan, nan, 0.95, 0.9], veto=0.1, margin=0.05, variant_choice="validation")[0] == 3  # ALIF unscored
    train = [0.5, 0.6, 0.4, 0.3]  # with training-window scores (a bursting cell) those decide: ALIF's 0.6
    assert choose(cands, [0.9, 0.85, 0.95, 0.9], veto=0.1, margin=0.05, train_scores=train, variant_choice="validation")[0] == 1
    with pytest.raises(ValueError, match="variant_choice"):
        FitConfig(variant_choice="etv")


def test_another_variant_must_also_predict_the_validation_seconds_as_well():
    """``FitConfig.variant_choice == "loss_and_validation"`` (round 30): another variant's pick replaces the first's
    only where its loss is ``margin`` lower and its validation ETV is not lower; an unscored pick ranks last."""
    def of(variant, loss):
        return dataclasses.replace(state(loss), init={"model": variant})

    low = [of("alif", 1.0), of("alif", 0.8), of("alif_sub", 0.9), of("alif_sub", 0.5)]  # alif_sub's loss 37% lower
    rule = dict(veto=0.1, margin=0.05, variant_choice="loss_and_validation")
    index, basis = choose(low, [0.9, 0.85, 0.95, 0.86], **rule)
    assert index == 3 and "validation ETV not lower" in basis  # both lower: alif_sub
    assert choose(low, [0.9, 0.85, 0.95, 0.85], **rule)[0] == 3  # a tie is not lower
    assert choose(low, [0.9, 0.85, 0.9, 0.84], **rule)[0] == 1  # predicts worse: ALIF, where the loss rule switches
    assert choose(low, [0.9, 0.85, 0.9, 0.84], veto=0.1, margin=0.05)[0] == 3
    near = [of("alif", 1.0), of("alif", 0.8), of("alif_sub", 0.9), of("alif_sub", 0.78)]  # only 2.5% lower
    assert choose(near, [0.9, 0.85, 0.95, 0.99], **rule)[0] == 1  # a better validation ETV alone does not switch
    nan = float("nan")
    assert choose(low, [nan, nan, 0.95, 0.9], **rule)[0] == 3  # ALIF unscored: the loss decides
    assert choose(low, [0.9, 0.85, nan, nan], **rule)[0] == 1  # alif_sub unscored: ALIF
    assert choose(low, [nan, nan, nan, nan], **rule)[0] == 3  # nothing scored: the lowest loss


def test_command_line_options_map_onto_the_fit_configuration():
    from cellfit.fit.config import ADAPT_SEARCH, GRID_RESTARTS, fit_config

    default = fit_config()
    assert default == FitConfig() and (default.restarts, default.diverse_restarts) == (5, True)
    assert default.validation_veto == 0.1
    one = fit_config(restarts=1)  # --restarts 1: the default of rounds 1-3
    assert (one.restarts, one.diverse_restarts, one.validation_veto) == (1, False, None)
    auto = fit_config(model="auto")  # the default's search in every variant, an extension by a loss margin
    assert (auto.restarts, auto.diverse_restarts, auto.validation_veto, auto.extension_margin) == (5, True, 0.1, 0.05)
    auto2 = fit_config(model="auto", restarts=2)  # round 2's option: the 2 best grid points, validation ETV
    assert (auto2.restarts, auto2.diverse_restarts, auto2.validation_veto) == (2, False, None)
    assert fit_config(adapt_search=True) == FitConfig(**ADAPT_SEARCH)
    assert set(GRID_RESTARTS) <= {f for f in FitConfig.__dataclass_fields__}
    with pytest.raises(ValueError, match="validation_veto"):
        FitConfig(validation_veto=-0.1)


def test_resampling_keeps_shapes_and_draws_whole_traces():
    rng = np.random.default_rng(0)
    R, E, T = 3, 3, 50
    cur = np.arange(R * E, dtype=float)[:, None].repeat(T, 1).reshape(R, E, T)  # each trace a constant label
    data = TrainingSet(cur, np.zeros_like(cur), None)
    out = resample_traces(data, rng)
    assert out.current.shape == (R, E, T) and out.voltage is None
    labels = out.current[..., 0]
    assert set(labels.ravel()) <= set(cur[..., 0].ravel())
    for e in range(E):  # within a drawn epoch every repeat comes from that same epoch
        assert len({int(v) % E for v in labels[:, e]}) == 1


def test_interval_table_covers_the_refits_and_flags_loose_time_constants():
    cfg = FitConfig(interval_level=0.8, undetermined_ratio=1.5)
    refits = [state(1.0, tau_m=tm, tau_a=ta) for tm, ta in ((19, 40), (20, 100), (21, 300), (20.5, 900))]
    estimate = dict(tau_m_ms=25.0, tau_adapt_ms=100.0, adapt_scale=0.5, gain=1.5, bias=0.5)
    table, loose = interval_table(refits, estimate, cfg)
    lo, hi = table["tau_m_ms"]
    assert lo == pytest.approx(19.0 + 0.3 * 1.0, rel=1e-3) and hi == pytest.approx(25.0)  # widened to the estimate
    assert loose == ["tau_adapt_ms"]  # 40-900 ms: not determined; tau_m's 19-25 ms spans < 1.5x
    assert interval_table(refits[:1], estimate, cfg) == ({}, [])


def test_at_bound_names_the_parameters_pushed_against_their_range():
    cfg = FitConfig()  # tau_m 1-200 ms, tau_adapt 5-5000 ms, tau_asc 1-2000 ms, v_reset -1 to 0.95
    inside = dict(tau_m_ms=20.0, tau_adapt_ms=100.0, adapt_scale=0.5, gain=1.5, bias=0.5, v_reset=0.2,
                  asc_amp_1=-0.1, tau_asc_1_ms=30.0)
    assert cfg.at_bound(inside) == []
    edge = dict(inside, tau_m_ms=199.7, tau_adapt_ms=5.02, v_reset=0.94, tau_asc_1_ms=1999.0, bias=900.0)
    assert cfg.at_bound(edge) == ["tau_m_ms", "tau_adapt_ms", "v_reset", "tau_asc_1_ms"]  # bias has no bound
    assert cfg.at_bound(dict(inside, tau_m_ms=197.0, tau_adapt_ms=5.1, v_reset=-0.97)) == []  # 1.5%, 2%, 1.5%: inside
    assert cfg.at_bound(dict(inside, tau_m_ms=float("nan"))) == []


def test_a_fit_held_against_its_range_says_so():
    """An ALIF cell (true tau_m 19 ms) fitted with tau_m confined to 60-200 ms: tau_m ends at 60 ms and the
    result, its summary row and the summary line flag it."""
    from cellfit.fit.__main__ import summary_line

    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=0.5, window_s=2.0)
    cfg = FitConfig(dt_ms=0.5, epochs=4, restarts=1, bootstrap=0, tau_mem_bounds_ms=(60.0, 200.0), **GRID_RESTARTS)
    (fit,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
    r = fit.result
    assert r.tau_m_ms <= 60.0 * 1.01 and r.at_bound == ("tau_m_ms",)
    assert r.summary_row()["at_bound"] == "tau_m_ms"
    assert "(at its bound)" in summary_line(r, "out", 1.0)


def test_fit_chooses_on_validation_and_reports_intervals():
    # an ALIF cell in memory at DT 0.5 ms, 2 s of each epoch: the first second trains, the next validates
    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=0.5, window_s=2.0)
    cfg = FitConfig(dt_ms=0.5, epochs=6, restarts=2, bootstrap=3, **GRID_RESTARTS)  # --restarts 2
    (fit,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
    r = fit.result
    assert r.window_s == 1.0 and fit.recording.test.n_bins == 2000  # scored on the first second only
    assert r.selection["basis"] == "validation ETV" and len(r.selection["candidates"]) == 2
    assert r.selection["validation_s"] == pytest.approx(1.0)  # what the recording had, not the 2 s asked for
    assert all(c["validation_etv"] is not None for c in r.selection["candidates"])
    assert r.bootstrap_replicates == 3 and set(r.intervals) == {"tau_m_ms", "tau_adapt_ms", "adapt_scale", "gain", "bias"}
    for name, (lo, hi) in r.intervals.items():
        assert lo <= getattr(r, name) <= hi
    assert r.at_bound == ()  # an ALIF cell: every parameter inside its range
    # without the extra second: chosen by training loss, same everything else
    (same,) = fit_recordings([rec.first(1.0)], cfg, device="cpu", progress=False)
    assert same.result.selection["basis"] == "training loss"
    single = dataclasses.replace(cfg, restarts=1, bootstrap=0)
    (one,) = fit_recordings([rec], single, window_s=1.0, device="cpu", progress=False)
    assert len(one.result.selection["candidates"]) == 1 and one.result.intervals == {}


def test_bootstrap_refits_train_each_kept_variant_as_its_own_model():
    """Under model="auto" cells keep different variants; their refits still come back per cell,
    each of the cell's own variant (one batched model per variant)."""
    from cellfit.fit.config import MODELS
    from cellfit.fit.select import bootstrap_refits

    recs = synthetic_recordings(alif_panel(2, seed=5), dt_ms=0.5, window_s=1.0)
    sets = [TrainingSet(r.normalised_current("train"), r.train.spikes, None) for r in recs]
    cfg = FitConfig(dt_ms=0.5, epochs=2, bootstrap=2, model="auto")
    chosen = []
    for variant in ("alif", "alif_asc"):
        init = dict(cfg.initial_values(), **cfg.variant_start(variant))
        chosen.append(CellFitState(model=cfg.build_model(init), init=init, history=[1.0], lr_history=[], epochs=1,
                                   best_loss=1.0, stop_reason="converged"))
    refits = bootstrap_refits(sets, chosen, cfg, device="cpu", progress=False)
    assert [len(r) for r in refits] == [2, 2]
    assert {st.init["model"] for st in refits[0]} == {"alif"} and {st.init["model"] for st in refits[1]} == {"alif_asc"}
    assert not hasattr(refits[0][0].model, "asc_amp") or refits[0][0].model.asc_amp is None
    assert refits[1][0].model.asc_amp.shape[-1] == MODELS["alif_asc"]["n_asc"]


def test_refits_trained_beside_the_fit_equal_refits_trained_after_it():
    """With one start and one variant the refits join the fit's batched model; each neuron of the
    model is fitted on its own (cell-wise optimiser, per-cell schedule), so they equal the refits
    trained afterwards from the kept fit's start, and a cell's draws do not depend on its batch."""
    from cellfit.fit.select import bootstrap_refits, fit_candidates, refit_jobs

    recs = synthetic_recordings(alif_panel(2, seed=6), dt_ms=0.5, window_s=1.0)
    sets = [TrainingSet(r.normalised_current("train"), r.train.spikes, r.normalised_voltage("train")) for r in recs]
    cfg = FitConfig(dt_ms=0.5, epochs=4, bootstrap=2)
    cands, together = fit_candidates(sets, cfg, device="cpu", progress=False, keys=[11, 12])
    after = bootstrap_refits(sets, [c[0] for c in cands], cfg, device="cpu", progress=False, keys=[11, 12])
    for a, b in zip(together, after):
        assert len(a) == len(b) == 2
        for x, y in zip(a, b):
            assert x.init == y.init
            for (name, p), q in zip(x.model.named_parameters(), y.model.parameters()):
                # the same per-neuron arithmetic in batches of other sizes: rounding at most
                torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6, msg=name)
    # cell 12's draws are its own: alone, or second in the batch
    alone = refit_jobs(sets[1:], [cands[1][0].init], cfg, 0, keys=[12])
    both = refit_jobs(sets, [cands[0][0].init, cands[1][0].init], cfg, 0, keys=[11, 12])
    for (_, d1, s1), (_, d2, s2) in zip(alone, both[2:]):
        assert s1 == s2 and np.array_equal(d1.spikes, d2.spikes)


def test_adapt_search_starts_at_every_grid_tau_adapt_keeps_the_lowest_loss_and_reports_intervals():
    """``--adapt-search``: one start per tau_adapt of the grid (the first is the ordinary best grid point),
    the lowest final training loss kept, the refits trained beside the starts from the best grid point."""
    from cellfit.fit.config import ADAPT_SEARCH, fit_config
    from cellfit.fit.fitter import training_tensors
    from cellfit.fit.init import grid_init, initial_values

    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=0.5, window_s=1.0)
    cfg = fit_config(adapt_search=True, dt_ms=0.5, epochs=6, bootstrap=3)
    assert cfg.restarts == ADAPT_SEARCH["restarts"] == len(cfg.grid_tau_adapt_ms) and cfg.validation_s == 0.0
    data = TrainingSet(rec.normalised_current("train"), rec.train.spikes, rec.normalised_voltage("train"))
    x, targets = training_tensors([data], cfg, "cpu")
    (diverse,) = grid_init([initial_values(cfg, data)], x, targets, cfg, top=5)
    (ranked,) = grid_init([initial_values(cfg, data)], x, targets, dataclasses.replace(cfg, diverse_restarts=False),
                          top=5)
    assert sorted(o["tau_adapt_ms"] for o in diverse) == sorted(cfg.grid_tau_adapt_ms)  # every grid tau_adapt
    assert diverse[0] == ranked[0]  # the first start is the default fit's

    (fit,) = fit_recordings([rec], cfg, device="cpu", progress=False)
    r = fit.result
    cands = r.selection["candidates"]
    assert r.selection["basis"] == "training loss" and len(cands) == 5
    assert r.selection["chosen"] == min(range(5), key=lambda i: cands[i]["train_loss"])
    assert r.bootstrap_replicates == 3
    for name, (lo, hi) in r.intervals.items():
        assert lo <= getattr(r, name) <= hi


def test_the_default_fit_searches_along_tau_adapt_with_a_validation_veto():
    """The default (round 4): the same five starts as ``--adapt-search``, the lowest training loss kept among
    those whose validation ETV is at most ``validation_veto`` below the first's; refits beside the starts."""
    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=0.5, window_s=2.0)
    # equivalent_loss 0.5 (default 0.02) changes no choice; here it makes other starts equivalent (16%, 32% above)
    cfg = FitConfig(dt_ms=0.5, epochs=6, bootstrap=3, equivalent_loss=0.5)
    (fit,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
    r = fit.result
    cands = r.selection["candidates"]
    assert r.selection["basis"] == "training loss, validation veto 0.1" and len(cands) == 5
    first = cands[0]["validation_etv"]
    eligible = [i for i, c in enumerate(cands) if i == 0 or c["validation_etv"] >= first - 0.1]
    assert r.selection["chosen"] == min(eligible, key=lambda i: cands[i]["train_loss"])
    assert r.bootstrap_replicates == 3
    for name, (lo, hi) in r.intervals.items():
        assert lo <= getattr(r, name) <= hi
    kept = cands[r.selection["chosen"]]
    assert kept["equivalent"] and (kept["tau_m_ms"], kept["tau_adapt_ms"]) == (r.tau_m_ms, r.tau_adapt_ms)
    for i, c in enumerate(cands):  # the starts the data cannot tell apart lie inside the intervals
        assert c["equivalent"] == (i in eligible and c["train_loss"] <= kept["train_loss"] * 1.5)
        if c["equivalent"]:
            for name in ("tau_m_ms", "tau_adapt_ms"):
                lo, hi = r.intervals[name]
                assert lo <= c[name] <= hi
    assert sum(c["equivalent"] for c in cands) >= 2


@pytest.mark.parametrize("variant", ["alif", "alif_reset_asc"])
def test_candidates_simulated_as_one_batch_spike_as_each_alone(variant):
    """Validation simulates a cell's candidates of one variant as one batched model
    (:func:`predict_population`); each neuron of a batch is independent, so every candidate's spike
    train is the one it has alone (exact: spike trains are 0/1, and these models are far from ties)."""
    from cellfit.fit.fitter import predict_population, predict_spikes

    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=0.5, window_s=1.0)
    stimuli = rec.normalised_current("train")[0]  # (E, T)
    cfg = FitConfig(dt_ms=0.5, model=variant)
    models = []
    for k, (tau_m, tau_a, bias) in enumerate(((12.0, 80.0, 0.4), (25.0, 300.0, 0.6), (40.0, 30.0, 0.9))):
        init = dict(cfg.initial_values(), **cfg.variant_start(variant), tau_m_ms=tau_m, tau_adapt_ms=tau_a, bias=bias)
        if "asc_amp" in init:
            init["asc_amp"] = [0.3 * k - 0.2, -0.1]
        models.append(cfg.build_model(init))
    together = predict_population(models, stimuli)
    assert together.shape == (3, *stimuli.shape) and together.sum() > 0
    for model, spikes in zip(models, together):
        np.testing.assert_array_equal(spikes, predict_spikes(model, stimuli)["spikes"])


def test_equivalent_candidates_are_the_unvetoed_starts_of_the_kept_variant_within_the_loss_margin():
    def of(variant, loss, failed=False):
        return dataclasses.replace(state(loss, failed=failed), init={"model": variant})

    cands = [of("alif", 1.0), of("alif", 0.50), of("alif", 0.505), of("alif", 0.51), of("alif", 0.52),
             of("alif", 0.509, failed=True), of("alif_asc", 0.50)]
    scores = [0.9, 0.85, 0.9, 0.7, 0.9, float("nan"), 0.9]  # 3 is vetoed (0.7 < 0.9 - 0.1)
    cfg = FitConfig(equivalent_loss=0.02, equivalent_validation=None)  # the loss margin alone: within 2% of 0.50, up to 0.51
    assert equivalent_candidates(cands, scores, 1, cfg) == [1, 2]  # not 3 (vetoed), 4 (4% above), 5, 6
    assert equivalent_candidates(cands, None, 1, cfg) == [1, 2, 3]  # no validation: no veto
    assert equivalent_candidates(cands, scores, 1, dataclasses.replace(cfg, equivalent_loss=None)) == [1]
    assert equivalent_candidates(cands, scores, 1, dataclasses.replace(cfg, validation_veto=None)) == [1]
    assert equivalent_candidates(cands, scores, 6, cfg) == [6]  # the kept variant's candidates only


def test_candidates_the_validation_seconds_score_as_well_join_the_equivalent_fits():
    """``equivalent_validation`` (round 33): a start whose validation ETV is at least the kept one's minus the
    tolerance is one the data cannot rule out, whatever its training loss; not a vetoed or failed one, not
    another variant's, and not where the validation seconds do not judge the variant (a bursting start first)."""
    def of(variant, loss, failed=False, burst=False):
        return dataclasses.replace(state(loss, failed=failed), init={"model": variant, "burst": burst})

    cands = [of("alif", 1.0), of("alif", 0.50), of("alif", 0.9), of("alif", 0.6), of("alif", 0.7),
             of("alif", 0.8, failed=True), of("alif_asc", 0.9)]
    scores = [0.9, 0.85, 0.86, 0.84, 0.7, 0.95, 0.95]  # 4 is vetoed (0.7 < 0.9 - 0.1)
    cfg = FitConfig(equivalent_loss=0.02, equivalent_validation=0.0)
    assert equivalent_candidates(cands, scores, 1, cfg) == [0, 1, 2]  # 0.9 and 0.86 >= 0.85; not 3 (0.84), 4, 5, 6
    assert equivalent_candidates(cands, scores, 1, dataclasses.replace(cfg, equivalent_validation=0.01)) == [0, 1, 2, 3]
    assert equivalent_candidates(cands, scores, 1, dataclasses.replace(cfg, equivalent_validation=None)) == [1]
    assert equivalent_candidates(cands, None, 1, cfg) == [1]  # no validation seconds: the loss margin alone
    bursting = [dataclasses.replace(c, init=dict(c.init, burst=True)) for c in cands]
    assert equivalent_candidates(bursting, scores, 1, cfg) == [1]  # the seconds do not judge bursting fits
    with pytest.raises(ValueError, match="equivalent_validation"):
        FitConfig(equivalent_validation=-0.1)


def test_candidates_that_explain_the_training_window_as_well_join_the_equivalent_fits():
    """``equivalent_train_etv`` (round 41): a start whose training-window ETV is at least the kept one's minus the
    tolerance is one the data cannot rule out, whatever its training loss; not a vetoed or failed one, not another
    variant's, and nothing without training-window scores."""
    def of(variant, loss, failed=False):
        return dataclasses.replace(state(loss, failed=failed), init={"model": variant})

    cands = [of("alif", 1.0), of("alif", 0.50), of("alif", 0.9), of("alif", 0.6), of("alif", 0.7),
             of("alif", 0.8, failed=True), of("alif_asc", 0.9)]
    scores = [0.9, 0.85, 0.86, 0.84, 0.7, 0.95, 0.95]  # 4 is vetoed (0.7 < 0.9 - 0.1)
    train = [1.0, 1.1, 1.12, 1.09, 1.3, 1.3, 1.3]
    cfg = FitConfig(equivalent_loss=0.02, equivalent_validation=None, equivalent_train_etv=0.0)
    assert equivalent_candidates(cands, scores, 1, cfg, train) == [1, 2]  # 1.12 >= 1.1; not 0, 3, 4 (vetoed), 5, 6
    assert equivalent_candidates(cands, scores, 1, dataclasses.replace(cfg, equivalent_train_etv=0.01),
                                 train) == [1, 2, 3]
    assert equivalent_candidates(cands, scores, 1, cfg) == [1]  # no training-window scores: the loss margin alone
    assert equivalent_candidates(cands, scores, 1, dataclasses.replace(cfg, equivalent_train_etv=None), train) == [1]
    assert equivalent_candidates(cands, None, 1, cfg, train) == [1, 2, 4]  # no validation seconds: nothing vetoed
    with pytest.raises(ValueError, match="equivalent_train_etv"):
        FitConfig(equivalent_train_etv=-0.1)


def test_intervals_contain_the_equivalent_fits():
    cfg = FitConfig(interval_level=0.8, undetermined_ratio=1.5)
    refits = [state(1.0, tau_m=tm, tau_a=ta) for tm, ta in ((19, 90), (20, 100), (21, 110))]
    estimate = dict(tau_m_ms=20.0, tau_adapt_ms=100.0, adapt_scale=0.5, gain=1.5, bias=0.5)
    table, loose = interval_table(refits, estimate, cfg)
    assert loose == []  # 19-21 ms and 90-110 ms: determined
    table, loose = interval_table(refits, estimate, cfg, [dict(estimate, tau_adapt_ms=300.0, gain=1.2)])
    assert table["tau_adapt_ms"][1] == 300.0 and table["gain"][0] == 1.2 and loose == ["tau_adapt_ms"]


def test_widen_to_starts_reaches_part_of_the_way_to_the_nearest_start_outside():
    # halfway in log from 100 down to 25 is 50, from 300 up to the nearest start above (1200) is 600; a start
    # inside [100, 300] does not count
    assert widen_to_starts(100.0, 300.0, [25.0, 150.0, 1200.0, 5000.0], 0.5) == pytest.approx((50.0, 600.0))
    assert widen_to_starts(100.0, 300.0, [20.0, 1200.0], 1.0) == pytest.approx((20.0, 1200.0))  # all the way
    assert widen_to_starts(100.0, 300.0, [150.0, 300.0, 100.0], 0.5) == (100.0, 300.0)  # nothing outside
    assert widen_to_starts(100.0, 300.0, [20.0], None) == (100.0, 300.0)
    assert widen_to_starts(100.0, 300.0, [20.0], 0.0) == (100.0, 300.0)
    assert widen_to_starts(100.0, 300.0, [], 0.5) == (100.0, 300.0)


def test_interval_of_tau_adapt_reaches_towards_the_other_starts():
    cfg = FitConfig(interval_level=0.8, undetermined_ratio=1.5, start_gap=0.5)
    refits = [state(1.0, tau_m=tm, tau_a=ta) for tm, ta in ((19, 90), (20, 100), (21, 110))]
    estimate = dict(tau_m_ms=20.0, tau_adapt_ms=100.0, adapt_scale=0.5, gain=1.5, bias=0.5)
    starts = [dict(estimate, tau_m_ms=40.0, tau_adapt_ms=ta) for ta in (25.0, 100.0, 800.0)]
    plain, _ = interval_table(refits, estimate, dataclasses.replace(cfg, start_gap=None), (), starts)
    table, loose = interval_table(refits, estimate, cfg, (), starts)
    lo, hi = plain["tau_adapt_ms"]
    assert table["tau_adapt_ms"] == pytest.approx([(lo * 25.0) ** 0.5, (hi * 800.0) ** 0.5])
    assert table["tau_m_ms"] == plain["tau_m_ms"]  # only the searched time constant: starts share tau_m's start
    assert loose == ["tau_adapt_ms"]  # now wider than 1.5x
    with pytest.raises(ValueError, match="start_gap"):
        FitConfig(start_gap=1.5)


def test_an_end_with_no_start_beyond_it_reaches_towards_the_bound():
    """``bound_gap`` (round 23): an end of the tau_adapt interval with no start beyond it moves that fraction of the
    way, in log, towards the parameter's bound on that side; an end with a start beyond it reaches the start."""
    bounds = (5.0, 5000.0)
    lo, hi = widen_to_starts(20.0, 300.0, [20.0, 50.0, 300.0, 800.0], 1.0, bounds, 0.25)
    assert (lo, hi) == pytest.approx((20.0 * (5.0 / 20.0) ** 0.25, 800.0))  # no start below 20: a quarter to 5
    halfway = (10.0, (900.0 * 5000.0) ** 0.5)  # no start beyond either end: half of the way to each bound
    assert widen_to_starts(20.0, 900.0, [20.0, 800.0], 0.5, bounds, 0.5) == pytest.approx(halfway)
    midpoint = (20.0, (300.0 * 800.0) ** 0.5)
    assert widen_to_starts(20.0, 300.0, [20.0, 800.0], 0.5, bounds, None) == pytest.approx(midpoint)
    assert widen_to_starts(20.0, 300.0, [20.0, 800.0], 0.5) == pytest.approx(midpoint)
    assert widen_to_starts(4.0, 300.0, [800.0], 0.5, bounds, 0.5)[0] == 4.0  # already past the bound: stays
    cfg = FitConfig(interval_level=0.8, undetermined_ratio=1.5, start_gap=1.0, bound_gap=0.25)
    refits = [state(1.0, tau_m=tm, tau_a=ta) for tm, ta in ((19, 90), (20, 100), (21, 110))]
    estimate = dict(tau_m_ms=20.0, tau_adapt_ms=100.0, adapt_scale=0.5, gain=1.5, bias=0.5)
    starts = [dict(estimate, tau_adapt_ms=ta) for ta in (100.0, 800.0)]  # none below the interval
    plain, _ = interval_table(refits, estimate, dataclasses.replace(cfg, bound_gap=None), (), starts)
    table, _ = interval_table(refits, estimate, cfg, (), starts)
    assert table["tau_adapt_ms"] == pytest.approx([plain["tau_adapt_ms"][0] * (5.0 / plain["tau_adapt_ms"][0]) ** 0.25,
                                                   800.0])
    one, _ = interval_table(refits, estimate, cfg, (), starts[:1])  # one start is not a search: no bound reach
    assert one == interval_table(refits, estimate, dataclasses.replace(cfg, bound_gap=None), (), starts[:1])[0]
    assert one["tau_adapt_ms"][0] == plain["tau_adapt_ms"][0] and one["tau_adapt_ms"][1] < 800.0
    with pytest.raises(ValueError, match="bound_gap"):
        FitConfig(bound_gap=2.0)


def test_a_weak_adaptation_gets_a_tau_adapt_interval_over_its_whole_range():
    """``FitConfig.weak_adaptation`` (round 22): a kept fit whose adapt_scale is weaker than it gets a tau_adapt
    interval that spans ``tau_adapt_bounds_ms``, flagged; the other intervals, and a stronger adaptation's, stay."""
    cfg = FitConfig(interval_level=0.8, undetermined_ratio=1.5, start_gap=None, weak_adaptation=0.03)
    refits = [state(1.0, tau_m=tm, tau_a=ta) for tm, ta in ((19, 90), (20, 100), (21, 110))]
    estimate = dict(tau_m_ms=20.0, tau_adapt_ms=100.0, adapt_scale=0.02, gain=1.5, bias=0.5)
    plain, plain_loose = interval_table(refits, estimate, dataclasses.replace(cfg, weak_adaptation=None))
    table, loose = interval_table(refits, estimate, cfg)
    assert plain_loose == [] and plain["tau_adapt_ms"][1] / plain["tau_adapt_ms"][0] < 1.5  # determined without
    assert table["tau_adapt_ms"] == [5.0, 5000.0] and loose == ["tau_adapt_ms"]  # FitConfig's tau_adapt bounds
    assert table["tau_m_ms"] == plain["tau_m_ms"] and table["gain"] == plain["gain"]
    for strong in (0.03, -0.5):  # not weaker than 0.03, or a strong negative one: tau_adapt's interval unchanged
        assert interval_table(refits, dict(estimate, adapt_scale=strong), cfg)[0]["tau_adapt_ms"] == plain["tau_adapt_ms"]
    with pytest.raises(ValueError, match="weak_adaptation"):
        FitConfig(weak_adaptation=-0.1)
    # the default since round 41 (FITTING.md): 0.05, so an adaptation of 0.04 (the weak, fast RS cells whose
    # tau_adapt the data do not time) gets the whole range too, and 0.06 does not
    default = dataclasses.replace(FitConfig(), interval_level=0.8, undetermined_ratio=1.5, start_gap=None)
    assert interval_table(refits, dict(estimate, adapt_scale=0.04), default)[0]["tau_adapt_ms"] == [5.0, 5000.0]
    assert interval_table(refits, dict(estimate, adapt_scale=0.06), default)[0]["tau_adapt_ms"] == plain["tau_adapt_ms"]


def test_variant_members_are_the_kept_variants_candidates_that_did_not_fail():
    cands = [state(1.0), state(0.5, failed=True), state(0.7)]
    cands[2] = dataclasses.replace(cands[2], init={"model": "alif_asc"})
    assert variant_members(cands, 0) == [0]
    assert variant_members(cands, 2) == [2]


def _train(times_ms, T=10000, dt_ms=0.1):
    s = np.zeros(T, np.float32)
    s[(np.asarray(times_ms) / dt_ms).astype(int)] = 1.0
    return s


def test_bursting_counts_the_intervals_shorter_than_the_burst_interval():
    """A cell bursts when at least ``burst_fraction`` of its inter-spike intervals (within each trace, never across
    traces) are shorter than ``burst_isi_ms``."""
    from cellfit.fit.select import bursting

    cfg = FitConfig(burst_fraction=0.3)  # 30% of the intervals under 10 ms (the gate of rounds 8-45; 20% since 46)
    regular = _train(np.arange(20, 1000, 50))  # 20 Hz: every interval 50 ms
    bursts = _train([t0 + 5 * i for t0 in (100, 400, 700) for i in range(4)])  # 3 bursts of 4 spikes at 200 Hz
    assert not bursting(np.stack([regular] * 3)[:, None], cfg)
    assert bursting(np.stack([bursts] * 3)[:, None], cfg)  # 9 of 11 intervals are 5 ms
    # traces are not joined: one spike per trace has no interval at all
    one = _train([500.0])
    assert not bursting(np.stack([one] * 6).reshape(2, 3, -1), cfg)
    # the fraction: 3 short of 13 intervals (23%) is not a burster at 30%, is at 20%
    mixed = _train(sorted([20 + 80 * i for i in range(11)] + [25, 105, 185]))
    assert not bursting(mixed[None, None], cfg)
    assert bursting(mixed[None, None], dataclasses.replace(cfg, burst_fraction=0.2))
    assert not bursting(np.stack([bursts] * 3)[:, None], dataclasses.replace(cfg, burst_fraction=None))


def test_a_bursting_cell_under_burst_sub_below_keeps_its_subthreshold_starts(monkeypatch):
    """``burst_sub_below``: a cell that bursts (``burst_fraction``) with fewer short intervals than this fraction
    keeps the ``alif_sub`` starts a cell that does not burst would get (``initial_starts(allow_sub=True)``); one
    that bursts more gets none, as every bursting cell without the setting."""
    import cellfit.fit.select as select
    from cellfit.fit.select import keeps_sub

    mixed = _train(sorted([20 + 80 * i for i in range(11)] + [25, 105, 185]))[None, None]  # 3 short of 13: 23%
    bursts = _train([t0 + 5 * i for t0 in (100, 400, 700) for i in range(4)])[None, None]  # 9 of 11: 82%
    cfg = FitConfig(burst_fraction=0.2, burst_sub_below=0.3)
    assert select.bursting(mixed, cfg) and keeps_sub(mixed, cfg)
    assert select.bursting(bursts, cfg) and not keeps_sub(bursts, cfg)
    assert not keeps_sub(mixed, FitConfig(burst_fraction=0.2, burst_sub_below=None))  # None (rounds 10-45): never
    assert not keeps_sub(_train([500.0])[None, None], cfg)  # no interval at all
    with pytest.raises(ValueError, match="burst_sub_below"):
        FitConfig(burst_sub_below=0.0)

    seen = []

    def starts(config, data, *, allow_sub=True):
        seen.append(allow_sub)
        raise RuntimeError("stop after the starts")
    monkeypatch.setattr(select, "initial_starts", starts)
    for spikes, config, allowed in ((mixed, cfg, True), (bursts, cfg, False),
                                    (mixed, FitConfig(burst_fraction=0.2, burst_sub_below=None), False),
                                    (mixed, FitConfig(burst_fraction=0.3, burst_sub_below=None), True),
                                    (mixed, FitConfig(), True)):  # today's default: bursting, keeps them
        seen.clear()
        data = TrainingSet(np.zeros_like(spikes), spikes, None)
        with pytest.raises(RuntimeError, match="stop after the starts"):
            select.fit_candidates([data], config, device="cpu", seed=0, progress=False)
        assert seen == [allowed]


def test_a_bursting_cell_started_as_alif_sub_starts_its_bursting_fits_without_the_current(monkeypatch):
    """A bursting cell under ``burst_sub_below`` may be started as ``alif_sub``: its bursting and reset candidates
    start from those starting values without the subthreshold current's (the model they train has none), so the
    start a result reports holds only what its model fits."""
    import cellfit.fit.select as select

    mixed = _train(sorted([20 + 80 * i for i in range(11)] + [25, 105, 185]))[None, None]  # 23%: bursting, keeps sub
    cfg = FitConfig(burst_fraction=0.2, burst_sub_below=0.3, grid_init=False, bootstrap=0)
    sub_start = dict(FitConfig().variant_start("alif_sub"), tau_m_ms=20.0, tau_adapt_ms=100.0, adapt_scale=0.1,
                     gain=1.5, bias=0.5, method="voltage with subthreshold current")
    monkeypatch.setattr(select, "initial_starts", lambda config, data, *, allow_sub=True: [dict(sub_start)])
    seen = []

    def fit_by_variant(jobs, *args, **kwargs):
        if any("bursting start" in j[2].get("method", "") for j in jobs):
            seen.extend(j[2] for j in jobs)
            raise RuntimeError("stop at the bursting candidates")
        return [None] * len(jobs)
    monkeypatch.setattr(select, "fit_by_variant", fit_by_variant)
    data = TrainingSet(np.zeros_like(mixed), mixed, None)
    with pytest.raises(RuntimeError, match="stop at the bursting candidates"):
        select.fit_candidates([data], cfg, device="cpu", seed=0, progress=False)
    assert {s["model"] for s in seen} == {"alif_asc", "alif_reset_asc"}
    assert not any("sub_amp" in s or "tau_sub_ms" in s for s in seen)
    assert all(s["tau_m_ms"] == 20.0 for s in seen)  # the rest of the start is kept


def test_onset_bursting_counts_the_first_interval_of_each_trace():
    """A cell bursts at its onsets when the first inter-spike interval is shorter than ``burst_isi_ms`` in at least
    ``onset_burst_fraction`` of the traces with two spikes: a burst from rest and single spikes after (a
    low-threshold spiking cell) qualifies; bursts later in the trace do not; None never."""
    from cellfit.fit.select import bursting, onset_bursting

    cfg = FitConfig(onset_burst_fraction=0.7)
    onset = _train([40, 45, 50, 55] + list(range(150, 1000, 80)))  # 4 spikes at 200 Hz, then 12.5 Hz
    assert onset_bursting(np.stack([onset] * 3)[:, None], cfg)
    # 3 short of 14 intervals (21%): not a burster at round 8's gate, 30% (today's, 20%, counts it)
    assert not bursting(np.stack([onset] * 3)[:, None], dataclasses.replace(cfg, burst_fraction=0.3))
    late = _train([40, 150, 155, 160, 400, 480])  # a burst, but not the first interval
    assert not onset_bursting(np.stack([late] * 3)[:, None], cfg)
    one = _train([500.0])  # traces with a single spike do not count either way
    assert onset_bursting(np.stack([onset, one, one]).reshape(1, 3, -1), cfg)
    assert not onset_bursting(np.stack([one] * 3)[:, None], cfg)
    # the fraction: 2 of 3 traces (67%) is below 70%, at 60% enough
    mixed = np.stack([onset, onset, late])[:, None]
    assert not onset_bursting(mixed, cfg)
    assert onset_bursting(mixed, dataclasses.replace(cfg, onset_burst_fraction=0.6))
    assert not onset_bursting(np.stack([onset] * 3)[:, None], FitConfig())  # None (the default): never
    with pytest.raises(ValueError, match="onset_burst_fraction"):
        FitConfig(onset_burst_fraction=1.5)


def test_an_onset_bursting_cell_gets_the_reset_starts_and_the_training_window_choice(monkeypatch):
    """With ``onset_burst_fraction`` a cell that does not burst (patched here) but whose traces start with a burst
    (every trace with two spikes, ``burst_isi_ms`` 1 s) keeps its own starts, gets one ``alif_reset_asc`` candidate
    per ``burst_reset_starts`` (in the range of a reset above threshold) and no ``burst_starts`` candidate, and its
    variants are compared by training-window ETV; without the setting it is fitted as any other cell."""
    import cellfit.fit.select as select

    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=0.5, window_s=2.0)
    monkeypatch.setattr(select, "bursting", lambda spikes, config: False)
    # train_etv_switch off: this is about the onset-bursting cell's candidates and variant choice (round 37's switch,
    # on by default, scores every cell's training window and may move the kept start)
    cfg = FitConfig(dt_ms=0.5, epochs=4, bootstrap=0, burst_isi_ms=1000.0, onset_burst_fraction=0.5,
                    train_etv_switch=None, burst_reset_starts=(0.8,))  # one reset start (round 13's), for the count
    (fit,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
    cands = fit.result.selection["candidates"]
    assert [c["model"] for c in cands] == ["alif"] * 5 + ["alif_reset_asc"]
    assert cands[5]["start"].endswith("reset start 0.8")
    assert all(np.isfinite(c["train_etv"]) for c in cands)
    assert fit.result.selection["basis"].endswith("training-window ETV is higher")
    # the reset fit is in the range of a reset above threshold (high_reset_bounds; onset_reset_high, the default),
    # else in the usual one, as a bursting cell's from the same start: the choice is patched to keep it
    cfg_start = cfg.onset_reset_start(0.8)
    assert cfg_start["v_reset_bounds"] == [-1.0, 1.8] and cfg_start["v_reset"] == 0.8
    assert "v_reset_bounds" not in dataclasses.replace(cfg, onset_reset_high=False).onset_reset_start(0.8)
    monkeypatch.setattr(select, "choose", lambda c, *a, **k: (len(c) - 1, "patched"))
    (kept,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
    assert kept.result.model == "alif_reset_asc" and kept.result.init["v_reset_bounds"] == [-1.0, 1.8]
    assert kept.model.v_reset_bounds == (-1.0, 1.8)
    monkeypatch.undo()
    monkeypatch.setattr(select, "bursting", lambda spikes, config: False)
    # onset_restarts: a reset candidate from each of the cell's best starts (here the five ALIF ones), in their order
    (five,) = fit_recordings([rec], dataclasses.replace(cfg, onset_restarts=5), window_s=1.0, device="cpu",
                             progress=False)
    starts = [c["start"] for c in five.result.selection["candidates"]]
    assert starts[5:] == [f"{s} + reset start 0.8" for s in starts[:5]]
    with pytest.raises(ValueError, match="onset_restarts"):
        FitConfig(onset_restarts=0)
    (plain,) = fit_recordings([rec], dataclasses.replace(cfg, onset_burst_fraction=None), window_s=1.0, device="cpu",
                              progress=False)
    assert [c["model"] for c in plain.result.selection["candidates"]] == ["alif"] * 5
    assert not any("train_etv" in c for c in plain.result.selection["candidates"])


def test_silent_where_cell_fires_finds_a_fit_silent_on_a_stimulus_the_cell_answers():
    """``gain_starts="stuck_or_silent"``'s test: a fit that fires no spike on a training stimulus to which the cell
    fires at least once per repeat on average; a fit that fires there, or a stimulus the cell rarely answers, is not
    one."""
    from cellfit.fit.select import silent_where_cell_fires

    cfg = FitConfig(dt_ms=0.5)
    cur = np.zeros((3, 2, 2000), dtype=np.float32)
    cur[:, 1, 200:] = 1.0  # the second epoch's stimulus steps up after 100 ms
    spikes = np.zeros_like(cur)
    spikes[:, 1, 400::400] = 1.0  # the cell fires 4 times per repeat on it, never on the first
    data = TrainingSet(cur, spikes)

    def fit(gain, bias):
        return dataclasses.replace(state(1.0), model=cfg.build_model(dict(cfg.initial_values(), gain=gain, bias=bias)))

    quiet, loud = fit(0.0, 0.0), fit(5.0, 0.0)
    assert silent_where_cell_fires(quiet, data) and not silent_where_cell_fires(loud, data)
    rare = np.zeros_like(cur)
    rare[0, 1, 1000] = 1.0  # one spike in three repeats: under once per repeat
    assert not silent_where_cell_fires(quiet, TrainingSet(cur, rare))
    with pytest.raises(ValueError, match="gain_starts"):
        FitConfig(gain_starts="silent")


def test_gain_starts_compete_by_training_window_etv_under_gain_choice(monkeypatch):
    """``gain_choice="train_etv"``: the usual rule picks among the candidates that are not gain-start fits, and a
    gain-start fit replaces that pick only where its training-window ETV is higher (a fit silent in the weaker
    epochs may have the lower loss); ``"loss"`` (the default) lets the gain starts compete by their loss."""
    import cellfit.fit.select as select

    def of(loss, gain=None):
        return dataclasses.replace(state(loss), init=dict(model="alif", **({"gain_scale": gain} if gain else {})))

    cands = [of(1.0), of(0.9), of(0.5, 4.0), of(0.7, 2.0)]
    val = [0.8, 0.8, 0.8, 0.8]  # nothing vetoed
    data = TrainingSet(np.zeros((2, 1, 10), np.float32), np.zeros((2, 1, 10), np.float32))
    by_etv = FitConfig(gain_choice="train_etv", train_etv_switch=None)  # the gain choice alone (round 37's switch off)
    for train, kept in (([0.6, 0.6, 0.4, 0.5], 1),  # no gain start above the pick's 0.6: the usual pick
                        ([0.6, 0.6, 0.4, 0.9], 3),  # the x2 start's 0.9: kept, although the x4 start's loss is lower
                        ([0.6, 0.6, 0.95, 0.9], 2)):  # the highest of those above
        assert select.gain_choice(cands, val, train, by_etv, burst=False)[0] == kept
        monkeypatch.setattr(select, "validation_scores", lambda c, v, dt, train=train: list(val if v.start else train))
        valset = select.ValidationSet(data.current, data.spikes, 5)
        index, basis, _, scores = select.choice(cands, data, valset, by_etv)
        assert index == kept and scores == train and "gain start" in basis
        # "loss": the lowest loss, the x4 start (round 37's switch off: it would read the training window too)
        assert select.choice(cands, data, valset, FitConfig(train_etv_switch=None))[0] == 2
    assert select.choice(cands[:2], data, valset, by_etv)[3] is None  # no gain starts: no training-window scores
    with pytest.raises(ValueError, match="gain_choice"):
        FitConfig(gain_choice="etv")


def test_bursting_candidates_are_chosen_by_training_loss_without_the_veto():
    """The bursting starts (``FitConfig.burst_starts``) form their own group: the lowest training loss among them,
    with no validation veto (such fits score about 0 on the validation seconds), replaces the ALIF pick only
    where it is ``margin`` lower."""
    def of(variant, loss, burst=None):
        st = state(loss)
        return dataclasses.replace(st, init=dict(model=variant, **({"burst": burst} if burst else {})))

    cands = [of("alif", 1.0), of("alif", 0.8), of("alif_asc", 0.9, 1), of("alif_asc", 0.6, 2)]
    scores = [0.9, 0.85, 0.2, 0.0]  # both bursting fits predict the validation seconds badly
    assert choose(cands, scores, veto=0.1, margin=0.05)[0] == 3  # 0.6 < 0.8 x 0.95: not vetoed, kept
    assert choose(cands, scores, veto=0.1, margin=0.3)[0] == 1  # not 30% lower: the ALIF pick
    plain = [of("alif", 1.0), of("alif", 0.8), of("alif_asc", 0.9), of("alif_asc", 0.6)]  # --model auto's starts
    assert choose(plain, scores, veto=0.1, margin=0.05)[0] == 1  # there the veto holds: 0.0 < 0.2 - 0.1


def test_bursting_candidates_only_in_the_default_search():
    from cellfit.fit.config import fit_config

    cfg = FitConfig()
    assert cfg.burst_candidates and cfg.burst_model == "alif_asc" and len(cfg.burst_starts) == 2
    start = cfg.burst_start(0)
    assert (start["model"], start["asc_amp"], start["tau_asc_ms"], start["burst"]) == ("alif_asc", [1.5, -1.0],
                                                                                       [50.0, 500.0], 1)
    assert fit_config(model=None) == cfg  # no --model: the default
    assert not fit_config(model="alif").burst_candidates  # --model alif: the ALIF model alone
    assert not fit_config(model="auto").burst_candidates and not fit_config(restarts=1).burst_candidates
    assert not fit_config(adapt_search=True).burst_candidates
    assert FitConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg  # nested starts round-trip
    with pytest.raises(ValueError, match="burst_model"):
        FitConfig(burst_model="alif_reset")
    with pytest.raises(ValueError, match="burst_starts"):
        FitConfig(burst_starts=(((1.0,), (50.0,)),))
    with pytest.raises(ValueError, match="burst_fraction"):
        FitConfig(burst_fraction=0.0)


def test_a_bursting_cell_gets_bursting_candidates_and_a_kept_one_its_own_refits(monkeypatch):
    """Every cell counts as bursting here (``burst_isi_ms`` 1 s); round 8's candidates (no reset start, the
    variants compared by the loss); the choice is patched to keep the last candidate (a bursting fit), so the
    refits trained beside the ALIF starts do not fit it: they are redone with its variant, and its intervals
    cover its after-spike currents."""
    import cellfit.fit.select as select

    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=0.5, window_s=2.0)
    cfg = FitConfig(dt_ms=0.5, epochs=4, bootstrap=2, burst_isi_ms=1000.0, burst_reset_starts=(), burst_choice="loss",
                    train_etv_switch=None, sub_reset_asc=False)  # round 8's choice alone (rounds 37's and 44's off)
    (plain,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
    cands = plain.result.selection["candidates"]
    assert [c["model"] for c in cands] == ["alif"] * 5 + ["alif_asc"] * 2
    assert cands[5]["start"].endswith("bursting start 1") and cands[6]["start"].endswith("bursting start 2")
    assert not any("train_etv" in c for c in cands)  # scored only under burst_choice "train_etv"
    monkeypatch.setattr(select, "choose", lambda c, *a, **k: (len(c) - 1, "patched"))
    (fit,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
    r = fit.result
    assert r.model == "alif_asc" and r.selection["chosen"] == 6 and r.bootstrap_replicates == 2
    assert {"asc_amp_1", "tau_asc_2_ms"} <= set(r.intervals)
    assert r.init["burst"] == 2 and r.init["tau_asc_ms"] == [50.0, 1000.0]


def test_bursting_variants_compared_by_their_training_window_etv():
    """``FitConfig.burst_choice="train_etv"``: each variant's pick is made as usual (ALIF's by the veto and the
    training loss, the bursting starts' by the loss alone); another variant's pick replaces ALIF's where its ETV on
    the training window is higher, whatever the losses."""
    def of(variant, loss, burst=None):
        return dataclasses.replace(state(loss), init=dict(model=variant, **({"burst": burst} if burst else {})))

    cands = [of("alif", 1.0), of("alif", 0.8), of("alif_asc", 0.9, 1), of("alif_asc", 0.6, 2),
             of("alif_reset_asc", 0.85)]
    scores = [0.9, 0.85, 0.2, 0.0, 0.9]
    assert choose(cands, scores, veto=0.1, margin=0.05)[0] == 3  # by the loss: the bursting fit
    index, basis = choose(cands, scores, veto=0.1, margin=0.05, train_scores=[0.5, 0.6, 0.9, 0.7, 0.8])
    assert index == 4 and basis.endswith("training-window ETV is higher")  # the picks: 1 (0.6), 3 (0.7), 4 (0.8)
    assert choose(cands, scores, veto=0.1, margin=0.05, train_scores=[0.5, 0.9, 0.9, 0.7, float("nan")])[0] == 1
    # a reset fit in a range of its own (a start above threshold) is a variant of its own: its pick is not the
    # lower-loss reset fit of the usual range, and it wins by its training-window ETV
    high = dataclasses.replace(state(0.95), init=dict(model="alif_reset_asc", v_reset_bounds=[-1.0, 1.8]))
    index, _ = choose(cands + [high], scores + [0.9], veto=0.1, margin=0.05,
                      train_scores=[0.5, 0.6, 0.9, 0.7, 0.8, 0.95])
    assert index == 5
    with pytest.raises(ValueError, match="burst_choice"):
        FitConfig(burst_choice="validation")
    with pytest.raises(ValueError, match="burst_reset_starts"):
        FitConfig(burst_reset_starts=(1.9,))  # above the high range's upper bound (1.8)
    with pytest.raises(ValueError, match="high_reset_bounds"):
        FitConfig(high_reset_bounds=(-1.0, 2.5))  # above V_RESET_MAX


def test_another_variant_must_beat_alif_on_the_training_window_by_the_margin():
    """``FitConfig.burst_variant_margin`` (round 47): a bursting variant's pick replaces ALIF's only where its
    training-window ETV is higher by more than the margin; among those that are, the highest wins; 0 is rounds 13-46."""
    def of(variant, loss):
        return dataclasses.replace(state(loss), init=dict(model=variant))

    cands = [of("alif", 1.0), of("alif_reset_asc", 0.9),
             dataclasses.replace(state(0.95), init=dict(model="alif_reset_asc", v_reset_bounds=[-1.0, 1.8]))]
    scores = [0.9, 0.6, 0.6]
    near = [0.878, 0.883, 0.7]  # the reset fit ahead by 0.005: a tie on a 1 s window
    assert choose(cands, scores, veto=0.1, margin=0.05, train_scores=near)[0] == 1
    index, basis = choose(cands, scores, veto=0.1, margin=0.05, train_scores=near, train_margin=0.05)
    assert index == 0 and basis.endswith("higher by more than 0.05")
    far = [0.80, 0.86, 0.95]  # both ahead by more than the margin: the highest
    assert choose(cands, scores, veto=0.1, margin=0.05, train_scores=far, train_margin=0.05)[0] == 2
    assert choose(cands, scores, veto=0.1, margin=0.05, train_scores=[0.80, 0.86, 0.84], train_margin=0.05)[0] == 1
    for bad in (-0.01, float("nan")):
        with pytest.raises(ValueError, match="burst_variant_margin"):
            FitConfig(burst_variant_margin=bad)


def test_near_the_gate_another_variant_must_also_win_on_the_validation_seconds():
    """``FitConfig.burst_agree_below`` (round 51): a bursting cell with fewer short intervals than this fraction
    (``needs_agreement``) keeps a bursting variant's pick over ALIF's only where its validation ETV is higher too;
    among those that win on both, the highest training-window ETV; without the setting, the window alone."""
    from cellfit.fit.select import needs_agreement

    def of(variant, loss):
        return dataclasses.replace(state(loss), init=dict(model=variant))

    cands = [of("alif", 1.0), of("alif_reset_asc", 0.9),
             dataclasses.replace(state(0.95), init=dict(model="alif_reset_asc", v_reset_bounds=[-1.0, 1.8]))]
    train = [0.878, 0.883, 0.80]  # development AdEx RS 991000005 of draw 4: the reset fit ahead on the window
    scores = [0.846, 0.586, 0.90]  # and behind on the validation seconds
    assert choose(cands, scores, veto=0.1, margin=0.05, train_scores=train)[0] == 1
    index, basis = choose(cands, scores, veto=0.1, margin=0.05, train_scores=train, with_validation=True)
    assert index == 0 and basis.endswith("and its validation ETV too")
    both = [0.80, 0.86, 0.84]  # both reset picks ahead on the window; only the high-reset one on the seconds too
    assert choose(cands, scores, veto=0.1, margin=0.05, train_scores=both)[0] == 1
    assert choose(cands, scores, veto=0.1, margin=0.05, train_scores=both, with_validation=True)[0] == 2
    unscored = [0.846, float("nan"), float("nan")]  # a pick without a validation score does not win on the seconds
    assert choose(cands, unscored, veto=0.1, margin=0.05, train_scores=both, with_validation=True)[0] == 0

    cfg = FitConfig(burst_fraction=0.1, burst_agree_below=0.2)
    mixed = _train(sorted([20 + 80 * i for i in range(11)] + [25, 105]))  # 2 short of 12 intervals: 17%
    assert needs_agreement(mixed[None, None], cfg)
    assert not needs_agreement(mixed[None, None], dataclasses.replace(cfg, burst_agree_below=0.15))
    assert not needs_agreement(mixed[None, None], dataclasses.replace(cfg, burst_agree_below=None))
    assert FitConfig().burst_agree_below is None
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="burst_agree_below"):
            FitConfig(burst_agree_below=bad)


def test_a_bursting_cell_gets_a_reset_start_and_its_training_window_scores():
    """Under round 13's ``burst_reset_starts`` (0.8,) a bursting cell (every cell here, ``burst_isi_ms``
    1 s) gets one more candidate per value, ``alif_reset_asc`` from the best grid point with its reset started there
    and no after-spike current (from the best alone here, ``burst_reset_restarts`` 1, as before round 20); under
    ``burst_choice="train_etv"`` (the default) result.json holds each candidate's training-window ETV."""
    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=0.5, window_s=2.0)
    assert FitConfig().burst_reset_starts == (0.8, 1.4)  # the default since round 45; the start above 1: its test below
    cfg = FitConfig(dt_ms=0.5, epochs=4, bootstrap=0, burst_isi_ms=1000.0, burst_reset_restarts=1,
                    burst_reset_starts=(0.8,))
    assert cfg.burst_choice == "train_etv"
    start = cfg.burst_reset_start(0.8)
    assert (start["model"], start["v_reset"], start["asc_amp"]) == ("alif_reset_asc", 0.8, [0.0, 0.0])
    (fit,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
    r = fit.result
    cands = r.selection["candidates"]
    assert [c["model"] for c in cands] == ["alif"] * 5 + ["alif_asc"] * 2 + ["alif_reset_asc"]
    assert cands[7]["start"].endswith("reset start 0.8")
    assert all(np.isfinite(c["train_etv"]) for c in cands)
    assert r.selection["basis"].endswith("training-window ETV is higher")


def test_burst_restarts_start_the_bursting_candidates_from_each_of_the_best_starts():
    """By default (round 20) a bursting cell (every cell here, ``burst_isi_ms`` 1 s) gets its reset starts (0.8 and,
    since round 45, 1.4) from each of its three best starts (``burst_reset_restarts`` 3) and its bursting starts from
    the best alone (``burst_restarts`` 1); ``burst_restarts`` 2 starts each bursting start from the two best, in their
    order; below 1 is refused."""
    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=0.5, window_s=2.0)
    cfg = FitConfig(dt_ms=0.5, epochs=4, bootstrap=0, burst_isi_ms=1000.0)
    assert (cfg.burst_restarts, cfg.burst_reset_restarts) == (1, 3)
    (fit,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
    cands = fit.result.selection["candidates"]
    assert [c["model"] for c in cands] == ["alif"] * 5 + ["alif_asc"] * 2 + ["alif_reset_asc"] * 6
    starts = [c["start"] for c in cands]
    assert starts[5:7] == [f"{starts[0]} + bursting start {b}" for b in (1, 2)]
    assert starts[7:] == [f"{s} + reset start {v}" for s in starts[:3] for v in ("0.8", "1.4")]
    (two,) = fit_recordings([rec], dataclasses.replace(cfg, burst_restarts=2, burst_reset_restarts=1), window_s=1.0,
                            device="cpu", progress=False)
    starts = [c["start"] for c in two.result.selection["candidates"]]
    assert starts[5:9] == [f"{s} + bursting start {b}" for s in starts[:2] for b in (1, 2)]
    assert starts[9:] == [f"{starts[0]} + reset start {v}" for v in ("0.8", "1.4")]
    for option in ("burst_restarts", "burst_reset_restarts"):
        with pytest.raises(ValueError, match=option):
            FitConfig(**{option: 0})


def test_a_reset_start_above_threshold_is_fitted_in_its_own_range_and_reloads_with_it(monkeypatch):
    """A reset start at or above ``v_reset_bounds``' high end (0.95) is fitted in ``high_reset_bounds`` (a reset
    above the base threshold), in a batch of its own; the range travels in ``init`` so that the kept fit's refits,
    its at-bound check and a reload from result.json use it. The choice is patched to keep that candidate."""
    import cellfit.fit.select as select
    from cellfit.fit import model_from_result

    cfg = FitConfig(dt_ms=0.5, epochs=4, bootstrap=2, burst_isi_ms=1000.0, burst_reset_starts=(0.8, 1.4),
                    train_etv_switch=None)  # the patched choice's pick kept (round 37's switch off)
    low, high = cfg.burst_reset_start(0.8), cfg.burst_reset_start(1.4)
    assert "v_reset_bounds" not in low and high["v_reset_bounds"] == [-1.0, 1.8]
    assert cfg.reset_bounds(low) == (-1.0, 0.95) and cfg.reset_bounds(high) == (-1.0, 1.8)
    with pytest.raises(ValueError, match="one reset range"):
        cfg.build_model([dict(cfg.initial_values(), **low), dict(cfg.initial_values(), **high)])
    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=0.5, window_s=2.0)
    monkeypatch.setattr(select, "choose", lambda c, *a, **k: (len(c) - 1, "patched"))
    (fit,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
    r = fit.result
    cands = r.selection["candidates"]
    assert [c["model"] for c in cands][-2:] == ["alif_reset_asc"] * 2
    assert cands[-1]["start"].endswith("reset start 1.4") and r.selection["chosen"] == len(cands) - 1
    assert r.model == "alif_reset_asc" and r.init["v_reset_bounds"] == [-1.0, 1.8] and r.bootstrap_replicates == 2
    assert fit.model.v_reset_bounds == (-1.0, 1.8) and -1.0 < float(fit.model.v_reset.detach()) < 1.8
    assert json.loads(json.dumps(r.init))["v_reset_bounds"] == [-1.0, 1.8]  # plain JSON
    again = model_from_result(r, fit.model.state_dict())
    assert again.v_reset_bounds == (-1.0, 1.8)
    # same reset: float32 default tolerance (~1e-5 relative) for the sigmoid recomputed on reload; rebuilt in the
    # default range (-1, 0.95) the same raw parameter would give a reset lower by up to 0.85, far outside it
    torch.testing.assert_close(again.v_reset, fit.model.v_reset)


def test_a_cell_alif_predicts_poorly_gets_after_spike_candidates_from_its_starts(monkeypatch):
    """``FitConfig.asc_rescue``: a cell kept as plain ALIF whose kept fit's validation ETV is below the setting is
    fitted again as ``alif_asc`` and ``alif_reset_asc`` from each of its five starts, after its ALIF candidates; the
    after-spike fits compete by the 5% loss margin and a kept one gets its own refits. Above the setting, or without
    it, the cell keeps its five ALIF candidates; a bursting cell (after-spike candidates already) is left out."""
    import cellfit.fit.select as select

    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=0.5, window_s=3.0)
    cfg = FitConfig(dt_ms=0.5, epochs=4, bootstrap=2, asc_rescue=100.0)  # every validation ETV lies below 100
    (fit,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
    cands = fit.result.selection["candidates"]
    assert [c["model"] for c in cands] == ["alif"] * 5 + ["alif_asc"] * 5 + ["alif_reset_asc"] * 5
    starts = [c["start"] for c in cands]
    assert starts[5:10] == starts[10:] == [f"{s} + after-spike rescue" for s in starts[:5]]
    assert fit.result.selection["basis"].endswith("another variant if its loss is 0.05 lower (an after-spike rescue "
                                                  "fit: and its validation ETV not lower)")
    (low,) = fit_recordings([rec], dataclasses.replace(cfg, asc_rescue=1e-9), window_s=1.0, device="cpu",
                            progress=False)
    (off,) = fit_recordings([rec], dataclasses.replace(cfg, asc_rescue=None), window_s=1.0, device="cpu",
                            progress=False)
    for other in (low, off):  # not gated: the default's candidates and fit, bit for bit
        assert [c["model"] for c in other.result.selection["candidates"]] == ["alif"] * 5
        def trained(c):  # what the start reached (the equivalence flags follow the kept variant)
            return {key: v for key, v in c.items() if key != "equivalent"}

        assert [trained(c) for c in other.result.selection["candidates"]] == [trained(c) for c in cands[:5]]
        assert fit.result.model != "alif" or other.result.etv == fit.result.etv
    monkeypatch.setattr(select, "choose", lambda c, *a, **k: (len(c) - 1 if len(c) > 5 else 0, "patched"))
    (kept,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
    assert kept.result.model == "alif_reset_asc" and kept.result.bootstrap_replicates == 2
    assert "v_reset" in kept.result.intervals and "asc_amp_1" in kept.result.intervals
    monkeypatch.undo()
    # every cell bursts here; no reset start, so no round 44 fit from a kept alif_sub one either
    burst = dataclasses.replace(cfg, burst_isi_ms=1000.0, burst_reset_starts=(), sub_reset_asc=False)
    (b,) = fit_recordings([rec], burst, window_s=1.0, device="cpu", progress=False)
    assert [c["model"] for c in b.result.selection["candidates"]] == ["alif"] * 5 + ["alif_asc"] * 2
    with pytest.raises(ValueError, match="asc_rescue"):
        FitConfig(asc_rescue=0.0)
    with pytest.raises(ValueError, match="asc_rescue_models"):
        FitConfig(asc_rescue_models=("alif_sub",))


def test_a_rescue_fit_replaces_alif_only_where_it_predicts_the_validation_seconds_as_well():
    """``choose(..., rescue_validation=True)`` (``FitConfig.asc_rescue_validation``): an after-spike rescue variant's
    pick (starts marked ``"rescue"``) replaces the base's only where its loss is ``margin`` lower and its validation
    ETV not lower; another variant (here ``alif_sub``) by the loss margin alone, as before."""
    def cand(loss, model="alif", **init):
        st = state(loss)
        return dataclasses.replace(st, init=dict(model=model, **init))

    cands = [cand(1.0), cand(0.8, "alif_asc", rescue=True)]
    assert choose(cands, [0.7, 0.6], veto=0.1, margin=0.05)[0] == 1  # the loss margin alone
    index, basis = choose(cands, [0.7, 0.6], veto=0.1, margin=0.05, rescue_validation=True)
    assert index == 0 and basis.endswith("(an after-spike rescue fit: and its validation ETV not lower)")
    assert choose(cands, [0.7, 0.7], veto=0.1, margin=0.05, rescue_validation=True)[0] == 1  # as high: kept
    assert choose(cands, [0.7, float("nan")], veto=0.1, margin=0.05, rescue_validation=True)[0] == 0  # unscored
    sub = [cand(1.0), cand(0.8, "alif_sub")]  # not a rescue fit: the margin alone
    assert choose(sub, [0.7, 0.6], veto=0.1, margin=0.05, rescue_validation=True) == \
        choose(sub, [0.7, 0.6], veto=0.1, margin=0.05)
    both = [cand(1.0), cand(0.9, "alif_sub"), cand(0.8, "alif_asc", rescue=True)]  # the rescue pick vetoed: alif_sub
    assert choose(both, [0.7, 0.5, 0.6], veto=0.1, margin=0.05, rescue_validation=True)[0] == 1


def test_a_start_of_the_kept_variant_with_a_clearly_higher_training_window_etv_replaces_it():
    """``FitConfig.train_etv_switch`` with ``train_etv_scope="variant"``: within the kept fit's variant, the
    candidate the veto keeps with the highest training-window ETV replaces the kept one where that ETV is at least
    the margin higher; a vetoed or failed start, or one of another variant, never does."""
    from cellfit.fit.select import train_etv_switch

    def of(variant, loss, failed=False):
        return dataclasses.replace(state(loss, failed=failed), init={"model": variant})

    cands = [of("alif", 1.0), of("alif", 0.8), of("alif", 0.9), of("alif", 0.95), of("alif_asc", 0.5),
             of("alif", 0.99, failed=True)]
    scores = [0.9, 0.85, 0.9, 0.5, 0.9, 0.9]  # start 3 is vetoed (0.5 < 0.9 - 0.1)
    train = [0.60, 0.62, 0.75, 0.99, 0.99, 0.99]  # the vetoed, the other variant's and the failed one score highest
    cfg = FitConfig(train_etv_switch=0.1, train_etv_scope="variant")  # round 37's scope; "all" (round 38) below
    assert train_etv_switch(cands, scores, train, 1, "b", cfg) == (2, "b; another start of its variant, "
                                                                    "training-window ETV 0.1 higher")
    assert train_etv_switch(cands, scores, train, 1, "b", dataclasses.replace(cfg, train_etv_switch=0.2)) == (1, "b")
    assert train_etv_switch(cands, scores, train, 2, "b", cfg) == (2, "b")  # already the highest
    # without validation scores nothing is vetoed: start 3 then replaces
    assert train_etv_switch(cands, None, train, 1, "b", cfg)[0] == 3
    with pytest.raises(ValueError, match="train_etv_switch"):
        FitConfig(train_etv_switch=-0.1)
    assert FitConfig.from_dict(cfg.to_dict()) == cfg


def test_near_the_gate_the_training_window_switch_needs_the_validation_seconds_to_move_to_another_variant():
    """``FitConfig.burst_agree_below`` (round 51): under ``agree`` the switch (``train_etv_scope="all"``) moves to a
    start of another variant only where its validation ETV is higher than the kept one's; a start of the kept
    variant moves as before."""
    from cellfit.fit.select import train_etv_switch

    def of(variant, loss):
        return dataclasses.replace(state(loss), init={"model": variant})

    cands = [of("alif", 1.0), of("alif", 0.9), of("alif_reset_asc", 0.8), of("alif_reset_asc", 0.85)]
    scores = [1.89, 1.85, 1.80, 1.70]  # as development AdEx RS 991000005 of draw 1: the reset fits behind on the seconds
    train = [1.24, 1.36, 1.46, 1.40]
    cfg = FitConfig(train_etv_switch=0.1, train_etv_scope="all")
    assert train_etv_switch(cands, scores, train, 0, "b", cfg)[0] == 2
    assert train_etv_switch(cands, scores, train, 0, "b", cfg, agree=True) == (1, "b; another start of its variant, "
                                                                                  "training-window ETV 0.1 higher")
    ahead = [1.89, 1.85, 1.95, 1.70]  # the reset fit ahead on both: it moves
    assert train_etv_switch(cands, ahead, train, 0, "b", cfg, agree=True)[0] == 2


def test_the_training_window_switch_across_variants_vetoes_each_variant_against_its_own_best_grid_point():
    """``FitConfig.train_etv_scope="all"``: the unvetoed starts of every variant compete; each variant's starts are
    vetoed against that variant's first candidate, and a failed start never replaces."""
    from cellfit.fit.select import train_etv_switch

    def of(variant, loss, failed=False):
        return dataclasses.replace(state(loss, failed=failed), init={"model": variant})

    cands = [of("alif", 1.0), of("alif", 0.8), of("alif_asc", 0.5), of("alif_asc", 0.6), of("alif_asc", 0.4),
             of("alif_sub", 0.7, failed=True)]
    scores = [0.9, 0.85, 0.6, 0.55, 0.45, 0.9]  # alif_asc's third start is vetoed against its own first (0.45 < 0.5)
    train = [0.60, 0.62, 0.63, 0.74, 0.99, 0.99]
    cfg = FitConfig(train_etv_switch=0.1, train_etv_scope="all")
    # alif_asc's start 3 (0.74) is the highest unvetoed one; the kept alif start 1 (0.62) is 0.12 lower
    assert train_etv_switch(cands, scores, train, 1, "b", cfg) == (3, "b; another start of variant alif_asc, "
                                                                    "training-window ETV 0.1 higher")
    # within the kept variant (round 37's scope) nothing of alif is 0.1 higher
    assert train_etv_switch(cands, scores, train, 1, "b", dataclasses.replace(cfg, train_etv_scope="variant")) \
        == (1, "b")
    # a start of the kept variant is still named as such
    assert train_etv_switch(cands, scores, train, 2, "b", cfg) == (3, "b; another start of its variant, "
                                                                    "training-window ETV 0.1 higher")
    with pytest.raises(ValueError, match="train_etv_scope"):
        FitConfig(train_etv_scope="cell")
    assert FitConfig.from_dict(cfg.to_dict()) == cfg
