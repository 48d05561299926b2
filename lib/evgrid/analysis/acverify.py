"""AC verification of an hourly schedule: one pandapower power flow per period.

An optimisation model that carries a linearised network (DistFlow, DC flow)
promises voltages and currents it cannot check itself. :func:`ac_time_series`
takes the net bus injections it scheduled, period by period, and runs the
full AC (Newton-Raphson) power flow on them, so that its voltages, losses and
line currents, and any limit violations, can be read off as plain tables.

Nothing here knows about a paper: the caller composes the net load of every
bus (load minus generation plus whatever the schedule adds) and reads the
results back.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandapower as pp
import pandas as pd

from evgrid.networks import NetworkData

__all__ = [
    "AC_LOAD_NAME",
    "THERMAL_COLUMNS",
    "UNRATED_KA",
    "VIOLATION_COLUMNS",
    "AcSeries",
    "ac_time_series",
]

#: Name of the loads :func:`ac_time_series` writes the net injections into.
AC_LOAD_NAME = "acverify_net_load"
#: pandapower writes 99999 kA for "no rating"; a ``max_i_ka`` above this is unrated.
UNRATED_KA = 9_999.0
#: Branch result tables whose ``pl_mw`` are losses.
_BRANCH_TABLES = ("line", "trafo", "trafo3w", "impedance")

VIOLATION_COLUMNS = ["period", "bus", "name", "vm_pu", "limit", "kind"]
THERMAL_COLUMNS = ["period", "line", "from_bus", "to_bus", "i_ka", "i_max_ka", "loading"]


@dataclass(frozen=True)
class AcSeries:
    """AC power-flow results of a time series, one column per period.

    Attributes
    ----------
    vm_pu : pandas.DataFrame
        Bus voltage magnitude (pu), ``bus x period``.
    import_kw : pandas.Series
        Active power drawn from the external grid (kW, negative: export), by period.
    losses_kw : pandas.Series
        Active losses of lines and transformers (kW), by period.
    line_i_ka : pandas.DataFrame
        Line current (kA, the larger of the two ends), ``line x period``.
    bus_name : pandas.Series
        Bus names, indexed by bus.
    line_max_i_ka : pandas.Series
        Line ratings (kA), indexed by line; NaN where the line is unrated.
    line_ends : pandas.DataFrame
        ``from_bus``, ``to_bus`` of every line, indexed by line.
    """

    vm_pu: pd.DataFrame
    import_kw: pd.Series
    losses_kw: pd.Series
    line_i_ka: pd.DataFrame
    bus_name: pd.Series
    line_max_i_ka: pd.Series
    line_ends: pd.DataFrame

    def voltage_violations(
        self, vmin: float | pd.Series, vmax: float | pd.Series, tol: float = 1e-6
    ) -> pd.DataFrame:
        """Every (period, bus) whose voltage lies outside ``[vmin - tol, vmax + tol]``.

        Parameters
        ----------
        vmin, vmax : float or pandas.Series
            Limits (pu), one for all buses or a Series indexed by bus.
        tol : float
            Slack (pu) before a voltage counts as a violation, so that a limit
            met to solver precision is not reported.

        Returns
        -------
        pandas.DataFrame
            Columns ``period``, ``bus``, ``name``, ``vm_pu``, ``limit`` (the
            limit broken) and ``kind`` (``"under"`` / ``"over"``), sorted by
            period and bus; empty if none.
        """
        rows = []
        for kind, limit, bad in (
            ("under", vmin, lambda v, lim: v < lim - tol),
            ("over", vmax, lambda v, lim: v > lim + tol),
        ):
            lim = _per_bus(limit, self.vm_pu.index)
            mask = bad(self.vm_pu.to_numpy(), lim.to_numpy()[:, None])
            for i, j in zip(*np.nonzero(mask), strict=True):
                bus = self.vm_pu.index[i]
                rows.append(
                    (
                        self.vm_pu.columns[j],
                        bus,
                        self.bus_name[bus],
                        float(self.vm_pu.iat[i, j]),
                        float(lim.iat[i]),
                        kind,
                    )
                )
        frame = pd.DataFrame(rows, columns=VIOLATION_COLUMNS)
        order = {p: k for k, p in enumerate(self.vm_pu.columns)}
        return (
            frame.assign(_order=frame["period"].map(order))
            .sort_values(["_order", "bus"], kind="stable")
            .drop(columns="_order")
            .reset_index(drop=True)
        )

    def thermal_violations(self, i_max_ka: pd.Series | None = None) -> pd.DataFrame:
        """Every (period, line) whose current exceeds its rating.

        Parameters
        ----------
        i_max_ka : pandas.Series, optional
            Ratings (kA) indexed by line; default the network's own
            (:attr:`line_max_i_ka`). Lines without a finite rating are never
            reported. pandapower's ``case33bw`` (the IEEE 33-bus feeder) rates
            every line at 99999 kA, i.e. leaves them unrated, so for it the
            result is always empty: a thermal check there needs ratings
            supplied here.

        Returns
        -------
        pandas.DataFrame
            Columns ``period``, ``line``, ``from_bus``, ``to_bus``, ``i_ka``,
            ``i_max_ka``, ``loading`` (``i_ka / i_max_ka``); empty if none.
        """
        rating = self.line_max_i_ka if i_max_ka is None else i_max_ka
        rating = rating.reindex(self.line_i_ka.index).astype(float)
        rating = rating.where(rating < UNRATED_KA)
        rows = []
        over = self.line_i_ka.to_numpy() > rating.to_numpy()[:, None]  # NaN compares False
        for i, j in zip(*np.nonzero(over), strict=True):
            line = self.line_i_ka.index[i]
            i_ka, i_max = float(self.line_i_ka.iat[i, j]), float(rating.iat[i])
            rows.append(
                (
                    self.line_i_ka.columns[j],
                    line,
                    int(self.line_ends.at[line, "from_bus"]),
                    int(self.line_ends.at[line, "to_bus"]),
                    i_ka,
                    i_max,
                    i_ka / i_max,
                )
            )
        return pd.DataFrame(rows, columns=THERMAL_COLUMNS)


def _per_bus(limit: float | pd.Series, buses: pd.Index) -> pd.Series:
    if isinstance(limit, pd.Series):
        out = limit.reindex(buses).astype(float)
        if out.isna().any():
            raise ValueError(f"voltage limit missing for buses {list(buses[out.isna()])}")
        return out
    return pd.Series(float(limit), index=buses)


def ac_time_series(
    data: NetworkData,
    p_kw: pd.DataFrame,
    q_kvar: pd.DataFrame,
    *,
    v_source_pu: float = 1.0,
) -> AcSeries:
    """Run one AC power flow per period of a net-load schedule.

    Works on a copy of ``data.net`` (the input is never changed): its loads
    and static generators are switched off and replaced by one load per bus
    carrying the given NET load (negative: net generation), every external
    grid is set to ``v_source_pu``, and pandapower's Newton-Raphson power
    flow runs for each period in turn, starting from the previous period's
    solution. Voltage-controlled generators (``net.gen``), if any, stay as
    they are.

    Parameters
    ----------
    data : NetworkData
        A balanced pandapower network (``data.net``).
    p_kw, q_kvar : pandas.DataFrame
        Net active / reactive load (load minus generation) in kW / kvar,
        ``bus x period``, buses from ``data.buses["bus"]`` (a missing bus has
        zero load), the same period columns in both (any labels).
    v_source_pu : float
        Voltage magnitude of the external grid(s) (pu).

    Returns
    -------
    AcSeries

    Raises
    ------
    ValueError
        If the tables name an unknown bus, their periods differ, or they
        hold non-finite values.
    RuntimeError
        If the power flow of a period does not converge; the message names
        the period.
    """
    buses = pd.Index(data.buses["bus"])
    p = _bus_table(p_kw, buses, "p_kw")
    q = _bus_table(q_kvar, buses, "q_kvar")
    if not p.columns.equals(q.columns):
        raise ValueError(
            f"p_kw and q_kvar must have the same periods: {list(p.columns)} vs {list(q.columns)}"
        )
    if p.shape[1] == 0:
        raise ValueError("p_kw has no periods")
    if not (0.5 <= v_source_pu <= 1.5):
        raise ValueError(f"v_source_pu={v_source_pu!r} is out of range: allowed 0.5 <= v <= 1.5")

    net = copy.deepcopy(data.net)
    net.load["in_service"] = False
    if len(net.sgen):
        net.sgen["in_service"] = False
    net.ext_grid["vm_pu"] = v_source_pu
    loads = pp.create_loads(net, buses.to_numpy(), p_mw=0.0, q_mvar=0.0, name=AC_LOAD_NAME)
    p_mw, q_mvar = p.to_numpy() / 1e3, q.to_numpy() / 1e3
    # Whole-column writes: much cheaper than .loc on a few rows, once per period.
    rows = net.load.index.get_indexer(loads)
    p_col = net.load["p_mw"].to_numpy(dtype=float, copy=True)
    q_col = net.load["q_mvar"].to_numpy(dtype=float, copy=True)

    periods = list(p.columns)
    lines = net.line.index[net.line["in_service"]]
    vm = np.empty((len(net.bus), len(periods)))
    i_ka = np.empty((len(lines), len(periods)))
    import_kw = np.empty(len(periods))
    losses_kw = np.empty(len(periods))
    for k, period in enumerate(periods):
        p_col[rows], q_col[rows] = p_mw[:, k], q_mvar[:, k]
        net.load["p_mw"], net.load["q_mvar"] = p_col, q_col
        try:
            pp.runpp(net, numba=False, init="auto" if k == 0 else "results")
        except pp.LoadflowNotConverged as err:
            raise RuntimeError(
                f"AC power flow of {data.name} did not converge in period {period!r}"
            ) from err
        vm[:, k] = net.res_bus["vm_pu"].to_numpy()
        i_ka[:, k] = net.res_line.loc[lines, "i_ka"].to_numpy()
        import_kw[k] = net.res_ext_grid["p_mw"].sum() * 1e3
        losses_kw[k] = 1e3 * sum(
            float(net[f"res_{kind}"]["pl_mw"].sum())
            for kind in _BRANCH_TABLES
            if len(net[kind]) and f"res_{kind}" in net
        )

    columns = pd.Index(periods, name=p.columns.name or "period")
    rating = net.line.loc[lines, "max_i_ka"].astype(float)
    return AcSeries(
        vm_pu=pd.DataFrame(vm, index=pd.Index(net.bus.index, name="bus"), columns=columns),
        import_kw=pd.Series(import_kw, index=columns, name="import_kw"),
        losses_kw=pd.Series(losses_kw, index=columns, name="losses_kw"),
        line_i_ka=pd.DataFrame(i_ka, index=pd.Index(lines, name="line"), columns=columns),
        bus_name=net.bus["name"].astype(str).rename_axis("bus"),
        line_max_i_ka=rating.where(rating < UNRATED_KA).rename_axis("line"),
        line_ends=net.line.loc[lines, ["from_bus", "to_bus"]].rename_axis("line"),
    )


def _bus_table(table: pd.DataFrame, buses: pd.Index, what: str) -> pd.DataFrame:
    unknown = table.index.difference(buses)
    if len(unknown):
        raise ValueError(f"{what} names buses {list(unknown)} that the network does not have")
    out = table.reindex(buses, fill_value=0.0).astype(float)
    if not np.isfinite(out.to_numpy()).all():
        raise ValueError(f"{what} holds non-finite values")
    return out
