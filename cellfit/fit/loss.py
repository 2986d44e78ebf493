"""The training loss of a multi-cell fit: van Rossum distances to each cell's recorded spikes.

The recorded repeats of a stimulus are averaged (the mean of filtered trains is the filter
of the mean train), each distinct stimulus weighted by its number of repeats, and each cell
is scored at the van Rossum time constant of its own loss stage (coarse to fine).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from cellfit.fit import metrics

__all__ = ["LossTargets", "padded"]


def padded(arrays: Sequence[np.ndarray], fill: float = 0.0) -> np.ndarray:
    """Stack (U_k, T) arrays into (U_max, K, T), padding missing rows with ``fill``."""
    U = max(a.shape[0] for a in arrays)
    T = arrays[0].shape[-1]
    out = np.full((U, len(arrays), T), fill, dtype=np.float64)
    for k, a in enumerate(arrays):
        out[: a.shape[0], k] = a
    return out


class LossTargets:
    """Filtered mean targets for each van Rossum time constant of the coarse-to-fine schedule."""

    def __init__(self, target: torch.Tensor, w: torch.Tensor, taus_ms: Sequence[float], dt_ms: float):
        self.taus = list(taus_ms)
        self.dt_ms = dt_ms
        self.w = w  # (U, K) trace weights, each column sums to 1
        with torch.no_grad():
            # mean over repeats of the filtered targets = filter of the mean target (linear)
            self.filtered = [metrics.exp_filter(target, tau, dt_ms) for tau in self.taus]

    def loss(self, spikes: torch.Tensor, stage: np.ndarray) -> torch.Tensor:
        """(U, K, T) model spikes -> (K,) van Rossum distance, each cell at its own stage's tau.

        ``stage``: (K,) host array of stage indices (kept on the host: no device sync to decide
        which filters to run).
        """
        out = spikes.new_zeros(spikes.shape[1])
        stage_t = torch.as_tensor(stage, device=spikes.device)
        for i, tau in enumerate(self.taus):
            if not (stage == i).any():
                continue
            sel = stage_t == i
            weight = -0.5 * math.expm1(-2.0 * self.dt_ms / tau)
            diff = metrics.exp_filter(spikes, tau, self.dt_ms) - self.filtered[i]
            per_cell = (weight * diff.pow(2).sum(-1) * self.w).sum(0)
            out = torch.where(sel, per_cell, out)
        return out

    def select(self, idx: torch.Tensor) -> "LossTargets":
        """The targets of the cells ``idx`` (e.g. repeated once per grid candidate)."""
        new = object.__new__(LossTargets)
        new.taus, new.dt_ms, new.w = self.taus, self.dt_ms, self.w[:, idx]
        new.filtered = [f[:, idx] for f in self.filtered]
        return new


