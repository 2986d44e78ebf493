"""Fixtures of the data tests: small synthetic Allen caches built once per session.

Every cache is written by ``cellfit.data.synthetic`` in the real AllenSDK
layout and read back through the real ``CellTypesCache`` / ``NwbDataSet`` /
``EphysSweepFeatureExtractor`` where AllenSDK is installed, and through the
files reader (``cellfit.data.allen_files``) and ipfx's extractor on every stack;
nothing from AllenSDK or ipfx is mocked.
"""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pytest

from cellfit.data import load_cell
from cellfit.data.synthetic import AdExParams, ALIFParams, SyntheticCell, write_synthetic_cache

from _stacks import READERS

#: the main cache: one cell per (model, class), 20 kHz so that dt 0.05 ms works;
#: the Allen protocol (3 x Noise 1, 4 x Noise 2) for alif_exc, fewer repeats elsewhere
_FEW = dict(noise1_repeats=2, noise2_repeats=2)
MAIN_CELLS = {
    "alif_exc": SyntheticCell(model="alif", cell_class="excitatory", specimen_id=900000001,
                              params=ALIFParams(tau_m_ms=20.0, tau_adapt_ms=200.0, adapt_scale=0.15, bias=0.05)),
    "alif_inh": SyntheticCell(model="alif", cell_class="inhibitory", specimen_id=900000002, **_FEW,
                              params=ALIFParams(tau_m_ms=10.0, tau_adapt_ms=100.0, adapt_scale=0.08, noise_sd=0.1,
                                                v_rest_mV=-65.0, v_thresh_mV=-42.0)),
    "adex_exc": SyntheticCell(model="adex", cell_class="excitatory", specimen_id=900000003, **_FEW,
                              params=AdExParams(C_pF=250.0, g_L_nS=10.0, a_nS=2.0, tau_w_ms=250.0, b_pA=60.0)),
    "adex_inh": SyntheticCell(model="adex", cell_class="inhibitory", specimen_id=900000004, **_FEW,
                              params=AdExParams(C_pF=100.0, g_L_nS=10.0, E_L_mV=-68.0, V_T_mV=-48.0,
                                                delta_T_mV=1.5, a_nS=0.2, tau_w_ms=80.0, b_pA=5.0, V_r_mV=-57.0,
                                                t_ref_ms=1.5, noise_sd_mV=2.5)),
}

#: a small cell for copies that tests damage (10 kHz)
_SMALL = dict(params=ALIFParams(tau_m_ms=15.0, tau_adapt_ms=150.0, adapt_scale=0.1))
#: cells for the panel rule and the sweep-table errors: only their metadata and
#: sweep tables matter, so one Noise 1 sweep at 5 kHz keeps them cheap
_META = dict(noise1_repeats=1, **_SMALL)
PANEL_CELLS = {
    "good": SyntheticCell(specimen_id=910000001, **_META),
    "good_inh": SyntheticCell(specimen_id=910000002, cell_class="inhibitory", **_META),
    "human": SyntheticCell(specimen_id=910000003, species="Homo Sapiens", **_META),
    "layer5": SyntheticCell(specimen_id=910000004, layer="5", **_META),
    "diseased": SyntheticCell(specimen_id=910000005, disease_state="epilepsy", **_META),
    "no_noise1": SyntheticCell(specimen_id=910000006, noise1_repeats=0, **_SMALL),
    "no_noise2": SyntheticCell(specimen_id=910000007, noise2_repeats=0, **_META),
    "one_test_repeat": SyntheticCell(specimen_id=910000008, noise2_repeats=1, **_META),
    "three_test_repeats": SyntheticCell(specimen_id=910000009, noise2_repeats=3, **_META),
    "no_features": SyntheticCell(specimen_id=910000010, **_META),
}
PANEL_PASS = {"good", "good_inh"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """No downloads, and a default cache that is never the user's home."""
    monkeypatch.setenv("CELLFIT_OFFLINE", "1")
    monkeypatch.setenv("CELLFIT_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture(params=READERS)
def reader(request) -> str:
    """Each cache reader this stack has: "files" always, "allensdk" where it is installed."""
    return request.param


@pytest.fixture(scope="session")
def main_cache(tmp_path_factory) -> pathlib.Path:
    cache = tmp_path_factory.mktemp("main-cache")
    write_synthetic_cache(cache, list(MAIN_CELLS.values()), seed=0, sampling_rate_hz=20_000)
    return cache


@pytest.fixture(scope="session")
def main_cells() -> dict[str, SyntheticCell]:
    return dict(MAIN_CELLS)


@pytest.fixture(scope="session")
def main_ids() -> dict[str, int]:
    return {k: c.specimen_id for k, c in MAIN_CELLS.items()}


@pytest.fixture(scope="session")
def full_recordings(main_cache, main_ids):
    """Every main cell at dt 0.1 ms with the full 3 s windows (loaded once)."""
    return {k: load_cell(sid, dt_ms=0.1, window_s=3.0, cache_dir=main_cache) for k, sid in main_ids.items()}


@pytest.fixture(scope="session")
def panel_cache(tmp_path_factory) -> pathlib.Path:
    cache = tmp_path_factory.mktemp("panel-cache")
    write_synthetic_cache(cache, list(PANEL_CELLS.values()), seed=1, sampling_rate_hz=5_000)
    # a cell without a row in ephys_features.csv (the generator always writes one)
    features = cache / "ephys_features.csv"
    drop = str(PANEL_CELLS["no_features"].specimen_id)
    lines = [ln for ln in features.read_text().splitlines() if not ln.startswith(drop + ",")]
    features.write_text("\n".join(lines) + "\n")
    return cache


@pytest.fixture(scope="session")
def panel_ids() -> dict[str, int]:
    return {k: c.specimen_id for k, c in PANEL_CELLS.items()}


@pytest.fixture(scope="session")
def panel_pass() -> set[str]:
    """Names of the PANEL_CELLS that satisfy the paper146 rule."""
    return set(PANEL_PASS)


@pytest.fixture(scope="session")
def _small_template(tmp_path_factory) -> tuple[pathlib.Path, int]:
    cache = tmp_path_factory.mktemp("small-template")
    (sid,) = write_synthetic_cache(cache, [SyntheticCell(specimen_id=920000001, **_SMALL)], seed=2,
                                   sampling_rate_hz=10_000)
    return cache, sid


@pytest.fixture
def small_cache(_small_template, tmp_path) -> tuple[pathlib.Path, int]:
    """A private copy of a one-cell 10 kHz cache, free to damage."""
    src, sid = _small_template
    dst = tmp_path / "small-cache"
    shutil.copytree(src, dst)
    return dst, sid


def _isi_bimodal(isi_ms: np.ndarray) -> bool:
    """Two groups of inter-spike intervals (e.g. within and between bursts): on a histogram of
    log10(ISI) in quarter decades (1 ms - 3 s), some bin holds at most a quarter of the smaller
    of the highest bins on either side, and each of those holds at least 5% of the intervals."""
    isi_ms = np.asarray(isi_ms, dtype=np.float64)
    counts, _ = np.histogram(np.log10(isi_ms), bins=np.arange(0.0, 3.51, 0.25))
    floor = 0.05 * isi_ms.size
    for i in range(1, counts.size - 1):
        left, right = counts[:i].max(), counts[i + 1:].max()
        if min(left, right) >= floor and counts[i] <= min(left, right) / 4:
            return True
    return False


@pytest.fixture(scope="session")
def isi_bimodal():
    """The bimodality criterion for ISI distributions (a function of ISIs in ms)."""
    return _isi_bimodal
