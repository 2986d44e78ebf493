"""The speed-benchmark pipeline: CLI outputs, the float64 exactness gate, argument errors, seeding.

Everything runs on the CPU in a few seconds: the ``quick`` grid (T 256, ARP 8/16 steps,
batch 4, 16 recurrent neurons, 32 inputs) with one or two timed repeats.
"""

import math

import pandas as pd
import pytest
import torch

from cellfit import bench
from cellfit.bench import timing
from cellfit.functional import alif
from pipelines.benchmark import main

CPU = torch.device("cpu")


def test_quick_run_writes_csv_plot_and_table(tmp_path, capsys):
    assert main(["--quick", "--out", str(tmp_path), "--device", "cpu", "--no-progress"]) == 0

    df = pd.read_csv(tmp_path / "results.csv")
    assert list(df.columns) == list(bench.CSV_COLUMNS)
    n_cases = len(bench.grid("quick"))
    assert len(df) == 2 * n_cases  # one row per configuration and engine
    assert sorted(df["engine"].unique()) == ["blocks", "standard"]
    assert set(df["arp_steps"]) == {8, 16} and set(df["T"]) == {256}
    assert df["float64_identical"].all()
    assert (df["device"] == "cpu").all() and (df["torch_version"] == torch.__version__).all()
    kernels = df.set_index("engine")["block_kernel"].fillna("")
    assert (kernels["blocks"] == "blockwise").all() and (kernels["standard"] == "").all()  # auto on a CPU
    assert (df[["fwd_median_s", "fwd_bwd_median_s"]] > 0).all().all()
    assert (df[["fwd_iqr_s", "fwd_bwd_iqr_s"]] >= 0).all().all()
    assert (df["n_fwd"] == 2).all() and (df["n_fwd_bwd"] == 2).all()
    # Speedup is standard / blocks; the baseline's own row is exactly 1.
    std = df[df["engine"] == "standard"]
    assert (std["speedup_fwd"] == 1.0).all() and (std["speedup_fwd_bwd"] == 1.0).all()
    blk = df[df["engine"] == "blocks"].set_index("case")
    ref = std.set_index("case")
    assert blk["speedup_fwd_bwd"].to_numpy() == pytest.approx(
        (ref["fwd_bwd_median_s"] / blk["fwd_bwd_median_s"]).to_numpy()
    )
    # The calibrated network fires (the exactness check is not vacuous); float32 diffs are counted.
    assert (df["spikes_per_sample"] > 0).all()
    assert (df["float32_spike_mismatches"] >= 0).all()

    png = tmp_path / "speedup_vs_arp.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes left no temporaries

    out = capsys.readouterr().out
    assert "x_fwd_bwd" in out and "standard" in out and "results.csv" in out


def _flip_one_spike(real_engine):
    def engine(current, params, **kw):
        trace = real_engine(current, params, **kw)
        spikes = trace.spikes.clone()
        spikes[0, 0, -1] = 1.0 - spikes[0, 0, -1]
        return trace._replace(spikes=spikes)

    return engine


def test_engine_disagreement_fails_the_benchmark(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(alif.ENGINES, "blocks", _flip_one_spike(alif.ENGINES["blocks"]))

    # The library raises ...
    case = bench.grid("quick")[0]
    net, x, _ = bench.build_case(case, 0, CPU, torch.float32)
    with pytest.raises(bench.SpikeMismatchError, match=r"layer 1: 1 of \d+ spike entries differ"):
        bench.check_engines_identical(net, x)

    # ... and the CLI exits nonzero with the reason, before timing anything.
    rc = main(["--quick", "--arp-steps", "8", "--out", str(tmp_path), "--device", "cpu", "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "engines disagree in float64" in err
    assert not (tmp_path / "results.csv").exists()


def test_identical_engines_pass_the_check():
    case = bench.BenchmarkCase(T=300, arp_steps=7, batch=3, hidden=8, layers=2, n_in=16)  # T not a multiple of T_R
    net, x, _ = bench.build_case(case, 3, CPU, torch.float32)
    assert bench.check_engines_identical(net, x) > 0  # spikes exist, all identical


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--quick", "--lengths", "16", "--arp-steps", "32"], "longer than the simulation"),
        (["--quick", "--repeats", "0"], "repeats must be >= 1"),
        (["--quick", "--grid", "sweep"], "cannot be combined"),
        (["--grid", "nonsense"], "invalid choice"),
        (["--quick", "--batch-sizes", "x"], "invalid int value"),
        (["--quick", "--time-budget", "-1"], "must be > 0"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path), "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("python -m pipelines.benchmark: error:")
    assert captured.out == ""
    assert not list(tmp_path.iterdir())


def test_cuda_without_gpu_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["--quick", "--device", "cuda", "--out", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no CUDA GPU" in lines[0]


def test_triton_kernel_without_gpu_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert main(["--quick", "--device", "cpu", "--block-kernel", "triton", "--out", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "runs on CUDA tensors" in lines[0] and "use 'torch' or 'auto'" in lines[0]
    assert not list(tmp_path.iterdir())


def test_poisson_input_is_seeded_and_has_per_sample_rates():
    args = (64, 50, 2000, 0.1)
    x1, r1 = bench.poisson_input(*args, seed=7)
    x2, r2 = bench.poisson_input(*args, seed=7)
    x3, _ = bench.poisson_input(*args, seed=8)
    assert torch.equal(x1, x2) and torch.equal(r1, r2)
    assert not torch.equal(x1, x3)
    assert set(x1.unique().tolist()) <= {0.0, 1.0} and x1.shape == (64, 50, 2000)
    assert ((r1 >= 0) & (r1 <= 200)).all()
    # Each sample's empirical rate matches its own drawn rate: p = rate * dt (100,000 draws each).
    emp_hz = x1.mean(dim=(1, 2)).double() / (0.1e-3)
    assert torch.allclose(emp_hz, r1, atol=5 * math.sqrt(200 / (0.1e-3 * 100_000)) + 1)


def test_seed_fixes_the_whole_case_and_not_the_global_rng():
    case = bench.grid("quick")[0]
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    net1, x1, _ = bench.build_case(case, 0, CPU, torch.float32)
    after = torch.rand(3)
    net2, x2, _ = bench.build_case(case, 0, CPU, torch.float32)
    net3, x3, _ = bench.build_case(case, 1, CPU, torch.float32)
    assert torch.equal(before, after)  # building a case leaves the caller's RNG alone
    assert torch.equal(x1, x2) and not torch.equal(x1, x3)
    for p1, p2 in zip(net1.parameters(), net2.parameters()):
        assert torch.equal(p1, p2)


def test_measure_respects_time_budget_and_max_run(monkeypatch):
    # Fake runs that "take" 1 s (blocks) and 10 s (standard).
    monkeypatch.setattr(timing, "time_call", lambda fn, device: fn())
    base = dict(repeats=5, warmup=1)
    cfg = dict(**base, time_budget_s=15.0)
    res = timing.measure({"blocks": lambda: 1.0, "standard": lambda: 10.0}, CPU, "fwd", **cfg)
    assert len(res["blocks"][0]) == 5 and res["blocks"][1] == ""
    assert len(res["standard"][0]) == 2 and "2 of 5 repeats" in res["standard"][1]

    cfg = dict(**base, max_run_s=5.0)
    res = timing.measure({"blocks": lambda: 1.0, "standard": lambda: 10.0}, CPU, "fwd_bwd", **cfg)
    assert res["standard"][0] == [] and "skipped" in res["standard"][1]
    assert math.isnan(bench.summarise_times(res["standard"][0])[0])
    assert bench.summarise_times([3.0]) == (3.0, pytest.approx(math.nan, nan_ok=True))


def test_grids_match_the_protocol():
    paper = bench.grid("paper-synthetic")
    assert [(c.T, c.arp_steps, c.batch, c.hidden, c.layers, c.recurrent, c.n_in) for c in paper] == [
        (1024, 40, 64, 128, 1, True, 1000),
        (2048, 40, 64, 128, 1, True, 1000),
    ]
    (cell,) = bench.grid("fit-cell")
    assert (cell.T, cell.batch, cell.n_in, cell.hidden, cell.dt_ms, cell.arp_ms, cell.task) == (
        10_000, 3, 1, 1, 0.1, pytest.approx(2.0), "fit_cell"
    )
    sweep = bench.grid("sweep")
    assert {c.T for c in sweep} == {512, 1024, 2048}
    assert {c.arp_steps for c in sweep} == set(range(10, 101, 10))
    assert {c.batch for c in sweep} == {32, 64, 128}
    assert {c.hidden for c in sweep} == {128, 256, 512} and {c.layers for c in sweep} == {1, 2, 3, 4, 5}
    assert {c.recurrent for c in sweep} == {True, False}
    assert len(set(sweep)) == len(sweep)
