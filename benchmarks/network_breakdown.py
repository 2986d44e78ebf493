"""The Block engine's CPU path against the previous one, per stage, interleaved in one process.

    python benchmarks/network_breakdown.py --T 1024 2048 --threads 2 --repeats 5
    python benchmarks/network_breakdown.py --fit-only --threads 2 --repeats 9

Network case: the paper's synthetic network (1 recurrent ALIF layer of 128, 1000 Poisson
inputs, ARP 40 steps, batch 64; ``cellfit.bench.build_case``), float32. Paths:

- ``old``: the previous code path: input current by ``einsum``; spike search by the
  PyTorch block loop (``block_spikes(kernel="torch")``); gradients by the FFT
  ``replay`` (what ``CELLFIT_BLOCK_KERNEL=torch`` still runs);
- ``new``: input current by ``cellfit.functional.linear.channel_linear``; spike search,
  and the gradient, by ``cellfit.functional.blockwise`` (the default on a CPU);
- ``standard``: the step-by-step engine (with the new input current).

Stages (seconds, median of ``--repeats`` after one warm-up, all paths of a stage timed
round robin so that they share the machine's load): input projection forward + backward;
spike search (no gradient); engine forward + backward from a given current; whole
training step (current, engine, spike-count loss, backward); inference (no gradient).
Each stage prints the median and the minimum of the timed runs (the minimum is the
steadier figure on a shared machine).
The fit step (``--fit``): the ``fit-cell`` case (3 stimuli x K cells x 10,000 steps, ARP 20
steps, van Rossum loss, Adam; ``--fit-cells``), old vs new. Every row says the load average before and after.
Before timing, the spikes of all paths are checked to be identical in float64.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch

from cellfit.bench import BenchmarkCase, build_case
from cellfit.fit.metrics import van_rossum_distance
from cellfit.functional.alif import alif_blocks, alif_standard, block_spikes, replay, use_block_kernel
from cellfit.functional.linear import channel_linear


def _old_current(layer, x):
    return torch.einsum("oi,bit->bot", layer.weight, x) + layer.bias[None, :, None]


def _new_current(layer, x):
    return channel_linear(x, layer.weight, layer.bias)


def _engine(kind, current, layer, grad=True):
    params = layer.step_parameters()
    kw = dict(w_rec=layer.weight_rec, spike_fn=layer._spike_fn)
    if kind == "standard":
        return alif_standard(current, params, **kw)
    with use_block_kernel("torch" if kind == "old" else "blockwise"):
        return alif_blocks(current, params, **kw)


CLOCK = time.perf_counter


def _interleaved(fns: dict, repeats: int) -> dict:
    for fn in fns.values():  # warm-up (and the workspace of the blockwise path)
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = CLOCK()
            fn()
            times[name].append(CLOCK() - t0)
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}


def _report(title: str, res: dict, load0: float) -> None:
    load1 = os.getloadavg()[0]
    base = res["old"][0] if "old" in res else None
    cells = "  ".join(
        f"{k} {med:.3f} s (min {low:.3f})" + (f" {base / med:.2f}x" if base and k != "old" else "")
        for k, (med, low) in res.items()
    )
    print(f"  {title:34s} {cells}   [load {load0:.1f}->{load1:.1f}]", flush=True)


def network(T: int, repeats: int, seed: int) -> None:
    net, x, _ = build_case(BenchmarkCase(T=T, arp_steps=40, batch=64), seed, torch.device("cpu"), torch.float32)
    layer = net.layers[0]
    with torch.no_grad():
        current = _new_current(layer, x)
    _check_identical(layer, x)
    leaf = current.clone().requires_grad_()
    print(f"T={T}: {int(block_spikes(current, layer.step_parameters(), w_rec=layer.weight_rec).spikes.sum())} spikes")

    def projection(make):
        def run():
            layer.zero_grad()
            make(layer, x).sum().backward()
        return run

    def search(kernel):
        return lambda: block_spikes(current, layer.step_parameters(), w_rec=layer.weight_rec, kernel=kernel)

    def engine(kind):
        def run():
            layer.zero_grad()
            leaf.grad = None
            _engine(kind, leaf, layer).spikes.sum().backward()
        return run

    def old_replay():
        layer.zero_grad()
        leaf.grad = None
        found = block_spikes(current, layer.step_parameters(), w_rec=layer.weight_rec, kernel="torch")
        replay(leaf, layer.step_parameters(), found.spikes, w_rec=layer.weight_rec, spike_fn=layer._spike_fn).spikes.sum().backward()

    def step(kind):
        make = _old_current if kind == "old" else _new_current
        def run():
            layer.zero_grad()
            _engine(kind, make(layer, x), layer).spikes.sum().backward()
        return run

    def inference(kind):
        make = _old_current if kind == "old" else _new_current
        def run():
            with torch.no_grad():
                _engine(kind, make(layer, x), layer)
        return run

    stages = [
        ("input projection fwd+bwd", {"old": projection(_old_current), "new": projection(_new_current)}),
        ("spike search", {"old": search("torch"), "new": search("blockwise")}),
        ("engine fwd+bwd (from current)", {"old": engine("old"), "new": engine("new"), "standard": engine("standard")}),
        ("  of which old: search + replay", {"old": old_replay}),
        ("training step", {"old": step("old"), "new": step("new"), "standard": step("standard")}),
        ("inference", {"old": inference("old"), "new": inference("new"), "standard": inference("standard")}),
    ]
    for title, fns in stages:
        load0 = os.getloadavg()[0]
        _report(title, _interleaved(fns, repeats), load0)


def _check_identical(layer, x) -> None:
    ref = copy.deepcopy(layer).double()
    x64 = x.double()
    with torch.no_grad():
        cur = _new_current(ref, x64)
        spikes = {kind: _engine(kind, cur, ref).spikes for kind in ("old", "new", "standard")}
    for kind in ("old", "new"):
        if not torch.equal(spikes[kind], spikes["standard"]):
            raise SystemExit(f"float64 spikes of the {kind} path differ from the step-by-step engine's")


def fit_step(repeats: int, seed: int, cells: int = 1) -> None:
    case = BenchmarkCase(T=10_000, arp_steps=20, batch=3, hidden=cells, layers=1, recurrent=False, n_in=1, task="fit_cell")
    net, x, target = build_case(case, seed, torch.device("cpu"), torch.float32)
    models = {k: copy.deepcopy(net) for k in ("old", "new")}
    optims = {k: torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-5) for k, m in models.items()}

    def run(kind):
        model, opt = models[kind], optims[kind]
        def go():
            with use_block_kernel("torch" if kind == "old" else "blockwise"):
                model.zero_grad(set_to_none=True)
                out = model(x)[-1]
                van_rossum_distance(out, target, 10.0, case.dt_ms, reduction="sum").backward()
                opt.step()
        return go

    load0 = os.getloadavg()[0]
    _report(f"fit step ({cells} cell{'s' if cells > 1 else ''}, fwd+bwd+Adam)", _interleaved({k: run(k) for k in models}, repeats), load0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, nargs="+", default=[1024, 2048], help="time steps of the network case")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per stage and path")
    p.add_argument("--seed", type=int, default=0, help="seed of the input and the network")
    p.add_argument("--fit", action="store_true", help="also time the single-cell fit step")
    p.add_argument("--fit-only", action="store_true", help="only time the single-cell fit step")
    p.add_argument("--fit-cells", type=int, nargs="+", default=[1], metavar="K",
                   help="cells fitted together in the fit step (3 x K x 10,000 steps; default 1)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall time (default), or this process's CPU time: steadier on a busy machine with --threads 1")
    args = p.parse_args(argv)
    global CLOCK
    CLOCK = time.perf_counter if args.clock == "wall" else time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"threads {torch.get_num_threads()}, {args.clock} clock, median (and min) of {args.repeats}, float32, "
          f"torch {torch.__version__}; Nx: old median / this path's median")
    if not args.fit_only:
        for T in args.T:
            network(T, args.repeats, args.seed)
    if args.fit or args.fit_only:
        for cells in args.fit_cells:
            fit_step(args.repeats, args.seed, cells)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
