r"""Spike-timing scores beside ETV: the coincidence factor Gamma and the repeat ceiling.

**Coincidence factor** (Kistler, Gerstner & van Hemmen 1997, Neural Comput. 9:1015;
the score of the spike-timing prediction challenges, Jolivet et al. 2008). For a
recorded train with :math:`N_\text{data}` spikes and a predicted train with
:math:`N_\text{model}` spikes over a duration :math:`D`,

.. math::
    \Gamma = \frac{N_\text{coinc} - \langle N_\text{coinc} \rangle}
                  {\tfrac12 (N_\text{data} + N_\text{model})} \cdot \frac{1}{\mathcal N},
    \qquad \langle N_\text{coinc} \rangle = 2 \nu \Delta N_\text{data},
    \qquad \mathcal N = 1 - 2 \nu \Delta,

with :math:`\nu = N_\text{model} / D` the predicted rate and :math:`N_\text{coinc}`
the number of recorded spikes matched by a predicted spike within :math:`\pm\Delta`
(one-to-one, in time order). :math:`\Gamma = 1` for identical trains, about 0 for a
Poisson train of the same rate (chance), and it can be negative. Several epochs
(stimulus segments) are scored together by summing the counts and durations.

Recorded repeats are not identical, so, as ETV, Gamma is normalised by the
recordings' own agreement: ``gamma = gamma_model / gamma_reliability`` with
``gamma_model`` the mean of :math:`\Gamma(\text{prediction}, \text{repeat}_r)` over
repeats and ``gamma_reliability`` the mean of :math:`\Gamma(\text{repeat}_j,
\text{repeat}_i)` over ordered pairs of distinct repeats (repeat j in the role of the
prediction). 1 means "predicts the cell as well as the cell predicts itself".

**Repeat ceiling**: the ETV that one recorded repeat reaches as the prediction of
the others, averaged over which repeat is left out. For repeats that differ only by
noise its expectation is 1 (one repeat agrees with the others as well as they agree
with each other); it departs from 1 when repeats differ systematically (drift,
run-down). It is the reference for "as good as a repeat of the experiment": a model at
0.9 of the ceiling predicts the cell almost as well as the cell predicts itself. A
noise-free model can exceed it (it does not carry a single repeat's noise).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cellfit.fit.metrics import etv_components

__all__ = ["GammaResult", "coincidences", "coincidence_factor", "gamma_components", "repeat_ceiling"]

#: coincidence window of the standard Gamma, ms (+- 4 ms; Jolivet et al. 2008 used 2 ms at
#: higher time resolution; 4 ms is the common choice for noise-driven cortical recordings)
GAMMA_WINDOW_MS = 4.0


class GammaResult(NamedTuple):
    """Coincidence factor of a prediction and its normalisation (dimensionless)."""

    gamma: float
    """``gamma_model / gamma_reliability``: 1 is as good as the cell's own repeat-to-repeat agreement."""
    gamma_model: float
    """Mean over recorded repeats of Gamma(prediction, repeat)."""
    gamma_reliability: float
    """Mean over ordered pairs of distinct repeats of Gamma(repeat_j, repeat_i)."""


def coincidences(data_t: np.ndarray, model_t: np.ndarray, window: float) -> int:
    """Recorded spikes matched one-to-one by a predicted spike within ``+-window`` (same units, sorted)."""
    i = j = n = 0
    while i < len(data_t) and j < len(model_t):
        d = model_t[j] - data_t[i]
        if d < -window:
            j += 1
        elif d > window:
            i += 1
        else:
            n += 1
            i += 1
            j += 1
    return n


def coincidence_factor(data_trains, model_trains, duration: float, window: float = GAMMA_WINDOW_MS) -> float:
    """Gamma between recorded and predicted trains, pooled over epochs.

    Args:
        data_trains: sequence (one per epoch) of sorted 1-D arrays of recorded spike times.
        model_trains: the predicted spike times of the same epochs, same units.
        duration: length of one epoch, same units as the times.
        window: coincidence half-width (default 4, in ms when times are ms).

    Returns:
        Gamma (float); NaN when neither train has a spike.
    """
    n_coinc = n_data = n_model = 0
    for d, m in zip(data_trains, model_trains):
        n_coinc += coincidences(np.asarray(d, float), np.asarray(m, float), window)
        n_data += len(d)
        n_model += len(m)
    total = duration * len(data_trains)
    if n_data + n_model == 0 or total <= 0:
        return float("nan")
    rate = n_model / total
    norm = 1.0 - 2.0 * rate * window
    if norm <= 0:  # the model fires so often that every spike is a chance coincidence
        return 0.0
    expected = 2.0 * rate * window * n_data
    return float((n_coinc - expected) / (0.5 * (n_data + n_model)) / norm)


def _times(spikes: np.ndarray, dt_ms: float) -> list[np.ndarray]:
    """(E, T) 0/1 bins -> E arrays of spike times in ms (bin index x dt)."""
    return [np.flatnonzero(row > 0.5) * dt_ms for row in np.asarray(spikes)]


def gamma_components(pred_spikes, recorded_spikes, dt_ms: float, window_ms: float = GAMMA_WINDOW_MS) -> GammaResult:
    """Normalised coincidence factor of a binned prediction against recorded repeats.

    Args:
        pred_spikes: ``(n_epochs, T)`` predicted spikes (0/1 per bin), or ``(n_repeats,
            n_epochs, T)`` with one prediction per repeat (each repeat's own stimulus).
        recorded_spikes: ``(n_repeats, n_epochs, T)`` recorded spikes, n_repeats >= 2.
        dt_ms: bin width, ms; spike times are bin index x ``dt_ms``.
        window_ms: coincidence half-width, ms.

    Returns:
        :class:`GammaResult`.

    Raises:
        ValueError: fewer than 2 repeats, shape mismatch, or no repeat-to-repeat agreement
            (``gamma_reliability`` <= 0 or undefined), which leaves Gamma undefined.
    """
    rec = np.asarray(recorded_spikes)
    pred = np.asarray(pred_spikes)
    if rec.ndim != 3 or rec.shape[0] < 2:
        raise ValueError(f"recorded_spikes must be (n_repeats >= 2, n_epochs, T), got shape {rec.shape}")
    if pred.shape not in (rec.shape[1:], rec.shape):
        raise ValueError(f"pred_spikes {pred.shape} must be (n_epochs, T) or (n_repeats, n_epochs, T) = {rec.shape}")
    preds = [pred] * rec.shape[0] if pred.ndim == 2 else list(pred)
    duration = rec.shape[-1] * dt_ms
    rec_t = [_times(r, dt_ms) for r in rec]
    model = [coincidence_factor(rt, _times(p, dt_ms), duration, window_ms) for rt, p in zip(rec_t, preds)]
    pairs = [coincidence_factor(rec_t[i], rec_t[j], duration, window_ms)
             for i in range(len(rec_t)) for j in range(len(rec_t)) if i != j]
    reliability = float(np.nanmean(pairs)) if not np.all(np.isnan(pairs)) else float("nan")
    if not reliability > 0:
        raise ValueError(f"recorded repeats do not agree with each other (mean pairwise Gamma {reliability:.3g}), "
                         "so the normalised coincidence factor is undefined")
    gamma_model = float(np.mean(np.nan_to_num(model, nan=0.0)))
    return GammaResult(gamma=gamma_model / reliability, gamma_model=gamma_model, gamma_reliability=reliability)


def repeat_ceiling(recorded_spikes, dt_ms: float, sigma_ms: float = 10.0) -> float:
    """ETV of one recorded repeat predicting the other repeats, averaged over the left-out repeat.

    Args:
        recorded_spikes: ``(n_repeats, n_epochs, T)``, n_repeats >= 3 (the others need >= 2
            repeats for their own reliability).

    Returns:
        The mean ETV (NaN with fewer than 3 repeats or when no subset of the others is reliable).
    """
    rec = np.asarray(recorded_spikes)
    if rec.ndim != 3 or rec.shape[0] < 3:
        return float("nan")
    scores = []
    for r in range(rec.shape[0]):
        try:
            scores.append(etv_components(rec[r], np.delete(rec, r, axis=0), dt_ms, sigma_ms).etv)
        except ValueError:
            continue
    return float(np.mean(scores)) if scores else float("nan")
