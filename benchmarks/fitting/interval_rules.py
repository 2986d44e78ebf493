"""Intervals widened to the starts the data cannot tell apart, evaluated offline on recorded rows (round 5).

Usage::

    python benchmarks/fitting/interval_rules.py benchmarks/fitting/search-dev.jsonl \
        benchmarks/fitting/dev-panel.jsonl --label dev dev_seed1 dev_seed2

For every ALIF cell fitted with ``tau_search`` (the default of round 4, whose rows hold the bootstrap
intervals), the interval of tau_m and tau_adapt is widened to contain the fitted values of the cell's
starts (``select_study.py --diverse`` rows of the same fits) that are not vetoed by the validation
seconds (0.1 below the first start's) and whose training loss is at most ``delta`` above the kept one's,
for several ``delta``; then the tau targets (within 15%, or flagged as undetermined with the truth
inside), how many are flagged, flagged although within 15%, and the median width (hi / lo) are printed.
Run it on development rows only.
"""

from __future__ import annotations

import argparse
import collections
import json

import numpy as np

NAMES = ("tau_m_ms", "tau_adapt_ms")


def _rows(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def widen(row: dict, starts: list[dict], delta, veto: float = 0.1) -> dict:
    """``{name: (lo, hi)}`` of ``row``'s intervals widened to the equivalent ``starts`` (None: not widened)."""
    first = starts[0]
    kept = row["selection"]["candidates"][row["selection"]["chosen"]]["train_loss"]
    out = {}
    for name in NAMES:
        lo, hi = row["intervals"][name]
        for c in starts if delta is not None else ():
            val = c["val_2nd_3rd"]
            vetoed = c is not first and not (val is not None and val >= first["val_2nd_3rd"] - veto)
            if not c["failed"] and not vetoed and c["train_loss"] <= kept * (1 + delta):
                lo, hi = min(lo, c[name]), max(hi, c[name])
        out[name] = (lo, hi)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("search", help="rows of select_study.py --diverse (every start of every cell)")
    ap.add_argument("panel", help="rows of panel_eval.py with the variant tau_search (the kept fit and its intervals)")
    ap.add_argument("--label", nargs="+", required=True)
    ap.add_argument("--ratio", type=float, default=1.5, help="undetermined_ratio (default FitConfig's 1.5)")
    a = ap.parse_args()
    starts = collections.defaultdict(list)
    for r in _rows(a.search):
        if r["model"] == "alif" and r["label"] in a.label:
            starts[(r["label"], r["specimen_id"])].append(r)
    cells = [r for r in _rows(a.panel)
             if r["variant"] == "tau_search" and r["family"] == "alif" and r["label"] in a.label]
    heads = [f"{n}: target, flagged, flagged though within 15%, median width" for n in NAMES]
    print(f"| widened to starts within | {' | '.join(heads)} |")
    print("|---|---|---|")
    for delta in (None, 0.0, 0.02, 0.05, 0.1, 0.2):
        counts, widths = collections.Counter(), collections.defaultdict(list)
        for r in cells:
            cs = sorted(starts[(r["label"], r["specimen_id"])], key=lambda c: c["candidate"])
            for name, (lo, hi) in widen(r, cs, delta).items():
                truth, flagged = r["true_" + name], hi / lo > a.ratio
                within = abs(r[name] / truth - 1) <= 0.15
                counts[name, "target"] += within or (flagged and lo <= truth <= hi)
                counts[name, "flagged"] += flagged
                counts[name, "needless"] += flagged and within
                widths[name].append(hi / lo)
        cols = [f"{counts[n, 'target']}/{len(cells)}, {counts[n, 'flagged']}, {counts[n, 'needless']}, "
                f"{np.median(widths[n]):.2f}x" for n in NAMES]
        print(f"| {'refits only' if delta is None else f'{delta:g} of the kept loss'} | {' | '.join(cols)} |")


if __name__ == "__main__":
    main()
