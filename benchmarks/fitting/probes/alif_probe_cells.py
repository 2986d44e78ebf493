"""Write probe cells next to test-panel families (round 7 on: ALIF families; after round 25: HH IB).

Usage::

    python benchmarks/fitting/probes/alif_probe_cells.py slow OUT_CACHE
    python benchmarks/fitting/probes/alif_probe_cells.py fast OUT_CACHE
    python benchmarks/fitting/panel_eval.py OUT_CACHE rows.jsonl --label probe_slow --variant spike_init3
    python benchmarks/fitting/probes/alif_probe_cells.py fast OUT_CACHE --seed 81   # another draw (round 23)
    python benchmarks/fitting/probes/alif_probe_cells.py fs_slow OUT_CACHE          # after round 24 (--seed 83: a second draw)
    python benchmarks/fitting/probes/alif_probe_cells.py hh_ib OUT_CACHE            # after round 25 (seed 84)
    python benchmarks/fitting/probes/alif_probe_cells.py rs_weak OUT_CACHE          # after round 26 (seed 87)
    python benchmarks/fitting/probes/alif_probe_cells.py hh_lts OUT_CACHE           # after round 43 (seed 201)
    python benchmarks/fitting/probes/alif_probe_cells.py adex_rb OUT_CACHE          # after round 44 (seed 203)

``slow``: six cells (ids 995000011-016, seed 78) with slow adaptation, next to the test panel's "slow
membrane, slow adaptation" family (tau_m 20-34 ms instead of 35-55, tau_adapt 350-1000 ms instead of
400-900, adapt_scale 0.1-0.25 instead of 0.15-0.35). ``fast``: six cells (ids 995000021-026, seed 79) with
weak, fast adaptation, next to the test panel's "fast membrane, weak fast adaptation" and "very fast
membrane" families (three with tau_m 12-18 ms, tau_adapt 30-70 ms, adapt_scale 0.02-0.05; three with
tau_m 5-9 ms, tau_adapt 15-40 ms, adapt_scale 0.04-0.1). The development panels' ALIF cells adapt with
tau_adapt 50-400 ms only; the test draws showed tau_adapt missed in these ranges, with intervals that held
the truth on about half of the test cells (FITTING.md, round 7). ``fs_slow`` (after round 24): six fast-spiking cells
(ids 995000031-036, seed 82) next to the test panel's "slow inhibitory" family (tau_m 25-40 ms instead of 32-45,
tau_adapt 120-400 ms instead of 150-300, adapt_scale 0.08-0.2 instead of 0.1-0.2), whose tau_adapt intervals
ended just short of the truth on four used test draws (FITTING.md, round 23). ``hh_ib`` (after round 25): six
Pospischil IB cells (ids 995000041-046, seed 84) next to the test panel's HH IB family (area 18,000-24,000 µm² instead
of 20,000-26,000, g_leak 0.013-0.02 mS/cm² instead of 0.015, g_CaL 0.172-0.185 instead of 0.17-0.18, E_leak -80..-74
instead of -80..-76; the development panel's HH IB cells keep the preset's 28,950 µm² and 0.01 mS/cm²), whose fits
fire about 0.63 of the cell's held-out rate on the used test draws while the development ones fire 0.90. ``rs_weak``
(after round 26): six cells (ids 995000051-056, seed 87) next to the test panel's "weak, fast adaptation" RS family
(tau_m 8-13 ms instead of 9-14, tau_adapt 18-40 ms instead of 20-45, adapt_scale 0.015-0.045 instead of 0.01-0.04;
``fast``'s RS cells adapt slower, 30-70 ms), whose tau_adapt intervals started above the truth on five of the six used
test draws 56-61. ``hh_lts`` (after round 43): six Pospischil LTS cells (ids 995000061-066, seed 201) next to the
test panel's HH LTS family (g_CaT 0.45-0.56 mS/cm² instead of 0.5-0.6, E_leak -84..-79 mV instead of -82..-78, V_x
-6.5..-3 mV instead of -5..-2; the development panel's HH LTS cells have g_CaT 0.35-0.45 and the preset's V_x of -7),
whose fits kept after-spike variants on most used test draws where the development ones kept ``alif_sub``.
``adex_rb`` (after round 44): six AdEx regular-bursting cells (ids 995000071-076, seed 203) next to the test panel's
AdEx IB family (tau_m 14-23 ms instead of 15-25, tau_w 100-170 ms instead of 100-150, b 70-120 pA instead of 80-120,
reset_frac 1.25-1.55 instead of 1.3-1.6; the development panel's AdEx IB cells burst fast, tau_m 6-10 ms), which no
candidate predicted above 0.7 on used test draws 113-115.
These cells are development data: a
remedy is chosen on them and on the development panels, then checked on a fresh test draw.
"""

from __future__ import annotations

import argparse

from cellfit.data.synthetic.allen_format import write_synthetic_cache
from cellfit.data.synthetic.panels import _ALIF, _BURST, _NOISE, CellSpec, build_panel

SLOW = CellSpec("alif", "adapting", dict(tau_m_ms=(20.0, 34.0), tau_adapt_ms=(350.0, 1000.0),
                                         adapt_scale=(0.1, 0.25), **_NOISE),
                _ALIF, label="slow adaptation (probe range)")
FAST_RS = CellSpec("alif", "RS", dict(tau_m_ms=(12.0, 18.0), tau_adapt_ms=(30.0, 70.0), adapt_scale=(0.02, 0.05),
                                      **_NOISE), _ALIF, label="weak fast adaptation (probe range)")
FAST_FS = CellSpec("alif", "FS", dict(tau_m_ms=(5.0, 9.0), tau_adapt_ms=(15.0, 40.0), adapt_scale=(0.04, 0.1),
                                      **dict(_NOISE, noise_sd=(0.08, 0.12))), _ALIF,
                   label="fast membrane (probe range)")
FS_SLOW = CellSpec("alif", "FS", dict(tau_m_ms=(25.0, 40.0), tau_adapt_ms=(120.0, 400.0), adapt_scale=(0.08, 0.2),
                                      **dict(_NOISE, noise_sd=(0.08, 0.12))), _ALIF,
                   label="slow inhibitory (probe range)")
HH_IB = CellSpec("hh", "IB", dict(g_CaL_mS_cm2=(0.172, 0.185), E_leak_mV=(-80.0, -74.0), area_um2=(18_000.0, 24_000.0),
                                   g_leak_mS_cm2=(0.013, 0.02)), dict(preset="IB"), label="HH IB (probe range)")
RS_WEAK = CellSpec("alif", "RS", dict(tau_m_ms=(8.0, 13.0), tau_adapt_ms=(18.0, 40.0), adapt_scale=(0.015, 0.045),
                                      **_NOISE), _ALIF, label="weak fast adaptation, faster (probe range)")
HH_LTS = CellSpec("hh", "LTS", dict(g_CaT_mS_cm2=(0.45, 0.56), E_leak_mV=(-84.0, -79.0), V_x_mV=(-6.5, -3.0)),
                  dict(preset="LTS"), label="HH LTS (probe range)")
ADEX_RB = CellSpec("adex", "IB", dict(tau_m_ms=(14.0, 23.0), a_nS=(1.5, 3.0), tau_w_ms=(100.0, 170.0),
                                      b_pA=(70.0, 120.0), reset_frac=(1.25, 1.55), **_BURST),
                   dict(delta_T_mV=2.0, t_ref_ms=2.0), label="AdEx regular bursting (probe range)")
#: kind -> (specs, parameter and recording seed, first id, tag)
KINDS = {"slow": ([SLOW] * 6, 78, 995000011, 98), "fast": ([FAST_RS] * 3 + [FAST_FS] * 3, 79, 995000021, 97),
         "fs_slow": ([FS_SLOW] * 6, 82, 995000031, 96), "hh_ib": ([HH_IB] * 6, 84, 995000041, 95),
         "rs_weak": ([RS_WEAK] * 6, 87, 995000051, 94), "hh_lts": ([HH_LTS] * 6, 201, 995000061, 93),
         "adex_rb": ([ADEX_RB] * 6, 203, 995000071, 92)}


def main(kind: str, out: str, seed: int | None = None) -> None:
    """Write ``kind``'s cells to ``out``; ``seed`` (default the kind's own) draws other cells of the same ranges."""
    specs, kind_seed, first_id, tag = KINDS[kind]
    seed = kind_seed if seed is None else seed
    cells = build_panel(specs, seed=seed, first_id=first_id, tag=tag)
    print("wrote", write_synthetic_cache(out, cells, seed=seed))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=sorted(KINDS))
    ap.add_argument("out", help="the cache folder to write")
    ap.add_argument("--seed", type=int, help="another draw of the same ranges (default the kind's own seed)")
    a = ap.parse_args()
    main(a.kind, a.out, a.seed)
