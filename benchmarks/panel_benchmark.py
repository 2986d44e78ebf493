"""Whole-panel fit time with multi-cell batching (issue 5 item 4, issue 8 item 2).

Builds (or reuses) a synthetic panel in the Allen format, then, for every K in ``--cells-per-batch``,
fits the whole panel in batches of K cells on one device (``cellfit.fit.fit_recordings``, the same
call a ``cellfit.batch`` task makes) and reports: data loading time (first load reads the NWB files
and runs AllenSDK's spike detection; later loads hit the processed-array cache), fit time for the
panel, seconds per cell, epochs, peak GPU memory, and the median held-out ETV.

    python benchmarks/panel_benchmark.py --cells 146 --cells-per-batch 146 73 16 --device cuda --out benchmarks/gpu/panel
    python benchmarks/panel_benchmark.py --cells 16 --cells-per-batch 16 4 --device cpu --out benchmarks/cpu/panel

Writes ``OUT/panel.csv`` (one row per K) and prints a table. Output files of the cells
(result.json, figures) are not written: this measures fitting, as the GPU target asks.

``--in-memory`` builds the same recordings without files (``synthetic_recordings``: no NWB,
no AllenSDK spike detection), for a machine without the data stack (the GPU machines run
Python 3.12 and numpy 2, which allensdk 2.16 does not install on); data loading is then
not part of the measurement (``first_load_s`` / ``cached_load_s`` are NaN and
``generate_s`` is the in-memory build).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np
import pandas as pd
import torch

from cellfit.data import load_cell
from cellfit.data.synthetic import alif_panel, mismatch_panel, synthetic_recordings, write_synthetic_cache
from cellfit.device import resolve_device, synchronize
from cellfit.fit import FitConfig, fit_recordings
from cellfit.functional.alif import resolve_block_kernel
from cellfit.io import write_text_atomic


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=146, help="panel size (half ALIF, half AdEx cells)")
    p.add_argument("--cells-per-batch", type=int, nargs="+", default=[146], help="K values to time")
    p.add_argument("--dt", type=float, default=0.1, help="DT in ms")
    p.add_argument("--arp", type=float, default=2.0, help="ARP in ms")
    p.add_argument("--epochs", type=int, default=200, help="maximum epochs (paper protocol: 200)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--cache-dir", default="runs/panel_benchmark/cache", help="synthetic cache (built if missing)")
    p.add_argument("--out", default="runs/panel_benchmark", help="where panel.csv goes")
    p.add_argument("--seed", type=int, default=0, help="seed of the panel and the fits")
    p.add_argument("--in-memory", action="store_true",
                   help="build the recordings in memory (no NWB files, no AllenSDK); loading is not timed")
    args = p.parse_args(argv)

    dev = resolve_device(args.device)
    cache = pathlib.Path(args.cache_dir)
    n_alif = (args.cells + 1) // 2
    cells = alif_panel(n_alif, seed=args.seed) + mismatch_panel(args.cells - n_alif, seed=args.seed)
    ids = [c.specimen_id for c in cells]
    t0 = time.perf_counter()
    if args.in_memory:
        recs = synthetic_recordings(cells, args.dt, 1.0, seed=args.seed)
        gen_s = time.perf_counter() - t0
        first_load_s = cached_load_s = float("nan")
    else:
        missing = [c for c in cells if not (cache / f"specimen_{c.specimen_id}" / "ephys.nwb").exists()]
        if missing:
            write_synthetic_cache(cache, missing, seed=args.seed)
        gen_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        recs = [load_cell(i, args.dt, 1.0, cache) for i in ids]
        first_load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        recs = [load_cell(i, args.dt, 1.0, cache) for i in ids]
        cached_load_s = time.perf_counter() - t0
    how = (f"built in memory in {gen_s:.1f} s" if args.in_memory else
           f"generated in {gen_s:.1f} s, first load {first_load_s:.1f} s, cached load {cached_load_s:.2f} s")
    print(f"{len(recs)} cells ready ({how})", flush=True)

    cfg = FitConfig(dt_ms=args.dt, arp_ms=args.arp, epochs=args.epochs)
    rows = []
    for k in args.cells_per_batch:
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        synchronize(dev)
        t0 = time.perf_counter()
        fits = []
        for lo in range(0, len(recs), k):
            fits += fit_recordings(recs[lo: lo + k], cfg, device=dev, seed=args.seed, progress=False)
        synchronize(dev)
        wall = time.perf_counter() - t0
        ok = [f.result for f in fits if f.result.is_ok]
        rows.append(dict(
            cells=len(ids), cells_per_batch=k, device=str(dev),
            device_name=torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            block_kernel=resolve_block_kernel(None, dev), torch_threads=torch.get_num_threads(), dt_ms=args.dt, arp_ms=args.arp, max_epochs=args.epochs,
            generate_s=round(gen_s, 2), first_load_s=round(first_load_s, 2), cached_load_s=round(cached_load_s, 2),
            fit_s=round(wall, 2), fit_s_per_cell=round(wall / len(ids), 3),
            end_to_end_cached_s=round(cached_load_s + wall, 2),
            median_epochs=float(np.median([r["epochs"] for r in ok])) if ok else float("nan"),
            max_epochs_run=max((r["epochs"] for r in ok), default=0),
            median_etv=float(np.median([r["etv"] for r in ok])) if ok else float("nan"),
            failed=len(fits) - len(ok),
            peak_gpu_mem_gb=round(torch.cuda.max_memory_allocated(dev) / 2**30, 2) if dev.type == "cuda" else float("nan"),
            cellfit_command=" ".join(["python", "benchmarks/panel_benchmark.py"] + list(argv or sys.argv[1:])),
        ))
        print(f"K={k}: fit {wall:.1f} s ({wall / len(ids):.2f} s/cell), median ETV {rows[-1]['median_etv']:.3f}",
              flush=True)
    df = pd.DataFrame(rows)
    out = pathlib.Path(args.out)
    write_text_atomic(out / "panel.csv", df.to_csv(index=False))
    print(df.drop(columns=["cellfit_command"]).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
