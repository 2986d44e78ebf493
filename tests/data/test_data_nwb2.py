"""NWB 2: reading DANDI-style icephys files, converting cells, the predictions writer."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch
from pynwb import NWBHDF5IO, NWBFile
from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

from cellfit.data import CellDataError, load_cell
from cellfit.data import allen
from cellfit.data.nwb2 import (
    load_nwb2_cell,
    read_nwb2_sweeps,
    read_predictions_nwb2,
    stimulus_name_of,
    write_nwb2_sweeps,
    write_predictions_nwb2,
)


def _write_dandi_style(path, sweeps):
    """An icephys file as DANDI's Allen data: data_<n>_AD0 / data_<n>_DA0 paired by sweep_number."""
    nwb = NWBFile(session_description="test", identifier="dandi-style",
                  session_start_time=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    dev = nwb.create_device(name="MIES")
    elec = nwb.create_icephys_electrode(name="elec0", description="patch", device=dev)
    for n, code, mv, pa in sweeps:
        stim = CurrentClampStimulusSeries(name=f"data_{n:05d}_DA0", data=pa, electrode=elec, gain=1.0, rate=50_000.0,
                                          starting_time=float(n), sweep_number=np.uint32(n),
                                          stimulus_description=code, conversion=1e-12)
        resp = CurrentClampSeries(name=f"data_{n:05d}_AD0", data=mv, electrode=elec, gain=1.0, rate=50_000.0,
                                  starting_time=float(n), sweep_number=np.uint32(n), stimulus_description=code,
                                  conversion=1e-3)
        nwb.add_stimulus(stimulus=stim)
        nwb.add_acquisition(resp)
        nwb.add_intracellular_recording(electrode=elec, stimulus=stim, response=resp)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def test_read_dandi_style_file(tmp_path):
    rng = np.random.default_rng(0)
    sweeps = []
    for n, code in ((3, "C1NSSEED_1150204_DA_0"), (4, "X4PS_SupraThresh_DA_0"), (5, "C1NSSEED_2150112_DA_0"),
                    (6, "C1NSSEED_2150112_DA_0")):
        mv = (-70 + rng.standard_normal(1000)).astype(np.float32)
        pa = (100 * rng.standard_normal(1000)).astype(np.float32)
        sweeps.append((n, code, mv, pa))
    mv_nan = sweeps[0][2].copy()
    mv_nan[-10:] = np.nan  # unrecorded end of the sweep
    sweeps[0] = (3, sweeps[0][1], mv_nan, sweeps[0][3])
    path = tmp_path / "cell.nwb"
    _write_dandi_style(path, sweeps)

    got = read_nwb2_sweeps(path)
    assert [(s.sweep_number, s.stimulus_name) for s in got] == [(3, "Noise 1"), (5, "Noise 2"), (6, "Noise 2")]
    by_num = {s[0]: s for s in sweeps}
    for s in got:
        _, _, mv, pa = by_num[s.sweep_number]
        assert s.sampling_rate_hz == 50_000.0
        np.testing.assert_allclose(s.current_pA, pa.astype(np.float64), rtol=1e-12)
        np.testing.assert_allclose(s.voltage_mV, mv.astype(np.float64), rtol=1e-12)
    assert got[0].valid_end == 989 and got[1].valid_end == 999
    everything = read_nwb2_sweeps(path, stimulus_names=None)
    assert [s.stimulus_name for s in everything] == ["Noise 1", "X4PS_SupraThresh_DA_0", "Noise 2", "Noise 2"]


def test_stimulus_names():
    assert stimulus_name_of("C1NSSEED_1150204") == "Noise 1"
    assert stimulus_name_of("c1nsseed_2150112_DA_0") == "Noise 2"
    assert stimulus_name_of("Noise 2") == "Noise 2"
    assert stimulus_name_of(None) == ""


def test_nwb1_cell_converted_to_nwb2_loads_the_same(main_cache, main_ids, tmp_path):
    sid = main_ids["alif_inh"]
    store = allen.open_allen_cache(main_cache)
    table = store.sweep_table(sid)
    raws = [raw for s in table for raw in store.read_sweeps(sid, [s["sweep_number"]], s["stimulus_name"])]
    path = tmp_path / f"sub-{sid}_icephys.nwb"
    write_nwb2_sweeps(path, raws, identifier=str(sid))
    back = read_nwb2_sweeps(path)
    assert [s.sweep_number for s in back] == [s.sweep_number for s in raws]
    for a, b in zip(raws, back):
        assert a.stimulus_name == b.stimulus_name and a.sampling_rate_hz == b.sampling_rate_hz
        np.testing.assert_array_equal(a.current_pA, b.current_pA)
        np.testing.assert_array_equal(a.voltage_mV, b.voltage_mV)

    rec1 = load_cell(sid, dt_ms=0.5, cache_dir=main_cache)
    rec2 = load_nwb2_cell(path, dt_ms=0.5, specimen_id=sid)  # rest and threshold estimated from the data
    assert rec2.current_scale_pA == rec1.current_scale_pA
    for split in ("train", "test"):
        a, b = rec1.traces(split), rec2.traces(split)
        for field in ("current_pA", "voltage_mV", "spikes", "sweep_numbers"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert rec2.meta.v_rest_mV == pytest.approx(rec1.meta.v_rest_mV, abs=2.0)
    assert rec2.meta.v_thresh_mV == pytest.approx(rec1.meta.v_thresh_mV, abs=3.0)
    assert (rec2.meta.v_rest_source, rec2.meta.v_thresh_source) == ("estimated from baseline",
                                                                    "estimated from recorded spikes")
    given = load_nwb2_cell(path, dt_ms=4.0, window_s=3.0, meta=rec1.meta)
    assert given.meta == rec1.meta and given.train.spikes.shape == (2, 3, 750)


def test_nwb2_errors(tmp_path):
    with pytest.raises(CellDataError, match="no NWB 2 file"):
        read_nwb2_sweeps(tmp_path / "missing.nwb")
    bad = tmp_path / "bad.nwb"
    bad.write_bytes(b"\x89HDF\r\n" + b"\0" * 100)
    with pytest.raises(CellDataError, match="truncated, corrupt or not NWB 2"):
        read_nwb2_sweeps(bad)
    only_train = tmp_path / "train_only.nwb"
    mv = np.full(100, -70, dtype=np.float32)
    _write_dandi_style(only_train, [(1, "C1NSSEED_1150204", mv, mv)])
    with pytest.raises(CellDataError, match="has no 'Noise 2' sweeps"):
        load_nwb2_cell(only_train)


def test_predictions_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    current = (200 * rng.standard_normal((3, 500))).astype(np.float32)
    predicted = torch.from_numpy((rng.random((2, 3, 500)) < 0.02).astype(np.float32))
    recorded = (rng.random((4, 3, 500)) < 0.02).astype(np.float32)
    voltage = rng.standard_normal((3, 500)).astype(np.float32)
    path = tmp_path / "out" / "pred.nwb"
    write_predictions_nwb2(path, specimen_id=485909730, dt_ms=0.1, current=current, predicted_spikes=predicted,
                           recorded_spikes=recorded, voltage=voltage, voltage_unit="normalised",
                           epoch_starts_s=[2.0, 10.0, 18.0], parameters={"tau_m_ms": np.float32(21.5), "arp_ms": 2})
    assert sorted(p.name for p in path.parent.iterdir()) == ["pred.nwb"]  # no temporary file left
    back = read_predictions_nwb2(path)
    assert back["specimen_id"] == 485909730 and back["dt_ms"] == 0.1
    assert back["parameters"] == {"tau_m_ms": 21.5, "arp_ms": 2}
    assert back["epoch_starts_s"] == [2.0, 10.0, 18.0]
    np.testing.assert_array_equal(back["current"], current)
    np.testing.assert_array_equal(back["predicted_spikes"], predicted.numpy())
    np.testing.assert_array_equal(back["recorded_spikes"], recorded)
    np.testing.assert_array_equal(back["voltage"], voltage)
    with NWBHDF5IO(str(path), "r") as io:  # readable as plain NWB 2, in SI units
        ts = io.read().processing["cellfit"]["current"]
        assert ts.unit == "amperes" and ts.conversion == 1e-12 and ts.rate == 10_000.0
        assert ts.data.shape == (500, 3)


def test_predictions_reject_mismatched_arrays(tmp_path):
    with pytest.raises(ValueError, match="same number of time bins"):
        write_predictions_nwb2(tmp_path / "p.nwb", specimen_id=1, dt_ms=0.1, current=np.zeros((3, 10)),
                               predicted_spikes=np.zeros((3, 11)), recorded_spikes=np.zeros((1, 3, 10)))
    with pytest.raises(ValueError, match="current_unit"):
        write_predictions_nwb2(tmp_path / "p.nwb", specimen_id=1, dt_ms=0.1, current=np.zeros(3),
                               predicted_spikes=np.zeros(3), recorded_spikes=np.zeros(3), current_unit="nA")
    assert not (tmp_path / "p.nwb").exists()
