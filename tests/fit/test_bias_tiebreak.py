"""The bias tie-break (``FitConfig.bias_tiebreak``): the kept fit's bias moved where the training window cannot
tell and the validation seconds prefer."""

import math

import numpy as np
import pytest
import torch

from cellfit.data.synthetic import alif_panel, synthetic_recordings
from cellfit.fit import FitConfig, fit_recordings
from cellfit.fit.config import GRID_RESTARTS
from cellfit.fit.fitter import predict_spikes
from cellfit.fit.metrics import etv_components
from cellfit.fit.select import ValidationSet, best_in_run, bias_shifted, bias_tiebreak, unchanged_run

DT = 0.5
CFG = FitConfig(dt_ms=DT, bias_tiebreak=0.1)


def _model(bias: float = 0.5):
    model = CFG.build_model(dict(CFG.initial_values(), tau_m_ms=15.0, tau_adapt_ms=100.0, adapt_scale=0.2))
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.fill_(bias)
    return model


def _stimulus(n_train: int, n_val: int, seed: int = 0) -> np.ndarray:
    """(R=3, E=2, T): silence in the training window (a bias below threshold fires nothing there, whatever the
    shift), then a fluctuating drive in the validation seconds (every shift spikes differently)."""
    rng = np.random.default_rng(seed)
    val = 0.8 + 0.6 * rng.standard_normal((2, n_val))
    val = np.array([np.convolve(v, np.ones(10) / 10, mode="same") for v in val]) * 3.0
    one = np.concatenate([np.zeros((2, n_train)), val], axis=-1).astype(np.float32)
    return np.broadcast_to(one, (3, *one.shape)).copy()


def _training_counts(model, current: np.ndarray, start: int) -> np.ndarray:
    return np.asarray(predict_spikes(model, current[0, :, :start])["spikes"]).sum(-1)


def _validation_etv(model, val: ValidationSet) -> float:
    pred = np.asarray(predict_spikes(model, val.current[0])["spikes"])[..., val.start:]
    return etv_components(pred, val.spikes[..., val.start:], DT).etv


def test_the_tiebreak_finds_the_bias_the_validation_seconds_were_recorded_with():
    """Recorded spikes from the fit with its bias 0.05 higher; the training window (silence) cannot tell the biases
    apart, the validation seconds can: the tie-break moves the bias by exactly 0.05 and scores it at the top."""
    fitted = _model()
    current = _stimulus(200, 1000)
    truth = bias_shifted(fitted, 0.05)
    spikes = np.asarray(predict_spikes(truth, current.reshape(-1, current.shape[-1]))["spikes"]).reshape(current.shape)
    val = ValidationSet(current, spikes, 200)
    model, record = bias_tiebreak(fitted, val, CFG)
    assert record["range"] == [-0.1, 0.1]  # silent in the training window at every shift
    assert record["shift"] == pytest.approx(0.05, abs=1e-12)
    assert float(model.bias.detach()) == float(truth.bias.detach())  # the same float32 addition
    assert record["kept"] == pytest.approx(_validation_etv(truth, val), abs=1e-9)
    assert record["kept"] > record["at_zero"]
    assert float(fitted.bias.detach()) == pytest.approx(0.5)  # the fitted model itself is left alone


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_kept_shift_leaves_every_training_count_and_raises_the_validation_etv(seed):
    """On a fitted ALIF cell (recorded spikes from another, noisy cell): every shift of the reported range gives the
    fit's own training-window counts, the shifts just outside it do not, and the kept shift's validation ETV, checked
    one model at a time, is the range's best and at least the fit's own."""
    (rec,) = synthetic_recordings(alif_panel(1, seed=seed), dt_ms=DT, window_s=2.0)
    cfg = FitConfig(dt_ms=DT, epochs=4, restarts=1, bootstrap=0, **GRID_RESTARTS)
    (fit,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
    start = int(round(1000.0 / DT))
    val = ValidationSet(rec.normalised_current("train"), rec.train.spikes, start)
    model, record = bias_tiebreak(fit.model, val, CFG)
    lo, hi = record["range"]
    assert lo <= record["shift"] <= hi and lo <= 0.0 <= hi
    base = _training_counts(fit.model, val.current, start)
    shifts = [round(0.01 * k, 10) for k in range(-10, 11)]
    for d in shifts:
        same = np.array_equal(_training_counts(bias_shifted(fit.model, d), val.current, start), base)
        if lo <= d <= hi:
            assert same, d
        elif d in (round(lo - 0.01, 10), round(hi + 0.01, 10)):
            assert not same, d  # the range ends where a count changes
    kept = _validation_etv(model, val)
    assert kept == pytest.approx(record["kept"], abs=1e-9)  # batched and alone: the same spikes
    assert kept >= _validation_etv(fit.model, val) - 1e-12
    inside = [_validation_etv(bias_shifted(fit.model, d), val) for d in shifts if lo <= d <= hi]
    assert kept >= max(inside) - 1e-12


def test_off_without_validation_or_without_scores_the_fit_stays():
    fitted = _model()
    current = _stimulus(200, 400)
    silent = ValidationSet(current, np.zeros_like(current), 200)  # no recorded validation spike: nothing to score
    assert bias_tiebreak(fitted, silent, FitConfig(dt_ms=DT)) == (fitted, None)  # off (the default)
    assert bias_tiebreak(fitted, None, CFG) == (fitted, None)
    assert bias_tiebreak(fitted, ValidationSet(current[..., :200], current[..., :200], 200), CFG) == (fitted, None)
    model, record = bias_tiebreak(fitted, silent, CFG)
    assert model is fitted and record["shift"] == 0.0 and record["kept"] is None  # all unscored: the nearest to zero


def test_the_run_around_zero_and_the_pick_within_it():
    """The unchanged run is contiguous around zero; the pick is the best score, unscored last, ties nearest zero,
    then the lower index."""
    assert unchanged_run([False, True, True, True, False, True], 2) == (1, 3)
    assert unchanged_run([True, False, True, False], 2) == (2, 2)  # no neighbour unchanged: zero alone
    assert best_in_run([0.5, 0.9, 0.7, 0.9, None], 0, 4, 2) == 1  # a tie between 1 and 3: the lower
    assert best_in_run([0.9, 0.5, 0.7, 0.9, None], 0, 4, 2) == 3  # a tie: the nearer to zero
    assert best_in_run([0.9, 0.8, 0.7, 0.8, 1.0], 1, 3, 2) == 1  # only the run counts
    assert best_in_run([None, float("nan"), None], 0, 2, 1) == 1  # nothing scored: zero


def test_the_configuration_checks_the_range_and_step():
    with pytest.raises(ValueError, match="bias_tiebreak"):
        FitConfig(bias_tiebreak=0.005)
    with pytest.raises(ValueError, match="bias_tiebreak"):
        FitConfig(bias_tiebreak_step=0.0)
    assert FitConfig.from_dict(FitConfig(bias_tiebreak=0.1).to_dict()).bias_tiebreak == 0.1
    assert FitConfig.from_dict({}).bias_tiebreak is None  # a result written before the option: off


def test_a_fit_with_the_tiebreak_reports_the_shift_and_keeps_it_inside_the_interval():
    """Through :func:`fit_recordings`: the result's bias is the trained one plus the shift, recorded in the
    selection; the bias interval holds it; off, the result is the trained fit and records nothing."""
    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=DT, window_s=2.0)
    cfg = FitConfig(dt_ms=DT, epochs=4, restarts=1, bootstrap=3, **GRID_RESTARTS)
    (off,) = fit_recordings([rec], cfg, window_s=1.0, device="cpu", progress=False)
    (on,) = fit_recordings([rec], FitConfig(**dict(cfg.to_dict(), bias_tiebreak=0.1)), window_s=1.0,
                           device="cpu", progress=False)
    assert "bias_tiebreak" not in off.result.selection and off.model is off.state.model
    record = on.result.selection["bias_tiebreak"]
    assert float(on.state.model.bias.detach()) == float(off.model.bias.detach())  # the same training
    assert float(on.model.bias.detach()) == float(bias_shifted(on.state.model, record["shift"]).bias.detach())
    assert on.result.bias == pytest.approx(off.result.bias + record["shift"], abs=1e-6)  # float32 bias
    lo, hi = on.result.intervals["bias"]
    assert lo <= on.result.bias <= hi
    if record["shift"] == 0.0:
        assert on.result.etv == off.result.etv
    assert math.isfinite(on.result.etv)
