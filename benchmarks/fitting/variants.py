"""Fit-quality variants on synthetic panels (FITTING.md): median held-out ETV, time-constant error, fit time.

Usage: python benchmarks/fitting/variants.py OUT_JSONL [--panels adex alif] [--variants NAME ...] [--n 6]

Builds the panels with cellfit.data.synthetic (cached under benchmarks/fitting/cache, not committed),
loads them through the Allen loader at DT 0.1 ms and fits all cells of a panel together on the CPU.
"""
import argparse, json, pathlib, time
import numpy as np
import torch

from cellfit.data import load_cell
from cellfit.data.synthetic import alif_panel, load_truth, mismatch_panel, write_synthetic_cache
from cellfit.fit import FitConfig, fit_recordings
from cellfit.fit.config import GRID_RESTARTS

#: the fit of 2026-11-22, on which these variants build: one start, no validation seconds, no refits
LEGACY = dict(restarts=1, validation_s=0.0, bootstrap=0, **GRID_RESTARTS)

VARIANTS = {
    "reference-like (lr 1e-4, fixed init, 10 ms loss only)": dict(init="default", grid_init=False, coarse_to_fine_ms=(), lr=1e-4),
    "fixed init, lr 0.03, 10 ms loss only": dict(init="default", grid_init=False, coarse_to_fine_ms=()),
    "+ voltage init": dict(grid_init=False, coarse_to_fine_ms=()),
    "+ grid (tau_adapt, d, bias)": dict(coarse_to_fine_ms=()),
    "+ coarse-to-fine loss (default)": dict(),
    "default, 3 s windows": dict(window=3.0),
}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out"); ap.add_argument("--panels", nargs="+", default=["adex", "alif"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS)); ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--dt", type=float, default=0.1)
    a = ap.parse_args()
    torch.set_num_threads(2)
    root = pathlib.Path(__file__).parent / "cache"
    for panel in a.panels:
        cache = root / panel
        cells = mismatch_panel(a.n, seed=0) if panel == "adex" else alif_panel(a.n, seed=0)
        if not (cache / "manifest.json").exists():
            write_synthetic_cache(cache, cells, seed=0)
        for name in a.variants:
            kw = dict(VARIANTS[name]); window = kw.pop("window", 1.0)
            recs = [load_cell(c.specimen_id, a.dt, window, cache) for c in cells]
            cfg = FitConfig(**dict(dict(LEGACY, dt_ms=a.dt), **kw))
            t0 = time.perf_counter()
            fits = fit_recordings(recs, cfg, device="cpu", progress=False)
            wall = time.perf_counter() - t0
            for f in fits:
                r = f.result.to_dict(); t = load_truth(cache, r["specimen_id"])["params"]
                row = dict(panel=panel, variant=name, dt_ms=a.dt, window_s=window, specimen_id=r["specimen_id"],
                           cell_class=r["cell_class"], etv=r["etv"], etv_init=r["etv_init"], epochs=r["epochs"],
                           tau_m_ms=r["tau_m_ms"], tau_adapt_ms=r["tau_adapt_ms"], adapt_scale=r["adapt_scale"],
                           true_tau_m_ms=t.get("tau_m_ms"), true_tau_adapt_ms=t.get("tau_adapt_ms", t.get("tau_w_ms")),
                           true_adapt_scale=t.get("adapt_scale"), panel_wall_s=wall, n_cells=len(fits))
                with open(a.out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
            etv = [f.result.etv for f in fits]
            print(f"{panel:5s} {name:55s} median ETV {np.median(etv):.3f}  wall {wall:.0f} s", flush=True)

if __name__ == "__main__":
    main()
