r"""The ``"alif"`` generator model: the exact ALIF equations, in normalised units.

Rest 0, base threshold 1, integrated at the file's sampling interval ``dt``:

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
``v_rest + V (v_thresh - v_rest)`` mV. These are the equations the fitted
model uses, so ALIF cells are the parameter-recovery checks.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import signal

from ._common import require_positive

__all__ = ["ALIFParams", "simulate_alif"]


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
        require_positive(self, "tau_m_ms", "tau_adapt_ms", "arp_ms")
        if self.adapt_scale < 0 or self.noise_sd < 0:
            raise ValueError("adapt_scale and noise_sd must be >= 0")
        if self.v_thresh_mV <= self.v_rest_mV:
            raise ValueError("v_thresh_mV must lie above v_rest_mV")


def simulate_alif(inputs: np.ndarray, dt_ms: float, p: ALIFParams, v0: float = 0.0,
                  chunk: int = 2048) -> tuple[np.ndarray, list[np.ndarray]]:
    """Exact ALIF simulation (module docstring) of each row of ``inputs``.

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
