"""Cells whose ephys_features.csv leaves vrest / threshold_v_long_square empty are estimated, not refused.

Real Allen feature records sometimes have an empty ``threshold_v_long_square`` (and
occasionally ``vrest``). Such a cell is loaded with the value estimated from its own
noise sweeps (``cellfit.data.load``), says so in ``CellMeta.v_*_source``, and fits.
"""

from __future__ import annotations

import csv
import math
import shutil

import h5py
import numpy as np
import pytest

from cellfit.data import CellDataError, load_cell
from cellfit.data.load import BASELINE_S
from cellfit.data.protocol import EPOCH_STARTS_S


def _blank(cache, sid: int, **values: str) -> None:
    """Set columns of the specimen's row of ephys_features.csv (e.g. ``vrest=""``).

    Edits the CSV the generator wrote, as a real record with an empty field looks.
    """
    path = cache / "ephys_features.csv"
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    for row in rows[1:]:
        if row and int(row[header.index("specimen_id")]) == sid:
            for column, value in values.items():
                row[header.index(column)] = value
    with open(path, "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


@pytest.fixture
def cache(main_cache, tmp_path):
    """A private copy of the main cache (four cells, 20 kHz) whose features a test may blank."""
    dst = tmp_path / "cache"
    shutil.copytree(main_cache, dst, ignore=shutil.ignore_patterns("cellfit_processed"))
    return dst


def _sweep_voltages(cache, sid, numbers):
    with h5py.File(cache / f"specimen_{sid}" / "ephys.nwb", "r") as f:
        fs = float(f[f"stimulus/presentation/Sweep_{numbers[0]}/starting_time"].attrs["rate"])
        return fs, {int(n): f[f"acquisition/timeseries/Sweep_{n}/data"][()].astype(np.float64) * 1e3 for n in numbers}


def test_empty_threshold_is_the_median_threshold_voltage_of_the_spikes(cache, main_ids, main_cells, reader):
    sid = main_ids["alif_exc"]
    _blank(cache, sid, threshold_v_long_square="")
    rec = load_cell(sid, dt_ms=0.1, window_s=3.0, cache_dir=cache, reader=reader)  # 3 s: every spike of each epoch
    m = rec.meta
    assert (m.v_rest_source, m.v_thresh_source) == ("ephys_features", "estimated from recorded spikes")
    assert m.v_rest_mV == main_cells["alif_exc"].params.v_rest_mV
    # the same median computed here from the file and the loaded spike times
    numbers = [int(n) for ts in (rec.train, rec.test) for n in ts.sweep_numbers]
    fs, volts = _sweep_voltages(cache, sid, numbers)
    at_spikes = [volts[int(n)][np.round((start + t) * fs).astype(np.int64)]
                 for ts in (rec.train, rec.test) for n, rep in zip(ts.sweep_numbers, ts.spike_times_s)
                 for start, t in zip(ts.epoch_starts_s, rep)]
    assert m.v_thresh_mV == np.median(np.concatenate(at_spikes))
    # The detector's threshold is the model voltage where the model spiked: the adaptive threshold
    # 1 + d * a (normalised), so during the noise it lies above the base threshold that the
    # feature holds (by about 12 mV for this cell, d = 0.15), and below the action potential's peak
    cell = main_cells["alif_exc"]
    assert cell.params.v_thresh_mV < m.v_thresh_mV < cell.ap_peak_mV


def test_empty_rest_is_the_median_baseline_of_the_noise_sweeps(cache, main_ids, main_cells, reader):
    sid = main_ids["alif_inh"]
    _blank(cache, sid, vrest="")
    rec = load_cell(sid, dt_ms=0.5, cache_dir=cache, reader=reader)
    m = rec.meta
    assert (m.v_rest_source, m.v_thresh_source) == ("estimated from baseline", "ephys_features")
    numbers = [int(n) for ts in (rec.train, rec.test) for n in ts.sweep_numbers]
    fs, volts = _sweep_voltages(cache, sid, numbers)
    i1 = int(EPOCH_STARTS_S[0] * fs)
    i0 = i1 - int(BASELINE_S * fs)
    assert m.v_rest_mV == np.median([np.median(volts[n][i0:i1]) for n in numbers])
    # the baseline is rest plus the cell's bias (normalised units) times (threshold - rest), plus noise
    p = main_cells["alif_inh"].params
    assert m.v_rest_mV == pytest.approx(p.v_rest_mV + p.bias * (p.v_thresh_mV - p.v_rest_mV), abs=1.5)


def test_both_empty_estimates_both_and_the_cell_fits(cache, main_ids):
    from cellfit.fit import FitConfig, fit_recordings

    sid = main_ids["adex_exc"]
    _blank(cache, sid, vrest="", threshold_v_long_square="")
    rec = load_cell(sid, dt_ms=1.0, cache_dir=cache)
    assert (rec.meta.v_rest_source, rec.meta.v_thresh_source) == ("estimated from baseline",
                                                                  "estimated from recorded spikes")
    assert -80 < rec.meta.v_rest_mV < rec.meta.v_thresh_mV < -20
    again = load_cell(sid, dt_ms=1.0, cache_dir=cache)  # from the processed arrays: sources kept
    assert again.meta == rec.meta
    (fit,) = fit_recordings([rec], FitConfig(dt_ms=1.0, epochs=3, grid_init=False, coarse_to_fine_ms=()),
                            device="cpu", progress=False)
    assert math.isfinite(fit.result.etv) and fit.result.v_thresh_mV == rec.meta.v_thresh_mV
    assert fit.result.normalisation == dict(v_rest="estimated from baseline", v_thresh="estimated from recorded spikes")


def test_a_cell_without_a_feature_row_is_estimated(panel_cache, panel_ids):
    rec = load_cell(panel_ids["no_features"], dt_ms=1.0, cache_dir=panel_cache)
    assert (rec.meta.v_rest_source, rec.meta.v_thresh_source) == ("estimated from baseline",
                                                                  "estimated from recorded spikes")


def test_estimate_not_above_the_given_rest_is_refused(cache, main_ids):
    sid = main_ids["alif_exc"]
    _blank(cache, sid, threshold_v_long_square="", vrest="10")
    with pytest.raises(CellDataError, match=rf"specimen {sid}: threshold .* mV \(estimated from recorded spikes\) "
                                            r"is not above rest 10.00 mV \(ephys_features\)") as ei:
        load_cell(sid, dt_ms=1.0, cache_dir=cache)
    assert "\n" not in str(ei.value)


def test_given_values_are_still_checked_before_reading_sweeps(cache, main_ids):
    sid = main_ids["alif_exc"]
    _blank(cache, sid, threshold_v_long_square="-80", vrest="-70")
    with pytest.raises(CellDataError, match=r"threshold -80 mV is not above rest -70 mV in ephys_features.csv"):
        load_cell(sid, dt_ms=1.0, cache_dir=cache)
