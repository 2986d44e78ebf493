"""The optimiser of a multi-cell fit: Adam with a learning rate, step count and restart per cell.

K cells are the K neurons of one layer; :class:`CellwiseAdam` updates exactly as one
``torch.optim.Adam`` per cell would, with masked tensor operations over all cells at once
(so the per-epoch cost does not grow with K).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

__all__ = ["CellwiseAdam", "to_device_rows"]


def to_device_rows(like: torch.Tensor, *rows: np.ndarray) -> torch.Tensor:
    """Stack (K,) host arrays and move them to ``like``'s device and dtype in a single copy."""
    return torch.as_tensor(np.stack([np.asarray(r, dtype=np.float64) for r in rows]), dtype=like.dtype,
                           device=like.device)


class CellwiseAdam:
    """Adam with its own learning rate, step count and restart for each cell (row 0 of every parameter).

    The update is ``torch.optim.Adam``'s (defaults: betas 0.9/0.999, eps 1e-8, bias-corrected
    moments), applied only to the rows selected in :meth:`step`; the other rows, moments and
    step counts are left exactly as they were, so a cell that has stopped (or failed with a
    non-finite loss) is frozen while the others train.
    """

    def __init__(self, params: Sequence[torch.Tensor], lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        K = self.params[0].shape[0]
        self.lr = np.full(K, float(lr))
        self.steps = np.zeros(K, dtype=np.int64)
        self.betas, self.eps = betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def restart(self, cells: np.ndarray, on_device: Optional[torch.Tensor] = None) -> None:
        """Fresh moments for the cells where the boolean (K,) array ``cells`` is True (as a new
        ``torch.optim.Adam`` would have); ``on_device``: the same mask already on the parameters' device."""
        if not cells.any():
            return
        self.steps[cells] = 0
        mask = on_device if on_device is not None else torch.as_tensor(cells, device=self.params[0].device)
        for m, v in zip(self.exp_avg, self.exp_avg_sq):
            shape = (-1,) + (1,) * (m.dim() - 1)
            m.masked_fill_(mask.view(shape), 0.0)
            v.masked_fill_(mask.view(shape), 0.0)

    @torch.no_grad()
    def step(self, cells: np.ndarray) -> None:
        """One Adam step for the cells where the boolean (K,) array ``cells`` is True."""
        if not cells.any():
            return
        b1, b2 = self.betas
        self.steps[cells] += 1
        t = np.where(cells, self.steps, 1).astype(np.float64)
        p0 = self.params[0]
        # one host-to-device copy per step (each blocking copy waits for the GPU)
        sel, step_size, bc2_sqrt = to_device_rows(p0, cells, self.lr / (1.0 - b1**t), np.sqrt(1.0 - b2**t))
        sel = sel > 0
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            shape = (-1,) + (1,) * (p.dim() - 1)
            rows = sel.view(shape)
            g = torch.where(rows, p.grad, torch.zeros((), dtype=p.dtype, device=p.device))
            m_new = m.lerp(g, 1.0 - b1)
            v_new = (v * b2).addcmul_(g, g, value=1.0 - b2)
            denom = (v_new.sqrt() / bc2_sqrt.view(shape)).add_(self.eps)
            p_new = p - step_size.view(shape) * (m_new / denom)
            m.copy_(torch.where(rows, m_new, m))
            v.copy_(torch.where(rows, v_new, v))
            p.copy_(torch.where(rows, p_new, p))


