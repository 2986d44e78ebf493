r"""Fits that generalise: candidates chosen on held-out training data, intervals from resampled refits.

A spike-train loss has many local minima, and which one gradient descent reaches depends
on where it starts; a model that matches the training spikes best need not predict new
stimuli best. So a cell is fitted several times and the fit is chosen on data it was not
trained on:

1. **Candidates** (:func:`fit_candidates`): ``config.restarts`` starting points per cell (by
   default, ``config.diverse_restarts``, the best point of each grid tau_adapt; else the best
   points of the initial grid, :func:`cellfit.fit.init.grid_init`) are trained together,
   as neurons of one batched model per variant (:func:`cellfit.fit.fitter.fit_population`).
2. **Validation** (:func:`validation_scores`): each candidate predicts the Noise 1 seconds
   that follow the training window (``config.validation_s``; the model runs through the
   training window first, so it enters the validation window in the state the stimulus
   put it in) and is scored by ETV against the Noise 1 repeats there. :func:`choose` keeps,
   by default (``config.validation_veto``), the lowest training loss among the starts whose
   validation ETV is not clearly below the best grid point's (under ``model="auto"`` within
   each variant, an extension only by ``config.extension_margin``; with ``config.variant_choice``
   ``"loss_and_validation"`` only where its validation ETV is not lower either, or with ``"validation"``, by the
   higher validation ETV); without a veto, the best
   validation ETV. Without validation data (a window that leaves no Noise 1 time, or
   ``validation_s = 0``) the lowest final training loss decides. Noise 2 is never used.
3. **Intervals** (:func:`bootstrap_refits`, :func:`interval_table`): ``config.bootstrap``
   refits of the kept fit, each on a resample of the training traces (epochs drawn with
   replacement, then repeats within each drawn epoch), from the kept fit's starting point
   with its time constants moved by a random factor of up to ``config.bootstrap_spread``
   (a time constant the data do not pin down then stays where its refit started), with the
   same schedule, trained together as one batched model (beside the fit itself when there is
   nothing to choose; under ``config.diverse_restarts`` beside the restarts, from the best grid
   point). Their spread holds the noise of the data and how far the outcome
   depends on it: the central ``config.interval_level`` range
   of each parameter over the refits is its interval, and a time constant whose interval
   spans more than a factor ``config.undetermined_ratio`` is flagged as not determined by
   the data (many values predict the spikes about equally well). Each interval also contains the
   values of the starts the data cannot tell apart from the kept fit (:func:`equivalent_candidates`:
   not vetoed, training loss within ``config.equivalent_loss`` of the kept one's), and the tau_adapt
   interval reaches (``config.start_gap``: all the way) to the nearest other start on each side, and
   past the outermost start part of the way (``config.bound_gap``) towards its bound
   (:func:`widen_to_starts`): the starts sample tau_adapt coarsely, and between and beyond them nothing was
   tried; an adaptation too weak to time gets tau_adapt's whole range (:func:`widen_if_weak`).
4. **Bias tie-break** (opt-in, ``config.bias_tiebreak``; :func:`bias_tiebreak`): the kept fit's bias moves, among
   the small shifts that leave its spike count on every training stimulus unchanged, to the one that predicts the
   validation seconds best (a bursting fit's bias can move that far unseen by the training window).
5. **A reset for a subthreshold fit** (``config.sub_reset_asc``, the default since round 44; :func:`sub_reset_fits`,
   :func:`with_sub_reset`): a kept ``alif_sub`` fit trains again with a reset and after-spike currents
   (``alif_sub_reset_asc``: rebound bursts) and that fit is kept where its training loss is
   ``config.extension_margin`` lower.
6. **Refit on all of Noise 1** (``config.refit_models``, by default the ``alif_sub`` fits; :func:`refit_whole`): a
   kept fit of those variants trains again from its own parameters on the training window and the validation
   seconds together, once the choice no longer needs them; that refit is the reported fit (with the opt-in
   ``config.refit_guard``, only where it explains those seconds at least as well as the first fit: :func:`keeps_refit`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Optional, Sequence

import numpy as np
import torch

from cellfit.device import resolve_device
from cellfit.fit.config import FitConfig
from cellfit.fit.fitter import (
    PARAMETER_NAMES,
    CellFitState,
    TrainingSet,
    fit_population,
    physical_parameters,
    predict_population,
    training_tensors,
    unique_stimuli,
)
from cellfit.fit.init import grid_init, initial_starts
from cellfit.fit.metrics import etv_components

__all__ = ["ValidationSet", "fit_candidates", "bootstrap_refits", "refit_jobs", "spread_start", "validation_scores",
           "choice", "choose", "equivalent_candidates", "variant_members", "resample_traces", "interval_table",
           "bursting", "onset_bursting", "short_intervals", "left_start", "silent_where_cell_fires",
           "widen_to_starts", "widen_if_weak", "widen_searched", "SEARCHED", "bias_shifted", "bias_tiebreak",
           "unchanged_run", "best_in_run", "by_variant", "fit_by_variant", "asc_rescue_cells", "undetermined"]

#: the parameter that the default's starts are spread along (one start per grid tau_adapt)
SEARCHED = "tau_adapt_ms"


@dataclasses.dataclass(frozen=True)
class ValidationSet:
    """Noise 1 data of one cell that training did not see: ``current`` and ``spikes`` (R, E, T_total).

    The model is simulated over all ``T_total`` bins and scored on bins ``[start, T_total)``
    (the bins before ``start`` are the training window, run through to reach the right state).
    """

    current: np.ndarray
    spikes: np.ndarray
    start: int

    def seconds(self, dt_ms: float) -> float:
        """Length of the scored validation window per epoch (s)."""
        return (self.current.shape[-1] - self.start) * dt_ms / 1000.0


def fit_candidates(sets: Sequence[TrainingSet], config: FitConfig, *, device, seed: int = 0,
                   progress: bool = True, names: Optional[Sequence[str]] = None,
                   keys: Optional[Sequence[int]] = None,
                   validation: Optional[Sequence[Optional[ValidationSet]]] = None,
                   ) -> tuple[list[list[CellFitState]], Optional[list[list[CellFitState]]]]:
    """The candidate fits of every cell: each model variant of ``config.models`` from each of the
    cell's ``config.restarts`` best grid points; a cell with a second, ``alif_sub``, start
    (:func:`cellfit.fit.init.initial_starts`) also ``alif_sub`` from that start's best grid points, and a
    bursting cell the bursting candidates. The cells' candidates of one variant train together
    as one batched model.

    Where there is nothing to choose (one start, one variant), the kept fit's start is known before
    training, so the bootstrap refits (:func:`bootstrap_refits`) train as extra neurons of the same
    batched model: one schedule's overhead instead of two, the same results. Under
    ``config.diverse_restarts`` (one model variant) the refits start from each cell's best grid point
    whichever start is kept, and train beside the restarts too: where the kept fit lies in another
    valley along tau_adapt than the refits, its interval (widened to contain the estimate) spans both
    and flags tau_adapt as undetermined. ``keys`` (e.g. specimen
    ids) seed each cell's refits (:func:`refit_jobs`). With ``config.gain_starts == "stuck"``, a cell whose kept
    candidate (:func:`choose`, on ``validation[k]`` where given) never left its start (:func:`left_start`; under
    ``"stuck_or_silent"`` also one silent where the cell fires, :func:`silent_where_cell_fires`) is
    fitted from its gain starts too (``config.grid_gain_scale``), appended after the other candidates (a cell
    that keeps one refits from it afterwards, :func:`cellfit.fit.api.fit_recordings`). With ``config.asc_rescue``
    (opt-in), a cell kept as plain ALIF that predicts its validation seconds below it (:func:`asc_rescue_cells`) is
    fitted as each of ``config.asc_rescue_models`` from its starts too, appended last.

    Returns:
        ``(candidates, refits)``: per cell, its candidates' :class:`CellFitState` (variants in
        order; best grid point first), and its refits when they were trained here (else None).
    """
    dev = resolve_device(device)
    burst = [bursting(s.spikes, config) for s in sets]
    starts = [initial_starts(config, s, allow_sub=not b or keeps_sub(s.spikes, config)) for s, b in zip(sets, burst)]
    for st, b in zip(starts, burst):  # some cells train all their candidates longer (rounds 29, 31 and 32)
        models = {s.get("model", "alif") for s in st}
        sub = models == {"alif", "alif_sub"} if config.sub_patience_scope == "both_ways" else "alif_sub" in models
        patience = config.burst_patience if b and config.burst_candidates else config.sub_patience if sub else None
        if patience is not None:
            for s in st:
                s["patience"] = patience
    inits = [st[0] for st in starts]
    if config.models == ("alif_sub",):  # forced: the grid ranks the starts with the current they will train with
        inits = [dict(i, **config.variant_start("alif_sub")) for i in inits]  # (the other variants start as ALIF)
    zone = [(k, st[1]) for k, st in enumerate(starts) if len(st) > 1]  # cells fitted as alif_sub too (round 11)
    options = [[i] for i in inits + [z for _, z in zone]]
    # under gain_starts "stuck" the grid's gain factors wait for the cells that need them (the rescue below)
    rescue = (config.gain_starts in ("stuck", "stuck_or_silent") and config.grid_init
              and len(config.grid_gain_scale) > 1)
    before_grid = [dict(i) for i in inits + [z for _, z in zone]]
    if config.grid_init:  # a zone cell's alif_sub start ranks its grid points as one more cell
        x, targets = training_tensors(list(sets) + [sets[k] for k, _ in zone], config, dev)
        options = grid_init(inits + [z for _, z in zone], x, targets, config, top=config.restarts,
                            gain_scale=(1.0,) if rescue else config.grid_gain_scale)
    options, zone_options = options[:len(sets)], options[len(sets):]
    together = config.bootstrap > 0 and len(config.models) == 1 and (
        all(len(o) == 1 for o in options) or config.diverse_restarts)
    out: list[list[CellFitState]] = [[] for _ in sets]
    refits: Optional[list[list[CellFitState]]] = None
    for variant in config.models:
        def start(init):  # a cell started as alif_sub (config.sub_candidates) keeps its variant in place of ALIF
            return {} if variant == "alif" and init.get("model") == "alif_sub" else config.variant_start(variant)
        jobs = [(k, sets[k], dict(init, **start(init))) for k, opts in enumerate(options) for init in opts]
        n_fits = len(jobs)
        if together:  # from each cell's best grid point
            jobs += refit_jobs(sets, [dict(opts[0], **start(opts[0])) for opts in options], config, seed, keys)
        states = fit_by_variant(jobs, config, dev, seed, progress, names)
        for (k, _, _), st in zip(jobs[:n_fits], states[:n_fits]):
            out[k].append(st)
        if together:
            refits = [[] for _ in sets]
            for (k, _, _), st in zip(jobs[n_fits:], states[n_fits:]):
                if not all(c.failed for c in out[k]):  # a cell without a fit gets no refits (as in bootstrap_refits)
                    refits[k].append(st)
    if zone:  # the alif_sub candidates of the zone cells, one batched model (choose: kept by extension_margin)
        jobs = [(k, sets[k], dict(init)) for (k, _), opts in zip(zone, zone_options) for init in opts]
        for (k, _, _), st in zip(jobs, fit_by_variant(jobs, config, dev, seed, progress, names)):
            out[k].append(st)
    if config.burst_candidates:  # bursting cells: the burst model from each burst start (and each reset start)
        bursts = [k for k in range(len(sets)) if burst[k]]
        onsets = [k for k in range(len(sets)) if k not in bursts and onset_bursting(sets[k].spikes, config)]
        jobs = [(k, sets[k], dict(_without_sub(opt), **config.burst_start(b),
                                  method=f"{opt.get('method', '')} + bursting start {b + 1}"))
                for k in bursts for opt in options[k][:config.burst_restarts] for b in range(len(config.burst_starts))]
        # (an onset-bursting cell: from each of its config.onset_restarts best starts, in its own reset range; a cell
        # started as alif_sub, onset-bursting or under burst_sub_below, starts its bursting and reset fits from those
        # grid points without the current)
        jobs += [(k, sets[k], dict(_without_sub(opt), **(config.onset_reset_start(v) if k in onsets else
                                                         config.burst_reset_start(v)),
                                   method=f"{opt.get('method', '')} + reset start {v:g}"))
                 for k in sorted(bursts + onsets)
                 for opt in options[k][:config.onset_restarts if k in onsets else config.burst_reset_restarts]
                 for v in config.burst_reset_starts]
        for (k, _, _), st in zip(jobs, fit_by_variant(jobs, config, dev, seed, progress, names)):  # a batch per variant
            out[k].append(st)
    if rescue:  # cells whose kept candidate (as the choice would keep it) never left its start: the gain starts too
        def kept(k: int) -> CellFitState:
            return out[k][choice(out[k], sets[k], validation[k] if validation is not None else None, config)[0]]

        cells = []
        silent = config.gain_starts == "stuck_or_silent"
        for k in range(len(sets)):  # (the choice, with its validation scores, only where some candidate stayed or
            # under "stuck_or_silent")
            if silent or not all(c.failed or left_start(c) for c in out[k]):
                st = kept(k)
                if not st.failed and (not left_start(st) or silent and silent_where_cell_fires(st, sets[k])):
                    cells.append(k)
        rows = [(k, before_grid[k]) for k in cells] + [(k, before_grid[len(sets) + j]) for j, (k, _) in enumerate(zone)
                                                       if k in cells]
        if rows:  # their grid again, with the gain factors: each factor's best point is one more start
            x, targets = training_tensors([sets[k] for k, _ in rows], config, dev)
            ranked = grid_init([dict(start) for _, start in rows], x, targets, config, top=config.restarts,
                               gain_scale=config.grid_gain_scale)
            jobs = [(k, sets[k], opt) for (k, _), opts in zip(rows, ranked) for opt in opts if "gain_scale" in opt]
            for (k, _, _), st in zip(jobs, fit_by_variant(jobs, config, dev, seed, progress, names)):
                out[k].append(st)
    if config.asc_rescue_candidates and validation is not None:  # cells ALIF predicts poorly: after-spike fits too
        cells = asc_rescue_cells(out, sets, validation, config)
        jobs = [(k, sets[k], dict(_without_sub(opt), **config.variant_start(variant),
                                  rescue=True, method=f"{opt.get('method', '')} + after-spike rescue"))
                for variant in config.asc_rescue_models for k in cells for opt in options[k]]
        for (k, _, _), st in zip(jobs, fit_by_variant(jobs, config, dev, seed, progress, names)):
            out[k].append(st)
    return out, refits


def asc_rescue_cells(candidates: Sequence[Sequence[CellFitState]], sets: Sequence[TrainingSet],
                     validation: Sequence[Optional[ValidationSet]], config: FitConfig) -> list[int]:
    """The cells (indices) that ``config.asc_rescue`` fits again with after-spike currents: no candidate of an
    after-spike or reset variant yet (not a bursting or onset-bursting cell), and the kept candidate (:func:`choice`)
    a plain ALIF fit that did not fail and whose validation ETV is below ``config.asc_rescue`` (a cell without
    validation seconds or a score there is left as it is)."""
    cells = []
    for k, (cands, data, val) in enumerate(zip(candidates, sets, validation)):
        if val is None or any(c.init.get("model", "alif") != "alif" and c.init.get("model") != "alif_sub"
                              for c in cands):
            continue
        index, _, scores, _ = choice(cands, data, val, config)
        kept = cands[index]
        if (not kept.failed and kept.init.get("model", "alif") == "alif" and scores is not None
                and math.isfinite(scores[index]) and scores[index] < config.asc_rescue):
            cells.append(k)
    return cells


def silent_where_cell_fires(state: CellFitState, data: TrainingSet, min_spikes: float = 1.0) -> bool:
    """Whether a fit fires no spike on some training stimulus to which the cell fires at least ``min_spikes`` times
    per repeat on average (a small-gain fit riding under its threshold on its bias, silent in the weaker epochs)."""
    stimuli, index = unique_stimuli(np.asarray(data.current, dtype=np.float32))
    predicted = predict_population([state.model], stimuli)[0].sum(-1)  # (U,) spikes per distinct stimulus
    recorded = np.asarray(data.spikes).sum(-1)  # (R, E)
    return any(recorded[index == u].mean() >= min_spikes and predicted[u] == 0 for u in range(len(stimuli)))


def _without_sub(init: dict) -> dict:
    """``init`` without the subthreshold current's starting values (a start for another variant)."""
    return {key: value for key, value in init.items() if key not in ("sub_amp", "tau_sub_ms")}


def left_start(state: CellFitState) -> bool:
    """Whether a fit's kept parameters differ from those of its first epoch (its start): False where no epoch of
    any loss stage improved on the stage's first (each stage restarts from the previous stage's best)."""
    if state.best_epoch < 1:
        return False
    return any(h[state.best_epoch - 1] != h[0] for h in state.param_history.values())




def fit_by_variant(jobs, config: FitConfig, dev, seed: int, progress: bool, names) -> list[CellFitState]:
    """The fits of ``jobs`` (``(cell index, TrainingSet, start dict)``: a start as :func:`fit_candidates` builds
    them, or a candidate's ``init``) in their order, one batched model per model variant (and per reset range, where a
    start carries its own: :meth:`FitConfig.burst_reset_start`). ``dev``: a resolved device
    (:func:`cellfit.device.resolve_device`); ``names``: a name per cell index for the progress bars, or None."""
    states: list = [None] * len(jobs)
    for variant in dict.fromkeys(_variant_key(init) for _, _, init in jobs):
        group = [j for j, (_, _, init) in enumerate(jobs) if _variant_key(init) == variant]
        fitted = fit_population([jobs[j][1] for j in group], config, device=dev, seed=seed, progress=progress,
                                names=[(names[jobs[j][0]] if names else str(jobs[j][0])) for j in group],
                                inits=[jobs[j][2] for j in group])
        for j, st in zip(group, fitted):
            states[j] = st
    return states


def short_intervals(spikes: np.ndarray, dt_ms: float, isi_ms: float) -> tuple[int, int]:
    """``(short, total)``: how many inter-spike intervals of ``spikes`` (``(..., T)`` traces, 0/1 per bin of
    ``dt_ms``; intervals within each trace, never across traces) are shorter than ``isi_ms``, and how many there are."""
    s = np.asarray(spikes)
    short = total = 0
    for trace in s.reshape(-1, s.shape[-1]):
        isi = np.diff(np.flatnonzero(trace)) * dt_ms
        short += int(np.count_nonzero(isi < isi_ms))
        total += isi.size
    return short, total


def bursting(spikes: np.ndarray, config: FitConfig) -> bool:
    """Whether a cell's training spikes ``(repeats, epochs, T)`` (0/1 per bin of ``config.dt_ms``) burst: at least
    ``config.burst_fraction`` of the inter-spike intervals within each trace shorter than ``config.burst_isi_ms``
    (False without ``burst_fraction`` or with fewer than two intervals; :func:`short_intervals`)."""
    if config.burst_fraction is None:
        return False
    short, total = short_intervals(spikes, config.dt_ms, config.burst_isi_ms)
    return total >= 2 and short >= config.burst_fraction * total


def keeps_sub(spikes: np.ndarray, config: FitConfig) -> bool:
    """Whether a bursting cell's training spikes burst less than ``config.burst_sub_below`` (the fraction of
    intervals shorter than ``config.burst_isi_ms``), so that it keeps its ``alif_sub`` starts (False without it)."""
    return _bursts_less_than(spikes, config.burst_sub_below, config)


def needs_agreement(spikes: np.ndarray, config: FitConfig) -> bool:
    """Whether a bursting cell's training spikes burst less than ``config.burst_agree_below`` (the fraction of
    intervals shorter than ``config.burst_isi_ms``), so that another variant replaces ALIF's pick only where the
    validation seconds agree with the training window (False without it)."""
    return _bursts_less_than(spikes, config.burst_agree_below, config)


def _bursts_less_than(spikes: np.ndarray, fraction: Optional[float], config: FitConfig) -> bool:
    """Whether fewer than ``fraction`` of the intervals of ``spikes`` are shorter than ``config.burst_isi_ms`` (False
    for ``fraction`` None or under two intervals)."""
    if fraction is None:
        return False
    short, total = short_intervals(spikes, config.dt_ms, config.burst_isi_ms)
    return total >= 2 and short < fraction * total


def onset_bursting(spikes: np.ndarray, config: FitConfig) -> bool:
    """Whether a cell's training traces ``(repeats, epochs, T)`` start with a burst: the first inter-spike interval
    shorter than ``config.burst_isi_ms`` in at least ``config.onset_burst_fraction`` of the traces that hold two
    spikes (False without ``onset_burst_fraction`` or without such a trace). A low-threshold spiking cell bursts
    from rest at each epoch's onset and fires single spikes after; :func:`bursting` counts every interval."""
    if config.onset_burst_fraction is None:
        return False
    s = np.asarray(spikes)
    first = [np.diff(np.flatnonzero(trace)[:2])[0] * config.dt_ms for trace in s.reshape(-1, s.shape[-1])
             if np.count_nonzero(trace) >= 2]
    return bool(first) and sum(isi < config.burst_isi_ms for isi in first) >= config.onset_burst_fraction * len(first)


def refit_jobs(sets: Sequence[TrainingSet], starts: Sequence[Optional[dict]], config: FitConfig,
               seed: int, keys: Optional[Sequence[int]] = None) -> list[tuple[int, TrainingSet, dict]]:
    """``(cell, resampled traces, start)`` of the ``config.bootstrap`` refits of every cell whose kept
    start ``starts[k]`` is given (None: no refits).

    Cell k's draws come from its own generator, seeded by ``(seed, keys[k])`` (``keys``: e.g. the
    specimen ids; default the positions), so a cell's refits do not depend on the other cells of
    the batch.
    """
    jobs = []
    for k, start in enumerate(starts):
        if start is None:
            continue
        key = int(keys[k]) if keys is not None else k
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7, key]))
        jobs += [(k, resample_traces(sets[k], rng), spread_start(start, config, rng))
                 for _ in range(config.bootstrap)]
    return jobs


def bootstrap_refits(sets: Sequence[TrainingSet], chosen: Sequence[CellFitState], config: FitConfig, *, device,
                     seed: int = 0, progress: bool = True,
                     keys: Optional[Sequence[int]] = None) -> list[list[CellFitState]]:
    """``config.bootstrap`` refits per cell on resamples of its training traces, as one batched model.

    Each refit repeats the kept fit's whole schedule on a resample (:func:`resample_traces`), from
    the kept fit's starting point with its time constants moved by up to a factor
    ``config.bootstrap_spread`` (:func:`spread_start`), so the spread of the refits holds both the
    noise of the data and how far the data pin each parameter down. Cells whose fit failed get no refits;
    the refits of cells kept with different model variants train as one batched model per variant.
    """
    jobs = refit_jobs(sets, [None if st.failed else st.init for st in chosen], config, seed, keys)
    out: list[list[CellFitState]] = [[] for _ in sets]
    for (k, _, _), st in zip(jobs, fit_by_variant(jobs, config, device, seed, progress, None)):
        out[k].append(st)
    return out


def start_from_fit(state: CellFitState) -> dict:
    """A start dict (as :func:`fit_candidates` builds them) at a fitted candidate's parameters: its own ``init``
    (model variant, reset range, how it started, with `` + refit`` added) with every fitted value in place of the
    starting one."""
    p = physical_parameters(state.model)
    init = dict(state.init, method=str(state.init.get("method", "")) + " + refit")
    init.update({k: p[k] for k in PARAMETER_NAMES})
    if "v_reset" in p:
        init["v_reset"] = p["v_reset"]
    n_asc = sum(k.startswith("asc_amp_") for k in p)
    if n_asc:
        init["asc_amp"] = tuple(p[f"asc_amp_{j + 1}"] for j in range(n_asc))
        init["tau_asc_ms"] = tuple(p[f"tau_asc_{j + 1}_ms"] for j in range(n_asc))
    if "sub_amp" in p:
        init.update(sub_amp=p["sub_amp"], tau_sub_ms=p["tau_sub_ms"])
    return init


def refit_whole(chosen: Sequence[CellFitState], wholes: Sequence[Optional[TrainingSet]], config: FitConfig, *,
                device, seed: int = 0, progress: bool = True,
                names: Optional[Sequence[str]] = None) -> list[Optional[CellFitState]]:
    """``config.refit_models``: each kept fit of those variants (``chosen[k]``, not failed) trained again from its
    own parameters (:func:`start_from_fit`), with the same schedule, on ``wholes[k]`` (the training window and the
    validation seconds together; None: the cell has none, no refit). One entry per cell: the refit's state, or None
    where the cell is not refitted (a refit that failed is returned too; the caller keeps the first fit)."""
    jobs = [(k, whole, start_from_fit(st)) for k, (st, whole) in enumerate(zip(chosen, wholes))
            if whole is not None and refits_whole(st, config)]
    out: list[Optional[CellFitState]] = [None] * len(chosen)
    for (k, _, _), st in zip(jobs, fit_by_variant(jobs, config, device, seed, progress, names)):
        out[k] = st
    return out


def refits_whole(state: CellFitState, config: FitConfig) -> bool:
    """Whether :func:`refit_whole` trains ``state`` (a kept fit) again: it did not fail and its variant is one of
    ``config.refit_models``."""
    return not state.failed and state.init.get("model", "alif") in config.refit_models


def keeps_refit(first: CellFitState, refit: CellFitState, whole: TrainingSet, config: FitConfig
                ) -> tuple[bool, float, float]:
    """``config.refit_guard``: ``(keep, first's ETV, refit's ETV)`` over ``whole`` (the refit's training data, all of
    Noise 1), each fit simulated from rest on every trace. The refit is kept unless the first fit has a score and the
    refit's is lower (or has none: no reliable spikes)."""
    first_etv, refit_etv = validation_scores([first, refit], ValidationSet(whole.current, whole.spikes, 0),
                                             config.dt_ms)
    return refit_explains_as_well(first_etv, refit_etv), first_etv, refit_etv


def refit_explains_as_well(first_etv: float, refit_etv: float) -> bool:
    """:func:`keeps_refit`'s rule on the two ETVs over all of Noise 1: the refit's at least the first fit's (NaN: no
    score; a first fit without one keeps the refit, a refit without one where the first has one is dropped)."""
    return not math.isfinite(first_etv) or (math.isfinite(refit_etv) and refit_etv >= first_etv)


def sub_reset_start(state: CellFitState, config: FitConfig) -> dict:
    """The ``alif_sub_reset_asc`` start from a kept ``alif_sub`` fit (``config.sub_reset_asc``): the fit's values
    (:func:`start_from_fit`, its subthreshold current included) with a bursting cell's first reset start
    (:meth:`FitConfig.burst_reset_start`: reset at ``burst_reset_starts[0]``, after-spike currents at 0)."""
    start = dict(start_from_fit(state), **config.burst_reset_start(config.burst_reset_starts[0]))
    start.update(model="alif_sub_reset_asc",
                 method=str(state.init.get("method", "")) + " + reset and after-spike currents")
    return start


def burst_sub_start(state: CellFitState, config: FitConfig) -> dict:
    """The ``alif_sub_reset_asc`` start from a kept ``alif_reset_asc`` fit (``config.burst_sub_reset``): the fit's
    values (:func:`start_from_fit`: reset, its range and after-spike currents) with the subthreshold current at its
    default start (``config.sub_amp_init``, ``config.tau_sub_init_ms``)."""
    start = dict(start_from_fit(state), sub_amp=config.sub_amp_init, tau_sub_ms=config.tau_sub_init_ms)
    start.update(model="alif_sub_reset_asc", method=str(state.init.get("method", "")) + " + subthreshold current")
    return start


def sub_reset_fits(chosen: Sequence[CellFitState], sets: Sequence[TrainingSet], config: FitConfig, *, device,
                   seed: int = 0, progress: bool = True,
                   names: Optional[Sequence[str]] = None) -> list[Optional[CellFitState]]:
    """``config.sub_reset_asc``: every kept ``alif_sub`` fit (``chosen[k]``, not failed) trained again as
    ``alif_sub_reset_asc`` from :func:`sub_reset_start` on its training window, and with ``config.burst_sub_reset``
    every kept ``alif_reset_asc`` fit from :func:`burst_sub_start`, one batched model; None for the other cells."""
    def start(st):
        model = st.init.get("model", "alif")
        if model == "alif_sub":
            return sub_reset_start(st, config)
        return burst_sub_start(st, config) if config.burst_sub_reset and model == "alif_reset_asc" else None

    jobs = [(k, data, s) for k, (st, data) in enumerate(zip(chosen, sets))
            if not st.failed and (s := start(st)) is not None]
    out: list[Optional[CellFitState]] = [None] * len(chosen)
    for (k, _, _), st in zip(jobs, fit_by_variant(jobs, config, device, seed, progress, names)):
        out[k] = st
    return out


def with_sub_reset(candidates: Sequence[CellFitState], pick: tuple, extended: CellFitState, data: TrainingSet,
                   validation: Optional[ValidationSet], config: FitConfig) -> tuple[list[CellFitState], tuple]:
    """One cell's candidates and pick (:func:`choice`'s ``(index, basis, scores, train)``) with its
    ``alif_sub_reset_asc`` fit (:func:`sub_reset_fits`) appended, scored as the others were, and kept where its
    training loss is ``config.extension_margin`` below the kept ``alif_sub`` fit's (the rule by which an extension
    replaces ALIF)."""
    index, basis, scores, train = pick
    out = [*candidates, extended]
    if scores is not None:
        scores = [*scores, validation_scores([extended], validation, config.dt_ms)[0]]
    if train is not None:
        train = [*train, validation_scores([extended], ValidationSet(data.current, data.spikes, 0), config.dt_ms)[0]]
    margin = config.extension_margin
    if not extended.failed and extended.best_loss <= (1.0 - margin) * candidates[index].best_loss:
        index, basis = len(out) - 1, f"{basis}; alif_sub_reset_asc from the kept fit, loss {margin:g} lower"
    return out, (index, basis, scores, train)


def spread_start(init: dict, config: FitConfig, rng: np.random.Generator) -> dict:
    """``init`` with ``tau_m_ms`` multiplied by ``config.bootstrap_spread ** u`` and ``tau_adapt_ms`` by
    ``config.bootstrap_spread_adapt ** u'`` (default the same spread), u and u' uniform in [-1, 1]."""
    spreads = dict(tau_m_ms=config.bootstrap_spread,
                   tau_adapt_ms=config.bootstrap_spread_adapt or config.bootstrap_spread)
    out = dict(init, resampled=True)
    for name, spread in spreads.items():
        out[name] = float(init[name]) * float(spread) ** float(rng.uniform(-1.0, 1.0))
    return out


def choice(candidates: Sequence[CellFitState], data: TrainingSet, validation: Optional[ValidationSet],
           config: FitConfig) -> tuple[int, str, Optional[list[float]], Optional[list[float]]]:
    """The kept candidate of one cell as :func:`choose` keeps it under ``config``: ``(index, basis, validation
    scores, training-window scores)`` (the scores None where not computed). The training window's ETV is scored
    for a bursting cell under ``config.burst_choice == "train_etv"``, for a cell with gain-start fits under
    ``config.gain_choice == "train_etv"`` (:func:`gain_choice`) and for every cell under ``config.train_etv_switch``
    or ``config.equivalent_train_etv``."""
    scores = validation_scores(candidates, validation, config.dt_ms) if validation is not None else None
    burst = config.burst_choice == "train_etv" and config.burst_candidates and (
        bursting(data.spikes, config) or onset_bursting(data.spikes, config))
    agree = burst and needs_agreement(data.spikes, config)
    by_etv = config.gain_choice == "train_etv" and any("gain_scale" in c.init for c in candidates)
    train = None
    if burst or by_etv or config.train_etv_switch is not None or config.equivalent_train_etv is not None:
        train = validation_scores(candidates, ValidationSet(data.current, data.spikes, 0), config.dt_ms)
    if by_etv:
        index, basis = gain_choice(candidates, scores, train, config, burst, agree)
    else:
        index, basis = choose(candidates, scores, config.validation_veto, config.extension_margin,
                              train_scores=train if burst else None, penalty=config.validation_penalty,
                              variant_choice=config.variant_choice, rescue_validation=config.asc_rescue_validation,
                              train_margin=config.burst_variant_margin, with_validation=agree)
    if config.train_etv_switch is not None:
        index, basis = train_etv_switch(candidates, scores, train, index, basis, config, agree)
    return index, basis, scores, train


def train_etv_switch(candidates: Sequence[CellFitState], scores: Optional[Sequence[float]], train: Sequence[float],
                     index: int, basis: str, config: FitConfig, agree: bool = False) -> tuple[int, str]:
    """``config.train_etv_switch``: the candidate of the kept one's (``index``) variant (``config.train_etv_scope ==
    "all"``: of any variant), not failed and not vetoed by the validation seconds (``scores``,
    ``config.validation_veto``, each variant against its own first candidate; every one where they do not judge the
    variant), with the highest training-window ETV (``train``) replaces it where that ETV is at least the margin
    higher. With ``agree`` (:func:`needs_agreement`) a start of another variant must also have a higher validation ETV
    than the kept one, as in :func:`choose`."""
    def etv(i):
        return train[i] if math.isfinite(train[i]) else -math.inf

    groups = [_variant_of(candidates, index)] if config.train_etv_scope == "variant" else by_variant(candidates)
    pool = [i for g in groups for i in _unvetoed(g, candidates, scores, config.validation_veto)]
    if agree:
        own = _variant_key(candidates[index].init)
        pool = [i for i in pool if _variant_key(candidates[i].init) == own
                or _validation(scores, i) > _validation(scores, index)]
    best = max(pool, key=etv, default=index)
    if best != index and math.isfinite(etv(best)) and etv(best) >= etv(index) + config.train_etv_switch:
        same = _variant_key(candidates[best].init) == _variant_key(candidates[index].init)
        own = " in its own reset range" if candidates[best].init.get("v_reset_bounds") is not None else ""
        where = "its variant" if same else "variant " + candidates[best].init.get("model", "alif") + own
        return best, basis + f"; another start of {where}, training-window ETV {config.train_etv_switch:g} higher"
    return index, basis


def gain_choice(candidates: Sequence[CellFitState], scores: Optional[Sequence[float]], train: Sequence[float],
                config: FitConfig, burst: bool, agree: bool = False) -> tuple[int, str]:
    """``config.gain_choice == "train_etv"``: :func:`choose` among the candidates that are not gain-start fits
    (``"gain_scale"`` in their start; a bursting cell's variants by training-window ETV where ``burst``, and by
    validation ETV too where ``agree``, :func:`needs_agreement`), then the
    gain-start fit with the highest training-window ETV (``train``) replaces that pick where its ETV is higher."""
    own = [i for i, c in enumerate(candidates) if "gain_scale" not in c.init]
    pick, basis = choose([candidates[i] for i in own], None if scores is None else [scores[i] for i in own],
                         config.validation_veto, config.extension_margin,
                         train_scores=[train[i] for i in own] if burst else None, penalty=config.validation_penalty,
                         variant_choice=config.variant_choice, train_margin=config.burst_variant_margin,
                         with_validation=agree)
    base = own[pick]

    def etv(i):
        return train[i] if math.isfinite(train[i]) else -math.inf

    better = [i for i, c in enumerate(candidates) if "gain_scale" in c.init and not c.failed and etv(i) > etv(base)]
    if not better:
        return base, basis + "; no gain start with a higher training-window ETV"
    return max(better, key=etv), basis + "; a gain start with a higher training-window ETV"


def validation_scores(candidates: Sequence[CellFitState], validation: ValidationSet, dt_ms: float) -> list[float]:
    """Validation ETV of each candidate of one cell (NaN where it cannot be scored)."""
    stimuli, index = unique_stimuli(np.asarray(validation.current, dtype=np.float32))
    rec = np.asarray(validation.spikes)[..., validation.start:]
    scores = [float("nan")] * len(candidates)
    for group in by_variant(candidates, alive_only=True):  # one batch per variant
        spikes = predict_population([candidates[i].model for i in group], stimuli)[..., validation.start:]
        for i, pred in zip(group, spikes):  # pred: (U, T_val)
            try:
                scores[i] = etv_components(pred[index].mean(axis=0), rec, dt_ms).etv
            except ValueError:  # validation repeats without reliable spikes
                pass
    return scores


def bias_shifted(model, shift: float):
    """A copy of a fitted one-cell model (any variant) with its bias shifted by ``shift`` (normalised current)."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        out.bias.add_(shift)
    return out


def bias_tiebreak(model, validation: Optional[ValidationSet], config: FitConfig) -> tuple[object, Optional[dict]]:
    """The kept fit with its bias moved where the training window cannot tell and the validation seconds prefer
    (``config.bias_tiebreak``; FITTING.md, round 26 and the probes after round 25).

    The shifts ``k * config.bias_tiebreak_step`` up to ``config.bias_tiebreak`` each way are simulated as one batch
    over ``validation.current`` (training window, then validation seconds). The shifts that leave the model's spike
    count on every distinct training stimulus (the first ``validation.start`` bins) equal to the fitted model's,
    contiguous around zero, are the candidates; the one with the highest validation ETV is kept (unscored shifts
    rank last, ties go to the nearest to zero, then to the lower).

    Returns:
        ``(model, record)``: the shifted copy (the model itself where the shift is zero) and a JSON-able record
        (``shift``, the unchanged ``range`` and the validation ETV ``at_zero`` and ``kept``); ``(model, None)``
        where the tie-break is off or the cell has no validation seconds.
    """
    if config.bias_tiebreak is None or validation is None or validation.start >= validation.current.shape[-1]:
        return model, None
    n = int(round(config.bias_tiebreak / config.bias_tiebreak_step))
    shifts = [round(k * config.bias_tiebreak_step, 10) for k in range(-n, n + 1)]
    models = [bias_shifted(model, d) if d else model for d in shifts]
    stimuli, index = unique_stimuli(np.asarray(validation.current, dtype=np.float32))
    spikes = predict_population(models, stimuli)  # (K, U, T)
    counts = spikes[..., :validation.start].sum(-1)  # whole numbers: exact in float32
    lo, hi = unchanged_run([bool(np.array_equal(c, counts[n])) for c in counts], n)
    recorded = np.asarray(validation.spikes)[..., validation.start:]
    scores: list = [None] * len(shifts)
    for i in range(lo, hi + 1):
        try:
            scores[i] = etv_components(spikes[i, :, validation.start:][index].mean(axis=0), recorded, config.dt_ms).etv
        except ValueError:  # validation repeats without reliable spikes
            pass
    best = best_in_run(scores, lo, hi, n)
    def score(i):
        return scores[i] if scores[i] is not None and math.isfinite(scores[i]) else None

    record = dict(shift=float(shifts[best]), range=[float(shifts[lo]), float(shifts[hi])], at_zero=score(n),
                  kept=score(best), step=config.bias_tiebreak_step)
    return models[best], record


def unchanged_run(same: Sequence[bool], zero: int) -> tuple[int, int]:
    """``(lo, hi)``: the contiguous run of indices around ``zero`` where ``same`` holds (``zero`` always in it)."""
    lo = hi = zero
    while lo > 0 and same[lo - 1]:
        lo -= 1
    while hi < len(same) - 1 and same[hi + 1]:
        hi += 1
    return lo, hi


def best_in_run(scores: Sequence[Optional[float]], lo: int, hi: int, zero: int) -> int:
    """The index in ``[lo, hi]`` with the highest score (None or NaN: last), ties to the nearest ``zero``, then the
    lower index: :func:`bias_tiebreak`'s pick."""
    def key(i):
        v = scores[i]
        return (v if v is not None and math.isfinite(v) else -math.inf, -abs(i - zero))

    return max(range(lo, hi + 1), key=key)


def by_variant(candidates: Sequence[CellFitState], alive_only: bool = False) -> list[list[int]]:
    """Indices of the candidates of each model variant, variants and candidates in their order
    (``alive_only``: without the failed ones, and without variants left empty). A reset fit in a range of its own
    (a reset start above threshold, :meth:`FitConfig.burst_reset_start`) is a variant of its own: its pick competes
    with the others' instead of with the fits of the usual range."""
    groups: dict = {}
    for i, st in enumerate(candidates):
        if not (alive_only and st.failed):
            groups.setdefault(_variant_key(st.init), []).append(i)
    return list(groups.values())


def _variant_key(init: dict) -> tuple:
    """What makes a fit's model variant, for batching and for the choice: the model name and, for a reset fit in
    a range of its own (:meth:`FitConfig.burst_reset_start`), that range (None for the usual one)."""
    own = init.get("v_reset_bounds")
    return init.get("model", "alif"), None if own is None else tuple(float(b) for b in own)


def choose(candidates: Sequence[CellFitState], scores: Optional[Sequence[float]],
           veto: Optional[float] = None, margin: Optional[float] = None,
           train_scores: Optional[Sequence[float]] = None, penalty: Optional[float] = None,
           variant_choice: str = "loss", rescue_validation: bool = False,
           train_margin: float = 0.0, with_validation: bool = False) -> tuple[int, str]:
    """Index of the candidate to keep and the basis of the choice.

    ``veto`` None: the highest validation ETV. ``veto`` a number (``FitConfig.validation_veto``):
    within each model variant, the lowest final training loss among the candidates whose validation
    ETV is at least the variant's first candidate's minus ``veto`` (the first is always among them;
    without a score for the first, the variant's lowest training loss). With several variants (the
    first is the base, e.g. ALIF) and ``margin`` (``FitConfig.extension_margin``), another variant's
    pick replaces the base's only where its training loss is lower by at least that fraction (the
    lowest such one); with ``margin`` None, the variants' picks are compared on validation ETV. With
    ``train_scores`` (each candidate's ETV on its own training window; ``FitConfig.burst_choice``) and ``margin``,
    another variant's pick replaces the base's where its training-window ETV is higher by more than ``train_margin``
    (``FitConfig.burst_variant_margin``; the highest such one), and with ``with_validation`` (``FitConfig.burst_agree_below``)
    only where its validation ETV is higher than the base's too;
    without them, ``variant_choice`` (``FitConfig.variant_choice``) compares the picks: ``"loss"`` by the margin
    alone, ``"loss_and_validation"`` by the margin and only where the other pick's validation ETV is at least
    the base's too, ``"validation"`` by validation ETV alone (the highest such one); unscored picks rank last. With
    ``rescue_validation`` (``FitConfig.asc_rescue_validation``), the pick of an after-spike rescue variant (its
    candidates' starts carry ``"rescue"``, ``FitConfig.asc_rescue``) under ``"loss"`` must also reach the base's
    validation ETV.
    With ``veto`` and ``penalty`` (``FitConfig.validation_penalty``), a variant whose veto applies (its first
    candidate scored, not a bursting start) ranks the candidates the veto keeps by training loss times
    ``1 + penalty * (their best validation ETV - own)`` instead of the loss alone (:func:`_penalised`).
    Where no candidate has a validation score (no validation data, or no reliable spikes there),
    the lowest final training loss among those that did not fail.
    """
    ok = [i for i, st in enumerate(candidates) if not st.failed]
    if not ok:
        return 0, "none (every candidate failed)"
    def lowest(pool):
        return min(pool, key=lambda i: candidates[i].best_loss)

    def finite(i):
        return scores is not None and math.isfinite(scores[i])

    if scores is None or not any(finite(i) for i in ok):
        return lowest(ok), "training loss"
    if veto is None:
        return max((i for i in ok if finite(i)), key=lambda i: scores[i]), "validation ETV"
    groups = by_variant(candidates)

    def pick(members):
        pool = _not_vetoed(members, candidates, scores, veto)
        if not pool:
            return None
        if penalty is None or not _veto_applies(members, candidates, scores):
            return lowest(pool)
        return _penalised(pool, candidates, scores, penalty)

    picks = [i for i in (pick(members) for members in groups) if i is not None]
    basis = f"training loss, validation veto {veto:g}" + ("" if penalty is None else f", validation penalty {penalty:g}")
    if len(groups) == 1:
        return picks[0], (basis if finite(groups[0][0]) else "training loss")
    if margin is None:
        return max(picks, key=lambda i: scores[i] if finite(i) else -math.inf), basis + " per variant, then validation ETV"
    base = picks[0]
    if train_scores is not None:
        def etv(i):
            return train_scores[i] if math.isfinite(train_scores[i]) else -math.inf

        better = [i for i in picks[1:] if etv(i) > etv(base) + train_margin]
        by = f" by more than {train_margin:g}" if train_margin else ""
        if with_validation:
            better = [i for i in better if _validation(scores, i) > _validation(scores, base)]
            by += " and its validation ETV too"
        return ((max(better, key=etv) if better else base),
                basis + f" per variant; another variant if its training-window ETV is higher{by}")
    def val(i):
        return _validation(scores, i)

    if variant_choice == "validation":
        better = [i for i in picks[1:] if val(i) > val(base)]
        return ((max(better, key=val) if better else base),
                basis + " per variant; another variant if its validation ETV is higher")
    better = [i for i in picks[1:] if candidates[i].best_loss < candidates[base].best_loss * (1.0 - margin)]
    basis += f" per variant; another variant if its loss is {margin:g} lower"
    if variant_choice == "loss_and_validation":
        better = [i for i in better if val(i) >= val(base)]
        basis += " and its validation ETV not lower"
    elif rescue_validation and any(candidates[i].init.get("rescue") for i in picks[1:]):
        better = [i for i in better if not candidates[i].init.get("rescue") or val(i) >= val(base)]
        basis += " (an after-spike rescue fit: and its validation ETV not lower)"
    return (lowest(better) if better else base), basis


def _validation(scores: Optional[Sequence[float]], i: int) -> float:
    """Candidate ``i``'s validation ETV, ``-inf`` where it has none (it then ranks last)."""
    return scores[i] if scores is not None and math.isfinite(scores[i]) else -math.inf


def _penalised(pool: Sequence[int], candidates: Sequence[CellFitState], scores: Sequence[float],
               penalty: float) -> int:
    """The candidate of ``pool`` (one variant's, not vetoed, each with a validation score) with the lowest
    training loss times ``1 + penalty * (best validation ETV in the pool - own)``: the loss ranks the starts, and a
    start pays for each unit of validation ETV it gives up (``FitConfig.validation_penalty``)."""
    best = max(scores[i] for i in pool)
    return min(pool, key=lambda i: candidates[i].best_loss * (1.0 + penalty * (best - scores[i])))


def _not_vetoed(members: Sequence[int], candidates: Sequence[CellFitState], scores: Sequence[float],
                veto: float) -> list[int]:
    """The candidates among ``members`` (one variant, first = its best grid point) that did not fail and whose
    validation ETV is at least the first's minus ``veto`` (all that did not fail where the first has no score, and
    for the bursting candidates, ``FitConfig.burst_starts``: the validation seconds come after the epoch's onset, which
    holds the bursts, and score good bursting fits about 0)."""
    alive = [i for i in members if not candidates[i].failed]
    if not _veto_applies(members, candidates, scores):
        return alive
    first = members[0]
    return [i for i in alive if i == first or scores[i] >= scores[first] - veto]


def _unvetoed(members: Sequence[int], candidates: Sequence[CellFitState], scores: Optional[Sequence[float]],
              veto: Optional[float]) -> list[int]:
    """:func:`_not_vetoed` where there are validation scores and a ``veto``; otherwise every member that did not
    fail."""
    if veto is None or scores is None or not any(math.isfinite(v) for v in scores):
        return [i for i in members if not candidates[i].failed]
    return _not_vetoed(members, candidates, scores, veto)


def _veto_applies(members: Sequence[int], candidates: Sequence[CellFitState], scores: Sequence[float]) -> bool:
    """Whether the validation seconds judge the candidates of one variant (``members``, first = its best grid
    point): its first has a validation score and is not a bursting start (``FitConfig.burst_starts``)."""
    first = members[0]
    return math.isfinite(scores[first]) and not candidates[first].init.get("burst")


def equivalent_candidates(candidates: Sequence[CellFitState], scores: Optional[Sequence[float]], chosen: int,
                          config: FitConfig, train: Optional[Sequence[float]] = None) -> list[int]:
    """The candidates that the data cannot tell apart from the kept one (``chosen``): of its model variant, not
    failed, not vetoed by the validation seconds (``config.validation_veto``; without validation scores every
    one), with a final training loss at most ``config.equivalent_loss`` above the kept one's or, with
    ``config.equivalent_validation``, a validation ETV at least the kept one's minus it (where the validation
    seconds judge the variant) or, with ``config.equivalent_train_etv``, a training-window ETV (``train``, as
    :func:`choice` scores it) at least the kept one's minus it. The kept one is always among them; with the
    validation-ETV choice (no veto) or ``equivalent_loss`` None, only it.

    Their parameters widen the kept fit's intervals (:func:`interval_table`): where several starts reach
    nearly the same loss at different time constants, the data do not decide between them.
    """
    if config.equivalent_loss is None or candidates[chosen].failed:
        return [chosen]
    has_scores = scores is not None and any(math.isfinite(v) for v in scores)
    if has_scores and config.validation_veto is None:
        return [chosen]
    members = _variant_of(candidates, chosen)
    pool = _unvetoed(members, candidates, scores, config.validation_veto)
    limit = candidates[chosen].best_loss * (1.0 + config.equivalent_loss)
    tol = config.equivalent_validation
    judged = tol is not None and has_scores and _veto_applies(members, candidates, scores) \
        and math.isfinite(scores[chosen])
    ttol = config.equivalent_train_etv
    by_train = ttol is not None and train is not None and math.isfinite(train[chosen])
    def same(i):
        return i == chosen or candidates[i].best_loss <= limit or (judged and scores[i] >= scores[chosen] - tol) \
            or (by_train and math.isfinite(train[i]) and train[i] >= train[chosen] - ttol)

    return [i for i in pool if same(i)]


def _variant_of(candidates: Sequence[CellFitState], chosen: int) -> list[int]:
    """Indices of every candidate of ``chosen``'s model variant (failed ones too), in order."""
    (members,) = [g for g in by_variant(candidates) if chosen in g]
    return members


def variant_members(candidates: Sequence[CellFitState], chosen: int) -> list[int]:
    """The candidates of the kept one's (``chosen``) model variant that did not fail, the kept one included."""
    return [i for i in _variant_of(candidates, chosen) if not candidates[i].failed]


def widen_to_starts(lo: float, hi: float, starts: Sequence[float], fraction: Optional[float],
                    bounds: Optional[tuple] = None, bound_fraction: Optional[float] = None) -> tuple[float, float]:
    """``(lo, hi)`` with each end moved ``fraction`` of the way, in log, towards the nearest of ``starts``
    (positive values, e.g. the fitted tau_adapt of every start) outside the interval on that side. An end
    with no start beyond it moves ``bound_fraction`` of the way towards ``bounds`` (``(low, high)``, the
    parameter's range) on that side, since beyond the outermost start nothing was tried either; without
    ``bounds`` or ``bound_fraction`` it stays. ``fraction`` None or 0: that reach is off."""
    def towards(end: float, target: float, f: Optional[float]) -> float:
        return math.exp(math.log(end) + f * (math.log(target) - math.log(end))) if f else end

    below = [v for v in starts if v < lo]
    above = [v for v in starts if v > hi]
    if below:
        new_lo = towards(lo, max(below), fraction)
    else:
        new_lo = towards(lo, float(bounds[0]), bound_fraction) if bounds is not None and lo > bounds[0] else lo
    if above:
        new_hi = towards(hi, min(above), fraction)
    else:
        new_hi = towards(hi, float(bounds[1]), bound_fraction) if bounds is not None and hi < bounds[1] else hi
    return new_lo, new_hi


def widen_if_weak(lo: float, hi: float, adapt_scale: Optional[float], config: FitConfig) -> tuple[float, float]:
    """A tau_adapt interval ``(lo, hi)`` widened to ``config.tau_adapt_bounds_ms`` where the fit's ``adapt_scale``
    is weaker (in magnitude) than ``config.weak_adaptation`` (an adaptation too weak to time); else unchanged."""
    if config.weak_adaptation is None or adapt_scale is None or not abs(adapt_scale) < config.weak_adaptation:
        return lo, hi
    return min(lo, float(config.tau_adapt_bounds_ms[0])), max(hi, float(config.tau_adapt_bounds_ms[1]))


def widen_searched(lo: float, hi: float, searched: Sequence[float], adapt_scale: Optional[float],
                   config: FitConfig) -> tuple[float, float]:
    """The tau_adapt interval ``(lo, hi)`` widened as :func:`interval_table` widens it: towards the ``searched``
    starts' fitted tau_adapt (``config.start_gap``), past the outermost start towards ``config.tau_adapt_bounds_ms``
    (``config.bound_gap``; only for a search, two or more starts) and over those bounds for an adaptation weaker
    than ``config.weak_adaptation`` (:func:`widen_to_starts`, :func:`widen_if_weak`)."""
    bounds = config.tau_adapt_bounds_ms if len(searched) > 1 else None  # one start is no search
    lo, hi = widen_to_starts(lo, hi, searched, config.start_gap, bounds, config.bound_gap)
    return widen_if_weak(lo, hi, adapt_scale, config)


def resample_traces(data: TrainingSet, rng: np.random.Generator) -> TrainingSet:
    """A bootstrap resample of a cell's training traces: epochs with replacement, then repeats within each."""
    R, E, _ = data.current.shape
    epochs = rng.integers(0, E, size=E)
    repeats = rng.integers(0, R, size=(R, E))
    def pick(a):
        return None if a is None else a[repeats, epochs[None, :]]

    return TrainingSet(pick(data.current), pick(data.spikes), pick(data.voltage))


def interval_table(refits: Sequence[CellFitState], estimate: dict, config: FitConfig,
                   equivalent: Sequence[dict] = (), starts: Sequence[dict] = ()) -> tuple[dict, list[str]]:
    """``({name: [lo, hi]}, undetermined names)`` from the bootstrap refits of one cell.

    The interval of every parameter of ``estimate`` is the central ``config.interval_level``
    range of the refits' values (linear interpolation between order statistics), widened
    where needed to contain the reported ``estimate`` and the values of the ``equivalent`` fits
    (parameter dicts of the candidates the data cannot tell apart from it,
    :func:`equivalent_candidates`); the interval of :data:`SEARCHED` (tau_adapt) then reaches
    ``config.start_gap`` of the way towards the nearest of the ``starts`` (parameter dicts of every start
    of the kept fit's variant that did not fail) outside it, or, at an end with no start beyond it (of two or
    more), ``config.bound_gap`` of the way towards ``config.tau_adapt_bounds_ms`` (:func:`widen_to_starts`), and spans
    ``config.tau_adapt_bounds_ms`` where the estimate's ``adapt_scale`` is weaker than ``config.weak_adaptation``
    (an adaptation too weak to time). A time constant
    whose interval spans more than a factor ``config.undetermined_ratio`` (hi / lo) is reported as not
    determined by the data.
    """
    values = [physical_parameters(st.model) for st in refits if not st.failed]
    if len(values) < 2:
        return {}, []
    q = (1.0 - config.interval_level) / 2.0
    table, loose = {}, []
    for name in estimate:
        column = np.array([v[name] for v in values if name in v], dtype=np.float64)
        if len(column) < 2:
            continue
        lo, hi = np.quantile(column, [q, 1.0 - q])
        also = [estimate[name], *(e[name] for e in equivalent if name in e)]
        lo, hi = min(float(lo), *also), max(float(hi), *also)
        if name == SEARCHED:
            searched = [float(c[name]) for c in starts if name in c]
            lo, hi = widen_searched(lo, hi, searched, estimate.get("adapt_scale"), config)
        table[name] = [lo, hi]
        if name.endswith("_ms") and undetermined(lo, hi, config.undetermined_ratio):
            loose.append(name)
    return table, loose


def undetermined(lo: float, hi: float, ratio: float) -> bool:
    """Whether a time constant's interval ``[lo, hi]`` spans more than a factor ``ratio`` (``FitConfig.
    undetermined_ratio``): the data do not determine it."""
    return lo > 0 and hi / lo > ratio
