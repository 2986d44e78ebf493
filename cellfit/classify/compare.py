"""Both ALIF engines on the same batches and weights during training: time, spike counts, agreement.

:func:`cellfit.classify.train.train_classifier` with ``compare_engines`` trains with its
engine as usual and hands every batch, after the backward pass and before the optimiser
step, to :class:`EngineComparison`, which runs the same forward and backward pass with the
other engine (``"standard"`` next to ``"blocks"``, and the reverse) from the same weights.
Its gradients are computed with :func:`torch.autograd.grad` and discarded, so training is
unchanged. Per epoch it reports (:meth:`EngineComparison.epoch_columns`):

- ``fwd_bwd_s`` / ``compare_fwd_bwd_s``: summed forward + backward time of the training
  engine / the other engine over the epoch's batches (device-synchronised);
- ``compare_eval_time_s`` and ``compare_{train,test}_spikes_l{k}``: the other engine's test
  pass time and mean spike counts per neuron and sample;
- ``engine_spike_mismatches``: spike entries (all layers, all batches) on which the two
  engines differ; 0 in float64, and in float32 a spike within rounding of the threshold
  can move (and with it a neuron's later spikes);
- ``engine_grad_rel_diff``: the largest absolute difference between the two engines'
  gradients (any parameter, any batch) divided by the largest gradient entry of the
  training engine in that batch.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from cellfit.device import synchronize

__all__ = ["EngineComparison", "engine_summary", "other_engine"]


def other_engine(engine: str) -> str:
    """The engine compared with ``engine``: ``"standard"`` for ``"blocks"``, else ``"blocks"``."""
    return "standard" if engine == "blocks" else "blocks"


class EngineComparison:
    """Accumulates one epoch of the comparison (see the module docstring)."""

    def __init__(self, model, engine: str, device: torch.device):
        self.model, self.engine, self.other, self.device = model, engine, other_engine(engine), device
        self.params = [p for p in model.parameters() if p.requires_grad]
        self._reset()

    def _reset(self) -> None:
        self.main_s = self.other_s = 0.0
        self.spikes = torch.zeros(self.model.n_layers, dtype=torch.float64, device=self.device)
        self.mismatches = torch.zeros((), dtype=torch.long, device=self.device)
        self.rel_diff = torch.zeros((), dtype=torch.float64, device=self.device)
        self.n = 0

    def add_main_time(self, seconds: float) -> None:
        """Forward + backward time of the training engine on one batch."""
        self.main_s += seconds

    def batch(self, x: torch.Tensor, y: torch.Tensor, main_spikes: Sequence[torch.Tensor]) -> float:
        """Run the other engine on this batch (after the training engine's backward, whose
        gradients are in ``.grad``); returns the seconds it took, comparison included."""
        synchronize(self.device)
        t0 = time.perf_counter()
        self.model.engine = self.other
        try:
            out = self.model(x)
            grads = torch.autograd.grad(F.cross_entropy(out.scores, y), self.params, allow_unused=True)
        finally:
            self.model.engine = self.engine
        synchronize(self.device)
        self.other_s += time.perf_counter() - t0
        with torch.no_grad():
            for a, b in zip(out.spikes, main_spikes):
                self.mismatches += (a != b).sum()
            self.spikes += torch.stack([s.double().sum() / s.shape[1] for s in out.spikes])
            pairs = [(g, p.grad) for g, p in zip(grads, self.params) if g is not None and p.grad is not None]
            if pairs:
                diff = torch.stack([(g - h).abs().max() for g, h in pairs]).max().double()
                scale = torch.stack([h.abs().max() for _, h in pairs]).max().double()
                self.rel_diff = torch.maximum(self.rel_diff, diff / scale.clamp(min=torch.finfo(torch.float64).tiny))
        self.n += x.shape[0]
        synchronize(self.device)
        return time.perf_counter() - t0

    def evaluate(self, run: Callable[[], dict]) -> dict:
        """``run()`` (a test pass, e.g. :func:`cellfit.classify.train.evaluate`) with the other engine."""
        self.model.engine = self.other
        try:
            return run()
        finally:
            self.model.engine = self.engine

    def epoch_columns(self, test: dict | None) -> dict:
        """The epoch's comparison columns (``test``: the other engine's :meth:`evaluate` result or None); resets."""
        n = max(self.n, 1)
        row = {
            "compare_engine": self.other,
            "fwd_bwd_s": self.main_s,
            "compare_fwd_bwd_s": self.other_s,
            "compare_eval_time_s": test["time_s"] if test else float("nan"),
            "engine_spike_mismatches": int(self.mismatches),
            "engine_grad_rel_diff": float(self.rel_diff),
        }
        for k, s in enumerate(self.spikes.tolist()):
            row[f"compare_train_spikes_l{k + 1}"] = s / n
        for k in range(self.model.n_layers):
            row[f"compare_test_spikes_l{k + 1}"] = test["spikes"][k] if test else float("nan")
        self._reset()
        return row


def engine_summary(history: Sequence[dict], engine: str) -> str:
    """One line over all epochs of a ``compare_engines`` run: mean times per epoch, spikes, agreement."""
    if not history or "compare_engine" not in history[0]:
        return "no engine comparison in this run"
    mean = lambda key: sum(r[key] for r in history) / len(history)  # noqa: E731
    other = history[0]["compare_engine"]
    main_s, other_s = mean("fwd_bwd_s"), mean("compare_fwd_bwd_s")
    layers = sum(1 for k in history[0] if k.startswith("train_spikes_l"))
    spikes = lambda prefix: "/".join(f"{mean(f'{prefix}train_spikes_l{k + 1}'):.2f}" for k in range(layers))  # noqa: E731
    return (
        f"engines per epoch: {engine} fwd+bwd {main_s:.2f} s, {other} {other_s:.2f} s "
        f"({other} / {engine} = {other_s / max(main_s, 1e-12):.2f}); spikes per neuron and sample "
        f"{engine} {spikes('')}, {other} {spikes('compare_')}; differing spike entries "
        f"{sum(r['engine_spike_mismatches'] for r in history)}, largest relative gradient difference "
        f"{max(r['engine_grad_rel_diff'] for r in history):.1e}"
    )
