"""Round 12: starts with a larger gain (``FitConfig.grid_gain_scale``), one per factor, beside the default's five.

A start whose gain is too small to follow the stimulus fires on its bias alone, and gradient descent does not
leave that regime. The grid tries each of its points with the gain multiplied by a factor and the bias lowered so
that the mean drive stays; each factor's best point becomes one more start, the "gain starts". The five starts of
factor 1 stay exactly as they were. By default (``gain_starts="stuck"``) the gain starts train only for a cell
whose kept fit never left its start.
"""

import numpy as np
import pytest
import torch

from cellfit import ALIF
from cellfit.fit import FitConfig
from cellfit.fit.fitter import TrainingSet, training_tensors
from cellfit.fit.init import grid_init, initial_values
from cellfit.fit.select import choose, fit_candidates, left_start
from test_sub_start import _stimulus  # the smoothed three-amplitude noise of round 10's tests

F64 = torch.float64
DT = 0.5
SCALES = (1.0, 2.0, 4.0)


def _fluctuation_driven_cell(seed: int = 11):
    """Stimulus (2 repeats, 3 epochs at rising amplitude) and the spikes of an ALIF neuron with a large gain and a
    negative bias: it fires on the stimulus's fluctuations, far from the default start (gain 1.5, bias 0.5)."""
    x = _stimulus(seed, shape=(2, 3, 2000), dt_ms=DT, spread=0.9)
    layer = ALIF(1, 1, dt_ms=DT, dtype=F64, tau_mem_ms=20.0, tau_adapt_ms=150.0, adapt_scale=0.3)
    with torch.no_grad():
        layer.weight.fill_(4.0)
        layer.bias.fill_(-1.0)
        spikes = layer.simulate(torch.as_tensor(x.reshape(-1, 1, x.shape[-1]), dtype=F64)).spikes
    spikes = spikes.reshape(x.shape).numpy().astype(np.float32)
    assert spikes.sum() > 50
    return TrainingSet(x, spikes)


def test_each_gain_factor_adds_its_best_grid_point_after_the_default_starts():
    data = _fluctuation_driven_cell()
    plain_cfg = FitConfig(dt_ms=DT, burst_fraction=None, grid_gain_scale=(1.0,))
    cfg = FitConfig(dt_ms=DT, burst_fraction=None, grid_gain_scale=SCALES)
    x, targets = training_tensors([data], cfg, "cpu")
    plain = grid_init([initial_values(plain_cfg, data)], x, targets, plain_cfg, top=plain_cfg.restarts)[0]
    assert grid_init([initial_values(cfg, data)], x, targets, cfg, top=cfg.restarts)[0] == plain  # factors: asked
    start = initial_values(cfg, data)
    options = grid_init([dict(start)], x, targets, cfg, top=cfg.restarts, gain_scale=cfg.grid_gain_scale)[0]
    assert options[: cfg.restarts] == plain  # the default's starts, exactly as without the factors
    extra = options[cfg.restarts:]
    assert [o["gain_scale"] for o in extra] == [2.0, 4.0]
    assert [o["method"] for o in extra] == ["default+grid (gain x2)", "default+grid (gain x4)"]
    mean_input = float(data.current.mean())  # repeats of one stimulus weigh the same: the plain mean of the traces
    for o in extra:
        assert o["tau_adapt_ms"] in cfg.grid_tau_adapt_ms and o["bias_shift"] in cfg.grid_bias_shift
        # float32 products and sums of 12,000 bins: agreement to about 1e-6 relative
        assert o["gain"] == pytest.approx(o["gain_scale"] * start["gain"], rel=1e-6)
        expected = start["bias"] + o["bias_shift"] - (o["gain_scale"] - 1.0) * start["gain"] * mean_input
        assert o["bias"] == pytest.approx(expected, abs=1e-5)


def test_a_gain_start_reaches_the_fluctuation_driven_fit_that_the_default_starts_miss():
    """``gain_starts="always"`` (studied in round 12, not the default): the cell's five starts fire on the bias
    and end at a training loss that its gain starts beat by more than 15% (about 25% on the machine where this
    was written), and the choice keeps a gain start."""
    data = _fluctuation_driven_cell()
    cfg = FitConfig(dt_ms=DT, epochs=40, bootstrap=0, validation_s=0.0, burst_fraction=None, grid_gain_scale=SCALES,
                    gain_starts="always")
    cands, _ = fit_candidates([data], cfg, device="cpu", progress=False)
    cands = cands[0]
    assert len(cands) == cfg.restarts + 2
    plain = min(c.best_loss for c in cands[: cfg.restarts])
    gain = min(c.best_loss for c in cands[cfg.restarts:])
    assert gain < 0.85 * plain
    index, _ = choose(cands, [1.0] * len(cands), cfg.validation_veto, cfg.extension_margin)
    assert "gain x" in cands[index].init["method"]


def test_gain_factors_are_checked():
    assert FitConfig().grid_gain_scale == SCALES and FitConfig().gain_starts == "stuck"  # the default (round 12)
    for bad in ((), (2.0,), (1.0, 0.0), (1.0, 2.0, 2.0)):
        with pytest.raises(ValueError, match="grid_gain_scale"):
            FitConfig(grid_gain_scale=bad)


def test_under_stuck_the_gain_starts_train_only_for_a_cell_whose_kept_fit_never_left_its_start():
    """``gain_starts="stuck"``: after one epoch every fit still holds its start (no epoch improved on the first), so
    the gain starts follow; after forty the kept fit has moved and the cell keeps the default's five candidates."""
    data = _fluctuation_driven_cell()
    base = dict(dt_ms=DT, bootstrap=0, validation_s=0.0, burst_fraction=None, grid_gain_scale=SCALES,
                gain_starts="stuck")
    cands, _ = fit_candidates([data], FitConfig(epochs=1, **base), device="cpu", progress=False)
    assert not any(left_start(c) for c in cands[0])
    assert [c.init.get("gain_scale", 1.0) for c in cands[0]] == [1.0] * 5 + [2.0, 4.0]
    cfg = FitConfig(epochs=40, **base)
    cands, _ = fit_candidates([data], cfg, device="cpu", progress=False)
    assert len(cands[0]) == cfg.restarts
    assert left_start(cands[0][choose(cands[0], None, cfg.validation_veto, cfg.extension_margin)[0]])
    with pytest.raises(ValueError, match="gain_starts"):
        FitConfig(gain_starts="sometimes")
