"""`python -m cellfit.fit` end to end on the synthetic demo cell (an ALIF cell in the Allen format)."""

import json
import subprocess
import sys

import pytest
import torch

from cellfit.fit.__main__ import main
from cellfit.fit import load_cell_fit

REQUIRED = (
    "specimen_id dt_ms arp_ms engine device seed epochs fit_seconds train_loss etv tau_m_ms tau_adapt_ms "
    "adapt_scale gain bias n_test_repeats cellfit_version"
).split()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("runs")
    # DT 0.2 ms keeps the test fast; the README's command uses 0.1 ms
    code = main(["--specimen", "demo", "--dt", "0.2", "--epochs", "80", "--cache-dir", str(cache),
                 "--out", str(out), "--no-progress"])
    assert code == 0
    (cell_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return cache, cell_dir


def test_writes_every_output(demo_run, capsys):
    _, cell_dir = demo_run
    names = {p.name for p in cell_dir.iterdir()}
    assert {"result.json", "model.pt", "predictions.nwb", "fit.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    result = json.loads((cell_dir / "result.json").read_text())
    assert not set(REQUIRED) - set(result)
    assert result["status"] == "ok" and result["n_test_repeats"] >= 2
    assert result["block_kernel"] == "blockwise"  # provenance: the CPU block kernel


def test_fits_the_alif_generated_cell(demo_run):
    """Scientific check: held-out ETV >= 0.7 and tau_m within 25% of the generator's truth."""
    cache, cell_dir = demo_run
    from cellfit.data.synthetic import load_truth

    result = json.loads((cell_dir / "result.json").read_text())
    truth = load_truth(cache / "demo", result["specimen_id"])["params"]
    assert result["etv"] >= 0.7
    assert result["tau_m_ms"] == pytest.approx(truth["tau_m_ms"], rel=0.25)
    assert result["etv"] > result["etv_init"] - 0.05


def test_model_reloads_as_data(demo_run):
    _, cell_dir = demo_run
    state = torch.load(cell_dir / "model.pt", weights_only=True)
    assert set(state) >= {"weight", "bias", "tau_mem.raw", "tau_adapt.raw", "adapt_raw"}
    result, model = load_cell_fit(cell_dir)
    assert model.tau_mem_ms.item() == pytest.approx(result.tau_m_ms, rel=1e-6)


def test_predictions_nwb_round_trip(demo_run):
    _, cell_dir = demo_run
    from cellfit.data.nwb2 import read_predictions_nwb2

    back = read_predictions_nwb2(cell_dir / "predictions.nwb")
    assert back is not None


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--specimen", "12345"], "12345"),
        (["--specimen", "not-a-cell"], "not-a-cell"),
        (["--specimen", "demo", "--dt", "0.3"], "not a whole number"),
        (["--specimen", "demo", "--device", "cuda:7"], "cuda"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(argv, match, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CELLFIT_OFFLINE", "1")
    if "--device" in argv and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    code = main(argv + ["--cache-dir", str(tmp_path), "--out", str(tmp_path / "out"), "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and match in err
    assert "Traceback" not in err


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "cellfit.fit", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--specimen" in proc.stdout


def test_a_cell_that_cannot_be_scored_fails_alone(demo_run):
    """A held-out set without spikes has no reliability: that cell is recorded as failed, the fit call goes on."""
    import dataclasses

    import numpy as np

    from cellfit.data import load_cell
    from cellfit.fit import FitConfig, fit_recordings

    cache, cell_dir = demo_run
    rec = load_cell(int(cell_dir.name), dt_ms=0.5, cache_dir=cache / "demo")
    silent = dataclasses.replace(rec, test=dataclasses.replace(rec.test, spikes=np.zeros_like(rec.test.spikes)))
    good, bad = fit_recordings([rec, silent], FitConfig(dt_ms=0.5, epochs=2), device="cpu", progress=False)
    assert good.result.status == "ok"
    assert bad.result.status == "failed" and "reliability" in bad.result.error
