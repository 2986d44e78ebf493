"""Peer libraries inside the benchmark, and the command line's defaults.

The peer adapters (Norse, snnTorch, SpikingJelly) run on tiny shapes when the library is
installed (``pip install -e ".[peers]"``) and are skipped, saying so, otherwise. A peer that
is missing is skipped by the command line with one line; that is checked by hiding one.
"""

from __future__ import annotations

import math
import sys

import pandas as pd
import pytest
import torch

from cellfit import bench
from cellfit.bench import peers
from cellfit.bench.cases import DEFAULT_GRID, FULL_GRID, GRID_DESCRIPTIONS, GRIDS, case_cost
from pipelines.benchmark import build_parser, _config, main

CPU = torch.device("cpu")
TINY = bench.BenchmarkCase(T=120, arp_steps=8, batch=3, hidden=12, layers=2, n_in=24)


def _needs(name: str):
    module = peers.PEERS[name].module
    try:
        __import__(module)
    except ImportError as exc:
        pytest.skip(f"{name} not installed ({exc}); install the 'peers' extra to run this test")


@pytest.mark.parametrize("name", sorted(peers.PEERS))
@pytest.mark.parametrize("recurrent", [True, False])
def test_peer_adapter_runs_the_same_network(name, recurrent):
    _needs(name)
    case = bench.BenchmarkCase(T=TINY.T, arp_steps=TINY.arp_steps, batch=TINY.batch, hidden=TINY.hidden,
                               layers=TINY.layers, n_in=TINY.n_in, recurrent=recurrent)
    net, x, _ = bench.build_case(case, 0, CPU, torch.float32)
    model = peers.build_peer(name, net, case)
    xt = model.prepare(x)
    assert xt.shape == (case.T, case.batch, case.n_in) and torch.equal(xt, x.permute(2, 0, 1))
    out = model(xt)
    assert len(out) == case.layers
    for spikes in out:
        assert spikes.shape == (case.T, case.batch, case.hidden)
        assert set(spikes.detach().unique().tolist()) <= {0.0, 1.0}
    assert float(out[-1].detach().sum()) > 0  # the calibrated weights make the peer fire too
    # The training step's loss reaches the first layer's input weights (a surrogate gradient exists).
    out[-1].sum().backward()
    first = model.layers[0]
    w_in = first.cell.input_weights if name == "norse" and recurrent else first.proj.weight
    assert w_in.grad is not None and float(w_in.grad.abs().sum()) > 0
    # Same weights as cellfit's network (snnTorch adds its input without the factor 1 - beta).
    scale = 1.0 - math.exp(-case.dt_ms / case.tau_mem_ms) if name == "snntorch" else 1.0
    # the copies are the same float32 numbers, scaled by one float multiplication at most
    assert torch.allclose(w_in.detach(), scale * net.layers[0].weight.detach(), rtol=1e-6, atol=0)


def test_peer_rows_in_the_benchmark_table():
    available, skipped = peers.resolve_peers(["all"])
    if not available:
        pytest.skip("no peer library installed: " + " | ".join(skipped))
    cfg = bench.BenchmarkConfig(cases=(TINY,), repeats=2, warmup=1, progress=False, device="cpu", peers=available)
    df = bench.run_benchmark(cfg)
    assert list(df["engine"]) == ["blocks", "standard", *available]
    assert list(df.columns) == list(bench.CSV_COLUMNS)
    rows = df.set_index("engine")
    assert (rows.loc[list(available), "system"] == list(available)).all()
    assert rows.loc["blocks", "system"] == "cellfit"
    for name in available:
        assert rows.loc[name, "system_version"].startswith(peers.PEERS[name].distribution + " ")
        assert "no ARP" in rows.loc[name, "model"]
        assert math.isnan(rows.loc[name, "float32_spike_mismatches"])
    assert (df["spikes_per_sample"] > 0).all() and (df["spike_rate_hz"] > 0).all()
    assert (df["n_fwd"] == 2).all() and (df["n_fwd_bwd"] == 2).all()
    table = bench.peer_table(df)
    assert list(table["system"]) == list(df["engine"]) and table["train_vs_fastest"].min() == pytest.approx(1.0)


def test_missing_peer_is_skipped_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "snntorch", None)  # import snntorch now raises ImportError
    rc = main(["--quick", "--peers", "snntorch", "--arp-steps", "8", "--out", str(tmp_path), "--device", "cpu",
               "--no-progress"])
    assert rc == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "snntorch" in line and "skipped" in line]
    assert len(lines) == 1 and lines[0].startswith("peer 'snntorch' skipped: not installed")
    assert "pip install -e '.[peers]'" in lines[0]
    df = pd.read_csv(tmp_path / "results.csv")
    assert sorted(df["engine"]) == ["blocks", "standard"]


def test_unknown_peer_is_an_argument_error(tmp_path, capsys):
    assert main(["--quick", "--peers", "brian2", "--out", str(tmp_path), "--device", "cpu"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "invalid choice" in lines[0]


def test_defaults_small_grid_and_full_flag():
    parse = build_parser().parse_args
    cfg = _config(bench, parse([]), ())
    assert cfg.grid_name == DEFAULT_GRID == "small" and (cfg.repeats, cfg.warmup) == (3, 1)
    small = bench.grid("small")
    assert {(c.T, c.arp_steps) for c in small} == {(256, 10), (256, 40), (512, 10), (512, 40)}
    assert all((c.n_in, c.hidden, c.layers, c.recurrent) == (1000, 128, 1, True) for c in small)
    # the default grid is a small fraction of the full one (the full grid: hours on 2 CPU cores)
    full = _config(bench, parse(["--full"]), ())
    assert full.grid_name == FULL_GRID == "sweep" and (full.repeats, full.warmup) == (10, 2)
    assert sum(map(case_cost, small)) < sum(map(case_cost, full.cases)) / 200
    assert set(GRID_DESCRIPTIONS) == set(GRIDS)


@pytest.mark.parametrize("argv", [["--full", "--quick"], ["--full", "--grid", "cpu-small"]])
def test_full_conflicts_are_one_line(argv, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path), "--device", "cpu"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--full runs the 'sweep' grid" in lines[0]


def test_summary_names_the_grid(tmp_path, capsys):
    assert main(["--quick", "--arp-steps", "8", "--out", str(tmp_path), "--device", "cpu", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "grid 'quick' (quick smoke grid (seconds)): 1 configuration(s) x 2 system(s)" in out
