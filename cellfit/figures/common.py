"""Helpers shared by the figure modules: atomic PNG writes, a grid of axes, plain-number log axes."""

from __future__ import annotations

import math
import os
import pathlib
from typing import Optional

from matplotlib import ticker
from matplotlib.figure import Figure

from cellfit.io import atomic_path

__all__ = ["save_png", "grid_figure", "plain_log"]


def save_png(fig: Figure, path: os.PathLike | str, **savefig_kwargs) -> pathlib.Path:
    """Write ``fig`` as a PNG (dpi 120 unless given) through a temporary file and an atomic rename."""
    path = pathlib.Path(path)
    savefig_kwargs.setdefault("dpi", 120)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", **savefig_kwargs)
    return path


def grid_figure(n_axes: int, width: float, height: float, ncols: Optional[int] = None):
    """A constrained-layout Figure with ``n_axes`` axes of ``width`` x ``height`` inches in ``ncols`` columns.

    Returns ``(fig, [ax, ...])``; unused cells of the grid are hidden.
    """
    ncols = ncols or n_axes
    nrows = math.ceil(n_axes / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_axes:]:
        ax.set_visible(False)
    return fig, list(axes[:n_axes])


def plain_log(ax, axis: str = "y") -> None:
    """Log axis with plain numbers (5, 10, 20, 50 ...) instead of powers of ten."""

    def minor(v, _):
        if v <= 0:
            return ""
        lead = round(v / 10 ** math.floor(math.log10(v) + 1e-9))
        return f"{v:g}" if lead in (2, 5) else ""

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(ticker.FuncFormatter(minor))
