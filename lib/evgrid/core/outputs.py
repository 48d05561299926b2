"""Write result files so that a re-run is byte-identical and a crash loses nothing.

The rule, once for the whole compendium: **every float written to a tracked
result file keeps 6 significant digits.** Solver feasibility and optimality
tolerances are 1e-6 to 1e-7 relative (HiGHS' defaults), so digits past the
sixth carry noise, not information; at full precision two runs of the same
deterministic stage differed in the 15th digit. Wall-clock times are never
written to a tracked file.

The writers return None, so that a notebook cell ending in one shows nothing
(a path would differ between the pipeline's and nbval's output folders).
Every writer writes to a temporary file beside the target and moves it into
place (``os.replace``, atomic on one file system): a stage killed midway
leaves the previous file, never half of a new one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Significant digits kept in written result files.
SIGNIFICANT_DIGITS = 6
_FLOAT_FORMAT = f"%.{SIGNIFICANT_DIGITS}g"


def round_significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (0, inf and NaN unchanged)."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    return float(f"{value:.{digits}g}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` if the block succeeds.

    The parent folder is created. On an exception the temporary file is removed
    and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_csv(table: pd.DataFrame, path: str | Path, *, index: bool = False) -> None:
    """Write ``table`` to ``path`` atomically, floats at :data:`SIGNIFICANT_DIGITS` digits."""
    table = table.copy()
    for column in table.select_dtypes(include="object").columns:
        # a column mixing text and numbers (e.g. "HiGHS" beside 0.2): to_csv's
        # float_format skips it, so format its floats here
        table[column] = table[column].map(
            lambda v: _FLOAT_FORMAT % v if isinstance(v, float | np.floating) and math.isfinite(v) else v
        )
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=index, float_format=_FLOAT_FORMAT, lineterminator="\n")


def _plain(obj: Any) -> Any:
    """``obj`` with numpy scalars made Python and floats rounded; NaN and inf rejected."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        if not math.isfinite(obj):
            raise ValueError(f"refusing to write a non-finite number ({obj}) to a result file")
        return round_significant(float(obj))
    return obj


def write_json(data: Any, path: str | Path) -> None:
    """Write ``data`` as indented JSON atomically; floats rounded, NaN/inf raise ``ValueError``."""
    text = json.dumps(_plain(data), indent=2, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_figure(fig, path: str | Path, **kwargs: Any) -> None:
    """``fig.savefig(path, **kwargs)`` atomically; the format comes from ``path``'s suffix."""
    path = Path(path)
    kwargs.setdefault("format", path.suffix.lstrip("."))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)
