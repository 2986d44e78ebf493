"""The synthetic generator: AllenSDK-readable caches, exact models, seeded data."""

from __future__ import annotations

import json
import math
import time

import h5py
import numpy as np
import pytest

from cellfit.data.allen import open_allen_cache
from cellfit.data.synthetic import (
    AdExParams,
    ALIFParams,
    SyntheticCell,
    alif_panel,
    load_truth,
    mismatch_panel,
    simulate_alif,
    write_synthetic_cache,
)

from _stacks import needs_allensdk

CELL_NAMES = ["alif_exc", "alif_inh", "adex_exc", "adex_inh"]  # the cells of conftest.MAIN_CELLS


def _alif_reference(inputs: np.ndarray, dt_ms: float, p: ALIFParams, v0: float) -> list[int]:
    """The ALIF equations (cellfit.functional.alif), one step at a time (the oracle for the event-driven generator)."""
    beta, pd = math.exp(-dt_ms / p.tau_m_ms), math.exp(-dt_ms / p.tau_adapt_ms)
    t_r = max(1, int(round(p.arp_ms / dt_ms)))
    v, a, s_prev, last = v0, 0.0, 0, -(10**9)
    spikes = []
    for t, x in enumerate(inputs):
        i_t = 0.0 if t - last < t_r else x
        v = (beta * v + (1 - beta) * i_t) * (1 - s_prev)
        a = pd * a + s_prev
        s_prev = int(v > 1 + p.adapt_scale * a)
        if s_prev:
            spikes.append(t)
            last = t
    return spikes


@pytest.mark.parametrize("arp_ms", [0.05, 0.1, 2.0])
def test_alif_generator_is_the_exact_step_recursion(arp_ms):
    rng = np.random.default_rng(3)
    p = ALIFParams(tau_m_ms=5.0, tau_adapt_ms=30.0, adapt_scale=0.3, arp_ms=arp_ms, bias=0.2)
    inputs = 2.0 + 1.0 * rng.standard_normal((3, 6000))
    _, spikes = simulate_alif(inputs, 0.05, p, v0=0.2, chunk=257)
    for row, got in zip(inputs, spikes):
        want = _alif_reference(row, 0.05, p, 0.2)
        assert len(want) > 20
        assert got.tolist() == want


@needs_allensdk
def test_cache_is_read_by_allensdk(main_cache, main_ids, main_cells):
    from allensdk.core.cell_types_cache import CellTypesCache
    from allensdk.core.nwb_data_set import NwbDataSet

    ctc = CellTypesCache(manifest_file=str(main_cache / "manifest.json"))
    cells = {c["id"]: c for c in ctc.get_cells()}
    assert set(main_ids.values()) <= set(cells)
    features = {int(r["specimen_id"]): r for r in ctc.get_ephys_features()}
    sid = main_ids["alif_exc"]
    assert cells[sid]["dendrite_type"] == "spiny" and cells[sid]["species"] == "Mus musculus"
    assert features[sid]["vrest"] == pytest.approx(main_cells["alif_exc"].params.v_rest_mV)
    sweeps = ctc.get_ephys_sweeps(sid)
    names = [s["stimulus_name"] for s in sweeps]
    assert names.count("Noise 1") == 3 and names.count("Noise 2") == 4  # the Allen protocol
    ds = ctc.get_ephys_data(sid)
    assert isinstance(ds, NwbDataSet)
    sw = ds.get_sweep(sweeps[0]["sweep_number"])
    fs = sw["sampling_rate"]
    assert fs == 20_000.0
    n = len(sw["response"])
    assert sw["index_range"] == (int(0.75 * fs), n - 1)
    assert sw["stimulus_unit"] == "Amps"
    assert -0.1 < np.median(sw["response"]) < -0.05  # volts
    assert ds.get_sweep_metadata(sweeps[0]["sweep_number"])["aibs_stimulus_name"] in ("Noise 1", b"Noise 1")
    truth = load_truth(main_cache, sid)
    np.testing.assert_array_equal(ds.get_spike_times(sweeps[0]["sweep_number"]),
                                  truth["spike_times"][sweeps[0]["sweep_number"]])


def test_truth_file_is_json_with_parameters(main_cache, main_ids):
    path = main_cache / f"specimen_{main_ids['adex_exc']}" / "truth.json"
    raw = json.loads(path.read_text())
    assert raw["model"] == "adex" and raw["params"]["tau_w_ms"] == 250.0
    assert raw["params"]["tau_m_ms"] == pytest.approx(25.0)
    alif = load_truth(main_cache, main_ids["alif_exc"])
    for key in ("tau_m_ms", "tau_adapt_ms", "adapt_scale", "gain", "bias", "arp_ms", "noise_sd"):
        assert key in alif["params"]
    assert alif["current_scale_pA"] > 0 and "current_scale_pA" in alif["normalised_current"]
    assert set(alif["spike_times"]) == set(range(7))


def test_stimulus_identical_across_repeats_voltage_not(main_cache, main_ids):
    with h5py.File(main_cache / f"specimen_{main_ids['alif_exc']}" / "ephys.nwb", "r") as f:
        stim = [f[f"stimulus/presentation/Sweep_{n}/data"][()] for n in range(7)]
        volt = [f[f"acquisition/timeseries/Sweep_{n}/data"][()] for n in range(3)]
    assert all(np.array_equal(stim[0], s) for s in stim[1:3])  # Noise 1 repeats
    assert all(np.array_equal(stim[3], s) for s in stim[4:])  # Noise 2 repeats
    assert not np.array_equal(stim[0], stim[3])  # different seeds
    assert not np.array_equal(volt[0], volt[1])  # intrinsic noise
    truth = load_truth(main_cache, main_ids["alif_exc"])
    assert truth["spike_times"][0].tolist() != truth["spike_times"][1].tolist()


@pytest.mark.parametrize("name", CELL_NAMES)
def test_every_epoch_spikes_at_plausible_rates(main_cache, main_ids, main_cells, name):
    truth = load_truth(main_cache, main_ids[name])
    limit = 30.0 if main_cells[name].cell_class == "excitatory" else 80.0
    for sweep in truth["sweeps"]:
        st = np.asarray(sweep["spike_times_s"])
        rates = [np.count_nonzero((st >= a) & (st < a + 3.0)) / 3.0 for a in (2.0, 10.0, 18.0)]
        assert min(rates) > 0 and max(rates) < limit, rates
        assert rates[0] < rates[1] < rates[2]


def test_same_seed_same_data_other_seed_other_noise(tmp_path):
    cell = SyntheticCell(model="adex", specimen_id=5, noise1_repeats=1, noise2_repeats=2,
                         params=AdExParams(t_ref_ms=1.0))
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        write_synthetic_cache(tmp_path / name, [cell], seed=seed, sampling_rate_hz=5_000)

    def arrays(name):
        with h5py.File(tmp_path / name / "specimen_5" / "ephys.nwb", "r") as f:
            return ([f[f"acquisition/timeseries/Sweep_{n}/data"][()] for n in range(3)],
                    [f[f"stimulus/presentation/Sweep_{n}/data"][()] for n in range(3)])

    (va, sa), (vb, sb), (vc, sc) = arrays("a"), arrays("b"), arrays("c")
    assert all(np.array_equal(x, y) for x, y in zip(va, vb))
    assert all(np.array_equal(x, y) for x, y in zip(sa, sb))
    assert all(np.array_equal(x, y) for x, y in zip(sa, sc))  # the stimulus does not depend on the seed
    assert not np.array_equal(va[0], vc[0])
    ta, tb = (json.loads((tmp_path / n / "specimen_5" / "truth.json").read_text()) for n in ("a", "b"))
    assert ta == tb


def test_size_and_time_per_cell(tmp_path):
    start = time.perf_counter()
    (sid,) = write_synthetic_cache(tmp_path, [SyntheticCell(model="alif")], seed=0)
    elapsed = time.perf_counter() - start
    size = sum(p.stat().st_size for p in (tmp_path / f"specimen_{sid}").iterdir())
    assert size < 6e6, size
    assert elapsed < 10.0, elapsed  # about 1 s on 2 cores; generous for loaded CI machines


def test_caches_merge_and_ids(tmp_path):
    small = dict(noise1_repeats=1, noise2_repeats=2)
    ids1 = write_synthetic_cache(tmp_path, [SyntheticCell(**small)], sampling_rate_hz=5_000)
    ids2 = write_synthetic_cache(tmp_path, [SyntheticCell(specimen_id=42, **small)], sampling_rate_hz=5_000)
    store = open_allen_cache(tmp_path)  # AllenSDK's CellTypesCache where installed, else the files reader
    assert set(store.cells()) == set(ids1 + ids2)
    assert set(store.features()) == set(ids1 + ids2)


def test_panels_span_the_requested_ranges():
    mm = mismatch_panel(6, seed=0)
    assert len(mm) >= 6 and {c.model for c in mm} == {"adex"}
    assert {c.cell_class for c in mm} == {"excitatory", "inhibitory"}
    tau_m = [c.params.tau_m_ms for c in mm]
    tau_w = [c.params.tau_w_ms for c in mm]
    assert 8 <= min(tau_m) < 15 and 25 < max(tau_m) <= 40
    assert 50 <= min(tau_w) < 100 and 200 < max(tau_w) <= 400
    exc_b = [c.params.b_pA for c in mm if c.cell_class == "excitatory"]
    inh_b = [c.params.b_pA for c in mm if c.cell_class == "inhibitory"]
    assert min(exc_b) > max(inh_b)  # adapting vs fast spiking
    al = alif_panel(6, seed=0)
    assert all(c.model == "alif" and c.params.arp_ms == 2.0 for c in al)
    assert len({c.specimen_id for c in al + mm}) == 12
    assert [c.params for c in alif_panel(6, seed=0)] == [c.params for c in al]


def test_bad_cell_specs_are_rejected():
    with pytest.raises(ValueError, match="model"):
        SyntheticCell(model="glif")
    with pytest.raises(ValueError, match="ALIFParams"):
        SyntheticCell(model="alif", params=AdExParams())
    with pytest.raises(ValueError, match="cell_class"):
        SyntheticCell(cell_class="glia")
    with pytest.raises(ValueError, match="tau_m_ms must be positive"):
        ALIFParams(tau_m_ms=0.0)
    with pytest.raises(ValueError, match="V_peak"):
        AdExParams(V_peak_mV=-60.0)
    with pytest.raises(ValueError, match="duplicate"):
        write_synthetic_cache("/nonexistent-never-created", [SyntheticCell(specimen_id=1)] * 2)


def test_in_memory_recordings_equal_the_cache_path(main_cache, main_cells, full_recordings):
    """``synthetic_recordings`` gives what writing the cache and loading it gives (same binned
    currents, voltages and spikes: the spike detector, AllenSDK's or ipfx's, finds the model's spikes)."""
    from cellfit.data.synthetic import synthetic_recordings

    cells = [main_cells["alif_exc"], main_cells["adex_inh"]]
    for rec in synthetic_recordings(cells, dt_ms=0.1, window_s=3.0, seed=0):
        key = next(k for k, c in main_cells.items() if c.specimen_id == rec.meta.specimen_id)
        ref = full_recordings[key]
        assert rec.meta == ref.meta and rec.current_scale_pA == ref.current_scale_pA
        for part in ("train", "test"):
            got, want = getattr(rec, part), getattr(ref, part)
            np.testing.assert_array_equal(got.current_pA, want.current_pA)
            np.testing.assert_allclose(got.voltage_mV, want.voltage_mV, atol=1e-4)
            assert got.spikes.sum() > 10
            # detection on a pasted action potential may move a spike by a bin at most
            assert (got.spikes != want.spikes).sum() <= 0.02 * want.spikes.sum()
            np.testing.assert_array_equal(got.sweep_numbers, want.sweep_numbers)
