"""pytest setup shared by ``pytest tests`` and ``pytest --nbval notebooks``.

Under nbval every notebook is re-executed; its outputs (result tables,
``metrics.json``, figures) must not overwrite the committed ones that the
pipeline wrote and that other notebooks read. So, when nbval is active, point
``EVGRID_OUTPUT_ROOT`` at a fresh temporary folder before any kernel starts
(kernels inherit this process's environment); inputs are still read from the
repository.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from evgrid.core.paths import OUTPUT_ROOT_ENV


def pytest_configure(config):
    nbval = getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False)
    if nbval and not os.environ.get(OUTPUT_ROOT_ENV):
        folder = tempfile.mkdtemp(prefix="evgrid-nbval-")
        os.environ[OUTPUT_ROOT_ENV] = folder
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
