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

__all__ = ["write_cell_outputs", "load_cell_fit", "read_result", "RESULT_FILE"]

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
