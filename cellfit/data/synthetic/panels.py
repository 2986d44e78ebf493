"""Panels of synthetic cells: the legacy ALIF and AdEx panels, and the held-out development and test panels."""

from __future__ import annotations

import numpy as np

from .cells import FIRST_SYNTHETIC_ID, SyntheticCell
from .models import AdExParams, ALIFParams

__all__ = ["alif_panel", "mismatch_panel"]


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
