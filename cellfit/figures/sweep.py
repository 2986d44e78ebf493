"""Figures of a DT/ARP sweep (:mod:`cellfit.batch.sweep`): the Block paper's Figure 5b-f.

- :func:`plot_sweep_summary`: median held-out ETV against DT and against ARP, and the
  per-cell scatter of a fine against a coarse setting, with the paper's medians (a Figure);
- :func:`plot_sweep_rasters`: one cell's recorded and predicted held-out spikes at every
  setting (a Figure);
- :func:`plot_sweep`: the PNG files ``python -m pipelines.ephys_sweep`` writes
  (``etv_vs_dt.png``, ``etv_vs_arp.png``, ``etv_scatter.png``).

Built without pyplot (:class:`matplotlib.figure.Figure`): no global matplotlib state changes.
ETV is the held-out explained temporal variance; DT and ARP in ms.
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import Optional

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cellfit.batch.sweep import _arp_for_dt, sweep_table
from cellfit.figures.common import grid_figure, plain_log, save_png
from cellfit.figures.panel import CLASS_COLORS, PAPER_ETV, class_color

__all__ = ["plot_sweep_summary", "plot_sweep_rasters", "plot_sweep"]


def _default_arp_sweep_dt(table: pd.DataFrame) -> Optional[float]:
    """The DT with the most ARP settings (the smallest DT on a tie)."""
    if table.empty:
        return None
    counts = table.groupby("dt_ms")["arp_ms"].nunique()
    return float(counts[counts == counts.max()].index.min())


def _default_scatter(table: pd.DataFrame):
    """Figure 5c's pair: the finest DT at ARP 4 ms against DT 4 ms at ARP 4 ms, or what comes closest."""
    have = {(float(d), float(a)) for d, a in zip(table.dt_ms, table.arp_ms)}
    if len(have) < 2:
        return None
    coarse = (4.0, 4.0) if (4.0, 4.0) in have else max(have)
    fine_arp = [s for s in have if math.isclose(s[1], coarse[1]) and s != coarse]
    fine = min(fine_arp) if fine_arp else min(s for s in have if s != coarse)
    return fine, coarse


def plot_sweep_summary(df: pd.DataFrame, *, arp_sweep_dt: Optional[float] = None, scatter=None, paper: bool = True):
    """The paper's Figure 5c, e, f from a sweep table (:func:`cellfit.batch.sweep.collect`).

    Panels: median held-out ETV (error bars: standard error of the median, as
    :func:`cellfit.batch.sweep.sweep_table`) against DT with ARP = max(2 ms, DT);
    against ARP at ``arp_sweep_dt`` (default: the DT with the most ARPs); and per cell,
    the fine against the coarse setting of ``scatter = ((dt, arp), (dt, arp))`` (default:
    the finest DT at ARP 4 ms against DT 4 ms at ARP 4 ms, the paper's pair when DT 0.1 ms
    was swept). ``paper`` marks the paper's medians (stars, 146 V1 cells: :data:`PAPER_ETV`).
    """
    table = sweep_table(df)
    fig, axes = grid_figure(3, 3.6, 3.3)
    star = dict(marker="*", s=110, color="goldenrod", edgecolors="k", lw=0.5, zorder=5)
    # (f) ETV vs DT
    ax = axes[0]
    rows = table[[math.isclose(a, _arp_for_dt(d)) for d, a in zip(table.dt_ms, table.arp_ms)]].sort_values("dt_ms")
    if len(rows):
        ax.errorbar(rows.dt_ms, rows.median_etv, yerr=rows.se_etv, marker="o", capsize=3, color="k", label="this run")
    if paper:
        ax.scatter([0.1, 4.0], [PAPER_ETV[(0.1, 2.0)], PAPER_ETV[(4.0, 4.0)]], label="paper", **star)
    ax.set_xscale("log")
    plain_log(ax, "x")
    ax.set_xlabel("DT (ms), ARP = max(2, DT) ms")
    ax.set_ylabel("median held-out ETV")
    ax.set_title("ETV vs DT (Fig. 5f)", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    # (e) ETV vs ARP
    ax = axes[1]
    dt_a = arp_sweep_dt if arp_sweep_dt is not None else _default_arp_sweep_dt(table)
    if dt_a is not None:
        rows = table[np.isclose(table.dt_ms, dt_a)].sort_values("arp_ms")
        ax.errorbar(rows.arp_ms, rows.median_etv, yerr=rows.se_etv, marker="o", capsize=3, color="k",
                    label=f"this run, DT {dt_a:g} ms")
    if paper:
        ax.scatter([2.0, 4.0], [PAPER_ETV[(0.1, 2.0)], PAPER_ETV[(0.1, 4.0)]], label="paper, DT 0.1 ms", **star)
    ax.set_xscale("log", base=2)
    plain_log(ax, "x")
    ax.set_xlabel("ARP (ms)")
    ax.set_title("ETV vs ARP (Fig. 5e)", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    # (c) per-cell scatter
    ax = axes[2]
    pair = scatter if scatter is not None else _default_scatter(table)
    if pair is not None:
        (dt_f, arp_f), (dt_c, arp_c) = pair
        ok = df[df["status"] == "ok"]

        def pick(dt, arp):
            sel = ok[np.isclose(ok.dt_ms.astype(float), dt) & np.isclose(ok.arp_ms.astype(float), arp)]
            return sel.set_index("specimen_id")[["etv", "cell_class"]]

        both = pick(dt_f, arp_f).join(pick(dt_c, arp_c)["etv"].rename("coarse"), how="inner")
        both = both.astype({"etv": float, "coarse": float})
        ax.scatter(both.coarse, both.etv, s=22, c=[class_color(c) for c in both.cell_class], zorder=3)
        if paper:
            ax.scatter([PAPER_ETV[(4.0, 4.0)]], [PAPER_ETV[(0.1, 4.0)]], label="paper medians", **star)
            ax.legend(fontsize=7, frameon=False)
        vals = np.r_[both.coarse.to_numpy(), both.etv.to_numpy(), 0.0, 1.0]
        lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
        ax.plot([lo, hi], [lo, hi], lw=0.8, color="0.5")
        ax.set_xlabel(f"ETV, DT {dt_c:g} ms (ARP {arp_c:g} ms)")
        ax.set_ylabel(f"ETV, DT {dt_f:g} ms (ARP {arp_f:g} ms)")
        better = int((both.etv > both.coarse).sum())
        ax.set_title(f"per cell (Fig. 5c): {better} of {len(both)} better at the finer DT", fontsize=9)
    else:
        ax.text(0.5, 0.5, "needs two settings", ha="center", va="center", transform=ax.transAxes)
    for a in axes:
        a.grid(alpha=0.3, which="both")
    n = int(table.n_cells.max()) if len(table) else 0
    fig.suptitle(f"held-out ETV over DT and ARP ({n} cells per setting at most)", fontsize=10)
    return fig


def plot_sweep_rasters(found, specimen_id: int, *, epoch: int = -1, max_ms: Optional[float] = None):
    """One cell's held-out spikes, recorded and predicted at several (DT, ARP) settings (Figure 5b).

    Top: the recorded repeats (black, from the finest DT) above each setting's prediction
    (one row per setting, labelled with its held-out ETV); bottom: the injected current.

    Args:
        found: ``[(dt_ms, arp_ms, result, predictions), ...]`` finest DT first, as
            :func:`cellfit.batch.sweep.sweep_predictions` reads them from a sweep directory.
        specimen_id: the cell.
        epoch: noise epoch (0, 1, 2: the three amplitudes, lowest first; default the highest).
        max_ms: show only the first ``max_ms`` of the epoch.
    """
    if not found:
        raise ValueError(f"no predictions of specimen {specimen_id} to plot")
    fig = Figure(figsize=(9.0, 1.2 + 0.32 * (len(found) + 4)), layout="constrained")
    ax_r, ax_i = fig.subplots(2, 1, sharex=True, gridspec_kw=dict(height_ratios=[len(found) + 3, 2]))
    fine = found[0]
    epoch = epoch % np.asarray(fine[3]["recorded_spikes"]).shape[1]
    rec = np.asarray(fine[3]["recorded_spikes"])[:, epoch]
    dt_f = float(fine[3]["dt_ms"])
    end = rec.shape[-1] * dt_f if max_ms is None else float(max_ms)
    labels, y = [], 0
    for r in range(rec.shape[0]):
        t = np.flatnonzero(rec[r]) * dt_f
        ax_r.vlines(t[t < end], y + 0.1, y + 0.9, color="k", lw=0.8)
        labels.append((y + 0.5, f"recorded {r + 1}"))
        y += 1
    colors = [CLASS_COLORS["inhibitory"], "#d35400", "#27ae60", "#8e44ad", "#7f8c8d", "#16a085", "#c0392b"]
    for i, (dt, arp, result, pred) in enumerate(found):
        p = np.asarray(pred["predicted_spikes"])[epoch]
        t = np.flatnonzero(p > 0.5) * float(pred["dt_ms"])
        ax_r.vlines(t[t < end], y + 0.1, y + 0.9, color=colors[i % len(colors)], lw=0.8)
        etv = result.etv
        labels.append((y + 0.5, f"DT {dt:g}, ARP {arp:g} ms" + (f": ETV {etv:.2f}" if etv is not None else "")))
        y += 1
    ax_r.set_yticks([p for p, _ in labels], [s for _, s in labels], fontsize=7)
    ax_r.set_ylim(y, 0)
    cur = np.asarray(fine[3]["current"])
    cur = cur[0, epoch] if cur.ndim == 3 else cur[epoch]
    t = np.arange(cur.shape[-1]) * dt_f
    ax_i.plot(t[t < end], cur[t < end], lw=0.6, color="0.3")
    ax_i.set_ylabel("current (pA)", fontsize=8)
    ax_i.set_xlabel(f"time in epoch {epoch + 1} (ms)")
    ax_i.set_xlim(0, end)
    cls = found[0][2].cell_class
    fig.suptitle(f"specimen {specimen_id} ({cls}): held-out spikes, recorded and predicted per setting", fontsize=10)
    return fig


def plot_sweep(df: pd.DataFrame, out_dir: os.PathLike | str, *, arp_sweep_dt: float = 0.1,
               scatter: tuple[tuple[float, float], tuple[float, float]] = ((0.1, 4.0), (4.0, 4.0))) -> list[pathlib.Path]:
    """Write etv_vs_dt.png, etv_vs_arp.png and etv_scatter.png (per-cell ETV, two settings); return their paths.

    ``df``: a sweep table (:func:`cellfit.batch.sweep.collect`). The curves are the median
    held-out ETV per setting with its standard error (:func:`cellfit.batch.sweep.sweep_table`).
    """
    out_dir = pathlib.Path(out_dir)
    table = sweep_table(df)
    paths = []
    dt_rows = table[[math.isclose(a, _arp_for_dt(d)) for d, a in zip(table.dt_ms, table.arp_ms)]]
    arp_rows = table[np.isclose(table.dt_ms, arp_sweep_dt)]
    for rows, x, name, label in ((dt_rows, "dt_ms", "etv_vs_dt.png", "DT (ms), ARP = max(2, DT)"),
                                 (arp_rows, "arp_ms", "etv_vs_arp.png", f"ARP (ms), DT = {arp_sweep_dt:g} ms")):
        if rows.empty:
            continue
        rows = rows.sort_values(x)
        fig = Figure(figsize=(4.2, 3.2), layout="tight")
        ax = fig.subplots()
        ax.errorbar(rows[x], rows.median_etv, yerr=rows.se_etv, marker="o", capsize=3, color="k")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("median held-out ETV")
        ax.set_title(f"{int(rows.n_cells.max())} cells", fontsize=9)
        paths.append(save_png(fig, out_dir / name))
    (dt_a, arp_a), (dt_b, arp_b) = scatter
    ok = df[df.status == "ok"]
    a = ok[np.isclose(ok.dt_ms, dt_a) & np.isclose(ok.arp_ms, arp_a)].set_index("specimen_id")["etv"]
    b = ok[np.isclose(ok.dt_ms, dt_b) & np.isclose(ok.arp_ms, arp_b)].set_index("specimen_id")["etv"]
    both = a.to_frame("a").join(b.to_frame("b"), how="inner")
    if not both.empty:
        fig = Figure(figsize=(3.6, 3.6), layout="tight")
        ax = fig.subplots()
        ax.scatter(both.b, both.a, s=14, color="k")
        lo = float(min(both.min().min(), 0.0))
        hi = float(max(both.max().max(), 1.0))
        ax.plot([lo, hi], [lo, hi], lw=0.8, color="0.5")
        ax.set_xlabel(f"ETV, DT {dt_b:g} ms (ARP {arp_b:g} ms)")
        ax.set_ylabel(f"ETV, DT {dt_a:g} ms (ARP {arp_a:g} ms)")
        paths.append(save_png(fig, out_dir / "etv_scatter.png"))
    return paths
