r"""The ``"adex"`` generator model: adaptive exponential integrate-and-fire (Brette & Gerstner 2005).

.. math::

    C \dot V &= -g_L (V - E_L) + g_L \Delta_T e^{(V - V_T)/\Delta_T} - w + I + \sigma_I \xi,\\
    \tau_w \dot w &= a (V - E_L) - w,

Euler steps of ``dt`` (the file's sampling interval); when ``V >= V_peak``:
spike, ``V <- V_r``, ``w <- w + b``, ``V`` held at ``V_r`` for ``t_ref``.
``a`` (nS) is the subthreshold adaptation coupling, ``b`` (pA) the
spike-triggered adaptation current; a reset ``V_r`` anywhere between rest
and threshold (or above ``V_T``, as in bursting cells) is allowed. With the
parameter sets of Naud et al. 2008 (Biol. Cybern. 99:335-347) the model
fires tonically, adapts, or bursts. ``noise_sd_mV`` is the stationary s.d.
of the free potential (:math:`\sigma_I = \sigma_V g_L \sqrt{2 \tau_m/dt}`).
The model is outside the ALIF family.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from ._common import require_positive

__all__ = ["AdExParams", "simulate_adex"]


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
        require_positive(self, "C_pF", "g_L_nS", "delta_T_mV", "tau_w_ms", "t_ref_ms")
        if self.a_nS < 0 or self.b_pA < 0 or self.noise_sd_mV < 0:
            raise ValueError("a_nS, b_pA and noise_sd_mV must be >= 0")
        if self.v_peak <= self.V_T_mV:
            raise ValueError(f"V_peak ({self.v_peak} mV) must lie above V_T ({self.V_T_mV} mV)")
        if self.V_r_mV >= self.v_peak:
            raise ValueError(f"V_r ({self.V_r_mV} mV) must lie below V_peak ({self.v_peak} mV)")

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
