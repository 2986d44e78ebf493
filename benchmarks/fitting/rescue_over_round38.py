"""Round 34's after-spike rescue on top of round 38's choice, on development cells (round 40).

Usage::

    python benchmarks/fitting/rescue_over_round38.py benchmarks/fitting/train-etv-dev.jsonl \
        benchmarks/fitting/asc-rescue-all-dev.jsonl --label dev_seed0 ... dev_seed8

The first rows (``oracle.py --train-etv``, every development cell, written under round 36's choice) give round 38's
kept candidate offline (:func:`train_etv_rules.as_round38`); the second (``oracle.py --variant asc_rescue_all
--train-etv --specimens ...``) hold the cells that round 34's gate would fit again (kept as plain ALIF with a
validation ETV below 0.9 under round 38's choice), with their rescue candidates and the kept one under that
configuration. Every other cell keeps round 38's candidate. Printed: each such cell's held-out ETV both ways, then
the median, mean, cells below 0.7 and cells up / down by more than 0.02 over all cells. The held-out column is for
this diagnosis only; no rule reads it.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics

from oracle import cells_of, kept_row
from train_etv_rules import as_round38


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", type=pathlib.Path, help="oracle.py --train-etv rows of every cell (variant default)")
    ap.add_argument("rescue", type=pathlib.Path, help="oracle.py --variant asc_rescue_all --train-etv rows")
    ap.add_argument("--label", nargs="+", required=True)
    a = ap.parse_args()
    base = as_round38(cells_of(a.base, a.label, "default"))
    rescue = cells_of(a.rescue, a.label, "asc_rescue_all")
    before, after, up, down = [], [], 0, 0
    for cell, rows in base.items():
        old = kept_row(rows)["held_out_etv"]
        new = old
        if cell in rescue:
            kept = kept_row(rescue[cell])
            new = kept["held_out_etv"]
            print(f"{cell[0]} {cell[1]}: {old:.3f} -> {new:.3f} ({kept['model']}, {kept['start']})")
        before.append(old)
        after.append(new)
        up += new > old + 0.02
        down += new < old - 0.02
    for name, v in (("round 38", before), ("round 38 + rescue", after)):
        print(f"{name:18s} median {statistics.median(v):.3f} mean {statistics.mean(v):.3f} "
              f"below 0.7: {sum(x < 0.7 for x in v)}")
    print(f"up {up} / down {down} (> 0.02) of {len(before)} cells; {len(rescue)} gated")


if __name__ == "__main__":
    main()
