"""After round 34: does a training loss shaped like the held-out score stop the fits firing too little?

Usage::

    python benchmarks/fitting/probes/ev_loss.py DEV0 DEV1 ... --cells 7,12,13,18 --losses ev_final,vr --out rows.jsonl

The van Rossum distance to the mean of the recorded repeats is lowest, for a deterministic model, where the model's
filtered train is the projection of that mean: where the repeats disagree (burst spikes, near-threshold spikes)
the mean is small and spread, and a spike costs more than a miss. The held-out score (ETV) instead compares the
model with each repeat as ``2 cov / (var model + var repeat)``, and is highest where the model's variance is about
one repeat's, noise included: it asks a model to fire like the cell. This probe replaces, for ``ev``, each cell's
loss by ``1 - 2 cov(x, m) / (var x + V)`` at every stage's van Rossum time constant (x the model's filtered trains
and m the filtered mean of the repeats, both concatenated over the cell's stimuli as ETV concatenates epochs;
V the filtered repeats' own variance, averaged over the repeats), for the grid and the training alike, fits the
listed development cells with today's default otherwise (``fit_recordings``, 1 s training window, the validation
seconds), and prints the held-out ETV, the ETV per epoch and the predicted / recorded rate per cell. ``vr`` is
today's loss; ``ev`` scores every stage (and the grid) so; ``ev_final`` only the final stage, the coarse stages and
the grid keeping the distance (what became ``FitConfig.final_loss="explained_variance"``, FITTING.md, round 35:
under ``ev`` the fits never left their starts). ``ev_final:A`` takes ``var m + A (V - var m)`` for V (m's own
variance at A = 0: a distance to the mean, normalised; one repeat's at A = 1, the default): how much of one repeat's
noise the model is asked to show (after round 35). It patches :mod:`cellfit.fit.fitter`'s ``training_tensors`` and :class:`cellfit.fit.loss.LossTargets`
for its own fits only.
"""

from __future__ import annotations

import time

import torch

from _common import append_rows, load, parse
from cellfit.fit import FitConfig, fitter, metrics, select
from cellfit.fit.api import fit_recordings
from cellfit.fit.loss import LossTargets, _explained_variance, repeat_variance

_training_tensors, _loss, _select = fitter.training_tensors, LossTargets.loss, LossTargets.select
MODE = {"loss": "vr", "alpha": 1.0}


def _patched_training_tensors(cells, config, device):
    x, targets = _training_tensors(cells, config, device)
    # every stage's V (the library computes the final stage's only)
    targets.rep_var = [torch.as_tensor([repeat_variance(c.spikes, tau, targets.dt_ms) for c in cells],
                                       dtype=x.dtype, device=x.device) for tau in targets.taus]
    return x, targets


def _patched_loss(self, spikes, stage):
    if MODE["loss"] == "vr" or (MODE["loss"] == "ev_final" and not (stage == len(self.taus) - 1).any()):
        return _loss(self, spikes, stage)
    out = _loss(self, spikes, stage) if MODE["loss"] == "ev_final" else spikes.new_zeros(spikes.shape[1])
    stage_t = torch.as_tensor(stage, device=spikes.device)
    for i, tau in enumerate(self.taus):
        if not (stage == i).any() or (MODE["loss"] == "ev_final" and i < len(self.taus) - 1):
            continue
        m = self.filtered[i]
        mc = m - (self.w[..., None] * m.mean(-1, keepdim=True)).sum(0, keepdim=True)
        var_m = (self.w * mc.pow(2).mean(-1)).sum(0)
        # alpha 1: one repeat's variance (the held-out form); 0: the mean's own (a distance to the mean, normalised)
        v = var_m + MODE["alpha"] * (self.rep_var[i] - var_m)
        per_cell = 1.0 - _explained_variance(metrics.exp_filter(spikes, tau, self.dt_ms), m, self.w, v)
        out = torch.where(stage_t == i, per_cell, out)
    return out


def _patched_select(self, idx):
    new = _select(self, idx)
    new.rep_var = [v[idx] for v in self.rep_var]
    return new


def main() -> None:
    a = parse(__doc__.split("\n\n")[0], "7,12,13",
              lambda ap: ap.add_argument("--losses", default="vr,ev",
                                         help="losses to fit with, ev_final:ALPHA for a blend (default %(default)s)"))
    fitter.training_tensors = select.training_tensors = _patched_training_tensors
    LossTargets.loss, LossTargets.select = _patched_loss, _patched_select
    recs, keys = load(a)
    for spec in a.losses.split(","):
        mode, _, alpha = spec.partition(":")
        MODE["loss"], MODE["alpha"] = mode, float(alpha or 1.0)
        torch.manual_seed(0)
        t0 = time.perf_counter()
        fits = fit_recordings(recs, FitConfig(dt_ms=0.1), window_s=1.0, device="cpu", seed=0, progress=False)
        wall = time.perf_counter() - t0
        rows = []
        for (cache, pos), f in zip(keys, fits):
            r = f.result
            rows.append(dict(probe="ev_loss", loss=mode, alpha=MODE["alpha"], cache=cache, cell=pos,
                             specimen_id=r.specimen_id, etv=r.etv,
                             etv_per_epoch=list(r.etv_per_epoch or ()), model=r.model, tau_m_ms=r.tau_m_ms,
                             tau_adapt_ms=r.tau_adapt_ms, test_rate_hz=r.test_rate_hz,
                             predicted_rate_hz=r.predicted_rate_hz, wall_s=wall))
            per = " ".join("-" if e is None else f"{e:.2f}" for e in rows[-1]["etv_per_epoch"])
            print(f"{spec} {cache} cell {pos}: ETV {r.etv:.3f} [{per}] {r.model} rate "
                  f"{r.predicted_rate_hz:.1f}/{r.test_rate_hz:.1f} Hz", flush=True)
        print(f"{spec}: {len(fits)} cells in {wall:.0f} s", flush=True)
        append_rows(a.out, rows)


if __name__ == "__main__":
    main()
