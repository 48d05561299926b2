"""Each notebook's parameters cell equals its params.yaml section, and DVC runs it."""

import ast
import re

import nbformat
import pytest
import yaml

from evgrid.core.paths import repo_path

NOTEBOOKS = sorted(repo_path("notebooks").glob("*.ipynb"))
STAGES = yaml.safe_load(repo_path("dvc.yaml").read_text())["stages"]


def _stage_for(notebook):
    for name, stage in STAGES.items():
        cmd = stage["cmd"] if "cmd" in stage else stage["do"]["cmd"]  # foreach stages
        match = re.search(rf"notebooks/{re.escape(notebook.name)} --section (\S+)", cmd)
        if match:
            return name, match.group(1)
    raise AssertionError(f"no dvc.yaml stage runs {notebook.name}")


def _parameters(notebook):
    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{notebook.name}: expected one cell tagged 'parameters'"
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code is cells[0], f"{notebook.name}: the parameters cell must be the first code cell"
    values = {}
    for node in ast.parse(cells[0].source).body:
        assert isinstance(node, ast.Assign), f"{notebook.name}: parameters cell holds assignments only"
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def test_there_are_notebooks():
    assert any(n.name.startswith("00_") for n in NOTEBOOKS)
    assert any(n.name.startswith("99_") for n in NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_equals_params_yaml_section(notebook):
    _, section = _stage_for(notebook)
    params = yaml.safe_load(repo_path("params.yaml").read_text())
    assert _parameters(notebook) == params[section]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_executed_without_errors(notebook):
    nb = nbformat.read(notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{notebook.name} is not fully executed"
    for cell in code:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{notebook.name}: a cell raised"
            assert output.get("name") != "stderr", f"{notebook.name}: stderr output {output.text!r}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_figures_are_embedded_in_the_committed_notebook(notebook):
    # A non-interactive MPLBACKEND in the runner's environment once made every
    # figure vanish from the committed notebooks; a reader must see them.
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "savefig(" in cell.source:
            images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
            assert images, f"{notebook.name}: a cell saves a figure but shows none"


NBVAL_MARKERS = {"# NBVAL_IGNORE_OUTPUT", "# NBVAL_CHECK_OUTPUT", "# NBVAL_SKIP", "# NBVAL_RAISES_EXCEPTION"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_nbval_markers_are_exact_lines(notebook):
    # nbval recognises a marker only as a comment line that is exactly the marker;
    # "# NBVAL_IGNORE_OUTPUT  (a progress bar)" was silently compared.
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            if "NBVAL" in line:
                assert line.strip() in NBVAL_MARKERS, f"{notebook.name}: {line!r} is not an nbval marker"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_take_the_whole_section_and_write_only_under_the_output_root(notebook):
    nb = nbformat.read(notebook, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    _, section = _stage_for(notebook)
    assert f'notebook_params("{section}", globals())' in source, (
        f"{notebook.name}: validate the injected section with notebook_params, not a hand-kept list")
    assert "validate_section(" not in source
    for writer in (".to_csv(", ".write_text(", ".savefig(", "json.dump("):
        assert writer not in source, (
            f"{notebook.name}: write results with evgrid.core.outputs (atomic, rounded), not {writer}")
    assert "repo_path(params.results_dir)" not in source and "repo_path(params.figures_dir)" not in source
