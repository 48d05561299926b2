"""The IEEE 13-node test feeder: an unbalanced three-phase 4.16 kV feeder.

The data are the IEEE PES Distribution System Analysis Subcommittee's
13 Node Test Feeder (W. H. Kersting, "Radial distribution test feeders",
IEEE PES Winter Meeting 2001, and the feeder data and power-flow results
on the IEEE PES test-feeder site). They ship as tidy CSV files in
``data/networks/ieee13/``, found through :func:`evgrid.core.paths.repo_path`,
beside the published power-flow voltages (:func:`ieee13_published_voltages`);
this module reads them, compiles the circuit in OpenDSS through
``dss-python`` and derives per-phase per-unit tables. Its power flow runs in
:mod:`evgrid.networks.opendss`.

Per-unit convention
-------------------
Every ``*_pu`` column uses one set of *per-phase* bases: power
``base_mva`` (each phase's power is divided by it), voltage the bus's
line-to-neutral voltage ``vn_kv / sqrt(3)``, and impedance
``z_base_ohm = (vn_kv / sqrt(3))**2 / base_mva``. With these bases the
per-phase branch-flow equations hold in per unit without factors of 3, and
the sum of ``p_load_pu`` over all bus phases times ``base_mva`` is the
feeder's total load.
"""

from __future__ import annotations

import cmath
import math
from pathlib import Path

import pandas as pd
from dss import DSS

from evgrid.core.paths import repo_path
from evgrid.networks._tables import NetworkData

#: Where the feeder's CSV files live, relative to the repository root.
DATA_DIR = "data/networks/ieee13"
#: The IEEE published power-flow voltages, a comparison reference beside the data.
PUBLISHED_VOLTAGES_CSV = "published_voltages.csv"

SOURCE = (
    "IEEE PES Distribution System Analysis Subcommittee, IEEE 13 Node Test Feeder "
    "(data and power-flow results); W. H. Kersting, 'Radial distribution test "
    "feeders', IEEE PES Winter Meeting 2001."
)

#: Allowed values of the ``regulator`` option.
REGULATOR_MODES = ("fixed", "auto")

#: System power base (per phase, see the module docstring). 1 MVA keeps the
#: per-phase loads (0.1 to 1.2 MW) near 1 pu.
BASE_MVA = 1.0

#: Voltage bases of the circuit (line-to-line kV): substation, feeder, XFM-1 secondary.
VOLTAGE_BASES_KV = (115.0, 4.16, 0.48)

#: Voltage limits written into the bus table (ANSI C84.1 range A).
VMIN_PU, VMAX_PU = 0.95, 1.05

#: Load voltage range over which OpenDSS keeps the declared load model. Its
#: default (0.95 to 1.05) would silently turn loads into constant impedance
#: at 675.b (1.055 pu) and wherever a phase dips below 0.95.
LOAD_VMIN_PU, LOAD_VMAX_PU = 0.85, 1.15

#: Impedance given to devices the published solution treats as ideal (the
#: regulators, and the substation transformer by default), in percent. OpenDSS
#: needs a non-zero transformer reactance; 1e-4 % moves no voltage by more
#: than 1e-6 pu.
IDEAL_IMPEDANCE_PCT = 1e-4

#: Short-circuit level of the source. A stiff source stands for the published
#: solution's fixed 1.0 pu at the substation.
SOURCE_MVASC = 1e6

#: Where the distributed load on 632-671 is lumped. Kersting's "exact lumped
#: load model" puts 2/3 of a uniformly distributed load a quarter of the way
#: along the line and 1/3 at its end, which reproduces both the voltage drop
#: at the far end and the line's losses (one lump at 1/3 of the length gets
#: only the losses right, one at 1/2 only the voltage drop).
DISTRIBUTED_NODE = "670"
DISTRIBUTED_NODE_FRACTION = 0.25
DISTRIBUTED_SHARE_AT_NODE = 2.0 / 3.0

_NODE = {"a": 1, "b": 2, "c": 3}
_DSS_LOAD_MODEL = {"PQ": 1, "Z": 2, "I": 5}  # 5: constant current magnitude
_FT_PER_MILE = 5280.0
_OMEGA = 2.0 * math.pi * 60.0


def load_ieee13(
    *,
    regulator: str = "fixed",
    with_substation_impedance: bool = False,
    data_dir: Path | None = None,
) -> NetworkData:
    """Load the IEEE 13-node test feeder and compile it in OpenDSS.

    Source: IEEE PES Distribution System Analysis Subcommittee, IEEE 13 Node
    Test Feeder; W. H. Kersting, "Radial distribution test feeders", IEEE PES
    Winter Meeting 2001.

    Parameters
    ----------
    regulator : {"fixed", "auto"}
        ``"fixed"`` locks the three single-phase regulators at the published
        final taps (A +10, B +8, C +11; ratio ``1 + 0.00625 * tap``), which is
        the state the published voltages belong to. ``"auto"`` adds OpenDSS
        RegControls with the published settings (122 V, 2 V band, PT 20,
        CT 700 A, R/X 3/9 V) and lets them move the taps, starting from the
        published ones. At the published load those lie inside the band and
        stay put; started from neutral, OpenDSS stops at the first tap inside
        the band (9, 6, 9), where Kersting's solution steps towards the band
        centre.
    with_substation_impedance : bool
        The published power-flow results hold bus 650 at 1.0 pu and leave
        the 115/4.16 kV substation transformer out. ``False`` (default) does
        the same: a stiff 1.0 pu source at 650. ``True`` adds a 1.0 pu
        115 kV source behind the published 5000 kVA, 1 % + j8 % delta /
        grounded-wye transformer, so 650 sags with load.
    data_dir : pathlib.Path, optional
        Folder holding the feeder's CSV files; defaults to
        :data:`DATA_DIR` in the repository.

    Returns
    -------
    NetworkData
        ``net`` is an OpenDSS engine (a ``dss`` context of its own) with the
        circuit compiled but not solved; its elements are ``line.<branch>``,
        ``transformer.xfm1`` (and ``transformer.substation``),
        ``transformer.reg_a``/``_b``/``_c`` (and ``regcontrol.reg_*`` in auto
        mode). ``base_mva`` is 1.0, a per-phase base (see the module
        docstring). ``buses`` has one row per bus phase, in feeder order:
        ``bus, name, phase, vn_kv`` (line-to-line base), ``p_load_pu,
        q_load_pu`` (nominal load at 1 pu voltage; a delta load is split
        onto its two phases as it would be under balanced voltages),
        ``q_cap_pu`` (capacitor output at 1 pu voltage), ``vmin_pu, vmax_pu,
        is_slack``. ``branches`` has one row per branch, parents before
        children: ``branch, from_bus, to_bus, phases, kind`` (line, switch,
        transformer, regulator), ``config, length_ft, z_base_ohm, r_pu,
        x_pu, b_pu``, where ``r_pu + j x_pu`` is z_s - z_m of the branch's phase-impedance
        matrix (the positive-sequence impedance of the equivalent transposed
        line; the self impedance for single-phase lines; the leakage
        impedance for transformers, zero for the ideal regulator) and
        ``b_pu`` the matching total shunt susceptance. ``extra`` holds
        ``zabc`` (each line's full phase-impedance matrix, long form:
        ``branch, phase_i, phase_j, r_ohm_per_mile, x_ohm_per_mile,
        b_us_per_mile``), ``loads`` (every load element with its connection
        and model, the distributed load lumped), ``capacitors`` and
        ``regulator`` (per phase: published tap, its ``ratio`` and the
        control settings), and ``layout`` (:func:`ieee13_layout`, for the
        one-line diagram).

    Raises
    ------
    ValueError
        If ``regulator`` is not one of ``"fixed"`` or ``"auto"``.
    """
    if regulator not in REGULATOR_MODES:
        raise ValueError(
            f"regulator={regulator!r} is not allowed: allowed values are "
            + ", ".join(repr(mode) for mode in REGULATOR_MODES)
        )
    folder = _folder(data_dir)

    linecodes = pd.read_csv(folder / "linecodes.csv", dtype={"config": str})
    lines = pd.read_csv(folder / "lines.csv", dtype={"from_bus": str, "to_bus": str, "config": str})
    transformers = pd.read_csv(folder / "transformers.csv", dtype={"from_bus": str, "to_bus": str})
    regulators = pd.read_csv(folder / "regulator.csv", dtype={"from_bus": str, "to_bus": str})
    spot_loads = pd.read_csv(folder / "loads.csv", dtype={"bus": str})
    distributed = pd.read_csv(
        folder / "distributed_loads.csv", dtype={"from_bus": str, "to_bus": str}
    )
    capacitors = pd.read_csv(folder / "capacitors.csv", dtype={"bus": str})

    lines = _split_distributed_lines(lines, distributed)
    loads = pd.concat([spot_loads, _lump_distributed_loads(distributed)], ignore_index=True)
    zabc = _phase_impedance_table(lines, linecodes)
    if not with_substation_impedance:
        transformers = transformers[transformers["branch"] != "substation"]
    slack_bus = "sourcebus" if with_substation_impedance else "650"
    bus_kv = _bus_voltage_levels(lines, transformers, regulators)

    engine = DSS.NewContext()
    for command in _dss_commands(
        lines, linecodes, transformers, regulators, loads, capacitors, bus_kv, regulator, slack_bus
    ):
        engine.Text.Command = command

    branches = _feeder_order(
        _branch_table(lines, zabc, transformers, regulators, bus_kv), slack_bus
    )
    buses = _bus_table(branches, loads, capacitors, bus_kv, slack_bus)
    return NetworkData(
        name="ieee13",
        net=engine,
        buses=buses,
        branches=branches,
        base_mva=BASE_MVA,
        source=SOURCE,
        backend="opendss",
        extra={
            "zabc": zabc,
            "loads": loads,
            "capacitors": capacitors,
            "regulator": regulators.assign(
                ratio=1.0 + regulators["step_pct"] / 100.0 * regulators["tap_position"]
            ),
            "layout": ieee13_layout(folder),
        },
    )


def _folder(data_dir: Path | None) -> Path:
    return Path(data_dir) if data_dir is not None else repo_path(DATA_DIR)


def ieee13_layout(data_dir: Path | None = None) -> pd.DataFrame:
    """Bus coordinates for drawing the feeder's one-line diagram.

    The familiar layout: 650 at the top, 632 below it, 645/646 to its left,
    633/634 to its right, 671 below 632 with 684/652/611 to the left,
    692/675 to the right and 680 below; 670, the node carrying the lumped
    distributed load, sits on 632-671. The 115 kV ``sourcebus`` of
    ``with_substation_impedance=True`` has no place in it.

    Parameters
    ----------
    data_dir : pathlib.Path, optional
        Folder holding ``layout.csv``; defaults to :data:`DATA_DIR`.

    Returns
    -------
    pandas.DataFrame
        Columns ``bus, name, x, y`` (arbitrary units, y up); ``name`` repeats
        ``bus`` to match the other networks' coordinate tables.
    """
    layout = pd.read_csv(_folder(data_dir) / "layout.csv", dtype={"bus": str})
    layout.insert(1, "name", layout["bus"])
    return layout


def ieee13_published_voltages(path: Path | None = None) -> pd.DataFrame:
    """The IEEE published power-flow voltages of the 13-node feeder.

    Source: IEEE PES Distribution System Analysis Subcommittee, IEEE 13 Node
    Test Feeder, power-flow results (voltage profile table). They belong to
    the regulator taps A +10, B +8, C +11 and bus 650 held at 1.0 pu. A
    comparison reference only; nothing in the model reads it.

    Parameters
    ----------
    path : pathlib.Path, optional
        The CSV file; defaults to ``published_voltages.csv`` in :data:`DATA_DIR`.

    Returns
    -------
    pandas.DataFrame
        One row per published bus phase: ``bus, phase, vm_pu`` (line-to-
        neutral, on the bus's base) and ``va_degree``.
    """
    path = path if path is not None else repo_path(DATA_DIR, PUBLISHED_VOLTAGES_CSV)
    return pd.read_csv(path, comment="#", dtype={"bus": str})


def _split_distributed_lines(lines: pd.DataFrame, distributed: pd.DataFrame) -> pd.DataFrame:
    """Cut each line that carries a distributed load at its lumping node."""
    pieces = []
    for line in lines.itertuples(index=False):
        has_load = (
            (distributed["from_bus"] == line.from_bus) & (distributed["to_bus"] == line.to_bus)
        ).any()
        if not has_load:
            pieces.append(line._asdict())
            continue
        near_ft = line.length_ft * DISTRIBUTED_NODE_FRACTION
        for start, end, length_ft in (
            (line.from_bus, DISTRIBUTED_NODE, near_ft),
            (DISTRIBUTED_NODE, line.to_bus, line.length_ft - near_ft),
        ):
            pieces.append(
                line._asdict()
                | {
                    "branch": f"{start}-{end}",
                    "from_bus": start,
                    "to_bus": end,
                    "length_ft": length_ft,
                }
            )
    return pd.DataFrame(pieces)


def _lump_distributed_loads(distributed: pd.DataFrame) -> pd.DataFrame:
    """Place each distributed load as Kersting's two lumps (see DISTRIBUTED_*)."""
    at_node = distributed.assign(bus=DISTRIBUTED_NODE)
    at_end = distributed.assign(bus=distributed["to_bus"])
    for part, share in (
        (at_node, DISTRIBUTED_SHARE_AT_NODE),
        (at_end, 1.0 - DISTRIBUTED_SHARE_AT_NODE),
    ):
        part["p_kw"] = part["p_kw"] * share
        part["q_kvar"] = part["q_kvar"] * share
    lumped = pd.concat([at_node, at_end], ignore_index=True)
    return lumped[["bus", "phases", "connection", "model", "p_kw", "q_kvar"]]


def _phase_impedance_table(lines: pd.DataFrame, linecodes: pd.DataFrame) -> pd.DataFrame:
    """Each line's full (symmetric) phase-impedance matrix in long form."""
    upper = linecodes.set_index(["config", "phase_i", "phase_j"])
    rows = []
    for line in lines.itertuples(index=False):
        if line.kind != "line":
            continue
        for i in line.phases:
            for j in line.phases:
                key = (line.config, *sorted((i, j)))
                rows.append(
                    (
                        line.branch,
                        i,
                        j,
                        *upper.loc[key, ["r_ohm_per_mile", "x_ohm_per_mile", "b_us_per_mile"]],
                    )
                )
    return pd.DataFrame(
        rows,
        columns=[
            "branch",
            "phase_i",
            "phase_j",
            "r_ohm_per_mile",
            "x_ohm_per_mile",
            "b_us_per_mile",
        ],
    )


def _dss_commands(
    lines: pd.DataFrame,
    linecodes: pd.DataFrame,
    transformers: pd.DataFrame,
    regulators: pd.DataFrame,
    loads: pd.DataFrame,
    capacitors: pd.DataFrame,
    bus_kv: dict[str, float],
    regulator: str,
    slack_bus: str,
) -> list[str]:
    """OpenDSS commands that build the feeder, in order."""
    feeder_kv = VOLTAGE_BASES_KV[1]
    if slack_bus == "sourcebus":
        # OpenDSS's delta-wye bank puts the low side 30 degrees behind the
        # high side, so a +30 degree source gives 650.a its published 0 degrees.
        source_kv, source_angle = VOLTAGE_BASES_KV[0], 30.0
    else:
        source_kv, source_angle = feeder_kv, 0.0
    commands = [
        "clear",
        f"new circuit.ieee13 bus1={slack_bus} basekv={source_kv} pu=1.0 angle={source_angle} "
        f"phases=3 mvasc3={SOURCE_MVASC} mvasc1={SOURCE_MVASC}",
    ]

    for config, entries in linecodes.groupby("config"):
        phases = "".join(sorted(entries.loc[entries["phase_i"] == entries["phase_j"], "phase_i"]))
        upper = entries.set_index(["phase_i", "phase_j"])
        r = _lower_triangle(phases, upper["r_ohm_per_mile"])
        x = _lower_triangle(phases, upper["x_ohm_per_mile"])
        # OpenDSS wants capacitance: C [nF] = B [uS] * 1e3 / omega.
        c = _lower_triangle(phases, upper["b_us_per_mile"] * 1e3 / _OMEGA)
        commands.append(
            f"new linecode.lc{config} nphases={len(phases)} units=mi "
            f"rmatrix=[{r}] xmatrix=[{x}] cmatrix=[{c}]"
        )

    for line in lines.itertuples(index=False):
        nodes = _nodes(line.phases)
        bus1, bus2 = f"{line.from_bus}{nodes}", f"{line.to_bus}{nodes}"
        if line.kind == "switch":
            # switch=yes gives OpenDSS's standard 1 mm, 1 ohm/km closed switch.
            commands.append(
                f"new line.{line.branch} phases={len(line.phases)} bus1={bus1} bus2={bus2} "
                "switch=yes"
            )
        else:
            commands.append(
                f"new line.{line.branch} phases={len(line.phases)} bus1={bus1} bus2={bus2} "
                f"linecode=lc{line.config} length={line.length_ft} units=ft"
            )

    for tx in transformers.itertuples(index=False):
        conns = " ".join("delta" if c == "delta" else "wye" for c in (tx.conn_hv, tx.conn_lv))
        commands.append(
            f"new transformer.{tx.branch} phases=3 windings=2 buses=[{tx.from_bus} {tx.to_bus}] "
            f"conns=[{conns}] kvs=[{tx.vn_hv_kv} {tx.vn_lv_kv}] kvas=[{tx.s_kva} {tx.s_kva}] "
            f"%rs=[{tx.r_pct / 2} {tx.r_pct / 2}] xhl={tx.x_pct}"
        )

    for reg in regulators.itertuples(index=False):
        name = f"{reg.branch}_{reg.phase}"
        node = _NODE[reg.phase]
        kv_ln = feeder_kv / math.sqrt(3.0)
        # Regulators are rated by their CT; the rating only scales the
        # (negligible) impedance given to these ideal devices.
        kva = reg.ct_primary_a * kv_ln
        max_tap = 1.0 + reg.step_pct / 100.0 * reg.n_steps / 2
        tap = 1.0 + reg.step_pct / 100.0 * reg.tap_position
        commands.append(
            f"new transformer.{name} phases=1 windings=2 "
            f"buses=[{reg.from_bus}.{node} {reg.to_bus}.{node}] conns=[wye wye] "
            f"kvs=[{kv_ln} {kv_ln}] kvas=[{kva} {kva}] "
            f"%rs=[{IDEAL_IMPEDANCE_PCT / 2} {IDEAL_IMPEDANCE_PCT / 2}] xhl={IDEAL_IMPEDANCE_PCT} "
            # Tap limits and position belong to the regulated winding.
            f"wdg=2 maxtap={max_tap} mintap={2.0 - max_tap} numtaps={reg.n_steps} tap={tap}"
        )
        if regulator == "auto":
            commands.append(
                f"new regcontrol.{name} transformer={name} winding=2 vreg={reg.v_level_v} "
                f"band={reg.bandwidth_v} ptratio={reg.pt_ratio} ctprim={reg.ct_primary_a} "
                f"r={reg.r_setting_v} x={reg.x_setting_v}"
            )

    for k, load in enumerate(loads.itertuples(index=False)):
        # A one-phase OpenDSS load is rated at the voltage across it.
        kv = bus_kv[load.bus] if load.connection == "delta" else bus_kv[load.bus] / math.sqrt(3.0)
        commands.append(
            f"new load.{load.bus}_{load.phases}_{k} bus1={load.bus}{_nodes(load.phases)} "
            f"phases=1 conn={load.connection} model={_DSS_LOAD_MODEL[load.model]} kv={kv} "
            f"kw={load.p_kw} kvar={load.q_kvar} vminpu={LOAD_VMIN_PU} vmaxpu={LOAD_VMAX_PU}"
        )

    for cap in capacitors.itertuples(index=False):
        commands.append(
            f"new capacitor.{cap.bus}_{cap.phase} bus1={cap.bus}.{_NODE[cap.phase]} phases=1 "
            f"kv={cap.v_rated_kv} kvar={cap.q_kvar}"
        )

    voltage_bases = ", ".join(str(kv) for kv in VOLTAGE_BASES_KV)
    commands += [
        f"set voltagebases=[{voltage_bases}]",
        "calcvoltagebases",
        "set maxiterations=100",
        "set maxcontroliter=100",
        f"set controlmode={'static' if regulator == 'auto' else 'off'}",
    ]
    return commands


def _nodes(phases: str) -> str:
    """OpenDSS node suffix of a phase string, e.g. ``"bc"`` -> ``".2.3"``."""
    return "".join(f".{_NODE[p]}" for p in phases)


def _lower_triangle(phases: str, upper: pd.Series) -> str:
    """A symmetric matrix in OpenDSS's lower-triangle syntax, ``a | b c | ...``.

    ``upper`` is indexed by ``(phase_i, phase_j)`` with ``phase_i <= phase_j``,
    as in ``linecodes.csv``; ``phases`` is sorted, so entry (i, j) of the
    lower triangle is ``upper[(phases[j], phases[i])]``.
    """
    return " | ".join(
        " ".join(f"{upper[(phases[j], phases[i])]:.10g}" for j in range(i + 1))
        for i in range(len(phases))
    )


def _bus_voltage_levels(
    lines: pd.DataFrame, transformers: pd.DataFrame, regulators: pd.DataFrame
) -> dict[str, float]:
    """Line-to-line base voltage of every bus, in kV.

    Transformer terminals take their winding's rating; every other bus is on
    the 4.16 kV feeder (lines and regulators do not change voltage level).
    """
    feeder_kv = VOLTAGE_BASES_KV[1]
    bus_kv = {
        bus: feeder_kv
        for bus in pd.concat(
            [lines["from_bus"], lines["to_bus"], regulators["from_bus"], regulators["to_bus"]]
        )
    }
    for tx in transformers.itertuples(index=False):
        bus_kv[tx.from_bus] = float(tx.vn_hv_kv)
        bus_kv[tx.to_bus] = float(tx.vn_lv_kv)
    return bus_kv


def _z_base_ohm(vn_kv: float) -> float:
    """Per-phase impedance base of a bus (see the module docstring)."""
    return (vn_kv / math.sqrt(3.0)) ** 2 / BASE_MVA


def _branch_table(
    lines: pd.DataFrame,
    zabc: pd.DataFrame,
    transformers: pd.DataFrame,
    regulators: pd.DataFrame,
    bus_kv: dict[str, float],
) -> pd.DataFrame:
    """One row per branch with its positive-sequence-like per-unit impedance."""
    columns = ["r_ohm_per_mile", "x_ohm_per_mile", "b_us_per_mile"]
    rows = []
    for line in lines.itertuples(index=False):
        z_base = _z_base_ohm(bus_kv[line.from_bus])
        r_pu = x_pu = b_pu = 0.0  # a closed switch
        if line.kind == "line":
            matrix = zabc[zabc["branch"] == line.branch]
            diagonal = matrix["phase_i"] == matrix["phase_j"]
            z_self = matrix.loc[diagonal, columns].mean()
            # z_s - z_m: the positive-sequence impedance of the transposed
            # equivalent; a single-phase line has no mutual term.
            z_mutual = matrix.loc[~diagonal, columns].mean() if (~diagonal).any() else 0.0
            r_ohm, x_ohm, b_us = (z_self - z_mutual) * line.length_ft / _FT_PER_MILE
            r_pu, x_pu, b_pu = r_ohm / z_base, x_ohm / z_base, b_us * 1e-6 * z_base
        rows.append(
            {
                "branch": line.branch,
                "from_bus": line.from_bus,
                "to_bus": line.to_bus,
                "phases": line.phases,
                "kind": line.kind,
                "config": line.config,
                "length_ft": float(line.length_ft),
                "z_base_ohm": z_base,
                "r_pu": r_pu,
                "x_pu": x_pu,
                "b_pu": b_pu,
            }
        )
    for tx in transformers.itertuples(index=False):
        # Percent impedance is on the bank's rating, s_kva / 3 per phase.
        to_system = BASE_MVA / (tx.s_kva / 1e3 / 3.0)
        rows.append(
            {
                "branch": tx.branch,
                "from_bus": tx.from_bus,
                "to_bus": tx.to_bus,
                "phases": "abc",
                "kind": "transformer",
                "config": tx.branch,
                "length_ft": 0.0,
                "z_base_ohm": _z_base_ohm(bus_kv[tx.from_bus]),
                "r_pu": tx.r_pct / 100.0 * to_system,
                "x_pu": tx.x_pct / 100.0 * to_system,
                "b_pu": 0.0,
            }
        )
    for (name, from_bus, to_bus), reg in regulators.groupby(
        ["branch", "from_bus", "to_bus"], sort=False
    ):
        # The published solution treats the regulator as an ideal tap changer.
        rows.append(
            {
                "branch": name,
                "from_bus": from_bus,
                "to_bus": to_bus,
                "phases": "".join(sorted(reg["phase"])),
                "kind": "regulator",
                "config": name,
                "length_ft": 0.0,
                "z_base_ohm": _z_base_ohm(bus_kv[from_bus]),
                "r_pu": 0.0,
                "x_pu": 0.0,
                "b_pu": 0.0,
            }
        )
    return pd.DataFrame(rows)


def _feeder_order(branches: pd.DataFrame, slack_bus: str) -> pd.DataFrame:
    """Branches depth-first from the slack, each parent before its children.

    The feeder is radial and every branch in the data points away from the
    source, so builders can walk the table top to bottom; depth-first keeps
    each lateral together (632, 645, 646, 633, 634, 670, 671, ...).
    """
    order: list[int] = []

    def visit(bus: str) -> None:
        for index, to_bus in branches.loc[branches["from_bus"] == bus, "to_bus"].items():
            if index in order:
                raise ValueError(f"IEEE 13-node data: the feeder is not radial at {to_bus}")
            order.append(index)
            visit(to_bus)

    visit(slack_bus)
    missing = sorted(set(branches.index) - set(order))
    if missing:
        names = list(branches.loc[missing, "branch"])
        raise ValueError(f"IEEE 13-node data: branches not reachable from {slack_bus}: {names}")
    return branches.loc[order].reset_index(drop=True)


def _phase_loads_kw(loads: pd.DataFrame) -> pd.DataFrame:
    """Nominal complex load per bus phase, in kW and kvar.

    A delta load between phases x and y draws S / sqrt(3) at -30 degrees
    from x and at +30 degrees from y when the voltages are balanced
    (S_x = V_x / V_xy * S); the two shares add up to S.
    """
    rows = []
    for load in loads.itertuples(index=False):
        s_kva = complex(load.p_kw, load.q_kvar)
        if load.connection == "delta":
            first, second = load.phases
            for phase, angle_deg in ((first, -30.0), (second, 30.0)):
                share = s_kva / math.sqrt(3.0) * cmath.rect(1.0, math.radians(angle_deg))
                rows.append((load.bus, phase, share.real, share.imag))
        else:
            rows.append((load.bus, load.phases, s_kva.real, s_kva.imag))
    per_phase = pd.DataFrame(rows, columns=["bus", "phase", "p_kw", "q_kvar"])
    return per_phase.groupby(["bus", "phase"], as_index=False).sum()


def _bus_table(
    branches: pd.DataFrame,
    loads: pd.DataFrame,
    capacitors: pd.DataFrame,
    bus_kv: dict[str, float],
    slack_bus: str,
) -> pd.DataFrame:
    """One row per bus phase, the phases each bus's branches connect.

    ``branches`` is in feeder order (see :func:`_feeder_order`), so listing
    the slack and then each branch's buses puts the buses in that order too.
    """
    phases: dict[str, set[str]] = {slack_bus: set()}
    for branch in branches.itertuples(index=False):
        for bus in (branch.from_bus, branch.to_bus):
            phases.setdefault(bus, set()).update(branch.phases)
    rows = [(bus, phase) for bus in phases for phase in sorted(phases[bus])]
    buses = pd.DataFrame(rows, columns=["bus", "phase"])
    buses.insert(1, "name", buses["bus"])
    buses["vn_kv"] = buses["bus"].map(bus_kv)
    per_phase = _phase_loads_kw(loads)
    buses = buses.merge(per_phase, on=["bus", "phase"], how="left", validate="one_to_one")
    # A capacitor's output scales with voltage squared; its 2.4 kV rating is
    # 0.07 % below the 4.16 kV feeder's line-to-neutral base.
    cap_kv = capacitors["bus"].map(bus_kv) / math.sqrt(3.0)
    at_base = capacitors.assign(
        q_cap_kvar=capacitors["q_kvar"] * (cap_kv / capacitors["v_rated_kv"]) ** 2
    )
    buses = buses.merge(
        at_base[["bus", "phase", "q_cap_kvar"]],
        on=["bus", "phase"],
        how="left",
        validate="one_to_one",
    )
    kw_per_pu = BASE_MVA * 1e3
    buses["p_load_pu"] = buses.pop("p_kw").fillna(0.0) / kw_per_pu
    buses["q_load_pu"] = buses.pop("q_kvar").fillna(0.0) / kw_per_pu
    buses["q_cap_pu"] = buses.pop("q_cap_kvar").fillna(0.0) / kw_per_pu
    buses["vmin_pu"] = VMIN_PU
    buses["vmax_pu"] = VMAX_PU
    buses["is_slack"] = buses["bus"] == slack_bus
    return buses
