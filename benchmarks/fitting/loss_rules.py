"""Round 35: today's default against the explained-variance final loss on the development cells (markdown on stdout).

Usage::

    python benchmarks/fitting/loss_rules.py benchmarks/fitting/ev-loss-dev.jsonl --variant ev_loss \\
        --reference benchmarks/fitting/long-square-dev.jsonl

The default's held-out ETV of each cell is the kept candidate of round 24's candidate rows (``--reference``, one
row per candidate; they reproduce the default's panel rows, FITTING.md, round 34); the variant's comes from
``panel_eval.py`` rows. Printed: the pooled table (median, mean, min, cells below 0.7, cells up / down by more than
0.02), the same for ``FitConfig.ev_rescue`` read offline (a cell whose default fit's validation ETV is below a gate
keeps the variant's fit where its validation ETV is a margin higher; with a default fit kept from a bursting start
gated or not, ``FitConfig.ev_rescue_bursting``, round 36), cells below 0.7 per family, every cell that moved by more
than 0.1, and, where the rows file holds
``default`` rows of the ALIF cells too, the tau_m / tau_adapt targets of both (``table.py``'s count).
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import sys

import numpy as np
import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from table import _tau  # noqa: E402  (the same tau-target count as FITTING.md's tables)


def _read(path) -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _kept_validation(row: dict) -> float:
    sel = row["selection"]
    return sel["candidates"][sel["chosen"]]["validation_etv"]


def _stats(v: np.ndarray) -> str:
    return f"{np.median(v):.3f} | {v.mean():.3f} | {v.min():.3f} | {int((v < 0.7).sum())}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rows", type=pathlib.Path, help="panel_eval.py rows with the variant (and default ALIF rows)")
    ap.add_argument("--variant", default="ev_loss")
    ap.add_argument("--reference", type=pathlib.Path, required=True, help="candidate rows with 'kept' (round 24's)")
    ap.add_argument("--gate", type=float, default=0.9, help="the rule whose tau targets are counted (default 0.9)")
    ap.add_argument("--margin", type=float, default=0.05, help="(default 0.05)")
    a = ap.parse_args()

    rows = _read(a.rows)
    var = {(r["label"], r["specimen_id"]): r for r in rows if r.get("variant") == a.variant}
    kept = [r for r in _read(a.reference) if r.get("kept")]
    ref = {(r["label"], r["specimen_id"]): r["held_out_etv"] for r in kept}
    ref_val = {(r["label"], r["specimen_id"]): r["validation_etv"] for r in kept}
    ref_start = {(r["label"], r["specimen_id"]): r["start"] for r in kept}
    keys = sorted(k for k in var if k in ref and var[k]["etv"] is not None)
    if not keys:
        raise SystemExit(f"no cell of {a.rows} variant {a.variant!r} is in {a.reference}")
    base = np.array([ref[k] for k in keys])
    new = np.array([var[k]["etv"] for k in keys])
    up, down = int((new - base > 0.02).sum()), int((base - new > 0.02).sum())
    labels = sorted({k[0] for k in keys})
    print(f"{len(keys)} development cells ({', '.join(labels)})\n")
    print("| | median | mean | min | below 0.7 | up / down (> 0.02) |\n|---|---|---|---|---|---|")
    print(f"| today's default (kept candidate, `{a.reference.name}`) | {_stats(base)} | - |")
    print(f"| `{a.variant}` | {_stats(new)} | {up} / {down} |\n")

    # FitConfig.ev_rescue offline: a cell whose default kept fit predicts the validation seconds below the gate
    # keeps the variant's fit where that fit's validation ETV is the margin higher (no gate: every cell fitted twice)
    val_base = np.array([ref_val[k] for k in keys], dtype=float)
    val_new = np.array([_kept_validation(var[k]) for k in keys], dtype=float)
    # round 36 (FitConfig.ev_rescue_bursting False): a default fit kept from a bursting start is not gated
    burst = np.array([ref_start[k].find("bursting start") >= 0 for k in keys])
    print("| gate (default fit's validation ETV below) | kept bursting starts | margin | gated | switched | median "
          "| mean | min | below 0.7 | up / down (> 0.02) |\n|---|---|---|---|---|---|---|---|---|---|")
    for gate in (None, 0.8, 0.9, 1.0):
        for bursting in (True, False):
            for margin in (0.0, 0.05, 0.1):
                gated = np.ones(len(keys), bool) if gate is None else val_base < gate
                if not bursting:
                    gated &= ~burst
                switch = gated & (val_new >= val_base + margin)
                pick = np.where(switch, new, base)
                print(f"| {'none (every cell)' if gate is None else gate} | {'gated' if bursting else 'not gated'} | "
                      f"{margin} | {int(gated.sum())} | {int(switch.sum())} | {_stats(pick)} | "
                      f"{int((pick - base > 0.02).sum())} / {int((base - pick > 0.02).sum())} |")
    print()

    fam = collections.defaultdict(lambda: [0, 0, 0, []])
    for k, b, n in zip(keys, base, new):
        r = var[k]
        f = fam[f"{r['family']} {r['firing_class']} ({k[1]})"]
        f[0] += 1
        f[1] += int(b < 0.7)
        f[2] += int(n < 0.7)
        f[3].append(n - b)
    print("| family (specimen) | cells | below 0.7: default | below 0.7: variant | mean change |\n|---|---|---|---|---|")
    for name, (n, b7, n7, d) in sorted(fam.items(), key=lambda kv: kv[0].split("(")[-1]):
        print(f"| {name} | {n} | {b7} | {n7} | {np.mean(d):+.3f} |")
    print("\ncells that moved by more than 0.1:")
    for k, b, n in zip(keys, base, new):
        if abs(n - b) > 0.1:
            r = var[k]
            print(f"  {k[0]} {k[1]} {r['family']} {r['firing_class']}: {b:.3f} -> {n:.3f} ({r['model']})")

    alif = pd.DataFrame([r for r in rows if r.get("family") == "alif" and (r["label"], r["specimen_id"]) in ref])
    if not alif.empty:
        print("\nALIF cells' tau targets (within 15%, or flagged with the truth inside the interval):")
        groups = dict(list(alif.groupby("variant")))
        if "default" in groups:  # the rule's pick: the variant's row where it switches, else the default's
            d = groups["default"].set_index(["label", "specimen_id"], drop=False)
            picked = [var[k] if (ref_val[k] < a.gate and _kept_validation(var[k]) >= ref_val[k] + a.margin)
                      else d.loc[k].to_dict() for k in d.index if k in var]
            groups[f"ev_rescue gate {a.gate} margin {a.margin}"] = pd.DataFrame(picked)
        for name, g in groups.items():
            print(f"  {name} ({len(g)} cells): tau_m {_tau(g, 'tau_m_ms', 'true_tau_m_ms')}; "
                  f"tau_adapt {_tau(g, 'tau_adapt_ms', 'true_tau_adapt_ms')}")


if __name__ == "__main__":
    main()
