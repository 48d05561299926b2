"""Kerama (2025) sweeps: the points through evgrid.core.parallel, serially or on Dask workers."""

import warnings

import pytest
import yaml

from conftest import make_small_kerama
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
            "workers": workers,
            "results_dir": "results/sweeps",
        },
    }
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def test_the_sweep_workers_are_processes_in_all():
    options, inner = sweep_options(1, 4)
    assert options.serial and inner == 1
    options, inner = sweep_options(2, 4)
    assert options.workers == 2 and inner == 1  # no process pool inside a Dask worker
    options, inner = sweep_options(4, 2)
    assert options.workers == 2 and inner == 1
    options, inner = sweep_options(3, 1)  # one point: Benders' scenario LPs get the processes
    assert options.serial and inner == 3


def test_a_sweep_on_two_workers_writes_the_same_bytes_as_a_serial_one(tmp_path, monkeypatch):
    files = {}
    for workers in (1, 2):
        root = tmp_path / f"w{workers}"
        monkeypatch.setenv("EVGRID_OUTPUT_ROOT", str(root))
        params = write_params(tmp_path / f"params{workers}.yaml", workers=workers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = run_sweep("budget", str(params), progress=False)
        assert list(table["label"]) == ["gamma 0.10", "load 0.30"]
        assert list(table["status"]) == ["solved", "infeasible"]
        files[workers] = (root / "results" / "sweeps" / "budget.csv").read_bytes()
        assert not (root / "results" / "sweeps" / "budget.partial.csv").exists()
    assert files[1] == files[2]
    header = files[1].decode().splitlines()[0].split(",")
    assert header[:5] == ["sweep", "label", "overrides", "status", "message"]
    assert "seconds" not in header


def test_a_failed_point_fails_the_sweep_naming_it_and_writes_no_stage_output(tmp_path, monkeypatch):
    # workers=1: the monkeypatched run_point is visible (a Dask worker would not see it)
    monkeypatch.setenv("EVGRID_OUTPUT_ROOT", str(tmp_path))

    def fake_run_point(params, *, workers):
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
