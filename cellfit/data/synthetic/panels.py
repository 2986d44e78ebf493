"""Panels of synthetic cells: the legacy ALIF and AdEx panels, and the held-out development and test panels.

Legacy: :func:`alif_panel` and :func:`mismatch_panel` (the panels of FITTING.md).

Held-out discipline: fitting choices are tuned on :func:`development_panel`
and only reported on :func:`test_panel`. Each panel is a table of
:class:`CellSpec` (family, firing class, parameter ranges, rate target), one
cell per entry, parameters drawn from ``(seed, panel tag, index)``; every cell
is calibrated to the Noise 1 rate of its class (:data:`RATES`, mean over the
three epochs: RS 2-8 Hz, adapting 3-12 Hz, IB and LTS 4-15 Hz, FS 20-60 Hz).
FS and LTS cells are inhibitory, the others excitatory.

AdEx "reset f" places the reset at V_r = E_L + f (V_T - E_L): 0 is rest, 1 is V_T,
above 1 gives doublets and bursts (Naud et al. 2008, Biol. Cybern. 99:335-347).

Development panel (:data:`DEV_SPECS`, 18 cells, ids 991000001-991000018; 14-15 added in round 17, 16 after it,
17-18 in round 19):

=====  ========  ================================================================
model  class     ranges (ms, nS, pA, mS/cm², µm²)
=====  ========  ================================================================
alif   RS        tau_m 15-30, tau_adapt 100-300, d 0.02-0.06 (weak adaptation)
alif   adapting  tau_m 15-30, tau_adapt 100-400, d 0.2-0.4
alif   FS        tau_m 8-15, tau_adapt 50-150, d 0.03-0.1
adex   RS        tau_m 15-30, a 0.5-2, tau_w 80-250, b 5-30, reset 0.2-0.5
adex   RS        tau_m 8-15, a 1-3, b 40-80, reset 1.1-1.25 (doublets), E_L -62..-58
adex   adapting  tau_m 15-30, a 2-5, tau_w 150-400, b 60-120
adex   IB        tau_m 6-10, a 1.5-3, tau_w 100-200, b 60-120, reset 1.4-1.6 (Naud)
adex   FS (x2)   tau_m 6-12, a 0.05-0.5, tau_w 30-100, b 1-10, t_ref 1.5
hh     RS        Pospischil RS, area 10,000-15,000 µm², g_M 0.06-0.09, V_T -58..-55
hh     FS        Pospischil FS, g_leak 0.03-0.045, V_T -59..-56
hh     IB        Pospischil IB, g_CaL 0.165-0.175, E_leak -82..-78
hh     LTS       Pospischil LTS, g_CaT 0.35-0.45, E_leak -85..-80
hh     RS        g_M 0.2-0.3, tau_max 400-700, area 10,000-14,000 (very strong I_M)
hh     RS        g_Kd 2.5-3.5, V_T -56..-54.5, area 11,000-14,000 (weak delayed rectifier)
adex   RS        tau_m 18-25, a 0.5-1.5, tau_w 100-200, b 30-60, reset 0.85-0.95 (just below V_T)
adex   RS        tau_m 8-10, a 3-5, tau_w 200-400, b 50-70, reset 1.1-1.15, E_L -66..-64
adex   RS        tau_m 18-22, a 1-3, tau_w 400-600, b 20-50, reset 0.95-1.0, E_L -66..-64
=====  ========  ================================================================

Appending entries keeps the earlier cells of every draw (parameters from
``(seed, tag, index)``, noise from ``(seed, specimen id)``).

Test panel (:data:`TEST_SPECS`, 17 cells, ids 992000001-992000017): other
ranges and variants, so that the test measures generalisation, not a re-draw:

=====  ========  ================================================================
model  class     ranges
=====  ========  ================================================================
alif   adapting  tau_m 35-55, tau_adapt 400-900, d 0.15-0.35
alif   RS        tau_m 9-14, tau_adapt 20-45, d 0.01-0.04 (weak, fast adaptation)
alif   FS        tau_m 4-7, tau_adapt 20-50, d 0.05-0.12
alif   FS        tau_m 32-45, tau_adapt 150-300, d 0.1-0.2 (slow inhibitory)
adex   RS        tau_m 30-45, a 0-1, tau_w 50-100, b 0-10, reset 0-0.2 (tonic)
adex   RS        tau_m 10-18, a 1-3, tau_w 200-400, b 20-50, reset 1.0-1.1
adex   adapting  tau_m 20-35, a 6-10 (strong subthreshold coupling), tau_w 300-600, b 20-50
adex   adapting  tau_m 12-20, a 0.5-2, tau_w 80-150, b 120-200 (strong spike-triggered)
adex   IB        tau_m 15-25, a 1.5-3, tau_w 100-150, b 80-120, reset 1.3-1.6
adex   FS        tau_m 4-7, a 0-0.2, tau_w 20-50, b 0-5, t_ref 1
adex   FS        tau_m 12-18, a 0.5-1, tau_w 100-200, b 10-20 (adapting interneuron)
hh     RS        g_M 0.12-0.2, g_leak 0.04-0.08, tau_max 800-1200, area 15,000-25,000
hh     RS        V_T -54..-52, g_Kd 4-5, area 8,000-11,000
hh     FS        g_leak 0.05-0.07, V_T -60..-58, g_M 0.03-0.05
hh     FS        no I_M, g_Kd 10, g_leak 0.1-0.15 (ModelDB 123623 interneuron), 50-120 Hz
hh     IB        g_CaL 0.17-0.18, E_leak -80..-76, g_leak 0.015, area 20,000-26,000
hh     LTS       g_CaT 0.5-0.6, E_leak -82..-78, V_x -5..-2
=====  ========  ================================================================

``seed`` draws the parameters; the recorded noise comes from
``write_synthetic_cache(seed=...)`` and the specimen ids, which differ between
the panels. Write a panel with ``python -m cellfit.data synthetic --panel test --out DIR``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .cells import FIRST_SYNTHETIC_ID, SyntheticCell
from .models import POSPISCHIL, AdExParams, ALIFParams

__all__ = ["alif_panel", "mismatch_panel", "development_panel", "test_panel", "CellSpec", "DEV_SPECS",
           "TEST_SPECS", "RATES", "DEV_FIRST_ID", "TEST_FIRST_ID", "build_panel"]


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


# --------------------------------------------------------------------------
# held-out panels: development (tune on it) and test (report on it only)
# --------------------------------------------------------------------------
#: first specimen ids of the two held-out panels (disjoint from each other, from
#: alif_panel / mismatch_panel (990000001+, 990001001+) and the demo cell 990000000)
DEV_FIRST_ID = 991_000_001
TEST_FIRST_ID = 992_000_001
#: firing-rate targets (Hz, mean over the three Noise 1 epochs) by firing class
RATES = {"RS": (2.0, 8.0), "adapting": (3.0, 12.0), "IB": (4.0, 15.0), "LTS": (4.0, 15.0), "FS": (20.0, 60.0)}
_INHIBITORY = ("FS", "LTS")


@dataclasses.dataclass(frozen=True)
class CellSpec:
    """One cell of a held-out panel: family, firing class, parameter ranges, rate target.

    ``ranges`` maps parameter names to ``(lo, hi)``, drawn log-uniformly when
    ``lo > 0`` and uniformly otherwise; ``fixed`` sets parameters outright.
    Derived names: AdEx ``tau_m_ms`` (C = g_L tau_m) and ``reset_frac``
    (V_r = E_L + reset_frac (V_T - E_L): 0 resets to rest, 1 to V_T); HH
    ``preset`` (a key of :data:`~cellfit.data.synthetic.models.POSPISCHIL`) is the
    base that ranges and ``fixed`` override; ALIF ``span_mV`` (v_thresh - v_rest).
    """

    model: str
    firing_class: str
    ranges: dict
    fixed: dict = dataclasses.field(default_factory=dict)
    rate_hz: tuple | None = None
    label: str = ""

    @property
    def target(self) -> tuple:
        return self.rate_hz if self.rate_hz is not None else RATES[self.firing_class]


def _draw(rng: np.random.Generator, ranges: dict) -> dict:
    out = {}
    for name in sorted(ranges):  # sorted: the draws do not depend on the dict's order
        lo, hi = ranges[name]
        u = rng.uniform()
        out[name] = float(math.exp(math.log(lo) + u * math.log(hi / lo)) if lo > 0 else lo + u * (hi - lo))
    return out


def _params(spec: CellSpec, rng: np.random.Generator):
    v = dict(spec.fixed)
    v.update(_draw(rng, spec.ranges))
    if spec.model == "alif":
        span = v.pop("span_mV")
        return ALIFParams(**v, v_thresh_mV=v["v_rest_mV"] + span)
    if spec.model == "adex":
        tau_m, frac = v.pop("tau_m_ms"), v.pop("reset_frac")
        v["C_pF"] = v["g_L_nS"] * tau_m
        v["V_r_mV"] = v["E_L_mV"] + frac * (v["V_T_mV"] - v["E_L_mV"])
        return AdExParams(**v)
    base = POSPISCHIL[v.pop("preset")]
    return dataclasses.replace(base, **v)


def build_panel(specs: list[CellSpec], seed: int, first_id: int, tag: int) -> list[SyntheticCell]:
    """Cells of ``specs``: parameters drawn from ``(seed, tag, index)``, ids ``first_id + index``."""
    cells = []
    for i, spec in enumerate(specs):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(tag), i]))
        cells.append(SyntheticCell(model=spec.model, params=_params(spec, rng), specimen_id=first_id + i,
                                   cell_class="inhibitory" if spec.firing_class in _INHIBITORY else "excitatory",
                                   firing_class=spec.firing_class, target_rate_hz=spec.target))
    return cells


_ALIF = dict(arp_ms=2.0)
_NOISE = dict(noise_sd=(0.04, 0.08), bias=(-0.1, 0.15), v_rest_mV=(-75.0, -65.0), span_mV=(18.0, 28.0))
_ADEX_E = dict(E_L_mV=(-74.0, -65.0), V_T_mV=(-52.0, -48.0), delta_T_mV=(1.5, 2.5), g_L_nS=(6.0, 14.0),
               noise_sd_mV=(1.0, 2.0))
_ADEX_I = dict(E_L_mV=(-70.0, -62.0), V_T_mV=(-50.0, -46.0), delta_T_mV=(0.8, 1.5), g_L_nS=(8.0, 16.0),
               noise_sd_mV=(2.0, 3.0))
_BURST = dict(E_L_mV=(-62.0, -58.0), V_T_mV=(-51.0, -49.0), g_L_nS=(8.0, 18.0), noise_sd_mV=(1.0, 2.0))

#: the development panel: tune the fitting choices on these cells
DEV_SPECS = [
    CellSpec("alif", "RS", dict(tau_m_ms=(15.0, 30.0), tau_adapt_ms=(100.0, 300.0), adapt_scale=(0.02, 0.06), **_NOISE),
             _ALIF, label="weak adaptation"),
    CellSpec("alif", "adapting", dict(tau_m_ms=(15.0, 30.0), tau_adapt_ms=(100.0, 400.0), adapt_scale=(0.2, 0.4),
                                      **_NOISE), _ALIF, label="strong adaptation"),
    CellSpec("alif", "FS", dict(tau_m_ms=(8.0, 15.0), tau_adapt_ms=(50.0, 150.0), adapt_scale=(0.03, 0.1),
                                **dict(_NOISE, noise_sd=(0.08, 0.12))), _ALIF),
    CellSpec("adex", "RS", dict(tau_m_ms=(15.0, 30.0), a_nS=(0.5, 2.0), tau_w_ms=(80.0, 250.0), b_pA=(5.0, 30.0),
                                reset_frac=(0.2, 0.5), **_ADEX_E), dict(t_ref_ms=2.0)),
    CellSpec("adex", "RS", dict(tau_m_ms=(8.0, 15.0), a_nS=(1.0, 3.0), tau_w_ms=(150.0, 250.0), b_pA=(40.0, 80.0),
                                reset_frac=(1.1, 1.25), **_BURST), dict(delta_T_mV=2.0, t_ref_ms=2.0),
             label="reset above V_T: doublets"),
    CellSpec("adex", "adapting", dict(tau_m_ms=(15.0, 30.0), a_nS=(2.0, 5.0), tau_w_ms=(150.0, 400.0),
                                      b_pA=(60.0, 120.0), reset_frac=(0.2, 0.5), **_ADEX_E), dict(t_ref_ms=2.0)),
    CellSpec("adex", "IB", dict(tau_m_ms=(6.0, 10.0), a_nS=(1.5, 3.0), tau_w_ms=(100.0, 200.0), b_pA=(60.0, 120.0),
                                reset_frac=(1.4, 1.6), **_BURST), dict(delta_T_mV=2.0, t_ref_ms=2.0),
             label="fast bursting (Naud et al. 2008)"),
    CellSpec("adex", "FS", dict(tau_m_ms=(6.0, 12.0), a_nS=(0.05, 0.5), tau_w_ms=(30.0, 100.0), b_pA=(1.0, 10.0),
                                reset_frac=(0.4, 0.7), **_ADEX_I), dict(t_ref_ms=1.5)),
    CellSpec("adex", "FS", dict(tau_m_ms=(6.0, 12.0), a_nS=(0.05, 0.5), tau_w_ms=(30.0, 100.0), b_pA=(1.0, 10.0),
                                reset_frac=(0.4, 0.7), **_ADEX_I), dict(t_ref_ms=1.5)),
    CellSpec("hh", "RS", dict(area_um2=(10_000.0, 15_000.0), g_M_mS_cm2=(0.06, 0.09), V_T_mV=(-58.0, -55.0)),
             dict(preset="RS")),
    CellSpec("hh", "FS", dict(area_um2=(9_000.0, 12_000.0), g_leak_mS_cm2=(0.03, 0.045), V_T_mV=(-59.0, -56.0)),
             dict(preset="FS", noise_sd_mV=1.5)),
    CellSpec("hh", "IB", dict(g_CaL_mS_cm2=(0.165, 0.175), E_leak_mV=(-82.0, -78.0)), dict(preset="IB")),
    CellSpec("hh", "LTS", dict(g_CaT_mS_cm2=(0.35, 0.45), E_leak_mV=(-85.0, -80.0)), dict(preset="LTS")),
    # added in round 17 (entries 14-15; the first 13 cells of every draw are unchanged): RS cells whose plain
    # voltage fits explain under 0.5 of their voltage, below 0.7 with round 13's default (FITTING.md, round 17)
    CellSpec("hh", "RS", dict(area_um2=(10_000.0, 14_000.0), g_M_mS_cm2=(0.2, 0.3), tau_max_ms=(400.0, 700.0)),
             dict(preset="RS"), label="very strong, faster I_M"),
    CellSpec("hh", "RS", dict(area_um2=(11_000.0, 14_000.0), g_Kd_mS_cm2=(2.5, 3.5), V_T_mV=(-56.0, -54.5)),
             dict(preset="RS"), label="weak delayed rectifier"),
    # added after round 17 (entry 16): an AdEx RS cell with its reset just below V_T, between the low resets and
    # the doublets above (FITTING.md, after round 17)
    CellSpec("adex", "RS", dict(tau_m_ms=(18.0, 25.0), a_nS=(0.5, 1.5), tau_w_ms=(100.0, 200.0), b_pA=(30.0, 60.0),
                                reset_frac=(0.85, 0.95), **_ADEX_E), dict(t_ref_ms=2.0), label="reset just below V_T"),
    # added in round 19 (entries 17-18): AdEx RS cells with a reset near V_T and a slow subthreshold coupling, whose
    # plain voltage fits explain under 0.3 of their voltage (FITTING.md, round 19)
    CellSpec("adex", "RS", dict(tau_m_ms=(8.0, 10.0), a_nS=(3.0, 5.0), tau_w_ms=(200.0, 400.0), b_pA=(50.0, 70.0),
                                reset_frac=(1.1, 1.15), **dict(_BURST, E_L_mV=(-66.0, -64.0))),
             dict(delta_T_mV=2.0, t_ref_ms=2.0), label="fast membrane, reset just above V_T"),
    CellSpec("adex", "RS", dict(tau_m_ms=(18.0, 22.0), a_nS=(1.0, 3.0), tau_w_ms=(400.0, 600.0), b_pA=(20.0, 50.0),
                                reset_frac=(0.95, 1.0), **dict(_BURST, E_L_mV=(-66.0, -64.0))),
             dict(delta_T_mV=2.0, t_ref_ms=2.0), label="slow coupling, reset at V_T"),
]

#: the test panel: report on these cells, never tune on them (other ranges and variants)
TEST_SPECS = [
    CellSpec("alif", "adapting", dict(tau_m_ms=(35.0, 55.0), tau_adapt_ms=(400.0, 900.0), adapt_scale=(0.15, 0.35),
                                      **_NOISE), _ALIF, label="slow membrane, slow adaptation"),
    CellSpec("alif", "RS", dict(tau_m_ms=(9.0, 14.0), tau_adapt_ms=(20.0, 45.0), adapt_scale=(0.01, 0.04), **_NOISE),
             _ALIF, label="fast membrane, weak fast adaptation"),
    CellSpec("alif", "FS", dict(tau_m_ms=(4.0, 7.0), tau_adapt_ms=(20.0, 50.0), adapt_scale=(0.05, 0.12),
                                **dict(_NOISE, noise_sd=(0.08, 0.12))), _ALIF, label="very fast membrane"),
    CellSpec("alif", "FS", dict(tau_m_ms=(32.0, 45.0), tau_adapt_ms=(150.0, 300.0), adapt_scale=(0.1, 0.2),
                                **dict(_NOISE, noise_sd=(0.08, 0.12))), _ALIF, label="slow inhibitory"),
    CellSpec("adex", "RS", dict(tau_m_ms=(30.0, 45.0), a_nS=(0.0, 1.0), tau_w_ms=(50.0, 100.0), b_pA=(0.0, 10.0),
                                reset_frac=(0.0, 0.2), **_ADEX_E), dict(t_ref_ms=2.5), label="low reset, tonic"),
    CellSpec("adex", "RS", dict(tau_m_ms=(10.0, 18.0), a_nS=(1.0, 3.0), tau_w_ms=(200.0, 400.0), b_pA=(20.0, 50.0),
                                reset_frac=(1.0, 1.1), **dict(_BURST, E_L_mV=(-64.0, -60.0))),
             dict(delta_T_mV=2.0, t_ref_ms=2.0), label="reset at threshold"),
    CellSpec("adex", "adapting", dict(tau_m_ms=(20.0, 35.0), a_nS=(6.0, 10.0), tau_w_ms=(300.0, 600.0),
                                      b_pA=(20.0, 50.0), reset_frac=(0.3, 0.6), **_ADEX_E), dict(t_ref_ms=2.0),
             label="strong subthreshold coupling"),
    CellSpec("adex", "adapting", dict(tau_m_ms=(12.0, 20.0), a_nS=(0.5, 2.0), tau_w_ms=(80.0, 150.0),
                                      b_pA=(120.0, 200.0), reset_frac=(0.1, 0.4), **_ADEX_E), dict(t_ref_ms=2.0),
             label="strong spike-triggered current"),
    CellSpec("adex", "IB", dict(tau_m_ms=(15.0, 25.0), a_nS=(1.5, 3.0), tau_w_ms=(100.0, 150.0), b_pA=(80.0, 120.0),
                                reset_frac=(1.3, 1.6), **_BURST), dict(delta_T_mV=2.0, t_ref_ms=2.0),
             label="regular bursting (Naud et al. 2008)"),
    CellSpec("adex", "FS", dict(tau_m_ms=(4.0, 7.0), a_nS=(0.0, 0.2), tau_w_ms=(20.0, 50.0), b_pA=(0.0, 5.0),
                                reset_frac=(0.5, 0.8), **_ADEX_I), dict(t_ref_ms=1.0), label="fast membrane"),
    CellSpec("adex", "FS", dict(tau_m_ms=(12.0, 18.0), a_nS=(0.5, 1.0), tau_w_ms=(100.0, 200.0), b_pA=(10.0, 20.0),
                                reset_frac=(0.3, 0.5), **_ADEX_I), dict(t_ref_ms=1.5), label="adapting interneuron"),
    CellSpec("hh", "RS", dict(area_um2=(15_000.0, 25_000.0), g_M_mS_cm2=(0.12, 0.2), g_leak_mS_cm2=(0.04, 0.08),
                              tau_max_ms=(800.0, 1200.0)), dict(preset="RS"), label="strong I_M, leakier"),
    CellSpec("hh", "RS", dict(area_um2=(8_000.0, 11_000.0), V_T_mV=(-54.0, -52.0), g_Kd_mS_cm2=(4.0, 5.0)),
             dict(preset="RS"), label="higher threshold"),
    CellSpec("hh", "FS", dict(area_um2=(12_000.0, 16_000.0), g_leak_mS_cm2=(0.05, 0.07), V_T_mV=(-60.0, -58.0),
                              g_M_mS_cm2=(0.03, 0.05)), dict(preset="FS", noise_sd_mV=1.5),
             label="leakier, lower threshold"),
    CellSpec("hh", "FS", dict(area_um2=(12_000.0, 16_000.0), g_leak_mS_cm2=(0.1, 0.15), V_T_mV=(-57.0, -54.0)),
             dict(preset="FS", g_M_mS_cm2=0.0, g_Kd_mS_cm2=10.0, noise_sd_mV=2.0), rate_hz=(50.0, 120.0),
             label="no I_M, leaky, high rate (ModelDB 123623 interneuron)"),
    CellSpec("hh", "IB", dict(g_CaL_mS_cm2=(0.17, 0.18), E_leak_mV=(-80.0, -76.0), area_um2=(20_000.0, 26_000.0)),
             dict(preset="IB", g_leak_mS_cm2=0.015)),
    CellSpec("hh", "LTS", dict(g_CaT_mS_cm2=(0.5, 0.6), E_leak_mV=(-82.0, -78.0), V_x_mV=(-5.0, -2.0)),
             dict(preset="LTS")),
]


def development_panel(seed: int = 0, first_id: int = DEV_FIRST_ID) -> list[SyntheticCell]:
    """The development panel: one cell per entry of :data:`DEV_SPECS` (18 cells).

    Tune fitting choices on these cells only. ALIF (weakly and strongly
    adapting excitatory, fast-spiking inhibitory), AdEx (regular spiking with
    low, just-below-threshold and high reset, adapting, initial-burst IB after Naud et al. 2008, two
    fast-spiking) and Pospischil HH cells (three RS, FS, IB, LTS), each calibrated
    to its class's Noise 1 rate (:data:`RATES`). ``seed`` draws the
    parameters; the recorded noise comes from ``write_synthetic_cache(seed=...)``
    and the specimen ids ``first_id + index``.
    """
    return build_panel(DEV_SPECS, seed, first_id, tag=11)


def test_panel(seed: int = 0, first_id: int = TEST_FIRST_ID) -> list[SyntheticCell]:
    """The test panel: one cell per entry of :data:`TEST_SPECS` (17 cells); report on it, never tune on it.

    Other parameter ranges and variants than the development panel, and other
    parameter draws for the same ``seed``: ALIF cells with other time constants
    (slow and very fast membranes, weak fast and strong slow adaptation) for
    parameter recovery, AdEx cells of every firing class (tonic with reset at
    rest, reset at threshold, strong subthreshold coupling, strong
    spike-triggered current, regular bursting, two fast-spiking) and Pospischil
    HH cells of all four classes plus a leaky fast-spiking cell without I_M at
    50-120 Hz.
    """
    return build_panel(TEST_SPECS, seed, first_id, tag=12)


test_panel.__test__ = False  # a panel, not a pytest test (pytest collects imported names starting with "test")
