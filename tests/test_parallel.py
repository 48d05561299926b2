"""evgrid.core.parallel: serial and Dask runs agree, failures are reported, bad options rejected.

Each Dask test starts (and closes) a LocalCluster of two worker processes, so this file
takes some seconds; it keeps to small, sleep-bound tasks to stay light on CPU.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evgrid.core.parallel import (
    ParallelConfigError,
    ParallelOptions,
    TaskFailedError,
    job_script,
    map_tasks,
    open_client,
    options_from_mapping,
    run_on,
)

pytest.importorskip("distributed")
pytest.importorskip("dask_jobqueue")

TWO_WORKERS = ParallelOptions(workers=2)


# Task functions live at module level: workers import them by name (they must be picklable).


def seeded_frame(task: dict) -> pd.DataFrame:
    """A small pure computation: the task carries its own seed."""
    time.sleep(0.05 * (task["i"] % 3))  # so workers finish out of submission order
    rng = np.random.default_rng(task["seed"])
    x = rng.normal(size=task["n"])
    return pd.DataFrame({"i": task["i"], "k": np.arange(task["n"]), "x": x, "cum": np.cumsum(x)})


def slow_square(task: tuple[int, str, float]) -> int:
    """Leave a marker naming the task and the worker process, then take a while."""
    i, folder, seconds = task
    Path(folder, f"started-{i}-{os.getpid()}").touch()
    time.sleep(seconds)
    return i * i


def fails_on_three(i: int) -> int:
    if i == 3:
        raise ValueError(f"point {i} is infeasible")
    return i * 10


def _frame_tasks():
    return [{"i": i, "seed": 1000 + i, "n": 5} for i in range(6)]


def _assert_frames_equal(left, right):
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_serial_local_cluster_and_reversed_submission_agree(capsys):
    tasks = _frame_tasks()
    serial = map_tasks(seeded_frame, tasks, options=ParallelOptions(workers=1), desc="serial")
    assert "serial" in capsys.readouterr().out  # the tqdm bar goes to stdout

    parallel = map_tasks(seeded_frame, tasks, options=TWO_WORKERS, progress=False)
    reversed_back = map_tasks(seeded_frame, tasks[::-1], options=TWO_WORKERS, progress=False)[::-1]

    assert [int(df["i"].iloc[0]) for df in parallel] == list(range(6))  # in task order
    _assert_frames_equal(serial, parallel)
    _assert_frames_equal(serial, reversed_back)
    # Byte-identical when written out, as the pipeline's CSV outputs would be.
    as_csv = [pd.concat(r).to_csv(index=False).encode() for r in (serial, parallel, reversed_back)]
    assert as_csv[0] == as_csv[1] == as_csv[2]
    assert "started a local Dask cluster" in capsys.readouterr().out


def test_empty_task_list_starts_nothing():
    assert map_tasks(seeded_frame, [], options=TWO_WORKERS) == []


def test_a_killed_worker_process_is_survived(tmp_path):
    tasks = [(i, str(tmp_path), 1.2) for i in range(6)]
    serial_dir = tmp_path / "serial"
    serial_dir.mkdir()
    serial = map_tasks(
        slow_square, [(i, str(serial_dir), 0.0) for i in range(6)], options={"workers": 1}
    )
    killed: list[tuple[int, int]] = []

    def kill_first_busy_worker(worker_pids: set[int]):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for marker in tmp_path.glob("started-*"):
                _, i, pid = marker.name.split("-")
                if int(pid) in worker_pids:  # a worker process in the middle of task i
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append((int(i), int(pid)))
                    return
            time.sleep(0.02)

    with open_client(TWO_WORKERS) as client:
        pids = set(client.run(os.getpid).values())
        assert len(pids) == 2
        killer = threading.Thread(target=kill_first_busy_worker, args=(pids,), daemon=True)
        killer.start()
        results = run_on(client, slow_square, tasks, progress=False)
        killer.join(timeout=5)
        client.wait_for_workers(2, timeout=30)  # the nanny restarted the killed process
        assert len(set(client.run(os.getpid).values()) - pids) == 1

    assert killed, "no worker was killed"
    assert results == serial == [i * i for i in range(6)]
    # The killed task started on the dead process and ran again on another one.
    i, pid = killed[0]
    runs = {m.name.split("-")[2] for m in tmp_path.glob(f"started-{i}-*")}
    assert str(pid) in runs and len(runs) == 2


@pytest.mark.parametrize("workers", [1, 2], ids=["serial", "dask"])
def test_a_failing_task_is_named_and_the_others_kept(workers):
    with pytest.raises(TaskFailedError) as err:
        map_tasks(
            fails_on_three, range(6), options=ParallelOptions(workers=workers), progress=False
        )
    message = str(err.value)
    assert "1 of 6 tasks failed" in message
    assert "task 3 3: ValueError: point 3 is infeasible" in message
    assert err.value.results == [0, 10, 20, None, 40, 50]
    assert list(err.value.failures) == [3]
    assert isinstance(err.value.failures[3], ValueError)
    assert isinstance(err.value.__cause__, ValueError)  # its traceback is shown too


def test_long_task_reprs_are_shortened():
    with pytest.raises(TaskFailedError, match=r"task 0 'x{76}\.\.\.: ") as err:
        map_tasks(int, ["x" * 500], options=ParallelOptions(workers=1), progress=False)
    assert len(str(err.value)) < 500  # the exception's message is shortened too


def test_unreachable_scheduler_fails_fast_before_any_task(tmp_path):
    address = "tcp://127.0.0.1:1"
    start = time.monotonic()
    with pytest.raises(ParallelConfigError) as err:
        map_tasks(slow_square, [(0, str(tmp_path), 0.0)], options={"scheduler": address})
    assert time.monotonic() - start < 15
    assert address in str(err.value)
    assert "dask scheduler" in str(err.value) and "unset" in str(err.value)
    assert not list(tmp_path.iterdir())  # no task ran


@pytest.fixture
def no_job_submission(monkeypatch):
    """Record (and refuse) any attempt to submit a batch job."""
    from dask_jobqueue.core import Job

    submitted = []

    async def refuse(self, script_filename):
        submitted.append(script_filename)
        raise AssertionError("job_script must not submit a job")

    monkeypatch.setattr(Job, "_submit_job", refuse)
    return submitted


def test_slurm_job_script(no_job_submission):
    options = ParallelOptions(
        cluster="slurm", cores=4, memory="6GiB", walltime="02:30:00", queue="short"
    )
    script = job_script(options)
    assert "#SBATCH -t 02:30:00" in script
    assert "#SBATCH --mem=6G" in script
    assert "#SBATCH -p short" in script
    assert "#SBATCH --cpus-per-task=4" in script
    assert "--nworkers 4 " in script and "--nthreads 1 " in script  # 4 one-thread processes
    assert no_job_submission == []


def test_pbs_job_script(no_job_submission):
    options = {
        "cluster": "pbs",
        "cores": 2,
        "memory": "6GiB",
        "walltime": "12:00:00",
        "queue": "q1",
    }
    script = job_script(options)
    assert "#PBS -l walltime=12:00:00" in script
    assert "#PBS -l select=1:ncpus=2:mem=6144MB" in script
    assert "#PBS -q q1" in script
    assert no_job_submission == []


def test_job_script_needs_a_batch_cluster():
    with pytest.raises(ParallelConfigError, match="'slurm', 'pbs'"):
        job_script(ParallelOptions())


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"workers": 0}, ["field 'workers' = 0", "1 <= x <= 1024"]),
        ({"cluster": "condor"}, ["field 'cluster' = 'condor'", "'local', 'slurm', 'pbs'"]),
        ({"scheduler": "localhost:8786"}, ["field 'scheduler'", "tcp://"]),
        ({"memory": "lots"}, ["field 'memory' = 'lots'", "4GiB"]),
        ({"walltime": "1h"}, ["field 'walltime' = '1h'", "HH:MM:SS"]),
        ({"wrkers": 2}, ["field 'wrkers' is not a known field", "workers"]),
        ({"scheduler": "tcp://h:8786", "cluster": "slurm"}, ["either scheduler", "or cluster"]),
    ],
)
def test_bad_options_are_rejected_with_field_and_allowed_values(values, expected):
    for build in (options_from_mapping, lambda v: ParallelOptions(**v)):
        with pytest.raises(ParallelConfigError) as err:
            build(values)
        for text in expected:
            assert text in str(err.value)


def test_options_from_mapping():
    assert options_from_mapping(None) == ParallelOptions()
    assert options_from_mapping({"workers": 1}).serial
    assert not options_from_mapping({"workers": 1, "cluster": "slurm"}).serial
    with pytest.raises(ParallelConfigError, match="mapping"):
        options_from_mapping([("workers", 2)])
    assert isinstance(ParallelConfigError("x"), ValueError)
    for name, field in ParallelOptions.model_fields.items():
        assert field.description, name


def test_a_started_cluster_prints_its_dashboard_address(capsys):
    with open_client({"workers": 1}) as client:
        assert len(client.scheduler_info()["workers"]) == 1
    out = capsys.readouterr().out
    assert "evgrid.core.parallel: started a local Dask cluster; dashboard http://127.0.0.1:" in out
