"""Where the batch tasks run: a local Dask cluster, a SLURM/PBS job queue, or a running scheduler.

``scheduler`` is one of

- ``"local"``: an in-process :class:`distributed.LocalCluster` of ``workers`` processes
  (one thread each), bound to 127.0.0.1, no dashboard;
- ``"slurm"`` / ``"pbs"``: a :class:`dask_jobqueue.SLURMCluster` / ``PBSCluster`` whose
  scheduler runs here (the login node) and whose ``workers`` batch jobs each run one
  Dask worker; queue, walltime, memory, cores and GPUs come from :class:`ClusterOptions`;
- ``"tcp://HOST:PORT"`` (or any Dask address): connect to a scheduler already running,
  for example one started with ``dask scheduler`` and ``dask worker`` by hand;
- a :class:`distributed.Client` you already hold (a notebook's), used as it is and left open.

Workers must see the same file system as this process (the run directory and the
Allen cache) and the same Python environment (``cellfit`` importable).

SLURM/PBS fail loudly (:mod:`cellfit.batch.jobwatch`): a missing ``sbatch``/``qsub``, a
refused job, a job that fails before its worker connects, or no worker within
``ClusterOptions.start_timeout`` seconds raise :class:`ClusterError` with one line in the
scheduler's own words, instead of a traceback and a wait for ever.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pathlib
import signal
import threading
from typing import Callable, Iterator, Optional

import yaml
from dask.utils import parse_bytes
from distributed import Client, LocalCluster

from cellfit.batch.jobwatch import DEFAULT_START_TIMEOUT_S, ClusterError, JobWatch, check_commands, watched_job_class

__all__ = ["ClusterError", "ClusterOptions", "Connection", "connect", "make_jobqueue_cluster", "SCHEDULERS",
           "cluster_options_from_args",
           "FIT_RESOURCE"]

logger = logging.getLogger(__name__)

SCHEDULERS = ("local", "slurm", "pbs")
#: Dask worker resource that limits each worker process to one fit at a time
#: (declared on the workers of the clusters created here)
FIT_RESOURCE = "cellfit_fit"


@dataclasses.dataclass(frozen=True)
class ClusterOptions:
    """Batch-job options for ``slurm``/``pbs`` (ignored by ``local`` and scheduler addresses).

    Read from the command line or a YAML file (:meth:`from_yaml`) with the same names.
    """

    queue: Optional[str] = None
    """Partition (SLURM ``-p``) or queue (PBS ``-q``)."""
    walltime: str = "01:00:00"
    """Wall-clock limit of each job, ``HH:MM:SS``."""
    memory: str = "16GB"
    """Memory of each job (Dask notation: ``16GB``)."""
    cores: int = 4
    """CPU cores of each job; a worker's PyTorch uses ``cores // processes`` threads."""
    processes: int = 1
    """Dask worker processes per job (keep 1 with GPUs: each process fits on ``cuda:0``)."""
    gpus_per_job: int = 0
    """GPUs requested per job (SLURM ``--gres=gpu:N``; PBS ``ngpus=N`` in the select statement)."""
    account: Optional[str] = None
    """Account/project charged for the jobs (``-A``)."""
    job_extra: tuple = ()
    """Extra scheduler directives, e.g. ``["--constraint=a100"]`` (SLURM) or ``["-m abe"]`` (PBS)."""
    job_script_prologue: tuple = ()
    """Shell lines run before the worker starts, e.g. ``["module load cuda", "source venv/bin/activate"]``."""
    worker_extra_args: tuple = ()
    """Extra ``dask worker`` arguments, e.g. ``["--lifetime", "55m", "--lifetime-stagger", "4m"]``."""
    interface: Optional[str] = None
    """Network interface that workers and scheduler use (e.g. ``ib0``)."""
    local_directory: Optional[str] = None
    """Worker scratch directory on the compute nodes."""
    log_directory: Optional[str] = None
    """Where the batch jobs write their stdout/stderr."""
    python: Optional[str] = None
    """Python executable on the compute nodes (default: this one)."""
    start_timeout: float = DEFAULT_START_TIMEOUT_S
    """Seconds the run waits without any connected worker (jobs pending, held) before it stops
    with the scheduler's reason; 0: no limit. Jobs that fail before their worker connects
    stop the run at once."""

    def __post_init__(self):
        for name in ("cores", "processes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.gpus_per_job) < 0:
            raise ValueError(f"gpus_per_job must be >= 0, got {self.gpus_per_job}")
        try:
            timeout = float(self.start_timeout)
        except (TypeError, ValueError):
            timeout = float("nan")
        if not timeout >= 0:
            raise ValueError(f"start_timeout must be a number of seconds >= 0 (0: no limit), got {self.start_timeout!r}")
        object.__setattr__(self, "start_timeout", timeout)
        if self.cores % self.processes:
            raise ValueError(f"cores ({self.cores}) must be a multiple of processes ({self.processes})")
        for name in ("job_extra", "job_script_prologue", "worker_extra_args"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ValueError(f"{name} must be a list of strings, got the string {value!r}")
            object.__setattr__(self, name, tuple(str(v) for v in value))

    @classmethod
    def from_dict(cls, d: dict, **overrides) -> "ClusterOptions":
        """Build from a dict (YAML keys, ``-`` or ``_``); ``overrides`` that are not None win."""
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {}
        for key, value in (d or {}).items():
            name = str(key).replace("-", "_")
            if name not in known:
                raise ValueError(f"unknown cluster option {key!r}; valid options: {', '.join(sorted(known))}")
            kw[name] = value
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kw)

    @classmethod
    def from_yaml(cls, path: os.PathLike | str, **overrides) -> "ClusterOptions":
        """Read options from a YAML mapping (``yaml.safe_load``); ``overrides`` that are not None win."""
        path = pathlib.Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"cluster config {path} does not exist") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"cluster config {path} is not valid YAML: {' '.join(str(exc).split())}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError(f"cluster config {path} must be a YAML mapping of option: value")
        return cls.from_dict(data, **overrides)

    @property
    def torch_threads(self) -> int:
        return max(1, self.cores // self.processes)


def _import_dask_jobqueue():
    """``dask_jobqueue``, imported without replacing Ctrl-C's handler.

    dask-jobqueue 0.9.0 sets ``SIGINT`` to a silent ``sys.exit()`` when imported (its runner
    module; dask/dask-jobqueue#696, fixed after 0.9.0), which would turn Ctrl-C into exit
    code 0 without a word; the previous handler (Python's ``KeyboardInterrupt``) is put back.
    """
    main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGINT) if main else None
    import dask_jobqueue  # noqa: PLC0415 - here, between saving and restoring the handler (see above)

    if main and getattr(signal.getsignal(signal.SIGINT), "__module__", "") == "dask_jobqueue.runner":
        ours = before is not None and getattr(before, "__module__", "") != "dask_jobqueue.runner"
        signal.signal(signal.SIGINT, before if ours else signal.default_int_handler)
    return dask_jobqueue


dask_jobqueue = _import_dask_jobqueue()


def make_jobqueue_cluster(kind: str, options: ClusterOptions, *, host: Optional[str] = None,
                          watch: Optional[JobWatch] = None):
    """A ``SLURMCluster`` or ``PBSCluster`` (no jobs submitted yet; call ``.scale(jobs=N)``).

    Each job runs ``options.processes`` worker processes; every worker declares one unit
    of :data:`FIT_RESOURCE`, so it runs one fit at a time with all its threads. With a
    ``watch``, the jobs report their submissions to it (:func:`watched_job_class`).
    """
    common = dict(
        queue=options.queue, account=options.account, walltime=options.walltime, memory=options.memory,
        cores=options.cores, processes=options.processes, interface=options.interface,
        local_directory=options.local_directory, log_directory=options.log_directory,
        job_script_prologue=list(options.job_script_prologue), python=options.python,
        worker_extra_args=["--resources", f"{FIT_RESOURCE}=1", *options.worker_extra_args],
        job_name="cellfit",
        # the scheduler's HTTP server (dashboard, /health) on this machine only, on a free port
        # (dask-jobqueue's default is :8787 on every interface, with a warning when that port is taken)
        scheduler_options={"dashboard_address": "127.0.0.1:0"},
    )
    if host is not None:
        common["scheduler_options"]["host"] = host
    extra = list(options.job_extra)
    if kind == "slurm":
        if options.gpus_per_job:
            extra.insert(0, f"--gres=gpu:{options.gpus_per_job}")
        if watch is not None:
            common["job_cls"] = watched_job_class(dask_jobqueue.slurm.SLURMJob, watch)
        return dask_jobqueue.SLURMCluster(job_extra_directives=extra, **common)
    if kind == "pbs":
        resource_spec = None
        if options.gpus_per_job:
            mem = dask_jobqueue.pbs.pbs_format_bytes_ceil(parse_bytes(options.memory))
            resource_spec = f"select=1:ncpus={options.cores}:ngpus={options.gpus_per_job}:mem={mem}"
        if watch is not None:
            common["job_cls"] = watched_job_class(dask_jobqueue.pbs.PBSJob, watch)
        return dask_jobqueue.PBSCluster(job_extra_directives=extra, resource_spec=resource_spec, **common)
    raise ValueError(f"unknown job queue {kind!r}; use 'slurm' or 'pbs'")


@dataclasses.dataclass
class Connection:
    """An open Dask client plus what the tasks need to know about its workers."""

    client: object  # distributed.Client
    torch_threads: Optional[int]
    """PyTorch threads per fit (None: leave the worker's setting alone)."""
    resources: Optional[dict]
    """Resources each task asks for (None for an outside scheduler whose workers may not declare them)."""
    description: str
    check: Optional[Callable[[], None]] = None
    """Called often while the run waits for results; raises :class:`ClusterError` when the
    cluster cannot give a worker (None: nothing to check)."""


class _LeakedTimeoutFilter(logging.Filter):
    """Drop asyncio's "Future exception was never retrieved" records whose exception is a TimeoutError.

    Dask's comms wait with tornado's ``gen.with_timeout``, which leaves its timed-out future
    unretrieved when nobody waits on it any more (a cluster closed while its jobs never
    started). asyncio logs such a future when it is garbage-collected, often after the
    command's one-line error, as three lines of noise. Any other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, TimeoutError) and record.getMessage().startswith("Future exception was never retrieved"))


_LEAKED_TIMEOUTS = _LeakedTimeoutFilter()


@contextlib.contextmanager
def _quiet_distributed() -> Iterator[None]:
    """Keep Dask's INFO chatter (worker start/stop) out of the output unless cellfit logs at INFO."""
    dlog = logging.getLogger("distributed")
    old = dlog.level
    if not logging.getLogger("cellfit").isEnabledFor(logging.INFO):
        dlog.setLevel(logging.WARNING)
    try:
        yield
    finally:
        dlog.setLevel(old)


def _local_workers(workers: Optional[int]) -> int:
    return max(1, int(workers)) if workers else max(1, (os.cpu_count() or 2) // 2)


@contextlib.contextmanager
def connect(scheduler="local", workers: Optional[int] = None,
            options: Optional[ClusterOptions] = None) -> Iterator[Connection]:
    """Open a Dask client for ``scheduler`` (see module docstring); close what was opened on exit."""
    if isinstance(scheduler, Connection):  # already open (e.g. shared by the settings of a sweep)
        yield scheduler
        return
    if isinstance(scheduler, Client):
        yield Connection(scheduler, None, None, f"client of {scheduler.scheduler.address}")
        return
    logging.getLogger("asyncio").addFilter(_LEAKED_TIMEOUTS)  # once: a set; kept, the futures outlive the cluster
    scheduler = (scheduler or "local").strip()
    options = options or ClusterOptions()
    kind = scheduler.lower()
    if kind == "local":
        n = _local_workers(workers)
        threads = max(1, (os.cpu_count() or 1) // n)
        with _quiet_distributed(), \
                LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                             dashboard_address="127.0.0.1:0", resources={FIT_RESOURCE: 1}) as cluster, \
                Client(cluster) as client:
            yield Connection(client, threads, {FIT_RESOURCE: 1}, f"local cluster of {n} worker processes")
        return
    if kind in ("slurm", "pbs"):
        check_commands(kind)
        n = max(1, int(workers or 1))
        watch = JobWatch(kind, timeout=options.start_timeout)
        with _quiet_distributed(), make_jobqueue_cluster(kind, options, watch=watch) as cluster:
            watch.attach(cluster)
            logger.info("job script:\n%s", cluster.job_script())
            # adaptive with a fixed size: jobs whose worker ends (walltime, preemption, scancel) are resubmitted
            cluster.adapt(minimum_jobs=n, maximum_jobs=n)
            watch.wait_submitted(n)  # a refused job raises ClusterError here, before any task
            with Client(cluster) as client:
                yield Connection(client, options.torch_threads, {FIT_RESOURCE: 1},
                                 f"{kind} cluster of {n} jobs ({cluster.scheduler_address})", watch.check)
        return
    if "://" in scheduler or ":" in scheduler:
        with _quiet_distributed(), Client(scheduler, timeout="30s") as client:
            yield Connection(client, None, None, f"scheduler {scheduler}")
        return
    raise ValueError(f"unknown scheduler {scheduler!r}; use local, slurm, pbs or a scheduler address tcp://HOST:PORT")


def cluster_options_from_args(args) -> ClusterOptions:
    """The :class:`ClusterOptions` of a command line's job flags (:func:`cellfit.cli.add_cluster_options`):
    the ``--cluster-config`` YAML file, if any, overridden by the flags given."""
    overrides = dict(queue=args.queue, walltime=args.walltime, memory=args.memory, cores=args.cores,
                     gpus_per_job=args.gpus_per_job, account=args.account, start_timeout=args.start_timeout)
    if args.cluster_config:
        return ClusterOptions.from_yaml(args.cluster_config, **overrides)
    return ClusterOptions.from_dict({}, **overrides)

