r"""Synthetic Allen-format cells with known ground truth.

:func:`write_synthetic_cache` writes a complete AllenSDK ``CellTypesCache``
directory (``manifest.json``, ``cells.json``, ``ephys_features.csv``,
``morphology_features.csv``, ``specimen_<id>/ephys_sweeps.json`` and
``specimen_<id>/ephys.nwb`` in the NWB 1 layout that ``NwbDataSet`` reads)
for a list of :class:`SyntheticCell`. The true parameters and model spike
times go to ``specimen_<id>/truth.json`` (read them with :func:`load_truth`).

Stimulus (as the Allen "Noise 1"/"Noise 2" protocol): pink (1/f, 1-100 Hz)
noise with coefficient of variation 0.2 on a DC offset of 0.75, 1.0 and 1.5 x
rheobase in the epochs 2-5 s, 10-13 s and 18-21 s, a -20 pA, 10 ms test
pulse at 20 ms, zero elsewhere; sweeps are 22 s long. The noise waveform is
fixed per stimulus name (one seed for Noise 1, another for Noise 2, shared by
all cells as in the Allen data), so every repeat of a stimulus is identical;
repeats differ only through the cell's intrinsic noise.

Models (integrated at the file's sampling interval ``dt``):

``"alif"`` -- the ALIF model of MISSION.md section 1, in normalised units
(rest 0, base threshold 1)

.. math::

    V[t] &= (\beta V[t-1] + (1-\beta) I[t]) (1 - S[t-1]),\quad
    S[t] = [V[t] > \theta[t]],\\
    \theta[t] &= 1 + d\,a[t],\quad a[t] = p\,a[t-1] + S[t-1],\\
    I[t] &= g\,i_{stim}[t] / i_{scale} + b + \sigma_n \xi[t]
    \quad (I[t] = 0 \text{ while } t - t_{spike} < T_R),

with :math:`\beta = e^{-dt/\tau_m}`, :math:`p = e^{-dt/\tau_{adapt}}`,
:math:`T_R` = ARP in steps, :math:`i_{scale}` = max |Noise 1 stimulus| over
its three epochs (the ``current_scale_pA`` that :func:`cellfit.data.load_cell`
computes), :math:`\xi` standard white noise drawn independently per repeat,
and :math:`\sigma_n = \sigma_V \sqrt{(1+\beta)/(1-\beta)}`, so that
``noise_sd`` (:math:`\sigma_V`) is the stationary s.d. of the free membrane
potential caused by the noise, in threshold units. The recorded voltage is
``v_rest + V (v_thresh - v_rest)`` mV.

``"adex"`` -- adaptive exponential integrate-and-fire (Brette & Gerstner 2005)

.. math::

    C \dot V &= -g_L (V - E_L) + g_L \Delta_T e^{(V - V_T)/\Delta_T} - w + I + \sigma_I \xi,\\
    \tau_w \dot w &= a (V - E_L) - w,

Euler steps of ``dt``; when ``V >= V_peak``: spike, ``V <- V_r``,
``w <- w + b``, ``V`` held at ``V_r`` for ``t_ref``. ``noise_sd_mV`` is the
stationary s.d. of the free potential (:math:`\sigma_I = \sigma_V g_L \sqrt{2 \tau_m/dt}`).

At each model spike a stereotyped action potential (rise to ``ap_peak_mV`` in
0.2-0.35 ms, repolarisation to an AHP trough, recovery to the model voltage
at the end of the refractory period) is pasted into the voltage so that
AllenSDK's spike detector finds it; its threshold time lands within about
0.1 ms of the model spike time. White recording noise (0.05 mV) is added and
values are quantised like an ADC (voltage to 2^-15 V, current to 2^-46 A)
before they are stored as float32 with gzip, which keeps a cell at 20 kHz
to a few MB.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import pathlib
from typing import TYPE_CHECKING, Any, Sequence

import h5py
import numpy as np
from scipy import signal

from cellfit.io import atomic_path, write_json_atomic, write_text_atomic
from .errors import CellDataError
from .protocol import EPOCH_LENGTH_S, EPOCH_STARTS_S, TEST_STIMULUS, TRAIN_STIMULUS

if TYPE_CHECKING:
    from .types import CellRecording

__all__ = [
    "GENERATOR_VERSION",
    "ALIFParams",
    "AdExParams",
    "SyntheticCell",
    "write_synthetic_cache",
    "synthetic_recordings",
    "alif_panel",
    "mismatch_panel",
    "load_truth",
    "noise_stimulus",
    "simulate_alif",
    "simulate_adex",
    "FIRST_SYNTHETIC_ID",
]

logger = logging.getLogger(__name__)

#: bumped whenever generated data would change for the same inputs
GENERATOR_VERSION = 1
#: specimen ids given to cells without an explicit id: FIRST_SYNTHETIC_ID + index
FIRST_SYNTHETIC_ID = 990_000_001

SWEEP_LENGTH_S = 22.0
EXPERIMENT_START_S = 0.75
TEST_PULSE = (0.02, 0.01, -20.0)  # start s, duration s, amplitude pA
NOISE_CV = 0.2
NOISE_BAND_HZ = (1.0, 100.0)
AMPLITUDES = (0.75, 1.0, 1.5)
#: per stimulus: (pink-noise seed, Allen stimulus code)
STIMULI = {
    TRAIN_STIMULUS: (1150204, "C1NSSEED_1150204"),
    TEST_STIMULUS: (2150112, "C1NSSEED_2150112"),
}
TAIL_S = 0.2  # simulated after each epoch so the voltage relaxes smoothly
RECORDING_NOISE_MV = 0.05
V_QUANTUM_V = 2.0**-15  # about 30.5 uV
I_QUANTUM_A = 2.0**-46  # about 0.014 pA


# --------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ALIFParams:
    """Parameters of the ``"alif"`` generator model (see module docstring).

    ``gain`` None: chosen so that the model's DC rheobase is
    ``stimulus rheobase / SyntheticCell.drive``.
    """

    tau_m_ms: float = 20.0
    tau_adapt_ms: float = 200.0
    adapt_scale: float = 0.1  #: d, threshold increase per spike (threshold units)
    arp_ms: float = 2.0
    gain: float | None = None  #: multiplies stim_pA / current_scale_pA
    bias: float = 0.0  #: constant input, threshold units
    noise_sd: float = 0.05  #: stationary s.d. of V from intrinsic noise, threshold units
    v_rest_mV: float = -70.0
    v_thresh_mV: float = -45.0

    def __post_init__(self) -> None:
        _require_positive(self, "tau_m_ms", "tau_adapt_ms", "arp_ms")
        if self.adapt_scale < 0 or self.noise_sd < 0:
            raise ValueError("adapt_scale and noise_sd must be >= 0")
        if self.v_thresh_mV <= self.v_rest_mV:
            raise ValueError("v_thresh_mV must lie above v_rest_mV")


def _require_positive(params, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{type(params).__name__}.{name} must be positive, got {value}")


@dataclasses.dataclass(frozen=True)
class AdExParams:
    """Parameters of the ``"adex"`` generator model (see module docstring).

    Units: pF, nS, mV, ms, pA. ``V_peak_mV`` None means ``V_T + 4 delta_T``.
    """

    C_pF: float = 200.0
    g_L_nS: float = 10.0
    E_L_mV: float = -70.0
    V_T_mV: float = -50.0
    delta_T_mV: float = 2.0
    a_nS: float = 2.0
    tau_w_ms: float = 200.0
    b_pA: float = 60.0
    V_r_mV: float = -58.0
    t_ref_ms: float = 2.0
    V_peak_mV: float | None = None
    noise_sd_mV: float = 1.0

    def __post_init__(self) -> None:
        _require_positive(self, "C_pF", "g_L_nS", "delta_T_mV", "tau_w_ms", "t_ref_ms")
        if self.a_nS < 0 or self.b_pA < 0 or self.noise_sd_mV < 0:
            raise ValueError("a_nS, b_pA and noise_sd_mV must be >= 0")
        if self.v_peak <= self.V_T_mV:
            raise ValueError(f"V_peak ({self.v_peak} mV) must lie above V_T ({self.V_T_mV} mV)")

    @property
    def tau_m_ms(self) -> float:
        return self.C_pF / self.g_L_nS

    @property
    def v_peak(self) -> float:
        return self.V_peak_mV if self.V_peak_mV is not None else self.V_T_mV + 4.0 * self.delta_T_mV

    def rheobase_pA(self) -> float:
        """DC current at which the resting state disappears (saddle-node), pA."""
        g = self.g_L_nS + self.a_nS
        v_star = self.V_T_mV + self.delta_T_mV * math.log(g / self.g_L_nS)
        return g * (v_star - self.E_L_mV - self.delta_T_mV)


@dataclasses.dataclass(frozen=True)
class SyntheticCell:
    """One synthetic cell: its model, parameters, metadata and protocol.

    ``noise1_repeats`` / ``noise2_repeats`` set how many sweeps of each
    stimulus are written (0 leaves the stimulus out), so tests can build cells
    that fail the panel rule or have too few test repeats. ``rheobase_pA``
    None derives the stimulus rheobase from the model: ``drive`` x the model's
    DC rheobase (``drive`` None: 1.2 for excitatory cells, 0.95 for inhibitory
    ones, whose f-I curves are steeper; then excitatory cells fire about
    2-25 Hz over the three epochs and inhibitory ones about 1-70 Hz). The
    metadata fields go to ``cells.json``; ``transgenic_line`` None picks a
    class-typical line.
    """

    model: str = "alif"
    params: ALIFParams | AdExParams | None = None
    cell_class: str = "excitatory"
    specimen_id: int | None = None
    noise1_repeats: int = 3
    noise2_repeats: int = 4
    rheobase_pA: float | None = None
    drive: float | None = None
    amplitudes: tuple = AMPLITUDES
    species: str = "Mus musculus"
    layer: str = "4"
    disease_state: str = ""
    transgenic_line: str | None = None
    ap_peak_mV: float = 30.0

    def __post_init__(self) -> None:
        if self.model not in ("alif", "adex"):
            raise ValueError(f"model must be 'alif' or 'adex', got {self.model!r}")
        if self.cell_class not in ("excitatory", "inhibitory"):
            raise ValueError(f"cell_class must be 'excitatory' or 'inhibitory', got {self.cell_class!r}")
        want = ALIFParams if self.model == "alif" else AdExParams
        if self.params is None:
            object.__setattr__(self, "params", want())
        elif not isinstance(self.params, want):
            raise ValueError(f"model {self.model!r} needs {want.__name__} params, got {type(self.params).__name__}")
        if self.noise1_repeats < 0 or self.noise2_repeats < 0:
            raise ValueError("repeat counts must be >= 0")
        if len(self.amplitudes) != len(EPOCH_STARTS_S):
            raise ValueError(f"amplitudes needs {len(EPOCH_STARTS_S)} values, one per epoch")

    @property
    def effective_drive(self) -> float:
        if self.drive is not None:
            return float(self.drive)
        return 1.2 if self.cell_class == "excitatory" else 0.95

    @property
    def refractory_ms(self) -> float:
        p = self.params
        return p.arp_ms if isinstance(p, ALIFParams) else p.t_ref_ms


# --------------------------------------------------------------------------
# stimulus
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _pink_epochs(seed: int, n: int, fs: float) -> np.ndarray:
    """Unit-s.d. pink noise (1/f power, 1-100 Hz), one row per epoch: (n_epochs, n)."""
    rng = np.random.default_rng(seed)
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    shape = np.zeros_like(freqs)
    band = (freqs >= NOISE_BAND_HZ[0]) & (freqs <= NOISE_BAND_HZ[1])
    shape[band] = 1.0 / np.sqrt(freqs[band])
    out = np.empty((len(EPOCH_STARTS_S), n))
    for e in range(len(EPOCH_STARTS_S)):
        z = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * shape, n)
        out[e] = (z - z.mean()) / z.std()
    out.setflags(write=False)
    return out


def noise_stimulus(stimulus_name: str, rheobase_pA: float, fs: float,
                   amplitudes: Sequence[float] = AMPLITUDES) -> np.ndarray:
    """The full-sweep stimulus of ``stimulus_name`` in pA, quantised as stored.

    Returns a float64 array of ``SWEEP_LENGTH_S * fs`` samples whose values
    are exactly the float32 amperes in the file times 1e12.
    """
    seed, _ = STIMULI[stimulus_name]
    n_sweep = int(round(SWEEP_LENGTH_S * fs))
    n_ep = int(round(EPOCH_LENGTH_S * fs))
    z = _pink_epochs(seed, n_ep, float(fs))
    stim = np.zeros(n_sweep)
    t0, dur, amp = TEST_PULSE
    stim[int(round(t0 * fs)): int(round((t0 + dur) * fs))] = amp
    for e, start in enumerate(EPOCH_STARTS_S):
        i0 = int(round(start * fs))
        stim[i0:i0 + n_ep] = amplitudes[e] * rheobase_pA * (1.0 + NOISE_CV * z[e])
    return _quantise_current_pA(stim)


def _quantise_current_pA(stim_pA: np.ndarray) -> np.ndarray:
    q = np.round(stim_pA * 1e-12 / I_QUANTUM_A) * I_QUANTUM_A
    return q.astype(np.float32).astype(np.float64) * 1e12


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------
def simulate_alif(inputs: np.ndarray, dt_ms: float, p: ALIFParams, v0: float = 0.0,
                  chunk: int = 2048) -> tuple[np.ndarray, list[np.ndarray]]:
    """Exact ALIF simulation (MISSION.md section 1) of each row of ``inputs``.

    ``inputs``: (B, n) total input I[t] in threshold units (before the ARP
    mask). Event-driven: between spikes V is the linear filter
    ``V[t] = beta V[t-1] + (1-beta) I[t]`` (scipy ``lfilter``) and the
    threshold decays in closed form, so the result equals the step-by-step
    recursion. Returns the potential (B, n) (0 during reset/ARP) and, per
    row, the integer steps at which S[t] = 1.
    """
    inputs = np.asarray(inputs, dtype=np.float64)
    n_rows, n = inputs.shape
    beta = math.exp(-dt_ms / p.tau_m_ms)
    pd = math.exp(-dt_ms / p.tau_adapt_ms)
    t_r = max(1, int(round(p.arp_ms / dt_ms)))
    skip = max(2, t_r)  # V[s+1] = 0 by reset; I = 0 until s + T_R
    b, a = [1.0 - beta], [1.0, -beta]
    v_out = np.zeros((n_rows, n))
    spikes: list[np.ndarray] = []
    decay = pd ** np.arange(chunk)
    for r in range(n_rows):
        x = inputs[r]
        t, v_prev, a_t = 0, float(v0), 0.0
        found: list[int] = []
        while t < n:
            end = min(n, t + chunk)
            y, _ = signal.lfilter(b, a, x[t:end], zi=[beta * v_prev])
            theta = 1.0 + p.adapt_scale * a_t * decay[: end - t]
            above = np.flatnonzero(y > theta)
            if above.size == 0:
                v_out[r, t:end] = y
                v_prev = float(y[-1])
                a_t *= pd ** (end - t)
                t = end
                continue
            k = int(above[0])
            s = t + k
            v_out[r, t:s + 1] = y[: k + 1]
            found.append(s)
            a_s = a_t * pd**k
            t_next = s + skip
            m = t_next - s
            a_t = pd**m * a_s + pd ** (m - 1)
            v_prev = 0.0
            t = t_next
        spikes.append(np.asarray(found, dtype=np.int64))
    return v_out, spikes


def simulate_adex(inputs_pA: np.ndarray, dt_ms: float,
                  p: AdExParams | Sequence[AdExParams]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Euler simulation of AdEx for each row of ``inputs_pA`` (B, n), in pA.

    ``p`` is one parameter set for all rows or one per row (so several cells
    share one loop). Returns the potential (B, n) in mV (``V_r`` while
    refractory, the spike sample clipped to ``V_peak``) and, per row, the
    steps at which V crossed ``V_peak``. Vectorised across rows; one Python
    step per sample.
    """
    inputs_pA = np.asarray(inputs_pA, dtype=np.float64)
    n_rows, n = inputs_pA.shape
    ps = [p] * n_rows if isinstance(p, AdExParams) else list(p)
    if len(ps) != n_rows:
        raise ValueError(f"{len(ps)} parameter sets for {n_rows} rows")

    def col(f):
        return np.array([f(q) for q in ps], dtype=np.float64)

    for q in ps:
        if q.v_peak <= q.V_T_mV:
            raise ValueError(f"V_peak ({q.v_peak} mV) must lie above V_T ({q.V_T_mV} mV)")
    k_v = dt_ms / col(lambda q: q.C_pF)
    k_w = dt_ms / col(lambda q: q.tau_w_ms)
    g_l, e_l = col(lambda q: q.g_L_nS), col(lambda q: q.E_L_mV)
    v_t, d_t = col(lambda q: q.V_T_mV), col(lambda q: q.delta_T_mV)
    v_peak, v_r = col(lambda q: q.v_peak), col(lambda q: q.V_r_mV)
    a_n, b_pa = col(lambda q: q.a_nS), col(lambda q: q.b_pA)
    n_ref = np.maximum(1, np.round(col(lambda q: q.t_ref_ms) / dt_ms)).astype(np.int64)
    # V <- V*A + c[t] - k_v*w + B*exp(V/dT - V_T/dT): the Euler step, rearranged
    # so that each step costs few numpy calls. V < V_peak at the start of every
    # step, so the exponent stays below (V_peak - V_T)/dT: no overflow.
    a_v = 1.0 - k_v * g_l
    b_v = k_v * g_l * d_t
    c = (inputs_pA.T + g_l * e_l) * k_v  # (n, rows), contiguous per step
    a_w = 1.0 - k_w
    b_w = k_w * a_n
    c_w = -k_w * a_n * e_l
    inv_dt = 1.0 / d_t
    off = v_t / d_t
    v = e_l.copy()
    w = np.zeros(n_rows)
    ref = np.zeros(n_rows, dtype=np.int64)
    out = np.empty((n, n_rows))
    spk_t: list[list[int]] = [[] for _ in range(n_rows)]
    n_refractory = 0  # rows currently held at V_r
    exp, mul, vmax = np.exp, np.multiply, np.maximum.reduce
    for t in range(n):
        ex = exp(v * inv_dt - off)
        v_new = mul(v, a_v) + c[t] - mul(w, k_v) + mul(ex, b_v)
        w = mul(w, a_w) + mul(v, b_w) + c_w
        if n_refractory:
            held = ref > 0
            v_new[held] = v_r[held]
            ref[held] -= 1
            n_refractory = int(np.count_nonzero(ref))
        v = v_new
        if vmax(v - v_peak) >= 0.0:
            idx = np.flatnonzero(v >= v_peak)
            for i in idx:
                spk_t[i].append(t)
            v[idx] = v_peak[idx]
            out[t] = v
            v[idx] = v_r[idx]
            w[idx] += b_pa[idx]
            ref[idx] = n_ref[idx]
            n_refractory = int(np.count_nonzero(ref))
        else:
            out[t] = v
    return out.T.copy(), [np.asarray(s, dtype=np.int64) for s in spk_t]


# --------------------------------------------------------------------------
# action potential waveform
# --------------------------------------------------------------------------
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


# --------------------------------------------------------------------------
# one cell
# --------------------------------------------------------------------------
_LINES = {"excitatory": "Scnn1a-Tg3-Cre", "inhibitory": "Pvalb-IRES-Cre"}
_DENDRITE = {"excitatory": "spiny", "inhibitory": "aspiny"}


def _default_rheobase(cell: SyntheticCell) -> float:
    if isinstance(cell.params, AdExParams):
        return cell.effective_drive * cell.params.rheobase_pA()
    return 100.0 if cell.cell_class == "excitatory" else 200.0


def _prepare_cell(cell: SyntheticCell, specimen_id: int, seed: int, fs: float) -> dict:
    """Stimuli, noise and model inputs of every (sweep, epoch) row of ``cell``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(specimen_id) % (2**32)]))
    dt_ms = 1000.0 / fs
    n_ep = int(round(EPOCH_LENGTH_S * fs))
    n_sim = n_ep + int(round(TAIL_S * fs))
    starts = [int(round(s * fs)) for s in EPOCH_STARTS_S]
    rheobase = float(cell.rheobase_pA) if cell.rheobase_pA is not None else _default_rheobase(cell)
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
    p = cell.params
    prep = dict(cell=cell, specimen_id=int(specimen_id), seed=int(seed), fs=fs, dt_ms=dt_ms, rng=rng,
                n_sim=n_sim, starts=starts, rheobase=rheobase, stims=stims, scale=scale,
                repeats=repeats, names=names)
    if isinstance(p, ALIFParams):
        beta = math.exp(-dt_ms / p.tau_m_ms)
        gain = p.gain
        if gain is None:
            # DC rheobase of the model (1 - bias) * scale / gain = rheobase / drive
            gain = (1.0 - p.bias) * scale * cell.effective_drive / rheobase
        sigma_n = p.noise_sd * math.sqrt((1.0 + beta) / (1.0 - beta))
        prep.update(gain=float(gain), sigma=sigma_n, inputs=gain * rows / scale + p.bias + sigma_n * xi)
    else:
        sigma_i = p.noise_sd_mV * p.g_L_nS * math.sqrt(2.0 * p.tau_m_ms / dt_ms)
        prep.update(sigma=sigma_i, inputs=rows + sigma_i * xi)
    return prep


def _finish_cell(prep: dict, v_rows: np.ndarray, spikes: list[np.ndarray]) -> dict:
    """Paste action potentials, assemble full sweeps, and collect the ground truth."""
    cell, p, fs, dt_ms = prep["cell"], prep["cell"].params, prep["fs"], prep["dt_ms"]
    rng, starts, n_sim, scale = prep["rng"], prep["starts"], prep["n_sim"], prep["scale"]
    n_sweep = int(round(SWEEP_LENGTH_S * fs))
    truth_params: dict[str, Any] = dataclasses.asdict(p)
    if isinstance(p, ALIFParams):
        gain = prep["gain"]
        span = p.v_thresh_mV - p.v_rest_mV
        v_rows = p.v_rest_mV + v_rows * span
        v_rest, v_thresh = p.v_rest_mV, p.v_thresh_mV
        baseline = p.v_rest_mV + p.bias * span
        tp_gain, tp_tau = gain / scale * span, p.tau_m_ms  # mV per pA, ms
        ahp = p.v_rest_mV - 5.0
        truth_params.update(gain=gain, beta=math.exp(-dt_ms / p.tau_m_ms),
                            p=math.exp(-dt_ms / p.tau_adapt_ms),
                            arp_steps=max(1, int(round(p.arp_ms / dt_ms))), noise_input_sd=prep["sigma"])
        model_rheobase = (1.0 - p.bias) * scale / gain
    else:
        v_rest, v_thresh = p.E_L_mV, p.v_peak
        baseline = p.E_L_mV
        tp_gain, tp_tau = 1.0 / p.g_L_nS, p.tau_m_ms
        ahp = p.V_r_mV - (4.0 if cell.cell_class == "excitatory" else 8.0)
        truth_params.update(tau_m_ms=p.tau_m_ms, V_peak_mV=p.v_peak, noise_current_sd_pA=prep["sigma"])
        model_rheobase = p.rheobase_pA()
    # action potentials, pasted over the refractory period
    length = max(2, int(round(cell.refractory_ms / dt_ms)))
    rise, fall = (0.35, 0.7) if cell.cell_class == "excitatory" else (0.2, 0.35)
    for r in range(v_rows.shape[0]):
        _paste_spikes(v_rows[r], spikes[r], fs, length, cell.ap_peak_mV, ahp, rise, fall)
    beta_tp = math.exp(-dt_ms / tp_tau)
    sweeps = []
    row = 0
    for nm in prep["names"]:
        for rep in range(prep["repeats"][nm]):
            stim = prep["stims"][nm]
            v = np.full(n_sweep, baseline)
            pre = stim[: starts[0]] * tp_gain
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
    truth = {
        "generator_version": GENERATOR_VERSION,
        "specimen_id": prep["specimen_id"],
        "model": cell.model,
        "cell_class": cell.cell_class,
        "params": truth_params,
        "seed": prep["seed"],
        "sampling_rate_hz": float(fs),
        "dt_ms": dt_ms,
        "current_scale_pA": scale,
        "normalised_current": (
            "alif input I[t] = gain * stim_pA[t] / current_scale_pA + bias + noise_input_sd * xi[t], "
            "xi standard normal per step and repeat; current_scale_pA = max |Noise 1 stimulus| "
            "over its three 3 s epochs" if cell.model == "alif" else
            "adex input current in pA: stim_pA[t] + noise_current_sd_pA * xi[t]"),
        "v_rest_mV": float(v_rest),
        "v_thresh_mV": float(v_thresh),
        "rheobase_pA": prep["rheobase"],
        "model_rheobase_pA": float(model_rheobase),
        "amplitudes": list(cell.amplitudes),
        "noise_cv": NOISE_CV,
        "epoch_initial_state": ("V = bias (normalised), a = 0" if cell.model == "alif"
                                else "V = E_L, w = 0") + " at the start of every epoch; recorded 0.2 s past its end",
        "epoch_starts_s": list(EPOCH_STARTS_S),
        "epoch_length_s": EPOCH_LENGTH_S,
        "sweeps": [{"sweep_number": s["sweep_number"], "stimulus_name": s["stimulus_name"],
                    "spike_times_s": [float(x) for x in s["spike_times_s"]]} for s in sweeps],
    }
    return {"sweeps": sweeps, "truth": truth, "v_rest": float(v_rest), "v_thresh": float(v_thresh),
            "rheobase": prep["rheobase"], "tau_m_ms": float(p.tau_m_ms)}


ADEX_BATCH = 8  # AdEx cells integrated in one vectorised loop


def _simulate_cells(preps: list[dict]) -> list[dict]:
    """Run the models of all prepared cells (AdEx cells batched) and finish them."""
    results: list[dict | None] = [None] * len(preps)
    adex = [i for i, pr in enumerate(preps) if pr["cell"].model == "adex"]
    for i, pr in enumerate(preps):
        if pr["cell"].model == "alif":
            v_rows, spikes = simulate_alif(pr["inputs"], pr["dt_ms"], pr["cell"].params, v0=pr["cell"].params.bias)
            results[i] = _finish_cell(pr, v_rows, spikes)
    for b in range(0, len(adex), ADEX_BATCH):
        group = adex[b:b + ADEX_BATCH]
        by_dt: dict[float, list[int]] = {}
        for i in group:
            by_dt.setdefault(preps[i]["dt_ms"], []).append(i)
        for dt_ms, members in by_dt.items():
            inputs = np.concatenate([preps[i]["inputs"] for i in members])
            params = [preps[i]["cell"].params for i in members for _ in range(preps[i]["inputs"].shape[0])]
            v_all, spk_all = simulate_adex(inputs, dt_ms, params)
            r0 = 0
            for i in members:
                k = preps[i]["inputs"].shape[0]
                results[i] = _finish_cell(preps[i], v_all[r0:r0 + k], spk_all[r0:r0 + k])
                r0 += k
    return results


# --------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------
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


def _cell_record(cell: SyntheticCell, sid: int, index: int) -> dict:
    line = cell.transgenic_line if cell.transgenic_line is not None else _LINES[cell.cell_class]
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


_FEATURE_COLUMNS = ["id", "specimen_id", "vrest", "threshold_v_long_square", "threshold_i_long_square",
                    "tau", "avg_isi", "f_i_curve_slope", "peak_v_long_square", "rheobase_sweep_number"]


def _feature_row(sid: int, sim: dict, cell: SyntheticCell) -> list:
    return [sid, sid, round(sim["v_rest"], 6), round(sim["v_thresh"], 6), round(sim["rheobase"], 6),
            round(sim["tau_m_ms"], 6), "", "", cell.ap_peak_mV, ""]


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


def write_synthetic_cache(cache_dir: os.PathLike | str, cells: Sequence[SyntheticCell], seed: int = 0,
                          sampling_rate_hz: float = 20_000.0) -> list[int]:
    """Write ``cells`` as an AllenSDK ``CellTypesCache`` directory; return their specimen ids.

    Cells without ``specimen_id`` get ``FIRST_SYNTHETIC_ID + index``. Existing
    synthetic records in ``cache_dir`` with other ids are kept (records with
    the same id are replaced), so several calls can fill one cache. Every
    file is written atomically. The same ``seed`` gives identical data.

    Parameters
    ----------
    cache_dir : directory of the cache (created if missing)
    cells : the cells to write
    seed : seeds the intrinsic and recording noise (per cell: ``(seed, specimen_id)``)
    sampling_rate_hz : sampling rate of the NWB traces (the real data use
        200 kHz; 20 kHz keeps a cell at a few MB and allows DT down to 0.05 ms)
    """
    if sampling_rate_hz <= 0 or abs(sampling_rate_hz - round(sampling_rate_hz)) > 1e-9:
        raise ValueError(f"sampling_rate_hz must be a positive integer number of Hz, got {sampling_rate_hz}")
    if sampling_rate_hz < 4000:
        raise ValueError("sampling_rate_hz below 4 kHz cannot represent action potentials")
    cache = pathlib.Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    fs = float(sampling_rate_hz)
    ids = [int(c.specimen_id) if c.specimen_id is not None else FIRST_SYNTHETIC_ID + i
           for i, c in enumerate(cells)]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate specimen ids in cells: {ids}")
    manifest = cache / "manifest.json"
    if not manifest.exists():
        write_json_atomic(manifest, _manifest(), indent=2)
    records = {int(r["specimen__id"]): r for r in _load_json_list(cache / "cells.json")}
    feature_rows = _read_feature_rows(cache / "ephys_features.csv")
    preps = [_prepare_cell(cell, sid, seed, fs) for cell, sid in zip(cells, ids)]
    sims = _simulate_cells(preps)
    for i, (cell, sid, sim) in enumerate(zip(cells, ids, sims)):
        spec_dir = cache / f"specimen_{sid}"
        spec_dir.mkdir(exist_ok=True)
        _write_nwb1(spec_dir / "ephys.nwb", sid, sim["sweeps"], fs)
        write_json_atomic(spec_dir / "ephys_sweeps.json", _sweep_records(sid, sim))
        write_json_atomic(spec_dir / "truth.json", sim["truth"])
        records[sid] = _cell_record(cell, sid, i)
        feature_rows[sid] = _feature_row(sid, sim, cell)
    write_json_atomic(cache / "cells.json", list(records.values()))
    lines = [",".join(_FEATURE_COLUMNS)]
    lines += [",".join(str(x) for x in feature_rows[k]) for k in sorted(feature_rows)]
    write_text_atomic(cache / "ephys_features.csv", "\n".join(lines) + "\n")
    if not (cache / "morphology_features.csv").exists():
        write_text_atomic(cache / "morphology_features.csv", "specimen_id\n")
    return ids


def synthetic_recordings(cells: Sequence[SyntheticCell], dt_ms: float = 0.1, window_s: float = 1.0,
                         seed: int = 0, sampling_rate_hz: float = 20_000.0) -> list["CellRecording"]:
    """The cells as :class:`~cellfit.data.types.CellRecording` objects, without writing any file.

    Same models, stimuli and noise as :func:`write_synthetic_cache` with the same ``seed``,
    cut and binned by the same code as :func:`cellfit.data.load_cell`; the differences:
    spike times are the model's own (no AllenSDK detection on the voltage trace, so
    AllenSDK and pynwb are not needed) and traces are not rounded to the file's
    float32/quantisation steps. For benchmarks and tests where file I/O is not the point
    (e.g. fitting a 146-cell panel on a GPU machine that lacks the data stack).
    """
    from .allen import RawSweep, cell_class_of
    from .preprocess import bin_sweeps, build_recording
    from .types import CellMeta

    fs = float(sampling_rate_hz)
    ids = [int(c.specimen_id) if c.specimen_id is not None else FIRST_SYNTHETIC_ID + i
           for i, c in enumerate(cells)]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate specimen ids in cells: {ids}")
    sims = _simulate_cells([_prepare_cell(cell, sid, seed, fs) for cell, sid in zip(cells, ids)])
    out = []
    for i, (cell, sid, sim) in enumerate(zip(cells, ids, sims)):
        record = _cell_record(cell, sid, i)
        meta = CellMeta(
            specimen_id=sid, name=record["specimen__name"], species=cell.species, layer=str(cell.layer),
            dendrite_type=record["tag__dendrite_type"], cell_class=cell_class_of(record["tag__dendrite_type"]),
            transgenic_line=record["line_name"], disease_state=cell.disease_state,
            v_rest_mV=round(float(sim["v_rest"]), 6), v_thresh_mV=round(float(sim["v_thresh"]), 6),  # as the cache stores them
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
        out.append(build_recording(meta, dt_ms, window_s, train, test, source=f"synthetic (in memory, seed {seed})"))
    return out


def _read_feature_rows(path: pathlib.Path) -> dict[int, list]:
    if not path.exists():
        return {}
    rows = {}
    with open(path) as fh:
        header = fh.readline().strip().split(",")
        if header != _FEATURE_COLUMNS:
            raise CellDataError(f"{path} was not written by the synthetic generator; "
                                "write synthetic cells into an empty or synthetic cache directory")
        for line in fh:
            if line.strip():
                parts = line.rstrip("\n").split(",")
                rows[int(parts[1])] = parts
    return rows


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


# --------------------------------------------------------------------------
# panels
# --------------------------------------------------------------------------
def _spread(rng: np.random.Generator, n: int, lo: float, hi: float, log: bool = True) -> np.ndarray:
    """n values spanning [lo, hi] (stratified: one per equal bin, shuffled)."""
    u = (np.arange(n) + rng.uniform(0.1, 0.9, n)) / n
    rng.shuffle(u)
    if log:
        return np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
    return lo + u * (hi - lo)


def alif_panel(n: int, seed: int = 0, first_id: int = FIRST_SYNTHETIC_ID) -> list[SyntheticCell]:
    """``n`` ALIF cells, alternately excitatory and inhibitory, spanning realistic ranges.

    Excitatory: tau_m 15-35 ms, tau_adapt 100-400 ms, d 0.05-0.3, noise_sd 0.04-0.08.
    Inhibitory: tau_m 8-15 ms, tau_adapt 50-200 ms, d 0.03-0.12, noise_sd 0.08-0.12.
    All: ARP 2 ms, bias -0.1..0.2, v_rest -75..-65 mV, v_thresh 18-28 mV above rest.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1]))
    n_exc = (n + 1) // 2
    n_inh = n - n_exc
    spec = {
        "excitatory": dict(tau_m=(15, 35), tau_a=(100, 400), d=(0.05, 0.3), noise=(0.04, 0.08), n=n_exc),
        "inhibitory": dict(tau_m=(8, 15), tau_a=(50, 200), d=(0.03, 0.12), noise=(0.08, 0.12), n=n_inh),
    }
    draws = {}
    for cls, s in spec.items():
        k = s["n"]
        draws[cls] = dict(tau_m=_spread(rng, k, *s["tau_m"]), tau_a=_spread(rng, k, *s["tau_a"]),
                          d=_spread(rng, k, *s["d"]), bias=_spread(rng, k, -0.1, 0.2, log=False),
                          noise=_spread(rng, k, *s["noise"], log=False),
                          vr=_spread(rng, k, -75, -65, log=False), vt=_spread(rng, k, 18, 28, log=False))
    cells, counters = [], {"excitatory": 0, "inhibitory": 0}
    for i in range(n):
        cls = "excitatory" if i % 2 == 0 else "inhibitory"
        j = counters[cls]
        counters[cls] += 1
        dr = draws[cls]
        params = ALIFParams(tau_m_ms=float(dr["tau_m"][j]), tau_adapt_ms=float(dr["tau_a"][j]),
                            adapt_scale=float(dr["d"][j]), arp_ms=2.0, bias=float(dr["bias"][j]),
                            noise_sd=float(dr["noise"][j]), v_rest_mV=float(dr["vr"][j]),
                            v_thresh_mV=float(dr["vr"][j] + dr["vt"][j]))
        cells.append(SyntheticCell(model="alif", params=params, cell_class=cls, specimen_id=first_id + i))
    return cells


def mismatch_panel(n: int = 6, seed: int = 0, first_id: int = FIRST_SYNTHETIC_ID + 1000) -> list[SyntheticCell]:
    """``n`` AdEx cells (outside the ALIF family), alternately excitatory and inhibitory.

    Excitatory, regular spiking and adapting: tau_m 15-40 ms, tau_w 100-400 ms,
    a 1-4 nS, b 30-100 pA, noise 1 mV. Inhibitory, fast spiking with little
    adaptation: tau_m 8-15 ms, tau_w 50-150 ms, a 0.05-0.5 nS, b 2-10 pA,
    noise 2.5 mV, narrow spikes, 1.5 ms refractory period.
    Together they span tau_m about 8-40 ms and tau_w about 50-400 ms.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2]))
    n_exc = (n + 1) // 2
    n_inh = n - n_exc
    exc = dict(tau_m=_spread(rng, n_exc, 15, 40), tau_w=_spread(rng, n_exc, 100, 400),
               a=_spread(rng, n_exc, 1, 4), b=_spread(rng, n_exc, 30, 100),
               g=_spread(rng, n_exc, 6, 12), vt=_spread(rng, n_exc, -52, -48, log=False),
               vr=_spread(rng, n_exc, -60, -54, log=False), el=_spread(rng, n_exc, -74, -66, log=False))
    inh = dict(tau_m=_spread(rng, n_inh, 8, 15), tau_w=_spread(rng, n_inh, 50, 150),
               a=_spread(rng, n_inh, 0.05, 0.5), b=_spread(rng, n_inh, 2, 10),
               g=_spread(rng, n_inh, 8, 14), vt=_spread(rng, n_inh, -50, -46, log=False),
               vr=_spread(rng, n_inh, -60, -55, log=False), el=_spread(rng, n_inh, -72, -64, log=False))
    cells, counters = [], {"excitatory": 0, "inhibitory": 0}
    for i in range(n):
        cls = "excitatory" if i % 2 == 0 else "inhibitory"
        j = counters[cls]
        counters[cls] += 1
        dr = exc if cls == "excitatory" else inh
        g = float(dr["g"][j])
        params = AdExParams(C_pF=g * float(dr["tau_m"][j]), g_L_nS=g, E_L_mV=float(dr["el"][j]),
                            V_T_mV=float(dr["vt"][j]), delta_T_mV=2.0 if cls == "excitatory" else 1.5,
                            a_nS=float(dr["a"][j]), tau_w_ms=float(dr["tau_w"][j]), b_pA=float(dr["b"][j]),
                            V_r_mV=float(dr["vr"][j]), t_ref_ms=2.0 if cls == "excitatory" else 1.5,
                            noise_sd_mV=1.0 if cls == "excitatory" else 2.5)
        cells.append(SyntheticCell(model="adex", params=params, cell_class=cls, specimen_id=first_id + i))
    return cells
