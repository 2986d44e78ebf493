"""From cells to full recorded sweeps: stimuli, noise, simulation, action potentials, recording.

For every cell: the stimulus of each sweep (:mod:`.stimulus`), one model row
per (sweep, epoch) holding the epoch plus :data:`TAIL_S` of zero current,
intrinsic white noise drawn per row from ``(seed, specimen_id)``, the models
run in batches (:func:`~cellfit.data.synthetic.engine.run_models`), then the
sweeps are assembled: rest (and the test pulse's passive response) outside
the epochs, the model voltage inside. The integrate-and-fire models (ALIF,
AdEx) get a stereotyped action potential pasted at each model spike (rise to
``ap_peak_mV`` in 0.2-0.35 ms, repolarisation to an AHP trough, recovery to
the model voltage at the end of the refractory period) so that AllenSDK's
spike detector finds it; its threshold time lands within about 0.1 ms of the
model spike time. HH cells need none: their voltage has real action
potentials. White recording noise (0.05 mV) is added and the voltage is
quantised like an ADC (2^-15 V) before it is stored as float32.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import signal

from ..protocol import EPOCH_LENGTH_S, TEST_STIMULUS, TRAIN_STIMULUS
from .calibrate import calibrate_drives
from .cells import SyntheticCell
from .engine import dc_rheobase, model_inputs, run_models, stimulus_rheobase
from .models import AdExParams, ALIFParams, HHParams
from .models.hh import resting_state
from .stimulus import STIMULI, SWEEP_LENGTH_S, epoch_starts, noise_stimulus
from .truth import build_truth

__all__ = ["TAIL_S", "RECORDING_NOISE_MV", "V_QUANTUM_V", "CHUNK_CELLS", "precompute", "prepare_cell",
           "simulate_cells", "simulation_chunks"]

TAIL_S = 0.2  # simulated after each epoch so the voltage relaxes smoothly
RECORDING_NOISE_MV = 0.05
V_QUANTUM_V = 2.0**-15  # about 30.5 uV
CHUNK_CELLS = 8  # cells simulated (and held in memory) together when writing a cache
_FAMILY_ORDER = {"alif": 0, "adex": 1, "hh": 2}


def _paste_spikes(v: np.ndarray, spikes: np.ndarray, fs: float, length: int,
                  peak_mV: float, ahp_mV: float, rise_ms: float, fall_ms: float) -> None:
    """Paste an action potential over ``v[s:s+length]`` for each spike step s (in place).

    Raised-cosine rise from the model voltage at s (starting at s + 1) to
    ``peak_mV`` in ``rise_ms``, fall to ``ahp_mV`` in ``fall_ms``, raised-cosine recovery to
    the model voltage at ``s + length``.
    """
    dt_ms = 1000.0 / fs
    # the first sample stays at the model voltage and the upstroke starts at
    # s + 1, so AllenSDK's threshold (last sample before dV/dt rises) is s
    total_ms = (length - 1) * dt_ms
    scale = min(1.0, 0.8 * total_ms / (rise_ms + fall_ms))
    r, f = rise_ms * scale, fall_ms * scale
    u = np.maximum(np.arange(length) - 1, 0) * dt_ms
    rise = 0.5 * (1 - np.cos(np.pi * np.clip(u / r, 0, 1)))
    fall = 0.5 * (1 - np.cos(np.pi * np.clip((u - r) / f, 0, 1)))
    rec = 0.5 * (1 - np.cos(np.pi * np.clip((u - r - f) / max(total_ms - r - f, dt_ms), 0, 1)))
    n = v.shape[0]
    for s in spikes:
        s = int(s)
        if s >= n:
            continue
        v0 = v[s]
        v_end = v[s + length] if s + length < n else v[-1]
        wave = np.where(u <= r, v0 + (peak_mV - v0) * rise,
                        np.where(u <= r + f, peak_mV + (ahp_mV - peak_mV) * fall,
                                 ahp_mV + (v_end - ahp_mV) * rec))
        m = min(length, n - s)
        v[s:s + m] = wave[:m]


def prepare_cell(cell: SyntheticCell, specimen_id: int, seed: int, fs: float, drive: float) -> dict:
    """Stimuli, noise and model inputs of every (sweep, epoch) row of ``cell``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(specimen_id) % (2**32)]))
    dt_ms = 1000.0 / fs
    n_ep = int(round(EPOCH_LENGTH_S * fs))
    n_sim = n_ep + int(round(TAIL_S * fs))
    starts = epoch_starts(fs)
    rheobase = stimulus_rheobase(cell, drive, fs)
    stims = {name: noise_stimulus(name, rheobase, fs, cell.amplitudes) for name in STIMULI}
    train_epochs = np.concatenate([stims[TRAIN_STIMULUS][i0:i0 + n_ep] for i0 in starts])
    scale = float(np.max(np.abs(train_epochs)))
    repeats = {TRAIN_STIMULUS: cell.noise1_repeats, TEST_STIMULUS: cell.noise2_repeats}
    names = [nm for nm in (TRAIN_STIMULUS, TEST_STIMULUS) if repeats[nm] > 0]
    # one row per (sweep, epoch): the epoch's stimulus plus a zero-current tail
    rows = np.zeros((sum(repeats[nm] for nm in names) * len(starts), n_sim))
    r = 0
    for nm in names:
        for _ in range(repeats[nm]):
            for i0 in starts:
                rows[r, :n_ep] = stims[nm][i0:i0 + n_ep]
                r += 1
    xi = rng.standard_normal(rows.shape)
    prep = dict(cell=cell, specimen_id=int(specimen_id), seed=int(seed), fs=fs, dt_ms=dt_ms, rng=rng,
                n_sim=n_sim, n_ep=n_ep, starts=starts, rheobase=rheobase, stims=stims, scale=scale,
                repeats=repeats, names=names, drive=float(drive))
    prep.update(model_inputs(cell.params, rows, xi, scale, rheobase, drive, dt_ms))
    return prep


def _to_millivolts(prep: dict, v_rows: np.ndarray, spikes: list[np.ndarray]) -> dict:
    """Recorded voltage of the model rows (mV) and the cell's resting/threshold values (family specific)."""
    cell, p, fs, dt_ms, scale = prep["cell"], prep["cell"].params, prep["fs"], prep["dt_ms"], prep["scale"]
    if isinstance(p, ALIFParams):
        gain = prep["gain"]
        span = p.v_thresh_mV - p.v_rest_mV
        out = dict(v_rows=p.v_rest_mV + v_rows * span, v_rest=p.v_rest_mV, v_thresh=p.v_thresh_mV,
                   baseline=p.v_rest_mV + p.bias * span, tp_gain=gain / scale * span, tp_tau=p.tau_m_ms,
                   ahp=p.v_rest_mV - 5.0, model_rheobase=(1.0 - p.bias) * scale / gain, tau_feature=p.tau_m_ms,
                   ap_peak=cell.ap_peak_mV)
    elif isinstance(p, AdExParams):
        out = dict(v_rows=v_rows, v_rest=p.E_L_mV, v_thresh=p.v_peak, baseline=p.E_L_mV, tp_gain=1.0 / p.g_L_nS,
                   tp_tau=p.tau_m_ms, ahp=p.V_r_mV - (4.0 if cell.cell_class == "excitatory" else 8.0),
                   model_rheobase=p.rheobase_pA(), tau_feature=p.tau_m_ms, ap_peak=cell.ap_peak_mV)
    else:
        rest = resting_state(p)
        dc = dc_rheobase([p], fs)[0]
        # the long-square threshold and peak, as Allen's features define them
        out = dict(v_rows=v_rows, v_rest=rest["v_rest_mV"], v_thresh=dc["threshold_v_mV"],
                   baseline=rest["v_rest_mV"], tp_gain=1.0 / rest["g_in_nS"], tp_tau=rest["tau_eff_ms"],
                   ahp=None, model_rheobase=dc["rheobase_pA"], tau_feature=rest["tau_eff_ms"],
                   ap_peak=dc["peak_v_mV"], dc=dc)
    if out["ahp"] is not None:
        # action potentials, pasted over the refractory period
        length = max(2, int(round(cell.refractory_ms / dt_ms)))
        rise, fall = (0.35, 0.7) if cell.cell_class == "excitatory" else (0.2, 0.35)
        for r in range(out["v_rows"].shape[0]):
            _paste_spikes(out["v_rows"][r], spikes[r], fs, length, cell.ap_peak_mV, out["ahp"], rise, fall)
    return out


def _finish_cell(prep: dict, v_rows: np.ndarray, spikes: list[np.ndarray], calibration) -> dict:
    """Assemble full sweeps and collect the ground truth."""
    fs, dt_ms = prep["fs"], prep["dt_ms"]
    rng, starts, n_sim = prep["rng"], prep["starts"], prep["n_sim"]
    n_sweep = int(round(SWEEP_LENGTH_S * fs))
    mv = _to_millivolts(prep, v_rows, spikes)
    v_rows = mv["v_rows"]
    beta_tp = math.exp(-dt_ms / mv["tp_tau"])
    sweeps = []
    row = 0
    for nm in prep["names"]:
        for rep in range(prep["repeats"][nm]):
            stim = prep["stims"][nm]
            v = np.full(n_sweep, mv["baseline"])
            pre = stim[: starts[0]] * mv["tp_gain"]
            v[: starts[0]] += signal.lfilter([1.0 - beta_tp], [1.0, -beta_tp], pre)
            spike_idx = []
            for i0 in starts:
                v[i0:i0 + n_sim] = v_rows[row]
                spike_idx.append(i0 + spikes[row])
                row += 1
            v += RECORDING_NOISE_MV * rng.standard_normal(n_sweep)
            v_volts = (np.round(v * 1e-3 / V_QUANTUM_V) * V_QUANTUM_V).astype(np.float32)
            sweeps.append({
                "sweep_number": len(sweeps),
                "stimulus_name": nm,
                "stimulus_code": STIMULI[nm][1],
                "stimulus_A": (stim * 1e-12).astype(np.float32),
                "response_V": v_volts,
                "spike_times_s": np.concatenate(spike_idx) / fs,
                "repeat": rep,
            })
    truth = build_truth(prep, mv, sweeps, calibration)
    return {"sweeps": sweeps, "truth": truth, "v_rest": float(mv["v_rest"]), "v_thresh": float(mv["v_thresh"]),
            "rheobase": prep["rheobase"], "tau_m_ms": float(mv["tau_feature"]), "ap_peak_mV": mv["ap_peak"]}


def precompute(cells: Sequence[SyntheticCell], ids: Sequence[int], fs: float) -> list:
    """DC rheobases of the HH cells, then the calibrations, each family in one batch (both cached)."""
    hh = [c.params for c in cells if isinstance(c.params, HHParams)]
    if hh:
        dc_rheobase(hh, fs)
    return calibrate_drives(cells, ids, fs)


def simulation_chunks(cells: Sequence[SyntheticCell]) -> list[list[int]]:
    """Indices of ``cells`` in groups of at most :data:`CHUNK_CELLS`, same model family together."""
    order = sorted(range(len(cells)), key=lambda i: _FAMILY_ORDER[cells[i].model])
    return [order[k:k + CHUNK_CELLS] for k in range(0, len(order), CHUNK_CELLS)]


def simulate_cells(cells: Sequence[SyntheticCell], ids: Sequence[int], seed: int, fs: float) -> list[dict]:
    """Simulate ``cells`` (calibrating drives where asked, batching the models) into sweeps and truth.

    Returns per cell a dict with ``sweeps`` (sweep number, stimulus name and
    code, float32 ``stimulus_A`` and ``response_V``, model ``spike_times_s``),
    ``truth`` (the ``truth.json`` content) and the values the feature table
    needs (``v_rest``, ``v_thresh``, ``rheobase``, ``tau_m_ms``, ``ap_peak_mV``).
    """
    calibrations = precompute(cells, ids, fs)
    preps = [prepare_cell(cell, sid, seed, fs, cal.drive if cal is not None else cell.effective_drive)
             for cell, sid, cal in zip(cells, ids, calibrations)]
    runs = run_models([(pr["cell"].params, pr.pop("inputs")) for pr in preps], 1000.0 / fs)
    return [_finish_cell(pr, v_rows, spikes, cal) for pr, (v_rows, spikes), cal in zip(preps, runs, calibrations)]
