"""The authors' public dataset (Villanueva-Machado et al. 2025): loaders, no modelling.

Reads ``data/villanueva2025/dataset`` (the authors' files, unchanged) and the chosen Monte
Carlo samples in ``data/villanueva2025/authors_runs/mcs_samples`` (their R/X text files
converted to CSV; ``authors_runs/README.md`` documents the columns):

* :func:`line_lengths_km`, :func:`load_buses`: the IEEE 14-bus CDF ``ieee14cdfv2.txt``, whose
  last branch column holds the line lengths (km) the Monte Carlo turns into trip distances;
* :func:`time_histograms`, :func:`fit_time_normals`: the departure/arrival histograms of
  ``evs_dist_charact.xlsx`` (sheet ``Resumen``) and the normal distributions the authors'
  ``MCSopt.m`` fitted to them (``fitdist(..., 'normal')``);
* :func:`speed_classes`, :func:`speed_schedule_quarter_hour`: the speed classes and the
  quarter-hour "Daily Traffic Speed" schedule of the same workbook (sheet ``PDFs``);
* :func:`read_bus_assignment`, :func:`table1_from_assignment`: the representative-vehicle lists
  of the six chosen samples, and Table 1 of the paper recomputed from them;
* :func:`read_samples`, :func:`read_sample_vehicles`, :func:`read_sample_trips`: the chosen
  samples' statistics, vehicles and trips.

Slot codes: the half-hour slot ``k`` (1-based) covers ``[(k-1)/2, k/2)`` h, so code 17 is
08:00-08:30; codes above 48 (up to 56) are the next morning, as in the authors' workbook.
Every reader is cached (:func:`functools.lru_cache`); callers must not mutate what they get.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from evgrid.core.paths import repo_path

__all__ = [
    "DATASET_DIR",
    "MCS_SAMPLES_DIR",
    "SCENARIO_EVS",
    "BusAssignment",
    "fit_time_normals",
    "line_lengths_km",
    "load_buses",
    "read_bus_assignment",
    "read_sample_trips",
    "read_sample_vehicles",
    "read_samples",
    "speed_classes",
    "speed_schedule_quarter_hour",
    "table1_from_assignment",
    "time_histograms",
]

#: Repo-relative folder of the authors' dataset.
DATASET_DIR = "data/villanueva2025/dataset"
#: Repo-relative folder of the chosen Monte Carlo samples (converted to CSV).
MCS_SAMPLES_DIR = "data/villanueva2025/authors_runs/mcs_samples"
#: EVs of the paper's scenarios 1, 2 and 3.
SCENARIO_EVS: dict[int, int] = {1: 2000, 2: 2500, 3: 3750}
_WORKBOOK = "evs_dist_charact.xlsx"


def _existing(folder: str, name: str) -> Path:
    """``repo_path(folder, name)``, or a :class:`FileNotFoundError` saying how to get it."""
    path = repo_path(folder, name)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: it is part of the repository (the authors' data, "
            f"data/villanueva2025/README.md); restore it from a fresh clone (`git checkout -- {folder}/{name}`) "
            "and rerun `make`"
        )
    return path


# --------------------------------------------------------------------------------------------
# IEEE 14-bus CDF
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _cdf() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(bus records, branch records) of ``ieee14cdfv2.txt``, split on whitespace."""
    path = _existing(DATASET_DIR, "ieee14cdfv2.txt")
    lines = path.read_text().splitlines()
    buses, branches, section = [], [], None
    for line in lines:
        if line.startswith("BUS DATA FOLLOWS"):
            section = "bus"
            continue
        if line.startswith("BRANCH DATA FOLLOWS"):
            section = "branch"
            continue
        if line.strip().startswith("-9"):
            section = None
            continue
        if section == "bus":
            # fixed columns of the IEEE common data format: number 1-4, load MW 41-49, load MVAR 50-58
            # (the name, columns 6-17, may hold blanks, so the record is not split on whitespace)
            buses.append({"bus": int(line[0:4]), "pd_mw": float(line[40:49]), "qd_mvar": float(line[49:58])})
        elif section == "branch":
            fields = line.split()
            branches.append({"from_bus": int(fields[0]), "to_bus": int(fields[1]), "length_km": float(fields[-1])})
    if not buses or not branches:
        raise ValueError(f"{path}: no bus or branch records found (not an IEEE common data format file?)")
    return pd.DataFrame(buses), pd.DataFrame(branches)


def load_buses() -> list[int]:
    """The buses with a load (Pd > 0) in ``ieee14cdfv2.txt``: ``[2, 3, 4, 5, 6, 9, ..., 14]`` (11 buses)."""
    buses, _ = _cdf()
    return buses.loc[buses["pd_mw"] > 0, "bus"].astype(int).tolist()


def line_lengths_km() -> dict[tuple[int, int], float]:
    """Line lengths (km) of the branches with a non-zero length, keyed ``(i, j)`` with ``i < j``.

    The authors' ``ieee14cdfv2.txt`` holds the length in the last column of each branch record;
    transformers (4-7, 4-9, 5-6) have length 0 and are left out.
    """
    _, branches = _cdf()
    out: dict[tuple[int, int], float] = {}
    for i, j, km in branches[["from_bus", "to_bus", "length_km"]].itertuples(index=False):
        if km > 0:
            out[(min(int(i), int(j)), max(int(i), int(j)))] = float(km)
    return out


# --------------------------------------------------------------------------------------------
# evs_dist_charact.xlsx
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _sheet(name: str) -> pd.DataFrame:
    return pd.read_excel(_existing(DATASET_DIR, _WORKBOOK), sheet_name=name, header=None)


def time_histograms() -> pd.DataFrame:
    """The departure and arrival histograms of sheet ``Resumen`` (rows 2-57, as ``MCSopt.m`` reads them).

    Returns
    -------
    pandas.DataFrame
        Index ``slot_code`` 1..56 (column H; codes 49-56 are 00:00-04:00 of the next day), columns
        ``clock`` (column A, start of the half hour), ``departures`` (column B) and ``arrivals``
        (column D): counts of 10,000 each.
    """
    sheet = _sheet("Resumen")
    block = sheet.iloc[1:57]
    frame = pd.DataFrame({
        "slot_code": block.iloc[:, 7].astype(int).to_numpy(),
        "clock": block.iloc[:, 0].astype(str).to_numpy(),
        "departures": block.iloc[:, 1].astype(float).to_numpy(),
        "arrivals": block.iloc[:, 3].astype(float).to_numpy(),
    }).set_index("slot_code")
    if frame.index.tolist() != list(range(1, 57)):
        raise ValueError(f"{_WORKBOOK}, sheet Resumen: column H is not the slot codes 1..56")
    return frame


def fit_time_normals() -> dict[str, tuple[float, float]]:
    """Normal (mean, sd) of the departure and arrival times in slot codes, fitted as the authors did.

    ``MCSopt.m`` expands each histogram into 10,000 slot codes (count ``round(n)`` of each code)
    and calls ``fitdist(x, 'normal')``: the sample mean and the sample standard deviation with
    ``n - 1`` (MATLAB's estimate for the normal). Result: departure (17.07, 2.83), i.e. 08:02 and
    1.41 h; arrival (40.80, 5.28), i.e. 19:54 and 2.64 h. The paper quotes instead the workbook's
    cells N(08:02, 01:11) and N(22:04, 04:18), which are not what the code sampled from.

    Returns
    -------
    dict
        ``{"departure": (mean, sd), "arrival": (mean, sd)}`` in slot codes.
    """
    hist = time_histograms()
    codes = hist.index.to_numpy(dtype=float)
    out = {}
    for key, column in (("departure", "departures"), ("arrival", "arrivals")):
        counts = np.round(hist[column].to_numpy())
        n = counts.sum()
        mean = float((codes * counts).sum() / n)
        sd = float(np.sqrt(((codes - mean) ** 2 * counts).sum() / (n - 1)))
        out[key] = (mean, sd)
    return out


def speed_classes() -> dict[str, tuple[float, float]]:
    """Speed classes of sheet ``PDFs`` (columns L-O): ``{"HS": (50, 20), "MS": (35, 15), "LS": (25, 10)}`` km/h.

    The authors' code (``stocdata0.m``) used LS = (20, 10) instead; see :mod:`.mcs`.
    """
    sheet = _sheet("PDFs")
    names = [str(sheet.iat[0, c]) for c in (12, 13, 14)]
    if sheet.iat[1, 11] != "mu" or sheet.iat[2, 11] != "sigma" or names != ["HS", "MS", "LS"]:
        raise ValueError(f"{_WORKBOOK}, sheet PDFs: speed table not where expected (L1:O3)")
    return {name: (float(sheet.iat[1, c]), float(sheet.iat[2, c])) for name, c in zip(names, (12, 13, 14), strict=True)}


def speed_schedule_quarter_hour() -> list[str]:
    """The "Daily Traffic Speed" column of sheet ``PDFs``: the class of each quarter hour 0..95.

    Entry ``i`` is the class (``"HS"``, ``"MS"`` or ``"LS"``) of the quarter hour starting at
    ``i/4`` h: LS 08:30-10:45 (34-43), 13:15-13:30 (53-54) and 16:15-20:00 (65-80).
    """
    sheet = _sheet("PDFs")
    index = sheet.iloc[1:97, 8].astype(float).astype(int).tolist()
    labels = sheet.iloc[1:97, 9].astype(str).tolist()
    if index != list(range(96)) or set(labels) - {"HS", "MS", "LS"}:
        raise ValueError(f"{_WORKBOOK}, sheet PDFs: column J is not a quarter-hour HS/MS/LS schedule")
    return labels


# --------------------------------------------------------------------------------------------
# representative-vehicle lists of the chosen samples
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BusAssignment:
    """One ``ev_bus_assignment_<N>evs_<min|max>.txt`` file.

    Attributes
    ----------
    n_evs : int
        EVs of the scenario (2000, 2500 or 3750).
    sample : str
        ``"min"`` or ``"max"``: the sample with the least or most charging energy GChR.
    gchr_mwh : float
        GChR of that sample as the header prints it (MWh, Eq. 3).
    mcs_sample : int
        The sample's number in the authors' Monte Carlo (1-based).
    vehicles : pandas.DataFrame
        ``vehicle_id`` (1-based), ``from_bus``, ``to_bus``, ``trip_km_one_way`` (km), ``weight_evs``.
    """

    n_evs: int
    sample: str
    gchr_mwh: float
    mcs_sample: int
    vehicles: pd.DataFrame


_HEADER = re.compile(r"(Minimum|Maximum) charge required by PS:\s*([0-9.]+)\s+corresponding to sample\s+(\d+)")


@lru_cache(maxsize=8)
def read_bus_assignment(n_evs: int, sample: str) -> BusAssignment:
    """Read ``ev_bus_assignment_<n_evs>evs_<sample>.txt``.

    The first line is a sentence such as ``Minimum charge required by PS: 14.5867 corresponding to
    sample 124``; the second the column header ``EVs From To Dist #Evs``.

    Raises
    ------
    ValueError
        If ``n_evs`` or ``sample`` is not one of the paper's, or the header is not as expected.
    """
    if n_evs not in SCENARIO_EVS.values():
        raise ValueError(f"n_evs = {n_evs}: the dataset has {sorted(SCENARIO_EVS.values())}")
    if sample not in ("min", "max"):
        raise ValueError(f"sample = {sample!r}: 'min' or 'max'")
    path = _existing(DATASET_DIR, f"ev_bus_assignment_{n_evs}evs_{sample}.txt")
    lines = path.read_text().splitlines()
    match = _HEADER.match(lines[0].strip())
    if match is None:
        raise ValueError(f"{path}: first line {lines[0]!r} is not 'Minimum/Maximum charge required by PS: ...'")
    kind = "min" if match.group(1) == "Minimum" else "max"
    if kind != sample:
        raise ValueError(f"{path}: header says {match.group(1)}, file name says {sample}")
    rows = [line.split() for line in lines[2:] if line.strip()]
    frame = pd.DataFrame(rows, columns=["vehicle_id", "from_bus", "to_bus", "trip_km_one_way", "weight_evs"])
    frame = frame.astype({"vehicle_id": int, "from_bus": int, "to_bus": int, "trip_km_one_way": float,
                          "weight_evs": int})
    return BusAssignment(n_evs=n_evs, sample=sample, gchr_mwh=float(match.group(2)),
                         mcs_sample=int(match.group(3)), vehicles=frame)


def table1_from_assignment() -> pd.DataFrame:
    """Table 1 of the paper recomputed from the six vehicle lists: weighted EVs per bus.

    ``Dep`` = Σ ``weight_evs`` grouped by ``from_bus`` (home), ``Arr`` = grouped by ``to_bus``
    (work), per scenario and chosen sample.

    Returns
    -------
    pandas.DataFrame
        Index ``bus`` (the 11 load buses), columns ``"Scenario {1,2,3} {min,max} {Dep,Arr}"`` (the
        column names of ``data/paper_values/villanueva2025.yaml``), integer EV counts.
    """
    columns = {}
    for scenario, n_evs in SCENARIO_EVS.items():
        for sample in ("min", "max"):
            vehicles = read_bus_assignment(n_evs, sample).vehicles
            for label, by in (("Dep", "from_bus"), ("Arr", "to_bus")):
                columns[f"Scenario {scenario} {sample} {label}"] = vehicles.groupby(by)["weight_evs"].sum()
    table = pd.DataFrame(columns).reindex(load_buses()).fillna(0).astype(int)
    table.index.name = "bus"
    return table


# --------------------------------------------------------------------------------------------
# the chosen Monte Carlo samples (authors_runs/mcs_samples)
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def read_samples() -> pd.DataFrame:
    """``samples.csv.gz``: one row per chosen sample (Sc1-Sc3 and Sc3-CR, min and max), GChR in MWh."""
    return pd.read_csv(_existing(MCS_SAMPLES_DIR, "samples.csv.gz"))


@lru_cache(maxsize=1)
def read_sample_vehicles() -> pd.DataFrame:
    """``sample_vehicles.csv.gz``: the vehicles of each chosen sample (buses, one-way km, weight)."""
    return pd.read_csv(_existing(MCS_SAMPLES_DIR, "sample_vehicles.csv.gz"))


@lru_cache(maxsize=1)
def read_sample_trips() -> pd.DataFrame:
    """``sample_trips.csv.gz``: non-zero cells of the samples' R (kWh, battery side) and X matrices."""
    return pd.read_csv(_existing(MCS_SAMPLES_DIR, "sample_trips.csv.gz"))
