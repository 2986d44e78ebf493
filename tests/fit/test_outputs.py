"""A fitted cell's files: all-or-nothing writes, umask, descriptive NWB, figures without global state."""

import os
import pathlib

import matplotlib
import pytest

from cellfit.data.synthetic import alif_panel, synthetic_recordings
from cellfit.fit import FitConfig, fit_recordings, load_fit, read_result, write_cell_outputs, write_failed_result
from cellfit.fit import outputs
from cellfit.fit.results import FitResult


@pytest.fixture(scope="module")
def fitted():
    # an ALIF cell in memory at DT 0.5 ms and a few epochs: the files, not the fit, are under test
    (rec,) = synthetic_recordings(alif_panel(1, seed=3), dt_ms=0.5)
    (fit,) = fit_recordings([rec], FitConfig(dt_ms=0.5, epochs=6), device="cpu", progress=False)
    assert fit.result.is_ok
    return fit


def contents(folder: pathlib.Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_writes_every_file_with_the_umask(fitted, tmp_path):
    old = os.umask(0o027)
    try:
        cell = write_cell_outputs(fitted, tmp_path)
    finally:
        os.umask(old)
    assert set(contents(cell)) == set(outputs.OUTPUT_FILES)
    assert cell.stat().st_mode & 0o777 == 0o750
    for p in cell.iterdir():
        assert p.stat().st_mode & 0o777 == 0o640, p.name
    assert read_result(cell) == fitted.result
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_interrupted_rewrite_leaves_the_previous_outputs_whole(fitted, tmp_path, monkeypatch):
    cell = write_cell_outputs(fitted, tmp_path)
    before = contents(cell)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the new outputs are being written

    monkeypatch.setattr(outputs, "plot_training", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_cell_outputs(fitted, tmp_path)
    assert contents(cell) == before
    assert [p.name for p in tmp_path.iterdir()] == [cell.name]  # no temporary folder left behind


def test_a_failed_rerun_replaces_the_whole_folder(fitted, tmp_path):
    cell = write_cell_outputs(fitted, tmp_path)
    write_failed_result(tmp_path, FitResult.failed(fitted.result.specimen_id, "scoring failed: no spikes"))
    assert [p.name for p in cell.iterdir()] == ["result.json"]  # no model.pt of the earlier run beside it
    assert read_result(cell).error == "scoring failed: no spikes"


def test_predictions_nwb_describes_its_series_and_links_to_the_sweeps(fitted, tmp_path):
    from pynwb import NWBHDF5IO

    cell = write_cell_outputs(fitted, tmp_path, figure=False)
    sweeps = [int(s) for s in fitted.recording.test.sweep_numbers]
    with NWBHDF5IO(str(cell / "predictions.nwb"), "r") as io:
        nwb = io.read()
        series = nwb.processing["cellfit"].data_interfaces
        assert set(series) == {"current", "voltage", "recorded_spikes", "predicted_spikes"}
        for ts in series.values():
            assert "Noise 2" in ts.description and str(sweeps) in ts.description, ts.name
            assert ts.unit and ts.unit != "unknown"
        assert "Noise 2" in nwb.notes and str(sweeps[0]) in nwb.notes
    back = load_fit(cell)  # reads the held-out set back from the file
    assert [int(s) for s in back.recording.test.sweep_numbers] == sweeps


def test_figures_leave_matplotlib_global_state_alone(fitted):
    from cellfit.figures.fit import plot_fit, plot_training

    backend, params = matplotlib.get_backend(), dict(matplotlib.rcParams)
    fig = plot_fit(fitted)
    fig2 = plot_training(fitted.result)
    assert matplotlib.get_backend() == backend and dict(matplotlib.rcParams) == params
    assert "held-out Noise 2" in fig._suptitle.get_text()
    assert len(fig2.axes) == 1 + 5  # loss, then one panel per parameter
