"""Fit and score cells: the Python API under ``python -m cellfit.fit`` and ``cellfit.batch``.

>>> from cellfit.fit import fit_cell, write_cell_outputs
>>> fit = fit_cell("demo", dt_ms=0.1)            # load, fit on Noise 1, score on Noise 2
>>> fit.result.etv, fit.result.tau_m_ms         # a FitResult (cellfit.fit.results)
>>> write_cell_outputs(fit, "runs/demo")          # result.json, model.pt, predictions.nwb, fit.png

Many cells at once (one batched simulation, independent parameters and schedules):

>>> fits = fit_recordings([load_cell(i, 0.1) for i in ids], FitConfig(dt_ms=0.1))

For arrays that do not come from the Allen loader, :class:`ALIFFitter` follows the
scikit-learn pattern: ``ALIFFitter(...).fit(current, spikes).score(test_current, test_spikes)``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from typing import Optional, Sequence

import numpy as np
import torch

import cellfit
from cellfit.data import CellRecording, load_cell, resolve_specimen
from cellfit.data.protocol import EPOCH_LENGTH_S
from cellfit.device import resolve_device
from cellfit.fit.coincidence import GammaResult, gamma_components, repeat_ceiling
from cellfit.fit.fitter import (
    PARAMETER_NAMES,
    CellFitState,
    FitConfig,
    TrainingSet,
    fit_population,
    physical_parameters,
    predict_spikes,
    unique_stimuli,
)
from cellfit.fit.metrics import ETVResult, etv_components, gaussian_smooth
from cellfit.fit.results import FitResult, LossStage, PhysicalParameters
from cellfit.fit.select import (
    ValidationSet,
    bias_tiebreak,
    bootstrap_refits,
    choice,
    equivalent_candidates,
    fit_candidates,
    interval_table,
    keeps_refit,
    refit_whole,
    refits_whole,
    sub_reset_fits,
    variant_members,
    with_sub_reset,
)
from cellfit.functional.alif import resolve_block_kernel
from cellfit.modules import ALIF

logger = logging.getLogger(__name__)

__all__ = ["CellFit", "fit_recordings", "fit_cell", "score_model", "ALIFFitter", "model_from_result", "loss_stages"]


@dataclasses.dataclass
class CellFit:
    """A fitted cell: the model, its held-out score and everything needed to write or plot it."""

    recording: CellRecording
    config: FitConfig
    model: ALIF
    """The fitted model (its bias moved by ``config.bias_tiebreak`` where that is on; ``state.model`` is the trained
    one)."""
    state: Optional[CellFitState]
    """The training record (None when read back from files)."""
    test_prediction: np.ndarray
    """(n_epochs, T) predicted spikes on the held-out stimulus (one per epoch)."""
    result: FitResult
    """The record written to result.json."""

    def figure_data(self, repeat: int = 0) -> dict:
        """What :func:`cellfit.figures.fit.plot_fit` draws beyond the recording, each (n_epochs, T):

        ``v_mV``, ``theta_mV``: the model's potential and threshold on repeat ``repeat``'s
        stimulus, in the cell's units (``v_rest + V * (v_thresh - v_rest)``);
        ``recorded_rate_hz``, ``model_rate_hz``: firing rates smoothed with the 10 ms
        Gaussian of ETV (recorded: the mean over repeats). Empty for a failed cell.
        """
        if not self.result.is_ok:
            return {}
        rec = self.recording
        out = predict_spikes(self.model, rec.normalised_current("test")[repeat], record=("v", "theta"))
        span = rec.meta.v_thresh_mV - rec.meta.v_rest_mV
        hz = 1000.0 / rec.dt_ms
        return dict(v_mV=rec.meta.v_rest_mV + out["v"] * span, theta_mV=rec.meta.v_rest_mV + out["theta"] * span,
                    recorded_rate_hz=gaussian_smooth(rec.test.spikes, dt_ms=rec.dt_ms).mean(0) * hz,
                    model_rate_hz=gaussian_smooth(self.test_prediction, dt_ms=rec.dt_ms) * hz)


def _prediction_per_epoch(model: ALIF, current: np.ndarray) -> np.ndarray:
    """(R, E, T) stimulus -> (E, T) prediction; distinct stimuli per repeat are averaged (a rate)."""
    stimuli, index = unique_stimuli(np.asarray(current, dtype=np.float32))
    pred = predict_spikes(model, stimuli)["spikes"]  # (U, T)
    return pred[index].mean(axis=0)


def score_model(model: ALIF, current: np.ndarray, spikes: np.ndarray, dt_ms: float) -> tuple[ETVResult, np.ndarray]:
    """ETV of a model on held-out data.

    Args:
        model: a fitted ``ALIF(1, 1)``.
        current: (R, E, T) normalised stimulus of the held-out sweeps.
        spikes: (R, E, T) recorded spikes (R >= 2 repeats).

    Returns:
        ``(ETVResult, prediction)`` with the (E, T) predicted spikes.
    """
    pred = _prediction_per_epoch(model, current)
    return etv_components(pred, spikes, dt_ms), pred


def held_out_scores(model: ALIF, rec: CellRecording, dt_ms: float) -> tuple[dict, np.ndarray]:
    """Every held-out score of a fitted model: ETV (overall and per stimulus epoch), Gamma, the repeat ceiling.

    Returns:
        ``(scores, prediction)``: a dict of :class:`FitResult` score fields and the (E, T) prediction.

    Raises:
        ValueError: the held-out repeats cannot score anything (e.g. no spikes, one repeat).
    """
    spikes = rec.test.spikes
    etv, pred = score_model(model, rec.normalised_current("test"), spikes, dt_ms)
    per_epoch = []
    for e in range(spikes.shape[1]):
        try:
            per_epoch.append(etv_components(pred[e], spikes[:, e], dt_ms).etv)
        except ValueError:  # an epoch without reliable spikes has no ETV of its own
            per_epoch.append(None)
    try:
        gamma = gamma_components(pred, spikes, dt_ms)
    except ValueError:  # the repeats' own Gamma is undefined: leave Gamma empty, keep ETV
        gamma = GammaResult(None, None, None)
    scores = dict(etv=etv.etv, model_ev=etv.model_ev, reliability=etv.reliability, etv_per_epoch=per_epoch,
                  gamma=gamma.gamma, gamma_model=gamma.gamma_model, gamma_reliability=gamma.gamma_reliability,
                  repeat_ceiling=repeat_ceiling(spikes, dt_ms))
    return scores, pred


def _identity(rec: CellRecording) -> dict:
    m = rec.meta
    return dict(specimen_id=m.specimen_id, specimen_name=m.name, cell_class=m.cell_class,
                transgenic_line=m.transgenic_line, layer=m.layer)


def _settings(rec: CellRecording, config: FitConfig, dev: torch.device, seed: int) -> dict:
    return dict(dt_ms=config.dt_ms, arp_ms=config.arp_ms, engine=config.engine, device=str(dev), seed=seed,
                window_s=rec.window_s, config=config.to_dict(), cellfit_version=cellfit.__version__,
                torch_version=torch.__version__)


def _data_fields(rec: CellRecording) -> dict:
    meta = rec.meta
    return dict(n_train_repeats=rec.train.n_repeats, n_test_repeats=rec.test.n_repeats,
                n_epochs_stimulus=rec.test.n_epochs, current_scale_pA=rec.current_scale_pA,
                v_rest_mV=meta.v_rest_mV, v_thresh_mV=meta.v_thresh_mV,
                normalisation=dict(v_rest=getattr(meta, "v_rest_source", "ephys_features"),
                                   v_thresh=getattr(meta, "v_thresh_source", "ephys_features")),
                train_sweeps=[int(n) for n in rec.train.sweep_numbers],
                test_sweeps=[int(n) for n in rec.test.sweep_numbers])


def loss_stages(state: CellFitState) -> list[LossStage]:
    """The loss stages a cell went through, from its per-epoch stage indices."""
    stages = []
    hist, idx = np.asarray(state.history, float), np.asarray(state.stage_history, int)
    present = [s for s in range(len(state.loss_taus_ms)) if (idx == s).any()]
    for n, s in enumerate(present):
        epochs = np.flatnonzero(idx == s)
        if n < len(present) - 1:
            outcome = "plateau: next stage"
        elif state.failed:
            outcome = "failed"
        elif state.stop_reason == "converged":
            outcome = "converged"
        else:
            outcome = "max epochs"
        stages.append(LossStage(van_rossum_tau_ms=float(state.loss_taus_ms[s]), first_epoch=int(epochs[0]) + 1,
                                last_epoch=int(epochs[-1]) + 1, best_loss=float(hist[epochs].min()), outcome=outcome))
    return stages


def _stop_reason(state: CellFitState, config: FitConfig) -> str:
    if state.stop_reason == "converged" and state.loss_taus_ms:
        loss = "explained variance" if config.final_loss == "explained_variance" else "van Rossum"
        return f"converged in the final loss stage ({loss} {state.loss_taus_ms[-1]:g} ms)"
    return state.stop_reason


def _validation(rec: CellRecording, n_train: int, config: FitConfig) -> Optional[ValidationSet]:
    """The Noise 1 bins after the training window (at most ``config.validation_s``), if the recording has them."""
    n_val = min(rec.train.n_bins - n_train, int(round(config.validation_s * 1000.0 / config.dt_ms)))
    if n_val <= 0:
        return None
    stop = n_train + n_val
    return ValidationSet(rec.normalised_current("train")[..., :stop], rec.train.spikes[..., :stop], n_train)


def fit_recordings(
    recordings: Sequence[CellRecording],
    config: FitConfig = FitConfig(),
    *,
    window_s: Optional[float] = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
) -> list[CellFit]:
    """Fit several loaded cells together (batched models) and score each on its held-out sweeps.

    Per cell: ``config.restarts`` candidate fits, the one that predicts held-out Noise 1 data
    best is kept, and ``config.bootstrap`` refits on resampled training traces give its
    parameter intervals (:mod:`cellfit.fit.select`); a kept fit of a variant in ``config.refit_models`` (by
    default ``alif_sub``) then trains again on all of Noise 1 and is reported (``selection.refit``); Noise 2 only
    scores the kept model.

    Args:
        recordings: :class:`cellfit.data.CellRecording` objects binned at ``config.dt_ms``.
        config: fit configuration.
        window_s: seconds of each epoch that train the model and score it on Noise 2 (default:
            the recordings' whole window). Noise 1 beyond it (up to ``config.validation_s``)
            is the validation data; :func:`fit_cell` loads it.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        seed: random seed (same seed, same device: same result).
        progress: show progress bars.

    Returns:
        One :class:`CellFit` per recording; its ``result`` is a :class:`FitResult`
        (``status == "failed"`` with the reason for a cell that could not be fitted or scored).

    With ``config.ev_rescue`` the cells whose kept fit predicts the validation seconds below it (and is not a
    bursting start, unless ``config.ev_rescue_bursting``) are fitted again with the explained-variance final loss,
    and keep that fit where it predicts those seconds ``config.ev_rescue_margin`` better (:func:`_ev_rescue`).
    """
    if not recordings:
        return []
    dev = resolve_device(device)
    for rec in recordings:
        if not math.isclose(rec.dt_ms, config.dt_ms, rel_tol=1e-9):
            raise ValueError(
                f"specimen {rec.meta.specimen_id}: recording binned at dt {rec.dt_ms} ms but the fit uses {config.dt_ms} ms"
            )
    window = float(window_s) if window_s is not None else min(rec.window_s for rec in recordings)
    t0 = time.perf_counter()
    fits = _fit_once(recordings, config, window, dev, seed, progress)
    if config.ev_rescue is None or config.final_loss == "explained_variance":
        return fits
    return _ev_rescue(recordings, fits, config, window, dev, seed, progress, t0)


def _kept_validation_etv(fit: CellFit) -> Optional[float]:
    """The validation ETV of a fit's kept candidate (None: failed, or no validation seconds)."""
    sel = fit.result.selection or {}
    cands = sel.get("candidates") or []
    return cands[sel["chosen"]].get("validation_etv") if fit.result.status == "ok" and cands else None


def _ev_rescue_gated(fit: CellFit, config: FitConfig) -> bool:
    """Whether ``config.ev_rescue`` fits a cell again: its kept fit predicts the validation seconds below the gate
    and, unless ``config.ev_rescue_bursting``, is not a bursting start (whose validation ETV does not judge it)."""
    v = _kept_validation_etv(fit)
    if v is None or v >= config.ev_rescue:
        return False
    return config.ev_rescue_bursting or fit.state is None or not fit.state.init.get("burst")


def _ev_rescue(recordings, fits: list[CellFit], config: FitConfig, window: float, dev, seed: int, progress: bool,
               t0: float) -> list[CellFit]:
    """``config.ev_rescue``: the gated cells (:func:`_ev_rescue_gated`) fitted again with the explained-variance
    final loss, the better kept.

    A gated cell's result records ``selection.ev_rescue`` (both kept fits' validation ETVs and which loss was kept)
    and the caller's ``config`` whichever fit it keeps; every result's fit time includes the second fits.
    """
    gated = [k for k, f in enumerate(fits) if _ev_rescue_gated(f, config)]
    out = list(fits)
    if gated:
        second = dataclasses.replace(config, final_loss="explained_variance", ev_rescue=None)
        again = _fit_once([recordings[k] for k in gated], second, window, dev, seed, progress)
        for k, fit in zip(gated, again):
            first, other = _kept_validation_etv(fits[k]), _kept_validation_etv(fit)
            keep = other is not None and other >= first + config.ev_rescue_margin
            kept = fit if keep else fits[k]
            note = dict(validation_etv=[first, other], final_loss=second.final_loss if keep else config.final_loss)
            result = dataclasses.replace(kept.result, config=config.to_dict(),
                                         selection=dict(kept.result.selection, ev_rescue=note))
            out[k] = dataclasses.replace(kept, config=config, result=result)
    wall = time.perf_counter() - t0
    return [f if f.result.status != "ok" else
            dataclasses.replace(f, result=dataclasses.replace(f.result, fit_seconds=wall / len(recordings),
                                                               batch_seconds=wall))
            for f in out]


def _fit_once(recordings: Sequence[CellRecording], config: FitConfig, window: float, dev, seed: int,
              progress: bool) -> list[CellFit]:
    """:func:`fit_recordings` without ``config.ev_rescue``: candidates, choice, refits, scores."""
    n_train = int(round(window * 1000.0 / config.dt_ms))
    validation = [_validation(rec, n_train, config) for rec in recordings]
    full, recordings = recordings, [rec.first(window) for rec in recordings]
    sets = [
        TrainingSet(rec.normalised_current("train"), rec.train.spikes, rec.normalised_voltage("train"))
        for rec in recordings
    ]
    names = [str(r.meta.specimen_id) for r in recordings]
    t0 = time.perf_counter()
    keys = [int(r.meta.specimen_id) for r in recordings]  # seeds of each cell's bootstrap draws
    candidates, early_refits = _fit_in_chunks(sets, config, dev, seed, progress, names, keys, validation)
    picks = [choice(cands, data, val, config) for cands, data, val in zip(candidates, sets, validation)]
    if config.sub_reset_asc and config.model == "alif" and config.extension_margin is not None:
        # a kept alif_sub fit also trained with a reset and after-spike currents, kept by the extension margin
        firsts = [cands[i] for cands, (i, _, _, _) in zip(candidates, picks)]
        extended = sub_reset_fits(firsts, sets, config, device=dev, seed=seed, progress=progress, names=names)
        for k, ext in enumerate(extended):
            if ext is not None:
                candidates[k], picks[k] = with_sub_reset(candidates[k], picks[k], ext, sets[k], validation[k], config)
    chosen = [cands[i] for cands, (i, _, _, _) in zip(candidates, picks)]
    if early_refits is None:
        refits = bootstrap_refits(sets, chosen, config, device=dev, seed=seed, progress=progress, keys=keys)
    else:  # trained beside the candidates as the first variant, from the best grid point; a cell that kept another
        # variant (a bursting fit) or a gain start (the refits began at the start that stayed put) refits now, from
        # its kept start
        refits = list(early_refits)
        redo = [k for k, (st, boot) in enumerate(zip(chosen, refits))
                if boot and not st.failed and (boot[0].init.get("model", "alif") != st.init.get("model", "alif")
                                               or "gain_scale" in st.init)]
        if redo:
            again = bootstrap_refits([sets[k] for k in redo], [chosen[k] for k in redo], config, device=dev, seed=seed,
                                     progress=progress, keys=[keys[k] for k in redo])
            for k, boot in zip(redo, again):
                refits[k] = boot
    # the kept fits trained again on all of Noise 1 (config.refit_models; a failed refit keeps the first fit), on
    # the training window and the validation seconds together, built for the cells of those variants only
    wholes = [None if val is None or not refits_whole(st, config) else
              TrainingSet(val.current, val.spikes, rec.normalised_voltage("train")[..., :val.current.shape[-1]])
              for rec, val, st in zip(full, validation, chosen)]
    wholes_fit = refit_whole(chosen, wholes, config, device=dev, seed=seed, progress=progress, names=names)
    wholes_fit = [None if w is None or w.failed else w for w in wholes_fit]
    dropped: list[Optional[dict]] = [None] * len(chosen)  # config.refit_guard: refits that explain Noise 1 less well
    if config.refit_guard:
        for k, (st, w, data) in enumerate(zip(chosen, wholes_fit, wholes)):
            if w is not None:
                keep, first_etv, refit_etv = keeps_refit(st, w, data, config)
                if not keep:
                    wholes_fit[k] = None
                    dropped[k] = dict(noise1_etv_first=first_etv, noise1_etv_refit=refit_etv, epochs=w.epochs,
                                      train_loss=w.best_loss)
    # the kept fits' bias where the training window cannot tell (config.bias_tiebreak; off: the fits themselves)
    tiebreaks = [(st.model, None) if st.failed else
                 (w.model, None) if w is not None else bias_tiebreak(st.model, val, config)
                 for st, w, val in zip(chosen, wholes_fit, validation)]
    wall = time.perf_counter() - t0

    kernel = resolve_block_kernel(None, dev) if config.engine == "blocks" else ""
    fits = []
    for rec, st, cands, (index, basis, scores, train), boot, val, (model, shift), whole, drop in zip(
            recordings, chosen, candidates, picks, refits, validation, tiebreaks, wholes_fit, dropped):
        common = dict(**_identity(rec), **_settings(rec, config, dev, seed), epochs=st.epochs)
        error = st.stop_reason if st.failed else ""
        if not error:
            try:  # e.g. held-out repeats without any spike: ETV undefined for this cell alone
                scores_test, pred = held_out_scores(model, rec, config.dt_ms)
                etv_init, _ = score_model(config.build_model(st.init), rec.normalised_current("test"),
                                          rec.test.spikes, config.dt_ms)
            except ValueError as exc:
                error = f"scoring failed: {exc}"
        if error:
            result = FitResult.failed(error=error, **common)
            fits.append(CellFit(rec, config, st.model, st, np.zeros((0, 0), np.float32), result))
            continue
        params = physical_parameters(model)
        same = equivalent_candidates(cands, scores, index, config, train)
        fitted_cands = [None if c.failed else physical_parameters(c.model) for c in cands]
        # a refit on all of Noise 1 reports its own values; the intervals reach the kept candidate's too
        also = [fitted_cands[i] for i in same if i != index or whole is not None]
        intervals, undetermined = interval_table(boot, params, config, also,
                                                 [fitted_cands[i] for i in variant_members(cands, index)])
        n_asc = sum(name.startswith("asc_amp_") for name in params)
        fitted = dict(**{name: params[name] for name in PARAMETER_NAMES}, v_reset=params.get("v_reset"),
                      asc_amp=tuple(params[f"asc_amp_{j + 1}"] for j in range(n_asc)),
                      tau_asc_ms=tuple(params[f"tau_asc_{j + 1}_ms"] for j in range(n_asc)),
                      sub_amp=params.get("sub_amp"), tau_sub_ms=params.get("tau_sub_ms"))
        selection = dict(
            basis=basis, chosen=index, validation_s=0.0 if scores is None else val.seconds(config.dt_ms),
            candidates=[dict(model=c.init.get("model", "alif"), start=c.init.get("method", ""),
                             start_tau_adapt_ms=c.init.get("tau_adapt_ms"), train_loss=c.best_loss,
                             epochs=c.epochs, validation_etv=None if scores is None else scores[i],
                             **({} if train is None else dict(train_etv=train[i])),
                             tau_m_ms=(fitted_cands[i] or {}).get("tau_m_ms"),
                             tau_adapt_ms=(fitted_cands[i] or {}).get("tau_adapt_ms"),
                             equivalent=i in same, failed=c.failed) for i, c in enumerate(cands)],
            **({} if shift is None else dict(bias_tiebreak=shift)),
            **({} if whole is None else dict(refit=dict(
                seconds=window + val.seconds(config.dt_ms), epochs=whole.epochs, train_loss=whole.best_loss,
                best_epoch=whole.best_epoch, stop_reason=whole.stop_reason))),
            **({} if drop is None else dict(refit_dropped=drop)),
        )
        result = FitResult.ok(
            **common,
            **_data_fields(rec),
            **scores_test,
            **fitted,
            model=st.init.get("model", "alif"),
            selection=selection,
            intervals=intervals,
            interval_level=config.interval_level if intervals else None,
            undetermined=tuple(undetermined),
            at_bound=tuple(config.at_bound(params, st.init)),
            bootstrap_replicates=sum(not b.failed for b in boot),
            stop_reason=_stop_reason(st, config),
            fit_seconds=wall / len(recordings),
            batch_seconds=wall,
            batch_cells=len(recordings),
            train_loss=st.best_loss,
            best_epoch=st.best_epoch,
            etv_init=etv_init.etv,
            physical=PhysicalParameters.from_fit(params, rec.meta.v_rest_mV, rec.meta.v_thresh_mV,
                                                 rec.current_scale_pA),
            init=dict(st.init),
            test_rate_hz=float(rec.test.spikes.mean() * 1000.0 / config.dt_ms),
            predicted_rate_hz=float(pred.mean() * 1000.0 / config.dt_ms),
            block_kernel=kernel,  # which implementation found the spikes (float rounding may differ)
            loss_history=tuple(float(v) for v in st.history),
            loss_stage=tuple(st.stage_history),
            loss_stages=tuple(loss_stages(st)),
            param_history=st.param_history,
        )
        fits.append(CellFit(rec, config, model, st, pred, result))
    return fits


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _fit_in_chunks(sets, config, dev, seed, progress, names, keys=None, validation=None):
    """:func:`cellfit.fit.select.fit_candidates`, halving the batch of cells whenever it does not fit in memory.

    Cells are independent, so fitting them in smaller batches gives the same per-cell results.
    """
    try:
        return fit_candidates(sets, config, device=dev, seed=seed, progress=progress, names=names, keys=keys,
                              validation=validation)
    except (torch.cuda.OutOfMemoryError, RuntimeError, MemoryError) as exc:
        if not (_is_out_of_memory(exc) or isinstance(exc, MemoryError)) or len(sets) == 1:
            raise
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    half = len(sets) // 2
    logger.warning("%d cells do not fit in %s memory together; fitting them as %d + %d",
                   len(sets), dev, half, len(sets) - half)
    keys = list(keys) if keys is not None else list(range(len(sets)))
    validation = list(validation) if validation is not None else [None] * len(sets)
    first = _fit_in_chunks(sets[:half], config, dev, seed, progress, names[:half], keys[:half], validation[:half])
    second = _fit_in_chunks(sets[half:], config, dev, seed, progress, names[half:], keys[half:], validation[half:])
    refits = None if first[1] is None or second[1] is None else first[1] + second[1]
    return first[0] + second[0], refits


def fit_cell(
    specimen,
    dt_ms: float = 0.1,
    *,
    arp_ms: float = 2.0,
    window_s: float = 1.0,
    config: Optional[FitConfig] = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    cache_dir=None,
    progress: bool = True,
) -> CellFit:
    """Load one specimen (an Allen id or ``"demo"``), fit it on Noise 1 and score it on Noise 2.

    ``config`` overrides ``dt_ms``/``arp_ms`` when given. Data errors raise
    :class:`cellfit.data.CellDataError` with a one-line message.
    """
    cfg = config or FitConfig(dt_ms=dt_ms, arp_ms=arp_ms)
    cache, sid = resolve_specimen(specimen, cache_dir)
    loaded = min(EPOCH_LENGTH_S, window_s + cfg.validation_s)  # the validation seconds follow the window
    rec = load_cell(sid, dt_ms=cfg.dt_ms, window_s=loaded, cache_dir=cache)
    return fit_recordings([rec], cfg, window_s=window_s, device=device, seed=seed, progress=progress)[0]


def model_from_result(result: FitResult | dict, state_dict: dict) -> ALIF:
    """Rebuild a fitted model from its result (or result.json dict) and model.pt state dict."""
    config = FitConfig.from_dict(result.config if isinstance(result, FitResult) else result["config"])
    variant = (result.model if isinstance(result, FitResult) else result.get("model")) or "alif"
    init = (result.init if isinstance(result, FitResult) else result.get("init")) or {}
    own = {"v_reset_bounds": init["v_reset_bounds"]} if init.get("v_reset_bounds") is not None else {}  # its own range
    model = config.build_model(dict(config.initial_values(), **config.variant_start(variant), **own))
    model.load_state_dict(state_dict)
    return model


class ALIFFitter:
    """scikit-learn-style fitter for one cell given as arrays.

    Parameters are stored as given (no work in ``__init__``); ``fit`` sets ``model_``,
    ``params_`` (physical units), ``history_`` (loss per epoch) and returns ``self``.

    Args:
        config: a :class:`FitConfig` (or keyword overrides of the default one).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        seed: random seed.
        progress: show a progress bar.
    """

    def __init__(self, config: Optional[FitConfig] = None, *, device="auto", seed: int = 0, progress: bool = False,
                 **overrides):
        self.config = config
        self.device = device
        self.seed = seed
        self.progress = progress
        self.overrides = overrides

    def _config(self) -> FitConfig:
        base = self.config or FitConfig()
        return dataclasses.replace(base, **self.overrides) if self.overrides else base

    def fit(self, current: np.ndarray, spikes: np.ndarray, voltage: Optional[np.ndarray] = None) -> "ALIFFitter":
        """Fit to (R, E, T) normalised current and recorded spikes (optionally voltage for the init)."""
        cur, spk = np.asarray(current), np.asarray(spikes)
        if cur.ndim == 2:
            cur, spk = cur[None], spk[None]
            voltage = None if voltage is None else np.asarray(voltage)[None]
        st = fit_population([TrainingSet(cur, spk, voltage)], self._config(), device=self.device, seed=self.seed,
                            progress=self.progress)[0]
        self.model_ = st.model
        self.params_ = physical_parameters(st.model)
        self.history_ = st.history
        self.state_ = st
        return self

    def predict(self, current: np.ndarray) -> np.ndarray:
        """Predicted spikes (same shape as ``current``)."""
        return predict_spikes(self.model_, np.asarray(current), device=self.device)["spikes"]

    def score(self, current: np.ndarray, spikes: np.ndarray) -> float:
        """Held-out ETV: ``current``/``spikes`` (R, E, T) with R >= 2 recorded repeats."""
        return score_model(self.model_, np.asarray(current), np.asarray(spikes), self._config().dt_ms)[0].etv

    def to_dict(self) -> dict:
        """JSON-able description: configuration and fitted parameters (physical units)."""
        out = {"config": self._config().to_dict(), "seed": self.seed}
        if hasattr(self, "model_"):
            out["params"] = self.params_
            out["state_dict"] = {k: v.tolist() for k, v in self.model_.state_dict().items()}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "ALIFFitter":
        fitter = cls(FitConfig.from_dict(d["config"]), seed=d.get("seed", 0))
        if "state_dict" in d:
            sd = {k: torch.tensor(v) for k, v in d["state_dict"].items()}
            fitter.model_ = model_from_result({"config": d["config"]}, sd)
            fitter.params_ = physical_parameters(fitter.model_)
        return fitter

    def to_json(self) -> str:
        return json.dumps(self.to_dict())
