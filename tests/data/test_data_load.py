"""load_cell: metadata, epochs, binning, spike times, the processed-array cache."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellfit.data import CellDataError, load_cell
from cellfit.data.allen import open_allen_cache
from cellfit.data.load import processed_path
from cellfit.data.preprocess import bessel_filter_khz, bin_spike_samples, samples_per_bin
from cellfit.data.synthetic import load_truth

CELL_NAMES = ["alif_exc", "alif_inh", "adex_exc", "adex_inh"]  # the cells of conftest.MAIN_CELLS


def test_metadata_and_class_mapping(full_recordings, main_ids, main_cells):
    assert sorted(main_cells) == sorted(CELL_NAMES)
    for name, rec in full_recordings.items():
        cell = main_cells[name]
        m = rec.meta
        assert m.specimen_id == main_ids[name]
        assert m.cell_class == cell.cell_class
        assert m.dendrite_type == ("spiny" if cell.cell_class == "excitatory" else "aspiny")
        assert (m.species, m.layer, m.disease_state) == ("Mus musculus", "4", "")
        assert m.transgenic_line
        if cell.model == "alif":
            assert (m.v_rest_mV, m.v_thresh_mV) == (cell.params.v_rest_mV, cell.params.v_thresh_mV)
        assert rec.sampling_rate_hz == 20_000.0


@pytest.mark.parametrize("dt_ms", [0.05, 0.1, 1.0, 4.0])
@pytest.mark.parametrize("window_s", [1.0, 3.0])
def test_shapes_at_several_dts_and_windows(main_cache, main_ids, full_recordings, dt_ms, window_s):
    rec = load_cell(main_ids["alif_exc"], dt_ms=dt_ms, window_s=window_s, cache_dir=main_cache)
    n_bins = int(round(window_s * 1000 / dt_ms))
    assert rec.train.current_pA.shape == (3, 3, n_bins) and rec.test.current_pA.shape == (4, 3, n_bins)
    for ts in (rec.train, rec.test):
        assert ts.current_pA.dtype == ts.voltage_mV.dtype == ts.spikes.dtype == np.float32
        assert ts.voltage_mV.shape == ts.spikes.shape == ts.current_pA.shape
        np.testing.assert_array_equal(ts.epoch_starts_s, [2.0, 10.0, 18.0])
        assert ts.dt_ms == dt_ms and len(ts.spike_times_s) == ts.n_repeats
        assert set(np.unique(ts.spikes)) <= {0.0, 1.0}
    # the current scale does not depend on dt or window
    assert rec.current_scale_pA == full_recordings["alif_exc"].current_scale_pA
    full = full_recordings["alif_exc"]
    assert rec.train.spikes.sum() + rec.n_multi_spike_bins >= 1
    if window_s == 3.0:  # every spike is kept (none lost to binning at these rates)
        assert rec.n_multi_spike_bins == 0
        assert rec.train.spikes.sum() == full.train.spikes.sum()


def test_binning_averages_the_raw_samples(main_cache, main_ids):
    sid = main_ids["adex_inh"]
    rec = load_cell(sid, dt_ms=1.0, window_s=1.0, cache_dir=main_cache)
    n = int(rec.test.sweep_numbers[1])
    with h5py.File(main_cache / f"specimen_{sid}" / "ephys.nwb", "r") as f:  # the file itself, no reader
        fs = f[f"stimulus/presentation/Sweep_{n}/starting_time"].attrs["rate"]
        stim = f[f"stimulus/presentation/Sweep_{n}/data"][()]
        resp = f[f"acquisition/timeseries/Sweep_{n}/data"][()]
    i0 = int(10.0 * fs)  # second epoch
    cur = np.asarray(stim, dtype=np.float64)[i0:i0 + int(fs)] * 1e12
    volt = np.asarray(resp, dtype=np.float64)[i0:i0 + int(fs)] * 1e3
    k = int(fs / 1000)
    np.testing.assert_allclose(rec.test.current_pA[1, 1], cur.reshape(-1, k).mean(1), rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(rec.test.voltage_mV[1, 1], volt.reshape(-1, k).mean(1), rtol=1e-6, atol=1e-4)
    assert np.max(np.abs(rec.normalised_current("train"))) <= 1.0


def test_normalisation(full_recordings):
    rec = full_recordings["alif_exc"]
    span = rec.meta.v_thresh_mV - rec.meta.v_rest_mV
    np.testing.assert_allclose(rec.normalised_voltage("test"), (rec.test.voltage_mV - rec.meta.v_rest_mV) / span,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rec.normalised_current("train"), rec.train.current_pA / rec.current_scale_pA,
                               rtol=1e-6)
    assert 0.95 < np.max(np.abs(rec.normalised_current("train"))) <= 1.0
    with pytest.raises(ValueError, match="train"):
        rec.normalised_current("validation")


def _match_rate(rec, truth, tol_s=0.5e-3):
    matched = total = 0
    for ts in (rec.train, rec.test):
        for r, sweep in enumerate(ts.sweep_numbers):
            true_times = truth["spike_times"][int(sweep)]
            for e, start in enumerate(ts.epoch_starts_s):
                want = true_times[(true_times >= start) & (true_times < start + rec.window_s)] - start
                got = ts.spike_times_s[r][e]
                total += len(want)
                if len(got):
                    nearest = np.min(np.abs(got[None, :] - want[:, None]), axis=1) if len(want) else []
                    matched += int(np.count_nonzero(np.asarray(nearest) <= tol_s))
    return matched, total


@pytest.mark.parametrize("name", CELL_NAMES)
def test_spike_times_match_the_generator(full_recordings, main_cache, main_ids, name):
    rec = full_recordings[name]
    matched, total = _match_rate(rec, load_truth(main_cache, main_ids[name]))
    assert total > 150
    assert matched / total >= 0.95, (matched, total)
    # no spurious detections either
    n_detected = sum(len(e) for ts in (rec.train, rec.test) for rep in ts.spike_times_s for e in rep)
    assert abs(n_detected - total) <= 0.02 * total


def test_spike_bins_agree_with_spike_times(full_recordings):
    rec = full_recordings["alif_inh"]
    for ts in (rec.train, rec.test):
        for r in range(ts.n_repeats):
            for e in range(ts.n_epochs):
                times = ts.spike_times_s[r][e]
                bins = np.floor(times * 1000 / rec.dt_ms + 1e-9).astype(int)
                assert np.array_equal(np.flatnonzero(ts.spikes[r, e]), np.unique(bins))


class _Boom(Exception):
    pass


def test_processed_cache_hit_does_not_open_the_nwb(main_cache, main_ids, monkeypatch, reader):
    sid = main_ids["adex_exc"]
    first = load_cell(sid, dt_ms=0.5, window_s=1.0, cache_dir=main_cache, reader=reader)
    assert processed_path(main_cache, sid, 0.5, 1.0).exists()

    def boom(*args, **kwargs):
        raise _Boom("the NWB file was opened")

    monkeypatch.setattr(type(open_allen_cache(main_cache, reader)), "read_sweeps", boom)
    second = load_cell(sid, dt_ms=0.5, window_s=1.0, cache_dir=main_cache, reader=reader)
    for split in ("train", "test"):
        a, b = first.traces(split), second.traces(split)
        for field in ("current_pA", "voltage_mV", "spikes", "sweep_numbers", "epoch_starts_s"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        for ra, rb in zip(a.spike_times_s, b.spike_times_s):
            for ea, eb in zip(ra, rb):
                np.testing.assert_array_equal(ea, eb)
    assert second.meta == first.meta and second.current_scale_pA == first.current_scale_pA
    with pytest.raises(_Boom):  # bypassing the cache really reads the file
        load_cell(sid, dt_ms=0.5, window_s=1.0, cache_dir=main_cache, use_processed_cache=False, reader=reader)


def test_processed_cache_is_invalidated_when_the_nwb_changes(small_cache, monkeypatch, reader):
    cache, sid = small_cache
    load_cell(sid, dt_ms=0.2, cache_dir=cache, reader=reader)
    calls = []
    cls = type(open_allen_cache(cache, reader))
    original = cls.read_sweeps

    def counting(self, specimen_id, numbers, stimulus_name):
        for raw in original(self, specimen_id, numbers, stimulus_name):
            calls.append(raw.sweep_number)
            yield raw

    monkeypatch.setattr(cls, "read_sweeps", counting)
    load_cell(sid, dt_ms=0.2, cache_dir=cache, reader=reader)
    assert calls == []
    nwb = cache / f"specimen_{sid}" / "ephys.nwb"
    st = nwb.stat()
    os.utime(nwb, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    load_cell(sid, dt_ms=0.2, cache_dir=cache, reader=reader)
    assert len(calls) == 7
    # a corrupt processed file is rebuilt, not fatal
    calls.clear()
    processed_path(cache, sid, 0.2, 1.0).write_bytes(b"not a zip file")
    load_cell(sid, dt_ms=0.2, cache_dir=cache, reader=reader)
    assert len(calls) == 7


@settings(max_examples=200)
@given(k=st.integers(1, 80), n_bins=st.integers(1, 300), data=st.data())
def test_binning_conserves_spike_counts(k, n_bins, data):
    n = n_bins * k
    offsets = np.asarray(data.draw(st.lists(st.integers(-50, n + 50), max_size=60, unique=True)), dtype=np.int64)
    spikes, n_multi = bin_spike_samples(offsets, k, n_bins)
    inside = offsets[(offsets >= 0) & (offsets < n)]
    counts = np.bincount(inside // k, minlength=n_bins)
    assert spikes.shape == (n_bins,) and spikes.dtype == np.float32
    assert spikes.sum() + (counts - 1).clip(min=0).sum() == len(inside)
    assert n_multi == np.count_nonzero(counts > 1)


@given(rate_khz=st.sampled_from([10, 20, 25, 50, 200]), k=st.integers(1, 800))
def test_dt_must_be_a_multiple_of_the_sampling_interval(rate_khz, k):
    fs = rate_khz * 1000.0
    dt_ms = k * 1000.0 / fs
    assert samples_per_bin(dt_ms, fs) == k
    with pytest.raises(CellDataError, match="not a multiple of the sampling interval"):
        samples_per_bin(dt_ms + 0.37 * 1000.0 / fs, fs)
    assert 0 < bessel_filter_khz(fs) < fs / 2000.0
