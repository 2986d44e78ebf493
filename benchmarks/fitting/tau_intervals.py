"""Round 23: how far the tau_adapt interval reaches, evaluated offline on recorded rows.

Usage::

    python benchmarks/fitting/tau_intervals.py benchmarks/fitting/burst-restarts-dev.jsonl \\
        benchmarks/fitting/weak-adapt-dev.jsonl benchmarks/fitting/interval-dev.jsonl \\
        --label dev dev_seed1 dev_seed2 dev_seed3 dev_seed4 dev_seed5 probe_fast probe_slow \\
                dev_seed6 dev_seed7 dev_seed8 probe_fast_s81 probe_slow_s80

For every ALIF cell of the rows (``panel_eval.py`` rows of round 20's default, ``--variant reset_x3``: the kept
fit's tau_adapt interval, written with ``start_gap`` 0.5, and every start's fitted tau_adapt) this recomputes the
interval with the library's rule (:func:`cellfit.fit.select.widen_searched`, as ``interval_table``) for a grid
of

- ``start_gap``: how far each end reaches, in log, towards the nearest start outside it (0.5 today, 1 all the way;
  from the recorded interval, which already went 0.5 of the way, that is ``(start_gap - 0.5) / 0.5`` of the rest);
- ``bound_gap``: how far an end with no start beyond it reaches towards tau_adapt's bound (5 or 5000 ms);
- ``weak_adaptation``: below which ``adapt_scale`` the interval spans the bounds (round 22);

and prints the tau_adapt target (within 15%, or flagged with the truth inside), how many intervals hold the truth
and the median width (hi / lo), per group of labels (``--groups`` names them: ``NAME=LABEL,LABEL``). The fits
themselves do not change. Choose on development rows only.
"""

from __future__ import annotations

import argparse
import itertools
import json

import numpy as np

from cellfit.fit import FitConfig
from cellfit.fit.select import widen_searched

NAME = "tau_adapt_ms"
RECORDED_GAP = 0.5  # start_gap when the rows were written (round 7's default)


def alif_rows(paths: list[str], labels: list[str], variant: str) -> list[dict]:
    """The rows of ``variant``'s ALIF cells fitted (with intervals) under ``labels`` in the JSON-lines ``paths``."""
    cells = []
    for path in paths:
        with open(path) as fh:
            cells += [r for r in map(json.loads, filter(str.strip, fh)) if r["variant"] == variant
                      and r["family"] == "alif" and r["label"] in labels and r["status"] == "ok" and r["intervals"]]
    return cells


def starts_of(row: dict) -> list[float]:
    """The fitted tau_adapt of every start of the kept fit's variant that did not fail (as ``interval_table``)."""
    cands = row["selection"]["candidates"]
    model = cands[row["selection"]["chosen"]]["model"]
    return [c[NAME] for c in cands if c["model"] == model and not c["failed"] and c.get(NAME)]


def interval(row: dict, start_gap: float, bound_gap: float | None, weak: float | None) -> tuple[float, float]:
    """``row``'s tau_adapt interval under the rule; (0.5, None, None) is the recorded one."""
    if start_gap < RECORDED_GAP:
        raise ValueError("the recorded intervals already reach 0.5 of the way: start_gap must be >= 0.5")
    lo, hi = row["intervals"][NAME]
    rest = (start_gap - RECORDED_GAP) / (1.0 - RECORDED_GAP)
    config = FitConfig(start_gap=rest, bound_gap=bound_gap, weak_adaptation=weak)
    return widen_searched(lo, hi, starts_of(row), row["adapt_scale"], config)  # the library's rule


def score(cells: list[dict], start_gap: float, bound_gap: float | None, weak: float | None) -> str:
    target = inside = 0
    widths = []
    for r in cells:
        lo, hi = interval(r, start_gap, bound_gap, weak)
        truth = r["true_" + NAME]
        holds = lo <= truth <= hi
        target += abs(r[NAME] / truth - 1) <= 0.15 or (holds and hi / lo > FitConfig().undetermined_ratio)
        inside += holds
        widths.append(hi / lo)
    return f"{target}/{len(cells)} | {inside}/{len(cells)} | {np.median(widths):.1f}x"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows", nargs="+", help="panel_eval.py rows (JSON lines)")
    ap.add_argument("--label", nargs="+", required=True)
    ap.add_argument("--groups", nargs="*", default=[], help="NAME=LABEL,LABEL: also a column per group")
    ap.add_argument("--variant", default="reset_x3", help="the rows' variant (default round 20's)")
    ap.add_argument("--start-gap", type=float, nargs="+", default=[0.5, 0.75, 1.0])
    ap.add_argument("--bound-gap", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    ap.add_argument("--weak", type=float, nargs="+", default=[0.0, 0.03], help="0: off")
    a = ap.parse_args()
    cells = alif_rows(a.rows, a.label, a.variant)
    groups = {"all": cells}
    for g in a.groups:
        name, labels = g.split("=")
        groups[name] = [r for r in cells if r["label"] in labels.split(",")]
    print(f"{len(cells)} ALIF cells ({', '.join(a.label)}; variant {a.variant})\n")
    print("| start_gap | bound_gap | weak below |"
          + "".join(f" {g} ({len(c)}): target | truth inside | median width |" for g, c in groups.items()))
    print("|---|---|---|" + "---|---|---|" * len(groups))
    for start_gap, bound_gap, weak in itertools.product(a.start_gap, a.bound_gap, a.weak):
        cols = " | ".join(score(c, start_gap, bound_gap or None, weak or None) for c in groups.values())
        print(f"| {start_gap:g} | {bound_gap:g} | {weak:g} | {cols} |")


if __name__ == "__main__":
    main()
