"""The subthreshold adaptation variant (``alif_sub``) against the default, per cell and per class, and the rule
that would keep it by training loss (round 9 of FITTING.md).

Usage::

    python benchmarks/fitting/sub_rules.py benchmarks/fitting/dev-panel.jsonl --base bursts --other sub_forced
    python benchmarks/fitting/sub_rules.py benchmarks/fitting/dev-panel.jsonl --other sub_small   # draws 0-2 only

For every cell that has rows of both variants (``panel_eval.py`` rows: held-out ETV and the kept candidate's
final training loss), it prints both held-out ETVs, the ratio of the training losses (the variant's kept fit
over the best ALIF candidate of the default) and the variant's fitted amplitude and time constant; then, per
cell class, the mean held-out ETV of each; then, for each ``margin``, the rule "the variant replaces the
default's ALIF fit where its training loss is at least this fraction lower" (cells that kept a bursting fit are
left alone): mean, median, minimum, cells below 0.7 and the cells that switch. On development rows only this is
a study of a rule; the held-out ETVs it reads decide nothing about a test panel.
"""

from __future__ import annotations

import argparse
import collections
import json

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", help="panel_eval.py rows holding both variants")
    ap.add_argument("--base", default="bursts", help="the default's variant")
    ap.add_argument("--other", default="sub_forced", help="the variant forced on every cell")
    ap.add_argument("--margins", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2])
    a = ap.parse_args()

    rows = {a.base: {}, a.other: {}}
    for r in map(json.loads, open(a.rows)):
        if r["variant"] in rows and r["status"] == "ok":
            rows[r["variant"]][(r["label"], r["specimen_id"])] = r
    keys = sorted(set(rows[a.base]) & set(rows[a.other]))
    cells = []
    for key in keys:
        b, s = rows[a.base][key], rows[a.other][key]
        alif = min(c["train_loss"] for c in b["selection"]["candidates"] if c["model"] == "alif" and not c["failed"])
        kept = s["selection"]["candidates"][s["selection"]["chosen"]]["train_loss"]
        cells.append(dict(key=key, what=f"{b['family']} {b['firing_class']}", model=b["model"], base=b["etv"],
                          other=s["etv"], ratio=kept / alif, k=s.get("sub_amp"), tau=s.get("tau_sub_ms")))
        c = cells[-1]
        print(f"{key[0]:10s} {key[1]} {c['what']:15s} kept {c['model']:8s} {a.base} {c['base']:.3f}  {a.other} "
              f"{c['other']:.3f}  loss ratio {c['ratio']:.3f}  k {c['k']:.2f}  tau_sub {c['tau']:.0f} ms")
    print(f"\n{len(cells)} cells; mean held-out ETV per class ({a.base} -> {a.other}):")
    by_class = collections.defaultdict(list)
    for c in cells:
        by_class[c["what"]].append(c)
    for what, cs in sorted(by_class.items()):
        print(f"  {what:15s} n={len(cs):2d}  {np.mean([c['base'] for c in cs]):.3f} -> "
              f"{np.mean([c['other'] for c in cs]):.3f}  (better on {sum(c['other'] > c['base'] for c in cs)})")

    def summary(etv):
        return (f"mean {np.mean(etv):.3f} median {np.median(etv):.3f} min {np.min(etv):.3f} "
                f"below 0.7: {int(np.sum(np.asarray(etv) < 0.7))}")

    print(f"\n{a.base}: {summary([c['base'] for c in cells])}")
    for margin in a.margins:
        switch = [c for c in cells if c["model"] == "alif" and c["ratio"] <= 1.0 - margin]
        etv = [c["other"] if c in switch else c["base"] for c in cells]
        print(f"margin {margin:.2f}: {summary(etv)}; {len(switch)} switch: "
              + ", ".join(f"{c['what']} {c['base']:.2f}->{c['other']:.2f}" for c in switch))


if __name__ == "__main__":
    main()
