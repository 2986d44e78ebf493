"""FITTING.md's tables from the JSON lines of ``panel_eval.py`` (markdown on stdout).

Usage: ``python benchmarks/fitting/table.py benchmarks/fitting/dev-panel.jsonl benchmarks/fitting/test-panel.jsonl``
or, pooling several panels (draws) into one table per variant:
``python benchmarks/fitting/table.py --pool dev dev_seed1 dev_seed2 -- benchmarks/fitting/dev-panel.jsonl``;
``--cells N`` (before ``--pool``) keeps each panel's first N cells (its N lowest specimen ids): the development
panel as it was before later entries were appended (13 cells until round 17, 15 in round 17).

Per panel and variant: median and minimum held-out ETV, cells below 0.7, the median of ETV over
the repeat ceiling (one recorded repeat predicting the others), and on the ALIF-generated cells
(the only ones with true time constants) how many fitted tau_m / tau_adapt lie within 15% of
the truth, how many are flagged undetermined, and how many intervals contain the truth; then
the panel's fit wall time. A second table lists every cell. With ``--pool LABEL ...`` the cells of
those panels are pooled per variant (only variants fitted on all of them), with the mean ETV and
how many cells each variant fits better / worse than ``one_start`` (the default fit of rounds 1-3;
``default`` where there is none) by more than 0.01.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd


def _rows(paths, cells: int | None = None):
    rows = []
    for path in paths:
        with open(path) as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    df = pd.DataFrame(rows)
    df["label"] = df["label"] if "label" in df else df["panel"]
    if cells is not None:  # each panel's first `cells` cells (lowest specimen ids)
        first = df.groupby("label").specimen_id.transform(lambda ids: sorted(set(ids))[:cells][-1])
        df = df[df.specimen_id <= first]
    return df


def _tau(g: pd.DataFrame, name: str, truth: str) -> str:
    a = g[(g.family == "alif") & g[truth].notna()]  # only ALIF-generated cells have ALIF parameters to recover
    if a.empty:
        return "-"
    err = (a[name] / a[truth] - 1).abs()
    within = int((err <= 0.15).sum())
    flagged = sum(name in (u or []) for u in a.undetermined) if "undetermined" in a else 0
    covered = 0
    for _, r in a.iterrows():
        lo_hi = (r.get("intervals") or {}).get(name)
        covered += bool(lo_hi and lo_hi[0] <= r[truth] <= lo_hi[1])
    ok = int(sum((e <= 0.15) or (name in (u or []) and ((r.get("intervals") or {}).get(name) or [np.inf, -np.inf])[0]
                                  <= r[truth] <= ((r.get("intervals") or {}).get(name) or [np.inf, -np.inf])[1])
                 for e, u, (_, r) in zip(err, a.undetermined, a.iterrows())))
    return f"{within}/{len(a)} within 15%, {flagged} flagged, truth in interval {covered}/{len(a)}; target met {ok}/{len(a)}"


def main(paths, cells: int | None = None) -> None:
    df = _rows(paths, cells)
    print("| panel | variant | cells | median ETV | min ETV | cells < 0.7 | median ETV / ceiling | ALIF cells: tau_m | ALIF cells: tau_adapt | fit wall s (panel) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label in dict.fromkeys(df.label):
        for variant in dict.fromkeys(df[df.label == label].variant):
            g = df[(df.label == label) & (df.variant == variant)]
            etv = g.etv.astype(float)
            ratio = (etv / g.repeat_ceiling.astype(float)).median()
            print(f"| {label} | {variant} | {len(g)} | {etv.median():.3f} | {etv.min():.3f} | {int((etv < 0.7).sum())} | "
                  f"{ratio:.3f} | {_tau(g, 'tau_m_ms', 'true_tau_m_ms')} | {_tau(g, 'tau_adapt_ms', 'true_tau_adapt_ms')} | "
                  f"{g.panel_wall_s.iloc[0]:.0f} |")
    print()
    variants = list(dict.fromkeys(df.variant))
    print("| panel | cell | family | class | ceiling | " + " | ".join(f"ETV {v}" for v in variants) + " |")
    print("|---|---|---|---|---|" + "---|" * len(variants))
    for (label, sid), g in df.groupby(["label", "specimen_id"], sort=False):
        first = g.iloc[0]
        cells = []
        for v in variants:
            r = g[g.variant == v]
            cells.append("" if r.empty else f"{float(r.etv.iloc[0]):.3f}" + (f" ({r.model.iloc[0]})" if "auto" in v else ""))
        print(f"| {label} | {sid} | {first.family} | {first.firing_class} | {float(first.repeat_ceiling):.2f} | "
              + " | ".join(cells) + " |")


def pooled(paths, labels, cells: int | None = None) -> None:
    df = _rows(paths, cells)
    df = df[df.label.isin(labels)]
    base_name = "one_start" if (df.variant == "one_start").any() else "default"
    base = df[df.variant == base_name].set_index(["label", "specimen_id"]).etv.astype(float)
    print(f"| variant ({', '.join(labels)}) | cells | median ETV | mean | min | cells < 0.7 | median ETV / ceiling | "
          f"better / worse than {base_name} | ALIF cells: tau_m | ALIF cells: tau_adapt | fit wall s (sum) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for variant in dict.fromkeys(df.variant):
        g = df[df.variant == variant]
        if set(g.label) != set(labels):
            continue
        etv = g.etv.astype(float)
        d = etv.to_numpy() - base.reindex(list(zip(g.label, g.specimen_id))).to_numpy()
        ratio = (etv / g.repeat_ceiling.astype(float)).median()
        wall = g.groupby("label").panel_wall_s.first().sum()
        print(f"| {variant} | {len(g)} | {etv.median():.3f} | {etv.mean():.3f} | {etv.min():.3f} | {int((etv < 0.7).sum())} | "
              f"{ratio:.3f} | {int((d > 0.01).sum())} / {int((d < -0.01).sum())} | {_tau(g, 'tau_m_ms', 'true_tau_m_ms')} | "
              f"{_tau(g, 'tau_adapt_ms', 'true_tau_adapt_ms')} | {wall:.0f} |")


if __name__ == "__main__":
    args = sys.argv[1:]
    n_cells = None
    if args[:1] == ["--cells"]:
        if len(args) < 2 or not args[1].isdigit() or int(args[1]) < 1:
            sys.exit("table.py: --cells needs a positive number of cells, e.g. --cells 13")
        n_cells, args = int(args[1]), args[2:]
    if args[:1] == ["--pool"]:
        split = args.index("--")
        pooled(args[split + 1:], args[1:split], n_cells)
    else:
        main(args or ["benchmarks/fitting/dev-panel.jsonl"], n_cells)
