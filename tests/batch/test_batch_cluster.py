"""Cluster options and SLURM/PBS job scripts (constructed only, never submitted)."""

from __future__ import annotations

import pytest

from cellfit.batch.__main__ import build_parser, _cluster_options
from cellfit.batch.cluster import FIT_RESOURCE, ClusterOptions, make_jobqueue_cluster
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
    assert "#SBATCH -p gpu" in script
    assert "#SBATCH -t 01:30:00" in script
    assert "#SBATCH --gres=gpu:1" in script
    assert "#SBATCH -A lab42" in script
    assert "#SBATCH --mem=15G" in script or "#SBATCH --mem=16G" in script
    assert "#SBATCH --cpus-per-task=4" in script
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
