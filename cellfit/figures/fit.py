"""Figures of one fitted cell: the held-out data against the model, and the training record.

Both take the records the fit produced and return a :class:`matplotlib.figure.Figure`
(object-oriented API: no pyplot, no backend switch, no global state).

- :func:`plot_fit` (``fit.png``): the held-out Noise 2 sweeps, which were never used for
  fitting: stimulus, recorded voltage of one repeat with the model's potential and
  threshold, spike rasters of every recorded repeat and of the model, and the firing
  rates (PSTH, Gaussian 10 ms: the smoothing of ETV), one column per noise epoch with
  that epoch's ETV.
- :func:`plot_training` (``training.png``): the training loss per epoch, coloured by
  loss stage (van Rossum time constant; losses of different stages are not comparable),
  and every fitted parameter over the epochs; the epoch whose parameters were kept (the
  best loss of the final stage) is marked.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
from matplotlib.figure import Figure

from cellfit.io import atomic_path

__all__ = ["plot_fit", "plot_training", "save_figure"]

_MODEL = "tab:red"
_THETA = "tab:blue"


def _fmt(value, spec: str = ".2f") -> str:
    return "n/a" if value is None or not np.isfinite(value) else format(value, spec)


def plot_fit(fit, max_ms: float | None = None) -> Figure:
    """Held-out data vs model for one cell (``fit.png``).

    Args:
        fit: a :class:`cellfit.fit.CellFit` (its ``figure_data()`` gives the model traces
            and rates; ``recording.test`` the held-out sweeps; ``result`` the scores).
        max_ms: show only the first ``max_ms`` of each epoch (default: all).

    Returns:
        The figure: rows current (pA), voltage (mV), raster, rate (Hz); one column per epoch.
    """
    rec, res = fit.recording, fit.result
    test = rec.test
    data = fit.figure_data()
    dt = rec.dt_ms
    R, E, T = test.spikes.shape
    n = T if max_ms is None else min(T, int(round(max_ms / dt)))
    t = np.arange(n) * dt
    sweeps = [int(s) for s in test.sweep_numbers]
    fig = Figure(figsize=(4.4 * E, 8.4), layout="constrained")
    axes = fig.subplots(4, E, sharex=True, squeeze=False, gridspec_kw=dict(height_ratios=[0.8, 1.5, 1.3, 1.1]))
    per_epoch = list(res.etv_per_epoch) + [None] * E
    for e in range(E):
        ax_i, ax_v, ax_r, ax_p = axes[:, e]
        ax_i.plot(t, test.current_pA[0, e, :n], lw=0.6, color="0.3")
        ax_v.plot(t, test.voltage_mV[0, e, :n], lw=0.6, color="k", label=f"recorded (sweep {sweeps[0]})")
        ax_v.plot(t, data["v_mV"][e, :n], lw=0.6, color=_MODEL, alpha=0.8, label="model V")
        ax_v.plot(t, data["theta_mV"][e, :n], lw=0.7, color=_THETA, ls="--", label="model threshold")
        for r in range(R):
            st = np.flatnonzero(test.spikes[r, e, :n]) * dt
            ax_r.vlines(st, r + 1.6, r + 2.4, color="k", lw=0.8)
        sp = np.flatnonzero(fit.test_prediction[e, :n] > 0.5) * dt
        ax_r.vlines(sp, 0.1, 0.9, color=_MODEL, lw=0.8)
        ax_r.set_ylim(0, R + 2.5)
        ax_r.set_yticks([0.5] + [r + 2 for r in range(R)], ["model"] + [f"sweep {s}" for s in sweeps], fontsize=7)
        ax_p.plot(t, data["recorded_rate_hz"][e, :n], color="k", lw=0.9, label=f"recorded (mean of {R})")
        ax_p.plot(t, data["model_rate_hz"][e, :n], color=_MODEL, lw=0.9, label="model")
        start = float(test.epoch_starts_s[e]) if len(test.epoch_starts_s) > e else float("nan")
        ax_i.set_title(f"epoch {e + 1} ({start:g}-{start + T * dt / 1000:g} s of the sweep): "
                       f"ETV {_fmt(per_epoch[e])}", fontsize=9)
        ax_p.set_xlabel("time in epoch (ms)")
        if e == 0:
            ax_i.set_ylabel("current (pA)")
            ax_v.set_ylabel("V (mV)")
            ax_r.set_ylabel("spikes")
            ax_p.set_ylabel("rate (Hz, 10 ms Gaussian)")
            ax_v.legend(fontsize=7, loc="upper right", frameon=False)
            ax_p.legend(fontsize=7, loc="upper right", frameon=False)
    fig.suptitle(
        f"specimen {res.specimen_id} ({res.cell_class}): held-out Noise 2 sweeps {sweeps} (not used for fitting)\n"
        f"ETV {_fmt(res.etv)} (repeat ceiling {_fmt(res.repeat_ceiling)}), Gamma {_fmt(res.gamma)} | "
        f"DT {res.dt_ms:g} ms, ARP {res.arp_ms:g} ms\n"
        f"{res.model or 'alif'}: tau_m {res.time_constant_text('tau_m_ms', '.1f')}, "
        f"tau_adapt {res.time_constant_text('tau_adapt_ms', '.0f')}, d {_fmt(res.adapt_scale)}"
        f"{res.other_bounds_text()}",
        fontsize=10,
    )
    return fig


_PARAM_LABELS = {"tau_m_ms": "tau_m (ms)", "tau_adapt_ms": "tau_adapt (ms)", "adapt_scale": "d (threshold units)",
                 "gain": "gain", "bias": "bias (threshold units)"}


def plot_training(result) -> Figure:
    """The training record of one cell (``training.png``): loss per stage and parameters per epoch.

    Args:
        result: a :class:`cellfit.fit.results.FitResult` with ``loss_history``,
            ``loss_stage``, ``loss_stages`` and ``param_history``.
    """
    loss = np.asarray(result.loss_history, dtype=float)
    stage = np.asarray(result.loss_stage, dtype=int) if len(result.loss_stage) == len(loss) else np.zeros(len(loss), int)
    epochs = np.arange(1, len(loss) + 1)
    names = [k for k in _PARAM_LABELS if k in result.param_history]
    fig = Figure(figsize=(10, 2.2 * (1 + (len(names) + 1) // 2)), layout="constrained")
    grid = fig.add_gridspec(1 + (len(names) + 1) // 2, 2)
    ax = fig.add_subplot(grid[0, :])
    colors = ["tab:purple", "tab:orange", "tab:green", "tab:blue", "tab:brown"]
    for i, st in enumerate(result.loss_stages):
        sel = stage == i
        ax.plot(epochs[sel], loss[sel], ".-", color=colors[i % len(colors)], ms=3, lw=0.8,
                label=f"van Rossum {st.van_rossum_tau_ms:g} ms (epochs {st.first_epoch}-{st.last_epoch}: {st.outcome})")
        if i:
            ax.axvline(st.first_epoch - 0.5, color="0.6", lw=0.6, ls=":")
    best = result.best_epoch
    if best:
        ax.axvline(best, color="k", lw=0.8, ls="--", label=f"kept: epoch {best}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(f"specimen {result.specimen_id}: training on Noise 1 ({result.stop_reason}); each stage has "
                 "its own loss scale", fontsize=9)
    for j, name in enumerate(names):
        a = fig.add_subplot(grid[1 + j // 2, j % 2])
        values = result.param_history[name]
        a.plot(epochs[: len(values)], values, color="k", lw=0.9)
        if best and best <= len(values):
            a.plot([best], [values[best - 1]], "o", color=_MODEL, ms=4)
        a.set_ylabel(_PARAM_LABELS[name], fontsize=8)
        a.set_xlabel("epoch", fontsize=8)
    return fig


def save_figure(fig: Figure, path: os.PathLike | str, dpi: int = 110) -> pathlib.Path:
    """Write ``fig`` as a PNG atomically (never a half-written image)."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return pathlib.Path(path)
