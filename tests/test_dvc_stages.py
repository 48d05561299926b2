"""dvc.yaml knows what each stage runs, and never deletes committed outputs."""

import json
import math

import pytest
import yaml

from evgrid.core.paths import repo_path
from stage_imports import closure, stage_entry_modules

STAGES = yaml.safe_load(repo_path("dvc.yaml").read_text())["stages"]


def _cmd(stage):
    return stage["cmd"] if "cmd" in stage else stage["do"]["cmd"]


def _deps(stage):
    return stage["deps"] if "deps" in stage else stage["do"]["deps"]


def _outs(stage):
    body = stage if "cmd" in stage else stage["do"]
    for kind in ("outs", "metrics", "plots"):
        for entry in body.get(kind, []):
            yield (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))


@pytest.mark.parametrize("name", STAGES)
def test_stage_deps_cover_every_library_file_it_imports(name):
    files = closure(stage_entry_modules(_cmd(STAGES[name])))
    assert files, f"stage {name}: found no evgrid module to check"
    deps = [repo_path(d) for d in _deps(STAGES[name])]
    missing = [
        str(f.relative_to(repo_path()))
        for f in sorted(files)
        if not any(f == d or d in f.parents for d in deps)
    ]
    assert not missing, f"stage {name} runs these files but does not list them in deps: {missing}"


def test_a_package_run_with_dash_m_includes_its_main_and_the_section_model():
    modules = stage_entry_modules("python -m evgrid.papers.eva2025 month 2024-05")
    assert {"evgrid.papers.eva2025", "evgrid.papers.eva2025.__main__"} <= modules
    runner = stage_entry_modules("python -m evgrid.core.run notebooks/99_reproduction_report.ipynb "
                                 "--section kerama2025")
    assert "evgrid.papers.kerama2025.params" in runner


def test_the_import_closure_follows_imports_inside_functions():
    # The sweep imports the models only inside run_point; the closure must still see them.
    files = {f.name for f in closure({"evgrid.papers.kerama2025.sweep"})}
    assert {"decomposition.py", "evaluate.py", "acverify.py", "paths.py", "__init__.py"} <= files


@pytest.mark.parametrize("name", STAGES)
def test_outputs_persist_so_dvc_never_deletes_the_committed_ones(name):
    for path, options in _outs(STAGES[name]):
        assert options.get("persist") is True, f"stage {name}: output {path} lacks persist: true"
        assert options.get("cache") is False, f"stage {name}: output {path} must stay in git (cache: false)"


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, float):
        yield obj


@pytest.mark.parametrize("path", sorted(repo_path("results").glob("*/metrics.json")),
                         ids=lambda p: p.parent.name)
def test_committed_metrics_hold_no_nan(path):
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text, f"{path} holds NaN or inf"
    assert all(math.isfinite(x) for x in _numbers(json.loads(text)))


def test_tracked_result_files_hold_no_timings():
    timing_names = {"seconds", "solve_s", "wall_s", "time_s", "build_s", "runtime_s"}
    for path in repo_path("results").rglob("*.csv"):
        header = path.read_text().split("\n", 1)[0].split(",")
        assert not timing_names & set(header), f"{path} holds a wall-clock column"
