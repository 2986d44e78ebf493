"""Fit a synthetic panel (an Allen-format cache with ground truth) and score every cell: FITTING.md's tables.

Usage::

    python -m cellfit.data synthetic --panel dev --out CACHE          # write the panel once
    python benchmarks/fitting/panel_eval.py CACHE OUT.jsonl --label dev [--variant NAME ...] [--dt 0.1]

For each variant (a set of :class:`cellfit.fit.FitConfig` overrides, see ``VARIANTS``) all cells
of the panel are loaded through the Allen loader and fitted together (one batched model, CPU),
and one JSON line per cell is appended to ``OUT.jsonl``: held-out ETV, the repeat ceiling,
Gamma, rates, fitted and true time constants (``truth.json``), intervals when the fit made
them, epochs and wall time. A summary per variant is printed. ``benchmarks/fitting/table.py``
turns the lines into the tables of FITTING.md.

Held-out discipline: choices are tuned with ``--label dev`` on the development panel; the test
panel is run once per reported variant and never used to choose anything.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np
import torch

from cellfit.data import load_cell
from cellfit.fit import FitConfig, fit_recordings
from cellfit.fit.config import ADAPT_SEARCH, GRID_RESTARTS

#: the default fit before round 4 (FITTING.md): one start, the best grid point (``--restarts 1``)
ONE_START = dict(restarts=1, **GRID_RESTARTS)

#: the intervals before round 5: the bootstrap refits alone (no widening to the equivalent starts)
REFITS_ONLY = dict(equivalent_loss=None)

#: named sets of FitConfig overrides (plus "window": seconds of each epoch). The variants of rounds 1-3
#: name the start they used (``ONE_START``, the default then), those of round 4 their intervals
#: (``REFITS_ONLY``), so their rows stay reproducible.
VARIANTS: dict[str, dict] = {
    "default": {},
    # the default of rounds 1-3: the best grid point, refits for the intervals beside it
    "one_start": dict(ONE_START),
    # cellfit 0.1's fit: one start, no validation, no bootstrap (the baseline of this session's changes)
    "single": dict(ONE_START, validation_s=0.0, bootstrap=0),
    # the model class chosen per cell on the validation seconds (ALIF or one of its extensions)
    "auto": dict(ONE_START, model="auto"),
    # one extension forced on every cell
    "alif_asc": dict(ONE_START, model="alif_asc"),
    "alif_reset_asc": dict(ONE_START, model="alif_reset_asc"),
    # bootstrap refits from the kept start itself (the interval method before bootstrap_spread)
    "same_start": dict(ONE_START, bootstrap_spread=1.0),
    # refits whose tau_adapt starts as far away as tau_m's (the default before bootstrap_spread_adapt), or further
    "spread_adapt2.5": dict(ONE_START, bootstrap_spread_adapt=2.5),
    "spread_adapt5": dict(ONE_START, bootstrap_spread_adapt=5.0),
    "spread_adapt10": dict(ONE_START, bootstrap_spread_adapt=10.0),
    # two seconds of each Noise 1 epoch for training (the third validates)
    "window2": dict(ONE_START, window=2.0),
    "auto_window2": dict(ONE_START, window=2.0, model="auto"),
    # the choice among the variants from two grid starts each, on 2 validation seconds (select_study.py)
    "auto_x2": dict(GRID_RESTARTS, model="auto", restarts=2, validation_s=2.0),
    # one start per tau_adapt of the grid, chosen on the validation seconds, or by the training loss (--adapt-search)
    "tau_starts5": dict(restarts=5, diverse_restarts=True, validation_veto=None),
    "adapt_search": dict(ADAPT_SEARCH, **REFITS_ONLY),
    # the same five starts, the lowest training loss among those the validation seconds do not veto
    # (round 4; the default since)
    "tau_search": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, **REFITS_ONLY),
    # the same search in each model class, the veto within each, and an extension kept only where its
    # training loss is 5% below ALIF's (round 4; --model auto since)
    "auto_search": dict(model="auto", restarts=5, diverse_restarts=True, validation_veto=0.1, extension_margin=0.05,
                        **REFITS_ONLY),
    # tau_search with its intervals widened to the starts within 2% of the kept one's loss that are not
    # vetoed (round 5; the default since)
    "tau_search_eq": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, equivalent_loss=0.02),
    # tau_search_eq from a voltage-based start that fits a spike-triggered current (100 ms) with the membrane
    # (round 6)
    "spike_init": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, equivalent_loss=0.02,
                       voltage_spike_tau_ms=(100.0,), voltage_spike_ratio=None),
    # the same start only where it shortens the plain voltage fit's tau_m by more than 3x (round 6b)
    "spike_init3": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, equivalent_loss=0.02,
                        voltage_spike_tau_ms=(100.0,), voltage_spike_ratio=3.0),
    # spike_init3 with the tau_adapt interval reaching halfway (in log) to the nearest start outside it (round 7)
    "start_gap": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, equivalent_loss=0.02,
                      voltage_spike_tau_ms=(100.0,), voltage_spike_ratio=3.0, start_gap=0.5),
    # start_gap with bursting candidates for the cells whose training spikes burst (round 8)
    "bursts": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, equivalent_loss=0.02,
                   voltage_spike_tau_ms=(100.0,), voltage_spike_ratio=3.0, start_gap=0.5, burst_fraction=0.3),
    # bursts with alif_sub for the cells whose voltage shows a subthreshold current (round 10)
    "voltage_sub": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, equivalent_loss=0.02,
                        voltage_spike_tau_ms=(100.0,), voltage_spike_ratio=3.0, start_gap=0.5, burst_fraction=0.3,
                        sub_r2_gain=0.15, sub_min_r2=0.5, sub_zone_gain=None),
    # voltage_sub with alif_sub candidates beside ALIF's for cells whose voltage gains 0.05-0.15 (round 11)
    "voltage_sub_zone": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, equivalent_loss=0.02,
                             voltage_spike_tau_ms=(100.0,), voltage_spike_ratio=3.0, start_gap=0.5, burst_fraction=0.3,
                             sub_r2_gain=0.15, sub_min_r2=0.5, sub_zone_gain=0.05),
    # voltage_sub_zone with one more start per gain factor 2 and 4 (the best grid point of each, bias lowered to
    # keep the mean drive) beside the five starts (round 12)
    "gain_starts": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, equivalent_loss=0.02,
                        voltage_spike_tau_ms=(100.0,), voltage_spike_ratio=3.0, start_gap=0.5, burst_fraction=0.3,
                        sub_r2_gain=0.15, sub_min_r2=0.5, sub_zone_gain=0.05, grid_gain_scale=(1.0, 2.0, 4.0),
                        gain_starts="always"),
    # the same starts only for a cell whose kept candidate never left its start (round 12)
    "gain_rescue": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, equivalent_loss=0.02,
                        voltage_spike_tau_ms=(100.0,), voltage_spike_ratio=3.0, start_gap=0.5, burst_fraction=0.3,
                        sub_r2_gain=0.15, sub_min_r2=0.5, sub_zone_gain=0.05, grid_gain_scale=(1.0, 2.0, 4.0),
                        gain_starts="stuck"),
    # gain_rescue with one more candidate for a bursting cell, alif_reset_asc from a reset of 0.8, and its variants
    # compared by their ETV on the training window instead of the training loss (round 13; the default since)
    "burst_etv": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, equivalent_loss=0.02,
                      voltage_spike_tau_ms=(100.0,), voltage_spike_ratio=3.0, start_gap=0.5, burst_fraction=0.3,
                      sub_r2_gain=0.15, sub_min_r2=0.5, sub_zone_gain=0.05, grid_gain_scale=(1.0, 2.0, 4.0),
                      gain_starts="stuck", burst_reset_starts=(0.8,), burst_choice="train_etv"),
    # burst_etv with a second reset start above threshold, 1.4, fitted in its own range (-1, 1.8) (the probe after
    # round 13; the 0.8 start keeps its range (-1, 0.95))
    "reset_high": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, equivalent_loss=0.02,
                       voltage_spike_tau_ms=(100.0,), voltage_spike_ratio=3.0, start_gap=0.5, burst_fraction=0.3,
                       sub_r2_gain=0.15, sub_min_r2=0.5, sub_zone_gain=0.05, grid_gain_scale=(1.0, 2.0, 4.0),
                       gain_starts="stuck", burst_reset_starts=(0.8, 1.4), high_reset_bounds=(-1.0, 1.8),
                       burst_choice="train_etv"),
    # voltage_sub without the plain voltage fit's floor and with a gain of 0.05 (round 11's probe: every cell that
    # any rule between the two might gate; a rejected plain fit counts as 0.2)
    "voltage_sub_05": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, equivalent_loss=0.02,
                           voltage_spike_tau_ms=(100.0,), voltage_spike_ratio=3.0, start_gap=0.5, burst_fraction=0.3,
                           sub_r2_gain=0.05, sub_min_r2=0.0, sub_zone_gain=None),
    # start_gap with the subthreshold adaptation variant forced on every cell (round 9's probe)
    "sub_forced": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, equivalent_loss=0.02,
                       voltage_spike_tau_ms=(100.0,), voltage_spike_ratio=3.0, start_gap=0.5, model="alif_sub"),
    # the same from a small subthreshold current (k = 0.05 instead of 0.5): the start of an ALIF fit
    "sub_small": dict(restarts=5, diverse_restarts=True, validation_veto=0.1, equivalent_loss=0.02,
                      voltage_spike_tau_ms=(100.0,), voltage_spike_ratio=3.0, start_gap=0.5, model="alif_sub",
                      sub_amp_init=0.05),
}
# rounds 15 and 16, each burst_etv (round 13's default) with one change:
VARIANTS.update(
    # a cell whose training traces start with a burst (the first interval under 10 ms in at least 70% of the
    # traces with two spikes; the low-threshold spiking cells) also gets the reset start 0.8 and the
    # training-window ETV choice of a bursting cell, keeping its own starts (round 15) ...
    onset_reset=dict(VARIANTS["burst_etv"], onset_burst_fraction=0.7, onset_reset_high=False),
    # ... with that reset start fitted from each of the cell's five starts (its reset variant's pick: the lowest
    # training loss among them, as for its ALIF starts) ...
    onset_reset5=dict(VARIANTS["burst_etv"], onset_burst_fraction=0.7, onset_restarts=5, onset_reset_high=False),
    # ... or fitted in the range of a reset above threshold, (-1, 1.8) (a burst from rest: the probe's fits from 0.8
    # had that range)
    onset_high=dict(VARIANTS["burst_etv"], onset_burst_fraction=0.7, high_reset_bounds=(-1.0, 1.8)),
    # the gain starts also train for a cell whose kept fit is silent on a training stimulus to which the cell fires
    # at least once per repeat (round 16)
    silent_gain=dict(VARIANTS["burst_etv"], gain_starts="stuck_or_silent"),
    # ... and a gain-start fit replaces the usual rule's pick only where its training-window ETV is higher (round 17)
    silent_gain_etv=dict(VARIANTS["burst_etv"], gain_starts="stuck_or_silent", gain_choice="train_etv"),
    # the floor on the plain voltage fit for an alif_sub start lowered from 0.5 to 0.3 (round 17)
    sub_floor03=dict(VARIANTS["burst_etv"], sub_min_r2=0.3),
    # ... or kept at 0.5, a cell below it that gains 0.15 fitted both ways, as a zone cell (round 17)
    sub_low_both=dict(VARIANTS["burst_etv"], sub_low_r2=0.0),
    # ... both ways only for a cell whose plain voltage fit explains 0.3-0.5 (round 18)
    sub_band_both=dict(VARIANTS["burst_etv"], sub_low_r2=0.3),
    # ... and a cell under the band (plain fit below 0.3) that gains 0.15 and resets near threshold (its voltage 5 ms
    # after a spike at least 0.5) fitted both ways too, its alif_sub candidates from the plain start with the default
    # current (round 19)
    sub_under_default=dict(VARIANTS["burst_etv"], sub_low_r2=0.3, sub_default_below=0.3),
)
# round 20, each round 18's default (sub_band_both) with one change: a bursting cell's bursting and reset candidates
# start from each of its three best starts instead of the best alone (burst_x5: from all five; reset_x3: only its
# reset candidates from its three best starts)
VARIANTS.update(burst_x3=dict(VARIANTS["sub_band_both"], burst_restarts=3, burst_reset_restarts=3),
                burst_x5=dict(VARIANTS["sub_band_both"], burst_restarts=5, burst_reset_restarts=5),
                reset_x3=dict(VARIANTS["sub_band_both"], burst_restarts=1, burst_reset_restarts=3))
# round 21, round 20's default (reset_x3) with one change: the starts that the validation veto keeps are ranked by
# their training loss times 1 + 1.0 x (the best validation ETV among them - their own), not by the loss alone
VARIANTS.update(val_penalty1=dict(VARIANTS["reset_x3"], validation_penalty=1.0))
# round 22, round 20's default with one change: a kept fit whose adaptation is weaker than 0.03 (adapt_scale) gets a
# tau_adapt interval that spans tau_adapt's bounds (the fits are the same; only that interval and its flag differ)
VARIANTS.update(weak_adapt003=dict(VARIANTS["reset_x3"], weak_adaptation=0.03))
# round 23, round 20's default with wider tau_adapt intervals (the fits are the same): each end reaches all the way
# to the nearest start outside it (start_gap 1.0), an end with no start beyond it a quarter of the way to tau_adapt's
# bound on that side, and a fit weaker than 0.03 (adapt_scale) spans the bounds
VARIANTS.update(wide_tau=dict(VARIANTS["reset_x3"], start_gap=1.0, bound_gap=0.25, weak_adaptation=0.03))
# after round 25, round 23's fits (reset_x3) with one change: the final loss stage's van Rossum time constant (20 or 30
# ms instead of 10; the coarser stages before it as before), a loss that counts the spikes the cell fires unreliably
VARIANTS.update(final20=dict(VARIANTS["reset_x3"], van_rossum_tau_ms=20.0),
                final30=dict(VARIANTS["reset_x3"], van_rossum_tau_ms=30.0))
#: the variants of rounds 1-5 start from the plain voltage fit (the default before round 6b), those of
#: rounds 1-6 have intervals without the start gap (the default before round 7), and those of rounds 1-7 fit
#: no bursting candidates (the default before round 8), those of rounds 1-9 no alif_sub starts (before round 10),
#: those of rounds 1-11 no gain starts (before round 12), those of rounds 1-12 no reset start for a bursting
#: cell, whose variants they compare by the training loss (before round 13), and those of rounds 1-14 no reset
#: start for a cell whose traces start with a burst (before round 15), and those of rounds 1-17 fit no cell under
#: the plain voltage fit's floor both ways (before round 18), those of rounds 1-18 no cell under the band of
#: round 18 (before round 19), and those of rounds 1-19 start a bursting cell's bursting and reset candidates from
#: its best start alone (before round 20), and those of rounds 1-22 have no bound reach and no weak-adaptation
#: interval, unless they name one (before round 23; their start_gap is named since round 7)
VARIANTS = {name: (v if name == "default" else
                   dict(v, **({} if "voltage_spike_tau_ms" in v else dict(voltage_spike_tau_ms=())),
                        **({} if "start_gap" in v else dict(start_gap=None)),
                        **({} if "burst_fraction" in v else dict(burst_fraction=None)),
                        **({} if "sub_r2_gain" in v else dict(sub_r2_gain=None)),
                        **({} if "grid_gain_scale" in v else dict(grid_gain_scale=(1.0,))),
                        **({} if "burst_reset_starts" in v else dict(burst_reset_starts=())),
                        **({} if "burst_choice" in v else dict(burst_choice="loss")),
                        **({} if "onset_burst_fraction" in v else dict(onset_burst_fraction=None)),
                        **({} if "sub_low_r2" in v else dict(sub_low_r2=None)),
                        **({} if "sub_default_below" in v else dict(sub_default_below=None)),
                        **({} if "burst_restarts" in v else dict(burst_restarts=1)),
                        **({} if "burst_reset_restarts" in v else dict(burst_reset_restarts=1)),
                        **({} if "bound_gap" in v else dict(bound_gap=None)),
                        **({} if "weak_adaptation" in v else dict(weak_adaptation=None))))
            for name, v in VARIANTS.items()}
#: round 26, today's default with the bias tie-break (FitConfig.bias_tiebreak: shifts of 0.01 up to 0.1 each way
#: that leave the training counts unchanged, the best validation ETV among them; FITTING.md, round 26: opt-in)
VARIANTS["tiebreak"] = dict(bias_tiebreak=0.1)
#: round 27, today's default with a cell's variants (ALIF and alif_sub for a cell fitted both ways) compared on their
#: validation ETV instead of the 5% loss margin (FitConfig.variant_choice; FITTING.md, round 27)
VARIANTS["sub_val"] = dict(variant_choice="validation")
#: round 28, today's default with the cells whose voltage gains 0.15 from the subthreshold current fitted both ways
#: (ALIF and alif_sub, the 5% rule) instead of as alif_sub alone (FitConfig.sub_alone; FITTING.md, round 28)
VARIANTS["sub_both"] = dict(sub_alone=False)
#: after round 28, a probe: today's default trained longer (10 epochs without progress before each decay, not 5)
VARIANTS["patience10"] = dict(patience=10)
#: round 29, today's default with the cells that have alif_sub candidates trained with patience 10
#: (FitConfig.sub_patience; FITTING.md, round 29)
VARIANTS["sub_patience10"] = dict(sub_patience=10)
#: round 30, sub_patience10 with a cell's variants switched only where the other pick's validation ETV is not lower
#: too (FitConfig.variant_choice "loss_and_validation"; FITTING.md, round 30); sub_guard: that choice alone
VARIANTS["sub_patience10_guard"] = dict(sub_patience=10, variant_choice="loss_and_validation")
VARIANTS["sub_guard"] = dict(variant_choice="loss_and_validation")
#: round 31, the bursting cells (those with bursting candidates) trained with patience 10 (FitConfig.burst_patience)
VARIANTS["burst_patience10"] = dict(burst_patience=10)
#: round 32, round 30's sub_patience10_guard for the cells fitted both ways only (FitConfig.sub_patience_scope)
VARIANTS["both_patience10_guard"] = dict(sub_patience=10, sub_patience_scope="both_ways",
                                         variant_choice="loss_and_validation")
#: round 33, today's default fits with the tau_adapt interval before any reach (no start or bound reach, no weak
#: rule): the bootstrap refits, the estimate and the equivalent fits only, so that a reach rule can be applied offline
VARIANTS["raw_tau"] = dict(start_gap=None, bound_gap=None, weak_adaptation=None)
#: round 33, today's default with the starts the validation seconds score as well as the kept fit among the fits
#: the data cannot tell apart (FitConfig.equivalent_validation 0: their values widen the intervals) and a tau_adapt
#: interval over its whole range below adapt_scale 0.05 (FitConfig.weak_adaptation, 0.03 before)
VARIANTS["val_weak05"] = dict(equivalent_validation=0.0, weak_adaptation=0.05)
#: after round 33, `--model auto` as the command line builds it today (FitConfig.fit_config(model="auto"): the default
#: search in each of ALIF, alif_asc and alif_reset_asc, an extension kept where its loss is 5% lower)
VARIANTS["auto_today"] = dict(model="auto", burst_fraction=None, sub_r2_gain=None)
#: round 34, today's default with after-spike candidates (alif_asc, alif_reset_asc from the cell's five starts) for a
#: cell kept as plain ALIF whose kept fit's validation ETV is below 0.9 (FitConfig.asc_rescue; FITTING.md, round 34:
#: a lower gate is read offline from these rows, the cells it leaves out keeping their default fit)
VARIANTS["asc_rescue09"] = dict(asc_rescue=0.9, asc_rescue_validation=False)
#: round 34, asc_rescue09 with a rescue fit kept only where its validation ETV is not lower than the ALIF fit's too
#: (FitConfig.asc_rescue_validation)
VARIANTS["asc_rescue09_val"] = dict(asc_rescue=0.9, asc_rescue_validation=True)
#: round 35, today's default with the final loss stage scored as one minus the held-out score's explained variance
#: against the repeats instead of the van Rossum distance to their mean (FitConfig.final_loss; FITTING.md, round 35)
VARIANTS["ev_loss"] = dict(final_loss="explained_variance")
#: round 35, today's default with a cell whose kept fit predicts the validation seconds below 0.9 fitted again with
#: that loss, the refit kept where its validation ETV is 0.05 higher (FitConfig.ev_rescue, ev_rescue_margin), a
#: kept bursting start gated too (round 35's rule, before FitConfig.ev_rescue_bursting)
VARIANTS["ev_rescue09"] = dict(ev_rescue=0.9, ev_rescue_margin=0.05, ev_rescue_bursting=True)
#: round 36, ev_rescue09 without the cells whose kept fit is a bursting start (FitConfig.ev_rescue_bursting False:
#: the validation seconds do not judge such a fit)
VARIANTS["ev_rescue09_nb"] = dict(ev_rescue=0.9, ev_rescue_margin=0.05, ev_rescue_bursting=False)
#: round 37, today's default with another start of the kept fit's variant kept where its training-window ETV is 0.1
#: higher (FitConfig.train_etv_switch)
VARIANTS["etv_switch01"] = dict(train_etv_switch=0.1, train_etv_scope="variant")
#: round 38 (FITTING.md; the default since): the switch looks at every variant's unvetoed starts
#: (FitConfig.train_etv_scope)
VARIANTS["etv_switch_all"] = dict(train_etv_switch=0.1, train_etv_scope="all")
#: after round 39 (a study): today's default (round 38) with round 34's after-spike rescue (asc_rescue09_val)
VARIANTS["asc_rescue_all"] = dict(asc_rescue=0.9, asc_rescue_validation=True, train_etv_switch=0.1,
                                  train_etv_scope="all")
#: round 41, today's default fits (round 38's choice) with the tau_adapt interval before any reach, as raw_tau (whose
#: rows predate the switch and record no training-window ETVs)
VARIANTS["raw_tau38"] = dict(start_gap=None, bound_gap=None, weak_adaptation=None, train_etv_switch=0.1,
                             train_etv_scope="all")
#: round 41, round 33's intervals (val_weak05) on today's default fits (round 38's choice)
VARIANTS["val_weak05_38"] = dict(equivalent_validation=0.0, weak_adaptation=0.05, train_etv_switch=0.1,
                                 train_etv_scope="all")
#: every variant before round 37 made its choice without the switch (the default before round 37)
for _name, _v in VARIANTS.items():
    if _name not in ("default", "etv_switch01"):
        _v.setdefault("train_etv_switch", None)
#: and every variant before round 41 had round 23's intervals (weak_adaptation 0.03, no validation members)
for _name, _v in VARIANTS.items():
    if _name != "default":
        _v.setdefault("weak_adaptation", 0.03)
        _v.setdefault("equivalent_validation", None)
#: and every variant before round 42 kept its fits as trained on the training window (no refit on all of Noise 1)
for _name, _v in VARIANTS.items():
    if _name != "default":
        _v.setdefault("refit_models", ())
#: and every variant before round 44 kept an alif_sub fit as it is (no alif_sub_reset_asc fit from it)
for _name, _v in VARIANTS.items():
    if _name != "default":
        _v.setdefault("sub_reset_asc", False)
#: round 42 (the default from round 42 to 43; defined after the pins): the kept alif_sub fits trained again on all
#: of Noise 1 (FitConfig.refit_models)
VARIANTS["refit_sub"] = dict(refit_models=("alif_sub",), sub_reset_asc=False)
#: round 43 (the default since round 44: refit_sub_reset): a kept alif_sub fit also trained with a reset and
#: after-spike currents (alif_sub_reset_asc), kept by the extension margin (FitConfig.sub_reset_asc), on round 41's
#: default (sub_reset) and on round 42's (refit_sub_reset)
VARIANTS["sub_reset"] = dict(sub_reset_asc=True, refit_models=())
VARIANTS["refit_sub_reset"] = dict(sub_reset_asc=True, refit_models=("alif_sub",))
#: and every variant before round 45 gave a bursting cell one reset start, 0.8 (round 13's; not those of round 14's
#: reset_high, defined above)
for _name, _v in VARIANTS.items():
    if _name != "default":
        _v.setdefault("burst_reset_starts", (0.8,))
#: round 45 (the adex_rb probe family): round 44's default (refit_sub_reset) with round 14's second reset start for a
#: bursting cell, 1.4 (above the base threshold, fitted in high_reset_bounds, a variant of its own in the choice)
VARIANTS["reset_high44"] = dict(burst_reset_starts=(0.8, 1.4))
#: and every variant before round 46 gave bursting candidates only to a cell with 30% of its training intervals under
#: 10 ms, and none of those cells an alif_sub start
for _name, _v in VARIANTS.items():
    if _name != "default":
        _v.setdefault("burst_fraction", 0.3)
        _v.setdefault("burst_sub_below", None)
#: round 46 (probe): round 45's default (reset_high44) with the bursting gate at 25%, 20%, 15% or 10% of the
#: training intervals under 10 ms
VARIANTS["gate025"] = dict(burst_fraction=0.25, burst_sub_below=None)
VARIANTS["gate020"] = dict(burst_fraction=0.2, burst_sub_below=None)
VARIANTS["gate015"] = dict(burst_fraction=0.15, burst_sub_below=None)
VARIANTS["gate010"] = dict(burst_fraction=0.1, burst_sub_below=None)
#: and those gates with a cell under the old gate (30%) keeping its alif_sub starts beside the bursting candidates
#: (gate020_sub: today's default since round 46)
VARIANTS["gate020_sub"] = dict(burst_fraction=0.2, burst_sub_below=0.3)
VARIANTS["gate010_sub"] = dict(burst_fraction=0.1, burst_sub_below=0.3)
#: round 47: another variant replaces a bursting cell's ALIF pick only where its training-window ETV is higher by
#: more than 0.05, with today's gate (20%) and with the gate at 10%
VARIANTS["margin05"] = dict(burst_fraction=0.2, burst_sub_below=0.3, burst_variant_margin=0.05)
VARIANTS["gate010_margin05"] = dict(burst_fraction=0.1, burst_sub_below=0.3, burst_variant_margin=0.05)
#: round 48: a refit on all of Noise 1 kept only where it explains Noise 1 at least as well as the first fit
VARIANTS["refit_guard"] = dict(refit_guard=True)
#: round 49: every bursting cell keeps the alif_sub starts a cell that does not burst would get (not only those under
#: 30% short intervals, round 46)
VARIANTS["burst_sub_all"] = dict(burst_sub_below=1.0)
#: round 50: a kept reset fit (alif_reset_asc) also trained again with the subthreshold current
VARIANTS["burst_sub_reset"] = dict(burst_sub_reset=True)
#: round 51: the bursting gate at 10%, and a cell at 10-20% short intervals keeps a bursting variant over ALIF's
#: pick only where the validation seconds agree with the training window (``FitConfig.burst_agree_below``)
VARIANTS["gate010_agree"] = dict(burst_fraction=0.1, burst_sub_below=0.3, burst_agree_below=0.2)


def _truth(cache: pathlib.Path, sid: int) -> dict:
    path = cache / f"specimen_{sid}" / "truth.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _true_taus(truth: dict) -> tuple:
    tc = truth.get("time_constants") or {}
    params = truth.get("params") or {}
    tau_m = tc.get("tau_m_ms", params.get("tau_m_ms"))
    adapt = tc.get("adaptation_ms") or {}
    tau_a = adapt.get("threshold", params.get("tau_adapt_ms"))
    return tau_m, tau_a


def specimen_ids(cache: pathlib.Path) -> list[int]:
    """The specimen ids of a synthetic cache (folders with an ephys.nwb), sorted."""
    return sorted(int(p.name.split("_")[1]) for p in cache.glob("specimen_*") if (p / "ephys.nwb").exists())


def evaluate(cache: pathlib.Path, variant: str, overrides: dict, *, dt: float, label: str, seed: int,
             only: list[int] | None = None) -> list[dict]:
    kw = dict(overrides)
    window = kw.pop("window", 1.0)
    cfg = FitConfig(**dict(dict(dt_ms=dt), **kw))
    ids = specimen_ids(cache)
    if only:
        missing = sorted(set(only) - set(ids))
        if missing:
            raise SystemExit(f"--specimens {missing} not in {cache}: give ids of its specimen_* folders")
        ids = [i for i in ids if i in only]
    loaded = min(3.0, window + cfg.validation_s)  # the validation seconds follow the training window
    recs = [load_cell(i, dt, loaded, cache) for i in ids]
    t0 = time.perf_counter()
    fits = fit_recordings(recs, cfg, window_s=window, device="cpu", seed=seed, progress=False)
    wall = time.perf_counter() - t0
    rows = []
    for f in fits:
        r = f.result
        truth = _truth(cache, r.specimen_id)
        tau_m, tau_a = _true_taus(truth)
        row = dict(label=label, variant=variant, dt_ms=dt, window_s=window, seed=seed, specimen_id=r.specimen_id,
                   family=truth.get("family", truth.get("model")), firing_class=truth.get("firing_class"),
                   cell_class=r.cell_class, status=r.status, error=r.error, etv=r.etv, repeat_ceiling=r.repeat_ceiling,
                   gamma=r.gamma, reliability=r.reliability, etv_init=r.etv_init, etv_per_epoch=r.etv_per_epoch,
                   test_rate_hz=r.test_rate_hz, predicted_rate_hz=r.predicted_rate_hz, epochs=r.epochs,
                   tau_m_ms=r.tau_m_ms, tau_adapt_ms=r.tau_adapt_ms, adapt_scale=r.adapt_scale, gain=r.gain,
                   bias=r.bias, true_tau_m_ms=tau_m, true_tau_adapt_ms=tau_a,
                   **({} if r.sub_amp is None else dict(sub_amp=r.sub_amp, tau_sub_ms=r.tau_sub_ms)),
                   model=r.model, intervals=r.intervals, undetermined=list(r.undetermined), at_bound=list(r.at_bound),
                   selection=r.selection,
                   panel_wall_s=wall, n_cells=len(fits))
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache", type=pathlib.Path, help="Allen-format cache of a synthetic panel")
    ap.add_argument("out", type=pathlib.Path, help="JSON lines file to append to")
    ap.add_argument("--label", required=True, help="panel label written with every row (dev, test, ...)")
    ap.add_argument("--variant", nargs="+", default=["default"], choices=sorted(VARIANTS))
    ap.add_argument("--dt", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--specimens", type=int, nargs="+", default=None,
                    help="fit only these specimen ids of the cache (e.g. cells added to a panel later; a cell's "
                         "fit does not depend on the cells fitted beside it)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for name in a.variant:
        rows = evaluate(a.cache, name, VARIANTS[name], dt=a.dt, label=a.label, seed=a.seed, only=a.specimens)
        with open(a.out, "a") as fh:
            for row in rows:
                fh.write(json.dumps(row, default=float) + "\n")
        etv = np.array([r["etv"] if r["etv"] is not None else np.nan for r in rows], float)
        ceil = np.array([r["repeat_ceiling"] if r["repeat_ceiling"] is not None else np.nan for r in rows], float)
        print(f"{a.label} {name}: median ETV {np.nanmedian(etv):.3f}, min {np.nanmin(etv):.3f}, "
              f"median ETV / ceiling {np.nanmedian(etv / ceil):.3f}, failed {sum(r['status'] != 'ok' for r in rows)}, "
              f"wall {rows[0]['panel_wall_s']:.0f} s for {len(rows)} cells", flush=True)
        for r in rows:
            print(f"  {r['specimen_id']} {r['family']:5s} {str(r['firing_class']):9s} ETV {r['etv'] or float('nan'):.3f} "
                  f"ceil {r['repeat_ceiling'] or float('nan'):.2f} gamma {r['gamma'] or float('nan'):.2f} "
                  f"rate {r['test_rate_hz'] or 0:.1f}/{r['predicted_rate_hz'] or 0:.1f} Hz "
                  f"tau_m {r['tau_m_ms'] or float('nan'):.1f} ({r['true_tau_m_ms']}) "
                  f"tau_a {r['tau_adapt_ms'] or float('nan'):.0f} ({r['true_tau_adapt_ms']}) {r['error']}", flush=True)


if __name__ == "__main__":
    main()
