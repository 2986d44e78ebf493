"""An Allen cache without AllenSDK: the files reader, ipfx's spike times, and both against AllenSDK.

The files reader and ipfx run on every stack; the comparisons with AllenSDK's
``CellTypesCache`` / ``NwbDataSet`` / ``EphysSweepFeatureExtractor`` run where both are
installed (the pinned stack of ``.ci/run``, which adds ipfx without its dependencies).
"""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from cellfit.data import CellDataError, load_cell
from cellfit.data import spikes as spikes_mod
from cellfit.data.allen import open_allen_cache
from cellfit.data.allen_files import AllenFileCache
from cellfit.data.preprocess import bessel_filter_khz
from cellfit.data.protocol import EPOCH_LENGTH_S, EPOCH_STARTS_S
from cellfit.data.spikes import detect_spike_samples, detector_label, resolve_detector

from _stacks import HAS_IPFX, needs_allensdk, needs_both

CELL_NAMES = ["alif_exc", "alif_inh", "adex_exc", "adex_inh"]  # the cells of conftest.MAIN_CELLS


def _rows_text(rows: dict) -> str:
    """Feature rows as canonical text (NaN != NaN, so dicts holding NaN never compare equal)."""
    return json.dumps({str(k): rows[k] for k in sorted(rows)}, sort_keys=True, default=str)


def test_files_reader_reads_the_cache_layout(main_cache, main_ids, main_cells):
    store = open_allen_cache(main_cache, "files")
    assert isinstance(store, AllenFileCache) and store.name == "files"
    sid = main_ids["alif_exc"]
    cells = store.cells()
    assert set(main_ids.values()) <= set(cells)
    cell = cells[sid]
    assert (cell["id"], cell["species"], cell["structure_layer_name"], cell["dendrite_type"]) == (
        sid, "Mus musculus", "4", "spiny")
    assert cell["disease_state"] == "" and cell["transgenic_line"]
    features = store.features()
    assert features[sid]["vrest"] == pytest.approx(main_cells["alif_exc"].params.v_rest_mV)
    table = store.sweep_table(sid)
    names = [s["stimulus_name"] for s in table]
    assert names.count("Noise 1") == 3 and names.count("Noise 2") == 4
    files = store.files(sid)
    assert files.nwb == main_cache / f"specimen_{sid}" / "ephys.nwb" and files.cells == main_cache / "cells.json"
    (raw,) = store.read_sweeps(sid, [table[0]["sweep_number"]], "Noise 1")
    with h5py.File(files.nwb, "r") as f:
        n = raw.sweep_number
        stim = f[f"stimulus/presentation/Sweep_{n}/data"][()]
        resp = f[f"acquisition/timeseries/Sweep_{n}/data"][()]
    assert raw.sampling_rate_hz == 20_000.0 and raw.stimulus_name == "Noise 1"
    assert raw.valid_end == len(resp) - 1  # the Experiment epoch runs to the end of the sweep
    np.testing.assert_array_equal(raw.current_pA, stim.astype(np.float64) * 1e12)
    np.testing.assert_array_equal(raw.voltage_mV, resp.astype(np.float64) * 1e3)
    assert -100 < np.median(raw.voltage_mV) < -50


@needs_allensdk
def test_files_reader_gives_what_allensdk_gives(main_cache, main_ids):
    sdk, files = open_allen_cache(main_cache, "allensdk"), open_allen_cache(main_cache, "files")
    assert sdk.name == "allensdk"
    assert files.cells() == sdk.cells()
    assert _rows_text(files.features()) == _rows_text(sdk.features())
    for sid in main_ids.values():
        assert files.files(sid) == sdk.files(sid)
        table = sdk.sweep_table(sid)
        assert files.sweep_table(sid) == table
        for name in ("Noise 1", "Noise 2"):
            numbers = [s["sweep_number"] for s in table if s["stimulus_name"] == name]
            for a, b in zip(sdk.read_sweeps(sid, numbers, name), files.read_sweeps(sid, numbers, name), strict=True):
                assert (a.sweep_number, a.stimulus_name, a.sampling_rate_hz, a.valid_end) == (
                    b.sweep_number, b.stimulus_name, b.sampling_rate_hz, b.valid_end)
                # the same float32 samples times the same constants: exactly equal
                np.testing.assert_array_equal(a.current_pA, b.current_pA)
                np.testing.assert_array_equal(a.voltage_mV, b.voltage_mV)


def test_cache_without_manifest_reads_the_default_layout(small_cache):
    cache, sid = small_cache
    (cache / "manifest.json").unlink()
    rec = load_cell(sid, dt_ms=1.0, cache_dir=cache, reader="files")
    assert rec.train.n_repeats == 3 and rec.test.n_repeats == 4


def test_manifest_paths_are_followed(small_cache):
    cache, sid = small_cache
    manifest = json.loads((cache / "manifest.json").read_text())
    for entry in manifest["manifest"]:
        if entry.get("key") == "EPHYS_DATA":
            entry["spec"] = "nwb/cell_%d.nwb"
    (cache / "manifest.json").write_text(json.dumps(manifest))
    (cache / "nwb").mkdir()
    shutil.move(cache / f"specimen_{sid}" / "ephys.nwb", cache / "nwb" / f"cell_{sid}.nwb")
    store = open_allen_cache(cache, "files")
    assert store.files(sid).nwb == cache / "nwb" / f"cell_{sid}.nwb"
    assert load_cell(sid, dt_ms=1.0, cache_dir=cache, reader="files").test.n_repeats == 4


def test_missing_file_says_downloading_needs_allensdk(small_cache, monkeypatch):
    cache, sid = small_cache
    monkeypatch.setattr("cellfit.data.allen.allensdk_installed", lambda: False)
    assert open_allen_cache(cache).name == "files"  # auto without AllenSDK
    (cache / f"specimen_{sid}" / "ephys_sweeps.json").unlink()
    with pytest.raises(CellDataError, match=rf"specimen {sid}: no file specimen_{sid}/ephys_sweeps.json in .*; "
                                            r"downloading it from the Allen API needs AllenSDK: pip install "
                                            r"'cellfit\[allen\]'") as ei:
        load_cell(sid, cache_dir=cache)
    assert "\n" not in str(ei.value)


def test_fetch_without_allensdk_exits_2_with_the_install_command(monkeypatch, capsys, tmp_path):
    from cellfit.data.__main__ import main

    monkeypatch.setattr("cellfit.data.allen.allensdk_installed", lambda: False)
    assert main(["fetch", "--specimen", "485909730", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "needs AllenSDK: pip install 'cellfit[allen]'" in err
    assert list(tmp_path.iterdir()) == []  # stopped before any work


def test_reader_and_detector_names_are_checked(small_cache, monkeypatch):
    cache, sid = small_cache
    with pytest.raises(CellDataError, match="unknown cache reader 'sdk'"):
        load_cell(sid, cache_dir=cache, reader="sdk")
    with pytest.raises(CellDataError, match="unknown spike detector 'fast'"):
        load_cell(sid, cache_dir=cache, detector="fast")
    monkeypatch.setenv("CELLFIT_SPIKE_DETECTOR", "bogus")
    with pytest.raises(CellDataError, match=r"unknown spike detector .*CELLFIT_SPIKE_DETECTOR"):
        resolve_detector()


def test_no_spike_detector_installed_says_what_to_install(small_cache, monkeypatch):
    cache, sid = small_cache
    monkeypatch.setattr(spikes_mod, "_importable", lambda name: False)
    with pytest.raises(CellDataError, match=r"needs a spike extractor: install ipfx \(pip install 'cellfit\[ipfx\]'"
                                            r".* or AllenSDK \(pip install 'cellfit\[allen\]'") as ei:
        load_cell(sid, cache_dir=cache)
    assert "\n" not in str(ei.value)
    with pytest.raises(CellDataError, match=r"spike detector 'ipfx' is not installed; pip install 'cellfit\[ipfx\]'"):
        resolve_detector("ipfx")


@pytest.mark.skipif(not HAS_IPFX, reason="needs ipfx (pip install 'cellfit[ipfx]')")
def test_ipfx_is_picked_without_allensdk(monkeypatch):
    monkeypatch.delenv("CELLFIT_SPIKE_DETECTOR", raising=False)
    monkeypatch.setattr(spikes_mod, "_importable", lambda name: name == "ipfx")
    assert resolve_detector() == "ipfx" and detector_label().startswith("ipfx 2.")


@needs_both
def test_ipfx_spike_times_equal_allensdk_threshold_t(main_cache, main_ids):
    """Every spike of every noise epoch of the four main cells (AllenSDK 2.16.2 vs ipfx 2.1.2:
    the same sample for all of them; data/README.md records the count)."""
    store = open_allen_cache(main_cache, "files")
    total = 0
    for sid in main_ids.values():
        for entry in store.sweep_table(sid):
            (raw,) = store.read_sweeps(sid, [entry["sweep_number"]], entry["stimulus_name"])
            fs = raw.sampling_rate_hz
            for start in EPOCH_STARTS_S:
                i0 = int(round(start * fs))
                i1 = i0 + int(round(EPOCH_LENGTH_S * fs))
                got = {d: detect_spike_samples(raw.voltage_mV, raw.current_pA, fs, i0, i1, bessel_filter_khz(fs), d)
                       for d in ("allensdk", "ipfx")}
                np.testing.assert_array_equal(got["ipfx"], got["allensdk"])
                total += len(got["allensdk"])
    assert total > 1000, total


@needs_both
@pytest.mark.parametrize("name", CELL_NAMES)
def test_loaded_arrays_are_the_same_with_and_without_allensdk(main_cache, main_ids, tmp_path, name):
    """The done-when check of the current-stack path: AllenSDK's reader and extractor (the pinned
    stack) and the files reader with ipfx (a current stack) load the same arrays. Both read the
    same float32 samples and bin them with the same code in this process, so currents and
    voltages are compared exactly; spikes are compared exactly because the two detectors give
    the same samples (test above)."""
    cache = tmp_path / "cache"
    shutil.copytree(main_cache, cache, ignore=shutil.ignore_patterns("cellfit_processed"))
    sid = main_ids[name]
    sdk = load_cell(sid, dt_ms=0.1, window_s=3.0, cache_dir=cache, reader="allensdk", detector="allensdk")
    files = load_cell(sid, dt_ms=0.1, window_s=3.0, cache_dir=cache, reader="files", detector="ipfx")
    assert files.meta == sdk.meta
    assert (files.current_scale_pA, files.n_multi_spike_bins, files.sampling_rate_hz) == (
        sdk.current_scale_pA, sdk.n_multi_spike_bins, sdk.sampling_rate_hz)
    for split in ("train", "test"):
        a, b = sdk.traces(split), files.traces(split)
        for field in ("current_pA", "voltage_mV", "spikes", "sweep_numbers", "epoch_starts_s"):
            np.testing.assert_array_equal(getattr(b, field), getattr(a, field), err_msg=f"{split} {field}")
        assert a.spikes.sum() > 10
        for ra, rb in zip(a.spike_times_s, b.spike_times_s):
            for ea, eb in zip(ra, rb):
                np.testing.assert_array_equal(eb, ea)
    # the processed arrays remember the detector: the ipfx load above did not reuse AllenSDK's
    with np.load(cache / "cellfit_processed" / f"specimen_{sid}" / "dt0.1ms_win3s.npz") as z:
        assert str(z["detector"]) == detector_label("ipfx")
