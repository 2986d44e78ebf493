"""Batch jobs that fail loudly: checks around dask-jobqueue's SLURM/PBS worker jobs.

dask-jobqueue submits each worker job with ``sbatch``/``qsub`` from its event loop. Left
alone, a missing command or a refused job becomes a logged traceback followed by a wait for
ever for a worker that cannot come, and a job that is accepted but never starts (held, asking
for what no node has, failing at start-up) is a silent wait. dask-jobqueue still submits
the jobs; this module adds three checks, each ending in a :class:`ClusterError` whose
message is one line in the scheduler's own words:

1. :func:`check_commands`, before any work: the scheduler's submit, status and cancel
   commands (``sbatch``/``squeue``/``scancel``, ``qsub``/``qstat``/``qdel``) are on ``PATH``.
2. :func:`watched_job_class`: the job class given to dask-jobqueue; its ``start`` records a
   refused submission (non-zero exit) with the submit command's stderr instead of raising it
   into the event loop, and records the job ids that were accepted.
3. :class:`JobWatch`: :meth:`JobWatch.wait_submitted` waits (seconds) for the first
   submissions and raises on a refusal; :meth:`JobWatch.check`, polled while the run waits
   for results, asks the scheduler (``squeue``/``scontrol``/``sacct``, ``qstat -f``) about
   jobs whose Dask worker has not connected. It raises when no worker is connected and

   - every such job has ended without its worker ever connecting (failed at start-up,
     cancelled while pending): the job's state, reason, exit code and the last line of its
     output file; or
   - no worker has been connected for ``timeout`` seconds (held, or pending for ever): each
     job's state and the scheduler's reason (squeue ``%r``, qstat ``comment``).

   A job whose worker had connected and then ended (walltime, preemption, ``scancel``) is
   not an error: dask-jobqueue resubmits it (after ``distributed.deploy.lost-worker-timeout``,
   15 s by default) and the timeout starts again from the moment the last worker left.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import subprocess
import threading
import time
from typing import Optional

__all__ = ["ClusterError", "JobState", "JobWatch", "check_commands", "commands", "job_states",
           "watched_job_class", "DEFAULT_START_TIMEOUT_S"]

logger = logging.getLogger(__name__)

#: default seconds to wait for a worker job to start (``ClusterOptions.start_timeout``)
DEFAULT_START_TIMEOUT_S = 1800.0
#: seconds between two scheduler queries about jobs whose worker has not connected
POLL_S = 5.0
#: seconds without any worker after which a warning says what the jobs wait for
WARN_AFTER_S = 60.0
#: seconds any one status command may take
QUERY_TIMEOUT_S = 20.0

_NAMES = {"slurm": "SLURM", "pbs": "PBS"}
_COMMANDS = {"slurm": ("sbatch", "squeue", "scancel"), "pbs": ("qsub", "qstat", "qdel")}
#: SLURM job states after which the job will not run (again) by itself
_SLURM_ENDED = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
                "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT"}
#: PBS Pro (F, X) and Torque (C) states of finished jobs
_PBS_ENDED = {"C", "F", "X"}


class ClusterError(RuntimeError):
    """The batch scheduler cannot give this run a Dask worker; the message is one line."""


def commands(kind: str) -> tuple[str, str, str]:
    """``(submit, status, cancel)`` commands of ``kind`` (``"slurm"`` or ``"pbs"``)."""
    try:
        return _COMMANDS[kind]
    except KeyError:
        raise ValueError(f"unknown job queue {kind!r}; use 'slurm' or 'pbs'") from None


def check_commands(kind: str) -> None:
    """Raise :class:`ClusterError` naming the scheduler commands missing from ``PATH``."""
    kind = str(kind).strip().lower()
    if kind not in _COMMANDS:
        return
    missing = [c for c in commands(kind) if shutil.which(c) is None]
    if missing:
        name = _NAMES[kind]
        listed = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
        raise ClusterError(
            f"--scheduler {kind} submits the Dask workers as {name} jobs, but {listed} "
            f"{'is' if len(missing) == 1 else 'are'} not on PATH: run this on a {name} login node "
            f"(on some clusters after `module load {kind}`), or use --scheduler local")


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _scheduler_message(exc: BaseException, submit: str) -> str:
    """The submit command's own words from dask-jobqueue's error (its stderr), on one line."""
    if isinstance(exc, FileNotFoundError):
        return f"{submit} not found ({_one_line(exc)})"
    text = str(exc)
    match = re.search(r"\nstderr:\n(.*)\Z", text, flags=re.S)  # dask_jobqueue.core.Job._call
    if match and match.group(1).strip():
        lines = [ln.strip() for ln in match.group(1).splitlines() if ln.strip()]
        lines = [re.sub(rf"^{re.escape(submit)}:\s*(error:\s*)?", "", ln) for ln in lines]
        return _one_line("; ".join(lines))
    code = re.search(r"Exit code: (\d+)", text)
    if code:
        return f"it exited with code {code.group(1)} and printed nothing on stderr"
    return _one_line(text)


# --------------------------------------------------------------------------
# what the scheduler says about a job
# --------------------------------------------------------------------------
@dataclasses.dataclass
class JobState:
    """One job as the scheduler reports it."""

    job_id: str
    state: str
    """The scheduler's state word (``PENDING``, ``FAILED``, ``Q``, ``F``...); ``""`` unknown."""
    reason: str = ""
    """Why it waits or ended (squeue ``%r``, ``scontrol`` ``Reason``, qstat ``comment``)."""
    ended: bool = False
    """True when the job will not run (again) by itself."""
    exit_code: str = ""
    output: str = ""
    """Path of the job's stderr file, where known."""

    def describe(self, kind: str) -> str:
        """``slurm job 12 FAILED (NonZeroExitCode, exit code 3:0)``."""
        what = [r for r in (self.reason,) if r and r not in ("None", "(null)")]
        if self.exit_code and self.exit_code not in ("0", "0:0"):
            what.append(f"exit code {self.exit_code}")
        state = self.state or "unknown state"
        return f"{kind} job {self.job_id} {state}" + (f" ({', '.join(what)})" if what else "")

    def output_tail(self) -> str:
        """The last non-empty line of the job's stderr file ("" when unreadable)."""
        if not self.output:
            return ""
        try:
            with open(self.output, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 4096))
                lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return _one_line(lines[-1], 200) if lines else ""


def _run(cmd: list[str]) -> Optional[subprocess.CompletedProcess]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.info("%s: %s", " ".join(cmd), _one_line(exc))
        return None


def _slurm_states(ids: list[str], details: bool) -> dict[str, JobState]:
    out: dict[str, JobState] = {}
    proc = _run(["squeue", "--noheader", "--states=all", f"--jobs={','.join(ids)}", "--format=%i|%T|%r"])
    if proc is None:
        return out
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|", 2)
        if len(parts) == 3 and parts[0] in ids:
            out[parts[0]] = JobState(parts[0], parts[1], parts[2], parts[1] in _SLURM_ENDED)
    if proc.returncode != 0 and not out and "invalid job id" not in proc.stderr.lower():
        logger.info("squeue failed: %s", _one_line(proc.stderr))
        return out  # the controller did not answer: say nothing rather than something wrong
    for jid in ids:
        state = out.get(jid)
        if state is not None and not (details and state.ended):
            continue
        proc = _run(["scontrol", "--oneliner", "show", "job", jid])
        if proc is not None and proc.returncode == 0 and "JobState=" in proc.stdout:
            fields = dict(re.findall(r"(\w+)=(\S*)", proc.stdout))
            word = fields.get("JobState", "")
            path = re.sub(r"%[jJA]", jid, fields.get("StdErr", "")).replace("%x", fields.get("JobName", "%x"))
            out[jid] = JobState(jid, word, fields.get("Reason", ""), word in _SLURM_ENDED,
                                fields.get("ExitCode", ""), path)
        elif state is None:  # purged from slurmctld's memory: ask the accounting database
            proc = _run(["sacct", "--noheader", "--allocations", "--parsable2", f"--jobs={jid}",
                         "--format=JobID,State,ExitCode"])
            rows = [ln.split("|") for ln in (proc.stdout.splitlines() if proc and proc.returncode == 0 else [])]
            rows = [r for r in rows if len(r) == 3 and r[0] == jid]
            if rows:
                word = rows[0][1].split()[0]
                out[jid] = JobState(jid, word, rows[0][1], word in _SLURM_ENDED, rows[0][2])
            else:
                out[jid] = JobState(jid, "", "no longer known to SLURM", True)
    return out


def _parse_qstat_full(text: str) -> dict[str, dict[str, str]]:
    """``qstat -f`` text (``Job Id: 12.server`` blocks of ``key = value``, wrapped values
    continued on lines that start with a tab) as ``{numeric id: {key: value}}``."""
    jobs: dict[str, dict[str, str]] = {}
    current: Optional[dict] = None
    key = None
    for line in text.splitlines():
        if line.startswith("Job Id:"):
            full = line.split(":", 1)[1].strip()
            current = jobs.setdefault(re.match(r"\d*", full).group(0) or full, {})
            key = None
        elif current is not None and line.startswith("\t") and key:
            current[key] += line[1:]  # the value was cut at a column: join it as it was
        elif current is not None and " = " in line:
            key, value = line.split(" = ", 1)
            key = key.strip()
            current[key] = value
    return {jid: {k: v.strip() for k, v in fields.items()} for jid, fields in jobs.items()}


def _pbs_states(ids: list[str], details: bool) -> dict[str, JobState]:
    found: dict[str, dict[str, str]] = {}
    proc = _run(["qstat", "-f", *ids])
    if proc is None:
        return {}
    found.update(_parse_qstat_full(proc.stdout))
    if proc.returncode != 0 and not found and "unknown job" not in proc.stderr.lower():
        logger.info("qstat failed: %s", _one_line(proc.stderr))
        return {}
    gone = [j for j in ids if j not in found]
    if gone:  # finished jobs: PBS Pro's job history (Torque's -x means XML: not parsed, harmless)
        history = _run(["qstat", "-f", "-x", *gone])
        if history is not None and history.returncode == 0:
            found.update(_parse_qstat_full(history.stdout))
    out = {}
    for jid in ids:
        f = found.get(jid)
        if f is None:
            out[jid] = JobState(jid, "", "no longer known to PBS", True)
            continue
        word = f.get("job_state", "")
        path = f.get("Error_Path", "")
        out[jid] = JobState(jid, word, f.get("comment", ""), word in _PBS_ENDED,
                            f.get("Exit_status", f.get("exit_status", "")), path.split(":", 1)[-1])
    return out


def job_states(kind: str, ids, details: bool = False) -> dict[str, JobState]:
    """What the scheduler says about job ``ids`` (``{}`` when it cannot be asked).

    ``details=True`` also asks ``scontrol`` about SLURM jobs that ended (exit code, output file).
    """
    ids = [str(i) for i in ids if i]
    if not ids:
        return {}
    return _slurm_states(ids, details) if kind == "slurm" else _pbs_states(ids, details)


# --------------------------------------------------------------------------
# the job class and the watch
# --------------------------------------------------------------------------
def watched_job_class(base: type, watch: "JobWatch") -> type:
    """A subclass of dask-jobqueue's ``base`` job (``SLURMJob``/``PBSJob``) reporting to ``watch``.

    A refused submission is recorded (not raised: raised, it becomes a traceback in the event
    loop and the cluster waits for ever); the job then counts as started without a job id,
    so closing the cluster has nothing to cancel for it.
    """
    from distributed.core import Status

    class WatchedJob(base):
        async def start(self):
            watch._submitting(+1)
            try:
                await base.start(self)
            except (OSError, RuntimeError, ValueError) as exc:
                watch._refused(_scheduler_message(exc, base.submit_command))
                self.status = Status.running  # what ProcessInterface.start sets
            else:
                watch._submitted(self.name, self.job_id)
            finally:
                watch._submitting(-1)

    WatchedJob.__name__ = WatchedJob.__qualname__ = f"Watched{base.__name__}"
    return WatchedJob


class JobWatch:
    """Watches the worker jobs of one dask-jobqueue cluster (see the module docstring).

    Args:
        kind: ``"slurm"`` or ``"pbs"``.
        timeout: seconds without any connected worker before :meth:`check` raises
            (0 or None: no limit).
        poll_s: seconds between two scheduler queries (default :data:`POLL_S`).
    """

    def __init__(self, kind: str, timeout: Optional[float] = DEFAULT_START_TIMEOUT_S,
                 poll_s: Optional[float] = None):
        self.kind = kind
        self.submit = commands(kind)[0]
        self.timeout = float(timeout or 0)
        self.poll_s = float(POLL_S if poll_s is None else poll_s)
        self.cluster = None
        self._lock = threading.Lock()
        self._refusals: list[str] = []
        self._in_flight = 0
        self._n_submitted = 0
        self._connected_ids: set[str] = set()
        self._reported: set[str] = set()
        self._since = time.monotonic()  # when the run last had a worker (or started waiting)
        self._last_poll = float("-inf")
        self._warned = False

    # called from the cluster's event loop (WatchedJob.start)
    def _submitting(self, delta: int) -> None:
        with self._lock:
            self._in_flight += delta

    def _refused(self, message: str) -> None:
        with self._lock:
            self._refusals.append(message)

    def _submitted(self, name: str, job_id: Optional[str]) -> None:
        logger.info("%s job %s submitted for worker %s", self.kind, job_id, name)
        with self._lock:
            self._n_submitted += 1

    # called from the client's thread
    def attach(self, cluster) -> "JobWatch":
        """The ``JobQueueCluster`` whose jobs (``cluster.workers``) and workers are watched."""
        self.cluster = cluster
        self._since = time.monotonic()
        return self

    def _raise_refusal(self) -> None:
        with self._lock:
            message = self._refusals[0] if self._refusals else None
        if message is not None:
            raise ClusterError(f"{self.submit} refused the worker job: {message} (check --queue, --walltime, "
                               f"--memory, --cores, --gpus-per-job, --account or --cluster-config; "
                               f"--verbose logs the job script)")

    def wait_submitted(self, n_jobs: int, timeout: float = 60.0) -> None:
        """Wait until ``n_jobs`` submissions were accepted; raise :class:`ClusterError` on a refusal.

        Returns after ``timeout`` seconds in any case (a submit command that does not answer
        is then left to :meth:`check`).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_refusal()
            with self._lock:
                if self._n_submitted >= n_jobs:
                    return
            time.sleep(0.05)

    def _jobs(self) -> dict[str, Optional[str]]:
        """``{dask-jobqueue job name: job id}`` of the jobs the cluster counts on now."""
        workers = dict(self.cluster.workers) if self.cluster is not None else {}
        return {name: getattr(job, "job_id", None) for name, job in workers.items()}

    def _worker_names(self) -> list[str]:
        info = getattr(self.cluster, "scheduler_info", None) or {}
        return [str(w.get("name", "")) for w in dict(info.get("workers", {})).values()]

    def check(self) -> None:
        """Raise :class:`ClusterError` when the cluster cannot give the run a worker (cheap; call often)."""
        self._raise_refusal()
        now = time.monotonic()
        jobs = self._jobs()
        workers = self._worker_names()
        for name, jid in jobs.items():
            if jid and any(w == name or w.startswith(f"{name}-") for w in workers):
                self._connected_ids.add(jid)
        if workers:
            self._since = now
            self._warned = False
        waiting = [jid for jid in jobs.values() if jid and jid not in self._connected_ids]
        if not waiting and workers:
            return
        if now - self._last_poll < self.poll_s:
            return
        self._last_poll = now
        states = job_states(self.kind, waiting, details=not workers)
        ended = [s for s in states.values() if s.ended]
        alive = [s for s in states.values() if not s.ended]
        with self._lock:
            in_flight = self._in_flight
        if not workers and ended and not alive and len(states) == len(waiting) and not in_flight:
            raise ClusterError(self._start_failure(ended))
        for s in ended:
            if s.job_id not in self._reported:
                self._reported.add(s.job_id)
                logger.warning("%s before its Dask worker connected", s.describe(self.kind))
        if workers:
            return
        waited = now - self._since
        what = "; ".join(s.describe(self.kind) for s in alive)
        if self.timeout and waited > self.timeout:
            if not what:
                what = f"{in_flight} {self.submit} call(s) not answered" if in_flight else "no job in the queue"
            ids = ",".join(s.job_id for s in alive)
            status = commands(self.kind)[1] + (f" -j {ids}" if ids and self.kind == "slurm" else f" {ids}" if ids else "")
            raise ClusterError(f"no Dask worker connected within {self.timeout:g} s: {what} (see `{status}`; "
                               f"wait longer with --start-timeout SECONDS, 0 for no limit)")
        if waited > WARN_AFTER_S and not self._warned:
            self._warned = True
            limit = f"at most {self.timeout:g} s" if self.timeout else "without limit"
            logger.warning("no Dask worker for %.0f s: %s; waiting %s (--start-timeout)", waited,
                           what or "no job in the queue yet", limit)

    def _start_failure(self, ended: list[JobState]) -> str:
        first = ended[0]
        tail = first.output_tail()
        out = f"; its output {first.output} ends: {tail}" if tail else (
            f"; see its output {first.output}" if first.output else "")
        others = f" (and {len(ended) - 1} more)" if len(ended) > 1 else ""
        return (f"{first.describe(self.kind)}{others} before its Dask worker connected{out} (the job must start "
                f"a Dask worker that reaches this machine: check python, job_script_prologue and interface in "
                f"--cluster-config)")
