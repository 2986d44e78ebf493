"""Writing synthetic cells as an AllenSDK ``CellTypesCache`` directory.

:func:`write_synthetic_cache` writes ``manifest.json`` (AllenSDK manifest
1.1), ``cells.json`` (the API's cell records), ``ephys_features.csv`` (one
row per cell; columns :data:`~cellfit.data.synthetic.cells.EPHYS_FEATURE_COLUMNS`,
features a cell declares missing left empty as in AllenSDK's own CSV),
``morphology_features.csv``, and per cell ``specimen_<id>/ephys_sweeps.json``
(the sweep table), ``specimen_<id>/ephys.nwb`` (NWB 1 in the AIBS layout that
``allensdk.core.nwb_data_set.NwbDataSet`` reads: float32 with gzip, model
spike times under ``analysis/spike_times``) and ``specimen_<id>/truth.json``
(:mod:`.truth`). Every file is written atomically.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Sequence

import h5py
import numpy as np

from cellfit.io import atomic_path, write_json_atomic, write_text_atomic
from ..errors import CellDataError
from ..protocol import EPOCH_LENGTH_S, EPOCH_STARTS_S
from .cells import EPHYS_FEATURE_COLUMNS, SyntheticCell, specimen_ids
from .models import HHParams
from .stimulus import EXPERIMENT_START_S
from .sweeps import precompute, simulate_cells, simulation_chunks

__all__ = ["write_synthetic_cache", "cell_record", "check_sampling_rate"]

_LINES = {"excitatory": "Scnn1a-Tg3-Cre", "inhibitory": "Pvalb-IRES-Cre"}
#: class-typical lines of the firing classes a cell declares explicitly
_CLASS_LINES = {"RS": "Scnn1a-Tg3-Cre", "adapting": "Nr5a1-Cre", "IB": "Rbp4-Cre_KL100", "FS": "Pvalb-IRES-Cre",
                "LTS": "Sst-IRES-Cre"}
_DENDRITE = {"excitatory": "spiny", "inhibitory": "aspiny"}


def _manifest() -> dict:
    files = [
        ("CELLS", "cells.json"),
        ("EPHYS_DATA", "specimen_%d/ephys.nwb"),
        ("EPHYS_FEATURES", "ephys_features.csv"),
        ("MORPHOLOGY_FEATURES", "morphology_features.csv"),
        ("RECONSTRUCTION", "specimen_%d/reconstruction.swc"),
        ("MARKER", "specimen_%d/reconstruction.marker"),
        ("EPHYS_SWEEPS", "specimen_%d/ephys_sweeps.json"),
    ]
    entries = [{"type": "manifest_version", "value": "1.1"},
               {"key": "BASEDIR", "type": "dir", "spec": "."}]
    entries += [{"key": k, "type": "file", "spec": s, "parent_key": "BASEDIR"} for k, s in files]
    return {"manifest": entries}


def cell_record(cell: SyntheticCell, sid: int, index: int) -> dict:
    line = _line(cell)
    depth = 0.35 + 0.02 * (index % 5)
    return {
        "cell_reporter_status": "positive",
        "csl__x": 8000.0 + 10 * index, "csl__y": 1000.0, "csl__z": 9000.0,
        "csl__normalized_depth": depth,
        "donor__species": cell.species,
        "donor__id": 500000000 + index,
        "donor__disease_state": cell.disease_state,
        "donor__name": f"synthetic-{sid}",
        "specimen__id": sid,
        "specimen__name": f"{line}-synthetic-{sid}",
        "specimen__hemisphere": "left",
        "structure__layer": cell.layer,
        "structure__acronym": f"VISp{cell.layer}",
        "structure_parent__id": 385,
        "structure_parent__acronym": "VISp",
        "line_name": line,
        "tag__dendrite_type": _DENDRITE[cell.cell_class],
        "tag__apical": "intact" if cell.cell_class == "excitatory" else "NA",
        "nr__reconstruction_type": None,
        "cellfit__synthetic_model": cell.model,
    }


def _line(cell: SyntheticCell) -> str:
    if cell.transgenic_line is not None:
        return cell.transgenic_line
    if cell.firing_class is not None:
        return _CLASS_LINES[cell.firing_class]
    return _LINES[cell.cell_class]


def _feature_row(sid: int, sim: dict, cell: SyntheticCell) -> list:
    peak = round(sim["ap_peak_mV"], 6) if isinstance(cell.params, HHParams) else sim["ap_peak_mV"]
    row = [sid, sid, round(sim["v_rest"], 6), round(sim["v_thresh"], 6), round(sim["rheobase"], 6),
           round(sim["tau_m_ms"], 6), "", "", peak, ""]
    for name in cell.missing_features:  # written as AllenSDK's CSV writes a missing value: an empty field
        row[EPHYS_FEATURE_COLUMNS.index(name)] = ""
    return row


def _sweep_records(sid: int, sim: dict) -> list[dict]:
    recs = []
    for s in sim["sweeps"]:
        recs.append({
            "id": sid * 1000 + s["sweep_number"],
            "specimen_id": sid,
            "sweep_number": s["sweep_number"],
            "stimulus_name": s["stimulus_name"],
            "stimulus_description": s["stimulus_code"],
            "stimulus_units": "Amps",
            "stimulus_absolute_amplitude": sim["rheobase"],
            "stimulus_relative_amplitude": 1.0,
            "stimulus_start_time": EPOCH_STARTS_S[0],
            "stimulus_duration": EPOCH_STARTS_S[-1] + EPOCH_LENGTH_S - EPOCH_STARTS_S[0],
            "stimulus_interval": None,
            "num_spikes": int(len(s["spike_times_s"])),
            "pre_vm_mv": sim["v_rest"],
            "leak_pa": 0.0,
            "bridge_balance_mohm": 12.0,
        })
    return recs


def _nwb1_series(parent, name: str, data: np.ndarray, unit: bytes, kind: bytes, fs: float, gz: dict):
    """One NWB 1 (AIBS layout) TimeSeries group: data in SI ``unit`` at rate ``fs`` from t = 0."""
    group = parent.create_group(name)
    group.attrs["neurodata_type"] = np.bytes_(b"TimeSeries")
    group.attrs["ancestry"] = np.array([b"TimeSeries", b"PatchClampSeries", kind])
    d = group.create_dataset("data", data=data, **gz)
    d.attrs["conversion"] = 1.0
    d.attrs["resolution"] = np.nan
    d.attrs["unit"] = np.bytes_(unit)
    st = group.create_dataset("starting_time", data=0.0)
    st.attrs["rate"] = float(fs)
    st.attrs["unit"] = np.bytes_(b"Seconds")
    group.create_dataset("num_samples", data=data.shape[0])
    return group

def _write_nwb1(path: pathlib.Path, sid: int, sweeps: list[dict], fs: float) -> None:
    """Write ``sweeps`` in the AIBS NWB 1 layout that ``NwbDataSet`` reads."""
    n_exp = int(round(EXPERIMENT_START_S * fs))
    gz = dict(compression="gzip", compression_opts=4, shuffle=True)
    with atomic_path(path, suffix=".nwb") as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            f.create_dataset("nwb_version", data="NWB-1.0.5")
            f.create_dataset("identifier", data=f"cellfit-synthetic-{sid}")
            f.create_dataset("session_description", data="cellfit synthetic Allen-format cell")
            f.create_dataset("session_start_time", data="2023-01-01T00:00:00")
            f.create_dataset("file_create_date", data=["2023-01-01T00:00:00"])
            gen = f.create_group("general")
            gen.create_dataset("generated_by", data=["version", "1.1", "program", "cellfit.data.synthetic"])
            acq = f.create_group("acquisition/timeseries")
            pres = f.create_group("stimulus/presentation")
            epochs = f.create_group("epochs")
            spk = f.create_group("analysis/spike_times")
            spk.attrs["neurodata_type"] = "Custom"
            for s in sweeps:
                num = s["sweep_number"]
                name = f"Sweep_{num}"
                n = s["response_V"].shape[0]
                _nwb1_series(acq, name, s["response_V"], b"Volts", b"CurrentClampSeries", fs, gz)
                stim = _nwb1_series(pres, name, s["stimulus_A"], b"Amps", b"CurrentClampStimulusSeries", fs, gz)
                stim.create_dataset("aibs_stimulus_amplitude_pa", data=float(np.max(s["stimulus_A"]) * 1e12))
                stim.create_dataset("aibs_stimulus_name", data=s["stimulus_name"])
                stim.create_dataset("aibs_stimulus_description", data=s["stimulus_code"])
                stim.create_dataset("aibs_stimulus_interval", data=0.0)
                stim.create_dataset("gain", data=1.0)
                stim.create_dataset("initial_access_resistance", data=12.0)
                stim.create_dataset("seal", data=2.0)
                for ep_name, start, count in ((f"Sweep_{num}", 0, n),
                                              (f"Experiment_{num}", n_exp, n - n_exp),
                                              (f"TestPulse_{num}", 0, n_exp)):
                    ep = epochs.create_group(ep_name)
                    ep.attrs["neurodata_type"] = np.bytes_(b"Epoch")
                    ep.create_dataset("start_time", data=start / fs)
                    ep.create_dataset("stop_time", data=(start + count) / fs)
                    for part, target in (("stimulus", f"/stimulus/presentation/{name}"),
                                         ("response", f"/acquisition/timeseries/{name}")):
                        g = ep.create_group(part)
                        g.create_dataset("idx_start", data=int(start))
                        g.create_dataset("count", data=int(count))
                        g["timeseries"] = h5py.SoftLink(target)
                spk.create_dataset(name, data=np.asarray(s["spike_times_s"], dtype=np.float64), maxshape=(None,))

def _load_json_list(path: pathlib.Path) -> list:
    if not path.exists():
        return []
    with open(path) as fh:
        return json.load(fh)


def _read_feature_rows(path: pathlib.Path) -> dict[int, list]:
    if not path.exists():
        return {}
    rows = {}
    with open(path) as fh:
        header = fh.readline().strip().split(",")
        if header != EPHYS_FEATURE_COLUMNS:
            raise CellDataError(f"{path} was not written by the synthetic generator; "
                                "write synthetic cells into an empty or synthetic cache directory")
        for line in fh:
            if line.strip():
                parts = line.rstrip("\n").split(",")
                rows[int(parts[1])] = parts
    return rows


def check_sampling_rate(sampling_rate_hz: float) -> float:
    """ValueError unless the rate is a positive whole number of Hz of at least 4 kHz; returns it as float."""
    if sampling_rate_hz <= 0 or abs(sampling_rate_hz - round(sampling_rate_hz)) > 1e-9:
        raise ValueError(f"sampling_rate_hz must be a positive integer number of Hz, got {sampling_rate_hz}")
    if sampling_rate_hz < 4000:
        raise ValueError("sampling_rate_hz below 4 kHz cannot represent action potentials")
    return float(sampling_rate_hz)


def write_synthetic_cache(cache_dir: os.PathLike | str, cells: Sequence[SyntheticCell], seed: int = 0,
                          sampling_rate_hz: float = 20_000.0) -> list[int]:
    """Write ``cells`` as an AllenSDK ``CellTypesCache`` directory; return their specimen ids.

    Cells without ``specimen_id`` get ``FIRST_SYNTHETIC_ID + index``. Existing
    synthetic records in ``cache_dir`` with other ids are kept (records with
    the same id are replaced), so several calls can fill one cache. Every
    file is written atomically. The same ``seed`` gives identical data; a
    cell's data do not depend on the other cells written with it.

    Parameters
    ----------
    cache_dir : directory of the cache (created if missing)
    cells : the cells to write
    seed : seeds the intrinsic and recording noise (per cell: ``(seed, specimen_id)``)
    sampling_rate_hz : sampling rate of the NWB traces (the real data use
        200 kHz; 20 kHz keeps a cell at a few MB and allows DT down to 0.05 ms)
    """
    fs = check_sampling_rate(sampling_rate_hz)
    ids = specimen_ids(cells)
    cache = pathlib.Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    manifest = cache / "manifest.json"
    if not manifest.exists():
        write_json_atomic(manifest, _manifest(), indent=2)
    records = {int(r["specimen__id"]): r for r in _load_json_list(cache / "cells.json")}
    feature_rows = _read_feature_rows(cache / "ephys_features.csv")
    new_records, new_rows = {}, {}
    precompute(cells, ids, fs)  # calibrations and DC rheobases of all cells, batched
    for chunk in simulation_chunks(cells):
        sims = simulate_cells([cells[i] for i in chunk], [ids[i] for i in chunk], seed, fs)
        for i, sim in zip(chunk, sims):
            cell, sid = cells[i], ids[i]
            spec_dir = cache / f"specimen_{sid}"
            spec_dir.mkdir(exist_ok=True)
            _write_nwb1(spec_dir / "ephys.nwb", sid, sim["sweeps"], fs)
            write_json_atomic(spec_dir / "ephys_sweeps.json", _sweep_records(sid, sim))
            write_json_atomic(spec_dir / "truth.json", sim["truth"])
            new_records[i] = cell_record(cell, sid, i)
            new_rows[i] = _feature_row(sid, sim, cell)
    for i, sid in enumerate(ids):
        records[sid] = new_records[i]
        feature_rows[sid] = new_rows[i]
    write_json_atomic(cache / "cells.json", list(records.values()))
    lines = [",".join(EPHYS_FEATURE_COLUMNS)]
    lines += [",".join(str(x) for x in feature_rows[k]) for k in sorted(feature_rows)]
    write_text_atomic(cache / "ephys_features.csv", "\n".join(lines) + "\n")
    if not (cache / "morphology_features.csv").exists():
        write_text_atomic(cache / "morphology_features.csv", "specimen_id\n")
    return ids
