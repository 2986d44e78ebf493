"""Speed figures and tables: benchmark CSVs, per-grid speedup plots, and the paper's numbers beside ours.

:mod:`cellfit.bench` writes the benchmark tables (``python -m pipelines.benchmark``,
columns :data:`cellfit.bench.report.CSV_COLUMNS`). This module draws a run's own figures
(:func:`plot_speedups`: the layout of the paper's Figure 3a/3b, written as PNG files by the
command line) and reads one or many of those CSVs to set them beside the published numbers
(the paper's Figure 3, and the published Block implementation measured once when this project
started, listed in :data:`PAPER_SPEEDUPS` with their source):

>>> from cellfit.figures.speed import load_benchmarks, speedup_vs_paper, plot_speedup_overview
>>> df = load_benchmarks("benchmarks/cpu")            # every results.csv below the folder
>>> speedup_vs_paper(df)                               # one row per published number
>>> plot_speedup_overview(df).savefig("speedup.png")   # vs ARP, T and batch, paper marked

Speedup = standard engine's median time / Block engine's median time for the same
configuration (the CSV's ``speedup_fwd`` = inference, ``speedup_fwd_bwd`` = training step).
Figures are built without pyplot (:class:`matplotlib.figure.Figure`): no global matplotlib
state changes.
"""

from __future__ import annotations

import os
import pathlib
from typing import Iterable, Union

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from cellfit.bench.report import speedup_table
from cellfit.figures.common import save_png

__all__ = ["PAPER_SPEEDUPS", "load_benchmarks", "speedup_vs_paper", "plot_speedup_overview", "plot_speedups"]

#: published speedups of Block over standard ALIF. ``measure``: ``fwd_bwd`` (training step) or
#: ``fwd`` (inference); the other keys select the matching configurations of a benchmark table.
#: published speedups of the Block algorithm (Taylor et al., NeurIPS 2023) and of its published code
#: (github.com/webstorms/Blocks), timed once when this project started (one run each; the GPU an
#: H100, the CPU a 2-core machine like this project's CI); the numbers are the sources' own.
PAPER_SPEEDUPS = (
    dict(claim="training, T=2048 (largest ARP)", source="paper Fig. 3a, GPU (2023)", measure="fwd_bwd",
         value=53.0, task="spike_count", T=2048),
    dict(claim="training, T=512 (largest ARP)", source="paper Fig. 3a, GPU (2023)", measure="fwd_bwd",
         value=36.0, task="spike_count", T=512),
    dict(claim="inference, up to", source="paper section 4.1, GPU (2023)", measure="fwd", value=40.0,
         task="spike_count"),
    dict(claim="training, T=1024, ARP 40, batch 64, 128 rec. neurons", source="reference code on an H100 "
         "(1.78 s / 0.077 s)", measure="fwd_bwd", value=1.78 / 0.077, task="spike_count", T=1024, arp_steps=40,
         batch=64, hidden=128, layers=1),
    dict(claim="training, T=2048, ARP 40, batch 64, 128 rec. neurons", source="reference code on an H100 "
         "(3.57 s / 0.178 s)", measure="fwd_bwd", value=3.57 / 0.178, task="spike_count", T=2048, arp_steps=40,
         batch=64, hidden=128, layers=1),
    dict(claim="single-cell fit epoch (3 x 10,000 steps, DT 0.1 ms, ARP 2 ms)", source="reference code on a "
         "2-core CPU (4.3 s / 0.75 s)", measure="fwd_bwd", value=4.3 / 0.75, task="fit_cell"),
)
_SELECT = ("task", "T", "arp_steps", "batch", "hidden", "layers")

PathLike = Union[str, os.PathLike]


def load_benchmarks(paths: Union[PathLike, Iterable[PathLike]]) -> pd.DataFrame:
    """Read benchmark CSVs: a ``results.csv``, a folder (every ``results.csv`` below it), or a list of them.

    Adds a ``source`` column (the folder holding each CSV). Raises ``FileNotFoundError``
    when no CSV is found.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[pathlib.Path] = []
    for p in map(pathlib.Path, paths):
        files.extend(sorted(p.rglob("results.csv")) if p.is_dir() else [p])
    files = [f for f in files if f.exists()]
    if not files:
        raise FileNotFoundError(f"no benchmark results.csv in {', '.join(map(str, paths))}")
    frames = []
    for f in files:
        df = pd.read_csv(f)
        df.insert(0, "source", f.parent.name)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out["recurrent"] = out["recurrent"].astype(str).str.lower().isin(("true", "1"))
    return out


def _blocks(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["engine"] == "blocks"]


def speedup_vs_paper(df: pd.DataFrame) -> pd.DataFrame:
    """Each published speedup (:data:`PAPER_SPEEDUPS`) beside the best matching one of ``df``.

    For each row, ``ours`` is the largest speedup among the Block rows of ``df`` that match
    the row's configuration keys (task, T, ARP, batch, network); ``ours_config`` says which
    configuration and ``device`` where it ran. NaN where ``df`` has no such configuration.
    """
    b = _blocks(df)
    rows = []
    for claim in PAPER_SPEEDUPS:
        sel = b
        for key in _SELECT:
            if key in claim:
                sel = sel[sel[key] == claim[key]]
        col = f"speedup_{claim['measure']}"
        sel = sel.dropna(subset=[col])
        row = dict(claim=claim["claim"], measure="training step" if claim["measure"] == "fwd_bwd" else "inference",
                   paper=round(claim["value"], 1), source=claim["source"], ours=np.nan, ours_config="not measured",
                   device="")
        if len(sel):
            best = sel.loc[sel[col].idxmax()]
            row.update(ours=round(float(best[col]), 2), device=str(best["device_name"]),
                       ours_config=f"T={best['T']}, ARP={best['arp_steps']}, batch={best['batch']}, "
                                   f"{best['hidden']}x{best['layers']} {'rec' if best['recurrent'] else 'ff'}")
        rows.append(row)
    return pd.DataFrame(rows)


def _reference_network(b: pd.DataFrame) -> pd.DataFrame:
    """Rows of the most common network (inputs, units, layers, connectivity) of the synthetic task."""
    syn = b[b["task"] == "spike_count"] if (b["task"] == "spike_count").any() else b
    keys = ["n_in", "hidden", "layers", "recurrent"]
    common = syn.groupby(keys).size().idxmax()
    mask = np.logical_and.reduce([syn[k] == v for k, v in zip(keys, common)])
    return syn[mask]


def plot_speedup_overview(df: pd.DataFrame, paper: bool = True):
    """Speedup against ARP, simulation length T and batch size, training (solid) and inference (dashed).

    Uses the synthetic-task rows of the most common network in ``df``: against ARP one line
    per T (at the batch with the most ARPs measured); against T one line per batch and
    against batch one line per T, both at the largest ARP measured for every T. With
    ``paper``, the paper's 53x (training, T=2048), 36x (training, T=512) and 40x (inference)
    are marked. Logarithmic speedup axis; the dotted line at 1 is no speedup.
    """
    blocks = _blocks(df).dropna(subset=["speedup_fwd", "speedup_fwd_bwd"], how="all")
    if blocks.empty:
        raise ValueError("no Block-engine rows with speedups in this table")
    ref = _reference_network(blocks)
    fig = Figure(figsize=(12.0, 3.8), layout="constrained")
    ax_a, ax_t, ax_b = fig.subplots(1, 3, sharey=True)
    cmap = {T: c for T, c in zip(sorted(ref["T"].unique()), ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e",
                                                              "#e6ab02", "#a6761d"))}
    styles = (("speedup_fwd_bwd", "-", "o"), ("speedup_fwd", "--", "s"))

    def draw(ax, data, x, color, label):
        data = data.groupby(x, as_index=False)[["speedup_fwd_bwd", "speedup_fwd"]].median().sort_values(x)
        for col, ls, marker in styles:
            ax.plot(data[x], data[col], ls=ls, marker=marker, color=color, mfc=color if ls == "-" else "white",
                    label=label if ls == "-" else None)

    for T, g in ref.groupby("T"):
        n_arps = g.groupby("batch")["arp_steps"].nunique()
        batch = max(n_arps[n_arps == n_arps.max()].index)  # the batch with most ARPs, the largest on a tie
        draw(ax_a, g[g["batch"] == batch], "arp_steps", cmap[T], f"T={T} (batch {batch})")
    # one ARP for the other two panels: the largest measured at every T, else the most common one
    per_t = [set(g) for _, g in ref.groupby("T")["arp_steps"]]
    common = set.intersection(*per_t)
    arp = max(common) if common else ref["arp_steps"].mode().iloc[0]
    at = ref[ref["arp_steps"] == arp]
    greys = dict(zip(sorted(at["batch"].unique()), ("0.6", "0.35", "0.0", "0.5", "0.2")))
    for batch, g in at.groupby("batch"):
        draw(ax_t, g, "T", greys.get(batch, "k"), f"batch {batch} (ARP {arp})")
    for T, g in at.groupby("T"):
        draw(ax_b, g, "batch", cmap[T], f"T={T} (ARP {arp})")
    for ax in (ax_a, ax_t, ax_b):
        ax.set_yscale("log")
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    if paper:
        for ax in (ax_a, ax_b):
            for value, text, va in ((53, "paper: 53x training, T=2048", "bottom"),
                                    (40, "paper: 40x inference", "bottom"),
                                    (36, "paper: 36x training, T=512", "top")):
                ax.axhline(value, color="goldenrod", lw=0.9, ls="--" if "inference" in text else "-")
                if ax is ax_a:
                    ax.text(ax.get_xlim()[0], value, f" {text}", fontsize=6.5, va=va, color="darkgoldenrod")
        ax_t.scatter([512, 2048], [36, 53], marker="*", s=120, color="goldenrod", edgecolors="k", lw=0.5, zorder=5,
                     label="paper (training, GPU)")
    net = ref.iloc[0]
    for ax, xlabel, title in ((ax_a, "ARP (time steps)", "speedup vs ARP"), (ax_t, "simulation length T (steps)",
                              "speedup vs T"), (ax_b, "batch size", "speedup vs batch")):
        ax.axhline(1.0, color="0.4", lw=0.8, ls=":")
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, which="both")
        handles, labels = ax.get_legend_handles_labels()
        if ax is ax_a:
            handles += [Line2D([], [], color="0.3", ls="-", marker="o"),
                        Line2D([], [], color="0.3", ls="--", marker="s", mfc="white")]
            labels += ["training step", "inference"]
        ax.legend(handles, labels, fontsize=6.5, frameon=False, loc="center right")
    ax_a.set_ylabel("speedup (standard / Block)")
    devices = ", ".join(sorted(ref["device_name"].astype(str).unique()))
    kind = "recurrent" if net["recurrent"] else "feedforward"
    fig.suptitle(f"Block vs standard ALIF ({net['hidden']} x {net['layers']} {kind}, {net['n_in']} inputs) "
                 f"on {devices}", fontsize=10)
    return fig


def plot_speedups(df: pd.DataFrame, out_dir: os.PathLike | str) -> list[pathlib.Path]:
    """Speedup plots in the style of the paper's Figure 3; returns the written PNG paths.

    - ``speedup_vs_arp.png``: speedup (standard / blocks median time) against ARP steps,
      one panel per simulation length T, one line per batch size (and network size),
      for the training step (top) and inference (bottom);
    - ``speedup_vs_size.png`` (only when hidden units or layers vary): speedup against
      hidden units, one line per number of layers (and connectivity), at fixed T/ARP/batch.

    Nothing is written if the table has no pair of blocks and standard timings.
    """
    sp = speedup_table(df).dropna(subset=["speedup_fwd", "speedup_fwd_bwd"], how="all")
    if sp.empty:
        return []
    out_dir = pathlib.Path(out_dir)
    written = []
    measures = (("speedup_fwd_bwd", "training step (fwd+bwd)"), ("speedup_fwd", "inference (fwd)"))

    # Speedup vs ARP: lines over ARP for each (batch, size, connectivity); prefer lines with >= 2 ARPs.
    line_keys = ["batch", "n_in", "hidden", "layers", "recurrent", "task"]
    groups = sp.groupby(["T"] + line_keys, sort=True)
    multi = [k for k, g in groups if g["arp_steps"].nunique() >= 2]
    keep = set(multi) if multi else {k for k, _ in groups}
    lengths = sorted(sp["T"].unique())
    fig = Figure(figsize=(max(5.5, 4.2 * len(lengths)), 6.5), layout="constrained")
    axes = fig.subplots(2, len(lengths), squeeze=False)
    for col, T in enumerate(lengths):
        for row, (measure, title) in enumerate(measures):
            ax = axes[row][col]
            for key, g in groups:
                if key[0] != T or key not in keep:
                    continue
                g = g.sort_values("arp_steps")
                _, batch, n_in, hidden, layers, rec, task = key
                label = f"batch {batch}, {hidden}x{layers} {'rec' if rec else 'ff'}"
                ax.plot(g["arp_steps"], g[measure], marker="o", label=label)
            ax.axhline(1.0, color="grey", lw=0.8, ls=":")
            ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1.2))
            ax.set_title(f"T = {T}: {title}", fontsize=9)
            ax.set_xlabel("ARP (time steps)")
            if col == 0:
                ax.set_ylabel("speedup (standard / blocks)")
            ax.grid(alpha=0.3)
            if row == 0 and col == len(lengths) - 1:
                ax.legend(fontsize=7)
    devices = ", ".join(sorted(df["device_name"].unique()))
    fig.suptitle(f"Block vs standard ALIF speedup ({devices})", fontsize=10)
    written.append(save_png(fig, out_dir / "speedup_vs_arp.png", bbox_inches="tight"))

    # Speedup vs hidden units / layers at fixed T, ARP, batch.
    fixed = ["T", "arp_steps", "batch", "n_in", "task"]
    size_groups = [(k, g) for k, g in sp.groupby(fixed) if len(g[["hidden", "layers"]].drop_duplicates()) >= 2]
    if size_groups:
        fig = Figure(figsize=(max(5.5, 4.6 * len(size_groups)), 6.5), layout="constrained")
        axes = fig.subplots(2, len(size_groups), squeeze=False)
        for col, (key, g) in enumerate(size_groups):
            T, arp, batch = key[0], key[1], key[2]
            for row, (measure, title) in enumerate(measures):
                ax = axes[row][col]
                for (layers, rec), gl in g.groupby(["layers", "recurrent"]):
                    gl = gl.sort_values("hidden")
                    ax.plot(gl["hidden"], gl[measure], marker="o", label=f"{layers} layer(s) {'rec' if rec else 'ff'}")
                ax.axhline(1.0, color="grey", lw=0.8, ls=":")
                ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1.2))
                ax.set_xscale("log", base=2)
                ax.set_xticks(sorted(g["hidden"].unique()))
                ax.get_xaxis().set_major_formatter(ticker.ScalarFormatter())
                ax.set_title(f"T={T}, ARP={arp}, batch {batch}: {title}", fontsize=9)
                ax.set_xlabel("hidden units per layer")
                if col == 0:
                    ax.set_ylabel("speedup (standard / blocks)")
                ax.grid(alpha=0.3)
                if row == 0:
                    ax.legend(fontsize=7)
        fig.suptitle(f"Speedup over network size ({devices})", fontsize=10)
        written.append(save_png(fig, out_dir / "speedup_vs_size.png", bbox_inches="tight"))
    return written
