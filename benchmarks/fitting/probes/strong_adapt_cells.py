"""Write the probe cells of round 6: AdEx cells with a strong spike-triggered adaptation current.

Usage::

    python benchmarks/fitting/probes/strong_adapt_cells.py OUT_CACHE
    python benchmarks/fitting/panel_eval.py OUT_CACHE rows.jsonl --label probe --variant tau_search_eq spike_init

Four cells (ids 995000001-995000004, parameter seed 77, recording seed 77) of a range next to, not
inside, the test panel's "strong spike-triggered current" family (tau_m 10-16 ms instead of 12-20,
tau_w 60-120 ms instead of 80-150, b 100-160 pA instead of 120-200): the development panels have no such
cell, and the test draws showed that this kind fails (FITTING.md, round 6). They are development data:
probe a remedy on them and on the development panels, then check it on a fresh test draw.
"""

from __future__ import annotations

import sys

from cellfit.data.synthetic.allen_format import write_synthetic_cache
from cellfit.data.synthetic.panels import _ADEX_E, CellSpec, build_panel

SPEC = CellSpec("adex", "adapting", dict(tau_m_ms=(10.0, 16.0), a_nS=(0.5, 2.0), tau_w_ms=(60.0, 120.0),
                                         b_pA=(100.0, 160.0), reset_frac=(0.1, 0.4), **_ADEX_E),
                dict(t_ref_ms=2.0), label="strong spike-triggered current (probe range)")


def main(out: str) -> None:
    cells = build_panel([SPEC] * 4, seed=77, first_id=995000001, tag=99)
    print("wrote", write_synthetic_cache(out, cells, seed=77))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: strong_adapt_cells.py OUT_CACHE")
    main(sys.argv[1])
