"""The time-constant targets under other flag ratios, read off panel rows (round 39).

Usage::

    python benchmarks/fitting/flag_rules.py benchmarks/fitting/ev-loss-dev.jsonl --variant default \
        --label dev_seed0 dev_seed1 dev_seed2 dev_seed3 dev_seed4 dev_seed5 dev_seed6 dev_seed7 dev_seed8

A fitted time constant is flagged as undetermined where its interval spans more than ``FitConfig.undetermined_ratio``
(hi / lo). The flag changes nothing else (not the fit, its ETV or its interval), so a row's interval gives the flag
under any ratio. Per ratio and per time constant, over the ALIF-generated cells of the rows (the only ones with true
time constants): the target (within 15% of the truth, or flagged with the truth inside the interval), how many are
flagged, how many of those are within 15% anyway (flags the target did not need), and the cells that miss it.
1.15 ** 2 = 1.3225 is the widest interval that one value lies within 15% of at both ends.
"""

from __future__ import annotations

import argparse
import json
import pathlib

from cellfit.fit.select import undetermined

NAMES = ("tau_m_ms", "tau_adapt_ms")


def alif_rows(path: pathlib.Path, labels: list[str], variant: str) -> list[dict]:
    """The rows of ALIF-generated cells (true time constants and intervals) of ``labels`` fitted as ``variant``."""
    rows = [json.loads(line) for line in open(path) if line.strip()]
    return [r for r in rows if r.get("label") in labels and r.get("variant", "default") == variant
            and r.get("family") == "alif" and r.get("intervals") and r.get("true_tau_m_ms") is not None]


def target(rows: list[dict], name: str, ratio: float) -> tuple[int, int, int, list]:
    """``(met, flagged, flagged within 15%, misses)`` of ``name`` over ``rows`` with flags at ``ratio``."""
    met = flagged = needless = 0
    misses = []
    for r in rows:
        est, truth = r[name], r["true_" + name]
        lo, hi = r["intervals"][name]
        within = abs(est / truth - 1.0) <= 0.15
        flag = undetermined(lo, hi, ratio)
        met += within or (flag and lo <= truth <= hi)
        flagged += flag
        needless += flag and within
        if not (within or (flag and lo <= truth <= hi)):
            misses.append(f"{r['label']}/{r['specimen_id']} {est:.1f} for {truth:.1f} [{lo:.1f}-{hi:.1f}]")
    return met, flagged, needless, misses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rows", type=pathlib.Path, help="panel_eval.py rows")
    ap.add_argument("--label", nargs="+", required=True)
    ap.add_argument("--variant", default="default")
    ap.add_argument("--ratio", type=float, nargs="+", default=[1.5, 1.4, 1.15 ** 2, 1.3])
    a = ap.parse_args()
    rows = alif_rows(a.rows, a.label, a.variant)
    print(f"{len(rows)} ALIF cells ({', '.join(a.label)}; variant {a.variant})")
    for name in NAMES:
        for ratio in a.ratio:
            met, flagged, needless, misses = target(rows, name, ratio)
            print(f"{name:13s} ratio {ratio:.4g}: target {met}/{len(rows)}, flagged {flagged} ({needless} within 15% "
                  f"anyway); misses: {'; '.join(misses) or 'none'}")


if __name__ == "__main__":
    main()
