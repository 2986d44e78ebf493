"""Bursting candidates evaluated offline on recorded rows: which starts, which gate, which margin (round 8).

Usage::

    python benchmarks/fitting/burst_rules.py benchmarks/fitting/burst-starts-dev.jsonl \
        --rows benchmarks/fitting/dev-panel.jsonl --base start_gap

The first file holds ``probes/asc_starts.py --out`` rows (one ``alif_asc`` fit per cell and start, with its
held-out ETV, validation ETV, final training loss and the fraction of the cell's training inter-spike intervals
under 10 ms); ``--rows`` the development panels' ``panel_eval.py`` rows of the default they would join
(``--base``: its held-out ETV and the kept candidate's training loss). For every combination of

- the starts (each subset of the recorded ones, in the order given),
- the gate: cells with at least ``gate`` of their training intervals under 10 ms get the bursting fits,
- ``margin``: the lowest training loss among a cell's bursting fits replaces the default's fit only where it
  is lower by at least this fraction,
- the validation veto inside the bursting fits (``veto``: a fit whose validation ETV is more than 0.1 below
  the first start's is not eligible) or none,

it prints the median, mean and minimum held-out ETV over the cells, the cells below 0.7, how many cells pay for
bursting fits, and the cells that switch. Choose on development rows only: the held-out ETV of every bursting
fit is known here, so this is a study of the rule, not a result.
"""

from __future__ import annotations

import argparse
import itertools
import json

import numpy as np

LABELS = {"dev": "dev", "dev_s1": "dev_seed1", "dev_s2": "dev_seed2"}  # cache folder -> panel_eval label
FIRST = 991000000  # the development panel's ids are FIRST + position


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("starts_rows", help="probes/asc_starts.py rows (development cells)")
    ap.add_argument("--rows", required=True, help="panel_eval.py rows of the development panels")
    ap.add_argument("--base", default="start_gap", help="the variant the bursting fits would join")
    ap.add_argument("--gates", type=float, nargs="+", default=[0.2, 0.3, 0.5])
    ap.add_argument("--margins", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    a = ap.parse_args()

    base = {}
    for r in map(json.loads, open(a.rows)):
        if r["variant"] == a.base and r["label"] in LABELS.values() and r["status"] == "ok":
            cand = r["selection"]["candidates"][r["selection"]["chosen"]]
            base[(r["label"], r["specimen_id"] - FIRST)] = dict(etv=r["etv"], loss=cand["train_loss"],
                                                                 what=f"{r['family']} {r['firing_class']}")
    fits: dict = {}
    for r in map(json.loads, open(a.starts_rows)):
        if r["model"] == "alif_asc":
            fits.setdefault((tuple(r["amp"]), tuple(r["tau"])), {})[(LABELS[r["cache"]], r["cell"])] = r
    full = [s for s, cells in fits.items() if set(base) <= set(cells)]  # starts recorded on every cell
    print(f"{len(base)} cells of {a.base}: median {np.median([b['etv'] for b in base.values()]):.3f}, mean "
          f"{np.mean([b['etv'] for b in base.values()]):.3f}, below 0.7: {sum(b['etv'] < 0.7 for b in base.values())}; "
          f"starts on every cell: {full}")
    for n in range(1, len(full) + 1):
        for starts, gate, margin, veto in itertools.product(itertools.permutations(full, n), a.gates, a.margins,
                                                            (0.1, None)):
            if veto is None and list(starts) != sorted(starts, key=full.index):
                continue  # without a veto the order of the starts does not matter
            etvs, paid, switched = [], 0, []
            for key, b in sorted(base.items()):
                rows = [fits[s][key] for s in starts]
                if rows[0]["short_isi_fraction"] != rows[0]["short_isi_fraction"] or rows[0]["short_isi_fraction"] < gate:
                    etvs.append(b["etv"])
                    continue
                paid += 1
                first = rows[0]["val"]
                pool = [r for r in rows if veto is None or r is rows[0] or r["val"] >= first - veto]
                pick = min(pool, key=lambda r: r["loss"])
                if pick["loss"] < b["loss"] * (1.0 - margin):
                    etvs.append(pick["etv"])
                    switched.append(f"{key[0]}/{key[1]} {b['what']} {b['etv']:.2f}->{pick['etv']:.2f}")
                else:
                    etvs.append(b["etv"])
            e = np.array(etvs)
            print(f"starts {list(starts)} gate {gate:g} margin {margin:g} veto {veto}: median {np.median(e):.3f} "
                  f"mean {e.mean():.3f} min {e.min():.3f} below 0.7 {int((e < 0.7).sum())} paid {paid} | "
                  + "; ".join(switched))


if __name__ == "__main__":
    main()
