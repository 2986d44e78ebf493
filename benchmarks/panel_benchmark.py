"""Whole-panel fit time with multi-cell batching (issue 5 item 4, issue 8 item 2): a thin wrapper.

    python benchmarks/panel_benchmark.py --cells 146 --cells-per-batch 146 73 16 --device cuda --out benchmarks/gpu/panel
    python benchmarks/panel_benchmark.py --cells 16 --cells-per-batch 16 4 --device cpu --out benchmarks/cpu/panel

What it measures and the columns of ``OUT/panel.csv`` (one row per K):
:mod:`cellfit.bench.panel`. Prints a table at the end.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from cellfit.bench.panel import PanelBenchmark, run_panel_benchmark
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

    cfg = PanelBenchmark(cells=args.cells, cells_per_batch=tuple(args.cells_per_batch), dt_ms=args.dt,
                         arp_ms=args.arp, epochs=args.epochs, device=args.device, cache_dir=args.cache_dir,
                         seed=args.seed, in_memory=args.in_memory)
    command = " ".join(["python", "benchmarks/panel_benchmark.py"] + list(argv or sys.argv[1:]))
    df = run_panel_benchmark(cfg, command=command, log=lambda line: print(line, flush=True))
    write_text_atomic(pathlib.Path(args.out) / "panel.csv", df.to_csv(index=False))
    print(df.drop(columns=["cellfit_command"]).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
