"""A fitted cell's files: written all together or not at all, read back as data.

``<out>/<specimen_id>/``:

- ``result.json``: the :class:`cellfit.fit.results.FitResult` (schema: ``RESULTS.md``);
- ``model.pt``: the fitted ``cellfit.ALIF(1, 1)`` state dict (tensors only; load with
  ``torch.load(path, weights_only=True)`` or :func:`load_cell_fit`);
- ``predictions.nwb``: held-out stimulus, recorded voltage and spikes, predicted spikes
  (NWB 2, with the source sweep numbers and stimulus names);
- ``fit.png``: the held-out data and the model (:func:`cellfit.figures.fit.plot_fit`);
- ``training.png``: the training record (:func:`cellfit.figures.fit.plot_training`).

All-or-nothing: the files are written into a temporary folder beside the target
(``<out>/.<id>.<random>.tmp``), which then replaces ``<out>/<id>`` by two renames
(the old folder aside, the new one in). An error or Ctrl-C while writing removes the
temporary folder and leaves the previous outputs as they were, so a folder never holds
the model of one run beside the result of another. Between the two renames (a few
microseconds) an interruption leaves no ``<id>`` folder, which a rerun simply refits;
the set-aside folder (``.<id>.old-...``) is removed by the next write of that cell.
Files and folders get the user's umask.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
import time
from typing import Callable

import numpy as np
import torch

from cellfit.data import CellMeta, CellRecording, TraceSet, load_cell
from cellfit.data.nwb2 import read_predictions_nwb2, write_predictions_nwb2
from cellfit.data.protocol import EPOCH_STARTS_S, TEST_STIMULUS
from cellfit.figures.fit import plot_fit, plot_training, save_figure
from cellfit.fit.api import CellFit, held_out_scores, model_from_result
from cellfit.fit.fitter import FitConfig
from cellfit.fit.results import RESULT_FILE, FitResult, read_result
from cellfit.io import make_dir_readable

__all__ = ["write_cell_outputs", "write_failed_result", "load_cell_fit", "load_fit", "OUTPUT_FILES"]

#: what an ok cell's folder holds (a failed cell: result.json only)
OUTPUT_FILES = (RESULT_FILE, "model.pt", "predictions.nwb", "fit.png", "training.png")

#: a temporary folder older than this is a leftover of a killed run, not a concurrent writer
_STALE_S = 3600.0


def write_cell_outputs(fit: CellFit, out_dir: os.PathLike | str, *, figure: bool = True,
                       nwb: bool = True) -> pathlib.Path:
    """Write one fitted cell's files into ``out_dir/<specimen_id>/``, all together or not at all.

    Args:
        fit: a :class:`cellfit.fit.CellFit`.
        out_dir: run directory (created if missing).
        figure: draw ``fit.png`` and ``training.png``.
        nwb: write ``predictions.nwb``.

    Returns:
        Path of the cell's directory.
    """
    def fill(folder: pathlib.Path) -> None:
        if fit.result.is_ok:  # a failed cell records why, nothing else
            _write_ok_files(fit, folder, figure=figure, nwb=nwb)

    return _write_cell_dir(pathlib.Path(out_dir), fit.result, fill)


def _write_cell_dir(out_dir: pathlib.Path, result: FitResult, fill: Callable[[pathlib.Path], None]) -> pathlib.Path:
    """Fill a temporary folder (``fill`` then result.json) and swap it in as ``out_dir/<specimen_id>``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sid = str(result.specimen_id)
    _remove_leftovers(out_dir, sid)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{sid}.", suffix=".tmp", dir=out_dir))
    try:
        fill(tmp)
        (tmp / RESULT_FILE).write_text(result.to_json(), encoding="utf-8")
        make_dir_readable(tmp)
        _replace_dir(tmp, out_dir / sid)
    except BaseException:  # KeyboardInterrupt included: nothing half-written stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir / sid


def _write_ok_files(fit: CellFit, folder: pathlib.Path, *, figure: bool, nwb: bool) -> None:
    torch.save({k: v.detach().cpu() for k, v in fit.model.state_dict().items()}, folder / "model.pt")
    rec, res = fit.recording, fit.result
    if nwb:
        write_predictions_nwb2(
            folder / "predictions.nwb",
            specimen_id=rec.meta.specimen_id,
            dt_ms=rec.dt_ms,
            current=rec.test.current_pA,
            predicted_spikes=fit.test_prediction,
            recorded_spikes=rec.test.spikes,
            voltage=rec.test.voltage_mV,
            epoch_starts_s=rec.test.epoch_starts_s,
            sweep_numbers=rec.test.sweep_numbers,
            stimulus_name=TEST_STIMULUS,
            parameters=dict(tau_m_ms=res.tau_m_ms, tau_adapt_ms=res.tau_adapt_ms, adapt_scale=res.adapt_scale,
                            gain=res.gain, bias=res.bias, etv=res.etv, gamma=res.gamma),
            description=f"cellfit held-out predictions of specimen {rec.meta.specimen_id}: the model fitted to "
                        f"the Noise 1 sweeps, scored on the {TEST_STIMULUS} sweeps",
        )
    if figure:
        save_figure(plot_fit(fit), folder / "fit.png")
        save_figure(plot_training(res), folder / "training.png")


def _replace_dir(new: pathlib.Path, target: pathlib.Path) -> None:
    """Put the folder ``new`` at ``target``: the old one aside, the new one in, the old one removed."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.time_ns()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_leftovers(out_dir: pathlib.Path, sid: str) -> None:
    """Folders set aside by an interrupted swap, and temporary folders of killed runs."""
    now = time.time()
    for p in out_dir.glob(f".{sid}.*"):
        stale = p.name.endswith(".tmp") and now - p.stat().st_mtime > _STALE_S
        if p.is_dir() and (".old-" in p.name or stale):
            shutil.rmtree(p, ignore_errors=True)


def load_cell_fit(cell_dir: os.PathLike | str):
    """``(result, model)`` from a cell directory written by :func:`write_cell_outputs`.

    ``result`` is a :class:`FitResult`; ``model`` the fitted ``ALIF(1, 1)`` (from model.pt,
    read with ``weights_only=True``).
    """
    cell_dir = pathlib.Path(cell_dir)
    result = read_result(cell_dir)
    state = torch.load(cell_dir / "model.pt", weights_only=True, map_location="cpu")
    return result, model_from_result(result, state)


def load_fit(cell_dir: os.PathLike | str, cache_dir: os.PathLike | str | None = None, *,
             recompute: bool = False) -> CellFit:
    """Rebuild a fitted cell from its directory as a :class:`cellfit.fit.CellFit` (for ``plot_fit``).

    By default the held-out data and the model's prediction come from the cell's
    ``predictions.nwb`` (what was scored; no Allen cache needed, so results copied from
    a cluster plot as they are). With ``recompute=True``, or without ``predictions.nwb``,
    the recording is loaded again with :func:`cellfit.data.load_cell` from ``cache_dir``
    (default: ``$CELLFIT_CACHE`` or ``~/.cache/cellfit/allen``; a batch run's own cache is
    in its ``config.json``: :func:`cellfit.batch.load_run_fit` passes it) and the saved
    model predicts it.

    The returned object has ``recording`` (its ``train`` set is empty when read from
    ``predictions.nwb``), ``config``, ``model``, ``test_prediction`` (E, T) and ``result``;
    ``state`` (the training history object) is None.

    Raises:
        FileNotFoundError: no ``result.json``/``model.pt`` (a failed or unfinished cell).
        cellfit.data.CellDataError: the recording cannot be loaded or read.
    """
    cell_dir = pathlib.Path(cell_dir)
    result, model = load_cell_fit(cell_dir)
    config = FitConfig.from_dict(result.config)
    pred_file = cell_dir / "predictions.nwb"
    if recompute or not pred_file.exists():
        rec = load_cell(result.specimen_id, dt_ms=config.dt_ms, window_s=float(result.window_s or 1.0),
                        cache_dir=cache_dir)
        _, pred = held_out_scores(model, rec, config.dt_ms)
    else:
        rec, pred = _recording_from_predictions(pred_file, result)
    return CellFit(recording=rec, config=config, model=model, state=None, test_prediction=pred, result=result)


def _recording_from_predictions(path: pathlib.Path, result: FitResult) -> tuple[CellRecording, np.ndarray]:
    """A :class:`cellfit.data.CellRecording` holding the held-out set stored in ``predictions.nwb``."""
    p = read_predictions_nwb2(path)
    dt = float(p["dt_ms"])
    spikes = np.asarray(p["recorded_spikes"], dtype=np.float32)
    r, e, t = spikes.shape
    current = np.broadcast_to(np.asarray(p["current"], dtype=np.float32), (r, e, t))
    voltage = p.get("voltage")
    voltage = (np.full((r, e, t), np.nan, np.float32) if voltage is None
               else np.broadcast_to(np.asarray(voltage, dtype=np.float32), (r, e, t)))
    times = tuple(tuple(np.flatnonzero(spikes[i, j]) * dt / 1000.0 for j in range(e)) for i in range(r))
    starts = np.asarray(p.get("epoch_starts_s") or EPOCH_STARTS_S[:e], dtype=np.float64)
    sweeps = np.asarray(p.get("sweep_numbers") or np.arange(r), dtype=np.int64)
    test = TraceSet(current_pA=current, voltage_mV=voltage, spikes=spikes, spike_times_s=times,
                    sweep_numbers=sweeps, epoch_starts_s=starts, dt_ms=dt)
    empty = np.zeros((0, e, t), np.float32)
    train = TraceSet(current_pA=empty, voltage_mV=empty, spikes=empty, spike_times_s=(),
                     sweep_numbers=np.zeros(0, np.int64), epoch_starts_s=starts, dt_ms=dt)
    cls = result.cell_class or "unknown"
    nan = float("nan")
    meta = CellMeta(specimen_id=result.specimen_id, name=result.specimen_name, species="", layer=result.layer,
                    dendrite_type={"excitatory": "spiny", "inhibitory": "aspiny"}.get(cls, ""), cell_class=cls,
                    transgenic_line=result.transgenic_line, disease_state="",
                    v_rest_mV=nan if result.v_rest_mV is None else result.v_rest_mV,
                    v_thresh_mV=nan if result.v_thresh_mV is None else result.v_thresh_mV)
    rec = CellRecording(meta=meta, dt_ms=dt, window_s=float(result.window_s or t * dt / 1000.0), train=train,
                        test=test, current_scale_pA=nan if result.current_scale_pA is None else result.current_scale_pA,
                        n_multi_spike_bins=0, source=str(path))
    return rec, np.asarray(p["predicted_spikes"], dtype=np.float32)


def write_failed_result(out_dir: os.PathLike | str, result: FitResult) -> pathlib.Path:
    """Replace ``out_dir/<specimen_id>/`` by a folder holding only this (failed) ``result.json``."""
    return _write_cell_dir(pathlib.Path(out_dir), result, lambda folder: None)

