"""Write the probe cells of round 6: AdEx cells with a strong spike-triggered adaptation current.

Usage::

    python benchmarks/fitting/probes/strong_adapt_cells.py OUT_CACHE
    python benchmarks/fitting/probes/strong_adapt_cells.py OUT_CACHE --seed 89   # another draw (round 28)
    python benchmarks/fitting/panel_eval.py OUT_CACHE rows.jsonl --label probe --variant tau_search_eq spike_init

Four cells (ids 995000001-995000004, parameter seed 77, recording seed 77) of a range next to, not
inside, the test panel's "strong spike-triggered current" family (tau_m 10-16 ms instead of 12-20,
tau_w 60-120 ms instead of 80-150, b 100-160 pA instead of 120-200): the development panels have no such
cell, and the test draws showed that this kind fails (FITTING.md, round 6). They are development data:
probe a remedy on them and on the development panels, then check it on a fresh test draw.
"""

from __future__ import annotations

import argparse

from cellfit.data.synthetic.allen_format import write_synthetic_cache
from cellfit.data.synthetic.panels import _ADEX_E, CellSpec, build_panel

SPEC = CellSpec("adex", "adapting", dict(tau_m_ms=(10.0, 16.0), a_nS=(0.5, 2.0), tau_w_ms=(60.0, 120.0),
                                         b_pA=(100.0, 160.0), reset_frac=(0.1, 0.4), **_ADEX_E),
                dict(t_ref_ms=2.0), label="strong spike-triggered current (probe range)")


def main(out: str, seed: int = 77) -> None:
    """Write the four cells drawn with ``seed`` (parameters and recordings; 77: round 6's draw)."""
    cells = build_panel([SPEC] * 4, seed=seed, first_id=995000001, tag=99)
    print("wrote", write_synthetic_cache(out, cells, seed=seed))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="the cache folder to write")
    ap.add_argument("--seed", type=int, default=77, help="another draw of the same range (default %(default)s: round 6's)")
    a = ap.parse_args()
    main(a.out, a.seed)
