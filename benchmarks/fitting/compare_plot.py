"""Per-cell comparison of two variants of ``panel_eval.py`` rows: held-out ETV and ALIF tau_adapt recovery.

Usage::

    python benchmarks/fitting/compare_plot.py OUT.png --rows benchmarks/fitting/dev-panel.jsonl \\
        benchmarks/fitting/test-panel.jsonl --base one_start --new tau_search \\
        --labels dev dev_seed1 dev_seed2 --fresh test_seed3

Left: each cell's held-out ETV with ``--new`` against ``--base`` (development cells open, the
fresh test draw filled, colour by model family; the grey lines mark 0.7). Right: on the ALIF
cells (the only ones with true parameters), fitted / true tau_adapt with each variant, and the
+-15% band of the target. FITTING.md's round 4 figure.
"""

from __future__ import annotations

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"alif": "tab:blue", "adex": "tab:orange", "hh": "tab:green"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--rows", nargs="+", required=True)
    ap.add_argument("--base", default="one_start")
    ap.add_argument("--new", default="tau_search")
    ap.add_argument("--labels", nargs="+", required=True, help="development panels (open markers)")
    ap.add_argument("--fresh", nargs="+", required=True, help="fresh test panels (filled markers)")
    a = ap.parse_args()
    rows = {}
    for path in a.rows:
        for line in open(path):
            if line.strip():
                r = json.loads(line)
                rows[(r["label"], r["variant"], r["specimen_id"])] = r
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.8))
    alif = []
    for labels, filled in ((a.labels, False), (a.fresh, True)):
        for (label, variant, sid), new in sorted(rows.items()):
            base = rows.get((label, a.base, sid))
            if label not in labels or variant != a.new or base is None:
                continue
            c = COLOURS.get(new["family"], "grey")
            ax.scatter(base["etv"], new["etv"], s=28, edgecolors=c, facecolors=c if filled else "none")
            if new["family"] == "alif" and new.get("true_tau_adapt_ms"):
                alif.append((filled, base["tau_adapt_ms"] / new["true_tau_adapt_ms"],
                             new["tau_adapt_ms"] / new["true_tau_adapt_ms"]))
    lim = (0, 1.5)
    ax.plot(lim, lim, color="k", lw=0.8)
    ax.axhline(0.7, color="grey", lw=0.6, ls="--")
    ax.axvline(0.7, color="grey", lw=0.6, ls="--")
    ax.set(xlim=lim, ylim=lim, xlabel=f"held-out ETV, {a.base}", ylabel=f"held-out ETV, {a.new}",
           title="per cell (open: development, filled: fresh test)")
    for fam, c in COLOURS.items():
        ax.scatter([], [], color=c, label=fam)
    ax.legend(loc="lower right", frameon=False)
    for i, (filled, before, after) in enumerate(alif):
        bx.plot([0, 1], [before, after], color="tab:blue", lw=0.8, alpha=0.7,
                marker="o", mfc="tab:blue" if filled else "white")
    bx.axhspan(0.85, 1.15, color="tab:green", alpha=0.15, label="within 15%")
    bx.set_yscale("log")
    bx.set(xticks=[0, 1], xticklabels=[a.base, a.new], xlim=(-0.3, 1.3), ylabel="fitted / true tau_adapt",
           title=f"ALIF cells ({len(alif)})")
    bx.legend(loc="upper right", frameon=False)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}: {len(alif)} ALIF cells")


if __name__ == "__main__":
    main()
