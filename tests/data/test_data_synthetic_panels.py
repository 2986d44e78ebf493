"""Held-out panels, firing classes of the integrate-and-fire families, rate calibration, missing features."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest

from cellfit.data import load_cell
from cellfit.data.allen_files import AllenFileCache
from cellfit.data.__main__ import main as data_main
from cellfit.data.demo import DEMO_SPECIMEN_ID
from cellfit.data.synthetic import (
    FIRING_CLASSES,
    AdExParams,
    ALIFParams,
    SyntheticCell,
    alif_panel,
    development_panel,
    load_truth,
    mismatch_panel,
    test_panel,
    write_synthetic_cache,
)
from cellfit.data.synthetic import panels as panels_module
from cellfit.data.synthetic.panels import DEV_SPECS, RATES, TEST_SPECS
from cellfit.data.synthetic.truth import epoch_isis_s

FS = 10_000.0
_FEW = dict(noise1_repeats=2, noise2_repeats=2)
#: a bursting-prone AdEx cell (Naud et al. 2008, regular bursting) with its reset at rest or above V_T
_BURSTER = AdExParams(C_pF=150.0, g_L_nS=10.0, E_L_mV=-60.0, V_T_mV=-50.0, delta_T_mV=2.0, a_nS=2.0,
                      tau_w_ms=150.0, b_pA=80.0, V_r_mV=-60.0, t_ref_ms=2.0, noise_sd_mV=1.5)
CELLS = {
    "alif_rs": SyntheticCell(model="alif", params=ALIFParams(tau_m_ms=25.0, tau_adapt_ms=200.0, adapt_scale=0.05),
                             firing_class="RS", target_rate_hz=RATES["RS"], specimen_id=940000001, **_FEW),
    "alif_fs": SyntheticCell(model="alif", cell_class="inhibitory", firing_class="FS", target_rate_hz=RATES["FS"],
                             params=ALIFParams(tau_m_ms=8.0, tau_adapt_ms=80.0, adapt_scale=0.05, noise_sd=0.1),
                             specimen_id=940000002, **_FEW),
    "adex_adapting": SyntheticCell(model="adex", firing_class="adapting", target_rate_hz=RATES["adapting"],
                                   params=AdExParams(a_nS=4.0, b_pA=100.0, tau_w_ms=300.0), specimen_id=940000003,
                                   **_FEW),
    "adex_fs": SyntheticCell(model="adex", cell_class="inhibitory", firing_class="FS", target_rate_hz=RATES["FS"],
                             params=AdExParams(C_pF=80.0, g_L_nS=10.0, E_L_mV=-66.0, V_T_mV=-48.0, delta_T_mV=1.0,
                                               a_nS=0.2, tau_w_ms=50.0, b_pA=5.0, V_r_mV=-56.0, t_ref_ms=1.5,
                                               noise_sd_mV=2.5), specimen_id=940000004, **_FEW),
    "low_reset": SyntheticCell(model="adex", params=_BURSTER, target_rate_hz=(4.0, 15.0), specimen_id=940000005,
                               **_FEW),
    "high_reset": SyntheticCell(model="adex", params=dataclasses.replace(_BURSTER, V_r_mV=-45.0), firing_class="IB",
                                target_rate_hz=(4.0, 15.0), specimen_id=940000006, **_FEW),
    "missing": SyntheticCell(model="alif", params=ALIFParams(tau_m_ms=15.0), specimen_id=940000007, noise1_repeats=1,
                             noise2_repeats=2, missing_features=("threshold_v_long_square", "tau")),
}


@pytest.fixture(scope="module")
def if_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("if-cache")
    write_synthetic_cache(cache, list(CELLS.values()), seed=5, sampling_rate_hz=FS)
    return cache


def _isis_ms(truth: dict) -> np.ndarray:
    return epoch_isis_s(truth["sweeps"]) * 1e3


def _first_isis_ms(truth: dict) -> np.ndarray:
    out = []
    for sweep in truth["sweeps"]:
        t = np.asarray(sweep["spike_times_s"])
        for a in truth["epoch_starts_s"]:
            s = t[(t >= a) & (t < a + 3.0)]
            if s.size > 1:
                out.append((s[1] - s[0]) * 1e3)
    return np.array(out)


# ---------------------------------------------------------------- panels (no simulation)
def test_panels_have_the_stated_sizes_and_disjoint_ids():
    dev, test = development_panel(), test_panel()
    assert len(dev) == len(DEV_SPECS) >= 12 and len(test) == len(TEST_SPECS) >= 16
    doc = panels_module.__doc__  # the sizes its tables state
    assert f"DEV_SPECS`, {len(dev)} cells" in doc and f"TEST_SPECS`, {len(test)} cells" in doc
    dev_ids, test_ids = {c.specimen_id for c in dev}, {c.specimen_id for c in test}
    assert len(dev_ids) == len(dev) and len(test_ids) == len(test)
    legacy = {c.specimen_id for c in alif_panel(500) + mismatch_panel(500)} | {DEMO_SPECIMEN_ID}
    assert not dev_ids & test_ids and not (dev_ids | test_ids) & legacy
    assert [c.params for c in development_panel(seed=0)] == [c.params for c in dev]  # seeded
    assert [c.params for c in development_panel(seed=1)] != [c.params for c in dev]


def test_test_panel_spans_families_classes_and_other_ranges():
    dev, test = development_panel(), test_panel()
    for panel in (dev, test):
        classes = {(c.model, c.firing_class) for c in panel}
        assert {("hh", k) for k in ("RS", "FS", "IB", "LTS")} <= classes
        assert {("adex", k) for k in ("RS", "FS", "IB", "adapting")} <= classes
        assert {c.cell_class for c in panel} == {"excitatory", "inhibitory"}
        assert all(c.target_rate_hz is not None and c.firing_class in FIRING_CLASSES for c in panel)
    assert sum(c.model == "alif" for c in test) >= 4
    # other parameter ranges, not only other draws: no test cell spec repeats a development one
    dev_ranges = [(s.model, s.firing_class, sorted(s.ranges.items()), sorted(s.fixed.items())) for s in DEV_SPECS]
    for s in TEST_SPECS:
        assert (s.model, s.firing_class, sorted(s.ranges.items()), sorted(s.fixed.items())) not in dev_ranges
    # the ALIF test cells' (tau_m, tau_adapt) lie outside every development ALIF range (recovery checks)
    boxes = [(s.ranges["tau_m_ms"], s.ranges["tau_adapt_ms"]) for s in DEV_SPECS if s.model == "alif"]
    for c in test:
        if c.model == "alif":
            tm, ta = c.params.tau_m_ms, c.params.tau_adapt_ms
            assert not any(m0 <= tm <= m1 and a0 <= ta <= a1 for (m0, m1), (a0, a1) in boxes), (tm, ta)
    rates = [c.target_rate_hz for c in test]
    assert min(lo for lo, _ in rates) <= 2.0 and max(hi for _, hi in rates) >= 100.0


def test_panel_cells_reset_between_rest_and_threshold_and_beyond():
    fracs = [(c.params.V_r_mV - c.params.E_L_mV) / (c.params.V_T_mV - c.params.E_L_mV)
             for c in development_panel() + test_panel() if c.model == "adex"]
    assert min(fracs) < 0.25 and max(fracs) > 1.0  # from near rest to above V_T (bursting)
    assert any(0.4 < f < 0.9 for f in fracs)


# ---------------------------------------------------------------- one small cache
def test_every_if_family_loads_through_allensdk(if_cache):
    for name, cell in CELLS.items():
        if name == "missing":
            continue
        rec = load_cell(cell.specimen_id, dt_ms=0.1, window_s=1.0, cache_dir=if_cache)
        truth = load_truth(if_cache, cell.specimen_id)
        assert truth["family"] == cell.model and truth["firing_class"] == cell.firing_class_name
        assert rec.train.spikes.shape == (2, 3, 10_000) and rec.train.spikes.sum() > 0
        assert truth["time_constants"]["tau_m_ms"] > 0 and truth["time_constants"]["adaptation_ms"]


def test_each_class_fires_in_its_calibrated_range(if_cache):
    for name, cell in CELLS.items():
        if cell.target_rate_hz is None:
            continue
        truth = load_truth(if_cache, cell.specimen_id)
        lo, hi = cell.target_rate_hz
        assert lo <= truth["rates_hz"]["noise1_mean"] <= hi, (name, truth["rates_hz"])
        cal = truth["calibration"]
        assert cal["candidate_rates_hz"][0] < cal["target_hz"] < cal["candidate_rates_hz"][-1]
        assert truth["drive"] == pytest.approx(cal["drive"])


def test_high_reset_gives_doublets_and_short_first_intervals(if_cache, isi_bimodal):
    """The same AdEx cell with its reset at rest and 5 mV above V_T (both at about 8 Hz): the
    high reset fires in bursts (intervals under 10 ms, bimodal distribution, short first intervals)."""
    low, high = (load_truth(if_cache, CELLS[k].specimen_id) for k in ("low_reset", "high_reset"))
    isi_low, isi_high = _isis_ms(low), _isis_ms(high)
    assert np.mean(isi_low < 10.0) < 0.02 and np.mean(isi_high < 10.0) > 0.2
    assert np.median(_first_isis_ms(high)) < 10.0 < np.median(_first_isis_ms(low))
    assert isi_bimodal(isi_high) and not isi_bimodal(isi_low)


def _features(cache, reader: str) -> dict:
    """Ephys feature rows by specimen id, read by AllenSDK or by cellfit's own file reader."""
    if reader == "allensdk":
        from allensdk.core.cell_types_cache import CellTypesCache  # only on the AllenSDK stack

        return {int(r["specimen_id"]): r for r in CellTypesCache(manifest_file=str(cache / "manifest.json")).get_ephys_features()}
    return AllenFileCache(cache).features()


def test_missing_features_are_empty_in_the_csv_and_nan_through_each_reader(if_cache, reader):
    sid = CELLS["missing"].specimen_id
    with open(if_cache / "ephys_features.csv", newline="") as fh:
        rows = {int(r["specimen_id"]): r for r in csv.DictReader(fh)}
    assert rows[sid]["threshold_v_long_square"] == "" and rows[sid]["tau"] == ""
    assert rows[sid]["vrest"] != "" and rows[CELLS["alif_rs"].specimen_id]["threshold_v_long_square"] != ""
    line = next(ln for ln in (if_cache / "ephys_features.csv").read_text().splitlines()
                if ln.startswith(f"{sid},"))
    assert ",," in line  # an empty field, as pandas (and so AllenSDK's own CSV) writes NaN
    features = _features(if_cache, reader)
    assert np.isnan(features[sid]["threshold_v_long_square"]) and np.isnan(features[sid]["tau"])
    assert features[sid]["vrest"] == pytest.approx(CELLS["missing"].params.v_rest_mV)
    assert load_truth(if_cache, sid)["missing_features"] == ["threshold_v_long_square", "tau"]


# ---------------------------------------------------------------- errors
def test_bad_targets_and_features_are_rejected():
    with pytest.raises(ValueError, match="calibrates the drive"):
        SyntheticCell(target_rate_hz=(2.0, 8.0), drive=1.0)
    with pytest.raises(ValueError, match="0 < low < high"):
        SyntheticCell(target_rate_hz=(8.0, 2.0))
    with pytest.raises(ValueError, match="not ephys feature columns"):
        SyntheticCell(missing_features=("threshold",))
    with pytest.raises(ValueError, match="firing_class"):
        SyntheticCell(firing_class="chattering")


def test_unreachable_rate_is_a_clear_error(tmp_path):
    cell = SyntheticCell(model="alif", params=ALIFParams(tau_m_ms=10.0, arp_ms=20.0), target_rate_hz=(200.0, 400.0),
                         specimen_id=940000099, noise1_repeats=1, noise2_repeats=0)
    with pytest.raises(ValueError, match="specimen 940000099 .* reaches only"):
        write_synthetic_cache(tmp_path, [cell], sampling_rate_hz=5_000)


def test_cli_needs_an_output_directory(capsys):
    assert data_main(["synthetic", "--panel", "dev"]) == 2
    assert "no output directory" in capsys.readouterr().err
