"""Kerama (2025) sweeps: the points through evgrid.core.parallel, serially or on Dask workers."""

import warnings

import pytest
import yaml

from conftest import make_small_kerama
from evgrid.core.parallel import ParallelOptions
from evgrid.papers.kerama2025 import sweep
from evgrid.papers.kerama2025.sweep import SweepFailedError, run_sweep, sweep_options

# one point Benders solves, one it finds infeasible fast (a NaN row with a message)
BUDGET = [{"label": "gamma 0.10", "gamma_pv": 0.1}, {"label": "load 0.30", "gamma_load": 0.3}]


def write_params(path, *, workers, budget=BUDGET):
    """A params file: the small Kerama case and a two-point budget sweep."""
    base = make_small_kerama().params.model_dump(mode="json")
    one = [{"label": "base"}]
    sections = {
        "kerama2025": base,
        "kerama2025_sweeps": {
            "budget": budget,
            "degradation": one,
            "price": one,
            "fleet": one,
            "results_dir": "results/sweeps",
        },
        "parallel": {**ParallelOptions(workers=workers).model_dump()},
    }
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def test_the_sweep_workers_are_processes_in_all():
    serial = ParallelOptions(workers=1)
    points, inner = sweep_options(serial, 4)
    assert points.serial and inner.serial
    points, inner = sweep_options({"workers": 2}, 4)
    assert points.workers == 2 and inner.serial  # no cluster nested in a Dask worker
    points, inner = sweep_options({"workers": 4}, 2)
    assert points.workers == 2 and inner.serial
    points, inner = sweep_options({"workers": 3}, 1)  # one point: Benders' scenario LPs get them
    assert points.serial and inner.workers == 3
    remote = {"workers": 1, "scheduler": "tcp://127.0.0.1:8786"}
    points, inner = sweep_options(remote, 4)  # a running cluster takes the points
    assert points.scheduler == "tcp://127.0.0.1:8786" and inner.serial


def test_a_sweep_on_two_workers_writes_the_same_bytes_as_a_serial_one(tmp_path, monkeypatch):
    """Serially, on a 2-worker LocalCluster, and with the points in reverse order."""
    files = {}
    for run, workers, budget in (("serial", 1, BUDGET), ("dask", 2, BUDGET),
                                 ("reversed", 2, BUDGET[::-1])):
        root = tmp_path / run
        monkeypatch.setenv("EVGRID_OUTPUT_ROOT", str(root))
        params = write_params(tmp_path / f"params_{run}.yaml", workers=workers, budget=budget)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = run_sweep("budget", str(params), progress=False)
        assert list(table["label"]) == [p["label"] for p in budget]
        files[run] = (root / "results" / "sweeps" / "budget.csv").read_bytes()
        assert not (root / "results" / "sweeps" / "budget.partial.csv").exists()
    assert files["serial"] == files["dask"]
    serial_lines = files["serial"].decode().splitlines(keepends=True)
    reversed_lines = files["reversed"].decode().splitlines(keepends=True)
    assert reversed_lines[0] == serial_lines[0] and reversed_lines[1:] == serial_lines[:0:-1]
    assert "infeasible" in serial_lines[2] and "solved" in serial_lines[1]
    header = files["serial"].decode().splitlines()[0].split(",")
    assert header[:5] == ["sweep", "label", "overrides", "status", "message"]
    assert "seconds" not in header


def test_a_failed_point_fails_the_sweep_naming_it_and_writes_no_stage_output(tmp_path, monkeypatch):
    # workers=1: the monkeypatched run_point is visible (a Dask worker would not see it)
    monkeypatch.setenv("EVGRID_OUTPUT_ROOT", str(tmp_path))

    def fake_run_point(params, *, parallel):
        if params.gamma_load == 0.3:
            raise RuntimeError("the solver crashed")
        return {"status": "solved", "message": "", "peak_kw_proposed": 1.0, "seconds": 0.5}

    monkeypatch.setattr(sweep, "run_point", fake_run_point)
    params = write_params(tmp_path / "params.yaml", workers=1)
    with pytest.raises(SweepFailedError, match=r"(?s)1 of 2 points failed.*'load 0\.30'.*solver crashed"):
        run_sweep("budget", str(params), progress=False)
    out = tmp_path / "results" / "sweeps"
    assert not (out / "budget.csv").exists()
    partial = (out / "budget.partial.csv").read_text().splitlines()
    assert len(partial) == 2 and "gamma 0.10" in partial[1] and "seconds" not in partial[0]
    assert sweep.main(["budget", "--params", str(params)]) == 1
    assert not (out / "budget.csv").exists()


def test_a_bad_parallel_section_stops_the_sweep_before_any_solve(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVGRID_OUTPUT_ROOT", str(tmp_path))
    params = write_params(tmp_path / "params.yaml", workers=2)
    values = yaml.safe_load(params.read_text())
    values["parallel"]["cluster"] = "kubernetes"
    params.write_text(yaml.safe_dump(values, sort_keys=False))

    def must_not_run(*_args, **_kwargs):
        raise AssertionError("a point was solved")

    monkeypatch.setattr(sweep, "run_point", must_not_run)
    assert sweep.main(["budget", "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert "field 'cluster' = 'kubernetes'" in err and "'local', 'slurm', 'pbs'" in err
    assert not (tmp_path / "results").exists()
