"""Summaries and figures of a fitted panel: time-constant distributions by class, line and layer.

Used by the notebooks (``notebooks/time_constants.ipynb``, ``notebooks/fit_quality.ipynb``),
usable on any batch run:

>>> from cellfit.batch import summarise
>>> from cellfit.figures import panel as pp
>>> cells = pp.fitted(summarise("runs/panel"))           # ok cells, tidy labels
>>> pp.summary_table(cells, by="cell_class")              # median and IQR per class
>>> pp.heterogeneity_table(cells, "tau_m_ms")             # spread of tau_m: CV, P90/P10, bimodality
>>> fig = pp.plot_distributions(cells, by="transgenic_line")
>>> fig.savefig("tau_by_line.png")

Every ``plot_*`` function returns a :class:`matplotlib.figure.Figure` built without pyplot
(no global state, no backend switch; a notebook shows it once, a script saves it).
Time constants are in ms, the adaptation scale ``d`` in threshold units per spike
(the ALIF equations of :mod:`cellfit.functional.alif`), ETV is the held-out explained temporal variance. Figures of DT/ARP
sweeps are in :mod:`cellfit.figures.sweep`.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.lines import Line2D
from scipy import stats

from cellfit.figures.common import grid_figure, plain_log

__all__ = [
    "PARAMETERS",
    "CLASS_COLORS",
    "class_color",
    "PAPER_ETV",
    "fitted",
    "summary_table",
    "bimodality_coefficient",
    "heterogeneity",
    "heterogeneity_table",
    "representative_cell",
    "plot_distributions",
    "plot_histogram",
    "plot_relations",
    "plot_recovery",
]

#: column -> (axis label, log scale)
PARAMETERS = {
    "tau_m_ms": ("membrane time constant $\\tau_m$ (ms)", True),
    "tau_adapt_ms": ("adaptation time constant $\\tau_{adapt}$ (ms)", True),
    "adapt_scale": ("adaptation scale $d$ (threshold / spike)", True),
    "etv": ("held-out ETV", False),
}
DEFAULT_COLUMNS = ("tau_m_ms", "tau_adapt_ms", "adapt_scale", "etv")
#: colours of the cell classes (excitatory spiny / inhibitory aspiny)
CLASS_COLORS = {"excitatory": "#c0392b", "inhibitory": "#2471a3", "unknown": "#7f7f7f"}
CLASS_ORDER = ("excitatory", "inhibitory", "unknown")
#: the paper's median held-out ETV per (DT ms, ARP ms), 146 V1 cells (section 4.3, Figure 5c-f)
PAPER_ETV = {(0.1, 2.0): 0.80, (0.1, 4.0): 0.80, (4.0, 4.0): 0.66}
_NUMERIC = ("etv", "tau_m_ms", "tau_adapt_ms", "adapt_scale", "gain", "bias", "fit_seconds", "epochs",
            "dt_ms", "arp_ms", "etv_init", "reliability", "model_ev", "test_rate_hz", "predicted_rate_hz")
_LABELS = ("cell_class", "transgenic_line", "layer")


# --------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------
def _label(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() in ("", "nan", "None"):
        return "unknown"
    if isinstance(value, float) and value.is_integer():  # a layer read back from CSV as 4.0
        return str(int(value))
    return str(value)


def fitted(df: pd.DataFrame) -> pd.DataFrame:
    """The cells of a summary (:func:`cellfit.batch.summarise`) with ``status == "ok"``, tidied.

    Numeric columns become floats; ``cell_class``, ``transgenic_line`` and ``layer`` become
    strings, ``"unknown"`` where the metadata is missing.
    """
    ok = df[df["status"] == "ok"].copy() if "status" in df else df.copy()
    for col in _NUMERIC:
        if col in ok:
            ok[col] = pd.to_numeric(ok[col], errors="coerce")
    for col in _LABELS:
        if col in ok:
            ok[col] = ok[col].map(_label)
    return ok.reset_index(drop=True)


def _groups(df: pd.DataFrame, by: str) -> list[str]:
    """Group names in display order: classes first-to-last, otherwise by majority class then name."""
    names = list(dict.fromkeys(df[by]))
    if by == "cell_class":
        return [c for c in CLASS_ORDER if c in names] + sorted(n for n in names if n not in CLASS_ORDER)
    if "cell_class" in df:
        major = df.groupby(by)["cell_class"].agg(lambda s: s.value_counts().index[0])
        rank = {c: i for i, c in enumerate(CLASS_ORDER)}
        return sorted(names, key=lambda n: (rank.get(major[n], len(rank)), n == "unknown", n))
    return sorted(names)


def summary_table(df: pd.DataFrame, by: str = "cell_class", columns: Sequence[str] = DEFAULT_COLUMNS,
                  total: bool = True) -> pd.DataFrame:
    """Median and inter-quartile range of each column per group (and over all cells).

    Returns:
        Index: the groups of ``by`` (then ``"all"``); columns: ``("cells", "n")`` and
        ``(column, "median" | "q25" | "q75")`` for every column.
    """
    parts = [(g, df[df[by] == g]) for g in _groups(df, by)]
    if total:
        parts.append(("all", df))
    rows = {}
    for name, sub in parts:
        row = {("cells", "n"): len(sub)}
        for col in columns:
            v = pd.to_numeric(sub[col], errors="coerce").dropna().to_numpy()
            q = np.percentile(v, [50, 25, 75]) if len(v) else [np.nan] * 3
            row.update({(col, "median"): q[0], (col, "q25"): q[1], (col, "q75"): q[2]})
        rows[name] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    out.index.name = by
    return out


def bimodality_coefficient(values) -> float:
    """Sarle's bimodality coefficient ``(g^2 + 1) / (k + 3 (n-1)^2 / ((n-2)(n-3)))``.

    ``g`` is the sample skewness and ``k`` the excess kurtosis (both bias-corrected).
    Values above 5/9 (0.555, a uniform distribution) suggest more than one mode; it needs
    ``n >= 4`` (NaN otherwise) and is noisy below a few dozen values.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 4 or np.ptp(x) == 0:
        return float("nan")
    g = stats.skew(x, bias=False)
    k = stats.kurtosis(x, fisher=True, bias=False)
    return float((g**2 + 1.0) / (k + 3.0 * (n - 1) ** 2 / ((n - 2) * (n - 3))))


def heterogeneity(values) -> dict:
    """How spread out a set of (positive) time constants is.

    Returns a dict: ``n``, ``median``, ``q10``, ``q90``, ``p90_over_p10`` (fold range of the
    central 80 %), ``iqr_over_median``, ``cv`` (s.d. / mean), ``sd_log10`` (s.d. of log10
    values: 0.3 is a factor of 2) and ``bimodality`` (:func:`bimodality_coefficient` of the
    log values, where time constants are closer to normal).
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return dict(n=0, median=np.nan, q10=np.nan, q90=np.nan, p90_over_p10=np.nan, iqr_over_median=np.nan,
                    cv=np.nan, sd_log10=np.nan, bimodality=np.nan)
    q10, q25, med, q75, q90 = np.percentile(x, [10, 25, 50, 75, 90])
    positive = (x > 0).all()
    return dict(
        n=n, median=med, q10=q10, q90=q90,
        p90_over_p10=q90 / q10 if q10 > 0 else np.nan,
        iqr_over_median=(q75 - q25) / med if med else np.nan,
        cv=float(x.std(ddof=1) / x.mean()) if n > 1 and x.mean() else np.nan,
        sd_log10=float(np.log10(x).std(ddof=1)) if n > 1 and positive else np.nan,
        bimodality=bimodality_coefficient(np.log10(x)) if positive else bimodality_coefficient(x),
    )


def heterogeneity_table(df: pd.DataFrame, column: str = "tau_m_ms", by: Optional[str] = "cell_class") -> pd.DataFrame:
    """:func:`heterogeneity` of ``column`` over all cells (first row) and per group of ``by``.

    A spread that stays wide within each class means heterogeneity beyond the
    excitatory/inhibitory split; a spread that is wide only over ``all`` means two
    narrower populations.
    """
    rows = {"all": heterogeneity(df[column])}
    if by:
        for g in _groups(df, by):
            rows[g] = heterogeneity(df.loc[df[by] == g, column])
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = by or "cells"
    out["n"] = out["n"].astype(int)
    return out


def representative_cell(df: pd.DataFrame, quantile: float = 0.5) -> int:
    """The fitted cell whose held-out ETV is closest to the given quantile of the panel (0.5: median)."""
    ok = fitted(df).dropna(subset=["etv"])
    if ok.empty:
        raise ValueError("no fitted cell with an ETV in this table")
    target = ok["etv"].quantile(quantile)
    return int(ok.loc[(ok["etv"] - target).abs().idxmin(), "specimen_id"])


# --------------------------------------------------------------------------
# figures of one panel
# --------------------------------------------------------------------------
def class_color(cls) -> str:
    """The colour of a cell class (:data:`CLASS_COLORS`; grey for an unknown class)."""
    return CLASS_COLORS.get(str(cls), CLASS_COLORS["unknown"])


def _class_legend(ax, classes, extra=()):
    handles = [Line2D([], [], ls="", marker="o", color=class_color(c), label=c) for c in classes]
    ax.legend(handles=handles + list(extra), fontsize=7, frameon=False)


def _scale(ax, column: str, axis: str = "y") -> None:
    label, log = PARAMETERS.get(column, (column, False))
    getattr(ax, f"set_{axis}label")(label)
    if log:
        getattr(ax, f"set_{axis}scale")("log")
        plain_log(ax, axis)


def plot_distributions(df: pd.DataFrame, by: str = "cell_class", columns: Sequence[str] = DEFAULT_COLUMNS,
                       truth: Optional[pd.DataFrame] = None, seed: int = 0):
    """One panel per column: a box (median, quartiles) and every cell (dots coloured by class) per group.

    Args:
        df: fitted cells (:func:`fitted`).
        by: ``"cell_class"``, ``"transgenic_line"``, ``"layer"`` or any label column.
        columns: the values to show (time constants on log axes).
        truth: optional ground truth (``specimen_id`` and the same columns, e.g.
            ``truth_table`` of ``notebooks/examples.py``): drawn as open diamonds joined to the fit.
        seed: horizontal jitter of the dots.
    """
    groups = _groups(df, by)
    rng = np.random.default_rng(seed)
    width = max(2.6, 0.55 * len(groups) + 1.2)
    ncols = len(columns) if len(groups) <= 3 else min(2, len(columns))
    fig, axes = grid_figure(len(columns), width, 3.2 if len(groups) <= 3 else 3.8, ncols=ncols)
    jitter = pd.Series(rng.uniform(-0.18, 0.18, len(df)), index=df.index)
    tmap = truth.set_index("specimen_id") if truth is not None and len(truth) else None
    for ax, col in zip(axes, columns):
        data = [pd.to_numeric(df.loc[df[by] == g, col], errors="coerce").dropna().to_numpy() for g in groups]
        ax.boxplot(data, positions=range(len(groups)), widths=0.55, showfliers=False,
                   medianprops=dict(color="k"), boxprops=dict(color="0.4"), whiskerprops=dict(color="0.4"),
                   capprops=dict(color="0.4"))
        for i, g in enumerate(groups):
            sub = df[df[by] == g]
            x = i + jitter[sub.index]
            ax.scatter(x, sub[col], s=16, c=[class_color(c) for c in sub["cell_class"]], zorder=3, alpha=0.85,
                       edgecolors="none")
            if tmap is not None and col in tmap:
                true = tmap[col].reindex(sub["specimen_id"]).to_numpy(dtype=float)
                has = np.isfinite(true)
                if has.any():
                    ax.scatter(x[has], true[has], s=22, marker="D", facecolors="none", edgecolors="k", lw=0.8, zorder=4)
                    for xi, a, b in zip(x[has], sub[col].to_numpy()[has], true[has]):
                        ax.plot([xi, xi], [a, b], lw=0.6, color="0.5", zorder=2)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{g}\n(n={len(d)})" for g, d in zip(groups, data)], fontsize=7,
                           rotation=0 if by == "cell_class" or len(groups) <= 3 else 40,
                           ha="center" if by == "cell_class" or len(groups) <= 3 else "right")
        _scale(ax, col)
        ax.grid(axis="y", alpha=0.3, which="both")
    extra = []
    if tmap is not None:
        extra = [Line2D([], [], ls="", marker="D", markerfacecolor="none", color="k", label="ground truth")]
    _class_legend(axes[0], [c for c in CLASS_ORDER if c in set(df["cell_class"])], extra)
    fig.suptitle(f"{len(df)} fitted cells by {by.replace('_', ' ')}", fontsize=10)
    return fig


def _bins(values: np.ndarray, log: bool, n: Optional[int] = None):
    values = values[np.isfinite(values)]
    n = n or int(np.clip(np.sqrt(len(values)) * 2, 8, 40))
    if len(values) == 0:
        return 10
    lo, hi = values.min(), values.max()
    if lo == hi:
        lo, hi = lo * 0.9 if lo else -1, hi * 1.1 if hi else 1
    if log and lo > 0:
        return np.geomspace(lo / 1.05, hi * 1.05, n + 1)
    return np.linspace(lo, hi, n + 1)


def plot_histogram(df: pd.DataFrame, column: str = "tau_m_ms", by: Optional[str] = "cell_class",
                   bins: Optional[int] = None, truth: Optional[pd.DataFrame] = None):
    """Histogram of one column over the panel, stacked by group, with a rug and the heterogeneity numbers.

    Time constants use logarithmic bins. The title gives n, the median, the CV, the P90/P10
    ratio and the bimodality coefficient (:func:`heterogeneity`); ``truth`` (optional) adds
    the ground-truth values as a dashed outline.
    """
    label, log = PARAMETERS.get(column, (column, False))
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
    edges = _bins(values, log, bins)
    fig, (ax,) = grid_figure(1, 6.0, 3.3)
    groups = _groups(df, by) if by else ["all"]
    stacks = [pd.to_numeric(df.loc[df[by] == g, column] if by else df[column], errors="coerce").dropna().to_numpy()
              for g in groups]
    colors = [class_color(g) if by == "cell_class" else None for g in groups]
    if by != "cell_class":
        colors = None
    ax.hist(stacks, bins=edges, stacked=True, label=[f"{g} (n={len(s)})" for g, s in zip(groups, stacks)],
            color=colors, alpha=0.85, edgecolor="white", lw=0.5)
    for g, s in zip(groups, stacks):
        ax.plot(s, np.zeros_like(s), "|", ms=10, color=class_color(g) if by == "cell_class" else "k", alpha=0.7)
    if truth is not None and len(truth) and column in truth:
        t = pd.to_numeric(truth[column], errors="coerce").dropna().to_numpy()
        if len(t):
            ax.hist(t, bins=edges, histtype="step", color="k", ls="--", lw=1.0, label=f"ground truth (n={len(t)})")
    h = heterogeneity(values)
    if np.isfinite(h["median"]):
        ax.axvline(h["median"], color="k", lw=0.8, ls=":")
    if log and np.nanmin(values) > 0:
        ax.set_xscale("log")
        plain_log(ax, "x")
    ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel(label)
    ax.set_ylabel("cells")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(f"n = {h['n']}, median {h['median']:.3g}, CV {h['cv']:.2f}, P90/P10 {h['p90_over_p10']:.2f}, "
                 f"bimodality {h['bimodality']:.2f}", fontsize=9)
    return fig


def plot_relations(df: pd.DataFrame,
                   pairs: Sequence[tuple[str, str]] = (("tau_m_ms", "etv"), ("tau_m_ms", "tau_adapt_ms"),
                                                        ("tau_adapt_ms", "adapt_scale")),
                   by: str = "cell_class"):
    """Scatter plots of pairs of columns, cells coloured by group; Spearman's rho (all cells) in each title."""
    fig, axes = grid_figure(len(pairs), 3.5, 3.2)
    for ax, (x, y) in zip(axes, pairs):
        for g in _groups(df, by):
            sub = df[df[by] == g]
            ax.scatter(sub[x], sub[y], s=18, color=class_color(g) if by == "cell_class" else None, label=g, alpha=0.85,
                       edgecolors="none")
        _scale(ax, x, "x")
        _scale(ax, y, "y")
        both = df[[x, y]].apply(pd.to_numeric, errors="coerce").dropna()
        if len(both) >= 3 and both[x].nunique() > 1 and both[y].nunique() > 1:
            rho, p = stats.spearmanr(both[x], both[y])
            ax.set_title(f"Spearman rho {rho:.2f} (p {p:.2g}, n {len(both)})", fontsize=8)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7, frameon=False)
    return fig


#: marker of each generating model in :func:`plot_recovery` ("": a cell without a known model)
MODEL_MARKERS = (("alif", "o"), ("adex", "^"), ("", "o"))


def plot_recovery(df: pd.DataFrame, reference: pd.DataFrame,
                  columns: Sequence[str] = ("tau_m_ms", "tau_adapt_ms", "adapt_scale"), reference_label: str = "true"):
    """Fitted value per cell against a reference value, with the identity line.

    ``reference`` has ``specimen_id`` and the same columns: the ground truth of synthetic
    cells (``truth_table`` of ``notebooks/examples.py``; circles are cells of the ALIF family, where
    exact recovery is possible, triangles cells of other models, where only tau_m
    compares), or the starting values of the fit (:func:`cellfit.batch.starting_values`,
    ``reference_label="initial"``). Where the summary has a column's interval (``{column}_lo``,
    ``{column}_hi``: the time constants) each cell carries it as a vertical bar, and the title says
    how many intervals hold the reference value. Each title gives the median fold difference.
    Raises ``ValueError`` when no fitted cell has a reference row.
    """
    merged = df.merge(reference, on="specimen_id", suffixes=("", "_ref"))
    if merged.empty:
        raise ValueError(f"no fitted cell has a {reference_label} value")
    model = merged["model"] if "model" in merged else pd.Series("", index=merged.index)
    fig, axes = grid_figure(len(columns), 3.3, 3.2)
    shown = None  # the cells of the first panel, which carries the legend
    for ax, col in zip(axes, columns):
        ref = pd.to_numeric(merged[f"{col}_ref"], errors="coerce")
        fit = pd.to_numeric(merged[col], errors="coerce")
        has = np.isfinite(ref) & np.isfinite(fit)
        shown = has if shown is None else shown
        for name, marker in MODEL_MARKERS:
            m = has & (model == name)
            if m.any():
                ax.scatter(ref[m], fit[m], s=22, marker=marker, c=[class_color(c) for c in merged.loc[m, "cell_class"]])
        bars = ""
        if f"{col}_lo" in merged and f"{col}_hi" in merged:
            b_lo, b_hi = (pd.to_numeric(merged[f"{col}_{e}"], errors="coerce") for e in ("lo", "hi"))
            with_bar = has & np.isfinite(b_lo) & np.isfinite(b_hi)
            if with_bar.any():
                ax.vlines(ref[with_bar], b_lo[with_bar], b_hi[with_bar], color="0.6", lw=0.8, zorder=1)
                inside = int(((b_lo <= ref) & (ref <= b_hi))[with_bar].sum())
                bars = f"\n{reference_label} value inside the interval: {inside} of {int(with_bar.sum())}"
        if has.any():
            lo, hi = min(ref[has].min(), fit[has].min()), max(ref[has].max(), fit[has].max())
            ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8)
            positive = (fit[has] > 0).all() and (ref[has] > 0).all()
            err = np.median(np.abs(np.log(fit[has] / ref[has]))) if positive else np.nan
            ax.set_title(f"median fold difference x{np.exp(err):.2f} (n {int(has.sum())}){bars}" if np.isfinite(err)
                         else bars.strip(), fontsize=8)
        label, log = PARAMETERS.get(col, (col, False))
        ax.set_xlabel(f"{reference_label} {label}", fontsize=8)
        ax.set_ylabel(f"fitted {label}", fontsize=8)
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
            plain_log(ax, "x")
            plain_log(ax, "y")
        ax.grid(alpha=0.3, which="both")
    models = [(name, marker) for name, marker in MODEL_MARKERS if name and (model[shown] == name).any()]
    # colour: the cell class; marker: the generating model, named where the panel mixes models
    _class_legend(axes[0], sorted(merged.loc[shown, "cell_class"].astype(str).unique()),
                  [Line2D([], [], ls="", marker=marker, color="0.4", label=f"{name} cells")
                   for name, marker in models] if len(models) > 1 else ())
    return fig
