"""The figure of one classifier training run: accuracy and epoch time per epoch (``curves.png``)."""

from __future__ import annotations

import math
from typing import Sequence

from matplotlib.figure import Figure

__all__ = ["training_curves"]


def training_curves(history: Sequence[dict], title: str) -> Figure:
    """Train (and test, where measured) accuracy and training-epoch time over the epochs of ``history``
    (rows of :func:`cellfit.classify.train_classifier`'s ``metrics.csv``)."""
    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(9, 3.5), layout="tight")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(epochs, [100 * r["train_acc"] for r in history], "o-", label="train")
    if any(not math.isnan(r["test_acc"]) for r in history):
        ax1.plot(epochs, [100 * r["test_acc"] for r in history], "s-", label="test")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("accuracy (%)")
    ax1.legend()
    ax2.plot(epochs, [r["epoch_time_s"] for r in history], "o-")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("training epoch time (s)")
    ax2.set_ylim(bottom=0)
    fig.suptitle(title)
    return fig
