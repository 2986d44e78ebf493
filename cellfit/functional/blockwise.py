r"""The Block algorithm with a block-local gradient: the Block engine's path on CPUs.

:func:`cellfit.functional.alif.alif_blocks` on a GPU finds the spikes with a block loop
(the fused Triton kernel) and rebuilds ``V`` and :math:`\theta` for the gradient with
full-length FFT filters (:func:`~cellfit.functional.alif.replay`). On a CPU those full-length
passes cost more than the simulation itself. This module keeps everything inside the blocks
of :math:`T_R` steps instead, and hands the gradient a record of what the spike search
already computed:

**Forward** (a loop over the ``ceil(T / T_R)`` blocks, no autograd graph). For block ``m``
and every (sample, neuron) row, with ``k`` the position of the previous block's spike
(``k = T_R``: none) and ``r(k)`` the refractory prefix it leaves (``k``, or ``k + 1`` when
:math:`T_R = 1`),

.. math::
    \tilde I_m[j] &= \mathbb{1}[j \ge r]\,\big(I_m[j] + \textstyle\sum_i W^\text{rec}_{\cdot i} S_{m-1,i}[j]\big) \\
    X_m[t] &= \sum_{j \le t} (1-\beta)\beta^{t-j}\,\tilde I_m[j] + \beta^{t+1} v_m - d\,p^t a_m - 1
           \;=\; V_m[t] - \theta_m[t]

is **one** batched product per block, ``[Ĩ | v | a | 1] @ Kaug`` with a fixed
``(T_R + 3) x (T_R + 2)`` matrix per neuron (:func:`augmented_kernel`), whose two extra
columns give a constant +1 (so that ``argmax(X > 0)`` returns ``T_R`` when nothing
crosses) and the potential at the block's last step, :math:`V_m[T_R-1]`, computed
directly rather than as :math:`X + \theta` (no cancellation). The first positive entry
is the block's only spike ``k_m`` (a neuron fires at most once in ``T_R`` steps); the
carried state is :math:`v_{m+1} = V_m[T_R-1]` without a spike and 0 after one, and
:math:`a_{m+1} = p^{T_R} a_m + \mathbb{1}[\text{spike}]\,p^{T_R-1-k_m}`. Recurrent input
(latency :math:`T_R`: block ``m-1`` feeds block ``m`` at the same position) is added
sparsely, one column of :math:`W^\text{rec}` per spike, since a block holds at most one
spike per row.

**Backward** (:class:`BlockwiseALIF`, written by hand). With the spikes fixed, each
block is linear in ``[Ĩ | v | a | 1]``, so the surrogate gradient
:math:`\delta = g \cdot \mathbb{1}[\text{free}] \cdot \sigma'(X)` goes back through the
same matrices: two batched products for the whole sequence
(:math:`\partial\tilde I` and :math:`\partial K_\text{aug}`, from which
:math:`\partial\ln\beta`, :math:`\partial\ln p` and :math:`\partial d` follow by the
chain rule on the small matrix), plus two short reverse scans over blocks for the
carries: :math:`\lambda_m = \partial v_m = q_m + \beta^{T_R}\mathbb{1}[\text{no spike in } m]\,\lambda_{m+1}`
(with :math:`q_m = \sum_t \beta^{t+1}\delta_m[t]`, the gradient reaching the potential at
block ``m+1``'s start re-enters block ``m`` as a gradient on :math:`V_m[T_R-1]`, i.e. on
the extra column) and :math:`\kappa_m = \partial a_m = \rho_m + p^{T_R}\kappa_{m+1}`.
The scans are log-depth (:func:`linear_scan`), so a 10,000-step fit with 500 blocks
costs a handful of small operations, not a Python loop.

These are the same equations as :func:`~cellfit.functional.alif.alif_standard`'s (its
reset, adaptation and recurrent spikes are detached, as here), so spikes are identical and
gradients agree up to rounding; ``tests/functional/test_blockwise.py`` checks both against
the step-by-step engine. The forward keeps only the blocks' inputs ``[Ĩ | v | a | 1]``
(``(T_R + 3) / T_R`` times the size of the current); the backward recomputes ``X`` from
them in one product, in the buffer that then holds its gradient. Large buffers are
recycled between calls (a fresh allocation of tens of MB costs a page fault per 4 KiB on
first touch, about one more pass over the data).

Layout: internally ``(N, blocks, B, T_R)`` (neurons first, so each batched product is a
single ``bmm`` with one matrix per neuron).

This module is longer than ~500 lines because its forward, its hand-written backward and
the workspace they share are one algorithm: the backward reads the forward's record
directly, and splitting them would spread one set of index conventions over two files.
"""

from __future__ import annotations

import threading
import weakref
from typing import Callable, NamedTuple, Optional

import torch
from torch.autograd.function import once_differentiable

__all__ = [
    "augmented_kernel",
    "linear_scan",
    "blockwise_search",
    "BlockwiseALIF",
    "blockwise_alif",
    "clear_workspace",
    "SUPPORTED_DTYPES",
]

SUPPORTED_DTYPES = (torch.float32, torch.float64)



class _Workspace:
    """Large scratch tensors kept for the next call of the same shape.

    A fresh CPU allocation of tens of megabytes is returned to the operating system when
    freed, so the next one pays a page fault per 4 KiB page on first touch (about as much
    as a pass over the data). The engine's recorded blocks and its backward's scratch are
    the same size at every training step, so they are recycled instead. At most
    ``limit`` idle buffers are kept; :func:`clear_workspace` releases them.
    """

    def __init__(self, limit: int = 8):
        self.limit = limit
        self._idle: list[torch.Tensor] = []
        self._lock = threading.Lock()

    def take(self, shape, dtype, device) -> torch.Tensor:
        """An uninitialised tensor of ``shape`` (recycled if one of that size is idle)."""
        n = 1
        for size in shape:
            n *= size
        with self._lock:
            for i, buf in enumerate(self._idle):
                if buf.numel() == n and buf.dtype == dtype and buf.device == device:
                    return self._idle.pop(i).view(shape)
        return torch.empty(shape, dtype=dtype, device=device)

    def give(self, buf: torch.Tensor) -> None:
        if buf.device.type != "cpu":
            return  # CUDA has its own caching allocator
        with self._lock:
            self._idle.append(buf)
            del self._idle[: max(0, len(self._idle) - self.limit)]

    def clear(self) -> None:
        with self._lock:
            self._idle.clear()


_WORKSPACE = _Workspace()


def clear_workspace() -> None:
    """Free the idle buffers that the blockwise engine keeps for reuse between calls."""
    _WORKSPACE.clear()


def augmented_kernel(log_beta: torch.Tensor, log_p: torch.Tensor, d: torch.Tensor, L: int) -> torch.Tensor:
    r"""(N, L + 3, L + 2) matrix ``Kaug`` with ``[Ĩ | v | a | 1] @ Kaug = [V - θ | 1 | V[L-1]]`` for one block.

    Rows: the ``L`` gated currents, the potential ``v`` carried in, the adaptation ``a`` at the
    block's first step, a constant 1. Columns ``t < L``: :math:`(1-\beta)\beta^{t-j}[t \ge j]`,
    :math:`\beta^{t+1}`, :math:`-d p^t`, -1; column ``L``: (0, 0, 0, +1); column ``L + 1``: the
    potential at step ``L - 1`` (:math:`(1-\beta)\beta^{L-1-j}`, :math:`\beta^L`, 0, 0).
    Differentiable in all three parameter vectors.
    """
    N = log_beta.shape[0]
    dtype, device = log_beta.dtype, log_beta.device
    pos = torch.arange(L, device=device, dtype=dtype)
    lag = pos[None, :] - pos[:, None]  # [j, t] = t - j
    causal = lag >= 0
    lb = log_beta[:, None, None]
    conv = torch.where(causal, (1.0 - log_beta.exp())[:, None, None] * torch.exp(lag.clamp(min=0) * lb), 0.0)  # (N, L, L)
    bpow = torch.exp((pos + 1.0) * log_beta[:, None])  # (N, L)
    dpp = d[:, None] * torch.exp(pos * log_p[:, None])  # (N, L)
    zeros = lambda *s: torch.zeros(*s, dtype=dtype, device=device)
    ones = lambda *s: torch.ones(*s, dtype=dtype, device=device)
    top = torch.cat([conv, zeros(N, L, 1), conv[:, :, L - 1 : L]], dim=2)  # (N, L, L + 2)
    row_v = torch.cat([bpow, zeros(N, 1), bpow[:, L - 1 : L]], dim=1)[:, None, :]
    row_a = torch.cat([-dpp, zeros(N, 2)], dim=1)[:, None, :]
    row_1 = torch.cat([-ones(N, L), ones(N, 1), zeros(N, 1)], dim=1)[:, None, :]
    return torch.cat([top, row_v, row_a, row_1], dim=1)


def linear_scan(a: torch.Tensor, b: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """``h[m] = a[m] h[m-1] + b[m]`` along dim 1 (``h[-1] = 0``), or ``h[m] = a[m] h[m+1] + b[m]``
    with ``reverse``; log-depth (Hillis-Steele), no autograd. ``a`` and ``b``: (N, M, ...)."""
    if reverse:
        return linear_scan(a.flip(1), b.flip(1)).flip(1)
    h, A = b.clone(), a.clone()
    M, step = h.shape[1], 1
    while step < M:
        h[:, step:] = torch.addcmul(h[:, step:], A[:, step:], h[:, :-step])
        if step * 2 < M:
            A[:, step:] = A[:, step:] * A[:, :-step]
        step *= 2
    return h


class _Tables(NamedTuple):
    """Per-position look-up tables, indexed by a block's spike position k in [0, L] (L: no spike)."""

    free: torch.Tensor  # (L + 1, L): 1 where the next block is not refractory
    keep: torch.Tensor  # (L + 1,): 1 when no spike (the potential carries over)
    jump: torch.Tensor  # (N, L + 1): p^(L - 1 - k), the spike's share of the next block's adaptation (0 for k = L)
    prefix: torch.Tensor  # (L + 1,) long: refractory prefix r(k) of the next block


def _tables(log_p: torch.Tensor, L: int, dtype, device) -> _Tables:
    extra = 1 if L == 1 else 0  # with T_R = 1 the reset alone silences the step after a spike
    k = torch.arange(L + 1, device=device)
    prefix = torch.where(k < L, k + extra, 0)
    free = (torch.arange(L, device=device)[None, :] >= prefix[:, None]).to(dtype)
    keep = (k == L).to(dtype)
    kf = k.to(dtype)
    jump = torch.where(k < L, torch.exp((L - 1.0 - kf)[None, :] * log_p[:, None]), 0.0)
    return _Tables(free, keep, jump, prefix)


class SearchResult(NamedTuple):
    k: torch.Tensor  # (N, M, B) long: spike position in each block, L for none (none past step T - 1)
    spikes: torch.Tensor  # (B, N, T) 0/1 in the current's dtype
    v_end: torch.Tensor  # (B, N) potential at step T - 1
    a_end: torch.Tensor  # (B, N) adaptation at step T - 1
    aug: Optional[torch.Tensor]  # (N, M, B, L + 3) [Ĩ | v | a | 1] per block, if recorded
    kaug: torch.Tensor  # (N, L + 3, L + 2)


def _first_rec_input(w: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:
    """(N, B, L) recurrent current of the first block from the state's last L spikes (B, N, L)."""
    return torch.einsum("ij,bjt->ibt", w, tail)


@torch.no_grad()
def blockwise_search(
    current: torch.Tensor,
    log_beta: torch.Tensor,
    log_p: torch.Tensor,
    d: torch.Tensor,
    L: int,
    k0: torch.Tensor,
    v0: torch.Tensor,
    a0: torch.Tensor,
    w_rec: Optional[torch.Tensor] = None,
    tail: Optional[torch.Tensor] = None,
    record: bool = False,
) -> SearchResult:
    """Exact spikes by the block loop of the module docstring (no gradient).

    Args:
        current: (B, N, T) feedforward current, float32 or float64, T >= 1.
        log_beta, log_p, d: (N,) step parameters.
        L: :math:`T_R` in steps.
        k0: (B, N) long, position of the last spike in the state's last L steps (L: none).
        v0, a0: (B, N) potential carried into step 0 (0 after a spike) and adaptation at step 0.
        w_rec, tail: recurrent weights (N, N) and the state's last L spikes (B, N, L).
        record: keep every block's ``[Ĩ | v | a | 1]`` for :class:`BlockwiseALIF`'s backward.

    Only a spiking row differs from the plain current in the next block (its refractory
    prefix is zeroed, and its spike feeds the recurrent input), so the loop copies each
    block of current once, patches those rows, and runs one product and one maximum per block.
    """
    B, N, T = current.shape
    dtype, device = current.dtype, current.device
    M = -(-T // L)
    kaug = augmented_kernel(log_beta.detach(), log_p.detach(), d.detach(), L)
    tab = _tables(log_p.detach(), L, dtype, device)
    p_block = torch.exp(L * log_p.detach())[:, None]  # (N, 1)
    if record:
        aug = _WORKSPACE.take((N, M, B, L + 3), dtype, device)
    else:
        aug = torch.empty((N, 1, B, L + 3), dtype=dtype, device=device)
    X = torch.empty((N, B, L + 2), dtype=dtype, device=device)  # contiguous: bmm into a strided view is slow
    aug[..., L + 2] = 1.0
    src = current.detach().permute(1, 0, 2)  # (N, B, T) view
    ks = torch.empty((N, M, B), dtype=torch.long, device=device)
    k = k0.t().contiguous()  # (N, B)
    v = v0.detach().t().contiguous()
    a = a0.detach().t().contiguous()
    w = None if w_rec is None else w_rec.detach()
    big = N * B * L >= _SPARSE_ARGMAX_SIZE
    spiked = (k < L).nonzero(as_tuple=True)  # rows (neuron, sample) that spiked in the previous block
    for m in range(M):
        s = m if record else 0
        A = aug[:, s]
        lo, hi = m * L, min(T, (m + 1) * L)
        if hi - lo == L:
            A[..., :L].copy_(src[..., lo:hi])
        else:
            A[..., hi - lo : L].zero_()
            A[..., : hi - lo].copy_(src[..., lo:hi])
        j, b = spiked
        n_spikes = j.numel()
        free = None
        if n_spikes:
            # refractory prefix of the rows that spiked in the previous block
            kj = k[j, b]
            if n_spikes * _DENSE_GATE > N * B:  # many rows: one pass over the block beats indexing them
                free = tab.free[k]
                A[..., :L] *= free
            else:
                A[j, b, :L] = A[j, b, :L] * tab.free[kj]
        if w is not None:
            if m == 0:
                if tail is not None:
                    A[..., :L] += _first_rec_input(w, tail.to(dtype)) * tab.free[k]
            elif n_spikes * _DENSE_REC > B * L * (N + 64):
                # many spikes: the recurrent input as one product, W @ (this block's spikes)
                prev = torch.zeros((N, B, L), dtype=dtype, device=device)
                prev[j, b, kj] = 1.0
                rec = torch.mm(w, prev.view(N, B * L)).view(N, B, L)
                A[..., :L] += rec * (tab.free[k] if free is None else free)
            elif n_spikes:
                # spike of neuron j at position kj feeds W[:, j] into every neuron at kj, unless refractory there
                gate = tab.free[k[:, b], kj[None, :]]  # (N, spikes)
                A[..., :L].index_put_((_rows(N, device), b[None, :], kj[None, :]), w[:, j] * gate, accumulate=True)
        A[..., L] = v
        A[..., L + 1] = a
        torch.bmm(A, kaug, out=X)
        k = _first_crossing(X, L, big)
        ks[:, m] = k
        v = X[..., L + 1] * tab.keep[k]
        a = torch.addcmul(torch.gather(tab.jump, 1, k), p_block, a)
        spiked = (k < L).nonzero(as_tuple=True)
    # the last block is padded past step T - 1: a crossing there is not a spike
    jl = (T - 1) - (M - 1) * L
    last = ks[:, M - 1]
    last.masked_fill_(last > jl, L)
    # state at step T - 1 (the potential recomputed at that step, not read off X)
    A = aug[:, M - 1 if record else 0]
    a_last = A[..., L + 1]
    v_j = torch.bmm(A[..., : L + 1], kaug[:, : L + 1, jl : jl + 1])[..., 0]
    earlier = last < jl
    v_end = torch.where(earlier, 0.0, v_j)
    lp = log_p.detach()[:, None]
    a_end = a_last * torch.exp(jl * lp) + torch.where(earlier, torch.exp((jl - 1 - last).clamp(min=0) * lp), 0.0)
    spikes = spikes_from_positions(ks, L, T, dtype)
    return SearchResult(ks, spikes, v_end.t(), a_end.t(), aug if record else None, kaug)


_DENSE_GATE = 8
_DENSE_REC = 320
"""With more than ``N B / _DENSE_GATE`` spiking rows in a block, the next block's refractory
prefixes are applied by one pass over the block instead of row by row; with more than
``B L (N + 64) / _DENSE_REC`` spikes, their recurrent input is one product ``W @ spikes``
instead of one column of ``W`` per spike (indexing costs ~20x a vectorised pass per entry;
a product ~1/16 per multiply-add). Speed only: both ways give the same numbers."""

_SPARSE_ARGMAX_SIZE = 1 << 15
"""Blocks of at least this many entries find their first crossings via a maximum per row and an
argmax over the few rows that crossed (an argmax over every short row is slow on CPUs); smaller
blocks (a fit: a few samples x cells) take the direct argmax, one operation fewer per block."""


def _rows(N: int, device) -> torch.Tensor:
    return torch.arange(N, device=device)[:, None]


def _first_crossing(X: torch.Tensor, L: int, big: bool) -> torch.Tensor:
    """(N, B) long: first t < L with X[..., t] > 0, or L (column L of X is the constant +1)."""
    if not big:
        return torch.argmax((X[..., : L + 1] > 0).view(torch.uint8), dim=-1)
    crossed = (X[..., :L].amax(-1) > 0).nonzero(as_tuple=True)
    k = torch.full(X.shape[:2], L, dtype=torch.long, device=X.device)
    if crossed[0].numel():
        k[crossed] = torch.argmax((X[crossed[0], crossed[1], :L] > 0).view(torch.uint8), dim=-1)
    return k


def spikes_from_positions(ks: torch.Tensor, L: int, T: int, dtype) -> torch.Tensor:
    """(B, N, T) 0/1 spike trains from (N, M, B) per-block positions (L: none)."""
    N, M, B = ks.shape
    out = torch.zeros((B, N, T), dtype=dtype, device=ks.device)
    n, m, b = (ks < L).nonzero(as_tuple=True)
    out[b, n, m * L + ks[n, m, b]] = 1.0
    return out


_CHUNK = 1 << 18
"""Entries per chunk of the surrogate's element-wise passes (about 1 MB in float32: they stay in cache)."""


class _Refractory(NamedTuple):
    """Every refractory step, as (row, column) of the (N, M, B, ·) block layout (see :func:`_refractory_steps`)."""

    row: torch.Tensor  # (n * M + m) * B + b
    col: torch.Tensor  # position in the block, or -1 for an entry outside [0, T) (to be ignored)
    neuron: torch.Tensor

    def flat(self, width: int, spare: int) -> torch.Tensor:
        """Flat indices into a (N, M, B, width) tensor; ignored entries point at column ``spare``."""
        return self.row * width + torch.where(self.col >= 0, self.col, spare)


def _refractory_steps(ks: torch.Tensor, k0: torch.Tensor, L: int, T: int) -> _Refractory:
    """The ``max(L, 2) - 1`` steps after each spike, and after the last spike in the state's tail:
    no current reaches them and no surrogate gradient leaves them. Every other step is free, so
    only these are masked (by flat index, with no boolean indexing: entries outside [0, T) are
    kept, marked ``col = -1``)."""
    R = max(L, 2)
    N, M, B = ks.shape
    n, m, b = (ks < L).nonzero(as_tuple=True)
    t = m * L + ks[n, m, b]
    k0t = k0.t()
    n0, b0 = (k0t < L).nonzero(as_tuple=True)
    n, b = torch.cat([n, n0]), torch.cat([b, b0])
    t = torch.cat([t, k0t[n0, b0] - L])  # the tail's spike, T_R steps before step k0
    steps = (t[:, None] + torch.arange(1, R, device=ks.device)).reshape(-1)
    n = n[:, None].expand(-1, R - 1).reshape(-1)
    b = b[:, None].expand(-1, R - 1).reshape(-1)
    inside = (steps >= 0) & (steps < T)
    steps = steps.clamp(0, T - 1)
    return _Refractory((n * M + steps // L) * B + b, torch.where(inside, steps % L, -1), n)


def _surrogate_into(D, q, x, g_spikes, bpow, derivative, L: int, T: int) -> None:
    """``D[..., :L] = derivative(X) * g`` and ``q = sum_t bpow[t] D[..., t]``, a few neurons at a time."""
    N, M, B, _ = D.shape
    full = T // L
    g = g_spikes.permute(1, 0, 2)  # (N, B, T)
    if full:
        gb = g[..., : full * L].unflatten(-1, (full, L)).transpose(1, 2)  # (N, full, B, L)
        step = max(1, _CHUNK // (full * B * L))
        for n0 in range(0, N, step):
            sl = slice(n0, n0 + step)
            out = D[sl, :full, :, :L]
            torch.mul(derivative(x[sl, :full, :, :L]), gb[sl], out=out)
            q[sl, :full] = torch.einsum("nmbt,nt->nmb", out, bpow[sl])
    if full < M:  # the last, partial block
        rem = T - full * L
        out = D[:, full, :, :L]
        out[..., rem:] = 0.0
        torch.mul(derivative(x[:, full, :, :rem]), g[..., full * L :], out=out[..., :rem])
        q[:, full] = torch.einsum("nbt,nt->nb", out, bpow)


def _to_time_major(dAug: torch.Tensor, L: int, T: int) -> torch.Tensor:
    """(B, N, T) from the (N, M, B, L + 3) block layout's first L columns."""
    N, M, B, _ = dAug.shape
    out = torch.empty((B, N, T), dtype=dAug.dtype, device=dAug.device)
    full = T // L
    if full:
        out[..., : full * L].unflatten(-1, (full, L)).permute(1, 2, 0, 3).copy_(dAug[:, :full, :, :L])
    if full < M:
        out[..., full * L :].copy_(dAug[:, full, :, : T - full * L].permute(1, 0, 2))
    return out


class BlockwiseALIF(torch.autograd.Function):
    """Spikes by :func:`blockwise_search`, gradients by the block-local adjoint (module docstring).

    ``apply(current, w_rec, log_beta, log_p, d, v_init, a_init, L, tail, k0, derivative)``
    returns ``(spikes (B, N, T), v_end (B, N), a_end (B, N))``; ``v_init``/``a_init`` are the
    state's potential and adaptation, ``tail`` its last L spikes, ``k0`` the position of the
    last spike in ``tail`` (L: none), ``derivative`` the surrogate's :math:`\\sigma'(x)`.
    """

    @staticmethod
    def forward(ctx, current, w_rec, log_beta, log_p, d, v_init, a_init, L, tail, k0, derivative):
        B, N, T = current.shape
        v0 = torch.where(tail[..., -1] > 0, 0.0, v_init)  # reset by a spike at the state's last step
        a0 = log_p.exp() * a_init + tail[..., -1]
        res = blockwise_search(current, log_beta, log_p, d, L, k0, v0, a0, w_rec=w_rec, tail=tail, record=True)
        weakref.finalize(ctx, _WORKSPACE.give, res.aug)  # back to the workspace when this graph is freed
        ctx.save_for_backward(res.aug, res.k, res.kaug, log_beta, log_p, d, a_init, k0, tail, w_rec, res.spikes)
        ctx.meta = (L, T, derivative, w_rec is not None)
        ctx.set_materialize_grads(False)
        return res.spikes, res.v_end, res.a_end

    @staticmethod
    @once_differentiable
    def backward(ctx, g_spikes, g_v, g_a):
        aug, ks, kaug, log_beta, log_p, d, a_init, k0, tail, w_rec, spikes = ctx.saved_tensors
        L, T, derivative, recurrent = ctx.meta
        N, M, B, _ = aug.shape
        dtype, device = aug.dtype, aug.device
        tab = _tables(log_p, L, dtype, device)
        jl = (T - 1) - (M - 1) * L
        lp = log_p[:, None, None]
        refractory = _refractory_steps(ks, k0, L, T)
        bpow = kaug[:, L, :L]

        # X = [V - θ | 1 | V[L-1]] of every block again, in one product (the search kept only its inputs);
        # then D = dLoss/dX in the same buffer: the surrogate on free steps, the carry in column L + 1
        # below; column L keeps X's constant 1 (finite; its row of Kaug is 0 but for the constant input)
        D = _WORKSPACE.take((N, M, B, L + 2), dtype, device)
        torch.bmm(aug.view(N, M * B, L + 3), kaug, out=D.view(N, M * B, L + 2))
        D[:, M - 1, :, L + 1] = 0.0
        q = torch.zeros((N, M, B), dtype=dtype, device=device)  # sum_t beta^(t+1) D[t]: reaches the carried potential
        if g_spikes is not None:
            _surrogate_into(D, q, D, g_spikes, bpow, derivative, L, T)
            if refractory.row.numel():  # refractory steps pass no gradient (ignored entries: column L, X's +1)
                flat = refractory.flat(L + 2, L)
                col = refractory.col.clamp(min=0)
                share = torch.where(refractory.col >= 0, bpow[refractory.neuron, col], 0.0)
                q.view(-1).index_add_(0, refractory.row, D.view(-1)[flat] * share, alpha=-1)
                D.view(-1).index_fill_(0, flat, 0.0)
        else:
            D[..., :L] = 0.0
        gv = None
        if g_v is not None:
            # v_end = V at step T - 1 of the last block: 0 after a spike earlier in the block;
            # in a refractory prefix it is the carried potential's decay (0 in a simulation)
            gv = g_v.t() * (ks[:, M - 1] >= jl)
            q[:, M - 1] += gv * kaug[:, L, jl : jl + 1]
        # lambda_m = dLoss/dv_m = q_m + beta^L [no spike in m] lambda_(m+1)
        keep = tab.keep[ks]  # (N, M, B)
        beta_block = kaug[:, L, L + 1][:, None, None]
        lam = linear_scan(beta_block * keep, q, reverse=True)
        D[:, :-1, :, L + 1] = keep[:, :-1] * lam[:, 1:]  # dLoss/dV_m[L-1] through the carry

        dAug = _WORKSPACE.take((N, M, B, L + 3), dtype, device)
        torch.bmm(D.view(N, M * B, L + 2), kaug.transpose(1, 2), out=dAug.view(N, M * B, L + 3))
        dK = torch.bmm(aug.view(N, M * B, L + 3).transpose(1, 2), D.view(N, M * B, L + 2))  # (N, L + 3, L + 2)
        if gv is not None:
            A_last = aug[:, M - 1]
            dAug[:, M - 1, :, :L] += gv[..., None] * kaug[:, None, :L, jl]
            dK[:, : L + 1, jl] += torch.einsum("nb,nbi->ni", gv, A_last[..., : L + 1])

        # adaptation: kappa_m = dLoss/da_m = rho_m + p^L kappa_(m+1)
        rho = dAug[..., L + 1]
        p_j = torch.exp(jl * log_p)[:, None]
        last = ks[:, M - 1]
        earlier = last < jl
        if g_a is not None:
            rho = rho.clone()
            rho[:, M - 1] += g_a.t() * p_j
        p_block = torch.exp(L * log_p)[:, None, None]
        kappa = linear_scan(p_block.expand(N, M, B).contiguous(), rho, reverse=True)
        a_blocks = aug[..., L + 1]
        spiked = ks < L
        kf = ks.to(dtype)
        # d a_(m+1) / d ln p = L p^L a_m + [spike] (L - 1 - k) p^(L - 1 - k)
        da_next = L * p_block * a_blocks + torch.where(spiked, (L - 1.0 - kf) * torch.exp((L - 1.0 - kf) * lp), 0.0)
        g_lp = (kappa[:, 1:] * da_next[:, :-1]).sum((1, 2))
        p0 = log_p.exp()
        g_lp = g_lp + (kappa[:, 0] * p0[:, None] * a_init.t()).sum(1)
        if g_a is not None:
            gat = g_a.t()
            kl = last.to(dtype)
            g_lp = g_lp + (gat * (jl * p_j * a_blocks[:, M - 1]
                                  + torch.where(earlier, (jl - 1.0 - kl) * torch.exp((jl - 1.0 - kl) * log_p[:, None]), 0.0))).sum(1)  # fmt: skip

        grads = [None] * 11
        with torch.enable_grad():
            params = [t.detach().requires_grad_() for t in (log_beta, log_p, d)]
            k_of = augmented_kernel(*params, L)
            want = [ctx.needs_input_grad[i] for i in (2, 3, 4)]
            if any(want):
                got = torch.autograd.grad(k_of, params, dK, allow_unused=True)
                grads[2], grads[3], grads[4] = (g if w else None for g, w in zip(got, want))
        if grads[3] is not None:
            grads[3] = grads[3] + g_lp
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            if refractory.row.numel():  # no current reaches refractory steps (ignored: the unused column L + 2)
                dAug.view(-1).index_fill_(0, refractory.flat(L + 3, L + 2), 0.0)
            dI = _to_time_major(dAug, L, T)
            if ctx.needs_input_grad[1]:
                # dW[i, j] = sum_t dI[i, t] S[j, t - L]: the state's tail feeds the first L steps
                first = min(L, T)
                gw = torch.einsum("bit,bjt->ij", dI[..., :first], tail[..., :first].to(dtype))
                j, m, b = (ks[:, :-1] < L).nonzero(as_tuple=True)
                if T > L and j.numel() * _DENSE_REC > B * T * (N + 16):
                    gw = torch.addbmm(gw, dI[..., L:], spikes[..., : T - L].transpose(1, 2))
                elif j.numel():
                    # each spike at (neuron j, block m, position k) fed W[:, j] into block m + 1 at position k
                    t = (m + 1) * L + ks[j, m, b]
                    inside = t < T
                    j, b, t = j[inside], b[inside], t[inside]
                    gw_t = torch.zeros((N, N), dtype=dtype, device=device)  # gw_t[j, i] = dLoss/dW[i, j]
                    gw_t.index_add_(0, j, dI[b, :, t])
                    gw = gw + gw_t.t()
                grads[1] = gw
            if ctx.needs_input_grad[0]:
                grads[0] = dI
        _WORKSPACE.give(D)
        _WORKSPACE.give(dAug)
        if ctx.needs_input_grad[5]:
            grads[5] = torch.where(tail[..., -1] > 0, 0.0, lam[:, 0].t())
        if ctx.needs_input_grad[6]:
            grads[6] = kappa[:, 0].t() * p0
        return tuple(grads)


def blockwise_alif(
    current: torch.Tensor,
    log_beta: torch.Tensor,
    log_p: torch.Tensor,
    d: torch.Tensor,
    L: int,
    v_init: torch.Tensor,
    a_init: torch.Tensor,
    tail: torch.Tensor,
    k0: torch.Tensor,
    w_rec: Optional[torch.Tensor],
    derivative: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(spikes, v_end, a_end): with gradients through :class:`BlockwiseALIF` when any input needs
    them, else straight from :func:`blockwise_search` (inference: nothing recorded)."""
    tensors = (current, w_rec, log_beta, log_p, d, v_init, a_init)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return BlockwiseALIF.apply(current, w_rec, log_beta, log_p, d, v_init, a_init, L, tail, k0, derivative)
    v0 = torch.where(tail[..., -1] > 0, 0.0, v_init)
    a0 = log_p.exp() * a_init + tail[..., -1]
    res = blockwise_search(current, log_beta, log_p, d, L, k0, v0, a0, w_rec=w_rec, tail=tail)
    return res.spikes, res.v_end, res.a_end
