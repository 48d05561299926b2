"""Join computed results with a paper's published values and measure the difference.

A paper's published numbers live only in ``data/paper_values/<paper>.yaml``;
they are the reference a result is compared against and never feed a
computation. Each value is keyed by ``(table, row, column)``::

    paper: kerama2025
    citation: "..."
    values:
      - {table: "Table 2", row: "Peak feeder load", column: "Proposed", value: 3120, unit: kW}

A results table carries the same three keys and a ``computed`` column. A value
is a number or, for a setting such as a solver's name, a string.

Why a computed value differs from the paper's, or is not computed, is recorded
beside the values, in ``data/paper_values/<paper>_deviations.yaml``: one
category (:data:`CATEGORIES`) and one line per value, keyed like the values,
where an entry may cover a whole row, column or table::

    paper: kerama2025
    deviations:
      - {table: "Table 1", row: Network, column: "nominal voltage (kV)",
         category: paper error, reason: "the 33-bus feeder is 12.66 kV, not 4.16 kV"}
      - {table: "Table 2", row: "Aggregator profit", category: definition, reason: "..."}

:func:`attach_reasons` joins them onto the comparison rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from evgrid.core.paths import repo_path

KEYS = ["table", "row", "column"]
STATUSES = ("match", "differs", "not computed", "no paper value")
#: Why a value differs from the paper (or is not computed): the category of its reason.
CATEGORIES = ("paper error", "missing data", "definition", "model choice", "solver", "not reproducible")
#: A paper's deviations file is ``<paper><DEVIATIONS_SUFFIX>.yaml``, beside ``<paper>.yaml``.
DEVIATIONS_SUFFIX = "_deviations"
#: What an entry of a deviations file covers, most specific first: the one that decides a value.
LEVELS = ("cell", "row", "column", "table")
#: The statuses a reason explains: the first two must have one, a value that matches needs none.
EXPLAINED = ("differs", "not computed", "no paper value")


def _folder(folder: str | Path) -> Path:
    path = Path(folder)
    return path if path.is_absolute() else repo_path(path)


def paper_ids(folder: str | Path = "data/paper_values") -> list[str]:
    """The papers with published values in ``folder``: every ``<paper>.yaml`` but deviations files."""
    return sorted(p.stem for p in _folder(folder).glob("*.yaml")
                  if not p.stem.endswith(DEVIATIONS_SUFFIX))


def load_paper_values(paper: str, folder: str | Path = "data/paper_values") -> pd.DataFrame:
    """Read ``<folder>/<paper>.yaml``: ``table,row,column,value,unit,note,paper_id``.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ValueError
        If ``paper`` names a deviations file, the file has no ``values`` list, a
        value lacks a key or two values share the same key.
    """
    if paper.endswith(DEVIATIONS_SUFFIX):
        raise ValueError(f"{paper!r} is a deviations file, not a paper (see load_deviations)")
    path = _folder(folder) / f"{paper}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no paper values for {paper!r}: {path} does not exist")
    doc = yaml.safe_load(path.read_text()) or {}
    rows = doc.get("values")
    if not isinstance(rows, list):
        raise ValueError(f"{path.name}: no 'values' list: not a paper-values file")
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


def _values(column: pd.Series) -> pd.Series:
    """Numbers as floats and text as ``str``; an all-number column stays a float column.

    In a column that mixes numbers and text (read back from a CSV, every cell
    is text), a whole number is kept as an ``int`` so that it prints and is
    written as ``40``, not ``40.0``.
    """
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().sum() == column.notna().sum():
        return numbers

    def one(value: object, number: float) -> object:
        if pd.isna(value):
            return np.nan
        if np.isnan(number):
            return str(value)
        return int(number) if float(number).is_integer() else float(number)

    return pd.Series([one(v, n) for v, n in zip(column, numbers, strict=True)],
                     index=column.index, dtype=object)


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def within_tolerance(abs_diff: pd.Series, rel_diff: pd.Series, *, rel_tol, abs_tol=0.0) -> pd.Series:
    """Whether a numeric difference is within tolerance: ``|abs_diff| <= abs_tol`` or ``|rel_diff| <= rel_tol``.

    A zero difference is always within tolerance, also where ``rel_diff`` is
    undefined because the paper's value is 0 (0 computed against 0 published
    is a match, whatever ``rel_tol``).
    """
    abs_diff = pd.Series(abs_diff)
    rel_diff = pd.Series(rel_diff, index=abs_diff.index)
    return (abs_diff == 0) | (abs_diff.abs() <= abs_tol) | (rel_diff.abs() <= rel_tol)


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
    ``|rel_diff| <= rel_tol`` (see :func:`within_tolerance`; 0 against 0 is a
    match), ``differs`` otherwise, ``not computed`` for a paper value with no
    computed counterpart and ``no paper value`` for a computed value the paper
    does not report. A per-value ``abs_tol`` or ``rel_tol`` column in
    ``computed`` overrides the defaults. Where either value is text (a solver's
    name), the two are compared as strings: ``match`` if equal, ``differs``
    otherwise, with no differences.
    """
    missing = [k for k in [*KEYS, "computed"] if k not in computed.columns]
    if missing:
        raise ValueError(f"computed table lacks columns {missing}")
    paper = paper_values.rename(columns={"value": "paper"})
    if "paper_id" in computed.columns:
        paper = paper.drop(columns="paper_id", errors="ignore")
    out = computed.merge(paper, on=KEYS, how="outer", suffixes=("", "_paper"))
    out["computed"] = _values(out["computed"])
    out["paper"] = _values(out["paper"])
    computed_v = pd.to_numeric(out["computed"], errors="coerce").astype(float)
    paper_v = pd.to_numeric(out["paper"], errors="coerce").astype(float)
    text = out["computed"].map(_is_text) | out["paper"].map(_is_text)
    out["abs_diff"] = (computed_v - paper_v).where(~text)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rel_diff"] = np.where(paper_v != 0, out["abs_diff"] / paper_v.abs(), np.nan)
    a_tol = out["abs_tol"].fillna(abs_tol) if "abs_tol" in out else abs_tol
    r_tol = out["rel_tol"].fillna(rel_tol) if "rel_tol" in out else rel_tol
    close = within_tolerance(out["abs_diff"], out["rel_diff"], rel_tol=r_tol, abs_tol=a_tol)
    same_text = text & (out["computed"].astype(str) == out["paper"].astype(str))
    out["status"] = np.select(
        [out["paper"].isna(), out["computed"].isna(), same_text, text, close],
        ["no paper value", "not computed", "match", "differs", "match"],
        default="differs",
    )
    front = [*KEYS, "computed", "paper", "abs_diff", "rel_diff", "status"]
    return out[front + [c for c in out.columns if c not in front]]


def load_deviations(paper: str, folder: str | Path = "data/paper_values") -> pd.DataFrame:
    """Read ``<folder>/<paper>_deviations.yaml``: why values differ from the paper.

    Each entry has ``table``, ``category`` (one of :data:`CATEGORIES`) and
    ``reason`` (one line), and optionally ``row`` and ``column``; an omitted
    ``column`` covers every column of the row, an omitted ``row`` every row of
    the column, both omitted the whole table. ``table``, ``row`` and ``column``
    may each be a list, which stands for every combination. Returns one line per
    combination: ``entry`` (1-based position in the file), ``table``, ``row``,
    ``column`` (``None`` where omitted), ``level`` (see :data:`LEVELS`),
    ``category``, ``reason``. A paper without a deviations file has none.

    Raises
    ------
    ValueError
        On an unknown key or category, a missing or multi-line reason, a
        ``paper`` field naming another paper, or two entries with the same
        keys.
    """
    columns = ["entry", *KEYS, "level", "category", "reason"]
    path = _folder(folder) / f"{paper}{DEVIATIONS_SUFFIX}.yaml"
    if not path.exists():
        return pd.DataFrame(columns=columns)
    doc = yaml.safe_load(path.read_text()) or {}
    if doc.get("paper", paper) != paper:
        raise ValueError(f"{path.name}: 'paper' is {doc['paper']!r}, expected {paper!r}")
    entries = doc.get("deviations")
    if not isinstance(entries, list):
        raise ValueError(f"{path.name}: no 'deviations' list")
    rows = []
    for i, entry in enumerate(entries, start=1):
        where = f"{path.name}: deviation #{i}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} is not a mapping")
        unknown = set(entry) - {*KEYS, "category", "reason"}
        missing = [k for k in ("table", "category", "reason") if not entry.get(k)]
        if unknown or missing:
            raise ValueError(f"{where}: " + "; ".join(
                ([f"unknown keys {sorted(unknown)}"] if unknown else [])
                + ([f"lacks {', '.join(missing)}"] if missing else [])))
        if entry["category"] not in CATEGORIES:
            raise ValueError(f"{where}: category {entry['category']!r} is not one of {', '.join(CATEGORIES)}")
        reason = entry["reason"]
        if not isinstance(reason, str) or "\n" in reason.strip():
            raise ValueError(f"{where}: the reason must be one line of text")
        keys = {}
        for key in KEYS:
            value = entry.get(key)
            values = value if isinstance(value, list) else [value]
            listed = isinstance(value, list)
            if not values or any(not isinstance(v, str) and (listed or v is not None) for v in values):
                raise ValueError(f"{where}: {key} must be a string or a list of strings")
            keys[key] = values
        level = _level(keys)
        for table in keys["table"]:
            for row in keys["row"]:
                for column in keys["column"]:
                    rows.append((i, table, row, column, level, entry["category"], reason.strip()))
    out = pd.DataFrame(rows, columns=columns)
    duplicated = out.duplicated(KEYS, keep=False)
    if duplicated.any():
        first = out[duplicated].iloc[0]
        same = out.loc[duplicated & (out[KEYS].fillna("") == first[KEYS].fillna("")).all(axis=1), "entry"]
        raise ValueError(
            f"{path.name}: entries {sorted(set(same))} cover the same values ({first['table']} | "
            f"{first['row'] if isinstance(first['row'], str) else '(every row)'} | "
            f"{first['column'] if isinstance(first['column'], str) else '(every column)'}): "
            "their reason would be ambiguous; keep one"
        )
    return out


def _level(keys: dict[str, list[str | None]]) -> str:
    """What an entry covers (:data:`LEVELS`): given row and column, row only, column only, neither."""
    has_row, has_column = keys["row"] != [None], keys["column"] != [None]
    return {(True, True): "cell", (True, False): "row",
            (False, True): "column", (False, False): "table"}[(has_row, has_column)]


def _decide(rows: pd.DataFrame, deviations: pd.DataFrame) -> pd.Series:
    """For each of ``rows``, the index of the line of ``deviations`` that explains it (NaN: none).

    Of the lines that cover a row, the most specific level decides (a cell
    before its row, a row before its column, a column before its table). Two
    lines of one level cover the same value only if their keys are equal, which
    :func:`load_deviations` rejects: every value has at most one reason.
    """
    decided = pd.Series(np.nan, index=rows.index, dtype=float)
    if rows.empty or deviations.empty:
        return decided
    rank = deviations["level"].map({level: i for i, level in enumerate(LEVELS)})
    for index, (table, row, column) in rows[KEYS].iterrows():
        hits = rank[
            (deviations["table"] == table)
            & (deviations["row"].isna() | (deviations["row"] == row))
            & (deviations["column"].isna() | (deviations["column"] == column))
        ]
        if len(hits):
            decided[index] = hits.idxmin()
    return decided


def attach_reasons(report: pd.DataFrame, folder: str | Path = "data/paper_values") -> pd.DataFrame:
    """``report`` (``paper_id`` and the keys) with ``reason_category`` and ``reason`` added.

    Each row whose status is one of :data:`EXPLAINED` gets the reason of the
    deviation entry that decides it (see :func:`load_deviations`), or none; a
    value that matches gets none, even inside a row or column an entry covers.
    """
    out = report.reset_index(drop=True)
    out["reason_category"] = pd.Series(dtype=object)
    out["reason"] = pd.Series(dtype=object)
    for paper, rows in out[out["status"].isin(EXPLAINED)].groupby("paper_id", sort=False):
        deviations = load_deviations(paper, folder)
        decided = _decide(rows, deviations).dropna().astype(int)
        out.loc[decided.index, "reason_category"] = deviations.loc[decided, "category"].to_numpy()
        out.loc[decided.index, "reason"] = deviations.loc[decided, "reason"].to_numpy()
    return out.set_axis(report.index)


def unexplained(report: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``report`` that differ or are not computed and have no reason."""
    needs = report["status"].isin(["differs", "not computed"])
    return report[needs & (report["reason"].isna() | report["reason_category"].isna())]


def stale_deviations(report: pd.DataFrame, folder: str | Path = "data/paper_values") -> pd.DataFrame:
    """Deviation entries (one line per key combination) that explain no row of ``report``.

    An entry that covers no value of :data:`EXPLAINED` status (only values that
    match, or none), or whose values are all decided by more specific entries,
    is stale: a renamed row, a typo, or a reason left behind once a value matches.
    Covers every ``*_deviations.yaml`` of ``folder``, also of papers absent
    from ``report``. Columns: ``paper_id`` and those of :func:`load_deviations`.
    """
    stale = []
    for path in sorted(_folder(folder).glob(f"*{DEVIATIONS_SUFFIX}.yaml")):
        paper = path.stem.removesuffix(DEVIATIONS_SUFFIX)
        deviations = load_deviations(paper, folder)
        rows = report[(report["paper_id"] == paper) & report["status"].isin(EXPLAINED)]
        used = set(_decide(rows, deviations).dropna().astype(int))
        stale.append(deviations[~deviations.index.isin(used)].assign(paper_id=paper))
    columns = ["paper_id", "entry", *KEYS, "level", "category", "reason"]
    return pd.concat(stale, ignore_index=True)[columns] if stale else pd.DataFrame(columns=columns)


def rounded(table: pd.DataFrame, decimals: int = 4) -> pd.DataFrame:
    """Round numbers for display and turn ``-0.0`` into ``0.0``.

    nbval compares printed outputs exactly; a difference of ``-1e-9`` would
    print as ``-0.0000`` on one machine and ``0.0000`` on another. Numbers in a
    column that also holds text (a paper value such as a solver's name) are
    rounded too.
    """
    out = table.copy()
    numeric = out.select_dtypes("number").columns
    out[numeric] = out[numeric].round(decimals) + 0.0
    for column in out.select_dtypes("object").columns:
        out[column] = out[column].map(
            lambda v: round(v, decimals) + 0.0 if isinstance(v, float) else v)
    return out
