"""Regression floor for fitting cells outside the ALIF family (issue 9; FITTING.md has the full panel)."""

import numpy as np
import pytest

from cellfit.data import load_cell
from cellfit.data.synthetic import mismatch_panel, write_synthetic_cache
from cellfit.fit import FitConfig, fit_recordings

# FITTING.md, 6-cell AdEx panel at DT 0.1 ms: median held-out ETV 0.97 (0.69-1.06). This
# 2-cell mini-panel (one adapting excitatory, one fast-spiking inhibitory cell) runs at
# DT 0.2 ms and 10 kHz to stay fast. Measured: default FitConfig 0.81 / 1.05; the
# reference-like protocol (fixed init, no grid, 10 ms loss only, lr 1e-4) 0.56 / 0.41, so
# a regression of the initialisation or the schedule falls below the floor.
ETV_FLOOR = 0.75


@pytest.fixture(scope="module")
def mini_panel(tmp_path_factory):
    cache = tmp_path_factory.mktemp("adex")
    cells = mismatch_panel(2, seed=0)
    write_synthetic_cache(cache, cells, seed=0, sampling_rate_hz=10_000.0)
    return [load_cell(c.specimen_id, dt_ms=0.2, window_s=1.0, cache_dir=cache) for c in cells]


def test_mismatch_mini_panel_reaches_the_etv_floor(mini_panel):
    fits = fit_recordings(mini_panel, FitConfig(dt_ms=0.2, arp_ms=2.0), device="cpu", progress=False)
    etv = [f.result.etv for f in fits]
    assert {f.result.cell_class for f in fits} == {"excitatory", "inhibitory"}
    assert all(f.result.is_ok for f in fits)
    assert np.median(etv) >= ETV_FLOOR, etv
    assert all(f.result.etv >= f.result.etv_init - 0.05 for f in fits)
