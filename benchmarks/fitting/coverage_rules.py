"""How often the tau_adapt interval holds the truth, under wider rules, evaluated offline on recorded rows (round 7).

Usage::

    python benchmarks/fitting/coverage_rules.py benchmarks/fitting/dev-panel.jsonl \
        --label dev dev_seed1 dev_seed2 probe_slow probe_fast --variant spike_init3

The default fit searches tau_adapt from five starts (20, 50, 125, 300, 800 ms); its interval is the central
80% of the bootstrap refits, widened to the starts the data cannot tell apart (not vetoed by the validation
seconds, final training loss within ``equivalent_loss`` of the kept fit's: 2% by default). For every ALIF
cell of the rows (panel_eval.py rows hold each start's fitted tau_adapt, training loss and validation ETV)
this recomputes the interval with

- ``delta``: the starts within ``delta`` of the kept loss (0.02 = today's rule, larger values admit more);
- ``fraction``: each end of the interval then moved towards the nearest fitted tau_adapt of a start outside
  it on that side (every start of the kept fit's variant that did not fail, vetoed or not), ``fraction`` of
  the way in log(tau_adapt): gradient descent moves a start's tau_adapt only part of the way, so the starts
  sample tau_adapt on a coarse grid, and the gap between the interval and the next start was never tried;
  0.5 (the geometric midpoint) adds the values closer to the interval than to a start the data ranked lower;

and prints, per rule, the tau_adapt target (within 15%, or flagged as undetermined with the truth inside),
how many intervals hold the truth (nominal 80%), how many are flagged, flagged though within 15%, and the
median width (hi / lo). Choose a rule on development rows only.
"""

from __future__ import annotations

import argparse
import collections
import json
import math

import numpy as np

from cellfit.fit.select import widen_to_starts

NAME = "tau_adapt_ms"
VETO = 0.1  # FitConfig.validation_veto when these rows were written


def _rows(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def interval(row: dict, delta: float, fraction: float) -> tuple[float, float]:
    """``row``'s tau_adapt interval under the rule (``delta``, ``fraction``); (0.02, 0) is the recorded one."""
    lo, hi = row["intervals"][NAME]
    sel = row["selection"]
    cands, chosen = sel["candidates"], sel["chosen"]
    kept = cands[chosen]
    same = [i for i, c in enumerate(cands) if c["model"] == kept["model"] and not c["failed"] and c[NAME]]
    first = cands[min(i for i, c in enumerate(cands) if c["model"] == kept["model"])]
    def vetoed(c):
        v, v0 = c["validation_etv"], first["validation_etv"]
        return v0 is not None and math.isfinite(v0) and c is not first and not (v is not None and v >= v0 - VETO)
    for i in same:
        if not vetoed(cands[i]) and cands[i]["train_loss"] <= kept["train_loss"] * (1 + delta):
            lo, hi = min(lo, cands[i][NAME]), max(hi, cands[i][NAME])
    return widen_to_starts(lo, hi, [cands[i][NAME] for i in same], fraction)  # the library's rule


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows", nargs="+", help="panel_eval.py rows (JSON lines)")
    ap.add_argument("--label", nargs="+", required=True)
    ap.add_argument("--variant", default="spike_init3")
    ap.add_argument("--ratio", type=float, default=1.5, help="undetermined_ratio (default FitConfig's 1.5)")
    a = ap.parse_args()
    cells = [r for p in a.rows for r in _rows(p) if r["variant"] == a.variant and r["family"] == "alif"
             and r["label"] in a.label and r["status"] == "ok" and r["intervals"]]
    n = len(cells)
    print(f"{n} ALIF cells ({', '.join(a.label)}; variant {a.variant})\n")
    print("| starts within | widened towards the neighbouring starts | target | truth inside | flagged | "
          "flagged though within 15% | median width |")
    print("|---|---|---|---|---|---|---|")
    for delta in (0.02, 0.05, 0.1):
        for fraction in (0.0, 0.5, 1.0):
            counts, widths = collections.Counter(), []
            for r in cells:
                lo, hi = interval(r, delta, fraction)
                truth, flagged = r["true_" + NAME], hi / lo > a.ratio
                within, inside = abs(r[NAME] / truth - 1) <= 0.15, lo <= truth <= hi
                counts["target"] += within or (flagged and inside)
                counts["flagged"] += flagged
                counts["needless"] += flagged and within
                counts["inside"] += inside
                widths.append(hi / lo)
            rule = f"{delta:g} of the kept loss" + (" (today)" if delta == 0.02 and not fraction else "")
            print(f"| {rule} | {'no' if not fraction else f'{fraction:g} of the way'} | {counts['target']}/{n} | "
                  f"{counts['inside']}/{n} | {counts['flagged']} | {counts['needless']} | {np.median(widths):.2f}x |")


if __name__ == "__main__":
    main()
