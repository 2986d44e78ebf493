"""Probe: ``alif_asc`` from depolarising after-spike-current starts; can the class burst, and would a choice
keep such fits? Per cell: held-out ETV, validation ETV (the Noise 1 seconds after the training window) and
the final training loss. Development cells only."""

from __future__ import annotations

import json
from unittest import mock

import numpy as np

from _common import ONE_START, load, parse
from cellfit.fit import FitConfig, fit_recordings

STARTS = [((0.0, 0.0), (10.0, 200.0)), ((0.4, -0.2), (20.0, 300.0)), ((1.5, -1.0), (50.0, 500.0))]  # amplitudes, taus


def main() -> None:
    a = parse(__doc__.splitlines()[0], "7,10,12,13")
    recs, keys = load(a)
    plain = FitConfig.variant_start
    for amp, tau in STARTS:
        def start(self, model, amp=amp, tau=tau):  # the extensions' currents start at (amp, tau)
            s = plain(self, model)
            return dict(s, asc_amp=list(amp), tau_asc_ms=list(tau)) if "asc_amp" in s else s
        with mock.patch.object(FitConfig, "variant_start", start):
            fits = fit_recordings(recs, FitConfig(model="alif_asc", bootstrap=0, **ONE_START), window_s=1.0, device="cpu",
                                  progress=False)
        rows = []
        for (c, i), f in zip(keys, fits):
            cand = f.result.selection["candidates"][0]
            rows.append(dict(cache=c, cell=i, amp=amp, tau=tau, etv=f.result.etv, val=cand["validation_etv"],
                             loss=cand["train_loss"]))
        if a.out:
            with open(a.out, "a") as fh:
                fh.writelines(json.dumps(r) + "\n" for r in rows)
        print(f"amp {amp} tau {tau}: " + " ".join(f"{r['cache']}/{r['cell']}:{r['etv']:.2f} (val {r['val']:.2f}, "
                                                  f"loss {r['loss']:.2f})" for r in rows)
              + f" | median {np.median([r['etv'] for r in rows]):.3f}", flush=True)


if __name__ == "__main__":
    main()
