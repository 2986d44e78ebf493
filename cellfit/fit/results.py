"""Write and read a fitted cell's files (all writes atomic, all formats data, not code).

``<out>/<specimen_id>/``:

- ``result.json``: the summary (parameters in physical units, ETV, timing, configuration);
- ``model.pt``: the fitted ``cellfit.ALIF(1, 1)`` state dict (tensors only; load with
  ``torch.load(path, weights_only=True)`` or :func:`load_cell_fit`);
- ``predictions.nwb``: held-out stimulus, recorded and predicted spikes as NWB 2;
- ``fit.png``: the figure of :func:`cellfit.fit.figures.plot_fit`.

``result.json`` is written last, so its presence means the cell's outputs are complete.
"""

from __future__ import annotations

import json
import math
import os
import pathlib

import numpy as np
import torch

from cellfit.io import atomic_path, write_json_atomic

__all__ = ["write_cell_outputs", "load_cell_fit", "load_fit", "read_result", "RESULT_FILE"]

RESULT_FILE = "result.json"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


def write_cell_outputs(fit, out_dir: os.PathLike | str, *, figure: bool = True, nwb: bool = True) -> pathlib.Path:
    """Write result.json, model.pt, predictions.nwb and fit.png for one fitted cell.

    Args:
        fit: a :class:`cellfit.fit.api.CellFit`.
        out_dir: run directory; files go to ``out_dir/<specimen_id>/``.

    Returns:
        Path of the cell's directory.
    """
    cell_dir = pathlib.Path(out_dir) / str(fit.result["specimen_id"])
    cell_dir.mkdir(parents=True, exist_ok=True)
    if fit.result.get("status") != "ok":  # a failed cell records why, nothing else
        write_json_atomic(cell_dir / RESULT_FILE, _jsonable(fit.result))
        return cell_dir
    with atomic_path(cell_dir / "model.pt") as tmp:
        torch.save({k: v.detach().cpu() for k, v in fit.model.state_dict().items()}, tmp)
    if nwb:
        from cellfit.data.nwb2 import write_predictions_nwb2

        rec = fit.recording
        write_predictions_nwb2(
            cell_dir / "predictions.nwb",
            specimen_id=rec.meta.specimen_id,
            dt_ms=rec.dt_ms,
            current=rec.test.current_pA,
            predicted_spikes=fit.test_prediction,
            recorded_spikes=rec.test.spikes,
            voltage=rec.test.voltage_mV,
        )
    if figure:
        from cellfit.fit.figures import plot_fit
        import matplotlib.pyplot as plt

        fig = plot_fit(fit)
        with atomic_path(cell_dir / "fit.png", suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
    write_json_atomic(cell_dir / RESULT_FILE, _jsonable(fit.result))
    return cell_dir


def read_result(cell_dir: os.PathLike | str) -> dict:
    """Read ``result.json`` of a cell directory."""
    return json.loads((pathlib.Path(cell_dir) / RESULT_FILE).read_text(encoding="utf-8"))


def load_cell_fit(cell_dir: os.PathLike | str):
    """Load ``(result, model)`` from a cell directory written by :func:`write_cell_outputs`."""
    from cellfit.fit.api import model_from_result

    cell_dir = pathlib.Path(cell_dir)
    result = read_result(cell_dir)
    state = torch.load(cell_dir / "model.pt", weights_only=True, map_location="cpu")
    return result, model_from_result(result, state)


def load_fit(cell_dir: os.PathLike | str, cache_dir: os.PathLike | str | None = None, *,
             recompute: bool = False):
    """Rebuild a fitted cell from its directory as a :class:`cellfit.fit.CellFit` (for ``plot_fit``).

    By default the held-out data and the model's prediction come from the cell's
    ``predictions.nwb`` (what was scored; no Allen cache needed, so results copied from
    a cluster plot as they are). With ``recompute=True``, or without ``predictions.nwb``,
    the recording is loaded again with :func:`cellfit.data.load_cell` (``cache_dir``, default
    the run's ``config.json`` cache) and the saved model predicts it with
    :func:`cellfit.fit.api.score_model`.

    The returned object has ``recording`` (its ``train`` set is empty when read from
    ``predictions.nwb``), ``config``, ``model``, ``test_prediction`` (E, T) and ``result``;
    ``state`` (the training history object) is None.

    Raises:
        FileNotFoundError: no ``result.json``/``model.pt`` (a failed or unfinished cell).
        cellfit.data.CellDataError: the recording cannot be loaded or read.
    """
    from cellfit.fit.api import CellFit
    from cellfit.fit.fitter import FitConfig

    cell_dir = pathlib.Path(cell_dir)
    result, model = load_cell_fit(cell_dir)
    config = FitConfig.from_dict(result["config"])
    pred_file = cell_dir / "predictions.nwb"
    if recompute or not pred_file.exists():
        from cellfit.batch.store import read_config
        from cellfit.data import load_cell
        from cellfit.fit.api import score_model

        cache = cache_dir or (read_config(cell_dir.parent) or {}).get("cache_dir")
        rec = load_cell(int(result["specimen_id"]), dt_ms=config.dt_ms, window_s=float(result.get("window_s", 1.0)),
                        cache_dir=cache)
        _, pred = score_model(model, rec.normalised_current("test"), rec.test.spikes, config.dt_ms)
    else:
        rec, pred = _recording_from_predictions(pred_file, result)
    return CellFit(recording=rec, config=config, model=model, state=None, test_prediction=pred, result=result)


def _recording_from_predictions(path: pathlib.Path, result: dict):
    """A :class:`cellfit.data.CellRecording` holding the held-out set stored in ``predictions.nwb``."""
    from cellfit.data import CellMeta, CellRecording, TraceSet
    from cellfit.data.nwb2 import read_predictions_nwb2
    from cellfit.data.protocol import EPOCH_STARTS_S

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
    test = TraceSet(current_pA=current, voltage_mV=voltage, spikes=spikes, spike_times_s=times,
                    sweep_numbers=np.arange(r, dtype=np.int64), epoch_starts_s=starts, dt_ms=dt)
    empty = np.zeros((0, e, t), np.float32)
    train = TraceSet(current_pA=empty, voltage_mV=empty, spikes=empty, spike_times_s=(),
                     sweep_numbers=np.zeros(0, np.int64), epoch_starts_s=starts, dt_ms=dt)
    cls = result.get("cell_class") or "unknown"
    meta = CellMeta(specimen_id=int(result["specimen_id"]), name=str(result.get("specimen_name") or ""), species="",
                    layer=str(result.get("layer") or ""),
                    dendrite_type={"excitatory": "spiny", "inhibitory": "aspiny"}.get(cls, ""), cell_class=cls,
                    transgenic_line=str(result.get("transgenic_line") or ""), disease_state="",
                    v_rest_mV=float(result.get("v_rest_mV", np.nan)),
                    v_thresh_mV=float(result.get("v_thresh_mV", np.nan)))
    rec = CellRecording(meta=meta, dt_ms=dt, window_s=float(result.get("window_s", t * dt / 1000.0)), train=train,
                        test=test, current_scale_pA=float(result.get("current_scale_pA", np.nan)),
                        n_multi_spike_bins=0, source=str(path))
    pred = np.asarray(p["predicted_spikes"], dtype=np.float32)
    return rec, pred
