"""Probe: the final training loss of the default fit with tau_adapt held at multiples of the free fit's estimate
(bounds pinned around the value), on the development ALIF cells, next to the true tau_adapt."""

from __future__ import annotations

import argparse
import json
import pathlib

import torch

from _common import append_rows
from cellfit.data import load_cell
from cellfit.fit import FitConfig, fit_recordings
from cellfit.fit.config import GRID_RESTARTS

FACTORS = (0.25, 0.5, 0.7, 1.0, 1.4, 2.0, 4.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("caches", nargs="+", type=pathlib.Path, help="development caches, in the order of --labels")
    ap.add_argument("--labels", nargs="+", default=["dev", "dev_seed1", "dev_seed2"])
    ap.add_argument("--rows", type=pathlib.Path, required=True, help="panel_eval.py rows with the default fits")
    ap.add_argument("--out", type=pathlib.Path, default=None)
    a = ap.parse_args()
    torch.set_num_threads(2)
    cache_of = dict(zip(a.labels, a.caches))
    rows = [json.loads(line) for line in open(a.rows)]
    fits = {(r["label"], r["specimen_id"]): r for r in rows
            if r["variant"] == "one_start" and r["family"] == "alif" and r["label"] in cache_of}
    for (label, sid), r in sorted(fits.items()):
        rec = load_cell(sid, 0.1, 3.0, cache_of[label])
        est, true = r["tau_adapt_ms"], r["true_tau_adapt_ms"]
        out = []
        for f in FACTORS:
            v = est * f
            cfg = FitConfig(tau_adapt_bounds_ms=(v / 1.001, v * 1.001), grid_tau_adapt_ms=(v,), bootstrap=0,
                            restarts=1, **GRID_RESTARTS)
            (fit,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
            out.append(dict(label=label, sid=sid, est=est, true=true, factor=f, tau=v, loss=fit.result.train_loss,
                            etv=fit.result.etv))
        append_rows(a.out, out)
        print(f"{label} {sid}: estimate {est:.0f} ms, true {true:.0f} ms (x{true / est:.2f}) | "
              + " ".join(f"x{o['factor']:g}: loss {o['loss']:.3f}, ETV {o['etv']:.2f}" for o in out), flush=True)


if __name__ == "__main__":
    main()
