"""The ground truth of a synthetic cell: ``specimen_<id>/truth.json``.

Besides the model, its parameters (physical units) and every model spike
time, the truth records for every cell: ``family`` (the model), ``firing_class``
(RS/FS/IB/LTS/adapting), ``cell_class`` (excitatory/inhibitory),
``time_constants`` (ms):

- ``tau_m_ms``: the passive membrane time constant (ALIF tau_m; AdEx and HH C / g_leak);
- ``tau_eff_ms``: at rest with every conductance at its resting value and the
  slow variables frozen (what a fast, small input sees; HH: C / g_chord);
- ``tau_slope_ms``: at rest with the slow variables following (DC input
  resistance x C; AdEx C / (g_eff + a), HH C / (dI_ss/dV));
- ``adaptation_ms``: the adaptation time constants (ALIF threshold, AdEx w,
  HH I_M at its peak, at rest and at threshold, and the Ca inactivations),

``rates_hz`` (achieved: mean over the Noise 1 epochs and repeats, per epoch,
per Noise 1 sweep, Noise 2 mean, and the fraction of inter-spike intervals
under 10 ms), ``calibration`` (the drive search, when a target rate was
asked) and ``missing_features`` (columns left empty in ``ephys_features.csv``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
from typing import Any

import numpy as np

from ..errors import CellDataError
from ..protocol import EPOCH_LENGTH_S, EPOCH_STARTS_S, TEST_STIMULUS, TRAIN_STIMULUS
from .cells import GENERATOR_VERSION
from .models import AdExParams, ALIFParams
from .models.hh import MAX_SUBSTEP_MS, SPIKE_DETECT_MV, SPIKE_ONSET_DVDT, n_substeps, resting_state
from .stimulus import NOISE_CV

__all__ = ["build_truth", "load_truth", "time_constants", "achieved_rates", "epoch_isis_s", "SHORT_ISI_MS"]

SHORT_ISI_MS = 10.0  # intervals below this count as short (doublets, bursts)

_INPUT = {
    "alif": ("alif input I[t] = gain * stim_pA[t] / current_scale_pA + bias + noise_input_sd * xi[t], "
             "xi standard normal per step and repeat; current_scale_pA = max |Noise 1 stimulus| "
             "over its three 3 s epochs"),
    "adex": "adex input current in pA: stim_pA[t] + noise_current_sd_pA * xi[t]",
    "hh": ("hh input current in pA: stim_pA[t] + noise_current_sd_pA * xi[t], held over each sample; "
           "density = current / area"),
}
_INITIAL = {"alif": "V = bias (normalised), a = 0", "adex": "V = E_L, w = 0",
            "hh": "V = v_rest_mV, every gate at its steady state"}
_SPIKE_TIME = {
    "alif": "the step at which V crosses the threshold",
    "adex": "the step at which V reaches V_peak (a stereotyped action potential is pasted from there)",
    "hh": (f"the onset of the action potential's upstroke: for each upward crossing of {SPIKE_DETECT_MV:g} mV, "
           f"the first sample of the run before it over which dV/dt >= {SPIKE_ONSET_DVDT:g} mV/ms"),
}


def time_constants(p, v_thresh_mV: float | None = None) -> dict:
    """Membrane and adaptation time constants of a model (module docstring), ms."""
    if isinstance(p, ALIFParams):
        return dict(tau_m_ms=p.tau_m_ms, tau_eff_ms=p.tau_m_ms, tau_slope_ms=p.tau_m_ms,
                    adaptation_ms={"threshold": p.tau_adapt_ms})
    if isinstance(p, AdExParams):
        g_eff = p.g_L_nS * (1.0 - math.exp((p.E_L_mV - p.V_T_mV) / p.delta_T_mV))
        return dict(tau_m_ms=p.tau_m_ms, tau_eff_ms=p.C_pF / g_eff, tau_slope_ms=p.C_pF / (g_eff + p.a_nS),
                    adaptation_ms={"w": p.tau_w_ms})
    rest = resting_state(p)
    adapt: dict[str, float] = {}
    if p.g_M_mS_cm2 > 0:
        adapt["I_M_max"] = p.tau_max_ms
        adapt["I_M_rest"] = rest["tau_M_rest_ms"]
        if v_thresh_mV is not None:
            x = math.exp((v_thresh_mV + 35.0) / 20.0)
            adapt["I_M_threshold"] = p.tau_max_ms / (3.3 * x + 1.0 / x)
    if p.g_CaL_mS_cm2 > 0:
        adapt["I_CaL_inactivation_rest"] = rest["tau_CaL_inactivation_rest_ms"]
    if p.g_CaT_mS_cm2 > 0:
        adapt["I_CaT_inactivation_rest"] = rest["tau_CaT_inactivation_rest_ms"]
    return dict(tau_m_ms=p.tau_m_ms, tau_eff_ms=rest["tau_eff_ms"], tau_slope_ms=rest["tau_slope_ms"],
                adaptation_ms=adapt)


def epoch_isis_s(sweeps: list[dict]) -> np.ndarray:
    """Inter-spike intervals (s) of the sweeps' ``spike_times_s``, within each noise epoch (none across)."""
    isis = [np.diff(t[(t >= a) & (t < a + EPOCH_LENGTH_S)])
            for t in (np.asarray(s["spike_times_s"]) for s in sweeps) for a in EPOCH_STARTS_S]
    return np.concatenate(isis) if isis else np.zeros(0)


def achieved_rates(sweeps: list[dict]) -> dict:
    """Firing rates of the written sweeps over the three noise epochs (module docstring)."""
    def epoch_counts(times):
        t = np.asarray(times)
        return [int(np.count_nonzero((t >= a) & (t < a + EPOCH_LENGTH_S))) for a in EPOCH_STARTS_S]

    out: dict[str, Any] = {}
    for name, key in ((TRAIN_STIMULUS, "noise1"), (TEST_STIMULUS, "noise2")):
        counts = np.array([epoch_counts(s["spike_times_s"]) for s in sweeps if s["stimulus_name"] == name])
        if counts.size == 0:
            continue
        out[f"{key}_mean"] = float(counts.mean() / EPOCH_LENGTH_S)
        if key == "noise1":
            out["noise1_per_epoch"] = [float(x) for x in counts.mean(axis=0) / EPOCH_LENGTH_S]
            out["noise1_per_sweep"] = [float(x) for x in counts.mean(axis=1) / EPOCH_LENGTH_S]
    isi = epoch_isis_s(sweeps)
    out["short_isi_fraction"] = float(np.mean(isi < SHORT_ISI_MS * 1e-3)) if isi.size else 0.0
    out["short_isi_ms"] = SHORT_ISI_MS
    return out


def _truth_params(prep: dict, mv: dict) -> dict:
    p, dt_ms = prep["cell"].params, prep["dt_ms"]
    out: dict[str, Any] = dataclasses.asdict(p)
    if isinstance(p, ALIFParams):
        out.update(gain=prep["gain"], beta=math.exp(-dt_ms / p.tau_m_ms), p=math.exp(-dt_ms / p.tau_adapt_ms),
                   arp_steps=max(1, int(round(p.arp_ms / dt_ms))), noise_input_sd=prep["sigma"])
    elif isinstance(p, AdExParams):
        out.update(tau_m_ms=p.tau_m_ms, V_peak_mV=p.v_peak, noise_current_sd_pA=prep["sigma"])
    else:
        rest = resting_state(p)
        n_sub = n_substeps(dt_ms)
        out.update(tau_m_ms=p.tau_m_ms, C_pF=p.C_pF, g_leak_nS=p.g_leak_nS, v_rest_mV=rest["v_rest_mV"],
                   input_resistance_MOhm=rest["input_resistance_MOhm"], noise_current_sd_pA=prep["sigma"],
                   n_substeps=n_sub, substep_ms=dt_ms / n_sub, max_substep_ms=MAX_SUBSTEP_MS)
    return out


def build_truth(prep: dict, mv: dict, sweeps: list[dict], calibration) -> dict:
    """The ``truth.json`` content of one simulated cell."""
    cell, fs = prep["cell"], prep["fs"]
    tc = time_constants(cell.params, mv["v_thresh"])
    truth = {
        "generator_version": GENERATOR_VERSION,
        "specimen_id": prep["specimen_id"],
        "model": cell.model,
        "cell_class": cell.cell_class,
        "params": _truth_params(prep, mv),
        "seed": prep["seed"],
        "sampling_rate_hz": float(fs),
        "dt_ms": prep["dt_ms"],
        "current_scale_pA": prep["scale"],
        "normalised_current": _INPUT[cell.model],
        "v_rest_mV": float(mv["v_rest"]),
        "v_thresh_mV": float(mv["v_thresh"]),
        "rheobase_pA": prep["rheobase"],
        "model_rheobase_pA": float(mv["model_rheobase"]),
        "amplitudes": list(cell.amplitudes),
        "noise_cv": NOISE_CV,
        "epoch_initial_state": _INITIAL[cell.model] + " at the start of every epoch; recorded 0.2 s past its end",
        "epoch_starts_s": list(EPOCH_STARTS_S),
        "epoch_length_s": EPOCH_LENGTH_S,
        "family": cell.model,
        "firing_class": cell.firing_class_name,
        "excitatory": cell.cell_class == "excitatory",
        "drive": prep["drive"],
        "time_constants": tc,
        "rates_hz": achieved_rates(sweeps),
        "calibration": calibration.as_dict() if calibration is not None else None,
        "missing_features": list(cell.missing_features),
        "spike_time": _SPIKE_TIME[cell.model],
        "sweeps": [{"sweep_number": s["sweep_number"], "stimulus_name": s["stimulus_name"],
                    "spike_times_s": [float(x) for x in s["spike_times_s"]]} for s in sweeps],
    }
    if "dc" in mv:
        truth["long_square"] = dict(mv["dc"], protocol="1 s DC step from rest, noise-free")
    return truth


def load_truth(cache_dir: os.PathLike | str, specimen_id: int) -> dict:
    """Read the ground truth of a synthetic cell (``specimen_<id>/truth.json``).

    Returns the JSON dict plus ``"spike_times"``: ``{sweep_number: array of
    model spike times in s from the start of the sweep}``.
    """
    path = pathlib.Path(cache_dir) / f"specimen_{int(specimen_id)}" / "truth.json"
    try:
        with open(path) as fh:
            truth = json.load(fh)
    except FileNotFoundError as exc:
        raise CellDataError(f"specimen {specimen_id}: no ground truth {path}; only synthetic cells "
                            "written by cellfit.data.synthetic have one") from exc
    except json.JSONDecodeError as exc:
        raise CellDataError(f"specimen {specimen_id}: ground truth {path} is not valid JSON ({exc}); "
                            "regenerate the synthetic cache") from exc
    truth["spike_times"] = {int(s["sweep_number"]): np.asarray(s["spike_times_s"], dtype=np.float64)
                            for s in truth["sweeps"]}
    return truth
