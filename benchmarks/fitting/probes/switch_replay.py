"""Replay the choice among a cell's ALIF starts from committed oracle rows (``oracle.py --train-etv``), with and
without round 37's training-window switch, and with the switch held to starts the validation seconds also score at
least as high as the veto's pick (a variant of round 51's agreement). Diagnosis only: it reads rows, fits nothing.

Usage::

    python benchmarks/fitting/probes/switch_replay.py ORACLE.jsonl [...]

Only cells whose candidates are all ALIF starts with a validation and a training-window score are replayed (there the
choice is the veto of 0.1 against the first start, the lowest training loss, then the switch at 0.1), and the replay
of the switch is checked against the kept flag of each row. Prints the held-out ETV summary of each rule.
"""

from __future__ import annotations

import collections
import json
import sys

import numpy as np

VETO = 0.1
SWITCH = 0.1


def replay(cands: list[dict]) -> dict[str, int]:
    """Index of the kept start under each rule for one cell's candidate rows."""
    first = cands[0]["validation_etv"]
    pool = [i for i, r in enumerate(cands) if r["validation_etv"] >= first - VETO]
    base = min(pool, key=lambda i: cands[i]["train_loss"])

    def switched(members):
        best = max(members, key=lambda i: cands[i]["train_etv"])
        return best if cands[best]["train_etv"] >= cands[base]["train_etv"] + SWITCH else base

    agreeing = [i for i in pool if i == base or cands[i]["validation_etv"] >= cands[base]["validation_etv"]]
    return {"no switch": base, "switch (round 37)": switched(pool), "switch with agreement": switched(agreeing)}


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
