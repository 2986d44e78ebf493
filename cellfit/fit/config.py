"""The configuration of a fit: every choice that determines it, saved with every result.

:class:`FitConfig` is frozen and round-trips through JSON (``to_dict``/``from_dict``);
:meth:`FitConfig.build_model` is the one place where the model of a fit is made
(training, scoring, reloading a saved result).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import torch

from cellfit.device import DTYPES, resolve_dtype
from cellfit.functional.alif import ENGINES, arp_steps
from cellfit.functional.surrogate import get_surrogate
from cellfit.modules import ALIF, SUB_AMP_MAX, V_RESET_MAX

__all__ = ["FitConfig", "inside_bounds", "AT_BOUND_TOLERANCE", "MODELS", "ADAPT_SEARCH", "GRID_RESTARTS", "fit_config"]

#: the model variants a fit can use, each a set of the ALIF layer's opt-in extensions
#: (:class:`cellfit.ALIF` ``reset`` / ``n_asc``): ``alif`` resets to rest and adapts its
#: threshold; ``_reset`` adds a learnable reset potential (doublets, bursts); ``_asc`` adds two
#: spike-triggered currents with their own time constants (adaptation currents,
#: after-depolarisations), as in the GLIF models of Teeter et al. 2018; ``alif_sub`` adds a linear
#: subthreshold adaptation current that follows the stimulus (:class:`cellfit.ALIF` ``sub``);
#: ``alif_sub_reset_asc`` has all three (the current only transforms the input, so every engine runs it as
#: ``alif_reset_asc``: a low-threshold spiking cell's rebound bursts need the current and the reset).
MODELS = {
    "alif": dict(reset=False, n_asc=0, sub=False),
    "alif_asc": dict(reset=False, n_asc=2, sub=False),
    "alif_reset": dict(reset=True, n_asc=0, sub=False),
    "alif_reset_asc": dict(reset=True, n_asc=2, sub=False),
    "alif_sub": dict(reset=False, n_asc=0, sub=True),
    "alif_sub_reset_asc": dict(reset=True, n_asc=2, sub=True),
}


#: how far inside its learnable bounds a starting time constant is placed (relative)
_BOUND_MARGIN = 1e-3


def inside_bounds(tau_ms: torch.Tensor, bounds: tuple) -> torch.Tensor:
    """Time constants moved strictly inside ``bounds`` (an estimate on a bound would have no gradient)."""
    lo, hi = bounds
    return tau_ms.clamp(lo * (1 + _BOUND_MARGIN), hi * (1 - _BOUND_MARGIN))


#: how close to a learnable bound a fitted parameter counts as "at the bound": a time constant within this
#: fraction of the bound (ratio), the reset potential within this fraction of its range. The bounds are
#: reached only in the limit (sigmoid parametrisation), so a value this close was pushed against the range.
AT_BOUND_TOLERANCE = 0.01


#: ``--restarts N``: the N best points of the initial grid, the one with the best validation ETV kept (with
#: N = 1, the default fit before round 4 of FITTING.md: one start, faster, tau_adapt often too short).
GRID_RESTARTS = dict(diverse_restarts=False, validation_veto=None)

#: ``--adapt-search``: the default's five starts (one per tau_adapt of the initial grid), the lowest final
#: training loss kept without a validation veto (no validation seconds loaded; FITTING.md, round 3).
ADAPT_SEARCH = dict(restarts=5, diverse_restarts=True, validation_veto=None, validation_s=0.0)


#: the final loss stage's choices (``FitConfig.final_loss``)
FINAL_LOSSES = ("van_rossum", "explained_variance")


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Everything that determines a fit (saved with every result)."""

    dt_ms: float = 0.1
    arp_ms: float = 2.0
    engine: str = "blocks"
    epochs: int = 200
    lr: float = 0.03
    """Adam learning rate on the unconstrained parameters (log-space time constants, gain, bias)."""
    patience: int = 5
    """Epochs without a better training loss before the learning rate is decayed."""
    sub_patience: Optional[int] = None
    """``patience`` for every candidate of a cell that the default search fits with ``alif_sub`` candidates (alone or
    both ways, :func:`cellfit.fit.init.initial_starts`; the start carries it, ``init["patience"]``, and so do the
    cell's refits). None (the default): ``patience`` for every cell. FITTING.md, round 29: 10 lifted 23 and lowered
    13 of 162 development cells (38 -> 29 below 0.7; the HH RS cells whose fits had not converged the most) and met its
    rule on three fresh test draws (7 -> 5 of 51 below 0.7), but lowers a guarded test cell (an AdEx cell with a strong
    spike-triggered current, 1.024 -> 0.638): opt-in for now."""
    sub_patience_scope: str = "any"
    """Which cells ``sub_patience`` applies to: ``"any"`` (every cell with ``alif_sub`` candidates, round 29) or
    ``"both_ways"`` (only the cells fitted both as ALIF and as ``alif_sub``, not those fitted ``alif_sub`` alone).
    FITTING.md, round 32: ``"both_ways"`` with ``sub_patience`` 10 and ``variant_choice="loss_and_validation"`` took
    162 development cells 38 -> 29 below 0.7 and three fresh test draws 7 -> 6 of 51 (5 up / 4 down), but as the
    default fails round 29's guard (the strongly adapting AdEx test cell): opt-in."""
    burst_patience: Optional[int] = None
    """``patience`` for every candidate of a cell whose training spikes burst (:func:`cellfit.fit.select.bursting`,
    the cells that get the bursting candidates, ``burst_candidates``; the start carries it, as ``sub_patience``'s).
    None (the default): ``patience``. FITTING.md, round 31: 10 took 162 development cells 38 -> 33 below 0.7 (the
    intrinsically bursting families), but on three fresh test draws lowered the mean (0.935 -> 0.918; an HH IB cell
    0.892 -> 0.083), 2 cells up and 3 down: opt-in."""
    lr_decay: float = 0.5
    max_decays: int = 4
    """A cell stops after this many decays followed by another ``patience`` epochs without progress."""
    min_improvement: float = 1e-4
    """Relative loss improvement that counts as progress."""
    van_rossum_tau_ms: float = 10.0
    """Time constant of the final training loss (the paper's 10 ms)."""
    coarse_to_fine_ms: tuple = (100.0, 30.0)
    """Larger van Rossum time constants used first, in order (empty: train on the final loss only)."""
    final_loss: str = "van_rossum"
    """The loss of the final stage (``van_rossum_tau_ms``): ``"van_rossum"``, the distance to the mean of the
    recorded repeats (the paper's); ``"explained_variance"``, one minus the held-out score's explained variance
    against the repeats, ``1 - 2 cov(x, m) / (var x + V)`` with x the model's filtered trains, m the repeats' mean
    and V the variance of one filtered repeat (mean over repeats), over the cell's stimuli concatenated as ETV
    concatenates epochs (:class:`cellfit.fit.loss.LossTargets`). The distance to the mean is lowest where the model's
    filtered train is that mean's projection, so where the repeats disagree a spike costs more than a miss; the
    explained variance is highest where the model varies about as much as one repeat does (that noise term turned
    out not to matter: with V the mean's own variance the fits gain as much, FITTING.md, after round 35). The coarse
    stages keep the van Rossum distance. FITTING.md, round 35: as every cell's loss it moved 122 of 162 development cells both
    ways (38 -> 36 below 0.7; the AdEx bursting and reset-near-threshold cells up, the HH IB cells down): not the
    default; see ``ev_rescue``."""
    surrogate: str = "multi_gaussian"
    init: str = "voltage"
    """``"voltage"``: tau_m, gain and bias from the subthreshold voltage (falls back to defaults
    without a voltage); ``"default"``: the fixed initial values below."""
    voltage_spike_tau_ms: tuple = (100.0,)
    """Time constants of a spike-triggered current in a second voltage-based start (``init="voltage"``): the
    subthreshold voltage fitted with that current too (the best of these time constants by residual), so that
    a slow after-spike hyperpolarisation is not taken for a slow membrane
    (:func:`cellfit.fit.init.subthreshold_init`); used as ``voltage_spike_ratio`` says. Empty: the leaky
    integrator alone (the start before round 6 of FITTING.md)."""
    voltage_spike_ratio: Optional[float] = 3.0
    """Use the start with the spike-triggered current only where the plain voltage fit was accepted and its
    tau_m is longer than this factor times the other's (the sign that the after-spike current was taken for
    the membrane); None: wherever the fit with the current succeeds. FITTING.md, round 6: everywhere
    (None) it fixed the strongly adapting probe cells but lowered the development panels (median 0.951 ->
    0.904); with 3 it changes no start of the 39 development cells and lifts the two failing probe cells
    (0.37 -> 0.99, 0.50 -> 0.84)."""
    grid_init: bool = True
    """Before training, try a grid of adaptation time constants, adaptation scales and bias shifts
    (forward passes only, all candidates in one batch) and start from the one with the lowest loss."""
    grid_tau_adapt_ms: tuple = (20.0, 50.0, 125.0, 300.0, 800.0)
    grid_adapt_scale: tuple = (0.05, 0.15, 0.4, 1.0, 2.5)
    grid_bias_shift: tuple = (-0.2, 0.0, 0.2, 0.4, 0.7)
    """Shifts of the initial bias (threshold units) tried with every (tau_adapt, d): the voltage-based
    bias of a cell outside the ALIF family can leave the model silent."""
    grid_gain_scale: tuple = (1.0, 2.0, 4.0)
    """Factors on the start's gain tried with every other grid point, the bias lowered so that the mean drive
    stays (:func:`cellfit.fit.init.grid_init`); each factor other than 1 gives its best grid point as one more
    start (the "gain starts"), besides the ``restarts`` starts of factor 1, when ``gain_starts`` says. A start
    whose gain is too small to follow the stimulus fires on its bias alone, and gradient descent does not
    leave that regime: its fit ends where it started. (1.0,): no gain starts."""
    gain_starts: str = "stuck"
    """When the starts of ``grid_gain_scale`` train: ``"stuck"`` only for a cell whose kept candidate (as the
    choice would keep it) never left its start, after the other candidates (its grid is then run again with the
    factors; FITTING.md, round 12), ``"stuck_or_silent"`` also for a cell whose kept candidate fires no spike on
    a training stimulus to which the cell fires at least once per repeat on average (:func:`cellfit.fit.select.
    silent_where_cell_fires`: a small-gain fit riding under threshold on its bias; FITTING.md, round 16), or
    ``"always"`` beside the other starts (studied, not adopted: it loses on the development cells)."""
    gain_choice: str = "loss"
    """How a cell's gain-start fits (``gain_starts``) compete with its other candidates: ``"loss"`` as any other
    start of their variant (the usual rule, :func:`cellfit.fit.select.choose`), or ``"train_etv"``: the usual
    rule keeps one of the other candidates, and a gain-start fit replaces it where its ETV on the cell's own
    training window is higher (the highest such one; a small-gain fit silent in the weaker epochs scores 0 there
    while its training loss may be the lower; FITTING.md, round 17)."""
    train_etv_switch: Optional[float] = 0.1
    """Another candidate the validation seconds do not veto (of any variant the cell was fitted with, or of the kept
    fit's own: ``train_etv_scope``) replaces the kept fit where its ETV on the cell's own training window is at
    least this much higher (the highest such one; the training loss, a distance to the repeats' mean, ranks the
    starts, and that ETV reads the same window in the held-out score's form without having been trained on it:
    :func:`cellfit.fit.select.choice`). Every cell's candidates
    are then scored on their training window (``selection.candidates[].train_etv``). None: off (the default before
    round 37). FITTING.md, round 37: 0.1 took 162 development cells 38 -> 35 below 0.7 (8 up, none down) and three
    fresh test draws 7 -> 4 of 51 (3 up, none down)."""
    train_etv_scope: str = "all"
    """Where ``train_etv_switch`` looks for a replacement: ``"all"``, the unvetoed starts of every variant the cell
    was fitted with (each variant's starts vetoed against its own best grid point, as within a variant), or
    ``"variant"``: the kept fit's model variant only (round 37). FITTING.md, round 38: "all" took 162 development
    cells 35 -> 34 below 0.7 (3 more up, none down) and three fresh test draws 9 -> 8 of 51 (1 up, none down)."""
    asc_rescue: Optional[float] = None
    """A cell kept as plain ALIF (``model="alif"``, the default choice) whose kept fit predicts the validation seconds
    with an ETV below this, and that has no after-spike candidates yet (not bursting or onset-bursting), is fitted
    again as each of ``asc_rescue_models`` from its ``restarts`` starts, after the other candidates; such a fit is
    kept where its training loss is ``extension_margin`` lower (as under ``model="auto"``) and, under
    ``asc_rescue_validation``, its validation ETV not lower. ALIF with a reset at
    threshold cannot make the doublets and short first intervals of a cell whose reset lies near its threshold,
    and such a cell's ALIF fit predicts the validation seconds poorly. None (the default): no such candidates.
    FITTING.md, round 34: 0.9 took 162 development cells 38 -> 34 below 0.7 (8 up / 2 down); on six fresh test draws
    12 of 102 below 0.7 either way, two cells up and two down (ALIF cells switched to after-spike fits): opt-in."""
    asc_rescue_models: tuple = ("alif_asc", "alif_reset_asc")
    """The variants a cell under ``asc_rescue`` is fitted as."""
    asc_rescue_validation: bool = True
    """Whether an ``asc_rescue`` fit replaces the ALIF fit only where it also predicts the validation seconds at
    least as well (besides its ``extension_margin`` lower loss): the rescue is for a cell ALIF predicts poorly
    there, and an after-spike fit that reaches a lower loss but predicts them worse is an over-fit of the training
    window (FITTING.md, round 34). False: the loss margin alone, as under ``model="auto"``."""
    ev_rescue: Optional[float] = None
    """A cell whose kept fit predicts the validation seconds with an ETV below this is fitted again, its whole
    search (candidates, choice, refits), with the explained-variance final loss (``final_loss``), and the second fit
    is kept where its own kept fit predicts the validation seconds at least ``ev_rescue_margin`` better
    (``selection.ev_rescue`` in the result says which). The two losses reach different fits on some cells, better on
    some families and worse on others, and the validation seconds tell them apart, mostly. Needs validation seconds (``validation_s``); nothing to do where
    ``final_loss`` is already ``"explained_variance"``; None (the default): off.
    FITTING.md, round 35: 0.9 took 162 development cells 38 -> 31 below 0.7 (20 up / 7 down); on three fresh test
    draws 6 of 51 below 0.7 either way, the mean 0.926 -> 0.912, four cells up and six down (the HH IB cells, whose
    validation seconds prefer the refit, fall each time): opt-in. Since round 36 a cell whose kept fit is a bursting
    start is not gated (``ev_rescue_bursting``)."""
    ev_rescue_margin: float = 0.05
    """How much higher the second fit's validation ETV must be for ``ev_rescue`` to keep it."""
    ev_rescue_bursting: bool = False
    """Whether ``ev_rescue`` also gates a cell whose kept fit is a bursting start (``burst_starts``). False: it does
    not, as the validation seconds do not judge such a fit (they come after the epoch's onset, which holds the bursts,
    and score good bursting fits about 0: the veto skips them for the same reason), so its low validation ETV is no
    sign of a poor fit and a refit's higher one no sign of a better. FITTING.md, round 36: on 162 development cells
    the three HH IB cells so gated fell each time under the refit (0.79 -> 0.74, 0.61 -> 0.07, 0.71 -> 0.57), and
    without them ``ev_rescue=0.9`` took 38 -> 30 below 0.7 (20 up / 4 down); on three fresh test draws it still lost
    (4 -> 5 of 51 below 0.7, one cell up, five down: regular-spiking and adapting cells), so ``ev_rescue`` stays
    opt-in. True is round 35's rule."""
    sub_reset_asc: bool = True
    """After the choice (``model="alif"``, with an ``extension_margin``): a kept ``alif_sub`` fit is trained again,
    from its own values, as ``alif_sub_reset_asc`` (the subthreshold current with a reset started at
    ``burst_reset_starts[0]`` and two after-spike currents at 0), and that fit is kept where its training loss is
    ``extension_margin`` lower (``selection.candidates`` lists it last, the basis says so). A low-threshold spiking
    cell bursts on release from hyperpolarisation: the current gives the rebound, the reset the burst. False: no such
    fit (before round 44). FITTING.md, round 43: on 162 development cells 34 -> 31 below 0.7 (8 up / 0 down; the HH
    LTS cell 8 -> 5 below); round 44: on 12 development cells next to the test HH LTS family 5 -> 1 below 0.7, and on
    six fresh test draws (110-115) 15 -> 14 of 102 (3 up / 0 down): the default since. A fit kept as this variant is
    not an ``alif_sub`` fit, so ``refit_models`` does not train it again."""
    burst_sub_reset: bool = False
    """With ``sub_reset_asc``: a kept ``alif_reset_asc`` fit (a bursting cell's reset fit) is also trained again, from
    its own values, as ``alif_sub_reset_asc`` with the subthreshold current at its default start (``sub_amp_init``,
    ``tau_sub_init_ms``; no bursting cell passes the voltage gate of the ``alif_sub`` starts), kept by the same rule
    (training loss ``extension_margin`` lower). False (the default): none. FITTING.md, round 50: on 31 development
    cells at 20% or more short intervals 2 up / 3 down (an IB cell 0.939 -> 0.523), so it was not pursued."""
    refit_models: tuple = ("alif_sub",)
    """Model variants whose kept fit is trained again, after the choice, on the training window and the validation
    seconds together (all of Noise 1 that the epoch holds), from its own fitted parameters and with the same
    schedule; that refit is the reported fit (scored on Noise 2), the parameter intervals reach both fits'
    values, and ``selection.refit`` in the result records it. The choice has used the validation seconds by then,
    so they no longer go to waste. Needs validation seconds (``validation_s``); a fit that fails keeps the first. A
    refitted cell gets no ``bias_tiebreak`` (which scores the validation seconds the refit trained on). Empty: no
    refit. FITTING.md, "After round 41" and round 42: on 162 development cells the kept ``alif_sub`` fits so
    trained went 17 -> 13 below 0.7 (15 up / 5 down), the bursting ``alif_reset_asc`` fits fell; ``("alif_sub",)``
    (the default since round 42) on fresh test draws 107-109: 5 of 51 below 0.7 either way, mean 0.948 -> 0.949,
    2 cells up and 1 down by more than 0.02."""
    refit_guard: bool = False
    """With ``refit_models``: the refit on all of Noise 1 is reported only where its ETV over the data it trained on
    (the training window and the validation seconds, every repeat and epoch) is at least the first fit's there; a
    refit that explains its own data less well than the first fit is dropped (``selection.refit_dropped`` in the
    result gives both ETVs) and the first fit is reported, as for a variant not refitted. False (the default): every
    refit is kept (round 42). FITTING.md, round 48: on the 35 refitted development cells it lowered five and raised
    one (3 -> 5 below 0.7); the refits that explain Noise 1 less well were mostly the ones that predict Noise 2
    better, so it was not pursued."""
    restarts: int = 5
    """Candidate fits per cell, trained together as neurons of one batched model; one is kept
    (:mod:`cellfit.fit.select`). The default: one start per tau_adapt of the initial grid (five), ranked by
    training loss with a validation veto (``diverse_restarts``, ``validation_veto``; FITTING.md, round 4)."""
    diverse_restarts: bool = True
    """Restarts from the best grid point of each other tau_adapt of the grid (instead of the next best
    points overall, which often share the first one's tau_adapt): the fit from one start stops in a local
    minimum along tau_adapt (below the truth on all 9 development ALIF cells). The bootstrap refits then
    start from the best grid point and train beside the restarts (:mod:`cellfit.fit.select`)."""
    validation_veto: Optional[float] = 0.1
    """How the candidates of one model variant are chosen. A number: the lowest final training loss among
    the candidates whose validation ETV is at least the first candidate's (the best grid point's) minus
    this value: starts of one model class on the same data are ranked by the loss they reach, and the
    validation seconds only veto a start that predicts them clearly worse (an over-fit). None: the highest
    validation ETV. Under ``model="auto"`` the veto chooses within each variant, and ``extension_margin``
    across them."""
    validation_penalty: Optional[float] = None
    """With a ``validation_veto``: the candidates of one variant that the veto keeps are ranked by their final
    training loss times ``1 + validation_penalty * (best - own validation ETV)`` (best: the highest among them),
    instead of the loss alone: a start whose loss is a little lower but that predicts the validation seconds
    clearly worse no longer wins outright. Not applied where the veto is not (bursting starts, a variant whose
    first candidate has no validation score). None (the default): the lowest loss (FITTING.md, round 21)."""
    bias_tiebreak: Optional[float] = None
    """After the choice: the kept fit's bias (normalised current units) is shifted in steps of
    ``bias_tiebreak_step`` up to this far each way; among the shifts around zero that leave the fit's spike count on
    every training stimulus unchanged (the training window cannot tell them apart), the one with the highest ETV on
    the validation seconds is kept (ties: the nearest to zero; :func:`cellfit.fit.select.bias_tiebreak`). A bursting
    fit's bias can move by several hundredths without changing its training counts while its prediction of new
    stimuli changes a lot. None (the default): the fitted bias. Needs validation seconds (``validation_s``). FITTING.md,
    round 26: 0.1 lifted 7 of 78 development cells and lowered 4, and on fresh test draws kept the cells below 0.7
    at 14 of 102 (draws 56-61), lifting bursting fits and lowering subthreshold-current (``alif_sub``) fits: opt-in."""
    bias_tiebreak_step: float = 0.01
    """The step of the shifts tried by ``bias_tiebreak``."""
    extension_margin: Optional[float] = 0.05
    """Under ``model="auto"`` with a ``validation_veto``: an extension's pick replaces the first variant's
    (ALIF's) only where its final training loss is lower by at least this fraction (the extensions hold
    the ALIF model, so their loss is never much higher: the margin is the price of their extra
    parameters). None: the variants' picks are compared on validation ETV (FITTING.md, round 4)."""
    variant_choice: str = "loss"
    """How the variants' picks of a cell that is not compared by its training-window ETV (a non-bursting cell,
    e.g. one fitted both as ALIF and ``alif_sub``) are compared, with a ``validation_veto`` and an
    ``extension_margin``. ``"loss"`` (the default): another variant's pick replaces the first's only where its
    final training loss is ``extension_margin`` lower. ``"loss_and_validation"``: only where its loss is that
    much lower and its validation ETV is not lower than the first's (an unscored pick ranks last).
    ``"validation"``: the pick with the highest validation ETV (the first's kept on ties and where no other
    scores higher). FITTING.md, round 27: on 162 development cells, 38 of which were fitted both ways,
    ``"validation"`` lifted 5 and lowered 1; on fresh test draws it raised the cells below 0.7 from 8 to 9 of 51
    (an HH RS cell 0.975 -> 0.672): opt-in. Round 30: ``"loss_and_validation"`` with ``sub_patience`` 10 (the
    longer training lowers the ``alif_sub`` losses of some adapting AdEx cells that ALIF predicts better) took 162
    development cells 38 -> 29 below 0.7 (25 up / 11 down) and three fresh test draws 9 -> 7 of 51, but there 4
    cells rose and 4 fell: opt-in."""
    validation_s: float = 2.0
    """Seconds of each Noise 1 epoch after the training window held out to choose among the candidates
    (0: choose by training loss; at most what the 3 s epoch leaves). Needs recordings that reach past the
    training window. Two seconds (all that a 1 s window leaves) chose better than one on the development
    panels when there was a choice (FITTING.md); with one candidate the score is only recorded."""
    bootstrap: int = 6
    """Refits of the kept fit on resampled training traces, whose spread gives the parameter intervals
    (0: none)."""
    bootstrap_spread: float = 2.5
    """Each refit starts from the kept fit's start with tau_m and tau_adapt multiplied by a factor drawn
    log-uniformly from [1/spread, spread] (default: one step of the initial grid each way), so that a time
    constant the data do not pin down ends where it started and its interval shows it (1: the same start)."""
    bootstrap_spread_adapt: Optional[float] = None
    """The same factor for tau_adapt alone (None: ``bootstrap_spread``). A spread of 5 put the truth
    inside the flagged tau_adapt interval of 4 of 9 development ALIF cells instead of 1, but of 0 of 4
    test-panel cells, as before, with wider intervals: so not the default (FITTING.md)."""
    interval_level: float = 0.8
    """Central fraction of the bootstrap refits that a parameter's interval covers."""
    undetermined_ratio: float = 1.5
    """A time constant whose interval spans more than this factor (hi / lo) is flagged as undetermined."""
    equivalent_loss: Optional[float] = 0.02
    """Candidates of the kept fit's variant that the choice did not veto and whose final training loss is
    within this fraction of the kept one's are fits the data cannot tell apart: every interval is widened to
    contain their values (:func:`cellfit.fit.select.equivalent_candidates`; None: the refits alone). Chosen
    on the development panels (FITTING.md, round 5): 0.02 put the truth inside the one tau_adapt interval
    that missed it, with the median width unchanged; 0.05-0.2 did the same with wider intervals."""
    equivalent_validation: Optional[float] = 0.0
    """Also fits the data cannot tell apart (round 33): the candidates of the kept fit's variant, not vetoed, whose
    validation ETV is at least the kept one's minus this (0: as high or higher), where the validation seconds judge
    that variant. The training loss ranks the starts, but a start the held-in validation seconds score as well
    as the kept fit is not ruled out by the data either. None: the loss margin alone (``equivalent_loss``; the
    default before round 41). FITTING.md, rounds 33 (opt-in) and 41 (the default, with ``weak_adaptation`` 0.05)."""
    equivalent_train_etv: Optional[float] = None
    """Also fits the data cannot tell apart (round 41): the candidates of the kept fit's variant, not vetoed, whose
    ETV on the cell's own training window (scored for the choice, ``train_etv_switch``) is at least the kept one's
    minus this (0: as high or higher). The choice keeps the lowest training loss unless another start's
    training-window ETV is ``train_etv_switch`` higher; a start that explains the training window as well as the kept
    fit is not ruled out by the data either (the training-window ETV is then scored for every cell). None: off."""
    weak_adaptation: Optional[float] = 0.05
    """A kept fit whose spike-triggered adaptation (``adapt_scale``, threshold units per spike) is weaker than
    this: its tau_adapt interval spans ``tau_adapt_bounds_ms`` (and is flagged), since an adaptation that weak
    barely moves the spikes and the data cannot time it (fits of such cells put tau_adapt anywhere between
    50 and 350 ms whatever the truth). None: the refits' interval as for any other cell. FITTING.md, rounds 22
    (opt-in, 0.03) and 23 (0.03 the default, with ``start_gap`` 1.0 and ``bound_gap`` 0.25); round 33: 0.05 with
    ``equivalent_validation`` 0 held every development truth, opt-in (no fresh test target changed); round 41: the
    same on round 38's fits (129 of 129 development and probe truths inside, against 119; fresh test draws 104-106:
    12 of 12 against 11), the default since."""
    start_gap: Optional[float] = 1.0
    """Each end of the tau_adapt interval is then moved this fraction of the way (in log tau_adapt) towards
    the fitted tau_adapt of the nearest start outside the interval on that side (the kept fit's variant, not
    failed, vetoed or not; :func:`cellfit.fit.select.widen_to_starts`). Gradient descent moves a start's
    tau_adapt only part of the way, so the starts sample tau_adapt on a coarse grid, and the gap between the
    interval and the next start was never tried; 1.0 reaches the next start. None: no such widening.
    FITTING.md, round 7 (0.5, the geometric midpoint: the truth inside 20 of 21 development and probe intervals
    instead of 18) and round 23 (1.0 with ``bound_gap`` 0.25 and ``weak_adaptation`` 0.03: inside 51 of 51
    instead of 46, median width 4.7x -> 9.7x; on fresh test draws 10 of 12 instead of 9), at no cost in fit time."""
    bound_gap: Optional[float] = 0.25
    """An end of the tau_adapt interval with no start beyond it (the interval already holds the outermost
    start's tau_adapt on that side, of a search from two or more starts) is moved this fraction of the way
    (in log) towards ``tau_adapt_bounds_ms`` on that side: beyond the outermost start nothing was tried
    either (:func:`cellfit.fit.select.widen_to_starts`). None: such an end stays (FITTING.md, round 23)."""
    tau_mem_init_ms: float = 20.0
    tau_adapt_init_ms: float = 100.0
    adapt_scale_init: float = 0.5
    gain_init: float = 1.5
    bias_init: float = 0.5
    tau_mem_bounds_ms: tuple = (1.0, 200.0)
    tau_adapt_bounds_ms: tuple = (5.0, 5000.0)
    model: str = "alif"
    """The model variant (:data:`MODELS`), or ``"auto"``: fit every one of ``candidate_models`` and keep,
    per cell, the one that predicts the validation data best."""
    candidate_models: tuple = ("alif", "alif_asc", "alif_reset_asc")
    """The variants ``model="auto"`` chooses among."""
    burst_fraction: Optional[float] = 0.2
    """With ``model="alif"`` (the default): a cell whose training spikes burst, at least this fraction of its
    inter-spike intervals shorter than ``burst_isi_ms`` (:func:`cellfit.fit.select.bursting`), also gets
    ``burst_model`` candidates, one from each of ``burst_starts`` (the best grid point with depolarising, then
    hyperpolarising after-spike currents), and one ``alif_reset_asc`` candidate per ``burst_reset_starts``. The
    lowest training loss among each variant's candidates is its pick, and ``burst_choice`` says whether another
    variant's pick replaces ALIF's; the validation seconds do not veto them (they come after the epoch's onset,
    which holds the bursts: such fits score about 0 there and up to 0.93 on held-out onsets). Cells that do not
    burst cost nothing more. None: never (``--model alif``). FITTING.md, rounds 8 and 13; 0.3 until round 46 (0.2 with
    ``burst_sub_below`` lifted 6 of the 29 development cells with 10-30% short intervals and lowered none)."""
    burst_isi_ms: float = 10.0
    """An inter-spike interval shorter than this counts as within a burst (above 100 Hz)."""
    burst_sub_below: Optional[float] = 0.3
    """A bursting cell (``burst_fraction``) with fewer than this fraction of its training intervals shorter than
    ``burst_isi_ms`` keeps the subthreshold-current (``alif_sub``) starts a cell that does not burst would get, beside
    its bursting candidates (None: a bursting cell gets no ``alif_sub`` start, as from round 10 to 45; 0.3, the old
    gate: the cells the lower gate adds keep them). FITTING.md, round 46."""
    onset_burst_fraction: Optional[float] = None
    """With the bursting candidates on (:attr:`burst_candidates`): a cell that does not burst by ``burst_fraction``
    but whose training traces start with a burst, the first inter-spike interval shorter than ``burst_isi_ms`` in at
    least this fraction of the traces with two spikes (:func:`cellfit.fit.select.onset_bursting`; a low-threshold
    spiking cell's burst from rest), also gets the ``alif_reset_asc`` candidates of ``burst_reset_starts`` (a reset
    above the adapted threshold bursts at an onset and fires single spikes once adaptation has built up), and its
    variants are compared as a bursting cell's (``burst_choice``). It keeps its own starts (``alif_sub`` too) and
    gets no ``burst_starts`` candidates. None: never (the default: round 15 chose 0.7 on the development panels, and
    no cell of its fresh test draws passed the gate, so they could not confirm it). FITTING.md, round 15."""
    onset_reset_high: bool = True
    """With ``onset_burst_fraction``: the onset-bursting cell's reset candidates are fitted in ``high_reset_bounds``
    whatever their start (the reset may rise above the base threshold: a burst from rest; they compete as a variant
    of their own); False: in ``v_reset_bounds``, as a bursting cell's from the same start."""
    onset_restarts: int = 1
    """With ``onset_burst_fraction``: the onset-bursting cell's reset candidates start from each of its this many
    best starts (the ranked grid points of its first start; 1: the best alone), the lowest
    training loss among them the reset variant's pick."""
    burst_restarts: int = 1
    """A bursting cell's ``burst_starts`` candidates start from each of its this many best starts (the ranked grid
    points of its first start, as ``onset_restarts``; 1: the best alone, the default), the lowest training loss among
    them the bursting variant's pick. Round 20 tried 3 on the development panels: it lifted IB cells there, but on a
    test cell several fits of nearly the same training loss and training-window ETV differed from 0.08 to 0.82 on
    held-out data, and the choice kept the worst. FITTING.md, round 20."""
    burst_reset_restarts: int = 3
    """A bursting cell's ``burst_reset_starts`` candidates start from each of its this many best starts (as
    ``burst_restarts``; 1: the best alone, the default of rounds 13-19), the lowest training loss among them the
    reset variant's pick. FITTING.md, round 20."""
    burst_model: str = "alif_asc"
    """The model variant of the bursting candidates (two after-spike currents)."""
    burst_starts: tuple = (((1.5, -1.0), (50.0, 500.0)), ((2.0, -1.0), (50.0, 1000.0)))
    """``((amplitudes), (time constants ms))`` of the after-spike currents of each bursting candidate's start: a
    fast depolarising current that keeps a burst going and a slow hyperpolarising one that ends it."""
    burst_reset_starts: tuple = (0.8, 1.4)
    """Reset potentials (threshold units) of more candidates for a bursting cell: ``alif_reset_asc`` from each of
    the cell's ``burst_reset_restarts`` best grid points with its reset started there and its after-spike currents
    at 0 (a reset near threshold bursts without a depolarising current, as the AdEx cells do). Empty: none (the
    default before round 13). A start at or above ``v_reset_bounds``' high end (a reset above the base threshold,
    1.4) is fitted in ``high_reset_bounds`` instead, and competes as a variant of its own: a regular-bursting cell
    whose reset lies above threshold bursts until adaptation lifts the threshold above it. ``(0.8,)`` was the
    default of rounds 13-44 (round 14's ``(0.8, 1.4)`` was chosen on the development panels and not confirmed on
    fresh test draws then); ``(0.8, 1.4)`` since round 45: on 30 bursting development cells 9 -> 4 below 0.7, on 24
    development cells next to the regular-bursting test AdEx IB family 9 -> 8 (7 up / 0 down), on six fresh test
    draws 10 -> 8 of 102 (5 up / 1 down). The first start is also ``sub_reset_asc``'s. FITTING.md, rounds 13, 14, 20
    and 45."""
    burst_choice: str = "train_etv"
    """How a bursting cell's model variants are compared (each variant's pick made as usual): ``"loss"``, another
    variant's pick replaces ALIF's where its training loss is ``extension_margin`` lower (round 8);
    ``"train_etv"``, the pick whose ETV on the training window itself is the highest (ALIF's unless another's is
    higher; the default since round 13). FITTING.md, round 13."""
    burst_variant_margin: float = 0.0
    """Under ``burst_choice == "train_etv"``: another variant's pick replaces ALIF's only where its training-window
    ETV is higher by more than this (0: by anything, rounds 13-46; the window's ETV of two fits of one cell can differ
    by a few hundredths by chance). FITTING.md, round 47: at 0.05 it lowered two of 28 development cells and raised
    none (the near-ties it undid there were the better fits), so it was not pursued."""
    burst_agree_below: Optional[float] = None
    """Under ``burst_choice == "train_etv"``: a bursting cell with fewer than this fraction of its training intervals
    shorter than ``burst_isi_ms`` keeps another variant's pick over ALIF's only where that pick's validation ETV is
    higher too, not its training-window ETV alone, and the training-window switch (``train_etv_switch``) moves to a
    start of another variant only on the same terms (None: the training window alone, rounds 13-50). Near the
    bursting gate the window's ETV alone chose bursting fits that predicted new data worse. FITTING.md, round 51: with
    the gate (``burst_fraction``) at 0.1 and this at 0.2, 29 development cells with 10-30% short intervals went from a
    mean of 0.907 to 0.931 (4 below 0.7 either way) and 4 probe cells from 2 to 1 below 0.7; on fresh test draws
    128-133 no cell moved by 0.02 (few test cells lie at 10-20%), so it is opt-in."""
    asc_tau_init_ms: tuple = (10.0, 200.0)
    """Starting time constants of the spike-triggered currents (amplitudes start at 0: the ALIF model)."""
    v_reset_bounds: tuple = (-1.0, 0.95)
    """Learnable range of the reset potential (threshold units; the base threshold is 1). The high end may lie
    above 1, up to ``cellfit.modules.V_RESET_MAX`` (a neuron then fires again as soon as its refractory period ends,
    until adaptation lifts its threshold above the reset); the default keeps the reset below threshold."""
    high_reset_bounds: tuple = (-1.0, 1.8)
    """Learnable range of the reset of a candidate whose reset start lies at or above ``v_reset_bounds``' high
    end (``burst_reset_starts``): its own range, so that the other reset fits keep theirs. The range travels
    with the fit (``init["v_reset_bounds"]``), so that a saved result reloads with it."""
    tau_asc_bounds_ms: tuple = (1.0, 2000.0)
    """Learnable range of the spike-triggered currents' time constants."""
    sub_r2_gain: Optional[float] = 0.15
    """With ``model="alif"`` (the default) and the voltage start: a cell whose subthreshold voltage a subthreshold
    adaptation current that follows the stimulus explains better by at least this much (R^2, the plain fit
    explaining at least ``sub_min_r2``; :func:`cellfit.fit.init.sub_start`) is fitted as ``alif_sub`` from that
    voltage fit instead of ALIF (a bursting cell never: it gets the bursting candidates). None: never (``--model
    alif``). FITTING.md, round 10."""
    sub_alone: bool = True
    """With ``sub_r2_gain``: whether a cell whose voltage gains ``sub_r2_gain`` is fitted as ``alif_sub`` alone (True,
    round 10) or both ways, as ALIF and as ``alif_sub`` from the same two voltage fits, the variants then compared as
    for the cells of the ``sub_zone_gain`` zone (False). FITTING.md, round 28: False lowered 4 of the 21 development
    and probe cells fitted ``alif_sub`` alone and lifted none (not pursued)."""
    sub_min_r2: float = 0.5
    """The plain voltage fit must explain at least this much of the subthreshold voltage (else it says little).
    Round 17 studied 0.3: its development cells (regular-spiking Hodgkin-Huxley cells with a strong I_M or a weak
    delayed rectifier, plain fits 0.31-0.50) gained from ``alif_sub``, but on fresh test draws AdEx adapting and
    RS cells in that range lost more than the test's HH RS cells gained (not adopted). FITTING.md, round 17."""
    sub_low_r2: Optional[float] = 0.3
    """With ``sub_r2_gain``: a cell whose plain voltage fit explains at least this much but less than ``sub_min_r2``
    (a rejected plain fit counts as :data:`cellfit.fit.init.VOLTAGE_MIN_R2`) and whose fit with the current explains
    ``sub_r2_gain`` more is fitted both ways, as a cell of the ``sub_zone_gain`` zone (``alif_sub`` kept where its
    training loss is ``extension_margin`` lower). None (or not under ``sub_min_r2``): such a cell is fitted as ALIF.
    Studied in round 17 (0.0: lost on development AdEx cells), 0.3 since round 18. FITTING.md, rounds 17-18."""
    sub_default_below: Optional[float] = None
    """With ``sub_r2_gain``: a cell whose plain voltage fit explains less than this (a rejected plain fit counts as
    :data:`cellfit.fit.init.VOLTAGE_MIN_R2`), that got no ``alif_sub`` start above, whose fit with the current
    explains ``sub_r2_gain`` more (whatever its amplitude) and whose voltage after a spike is at least
    ``sub_default_reset`` is fitted both ways, its ``alif_sub`` candidates starting from the plain start with the
    default current (``sub_amp_init``, ``tau_sub_init_ms``), not from that voltage fit; ``alif_sub`` kept where its
    training loss is ``extension_margin`` lower. None (the default): such a cell is fitted as ALIF. Round 19 chose
    0.3 (the low end of ``sub_low_r2``'s band) on 108 development cells (23 -> 21 below 0.7); on fresh test draws it
    changed one cell, down (0.760 -> 0.730), so it is opt-in. FITTING.md, round 19."""
    sub_default_reset: float = 0.5
    """With ``sub_default_below``: the least median voltage (threshold units) 5 ms after the cell's spikes
    (:func:`cellfit.fit.init.post_spike_voltage`): a reset near threshold. FITTING.md, round 19."""
    sub_zone_gain: Optional[float] = 0.05
    """With ``sub_r2_gain``: a cell whose voltage fit with the current explains at least this much more but less than
    ``sub_r2_gain`` more (the rest as there) gets ``alif_sub`` candidates from that voltage fit beside its ALIF ones
    (the same search), kept where their training loss is ``extension_margin`` lower. None: no such candidates.
    FITTING.md, round 11."""
    sub_tau_grid_ms: tuple = (30.0, 100.0, 300.0, 1000.0)
    """Time constants of the subthreshold current tried in the voltage fit (the best by residual is the start)."""
    sub_amp_init: float = 0.5
    """Starting amplitude k of the subthreshold adaptation current (``alif_sub``; the fraction of a sustained
    stimulus it cancels, below :data:`cellfit.modules.SUB_AMP_MAX`)."""
    tau_sub_init_ms: float = 300.0
    """Starting time constant of the subthreshold adaptation current."""
    tau_sub_bounds_ms: tuple = (10.0, 3000.0)
    """Learnable range of the subthreshold adaptation current's time constant."""
    dtype: str = "float32"

    def __post_init__(self):
        arp_steps(self.arp_ms, self.dt_ms)  # raises a clear ValueError
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {sorted(ENGINES)}, got {self.engine!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.ev_rescue is not None and not self.ev_rescue > 0.0:
            raise ValueError(f"ev_rescue must be None or a validation ETV > 0, got {self.ev_rescue!r}")
        if not self.ev_rescue_margin >= 0.0:
            raise ValueError(f"ev_rescue_margin must be >= 0, got {self.ev_rescue_margin!r}")
        if self.final_loss not in FINAL_LOSSES:
            raise ValueError(f"final_loss must be one of {list(FINAL_LOSSES)}, got {self.final_loss!r}")
        if self.init not in ("voltage", "default"):
            raise ValueError(f"init must be 'voltage' or 'default', got {self.init!r}")
        if self.restarts < 1 or self.bootstrap < 0:
            raise ValueError(f"restarts must be >= 1 and bootstrap >= 0, got {self.restarts}, {self.bootstrap}")
        if self.validation_veto is not None and not self.validation_veto >= 0.0:
            raise ValueError(f"validation_veto must be None or >= 0, got {self.validation_veto}")
        if self.weak_adaptation is not None and not self.weak_adaptation >= 0.0:
            raise ValueError(f"weak_adaptation must be None or >= 0, got {self.weak_adaptation}")
        if not self.bias_tiebreak_step > 0.0 or (self.bias_tiebreak is not None
                                                 and not self.bias_tiebreak >= self.bias_tiebreak_step):
            raise ValueError(f"bias_tiebreak must be None or at least bias_tiebreak_step, and bias_tiebreak_step > 0, "
                             f"got {self.bias_tiebreak}, {self.bias_tiebreak_step}")
        if self.validation_penalty is not None and not self.validation_penalty >= 0.0:
            raise ValueError(f"validation_penalty must be None or >= 0, got {self.validation_penalty}")
        for name in ("sub_patience", "burst_patience"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be None or a whole number >= 1, got {value!r}")
        if self.sub_patience_scope not in ("any", "both_ways"):
            raise ValueError(f"sub_patience_scope must be 'any' or 'both_ways', got {self.sub_patience_scope!r}")
        if self.variant_choice not in ("loss", "loss_and_validation", "validation"):
            raise ValueError(f"variant_choice must be 'loss', 'loss_and_validation' or 'validation', "
                             f"got {self.variant_choice!r}")
        if self.extension_margin is not None and not (0.0 <= self.extension_margin < 1.0):
            raise ValueError(f"extension_margin must be None or in [0, 1), got {self.extension_margin}")
        if 1.0 not in self.grid_gain_scale or not all(g > 0.0 for g in self.grid_gain_scale) or len(
                set(self.grid_gain_scale)) != len(self.grid_gain_scale):
            raise ValueError(f"grid_gain_scale must hold 1.0 (the start's own gain) and other distinct factors > 0, "
                             f"got {self.grid_gain_scale}")
        if self.gain_starts not in ("always", "stuck", "stuck_or_silent"):
            raise ValueError(f"gain_starts must be 'always', 'stuck' or 'stuck_or_silent', got {self.gain_starts!r}")
        if self.asc_rescue is not None and not self.asc_rescue > 0.0:
            raise ValueError(f"asc_rescue must be None or a validation ETV > 0, got {self.asc_rescue!r}")
        if not all(m in MODELS and m != "alif" and not MODELS[m]["sub"] for m in self.asc_rescue_models):
            raise ValueError(f"asc_rescue_models must name variants other than alif and alif_sub, "
                             f"got {self.asc_rescue_models}")
        if self.sub_reset_asc and not self.burst_reset_starts:
            raise ValueError("sub_reset_asc (on by default) starts its reset at burst_reset_starts[0]: give "
                             "burst_reset_starts a value, or set sub_reset_asc=False")
        if not all(m in MODELS for m in self.refit_models):
            raise ValueError(f"refit_models must name model variants ({', '.join(MODELS)}), got {self.refit_models!r}")
        if self.train_etv_switch is not None and not self.train_etv_switch >= 0.0:
            raise ValueError(f"train_etv_switch must be None or >= 0, got {self.train_etv_switch!r}")
        if self.train_etv_scope not in ("variant", "all"):
            raise ValueError(f"train_etv_scope must be 'variant' or 'all', got {self.train_etv_scope!r}")
        if self.gain_choice not in ("loss", "train_etv"):
            raise ValueError(f"gain_choice must be 'loss' or 'train_etv', got {self.gain_choice!r}")
        if not (0.0 <= self.validation_s <= 2.0):
            raise ValueError(f"validation_s must lie in [0, 2] s (the rest of a 3 s epoch), got {self.validation_s}")
        if not self.bootstrap_spread >= 1.0 or not (self.bootstrap_spread_adapt or 1.0) >= 1.0:
            raise ValueError(f"bootstrap_spread and bootstrap_spread_adapt must be >= 1, got {self.bootstrap_spread}, "
                             f"{self.bootstrap_spread_adapt}")
        if self.voltage_spike_ratio is not None and not self.voltage_spike_ratio >= 1.0:
            raise ValueError(f"voltage_spike_ratio must be None or >= 1, got {self.voltage_spike_ratio}")
        if self.equivalent_loss is not None and not self.equivalent_loss >= 0.0:
            raise ValueError(f"equivalent_loss must be None or >= 0, got {self.equivalent_loss}")
        if self.equivalent_validation is not None and not self.equivalent_validation >= 0.0:
            raise ValueError(f"equivalent_validation must be None or >= 0, got {self.equivalent_validation}")
        if self.equivalent_train_etv is not None and not self.equivalent_train_etv >= 0.0:
            raise ValueError(f"equivalent_train_etv must be None or >= 0, got {self.equivalent_train_etv}")
        if self.start_gap is not None and not (0.0 <= self.start_gap <= 1.0):
            raise ValueError(f"start_gap must be None or in [0, 1], got {self.start_gap}")
        if self.bound_gap is not None and not (0.0 <= self.bound_gap <= 1.0):
            raise ValueError(f"bound_gap must be None or in [0, 1], got {self.bound_gap}")
        if not (0.0 < self.interval_level < 1.0) or not self.undetermined_ratio > 1.0:
            raise ValueError(f"interval_level must lie in (0, 1) and undetermined_ratio be > 1, got "
                             f"{self.interval_level}, {self.undetermined_ratio}")
        if not (math.isfinite(self.burst_variant_margin) and self.burst_variant_margin >= 0.0):
            raise ValueError(f"burst_variant_margin must be a finite number >= 0, got {self.burst_variant_margin}")
        if self.burst_agree_below is not None and not 0.0 < self.burst_agree_below <= 1.0:
            raise ValueError(f"burst_agree_below must be None or in (0, 1], got {self.burst_agree_below}")
        if self.burst_sub_below is not None and not 0.0 < self.burst_sub_below <= 1.0:
            raise ValueError(f"burst_sub_below must be None or in (0, 1], got {self.burst_sub_below}")
        if self.burst_fraction is not None and not (0.0 < self.burst_fraction <= 1.0 and self.burst_isi_ms > 0.0):
            raise ValueError(f"burst_fraction must be None or in (0, 1] and burst_isi_ms > 0, got "
                             f"{self.burst_fraction}, {self.burst_isi_ms}")
        if self.onset_burst_fraction is not None and not 0.0 < self.onset_burst_fraction <= 1.0:
            raise ValueError(f"onset_burst_fraction must be None or in (0, 1], got {self.onset_burst_fraction}")
        if min(self.onset_restarts, self.burst_restarts, self.burst_reset_restarts) < 1:
            raise ValueError(f"onset_restarts, burst_restarts and burst_reset_restarts must be at least 1, got "
                             f"{self.onset_restarts}, {self.burst_restarts}, {self.burst_reset_restarts}")
        if self.sub_r2_gain is not None and not (self.sub_r2_gain > 0.0 and 0.0 <= self.sub_min_r2 < 1.0
                                                 and self.sub_tau_grid_ms):
            raise ValueError(f"sub_r2_gain must be None or > 0, sub_min_r2 in [0, 1) and sub_tau_grid_ms not empty, got "
                             f"{self.sub_r2_gain}, {self.sub_min_r2}, {self.sub_tau_grid_ms}")
        if self.sub_low_r2 is not None and not 0.0 <= self.sub_low_r2 < 1.0:
            raise ValueError(f"sub_low_r2 must be None or in [0, 1), got {self.sub_low_r2}")
        if self.sub_default_below is not None and not 0.0 < self.sub_default_below <= 1.0:
            raise ValueError(f"sub_default_below must be None or in (0, 1], got {self.sub_default_below}")
        if self.sub_zone_gain is not None and self.sub_r2_gain is not None and not (
                0.0 < self.sub_zone_gain < self.sub_r2_gain):
            raise ValueError(f"sub_zone_gain must be None or in (0, sub_r2_gain {self.sub_r2_gain}), got "
                             f"{self.sub_zone_gain}")
        if self.burst_model not in MODELS or not MODELS[self.burst_model]["n_asc"]:
            raise ValueError(f"burst_model must be a variant with after-spike currents "
                             f"({[m for m in MODELS if MODELS[m]['n_asc']]}), got {self.burst_model!r}")
        for amp, tau in self.burst_starts:
            if not len(amp) == len(tau) == MODELS[self.burst_model]["n_asc"]:
                raise ValueError(f"each of burst_starts needs {MODELS[self.burst_model]['n_asc']} amplitudes and time "
                                 f"constants, got {amp}, {tau}")
        lo, hi = self.v_reset_bounds
        hlo, hhi = self.high_reset_bounds
        if not (lo < hi <= V_RESET_MAX and hlo < hi < hhi <= V_RESET_MAX):
            raise ValueError(f"v_reset_bounds {self.v_reset_bounds} and high_reset_bounds {self.high_reset_bounds} "
                             f"need low < high <= {V_RESET_MAX:g}, the second's high above the first's")
        if not all(lo < float(v) < hi or hi <= float(v) < hhi for v in self.burst_reset_starts):
            raise ValueError(f"burst_reset_starts must lie inside v_reset_bounds {self.v_reset_bounds} or, from its high "
                             f"end on, inside high_reset_bounds {self.high_reset_bounds}, got {self.burst_reset_starts}")
        if self.burst_choice not in ("loss", "train_etv"):
            raise ValueError(f"burst_choice must be 'loss' or 'train_etv', got {self.burst_choice!r}")
        for name in (self.model, *self.candidate_models):
            if name not in MODELS and not (name == "auto" and name == self.model):
                raise ValueError(f"unknown model {name!r}; choose one of {['auto', *MODELS]}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}")
        get_surrogate(self.surrogate)

    @property
    def loss_taus_ms(self) -> list[float]:
        """Van Rossum time constants of the loss stages, in order (coarse first, the final loss last)."""
        return [t for t in self.coarse_to_fine_ms if t > self.van_rossum_tau_ms] + [self.van_rossum_tau_ms]

    @property
    def models(self) -> tuple:
        """The variants fitted to every cell: ``candidate_models`` under ``model="auto"``, else ``(model,)``."""
        return tuple(self.candidate_models) if self.model == "auto" else (self.model,)

    def variant_start(self, model: str) -> dict:
        """The starting values of ``model``'s extra parameters (the ALIF model: no reset, no currents)."""
        n_asc = MODELS[model]["n_asc"]
        start = dict(model=model)
        if MODELS[model]["reset"]:
            start["v_reset"] = 0.0
        if n_asc:
            start.update(asc_amp=[0.0] * n_asc, tau_asc_ms=list(self.asc_tau_init_ms[:n_asc]))
        if MODELS[model]["sub"]:
            start.update(sub_amp=self.sub_amp_init, tau_sub_ms=self.tau_sub_init_ms)
        return start

    @property
    def asc_rescue_candidates(self) -> bool:
        """Whether cells kept as plain ALIF with a poor validation ETV get after-spike candidates (:attr:`asc_rescue`
        set, ``model="alif"`` and the default choice, as for :attr:`burst_candidates`)."""
        return (self.asc_rescue is not None and self.model == "alif" and self.validation_veto is not None
                and self.extension_margin is not None)

    @property
    def sub_candidates(self) -> bool:
        """Whether cells whose voltage shows a subthreshold current start as ``alif_sub`` (:attr:`sub_r2_gain` set,
        ``model="alif"``, the voltage start and the default choice, as for :attr:`burst_candidates`)."""
        return (self.sub_r2_gain is not None and self.model == "alif" and self.init == "voltage"
                and self.validation_veto is not None and self.extension_margin is not None)

    @property
    def burst_candidates(self) -> bool:
        """Whether bursting cells get the ``burst_starts`` candidates: ``burst_fraction`` set, ``model="alif"`` and
        the default choice (a validation veto and an ``extension_margin``; not ``--restarts`` or ``--adapt-search``)."""
        return (self.burst_fraction is not None and self.model == "alif" and bool(self.burst_starts)
                and self.validation_veto is not None and self.extension_margin is not None)

    def burst_reset_start(self, v_reset: float) -> dict:
        """The extra starting values of the bursting cell's candidate with its reset started at ``v_reset``
        (:attr:`burst_reset_starts`)."""
        start = dict(self.variant_start("alif_reset_asc"), v_reset=float(v_reset), reset_start=float(v_reset))
        if float(v_reset) >= self.v_reset_bounds[1]:  # above the usual range: fitted in its own
            start["v_reset_bounds"] = [float(b) for b in self.high_reset_bounds]
        return start

    def onset_reset_start(self, v_reset: float) -> dict:
        """The extra starting values of an onset-bursting cell's reset candidate (:attr:`onset_burst_fraction`):
        :meth:`burst_reset_start`, in ``high_reset_bounds`` under :attr:`onset_reset_high`."""
        start = self.burst_reset_start(v_reset)
        if self.onset_reset_high:
            start["v_reset_bounds"] = [float(b) for b in self.high_reset_bounds]
        return start

    def burst_start(self, index: int) -> dict:
        """The extra starting values of bursting candidate ``index`` (:attr:`burst_starts`)."""
        amp, tau = self.burst_starts[index]
        return dict(self.variant_start(self.burst_model), asc_amp=[float(a) for a in amp],
                    tau_asc_ms=[float(t) for t in tau], burst=index + 1)

    def bounds(self, init: Optional[dict] = None) -> dict:
        """``{parameter name: (low, high)}`` of the learnable ranges, named as in the fitted parameters
        (:func:`cellfit.fit.fitter.parameter_names`; ``tau_asc_ms`` stands for every ``tau_asc_j_ms``); those of
        the fit started from ``init`` where it carries its own reset range (:meth:`burst_reset_start`)."""
        return dict(tau_m_ms=tuple(self.tau_mem_bounds_ms), tau_adapt_ms=tuple(self.tau_adapt_bounds_ms),
                    tau_asc_ms=tuple(self.tau_asc_bounds_ms), v_reset=self.reset_bounds(init),
                    sub_amp=(0.0, SUB_AMP_MAX), tau_sub_ms=tuple(self.tau_sub_bounds_ms))

    def reset_bounds(self, init: Optional[dict] = None) -> tuple:
        """The reset range of the fit started from ``init``: its own (``init["v_reset_bounds"]``) or
        :attr:`v_reset_bounds`."""
        own = (init or {}).get("v_reset_bounds")
        return tuple(float(b) for b in own) if own is not None else tuple(self.v_reset_bounds)

    def at_bound(self, params: dict, init: Optional[dict] = None) -> list[str]:
        """The names among ``params`` (fitted parameters, physical units) that ended at a learnable bound
        (:data:`AT_BOUND_TOLERANCE`): the loss pushed them against the range, so the value is a limit of
        the range, not an estimate (for example tau_m at 200 ms on a cell the model class does not describe).
        ``init``: the fit's start, for a reset range of its own."""
        bounds = self.bounds(init)
        out = []
        for name, value in params.items():
            key = "tau_asc_ms" if name.startswith("tau_asc_") else name
            if key not in bounds or value is None or not math.isfinite(value):
                continue
            lo, hi = bounds[key]
            if key.endswith("_ms"):  # time constants: by ratio
                near = value <= lo * (1.0 + AT_BOUND_TOLERANCE) or value >= hi / (1.0 + AT_BOUND_TOLERANCE)
            else:
                near = min(value - lo, hi - value) <= AT_BOUND_TOLERANCE * (hi - lo)
            if near:
                out.append(name)
        return out

    def initial_values(self) -> dict:
        """The fixed initial parameters (physical units), before any data-based initialisation."""
        return dict(tau_m_ms=self.tau_mem_init_ms, tau_adapt_ms=self.tau_adapt_init_ms,
                    adapt_scale=self.adapt_scale_init, gain=self.gain_init, bias=self.bias_init, method="default")

    def build_model(self, init: Optional[Sequence[dict] | dict] = None, *, device=None) -> ALIF:
        """The model this configuration fits: ``ALIF(1, K)`` whose neuron k starts at ``init[k]``.

        The one place where a fit's model is made (training, scoring, reloading a result).

        Args:
            init: one dict of initial values (``tau_m_ms``, ``tau_adapt_ms``, ``adapt_scale``,
                ``gain``, ``bias``; physical units; ``model``, the variant, default ``alif``,
                with its extra parameters ``v_reset``, ``asc_amp``, ``tau_asc_ms``, ``sub_amp``,
                ``tau_sub_ms``) or a list of
                K of them, all of one variant; default :meth:`initial_values` for one cell.
                Time constants are moved strictly inside the learnable bounds (a data-based
                estimate can land on a bound).
            device: where the parameters live (default CPU).

        Returns:
            A ``cellfit.ALIF(1, K)`` in ``self.dtype``, with the variant's extensions.
        """
        inits = [self.initial_values()] if init is None else ([init] if isinstance(init, dict) else list(init))
        names = {i.get("model", "alif") for i in inits}
        if len(names) != 1:
            raise ValueError(f"one model holds one variant, got {sorted(names)}")
        variant = MODELS[names.pop()]
        ranges = {self.reset_bounds(i) for i in inits}
        if variant["reset"] and len(ranges) != 1:
            raise ValueError(f"one model holds one reset range, got {sorted(ranges)}")
        dtype = resolve_dtype(self.dtype)
        col = lambda key: torch.tensor([i[key] for i in inits], dtype=dtype, device=device)  # noqa: E731
        extension = {}
        if variant["reset"]:
            extension.update(reset=True, v_reset=col("v_reset"), v_reset_bounds=ranges.pop())
        if variant["n_asc"]:
            extension.update(n_asc=variant["n_asc"], asc_amp=col("asc_amp"),
                             tau_asc_ms=inside_bounds(col("tau_asc_ms"), self.tau_asc_bounds_ms),
                             tau_asc_bounds_ms=tuple(self.tau_asc_bounds_ms))
        if variant["sub"]:
            extension.update(sub=True, sub_amp=col("sub_amp"), tau_sub_bounds_ms=tuple(self.tau_sub_bounds_ms),
                             tau_sub_ms=inside_bounds(col("tau_sub_ms"), self.tau_sub_bounds_ms))
        model = ALIF(
            1, len(inits), dt_ms=self.dt_ms, arp_ms=self.arp_ms, engine=self.engine, surrogate=self.surrogate,
            tau_mem_ms=inside_bounds(col("tau_m_ms"), self.tau_mem_bounds_ms),
            tau_adapt_ms=inside_bounds(col("tau_adapt_ms"), self.tau_adapt_bounds_ms),
            adapt_scale=col("adapt_scale"),
            tau_mem_bounds_ms=self.tau_mem_bounds_ms, tau_adapt_bounds_ms=self.tau_adapt_bounds_ms,
            device=device, dtype=dtype, **extension,
        )
        with torch.no_grad():
            model.weight.copy_(col("gain")[:, None])
            model.bias.copy_(col("bias"))
        return model

    def to_dict(self) -> dict:
        return {k: _lists(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "FitConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: _tuples(v) for k, v in d.items() if k in known}
        return cls(**kw)


def _lists(v):
    """(Nested) tuples as JSON lists."""
    return [_lists(x) for x in v] if isinstance(v, tuple) else v


def _tuples(v):
    """JSON lists back to (nested) tuples."""
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def fit_config(*, adapt_search: bool = False, restarts: Optional[int] = None, **fields) -> FitConfig:
    """A :class:`FitConfig` from the command lines' options.

    ``restarts`` None (no ``--restarts``): the default search (in each variant under ``model="auto"``);
    ``restarts`` N: the N best grid points, chosen on validation ETV (:data:`GRID_RESTARTS`);
    ``adapt_search`` (``--adapt-search``): :data:`ADAPT_SEARCH` on top. ``model`` None (no ``--model``): the
    default, ALIF with bursting candidates for bursting cells and ``alif_sub`` for cells whose voltage shows a
    subthreshold current; a model named explicitly (``--model alif``) fits that variant alone (``burst_fraction``
    and ``sub_r2_gain`` None, no ``asc_rescue``).
    """
    if fields.get("model", "missing") is None:
        fields = {k: v for k, v in fields.items() if k != "model"}
    elif "model" in fields:
        fields = dict(fields, burst_fraction=None, sub_r2_gain=None, asc_rescue=None)
    if restarts is not None:
        fields = dict(fields, restarts=restarts, **GRID_RESTARTS)
    return FitConfig(**dict(fields, **(ADAPT_SEARCH if adapt_search else {})))
