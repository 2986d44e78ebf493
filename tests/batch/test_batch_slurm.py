"""Batch fits through a real SLURM cluster: refusals, jobs that never start, a cancelled job.

They need the single-node SLURM cluster that ``.ci/start_slurm.sh`` starts on this machine
(``.ci/run`` calls it before the tests) and are skipped, saying why, where ``sinfo`` is
missing, does not answer, shows no idle node, or shows a cluster other than that one
(set ``CELLFIT_TEST_SLURM=1`` to use another SLURM cluster, whose default partition then
runs these small jobs). Every job here asks for 1 core and 1 GB; Dask binds to the
loopback interface (``interface: lo``), which works because the only node is this machine.
Each run runs ``python -m cellfit.batch`` as a user would and checks its exit code and
stderr, and the files it leaves.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pandas as pd
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
#: ClusterName of the cluster written by .ci/start_slurm.sh
CI_CLUSTER = "cellfit-ci"


def _slurm_unavailable() -> str:
    """Why SLURM cannot run these tests here ("" when it can)."""
    for cmd in ("sinfo", "sbatch", "squeue", "scancel", "scontrol"):
        if shutil.which(cmd) is None:
            return f"no SLURM here: {cmd} is not on PATH (.ci/start_slurm.sh starts a single-node cluster)"
    try:
        nodes = subprocess.run(["sinfo", "--noheader", "--Node", "--format=%t"], capture_output=True, text=True,
                               timeout=20)
        config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"SLURM does not answer: {exc}"
    if nodes.returncode != 0:
        return f"SLURM does not answer: sinfo: {' '.join(nodes.stderr.split())}"
    states = nodes.stdout.split()
    if not any(s in ("idle", "mix") for s in states):
        return f"no idle SLURM node (sinfo: {', '.join(states) or 'no node'}); see .ci/start_slurm.sh"
    cluster = next((ln.split("=", 1)[1].strip() for ln in config.stdout.splitlines()
                    if ln.startswith("ClusterName")), "")
    if cluster != CI_CLUSTER and os.environ.get("CELLFIT_TEST_SLURM") != "1":
        return (f"SLURM here is cluster {cluster!r}, not the test cluster of .ci/start_slurm.sh; "
                f"set CELLFIT_TEST_SLURM=1 to submit the test jobs to it")
    return ""


@pytest.fixture(scope="module")
def slurm():
    why = _slurm_unavailable()
    if why:
        pytest.skip(why)


@pytest.fixture
def token() -> str:
    """A job comment that marks this test's jobs (squeue %k)."""
    return f"cellfit-test-{uuid.uuid4().hex[:12]}"


def write_config(tmp_path, token: str, **extra) -> pathlib.Path:
    options = dict(cores=1, memory="1GB", interface="lo", log_directory=str(tmp_path / "jobs"),
                   job_extra=[f"--comment={token}"])
    for key, value in extra.items():
        options[key] = options.get(key, []) + value if isinstance(value, list) else value
    path = tmp_path / "cluster.yaml"
    path.write_text(json.dumps(options))  # JSON is YAML
    return path


def batch_command(cells, run, cache, config, *extra) -> list[str]:
    return [sys.executable, "-m", "cellfit.batch", "--specimens", *map(str, cells), "--dt", "0.5", "--window", "1",
            "--device", "cpu", "--out", str(run), "--cache-dir", str(cache), "--no-progress", "--no-figures",
            "--cells-per-task", "1", "--workers", "1", "--scheduler", "slurm", "--cluster-config", str(config),
            *extra]


def env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), CELLFIT_OFFLINE="1")


def run_cli(cmd, timeout=300) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout)
    return proc, time.perf_counter() - t0


def our_jobs(token: str) -> dict[str, str]:
    """``{job id: state}`` of this test's jobs that slurmctld still knows."""
    out = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%i|%T|%k"], capture_output=True,
                         text=True, timeout=20).stdout
    return {i: s for i, s, k in (ln.split("|", 2) for ln in out.splitlines() if ln.count("|") == 2) if k == token}


def wait_until_no_live_job(token: str, seconds: float = 30.0) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while True:
        jobs = our_jobs(token)
        live = {i: s for i, s in jobs.items() if s in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING")}
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.5)


def stamps(run: pathlib.Path) -> dict[str, tuple[int, bytes]]:
    return {p.parent.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.glob("*/result.json")}


def one_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_slurm_refusing_the_job_is_one_line_and_exit_2(slurm, tmp_path, synth_cache, token):
    cache, ids = synth_cache
    config = write_config(tmp_path, token, queue="no-such-partition")
    proc, seconds = run_cli(batch_command(ids[:2], tmp_path / "run", cache, config, "--epochs", "3"))
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc)
    assert line.startswith("python -m cellfit.batch: error: sbatch refused the worker job: invalid partition specified: "
                           "no-such-partition; Batch job submission failed: Invalid partition name specified")
    print(f"refused by SLURM, answered in {seconds:.1f} s")


def test_slurm_job_failing_at_start_up_is_reported_with_its_output(slurm, tmp_path, synth_cache, token):
    cache, ids = synth_cache
    config = write_config(tmp_path, token, job_script_prologue=[
        "echo 'cellfit-test: no Python environment on this node' >&2", "exit 3"])
    proc, seconds = run_cli(batch_command(ids[:2], tmp_path / "run", cache, config, "--epochs", "3"))
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc)
    job = next(iter(our_jobs(token)))
    assert line.startswith(f"python -m cellfit.batch: error: slurm job {job} FAILED (NonZeroExitCode, exit code 3:0) "
                           f"before its Dask worker connected; its output {tmp_path}/jobs/cellfit-{job}.err ends: "
                           f"cellfit-test: no Python environment on this node")
    assert not list((tmp_path / "run").glob("*/result.json"))  # no cell marked failed for it: a rerun fits them
    print(f"start-up failure reported in {seconds:.1f} s")


def test_slurm_job_that_never_starts_is_reported_with_squeues_reason(slurm, tmp_path, synth_cache, token):
    cache, ids = synth_cache
    config = write_config(tmp_path, token, job_extra=["--hold"])
    proc, seconds = run_cli(batch_command(ids[:2], tmp_path / "run", cache, config, "--epochs", "3",
                                          "--start-timeout", "3"))
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc)
    job = next(iter(our_jobs(token)))
    assert line.startswith(f"python -m cellfit.batch: error: no Dask worker connected within 3 s: slurm job {job} PENDING "
                           f"(JobHeldUser) (see `squeue -j {job}`")
    assert wait_until_no_live_job(token) == {}  # the held job was cancelled on the way out
    print(f"held job reported in {seconds:.1f} s")


@pytest.mark.slow
def test_slurm_batch_with_a_cancelled_job_resumes_without_refitting(slurm, tmp_path, synth_cache, token):
    """4 cells, one at a time on one worker job. When the first cell is written the job is
    cancelled with ``scancel``; dask-jobqueue resubmits it and the run goes on. When the new
    job has written a cell, the command gets Ctrl-C (exit 130, jobs cancelled); the same
    command then fits the cells still missing. No cell written before is written again."""
    cache, ids = synth_cache
    cells = ids[:4]
    run = tmp_path / "run"
    cmd = batch_command(cells, run, cache, write_config(tmp_path, token), "--epochs", "30")
    t0 = time.perf_counter()
    log = open(tmp_path / "first-run.err", "w+")
    first = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=log)
    try:
        def wait_for(condition, what, seconds=180.0):
            deadline = time.monotonic() + seconds
            while not condition():
                assert first.poll() is None, f"the run ended (exit {first.returncode}) before {what}: " \
                                             f"{pathlib.Path(log.name).read_text()}"
                assert time.monotonic() < deadline, f"no {what} within {seconds} s"
                time.sleep(0.1)

        wait_for(lambda: stamps(run), "first result.json")
        t_first = time.perf_counter() - t0
        before = stamps(run)
        running = [i for i, s in our_jobs(token).items() if s == "RUNNING"]
        assert len(running) == 1
        subprocess.run(["scancel", running[0]], check=True, timeout=20)
        cancelled_at = time.time_ns()
        # the resubmitted job fits the next cell
        wait_for(lambda: any(m > cancelled_at for m, _ in stamps(run).values()), "cell from the resubmitted job")
        t_resumed = time.perf_counter() - t0
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=120) == 130, pathlib.Path(log.name).read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        log.close()
    after_first = stamps(run)
    assert 1 < len(after_first) < len(cells), "the first run should end with cells left to fit"
    assert {k: after_first[k] for k in before} == before  # nothing written twice
    jobs = our_jobs(token)
    assert jobs[running[0]] == "CANCELLED" and len(jobs) >= 2  # the cancelled job and its replacement
    assert wait_until_no_live_job(token) == {}  # Ctrl-C cancelled the replacement
    stderr = pathlib.Path(tmp_path / "first-run.err").read_text()
    assert "Traceback" not in stderr, stderr

    proc, seconds = run_cli(cmd)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(cells)} cells: {len(cells)} ok" in proc.stdout
    final = stamps(run)
    assert sorted(final) == sorted(map(str, cells))
    assert {k: final[k] for k in after_first} == after_first  # nothing refitted
    summary = pd.read_csv(run / "summary.csv")
    assert sorted(summary.specimen_id) == sorted(cells) and (summary.status == "ok").all()
    print(f"first cell after {t_first:.1f} s, cell from the resubmitted job after {t_resumed:.1f} s, "
          f"rerun fitted {len(cells) - len(after_first)} cells in {seconds:.1f} s; "
          f"total {time.perf_counter() - t0:.1f} s")
