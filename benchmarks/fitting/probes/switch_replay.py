"""Replay the choice among a cell's ALIF starts from committed oracle rows (``oracle.py --train-etv``), with and
without round 37's training-window switch, and with the switch held to starts the validation seconds also score at
least as high as the veto's pick (a variant of round 51's agreement). Diagnosis only: it reads rows, fits nothing.

Usage::

    python benchmarks/fitting/probes/switch_replay.py ORACLE.jsonl [...]

Only cells whose candidates are all ALIF starts with a validation and a training-window score are replayed (there the
choice is today's: the veto against the first start, the lowest training loss, then the switch; the library's own
functions make it), and the replay of the switch is checked against the kept flag of each row. Prints the held-out ETV summary of each rule.
"""

from __future__ import annotations

import collections
import json
import sys

import numpy as np

from cellfit.fit import FitConfig
from cellfit.fit.fitter import CellFitState
from cellfit.fit.select import choose, train_etv_switch

CONFIG = FitConfig()  # today's veto (validation_veto) and switch (train_etv_switch, train_etv_scope)


def _state(row: dict) -> CellFitState:
    """A candidate as the choice sees it: its start's variant and its final training loss (no model needed)."""
    return CellFitState(model=None, init={"model": row["model"]}, history=[row["train_loss"]], lr_history=[],
                        epochs=1, best_loss=row["train_loss"], stop_reason="converged")


def replay(cands: list[dict]) -> dict[str, int]:
    """Index of the kept start under each rule for one cell's candidate rows: the library's choice
    (:func:`cellfit.fit.select.choose`, then :func:`~cellfit.fit.select.train_etv_switch`), and the switch held to
    the starts whose validation ETV is at least the veto's pick's (the rule this probe asks about)."""
    states = [_state(r) for r in cands]
    scores = [r["validation_etv"] for r in cands]
    train = [r["train_etv"] for r in cands]
    base, _ = choose(states, scores, CONFIG.validation_veto, CONFIG.extension_margin)
    switched, _ = train_etv_switch(states, scores, train, base, "", CONFIG)
    # a start the validation seconds score below the veto's pick gets no training-window score: it cannot win
    agreeing = [t if i == base or scores[i] >= scores[base] else float("nan") for i, t in enumerate(train)]
    held, _ = train_etv_switch(states, scores, agreeing, base, "", CONFIG)
    return {"no switch": base, "switch (round 37)": switched, "switch with agreement": held}


def main(paths: list[str]) -> None:
    cells = collections.OrderedDict()
    for path in paths:
        with open(path) as fh:
            for line in fh:
                r = json.loads(line)
                cells.setdefault((path, r["label"], r["specimen_id"], r.get("variant")), []).append(r)
    held = collections.defaultdict(list)
    agree = 0
    for cands in cells.values():
        if any(r["model"] != "alif" or r.get("failed") or r.get("validation_etv") is None
               or r.get("train_etv") is None for r in cands):
            continue
        picks = replay(cands)
        kept = [i for i, r in enumerate(cands) if r["kept"]]
        agree += kept == [picks["switch (round 37)"]]
        for rule, i in picks.items():
            held[rule].append(cands[i]["held_out_etv"] or 0.0)
    ref = np.array(held["switch (round 37)"])
    print(f"{len(ref)} cells replayed; the replayed switch matches the kept start on {agree}")
    for rule, values in held.items():
        v = np.array(values)
        print(f"{rule:24s} mean {v.mean():.3f}  below 0.7 {int((v < 0.7).sum())}  "
              f"up / down against round 37 (> 0.02) {int((v - ref > 0.02).sum())} / {int((v - ref < -0.02).sum())}")


if __name__ == "__main__":
    main(sys.argv[1:])
