"""The notebooks run headless against small generated results, show their figures, and are stored stripped.

The example results (a synthetic 8-cell panel, a 3-cell DT/ARP sweep and a tiny CPU
benchmark, built through ``notebooks/examples.py``) are generated once per session into a
temporary ``$CELLFIT_EXAMPLES``, about 1.5 minutes on 2 busy CPU cores; each notebook then
runs in a fresh kernel of this interpreter. ``time_constants`` and ``speed`` get their
results through an injected first cell (a user pointing them at a run);
``fit_quality`` keeps ``None`` and finds the examples already built (the default path).
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
#: notebook -> fewest figures (image outputs) it must show on the example results
MIN_FIGURES = {"time_constants.ipynb": 8, "fit_quality.ipynb": 3, "speed.ipynb": 2}
KERNEL = "cellfit-test-python"


def _notebook_examples():
    """``notebooks/examples.py`` (beside the notebooks, not in the library), imported by path."""
    spec = importlib.util.spec_from_file_location("cellfit_notebook_examples", NOTEBOOKS / "examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def examples(tmp_path_factory):
    """Build the example results once; the kernels inherit ``CELLFIT_EXAMPLES`` and find them."""
    out = tmp_path_factory.mktemp("examples")
    mp = pytest.MonkeyPatch()
    mp.setenv("CELLFIT_OFFLINE", "1")  # no downloads, also in the kernels
    mp.setenv("CELLFIT_EXAMPLES", str(out))
    mp.setenv("CELLFIT_CACHE", str(out / "no-allen-cache"))
    try:
        yield _notebook_examples().build_examples(out)
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def kernel_name(tmp_path_factory):
    """A kernelspec that runs ipykernel with this interpreter (whatever ``python`` is on PATH)."""
    jupyter = tmp_path_factory.mktemp("jupyter")
    spec = jupyter / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "cellfit tests", "language": "python",
    }))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(jupyter))
    try:
        yield KERNEL
    finally:
        mp.undo()


def _read(name: str):
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def _first_code_cell(nb):
    return next(c for c in nb.cells if c.cell_type == "code")


def _run(nb, kernel_name: str):
    client = nbclient.NotebookClient(nb, kernel_name=kernel_name, timeout=600,
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises nbclient.exceptions.CellExecutionError on the first failing cell
    return nb


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def _check_ran(nb, name: str) -> None:
    outs = _outputs(nb)
    assert not [o for o in outs if o.output_type == "error"], name
    images = [o for o in outs if "image/png" in o.get("data", {})]
    assert len(images) >= MIN_FIGURES[name], f"{name}: {len(images)} figures, expected >= {MIN_FIGURES[name]}"
    stderr = "".join(o.get("text", "") for o in outs if o.output_type == "stream" and o.get("name") == "stderr")
    assert "Traceback" not in stderr, f"{name} printed a traceback:\n{stderr}"


@pytest.mark.parametrize("name", sorted(MIN_FIGURES))
def test_notebook_is_stored_stripped_and_parameterised(name):
    nb = _read(name)
    nbformat.validate(nb)
    for cell in nb.cells:
        assert "execution" not in cell.metadata, f"{name}: execution timings not stripped"
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs not stripped"
    first = _first_code_cell(nb)
    assert first.source.startswith("RESULTS = None"), f"{name}: the first code cell must set RESULTS"


def test_time_constants_runs_on_a_results_directory(examples, kernel_name):
    nb = _read("time_constants.ipynb")
    _first_code_cell(nb).source = f"RESULTS = {str(examples['panel'])!r}"
    _check_ran(_run(nb, kernel_name), "time_constants.ipynb")


def test_fit_quality_runs_on_the_default_examples(examples, kernel_name):
    nb = _run(_read("fit_quality.ipynb"), kernel_name)
    _check_ran(nb, "fit_quality.ipynb")


def test_speed_runs_on_a_folder_of_csvs(examples, kernel_name):
    nb = _read("speed.ipynb")
    _first_code_cell(nb).source = f"RESULTS = {str(examples['benchmark'].parent)!r}"
    nb = _run(nb, kernel_name)
    _check_ran(nb, "speed.ipynb")
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in _outputs(nb))
    assert "53.0" in text and "36.0" in text and "40.0" in text  # the paper's numbers in the comparison table


def test_speed_helpers_read_the_committed_cpu_benchmarks():
    """The repository's CPU benchmark CSVs (when present) load, compare and plot."""
    from cellfit.figures.speed import load_benchmarks, plot_speedup_overview, speedup_vs_paper

    folder = ROOT / "benchmarks" / "cpu"
    if not any(folder.rglob("results.csv")):
        pytest.skip("no committed benchmark CSVs")
    df = load_benchmarks(folder)
    table = speedup_vs_paper(df)
    assert len(table) >= 3 and table["ours"].notna().any()
    fig = plot_speedup_overview(df)
    assert len(fig.axes) == 3


def test_speed_helpers_read_the_committed_gpu_benchmarks():
    """The H200 CSVs of BENCHMARKS.md load with the CPU ones' reader; each row passed the float64 check."""
    from cellfit.figures.speed import load_benchmarks, speedup_vs_paper

    folder = ROOT / "benchmarks" / "gpu"
    if not any(folder.rglob("results.csv")):
        pytest.skip("no committed GPU benchmark CSVs")
    df = load_benchmarks(folder)
    assert set(df["device"]) == {"cuda"} and set(df["block_kernel"]) == {"triton", "torch"}
    assert df["float64_identical"].all()  # the runner raises before writing a row whose engines disagree
    # no standard-engine rows on the GPU yet: the comparison says so instead of inventing a ratio
    assert speedup_vs_paper(df)["ours"].isna().all()
