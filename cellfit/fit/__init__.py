"""Fitting ALIF neurons to recordings: losses and scores, the (multi-cell) fitter, results.

- :mod:`cellfit.fit.metrics`: van Rossum distance (training loss) and ETV (test score);
- :mod:`cellfit.fit.coincidence`: the coincidence factor Gamma and the repeat ceiling;
- :mod:`cellfit.fit.config`: :class:`FitConfig`, every choice of a fit, and the model it builds;
- :mod:`cellfit.fit.init`: starting values: tau_m, gain and bias from the voltage, then a grid;
- :mod:`cellfit.fit.loss`, :mod:`cellfit.fit.optim`: the coarse-to-fine loss and the cell-wise Adam;
- :mod:`cellfit.fit.fitter`: :func:`fit_population` (K cells at once, each on its own schedule);
- :mod:`cellfit.fit.api`: :func:`fit_cell`, :func:`fit_recordings`, :class:`ALIFFitter`;
- :mod:`cellfit.fit.results`: :class:`FitResult`, the typed record written as result.json;
- :mod:`cellfit.fit.outputs`: a cell's files (result.json, model.pt, predictions.nwb, figures);
- ``python -m cellfit.fit``: the command line (:mod:`cellfit.fit.__main__`).
"""

from cellfit._lazy import lazy_exports

# imported on first use (see cellfit._lazy): `python -m cellfit.fit` parses its
# arguments before torch is loaded
__getattr__, __dir__, _NAMES = lazy_exports(__name__, {
    "cellfit.fit.api": "ALIFFitter CellFit fit_cell fit_recordings model_from_result score_model",
    "cellfit.fit.config": "FitConfig",
    "cellfit.fit.fitter": "TrainingSet fit_population predict_spikes",
    "cellfit.fit.outputs": "load_cell_fit load_fit write_cell_outputs write_failed_result",
    "cellfit.fit.results": "FitResult read_result",
})

__all__ = _NAMES
