"""Running the generator's models on stimulus rows: inputs, batching, DC rheobase.

:func:`model_inputs` turns stimulus rows (pA) and standard-normal noise into
each family's model input; :func:`run_models` integrates many jobs, batching
the AdEx and HH jobs of all cells into vectorised loops (rows are independent,
so a row's result does not depend on what else is in its batch);
:func:`dc_rheobase` finds the DC rheobase of a cell like the Allen 1 s long
square protocol does (noise-free), with the threshold and peak of the first
spike at rheobase.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .cells import SyntheticCell
from .models import AdExParams, ALIFParams, HHParams, simulate_adex, simulate_alif, simulate_hh
from .models.hh import resting_state

__all__ = ["ADEX_BATCH", "HH_BATCH_ROWS", "LONG_SQUARE_S", "model_inputs", "run_models", "dc_rheobase",
           "hh_noise_sd_pA", "stimulus_rheobase"]

ADEX_BATCH = 8  # AdEx cells integrated in one vectorised loop
HH_BATCH_ROWS = 400  # rows of HH cells integrated in one vectorised loop (about 200 MB at 20 kHz)
LONG_SQUARE_S = 1.0  # the Allen long-square step


def hh_noise_sd_pA(p: HHParams, dt_ms: float) -> float:
    """s.d. of the per-sample noise current of an HH cell (module docstring of models.hh)."""
    rest = resting_state(p)
    return p.noise_sd_mV * rest["g_in_nS"] * math.sqrt(2.0 * rest["tau_eff_ms"] / dt_ms)


def stimulus_rheobase(cell: SyntheticCell, drive: float, fs: float) -> float:
    """The stimulus rheobase of ``cell`` (pA) for ``drive``: ``cell.rheobase_pA`` when given, else
    ``drive`` x the model's DC rheobase (AdEx: analytic; HH: :func:`dc_rheobase`); ALIF cells use
    100 pA (excitatory) or 200 pA (inhibitory), their drive acts through the gain."""
    if cell.rheobase_pA is not None:
        return float(cell.rheobase_pA)
    p = cell.params
    if isinstance(p, AdExParams):
        return drive * p.rheobase_pA()
    if isinstance(p, HHParams):
        return drive * dc_rheobase([p], fs)[0]["rheobase_pA"]
    return 100.0 if cell.cell_class == "excitatory" else 200.0


def model_inputs(p, rows: np.ndarray, xi: np.ndarray, scale: float, rheobase: float, drive: float,
                 dt_ms: float) -> dict:
    """The model input of stimulus ``rows`` (pA) plus intrinsic noise ``xi`` (standard normal, same shape).

    ALIF: ``gain * rows / scale + bias + sigma * xi`` in threshold units, with
    ``gain`` None chosen so that the model's DC rheobase is ``rheobase / drive``;
    AdEx and HH: ``rows + sigma * xi`` in pA. Returns ``inputs``, ``sigma``
    and, for ALIF, ``gain``.
    """
    if isinstance(p, ALIFParams):
        beta = math.exp(-dt_ms / p.tau_m_ms)
        gain = p.gain
        if gain is None:
            # DC rheobase of the model (1 - bias) * scale / gain = rheobase / drive
            gain = (1.0 - p.bias) * scale * drive / rheobase
        sigma_n = p.noise_sd * math.sqrt((1.0 + beta) / (1.0 - beta))
        return dict(gain=float(gain), sigma=sigma_n, inputs=gain * rows / scale + p.bias + sigma_n * xi)
    if isinstance(p, AdExParams):
        sigma_i = p.noise_sd_mV * p.g_L_nS * math.sqrt(2.0 * p.tau_m_ms / dt_ms)
    else:
        sigma_i = hh_noise_sd_pA(p, dt_ms)
    return dict(sigma=sigma_i, inputs=rows + sigma_i * xi)


def run_models(jobs: Sequence[tuple], dt_ms: float) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Integrate ``jobs``, each ``(params, inputs)`` with inputs (rows, n), all at ``dt_ms``.

    Returns per job ``(v_rows, spikes)``: ALIF potentials in threshold units,
    AdEx/HH in mV; spikes as sample indices per row (see each model).
    """
    out: list = [None] * len(jobs)
    adex = [i for i, (p, _) in enumerate(jobs) if isinstance(p, AdExParams)]
    hh = [i for i, (p, _) in enumerate(jobs) if isinstance(p, HHParams)]
    for i, (p, x) in enumerate(jobs):
        if isinstance(p, ALIFParams):
            out[i] = simulate_alif(x, dt_ms, p, v0=p.bias)
    for b in range(0, len(adex), ADEX_BATCH):
        _run_batch(jobs, adex[b:b + ADEX_BATCH], dt_ms, simulate_adex, out)
    batch: list[int] = []
    for i in hh:
        if batch and sum(jobs[j][1].shape[0] for j in batch) + jobs[i][1].shape[0] > HH_BATCH_ROWS:
            _run_batch(jobs, batch, dt_ms, simulate_hh, out)
            batch = []
        batch.append(i)
    if batch:
        _run_batch(jobs, batch, dt_ms, simulate_hh, out)
    return out


def _run_batch(jobs, members: list[int], dt_ms: float, simulate, out: list) -> None:
    inputs = np.concatenate([jobs[i][1] for i in members])
    params = [jobs[i][0] for i in members for _ in range(jobs[i][1].shape[0])]
    v_all, spk_all = simulate(inputs, dt_ms, params)
    r0 = 0
    for i in members:
        k = jobs[i][1].shape[0]
        out[i] = (v_all[r0:r0 + k], spk_all[r0:r0 + k])
        r0 += k


_DC_CACHE: dict = {}
#: DC steps tried: the input conductance at rest times these depolarisations (mV), geometric grid
DC_RANGE_MV = (2.0, 80.0)
DC_CANDIDATES = 24


def dc_rheobase(params: Sequence[HHParams], fs: float) -> list[dict]:
    """DC rheobase of HH cells, as the Allen 1 s long-square protocol measures it (noise-free).

    :data:`DC_CANDIDATES` currents on a geometric grid (g_in x :data:`DC_RANGE_MV`, neighbours
    17% apart, about the resolution of Allen's 10-20 pA steps for these cells) are stepped for
    :data:`LONG_SQUARE_S` from rest, batched over all cells. Returns per cell
    ``rheobase_pA`` (the smallest current that fires), ``threshold_v_mV`` (the voltage at the
    onset of its first spike), ``peak_v_mV`` (that spike's peak) and ``latency_ms``. Cached
    per (params, fs); ValueError if no step fires or the smallest already does.
    """
    dt_ms = 1000.0 / fs
    todo = [p for p in dict.fromkeys(params) if (p, fs) not in _DC_CACHE]
    if todo:
        n = int(round(LONG_SQUARE_S * fs))
        grids = [resting_state(p)["g_in_nS"] * np.geomspace(*DC_RANGE_MV, DC_CANDIDATES) for p in todo]
        jobs = [(p, np.ones((len(g), n)) * g[:, None]) for p, g in zip(todo, grids)]
        for p, grid, (v_rows, spikes) in zip(todo, grids, run_models(jobs, dt_ms)):
            fired = [k for k, s in enumerate(spikes) if len(s)]
            if not fired:
                raise ValueError(f"{p}: no spike for 1 s DC steps up to {grid[-1]:.0f} pA")
            k = fired[0]
            if k == 0:
                raise ValueError(f"{p}: spikes already at {grid[0]:.3g} pA DC; it may fire at rest")
            s0 = int(spikes[k][0])
            _DC_CACHE[(p, fs)] = dict(rheobase_pA=float(grid[k]), threshold_v_mV=float(v_rows[k][s0]),
                                      peak_v_mV=float(np.max(v_rows[k][s0:s0 + max(2, int(round(2.0 / dt_ms)))])),
                                      latency_ms=s0 * dt_ms)
    return [dict(_DC_CACHE[(p, fs)]) for p in params]
