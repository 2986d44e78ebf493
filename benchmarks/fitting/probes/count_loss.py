"""After round 25: does a spike-count term in the training loss stop the fits dropping the spikes a cell fires unreliably?

Usage::

    python benchmarks/fitting/probes/count_loss.py DEV0 DEV1 ... --cells 12,13 --weights 0,1 --out rows.jsonl

The HH IB and HH LTS fits fire about half the held-out rate (FITTING.md, round 24's diagnosis): a missed spike costs
the fine van Rossum loss less than a spike at the wrong time. This probe adds, for each weight w, the term
``w * sum_u w_u ((n_model_u - n_cell_u) / (n_cell_u + 1))^2`` to every cell's loss (``n``: spikes of stimulus u, the
cell's the mean over its repeats; ``w_u`` the loss's own trace weights), for the grid and the training alike, fits
the listed development cells with today's default otherwise (``fit_recordings``, 1 s training window, the validation
seconds), and prints the held-out ETV, the ETV per epoch and the predicted / recorded rate per cell. Weight 0 is
today's default. It patches :class:`cellfit.fit.loss.LossTargets` for its own fits only.
"""

from __future__ import annotations

import torch

from _common import append_rows, load, parse
from cellfit.fit import FitConfig
from cellfit.fit.api import fit_recordings
from cellfit.fit.loss import LossTargets

_init, _loss, _select = LossTargets.__init__, LossTargets.loss, LossTargets.select
WEIGHT = {"w": 0.0}


def _patched_init(self, target, w, taus_ms, dt_ms):
    _init(self, target, w, taus_ms, dt_ms)
    self.counts = target.sum(-1)  # (U, K): the cell's mean spike count per stimulus


def _patched_loss(self, spikes, stage):
    out = _loss(self, spikes, stage)
    if WEIGHT["w"] == 0.0:
        return out
    rel = (spikes.sum(-1) - self.counts) / (self.counts + 1.0)
    return out + WEIGHT["w"] * (rel.pow(2) * self.w).sum(0)


def _patched_select(self, idx):
    new = _select(self, idx)
    new.counts = self.counts[:, idx]
    return new


def main() -> None:
    a = parse(__doc__.split("\n\n")[0], "12,13",
              lambda ap: ap.add_argument("--weights", default="0,1", help="count-term weights (default %(default)s)"))
    LossTargets.__init__, LossTargets.loss, LossTargets.select = _patched_init, _patched_loss, _patched_select
    recs, keys = load(a)
    for weight in (float(w) for w in a.weights.split(",")):
        WEIGHT["w"] = weight
        torch.manual_seed(0)
        fits = fit_recordings(recs, FitConfig(dt_ms=0.1), window_s=1.0, device="cpu", seed=0, progress=False)
        rows = []
        for (cache, pos), f in zip(keys, fits):
            r = f.result
            rows.append(dict(probe="count_loss", weight=weight, cache=cache, cell=pos, etv=r.etv,
                             etv_per_epoch=list(r.etv_per_epoch or ()), model=r.model,
                             test_rate_hz=r.test_rate_hz, predicted_rate_hz=r.predicted_rate_hz))
            per = " ".join("-" if e is None else f"{e:.2f}" for e in rows[-1]["etv_per_epoch"])
            print(f"w={weight:g} {cache} cell {pos}: ETV {r.etv:.3f} [{per}] {r.model} rate "
                  f"{r.predicted_rate_hz:.1f}/{r.test_rate_hz:.1f} Hz", flush=True)
        append_rows(a.out, rows)


if __name__ == "__main__":
    main()
