"""Generalisation guards: default fits of a few test-panel cells keep their held-out ETV, the
ALIF cells' membrane time constants (and one cell's adaptation time constant) are recovered or
flagged with the truth in their interval; the options of FITTING.md's later rounds keep what
they gained on one cell each (round 34: the after-spike rescue, opt-in).

The interval guard covers the two ALIF cells where the target held when this was written; the
panel's third fast-spiking ALIF cell (992000003) misses it (FITTING.md reports all four).

The cells come from :func:`cellfit.data.synthetic.test_panel` (the panel FITTING.md reports on;
nothing was tuned on it), simulated in memory (:func:`synthetic_recordings`, no AllenSDK needed)
and fitted with the default :class:`FitConfig` at DT 0.1 ms: 1 s of each Noise 1 epoch trains,
the next second validates (the next two for ``--model auto --restarts 2``), Noise 2 is held out.
The floors sit 0.1 below the ETVs this subset reached with today's default (2026-12-02,
2-core x86-64): a fit on another CPU differs by float32 rounding (other kernels, other summation
order) and its ETV by a few hundredths; a drop of 0.1 is a regression of the method, not rounding.
"""

from __future__ import annotations

import dataclasses

import pytest

import cellfit.fit.api as fit_api
from cellfit.data.synthetic import development_panel, synthetic_recordings, test_panel
from cellfit.fit import FitConfig, fit_recordings
from cellfit.fit.select import bootstrap_refits

#: test-panel index -> (what the cell is, ETV floor)
CELLS = {
    1: ("ALIF regular spiking", 0.96),  # reached 1.065 (0.999 with one start, the default of rounds 1-3)
    3: ("ALIF slow fast-spiking", 0.85),  # 0.950 (0.950)
    5: ("AdEx regular spiking", 0.76),  # 0.858 (0.858)
    13: ("HH fast spiking", 0.90),  # 1.000 (0.954)
}


def _default_fits(indices: list) -> list:
    """Default fits of the test-panel cells ``indices`` (simulated in memory, fitted together at DT 0.1 ms)."""
    panel = test_panel()
    recs = synthetic_recordings([panel[i] for i in indices], dt_ms=0.1, window_s=2.0)
    return fit_recordings(recs, FitConfig(dt_ms=0.1), window_s=1.0, device="cpu", seed=0, progress=False)


@pytest.fixture(scope="module")
def fits():
    panel = test_panel()
    cells = [panel[i] for i in CELLS]
    recs = synthetic_recordings(cells, dt_ms=0.1, window_s=2.0)
    out = fit_recordings(recs, FitConfig(dt_ms=0.1), window_s=1.0, device="cpu", seed=0, progress=False)
    return dict(zip(CELLS, zip(cells, out)))


@pytest.mark.slow
@pytest.mark.parametrize("index", list(CELLS))
def test_held_out_etv_stays_above_its_floor(fits, index):
    cell, fit = fits[index]
    what, floor = CELLS[index]
    r = fit.result
    assert r.status == "ok", r.error
    print(f"{what}: held-out ETV {r.etv:.3f}")
    assert r.etv >= floor, f"{what} ({r.specimen_id}): held-out ETV {r.etv:.3f} < {floor}"


@pytest.mark.slow
@pytest.mark.parametrize("index", [i for i, (what, _) in CELLS.items() if what.startswith("ALIF")])
def test_alif_membrane_time_constant_recovered_or_flagged_with_truth_inside(fits, index):
    cell, fit = fits[index]
    r = fit.result
    truth = cell.params.tau_m_ms
    lo, hi = r.intervals["tau_m_ms"]
    assert lo <= r.tau_m_ms <= hi
    within = abs(r.tau_m_ms / truth - 1) <= 0.15
    assert within or ("tau_m_ms" in r.undetermined and lo <= truth <= hi), \
        f"tau_m {r.tau_m_ms:.1f} ms vs true {truth:.1f} ms, interval [{lo:.1f}, {hi:.1f}], flags {r.undetermined}"


@pytest.mark.slow
@pytest.mark.parametrize("index", [1, 3])
def test_alif_adaptation_time_constant_recovered_or_flagged_with_truth_inside(fits, index):
    """The default's search along tau_adapt (round 4) on the ALIF regular-spiking cell: 36.7 ms for a true
    36.2 ms, where one start (the default of rounds 1-3) stopped at 131 ms. The slow fast-spiking cell 3:
    136 ms for a true 200 ms; its interval, 39-164 ms before round 7, reaches halfway to the start above it
    since (28-215 ms, flagged), so the truth lies inside (FITTING.md, round 7)."""
    cell, fit = fits[index]
    r, truth = fit.result, cell.params.tau_adapt_ms
    lo, hi = r.intervals["tau_adapt_ms"]
    print(f"tau_adapt {r.tau_adapt_ms:.1f} ms (true {truth:.1f}), interval [{lo:.1f}, {hi:.1f}], flags {r.undetermined}")
    assert lo <= r.tau_adapt_ms <= hi
    within = abs(r.tau_adapt_ms / truth - 1) <= 0.15
    assert within or ("tau_adapt_ms" in r.undetermined and lo <= truth <= hi), \
        f"tau_adapt {r.tau_adapt_ms:.1f} ms vs true {truth:.1f} ms, interval [{lo:.1f}, {hi:.1f}], flags {r.undetermined}"


@pytest.mark.slow
def test_the_accurate_option_keeps_its_gain_on_a_cell_the_default_underfits():
    """``--model auto --restarts 2`` (three model classes from two starts each, chosen on the two Noise 1
    seconds after the training window) on the panel's other AdEx regular-spiking cell (992000005):
    it kept ``alif_asc`` and reached 1.087 where one start (the default then) reached 0.840 (FITTING.md,
    round 2), with a clear validation margin (1.23 vs 1.16 for the next candidate), so the choice does not
    hang on rounding. Floor 0.1 below, for the reason in the module docstring."""
    from cellfit.fit.config import fit_config

    (rec,) = synthetic_recordings([test_panel()[4]], dt_ms=0.1, window_s=3.0)
    cfg = fit_config(dt_ms=0.1, model="auto", restarts=2)  # as the command line builds it
    (fit,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", seed=0, progress=False)
    r = fit.result
    assert r.status == "ok", r.error
    assert r.selection["validation_s"] == pytest.approx(2.0) and len(r.selection["candidates"]) == 6
    print(f"auto x2: {r.model}, held-out ETV {r.etv:.3f}")
    assert r.etv >= 0.98, f"held-out ETV {r.etv:.3f} < 0.98 (kept {r.model})"


@pytest.mark.slow
def test_adapt_search_recovers_tau_adapt_where_one_start_does_not():
    """``--adapt-search`` on the ALIF regular-spiking cell above: one start's tau_adapt (the default then) was
    131 ms for a true 36 ms (a local minimum along tau_adapt); the search kept the start whose final loss was 7%
    below the next (0.807 vs 0.865) and reached 37 ms. Asserted: the tau_adapt target (within 15%, or
    flagged with the truth in its interval), which a change of start on another CPU would also have to meet."""
    from cellfit.fit.config import fit_config

    cell = test_panel()[1]
    (rec,) = synthetic_recordings([cell], dt_ms=0.1, window_s=1.0)
    (fit,) = fit_recordings([rec], fit_config(adapt_search=True), device="cpu", seed=0, progress=False)
    r, truth = fit.result, cell.params.tau_adapt_ms
    lo, hi = r.intervals["tau_adapt_ms"]
    print(f"adapt search: tau_adapt {r.tau_adapt_ms:.1f} ms (true {truth:.1f}), interval [{lo:.1f}, {hi:.1f}]")
    assert abs(r.tau_adapt_ms / truth - 1) <= 0.15 or ("tau_adapt_ms" in r.undetermined and lo <= truth <= hi)


@pytest.mark.slow
def test_model_auto_fits_a_bursting_cell_the_alif_model_cannot():
    """``--model auto`` (round 4b: the default's search in every model class, an extension kept only where
    its training loss is 5% below the ALIF fit's) on the development panel's intrinsically bursting
    Hodgkin-Huxley cell (991000012), where the decision was made: in the panel run (the cell loaded from its
    Allen-format files) it kept ``alif_reset_asc`` and reached 0.741 held out where the default (ALIF) reached
    0.226 (FITTING.md); simulated in memory as here it kept ``alif_asc`` at 0.778 on one 2-core x86-64 machine and
    ``alif_reset_asc`` at 0.623 on another (2026-12-03, the same code: the variants' training losses lie close, and
    the reset variant rounds differently per machine, see ``cellfit.fit.fitter``). Floor 0.1 below the lower, for
    the reason in the module docstring; the kept variant must be an extension."""
    from cellfit.data.synthetic import development_panel
    from cellfit.fit.config import fit_config

    (rec,) = synthetic_recordings([development_panel()[11]], dt_ms=0.1, window_s=3.0)
    (fit,) = fit_recordings([rec], fit_config(model="auto"), window_s=1.0, device="cpu", seed=0, progress=False)
    r = fit.result
    assert r.status == "ok", r.error
    print(f"auto: {r.model}, held-out ETV {r.etv:.3f}, {r.selection['basis']}")
    assert r.model != "alif" and r.etv >= 0.52, f"kept {r.model}, held-out ETV {r.etv:.3f}"


@pytest.mark.slow
def test_a_strongly_adapting_cell_starts_from_the_voltage_fit_with_its_after_spike_current():
    """Round 6: the test family with a strong spike-triggered current (here the draw of seed 1, 992000008, true
    tau_m 13.1 ms) failed on five of six draws because the plain voltage start took the after-spike current for
    a 130 ms membrane (held-out ETV 0.13 from that start, in memory, 2026-12-02). The default now starts from the
    fit with the current there: ETV 1.024, tau_m 12.2 ms; floor 0.1 below, tau_m within 30%."""
    cell = test_panel(seed=1)[7]
    recs = synthetic_recordings([cell], dt_ms=0.1, window_s=2.0)
    (fit,) = fit_recordings(recs, FitConfig(dt_ms=0.1), window_s=1.0, device="cpu", seed=0, progress=False)
    r = fit.result
    assert r.init["method"].startswith("voltage with spike current"), r.init
    assert r.etv >= 0.92, f"held-out ETV {r.etv:.3f}"
    assert r.tau_m_ms == pytest.approx(cell.params.tau_m_ms, rel=0.3) and r.at_bound == ()


@pytest.mark.slow
def test_the_default_fits_a_bursting_cell_with_a_bursting_candidate():
    """Round 8: a cell whose training spikes burst also gets ``alif_asc`` fits from two bursting starts (and,
    since round 13, an ``alif_reset_asc`` fit from a high reset, the variants compared by training-window ETV).
    On the development panel's intrinsically bursting Hodgkin-Huxley cell (991000012, where the decisions were
    made) round 8's default kept a bursting fit and reached 0.928 held out where the ALIF fit reached 0.226, round
    13's the reset fit at 0.991 (the panel runs, from its Allen-format files); simulated in memory as here it
    keeps the first bursting start at 0.895 (2026-12-03 and, under round 13, 2026-12-04). Floor 0.1 below, for
    the reason in the module docstring; the kept fit must be one of the bursting cell's extra candidates."""
    from cellfit.data.synthetic import development_panel

    (rec,) = synthetic_recordings([development_panel()[11]], dt_ms=0.1, window_s=3.0)
    (fit,) = fit_recordings([rec], FitConfig(dt_ms=0.1), window_s=1.0, device="cpu", seed=0, progress=False)
    r = fit.result
    assert r.status == "ok", r.error
    print(f"default: {r.model}, held-out ETV {r.etv:.3f}, {r.selection['basis']}, start {r.init['method']}")
    extra = r.init.get("burst") or "reset_start" in r.init
    assert r.model != "alif" and extra and r.etv >= 0.79, f"kept {r.model}, ETV {r.etv:.3f}"


@pytest.mark.slow
def test_the_default_keeps_bursting_fits_on_the_test_panels_bursting_cells():
    """Round 8 on the test panel (seed 0, nothing tuned on it): the intrinsically bursting and the low-threshold
    Hodgkin-Huxley cells (992000016, 992000017) kept a bursting fit in the panel run (0.158 -> 0.848 and 0.622 ->
    0.765); simulated in memory and fitted together as here, 0.801 and 0.743 (2026-12-03, and the same bursting
    fits under round 13's choice by training-window ETV, 2026-12-04), each bursting fit's training loss 57% and 33%
    below the ALIF fit's, so the round-8 choice does not hang on rounding. Floors 0.1 below."""
    for fit, floor in zip(_default_fits([15, 16]), (0.70, 0.64)):
        r = fit.result
        assert r.status == "ok", r.error
        print(f"{r.specimen_id}: {r.model}, held-out ETV {r.etv:.3f}, start {r.init['method']}")
        extra = r.init.get("burst") or "reset_start" in r.init
        assert r.model != "alif" and extra, f"{r.specimen_id} kept {r.model}"
        assert r.etv >= floor, f"{r.specimen_id}: held-out ETV {r.etv:.3f} < {floor}"


@pytest.mark.slow
def test_the_default_starts_the_test_panels_regular_spiking_hh_cells_as_alif_sub():
    """Round 10 on the test panel (seed 0, nothing tuned on it): the regular-spiking Hodgkin-Huxley cells
    (992000012, 992000013), whose voltage a subthreshold current explains much better, start as ``alif_sub``
    from that voltage fit; simulated in memory and fitted together as here, 0.921 and 0.899 (2026-12-03; the ALIF fits: 0.808 and
    0.438 in the panel run). Their plain voltage fits explain 0.505 and 0.548 of the voltage (the gate: 0.5), the fits
    with the current 0.84 and 0.90 (float64 least squares: far from rounding). Floors 0.1 below (module docstring)."""
    for fit, floor in zip(_default_fits([11, 12]), (0.82, 0.80)):
        r = fit.result
        assert r.status == "ok", r.error
        print(f"{r.specimen_id}: {r.model}, held-out ETV {r.etv:.3f}, start {r.init['method']}")
        assert r.model == "alif_sub" and r.init["method"].startswith("voltage with subthreshold current")
        assert r.etv >= floor, f"{r.specimen_id}: held-out ETV {r.etv:.3f} < {floor}"


@pytest.mark.slow
def test_the_default_fits_a_development_lts_cell_both_ways_and_keeps_alif_sub():
    """Round 11 where it was decided (development panel, draw 4, the low-threshold-spiking Hodgkin-Huxley cell
    991000013): its voltage gains 0.06 from the subthreshold current (between ``sub_zone_gain`` and
    ``sub_r2_gain``), so it is fitted as ALIF and as ``alif_sub``, and the alif_sub fit is kept (0.492 -> 0.619 in
    the panel run). Simulated in memory as here (one validation second instead of the panel run's two): the kept
    alif_sub fit's training loss is 0.83 of ALIF's (the rule: below 0.95, far from rounding) and its held-out ETV
    0.606 (2026-12-03); since round 44 that fit trained as ``alif_sub_reset_asc`` replaces it, 0.718 (2026-12-06);
    floor 0.1 below the first (module docstring). Round 8's bursting gate (30%), as when this was decided: in memory
    26% of its training intervals are under 10 ms, so since round 46 (20%) the default gives it the bursting
    candidates too and keeps a reset fit, 0.652 held out here (2026-12-07; the panel run of round 46, from the
    cache, 0.723 -> 0.839), which is not round 11's rule."""
    _fitted_both_ways_keeps_alif_sub(seed=4, index=12, floor=0.50, burst_fraction=0.3)


def _fitted_both_ways_keeps_alif_sub(seed: int, index: int, floor: float,
                                     start: str = "voltage with subthreshold current", **options) -> None:
    """The default fit (with ``options``) of development cell ``index`` of draw ``seed`` (simulated in memory, one
    validation second) has ALIF and ``alif_sub`` candidates, keeps the ``alif_sub`` fit from the start ``start`` (the
    voltage fit with the current by default), and scores at least ``floor`` on held-out data. Since round 44 that
    kept fit is also trained as ``alif_sub_reset_asc`` (a last candidate, only for a kept ``alif_sub`` fit), which
    replaces it where its training loss is 5% lower: either may be the reported one."""
    recs = synthetic_recordings([development_panel(seed=seed)[index]], dt_ms=0.1, window_s=2.0)
    r = fit_recordings(recs, FitConfig(dt_ms=0.1, **options), window_s=1.0, device="cpu", seed=0,
                       progress=False)[0].result
    assert r.status == "ok", r.error
    print(f"{r.specimen_id}: {r.model}, held-out ETV {r.etv:.3f}, {r.selection['basis']}")
    models = [c["model"] for c in r.selection["candidates"]]
    assert models[-1] == "alif_sub_reset_asc" and set(models[:-1]) == {"alif", "alif_sub"}
    assert r.model in ("alif_sub", "alif_sub_reset_asc") and r.init["method"].startswith(start)
    assert r.etv >= floor, f"{r.specimen_id}: held-out ETV {r.etv:.3f} < {floor}"


@pytest.mark.slow
def test_a_lower_voltage_floor_starts_a_development_rs_cell_as_alif_sub():
    """Round 17 (studied, not adopted: it lost on fresh test draws) on the cell where it was decided
    (development panel, draw 2, the regular-spiking Hodgkin-Huxley cell with a very strong I_M, 991000014): its
    plain voltage fit explains 0.495 of its voltage, under the default ``sub_min_r2`` 0.5 and above round 17's
    0.3 (float64 least squares: far from rounding), the fit with the current 0.86, so with ``sub_min_r2=0.3`` it
    starts as ``alif_sub`` (0.447 -> 0.938 in the panel run). Simulated in memory as here (one validation second):
    0.940, the default's ALIF fit 0.624 (2026-12-04, 2-core AMD EPYC); floor 0.1 below."""
    recs = synthetic_recordings([development_panel(seed=2)[13]], dt_ms=0.1, window_s=2.0)
    cfg = FitConfig(dt_ms=0.1, sub_min_r2=0.3)
    r = fit_recordings(recs, cfg, window_s=1.0, device="cpu", seed=0, progress=False)[0].result
    assert r.status == "ok", r.error
    print(f"{r.specimen_id}: {r.model}, held-out ETV {r.etv:.3f}, plain voltage R^2 {r.init['voltage_r2_plain']:.3f}")
    assert 0.3 <= r.init["voltage_r2_plain"] < FitConfig().sub_min_r2
    assert r.model == "alif_sub" and r.init["method"].startswith("voltage with subthreshold current")
    assert r.etv >= 0.84, f"{r.specimen_id}: held-out ETV {r.etv:.3f} < 0.84"


@pytest.mark.slow
def test_the_default_fits_a_development_rs_cell_under_the_voltage_floor_both_ways_and_keeps_alif_sub():
    """Round 18 where it was decided (development panel, draw 2, 991000014, as above): its plain voltage fit
    explains 0.495 of its voltage, between ``sub_low_r2`` 0.3 and ``sub_min_r2`` 0.5, so it is fitted as ALIF and
    as ``alif_sub``, and the alif_sub fit is kept by the 5% rule (0.447 -> 0.938 in the panel run). Simulated in
    memory as here: the alif_sub fit's training loss is 0.60 of ALIF's (the rule: below 0.95, far from rounding),
    held-out ETV 0.940 (2026-12-04, 2-core AMD EPYC); floor 0.1 below."""
    _fitted_both_ways_keeps_alif_sub(seed=2, index=13, floor=0.84)


@pytest.mark.slow
def test_a_cell_under_the_band_that_resets_near_threshold_keeps_alif_sub_from_the_default_current():
    """Round 19 (opt-in: not confirmed on fresh test draws) where it was decided (development panel, draw 2, the AdEx
    regular-spiking cell with a fast membrane and its reset just above V_T, 991000017): its plain voltage fit is
    rejected (under 0.2), the fit with the current explains 0.48, and its voltage 5 ms after a spike is 0.65 of the
    way to threshold, so with ``sub_default_below=0.3`` it is fitted as ALIF and as ``alif_sub`` from the default
    current, and the alif_sub fit is kept (0.450 -> 0.855 in the panel run). Simulated in memory as here (one
    validation second): the alif_sub fit's training loss is 0.87 of ALIF's (the rule: below 0.95), held-out ETV
    0.760, the default's ALIF fit 0.456 (2026-12-04, 2-core AMD EPYC); since round 44 that fit trained as
    ``alif_sub_reset_asc`` replaces it, 0.710 (2026-12-06, 2-core Intel Xeon); floor 0.1 below the first."""
    _fitted_both_ways_keeps_alif_sub(seed=2, index=16, floor=0.66, start="default with default subthreshold current",
                                     sub_default_below=0.3)


@pytest.mark.slow
def test_the_default_starts_a_bursting_cells_reset_fits_from_its_three_best_starts():
    """Round 20 where it was decided (development panel, draw 0, the AdEx regular-spiking cell with its reset just
    above V_T, 991000017, which bursts by the detector): its reset fits start from each of its three best starts, and
    the one from the second is kept by its training-window ETV (1.026 against the ALIF pick's 0.879: far from
    rounding); from the best start alone the ALIF fit was kept (0.881 in the panel run and in memory). Simulated in
    memory as here: held-out ETV 1.052 (2026-12-05, 2-core AMD EPYC); floor 0.1 below (module docstring)."""
    recs = synthetic_recordings([development_panel(seed=0)[16]], dt_ms=0.1, window_s=3.0)
    r = fit_recordings(recs, FitConfig(dt_ms=0.1), window_s=1.0, device="cpu", seed=0, progress=False)[0].result
    assert r.status == "ok", r.error
    print(f"{r.specimen_id}: {r.model}, held-out ETV {r.etv:.3f}, {r.selection['basis']}, kept {r.init['method']}")
    resets = [c["start"] for c in r.selection["candidates"] if c["model"] == "alif_reset_asc"]
    # since round 45 each of the three starts also gets a reset start of 1.4 (above threshold), listed after its 0.8
    assert len(resets) == 6 and [s.rsplit(" ", 1)[1] for s in resets] == ["0.8", "1.4"] * 3
    assert r.model == "alif_reset_asc" and r.init["method"] != resets[0]
    assert r.etv >= 0.95, f"{r.specimen_id}: held-out ETV {r.etv:.3f} < 0.95"


@pytest.mark.slow
def test_the_default_tau_adapt_interval_reaches_the_next_start_and_past_the_outermost_one():
    """Round 23 where it was decided (development panel, draw 7, the ALIF regular-spiking cell 991000001, true
    tau_adapt 195 ms, adaptation weak but above 0.03): the kept fit (52 ms) cannot time its adaptation. Simulated in
    memory as here (2026-12-05, 2-core AMD EPYC): interval 8.3-257 ms, holding the truth, where round 22's rule gave
    9.8-177 ms; its upper end is the fitted tau_adapt of the start above the bootstrap interval (257 ms), and its
    lower end lies past the lowest start's (20 ms), a quarter of the way towards tau_adapt's bound, 5 ms. The
    truth lies 24% inside the upper end, far from float rounding between CPUs."""
    recs = synthetic_recordings([development_panel(seed=7)[0]], dt_ms=0.1, window_s=2.0)
    r = fit_recordings(recs, FitConfig(dt_ms=0.1), window_s=1.0, device="cpu", seed=0, progress=False)[0].result
    assert r.status == "ok", r.error
    truth = development_panel(seed=7)[0].params.tau_adapt_ms
    lo, hi = r.intervals["tau_adapt_ms"]
    starts = sorted(c["tau_adapt_ms"] for c in r.selection["candidates"] if c["model"] == r.model and not c["failed"])
    print(f"{r.specimen_id}: tau_adapt {r.tau_adapt_ms:.1f} ms (true {truth:.1f}), interval [{lo:.1f}, {hi:.1f}], "
          f"starts {[round(s, 1) for s in starts]}")
    assert len(starts) == 5 and lo <= starts[0]  # reaches the lowest start, or past it towards the bound
    assert hi > starts[-1] or any(hi == pytest.approx(s, rel=1e-9) for s in starts)  # a start's, or past the last
    assert "tau_adapt_ms" in r.undetermined and lo <= truth <= hi


@pytest.mark.slow
def test_the_default_fits_gain_starts_for_a_development_cell_whose_fit_never_left_its_start(monkeypatch):
    """Round 12 where it was decided (development panel, draw 5, the AdEx adapting cell 991000006): from the five
    starts of factor 1 the kept fit never leaves its start (it fires on its bias; held-out ETV 0.587 with the gain
    starts off), so the gain starts train too and the gain x2 start is kept (training loss 2.17 against 2.53 for
    the best of the five: far from rounding). Simulated in memory as here: held-out ETV 0.984 (2026-12-03, 2-core
    x86-64); floor 0.1 below (module docstring). The bootstrap refits start from the kept gain start (not from the
    start that stayed put, where the refits beside the candidates began)."""
    refit_starts = []

    def spy(sets, chosen, config, **kw):
        refit_starts.extend(st.init for st in chosen)
        return bootstrap_refits(sets, chosen, config, **kw)

    monkeypatch.setattr(fit_api, "bootstrap_refits", spy)
    recs = synthetic_recordings([development_panel(seed=5)[5]], dt_ms=0.1, window_s=2.0)
    r = fit_recordings(recs, FitConfig(dt_ms=0.1), window_s=1.0, device="cpu", seed=0, progress=False)[0].result
    assert r.status == "ok", r.error
    assert [s["method"] for s in refit_starts] == [r.init["method"]]
    print(f"{r.specimen_id}: {r.model}, held-out ETV {r.etv:.3f}, kept {r.init['method']}")
    # (the after-spike rescue's candidates, FitConfig.asc_rescue, come after these where the cell is gated)
    starts = [c["start"] for c in r.selection["candidates"] if not c["start"].endswith("after-spike rescue")]
    assert len(starts) == FitConfig().restarts + 2
    assert starts[-2:] == ["default+grid (gain x2)", "default+grid (gain x4)"]
    assert "gain x" in r.init["method"]
    assert r.etv >= 0.88, f"{r.specimen_id}: held-out ETV {r.etv:.3f} < 0.88"


@pytest.mark.slow
def test_the_default_keeps_a_reset_fit_for_a_development_ib_cell_by_its_training_window_etv(monkeypatch):
    """Round 13 where it was decided (development panel, draw 0, the AdEx IB cell 991000007): the cell bursts, so
    it also gets the bursting starts and a reset start (``alif_reset_asc`` from a reset of 0.8); by the training
    loss the second bursting start wins (4.79 against the reset fit's 5.04; an onset burst, then silence: held-out
    ETV 0.404 with round 12's options), by the ETV on the training window the reset fit does (2.41 against 1.83 for
    the ALIF pick and 1.33 for the bursting one: far from rounding). Simulated in memory as here: held-out ETV
    0.950 (2026-12-04, 2-core x86-64); floor 0.1 below (module docstring). The kept reset fit refits from itself."""
    refit_starts = []

    def spy(sets, chosen, config, **kw):
        refit_starts.extend(st.init for st in chosen)
        return bootstrap_refits(sets, chosen, config, **kw)

    monkeypatch.setattr(fit_api, "bootstrap_refits", spy)
    recs = synthetic_recordings([development_panel()[6]], dt_ms=0.1, window_s=3.0)
    r = fit_recordings(recs, FitConfig(dt_ms=0.1), window_s=1.0, device="cpu", seed=0, progress=False)[0].result
    assert r.status == "ok", r.error
    print(f"{r.specimen_id}: {r.model}, held-out ETV {r.etv:.3f}, {r.selection['basis']}, kept {r.init['method']}")
    assert r.model == "alif_reset_asc" and r.init["reset_start"] == 0.8
    assert r.selection["basis"].endswith("training-window ETV is higher")
    assert [s["method"] for s in refit_starts] == [r.init["method"]]
    assert r.etv >= 0.85, f"{r.specimen_id}: held-out ETV {r.etv:.3f} < 0.85"


@pytest.mark.slow
def test_the_after_spike_rescue_fits_a_development_cell_reset_just_above_threshold():
    """Round 34 where it was decided (opt-in, ``FitConfig(asc_rescue=0.9)``; development panel, draw 1, the AdEx RS
    cell 991000018, a fast membrane reset just above V_T): its ALIF fit predicts the validation seconds at 0.725 and
    Noise 2 at 0.451, so the cell is gated and fitted again as ``alif_asc`` and ``alif_reset_asc`` from its five
    starts; an ``alif_asc`` fit reaches 0.75 of the ALIF loss (1.274 against 1.688) and predicts the validation
    seconds at 0.924, so it is kept: held-out ETV 0.991. Simulated in memory as here (2026-12-06, 2-core Intel
    Xeon); floor 0.1 below (module docstring); the margins of the choice are far from rounding."""
    recs = synthetic_recordings([development_panel(seed=1)[17]], dt_ms=0.1, window_s=2.0)
    r = fit_recordings(recs, FitConfig(dt_ms=0.1, asc_rescue=0.9), window_s=1.0, device="cpu", seed=0,
                       progress=False)[0].result
    assert r.status == "ok", r.error
    cands = r.selection["candidates"]
    print(f"{r.specimen_id}: {r.model}, held-out ETV {r.etv:.3f}, kept {r.init['method']}")
    assert [c["model"] for c in cands] == ["alif"] * 5 + ["alif_asc"] * 5 + ["alif_reset_asc"] * 5
    assert r.model in ("alif_asc", "alif_reset_asc") and r.init["method"].endswith("after-spike rescue")
    assert r.bootstrap_replicates == FitConfig().bootstrap  # its own refits, of its variant
    assert r.etv >= 0.89, f"{r.specimen_id}: held-out ETV {r.etv:.3f} < 0.89"


@pytest.mark.slow
def test_the_default_gives_a_development_lts_cell_under_the_old_gate_bursting_candidates():
    """Round 46 where it was decided (development panel, draw 6, the HH LTS cell, 991000013): 24% of its training
    intervals are under 10 ms in memory, under round 45's gate (30%) and over today's (20%), so it gets the bursting
    and reset candidates beside its ``alif_sub`` starts (0.586 -> 0.857 held out in the panel run). Simulated in memory
    as here: held-out ETV 0.822, kept from the reset start 1.4, against 0.682 with round 45's gate (an
    ``alif_sub_reset_asc`` fit; 2026-12-07, 2-core AMD EPYC); floor 0.1 below (module docstring), above round 45's."""
    from cellfit.fit.select import bursting, keeps_sub

    recs = synthetic_recordings([development_panel(seed=6)[12]], dt_ms=0.1, window_s=2.0)
    cfg = FitConfig(dt_ms=0.1)
    spikes = recs[0].first(1.0).train.spikes
    assert bursting(spikes, cfg) and keeps_sub(spikes, cfg)
    assert not bursting(spikes, dataclasses.replace(cfg, burst_fraction=0.3))
    r = fit_recordings(recs, cfg, window_s=1.0, device="cpu", seed=0, progress=False)[0].result
    assert r.status == "ok", r.error
    print(f"{r.specimen_id}: {r.model}, held-out ETV {r.etv:.3f}, kept {r.init['method']}")
    assert r.model in ("alif_asc", "alif_reset_asc"), r.model
    assert r.etv >= 0.722, f"{r.specimen_id}: held-out ETV {r.etv:.3f} < 0.722"


@pytest.mark.slow
def test_the_default_keeps_a_reset_fit_above_threshold_for_a_development_ib_cell():
    """Round 45 where it was decided (development panel, draw 1, the AdEx IB cell, 991000007): the reset fits started
    above threshold (1.4, in ``high_reset_bounds``) give its kept fit (0.624 -> 0.964 held out in the panel run, with
    round 44's single start kept as ``alif_asc``). Simulated in memory as here: held-out ETV 0.648, kept from 1.4,
    against 0.497 with round 44's ``burst_reset_starts=(0.8,)`` (2026-12-07, 2-core AMD EPYC); floor 0.1 below
    (module docstring), above round 44's."""
    recs = synthetic_recordings([development_panel(seed=1)[6]], dt_ms=0.1, window_s=2.0)
    r = fit_recordings(recs, FitConfig(dt_ms=0.1), window_s=1.0, device="cpu", seed=0, progress=False)[0].result
    assert r.status == "ok", r.error
    print(f"{r.specimen_id}: {r.model}, held-out ETV {r.etv:.3f}, kept {r.init['method']}")
    assert r.model == "alif_reset_asc" and r.init["method"].endswith("+ reset start 1.4")
    assert r.init["v_reset_bounds"] == list(FitConfig().high_reset_bounds)
    assert r.etv >= 0.548, f"{r.specimen_id}: held-out ETV {r.etv:.3f} < 0.548"
