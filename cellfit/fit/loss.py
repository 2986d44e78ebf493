"""The training loss of a multi-cell fit: van Rossum distances to each cell's recorded spikes.

The recorded repeats of a stimulus are averaged (the mean of filtered trains is the filter
of the mean train), each distinct stimulus weighted by its number of repeats, and each cell
is scored at the van Rossum time constant of its own loss stage (coarse to fine). The final
stage may instead score one minus an explained variance shaped like the held-out score
(``FitConfig.final_loss="explained_variance"``; :meth:`LossTargets.loss`).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch

from cellfit.fit import metrics

__all__ = ["LossTargets", "padded", "repeat_variance"]


def padded(arrays: Sequence[np.ndarray], fill: float = 0.0) -> np.ndarray:
    """Stack (U_k, T) arrays into (U_max, K, T), padding missing rows with ``fill``."""
    U = max(a.shape[0] for a in arrays)
    T = arrays[0].shape[-1]
    out = np.full((U, len(arrays), T), fill, dtype=np.float64)
    for k, a in enumerate(arrays):
        out[: a.shape[0], k] = a
    return out


class LossTargets:
    """Filtered mean targets for each van Rossum time constant of the coarse-to-fine schedule.

    ``repeat_var``: with it, ``(K,)`` the variance of one recorded repeat filtered at the final time constant, over
    the cell's stimuli concatenated (mean over repeats), and the final stage scores one minus an explained variance
    (:meth:`loss`); None: every stage is a van Rossum distance.
    """

    def __init__(self, target: torch.Tensor, w: torch.Tensor, taus_ms: Sequence[float], dt_ms: float,
                 repeat_var: Optional[torch.Tensor] = None):
        self.taus = list(taus_ms)
        self.dt_ms = dt_ms
        self.w = w  # (U, K) trace weights, each column sums to 1
        self.repeat_var = repeat_var
        with torch.no_grad():
            # mean over repeats of the filtered targets = filter of the mean target (linear)
            self.filtered = [metrics.exp_filter(target, tau, dt_ms) for tau in self.taus]

    def loss(self, spikes: torch.Tensor, stage: np.ndarray) -> torch.Tensor:
        """(U, K, T) model spikes -> (K,) loss, each cell at its own stage's tau.

        A van Rossum distance to the repeats' mean, except at the final stage when the targets hold ``repeat_var``:
        there ``1 - 2 cov(x, m) / (var x + V)``, x the model's and m the mean's filtered trains, both concatenated
        over the cell's stimuli (each weighted by its repeats, as the distance weighs them), V ``repeat_var``. The
        fraction is the mean over repeats of the explained variance between the model and each repeat, the
        held-out score's numerator (:func:`cellfit.fit.metrics.etv_components`), with this stage's exponential
        filter for its Gaussian: the mean of the repeats' covariances with x is x's covariance with their mean, and
        the repeats' variances are taken as equal (V).

        ``stage``: (K,) host array of stage indices (kept on the host: no device sync to decide
        which filters to run).
        """
        out = spikes.new_zeros(spikes.shape[1])
        stage_t = torch.as_tensor(stage, device=spikes.device)
        final = len(self.taus) - 1
        for i, tau in enumerate(self.taus):
            if not (stage == i).any():
                continue
            sel = stage_t == i
            x = metrics.exp_filter(spikes, tau, self.dt_ms)
            if i == final and self.repeat_var is not None:
                per_cell = 1.0 - _explained_variance(x, self.filtered[i], self.w, self.repeat_var)
            else:
                weight = -0.5 * math.expm1(-2.0 * self.dt_ms / tau)
                per_cell = (weight * (x - self.filtered[i]).pow(2).sum(-1) * self.w).sum(0)
            out = torch.where(sel, per_cell, out)
        return out

    def select(self, idx: torch.Tensor) -> "LossTargets":
        """The targets of the cells ``idx`` (e.g. repeated once per grid candidate)."""
        new = object.__new__(LossTargets)
        new.taus, new.dt_ms, new.w = self.taus, self.dt_ms, self.w[:, idx]
        new.repeat_var = None if self.repeat_var is None else self.repeat_var[idx]
        new.filtered = [f[:, idx] for f in self.filtered]
        return new


def _explained_variance(x: torch.Tensor, m: torch.Tensor, w: torch.Tensor, repeat_var: torch.Tensor) -> torch.Tensor:
    """(U, K, T) filtered model and mean trains, (U, K) weights, (K,) one repeat's variance -> (K,) ``2 cov / (var + V)``.

    Means, covariance and variance over the concatenation of each cell's stimuli (weights ``w``; padded stimuli
    weigh 0). A silent model explains 0.
    """
    wt = w[..., None]
    xc = x - (wt * x.mean(-1, keepdim=True)).sum(0, keepdim=True)
    mc = m - (wt * m.mean(-1, keepdim=True)).sum(0, keepdim=True)
    cov = (w * (xc * mc).mean(-1)).sum(0)
    var_x = (w * xc.pow(2).mean(-1)).sum(0)
    return 2.0 * cov / (var_x + repeat_var).clamp(min=torch.finfo(x.dtype).tiny)


def repeat_variance(spikes: np.ndarray, tau_ms: float, dt_ms: float) -> float:
    """(R, E, T) recorded trains -> the variance of one repeat filtered at ``tau_ms`` over its E stimuli
    concatenated, averaged over the repeats (the V of :meth:`LossTargets.loss`)."""
    s = torch.as_tensor(np.asarray(spikes, dtype=np.float64))
    f = metrics.exp_filter(s, tau_ms, dt_ms).reshape(s.shape[0], -1)
    return float(f.var(dim=-1, unbiased=False).mean())


