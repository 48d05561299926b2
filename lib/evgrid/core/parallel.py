"""Map a function over independent tasks, serially or on a Dask cluster.

This is the one way evgrid runs independent work items (sweep points,
scenarios, months, seeds) in parallel::

    from evgrid.core.parallel import ParallelOptions, map_tasks

    results = map_tasks(solve_point, points, options=ParallelOptions(workers=2), desc="sweep")

``results[i]`` is ``solve_point(points[i])`` whatever order the workers finish
in. Where the work runs is chosen by :class:`ParallelOptions`:

* ``workers=1`` (and no ``scheduler``, ``cluster="local"``): a plain loop in this
  process; Dask is not even imported.
* ``workers=N``: a ``distributed.LocalCluster`` of N worker *processes* (one
  thread each), started for the call and closed afterwards.
* ``scheduler="tcp://host:8786"``: an existing cluster (``dask scheduler`` plus
  ``dask worker``); an unreachable address fails within ``connect_timeout_s``,
  before any task runs.
* ``cluster="slurm"`` / ``"pbs"``: ``jobs`` batch jobs requested through
  dask-jobqueue, each with ``cores`` cores, ``memory`` and ``walltime``.
  :func:`job_script` shows the script that would be submitted without
  submitting anything.

Tasks must be pure
------------------
* ``fn`` and every task are pickled and sent to other processes (or machines):
  both must be picklable. Use module-level functions (or functions defined in a
  notebook, which cloudpickle sends by value), not lambdas closing over open
  files, solver handles or locks.
* A task carries everything it needs, *including its own random seed*; never
  rely on global random state, on the order tasks run in, or on state left by
  an earlier task in the same worker.
* Do not send Pyomo models (they are large, slow to pickle and hold solver
  state). Send the instance *data* (a dataclass, dict or DataFrame), build and
  solve the model inside the task, and return plain data (numbers, dicts,
  DataFrames).
* A task may run more than once: when a worker process dies its tasks are
  rescheduled on another worker (up to Dask's ``allowed-failures``, 3 by
  default). So a task must not have side effects that break when repeated;
  writing a file under a name derived from the task is fine.

Failures
--------
Every task runs to completion even if some raise. If any failed,
:class:`TaskFailedError` is raised afterwards; it names each failed task (its
index and a shortened ``repr``) with the original exception, and carries
``.results`` (the successful results in place, ``None`` for the failed ones)
and ``.failures`` (index -> exception), so a caller can keep the finished
points.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from tqdm import tqdm

from evgrid.core.config import ConfigError, load_section

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = [
    "ParallelConfigError",
    "ParallelOptions",
    "TaskFailedError",
    "job_script",
    "load_parallel",
    "map_tasks",
    "open_client",
    "options_from_mapping",
    "run_on",
]

ClusterKind = Literal["local", "slurm", "pbs"]
CLUSTER_KINDS: tuple[str, ...] = get_args(ClusterKind)
SCHEDULER_PROTOCOLS = ("tcp", "tls", "ws", "wss", "ucx")

_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(B|kB|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
_WALLTIME = re.compile(r"^\d+:[0-5]\d:[0-5]\d$")


class ParallelConfigError(ConfigError):
    """Parallel options are invalid, or the cluster they name cannot be reached."""


class TaskFailedError(RuntimeError):
    """One or more tasks raised; the others ran to completion.

    ``results``: one entry per task, the result where it succeeded and ``None`` where it
    failed. ``failures``: task index -> the exception it raised.
    """

    def __init__(self, message: str, results: list[Any], failures: dict[int, BaseException]):
        super().__init__(message)
        self.results = results
        self.failures = failures


class ParallelOptions(BaseModel):
    """Where :func:`map_tasks` runs its tasks. Invalid values raise :class:`ParallelConfigError`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: int = Field(
        2,
        ge=1,
        le=1024,
        description="Local worker processes; 1 runs a plain serial loop in this process "
        "(ignored with scheduler or a batch cluster)",
    )
    scheduler: str | None = Field(
        None,
        description="Address of a running Dask scheduler, e.g. 'tcp://host:8786'; "
        "None starts a cluster for the call",
    )
    cluster: ClusterKind = Field(
        "local",
        description="Cluster to start when no scheduler is given: local processes, "
        "or batch jobs on Slurm or PBS (dask-jobqueue)",
    )
    cores: int = Field(1, ge=1, le=1024, description="Cores per batch job (slurm/pbs)")
    memory: str = Field("4GiB", description="Memory per batch job (slurm/pbs), e.g. '4GiB'")
    walltime: str = Field("01:00:00", description="Wall-clock limit per batch job, HH:MM:SS")
    queue: str | None = Field(None, description="Batch queue/partition (slurm/pbs); None: default")
    jobs: int = Field(1, ge=1, le=10_000, description="Number of batch jobs to request (slurm/pbs)")
    threads_per_worker: int = Field(
        1,
        ge=1,
        le=1024,
        description="Threads per worker process; keep 1 for solver-bound (GIL-holding) tasks",
    )
    connect_timeout_s: float = Field(
        5.0, gt=0, le=600, description="Seconds to wait for a scheduler before giving up"
    )

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise ParallelConfigError(_explain(data, err)) from None

    @field_validator("scheduler")
    @classmethod
    def _scheduler_is_an_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        protocol, sep, rest = value.partition("://")
        if not sep or protocol not in SCHEDULER_PROTOCOLS or not rest:
            raise ValueError(
                f"{value!r} is not a scheduler address; expected "
                f"'{'|'.join(SCHEDULER_PROTOCOLS)}://host:port', e.g. 'tcp://127.0.0.1:8786'"
            )
        return value

    @field_validator("memory")
    @classmethod
    def _memory_has_a_unit(cls, value: str) -> str:
        if not _MEMORY.match(value.strip()):
            raise ValueError(f"{value!r} is not a memory size; expected e.g. '4GiB', '500MB'")
        return value.strip()

    @field_validator("walltime")
    @classmethod
    def _walltime_format(cls, value: str) -> str:
        if not _WALLTIME.match(value.strip()):
            raise ValueError(f"{value!r} is not a walltime; expected HH:MM:SS, e.g. '01:30:00'")
        return value.strip()

    @model_validator(mode="after")
    def _scheduler_or_cluster(self) -> ParallelOptions:
        if self.scheduler is not None and self.cluster != "local":
            raise ValueError(
                f"give either scheduler ({self.scheduler!r}) or cluster ({self.cluster!r}), "
                "not both: a scheduler address means the cluster already runs"
            )
        return self

    @property
    def serial(self) -> bool:
        """True when :func:`map_tasks` runs a plain loop in this process."""
        return self.workers == 1 and self.scheduler is None and self.cluster == "local"


def options_from_mapping(mapping: Mapping[str, Any] | None) -> ParallelOptions:
    """Validate a mapping (e.g. a ``params.yaml`` block) into :class:`ParallelOptions`.

    Raises :class:`ParallelConfigError` naming the field, the value and the allowed range.
    """
    if mapping is None:
        return ParallelOptions()
    if isinstance(mapping, ParallelOptions):
        return mapping
    if not isinstance(mapping, Mapping):
        raise ParallelConfigError(
            f"parallel options must be a mapping of field to value, found {type(mapping).__name__}"
        )
    return ParallelOptions(**dict(mapping))


def load_parallel(params_file: str = "params.yaml") -> ParallelOptions:
    """The ``parallel`` section of ``params_file``: where every fanning-out stage runs its tasks.

    It is not a DVC parameter of any stage: the files a stage writes are the same
    whichever workers computed them, so moving to a cluster re-runs nothing.
    """
    return load_section("parallel", params_file)


def map_tasks(
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    *,
    options: ParallelOptions | Mapping[str, Any] | None = None,
    desc: str = "",
    progress: bool = True,
) -> list[Any]:
    """Return ``[fn(t) for t in tasks]``, in the order of ``tasks``, computed as ``options`` say.

    Raises :class:`TaskFailedError` (after every task has run) if any task raised, and
    :class:`ParallelConfigError` if the options are invalid or the scheduler is unreachable.
    """
    options = options_from_mapping(options)
    tasks = list(tasks)
    if not tasks:
        return []
    if options.serial:
        return _run_serial(fn, tasks, desc=desc, progress=progress)
    with open_client(options) as client:
        return run_on(client, fn, tasks, desc=desc, progress=progress)


def run_on(
    client: Client,
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    *,
    desc: str = "",
    progress: bool = True,
) -> list[Any]:
    """Like :func:`map_tasks`, on an already connected ``distributed.Client``.

    Results are fetched (and released on the cluster) as each task finishes, so a worker
    that dies later loses only the tasks it was running, which Dask reschedules.
    """
    from distributed import as_completed

    tasks = list(tasks)
    if not tasks:
        return []
    futures = client.map(fn, tasks, pure=False)
    index = {future.key: i for i, future in enumerate(futures)}
    results: list[Any] = [None] * len(tasks)
    failures: dict[int, BaseException] = {}
    with _progress_bar(len(tasks), desc, progress) as bar:
        for future, outcome in as_completed(futures, with_results=True, raise_errors=False):
            i = index[future.key]
            if future.status == "finished":
                results[i] = outcome
            elif future.status == "error":
                if isinstance(outcome, tuple):  # (type, exception, traceback)
                    outcome = outcome[1].with_traceback(outcome[2])
                failures[i] = outcome
            else:  # cancelled, e.g. the cluster went away
                failures[i] = (
                    outcome if isinstance(outcome, BaseException) else RuntimeError(future.status)
                )
            future.release()
            bar.update(1)
    _raise_failures(tasks, results, failures)
    return results


@contextlib.contextmanager
def open_client(options: ParallelOptions | Mapping[str, Any] | None = None) -> Iterator[Client]:
    """Yield a ``distributed.Client`` for ``options``; a cluster it started is closed on exit.

    ``workers=1`` still starts a one-worker cluster here (only :func:`map_tasks` runs serially).
    """
    from distributed import Client

    options = options_from_mapping(options)
    if options.scheduler is not None:
        client = _connect(options)
        with client:
            print(f"evgrid.core.parallel: connected to {options.scheduler}{_dashboard(client)}")
            yield client
        return
    with _start_cluster(options) as cluster, Client(cluster) as client:
        where = (
            "local" if options.cluster == "local" else f"{options.cluster} ({options.jobs} jobs)"
        )
        print(f"evgrid.core.parallel: started a {where} Dask cluster{_dashboard(client)}")
        yield client


def job_script(options: ParallelOptions | Mapping[str, Any]) -> str:
    """The batch script :func:`map_tasks` would submit for a slurm/pbs cluster.

    Builds the dask-jobqueue cluster object (its scheduler listens in this process for a
    moment) without requesting any job, and returns ``cluster.job_script()``.
    """
    options = options_from_mapping(options)
    if options.cluster == "local" or options.scheduler is not None:
        raise ParallelConfigError(
            f"job_script needs cluster set to one of {', '.join(map(repr, CLUSTER_KINDS[1:]))}; "
            f"got cluster={options.cluster!r}, scheduler={options.scheduler!r}"
        )
    with _jobqueue_cluster(options) as cluster:
        return cluster.job_script()


# --- internals ----------------------------------------------------------------------------


def _run_serial(fn, tasks, *, desc, progress):
    results: list[Any] = [None] * len(tasks)
    failures: dict[int, BaseException] = {}
    with _progress_bar(len(tasks), desc, progress) as bar:
        for i, task in enumerate(tasks):
            try:
                results[i] = fn(task)
            except Exception as exc:  # noqa: BLE001 - reported together below
                failures[i] = exc
            bar.update(1)
    _raise_failures(tasks, results, failures)
    return results


def _progress_bar(total: int, desc: str, progress: bool) -> tqdm:
    return tqdm(total=total, desc=desc or None, file=sys.stdout, disable=not progress)


def _raise_failures(tasks, results, failures) -> None:
    if not failures:
        return
    shown = sorted(failures)[:10]
    lines = [f"{len(failures)} of {len(tasks)} tasks failed (the other results are in .results):"]
    for i in shown:
        exc = failures[i]
        lines.append(
            f"  task {i} {_shorten(repr(tasks[i]), 80)}: "
            f"{type(exc).__name__}: {_shorten(str(exc), 300)}"
        )
    if len(failures) > len(shown):
        lines.append(f"  ... and {len(failures) - len(shown)} more (see .failures)")
    if any(type(failures[i]).__name__ == "KilledWorker" for i in failures):
        lines.append(
            "  KilledWorker: the task's worker process died repeatedly (out of memory? a crash "
            "in a solver?); try it serially with workers=1"
        )
    # Chained, so the first failure's traceback (from inside the worker) is shown too.
    raise TaskFailedError("\n".join(lines), results, failures) from failures[shown[0]]


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _connect(options: ParallelOptions) -> Client:
    from distributed import Client

    try:
        return Client(options.scheduler, timeout=options.connect_timeout_s)
    except (OSError, TimeoutError) as err:
        raise ParallelConfigError(
            f"cannot reach the Dask scheduler at {options.scheduler} within "
            f"{options.connect_timeout_s:g} s ({type(err).__name__}: {err}). Is `dask scheduler` "
            "running there and reachable from this machine? Leave scheduler unset "
            "(None) to start a local cluster instead."
        ) from None


@contextlib.contextmanager
def _start_cluster(options: ParallelOptions):
    if options.cluster == "local":
        from distributed import LocalCluster

        with LocalCluster(
            n_workers=options.workers,
            threads_per_worker=options.threads_per_worker,
            processes=True,  # a killed worker process is restarted by its nanny
            # The scheduler always serves HTTP (health, metrics; the dashboard with bokeh):
            # a free port on loopback, so concurrent runs never collide.
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
            preload=[__name__],  # runs dask_setup below in each worker process
        ) as cluster:
            yield cluster
        return
    with _jobqueue_cluster(options) as cluster:
        cluster.scale(jobs=options.jobs)
        yield cluster


def _jobqueue_cluster(options: ParallelOptions):
    import dask_jobqueue

    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}[options.cluster]
    processes = max(1, options.cores // options.threads_per_worker)
    return cls(
        cores=options.cores,
        processes=processes,
        memory=options.memory,
        walltime=options.walltime,
        queue=options.queue,
        scheduler_options={"dashboard_address": ":0"},
        silence_logs=logging.ERROR,
    )


class _DropComputeFailed(logging.Filter):
    """Drop the worker's "Compute Failed" log: TaskFailedError reports the same failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Compute Failed")


def dask_setup(worker: Any) -> None:
    """Worker preload hook (``preload=["evgrid.core.parallel"]``) for the clusters started here.

    A task that raises is reported once, by :class:`TaskFailedError` in the caller, rather
    than also as an ERROR log on stderr from the worker.
    """
    logger = logging.getLogger("distributed.worker")
    if not any(isinstance(f, _DropComputeFailed) for f in logger.filters):
        logger.addFilter(_DropComputeFailed())


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def _dashboard(client: Client) -> str:
    if not _has_bokeh():  # the HTTP server runs, but serves no dashboard
        return ""
    try:
        link = client.dashboard_link
    except Exception:  # noqa: BLE001 - no dashboard (bokeh not installed)
        return ""
    return f"; dashboard {link}" if link else ""


def _explain(data: Mapping[str, Any], err: ValidationError) -> str:
    fields = ParallelOptions.model_fields
    lines = ["parallel options are invalid:"]
    for e in err.errors():
        loc = [p for p in e["loc"] if isinstance(p, str)]
        name = loc[0] if loc else None
        if name in fields:
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(
                f"  field '{name}' = {data.get(name, '<missing>')!r}: {msg} "
                f"(allowed: {_allowed(name)}; {fields[name].description})"
            )
        elif name:
            lines.append(f"  field '{name}' is not a known field: known {', '.join(fields)}")
        else:
            lines.append(f"  {e['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def _allowed(name: str) -> str:
    field = ParallelOptions.model_fields[name]
    choices = get_args(field.annotation)
    if choices and all(isinstance(c, str) for c in choices):
        return "one of " + ", ".join(repr(c) for c in choices)
    lower = upper = ""
    for meta in field.metadata:
        for attr, text in (("ge", "{} <= "), ("gt", "{} < ")):
            if getattr(meta, attr, None) is not None:
                lower = text.format(getattr(meta, attr))
        for attr, text in (("le", " <= {}"), ("lt", " < {}")):
            if getattr(meta, attr, None) is not None:
                upper = text.format(getattr(meta, attr))
    if lower or upper:
        return f"{lower}x{upper}"
    return {
        "scheduler": "None or 'tcp://host:port'",
        "memory": "a size such as '4GiB'",
        "walltime": "HH:MM:SS",
        "queue": "None or a queue name",
    }.get(name, str(field.annotation))
