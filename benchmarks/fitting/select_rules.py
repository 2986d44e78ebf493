"""Evaluate selection rules offline on the candidates written by ``select_study.py``.

Usage::

    python benchmarks/fitting/select_rules.py OUT.jsonl [--label dev dev_seed1 dev_seed2]

A rule picks one candidate per cell from what a fit can see (validation ETVs, training
loss); the held-out ETV of the picked candidate is then summarised over the cells. Run it on
development rows only: a rule chosen on the test panel's rows would be tuned on the test panel.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict

import numpy as np

MODELS_ALL = ("alif", "alif_asc", "alif_reset_asc")


def _pick(cands: list[dict], models: tuple, starts: int, window: str | None, margin: float) -> dict:
    """The candidate a rule keeps: among ``models`` x the first ``starts`` grid points, the best by
    ``window``'s validation ETV, where a candidate of another model than ALIF must beat the best ALIF
    candidate by ``margin``; ``window=None``: the lowest training loss."""
    pool = [c for c in cands if c["model"] in models and c["start_rank"] < starts and not c["failed"]]
    if not pool:
        return cands[0]
    if window is None:
        return min(pool, key=lambda c: c["train_loss"])
    def score(c):
        v = c[window]
        v = -math.inf if v is None or not math.isfinite(v) else v
        return v - (margin if c["model"] != "alif" else 0.0)
    return max(pool, key=score)


def rules() -> dict:
    out = {"default (alif, first start)": (("alif",), 1, "val_2nd", 0.0)}
    for window in ("val_2nd", "val_2nd_3rd"):
        for models in (MODELS_ALL, ("alif", "alif_asc")):
            for starts in (1, 2):
                for margin in (0.0, 0.05, 0.1):
                    name = f"{'+'.join(m.replace('alif_', '') for m in models)} x{starts} {window} m{margin:g}"
                    out[name] = (models, starts, window, margin)
        out[f"alif x2 {window}"] = (("alif",), 2, window, 0.0)
    out["alif x2 train loss"] = (("alif",), 2, None, 0.0)
    out["all x2 train loss"] = (MODELS_ALL, 2, None, 0.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows")
    ap.add_argument("--label", nargs="+", default=None)
    a = ap.parse_args()
    cells: dict = defaultdict(list)
    for line in open(a.rows):
        r = json.loads(line)
        if a.label is None or r["label"] in a.label:
            cells[(r["label"], r["specimen_id"])].append(r)
    keys = sorted(cells)
    base = np.array([_pick(cells[k], ("alif",), 1, "val_2nd", 0.0)["test_etv"] or 0.0 for k in keys])
    oracle = np.array([max((c["test_etv"] or 0.0) for c in cells[k]) for k in keys])
    print(f"{len(keys)} cells; oracle (held-out best of all candidates): median {np.median(oracle):.3f}, "
          f"min {oracle.min():.3f}, < 0.7: {(oracle < 0.7).sum()}")
    print(f"{'rule':40s} median   mean    min  <0.7  better worse")
    for name, (models, starts, window, margin) in rules().items():
        etv = np.array([_pick(cells[k], models, starts, window, margin)["test_etv"] or 0.0 for k in keys])
        d = etv - base
        print(f"{name:40s} {np.median(etv):.3f}  {etv.mean():.3f}  {etv.min():.3f}  {(etv < 0.7).sum():3d}  "
              f"{(d > 0.01).sum():5d} {(d < -0.01).sum():5d}")


if __name__ == "__main__":
    main()
