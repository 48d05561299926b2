"""The authors' 88 DEVCM runs (Villanueva-Machado et al. 2025): inputs, solver outcomes, EV profiles.

Reads ``data/villanueva2025/authors_runs`` (the authors' GDX and text files converted to CSV;
its ``README.md`` documents every column, unit and quirk) and turns one run's inputs into a
:class:`~evgrid.papers.villanueva2025.instance.DevcmInstance` in the model's units.

A run is one scenario (:data:`SCENARIOS`) x Monte Carlo sample (``min``/``max``) x load bus
(:data:`LOAD_BUSES`); its id looks like ``Sc1_min_bus02`` or ``Sc3-CR_max_bus14``.

The CSVs are parsed once per process (:func:`functools.lru_cache`) and every per-run table is
sorted by run once, so :func:`load_run` only slices contiguous blocks after its first call.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from evgrid.core.paths import repo_path
from evgrid.papers.villanueva2025.instance import DevcmInstance

__all__ = [
    "DATA_DIR",
    "LOAD_BUSES",
    "N_PERIODS",
    "OUTCOME_COLUMNS",
    "SAMPLES",
    "SCENARIOS",
    "authors_daily_energy",
    "authors_outcome",
    "authors_road_energy",
    "authors_pem_mw",
    "load_run",
    "read_pem_profiles",
    "read_runs",
    "run_ids",
]

#: Repo-relative folder of the authors' runs.
DATA_DIR = "data/villanueva2025/authors_runs"
#: Scenarios in the order of the paper (Sc3-CR: Sc3's fleet with the DNO's per-bus caps, new draw).
SCENARIOS: tuple[str, ...] = ("Sc1", "Sc2", "Sc3", "Sc3-CR")
#: Monte Carlo samples of each scenario (the minimum- and maximum-charging-energy draws).
SAMPLES: tuple[str, ...] = ("min", "max")
#: IEEE 14-bus load buses, one aggregator each (buses 1, 7 and 8 carry no load).
LOAD_BUSES: tuple[int, ...] = (2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14)
#: Half-hour periods of the day.
N_PERIODS = 48
#: Solver outcome columns of ``runs.csv`` returned by :func:`authors_outcome`.
OUTCOME_COLUMNS: tuple[str, ...] = (
    "objective_incumbent",
    "best_bound",
    "rel_gap",
    "objective_final_fixed_lp",
    "wall_time_s",
    "cplex_mip_status",
    "output_available",
    "duplicate_of_run",
    "pem_energy_mwh_out_gdx",
    "rows",
    "columns",
    "binaries",
)
_TEXT_OUTCOMES = ("cplex_mip_status", "duplicate_of_run")
_INT_OUTCOMES = ("rows", "columns", "binaries")
#: Scalars that the GAMS model set itself and that only ``out.gdx`` holds (absent for 5 runs).
_OUT_GDX_SCALARS = ("Mbig", "Mbig2", "Pvmax", "SoCmin", "SoCmax", "deltat", "nchg", "ndsg", "dolarconv", "epsilon")
_META_SCALARS = ("regsocdeparture", "regsocarrive", "Pvmax", "SoCmin", "SoCmax", "nchg", "ndsg", "Mbig")


def _path(*parts: str) -> Path:
    return repo_path(DATA_DIR, *parts)


def _sort_key(scenario: str, sample: str, bus: int) -> tuple[int, int, int]:
    return SCENARIOS.index(scenario), SAMPLES.index(sample), int(bus)


# --------------------------------------------------------------------------------------------
# cached readers
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _runs() -> pd.DataFrame:
    frame = pd.read_csv(_path("runs.csv.gz"))
    key = [_sort_key(s, m, b) for s, m, b in zip(frame["scenario"], frame["sample"], frame["bus"], strict=True)]
    frame = frame.iloc[np.argsort(np.array(key, dtype=[("s", int), ("m", int), ("b", int)]), kind="stable")]
    if frame["run"].duplicated().any():
        raise ValueError(f"{_path('runs.csv.gz')}: duplicate run ids")
    return frame.set_index("run")


def _run_order() -> list[str]:
    return _runs().index.tolist()


@dataclass(frozen=True)
class _Grouped:
    """A per-run table as numpy columns, sorted by (run, key columns); run r's rows are [start[r], start[r+1])."""

    columns: dict[str, np.ndarray]
    start: np.ndarray

    def rows(self, code: int) -> dict[str, np.ndarray]:
        lo, hi = int(self.start[code]), int(self.start[code + 1])
        return {name: col[lo:hi] for name, col in self.columns.items()}


def _group(frame: pd.DataFrame, keys: tuple[str, ...], source: str) -> _Grouped:
    """Sort ``frame`` by run (in :func:`run_ids` order) then ``keys``; keep numpy columns and run offsets."""
    order = _run_order()
    codes = pd.Categorical(frame["run"], categories=order).codes.astype(np.int64)
    if np.any(codes < 0):
        unknown = sorted(set(frame["run"][codes < 0].astype(str)))
        raise ValueError(f"{source}: run ids not in runs.csv: {unknown[:5]}")
    idx = np.lexsort(tuple(frame[k].to_numpy() for k in reversed(keys)) + (codes,))
    codes = codes[idx]
    columns = {c: frame[c].to_numpy()[idx] for c in frame.columns if c != "run"}
    start = np.searchsorted(codes, np.arange(len(order) + 1), side="left")
    return _Grouped(columns=columns, start=start)


def _read(name: str, dtype: dict[str, str]) -> pd.DataFrame:
    return pd.read_csv(_path("devcm_inputs", name), dtype=dtype)


@lru_cache(maxsize=1)
def _time_arrays() -> _Grouped:
    """``vehicle_time_arrays.csv.gz`` (1.24 M sparse (run, t, v, n) rows), parsed once."""
    flags = ("on_road", "plugged_in", "arrival_flag", "departure_flag")
    dtype = {"run": "category", "t": "int16", "v": "int16", "n": "int16", "road_energy_mwh": "float64"}
    dtype |= {f: "int8" for f in flags}
    return _group(_read("vehicle_time_arrays.csv.gz", dtype), ("n", "v", "t"), "vehicle_time_arrays.csv.gz")


@lru_cache(maxsize=1)
def _small_tables() -> dict[str, _Grouped]:
    """Every other table of ``devcm_inputs``, parsed and grouped by run once."""
    run = {"run": "category"}
    return {
        "vehicles": _group(
            _read("vehicles.csv.gz", run | {"v": "int16", "vehicle_id": "int32", "from_bus": "int16",
                                            "to_bus": "int16", "bus_role": "str"}),
            ("v",), "vehicles.csv.gz"),
        "vehicle_rt": _group(
            _read("vehicle_rt_samples.csv.gz", run | {"v": "int16", "n": "int16"}), ("n", "v"),
            "vehicle_rt_samples.csv.gz"),
        "fleet": _group(
            _read("fleet_bounds.csv.gz", run | {"t": "int16", "n": "int16"}), ("n", "t"), "fleet_bounds.csv.gz"),
        "rt": _group(_read("rt_samples.csv.gz", run | {"n": "int16"}), ("n",), "rt_samples.csv.gz"),
        "system": _group(
            _read("system_time_series.csv.gz", run | {"t": "int16"}), ("t",), "system_time_series.csv.gz"),
        "prices": _group(_read("price_steps.csv.gz", run | {"b": "int16"}), ("b",), "price_steps.csv.gz"),
    }


@lru_cache(maxsize=1)
def _scalars() -> tuple[pd.DataFrame, frozenset[tuple[str, str]]]:
    """Run x scalar-name table of ``scalars.csv``, with the ``out.gdx`` scalars of the 5 runs
    without solver output filled from the value common to all other runs.

    Returns the table and the set of (run, name) cells that were filled.
    """
    long = _read("scalars.csv.gz", {"run": "str", "name": "str", "value": "float64"})
    wide = long.pivot(index="run", columns="name", values="value").reindex(_run_order())
    filled: set[tuple[str, str]] = set()
    for name in _OUT_GDX_SCALARS:
        if name not in wide.columns:
            raise ValueError(f"scalars.csv: scalar {name!r} is missing in every run")
        values = wide[name].dropna().unique()
        if values.size != 1:
            raise ValueError(f"scalars.csv: {name} is not identical in all runs that have it: {values.tolist()}")
        missing = wide.index[wide[name].isna()]
        filled |= {(str(r), name) for r in missing}
        wide.loc[missing, name] = float(values[0])
    return wide, frozenset(filled)


@lru_cache(maxsize=1)
def _pem() -> pd.DataFrame:
    frame = pd.read_csv(_path("pem_profiles.csv.gz"))
    key = [_sort_key(s, m, b) for s, m, b in zip(frame["scenario"], frame["sample"], frame["bus"], strict=True)]
    rank = np.array([k[0] * 10_000 + k[1] * 1_000 + k[2] for k in key]) * 100 + frame["t"].to_numpy()
    return frame.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def read_runs() -> pd.DataFrame:
    """``runs.csv``: one row per run (88), indexed by ``run``, in :func:`run_ids` order.

    Returns
    -------
    pandas.DataFrame
        A copy; columns as documented in the data README (scenario, sample, bus,
        mcs_sample_index, n_vehicles, weighted_evs, cap_kind, solver outcomes, ...).
    """
    return _runs().copy()


def read_pem_profiles() -> pd.DataFrame:
    """``pem_profiles.csv``: the per-bus EV profiles P^EM_{k,t} (MW) the authors fed to their OPF.

    Returns
    -------
    pandas.DataFrame
        A copy; 4,224 rows (scenario x sample x bus x t), sorted in :func:`run_ids` order then t.
        ``pem_mw`` is the authors' 4-decimal profile, ``pem_mw_out_gdx`` the full-precision
        ``out.gdx`` level (NaN for the 5 runs without solver output).
    """
    return _pem().copy()


def _as_set(value: object, allowed: tuple, what: str) -> set | None:
    if value is None:
        return None
    values = {value} if isinstance(value, str | int | np.integer) else set(value)  # type: ignore[arg-type]
    bad = [x for x in values if x not in allowed]
    if bad:
        raise ValueError(f"unknown {what} {bad}; allowed: {list(allowed)}")
    return values


def run_ids(
    scenario: str | Iterable[str] | None = None,
    sample: str | Iterable[str] | None = None,
    bus: int | Iterable[int] | None = None,
) -> list[str]:
    """Run ids, optionally filtered, ordered by scenario (Sc1, Sc2, Sc3, Sc3-CR), sample (min, max), bus.

    Parameters
    ----------
    scenario, sample, bus : one value, several, or None (all)
        Filters; values outside :data:`SCENARIOS`, :data:`SAMPLES`, :data:`LOAD_BUSES` raise ValueError.

    Returns
    -------
    list of str
        E.g. ``run_ids("Sc1", "min", 2) == ["Sc1_min_bus02"]``; ``run_ids()`` has all 88.
    """
    scenarios = _as_set(scenario, SCENARIOS, "scenario")
    samples = _as_set(sample, SAMPLES, "sample")
    buses = _as_set(bus, LOAD_BUSES, "bus")
    runs = _runs()
    keep = np.ones(len(runs), dtype=bool)
    if scenarios is not None:
        keep &= runs["scenario"].isin(scenarios).to_numpy()
    if samples is not None:
        keep &= runs["sample"].isin(samples).to_numpy()
    if buses is not None:
        keep &= runs["bus"].isin([int(b) for b in buses]).to_numpy()
    return runs.index[keep].tolist()


def _code(run_id: str) -> int:
    """Position of ``run_id`` in :func:`run_ids` order; a ValueError naming it and the id format if unknown."""
    order = _run_order()
    try:
        return order.index(run_id)
    except ValueError:
        close = difflib.get_close_matches(str(run_id), order, n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise ValueError(
            f"unknown run id {run_id!r}. Run ids look like 'Sc1_min_bus02' or 'Sc3-CR_max_bus14': "
            f"<scenario in {list(SCENARIOS)}>_<sample min|max>_bus<load bus, 2 digits, one of "
            f"{list(LOAD_BUSES)}>; run_ids() lists all {len(order)}.{hint}"
        ) from None


def _optional_bool(value: object) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return {"true": True, "false": False}[value.strip().lower()]
    return bool(value)


def load_run(run_id: str) -> DevcmInstance:
    """One of the authors' runs as a validated :class:`DevcmInstance`, in the model's units.

    Everything comes from the run's ``in.gdx`` (``devcm_inputs/*.csv.gz``), unchanged except for units:

    * ``road_kwh`` = ``road_energy_mwh`` x 1000 (R is stored in MWh per half hour, battery side);
    * ``on_road``, ``plugged``, ``arrival``, ``departure`` are bool (N, V, T); the file is sparse,
      and a (t, v, n) row it does not hold is all zero;
    * ``soc_init_kwh`` (N, V); ``weight_evs``, ``battery_cost_usd_per_kwh``, ``degradation_slope``
      (V,) in the run's local vehicle order v; ``pi`` (N,); ``psys_mw`` (T,);
    * ``cap_mw`` = ``psyscap_mw`` (T,): the constant P^SYScap = 259 MW for ``cap_kind == "scalar"``
      (Sc1-Sc3; ``cap_includes_system_load=True``, Eqs. 29-30) or the DNO's per-period cap of the
      bus for ``"vector"`` (Sc3-CR; ``False``, Eqs. 56-57);
    * price steps sorted by b, as in the file: ``price_per_kwh`` = ``lambda_local_per_kwh`` (local
      currency per kWh, step 1 is 0 with range [0, 0]), ``step_lower_mw``, ``step_upper_mw``;
    * ``currency_per_usd`` = ``dolarconv`` (4.08), ``dt_h`` = ``deltat`` (0.5 h).

    The scalars the GAMS model set itself (``deltat``, ``dolarconv``, ``Pvmax``, ``SoCmin``,
    ``SoCmax``, ``nchg``, ``ndsg``, ``Mbig``, ...) are read back from ``out.gdx`` and are therefore
    missing for the 5 runs without solver output (Sc3 min bus 2, Sc3 max bus 13, Sc3-CR min buses
    2 and 6, Sc3-CR max bus 6). For those runs the value common to all 83 other runs is used (each
    such scalar is identical in every run that has it; this is checked when reading), and
    ``meta["scalars_filled_from_other_runs"]`` names them.

    Parameters
    ----------
    run_id : str
        E.g. ``"Sc1_min_bus02"`` (see :func:`run_ids`).

    Returns
    -------
    DevcmInstance
        Validated. ``meta`` holds: ``scenario``, ``sample``, ``bus``, ``mcs_sample_index``,
        ``weighted_evs``, ``cap_kind``, ``output_available``, ``model_has_cap_slack`` (whether the
        authors' model had the cap slack ``splussEMcap``, True only for Sc3-CR max bus 12; None
        without solver output); the scalars ``regsocdeparture``,
        ``regsocarrive`` (kWh), ``Pvmax`` (kW), ``SoCmin``, ``SoCmax`` (kWh), ``nchg``, ``ndsg``,
        ``Mbig``; the fleet bounds ``batavmax_kwh``, ``batavmin_kwh``, ``maxchg_kw`` as (N, T)
        arrays; ``weight_used_in_maxchg``, ``vehicle_id``, ``from_bus``, ``to_bus``,
        ``trip_km_one_way`` (V,); ``road_energy_one_leg_mwh`` (N, V, the file's ``Rtotal``);
        ``soc_init_plugged_sum_kwh`` (N,); ``scalars_filled_from_other_runs`` (tuple of names).

    Raises
    ------
    ValueError
        For an unknown run id (the message names it and shows how ids look), or a file whose
        rows do not cover the run's indices.
    InstanceError
        If the assembled instance fails :meth:`DevcmInstance.validate`.
    """
    code = _code(run_id)
    info = _runs().loc[run_id]
    tables = _small_tables()

    veh = tables["vehicles"].rows(code)
    n_veh = veh["v"].size
    if n_veh != int(info["n_vehicles"]) or not np.array_equal(veh["v"], np.arange(1, n_veh + 1)):
        raise ValueError(f"{run_id}: vehicles.csv holds v = {veh['v'].tolist()}, expected 1..{info['n_vehicles']}")

    rt = tables["rt"].rows(code)
    n_scen = rt["n"].size
    if not np.array_equal(rt["n"], np.arange(1, n_scen + 1)):
        raise ValueError(f"{run_id}: rt_samples.csv holds n = {rt['n'].tolist()}, expected 1..{n_scen}")
    shape = (n_scen, n_veh, N_PERIODS)

    # vehicle_time_arrays: sparse (t, v, n) rows; absent = all zero
    ta = _time_arrays().rows(code)
    n_i, v_i, t_i = ta["n"].astype(np.intp) - 1, ta["v"].astype(np.intp) - 1, ta["t"].astype(np.intp) - 1
    for idx, size, label in ((n_i, n_scen, "n"), (v_i, n_veh, "v"), (t_i, N_PERIODS, "t")):
        if idx.size and (idx.min() < 0 or idx.max() >= size):
            raise ValueError(f"{run_id}: vehicle_time_arrays.csv has {label} outside 1..{size}")
    where = (n_i, v_i, t_i)
    road_kwh = np.zeros(shape)
    road_kwh[where] = ta["road_energy_mwh"] * 1000.0
    flags = {}
    for key, col in (("on_road", "on_road"), ("plugged", "plugged_in"), ("arrival", "arrival_flag"),
                     ("departure", "departure_flag")):
        arr = np.zeros(shape, dtype=bool)
        arr[where] = ta[col] != 0
        flags[key] = arr

    vrt = tables["vehicle_rt"].rows(code)
    if vrt["n"].size != n_scen * n_veh:
        raise ValueError(f"{run_id}: vehicle_rt_samples.csv has {vrt['n'].size} rows, expected {n_scen * n_veh}")
    soc_init = vrt["soc_init_kwh"].reshape(n_scen, n_veh).astype(float)  # sorted by (n, v)
    one_leg = vrt["road_energy_one_leg_mwh"].reshape(n_scen, n_veh).astype(float)

    fleet = tables["fleet"].rows(code)
    if fleet["n"].size != n_scen * N_PERIODS:
        raise ValueError(f"{run_id}: fleet_bounds.csv has {fleet['n'].size} rows, expected {n_scen * N_PERIODS}")

    system = tables["system"].rows(code)
    if not np.array_equal(system["t"], np.arange(1, N_PERIODS + 1)):
        raise ValueError(f"{run_id}: system_time_series.csv does not hold t = 1..{N_PERIODS} once each")

    prices = tables["prices"].rows(code)

    scalars, filled = _scalars()
    sc = scalars.loc[run_id]
    filled_here = tuple(name for name in _OUT_GDX_SCALARS if (run_id, name) in filled)

    cap_kind = str(info["cap_kind"])
    if cap_kind not in ("scalar", "vector"):
        raise ValueError(f"{run_id}: runs.csv cap_kind is {cap_kind!r}, expected 'scalar' or 'vector'")

    meta: dict = {
        "scenario": str(info["scenario"]),
        "sample": str(info["sample"]),
        "bus": int(info["bus"]),
        "mcs_sample_index": int(info["mcs_sample_index"]),
        "weighted_evs": float(info["weighted_evs"]),
        "cap_kind": cap_kind,
        "output_available": bool(info["output_available"]),
        "model_has_cap_slack": _optional_bool(info["model_has_cap_slack_splussEMcap"]),
    }
    meta |= {name: float(sc[name]) for name in _META_SCALARS}
    meta |= {
        "batavmax_kwh": fleet["batavmax_kwh"].reshape(n_scen, N_PERIODS).astype(float),
        "batavmin_kwh": fleet["batavmin_kwh"].reshape(n_scen, N_PERIODS).astype(float),
        "maxchg_kw": fleet["maxchg_kw"].reshape(n_scen, N_PERIODS).astype(float),
        "weight_used_in_maxchg": veh["weight_used_in_maxchg"].astype(float),
        "vehicle_id": veh["vehicle_id"].astype(np.int64),
        "from_bus": veh["from_bus"].astype(np.int64),
        "to_bus": veh["to_bus"].astype(np.int64),
        "trip_km_one_way": veh["trip_km_one_way"].astype(float),
        "road_energy_one_leg_mwh": one_leg,
        "soc_init_plugged_sum_kwh": rt["soc_init_plugged_sum_kwh"].astype(float),
        "scalars_filled_from_other_runs": filled_here,
    }

    inst = DevcmInstance(
        name=run_id,
        bus=int(info["bus"]),
        weight_evs=veh["weight_evs"].astype(float),
        plugged=flags["plugged"],
        on_road=flags["on_road"],
        road_kwh=road_kwh,
        arrival=flags["arrival"],
        departure=flags["departure"],
        soc_init_kwh=soc_init,
        battery_cost_usd_per_kwh=veh["battery_cost_usd_per_kwh"].astype(float),
        degradation_slope=veh["degradation_slope_pu"].astype(float),
        pi=rt["pi"].astype(float),
        psys_mw=system["psys_mw"].astype(float),
        cap_mw=system["psyscap_mw"].astype(float),
        cap_includes_system_load=cap_kind == "scalar",
        price_per_kwh=prices["lambda_local_per_kwh"].astype(float),
        step_lower_mw=prices["pb_lower_mw"].astype(float),
        step_upper_mw=prices["pb_upper_mw"].astype(float),
        currency_per_usd=float(sc["dolarconv"]),
        dt_h=float(sc["deltat"]),
        meta=meta,
    )
    return inst.validate()


def authors_outcome(run_id: str) -> dict:
    """The authors' solver outcome of one run, the quantities a re-solve is compared against.

    Parameters
    ----------
    run_id : str
        E.g. ``"Sc1_min_bus02"``.

    Returns
    -------
    dict
        Keys :data:`OUTCOME_COLUMNS`: ``objective_incumbent``, ``best_bound``, ``rel_gap``,
        ``objective_final_fixed_lp`` (the LP whose levels are the saved P^EM), ``wall_time_s``,
        ``pem_energy_mwh_out_gdx`` (float, NaN for the 5 runs without output); ``rows``,
        ``columns``, ``binaries`` (int, or None without output); ``cplex_mip_status`` and
        ``duplicate_of_run`` (str or None); ``output_available`` (bool).
    """
    row = _runs().loc[_run_order()[_code(run_id)]]
    out: dict = {}
    for col in OUTCOME_COLUMNS:
        value = row[col]
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        if col == "output_available":
            out[col] = bool(value)
        elif col in _TEXT_OUTCOMES:
            out[col] = None if missing else str(value)
        elif col in _INT_OUTCOMES:
            out[col] = None if missing else int(value)
        else:
            out[col] = float(value)
    return out


def authors_pem_mw(run_id: str) -> np.ndarray:
    """The authors' EV profile P^EM_{k,t} of one run (MW, t = 1..48), as fed to their OPF.

    This is ``pem_mw`` of ``pem_profiles.csv`` (4 decimals; positive = the aggregator buys).
    Sc1 max buses 13 and 14 repeat buses 11 and 12 (duplicated solver outputs, quirk 9).
    """
    run = _run_order()[_code(run_id)]
    pem = _pem()
    rows = pem[pem["run"] == run]
    if not np.array_equal(rows["t"].to_numpy(), np.arange(1, N_PERIODS + 1)):
        raise ValueError(f"{run}: pem_profiles.csv does not hold t = 1..{N_PERIODS} once each")
    return rows["pem_mw"].to_numpy(dtype=float).copy()


def authors_road_energy() -> pd.DataFrame:
    """The road energy of each run: sum_v w_v sum_t R_{t,v,n} (MWh, battery side), mean over the RT draws n.

    One row per run (``run``, ``road_energy_mwh``), in :func:`run_ids` order. Every vehicle is in
    two runs (its from-bus and its to-bus), each with its whole day's driving: the aggregators
    together see the fleet's road energy twice. Read from the grouped input tables, without
    building the instances.
    """
    ta, vehicles = _time_arrays(), _small_tables()["vehicles"]
    rows = []
    for code, run in enumerate(_run_order()):
        t, veh = ta.rows(code), vehicles.rows(code)
        weight = np.zeros(int(veh["v"].max()) + 1)
        weight[veh["v"].astype(int)] = veh["weight_evs"]
        n_draws = len(np.unique(t["n"]))
        rows.append((run, float((t["road_energy_mwh"] * weight[t["v"].astype(int)]).sum() / n_draws)))
    return pd.DataFrame(rows, columns=["run", "road_energy_mwh"])


def authors_daily_energy() -> pd.DataFrame:
    """Daily net EV energy per bus, sum_t pem_mw x 0.5 h (MWh): Tables 2 and 4 of the paper.

    Returns
    -------
    pandas.DataFrame
        Columns ``run``, ``scenario``, ``sample``, ``bus``, ``energy_mwh``; 88 rows in
        :func:`run_ids` order.
    """
    pem = _pem()
    dt_h = 0.5
    energy = pem.groupby("run", sort=False)["pem_mw"].sum() * dt_h
    runs = _runs()
    out = runs.loc[energy.index, ["scenario", "sample", "bus"]].copy()
    out["energy_mwh"] = energy.to_numpy()
    out = out.reindex([r for r in _run_order() if r in out.index])
    return out.rename_axis("run").reset_index()
