"""Cluster options, SLURM/PBS job scripts, and clusters that fail loudly (no SLURM or PBS needed).

The failure tests put fake ``sbatch``/``squeue``/``scontrol``/``scancel`` (or ``qsub``/
``qstat``/``qdel``) scripts first on a monkeypatched ``PATH`` in a temporary directory, or an
empty directory as the whole ``PATH``. The real SLURM tests are in ``test_batch_slurm.py``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pathlib
import subprocess
import sys
import time

import pytest

from cellfit.batch import jobwatch
from cellfit.batch.__main__ import build_parser
from cellfit.batch.cluster import cluster_options_from_args as _cluster_options
from cellfit.batch.cluster import FIT_RESOURCE, ClusterError, ClusterOptions, connect, make_jobqueue_cluster
from cellfit.batch.run import default_cells_per_task

LOGIN_NODE = ["--panel", "paper146", "--dt", "0.1", "--out", "runs/panel", "--workers", "8",
              "--queue", "gpu", "--walltime", "01:30:00", "--memory", "16GB", "--gpus-per-job", "1",
              "--device", "cuda"]


def job_script(kind: str, options: ClusterOptions) -> str:
    with make_jobqueue_cluster(kind, options, host="127.0.0.1") as cluster:
        return cluster.job_script()


def test_slurm_job_script_has_the_options():
    opts = _cluster_options(build_parser().parse_args([*LOGIN_NODE, "--scheduler", "slurm", "--account", "lab42"]))
    script = job_script("slurm", opts)
    for line in ("-p gpu", "-t 01:30:00", "--gres=gpu:1", "-A lab42", "--cpus-per-task=4"):
        assert f"#SBATCH {line}" in script, line
    assert "#SBATCH --mem=15G" in script or "#SBATCH --mem=16G" in script
    assert f"--resources {FIT_RESOURCE}=1" in script  # one fit at a time per worker


def test_pbs_job_script_has_the_options():
    opts = _cluster_options(build_parser().parse_args([*LOGIN_NODE, "--scheduler", "pbs", "--cores", "8"]))
    script = job_script("pbs", opts)
    assert "#PBS -q gpu" in script
    assert "#PBS -l walltime=01:30:00" in script
    assert "#PBS -l select=1:ncpus=8:ngpus=1:mem=" in script


def test_yaml_options_with_command_line_overrides(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(
        "queue: gpu\n"
        "walltime: '02:00:00'\n"
        "memory: 32GB\n"
        "cores: 8\n"
        "gpus-per-job: 1\n"
        "job_extra: ['--constraint=a100']\n"
        "job_script_prologue: ['module load cuda', 'source ~/venvs/cellfit/bin/activate']\n"
    )
    opts = _cluster_options(build_parser().parse_args(
        ["--specimens", "1", "--out", "x", "--cluster-config", str(path), "--walltime", "00:30:00"]))
    assert opts.queue == "gpu" and opts.memory == "32GB" and opts.cores == 8 and opts.gpus_per_job == 1
    assert opts.walltime == "00:30:00"  # the flag wins over the file
    assert opts.torch_threads == 8
    script = job_script("slurm", opts)
    assert "#SBATCH --constraint=a100" in script and "module load cuda" in script
    assert "#SBATCH --gres=gpu:1" in script


@pytest.mark.parametrize("text, message", [
    ("queue: gpu\nqeue: cpu\n", "unknown cluster option 'qeue'"),
    ("- just\n- a list\n", "must be a YAML mapping"),
    ("queue: [unclosed\n", "not valid YAML"),
    ("cores: 0\n", "cores must be >= 1"),
    ("job_extra: '--constraint=a100'\n", "must be a list of strings"),
])
def test_bad_cluster_config(tmp_path, text, message):
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        ClusterOptions.from_yaml(path)


def test_missing_cluster_config_is_a_usage_error(tmp_path, capsys):
    from cellfit.batch.__main__ import main

    rc = main(["--specimens", "1", "--out", str(tmp_path / "run"), "--scheduler", "slurm",
               "--cluster-config", str(tmp_path / "nope.yaml")])
    assert rc == 2
    assert "nope.yaml does not exist" in capsys.readouterr().err


def test_default_cells_per_task():
    assert default_cells_per_task("cuda", 146, 8) == 16
    assert default_cells_per_task("cpu", 146, 8) == 4
    assert default_cells_per_task("cpu", 6, 4) == 2  # every worker gets a task
    assert default_cells_per_task("cpu", 1, None) == 1


# --------------------------------------------------------------------------
# clusters that fail loudly: fake sbatch/qsub (and friends) on PATH, or none
# --------------------------------------------------------------------------
# Seconds a failing `python -m cellfit.batch` may take: interpreter start, imports (torch,
# allensdk) and a Dask scheduler start, on a loaded 2-core machine (about 4 s unloaded).
CLI_SECONDS = 30.0


def fake_bin(tmp_path, **scripts: str):
    """A directory of executable /bin/sh scripts named after the keys (sbatch=..., squeue=...)."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for name, body in scripts.items():
        path = d / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
    return d


def run_cli(args, path: str) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, PATH=str(path), PYTHONPATH=str(pathlib.Path(__file__).resolve().parents[2]))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cellfit.batch", *args], env=env, capture_output=True,
                          text=True, timeout=300)
    return proc, time.perf_counter() - t0


def cli_args(synth_cache, out):
    cache, ids = synth_cache
    return ["--specimens", *map(str, ids[:2]), "--dt", "0.5", "--epochs", "3", "--device", "cpu",
            "--out", str(out), "--cache-dir", str(cache), "--no-progress", "--cores", "1", "--memory", "1GB"]


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


FAST_FAILURE = dict(cores=1, memory="1GB", interface="lo")  # Dask on the loopback only


@pytest.mark.parametrize("kind, names", [("slurm", "sbatch, squeue and scancel"), ("pbs", "qsub, qstat and qdel")])
def test_missing_scheduler_commands_is_one_line_and_exit_2(tmp_path, kind, names):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    proc, seconds = run_cli(["--specimens", "1", "--out", str(tmp_path / "run"), "--scheduler", kind], empty)
    assert proc.returncode == 2, proc.stderr
    assert lines(proc.stderr) == [proc.stderr.strip()]
    assert f"{names} are not on PATH" in proc.stderr and "--scheduler local" in proc.stderr
    assert seconds < CLI_SECONDS
    assert not (tmp_path / "run").exists()  # answered before anything was written


def test_a_missing_status_command_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(fake_bin(tmp_path, sbatch="exit 1", scancel="exit 0")))
    with pytest.raises(ClusterError, match=r"but squeue is not on PATH"):
        jobwatch.check_commands("slurm")


REFUSAL = ("echo 'sbatch: error: Batch job submission failed: Invalid account or account/partition "
           "combination specified' >&2; exit 1")


def test_refused_sbatch_is_one_line_with_its_message_and_exit_2(tmp_path, synth_cache):
    bin_dir = fake_bin(tmp_path, sbatch=REFUSAL, squeue="exit 0", scancel="exit 0")
    config = tmp_path / "cluster.yaml"
    config.write_text("interface: lo\n")
    proc, seconds = run_cli([*cli_args(synth_cache, tmp_path / "run"), "--scheduler", "slurm",
                             "--cluster-config", str(config)], bin_dir)
    assert proc.returncode == 2, proc.stderr
    assert lines(proc.stderr) == [proc.stderr.strip()], proc.stderr  # no traceback
    assert proc.stderr.startswith("python -m cellfit.batch: error: sbatch refused the worker job: Batch job submission "
                                  "failed: Invalid account or account/partition combination specified")
    assert seconds < CLI_SECONDS
    print(f"refused sbatch answered in {seconds:.1f} s")


def test_refused_qsub_raises_with_its_message(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(fake_bin(tmp_path, qsub="echo 'qsub: Unknown queue' >&2; exit 170",
                                            qstat="exit 0", qdel="exit 0")))
    t0 = time.perf_counter()
    with pytest.raises(ClusterError, match=r"^qsub refused the worker job: Unknown queue \(check --queue"):
        with connect("pbs", 1, ClusterOptions(**FAST_FAILURE)):
            pass
    assert time.perf_counter() - t0 < 20  # cluster start and one qsub, not a wait


def watch_until_error(conn, seconds: float = 30.0) -> str:
    """Call the connection's check as the batch loop does until it raises; the message."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn.check()
        except ClusterError as exc:
            return str(exc)
        time.sleep(0.05)
    raise AssertionError(f"no ClusterError within {seconds} s")


@pytest.fixture
def fast_polls(monkeypatch):
    monkeypatch.setattr(jobwatch, "POLL_S", 0.2)


def test_pending_job_is_reported_with_the_schedulers_reason(tmp_path, monkeypatch, fast_polls):
    cancelled = tmp_path / "scancel.log"
    monkeypatch.setenv("PATH", str(fake_bin(
        tmp_path, sbatch="echo 'Submitted batch job 42'",
        squeue="echo '42|PENDING|ReqNodeNotAvail, UnavailableNodes:node[01-02]'",
        scancel=f'echo "$@" >> {cancelled}')))
    with connect("slurm", 1, ClusterOptions(**FAST_FAILURE, start_timeout=1)) as conn:
        message = watch_until_error(conn)
    assert message.startswith("no Dask worker connected within 1 s: slurm job 42 PENDING (ReqNodeNotAvail, "
                              "UnavailableNodes:node[01-02]) (see `squeue -j 42`")
    assert cancelled.read_text().split() == ["42"]  # the pending job is cancelled on the way out


def _leak_a_future_that_failed_with(exc: BaseException) -> None:
    """A future whose exception nobody retrieves, garbage-collected: asyncio logs it then."""
    loop = asyncio.new_event_loop()
    try:
        future = loop.create_future()
        future.set_exception(exc)
        del future
        gc.collect()
    finally:
        loop.close()


def test_a_cluster_that_timed_out_leaves_no_asyncio_noise_after_its_one_line(tmp_path, monkeypatch, fast_polls, caplog):
    """Dask leaves tornado's timed-out futures unretrieved when a cluster whose jobs never started
    is closed; asyncio logged them after the command's one-line error (seen once in CI on the
    real SLURM test). After a cluster has been opened, such a TimeoutError is not logged; any
    other never-retrieved exception still is."""
    monkeypatch.setenv("PATH", str(fake_bin(
        tmp_path, sbatch="echo 'Submitted batch job 42'", squeue="echo '42|PENDING|JobHeldUser'", scancel="exit 0")))
    with connect("slurm", 1, ClusterOptions(**FAST_FAILURE, start_timeout=1)) as conn:
        watch_until_error(conn)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        _leak_a_future_that_failed_with(TimeoutError("Timeout"))
        assert not [r for r in caplog.records if r.name == "asyncio"]
        _leak_a_future_that_failed_with(ValueError("a real error"))
        logged = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
        assert len(logged) == 1 and logged[0].startswith("Future exception was never retrieved"), logged


def test_job_failing_at_start_up_is_reported_with_its_state_and_output(tmp_path, monkeypatch, fast_polls):
    log = tmp_path / "cellfit-42.err"
    log.write_text("Traceback (most recent call last):\nModuleNotFoundError: No module named 'distributed'\n")
    monkeypatch.setenv("PATH", str(fake_bin(
        tmp_path, sbatch="echo 'Submitted batch job 42'", squeue="echo '42|FAILED|NonZeroExitCode'",
        scontrol=f"echo 'JobId=42 JobName=cellfit JobState=FAILED Reason=NonZeroExitCode Dependency=(null) "
                 f"ExitCode=1:0 StdErr={tmp_path}/cellfit-%j.err StdIn=/dev/null'",
        scancel="exit 0")))
    with connect("slurm", 1, ClusterOptions(**FAST_FAILURE)) as conn:  # default timeout: not waited for
        t0 = time.perf_counter()
        message = watch_until_error(conn)
        assert time.perf_counter() - t0 < 10
    assert message.startswith(f"slurm job 42 FAILED (NonZeroExitCode, exit code 1:0) before its Dask worker "
                              f"connected; its output {log} ends: ModuleNotFoundError: No module named 'distributed'")


QSTAT_F = """Job Id: 42.pbs01
    Job_Name = cellfit
    job_state = Q
    queue = gpu
    comment = Not Running: Insufficient amount of resource: ngpus (R: 1 A: 0 T: 
\t4)
    Error_Path = login01:/home/u/cellfit.e42
"""


def test_pbs_pending_job_is_reported_with_qstats_comment(tmp_path, monkeypatch, fast_polls):
    (tmp_path / "qstat.txt").write_text(QSTAT_F)
    monkeypatch.setenv("PATH", str(fake_bin(
        tmp_path, qsub="echo '42.pbs01'", qstat=f"while IFS= read -r l; do echo \"$l\"; done < {tmp_path}/qstat.txt",
        qdel="exit 0")))
    assert jobwatch._parse_qstat_full(QSTAT_F)["42"]["comment"].endswith("(R: 1 A: 0 T: 4)")
    with connect("pbs", 1, ClusterOptions(**FAST_FAILURE, start_timeout=1)) as conn:
        message = watch_until_error(conn)
    assert message.startswith("no Dask worker connected within 1 s: pbs job 42 Q (Not Running: Insufficient "
                              "amount of resource: ngpus (R: 1 A: 0 T: 4)) (see `qstat 42`")


def test_start_timeout_option():
    assert ClusterOptions().start_timeout == jobwatch.DEFAULT_START_TIMEOUT_S
    assert ClusterOptions.from_dict({"start-timeout": "90"}).start_timeout == 90.0
    opts = _cluster_options(build_parser().parse_args(["--specimens", "1", "--out", "x", "--start-timeout", "0"]))
    assert opts.start_timeout == 0.0  # no limit
    with pytest.raises(ValueError, match="start_timeout must be a number of seconds >= 0"):
        ClusterOptions(start_timeout=-1)


def test_ctrl_c_still_interrupts_once_dask_jobqueue_is_imported():
    # dask-jobqueue 0.9.0 turns SIGINT into a silent sys.exit() (exit 0) on import
    code = ("import os, signal\n"
            "from cellfit.batch.cluster import _import_dask_jobqueue\n"
            "_import_dask_jobqueue()\n"
            "os.kill(os.getpid(), signal.SIGINT)\n"
            "import time; time.sleep(5)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(pathlib.Path(__file__).resolve().parents[2])))
    assert proc.returncode != 0 and "KeyboardInterrupt" in proc.stderr, (proc.returncode, proc.stderr)
