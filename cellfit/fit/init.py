r"""Start a fit from the cell's own subthreshold voltage.

Between spikes an ALIF neuron is a leaky integrator of :math:`I = g\,x + b`, so for a
membrane time constant :math:`\tau` (:math:`\beta = e^{-\Delta t/\tau}`) its potential,
starting from the recorded value at the start of a segment :math:`t_0`, is linear in
gain and bias:

.. math::
    V[t] = \beta^{t-t_0} v[t_0]
         + g \sum_{j=t_0+1}^{t} (1-\beta)\beta^{t-j} x[j]
         + b\,(1 - \beta^{t-t_0}).

Segments start at the beginning of each trace and ``margin_ms`` after each recorded
spike (the action potential and its fast after-hyperpolarisation are left out).
For every :math:`\tau` on a log grid the gain and bias come from least squares on the
normalised voltage (rest 0, threshold 1); the :math:`\tau` with the smallest residual
wins (then a finer grid around it). All grid
points are evaluated at once with FFT filters.

With ``spike_tau_ms`` a spike-triggered current (the recorded spikes' exponential trace,
filtered by the membrane) is one more regressor: a cell with a strong after-spike
hyperpolarisation otherwise looks like a slow membrane (tau_m several times too long).
:func:`initial_values` uses that fit only where the plain one's tau_m is more than
``FitConfig.voltage_spike_ratio`` times longer (FITTING.md, round 6).

With ``sub_tau_ms`` the regressor is instead the stimulus low-passed with time constant
:math:`\tau_\text{sub}` (the ``alif_sub`` variant's subthreshold adaptation current,
:func:`cellfit.functional.linear.subthreshold_adapted`); its coefficient is :math:`-g k`. A cell whose
potential stays near the same mean at every stimulus amplitude while following its fluctuations (a
slow potassium current below threshold) is explained much better with it (FITTING.md, round 10), and
:func:`initial_values` starts such a cell as ``alif_sub`` where ``FitConfig.sub_r2_gain`` says so.

The result is only a starting point: the spike-train fit that follows adjusts every
parameter. On cells whose voltage is not informative (low :math:`R^2`) the caller
keeps its defaults.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np
import torch

from cellfit.fit.config import FitConfig, inside_bounds
from cellfit.fit.loss import LossTargets
from cellfit.functional.alif import ALIFParameters, block_spikes
from cellfit.functional.filters import exp_filter
from cellfit.functional.linear import subthreshold_adapted
from cellfit.modules import SUB_AMP_MAX

#: a voltage fit explaining less than this of the subthreshold voltage is rejected (:func:`subthreshold_init`)
VOLTAGE_MIN_R2 = 0.2
#: time after each spike that the voltage fits leave out (their segments start here; :func:`post_spike_voltage`)
SPIKE_MARGIN_MS = 5.0

__all__ = ["SubthresholdFit", "subthreshold_init", "initial_values", "initial_starts", "sub_start", "grid_init",
           "post_spike_voltage"]


class SubthresholdFit(NamedTuple):
    tau_m_ms: float
    gain: float
    bias: float
    r2: float
    """Fraction of the subthreshold voltage variance explained."""
    sub_amp: Optional[float] = None
    """With ``sub_tau_ms``: the fraction k of a sustained stimulus the subthreshold current cancels."""
    tau_sub_ms: Optional[float] = None
    """With ``sub_tau_ms``: its time constant (the grid point that explains most)."""


def subthreshold_init(
    current: np.ndarray,
    voltage: np.ndarray,
    spikes: np.ndarray,
    dt_ms: float,
    *,
    tau_bounds_ms: tuple[float, float] = (1.0, 200.0),
    n_grid: int = 48,
    margin_ms: float = SPIKE_MARGIN_MS,
    min_r2: float = VOLTAGE_MIN_R2,
    spike_tau_ms: tuple = (),
    sub_tau_ms: tuple = (),
) -> Optional[SubthresholdFit]:
    """Estimate membrane time constant, gain and bias from subthreshold voltage.

    Args:
        current: (..., T) normalised stimulus.
        voltage: (..., T) normalised voltage (rest 0, threshold 1).
        spikes: (..., T) recorded spikes (0/1).
        dt_ms: bin width.
        tau_bounds_ms: search range of the time constant.
        n_grid: grid points (log-spaced).
        margin_ms: time after each spike left out of the fit.
        min_r2: below this explained variance the estimate is rejected (returns None).
        spike_tau_ms: time constants of a spike-triggered current added to the voltage model
            (one more least-squares regressor: the recorded spikes' exponential trace, filtered by
            the membrane; the best of these time constants by residual is used, its amplitude
            discarded). Without it, the slow after-spike hyperpolarisation of a strongly adapting
            cell is fitted as a slow membrane (tau_m several times too long). Empty: no such term.
        sub_tau_ms: time constants of a subthreshold adaptation current that follows the stimulus
            (instead of ``spike_tau_ms``: the stimulus low-passed, filtered by the membrane, one more
            regressor); the best by residual is returned with its amplitude (``sub_amp``, ``tau_sub_ms``).

    Returns:
        :class:`SubthresholdFit`, or ``None`` if the voltage does not determine the parameters.
    """
    if spike_tau_ms and sub_tau_ms:
        raise ValueError("spike_tau_ms and sub_tau_ms are two different voltage models; give one")
    x = torch.as_tensor(np.asarray(current, dtype=np.float64).reshape(-1, np.shape(current)[-1]))
    v = torch.as_tensor(np.asarray(voltage, dtype=np.float64).reshape(x.shape))
    s = torch.as_tensor(np.asarray(spikes, dtype=np.float64).reshape(x.shape))
    if not (torch.isfinite(x).all() and torch.isfinite(v).all()):
        return None
    n, T = x.shape
    margin = max(1, int(round(margin_ms / dt_ms)))

    # Segment start t0 for every sample; samples within `margin` after a spike are excluded.
    t_idx = torch.arange(T)
    spike_t = torch.where(s > 0, t_idx, torch.full_like(t_idx, -(10**9)))
    last_spike = spike_t.cummax(-1).values
    since = t_idx - last_spike
    starts = torch.where(last_spike >= 0, last_spike + margin, torch.zeros_like(last_spike))
    keep = (since > margin) | (last_spike < 0)
    keep &= v < 1.5  # leave out any remaining spike upstroke
    starts = starts.clamp(max=T - 1)
    if int(keep.sum()) < 100:
        return None

    lo, hi = math.log(tau_bounds_ms[0]), math.log(tau_bounds_ms[1])
    coarse = torch.linspace(lo, hi, n_grid, dtype=torch.float64)
    # the model with a spike-triggered current holds the one without (amplitude 0): fit it alone where it can be
    traces = [exp_filter(s, torch.tensor(-dt_ms / t, dtype=torch.float64)) for t in spike_tau_ms] if bool(s.any()) else []
    if sub_tau_ms:
        traces = [-math.expm1(-dt_ms / t) * exp_filter(x, torch.tensor(-dt_ms / t, dtype=torch.float64))
                  for t in sub_tau_ms]
    fits = [_grid_fit(x, v, keep, starts, coarse, dt_ms, z) for z in traces]
    if not any(math.isfinite(float(f[0].min())) for f in fits):  # no spikes, or a trace collinear with the rest
        traces, fits = [None], [_grid_fit(x, v, keep, starts, coarse, dt_ms)]
    best = min(range(len(traces)), key=lambda k: float(fits[k][0].min()))  # the spike trace that explains most
    sse = fits[best][0]
    i = int(torch.argmin(sse))
    if not math.isfinite(float(sse[i])):
        return None
    # refine around the best grid point
    step = float(coarse[1] - coarse[0]) if n_grid > 1 else 0.0
    fine = torch.linspace(max(lo, float(coarse[i]) - step), min(hi, float(coarse[i]) + step), 9, dtype=torch.float64)
    sse, gain, bias, extra = _grid_fit(x, v, keep, starts, fine, dt_ms, traces[best])
    j = int(torch.argmin(sse))
    vk = v[keep]
    sst = float(((vk - vk.mean()) ** 2).sum())
    if sst <= 0 or not math.isfinite(float(sse[j])):
        return None
    r2 = 1.0 - float(sse[j]) / sst
    if r2 < min_r2:
        return None
    fit = SubthresholdFit(tau_m_ms=math.exp(float(fine[j])), gain=float(gain[j]), bias=float(bias[j]), r2=r2)
    if sub_tau_ms and traces[best] is not None:
        k = -float(extra[j]) / fit.gain if fit.gain != 0.0 else float("nan")
        fit = fit._replace(sub_amp=k, tau_sub_ms=float(sub_tau_ms[best]))
    return fit


def _grid_fit(x, v, keep, starts, log_tau, dt_ms, z=None):
    """Least-squares gain and bias (and, with another input ``z`` (n, T), a spike trace or the low-passed
    stimulus, its coefficient) for each time constant of the grid; returns (sse, gain, bias, coefficient of
    ``z`` or None), each (G,)."""
    t_idx = torch.arange(x.shape[-1])
    lam = -dt_ms / torch.exp(log_tau)  # (G,) ln beta
    lag = (t_idx - starts).to(torch.float64)  # (n, T)
    decay = torch.exp(lam[:, None, None] * lag[None])  # beta^(t - t0)

    def from_segment_start(signal):  # the membrane's response to `signal` since each segment's start
        f = (1 - lam.exp())[:, None, None] * exp_filter(signal[None], lam[:, None])  # (G, n, T)
        return f - decay * torch.gather(f, -1, starts[None].expand_as(f))

    gx, g1 = from_segment_start(x), 1.0 - decay
    y = v[None] - decay * torch.gather(v[None].expand_as(decay), -1, starts[None].expand_as(decay))
    m = keep[None].to(torch.float64)
    if z is not None:
        sse, coef = _least_squares([gx, g1, from_segment_start(z)], y, m)
        return sse, coef[:, 0], coef[:, 1], coef[:, 2]
    a11 = (gx * gx * m).sum((1, 2))
    a12 = (gx * g1 * m).sum((1, 2))
    a22 = (g1 * g1 * m).sum((1, 2))
    b1 = (gx * y * m).sum((1, 2))
    b2 = (g1 * y * m).sum((1, 2))
    det = a11 * a22 - a12 * a12
    ok = det.abs() > 1e-12 * (a11 * a22).abs().clamp(min=1e-300)
    gain = torch.where(ok, (a22 * b1 - a12 * b2) / det, torch.zeros_like(det))
    bias = torch.where(ok, (a11 * b2 - a12 * b1) / det, torch.zeros_like(det))
    resid = y - gain[:, None, None] * gx - bias[:, None, None] * g1
    sse = (resid * resid * m).sum((1, 2))
    return torch.where(ok, sse, torch.full_like(sse, float("inf"))), gain, bias, None


def _least_squares(regressors, y, m):
    """Masked least squares of ``y`` on the (G, n, T) ``regressors`` per grid point: (sse (G,), coefficients (G, k))."""
    k = len(regressors)
    prods = {(i, j): (regressors[i] * regressors[j] * m).sum((1, 2)) for i in range(k) for j in range(i, k)}
    A = torch.stack([torch.stack([prods[min(i, j), max(i, j)] for j in range(k)], -1) for i in range(k)], -2)
    b = torch.stack([(r * y * m).sum((1, 2)) for r in regressors], -1)  # (G, k)
    scale = torch.diagonal(A, dim1=-2, dim2=-1).clamp(min=1e-300).sqrt()  # equilibrate before solving
    An = A / (scale[:, :, None] * scale[:, None, :])
    ok = torch.linalg.matrix_rank(An, rtol=1e-9) == k  # the regressors are not collinear
    coef = torch.linalg.lstsq(An, (b / scale)[..., None]).solution[..., 0] / scale
    coef = torch.where(ok[:, None], coef, torch.zeros_like(coef))
    resid = y - sum(coef[:, j, None, None] * r for j, r in enumerate(regressors))
    sse = (resid * resid * m).sum((1, 2))
    return torch.where(ok, sse, torch.full_like(sse, float("inf"))), coef


def initial_values(cfg: FitConfig, data, *, allow_sub: bool = True) -> dict:
    """A cell's starting parameters: the configuration's defaults, or the voltage-based estimate.

    ``data`` is a :class:`cellfit.fit.fitter.TrainingSet`. An estimate on a learnable bound is
    moved just inside it (a time constant on a bound could not move) and ``note`` says so.
    With ``cfg.sub_candidates`` (and ``allow_sub``) a cell whose voltage the subthreshold current
    explains much better (:func:`sub_start`) starts as ``alif_sub`` from that voltage fit.
    """
    return initial_starts(cfg, data, allow_sub=allow_sub)[0]


def initial_starts(cfg: FitConfig, data, *, allow_sub: bool = True) -> list[dict]:
    """``[initial_values(...)]``, and for a cell in the zone of ``cfg.sub_zone_gain`` (its voltage fit gains at
    least that much from the subthreshold current, but less than ``cfg.sub_r2_gain``, or any more where
    ``cfg.sub_alone`` is False) also the ``alif_sub`` start of :func:`sub_start`: that cell is fitted in both
    variants; so is a cell whose plain voltage fit explains
    less than ``cfg.sub_min_r2`` but at least ``cfg.sub_low_r2`` (where set) and gains ``cfg.sub_r2_gain``, and one
    that explains less than ``cfg.sub_default_below`` (where set), gains as much and resets near threshold, its
    ``alif_sub`` start then the plain start with the default subthreshold current."""
    init = cfg.initial_values()
    if cfg.init != "voltage" or data.voltage is None:
        return [init]
    everywhere = () if cfg.voltage_spike_ratio else tuple(cfg.voltage_spike_tau_ms)  # the current in every fit
    est = subthreshold_init(data.current, data.voltage, data.spikes, cfg.dt_ms, tau_bounds_ms=cfg.tau_mem_bounds_ms,
                            spike_tau_ms=everywhere)
    sub, band, under = None, False, False
    plain_r2 = VOLTAGE_MIN_R2 if est is None else est.r2
    if allow_sub and cfg.sub_candidates and not everywhere:
        sub = sub_start(cfg, data, est, min_gain=cfg.sub_zone_gain or cfg.sub_r2_gain)
        if sub is None and cfg.sub_low_r2 is not None and cfg.sub_low_r2 <= plain_r2 < cfg.sub_min_r2:
            sub = sub_start(cfg, data, est, floor=cfg.sub_low_r2)  # under the floor: both ways (rounds 17-18)
            band = sub is not None
        if sub is None and cfg.sub_default_below is not None and plain_r2 < cfg.sub_default_below:
            under = _under_band(cfg, data, plain_r2)
    if sub is not None and not band and cfg.sub_alone and sub["voltage_r2"] - plain_r2 >= cfg.sub_r2_gain:
        init.update(sub)  # the current explains much more: the cell is fitted as alif_sub alone
        return [init]
    method = "voltage with spike current" if everywhere and np.asarray(data.spikes).any() else "voltage"
    if est is not None and cfg.voltage_spike_tau_ms and cfg.voltage_spike_ratio:
        alt = subthreshold_init(data.current, data.voltage, data.spikes, cfg.dt_ms, n_grid=24,  # a start: 0.16 s
                                tau_bounds_ms=cfg.tau_mem_bounds_ms, spike_tau_ms=tuple(cfg.voltage_spike_tau_ms))
        if alt is not None and est.tau_m_ms > cfg.voltage_spike_ratio * alt.tau_m_ms:
            est, method = alt, "voltage with spike current"
    if est is not None:
        init.update(tau_m_ms=est.tau_m_ms, gain=est.gain, bias=est.bias, method=method, voltage_r2=est.r2)
        inside = float(inside_bounds(torch.tensor(est.tau_m_ms, dtype=torch.float64), cfg.tau_mem_bounds_ms))
        if inside != est.tau_m_ms:  # on a bound the time constant could not move: start just inside
            init.update(tau_m_ms=inside, note=f"voltage-based tau_m {est.tau_m_ms:.4g} ms lies on the bound "
                                               f"{tuple(cfg.tau_mem_bounds_ms)} ms; started at {inside:.4g} ms")
    if under:
        return [init, dict(init, **cfg.variant_start("alif_sub"), method=init["method"] + " with default subthreshold "
                                                                                     "current")]
    return [init] if sub is None else [init, dict(cfg.initial_values(), **sub)]


def post_spike_voltage(voltage: np.ndarray, spikes: np.ndarray, dt_ms: float,
                       lag_ms: float = SPIKE_MARGIN_MS) -> Optional[float]:
    """The median normalised voltage ``lag_ms`` after each recorded spike not followed by another within it (where
    :func:`subthreshold_init`'s segments start, by default): near 1 for a cell that resets close to threshold, near 0
    for one that resets to rest. None without such a spike."""
    v = np.asarray(voltage, dtype=np.float64).reshape(-1, np.shape(voltage)[-1])
    s = np.asarray(spikes).reshape(v.shape) > 0
    lag = max(1, int(round(lag_ms / dt_ms)))
    count = np.cumsum(s, axis=-1)  # spikes in (t, t + lag]: count[t + lag] - count[t]
    row, t = np.nonzero(s[:, : max(0, s.shape[-1] - lag)])
    alone = count[row, t + lag] == count[row, t]
    return float(np.median(v[row[alone], t[alone] + lag])) if alone.any() else None


def _under_band(cfg: FitConfig, data, plain_r2: float) -> bool:
    """Whether a cell under ``cfg.sub_default_below`` is fitted both ways (round 19): its voltage fit with the current
    explains ``cfg.sub_r2_gain`` more (whatever that fit's amplitude: its current is not the start) and its voltage
    after a spike (:func:`post_spike_voltage`) is at least ``cfg.sub_default_reset`` (a reset near threshold)."""
    after = post_spike_voltage(data.voltage, data.spikes, cfg.dt_ms)
    if after is None or after < cfg.sub_default_reset or 1.0 - plain_r2 < cfg.sub_r2_gain:
        return False
    est = _fit_with_current(cfg, data)
    return est is not None and est.r2 - plain_r2 >= cfg.sub_r2_gain and est.gain > 0.0


def _fit_with_current(cfg: FitConfig, data) -> Optional[SubthresholdFit]:
    """The voltage fit with a subthreshold current (``cfg.sub_tau_grid_ms``) whose gain the sub gates measure."""
    return subthreshold_init(data.current, data.voltage, data.spikes, cfg.dt_ms, tau_bounds_ms=cfg.tau_mem_bounds_ms,
                             n_grid=24, sub_tau_ms=tuple(cfg.sub_tau_grid_ms))


def sub_start(cfg: FitConfig, data, plain: Optional[SubthresholdFit], *,
              min_gain: Optional[float] = None, floor: Optional[float] = None) -> Optional[dict]:
    """The ``alif_sub`` start of a cell whose subthreshold voltage says it has a subthreshold adaptation current,
    else None.

    The voltage is fitted again with the current (``cfg.sub_tau_grid_ms``); the cell qualifies where the plain
    fit ``plain`` explains at least ``floor`` (default ``cfg.sub_min_r2``) of the voltage (the voltage is
    informative; a plain fit that :func:`subthreshold_init` rejected counts as :data:`VOLTAGE_MIN_R2`), the fit
    with the current explains at least ``min_gain`` (default ``cfg.sub_r2_gain``) more, and its amplitude and
    gain are meaningful (0 < k < :data:`cellfit.modules.SUB_AMP_MAX`, gain > 0). The start: that fit's tau_m,
    gain, bias, k and tau_sub (``voltage_r2``, and ``voltage_r2_plain``, None where the plain fit was rejected).
    """
    min_gain = cfg.sub_r2_gain if min_gain is None else min_gain
    floor = cfg.sub_min_r2 if floor is None else floor
    # a plain fit that was rejected explained less than VOLTAGE_MIN_R2: counting it as that understates the gain
    plain_r2 = plain.r2 if plain is not None else VOLTAGE_MIN_R2
    if plain_r2 < floor or 1.0 - plain_r2 < min_gain:
        return None  # uninformative, or too well explained already to gain min_gain (R^2 <= 1): no second fit
    est = _fit_with_current(cfg, data)
    if (est is None or est.sub_amp is None or est.r2 - plain_r2 < min_gain or not est.gain > 0.0
            or not 0.0 < est.sub_amp < SUB_AMP_MAX):
        return None
    tau_m = float(inside_bounds(torch.tensor(est.tau_m_ms, dtype=torch.float64), cfg.tau_mem_bounds_ms))
    tau_sub = float(inside_bounds(torch.tensor(est.tau_sub_ms, dtype=torch.float64), cfg.tau_sub_bounds_ms))
    k = min(max(est.sub_amp, 0.01 * SUB_AMP_MAX), 0.99 * SUB_AMP_MAX)  # strictly inside its range
    return dict(model="alif_sub", tau_m_ms=tau_m, gain=est.gain, bias=est.bias, sub_amp=k, tau_sub_ms=tau_sub,
                method="voltage with subthreshold current", voltage_r2=est.r2,
                voltage_r2_plain=None if plain is None else plain.r2)


@torch.no_grad()
def grid_init(inits: list, x: torch.Tensor, targets: LossTargets, cfg: FitConfig, max_neurons: int = 4096,
              top: int = 1, gain_scale: tuple = (1.0,)) -> list[list[dict]]:
    """Pick each cell's starting (tau_adapt, d, bias shift, gain factor) from a grid by the first-stage loss.

    A gain factor ``s`` of ``gain_scale`` (e.g. ``cfg.grid_gain_scale``) other than 1 multiplies the start's
    gain and lowers its bias by ``(s - 1) gain m``, with ``m`` the cell's mean training input (weighted like
    the loss): the mean drive stays where the voltage fit put it, and only the response to the stimulus's
    fluctuations grows.
    The ranked starts come from the points of factor 1 (as without factors); after them, each other factor
    adds its best point, as one more start.

    Forward passes only (spikes from :func:`block_spikes`), every candidate of a chunk of
    cells in one batch. ``inits[k]`` is updated to cell k's best grid point; the return value
    lists, per cell, the ``top`` best starting points (best first), for restarts.
    """
    grid = [(ta, dd, db, gs) for ta in cfg.grid_tau_adapt_ms for dd in cfg.grid_adapt_scale
            for db in cfg.grid_bias_shift for gs in gain_scale
            if cfg.tau_adapt_bounds_ms[0] < ta < cfg.tau_adapt_bounds_ms[1]]
    if not grid:
        return [[dict(i)] for i in inits]
    C = len(grid)
    ta = torch.tensor([g[0] for g in grid], dtype=x.dtype, device=x.device)
    dd = torch.tensor([g[1] for g in grid], dtype=x.dtype, device=x.device)
    db = torch.tensor([g[2] for g in grid], dtype=x.dtype, device=x.device)
    gs = torch.tensor([g[3] for g in grid], dtype=x.dtype, device=x.device)
    per_chunk = max(1, max_neurons // C)
    ranked: list[list[dict]] = []
    for lo in range(0, len(inits), per_chunk):
        chunk = inits[lo: lo + per_chunk]
        k = len(chunk)
        col = lambda key: torch.tensor([i[key] for i in chunk], dtype=x.dtype, device=x.device).repeat_interleave(C)
        tau_m, gain0, bias0 = col("tau_m_ms"), col("gain"), col("bias")
        params = ALIFParameters(tau_m, ta.repeat(k), dd.repeat(k), cfg.arp_ms).discretise(cfg.dt_ms)
        idx = torch.arange(lo, lo + k, device=x.device).repeat_interleave(C)
        stim = x[:, idx]
        sub = [j for j, i in enumerate(chunk) if i.get("model") == "alif_sub"]
        if sub:  # the alif_sub starts see their subthreshold current (the other rows stay as they were)
            rows = torch.tensor([j * C + c for j in sub for c in range(C)], device=x.device)
            amp = torch.tensor([chunk[j]["sub_amp"] for j in sub], dtype=x.dtype, device=x.device).repeat_interleave(C)
            log_r = -cfg.dt_ms / torch.tensor([chunk[j]["tau_sub_ms"] for j in sub], dtype=x.dtype,
                                              device=x.device).repeat_interleave(C)
            stim = stim.clone()
            stim[:, rows] = subthreshold_adapted(stim[:, rows], amp, log_r)
        chunk_targets = targets.select(idx)
        gain, bias = gain0, bias0 + db.repeat(k)
        if len(gain_scale) > 1:  # gain factors: the bias keeps each cell's weighted mean drive
            mean_input = (chunk_targets.w.to(stim.dtype) * stim.mean(-1)).sum(0)  # (k C,)
            gain = gain0 * gs.repeat(k)
            bias = bias - (gain - gain0) * mean_input
            gain_h, bias_h = gain.cpu().numpy().reshape(k, C), bias.cpu().numpy().reshape(k, C)
        spikes = block_spikes(stim * gain[None, :, None] + bias[None, :, None], params).spikes
        loss = chunk_targets.loss(spikes, np.zeros(k * C, dtype=int)).reshape(k, C)
        order = torch.argsort(loss, dim=1, stable=True).cpu().numpy()
        for j, init in enumerate(chunk):
            options = []
            plain = [g for g in order[j] if grid[int(g)][3] == 1.0]
            ranked_points = (_first_per_tau(plain, grid, top) if cfg.diverse_restarts else plain[: max(1, top)])
            for scale in (s for s in gain_scale if s != 1.0):  # each other gain factor's best point
                ranked_points.append(next(g for g in order[j] if grid[int(g)][3] == scale))
            for rank, g in enumerate(ranked_points):
                tau_a, d, shift, scale = grid[int(g)]
                option = dict(init, tau_adapt_ms=tau_a, adapt_scale=d, bias_shift=shift,
                              bias=init["bias"] + shift if scale == 1.0 else float(bias_h[j, int(g)]))
                if scale != 1.0:
                    option.update(gain=float(gain_h[j, int(g)]), gain_scale=scale)
                option["method"] = init["method"] + "+grid" + (f" (gain x{scale:g})" if scale != 1.0 else
                                                                 f" (rank {rank + 1})" if rank else "")
                options.append(option)
            init.clear()
            init.update(options[0])
            ranked.append(options)
    return ranked


def _first_per_tau(order, grid: list, top: int) -> list:
    """The best ``top`` grid points of ``order`` (best first) whose tau_adapt differ: the best point, then the
    best point of each other tau_adapt (restarts that start in other valleys along tau_adapt)."""
    seen, out = set(), []
    for g in order:
        if grid[int(g)][0] not in seen:
            seen.add(grid[int(g)][0])
            out.append(g)
        if len(out) == max(1, top):
            break
    return out
