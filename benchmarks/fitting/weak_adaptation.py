"""Round 22: tau_adapt intervals over tau_adapt's whole range for fits whose adaptation is too weak to time.

Usage::

    python benchmarks/fitting/weak_adaptation.py benchmarks/fitting/burst-restarts-dev.jsonl \\
        benchmarks/fitting/weak-adapt-dev.jsonl --label dev dev_seed1 dev_seed2 dev_seed3 dev_seed4 dev_seed5 \\
        probe_fast probe_slow --variant reset_x3

For every ALIF cell of the rows (``panel_eval.py`` rows: the kept fit's ``adapt_scale``, tau_adapt, its recorded
interval and flag) this applies ``FitConfig.weak_adaptation`` at several thresholds with the library's rule
(:func:`cellfit.fit.select.widen_if_weak`; the fits are the same, only that interval and its flag change), and
prints per threshold the tau_adapt target (within 15%, or flagged with the truth inside), how many intervals hold
the truth, how many fits count as weak, and the median width (hi / lo). Choose the threshold on development rows.
"""

from __future__ import annotations

import argparse

import numpy as np

from cellfit.fit import FitConfig
from cellfit.fit.select import widen_if_weak
from tau_intervals import alif_rows  # this folder (run as a script)

NAME = "tau_adapt_ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows", nargs="+", help="panel_eval.py rows (JSON lines)")
    ap.add_argument("--label", nargs="+", required=True)
    ap.add_argument("--variant", default="reset_x3", help="the rows' variant (its fits; default round 20's)")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.02, 0.03, 0.05, 0.06, 0.1])
    a = ap.parse_args()
    cells = alif_rows(a.rows, a.label, a.variant)
    n = len(cells)
    print(f"{n} ALIF cells ({', '.join(a.label)}; variant {a.variant})\n")
    print("| weak below (adapt_scale) | weak fits | target | truth inside | flagged | median width |")
    print("|---|---|---|---|---|---|")
    for threshold in [None, *a.thresholds]:
        config = FitConfig(weak_adaptation=threshold)
        target = inside = flagged = weak = 0
        widths = []
        for r in cells:
            lo0, hi0 = r["intervals"][NAME]
            lo, hi = widen_if_weak(lo0, hi0, r["adapt_scale"], config)
            truth, changed = r["true_" + NAME], (lo, hi) != (lo0, hi0)
            flag = NAME in r["undetermined"] or changed
            within, holds = abs(r[NAME] / truth - 1) <= 0.15, lo <= truth <= hi
            target += within or (flag and holds)
            inside += holds
            flagged += flag
            weak += threshold is not None and abs(r["adapt_scale"]) < threshold
            widths.append(hi / lo)
        rule = "none (round 20)" if threshold is None else f"{threshold:g}"
        print(f"| {rule} | {weak} | {target}/{n} | {inside}/{n} | {flagged} | {np.median(widths):.1f}x |")


if __name__ == "__main__":
    main()
