"""nbval is a real check: a wrong stored output fails, and sanitizing only hides timings."""

import subprocess
import sys

import nbformat
import pytest

from evgrid.core.paths import repo_path


def _notebook(path, source, stored):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source, execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _nbval(path):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", str(path), "-p", "no:cacheprovider",
         "--nbval-sanitize-with", str(repo_path("tests/nbval_sanitize.cfg")),
         "--rootdir", str(path.parent), "-q"],
        capture_output=True, text=True, cwd=path.parent, timeout=120,
    )


@pytest.mark.parametrize(
    ("source", "stored", "passes"),
    [
        ("print(round(2 / 3, 4))", "0.6667\n", True),
        ("print(round(2 / 3, 4))", "0.6668\n", False),  # a deliberately wrong stored output
        ("print('solved in 1.234 s')", "solved in 9.87 s\n", True),  # timings are sanitized
        ("print('objective 1.234')", "objective 9.87\n", False),  # ...other numbers are not
    ],
)
def test_nbval_compares_stored_outputs(tmp_path, source, stored, passes):
    result = _nbval(_notebook(tmp_path / "check.ipynb", source, stored))
    assert (result.returncode == 0) is passes, result.stdout[-2000:]
