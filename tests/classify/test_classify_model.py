"""SpikingClassifier and train_classifier: engines agree, learning happens, results are reproducible."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cellfit.classify import (
    ClassifierConfig,
    SpikingClassifier,
    SyntheticSpikes,
    build_model,
    evaluate,
    train_classifier,
)


def tiny_sets(n_train=64, n_test=32, **kw):
    kw = {"duration_ms": 60.0, **kw}
    return SyntheticSpikes(n_train, "train", **kw), SyntheticSpikes(n_test, "test", **kw)


def test_forward_shapes_and_gain():
    model = SpikingClassifier(40, 4, hidden=16, dt_ms=1.0, arp_ms=3.0)
    out = model(torch.zeros(2, 40, 25))
    assert out.scores.shape == (2, 4)
    assert len(out.spikes) == 2 and all(s.shape == (2, 16, 25) for s in out.spikes)
    g = 1.0 / (1.0 - math.exp(-1.0 / 20.0))
    assert model.input_gain == pytest.approx(g)
    layer = model.layers[0]
    raw = layer.parametrizations.weight.original
    assert torch.allclose(layer.weight, g * raw)
    assert raw.abs().max() <= 1.0 / math.sqrt(40)
    # identity recurrent init (reference code), times the gain
    assert torch.allclose(model.layers[1].weight_rec, g * torch.eye(16))
    with pytest.raises(ValueError, match="expected input"):
        model(torch.zeros(2, 39, 25))


def test_blocks_and_standard_give_the_same_first_batch_loss_and_gradients():
    cfg = ClassifierConfig.for_dataset("synthetic", hidden=24, arp_ms=4.0, dtype="float64", seed=3)
    train, _ = tiny_sets(16, 4)
    x = torch.stack([train[i][0] for i in range(16)]).double()
    y = torch.tensor([train[i][1] for i in range(16)])
    # Lift activity so that spikes (and surrogate gradients at threshold) occur in both layers.
    results = {}
    for engine in ("blocks", "standard"):
        torch.manual_seed(cfg.seed)
        model = build_model(cfg, train.n_in, train.n_classes)
        model.engine = engine
        with torch.no_grad():
            for layer in model.layers:
                layer.parametrizations.weight.original.mul_(3.0)
        out = model(x)
        loss = F.cross_entropy(out.scores, y)
        loss.backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters()}
        results[engine] = (loss.item(), [s.sum().item() for s in out.spikes], grads)
    (lb, sb, gb), (ls, ss, gs) = results["blocks"], results["standard"]
    assert sb == ss and min(sb) > 0
    assert lb == pytest.approx(ls, rel=1e-10, abs=1e-12)
    for k in gb:
        assert torch.allclose(gb[k], gs[k], rtol=1e-7, atol=1e-10), k


def test_engines_give_the_same_training_run():
    train, test = tiny_sets(48, 24)
    rows = {}
    for engine in ("blocks", "standard"):
        cfg = ClassifierConfig.for_dataset(
            "synthetic", engine=engine, hidden=16, epochs=2, batch_size=16, dtype="float64", duration_ms=60.0
        )
        rows[engine] = train_classifier(cfg, train, test, progress=False).history
    assert rows["blocks"][0]["train_spikes_l1"] > 0
    for rb, rs in zip(rows["blocks"], rows["standard"]):
        for key in ("train_loss", "test_loss", "train_acc", "test_acc", "train_spikes_l1", "test_spikes_l2"):
            assert rb[key] == pytest.approx(rs[key], rel=1e-8, abs=1e-10), key


def test_same_seed_same_result_and_no_files_without_out_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train, test = tiny_sets(32, 16)
    cfg = ClassifierConfig.for_dataset("synthetic", hidden=8, epochs=2, batch_size=8, duration_ms=60.0, seed=5)
    a = train_classifier(cfg, train, test, progress=False)
    b = train_classifier(cfg, train, test, progress=False)
    keys = [k for k in a.history[0] if not k.endswith("time_s")]
    assert [[r[k] for k in keys] for r in a.history] == [[r[k] for k in keys] for r in b.history]
    # the returned model carries the best epoch's weights
    assert evaluate(a.model, test, batch_size=8)["acc"] == pytest.approx(a.best_test_acc)
    assert list(tmp_path.iterdir()) == []


def test_config_validation_and_round_trip():
    cfg = ClassifierConfig.for_dataset("shd")
    assert (cfg.dt_ms, cfg.arp_ms, cfg.milestones, cfg.epochs) == (2.0, 20.0, (15,), 40)
    assert ClassifierConfig.from_dict(cfg.to_dict()) == cfg
    nm = ClassifierConfig.for_dataset("nmnist", arp_ms=None)
    assert (nm.dt_ms, nm.arp_ms) == (1.0, 10.0)
    with pytest.raises(ValueError, match="whole number"):
        ClassifierConfig.for_dataset("shd", arp_ms=5.0)
    with pytest.raises(ValueError, match="engine"):
        ClassifierConfig.for_dataset("shd", engine="fast")
    with pytest.raises(ValueError, match="milestones"):
        ClassifierConfig.for_dataset("shd", milestones=[10, 5])
    with pytest.raises(ValueError, match="dt_ms"):
        train, test = tiny_sets(8, 8)
        train_classifier(ClassifierConfig.for_dataset("synthetic", dt_ms=2.0, arp_ms=4.0), train, test)
