"""pipelines.ephys_sweep: the (DT, ARP) grid and an end-to-end run on a tiny synthetic panel."""

import math

import pandas as pd
import pytest

from cellfit.batch.sweep import Setting, _arp_for_dt, collect, sweep_settings, sweep_table
from pipelines.ephys_sweep import main


def test_arp_follows_max_of_2ms_and_dt_in_whole_steps():
    assert _arp_for_dt(0.05) == 2.0
    assert _arp_for_dt(0.1) == 2.0
    assert _arp_for_dt(0.3) == pytest.approx(2.1)  # 7 steps: the first multiple of 0.3 ms >= 2 ms
    assert _arp_for_dt(4.0) == 4.0


def test_settings_cover_both_sweeps_once():
    s = sweep_settings(dts=(0.1, 1.0, 4.0), arps=(1.0, 2.0, 4.0))
    assert (0.1, 2.0) in [(x.dt_ms, x.arp_ms) for x in s]
    assert len(s) == len({(x.dt_ms, x.arp_ms) for x in s}) == 5
    assert Setting(0.1, 2.0, "dt+arp") in s


def test_sweep_table_median_and_standard_error():
    df = pd.DataFrame(dict(dt_ms=[1.0] * 4, arp_ms=[2.0] * 4, etv=[0.5, 0.6, 0.7, 0.8],
                           status=["ok"] * 3 + ["failed"], fit_seconds=[1.0] * 4, specimen_id=[1, 2, 3, 4]))
    t = sweep_table(df)
    assert t.n_cells.tolist() == [3]
    assert t.median_etv.tolist() == pytest.approx([0.6])
    assert t.se_etv.iloc[0] == pytest.approx(1.2533 * 0.1 / math.sqrt(3))


def test_end_to_end_on_a_synthetic_panel(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["--synthetic", "2", "--synthetic-model", "alif", "--dts", "0.5", "2", "--arps", "2", "4",
            "--arp-sweep-dt", "0.5", "--epochs", "2", "--out", str(out), "--workers", "1", "--device", "cpu",
            "--no-figures", "--no-progress"]
    assert main(argv) == 0
    table = pd.read_csv(out / "sweep_summary.csv")
    assert {(r.dt_ms, r.arp_ms) for r in table.itertuples()} == {(0.5, 2.0), (2.0, 2.0), (0.5, 4.0)}
    df = pd.read_csv(out / "sweep.csv")
    assert len(df) == 6 and (df.status == "ok").all()
    assert (out / "etv_vs_dt.png").exists() and (out / "etv_vs_arp.png").exists()
    # a rerun resumes: every setting is complete, nothing is refitted
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("dt*/*/result.json")}
    assert main(argv) == 0
    assert mtimes == {p: p.stat().st_mtime_ns for p in out.glob("dt*/*/result.json")}
    assert len(collect(out)) == 6


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert main(["--synthetic", "0", "--out", str(tmp_path)]) == 2
    assert "--synthetic: must be >= 1" in capsys.readouterr().err
