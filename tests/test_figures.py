"""The library's figures leave matplotlib's global state alone: no backend switch, no rcParams, no pyplot.

Every plotting function of :mod:`cellfit.figures` builds a :class:`matplotlib.figure.Figure`
without pyplot. Checked three ways: in this process (``get_backend()`` and ``rcParams``
before and after calling each one), in a fresh interpreter with a backend chosen by
``MPLBACKEND`` (still that backend afterwards), and in the source (no ``matplotlib.use`` or
pyplot import in the library).
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from cellfit.figures import panel, speed, sweep

ROOT = pathlib.Path(__file__).resolve().parents[1]
CPU_RESULTS = ROOT / "benchmarks" / "cpu"


def _panel_summary(n: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    classes = ["excitatory", "inhibitory"] * (n // 2)
    return pd.DataFrame(dict(
        specimen_id=np.arange(n) + 1000, status="ok", cell_class=classes,
        transgenic_line=[f"line{i % 3}" for i in range(n)], layer=["4", "5"] * (n // 2),
        tau_m_ms=rng.uniform(8, 35, n), tau_adapt_ms=rng.uniform(50, 500, n), adapt_scale=rng.uniform(0.2, 2, n),
        etv=rng.uniform(0.4, 1.0, n), fit_seconds=rng.uniform(1, 5, n), model="alif",
    ))  # fmt: skip


def _sweep_table(summary: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for dt, arp in ((0.1, 2.0), (0.1, 4.0), (1.0, 2.0), (4.0, 4.0)):
        part = summary.copy()
        part.insert(0, "arp_ms", arp)
        part.insert(0, "dt_ms", dt)
        part["etv"] = part["etv"] - 0.05 * dt
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _call_every_plot(tmp: pathlib.Path) -> list:
    """Call each plotting function of cellfit.figures on small tables; return what they made."""
    cells = panel.fitted(_panel_summary())
    truth = cells[["specimen_id", "tau_m_ms", "tau_adapt_ms", "adapt_scale"]].copy()
    truth[["tau_m_ms", "tau_adapt_ms", "adapt_scale"]] *= 1.1
    made = [
        panel.plot_distributions(cells, by="cell_class", truth=truth),
        panel.plot_histogram(cells, "tau_m_ms", truth=truth),
        panel.plot_relations(cells),
        panel.plot_recovery(cells, truth),
    ]
    table = _sweep_table(cells)
    made.append(sweep.plot_sweep_summary(table))
    made.extend(sweep.plot_sweep(table, tmp / "sweep", arp_sweep_dt=0.1))
    df = speed.load_benchmarks(CPU_RESULTS)
    made.append(speed.plot_speedup_overview(df))
    made.extend(speed.plot_speedups(df[df["source"] == "cpu-small"], tmp / "speed"))
    return made


@pytest.mark.skipif(not any(CPU_RESULTS.rglob("results.csv")), reason="no committed benchmark CSVs")
def test_plotting_leaves_backend_and_rcparams_unchanged(tmp_path):
    backend = matplotlib.get_backend()
    rc = matplotlib.rcParams.copy()
    made = _call_every_plot(tmp_path)
    assert matplotlib.get_backend() == backend
    assert matplotlib.rcParams.copy() == rc
    figures = [m for m in made if isinstance(m, Figure)]
    pngs = [m for m in made if isinstance(m, pathlib.Path)]
    assert len(figures) == 6
    assert {p.name for p in pngs} >= {"etv_vs_dt.png", "etv_vs_arp.png", "etv_scatter.png", "speedup_vs_arp.png",
                                      "speedup_vs_size.png"}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert not list(tmp_path.rglob("*.tmp*"))  # atomic writes left no temporaries


@pytest.mark.skipif(not any(CPU_RESULTS.rglob("results.csv")), reason="no committed benchmark CSVs")
def test_a_chosen_backend_survives_in_a_fresh_interpreter(tmp_path):
    """With MPLBACKEND=svg (a headless backend other than Agg) the backend is still svg afterwards.

    (A library that called ``matplotlib.use("Agg")`` would leave Agg.) pyplot itself may be
    imported by matplotlib while it reads every rcParam (``boxplot`` does), which resolves
    the backend the user chose and changes nothing.
    """
    code = textwrap.dedent(f"""
        import pathlib, sys
        import matplotlib
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from test_figures import _call_every_plot
        rc = matplotlib.rcParams.copy()
        _call_every_plot(pathlib.Path({str(tmp_path)!r}))
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        after = matplotlib.rcParams.copy()
        assert {{k: v for k, v in after.items() if k != "backend"}} == {{k: v for k, v in rc.items() if k != "backend"}}
        print("ok")
    """)
    env = {**os.environ, "MPLBACKEND": "svg"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_no_backend_switch_or_pyplot_in_the_library():
    pattern = re.compile(r"matplotlib\.use\(|import matplotlib\.pyplot|from matplotlib import pyplot")
    offenders = []
    for path in sorted((ROOT / "cellfit").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if pattern.search(path.read_text(encoding="utf-8")):
            offenders.append(rel)
    assert offenders == []


def test_recovery_plot_draws_the_intervals_and_counts_those_that_hold_the_truth():
    cells = panel.fitted(_panel_summary(4))
    truth = cells[["specimen_id", "tau_m_ms", "tau_adapt_ms"]].copy()
    truth["tau_m_ms"] *= 1.2
    cells["tau_m_ms_lo"] = cells["tau_m_ms"] * 0.9
    cells["tau_m_ms_hi"] = cells["tau_m_ms"] * np.array([1.3, 1.1, 1.3, np.nan])  # 2 hold 1.2x, 1 does not, 1 none
    fig = panel.plot_recovery(cells, truth, columns=("tau_m_ms", "tau_adapt_ms"))
    ax_m, ax_a = fig.axes[:2]
    assert ax_m.get_title().endswith("\ntrue value inside the interval: 2 of 3")
    assert len(ax_m.collections[-1].get_segments()) == 3  # one bar per cell with an interval
    assert "interval" not in ax_a.get_title()  # no tau_adapt intervals in this table
    # the legend names what the colours (cell classes) and, where models mix, the markers mean
    legend = [t.get_text() for t in ax_m.get_legend().get_texts()]
    assert legend == sorted(cells["cell_class"].astype(str).unique())
    cells["model"] = ["alif", "adex", "alif", "alif"]
    fig = panel.plot_recovery(cells, truth, columns=("tau_m_ms",))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][-2:] == ["alif cells", "adex cells"]
