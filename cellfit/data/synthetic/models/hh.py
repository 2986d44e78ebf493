r"""The ``"hh"`` generator model: minimal Hodgkin-Huxley cortical neurons (Pospischil et al. 2008).

Source: M. Pospischil, M. Toledo-Rodriguez, C. Monier, Z. Piwkowska, T. Bal,
Y. Frégnac, H. Markram and A. Destexhe (2008), *Minimal Hodgkin-Huxley type
models for different classes of cortical and thalamic neurons*, Biol. Cybern.
99:427-441. The kinetics are those of the authors' NEURON code (ModelDB
123623: ``HH_traub.mod``, ``IM_cortex.mod``, ``IL_gutnick.mod``,
``IT_huguenard.mod``, all at 36 degC); :data:`POSPISCHIL` holds the paper's
fitted regular-spiking (RS), fast-spiking (FS), intrinsically bursting (IB)
and low-threshold-spiking (LTS) cells (as tabulated in PySONIC,
``neurons/cortical.py``).

One compartment of area :math:`A`; densities per cm² (C in µF/cm², g in
mS/cm², V in mV, t in ms, currents in µA/cm²):

.. math::

    C \dot V = &-g_{leak}(V - E_{leak}) - g_{Na} m^3 h (V - E_{Na}) - g_{Kd} n^4 (V - E_K)
               - g_M p (V - E_K)\\
               &- g_{CaL} q^2 r (V - E_{Ca}) - g_{CaT} s_\infty(V)^2 u (V - E_{Ca})
               + (I_{stim} + \sigma_I \xi) / A

Gates obey :math:`\dot x = \alpha_x (1 - x) - \beta_x x` (rates in 1/ms), with
:math:`u_T = V - V_T` for the spike currents (Traub & Miles; :math:`V_T`
sets the threshold):

- :math:`I_{Na}`: :math:`\alpha_m = 0.32 (13 - u_T) / (e^{(13 - u_T)/4} - 1)`,
  :math:`\beta_m = 0.28 (u_T - 40) / (e^{(u_T - 40)/5} - 1)`,
  :math:`\alpha_h = 0.128 e^{(17 - u_T)/18}`, :math:`\beta_h = 4 / (1 + e^{(40 - u_T)/5})`;
- :math:`I_{Kd}`: :math:`\alpha_n = 0.032 (15 - u_T) / (e^{(15 - u_T)/5} - 1)`,
  :math:`\beta_n = 0.5 e^{(10 - u_T)/40}`;
- :math:`I_M` (slow, spike-frequency adaptation): :math:`p_\infty = 1 / (1 + e^{-(V + 35)/10})`,
  :math:`\tau_p = \tau_{max} / (3.3 e^{(V + 35)/20} + e^{-(V + 35)/20})`;
- :math:`I_{CaL}` (high threshold, IB cells): :math:`\alpha_q = 0.055 (-27 - V) / (e^{(-27 - V)/3.8} - 1)`,
  :math:`\beta_q = 0.94 e^{(-75 - V)/17}`, :math:`\alpha_r = 0.000457 e^{(-13 - V)/50}`,
  :math:`\beta_r = 0.0065 / (e^{(-15 - V)/28} + 1)`;
- :math:`I_{CaT}` (low threshold, LTS cells; shifted by :math:`V_x`, :math:`w = V + V_x`):
  :math:`s_\infty = 1 / (1 + e^{-(w + 57)/6.2})` (instantaneous),
  :math:`u_\infty = 1 / (1 + e^{(w + 81)/4})`,
  :math:`\tau_u = (30.8 + (211.4 + e^{(w + 113.2)/5}) / (1 + e^{(w + 84)/3.2})) / 3.7`.

**Integration** (:func:`simulate_hh`): exponential Euler (Rush-Larsen) at a
sub-step :math:`h` = the file's sampling interval / ``n_sub`` with
:math:`h \le` :data:`MAX_SUBSTEP_MS`: each gate :math:`x \leftarrow x_\infty + (x - x_\infty) e^{-h/\tau_x}`
with V frozen, then :math:`V \leftarrow V_\infty + (V - V_\infty) e^{-h g_{tot}/C}`
with the gates frozen (:math:`g_{tot}` the total conductance,
:math:`V_\infty = (\sum g_i E_i + I)/g_{tot}`). Both updates are exact for
frozen coefficients, so the scheme is stable for any h. Stimulus and noise are
held over each sample; the recorded voltage is V at the end of each sample.
Vectorised over rows (cells x sweeps x epochs) with numpy.

**Intrinsic noise**: white current noise per sample, s.d.
:math:`\sigma_I = \sigma_V\, g_{in} \sqrt{2 \tau_{eff} / dt}` with
:math:`g_{in} = A\, g_{chord}` the input conductance and
:math:`\tau_{eff} = C / g_{chord}` at rest, so ``noise_sd_mV``
(:math:`\sigma_V`) is the s.d. of the free potential of the linearised cell.

**Spikes** are real action potentials in the voltage (AllenSDK's detector
finds them). The model's own spike time (:func:`spike_onsets`) is the onset
of each upstroke: for every upward crossing of :data:`SPIKE_DETECT_MV`, the
first sample of the run of samples just before it over which dV/dt (sample
differences) stays at or above :data:`SPIKE_ONSET_DVDT` (20 mV/ms, the dv/dt
cutoff of AllenSDK's putative-spike detection).

**Rest and time constants** (:func:`resting_state`): the resting potential is
the lowest zero with positive slope of the steady-state current
:math:`I_{ss}(V) = \sum g_i x_\infty(V) (V - E_i)`; every epoch starts there
with the gates at steady state. ``tau_m_ms`` = :math:`C/g_{leak}` (passive);
``tau_eff_ms`` = :math:`C/g_{chord}` with :math:`g_{chord} = g_{leak} + \sum_i g_i x_\infty(V_{rest})`
(all conductances open at rest, gates frozen: the response to fast inputs);
``tau_slope_ms`` = :math:`C / (dI_{ss}/dV)` (gates following: slow inputs).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Sequence

import numpy as np
from scipy import optimize

from ._common import require_positive

__all__ = [
    "HHParams",
    "POSPISCHIL",
    "MAX_SUBSTEP_MS",
    "SPIKE_DETECT_MV",
    "SPIKE_ONSET_DVDT",
    "simulate_hh",
    "spike_onsets",
    "resting_state",
    "n_substeps",
]

#: largest integration sub-step, ms
MAX_SUBSTEP_MS = 0.025
#: an action potential is an upward crossing of this voltage, mV
SPIKE_DETECT_MV = -20.0
#: dV/dt at which an upstroke starts (the spike time), mV/ms
SPIKE_ONSET_DVDT = 20.0


@dataclasses.dataclass(frozen=True)
class HHParams:
    """Parameters of the ``"hh"`` generator model (see module docstring).

    Units: area µm², capacitance µF/cm², conductances mS/cm², potentials mV,
    ``tau_max_ms`` ms (peak time constant of I_M). ``g_CaL`` (IB) and
    ``g_CaT`` (LTS) are 0 in RS and FS cells; ``V_x_mV`` only matters with
    ``g_CaT > 0``. The defaults are the paper's fitted RS cell.
    """

    area_um2: float = 11_840.0
    C_uF_cm2: float = 1.0
    g_leak_mS_cm2: float = 0.0205
    E_leak_mV: float = -70.3
    g_Na_mS_cm2: float = 56.0
    g_Kd_mS_cm2: float = 6.0
    V_T_mV: float = -56.2
    g_M_mS_cm2: float = 0.075
    tau_max_ms: float = 608.0
    g_CaL_mS_cm2: float = 0.0
    g_CaT_mS_cm2: float = 0.0
    V_x_mV: float = -7.0
    E_Na_mV: float = 50.0
    E_K_mV: float = -90.0
    E_Ca_mV: float = 120.0
    noise_sd_mV: float = 1.0

    def __post_init__(self) -> None:
        require_positive(self, "area_um2", "C_uF_cm2", "g_leak_mS_cm2", "g_Na_mS_cm2", "g_Kd_mS_cm2",
                         "tau_max_ms")
        for name in ("g_M_mS_cm2", "g_CaL_mS_cm2", "g_CaT_mS_cm2", "noise_sd_mV"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"HHParams.{name} must be >= 0, got {getattr(self, name)}")
        if not (self.E_K_mV < self.E_leak_mV < self.E_Na_mV):
            raise ValueError(f"HHParams needs E_K < E_leak < E_Na, got {self.E_K_mV}, {self.E_leak_mV}, "
                             f"{self.E_Na_mV} mV")

    @property
    def area_cm2(self) -> float:
        return self.area_um2 * 1e-8

    @property
    def C_pF(self) -> float:
        """Total membrane capacitance, pF."""
        return self.C_uF_cm2 * self.area_cm2 * 1e6

    @property
    def g_leak_nS(self) -> float:
        """Total leak conductance, nS."""
        return self.g_leak_mS_cm2 * self.area_cm2 * 1e6

    @property
    def tau_m_ms(self) -> float:
        """Passive membrane time constant C / g_leak, ms."""
        return self.C_uF_cm2 / self.g_leak_mS_cm2


#: the paper's fitted cells (Pospischil et al. 2008; values as tabulated in PySONIC)
POSPISCHIL = {
    "RS": HHParams(),
    "FS": HHParams(area_um2=10_170.0, g_leak_mS_cm2=0.038, E_leak_mV=-70.4, g_Na_mS_cm2=58.0,
                   g_Kd_mS_cm2=3.9, V_T_mV=-57.9, g_M_mS_cm2=0.0787, tau_max_ms=502.0),
    "IB": HHParams(area_um2=28_950.0, g_leak_mS_cm2=0.01, E_leak_mV=-70.0, g_Na_mS_cm2=50.0,
                   g_Kd_mS_cm2=5.0, V_T_mV=-56.2, g_M_mS_cm2=0.03, tau_max_ms=608.0, g_CaL_mS_cm2=0.1),
    "LTS": HHParams(area_um2=25_000.0, g_leak_mS_cm2=0.019, E_leak_mV=-50.0, g_Na_mS_cm2=50.0,
                    g_Kd_mS_cm2=4.0, V_T_mV=-50.0, g_M_mS_cm2=0.028, tau_max_ms=4000.0, g_CaT_mS_cm2=0.4,
                    V_x_mV=-7.0),
}


# --------------------------------------------------------------------------
# kinetics (vectorised; V and the per-row parameters are arrays or floats)
# --------------------------------------------------------------------------
def _trap(z):
    """z / (exp(z) - 1), 1 at z = 0 (the factor of the rates written x / (exp(x / y) - 1))."""
    em1 = np.expm1(z)
    if em1.all():  # only z == 0 exactly gives 0 here (expm1 is exact near 0)
        return z / em1
    return np.divide(z, em1, out=np.ones_like(z), where=em1 != 0.0)


def _vtrap(x, y):
    """x / (exp(x / y) - 1), continuous at x = 0 (value y)."""
    return y * _trap(np.asarray(x / y, dtype=np.float64))


def _spike_rates(v, v_t):
    """(alpha, beta) of m, h, n in 1/ms."""
    u = v - v_t
    return (0.32 * _vtrap(13.0 - u, 4.0), 0.28 * _vtrap(u - 40.0, 5.0),
            0.128 * np.exp((17.0 - u) / 18.0), 4.0 / (1.0 + np.exp((40.0 - u) / 5.0)),
            0.032 * _vtrap(15.0 - u, 5.0), 0.5 * np.exp((10.0 - u) / 40.0))


def _m_current(v, tau_max):
    """(p_inf, tau_p) of I_M."""
    x = np.exp((v + 35.0) / 20.0)
    return 1.0 / (1.0 + np.exp(-(v + 35.0) / 10.0)), tau_max / (3.3 * x + 1.0 / x)


def _l_rates(v):
    """(alpha, beta) of q and r (I_CaL), 1/ms."""
    return (0.055 * _vtrap(-27.0 - v, 3.8), 0.94 * np.exp((-75.0 - v) / 17.0),
            0.000457 * np.exp((-13.0 - v) / 50.0), 0.0065 / (np.exp((-15.0 - v) / 28.0) + 1.0))


def _t_gates(v, v_x):
    """(s_inf, u_inf, tau_u) of I_CaT."""
    w = v + v_x
    tau_u = (30.8 + (211.4 + np.exp((w + 113.2) / 5.0)) / (1.0 + np.exp((w + 84.0) / 3.2))) / 3.7
    return 1.0 / (1.0 + np.exp(-(w + 57.0) / 6.2)), 1.0 / (1.0 + np.exp((w + 81.0) / 4.0)), tau_u


def _steady_gates(p: HHParams, v) -> dict:
    am, bm, ah, bh, an, bn = _spike_rates(v, p.V_T_mV)
    aq, bq, ar, br = _l_rates(v)
    p_inf, _ = _m_current(v, p.tau_max_ms)
    s_inf, u_inf, _ = _t_gates(v, p.V_x_mV)
    return dict(m=am / (am + bm), h=ah / (ah + bh), n=an / (an + bn), p=p_inf, q=aq / (aq + bq),
                r=ar / (ar + br), s=s_inf, u=u_inf)


def _conductances(p: HHParams, x: dict) -> tuple:
    """Per-current conductances (mS/cm²) and their reversal potentials for gate values ``x``."""
    g = (p.g_leak_mS_cm2 + 0.0 * x["m"], p.g_Na_mS_cm2 * x["m"] ** 3 * x["h"], p.g_Kd_mS_cm2 * x["n"] ** 4,
         p.g_M_mS_cm2 * x["p"], p.g_CaL_mS_cm2 * x["q"] ** 2 * x["r"], p.g_CaT_mS_cm2 * x["s"] ** 2 * x["u"])
    e = (p.E_leak_mV, p.E_Na_mV, p.E_K_mV, p.E_K_mV, p.E_Ca_mV, p.E_Ca_mV)
    return g, e


def _steady_current(p: HHParams, v):
    """Steady-state ionic current I_ss(V), µA/cm² (outward positive)."""
    g, e = _conductances(p, _steady_gates(p, v))
    return sum(gi * (v - ei) for gi, ei in zip(g, e))


@functools.lru_cache(maxsize=256)
def resting_state(p: HHParams) -> dict:
    """Resting potential, gates, chord/slope conductances and time constants of ``p`` (see module docstring).

    Returns a dict with ``v_rest_mV``, ``gates`` (name -> value), ``g_chord_mS_cm2``,
    ``g_slope_mS_cm2``, ``tau_eff_ms``, ``tau_slope_ms``, ``input_resistance_MOhm``
    (DC, from the slope), ``g_in_nS`` (chord, total) and the gating time constants at rest
    (``tau_M_rest_ms``, ``tau_CaL_inactivation_rest_ms``, ``tau_CaT_inactivation_rest_ms``).
    ValueError when there is no stable rest between -120 and -30 mV.
    """
    grid = np.arange(-120.0, -30.0, 0.05)
    i_ss = _steady_current(p, grid)
    up = np.flatnonzero((i_ss[:-1] < 0) & (i_ss[1:] >= 0))
    if up.size == 0:
        raise ValueError(f"{p}: no resting state between -120 and -30 mV (the cell fires on its own); "
                         "lower E_leak_mV or raise g_leak_mS_cm2")
    k = int(up[0])
    v_rest = float(optimize.brentq(lambda v: float(_steady_current(p, v)), grid[k], grid[k + 1], xtol=1e-10))
    gates = {k_: float(v_) for k_, v_ in _steady_gates(p, v_rest).items()}
    g, _ = _conductances(p, gates)
    g_chord = float(sum(g))
    dv = 1e-3
    g_slope = float((_steady_current(p, v_rest + dv) - _steady_current(p, v_rest - dv)) / (2 * dv))
    _, tau_p = _m_current(v_rest, p.tau_max_ms)
    aq, bq, ar, br = _l_rates(v_rest)
    _, _, tau_u = _t_gates(v_rest, p.V_x_mV)
    return dict(v_rest_mV=v_rest, gates=gates, g_chord_mS_cm2=g_chord, g_slope_mS_cm2=g_slope,
                tau_eff_ms=p.C_uF_cm2 / g_chord, tau_slope_ms=p.C_uF_cm2 / g_slope,
                g_in_nS=g_chord * p.area_cm2 * 1e6,
                input_resistance_MOhm=1e3 / (g_slope * p.area_cm2 * 1e6),
                tau_M_rest_ms=float(tau_p), tau_CaL_inactivation_rest_ms=float(1.0 / (ar + br)),
                tau_CaT_inactivation_rest_ms=float(tau_u))


def n_substeps(dt_ms: float) -> int:
    """Sub-steps per sample so that the sub-step is at most :data:`MAX_SUBSTEP_MS`."""
    return max(1, int(math.ceil(dt_ms / MAX_SUBSTEP_MS - 1e-9)))


# --------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------
def simulate_hh(inputs_pA: np.ndarray, dt_ms: float, p: HHParams | Sequence[HHParams],
                n_sub: int | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Exponential-Euler simulation of the ``"hh"`` model for each row of ``inputs_pA`` (B, n), in pA.

    Every row starts at its cell's resting state (:func:`resting_state`).
    ``p``: one parameter set for all rows or one per row; ``n_sub`` sub-steps
    per sample (default :func:`n_substeps`). Returns the voltage (B, n) in mV
    (the value at the end of each sample) and, per row, the spike onset
    samples (:func:`spike_onsets`).
    """
    inputs_pA = np.asarray(inputs_pA, dtype=np.float64)
    n_rows, n = inputs_pA.shape
    ps = [p] * n_rows if isinstance(p, HHParams) else list(p)
    if len(ps) != n_rows:
        raise ValueError(f"{len(ps)} parameter sets for {n_rows} rows")
    n_sub = n_substeps(dt_ms) if n_sub is None else int(n_sub)
    h = dt_ms / n_sub

    def col(name):
        return np.array([getattr(q, name) for q in ps], dtype=np.float64)

    area_cm2, cap = col("area_um2") * 1e-8, col("C_uF_cm2")
    g_leak, e_leak, g_na, g_kd, v_t = (col(k) for k in ("g_leak_mS_cm2", "E_leak_mV", "g_Na_mS_cm2",
                                                          "g_Kd_mS_cm2", "V_T_mV"))
    g_m, tau_max, g_cal, g_cat, v_x = (col(k) for k in ("g_M_mS_cm2", "tau_max_ms", "g_CaL_mS_cm2",
                                                          "g_CaT_mS_cm2", "V_x_mV"))
    e_na, e_k, e_ca = col("E_Na_mV"), col("E_K_mV"), col("E_Ca_mV")
    use_l, use_t = bool(np.any(g_cal > 0)), bool(np.any(g_cat > 0))
    # stimulus and noise in µA/cm², one column per sample (contiguous per step)
    drive = np.ascontiguousarray((inputs_pA * (1e-6 / area_cm2)[:, None]).T)
    rest = [resting_state(q) for q in ps]
    v = np.array([r["v_rest_mV"] for r in rest])
    x = np.array([[r["gates"][k] for r in rest] for k in "mhn"])  # (3, B): m, h, n
    pp, q, r, u = (np.array([rs["gates"][k] for rs in rest]) for k in "pqru")
    # every exponent of the rate functions is affine in V: z_k = slope_k * V + offset_k (per row),
    # so one np.exp per step evaluates them all (same functions as _spike_rates, _m_current, ...)
    one = np.ones(n_rows)
    terms = [(-1 / 4, (13 + v_t) / 4), (1 / 5, -(40 + v_t) / 5), (-1 / 5, (15 + v_t) / 5),  # vtrap: am, bm, an
             (-1 / 18, (17 + v_t) / 18), (-1 / 40, (10 + v_t) / 40), (-1 / 5, (40 + v_t) / 5),  # ah, bn, bh
             (-1 / 10, -3.5 * one), (1 / 20, 1.75 * one)]  # p_inf, tau_p
    if use_l:  # aq (vtrap), bq, ar, br
        terms += [(-1 / 3.8, -27 / 3.8 * one), (-1 / 17, -75 / 17 * one), (-1 / 50, -13 / 50 * one),
                  (-1 / 28, -15 / 28 * one)]
    if use_t:  # s_inf, u_inf, the two exponentials of tau_u (w = V + V_x)
        terms += [(-1 / 6.2, -(57 + v_x) / 6.2), (1 / 4, (81 + v_x) / 4), (1 / 5, (113.2 + v_x) / 5),
                  (1 / 3.2, (84 + v_x) / 3.2)]
    slope = np.array([a for a, _ in terms])[:, None]
    offset = np.stack([b for _, b in terms])
    trap_coef = np.array([0.32 * 4, 0.28 * 5, 0.032 * 5])[:, None]
    z, e = np.empty_like(offset), np.empty_like(offset)
    alpha, beta = np.empty((3, n_rows)), np.empty((3, n_rows))
    o_t = 12 if use_l else 8
    neg_h_over_c, neg_h_over_tau_max = -h / cap, -h / tau_max
    leak_num = g_leak * e_leak
    exp = np.exp
    out = np.empty((n, n_rows))
    for t in range(n):
        i_t = drive[t]
        for _ in range(n_sub):
            np.multiply(slope, v, out=z)
            z += offset
            np.exp(z, out=e)
            alpha[0], beta[0], alpha[2] = _trap(z[0:3]) * trap_coef
            alpha[1], beta[2], beta[1] = 0.128 * e[3], 0.5 * e[4], 4.0 / (1.0 + e[5])
            s = alpha + beta
            x_inf = alpha / s
            x = x_inf + (x - x_inf) * exp(-h * s)  # m, h, n
            p_inf = 1.0 / (1.0 + e[6])
            pp = p_inf + (pp - p_inf) * exp(neg_h_over_tau_max * (3.3 * e[7] + 1.0 / e[7]))
            n2 = x[2] * x[2]
            g1 = g_na * (x[0] * x[0] * x[0] * x[1])
            g2 = g_kd * (n2 * n2) + g_m * pp
            g_tot = g_leak + g1 + g2
            num = leak_num + g1 * e_na + g2 * e_k + i_t
            if use_l:
                aq, bq, ar, br = 0.055 * 3.8 * _trap(z[8]), 0.94 * e[9], 0.000457 * e[10], 0.0065 / (e[11] + 1.0)
                s, s2 = aq + bq, ar + br
                x_inf, x2_inf = aq / s, ar / s2
                q = x_inf + (q - x_inf) * exp(-h * s)
                r = x2_inf + (r - x2_inf) * exp(-h * s2)
                g3 = g_cal * (q * q * r)
                g_tot = g_tot + g3
                num = num + g3 * e_ca
            if use_t:
                s_inf, u_inf = 1.0 / (1.0 + e[o_t]), 1.0 / (1.0 + e[o_t + 1])
                tau_u = (30.8 + (211.4 + e[o_t + 2]) / (1.0 + e[o_t + 3])) / 3.7
                u = u_inf + (u - u_inf) * exp(-h / tau_u)
                g3 = g_cat * (s_inf * s_inf * u)
                g_tot = g_tot + g3
                num = num + g3 * e_ca
            v_inf = num / g_tot
            v = v_inf + (v - v_inf) * exp(neg_h_over_c * g_tot)
        out[t] = v
    volts = out.T.copy()
    return volts, spike_onsets(volts, dt_ms)


def spike_onsets(volts: np.ndarray, dt_ms: float) -> list[np.ndarray]:
    """Spike onset samples of each row of ``volts`` (B, n) mV (see module docstring).

    For each upward crossing c of :data:`SPIKE_DETECT_MV` (``v[c-1] < -20 <= v[c]``):
    the onset is ``j + 1`` with ``j`` the last index before c at which
    ``(v[j+1] - v[j]) / dt < SPIKE_ONSET_DVDT``.
    """
    volts = np.atleast_2d(np.asarray(volts, dtype=np.float64))
    out = []
    for v in volts:
        above = v >= SPIKE_DETECT_MV
        cross = np.flatnonzero(above[1:] & ~above[:-1]) + 1
        if cross.size == 0:
            out.append(np.zeros(0, dtype=np.int64))
            continue
        slow = np.diff(v) < SPIKE_ONSET_DVDT * dt_ms
        last_slow = np.maximum.accumulate(np.where(slow, np.arange(slow.size), -1))
        out.append((last_slow[cross - 1] + 1).astype(np.int64))
    return out
