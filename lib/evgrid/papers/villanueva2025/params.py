"""The ``villanueva2025`` section of ``params.yaml``, validated: the Monte Carlo, the DEVCM and its runs.

Villanueva-Machado, Luyo & Ríos-Villacorta (2025). The Monte Carlo's options are
:class:`~evgrid.papers.villanueva2025.mcs.McsOptions`, the per-bus model's
:class:`~evgrid.papers.villanueva2025.devcm.DevcmOptions` (battery data of Sec. 2.3.1 and the
undisclosed settings found in the authors' inputs, each with its default), and how the runs
are solved is :class:`RunOptions`. Registered by name in :data:`SECTIONS`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from evgrid.core.config import Section
from evgrid.papers.villanueva2025.devcm import DevcmOptions
from evgrid.papers.villanueva2025.mcs import McsOptions

__all__ = ["RunOptions", "SECTIONS", "Villanueva2025Params"]


class RunOptions(Section):
    """How every per-bus DEVCM is solved (HiGHS, one thread per run, runs in parallel through Dask)."""

    pricings: list[Literal["corrected", "authors"]] = Field(
        ["corrected", "authors"], min_length=1, description="Pricings the authors' runs are re-solved in")
    time_limit_s: float = Field(120.0, gt=0, le=86_400, description="Per-run limit, corrected model (s)")
    authors_time_limit_s: float = Field(
        60.0, gt=0, le=86_400, description="Per-run limit, the authors' pricing (s; its optimum is a money pump)")
    mip_gap: float = Field(0.003, ge=0, le=1, description="Each MILP's own relative stopping gap")
    raise_infeasible_caps: bool = Field(
        True, description="A capped run that its hard caps make infeasible is solved again under caps raised by the "
        "least excess that makes it feasible (devcm.least_cap_excess; the authors gave their one such run, capped "
        "bus-12 max, a penalised cap slack); False: reported infeasible")


class Villanueva2025Params(Section):
    """Section ``villanueva2025``: notebook 04 (decentralized part) and its DVC stages."""

    mcs: McsOptions = Field(default_factory=McsOptions, description="The Monte Carlo of trips")
    devcm: DevcmOptions = Field(default_factory=DevcmOptions, description="The per-bus MILP")
    authors_runs: RunOptions = Field(default_factory=RunOptions, description="How the runs are solved")
    results_dir: str = Field("results/villanueva2025", description="Where result files go")
    figures_dir: str = Field("figures", description="Where figures go")


SECTIONS = {"villanueva2025": Villanueva2025Params}
