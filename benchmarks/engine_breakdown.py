"""Where a training step of the batched synthetic network spends its time, per stage, on one device.

    python benchmarks/engine_breakdown.py --T 1024 --threads 1
    python benchmarks/engine_breakdown.py --T 2048 --device cuda

Case: the paper's synthetic network (1 recurrent ALIF layer of 128, 1000 Poisson inputs,
ARP 40 steps, batch 64; ``cellfit.bench.BenchmarkCase``). Stages: the input projection
(forward + backward, shared by both engines), the Block engine's spike search
(``block_spikes``, no gradient), its differentiable replay (forward, and forward +
backward), and the standard engine's whole simulation (forward + backward). Prints the
median of ``--repeats`` runs after one warm-up, in seconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cellfit.bench import BenchmarkCase, build_case
from cellfit.device import resolve_device, synchronize
from cellfit.functional.alif import alif_standard, block_spikes, replay


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=1024, help="time steps")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per stage")
    p.add_argument("--seed", type=int, default=0, help="seed of the input and the network")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    net, x, _ = build_case(BenchmarkCase(T=args.T, arp_steps=40, batch=64), args.seed, dev, torch.float32)
    layer = net.layers[0]
    with torch.no_grad():
        cur = layer.input_current(x)
    found = block_spikes(cur, layer.step_parameters(), w_rec=layer.weight_rec)
    leaf = cur.clone().requires_grad_()

    def projection():
        layer.zero_grad()
        layer.input_current(x).sum().backward()

    def search():
        block_spikes(cur, layer.step_parameters(), w_rec=layer.weight_rec)

    def replay_fwd(backward=False):
        layer.zero_grad()
        leaf.grad = None
        out = replay(leaf, layer.step_parameters(), found.spikes, w_rec=layer.weight_rec, spike_fn=layer._spike_fn)
        if backward:
            out.spikes.sum().backward()

    def standard():
        layer.zero_grad()
        leaf.grad = None
        alif_standard(leaf, layer.step_parameters(), w_rec=layer.weight_rec, spike_fn=layer._spike_fn).spikes.sum().backward()

    stages = {"input projection fwd+bwd": projection, "block spike search": search, "replay fwd": replay_fwd,
              "replay fwd+bwd": lambda: replay_fwd(True), "standard simulation fwd+bwd": standard}
    print(f"T={args.T}, device {dev}, threads {torch.get_num_threads()}, median of {args.repeats}:")
    for name, fn in stages.items():
        fn()
        times = []
        for _ in range(args.repeats):
            synchronize(dev)
            t0 = time.perf_counter()
            fn()
            synchronize(dev)
            times.append(time.perf_counter() - t0)
        print(f"  {name:30s} {statistics.median(times):8.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
