"""Every bad input stops with one clear CellDataError line (issue 3, item 7)."""

from __future__ import annotations

import json
import urllib.error

import h5py
import numpy as np
import pytest

from cellfit.data import CellDataError, load_cell, resolve_specimen

from _stacks import needs_allensdk


def _one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and msg.strip() == msg and len(msg) < 600
    return msg


def _no_network(monkeypatch):
    """Let AllenSDK try to download, but fail the way it does without internet."""
    from allensdk.api.api import Api

    monkeypatch.delenv("CELLFIT_OFFLINE", raising=False)

    def unreachable(self, url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known (test: no network)")

    monkeypatch.setattr(Api, "retrieve_parsed_json_over_http", unreachable)
    monkeypatch.setattr(Api, "retrieve_file_over_http", unreachable)


def test_unknown_specimen(small_cache, reader):
    cache, _ = small_cache
    with pytest.raises(CellDataError, match=r"unknown specimen 123456789: not in the cell table") as ei:
        load_cell(123456789, cache_dir=cache, reader=reader)
    _one_line(ei)


@pytest.mark.parametrize("bad", ["abc", "-5", 0, -3, True, 1.5, "12a"])
def test_malformed_specimen_id(small_cache, bad):
    cache, _ = small_cache
    with pytest.raises(CellDataError, match="specimen id must be a positive integer"):
        load_cell(bad, cache_dir=cache)
    if isinstance(bad, str):
        with pytest.raises(CellDataError, match="or 'demo'|positive integer"):
            resolve_specimen(bad, cache_dir=cache)


@pytest.mark.parametrize("name, pattern", [
    ("no_noise1", r"has no 'Noise 1' sweeps \(training set\)"),
    ("no_noise2", r"has no 'Noise 2' sweeps \(held-out test set\)"),
    ("one_test_repeat", r"has only 1 'Noise 2' sweep .* at least 2 repeats"),
])
def test_missing_or_too_few_noise_sweeps(panel_cache, panel_ids, name, pattern):
    with pytest.raises(CellDataError, match=pattern) as ei:
        load_cell(panel_ids[name], cache_dir=panel_cache)
    assert str(panel_ids[name]) in _one_line(ei)


def test_three_test_repeats_are_enough_to_load(panel_cache, panel_ids):
    rec = load_cell(panel_ids["three_test_repeats"], dt_ms=1.0, cache_dir=panel_cache)
    assert rec.test.n_repeats == 3


@pytest.mark.parametrize("trace", ["acquisition/timeseries", "stimulus/presentation"])
def test_nan_in_a_trace(small_cache, trace, reader):
    cache, sid = small_cache
    with h5py.File(cache / f"specimen_{sid}" / "ephys.nwb", "r+") as f:
        data = f[f"{trace}/Sweep_4/data"]
        data[110_000:110_010] = np.nan  # 11 s at 10 kHz: inside the second epoch
    with pytest.raises(CellDataError, match=r"sweep 4 \(Noise 2\): 10 NaN/inf values in the (voltage|current) "
                                            r"trace \(first at 11.0000 s\)") as ei:
        load_cell(sid, cache_dir=cache, reader=reader)
    _one_line(ei)


@pytest.mark.parametrize("dt_ms", [0.15, 0.25, 1.05])
def test_dt_not_a_multiple_of_the_sampling_interval(small_cache, dt_ms):
    cache, sid = small_cache  # 10 kHz: 0.1 ms samples
    with pytest.raises(CellDataError, match=rf"dt {dt_ms:g} ms is not a multiple of the sampling interval "
                                            r"0.1 ms \(10000 Hz\)") as ei:
        load_cell(sid, dt_ms=dt_ms, cache_dir=cache)
    _one_line(ei)


@pytest.mark.parametrize("dt_ms, window_s, pattern", [
    (0.01, 1.0, "outside the supported range"),
    (8.0, 1.0, "outside the supported range"),
    (0.1, 0.0, "window 0 s"),
    (0.1, 4.0, "window 4 s"),
])
def test_dt_and_window_ranges(small_cache, dt_ms, window_s, pattern):
    cache, sid = small_cache
    with pytest.raises(CellDataError, match=pattern):
        load_cell(sid, dt_ms=dt_ms, window_s=window_s, cache_dir=cache)


def test_truncated_nwb(small_cache, reader):
    cache, sid = small_cache
    nwb = cache / f"specimen_{sid}" / "ephys.nwb"
    nwb.write_bytes(nwb.read_bytes()[: nwb.stat().st_size // 2])
    with pytest.raises(CellDataError, match=rf"specimen {sid}: cannot read NWB file .*ephys.nwb, it is truncated "
                                            "or corrupt .*delete it") as ei:
        load_cell(sid, cache_dir=cache, reader=reader)
    _one_line(ei)


def test_corrupt_nwb(small_cache, reader):
    cache, sid = small_cache
    nwb = cache / f"specimen_{sid}" / "ephys.nwb"
    nwb.write_bytes(b"<html>502 Bad Gateway</html>" * 100)
    with pytest.raises(CellDataError, match="truncated or corrupt") as ei:
        load_cell(sid, cache_dir=cache, reader=reader)
    _one_line(ei)


def test_sweep_missing_from_nwb(small_cache, reader):
    cache, sid = small_cache
    with h5py.File(cache / f"specimen_{sid}" / "ephys.nwb", "r+") as f:
        del f["epochs/Sweep_5"]
    with pytest.raises(CellDataError, match=r"sweep 5 \(Noise 2\) is listed in ephys_sweeps.json but missing"):
        load_cell(sid, cache_dir=cache, reader=reader)


def test_missing_nwb_offline(small_cache, reader):
    cache, sid = small_cache
    (cache / f"specimen_{sid}" / "ephys.nwb").unlink()
    # AllenSDK would download it when online; without AllenSDK downloading needs it installed
    with pytest.raises(CellDataError, match=rf"specimen {sid}: no file specimen_{sid}/ephys.nwb in .*; (run on a "
                                            r"machine with internet|downloading it from the Allen API needs "
                                            r"AllenSDK: pip install 'cellfit\[allen\]').* --cache-dir") as ei:
        load_cell(sid, cache_dir=cache, reader=reader)
    assert str(cache) in _one_line(ei)


@needs_allensdk
def test_missing_nwb_download_fails(small_cache, monkeypatch):
    cache, sid = small_cache
    (cache / f"specimen_{sid}" / "ephys.nwb").unlink()
    _no_network(monkeypatch)
    with pytest.raises(CellDataError, match=rf"specimen {sid}: no file specimen_{sid}/ephys.nwb .* and the Allen "
                                            "API could not be reached .*; run on a machine with internet") as ei:
        load_cell(sid, cache_dir=cache)
    _one_line(ei)


def test_missing_sweep_table_offline(small_cache, reader):
    cache, sid = small_cache
    (cache / f"specimen_{sid}" / "ephys_sweeps.json").unlink()
    with pytest.raises(CellDataError, match=rf"no file specimen_{sid}/ephys_sweeps.json"):
        load_cell(sid, cache_dir=cache, reader=reader)


def test_empty_cache_directory_offline(tmp_path, reader):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CellDataError, match=r"cache directory .*empty is empty \(no manifest.json\); run once "
                                            "with internet .* --specimen demo") as ei:
        load_cell(123456789, cache_dir=empty, reader=reader)
    _one_line(ei)
    assert list(empty.iterdir()) == []  # nothing written offline
    with pytest.raises(CellDataError, match="does not exist"):
        load_cell(123456789, cache_dir=tmp_path / "missing", reader=reader)


@needs_allensdk
def test_empty_cache_directory_download_fails(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    _no_network(monkeypatch)
    with pytest.raises(CellDataError, match=r"cache directory .*empty has no cells.json and the Allen API could "
                                            r"not be reached \(URLError: .*\); run once with internet") as ei:
        load_cell(123456789, cache_dir=empty)
    _one_line(ei)


def test_corrupt_cell_table(small_cache, reader):
    cache, sid = small_cache
    (cache / "cells.json").write_text("[{\"specimen__id\": ")
    with pytest.raises(CellDataError, match=r"cell table .*cells.json is corrupt .*delete it"):
        load_cell(sid, cache_dir=cache, reader=reader)


def test_wrong_manifest_version(small_cache, reader):
    cache, sid = small_cache
    manifest = json.loads((cache / "manifest.json").read_text())
    manifest["manifest"][0]["value"] = "0.9"
    (cache / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CellDataError, match="wrong manifest version"):
        load_cell(sid, cache_dir=cache, reader=reader)


def test_truncated_sweep_is_dropped_then_too_few_repeats(small_cache, reader):
    cache, sid = small_cache
    with h5py.File(cache / f"specimen_{sid}" / "ephys.nwb", "r+") as f:
        for n in (4, 5, 6):  # recording stopped at 15 s in three of the four Noise 2 sweeps
            count = f[f"epochs/Experiment_{n}/stimulus/count"]
            count[()] = 150_000 - f[f"epochs/Experiment_{n}/stimulus/idx_start"][()]
    with pytest.raises(CellDataError, match=r"has only 1 'Noise 2' sweep that cover all three epochs"):
        load_cell(sid, cache_dir=cache, reader=reader)
