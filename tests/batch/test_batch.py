"""Batch fitting end to end: local cluster, resume after kills, failures per cell, config checks.

Every run fits the 6 synthetic cells of ``conftest.synth_cache`` with tiny settings
(see conftest); tests assert on the files a run leaves, as a user would.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from cellfit.batch import summarise
from cellfit.batch.__main__ import main
REPO = pathlib.Path(__file__).resolve().parents[2]
N_CELLS = 6  # conftest.synth_cache


def batch_args(ids, out, cache, *extra) -> list[str]:
    """Command-line arguments of a small CPU run (DT 0.5 ms, 3 epochs, 1 s windows)."""
    return ["--specimens", *map(str, ids), "--dt", "0.5", "--epochs", "3", "--window", "1", "--device", "cpu",
            "--out", str(out), "--cache-dir", str(cache), "--no-progress", *extra]


def _cell_results(run: pathlib.Path) -> list[pathlib.Path]:
    """The result.json of every cell folder (``<run>/<id>/``); a process killed while writing a cell leaves its
    hidden temporary folder (``.<id>.<random>.tmp``, never swapped in), which is not a result."""
    return [p for p in run.glob("*/result.json") if p.parent.name.isdigit()]


def results(run: pathlib.Path) -> dict[int, dict]:
    """Every result.json of a run, parsed (fails on a partial file)."""
    return {int(p.parent.name): json.loads(p.read_text()) for p in _cell_results(run)}


def stamps(run: pathlib.Path) -> dict[str, tuple[int, bytes]]:
    return {p.parent.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in _cell_results(run)}


def summary(run: pathlib.Path) -> pd.DataFrame:
    return pd.read_csv(run / "summary.csv")


@pytest.fixture(scope="module")
def local_run(synth_cache, tmp_path_factory):
    """One complete run on an in-process local cluster (2 workers, 2 cells per task, figures on)."""
    cache, ids = synth_cache
    run = tmp_path_factory.mktemp("local-run") / "run"
    mp = pytest.MonkeyPatch()
    mp.setenv("CELLFIT_OFFLINE", "1")
    try:
        t0 = time.perf_counter()
        rc = main(batch_args(ids, run, cache, "--scheduler", "local", "--workers", "2", "--cells-per-task", "2"))
        seconds = time.perf_counter() - t0
    finally:
        mp.undo()
    return run, rc, seconds


def test_local_run_fits_every_cell(local_run, synth_cache):
    run, rc, _ = local_run
    _, ids = synth_cache
    assert rc == 0
    df = summary(run)
    assert len(df) == N_CELLS and list(df.specimen_id) == ids
    assert (df.status == "ok").all()
    for col in ("cell_class", "etv", "tau_m_ms", "tau_adapt_ms", "adapt_scale", "fit_seconds", "error"):
        assert col in df.columns
    assert set(df.cell_class) == {"excitatory", "inhibitory"}
    assert df[["etv", "tau_m_ms", "tau_adapt_ms", "adapt_scale", "fit_seconds"]].notna().all().all()
    for sid in ids:  # what the single-cell fit writes, per cell
        for name in ("result.json", "model.pt", "predictions.nwb", "fit.png"):
            assert (run / str(sid) / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert config["specimens"] == ids and config["dt_ms"] == 0.5 and config["arp_ms"] == 2.0
    assert config["cells_per_task"] == 2 and config["seed"] == 0 and config["window_s"] == 1.0
    assert config["fit"]["epochs"] == 3
    assert all(r["batch_cells"] == 2 for r in results(run).values())  # cells were fitted 2 at a time
    assert summarise(run).to_csv(index=False) == (run / "summary.csv").read_text()


def wait_for_a_cell(proc, run, output, seconds=180.0):
    """Until the batch ``proc`` has written a cell's folder under ``run`` (its result.json swapped in, not only in the
    hidden temporary folder, which pathlib's ``*`` also matches); ``output()`` says why it ended early."""
    deadline = time.monotonic() + seconds
    while not _cell_results(run):
        assert proc.poll() is None, f"batch exited early:\n{output()}"
        assert time.monotonic() < deadline, f"no cell finished in {seconds:.0f} s"
        time.sleep(0.05)


def test_resume_after_killed_process(synth_cache, dask_cluster, tmp_path):
    """Kill the whole batch (client, scheduler and workers) after the first cell; rerun finishes the rest."""
    cache, ids = synth_cache
    run = tmp_path / "run"
    env = dict(os.environ, CELLFIT_OFFLINE="1", PYTHONPATH=str(REPO))
    log = (tmp_path / "batch.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cellfit.batch",
         *batch_args(ids, run, cache, "--workers", "1", "--cells-per-task", "2", "--no-figures")],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for_a_cell(proc, run, lambda: (tmp_path / "batch.log").read_text())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the process group: CLI, nanny and worker processes
        proc.wait()
        log.close()
    before = stamps(run)
    assert 1 <= len(before) < N_CELLS
    assert all(r["status"] == "ok" for r in results(run).values())  # complete files only

    rc = main(batch_args(ids, run, cache, "--scheduler", dask_cluster.scheduler_address, "--cells-per-task", "2",
                         "--no-figures"))
    assert rc == 0
    after = stamps(run)
    for sid, stamp in before.items():
        assert after[sid] == stamp, f"cell {sid} was fitted again"
    assert len(results(run)) == N_CELLS
    df = summary(run)
    assert len(df) == N_CELLS and (df.status == "ok").all()


def test_ctrl_c_prints_one_line_and_a_rerun_resumes(synth_cache, dask_cluster, tmp_path):
    """SIGINT to the process group (a terminal's Ctrl-C: CLI, nanny and workers) after the first cells are
    written: one line on stderr, exit code 130; the same command then finishes without refitting them."""
    cache, ids = synth_cache
    run = tmp_path / "run"
    env = dict(os.environ, CELLFIT_OFFLINE="1", PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cellfit.batch",
         *batch_args(ids, run, cache, "--workers", "1", "--cells-per-task", "2", "--no-figures")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        wait_for_a_cell(proc, run, lambda: proc.communicate()[1])
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode == 0:
        pytest.skip("the batch finished before the interrupt reached it (a very fast machine)")
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [f"python -m cellfit.batch: interrupted; rerun the same command to resume "
                                        f"({run})"], err
    before = stamps(run)
    assert 1 <= len(before) and all(r["status"] == "ok" for r in results(run).values())
    rc = main(batch_args(ids, run, cache, "--scheduler", dask_cluster.scheduler_address, "--cells-per-task", "2",
                         "--no-figures"))
    assert rc == 0 and len(results(run)) == N_CELLS
    after = stamps(run)
    assert all(after[sid] == stamp for sid, stamp in before.items())


def test_offline_sources_demo_and_synthetic(dask_cluster, tmp_path, capsys):
    """The hints `--specimens demo` and `--synthetic N` work: no Allen data needed."""
    common = ["--dt", "0.5", "--epochs", "2", "--device", "cpu", "--no-progress", "--no-figures",
              "--scheduler", dask_cluster.scheduler_address]
    assert main(["--specimen", "demo", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "demo"),
                 *common]) == 0
    assert [r["status"] for r in results(tmp_path / "demo").values()] == ["ok"]
    assert main(["--synthetic", "2", "--synthetic-model", "alif", "--out", str(tmp_path / "syn"), *common]) == 0
    assert len(results(tmp_path / "syn")) == 2 and (tmp_path / "syn" / "synthetic_cache").is_dir()
    assert "2 cells: 2 ok" in capsys.readouterr().out


def test_killed_worker_is_retried(synth_cache, dask_cluster, local_run, tmp_path):
    """SIGKILL a worker while it runs a task: Dask reruns the task and the run completes.

    Also checks that a cell's fit does not depend on its chunk: 3 cells per task here,
    2 in ``local_run``, same seed, same numbers.
    """
    from distributed import Client

    cache, ids = synth_cache
    run = tmp_path / "run"
    killed: dict = {}
    with Client(dask_cluster.scheduler_address) as client:
        pids = client.run(os.getpid)

        def kill_a_busy_worker():
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if list(run.glob("*/result.json")):
                    busy = [w for w, keys in client.processing().items() if keys and w in pids]
                    if busy:
                        os.kill(pids[busy[0]], signal.SIGKILL)
                        killed.update(address=busy[0], pid=pids[busy[0]])
                        return
                time.sleep(0.02)

        killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
        killer.start()
        rc = main(batch_args(ids, run, cache, "--scheduler", dask_cluster.scheduler_address,
                             "--cells-per-task", "3"))
        killer.join(timeout=10)
        assert killed, "no worker was busy after the first cell finished"
        client.wait_for_workers(2, timeout=60)
        assert killed["pid"] not in client.run(os.getpid).values()
    assert rc == 0
    df = summary(run)
    assert len(df) == N_CELLS and (df.status == "ok").all()
    assert all(r["batch_cells"] in (1, 2, 3) for r in results(run).values())

    reference = summary(local_run[0]).set_index("specimen_id")
    here = df.set_index("specimen_id")
    for col in ("tau_m_ms", "tau_adapt_ms", "adapt_scale", "gain", "bias", "etv", "train_loss"):
        pd.testing.assert_series_equal(here[col], reference[col], rtol=1e-5, check_names=False)


def test_corrupt_cell_fails_alone(synth_cache, dask_cluster, tmp_path, capsys):
    cache, ids = synth_cache
    damaged = tmp_path / "cache"
    shutil.copytree(cache, damaged)
    bad = ids[2]
    nwb = damaged / f"specimen_{bad}" / "ephys.nwb"
    nwb.write_bytes(nwb.read_bytes()[: nwb.stat().st_size // 2])
    run = tmp_path / "run"
    rc = main(batch_args(ids, run, damaged, "--scheduler", dask_cluster.scheduler_address, "--no-figures"))
    assert rc == 1  # finished, but not every cell is ok
    df = summary(run).set_index("specimen_id")
    assert df.loc[bad, "status"] == "failed"
    assert "CellDataError" in df.loc[bad, "error"] and "truncated or corrupt" in df.loc[bad, "error"]
    assert (df.drop(index=bad).status == "ok").all()
    result = json.loads((run / str(bad) / "result.json").read_text())
    assert result["status"] == "failed" and "truncated or corrupt" in result["error"]
    assert f"{bad}: failed" in capsys.readouterr().err

    # resume retries the failed cell only; after the file is repaired it succeeds
    ok_before = {k: v for k, v in stamps(run).items() if k != str(bad)}
    shutil.copy2(cache / f"specimen_{bad}" / "ephys.nwb", nwb)
    assert main(batch_args(ids, run, damaged, "--scheduler", dask_cluster.scheduler_address, "--no-figures")) == 0
    assert {k: v for k, v in stamps(run).items() if k != str(bad)} == ok_before
    assert (summary(run).status == "ok").all()


def test_changed_config_is_refused_then_forced(local_run, synth_cache, dask_cluster, tmp_path, capsys):
    cache, ids = synth_cache
    run = tmp_path / "run"
    shutil.copytree(local_run[0], run)
    before = stamps(run)

    # the same command again: nothing to do, nothing rewritten
    assert main(batch_args(ids, run, cache, "--scheduler", dask_cluster.scheduler_address)) == 0
    assert stamps(run) == before

    assert main(batch_args(ids, run, cache, "--epochs", "4", "--seed", "1",
                           "--scheduler", dask_cluster.scheduler_address)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "different configuration" in err and "epochs (3 -> 4)" in err and "seed (0 -> 1)" in err
    assert "--force" in err
    assert stamps(run) == before

    rc = main(batch_args(ids, run, cache, "--epochs", "4", "--force", "--no-figures",
                         "--scheduler", dask_cluster.scheduler_address))
    assert rc == 0
    assert json.loads((run / "config.json").read_text())["fit"]["epochs"] == 4
    res = results(run)
    assert len(res) == N_CELLS and all(r["config"]["epochs"] == 4 and r["status"] == "ok" for r in res.values())
    assert all(stamps(run)[k][0] != before[k][0] for k in before)


@pytest.mark.parametrize("args, message", [
    (["--panel", "nosuchpanel"], "unknown panel 'nosuchpanel'"),
    (["--panel", " "], "unknown panel"),
    (["--specimens", "123", "--dt", "7", "--arp", "7"], "dt 7 ms is outside"),
    (["--specimens", "123", "--cells-per-task", "0"], "--cells-per-task: must be >= 1"),
    (["--specimens", "123", "--scheduler", "nonsense"], "unknown scheduler 'nonsense'"),
    (["--specimens", "123", "--arp", "0.3", "--dt", "0.2"], "multiple"),
])
def test_usage_errors_exit_2_with_one_line(args, message, tmp_path, capsys):
    rc = main([*args, "--out", str(tmp_path / "run"), "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and message in err and err.startswith("python -m cellfit.batch: error:")


def test_summarise_lists_missing_and_stale_cells(local_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(local_run[0], run)
    config = json.loads((run / "config.json").read_text())
    gone, changed = config["specimens"][0], config["specimens"][1]
    (run / str(gone) / "result.json").unlink()
    result = json.loads((run / str(changed) / "result.json").read_text())
    result["seed"] = 99
    (run / str(changed) / "result.json").write_text(json.dumps(result))
    df = summarise(run).set_index("specimen_id")
    assert len(df) == N_CELLS
    assert df.loc[gone, "status"] == "missing" and "no result.json" in df.loc[gone, "error"]
    assert df.loc[changed, "status"] == "stale"
    assert (df.drop(index=[gone, changed]).status == "ok").all()


def test_task_that_keeps_failing_is_split_and_its_cells_recorded(synth_cache, tmp_path, monkeypatch):
    """A task that raises on every try: its cells are resubmitted one per task; the culprit ends failed."""
    from distributed import Client, LocalCluster

    from cellfit.batch import run as batch_run
    from cellfit.batch import run_batch
    from cellfit.fit import FitConfig

    cache, ids = synth_cache
    cells, bad = ids[:3], ids[1]
    real = batch_run.fit_chunk

    def crashes_on_bad(specimens, *args, **kwargs):
        if bad in specimens:
            raise RuntimeError("simulated crash")
        return real(specimens, *args, **kwargs)

    monkeypatch.setattr(batch_run, "fit_chunk", crashes_on_bad)  # in-process workers see the patch
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0") as lc, \
            Client(lc) as client:
        df = run_batch(cells, FitConfig(dt_ms=0.5, epochs=3), tmp_path / "run", cells_per_task=3, scheduler=client,
                       device="cpu", cache_dir=cache, progress=False, figures=False)
    df = df.set_index("specimen_id")
    assert df.loc[bad, "status"] == "failed" and "task failed: RuntimeError: simulated crash" in df.loc[bad, "error"]
    good = [s for s in cells if s != bad]
    assert (df.loc[good, "status"] == "ok").all() and (df.loc[good, "batch_cells"] == 1).all()
    assert json.loads((tmp_path / "run" / str(bad) / "result.json").read_text())["status"] == "failed"


def test_ctrl_c_during_the_wait_is_taken_between_dask_calls():
    """The first Ctrl-C only marks the run; the wait loop raises it at its next check, through
    the handler installed before (the command line's muting one). A second Ctrl-C raises at once;
    the previous handler is back afterwards."""
    from cellfit.batch.run import _DeferredInterrupt

    calls = []

    def previous(signum, frame):
        calls.append(signum)
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, previous)
    try:
        interrupt = _DeferredInterrupt()
        levels = {n: logging.getLogger(n).level for n in _DeferredInterrupt._NOISY}
        with interrupt.installed():
            interrupt.check()  # nothing yet
            os.kill(os.getpid(), signal.SIGINT)  # handled synchronously by the main thread
            assert calls == []  # not raised inside whatever Dask call was running
            assert logging.getLogger("distributed").level == logging.CRITICAL  # its teardown chatter muted
            with pytest.raises(KeyboardInterrupt):
                interrupt.check()
            assert calls == [signal.SIGINT]
            with pytest.raises(KeyboardInterrupt):  # the second one does not wait
                os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is previous
        assert all(logging.getLogger(n).level == levels[n] for n in levels)  # Dask's loggers as they were
    finally:
        signal.signal(signal.SIGINT, old)
