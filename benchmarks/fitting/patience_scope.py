"""Longer training (``patience`` 10) for which cells? Today's default against a longer schedule, per scope (round 29).

Usage::

    python benchmarks/fitting/patience_scope.py benchmarks/fitting/patience-dev.jsonl --variant patience10
    python benchmarks/fitting/patience_scope.py benchmarks/fitting/patience-dev.jsonl --variant sub_patience10_guard

Reads ``panel_eval.py`` rows of a variant trained with a longer schedule on the development draws (``patience10``:
every cell) and the default's candidate rows of the same cells (``--base``, round 24's ``long-square-dev.jsonl``: the
same fits as today's default). For each scope (every cell; the cells whose default fit has ``alif_sub`` candidates,
as ``FitConfig.sub_patience`` applies it; those fitted both ways; those fitted ``alif_sub`` alone; the bursting cells,
as ``FitConfig.burst_patience`` applies it) it takes the longer
fit's held-out ETV inside the scope and the default's outside it (a cell's fit does not depend on the other cells of
its batch) and prints, over every cell of ``--base``, the mean, median, cells below 0.7 and cells up / down by more
than 0.02 (a scope with cells that have no rows of the variant is skipped); then, per family of the scoped cells, the
same. Round 30's rows (``--variant sub_patience10_guard``) cover the cells with ``alif_sub`` candidates only.
Development rows only: the held-out ETVs decide nothing about a test panel.
"""

from __future__ import annotations

import argparse
import collections
import json

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", help="panel_eval.py rows of the longer schedule")
    ap.add_argument("--variant", default="patience10", help="the rows' variant (default %(default)s)")
    ap.add_argument("--base", default="benchmarks/fitting/long-square-dev.jsonl",
                    help="the default's candidate rows of the same cells (default %(default)s)")
    args = ap.parse_args()
    cells: dict = collections.defaultdict(list)
    with open(args.base) as fh:
        for line in fh:
            r = json.loads(line)
            cells[(r["label"], r["specimen_id"])].append(r)
    base = {k: next(r for r in rs if r["kept"])["held_out_etv"] for k, rs in cells.items()}
    models = {k: {r["model"] for r in rs} for k, rs in cells.items()}
    with open(args.rows) as fh:
        new = {(r["label"], r["specimen_id"]): r for r in map(json.loads, fh) if r["variant"] == args.variant}
    missing = sorted(k for k in new if k not in base)
    if missing:
        raise SystemExit(f"{len(missing)} cells of {args.rows} have no default rows in {args.base}, e.g. {missing[0]}")
    scopes = {"every cell": lambda k: True,
              "cells with alif_sub candidates (sub_patience)": lambda k: "alif_sub" in models[k],
              "cells fitted both ways (ALIF and alif_sub)": lambda k: models[k] == {"alif", "alif_sub"},
              "cells fitted alif_sub alone": lambda k: models[k] == {"alif_sub"},
              "cells with bursting candidates (burst_patience)": lambda k: "alif_asc" in models[k]}
    keys = sorted(base)  # every cell of --base
    b = np.array([base[k] for k in keys])
    print(f"{len(keys)} cells; today's default: mean {b.mean():.3f} median {np.median(b):.3f} below 0.7 {(b < 0.7).sum()}")
    for name, inside in scopes.items():
        absent = sum(inside(k) and k not in new for k in keys)
        if absent:
            print(f"{name:48s} ({absent} of its cells have no rows of {args.variant})")
            continue
        n = np.array([new[k]["etv"] if inside(k) else base[k] for k in keys])
        print(f"{name:48s} cells {sum(inside(k) for k in keys):3d} mean {n.mean():.3f} median {np.median(n):.3f} "
              f"below 0.7 {(n < 0.7).sum():2d} up {(n > b + 0.02).sum():2d} down {(n < b - 0.02).sum():2d}")
    families: dict = collections.defaultdict(lambda: ([], []))
    for k in keys:
        extra = "alif_sub" if "alif_sub" in models[k] else "bursting" if "alif_asc" in models[k] else None
        if extra and k in new:
            r = new[k]
            families[(extra, r["specimen_id"], r["family"], r["firing_class"])][0].append(base[k])
            families[(extra, r["specimen_id"], r["family"], r["firing_class"])][1].append(r["etv"])
    print("\nper family of the cells with alif_sub or bursting candidates (default -> longer):")
    for fam, (x, y) in sorted(families.items()):
        x, y = np.array(x), np.array(y)
        print(f"  {fam[0]:8s} {fam[1]} {fam[2]} {fam[3]:4s} {len(x)} cells: mean {x.mean():.3f} -> {y.mean():.3f}, "
              f"below 0.7 {(x < 0.7).sum()} -> {(y < 0.7).sum()}, up {(y > x + 0.02).sum()} "
              f"down {(y < x - 0.02).sum()}")


if __name__ == "__main__":
    main()
