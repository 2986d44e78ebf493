"""Synthetic cells in memory: :func:`synthetic_recordings`, the fast path without files or AllenSDK."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..cache import RawSweep, cell_class_of
from ..preprocess import bin_sweeps, build_recording
from ..protocol import TEST_STIMULUS, TRAIN_STIMULUS
from ..types import CellMeta, CellRecording
from .allen_format import cell_record, check_sampling_rate
from .cells import SyntheticCell, specimen_ids
from .sweeps import precompute, simulate_cells, simulation_chunks

__all__ = ["synthetic_recordings"]


def synthetic_recordings(cells: Sequence[SyntheticCell], dt_ms: float = 0.1, window_s: float = 1.0,
                         seed: int = 0, sampling_rate_hz: float = 20_000.0) -> list["CellRecording"]:
    """The cells as :class:`~cellfit.data.types.CellRecording` objects, without writing any file.

    Same models, stimuli, noise and float32 traces as :func:`write_synthetic_cache` with the
    same ``seed``, cut and binned by the same code as :func:`cellfit.data.load_cell`; the one
    difference: spike times are the model's own (no AllenSDK detection on the voltage trace,
    so AllenSDK and pynwb are not needed; for HH cells the upstroke onset, within a sample or
    two of AllenSDK's threshold). ``missing_features`` do not apply here: the metadata carry
    the true resting and threshold potentials. For benchmarks and tests where file I/O is not
    the point (e.g. fitting a 146-cell panel on a GPU machine that lacks the data stack).
    """
    fs = check_sampling_rate(sampling_rate_hz)
    ids = specimen_ids(cells)
    out: list = [None] * len(cells)
    precompute(cells, ids, fs)  # calibrations and DC rheobases of all cells, batched
    for chunk in simulation_chunks(cells):
        sims = simulate_cells([cells[i] for i in chunk], [ids[i] for i in chunk], seed, fs)
        for i, sim in zip(chunk, sims):
            out[i] = _recording(cells[i], ids[i], i, sim, dt_ms, window_s, seed, fs)
    return out


def _recording(cell: SyntheticCell, sid: int, i: int, sim: dict, dt_ms: float, window_s: float, seed: int,
               fs: float) -> "CellRecording":

    record = cell_record(cell, sid, i)
    meta = CellMeta(
        specimen_id=sid, name=record["specimen__name"], species=cell.species, layer=str(cell.layer),
        dendrite_type=record["tag__dendrite_type"], cell_class=cell_class_of(record["tag__dendrite_type"]),
        transgenic_line=record["line_name"], disease_state=cell.disease_state,
        # rounded as the cache stores them
        v_rest_mV=round(float(sim["v_rest"]), 6), v_thresh_mV=round(float(sim["v_thresh"]), 6),
    )
    raws, detected = {TRAIN_STIMULUS: [], TEST_STIMULUS: []}, {}
    for sw in sim["sweeps"]:
        n = sw["response_V"].shape[0]
        raws[sw["stimulus_name"]].append(RawSweep(
            sweep_number=sw["sweep_number"], stimulus_name=sw["stimulus_name"], sampling_rate_hz=fs,
            current_pA=sw["stimulus_A"].astype(np.float64) * 1e12,
            voltage_mV=sw["response_V"].astype(np.float64) * 1e3, valid_end=n - 1))
        detected[sw["sweep_number"]] = np.round(np.asarray(sw["spike_times_s"]) * fs).astype(np.int64)
    train, test = (bin_sweeps(raws[name], dt_ms, window_s, specimen_id=sid, detected=detected)
                   for name in (TRAIN_STIMULUS, TEST_STIMULUS))
    return build_recording(meta, dt_ms, window_s, train, test, source=f"synthetic (in memory, seed {seed})")
