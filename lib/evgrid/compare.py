"""Join computed results with a paper's published values and measure the difference.

A paper's published numbers live only in ``data/paper_values/<paper>.yaml``;
they are the reference a result is compared against and never feed a
computation. Each value is keyed by ``(table, row, column)``::

    paper: kerama2025
    citation: "..."
    values:
      - {table: "Table 2", row: "Peak feeder load", column: "Proposed", value: 3120, unit: kW}

A results table carries the same three keys and a ``computed`` column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from evgrid.paths import repo_path

KEYS = ["table", "row", "column"]
STATUSES = ("match", "differs", "not computed", "no paper value")


def load_paper_values(paper: str, folder: str | Path = "data/paper_values") -> pd.DataFrame:
    """Read ``<folder>/<paper>.yaml``: ``table,row,column,value,unit,note,paper_id``.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ValueError
        If a value lacks a key or two values share the same key.
    """
    path = Path(folder)
    path = (path if path.is_absolute() else repo_path(path)) / f"{paper}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no paper values for {paper!r}: {path} does not exist")
    doc = yaml.safe_load(path.read_text()) or {}
    rows = doc.get("values") or []
    for i, row in enumerate(rows):
        missing = [k for k in [*KEYS, "value"] if k not in row]
        if missing:
            raise ValueError(f"{path.name}: value #{i} lacks {', '.join(missing)}")
    table = pd.DataFrame(rows, columns=[*KEYS, "value", "unit", "note"])
    duplicated = table.duplicated(KEYS, keep=False)
    if duplicated.any():
        keys = table.loc[duplicated, KEYS].drop_duplicates().to_records(index=False).tolist()
        raise ValueError(f"{path.name}: duplicate keys {keys}")
    return table.assign(paper_id=doc.get("paper", paper))


def compare_with_paper(
    computed: pd.DataFrame,
    paper_values: pd.DataFrame,
    *,
    rel_tol: float = 0.05,
    abs_tol: float = 0.0,
) -> pd.DataFrame:
    """Join ``computed`` (``table,row,column,computed``) with the paper's values.

    Adds ``abs_diff = computed - paper``, ``rel_diff = abs_diff / |paper|`` and
    a ``status``: ``match`` when ``|abs_diff| <= abs_tol`` or
    ``|rel_diff| <= rel_tol``, ``differs`` otherwise, ``not computed`` for a
    paper value with no computed counterpart and ``no paper value`` for a
    computed value the paper does not report. A per-value ``abs_tol`` or
    ``rel_tol`` column in ``computed`` overrides the defaults.
    """
    missing = [k for k in [*KEYS, "computed"] if k not in computed.columns]
    if missing:
        raise ValueError(f"computed table lacks columns {missing}")
    paper = paper_values.rename(columns={"value": "paper"})
    if "paper_id" in computed.columns:
        paper = paper.drop(columns="paper_id", errors="ignore")
    out = computed.merge(paper, on=KEYS, how="outer", suffixes=("", "_paper"))
    computed_v = pd.to_numeric(out["computed"], errors="coerce")
    paper_v = pd.to_numeric(out["paper"], errors="coerce")
    out["abs_diff"] = computed_v - paper_v
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rel_diff"] = np.where(paper_v != 0, out["abs_diff"] / paper_v.abs(), np.nan)
    a_tol = out["abs_tol"].fillna(abs_tol) if "abs_tol" in out else abs_tol
    r_tol = out["rel_tol"].fillna(rel_tol) if "rel_tol" in out else rel_tol
    close = (out["abs_diff"].abs() <= a_tol) | (out["rel_diff"].abs() <= r_tol)
    out["status"] = np.select(
        [paper_v.isna(), computed_v.isna(), close],
        ["no paper value", "not computed", "match"],
        default="differs",
    )
    front = [*KEYS, "computed", "paper", "abs_diff", "rel_diff", "status"]
    return out[front + [c for c in out.columns if c not in front]]


def rounded(table: pd.DataFrame, decimals: int = 4) -> pd.DataFrame:
    """Round numeric columns for display and turn ``-0.0`` into ``0.0``.

    nbval compares printed outputs exactly; a difference of ``-1e-9`` would
    print as ``-0.0000`` on one machine and ``0.0000`` on another.
    """
    out = table.copy()
    numeric = out.select_dtypes("number").columns
    out[numeric] = out[numeric].round(decimals) + 0.0
    return out
