"""Count the ATen operations of one single-cell fit step: a proxy for GPU kernel launches.

    python benchmarks/count_ops.py

Case: ``pipelines.benchmark``'s ``fit-cell`` grid (3 sweeps x 10,000 steps, DT 0.1 ms, ARP
2 ms; forward, van Rossum loss, backward, Adam). Profiles the step on the CPU with the
PyTorch block loop and counts leaf ATen calls (each is roughly one kernel launch on a GPU;
views make it an upper bound), for the whole step and for the block loop alone. With the
fused Triton kernel the block loop becomes a single launch plus a few table ops.

Then the fitter: ATen calls per epoch of ``fit_recordings`` (grid init off) for 1 and 4
in-memory synthetic cells, i.e. what each further cell of a batch adds per epoch.
"""

from __future__ import annotations

import torch
from torch.profiler import profile

from cellfit.bench import build_case, grid
from cellfit.fit.metrics import van_rossum_distance
from cellfit.functional.alif import block_spikes


def leaf_aten_calls(fn) -> int:
    with profile() as prof:
        fn()
    return sum(1 for e in prof.events() if e.name.startswith("aten::") and not e.cpu_children)


def main() -> int:
    case = grid("fit-cell")[0]
    net, x, target = build_case(case, 0, torch.device("cpu"), torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    layer = net.layers[0]
    layer.engine = "blocks"

    def step():
        net.zero_grad(set_to_none=True)
        van_rossum_distance(net(x)[-1], target, 10.0, case.dt_ms, reduction="sum").backward()
        opt.step()

    step()  # warm-up (Adam state)
    with torch.no_grad():
        current = layer.input_current(x)
    whole = leaf_aten_calls(step)
    loop = leaf_aten_calls(lambda: block_spikes(current, layer.step_parameters(), kernel="torch"))
    print(f"{case.label()}: {whole} ATen calls per training step, {loop} of them in the block loop "
          f"({-(-case.T // case.arp_steps)} blocks); without the loop: {whole - loop}")

    from cellfit.data.synthetic import alif_panel, synthetic_recordings
    from cellfit.fit import FitConfig, fit_recordings

    recs = synthetic_recordings(alif_panel(4, seed=0), 0.1, 1.0, seed=0)

    def fit(k, epochs):
        cfg = FitConfig(dt_ms=0.1, arp_ms=2.0, epochs=epochs, grid_init=False)
        return lambda: fit_recordings(recs[:k], cfg, device="cpu", seed=0, progress=False)

    per_epoch = {k: (leaf_aten_calls(fit(k, 4)) - leaf_aten_calls(fit(k, 2))) / 2 for k in (1, 4)}
    print(f"fit_recordings: {per_epoch[1]:.0f} ATen calls per epoch for 1 cell, {per_epoch[4]:.0f} for 4 "
          f"({(per_epoch[4] - per_epoch[1]) / 3:.0f} per further cell)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
