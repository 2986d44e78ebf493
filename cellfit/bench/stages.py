"""Where the work goes: ATen operation counts of a fit step, and the time of each stage of a training step.

- :func:`fit_step_op_counts`: leaf ATen calls of one single-cell fit step (the ``fit-cell``
  grid's case: 3 sweeps x 10,000 steps, DT 0.1 ms, ARP 2 ms; forward, van Rossum loss,
  backward, Adam) with the PyTorch block loop, for the whole step and for the block loop
  alone. Each call is roughly one kernel launch on a GPU (views make it an upper bound);
  with the fused Triton kernel the block loop becomes one launch plus a few table ops.
- :func:`fitter_op_counts`: leaf ATen calls per epoch of :func:`cellfit.fit.fit_recordings`
  (grid init off) for 1 and 4 in-memory synthetic cells: what each further cell adds.
- :func:`engine_stage_times`: median time of each stage of a training step of the paper's
  synthetic network (1 recurrent layer of 128, 1000 Poisson inputs, ARP 40 steps, batch 64):
  the input projection (forward + backward, shared by both engines), the Block engine's
  spike search (``block_spikes``, no gradient), its differentiable replay (forward, and
  forward + backward), and the standard engine's whole simulation (forward + backward).

The command lines are ``benchmarks/count_ops.py`` and ``benchmarks/engine_breakdown.py``.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch.profiler import profile

from cellfit.bench.cases import BenchmarkCase, grid
from cellfit.bench.timing import measure, summarise_times, torch_threads
from cellfit.bench.workloads import build_case, training_step
from cellfit.data.synthetic import alif_panel, synthetic_recordings
from cellfit.device import resolve_device
from cellfit.fit import FitConfig, fit_recordings
from cellfit.functional.alif import alif_standard, block_spikes, replay

__all__ = ["leaf_aten_calls", "fit_step_op_counts", "fitter_op_counts", "engine_stage_times", "STAGES"]

STAGES = ("input projection fwd+bwd", "block spike search", "replay fwd", "replay fwd+bwd",
          "standard simulation fwd+bwd")
"""The stages of :func:`engine_stage_times`, in order."""


def leaf_aten_calls(fn: Callable[[], object]) -> int:
    """Number of leaf ``aten::`` operations (no ATen children) that ``fn()`` runs, by the PyTorch profiler."""
    with profile() as prof:
        fn()
    return sum(1 for e in prof.events() if e.name.startswith("aten::") and not e.cpu_children)


def fit_step_op_counts(seed: int = 0) -> dict:
    """ATen calls of one single-cell fit step on the CPU (module docstring).

    Returns ``{"case": label, "step": calls per training step, "block_loop": calls in the
    block loop, "blocks": number of blocks}``.
    """
    case = grid("fit-cell")[0]
    net, x, target = build_case(case, seed, torch.device("cpu"), torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    layer = net.layers[0]
    layer.engine = "blocks"
    step = training_step(net, x, case, target, opt)
    step()  # warm-up (Adam state)
    with torch.no_grad():
        current = layer.input_current(x)
    whole = leaf_aten_calls(step)
    loop = leaf_aten_calls(lambda: block_spikes(current, layer.step_parameters(), kernel="torch"))
    return dict(case=case.label(), step=whole, block_loop=loop, blocks=-(-case.T // case.arp_steps))


def fitter_op_counts(cells: tuple[int, ...] = (1, 4), seed: int = 0) -> dict[int, float]:
    """ATen calls per epoch of ``fit_recordings`` for each number of in-memory synthetic cells.

    The per-epoch count is the difference between a 4-epoch and a 2-epoch fit, halved
    (initialisation cancels). Returns ``{cells: calls per epoch}``.
    """
    recs = synthetic_recordings(alif_panel(max(cells), seed=seed), 0.1, 1.0, seed=seed)

    def fit(k, epochs):
        cfg = FitConfig(dt_ms=0.1, arp_ms=2.0, epochs=epochs, grid_init=False)
        return lambda: fit_recordings(recs[:k], cfg, device="cpu", seed=seed, progress=False)

    return {k: (leaf_aten_calls(fit(k, 4)) - leaf_aten_calls(fit(k, 2))) / 2 for k in cells}


def engine_stage_times(
    T: int = 1024, device: str = "cpu", repeats: int = 5, seed: int = 0, threads: Optional[int] = None
) -> dict[str, float]:
    """Median seconds of each stage (:data:`STAGES`) of the paper's synthetic training step, after one warm-up.

    Each stage is timed on its own (not interleaved with the others: they are parts of one
    step, not alternatives), with the device synchronised around every run.
    """
    dev = resolve_device(device)
    with torch_threads(threads):
        net, x, _ = build_case(BenchmarkCase(T=T, arp_steps=40, batch=64), seed, dev, torch.float32)
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
            alif_standard(leaf, layer.step_parameters(), w_rec=layer.weight_rec,
                          spike_fn=layer._spike_fn).spikes.sum().backward()

        stages = dict(zip(STAGES, (projection, search, replay_fwd, lambda: replay_fwd(True), standard)))
        out = {}
        for name, fn in stages.items():
            times, _ = measure({name: fn}, dev, name, repeats=repeats, warmup=1)[name]
            out[name] = summarise_times(times)[0]
    return out
