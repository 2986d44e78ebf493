"""After-spike candidates for the cells ALIF predicts poorly: which gate (round 34)?

Usage::

    python benchmarks/fitting/asc_rescue_rules.py benchmarks/fitting/asc-rescue-dev.jsonl
    python benchmarks/fitting/asc_rescue_rules.py benchmarks/fitting/asc-rescue-dev.jsonl --guarded asc_rescue09_val

Reads ``panel_eval.py`` rows of the ``default`` and ``asc_rescue09`` variants of the same cells (the development
cells whose default fit keeps plain ALIF with a validation ETV below 0.9: ``FitConfig.asc_rescue`` 0.9 fits them
again as ``alif_asc`` and ``alif_reset_asc``) and the default's candidate rows of every development cell (``--base``,
round 24's ``long-square-dev.jsonl``: the same fits as today's default). For each gate T (``--gates``) a cell takes
the ``asc_rescue09`` fit where the default's kept fit (its row's ``selection``) is plain ALIF with a validation ETV
below T, and the default's elsewhere (a cell's fit does not depend on the other cells of its batch; a cell without
rows here keeps its ``--base`` fit), and the script prints, over every cell of ``--base``, the mean, median, cells
below 0.7, cells up / down by more than 0.02, cells gated and of them those that switched variant; then each gated
cell. With ``--guarded asc_rescue09_val`` the rescue fits are those kept only where their validation ETV is not
lower either (``FitConfig.asc_rescue_validation``). Development rows only: the held-out ETVs decide nothing about a
test panel.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def kept_validation(row: dict) -> tuple[str, float]:
    """The default row's kept fit: its variant and validation ETV (NaN where unscored)."""
    sel = row["selection"]
    c = sel["candidates"][sel["chosen"]]
    v = c.get("validation_etv")
    return c["model"], float("nan") if v is None else float(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", help="panel_eval.py rows of the default and asc_rescue09 variants")
    ap.add_argument("--variant", default="asc_rescue09", help="the rescue rows' variant (default %(default)s)")
    ap.add_argument("--base", default="benchmarks/fitting/long-square-dev.jsonl",
                    help="the default's candidate rows of every development cell (default %(default)s)")
    ap.add_argument("--guarded", default=None,
                    help="a variant whose rows replace the rescue rows where there are (asc_rescue09_val: only the "
                         "cells whose rescue fit switched variant were run with it, the others cannot change)")
    ap.add_argument("--gates", type=float, nargs="+", default=[0.6, 0.7, 0.75, 0.8, 0.85, 0.9])
    args = ap.parse_args()
    base: dict = {}
    with open(args.base) as fh:
        for line in fh:
            r = json.loads(line)
            if r["kept"]:
                base[(r["label"], r["specimen_id"])] = r["held_out_etv"]
    default, rescue, guarded = {}, {}, {}
    with open(args.rows) as fh:
        for line in fh:
            r = json.loads(line)
            key = (r["label"], r["specimen_id"])
            if r["variant"] == "default":
                default[key] = r
            elif r["variant"] == args.variant:
                rescue.setdefault(key, r)
            elif r["variant"] == args.guarded:
                guarded[key] = r
    for key, r in guarded.items():  # the validation condition can change only a cell the loss margin alone switched
        if key not in rescue or rescue[key]["model"] == "alif":
            raise SystemExit(f"{args.guarded} rows for {key}, whose {args.variant} fit did not switch variant")
        rescue[key] = r
    missing = sorted(set(rescue) ^ set(default))
    if missing:
        raise SystemExit(f"cells with rows of one variant only: {missing}")
    before = {key: (default[key]["etv"] if key in default else etv) for key, etv in base.items()}
    b = np.array(list(before.values()))
    print(f"{len(before)} development cells; the default (this run's rows where there are, else --base): "
          f"median {np.median(b):.3f}, mean {b.mean():.3f}, below 0.7 {int((b < 0.7).sum())}")
    print("| gate (kept ALIF, validation ETV below) | gated | switched variant | median | mean | below 0.7 | up / down (> 0.02) |")
    print("|---|---|---|---|---|---|---|")
    for gate in args.gates:
        after, gated, switched = dict(before), [], 0
        for key, r in default.items():
            model, val = kept_validation(r)
            if model == "alif" and val < gate:
                gated.append(key)
                after[key] = rescue[key]["etv"]
                switched += rescue[key]["model"] != "alif"
        a = np.array([after[k] for k in before])
        up = sum(after[k] > before[k] + 0.02 for k in before)
        down = sum(after[k] < before[k] - 0.02 for k in before)
        print(f"| {gate:g} | {len(gated)} | {switched} | {np.median(a):.3f} | {a.mean():.3f} | {int((a < 0.7).sum())} "
              f"| {up} / {down} |")
    print("\nper cell (default -> rescue; the default's kept validation ETV):")
    for key in sorted(default, key=lambda k: kept_validation(default[k])[1]):
        model, val = kept_validation(default[key])
        r = rescue[key]
        print(f"  {key[0]:>10} {key[1]} {default[key]['family']:>4} {default[key]['firing_class']:<8} "
              f"kept {model:<8} val {val:.3f}  held out {default[key]['etv']:.3f} -> {r['etv']:.3f} ({r['model']})")


if __name__ == "__main__":
    main()
