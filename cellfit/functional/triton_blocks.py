r"""The Block algorithm's spike search as one Triton kernel (the CUDA fast path).

:func:`cellfit.functional.alif.block_spikes` runs the Block algorithm as a Python loop
over blocks of :math:`T_R` steps, about thirty small PyTorch operations per block. On
a GPU each operation is a kernel launch, so a 1 s sweep at DT 0.1 ms (500 blocks)
costs about 15,000 launches (``benchmarks/count_ops.py``), tens of milliseconds of pure
overhead for microseconds of arithmetic. This module does the same computation in one kernel: one program per
(sample, neuron) row keeps the row's state (potential, adaptation, refractory
prefix) in registers and walks through its blocks; inside a block the ``T_R`` steps
are handled in parallel by the program's lanes:

1. zero-state response: the linear recurrence :math:`U[t] = \beta U[t-1] + (1-\beta)\tilde I[t]`
   over the block, as a parallel prefix scan (``tl.associative_scan``) of affine maps,
   where :math:`\tilde I` is the current with the refractory prefix zeroed;
2. :math:`V[t] = U[t] + \beta^{t+1} v_0` (``v_0`` = 0 after a spike), threshold
   :math:`\theta[t] = 1 + d\,p^t a_1`;
3. the first crossing is the block's only spike (``tl.argmax`` of the crossing mask);
   the state for the next block follows from Propositions 3-5 of the paper.

Without recurrent weights the whole sequence is one launch. With recurrent weights
(latency :math:`T_R`), block ``n`` needs :math:`W^\text{rec} S` of block ``n-1``: the
wrapper launches the kernel once per block, after one matrix product, two launches per
block instead of about thirty.

:func:`block_spikes_triton_ext` runs the same kernel with the reset potential and the
after-spike currents of :mod:`cellfit.functional.glif` (its compile-time ``EXT`` branch:
the block's input gains :math:`\sum_j A_j c_{j,1} r_j^t`, the potential after a spike
starts from :math:`V_r\beta^{t-r+M-1}`, and :math:`c_j` is carried like ``a``).

Only the spike search lives here (no gradients, like ``block_spikes``); the gradients
come from the parallel :func:`~cellfit.functional.alif.replay`, as before. Decay powers
are precomputed in PyTorch, so the kernel needs no ``exp`` and runs in float32 and
float64. Results equal the PyTorch loop's up to float rounding (the same spikes; the
tests compare both with the step-by-step engine in float64).

The kernel runs on CUDA tensors. On a machine without a GPU it also runs under
Triton's interpreter (``TRITON_INTERPRET=1`` set before Triton is imported, as
``tests/conftest.py`` does), which is how CI tests it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Optional

import torch

__all__ = ["available", "block_spikes_triton", "block_spikes_triton_ext", "why_unavailable"]


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "yes", "on")


@functools.lru_cache(maxsize=1)
def _kernel():
    """The jitted kernel (imports Triton on first use)."""
    from cellfit.functional._triton_kernel import block_kernel

    return block_kernel


def why_unavailable(device: torch.device | str) -> Optional[str]:
    """None if the kernel can run on ``device``; otherwise the reason, as one sentence."""
    device = torch.device(device)
    if not (device.type == "cuda" or (device.type == "cpu" and _interpreting())):
        return (
            f"the Triton block kernel runs on CUDA tensors, not on {device.type} "
            "(on a CPU only under TRITON_INTERPRET=1, for testing)"
        )
    if importlib.util.find_spec("triton") is None:
        return "Triton is not installed (PyTorch's CUDA builds bring it; or `pip install triton`)"
    return None


def available(device: torch.device | str) -> bool:
    """True if :func:`block_spikes_triton` can run on ``device``."""
    return why_unavailable(device) is None


def block_spikes_triton(
    current: torch.Tensor,
    log_beta: torch.Tensor,
    log_p: torch.Tensor,
    adapt_scale: torch.Tensor,
    t_ref: int,
    v0: torch.Tensor,
    a1: torch.Tensor,
    r: torch.Tensor,
    first_rec_input: Optional[torch.Tensor] = None,
    w_rec: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Spikes and state at the last step, by the fused kernel (no autograd).

    Args:
        current: (B, N, T) feedforward current, float32 or float64, T >= 1.
        log_beta, log_p, adapt_scale: (N,) step parameters (see ``ALIFStepParameters``).
        t_ref: :math:`T_R` in steps.
        v0, a1, r: (B, N) state entering the first block: potential (0 after a spike),
            adaptation variable at the block's first step, refractory prefix length.
        first_rec_input: (B, N, T_R) spikes feeding the first block's recurrent input
            (the state's last ``T_R`` spikes); required with ``w_rec``.
        w_rec: optional (N, N) recurrent weights.

    Returns:
        (spikes (B, N, T) in ``current``'s dtype, v (B, N) and a (B, N) at step T - 1).
    """
    spikes, v_end, a_end, _ = _launch(current, log_beta, log_p, adapt_scale, t_ref, v0, a1, r, first_rec_input, w_rec)
    return spikes, v_end, a_end


def block_spikes_triton_ext(
    current: torch.Tensor,
    log_beta: torch.Tensor,
    log_p: torch.Tensor,
    adapt_scale: torch.Tensor,
    t_ref: int,
    v0: torch.Tensor,
    a1: torch.Tensor,
    r: torch.Tensor,
    *,
    v_reset: torch.Tensor,
    asc_amp: torch.Tensor,
    asc_log_decay: torch.Tensor,
    c1: torch.Tensor,
    first_rec_input: Optional[torch.Tensor] = None,
    w_rec: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`block_spikes_triton` with a reset potential and after-spike currents (no autograd).

    Args as :func:`block_spikes_triton`, except ``v0``: (B, N) potential at the step before
    the first (read only when ``r`` is 0), plus:
        v_reset: (N,) reset potential :math:`V_r`.
        asc_amp, asc_log_decay: (N, J) amplitudes :math:`A_j` and :math:`\\ln r_j` (J may be 0).
        c1: (B, N, J) after-spike variables at the first step.

    Returns:
        (spikes (B, N, T), v (B, N), a (B, N) and c (B, N, J) at step T - 1).
    """
    return _launch(current, log_beta, log_p, adapt_scale, t_ref, v0, a1, r, first_rec_input, w_rec,
                   ext=(v_reset, asc_amp, asc_log_decay, c1))


def _launch(current, log_beta, log_p, adapt_scale, t_ref, v0, a1, r, first_rec_input, w_rec, ext=None):
    reason = why_unavailable(current.device)
    if reason is not None:
        raise RuntimeError(reason)
    if current.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"the Triton block kernel takes float32 or float64 currents, got {current.dtype}")
    B, N, T = current.shape
    L = int(t_ref)
    if T < 1:
        raise ValueError("the Triton block kernel needs at least one time step")
    dtype, device = current.dtype, current.device
    BLOCK = max(2, 1 << (L - 1).bit_length())  # lanes: the next power of two >= T_R
    n_blocks = -(-T // L)
    last = n_blocks - 1
    j = (T - 1) - last * L

    with torch.no_grad():
        lb = log_beta.detach().to(dtype)
        lp = log_p.detach().to(dtype)
        steps = torch.arange(BLOCK + 1, device=device, dtype=dtype)
        beta = lb.exp().contiguous()
        bpow = torch.exp((steps[1:])[None, :] * lb[:, None]).contiguous()  # beta^(t+1), t < BLOCK
        ppow = torch.exp(steps[None, :] * lp[:, None]).contiguous()  # p^m, m <= BLOCK
        dppow = (adapt_scale.detach().to(dtype)[:, None] * ppow[:, :BLOCK]).contiguous()

        cur = current.detach().contiguous()
        out = torch.zeros((B, N, n_blocks * L), device=device, dtype=dtype)
        v0 = v0.detach().to(dtype).contiguous().clone()
        a1 = a1.detach().to(dtype).contiguous().clone()
        r = r.detach().to(torch.int32).contiguous().clone()
        v_end = torch.zeros((B, N), device=device, dtype=dtype)
        a_end = torch.zeros((B, N), device=device, dtype=dtype)
        J = 0
        if ext is None:  # plain ALIF: the extension's pointers are not read (EXT=False)
            ext_args = (cur, cur, cur, cur, cur)
        else:
            vr, amp, lr, c_in = ext
            J = amp.shape[1]
            JP = 1 << (max(J, 1) - 1).bit_length()  # lanes for the currents: a power of two >= max(J, 1)
            pad = lambda x: torch.nn.functional.pad(x.detach().to(dtype), (0, JP - J))  # noqa: E731
            amp_p, lr_p = pad(amp).contiguous(), pad(lr)  # padding: A = 0, r = 1 (never read back)
            vrpow = (vr.detach().to(dtype)[:, None] * torch.exp(torch.arange(2 * BLOCK, device=device, dtype=dtype)
                                                                 * lb[:, None])).contiguous()  # V_r beta^e
            rpow = torch.exp(steps[None, None, :] * lr_p[..., None]).contiguous()  # (N, JP, BLOCK + 1) r_j^m
            c_state = pad(c_in).reshape(B * N, JP).contiguous().clone()
            c_end = torch.zeros_like(c_state)
            ext_args = (vrpow, amp_p, rpow, c_state, c_end)
        flags = dict(EXT=ext is not None, JP=1 if ext is None else JP)
        kernel = _kernel()
        grid = (B * N,)
        num_warps = 1 if BLOCK <= 64 else 4
        common = (T, L, N)
        tail = (last, j, 1 if L == 1 else 0, n_blocks * L)
        args = (beta, bpow, dppow, ppow, v0, a1, r, v_end, a_end)
        if w_rec is None:
            kernel[grid](cur, cur, out, *args, *common, 0, n_blocks, *tail, *ext_args,
                         HAS_REC=False, BLOCK=BLOCK, num_warps=num_warps, **flags)  # fmt: skip
        else:
            if first_rec_input is None:
                raise ValueError("first_rec_input is required with w_rec")
            w = w_rec.detach().to(dtype)
            prev = first_rec_input.detach().to(dtype)
            for blk in range(n_blocks):
                rec = torch.matmul(w, prev).contiguous()  # (B, N, L): sum_j W[i, j] S_j
                kernel[grid](cur, rec, out, *args, *common, blk, blk + 1, *tail, *ext_args,
                             HAS_REC=True, BLOCK=BLOCK, num_warps=num_warps, **flags)  # fmt: skip
                prev = out[..., blk * L : (blk + 1) * L]
    c_out = None if ext is None else c_end.reshape(B, N, JP)[..., :J]
    return out[..., :T], v_end, a_end, c_out
