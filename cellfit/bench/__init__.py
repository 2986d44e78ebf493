"""Speed benchmarks: cellfit's Block and standard ALIF engines, and other libraries, on the same workloads.

- :mod:`cellfit.bench.cases`: :class:`BenchmarkCase` (one network/input shape) and the
  named grids (:data:`GRIDS`: the paper's Figure 3, the single-cell fit step, small CPU grids);
- :mod:`cellfit.bench.workloads`: the synthetic ALIF network on Poisson input, the
  single-cell fit step, the timed steps and the float64 exactness check;
- :mod:`cellfit.bench.panel`: a whole panel fitted in batches of K cells;
- :mod:`cellfit.bench.stages`: operation counts and the per-stage time of a training step;
- :mod:`cellfit.bench.peers`: the same network in Norse, snnTorch and SpikingJelly;
- :mod:`cellfit.bench.timing`: the timer, interleaved repeats, CPU threads;
- :mod:`cellfit.bench.runner`: :class:`BenchmarkConfig` and :func:`run_benchmark`;
- :mod:`cellfit.bench.report`: the CSV columns, atomic CSV, text tables.

Figures of the results are in :mod:`cellfit.figures.speed`. The command line is
``python -m pipelines.benchmark``; how grids are built, how to read the CSVs and the
commands: ``cellfit/bench/README.md``.

>>> from cellfit.bench import BenchmarkConfig, grid, run_benchmark
>>> df = run_benchmark(BenchmarkConfig(cases=grid("paper-synthetic"), device="auto", repeats=5, peers=("norse",)))
>>> df[["T", "engine", "fwd_bwd_median_s", "speedup_fwd_bwd", "spikes_per_sample"]]
"""

from cellfit.bench.cases import GRIDS, TASKS, BenchmarkCase, case_seed, grid, override_cases
from cellfit.bench.peers import PEERS, resolve_peers
from cellfit.bench.report import CSV_COLUMNS, peer_table, speedup_table, summary_table, write_csv_atomic
from cellfit.bench.runner import BenchmarkConfig, run_benchmark
from cellfit.bench.timing import device_name, summarise_times, time_call
from cellfit.bench.workloads import (
    SpikeMismatchError,
    SyntheticNetwork,
    build_case,
    check_engines_identical,
    noise_current,
    poisson_input,
)

__all__ = [
    "BenchmarkCase",
    "BenchmarkConfig",
    "CSV_COLUMNS",
    "GRIDS",
    "PEERS",
    "SpikeMismatchError",
    "SyntheticNetwork",
    "TASKS",
    "build_case",
    "case_seed",
    "check_engines_identical",
    "device_name",
    "grid",
    "noise_current",
    "override_cases",
    "peer_table",
    "poisson_input",
    "resolve_peers",
    "run_benchmark",
    "speedup_table",
    "summarise_times",
    "summary_table",
    "time_call",
    "write_csv_atomic",
]
