"""Fit ALIF neurons to recorded spike trains: many cells at once, each on its own schedule.

K cells are fitted together as K independent neurons of one batched simulation
(``(traces, K, T)`` current into one engine call), so a whole panel costs about
as many kernel launches as one cell. Every cell keeps its own parameters, its own
Adam state (moments, step count, learning rate), its own learning-rate decay on a
loss plateau and its own early stop: a cell that has finished keeps its best
parameters while the others train, and its result does not depend on which other
cells shared the batch (up to float rounding: the extensions with a reset potential round
differently at other batch sizes, and a spike-train fit can amplify that; FITTING.md).
The K cells are the K neurons of one ``ALIF(1, K)`` layer and their optimiser steps, snapshots and restarts are masked tensor operations over all
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

import contextlib
import dataclasses
import math
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from cellfit.device import resolve_device, resolve_dtype
from cellfit.fit.config import FitConfig
from cellfit.fit.init import grid_init, initial_values
from cellfit.fit.loss import LossTargets, padded, repeat_variance
from cellfit.fit.optim import CellwiseAdam, to_device_rows
from cellfit.functional.alif import ALIFStepParameters, simulate
from cellfit.functional.linear import subthreshold_adapted
from cellfit.functional.surrogate import get_surrogate
from cellfit.modules import ALIF

__all__ = ["FitConfig", "TrainingSet", "CellFitState", "fit_population", "predict_spikes", "unique_stimuli",
           "training_tensors",
           "PARAMETER_NAMES", "parameter_names", "physical_parameters"]


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
    """Parameters (:func:`parameter_names`) at every epoch of ``history``."""

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


def _copy_cell(pop_params: dict, k: int, model: ALIF) -> None:
    """Write row k of the population's parameters (name -> (K, ...) tensor) into ``model``."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(pop_params[name][k].reshape(param.shape))


def training_tensors(cells: Sequence[TrainingSet], config: FitConfig, device) -> tuple[torch.Tensor, LossTargets]:
    """The stimuli ``(U, K, T)`` of K cells (distinct traces per cell, zero-padded) and their loss targets.

    Repeats of one stimulus share a trace: the target is the mean of their recorded spike
    trains, weighted by the number of repeats (the van Rossum distance to the mean of filtered
    trains equals, up to a constant, the mean distance to each train).
    """
    dtype = resolve_dtype(config.dtype)
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
    x = torch.as_tensor(padded(stim), dtype=dtype, device=device)  # (U, K, T)
    w = torch.as_tensor(padded([wk[:, None] for wk in weight])[..., 0], dtype=dtype, device=device)  # (U, K)
    repeat_var = None
    if config.final_loss == "explained_variance":
        repeat_var = torch.as_tensor([repeat_variance(c.spikes, config.van_rossum_tau_ms, config.dt_ms) for c in cells],
                                     dtype=dtype, device=device)
    targets = LossTargets(torch.as_tensor(padded(target), dtype=dtype, device=device), w, config.loss_taus_ms,
                          config.dt_ms, repeat_var)
    return x, targets


#: a fit whose batched arrays hold at most this many entries (neurons x distinct stimuli x steps)
#: runs on one CPU thread: its tensor operations are too small to gain from more, and on a
#: shared machine extra threads lose much more in synchronisation than they win (measured on
#: 2 cores, load 3: 9 neurons x 3 x 10,000 steps, 0.9 s per epoch on one thread vs 3.9-5.2 s on
#: two; 81 neurons about equal; 243 neurons 20 vs 27 s)
ONE_THREAD_WORK = 1_000_000


@contextlib.contextmanager
def cpu_threads_for(device: torch.device, work: int) -> Iterator[None]:
    """Run small CPU work on one thread (restored afterwards); anything else unchanged."""
    if device.type != "cpu" or work > ONE_THREAD_WORK or torch.get_num_threads() == 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_population(
    cells: Sequence[TrainingSet],
    config: FitConfig = FitConfig(),
    *,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
    names: Optional[Sequence[str]] = None,
    inits: Optional[Sequence[dict]] = None,
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
        inits: starting values per cell (dicts of ``tau_m_ms``, ``tau_adapt_ms``, ``adapt_scale``,
            ``gain``, ``bias``, ``method``; optionally ``patience``, that cell's own instead of
            ``config.patience``); default: :func:`cellfit.fit.init.initial_values`
            and, with ``config.grid_init``, the grid search (given inits skip both).

    Returns:
        One :class:`CellFitState` per cell, in order, models on the CPU.
    """
    if not cells:
        return []
    dev = resolve_device(device)
    T = cells[0].current.shape[-1]
    for k, c in enumerate(cells):
        if c.current.shape[-1] != T:
            label = names[k] if names else k
            raise ValueError(f"cell {label}: all cells fitted together need the same T, got {c.current.shape[-1]} vs {T}")
    work = sum(c.current.shape[1] for c in cells) * T  # neurons x distinct stimuli (about E each) x steps
    with cpu_threads_for(dev, work):
        return _fit_population(cells, config, dev, seed, progress, inits)


def _fit_population(cells, config, dev, seed, progress, inits) -> list[CellFitState]:
    torch.manual_seed(seed)

    given = inits is not None
    inits = [dict(i) for i in inits] if given else [initial_values(config, c) for c in cells]
    if len(inits) != len(cells):
        raise ValueError(f"{len(inits)} initial values for {len(cells)} cells")
    spike_fn = get_surrogate(config.surrogate)

    x, targets = training_tensors(cells, config, dev)
    taus = config.loss_taus_ms
    final_stage = len(taus) - 1
    if config.grid_init and not given:
        grid_init(inits, x, targets, config)
    pop = config.build_model(inits, device=dev)  # cell k is neuron k: one layer, masked per-cell optimiser
    named = dict(pop.named_parameters())
    opt = CellwiseAdam(list(named.values()), lr=config.lr)

    K = len(cells)
    patience = np.array([int(i.get("patience", config.patience)) for i in inits])  # a start may carry its own
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
    names = parameter_names(pop)
    param_hist = {name: [[] for _ in range(K)] for name in names}
    best_state = {n: p.detach().clone() for n, p in named.items()}  # row k: cell k's best parameters
    stop = ["max epochs"] * K
    epochs_run = np.zeros(K, dtype=int)

    sub_rows = np.zeros(0, dtype=int)  # the active cells of the last epoch, and their inputs and targets
    bar = tqdm(range(config.epochs), desc="fit", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        # only the cells still training are simulated (a batch's cells stop at very different epochs)
        rows = np.flatnonzero(active)
        if len(rows) != len(sub_rows) or (rows != sub_rows).any():
            sub_rows = rows
            idx = torch.as_tensor(rows, device=dev)
            sub_x, sub_targets = (x, targets) if len(rows) == K else (x[:, idx], targets.select(idx))
        params = pop.step_parameters()
        out = simulate(drive(pop, sub_x, None if len(rows) == K else idx), params if len(rows) == K
                       else _rows_of(params, idx), config.engine, spike_fn=spike_fn)
        per_cell = sub_targets.loss(out.spikes, stage[rows])  # (active cells,)
        pop.zero_grad(set_to_none=True)
        per_cell.sum().backward()  # cells are independent: each gets its own gradient
        losses = np.full(K, np.nan)
        losses[rows] = per_cell.detach().cpu().numpy().astype(float)
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
            for i, name in enumerate(names):
                param_hist[name][k].append(float(values[i, k]))
            epochs_run[k] = epoch + 1
            if loss < best[k] * (1 - config.min_improvement):
                best[k], bad[k], best_epoch[k] = loss, 0, epoch + 1
                improved[k] = True
            else:
                bad[k] += 1
            if bad[k] >= patience[k]:
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
            keep, back = to_device_rows(pop.bias, improved, restarted) > 0
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
                param_history={name: param_hist[name][k] for name in names},
            )
        )
    return results


def drive(model: ALIF, x: torch.Tensor, idx: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The input current of a fit's neurons (all, or the neurons ``idx``) from their stimuli ``x`` (U, K, T)
    (one stimulus per neuron): :math:`g x + b`, with ``alif_sub`` :math:`g (x - k L x) + b`."""
    weight, bias = model.weight[:, 0], model.bias
    sub = model.sub_filter
    if idx is not None:
        weight, bias = weight[idx], bias[idx]
        sub = None if sub is None else (sub[0][idx], sub[1][idx])
    if sub is not None:
        x = subthreshold_adapted(x, *sub)
    return x * weight[None, :, None] + bias[None, :, None]


def _rows_of(params: ALIFStepParameters, idx: torch.Tensor) -> ALIFStepParameters:
    """The step parameters of the neurons ``idx`` (per-neuron tensors indexed on their first dimension)."""
    return params._replace(**{name: value[idx] for name, value in params._asdict().items()
                              if isinstance(value, torch.Tensor)})


#: the fitted parameters every model has, as reported (physical units; gain and bias in threshold units)
PARAMETER_NAMES = ("tau_m_ms", "tau_adapt_ms", "adapt_scale", "gain", "bias")


def parameter_names(model: ALIF) -> tuple:
    """:data:`PARAMETER_NAMES` plus the model's extensions: ``v_reset`` (threshold units), per
    spike-triggered current j = 1, 2, ..., ``asc_amp_j`` (threshold units) and ``tau_asc_j_ms``, and
    ``sub_amp`` and ``tau_sub_ms`` (the subthreshold adaptation current)."""
    names = list(PARAMETER_NAMES)
    if getattr(model, "reset", False):
        names.append("v_reset")
    for j in range(getattr(model, "n_asc", 0)):
        names += [f"asc_amp_{j + 1}", f"tau_asc_{j + 1}_ms"]
    if getattr(model, "sub", False):
        names += ["sub_amp", "tau_sub_ms"]
    return tuple(names)


@torch.no_grad()
def _physical_rows(model: ALIF) -> np.ndarray:
    """(P, K) float64 host array of :func:`parameter_names` for every neuron (one device-to-host copy)."""
    rows = [model.tau_mem_ms, model.tau_adapt_ms, model.adapt_scale, model.weight[:, 0], model.bias]
    if getattr(model, "reset", False):
        rows.append(model.v_reset)
    for j in range(getattr(model, "n_asc", 0)):
        rows += [model.asc_amp[:, j], model.tau_asc_ms[:, j]]
    if getattr(model, "sub", False):
        rows += [model.sub_amp, model.tau_sub_ms]
    return torch.stack(rows).double().cpu().numpy()


def physical_parameters(model: ALIF) -> dict:
    """The fitted parameters of a one-cell model as floats, keyed by :func:`parameter_names`."""
    return {name: float(v[0]) for name, v in zip(parameter_names(model), _physical_rows(model))}


@torch.no_grad()
def predict_population(models: Sequence[ALIF], current: np.ndarray) -> np.ndarray:
    """Spikes of several fitted one-cell models of one variant on one stimulus, simulated as one batch.

    Args:
        models: fitted ``ALIF(1, 1)`` models of one variant (same extensions, engine, DT and ARP).
        current: (U, T) normalised stimuli.

    Returns:
        (K, U, T) float32 numpy array: model k's spikes (the same as :func:`predict_spikes` of each:
        the neurons of a batch are simulated independently).
    """
    first = models[0]
    rows = [m.step_parameters() for m in models]
    params = rows[0]._replace(**{name: torch.cat([getattr(r, name) for r in rows]) for name, value
                                 in rows[0]._asdict().items() if isinstance(value, torch.Tensor)})
    weight = torch.cat([m.weight[:, 0] for m in models])
    bias = torch.cat([m.bias for m in models])
    x = torch.as_tensor(np.asarray(current), dtype=first.weight.dtype, device=first.weight.device)
    x = x[:, None, :].expand(-1, len(models), -1)
    if first.sub:
        x = subthreshold_adapted(x, *(torch.cat(part) for part in zip(*(m.sub_filter for m in models))))
    out = simulate(x * weight[None, :, None] + bias[None, :, None], params, first.engine,
                   spike_fn=first.surrogate)
    return out.spikes.transpose(0, 1).cpu().numpy().astype(np.float32)


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
