"""Figures of a fitted cell (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_fit"]


def plot_fit(fit, max_ms: float | None = None):
    """Held-out stimulus, recorded voltage, and recorded vs predicted spike rasters per amplitude.

    Like Figure 5b of the Block paper: one column per noise epoch (amplitude); rows are
    the injected current (pA), the first repeat's membrane potential (mV), and a raster
    with every recorded repeat (black) above the model's prediction (red).

    Args:
        fit: a :class:`cellfit.fit.api.CellFit`.
        max_ms: show only the first ``max_ms`` of each epoch (default: all).

    Returns:
        A matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rec = fit.recording
    test = rec.test
    dt = rec.dt_ms
    R, E, T = test.spikes.shape
    n_show = T if max_ms is None else min(T, int(round(max_ms / dt)))
    t = np.arange(n_show) * dt
    fig, axes = plt.subplots(
        3, E, figsize=(4.2 * E, 6.0), sharex=True, squeeze=False,
        gridspec_kw=dict(height_ratios=[1.0, 1.4, 1.6]),
    )
    res = fit.result
    for e in range(E):
        ax_i, ax_v, ax_r = axes[0, e], axes[1, e], axes[2, e]
        ax_i.plot(t, test.current_pA[0, e, :n_show], lw=0.6, color="0.3")
        ax_v.plot(t, test.voltage_mV[0, e, :n_show], lw=0.6, color="k")
        ax_v.axhline(rec.meta.v_thresh_mV, lw=0.6, ls="--", color="tab:blue")
        for r in range(R):
            st = np.flatnonzero(test.spikes[r, e, :n_show]) * dt
            ax_r.vlines(st, r + 1.6, r + 2.4, color="k", lw=0.8)
        sp = np.flatnonzero(fit.test_prediction[e, :n_show] > 0.5) * dt
        ax_r.vlines(sp, 0.1, 0.9, color="tab:red", lw=0.8)
        ax_r.set_ylim(0, R + 2.5)
        ax_r.set_yticks([0.5] + [r + 2 for r in range(R)], ["model"] + [f"rec {r + 1}" for r in range(R)], fontsize=7)
        start = float(test.epoch_starts_s[e]) if len(test.epoch_starts_s) > e else float("nan")
        ax_i.set_title(f"epoch {e + 1} (from {start:g} s)", fontsize=9)
        ax_r.set_xlabel("time in epoch (ms)")
        if e == 0:
            ax_i.set_ylabel("current (pA)")
            ax_v.set_ylabel("V (mV)")
    fig.suptitle(
        f"specimen {res['specimen_id']} ({res.get('cell_class', '?')}): held-out ETV {res['etv']:.2f}; "
        f"tau_m {res['tau_m_ms']:.1f} ms, tau_adapt {res['tau_adapt_ms']:.0f} ms, d {res['adapt_scale']:.2f}; "
        f"DT {res['dt_ms']:g} ms, ARP {res['arp_ms']:g} ms",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
