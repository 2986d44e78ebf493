"""How a cell fitted both as ALIF and as ``alif_sub`` keeps one of them: the 5% loss margin (today's default)
against comparing the two variants' picks on their validation ETV (round 27 of FITTING.md) and against the margin
with the other pick's validation ETV not lower too (round 30).

Usage::

    python benchmarks/fitting/variant_choice_rules.py benchmarks/fitting/long-square-dev.jsonl
    python benchmarks/fitting/variant_choice_rules.py benchmarks/fitting/sub-patience-oracle-dev.jsonl
    python benchmarks/fitting/variant_choice_rules.py ROWS.jsonl --labels test_seed53 test_seed54 --cells

Reads candidate rows (one per candidate fit: ``model``, ``start``, ``train_loss``, ``validation_etv``,
``held_out_etv``, ``kept``, ``failed``; ``long_square_study.py`` and ``oracle.py`` write them). For every cell whose
candidates are exactly ALIF and ``alif_sub`` fits (the cells the default fits both ways; bursting cells, which are
compared by their training-window ETV, have other variants and are left alone) it rebuilds the library's choice
(:func:`cellfit.fit.select.choose`, the default's veto 0.1 within each variant) under each rule and reads the
held-out ETV of the candidate that rule keeps; every other cell keeps its kept candidate's. Prints, per rule, the
median, mean, minimum and cells below 0.7 over all cells, and how many cells rise or fall by more than 0.02 against
the row's own kept candidate; ``--cells`` lists the cells that change. On development rows this is a study of a
rule; the held-out ETVs it reads decide nothing about a test panel.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math

import numpy as np

from cellfit.fit.select import choose


@dataclasses.dataclass
class _Candidate:  # what choose() reads of a candidate fit
    best_loss: float
    failed: bool
    init: dict


def _rules() -> dict:
    """name -> keyword arguments of :func:`choose` (the default's veto 0.1)."""
    out = {f"loss margin {m:g}" + (" (today)" if m == 0.05 else ""): dict(margin=m) for m in (0.0, 0.02, 0.05, 0.1)}
    out["validation ETV (variant_choice='validation')"] = dict(margin=0.05, variant_choice="validation")
    out["loss margin 0.05 and validation ETV not lower"] = dict(margin=0.05, variant_choice="loss_and_validation")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", help="candidate rows (long_square_study.py / oracle.py)")
    ap.add_argument("--labels", nargs="+", default=None, help="only these labels (default: all)")
    ap.add_argument("--cells", action="store_true", help="list the cells each rule changes")
    args = ap.parse_args()

    cells: dict = collections.defaultdict(list)
    with open(args.rows) as fh:
        for line in fh:
            r = json.loads(line)
            if args.labels is None or r["label"] in args.labels:
                cells[(r["label"], r.get("variant", ""), r["specimen_id"])].append(r)
    rules = _rules()
    etv: dict = collections.defaultdict(list)
    changed: dict = collections.defaultdict(list)
    both = mismatch = 0
    for key, rows in sorted(cells.items()):
        rows.sort(key=lambda r: r["candidate"])
        kept = next(r for r in rows if r["kept"])
        etv["row's kept candidate"].append(kept["held_out_etv"])
        if {r["model"] for r in rows} != {"alif", "alif_sub"}:
            for name in rules:
                etv[name].append(kept["held_out_etv"])
            continue
        both += 1
        cands = [_Candidate(r["train_loss"], r["failed"], {"model": r["model"]}) for r in rows]
        scores = [math.nan if r["validation_etv"] is None else r["validation_etv"] for r in rows]
        for name, kw in rules.items():
            pick = rows[choose(cands, scores, veto=0.1, **kw)[0]]
            etv[name].append(pick["held_out_etv"])
            if "today" in name and pick is not kept:
                mismatch += 1
            if pick is not kept:
                changed[name].append(f"{key[0]} {key[2]}: {kept['model']} {kept['held_out_etv']:.3f} -> "
                                     f"{pick['model']} {pick['held_out_etv']:.3f}")
    print(f"{len(cells)} cells; {both} fitted both ways (ALIF and alif_sub); the 5% rule rebuilt differs from the "
          f"rows' kept candidate on {mismatch}")
    base = np.array(etv["row's kept candidate"], dtype=float)
    for name, values in etv.items():
        x = np.array(values, dtype=float)
        print(f"{name:48s} median {np.median(x):.3f} mean {x.mean():.3f} min {x.min():.3f} "
              f"below 0.7 {(x < 0.7).sum():3d} up {(x > base + 0.02).sum():3d} down {(x < base - 0.02).sum():3d}")
    if args.cells:
        for name, lines in changed.items():
            print(f"\n{name}:")
            for line in lines:
                print("  " + line)


if __name__ == "__main__":
    main()
