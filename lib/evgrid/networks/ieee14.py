"""IEEE 14-bus transmission test system, standard and as modified by Villanueva-Machado et al."""

from __future__ import annotations

import pandapower as pp
import pandapower.networks as pn

from evgrid.core.config import check_voltage_limits
from evgrid.networks._pandapower import tables_from_pandapower
from evgrid.networks._tables import NetworkData

SOURCE_IEEE14 = (
    "IEEE 14-bus test case (University of Washington Power Systems Test Case Archive, "
    "IEEE common data format, 1962 AEP system), as shipped by pandapower.networks.case14 "
    "with the MATPOWER case14 generator costs (optimum 8081.53 $/h)."
)
SOURCE_VILLANUEVA2025 = (
    "C. W. Villanueva-Machado, J. E. Luyo, A. Rios-Villacorta, 'Operative analysis of "
    "controlled charging management for electric vehicles: centralized and decentralized "
    "coordination', Ingenius 34:43-60, 2025, doi:10.17163/ings.n34.2025.04; the authors' "
    "dataset file ieee14cdfv2.txt (GitHub 'Paper-Operative-Analysis-of-EVCCM-C-D-"
    "coordination-', 2024, the paper's ref. [31]): bus 14 carries 11.0 MW of generation "
    "with Qmin = Qmax = 0 and no voltage set-point."
)

#: Generation the Villanueva-Machado et al. dataset places at bus 14 (MW), read from
#: the figure in its ieee14cdfv2.txt (bus data, generation MW column).
VILLANUEVA_BUS14_GEN_MW = 11.0

VARIANTS = ("standard", "villanueva2025")


def load_ieee14(
    *, variant: str = "standard", vmin_pu: float = 0.94, vmax_pu: float = 1.06
) -> NetworkData:
    """Load the IEEE 14-bus system.

    Parameters
    ----------
    variant : {"standard", "villanueva2025"}
        ``"standard"`` is MATPOWER's case14. ``"villanueva2025"`` adds the
        11 MW generator that Villanueva-Machado et al. (2025) place at bus 14.
        Their data file gives it Qmin = Qmax = 0 and no voltage set-point, so it
        is a fixed 11 MW, 0 Mvar injection (a pandapower static generator, not
        dispatched by the OPF); nothing else in their file differs from the
        standard case.
    vmin_pu, vmax_pu : float
        Voltage limits for the bus table (MATPOWER case14 uses 0.94-1.06).

    Returns
    -------
    NetworkData
        Per unit on the 100 MVA base. Bus labels ``name`` are the IEEE
        numbers 1-14; the ``bus`` index is 0-based.

    Raises
    ------
    ValueError
        If ``variant`` is unknown or a limit is out of range.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r} is not known: allowed {', '.join(VARIANTS)}")
    check_voltage_limits(vmin_pu, vmax_pu)
    net = pn.case14()
    net.bus["name"] = [str(i + 1) for i in net.bus.index]
    source = SOURCE_IEEE14
    if variant == "villanueva2025":
        pp.create_sgen(
            net,
            bus=13,
            p_mw=VILLANUEVA_BUS14_GEN_MW,
            q_mvar=0.0,
            name="bus14_gen_villanueva2025",
            controllable=False,
        )
        source = f"{SOURCE_IEEE14} Modified as in {SOURCE_VILLANUEVA2025}"
    buses, branches = tables_from_pandapower(net, vmin_pu=vmin_pu, vmax_pu=vmax_pu)
    return NetworkData(
        name=f"ieee14_{variant}" if variant != "standard" else "ieee14",
        net=net,
        buses=buses,
        branches=branches,
        base_mva=float(net.sn_mva),
        source=source,
        backend="pandapower",
    )


def load_ieee14_villanueva() -> NetworkData:
    """The IEEE 14-bus variant of Villanueva-Machado et al. (2025); see :func:`load_ieee14`."""
    return load_ieee14(variant="villanueva2025")
