r"""The Block algorithm with a reset potential and after-spike currents (the GLIF extension).

:mod:`cellfit.functional.alif` states the equations; this module holds the pieces of the
Block engine that the extension changes, used by ``alif.block_spikes`` and ``alif.replay``
when :func:`~cellfit.functional.alif.has_extension` is true (plain ALIF parameters never
reach this module). In normalised units, neuron i, step t:

.. math::

    V[t] &= \big(\beta V[t-1] + (1-\beta) I[t]\big)(1 - S[t-1]) + V_r S[t-1], \qquad
    I[t] = I_\text{in}[t] + \sum_j A_j c_j[t] + \ldots \ (0 \text{ while refractory}) \\
    c_j[t] &= r_j c_j[t-1] + S[t-1]

Why the Block algorithm stays exact. A block of :math:`T_R` steps still holds at most one
spike, at position k, and every later step of the block is refractory, so:

1. *After-spike input.* At the free steps of a block, :math:`c_j[t] = r_j^t c_{j,1}`
   with :math:`c_{j,1}` its value at the block's first step, carried like the adaptation
   variable: :math:`c_{j,1}' = r_j^{T_R} c_{j,1} + r_j^{T_R-1-k}` after a spike at k. The
   block's potential therefore gains :math:`\sum_j A_j c_{j,1} H_j[t]` with the closed form
   :math:`H_j[t] = \sum_{i\le t}(1-\beta)\beta^{t-i} r_j^i` (precomputed per neuron),
   added to the zero-state response ``U`` before the refractory prefix is removed.
2. *Reset potential.* With :math:`M = \max(T_R, 2)` the first free step after a spike at
   :math:`t_s` is :math:`t_s + M`, and the potential just before it is
   :math:`V_r\beta^{M-2}` (at m steps after a spike, :math:`V = V_r\beta^{m-1}` while
   refractory). So the block formula :math:`\tilde V[t] = U[t] + \beta^{t-r+1}c` keeps its
   form with :math:`c = V_r\beta^{M-2} - U[r-1]` for a refractory prefix :math:`r > 0`
   (0 in plain ALIF) and :math:`c = v_0` for :math:`r = 0`, where :math:`v_0` is the
   potential at the previous block's last step: :math:`V_r\beta^{M-2}` after a spike (only
   read when that spike was at the block's first position, :math:`T_R \ge 2`), and
   :math:`V_r` after a block that was refractory as a whole (only :math:`T_R = 1`).
   At the end of a call the potential is :math:`V_r\beta^{j-k-1}` after a spike at
   :math:`k < j` in the last block, and :math:`V_r\beta^{j-r+M-1}` at a refractory step
   :math:`j < r`.

The replay (the differentiable reconstruction from known spikes) adds
:math:`V_r\beta^{t-g-1}` after the last spike :math:`g` and the after-spike input
:math:`\sum_j A_j c_j[t]` (one filter of the spike train with the kernel
:math:`\sum_j A_j r_j^m`, :func:`~cellfit.functional.filters.exp_sum_filter`) to the
current that the membrane filter integrates.

Kernels: :func:`block_loop` (PyTorch, any device) and :func:`block_fused` (the Triton
kernel of :mod:`cellfit.functional.triton_blocks` with its ``EXT`` branch);
``alif._extension_kernel`` chooses between them.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from cellfit.functional.alif import (
    ALIFState,
    ALIFStepParameters,
    ALIFTrace,
    _assemble,
    _entry_decay,
    _first_crossing,
    _latest_spike_index,
    _loop_setup,
    _replay_inputs,
    _replay_threshold,
    _since_last_spike,
)
from cellfit.functional.filters import exp_filter, exp_sum_filter
from cellfit.functional.surrogate import SpikeFn, known_spikes, multi_gaussian

__all__ = ["block_loop", "block_fused", "replay", "extension_tensors"]


def extension_tensors(params: ALIFStepParameters, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Detached ``(v_reset (N,), asc_amp (N, J), asc_log_decay (N, J))`` in ``dtype``; absent
    fields become zeros (``J = 0`` without after-spike currents)."""
    lb = params.log_beta.detach()
    N = lb.shape[0]
    vr = lb.new_zeros(N) if params.v_reset is None else params.v_reset.detach()
    if params.asc_amp is None:
        amp = lr = lb.new_zeros((N, 0))
    else:
        amp, lr = params.asc_amp.detach(), params.asc_log_decay.detach()
    return vr.to(dtype), amp.to(dtype), lr.to(dtype)


def _entry_state(params: ALIFStepParameters, st: ALIFState, lr: torch.Tensor):
    """(r, v0, a1, tail, c1) entering the first block: refractory prefix, potential at the step
    before the first (read only when r = 0), adaptation and after-spike variables at the first
    step, last T_R spikes."""
    L = params.t_ref
    tail = st.spikes.detach()
    latest = _latest_spike_index(tail)
    r = torch.where(latest >= 0, latest + (1 if L == 1 else 0), torch.zeros_like(latest))
    a1 = params.log_p.detach().exp() * st.a.detach() + tail[..., -1]
    B, N = st.v.shape
    asc = st.asc.detach() if st.asc is not None else st.v.new_zeros((B, N, lr.shape[1]))
    c1 = lr.exp() * asc + tail[..., -1:]
    return r, st.v.detach(), a1, tail, c1


@torch.no_grad()
def block_loop(current: torch.Tensor, params: ALIFStepParameters, w_rec: Optional[torch.Tensor],
               st: ALIFState) -> ALIFTrace:
    """Spikes and final state by the Block algorithm's PyTorch loop, with the extension.

    The loop of ``alif.block_spikes`` plus the two terms of the module docstring: the
    after-spike response :math:`\\sum_j A_j c_{j,1} H_j[t]` joins each block's zero-state
    response, and the potential entering a block after a spike is :math:`V_r\\beta^{M-2}`.

    Args:
        current: (B, N, T) feedforward current.
        params: step parameters with the extension fields (absent ones count as zero).
        w_rec: optional (N, N) recurrent weights.
        st: the state to start from (``alif._initial_state``).

    Returns:
        :class:`~cellfit.functional.alif.ALIFTrace` with (B, N, T) spikes (no gradient),
        ``v``/``theta`` None, and the final state (``asc`` (B, N, J) with after-spike
        currents, else None).
    """
    B, N, T = current.shape
    L = params.t_ref
    M = max(L, 2)
    dtype, device = current.dtype, current.device
    vr, amp, lr = extension_tensors(params, dtype)
    J = amp.shape[1]
    g = _loop_setup(current, params, w_rec)
    lb, lp, w, K, ipos, pos, zero = g.lb, g.lp, g.w, g.K, g.ipos, g.pos, g.zero
    # after-spike currents: H_j[t] = sum_{i <= t} (1-beta) beta^(t-i) r_j^i, times A_j
    r_pow = torch.exp(pos * lr[..., None])  # (N, J, L) r_j^t
    amp_h = amp[..., None] * torch.einsum("nti,nji->njt", K, r_pow)  # (N, J, L)
    r_block = torch.exp(L * lr)  # (N, J) r_j^L
    # reset potential: V_r beta^e for e < 2 T_R (potential e + 1 steps after a spike)
    vr_pow = (vr[:, None] * torch.exp(torch.arange(2 * L, device=device, dtype=dtype) * lb)).expand(B, N, 2 * L)
    vr_entry = vr_pow[..., M - 2 : M - 1]  # (B, N, 1) V_r beta^(M-2): the potential before the first free step

    r, v0, a1, tail, c1 = _entry_state(params, st, lr)
    r, v0, a1 = r[..., None], v0[..., None], a1[..., None]  # (B, N, 1); c1 (B, N, J)
    theta_base = torch.ones_like(g.d_p_pow)
    prev = tail
    out = []
    last = g.n_blocks - 1
    j = (T - 1) - last * L
    v_end = a_end = c_end = None
    for n, u in enumerate(g.U.unbind(0)):
        if w is not None:
            u = u + torch.einsum("bnj,ntj->bnt", torch.einsum("bjt,ij->bit", prev, w), K)
        for i in range(J):  # after-spike response sum_j A_j c_j1 H_j[t] (J is small: J products beat an einsum)
            u = torch.addcmul(u, c1[..., i : i + 1], amp_h[:, i])
        free = ipos >= r
        c = torch.where(r > 0, vr_entry - torch.gather(u, -1, (r - 1).clamp(min=0)), v0)
        v = torch.where(free, torch.addcmul(u, _entry_decay(g.beta_table, g.idx_base, r), c), zero)
        # (V is 0 < 1 <= theta while refractory)
        k, spiked, s = _first_crossing(v > torch.addcmul(theta_base, g.d_p_pow, a1), ipos)
        out.append(s)
        if w is not None:
            prev = s.to(dtype)
        if n == last and T > 0:
            # state at step T - 1: after a spike at k < j, V_r beta^(j-k-1); at a refractory step j < r,
            # V_r beta^(j-r+M-1); else the block's potential
            earlier = spiked & (k < j)
            v_refr = torch.gather(vr_pow, -1, (j - r + M - 1).clamp(0, 2 * L - 1))
            v_after = torch.gather(vr_pow, -1, (j - 1 - k).clamp(min=0))
            v_end = torch.where(earlier, v_after, torch.where(j < r, v_refr, v[..., j : j + 1]))
            a_end = a1 * torch.exp(j * lp) + torch.where(earlier, torch.exp((j - 1 - k).clamp(min=0) * lp), zero)
            c_end = c1 * torch.exp(j * lr) + torch.where(earlier, torch.exp((j - 1 - k).clamp(min=0) * lr), zero)  # (B, N, J)
        a1 = torch.addcmul(g.p_block * a1, torch.gather(g.p_after, -1, k), spiked)
        if J:  # c_j at the next block's first step: r_j^L c_j1 + r_j^(L-1-k) after a spike at k
            c1 = torch.addcmul(r_block * c1, torch.exp((L - 1 - k) * lr), spiked)
        # with T_R = 1 a block that is refractory as a whole ends at V_r too
        v0 = torch.where(spiked | (r >= L) if L == 1 else spiked, vr_entry, v[..., -1:])
        r = torch.where(spiked, k + g.extra, g.zero_i)
    spikes, tail_out = _assemble(out, tail, T, dtype)
    if T == 0:
        return ALIFTrace(spikes, None, None, st)
    asc = c_end if params.asc_amp is not None else None
    return ALIFTrace(spikes, None, None, ALIFState(v=v_end[..., 0], a=a_end[..., 0], spikes=tail_out, asc=asc))


def block_fused(current: torch.Tensor, params: ALIFStepParameters, w_rec: Optional[torch.Tensor],
                st: ALIFState) -> ALIFTrace:
    """:func:`block_loop` by the fused Triton kernel (CUDA, or Triton's interpreter on a CPU)."""
    from cellfit.functional.triton_blocks import block_spikes_triton_ext

    L = params.t_ref
    vr, amp, lr = extension_tensors(params, current.dtype)
    r, v0, a1, tail, c1 = _entry_state(params, st, lr)
    spikes, v_end, a_end, c_end = block_spikes_triton_ext(
        current, params.log_beta, params.log_p, params.adapt_scale, L, v0, a1, r,
        v_reset=vr, asc_amp=amp, asc_log_decay=lr, c1=c1,
        first_rec_input=tail if w_rec is not None else None, w_rec=w_rec,
    )  # fmt: skip
    tail_out = torch.cat([tail.to(spikes.dtype), spikes], dim=-1)[..., -L:]
    asc = c_end if params.asc_amp is not None else None
    return ALIFTrace(spikes, None, None, ALIFState(v=v_end, a=a_end, spikes=tail_out, asc=asc))


def replay(current: torch.Tensor, params: ALIFStepParameters, spikes: torch.Tensor, w_rec: Optional[torch.Tensor],
           state: Optional[ALIFState], spike_fn: Optional[SpikeFn], record: Sequence[str]) -> ALIFTrace:
    """``alif.replay`` with the extension (its arguments, passed on by ``alif.replay``): differentiable V, theta
    and spikes from known spikes.

    With :math:`g_t` the last spike before step t and :math:`\\tilde I` the input (after-spike
    currents included) zeroed while refractory,

    .. math::
        c_j[t] &= r_j^{t}\\,c_j[0] + \\sum_{i < t} r_j^{t-1-i} S[i], \\qquad
        c_j[0] = r_j c_j^\\text{state} + S[-1] \\\\
        F[t] &= \\sum_{i \\le t} (1-\\beta)\\beta^{t-i}\\,\\tilde I[i] \\\\
        V[t] &= F[t] - \\beta^{t-g}F[g] + V_r\\,\\beta^{t-g-1} \\quad (g = g_t \\ge -1) \\\\
        V[t] &= F[t] + \\beta^{t+1} V^\\text{state} \\quad (\\text{no spike, or } g_t \\le -2 \\text{ in the state})

    (the current part is exactly zero while refractory and is gated to zero there; the
    reset part is the potential that :func:`~cellfit.functional.alif.alif_standard`
    records at those steps). ``a`` and ``theta`` as in ``alif.replay``. Gradients reach
    :math:`V_r`, :math:`A_j`, :math:`\\ln r_j` and everything ``alif.replay`` reaches.
    Shapes as ``alif.replay``; the final state has ``asc`` (B, N, J) with after-spike currents.
    """
    B, N, T = current.shape
    L = params.t_ref
    dtype = current.dtype
    spike_fn = spike_fn or multi_gaussian()
    st, S, S_ext, gate, total = _replay_inputs(current, params, spikes, w_rec, state)
    tail = S_ext[..., :L]
    asc_end = None
    if params.asc_amp is not None:
        # sum_j A_j c_j[t] = sum_j A_j (r_j^t c_j[0] + sum_{i < t} r_j^(t-1-i) S[i]): one filter of S[t-1]
        # with the kernel sum_j A_j r_j^m, plus the decay of c_j[0]
        amp, lr = params.asc_amp, params.asc_log_decay  # (N, J)
        J = lr.shape[1]
        S_prev = torch.cat([S.new_zeros((B, N, 1)), S], dim=-1)[..., :T]  # S[t-1] within the call
        asc0 = st.asc if st.asc is not None else current.new_zeros((B, N, J))
        c0 = lr.exp() * asc0 + tail[..., -1:]  # (B, N, J) c_j at step 0
        t_j = torch.arange(T, device=current.device, dtype=dtype)
        r_pow = torch.exp(t_j * lr[..., None])  # (N, J, T) r_j^t
        total = total + exp_sum_filter(S_prev, amp, lr) + torch.einsum("bnj,nj,njt->bnt", c0, amp, r_pow)
        if T:  # c_j at step T - 1, for the final state
            asc_end = r_pow[..., -1] * c0 + torch.einsum("bnt,njt->bnj", S_prev, r_pow.flip(-1))
    lb = params.log_beta
    filt = (1.0 - lb.exp())[:, None] * exp_filter(total * gate, lb)

    t_idx, last, in_call, f_at_last, lag = _since_last_spike(S_ext, filt, L)
    v = (filt - torch.where(in_call, torch.exp(lag * lb[:, None]) * f_at_last, 0.0)) * gate
    if params.v_reset is not None:  # V_r beta^(t-g-1) after a spike at g (g = -1: the state's last step)
        reset_here = last >= -1
        v = v + torch.where(reset_here, params.v_reset[:, None] * torch.exp((lag - 1.0).clamp(min=0) * lb[:, None]), 0.0)
    else:
        reset_here = in_call | (last == -1)  # V_r = 0: the potential restarts from 0
    if state is not None:  # the state's potential decays until the first spike (or is post-reset already)
        v = v + torch.where(~reset_here, torch.exp((t_idx + 1.0).to(dtype) * lb[:, None]) * st.v[..., None], 0.0)

    a, theta = _replay_threshold(params, S, tail, st if state is not None else None, t_idx)

    out = known_spikes(v - theta, S, gate, spike_fn)
    if T == 0:
        final = st
    else:
        final = ALIFState(v=v[..., -1], a=a[..., -1], spikes=S_ext[..., -L:], asc=asc_end)
    return ALIFTrace(
        spikes=out,
        v=v if "v" in record else None,
        theta=theta if "theta" in record else None,
        state=final,
    )
