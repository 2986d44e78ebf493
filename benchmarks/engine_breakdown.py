"""Where a training step of the batched synthetic network spends its time, per stage, on one device (a thin wrapper).

    python benchmarks/engine_breakdown.py --T 1024 --threads 1
    python benchmarks/engine_breakdown.py --T 2048 --device cuda

The stages and the case: :func:`cellfit.bench.stages.engine_stage_times`. Prints the
median of ``--repeats`` runs after one warm-up, in seconds.
"""

from __future__ import annotations

import argparse

import torch

from cellfit.bench.stages import engine_stage_times
from cellfit.device import resolve_device


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=1024, help="time steps")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per stage")
    p.add_argument("--seed", type=int, default=0, help="seed of the input and the network")
    args = p.parse_args(argv)
    times = engine_stage_times(T=args.T, device=args.device, repeats=args.repeats, seed=args.seed,
                               threads=args.threads)
    threads = args.threads or torch.get_num_threads()
    print(f"T={args.T}, device {resolve_device(args.device)}, threads {threads}, median of {args.repeats}:")
    for name, t in times.items():
        print(f"  {name:30s} {t:8.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
