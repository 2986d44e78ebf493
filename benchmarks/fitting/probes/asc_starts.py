"""Probe: ``alif_asc`` from depolarising after-spike-current starts; can the class burst, and would a choice
keep such fits? Per cell: held-out ETV, validation ETV (the Noise 1 seconds after the training window), the
final training loss and the fraction of its training inter-spike intervals under 10 ms (what round 8's default
calls bursting). Development cells only.

Round 2 ran the three starts of ``STARTS`` on cells 7, 10, 12, 13; round 8 ran more starts on cells 7 and 12
and two of them on every cell (``--starts``, ``--cells``; FITTING.md)."""

from __future__ import annotations

import dataclasses
from unittest import mock

import numpy as np

from _common import ONE_START, append_rows, load, parse
from cellfit.fit import FitConfig, fit_recordings
from cellfit.fit.select import bursting, short_intervals

STARTS = [((0.0, 0.0), (10.0, 200.0)), ((0.4, -0.2), (20.0, 300.0)), ((1.5, -1.0), (50.0, 500.0))]  # amplitudes, taus


def _starts(text: str) -> list:
    """"A1,A2:T1,T2;..." -> [((A1, A2), (T1, T2)), ...]"""
    out = []
    for part in text.split(";"):
        amp, tau = part.split(":")
        out.append((tuple(float(v) for v in amp.split(",")), tuple(float(v) for v in tau.split(","))))
    return out


def main() -> None:
    def extra(ap):
        ap.add_argument("--starts", type=_starts, default=STARTS,
                        help='after-spike-current starts "A1,A2:T1,T2;..." (amplitudes, ms; default round 2\'s three)')
        ap.add_argument("--model", default="alif_asc", help="the variant fitted (default %(default)s)")

    a = parse(__doc__.splitlines()[0], "7,10,12,13", extra)
    recs, keys = load(a)
    cfg0 = FitConfig()
    train = [r.first(1.0).train.spikes for r in recs]
    counts = [short_intervals(t, r.dt_ms, cfg0.burst_isi_ms) for t, r in zip(train, recs)]
    short = [n / total if total else float("nan") for n, total in counts]  # the fraction of short intervals
    bursts = [bursting(t, dataclasses.replace(cfg0, dt_ms=r.dt_ms)) for t, r in zip(train, recs)]
    plain = FitConfig.variant_start
    for amp, tau in a.starts:
        def start(self, model, amp=amp, tau=tau):  # the extensions' currents start at (amp, tau)
            s = plain(self, model)
            return dict(s, asc_amp=list(amp), tau_asc_ms=list(tau)) if "asc_amp" in s else s
        with mock.patch.object(FitConfig, "variant_start", start):
            cfg = FitConfig(model=a.model, bootstrap=0, **ONE_START)
            fits = fit_recordings(recs, cfg, window_s=1.0, device="cpu", progress=False)
        rows = []
        for (c, i), f, frac, burst in zip(keys, fits, short, bursts):
            cand = f.result.selection["candidates"][0]
            val = float("nan") if cand["validation_etv"] is None else cand["validation_etv"]
            rows.append(dict(cache=c, cell=i, model=a.model, amp=amp, tau=tau, etv=f.result.etv, val=val,
                             loss=cand["train_loss"], short_isi_fraction=frac, bursting=burst))
        append_rows(a.out, rows)
        print(f"{a.model} amp {amp} tau {tau}: " + " ".join(
            f"{r['cache']}/{r['cell']}:{r['etv']:.2f} (val {r['val']:.2f}, loss {r['loss']:.2f}, "
            f"short {r['short_isi_fraction']:.2f})" for r in rows)
            + f" | median {np.median([r['etv'] for r in rows]):.3f}", flush=True)


if __name__ == "__main__":
    main()
