"""Generalisation guards: default fits of a few test-panel cells keep their held-out ETV, and the
ALIF cells' membrane time constants are recovered or flagged with the truth in their interval.

The interval guard covers the two ALIF cells where the target held when this was written; the
panel's third fast-spiking ALIF cell (992000003) misses it (FITTING.md reports all four).

The cells come from :func:`cellfit.data.synthetic.test_panel` (the panel FITTING.md reports on;
nothing was tuned on it), simulated in memory (:func:`synthetic_recordings`, no AllenSDK needed)
and fitted with the default :class:`FitConfig` at DT 0.1 ms: 1 s of each Noise 1 epoch trains,
the next second validates, Noise 2 is held out. The floors sit 0.1 below the ETVs this subset
reached when the test was written (2026-12-02, 2-core x86-64): a fit on another CPU differs by
float32 rounding (other kernels, other summation order) and its ETV by a few hundredths; a drop
of 0.1 is a regression of the method, not rounding.
"""

from __future__ import annotations

import pytest

from cellfit.data.synthetic import synthetic_recordings, test_panel
from cellfit.fit import FitConfig, fit_recordings

#: test-panel index -> (what the cell is, ETV floor)
CELLS = {
    1: ("ALIF regular spiking", 0.90),  # reached 0.999
    3: ("ALIF slow fast-spiking", 0.85),  # 0.950
    5: ("AdEx regular spiking", 0.76),  # 0.858
    13: ("HH fast spiking", 0.85),  # 0.954
}


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
