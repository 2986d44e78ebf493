"""Fit ALIF neurons to recorded spike trains: many cells at once, each on its own schedule.

K cells are fitted together as K independent neurons of one batched simulation
(``(traces, K, T)`` current into one engine call), so a whole panel costs about
as many kernel launches as one cell. Every cell keeps its own parameters, its own
Adam state (moments, step count, learning rate), its own learning-rate decay on a
loss plateau and its own early stop: a cell that has finished keeps its best
parameters while the others train, and its result does not depend on which other
cells shared the batch. The K cells are the K neurons of one ``ALIF(1, K)`` layer and
their optimiser steps, snapshots and restarts are masked tensor operations over all
cells at once, so the per-epoch overhead does not grow with K either.

Per cell the model is a ``cellfit.ALIF(1, 1)`` layer: input current
:math:`I = g\\,x + b` from the normalised stimulus ``x`` (gain ``g``, bias ``b``),
learnable :math:`\\tau_m`, :math:`\\tau_\\text{adapt}` (bounded log space) and
adaptation scale :math:`d`. The loss is the van Rossum distance
(:func:`cellfit.fit.metrics.van_rossum_distance`, tau 10 ms) between the model's
spikes and every recorded repeat of the training stimulus.

Inputs are arrays in normalised units (see :mod:`cellfit.data`): current and
spikes of shape ``(n_repeats, n_epochs, T)``; the optional normalised voltage
(rest 0, threshold 1) lets :func:`cellfit.fit.init.subthreshold_init` start
:math:`\\tau_m`, gain and bias from the cell's own subthreshold response.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from cellfit.device import DTYPES, resolve_device, resolve_dtype
from cellfit.fit import metrics
from cellfit.fit.init import subthreshold_init
from cellfit.functional.alif import ENGINES, ALIFParameters, arp_steps, block_spikes, simulate
from cellfit.functional.surrogate import get_surrogate
from cellfit.modules import ALIF

__all__ = ["FitConfig", "TrainingSet", "CellFitState", "fit_population", "predict_spikes", "unique_stimuli",
           "PARAMETER_NAMES", "physical_parameters"]


#: how far inside its learnable bounds a starting time constant is placed (relative)
_BOUND_MARGIN = 1e-3


def _inside(tau_ms: torch.Tensor, bounds: tuple) -> torch.Tensor:
    """Time constants moved strictly inside ``bounds`` (an estimate on a bound would have no gradient)."""
    lo, hi = bounds
    return tau_ms.clamp(lo * (1 + _BOUND_MARGIN), hi * (1 - _BOUND_MARGIN))


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Everything that determines a fit (saved with every result)."""

    dt_ms: float = 0.1
    arp_ms: float = 2.0
    engine: str = "blocks"
    epochs: int = 200
    lr: float = 0.03
    """Adam learning rate on the unconstrained parameters (log-space time constants, gain, bias)."""
    patience: int = 5
    """Epochs without a better training loss before the learning rate is decayed."""
    lr_decay: float = 0.5
    max_decays: int = 4
    """A cell stops after this many decays followed by another ``patience`` epochs without progress."""
    min_improvement: float = 1e-4
    """Relative loss improvement that counts as progress."""
    van_rossum_tau_ms: float = 10.0
    """Time constant of the final training loss (the paper's 10 ms)."""
    coarse_to_fine_ms: tuple = (100.0, 30.0)
    """Larger van Rossum time constants used first, in order (empty: train on the final loss only)."""
    surrogate: str = "multi_gaussian"
    init: str = "voltage"
    """``"voltage"``: tau_m, gain and bias from the subthreshold voltage (falls back to defaults
    without a voltage); ``"default"``: the fixed initial values below."""
    grid_init: bool = True
    """Before training, try a grid of adaptation time constants, adaptation scales and bias shifts
    (forward passes only, all candidates in one batch) and start from the one with the lowest loss."""
    grid_tau_adapt_ms: tuple = (20.0, 50.0, 125.0, 300.0, 800.0)
    grid_adapt_scale: tuple = (0.05, 0.15, 0.4, 1.0, 2.5)
    grid_bias_shift: tuple = (-0.2, 0.0, 0.2, 0.4, 0.7)
    """Shifts of the initial bias (threshold units) tried with every (tau_adapt, d): the voltage-based
    bias of a cell outside the ALIF family can leave the model silent."""
    tau_mem_init_ms: float = 20.0
    tau_adapt_init_ms: float = 100.0
    adapt_scale_init: float = 0.5
    gain_init: float = 1.5
    bias_init: float = 0.5
    tau_mem_bounds_ms: tuple = (1.0, 200.0)
    tau_adapt_bounds_ms: tuple = (5.0, 5000.0)
    dtype: str = "float32"

    def __post_init__(self):
        arp_steps(self.arp_ms, self.dt_ms)  # raises a clear ValueError
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {sorted(ENGINES)}, got {self.engine!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.init not in ("voltage", "default"):
            raise ValueError(f"init must be 'voltage' or 'default', got {self.init!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}")
        get_surrogate(self.surrogate)

    @property
    def loss_taus_ms(self) -> list[float]:
        """Van Rossum time constants of the loss stages, in order (coarse first, the final loss last)."""
        return [t for t in self.coarse_to_fine_ms if t > self.van_rossum_tau_ms] + [self.van_rossum_tau_ms]

    def initial_values(self) -> dict:
        """The fixed initial parameters (physical units), before any data-based initialisation."""
        return dict(tau_m_ms=self.tau_mem_init_ms, tau_adapt_ms=self.tau_adapt_init_ms,
                    adapt_scale=self.adapt_scale_init, gain=self.gain_init, bias=self.bias_init, method="default")

    def build_model(self, init: Optional[Sequence[dict] | dict] = None, *, device=None) -> ALIF:
        """The model this configuration fits: ``ALIF(1, K)`` whose neuron k starts at ``init[k]``.

        The one place where a fit's model is made (training, scoring, reloading a result).

        Args:
            init: one dict of initial values (``tau_m_ms``, ``tau_adapt_ms``, ``adapt_scale``,
                ``gain``, ``bias``; physical units) or a list of K of them; default
                :meth:`initial_values` for one cell. Time constants are moved strictly
                inside the learnable bounds (a data-based estimate can land on a bound).
            device: where the parameters live (default CPU).

        Returns:
            A ``cellfit.ALIF(1, K)`` in ``self.dtype``.
        """
        inits = [self.initial_values()] if init is None else ([init] if isinstance(init, dict) else list(init))
        dtype = resolve_dtype(self.dtype)
        col = lambda key: torch.tensor([float(i[key]) for i in inits], dtype=dtype, device=device)  # noqa: E731
        model = ALIF(
            1, len(inits), dt_ms=self.dt_ms, arp_ms=self.arp_ms, engine=self.engine, surrogate=self.surrogate,
            tau_mem_ms=_inside(col("tau_m_ms"), self.tau_mem_bounds_ms),
            tau_adapt_ms=_inside(col("tau_adapt_ms"), self.tau_adapt_bounds_ms),
            adapt_scale=col("adapt_scale"),
            tau_mem_bounds_ms=self.tau_mem_bounds_ms, tau_adapt_bounds_ms=self.tau_adapt_bounds_ms,
            device=device, dtype=dtype,
        )
        with torch.no_grad():
            model.weight.copy_(col("gain")[:, None])
            model.bias.copy_(col("bias"))
        return model

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tau_mem_bounds_ms"] = list(self.tau_mem_bounds_ms)
        d["tau_adapt_bounds_ms"] = list(self.tau_adapt_bounds_ms)
        d["grid_tau_adapt_ms"] = list(self.grid_tau_adapt_ms)
        d["grid_adapt_scale"] = list(self.grid_adapt_scale)
        d["grid_bias_shift"] = list(self.grid_bias_shift)
        d["coarse_to_fine_ms"] = list(self.coarse_to_fine_ms)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FitConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
        return cls(**kw)


@dataclasses.dataclass
class TrainingSet:
    """One cell's training data in normalised units, ``(n_repeats, n_epochs, T)`` each."""

    current: np.ndarray
    spikes: np.ndarray
    voltage: Optional[np.ndarray] = None

    def __post_init__(self):
        if self.current.ndim != 3 or self.current.shape != self.spikes.shape:
            raise ValueError(
                f"current and spikes must both be (n_repeats, n_epochs, T), got {self.current.shape} and {self.spikes.shape}"
            )
        if self.voltage is not None and self.voltage.shape != self.current.shape:
            raise ValueError(f"voltage must match current {self.current.shape}, got {self.voltage.shape}")
        if not np.isfinite(self.current).all():
            raise ValueError("training current contains NaN or infinite values")


@dataclasses.dataclass
class CellFitState:
    """What the fit of one cell produced."""

    model: ALIF
    """Best-loss model (on the CPU), a ``cellfit.ALIF(1, 1)``."""
    init: dict
    """Initial parameter values (physical units) and how they were chosen."""
    history: list
    """Training loss per epoch (van Rossum distance, mean over traces)."""
    lr_history: list
    epochs: int
    best_loss: float
    stop_reason: str
    best_epoch: int = 0
    """Epoch (1-based) whose parameters the model holds: the best loss of the last stage reached."""
    stage_history: list = dataclasses.field(default_factory=list)
    """Loss stage (index into ``loss_taus_ms``) of every epoch of ``history``."""
    loss_taus_ms: list = dataclasses.field(default_factory=list)
    """Van Rossum time constant of each loss stage (coarse to fine)."""
    param_history: dict = dataclasses.field(default_factory=dict)
    """Parameters (:data:`PARAMETER_NAMES`) at every epoch of ``history``."""

    @property
    def failed(self) -> bool:
        return self.stop_reason.startswith("failed")


def unique_stimuli(current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group identical stimulus traces.

    Args:
        current: (R, E, T) stimulus of every repeat and epoch.

    Returns:
        ``(stimuli, index)``: (U, T) distinct traces and an (R, E) int array mapping
        each repeat/epoch to its row in ``stimuli``. Allen noise sweeps repeat the same
        waveform, so usually U = E and the model is simulated once per epoch.
    """
    R, E, T = current.shape
    stimuli: list[np.ndarray] = []
    index = np.zeros((R, E), dtype=np.int64)
    for e in range(E):
        for r in range(R):
            trace = current[r, e]
            for u, known in enumerate(stimuli):
                if np.array_equal(known, trace):
                    index[r, e] = u
                    break
            else:
                index[r, e] = len(stimuli)
                stimuli.append(trace)
    return np.stack(stimuli), index


def _initial_values(cfg: FitConfig, data: TrainingSet) -> dict:
    init = cfg.initial_values()
    if cfg.init == "voltage" and data.voltage is not None:
        est = subthreshold_init(data.current, data.voltage, data.spikes, cfg.dt_ms, tau_bounds_ms=cfg.tau_mem_bounds_ms)
        if est is not None:
            init.update(tau_m_ms=est.tau_m_ms, gain=est.gain, bias=est.bias, method="voltage", voltage_r2=est.r2)
            inside = float(_inside(torch.tensor(est.tau_m_ms, dtype=torch.float64), cfg.tau_mem_bounds_ms))
            if inside != est.tau_m_ms:  # on a bound the time constant could not move: start just inside
                init.update(tau_m_ms=inside, note=f"voltage-based tau_m {est.tau_m_ms:.4g} ms lies on the bound "
                                                   f"{tuple(cfg.tau_mem_bounds_ms)} ms; started at {inside:.4g} ms")
    return init


def _copy_cell(pop_params: dict, k: int, model: ALIF) -> None:
    """Write row k of the population's parameters (name -> (K, ...) tensor) into ``model``."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(pop_params[name][k].reshape(param.shape))


def _to_device_rows(like: torch.Tensor, *rows: np.ndarray) -> torch.Tensor:
    """Stack (K,) host arrays and move them to ``like``'s device and dtype in a single copy."""
    return torch.as_tensor(np.stack([np.asarray(r, dtype=np.float64) for r in rows]), dtype=like.dtype,
                           device=like.device)


class _CellwiseAdam:
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
        sel, step_size, bc2_sqrt = _to_device_rows(p0, cells, self.lr / (1.0 - b1**t), np.sqrt(1.0 - b2**t))
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


def _padded(arrays: Sequence[np.ndarray], fill: float = 0.0) -> np.ndarray:
    """Stack (U_k, T) arrays into (U_max, K, T), padding missing rows with ``fill``."""
    U = max(a.shape[0] for a in arrays)
    T = arrays[0].shape[-1]
    out = np.full((U, len(arrays), T), fill, dtype=np.float64)
    for k, a in enumerate(arrays):
        out[: a.shape[0], k] = a
    return out


class _Targets:
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

    def select(self, idx: torch.Tensor) -> "_Targets":
        """The targets of the cells ``idx`` (e.g. repeated once per grid candidate)."""
        new = object.__new__(_Targets)
        new.taus, new.dt_ms, new.w = self.taus, self.dt_ms, self.w[:, idx]
        new.filtered = [f[:, idx] for f in self.filtered]
        return new


@torch.no_grad()
def _grid_init(inits: list, x: torch.Tensor, targets: _Targets, cfg: FitConfig, max_neurons: int = 4096) -> None:
    """Pick each cell's starting (tau_adapt, d, bias shift) from a grid by the first-stage loss (updates ``inits``).

    Forward passes only (spikes from :func:`block_spikes`), every candidate of a chunk of
    cells in one batch.
    """
    grid = [(ta, dd, db) for ta in cfg.grid_tau_adapt_ms for dd in cfg.grid_adapt_scale for db in cfg.grid_bias_shift
            if cfg.tau_adapt_bounds_ms[0] < ta < cfg.tau_adapt_bounds_ms[1]]
    if not grid:
        return
    C = len(grid)
    ta = torch.tensor([g[0] for g in grid], dtype=x.dtype, device=x.device)
    dd = torch.tensor([g[1] for g in grid], dtype=x.dtype, device=x.device)
    db = torch.tensor([g[2] for g in grid], dtype=x.dtype, device=x.device)
    per_chunk = max(1, max_neurons // C)
    for lo in range(0, len(inits), per_chunk):
        chunk = inits[lo: lo + per_chunk]
        k = len(chunk)
        col = lambda key: torch.tensor([i[key] for i in chunk], dtype=x.dtype, device=x.device).repeat_interleave(C)
        tau_m, gain, bias = col("tau_m_ms"), col("gain"), col("bias") + db.repeat(k)
        params = ALIFParameters(tau_m, ta.repeat(k), dd.repeat(k), cfg.arp_ms).discretise(cfg.dt_ms)
        idx = torch.arange(lo, lo + k, device=x.device).repeat_interleave(C)
        spikes = block_spikes(x[:, idx] * gain[None, :, None] + bias[None, :, None], params).spikes
        loss = targets.select(idx).loss(spikes, np.zeros(k * C, dtype=int)).reshape(k, C)
        best = loss.argmin(1).cpu().numpy()
        for j, init in enumerate(chunk):
            tau_a, d, shift = grid[int(best[j])]
            init.update(tau_adapt_ms=tau_a, adapt_scale=d, bias=init["bias"] + shift, bias_shift=shift)
            init["method"] += "+grid"


def fit_population(
    cells: Sequence[TrainingSet],
    config: FitConfig = FitConfig(),
    *,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
    names: Optional[Sequence[str]] = None,
) -> list[CellFitState]:
    """Fit K cells at once, each with its own parameters, optimiser and stopping rule.

    Schedule per cell: the loss starts with the smoothest van Rossum time constant of
    ``config.coarse_to_fine_ms`` (spike trains compared at the scale of rates, where the
    loss is smooth in the adaptation parameters) and moves to the next, finer one when it
    stops improving for ``patience`` epochs (restarting from that stage's best
    parameters), ending with ``van_rossum_tau_ms`` (10 ms, the paper's loss). In the final
    stage the learning rate is multiplied by ``lr_decay`` on each plateau, and the cell
    stops after ``max_decays`` decays without progress. The returned model holds the
    best parameters of the final stage.

    Args:
        cells: K training sets (normalised current and recorded spikes; same T).
        config: the fit configuration.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        seed: seeds torch before building the models (the fit is deterministic given
            the data and the device).
        progress: show a tqdm bar (epoch, cells still training, mean loss).
        names: labels for error messages.

    Returns:
        One :class:`CellFitState` per cell, in order, models on the CPU.
    """
    if not cells:
        return []
    dev = resolve_device(device)
    dtype = resolve_dtype(config.dtype)
    T = cells[0].current.shape[-1]
    for k, c in enumerate(cells):
        if c.current.shape[-1] != T:
            label = names[k] if names else k
            raise ValueError(f"cell {label}: all cells fitted together need the same T, got {c.current.shape[-1]} vs {T}")
    torch.manual_seed(seed)

    inits = [_initial_values(config, c) for c in cells]
    spike_fn = get_surrogate(config.surrogate)

    # Distinct stimuli per cell and the mean target of the repeats that share each.
    stim, target, weight = [], [], []
    for c in cells:
        u_stim, index = unique_stimuli(np.asarray(c.current, dtype=np.float64))
        tgt = np.zeros_like(u_stim)
        counts = np.zeros(len(u_stim))
        for (r, e), u in np.ndenumerate(index):
            tgt[u] += c.spikes[r, e]
            counts[u] += 1
        stim.append(u_stim)
        target.append(tgt / counts[:, None])
        weight.append(counts / counts.sum())
    x = torch.as_tensor(_padded(stim), dtype=dtype, device=dev)  # (U, K, T)
    w = torch.as_tensor(_padded([wk[:, None] for wk in weight])[..., 0], dtype=dtype, device=dev)  # (U, K)
    taus = config.loss_taus_ms
    targets = _Targets(torch.as_tensor(_padded(target), dtype=dtype, device=dev), w, taus, config.dt_ms)
    final_stage = len(taus) - 1
    if config.grid_init:
        _grid_init(inits, x, targets, config)
    pop = config.build_model(inits, device=dev)  # cell k is neuron k: one layer, masked per-cell optimiser
    named = dict(pop.named_parameters())
    opt = _CellwiseAdam(list(named.values()), lr=config.lr)

    K = len(cells)
    stage = np.zeros(K, dtype=int)
    active = np.ones(K, dtype=bool)
    best = np.full(K, np.inf)
    best_epoch = np.zeros(K, dtype=int)
    bad = np.zeros(K, dtype=int)
    decays = np.zeros(K, dtype=int)
    lr = np.full(K, config.lr)
    history = [[] for _ in range(K)]
    stage_hist = [[] for _ in range(K)]
    lr_hist = [[] for _ in range(K)]
    param_hist = {name: [[] for _ in range(K)] for name in PARAMETER_NAMES}
    best_state = {n: p.detach().clone() for n, p in named.items()}  # row k: cell k's best parameters
    stop = ["max epochs"] * K
    epochs_run = np.zeros(K, dtype=int)

    bar = tqdm(range(config.epochs), desc="fit", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        params = pop.step_parameters()
        current = x * pop.weight[None, :, 0, None] + pop.bias[None, :, None]
        out = simulate(current, params, config.engine, spike_fn=spike_fn)
        per_cell = targets.loss(out.spikes, stage)  # (K,)
        pop.zero_grad(set_to_none=True)
        per_cell.sum().backward()  # cells are independent: each gets its own gradient
        losses = per_cell.detach().cpu().numpy().astype(float)
        values = _physical_rows(pop)  # (5, K): the parameters this epoch's loss was computed with

        improved = np.zeros(K, dtype=bool)
        restarted = np.zeros(K, dtype=bool)
        stepping = np.zeros(K, dtype=bool)
        for k in np.flatnonzero(active):
            loss = losses[k]
            if not math.isfinite(loss):
                # this cell fails alone: its graph is independent of the others
                active[k] = False
                stop[k] = f"failed: training loss became {loss} at epoch {epoch + 1}"
                continue
            history[k].append(loss)
            stage_hist[k].append(int(stage[k]))
            lr_hist[k].append(lr[k])
            for i, name in enumerate(PARAMETER_NAMES):
                param_hist[name][k].append(float(values[i, k]))
            epochs_run[k] = epoch + 1
            if loss < best[k] * (1 - config.min_improvement):
                best[k], bad[k], best_epoch[k] = loss, 0, epoch + 1
                improved[k] = True
            else:
                bad[k] += 1
            if bad[k] >= config.patience:
                bad[k] = 0
                if stage[k] < final_stage:
                    # next, finer loss: restart from this stage's best parameters with fresh Adam moments
                    stage[k] += 1
                    best[k] = np.inf
                    restarted[k] = True
                    continue
                if decays[k] >= config.max_decays:
                    active[k] = False
                    stop[k] = "converged"
                    continue
                decays[k] += 1
                lr[k] *= config.lr_decay
                opt.lr[k] = lr[k]
            stepping[k] = True
        with torch.no_grad():  # bookkeeping for all cells at once: snapshots, restarts, then the step
            keep, back = _to_device_rows(pop.bias, improved, restarted) > 0
            for name, p in named.items():
                shape = (-1,) + (1,) * (p.dim() - 1)
                best_state[name].copy_(torch.where(keep.view(shape), p, best_state[name]))
                p.copy_(torch.where(back.view(shape), best_state[name], p))
        opt.restart(restarted, back)
        opt.step(stepping)
        if progress:
            bar.set_postfix(active=int(active.sum()), loss=f"{np.mean([h[-1] for h in history]):.4g}")
        if not active.any():
            break
    bar.close()

    results = []
    for k in range(K):
        m = config.build_model(inits[k])
        _copy_cell(best_state, k, m)
        if stage[k] < final_stage:
            stop[k] = f"max epochs in loss stage {stage[k] + 1} of {final_stage + 1}"
        results.append(
            CellFitState(
                model=m, init=inits[k], history=history[k], lr_history=lr_hist[k],
                epochs=int(epochs_run[k]), best_loss=float(best[k]), stop_reason=stop[k],
                best_epoch=int(best_epoch[k]), stage_history=stage_hist[k], loss_taus_ms=list(taus),
                param_history={name: param_hist[name][k] for name in PARAMETER_NAMES},
            )
        )
    return results


#: the fitted parameters of a cell, as reported (physical units; gain and bias in threshold units)
PARAMETER_NAMES = ("tau_m_ms", "tau_adapt_ms", "adapt_scale", "gain", "bias")


@torch.no_grad()
def _physical_rows(model: ALIF) -> np.ndarray:
    """(5, K) float64 host array of :data:`PARAMETER_NAMES` for every neuron (one device-to-host copy)."""
    rows = torch.stack([model.tau_mem_ms, model.tau_adapt_ms, model.adapt_scale, model.weight[:, 0], model.bias])
    return rows.double().cpu().numpy()


def physical_parameters(model: ALIF) -> dict:
    """The fitted parameters of a one-cell model as floats, keyed by :data:`PARAMETER_NAMES`."""
    return {name: float(v[0]) for name, v in zip(PARAMETER_NAMES, _physical_rows(model))}


@torch.no_grad()
def predict_spikes(model: ALIF, current: np.ndarray, *, device: str | torch.device = "cpu",
                   record: Sequence[str] = ()) -> dict:
    """Simulate a fitted cell on a stimulus.

    Args:
        model: a fitted ``ALIF(1, 1)``.
        current: (..., T) normalised stimulus (e.g. (R, E, T) or (E, T)).
        record: optionally ``("v", "theta")``.

    Returns:
        dict with ``"spikes"`` (..., T) float32 numpy array, plus ``"v"``/``"theta"`` if recorded.
    """
    dev = resolve_device(device)
    home = model.weight.device
    m = model.to(dev)
    cur = np.asarray(current)
    lead = cur.shape[:-1]
    x = torch.as_tensor(cur.reshape(-1, 1, cur.shape[-1]), dtype=m.weight.dtype, device=dev)
    trace = m.simulate(x, record=record)
    out = {"spikes": trace.spikes.reshape(*lead, -1).cpu().numpy().astype(np.float32)}
    for name, val in (("v", trace.v), ("theta", trace.theta)):
        if val is not None:
            out[name] = val.reshape(*lead, -1).cpu().numpy().astype(np.float32)
    model.to(home)
    return out
