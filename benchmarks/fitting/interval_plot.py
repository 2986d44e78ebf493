"""Fitted against true time constants of the ALIF cells of panel rows, with each cell's interval.

Usage::

    python benchmarks/fitting/interval_plot.py OUT.png --rows benchmarks/fitting/test-panel.jsonl \
        --variant tau_search_eq [--label test test_seed1 ...]

The rows of ``panel_eval.py`` become a batch-summary-like table and go through the library's
recovery plot (:func:`cellfit.figures.panel.plot_recovery`): one point per ALIF cell (the only
cells with true time constants), its interval as a bar, and per panel the median fold error and how
many intervals hold the truth.
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from cellfit.figures import panel

NAMES = ("tau_m_ms", "tau_adapt_ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--rows", nargs="+", required=True)
    ap.add_argument("--variant", required=True)
    ap.add_argument("--label", nargs="*", default=None, help="panel labels to include (default: all)")
    a = ap.parse_args()
    rows = [json.loads(line) for path in a.rows for line in open(path) if line.strip()]
    rows = [r for r in rows if r["variant"] == a.variant and r["family"] == "alif" and r["status"] == "ok"
            and (a.label is None or r["label"] in a.label)]
    if not rows:
        raise SystemExit(f"no ALIF rows of variant {a.variant!r} in {a.rows}")
    key = [f"{r['label']}/{r['specimen_id']}" for r in rows]
    fitted = pd.DataFrame([dict(specimen_id=k, status="ok", cell_class=r["cell_class"], model="alif",
                                **{n: r[n] for n in NAMES},
                                **{f"{n}_{e}": (r["intervals"].get(n) or [None, None])[i]
                                   for n in NAMES for i, e in enumerate(("lo", "hi"))})
                           for k, r in zip(key, rows)])
    truth = pd.DataFrame([dict(specimen_id=k, **{n: r[f"true_{n}"] for n in NAMES}) for k, r in zip(key, rows)])
    fig = panel.plot_recovery(panel.fitted(fitted), truth, columns=NAMES)
    labels = list(dict.fromkeys(r["label"] for r in rows))
    fig.suptitle(f"{a.variant}: {len(rows)} ALIF cells of {len(labels)} panel draws", fontsize=9)
    fig.savefig(a.out, dpi=100)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
