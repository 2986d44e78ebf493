r"""Adaptive leaky integrate-and-fire (ALIF) dynamics: a step-by-step reference and the Block algorithm.

Both simulators implement the same discrete-time equations (Taylor, Luo, Dhawale &
Ghosh, NeurIPS 2023, equations 1-5), here with two optional extensions of the GLIF
hierarchy (Teeter et al. 2018): a reset potential and spike-triggered (after-spike)
currents. For neuron i at step t, in normalised units (rest 0, base threshold 1):

.. math::

    S[t] &= \mathbb{1}_{V[t] > \theta[t]} \\
    V[t] &= \big(\beta V[t-1] + (1-\beta) I[t]\big)\,(1 - S[t-1]) + V_r\,S[t-1] \\
    I[t] &= \begin{cases} I_\text{in}[t] + \sum_j A_j c_j[t] + \sum_k W^\text{rec}_{ik} S_k[t-T_R] & C[t] \ge T_R \\
                          0 & \text{otherwise} \end{cases} \\
    c_j[t] &= r_j\,c_j[t-1] + S[t-1] \qquad (j = 1..J) \\
    \theta[t] &= 1 + d\,a[t], \qquad a[t] = p\,a[t-1] + S[t-1]

with :math:`\beta = e^{-\Delta t/\tau_m}`, :math:`p = e^{-\Delta t/\tau_\text{adapt}}`,
:math:`r_j = e^{-\Delta t/\tau_{\text{asc},j}}`, :math:`T_R` the absolute refractory
period (ARP) in steps, :math:`C[t]` the number of steps since the neuron's last spike,
and the recurrent latency equal to :math:`T_R`. ``I_in`` is the feedforward current
(bias plus weighted inputs), which callers compute; this module only needs it as a
``(batch, neurons, time)`` tensor.

The extensions (fields ``v_reset``, ``asc_amp``/``asc_log_decay`` of
:class:`ALIFStepParameters`, ``asc`` of :class:`ALIFState`) are optional; absent (None),
:math:`V_r = 0` and :math:`J = 0`, which is the plain ALIF model, run by exactly the
code it always ran. :math:`V_r` is the potential at the step after a spike; while
refractory the input is zero, so :math:`V = V_r\beta^{m-1}` at m steps after the spike
until integration resumes. :math:`V_r` may lie above the threshold: refractory steps are gated in
every engine (never left to the potential), so such a neuron fires again at the first free step
while :math:`V` exceeds :math:`\theta` there, a burst at the refractory rate. :math:`A_j` (any sign: negative is an adaptation current,
positive a depolarising after-potential) and :math:`c_j`, a spike count that decays by
:math:`r_j` per step like the adaptation variable ``a``, give each after-spike current.

``alif_standard`` runs the equations one step at a time (the reference and the
speed baseline). ``alif_blocks`` runs the Block algorithm (the CPU path, with its
block-local backward, lives in :mod:`cellfit.functional.blockwise`; this module holds
the reference engine, the GPU path's loop and its FFT replay, and the choice between
them, about 800 lines that share one set of conventions): because a neuron spikes at
most once in any :math:`T_R` consecutive steps, time is cut into blocks of
:math:`T_R` steps; inside a block the potential without reset is a convolution of the
current with the kernel :math:`(1-\beta)\beta^t` (the initial potential carried in),
the first threshold crossing is the only true spike, and three small pieces of state
cross block boundaries: the potential (zero after a spike), the adaptation variable
and the refractory mask for the next block. Both produce identical spike trains for
identical inputs (``tests/functional/test_alif.py`` property-tests this). With the
extensions the Block algorithm stays exact (a block still holds at most one spike, and
the after-spike input of a block depends only on spikes before it); their block loop
and replay live in :mod:`cellfit.functional.glif`, and the kernels that support them
are listed in :data:`EXTENSION_KERNELS` (see :func:`block_spikes`).

Gradient conventions (shared by both engines, so that they agree on gradients):
spikes that feed back into the neuron (reset, adaptation and after-spike increments,
recurrent input) are detached, as in the Block paper; the surrogate gradient of the
output spike is passed at every step where the neuron could fire and is zero while it
is refractory. It reaches :math:`V_r`, :math:`A_j` and :math:`r_j` through the potential.

This module is longer than ~500 lines because the reference engine, the Block loop, its
kernel dispatch, the replay and the loop of the GLIF extensions share one set of state
conventions that are easiest to check side by side.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Callable, Iterator, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F

from cellfit.functional.blockwise import SUPPORTED_DTYPES, blockwise_alif
from cellfit.functional.filters import exp_filter
from cellfit.functional.surrogate import SpikeFn, known_spikes, multi_gaussian
from cellfit.timegrid import arp_steps  # pure Python, shared with the command lines

__all__ = [
    "ALIFParameters",
    "ALIFStepParameters",
    "ALIFState",
    "ALIFTrace",
    "arp_steps",
    "alif_standard",
    "alif_blocks",
    "block_spikes",
    "resolve_block_kernel",
    "use_block_kernel",
    "BLOCK_KERNELS",
    "EXTENSION_KERNELS",
    "has_extension",
    "replay",
    "leaky_integrator",
    "simulate",
    "ENGINES",
    "RECORDABLE",
]

RECORDABLE = ("v", "theta")


class ALIFStepParameters(NamedTuple):
    """Per-step (discretised) parameters of ``N`` ALIF neurons.

    Decay factors are held as logarithms so that powers :math:`\\beta^k = e^{k\\ln\\beta}`
    stay accurate and differentiable for any DT.
    """

    log_beta: torch.Tensor
    """(N,) :math:`\\ln\\beta = -\\Delta t/\\tau_m` (negative)."""
    log_p: torch.Tensor
    """(N,) :math:`\\ln p = -\\Delta t/\\tau_\\text{adapt}` (negative)."""
    adapt_scale: torch.Tensor
    """(N,) adaptation scale :math:`d \\ge 0` (threshold units per unit of ``a``)."""
    t_ref: int
    """Absolute refractory period and recurrent latency :math:`T_R` in steps (>= 1)."""
    v_reset: Optional[torch.Tensor] = None
    """(N,) reset potential :math:`V_r` (threshold units, rest 0), the potential at the step
    after a spike; None: 0 (plain ALIF)."""
    asc_amp: Optional[torch.Tensor] = None
    """(N, J) after-spike current amplitudes :math:`A_j` (current units per unit of :math:`c_j`,
    any sign); None: no after-spike currents. Given together with ``asc_log_decay``."""
    asc_log_decay: Optional[torch.Tensor] = None
    """(N, J) :math:`\\ln r_j = -\\Delta t/\\tau_{\\text{asc},j}` (negative); None with ``asc_amp``."""


class ALIFParameters(NamedTuple):
    """Physical parameters of ``N`` ALIF neurons (time constants in milliseconds)."""

    tau_mem_ms: torch.Tensor
    """(N,) membrane time constant :math:`\\tau_m` in ms."""
    tau_adapt_ms: torch.Tensor
    """(N,) adaptation time constant :math:`\\tau_\\text{adapt}` in ms."""
    adapt_scale: torch.Tensor
    """(N,) adaptation scale :math:`d \\ge 0`: threshold rise per spike, in units of the base threshold."""
    arp_ms: float = 2.0
    """Absolute refractory period in ms (also the recurrent latency)."""
    v_reset: Optional[torch.Tensor] = None
    """(N,) reset potential :math:`V_r` in threshold units (rest 0, base threshold 1); None: 0."""
    asc_amp: Optional[torch.Tensor] = None
    """(N, J) after-spike current amplitudes :math:`A_j` (normalised current per unit of
    :math:`c_j`); None: no after-spike currents."""
    tau_asc_ms: Optional[torch.Tensor] = None
    """(N, J) after-spike current time constants :math:`\\tau_{\\text{asc},j}` in ms; None with ``asc_amp``."""

    def discretise(self, dt_ms: float) -> ALIFStepParameters:
        """Step parameters for a time step of ``dt_ms`` milliseconds."""
        return ALIFStepParameters(
            log_beta=-dt_ms / self.tau_mem_ms,
            log_p=-dt_ms / self.tau_adapt_ms,
            adapt_scale=self.adapt_scale,
            t_ref=arp_steps(self.arp_ms, dt_ms),
            v_reset=self.v_reset,
            asc_amp=self.asc_amp,
            asc_log_decay=None if self.tau_asc_ms is None else -dt_ms / self.tau_asc_ms,
        )


class ALIFState(NamedTuple):
    """State of ``N`` neurons after the last simulated step (batch ``B``).

    Pass it back as ``state=`` to continue a simulation exactly where it stopped.
    """

    v: torch.Tensor
    """(B, N) membrane potential :math:`V` at the last step."""
    a: torch.Tensor
    """(B, N) adaptation variable :math:`a` at the last step (before that step's spike counts)."""
    spikes: torch.Tensor
    """(B, N, T_R) the last :math:`T_R` output spikes, oldest first (refractoriness and recurrent input)."""
    asc: Optional[torch.Tensor] = None
    """(B, N, J) after-spike variables :math:`c_j` at the last step (before that step's spike
    counts), with after-spike currents; None: zero (at rest), and None without them."""


class ALIFTrace(NamedTuple):
    """What a simulation returns; optional traces are filled when named in ``record``."""

    spikes: torch.Tensor
    """(B, N, T) output spikes, 0/1 values carrying surrogate gradients."""
    v: Optional[torch.Tensor]
    """(B, N, T) membrane potential :math:`V` (with reset), if ``"v"`` was recorded."""
    theta: Optional[torch.Tensor]
    """(B, N, T) firing threshold :math:`\\theta`, if ``"theta"`` was recorded."""
    state: ALIFState
    """State after the last step."""


def _check(current: torch.Tensor, params: ALIFStepParameters, w_rec, state, record) -> tuple[int, int, int]:
    if current.dim() != 3:
        raise ValueError(f"current must be (batch, neurons, time), got shape {tuple(current.shape)}")
    B, N, T = current.shape
    for name in ("log_beta", "log_p", "adapt_scale"):
        t = getattr(params, name)
        if t.shape != (N,):
            raise ValueError(f"params.{name} must have shape ({N},) to match {N} neurons, got {tuple(t.shape)}")
    if not isinstance(params.t_ref, int) or params.t_ref < 1:
        raise ValueError(f"params.t_ref must be an int >= 1, got {params.t_ref!r}")
    if w_rec is not None and w_rec.shape != (N, N):
        raise ValueError(f"w_rec must be ({N}, {N}), got {tuple(w_rec.shape)}")
    if state is not None and state.spikes.shape != (B, N, params.t_ref):
        raise ValueError(
            f"state.spikes must be ({B}, {N}, {params.t_ref}) for this input, got {tuple(state.spikes.shape)}"
        )
    _check_extension(params, state, B, N)
    unknown = set(record) - set(RECORDABLE)
    if unknown:
        raise ValueError(f"cannot record {sorted(unknown)}; choose from {list(RECORDABLE)}")
    return B, N, T


def has_extension(params: ALIFStepParameters) -> bool:
    """True if ``params`` have a reset potential or after-spike currents (the GLIF extension);
    False for plain ALIF parameters, which take the original code paths."""
    return params.v_reset is not None or params.asc_amp is not None


def _check_extension(params: ALIFStepParameters, state: Optional[ALIFState], B: int, N: int) -> None:
    if params.v_reset is not None and params.v_reset.shape != (N,):
        raise ValueError(f"params.v_reset must have shape ({N},) to match {N} neurons, got {tuple(params.v_reset.shape)}")
    if (params.asc_amp is None) != (params.asc_log_decay is None):
        raise ValueError("params.asc_amp and params.asc_log_decay go together: give both as (N, J) tensors, or neither")
    J = 0
    if params.asc_amp is not None:
        if params.asc_amp.dim() != 2 or params.asc_amp.shape[0] != N:
            raise ValueError(f"params.asc_amp must have shape ({N}, J) for {N} neurons, got {tuple(params.asc_amp.shape)}")
        J = params.asc_amp.shape[1]
        if params.asc_log_decay.shape != (N, J):
            raise ValueError(f"params.asc_log_decay must have shape ({N}, {J}) like asc_amp, got {tuple(params.asc_log_decay.shape)}")
    asc = None if state is None else state.asc
    if asc is not None and asc.shape != (B, N, J):
        raise ValueError(f"state.asc must be ({B}, {N}, {J}) for these parameters (J after-spike currents), "
                         f"got {tuple(asc.shape)}")


def _initial_state(current: torch.Tensor, t_ref: int, state: Optional[ALIFState]) -> ALIFState:
    if state is not None:
        return state
    B, N, _ = current.shape
    zeros = current.new_zeros((B, N))
    return ALIFState(v=zeros, a=zeros, spikes=current.new_zeros((B, N, t_ref)))


def alif_standard(
    current: torch.Tensor,
    params: ALIFStepParameters,
    *,
    w_rec: Optional[torch.Tensor] = None,
    state: Optional[ALIFState] = None,
    spike_fn: Optional[SpikeFn] = None,
    record: Sequence[str] = (),
) -> ALIFTrace:
    """Simulate ALIF neurons one time step after another (the reference engine).

    Args:
        current: (B, N, T) feedforward input current :math:`I_\\text{in}` (bias included).
        params: discretised parameters (see :meth:`ALIFParameters.discretise`).
        w_rec: optional (N, N) recurrent weights; row ``i`` holds the inputs of neuron ``i``.
        state: optional state to continue from (default: at rest, no recent spikes).
        spike_fn: Heaviside with a surrogate gradient (default multi-Gaussian).
        record: any of ``("v", "theta")``.

    Returns:
        :class:`ALIFTrace` with (B, N, T) spikes.
    """
    B, N, T = _check(current, params, w_rec, state, record)
    spike_fn = spike_fn or multi_gaussian()
    L = params.t_ref
    st = _initial_state(current, L, state)
    beta = params.log_beta.exp()
    p = params.log_p.exp()
    d = params.adapt_scale
    v_reset, amp = params.v_reset, params.asc_amp  # the extension; None for plain ALIF
    if amp is not None:
        r_asc = params.asc_log_decay.exp()  # (N, J)
        c = st.asc if st.asc is not None else current.new_zeros((B, N, amp.shape[1]))

    hist = [st.spikes[..., j].detach() for j in range(L)]  # S[t-L] ... S[t-1]
    v, a = st.v, st.a
    s_prev = hist[-1]
    # Steps since the last spike, as seen at the previous step (>= L means "free").
    latest = _latest_spike_index(st.spikes.detach())
    steps_since = torch.where(latest >= 0, L - 1 - latest, torch.full_like(latest, L))

    out, vs, thetas = [], [], []
    steps = current.unbind(-1)  # one view per step; slicing inside the loop would make backward O(T^2)
    for t in range(T):
        i_t = steps[t]
        if w_rec is not None:
            i_t = i_t + hist[t] @ w_rec.t()  # S[t - L]
        if amp is not None:  # after-spike currents: c_j[t] = r_j c_j[t-1] + S[t-1]
            c = r_asc * c + s_prev[..., None]
            i_t = i_t + (amp * c).sum(-1)
        steps_since = torch.where(s_prev > 0, torch.ones_like(steps_since), steps_since + 1)
        free = (steps_since >= L).to(current.dtype)
        v = (beta * v + (1.0 - beta) * (i_t * free)) * (1.0 - s_prev)
        if v_reset is not None:
            v = v + v_reset * s_prev
        a = p * a + s_prev
        theta = 1.0 + d * a
        gate = free * (1.0 - s_prev)
        s = spike_fn(v - theta) * gate
        out.append(s)
        if "v" in record:
            vs.append(v)
        if "theta" in record:
            thetas.append(theta)
        s_prev = s.detach()
        hist.append(s_prev)

    spikes = torch.stack(out, dim=-1) if T else current.new_zeros((B, N, 0))
    tail = torch.stack(hist[-L:], dim=-1)
    return ALIFTrace(
        spikes=spikes,
        v=torch.stack(vs, dim=-1) if "v" in record and T else (current.new_zeros((B, N, 0)) if "v" in record else None),
        theta=torch.stack(thetas, dim=-1) if "theta" in record and T else (current.new_zeros((B, N, 0)) if "theta" in record else None),
        state=ALIFState(v=v, a=a, spikes=tail, asc=c if amp is not None else None),
    )


def _latest_spike_index(spikes: torch.Tensor) -> torch.Tensor:
    """Index of the last nonzero entry along the last axis, or -1 if none. (B, N, L) -> (B, N) long."""
    L = spikes.shape[-1]
    idx = torch.arange(L, device=spikes.device)
    return torch.where(spikes > 0, idx, torch.full_like(idx, -1)).amax(dim=-1)


def _decay_kernel(log_decay: torch.Tensor, L: int) -> torch.Tensor:
    """(N, L, L) lower-triangular kernel :math:`K[n,t,j] = (1-\\beta_n)\\beta_n^{t-j}` for j <= t."""
    pos = torch.arange(L, device=log_decay.device, dtype=log_decay.dtype)
    lag = pos[:, None] - pos[None, :]
    causal = (lag >= 0).to(log_decay.dtype)
    powers = torch.exp(lag.clamp(min=0) * log_decay[:, None, None])
    return (1.0 - log_decay.exp())[:, None, None] * powers * causal


BLOCK_KERNELS = ("auto", "torch", "triton", "blockwise")
BLOCK_KERNEL_ENV = "CELLFIT_BLOCK_KERNEL"
_FUSED_FAILURE: Optional[str] = None  # set when the fused kernel failed under "auto": the loop takes over


def resolve_block_kernel(kernel: Optional[str], device: torch.device) -> str:
    """``"torch"``, ``"triton"`` or ``"blockwise"``: which implementation of the Block engine runs on ``device``.

    - ``"triton"``: the spike search fused into one GPU kernel
      (:mod:`cellfit.functional.triton_blocks`), gradients from :func:`replay`;
    - ``"torch"``: the spike search as a PyTorch loop over blocks (:func:`block_spikes`),
      gradients from :func:`replay` (full-length FFT filters);
    - ``"blockwise"``: a leaner loop whose per-block products are recorded and reused by a
      block-local, hand-written backward (:mod:`cellfit.functional.blockwise`), built for CPUs.

    ``kernel`` None reads ``$CELLFIT_BLOCK_KERNEL`` (default ``"auto"``). ``"auto"`` picks
    ``"triton"`` for CUDA tensors when Triton is installed (else ``"torch"``), ``"blockwise"``
    on a CPU and ``"torch"`` elsewhere; ``"triton"`` insists (and raises ``RuntimeError`` with
    the reason if it cannot run). All of them give identical spikes.
    """
    from cellfit.functional import triton_blocks

    if kernel is None:
        kernel = os.environ.get(BLOCK_KERNEL_ENV, "auto").strip().lower() or "auto"
    if kernel not in BLOCK_KERNELS:
        raise ValueError(f"unknown block kernel {kernel!r} (from ${BLOCK_KERNEL_ENV} or an argument); choose one of {list(BLOCK_KERNELS)}")
    if kernel == "auto":
        if device.type == "cpu":
            return "blockwise"
        ok = device.type == "cuda" and triton_blocks.available(device) and _FUSED_FAILURE is None
        return "triton" if ok else "torch"
    if kernel == "triton":
        reason = triton_blocks.why_unavailable(device)
        if reason is not None:
            raise RuntimeError(f"block kernel 'triton' cannot run: {reason}; use 'torch' or 'auto'")
    return kernel


@contextlib.contextmanager
def use_block_kernel(kernel: Optional[str]) -> Iterator[None]:
    """Within the ``with`` block, run the Block engine's loop with ``kernel`` (``"auto"``,
    ``"torch"`` or ``"triton"``; None leaves the setting alone). Sets ``$CELLFIT_BLOCK_KERNEL``
    and restores it afterwards, so worker processes started inside inherit the choice."""
    if kernel is None:
        yield
        return
    if kernel not in BLOCK_KERNELS:
        raise ValueError(f"unknown block kernel {kernel!r}; choose one of {list(BLOCK_KERNELS)}")
    saved = os.environ.get(BLOCK_KERNEL_ENV)
    os.environ[BLOCK_KERNEL_ENV] = kernel
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(BLOCK_KERNEL_ENV, None)
        else:
            os.environ[BLOCK_KERNEL_ENV] = saved


@torch.no_grad()
def block_spikes(
    current: torch.Tensor,
    params: ALIFStepParameters,
    *,
    w_rec: Optional[torch.Tensor] = None,
    state: Optional[ALIFState] = None,
    kernel: Optional[str] = None,
) -> ALIFTrace:
    """Spike trains of ALIF neurons by the Block algorithm (no gradients).

    Time is cut into ``ceil(T / T_R)`` blocks of ``T_R`` steps (zero-padded at the end).
    The zero-state response :math:`U` of every block to its feedforward current is one
    batched product with the kernel :math:`(1-\\beta)\\beta^t` for all blocks at once
    (Proposition 1). The loop over blocks then carries three pieces of state
    (Propositions 3-5): the potential ``v0`` (zero after a spike), the adaptation
    variable at the block's first step ``a1``, and the refractory prefix ``r``: the
    first ``r`` steps of the block get no current. For positions :math:`t \\ge r`

    .. math:: \\tilde V[t] = U[t] + \\beta^{t-r+1} c, \\qquad
              c = \\begin{cases} v_0 & r = 0 \\\\ -U[r-1] & r > 0 \\end{cases}

    (the second case removes the current of the refractory prefix, since
    :math:`\\sum_{j=r}^{t}(1-\\beta)\\beta^{t-j}I[j] = U[t]-\\beta^{t-r+1}U[r-1]`). The first
    crossing of :math:`\\theta[t] = 1 + d p^t a_1` is the block's only true spike
    (a neuron fires at most once per ``T_R`` steps).

    Args and shapes as :func:`alif_standard`, plus ``kernel``: ``"torch"`` (the loop below),
    ``"triton"`` (the same algorithm fused into one GPU kernel,
    :mod:`cellfit.functional.triton_blocks`), ``"blockwise"`` (the CPU loop of
    :mod:`cellfit.functional.blockwise`: one product per block, recurrent input added per
    spike) or ``"auto"`` (see :func:`resolve_block_kernel`).
    Returns an :class:`ALIFTrace` with the (B, N, T) spikes (``current``'s dtype, no
    gradient) and the final state; ``v``/``theta`` are None.

    Parameters with the extension (reset potential, after-spike currents; see
    :func:`has_extension`) run the extended loop of :mod:`cellfit.functional.glif` on a
    kernel that supports it, :data:`EXTENSION_KERNELS` (see :func:`_extension_kernel`).
    """
    B, N, T = current.shape
    L = params.t_ref
    dtype, device = current.dtype, current.device
    st = _initial_state(current, L, state)
    if has_extension(params):
        return _block_spikes_extended(current, params, w_rec, st, kernel)
    chosen = resolve_block_kernel(kernel, device) if T > 0 else "torch"
    if chosen == "blockwise" and dtype in SUPPORTED_DTYPES:
        spikes, v_end, a_end = blockwise_alif(current, params.log_beta, params.log_p, params.adapt_scale, L,
                                              *_blockwise_entry(params, st), w_rec=w_rec, derivative=None)  # fmt: skip
        return ALIFTrace(spikes, None, None, ALIFState(v=v_end, a=a_end, spikes=_last_steps(st.spikes, spikes, L)))
    if chosen == "triton":
        requested = kernel if kernel is not None else os.environ.get(BLOCK_KERNEL_ENV, "auto")
        explicit = str(requested).strip().lower() == "triton"
        if explicit or dtype in (torch.float32, torch.float64):  # under auto, half precision takes the loop
            try:
                return _block_spikes_fused(current, params, w_rec, st)
            except Exception as exc:  # noqa: BLE001 - a compiler or driver error of the fast path
                if explicit or isinstance(exc, torch.cuda.OutOfMemoryError):
                    raise  # asked for by name; or out of memory, which callers handle by splitting the batch
                _fall_back(exc)
    g = _loop_setup(current, params, w_rec)
    lp, w, K, ipos, beta_table, d_p_pow, zero = g.lp, g.w, g.K, g.ipos, g.beta_table, g.d_p_pow, g.zero

    r, v0, a1, tail = _entry_state(params, st)
    r, v0, a1 = r[..., None], v0[..., None], a1[..., None]  # (B, N, 1)
    theta_base = torch.ones_like(d_p_pow)
    prev = tail
    out = []
    last = g.n_blocks - 1
    j = (T - 1) - last * L  # position of the last real step in the last block
    v_end = a_end = None
    for n, u in enumerate(g.U.unbind(0)):
        if w is not None:
            u = u + torch.einsum("bnj,ntj->bnt", torch.einsum("bjt,ij->bit", prev, w), K)
        free = ipos >= r
        c = torch.where(r > 0, -torch.gather(u, -1, (r - 1).clamp(min=0)), v0)
        v = torch.where(free, torch.addcmul(u, _entry_decay(beta_table, g.idx_base, r), c), zero)
        k, spiked, s = _first_crossing(v > torch.addcmul(theta_base, d_p_pow, a1), ipos)
        out.append(s)
        if w is not None:
            prev = s.to(dtype)
        if n == last and T > 0:
            # state at step T - 1 (the padded steps after it do not count)
            earlier = spiked & (k < j)  # spiked before T - 1 in this block: reset, refractory
            v_end = torch.where(earlier, zero, v[..., j : j + 1])
            a_end = a1 * torch.exp(j * lp) + torch.where(earlier, torch.exp((j - 1 - k).clamp(min=0) * lp), zero)
        a1 = torch.addcmul(g.p_block * a1, torch.gather(g.p_after, -1, k), spiked)
        v0 = torch.where(spiked, zero, v[..., -1:])
        r = torch.where(spiked, k + g.extra, g.zero_i)
    spikes, tail_out = _assemble(out, tail, T, dtype)
    if T == 0:
        return ALIFTrace(spikes, None, None, st)
    return ALIFTrace(spikes, None, None, ALIFState(v=v_end[..., 0], a=a_end[..., 0], spikes=tail_out))


class _LoopSetup(NamedTuple):
    """What the PyTorch block loops (:func:`block_spikes`, :func:`cellfit.functional.glif.block_loop`)
    compute once before their loop over blocks."""

    lb: torch.Tensor  # (N, 1) ln beta
    lp: torch.Tensor  # (N, 1) ln p
    w: Optional[torch.Tensor]  # recurrent weights, detached
    n_blocks: int
    K: torch.Tensor  # (N, L, L) block decay kernel
    U: torch.Tensor  # (n_blocks, B, N, L) the input filtered within each block
    ipos: torch.Tensor  # (L,) positions in a block
    pos: torch.Tensor  # (L,) the same as floats
    beta_table: torch.Tensor  # (B, N, L + 1) beta^j, indexed by t - r + 1 (entry 0 only read where masked)
    d_p_pow: torch.Tensor  # (N, L) d p^t
    p_block: torch.Tensor  # (N, 1) p^L
    p_after: torch.Tensor  # (B, N, L) p^(L-1-k): a spike at k, seen at the next block start
    extra: int  # with T_R = 1 the reset alone silences the step after a spike
    idx_base: torch.Tensor  # (L,) positions + 1
    zero: torch.Tensor
    zero_i: torch.Tensor


def _loop_setup(current: torch.Tensor, params: ALIFStepParameters, w_rec: Optional[torch.Tensor]) -> _LoopSetup:
    B, N, T = current.shape
    L = params.t_ref
    dtype, device = current.dtype, current.device
    log_beta = params.log_beta.detach()
    lb = log_beta[:, None]
    lp = params.log_p.detach()[:, None]
    n_blocks = max(1, -(-T // L))
    K = _decay_kernel(log_beta, L)
    cur = F.pad(current.detach(), (0, n_blocks * L - T)).reshape(B, N, n_blocks, L)
    ipos = torch.arange(L, device=device)
    pos = ipos.to(dtype)
    return _LoopSetup(
        lb=lb, lp=lp, w=None if w_rec is None else w_rec.detach(), n_blocks=n_blocks, K=K,
        U=torch.einsum("bnmj,ntj->mbnt", cur, K).contiguous(), ipos=ipos, pos=pos,
        beta_table=torch.exp(torch.arange(L + 1, device=device, dtype=dtype) * lb).expand(B, N, L + 1),
        d_p_pow=params.adapt_scale.detach()[:, None] * torch.exp(pos * lp), p_block=torch.exp(L * lp),
        p_after=torch.exp((L - 1.0 - pos) * lp).expand(B, N, L), extra=1 if L == 1 else 0, idx_base=ipos + 1,
        zero=torch.zeros((), dtype=dtype, device=device), zero_i=torch.zeros((), dtype=torch.long, device=device),
    )  # fmt: skip


def _entry_decay(beta_table: torch.Tensor, idx_base: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """beta^(t - r + 1) at every position t of a block whose refractory prefix is r (B, N, 1)."""
    return torch.gather(beta_table, -1, (idx_base - r).clamp(min=0))


def _first_crossing(above: torch.Tensor, ipos: torch.Tensor):
    """``(k, spiked, s)`` of a block: the first position above threshold (B, N, 1), whether there is
    one, and the block's spikes (B, N, L) bool (at most one per row)."""
    k = above.to(torch.uint8).argmax(-1, keepdim=True)
    spiked = above.any(-1, keepdim=True)
    return k, spiked, (ipos == k) & spiked


def _assemble(blocks: list, tail: torch.Tensor, T: int, dtype: torch.dtype):
    """The (B, N, T) spikes from the blocks' (B, N, L) spikes, and the last L steps (state's ``spikes``)."""
    out = torch.stack(blocks, dim=0).to(dtype)  # (n_blocks, B, N, L)
    n_blocks, B, N, L = out.shape
    spikes = out.permute(1, 2, 0, 3).reshape(B, N, n_blocks * L)[..., :T]
    return spikes, torch.cat([tail, spikes], dim=-1)[..., -L:]


def _fall_back(exc: BaseException, stacklevel: int = 4) -> None:
    """Under ``auto``, a failing fused kernel is reported once and the PyTorch loop takes over."""
    global _FUSED_FAILURE
    _FUSED_FAILURE = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    warnings.warn(
        f"the fused Triton block kernel failed ({_FUSED_FAILURE}); using the PyTorch block loop for the rest "
        f"of this process (same results, slower on a GPU). Set {BLOCK_KERNEL_ENV}=torch to skip the attempt, "
        f"or {BLOCK_KERNEL_ENV}=triton to see the full error.",
        RuntimeWarning,
        stacklevel=stacklevel,  # the caller of block_spikes (past its no_grad wrapper)
    )


EXTENSION_KERNELS = ("torch", "triton")
"""The block kernels that support the extension (reset potential, after-spike currents):
the PyTorch loop (:func:`cellfit.functional.glif.block_loop`) and the fused Triton kernel
(:func:`cellfit.functional.triton_blocks.block_spikes_triton_ext`)."""


def _extension_kernel(kernel: Optional[str], device: torch.device) -> str:
    """The block kernel that runs parameters with the extension on ``device``: the choice of
    :func:`resolve_block_kernel` if it is in :data:`EXTENSION_KERNELS`; under ``auto``
    otherwise the PyTorch loop; a kernel asked for by name that lacks the extension raises."""
    name = resolve_block_kernel(kernel, device)
    if name in EXTENSION_KERNELS:
        return name
    requested = kernel if kernel is not None else os.environ.get(BLOCK_KERNEL_ENV, "auto")
    if str(requested).strip().lower() == name:
        raise ValueError(f"block kernel {name!r} does not support a reset potential or after-spike currents; "
                         f"use one of {list(EXTENSION_KERNELS)} or 'auto'")
    return "torch"


def _block_spikes_extended(current: torch.Tensor, params: ALIFStepParameters, w_rec, st: ALIFState,
                           kernel: Optional[str]) -> ALIFTrace:
    """:func:`block_spikes` for parameters with the extension: kernel choice and fall-back as for ALIF."""
    from cellfit.functional import glif

    if current.shape[-1] > 0 and _extension_kernel(kernel, current.device) == "triton":
        requested = kernel if kernel is not None else os.environ.get(BLOCK_KERNEL_ENV, "auto")
        explicit = str(requested).strip().lower() == "triton"
        if explicit or current.dtype in (torch.float32, torch.float64):  # under auto, half precision takes the loop
            try:
                return glif.block_fused(current, params, w_rec, st)
            except Exception as exc:  # noqa: BLE001 - a compiler or driver error of the fast path
                if explicit or isinstance(exc, torch.cuda.OutOfMemoryError):
                    raise  # asked for by name; or out of memory, which callers handle by splitting the batch
                _fall_back(exc, stacklevel=5)
    return glif.block_loop(current, params, w_rec, st)


def _entry_state(params: ALIFStepParameters, st: ALIFState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(r, v0, a1, tail) entering the first block: refractory prefix, potential, adaptation, last T_R spikes."""
    L = params.t_ref
    tail = st.spikes.detach()
    latest = _latest_spike_index(tail)
    spiked = latest >= 0
    r = torch.where(spiked, latest + (1 if L == 1 else 0), torch.zeros_like(latest))
    v0 = torch.where(spiked, torch.zeros_like(st.v), st.v.detach())
    a1 = params.log_p.detach().exp() * st.a.detach() + tail[..., -1]
    return r, v0, a1, tail


def _last_steps(tail: torch.Tensor, spikes: torch.Tensor, L: int) -> torch.Tensor:
    """(B, N, L) the last L spikes of the state's tail followed by ``spikes`` (detached)."""
    spikes = spikes.detach()
    T = spikes.shape[-1]
    if T >= L:
        return spikes[..., T - L :].clone()
    return torch.cat([tail.detach().to(spikes.dtype)[..., T:], spikes], dim=-1)


def _blockwise_entry(params: ALIFStepParameters, st: ALIFState):
    """(v_init, a_init, tail, k0) for :mod:`cellfit.functional.blockwise`: the state's potential and
    adaptation (kept differentiable), its last T_R spikes and the position of the last one (T_R: none)."""
    L = params.t_ref
    tail = st.spikes.detach()
    latest = _latest_spike_index(tail)
    k0 = torch.where(latest >= 0, latest, torch.full_like(latest, L))
    return st.v, st.a, tail, k0


def _block_spikes_fused(current: torch.Tensor, params: ALIFStepParameters, w_rec, st: ALIFState) -> ALIFTrace:
    from cellfit.functional.triton_blocks import block_spikes_triton

    L = params.t_ref
    r, v0, a1, tail = _entry_state(params, st)
    spikes, v_end, a_end = block_spikes_triton(
        current, params.log_beta, params.log_p, params.adapt_scale, L, v0, a1, r,
        first_rec_input=tail if w_rec is not None else None, w_rec=w_rec,
    )  # fmt: skip
    tail_out = torch.cat([tail.to(spikes.dtype), spikes], dim=-1)[..., -L:]
    return ALIFTrace(spikes, None, None, ALIFState(v=v_end, a=a_end, spikes=tail_out))


def _window_count(spikes_ext: torch.Tensor, lo: int, hi: int, T: int) -> torch.Tensor:
    """Spikes in steps [t-hi, t-lo] for t = 0..T-1, from ``spikes_ext`` = (tail of length P, then T steps)."""
    P = spikes_ext.shape[-1] - T
    if hi > P:
        raise ValueError(f"window reaches {hi} steps back but only {P} steps of history are given")
    c = F.pad(spikes_ext.cumsum(-1), (1, 0))  # c[i] = sum of the first i entries
    return c[..., P - lo + 1 : P - lo + 1 + T] - c[..., P - hi : P - hi + T]


def _replay_inputs(current: torch.Tensor, params: ALIFStepParameters, spikes: torch.Tensor,
                   w_rec: Optional[torch.Tensor], state: Optional[ALIFState]):
    """What the replays (this module's and :func:`cellfit.functional.glif.replay`) start from:
    ``(state, S, S_ext, gate, total)``: the initial state, the known spikes S (B, N, T), the same
    with the state's last T_R steps in front (B, N, T_R + T), the 0/1 gate of the free
    (non-refractory: no spike in the previous max(T_R, 2) - 1 steps) steps, and the input
    current plus the recurrent input S[t - T_R] W_rec."""
    T = current.shape[-1]
    L = params.t_ref
    st = _initial_state(current, L, state)
    S = spikes.detach().to(current.dtype)
    S_ext = torch.cat([st.spikes.detach().to(current.dtype), S], dim=-1)
    gate = (~(_window_count(S_ext, 1, max(L, 2) - 1, T) > 0)).to(current.dtype)
    total = current
    if w_rec is not None:
        total = total + torch.einsum("bjt,ij->bit", S_ext[..., :T], w_rec)  # S[t - T_R]
    return st, S, S_ext, gate, total


def _since_last_spike(S_ext: torch.Tensor, filt: torch.Tensor, L: int):
    """``(t_idx, last, in_call, f_at_last, lag)``: for every step t the last spike strictly before
    it (index into this call's steps; negative: in the state's tail; none: -L-1), whether it is in
    this call, the filtered input there, and the lag t - last (0 where none)."""
    T = filt.shape[-1]
    t_idx = torch.arange(T, device=filt.device)
    spike_pos = torch.where(S_ext > 0, torch.arange(-L, T, device=filt.device),
                            torch.full_like(S_ext, -L - 1, dtype=torch.long))
    last = spike_pos.cummax(-1).values[..., L - 1 : L - 1 + T]  # up to step t - 1
    in_call = last >= 0
    f_at_last = torch.gather(filt, -1, last.clamp(min=0))
    return t_idx, last, in_call, f_at_last, (t_idx - last).clamp(min=0).to(filt.dtype)


def _replay_threshold(params: ALIFStepParameters, S: torch.Tensor, tail: torch.Tensor,
                      st: Optional[ALIFState], t_idx: torch.Tensor):
    """``(a, theta)``: the adaptation variable a[t] = p a[t-1] + S[t-1] (from the state ``st``,
    None: from rest) and the threshold 1 + d a."""
    lp = params.log_p
    A = exp_filter(S, lp)  # sum_{j <= t} p^(t-j) S[j]
    a = F.pad(A[..., :-1], (1, 0))
    if st is not None:
        a0 = lp.exp()[:, None] * st.a[..., None] + tail[..., -1:]  # a at step 0
        a = a + torch.exp(t_idx.to(S.dtype) * lp[:, None]) * a0
    return a, 1.0 + params.adapt_scale[:, None] * a


def replay(
    current: torch.Tensor,
    params: ALIFStepParameters,
    spikes: torch.Tensor,
    *,
    w_rec: Optional[torch.Tensor] = None,
    state: Optional[ALIFState] = None,
    spike_fn: Optional[SpikeFn] = None,
    record: Sequence[str] = (),
) -> ALIFTrace:
    """Differentiable reconstruction of an ALIF simulation from its (known) spike train.

    Given the spikes (from any exact engine), every other quantity is a parallel
    function of the parameters: with :math:`g_t` the last spike before step t,

    .. math::
        F[t] &= \\sum_{j \\le t} (1-\\beta)\\beta^{t-j}\\,\\tilde I[j], \\qquad
        \\tilde I[j] = I[j]\\,\\mathbb{1}[\\text{not refractory at } j] \\\\
        V[t] &= F[t] - \\beta^{t-g_t} F[g_t] \\quad (\\text{or } F[t] + \\beta^{t+1} V_0 \\text{ before any spike}) \\\\
        a[t] &= p^{t}(p\\,a_0 + s_0) + \\sum_{j < t} p^{t-1-j} S[j]

    computed with two FFT filters (:func:`cellfit.functional.filters.exp_filter`). The
    returned spikes equal ``spikes`` exactly; their gradient is the surrogate of
    :math:`V[t] - \\theta[t]`, zero while refractory: the same gradient as
    back-propagation through :func:`alif_standard`, at a cost of a few large kernels
    instead of one small kernel per step. Parameters with the extension are replayed by
    :func:`cellfit.functional.glif.replay` (the same, plus the reset potential and the
    filtered after-spike currents).
    """
    if has_extension(params):
        from cellfit.functional import glif

        return glif.replay(current, params, spikes, w_rec, state, spike_fn, record)
    T = current.shape[-1]
    L = params.t_ref
    dtype = current.dtype
    spike_fn = spike_fn or multi_gaussian()
    st, S, S_ext, gate, total = _replay_inputs(current, params, spikes, w_rec, state)
    lb = params.log_beta
    filt = (1.0 - lb.exp())[:, None] * exp_filter(total * gate, lb)

    t_idx, last, in_call, f_at_last, lag = _since_last_spike(S_ext, filt, L)
    v = filt - torch.where(in_call, torch.exp(lag * lb[:, None]) * f_at_last, 0.0)
    if state is not None:  # the initial potential decays until the first spike
        never = last < -L  # no spike in this call or in the state's tail
        v = v + torch.where(never, torch.exp((t_idx + 1.0).to(dtype) * lb[:, None]) * st.v[..., None], 0.0)
    a, theta = _replay_threshold(params, S, S_ext[..., :L], st if state is not None else None, t_idx)

    out = known_spikes(v - theta, S, gate, spike_fn)  # value S; surrogate gradient of V - theta

    if T == 0:
        final = st
    else:
        final = ALIFState(v=(v * gate)[..., -1], a=a[..., -1], spikes=S_ext[..., -L:])
    return ALIFTrace(
        spikes=out,
        v=v * gate if "v" in record else None,
        theta=theta if "theta" in record else None,
        state=final,
    )


def alif_blocks(
    current: torch.Tensor,
    params: ALIFStepParameters,
    *,
    w_rec: Optional[torch.Tensor] = None,
    state: Optional[ALIFState] = None,
    spike_fn: Optional[SpikeFn] = None,
    record: Sequence[str] = (),
) -> ALIFTrace:
    """Simulate ALIF neurons with the Block algorithm (same arguments and result as :func:`alif_standard`).

    On a CPU (block kernel ``"blockwise"``, the default there; see
    :func:`resolve_block_kernel`) the loop over ``T / T_R`` blocks records one small
    product per block and a hand-written, block-local backward reuses it for the
    surrogate gradients (:mod:`cellfit.functional.blockwise`). Otherwise (on a GPU, for
    ``v`` / ``theta`` recordings, for a custom ``spike_fn`` without a ``derivative``, or
    in half precision) two stages: :func:`block_spikes` finds the exact spike trains
    with the Block algorithm (no autograd graph), then :func:`replay` rebuilds
    potentials and thresholds from those spikes in parallel, which carries the
    surrogate gradients and the recordings. Without gradients and recordings
    (inference) the second stage is skipped. Every path gives the same spikes, and
    gradients equal up to float rounding.
    """
    B, N, T = _check(current, params, w_rec, state, record)
    spike_fn = spike_fn or multi_gaussian()
    derivative = getattr(spike_fn, "derivative", None)
    if (
        T > 0
        and not record
        and not has_extension(params)  # the blockwise kernel runs the plain ALIF model
        and derivative is not None
        and current.dtype in SUPPORTED_DTYPES
        and resolve_block_kernel(None, current.device) == "blockwise"
    ):
        L = params.t_ref
        st = _initial_state(current, L, state)
        spikes, v_end, a_end = blockwise_alif(current, params.log_beta, params.log_p, params.adapt_scale, L,
                                              *_blockwise_entry(params, st), w_rec=w_rec, derivative=derivative)  # fmt: skip
        return ALIFTrace(spikes, None, None, ALIFState(v=v_end, a=a_end, spikes=_last_steps(st.spikes, spikes, L)))
    found = block_spikes(current, params, w_rec=w_rec, state=state)
    tensors = [current, *(t for t in params if torch.is_tensor(t))] + ([w_rec] if w_rec is not None else [])
    if not record and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors)):
        return found  # inference: the spikes and the final state are all there is to return
    return replay(current, params, found.spikes, w_rec=w_rec, state=state, spike_fn=spike_fn, record=record)


def leaky_integrator(
    current: torch.Tensor,
    log_beta: torch.Tensor,
    v0: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Non-spiking leaky integrator :math:`V[t] = \\beta V[t-1] + (1-\\beta) I[t]`.

    Args:
        current: (B, N, T) input current.
        log_beta: (N,) :math:`\\ln\\beta`.
        v0: optional (B, N) potential before the first step (default 0).

    Returns:
        (B, N, T) membrane potentials.
    """
    if current.dim() != 3:
        raise ValueError(f"current must be (batch, neurons, time), got shape {tuple(current.shape)}")
    v = (1.0 - log_beta.exp())[:, None] * exp_filter(current, log_beta)
    if v0 is not None:
        t = torch.arange(current.shape[-1], device=current.device, dtype=current.dtype)
        v = v + torch.exp((t + 1.0) * log_beta[:, None]) * v0[..., None]
    return v


ENGINES: dict[str, Callable[..., ALIFTrace]] = {"standard": alif_standard, "blocks": alif_blocks}


def simulate(current: torch.Tensor, params: ALIFStepParameters, engine: str = "blocks", **kwargs) -> ALIFTrace:
    """Run the named engine (``"blocks"`` or ``"standard"``); keyword arguments as :func:`alif_standard`."""
    try:
        fn = ENGINES[engine]
    except KeyError:
        raise ValueError(f"unknown engine {engine!r}; choose one of {sorted(ENGINES)}") from None
    return fn(current, params, **kwargs)
