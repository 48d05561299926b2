"""Vectorised Monte Carlo of EV trips (Villanueva-Machado et al. 2025, Sec. 2.2, Eqs. 1-3).

Each scenario (2,000, 2,500 or 3,750 EVs) draws ``S`` samples (200, 120, 80) of ``V = N_EV/10``
representative vehicles, each standing for 7 or 13 EVs (half each; with an odd ``V`` one vehicle
stands for 10, as in the authors' Sc3), so the weights sum to ``N_EV`` exactly: 100,000
vehicle-days, the paper's "1,000,000 micro-stochastic evaluations" counted in weighted EVs.
A vehicle drives from its home bus (``from_bus``, "Dep." in Table 1) to its work bus
(``to_bus``, "Arr.") and back; the road energy ``R`` (kWh per half hour, battery side, i.e.
already divided by eta_dsg) and the on-road flag ``X`` follow the pseudo-code of Sec. 2.2.1
(with its final-segment formula corrected to the remaining distance). Eq. (3)'s
``GChR_s = sum_v w_v sum_t R`` (MWh) picks the minimum and maximum samples (how the weights
go to the vehicles: see "Weights by energy rank" below).

Half-hour slot ``k = 1..48`` covers ``[(k-1)/2, k/2)`` h; times are drawn in the authors' "slot
codes" (code 17 = 08:00, codes 49-56 = 00:00-04:00 of the next day) and rounded.
Arrays are 0-based in the slot axis (``road_kwh[s, v, k - 1]``); ``dep_slot``/``arr_slot`` are 1-based.

Two modes (:class:`McsOptions.mode`), each choice traced to the reference notes
(``villanueva2025_notes.md`` §1.2, §8):

``"authors"``: what the authors' MATLAB (``MCSopt.m``, ``mksample.m``,
``traveldistancecharact.m``) did, checked against their own samples (``mcs_samples``):

* **Distance** = 0.25 x line length, deterministic per bus pair: ``pruebav11`` clips the
  factor N(1, 0.125) to [-0.25, 0.25]. Every distance in the authors' files is 0.25 x length.
* **Buses**: from-bus uniform over the 11 load buses; to-bus uniform over the load buses joined
  to it by a branch of non-zero length (13 pairs, 26 directed).
* **Times**: the normals fitted to the workbook's histograms (:func:`.dataset.fit_time_normals`):
  departure N(17.07, 2.83), arrival N(40.80, 5.28) slot codes, not the paper's N(08:02, 01:11)
  and N(22:04, 04:18). Clip, round (0 -> 1), wrap arrivals above 48, redraw both while
  ``|ta - td| < 3``.
  *Clip bounds*: the public ``mksample.m`` clips departures to [0, 24] and arrivals to [25, 56].
  The authors' eight chosen samples (2,400 vehicles) show departures clipped at **20** and
  arrivals at **30** instead: 442 departure legs start exactly at slot 20 (a clip at 20 predicts
  468, no clip 197) and none later; 66 return legs end at slot 30 (a clip at 30 predicts 61)
  and none end in 9-29 (N(40.8, 5.28) puts 1.6 % = 39 below 29.5). So the default clip bounds of
  this mode are (0, 20) and (30, 56) (``dep_clip_slots``/``arr_clip_slots`` give the others).
  *No swap*: ``mksample.m`` swaps td and ta when ta < td, but the samples never do it: in every
  vehicle with a post-midnight arrival the forward-built leg (remainder in its last slot) is the
  morning one, e.g. Sc1-min vehicle 141 drives 6 and 15-16 with the remainder in 16.
  ``swap_if_arrival_first=True`` restores the swap.
* **Speeds**: one speed per slot per sample, shared by all vehicles, ``clip(N(mu, sigma), 10,
  100)`` km/h with HS (50, 20), MS (35, 15), LS (20, 10) (``stocdata0.m``; the workbook lists LS
  25). The class schedule, written for quarter hours, is applied on the half-hour index (the
  authors' bug): slots 1-29 HS, 30-33 MS, 34-43 LS, 44-48 MS.
* **Legs**: the departure leg runs forward from td, the return leg backwards from ta (ta is the
  last slot on the road); each full slot covers ``speed x 0.5 h`` and the last one the remainder.
  Where the legs overlap (``legs_overlap``; none in the 100,000 vehicle-days of the defaults,
  as the clip bounds keep td <= 20 < 30 <= ta, or ta wrapped well before td) the authors' code
  lets the return leg overwrite the shared slots and then zeroes the departure leg's slots
  before the return leg (or, if the departure leg runs past the arrival, those after it):
  copied as written, so such a vehicle loses the energy of its departure leg.
* **Weights by energy rank**: the weights are not in random order. In all eight of the authors'
  chosen samples the weight 13 goes to exactly the half of the vehicles with the least daily
  energy (sum_t R) in the minimum sample, and to the half with the most in the maximum sample
  (weight 7 to the other half; the median vehicle of Sc3's 375 gets 10). So each sample is read
  twice, ``GChR_min`` (larger weights on the low-energy half) and ``GChR_max``; s_min = argmin
  GChR_min, s_max = argmax GChR_max. This reproduces the authors' extremes (Sc1 14.59 and
  20.47 MWh; this module: about 14.6-14.7 and 20.5-20.6 over seeds), which random weights miss
  by far (about 16.3 and 19.0). Whether the authors ranked before or after picking the samples
  cannot be told from the two samples kept; ranking every sample is the reading used.

``"as_described"``: the paper's stated distributions and the workbook's intent:

* **Times**: N(08:02:05, 01:11:09) and N(22:04:22, 04:18:11) (Sec. 2.3; the workbook's sheet
  ``PDFs``), in slot codes ``code = 2 h + 1`` (so 08:02 -> 17.07, consistent with the authors'
  fit of mean 17.07 = 08:02): departure (17.07, 2.37), arrival (45.15, 8.61). Out-of-window
  draws are **redrawn** (truncation) to the public code's windows [0, 24] and [25, 56], not
  clipped: with sigma = 8.6 slots clipping would pile 11.5 % of arrivals at 04:00. Redraw while
  ``|ta - td| < 3``; no swap (Eq. 1 treats post-midnight arrivals as such).
* **Distance** = line length x f, f ~ N(1, 0.125) per vehicle, clipped to [0.5, 1.5] (+-4
  sigma: keeps it positive, never binds in practice). The code's intended ``tdf``. Trips are
  four times the authors' (16-133 km one way), and so is GChR (about 65-77 MWh in Sc1).
* **Speeds**: the workbook's quarter-hour "Daily Traffic Speed" schedule (LS 08:30-10:45,
  13:15-13:30 and 16:15-20:00; :func:`.dataset.speed_schedule_quarter_hour`), one clipped
  normal draw per quarter hour and sample with the workbook's classes (LS 25 km/h); a half-hour
  slot covers the distance of its two quarter hours, i.e. its speed is their mean.
* **Legs** as above; where the return leg, built backwards from ta, would overlap the departure
  leg, the vehicle turns round at once: the return leg starts in the slot after the departure
  leg ends (``arr_slot`` then is that leg's last slot). No energy is lost.
* **Weights** in random order (the paper says nothing of representative vehicles; a random
  order keeps each sample an unbiased picture of an N_EV fleet), so GChR_min = GChR_max.

Plug-in flags (:func:`rt_redraws`, Eqs. 1-2 as the authors' ``evav`` implements them): a vehicle
is plugged in at its from-bus (home) from the slot after its return leg ends to the slot before
its departure leg starts (cyclic), and at its to-bus (work) from the slot after the departure
leg ends to the slot before the return leg starts; never while on the road. The authors' data
(``vehicle_time_arrays``) have 680 rows that are both on the road and plugged in: they are all
in the 187 (run, vehicle, n) cases of a home-bus vehicle whose return leg spans midnight (on the
road in slots 48 and 1), for which the authors' code marks the vehicle plugged in at home in
all 48 slots and sets no arrival/departure flag. That is a bug; it is not copied here.
Arrival flag = the first plugged-in slot after arriving at a bus, departure flag = the last
plugged-in slot before leaving it (the authors' ``arrev``/``depev``). One set of re-draws serves
every bus; the authors drew one set per bus, so that a vehicle seen by its home and its work
aggregator had different times in the two runs (their README, quirk 3): not copied.

Random numbers: ``numpy.random.default_rng`` on :class:`numpy.random.SeedSequence` children:
scenario ``i`` uses child ``i`` of ``SeedSequence(seed)``, split again per quantity (buses,
distance factor, consumption, times, speeds, weights), so a scenario's draw does not depend on
which other scenarios are drawn, and both modes share the buses and the consumption draws.
Codes are rounded half up (MATLAB's ``round``).
Nothing loops over vehicles or samples: arrays are (S, V) and (S, V, 48); the legs are built
slot by slot over the vehicles still on the road.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from evgrid.papers.villanueva2025 import dataset

__all__ = [
    "N_SLOTS",
    "McsOptions",
    "McsScenario",
    "RtRedraws",
    "arrays_from_sample_trips",
    "bus_counts",
    "run_mcs",
    "rt_redraws",
    "simulate_scenario",
    "summary_statistics",
    "vehicle_statistics",
]

#: Half-hour slots of the day.
N_SLOTS = 48
# paper's stated times (Sec. 2.3; workbook sheet PDFs, rows 59-60), hours
_PAPER_DEP_H = (8 + 2 / 60 + 5.46 / 3600, 1 + 11 / 60 + 9.432 / 3600)
_PAPER_ARR_H = (22 + 4 / 60 + 22.08 / 3600, 4 + 18 / 60 + 11.407 / 3600)

Pair = tuple[float, float]


def _clock_to_code(mean_h: float, sd_h: float) -> Pair:
    """(mean, sd) in hours -> slot codes: slot code ``k`` starts at ``(k - 1)/2`` h."""
    return 2.0 * mean_h + 1.0, 2.0 * sd_h


class McsOptions(BaseModel):
    """Options of the Monte Carlo; defaults are the paper's (Sec. 2.2) and the authors' code.

    Fields left ``None`` take the value of ``mode`` (see the module docstring); :meth:`resolved`
    gives the values in use.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["authors", "as_described"] = Field(
        "authors", description="'authors': what the authors' code did; 'as_described': the paper's distributions"
    )
    n_evs: tuple[int, int, int] = Field((2000, 2500, 3750), description="EVs of scenarios 1, 2 and 3 (Sec. 2.2)")
    n_samples: tuple[int, int, int] = Field((200, 120, 80), description="Monte Carlo samples of scenarios 1, 2, 3")
    vehicles_per_sample_fraction: float = Field(
        0.1, gt=0, le=1, description="Representative vehicles per sample as a fraction of the EVs (V = N_EV / 10)"
    )
    weights_evs: tuple[int, int] = Field(
        (7, 13), description="EVs per representative vehicle, half of the vehicles each (the authors' EVCh)"
    )
    consumption_kwh_per_km: Pair = Field(
        (0.19, 0.25), description="Specific consumption SC_v ~ U[low, high] kWh/km (Sec. 2.2, Tesla Model 3)"
    )
    eta_dsg: float = Field(0.9, gt=0, le=1, description="Discharging efficiency: R = km x SC / eta_dsg")
    dt_h: float = Field(0.5, gt=0, le=1, description="Slot length (h)")
    n_slots: int = Field(48, ge=48, le=48, description="Slots per day (the workbook's codes are half hours)")
    speed_hs_kmh: Pair = Field((50.0, 20.0), description="High-speed class (mean, sd) km/h")
    speed_ms_kmh: Pair = Field((35.0, 15.0), description="Medium-speed class (mean, sd) km/h")
    speed_ls_kmh: Pair | None = Field(
        None, description="Low-speed class (mean, sd) km/h; None: (20, 10) authors, (25, 10) as_described"
    )
    speed_clip_kmh: Pair = Field((10.0, 100.0), description="Speeds are clipped to [low, high] km/h")
    dep_normal_slots: Pair | None = Field(
        None, description="Departure time N(mean, sd) in slot codes; None: histogram fit (authors) or paper"
    )
    arr_normal_slots: Pair | None = Field(
        None, description="Arrival time N(mean, sd) in slot codes; None: histogram fit (authors) or paper"
    )
    dep_clip_slots: Pair | None = Field(
        None,
        description="Window of departure codes, draws outside are clipped (authors) or redrawn (as_described); "
        "None: (0, 20) authors (their samples), (0, 24) as_described (the public mksample.m)",
    )
    arr_clip_slots: Pair | None = Field(
        None,
        description="Window of arrival codes (> 48 wraps to the next morning), clipped or redrawn as above; "
        "None: (30, 56) authors (their samples), (25, 56) as_described (the public mksample.m)",
    )
    weighting: Literal["energy_rank", "random"] | None = Field(
        None,
        description="How the weights go to the vehicles; None: 'energy_rank' (authors: the larger weights to the "
        "lower-energy half for the minimum, to the higher-energy half for the maximum) or 'random' (as_described)",
    )
    min_gap_slots: int = Field(3, ge=1, le=24, description="Redraw both times while |ta - td| < this")
    swap_if_arrival_first: bool = Field(
        False, description="Swap td and ta when ta < td, as the public mksample.m does (the samples do not)"
    )
    authors_distance_factor: float = Field(
        0.25, gt=0, le=2, description="Trip = factor x line length in mode 'authors' (the clipped tdf)"
    )
    distance_factor_normal: Pair = Field(
        (1.0, 0.125), description="Trip factor N(mean, sd) x line length in mode 'as_described'"
    )
    distance_factor_clip: Pair = Field(
        (0.5, 1.5), description="The as_described trip factor is clipped to [low, high]"
    )
    n_rt_scenarios: int = Field(10, ge=1, le=1000, description="Real-time re-draws n per chosen sample (Sec. 2.3)")
    seed: int = Field(2025, ge=0, le=2**63 - 1, description="Root seed of numpy's SeedSequence")

    @model_validator(mode="after")
    def _consistent(self) -> McsOptions:
        def pair(name: str, lo: float, hi: float, *, strict: bool = True) -> None:
            value = getattr(self, name)
            if value is None:
                return
            a, b = value
            if not (lo <= a and b <= hi and (a < b if strict else a <= b)):
                raise ValueError(f"{name} = {list(value)}: need {lo} <= low < high <= {hi}")

        def normal(name: str, lo: float, hi: float) -> None:
            value = getattr(self, name)
            if value is None:
                return
            mean, sd = value
            if not (lo <= mean <= hi and 0 < sd <= hi - lo):
                raise ValueError(f"{name} = {list(value)}: need {lo} <= mean <= {hi} and 0 < sd <= {hi - lo}")

        pair("consumption_kwh_per_km", 0.01, 2.0)
        pair("speed_clip_kmh", 1.0, 300.0)
        pair("dep_clip_slots", 0.0, 48.0)
        pair("arr_clip_slots", 1.0, 96.0)
        pair("distance_factor_clip", 0.01, 10.0)
        for name in ("speed_hs_kmh", "speed_ms_kmh", "speed_ls_kmh"):
            normal(name, 1.0, 300.0)
        normal("dep_normal_slots", 0.0, 48.0)
        normal("arr_normal_slots", 1.0, 96.0)
        normal("distance_factor_normal", 0.01, 10.0)
        if abs(self.dt_h * self.n_slots - 24.0) > 1e-9:
            raise ValueError(f"dt_h = {self.dt_h} x n_slots = {self.n_slots} must be 24 h (allowed: dt_h = 0.5)")
        for i, (n_evs, n_samples) in enumerate(zip(self.n_evs, self.n_samples, strict=True), start=1):
            if not (1 <= n_evs <= 1_000_000 and 1 <= n_samples <= 100_000):
                raise ValueError(
                    f"scenario {i}: n_evs = {n_evs}, n_samples = {n_samples}; "
                    "allowed 1..1,000,000 EVs and 1..100,000 samples"
                )
            vehicles = n_evs * self.vehicles_per_sample_fraction
            if abs(vehicles - round(vehicles)) > 1e-9 or round(vehicles) < 1:
                raise ValueError(
                    f"n_evs = {n_evs} x vehicles_per_sample_fraction = {self.vehicles_per_sample_fraction} "
                    f"= {vehicles:g} representative vehicles: must be a whole number >= 1"
                )
        w1, w2 = self.weights_evs
        if not (1 <= w1 <= w2 <= 10_000):
            raise ValueError(f"weights_evs = {list(self.weights_evs)}: need 1 <= first <= second <= 10000")
        if abs((w1 + w2) / 2 * self.vehicles_per_sample_fraction - 1) > 1e-9:
            raise ValueError(
                f"weights_evs = {list(self.weights_evs)} average {(w1 + w2) / 2:g} EVs, but "
                f"vehicles_per_sample_fraction = {self.vehicles_per_sample_fraction} needs "
                f"{1 / self.vehicles_per_sample_fraction:g} for the weights to sum to n_evs"
            )
        odd = [n for n in self.n_evs if round(n * self.vehicles_per_sample_fraction) % 2]
        if odd and (w1 + w2) % 2:
            raise ValueError(
                f"weights_evs = {list(self.weights_evs)}: n_evs {odd} give an odd vehicle count, whose middle "
                "vehicle needs the whole weight (w1 + w2) / 2; choose weights with an even sum"
            )
        return self

    def resolved(self) -> dict[str, object]:
        """The values in use: every ``None`` field replaced by its ``mode``'s value, plus the schedule.

        Keys: the ``None``-able fields, ``"schedule"`` (48 or 96 class labels), ``"quarter_hours"``
        (whether the schedule is per quarter hour), ``"clip_times"`` (clip, else redraw).
        """
        authors = self.mode == "authors"
        fitted = dataset.fit_time_normals() if authors else None
        quarter = dataset.speed_schedule_quarter_hour()
        return {
            "speed_ls_kmh": self.speed_ls_kmh or ((20.0, 10.0) if authors else dataset.speed_classes()["LS"]),
            "dep_normal_slots": self.dep_normal_slots
            or (fitted["departure"] if authors else _clock_to_code(*_PAPER_DEP_H)),
            "arr_normal_slots": self.arr_normal_slots
            or (fitted["arrival"] if authors else _clock_to_code(*_PAPER_ARR_H)),
            "dep_clip_slots": self.dep_clip_slots or ((0.0, 20.0) if authors else (0.0, 24.0)),
            "arr_clip_slots": self.arr_clip_slots or ((30.0, 56.0) if authors else (25.0, 56.0)),
            # the authors' code reads the quarter-hour schedule with the half-hour index t = 1..48
            "schedule": tuple(quarter[1:49]) if authors else tuple(quarter),
            "quarter_hours": not authors,
            "clip_times": authors,
            "weighting": self.weighting or ("energy_rank" if authors else "random"),
        }


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class McsScenario:
    """All samples of one scenario. Index order ``s`` sample, ``v`` vehicle, ``t`` slot (0-based).

    Attributes
    ----------
    scenario : int
        1, 2 or 3.
    n_evs : int
        EVs of the scenario (= the sum of each sample's weights).
    options : McsOptions
        The options it was drawn with.
    from_bus, to_bus : (S, V) int
        Home (departure, "Dep.") and work (arrival, "Arr.") load bus.
    trip_km : (S, V) float
        One-way distance (km).
    consumption_kwh_per_km : (S, V) float
        SC_v (kWh/km at the wheels; R divides by eta_dsg).
    weight_min_evs, weight_max_evs : (S, V) int
        EVs the vehicle stands for (7, 13, or 10 for the middle vehicle of an odd count) when the
        sample is read as a candidate minimum or maximum. ``energy_rank`` weighting: the larger
        weight goes to the half of the vehicles with the least (for the minimum) or the most (for
        the maximum) daily energy; ``random`` weighting: one random order, both arrays equal.
    dep_slot, arr_slot : (S, V) int
        1-based first slot of the departure leg (td) and last slot of the return leg (ta).
    speed_kmh : (S, 48) float
        Speed of each slot (shared by the sample's vehicles; as_described: mean of two quarter hours).
    road_kwh : (S, V, 48) float
        R: battery-side energy the trip takes in each slot (kWh).
    on_road : (S, V, 48) bool
        X: on the road.
    legs_overlap : (S, V) bool
        The two legs did not fit between td and ta and were resolved by the mode's rule.
    gchr_min_mwh, gchr_max_mwh : (S,) float
        GChR_s = sum_v w_v sum_t R (MWh), Eq. (3) with the weights, under ``weight_min_evs`` and
        ``weight_max_evs``.
    sample_min, sample_max : int
        0-based index of the sample with the least ``gchr_min_mwh`` and the most ``gchr_max_mwh``
        (the authors number samples from 1).
    """

    scenario: int
    n_evs: int
    options: McsOptions
    from_bus: np.ndarray
    to_bus: np.ndarray
    trip_km: np.ndarray
    consumption_kwh_per_km: np.ndarray
    weight_min_evs: np.ndarray
    weight_max_evs: np.ndarray
    dep_slot: np.ndarray
    arr_slot: np.ndarray
    speed_kmh: np.ndarray
    road_kwh: np.ndarray
    on_road: np.ndarray
    legs_overlap: np.ndarray
    gchr_min_mwh: np.ndarray
    gchr_max_mwh: np.ndarray
    sample_min: int
    sample_max: int

    @property
    def n_samples(self) -> int:
        """Samples S."""
        return int(self.from_bus.shape[0])

    @property
    def n_vehicles(self) -> int:
        """Representative vehicles per sample V."""
        return int(self.from_bus.shape[1])

    def chosen(self, sample: Literal["min", "max"] | int) -> tuple[int, np.ndarray]:
        """(0-based sample index, weights (V,)) of ``"min"``, ``"max"`` or a sample index.

        An index other than the chosen ones is only accepted where its two weightings agree
        (``random`` weighting), since otherwise it is not clear which to use.
        """
        if sample == "min":
            return self.sample_min, self.weight_min_evs[self.sample_min]
        if sample == "max":
            return self.sample_max, self.weight_max_evs[self.sample_max]
        if isinstance(sample, str) or not 0 <= int(sample) < self.n_samples:
            raise ValueError(f"sample = {sample!r}: 'min', 'max' or an index 0..{self.n_samples - 1}")
        index = int(sample)
        if index == self.sample_min:
            return index, self.weight_min_evs[index]
        if index == self.sample_max:
            return index, self.weight_max_evs[index]
        if not np.array_equal(self.weight_min_evs[index], self.weight_max_evs[index]):
            raise ValueError(
                f"sample {index} is neither the minimum ({self.sample_min}) nor the maximum ({self.sample_max}) "
                "and its weights depend on that role (energy_rank weighting): pass 'min' or 'max'"
            )
        return index, self.weight_min_evs[index]


@dataclass(frozen=True, eq=False)
class RtRedraws:
    """The real-time re-draws n of one chosen sample (Sec. 2.3): same vehicles, new times.

    Attributes
    ----------
    scenario, sample_index : int
        Scenario (1-3) and 0-based sample index it was made from.
    from_bus, to_bus, trip_km, weight_evs : (V,)
        The sample's vehicles (unchanged across n).
    consumption_kwh_per_km : (N, V) float
        Re-drawn per n, as in the authors' ``in.gdx`` (their README, quirk 3).
    dep_slot, arr_slot : (N, V) int
        1-based td and ta of each re-draw.
    speed_kmh : (N, 48) float
        Slot speeds of each re-draw (re-drawn per n, as in the authors' inputs).
    road_kwh, on_road : (N, V, 48)
        R (kWh) and X.
    plugged_from, plugged_to : (N, V, 48) bool
        CS at the from-bus (home, Eq. 1) and at the to-bus (work, Eq. 2).
    arrival_from, departure_from, arrival_to, departure_to : (N, V, 48) bool
        First plugged-in slot after arriving at, and last plugged-in slot before leaving, each bus.
    legs_overlap : (N, V) bool
        As in :class:`McsScenario`.
    """

    scenario: int
    sample_index: int
    from_bus: np.ndarray
    to_bus: np.ndarray
    trip_km: np.ndarray
    weight_evs: np.ndarray
    consumption_kwh_per_km: np.ndarray
    dep_slot: np.ndarray
    arr_slot: np.ndarray
    speed_kmh: np.ndarray
    road_kwh: np.ndarray
    on_road: np.ndarray
    plugged_from: np.ndarray
    plugged_to: np.ndarray
    arrival_from: np.ndarray
    departure_from: np.ndarray
    arrival_to: np.ndarray
    departure_to: np.ndarray
    legs_overlap: np.ndarray

    def at_bus(self, bus: int) -> dict[str, np.ndarray]:
        """What the aggregator of load bus ``bus`` sees: every vehicle whose from- or to-bus it is.

        Returns ``vehicles`` (0-based indices, increasing, as the authors order a run's vehicles),
        ``weight_evs`` (V_k,), and ``plugged`` (CS_{k,t,v,n}), ``arrival``, ``departure``,
        ``on_road``, ``road_kwh`` of shape (N, V_k, 48); a vehicle whose both buses are ``bus``
        cannot occur (trips join two different buses).
        """
        home = self.from_bus == bus
        vehicles = np.flatnonzero(home | (self.to_bus == bus))
        pick = home[vehicles][None, :, None]
        return {
            "vehicles": vehicles,
            "weight_evs": self.weight_evs[vehicles],
            "plugged": np.where(pick, self.plugged_from[:, vehicles], self.plugged_to[:, vehicles]),
            "arrival": np.where(pick, self.arrival_from[:, vehicles], self.arrival_to[:, vehicles]),
            "departure": np.where(pick, self.departure_from[:, vehicles], self.departure_to[:, vehicles]),
            "on_road": self.on_road[:, vehicles],
            "road_kwh": self.road_kwh[:, vehicles],
        }


# --------------------------------------------------------------------------------------------
# drawing
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _network() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(load buses, neighbours (B, 3) padded with -1, neighbour counts (B,), line length by bus number (km))."""
    buses = np.array(dataset.load_buses())
    lines = dataset.line_lengths_km()
    size = 1 + max(max(buses), *(max(pair) for pair in lines))
    length = np.zeros((size, size))
    for (i, j), km in lines.items():
        length[i, j] = length[j, i] = km
    load = set(buses.tolist())
    lists = [[j for j in range(size) if j in load and length[b, j] > 0] for b in buses]
    if any(not nb for nb in lists):
        raise ValueError("a load bus has no load-bus neighbour through a line of non-zero length")
    width = max(len(nb) for nb in lists)
    neighbours = np.full((len(buses), width), -1)
    for k, nb in enumerate(lists):
        neighbours[k, : len(nb)] = nb
    return buses, neighbours, np.array([len(nb) for nb in lists]), length


def _draw_buses(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """From-bus uniform over the load buses, to-bus uniform over its neighbours (traveldistancecharact.m)."""
    buses, neighbours, counts, _ = _network()
    k = rng.integers(0, len(buses), size=shape)
    pick = np.floor(rng.random(shape) * counts[k]).astype(np.int64)
    return buses[k], neighbours[k, pick]


def _weight_list(n_vehicles: int, weights: tuple[int, int]) -> np.ndarray:
    """Half ``weights[1]``, the middle weight if ``n_vehicles`` is odd, half ``weights[0]`` (descending)."""
    half = n_vehicles // 2
    middle = [(weights[0] + weights[1]) // 2] * (n_vehicles % 2)
    return np.array([weights[1]] * half + middle + [weights[0]] * half, dtype=np.int64)


def _draw_weights(rng: np.random.Generator, energy_kwh: np.ndarray, rule: str, weights: tuple[int, int]):
    """(weight_min, weight_max), each (S, V), for the samples' daily energies ``energy_kwh`` (S, V).

    ``energy_rank``: the authors' samples give the larger weight to exactly the half of the
    vehicles with the least daily energy in the minimum sample and with the most in the maximum
    sample (the median vehicle gets the middle weight). ``random``: one random order per sample.
    """
    n_samples, n_vehicles = energy_kwh.shape
    base = _weight_list(n_vehicles, weights)
    if rule == "random":
        w = rng.permuted(np.tile(base, (n_samples, 1)), axis=1)
        return w, w
    order = np.argsort(energy_kwh, axis=1, kind="stable")
    w_min = np.empty((n_samples, n_vehicles), dtype=np.int64)
    w_max = np.empty_like(w_min)
    np.put_along_axis(w_min, order, np.broadcast_to(base, w_min.shape), axis=1)
    np.put_along_axis(w_max, order, np.broadcast_to(base[::-1], w_max.shape), axis=1)
    return w_min, w_max


def _round_half_up(x: np.ndarray) -> np.ndarray:
    """MATLAB's ``round`` for the non-negative codes drawn here."""
    return np.floor(x + 0.5).astype(np.int64)


def _draw_times(rng: np.random.Generator, shape: tuple[int, ...], p: dict, options: McsOptions):
    """(td, ta, dep_code_rounded, arr_code_rounded): 1-based slots, and the rounded codes before wrapping.

    Clip (authors) or redraw (as_described) out-of-window draws; redraw both while
    ``|ta - td| < min_gap_slots``; optionally swap when ta < td.
    """
    (dmu, dsd), (amu, asd) = p["dep_normal_slots"], p["arr_normal_slots"]
    (dlo, dhi), (alo, ahi) = p["dep_clip_slots"], p["arr_clip_slots"]
    td = np.zeros(shape, dtype=np.int64)
    ta = np.zeros(shape, dtype=np.int64)
    dep_code = np.zeros(shape, dtype=np.int64)
    arr_code = np.zeros(shape, dtype=np.int64)
    todo = np.ones(shape, dtype=bool)
    for _ in range(10_000):
        n = int(todo.sum())
        if n == 0:
            break
        dep = rng.normal(dmu, dsd, n)
        arr = rng.normal(amu, asd, n)
        if p["clip_times"]:
            ok = np.ones(n, dtype=bool)
            dep, arr = np.clip(dep, dlo, dhi), np.clip(arr, alo, ahi)
        else:
            ok = (dep >= dlo) & (dep <= dhi) & (arr >= alo) & (arr <= ahi)
        d_code, a_code = _round_half_up(dep), _round_half_up(arr)
        d_slot = np.maximum(d_code, 1)
        a_slot = np.where(a_code > N_SLOTS, a_code - N_SLOTS, a_code)
        ok &= np.abs(a_slot - d_slot) >= options.min_gap_slots
        where = np.flatnonzero(todo)
        td.flat[where], ta.flat[where] = d_slot, a_slot
        dep_code.flat[where], arr_code.flat[where] = d_code, a_code
        todo.flat[where] = ~ok
    else:
        raise RuntimeError("could not draw departure/arrival times within the windows: check the options")
    if options.swap_if_arrival_first:
        swap = ta < td
        td, ta = np.where(swap, ta, td), np.where(swap, td, ta)
    return td, ta, dep_code, arr_code


def _draw_speeds(rng: np.random.Generator, n_rows: int, p: dict, options: McsOptions) -> np.ndarray:
    """(n_rows, 48) slot speeds (km/h): one clipped normal per slot (or per quarter hour, averaged)."""
    params = {"HS": options.speed_hs_kmh, "MS": options.speed_ms_kmh, "LS": p["speed_ls_kmh"]}
    schedule = p["schedule"]
    mean = np.array([params[c][0] for c in schedule])
    sd = np.array([params[c][1] for c in schedule])
    speed = np.clip(rng.normal(mean, sd, size=(n_rows, len(schedule))), *options.speed_clip_kmh)
    if p["quarter_hours"]:
        speed = speed.reshape(n_rows, N_SLOTS, 2).mean(axis=2)
    return speed


def _leg(km_slot: np.ndarray, start0: np.ndarray, dist_km: np.ndarray, kwh_per_km: np.ndarray, step: int):
    """One leg of every vehicle, built slot by slot from ``start0`` (0-based) in direction ``step``.

    Each slot covers ``km_slot`` of its row until the distance is reached; the last slot gets the
    remainder (Sec. 2.2.1 with the final-segment formula read as the remaining distance).

    Returns
    -------
    R, X : (rows, V, 48)
        Energy (kWh) and on-road flag of this leg alone.
    n_slots, last0 : (rows, V) int
        Slots used and the last slot visited (0-based; for a backward leg its first slot in time).
    """
    rows, n_veh = dist_km.shape
    size = rows * n_veh
    road = np.zeros((size, N_SLOTS))
    on = np.zeros((size, N_SLOTS), dtype=bool)
    row = np.repeat(np.arange(rows), n_veh)
    t = start0.ravel().astype(np.int64).copy()
    remaining = dist_km.ravel().astype(float).copy()
    factor = kwh_per_km.ravel()
    n_slots = np.zeros(size, dtype=np.int64)
    last = t.copy()
    active = np.arange(size)
    for _ in range(N_SLOTS):
        if active.size == 0:
            break
        tt = t[active]
        km = km_slot[row[active], tt]
        rem = remaining[active]
        full = rem > km
        road[active, tt] = np.where(full, km, rem) * factor[active]
        on[active, tt] = True
        n_slots[active] += 1
        last[active] = tt
        remaining[active] = rem - km
        t[active] = (tt + step) % N_SLOTS
        active = active[full]
    if active.size:
        raise RuntimeError("a trip leg does not fit in 48 slots: check the speeds and distances")
    shape = (rows, n_veh)
    return (road.reshape(rows, n_veh, N_SLOTS), on.reshape(rows, n_veh, N_SLOTS),
            n_slots.reshape(shape), last.reshape(shape))


def _trips(km_slot, dist_km, kwh_per_km, td, ta, dep_code, arr_code, mode: str):
    """Both legs and their combination: (R, X, ta_actual, dep_end0, ret_start0, overlap)."""
    td0, ta0 = td - 1, ta - 1
    r_dep, x_dep, n_dep, dep_end0 = _leg(km_slot, td0, dist_km, kwh_per_km, +1)
    r_ret, x_ret, n_ret, ret_start0 = _leg(km_slot, ta0, dist_km, kwh_per_km, -1)
    # the return leg starts (relative to td) no later than the departure leg ends
    overlap = ((ta0 - td0) % N_SLOTS) - n_ret + 1 <= n_dep - 1
    if mode == "authors":
        # mksample.m: the return leg is written second (overwrites), then the overlap is trimmed
        road = np.where(x_ret, r_ret, r_dep)
        on = x_dep | x_ret
        depend = td + n_dep - 1  # 1-based, not wrapped (as MATLAB)
        arrini = ret_start0 + 1  # 1-based, wrapped
        depini = np.maximum(dep_code, 0)
        t1 = np.arange(1, N_SLOTS + 1)
        cond = depend > arrini
        past_arrival = cond & (depend > arr_code) & ~(arr_code < depini)
        before_return = cond & ~(depend > arr_code)
        zero = (past_arrival[..., None] & (t1 >= (arr_code + 1)[..., None]) & (t1 <= depend[..., None])) | (
            before_return[..., None] & (t1 >= depini[..., None]) & (t1 <= (arrini - 1)[..., None]))
        road = np.where(zero, 0.0, road)
        on &= ~zero
        ta_out = ta
    else:
        # turn round at once: rebuild the overlapping return legs forward from the slot after arrival at work
        if overlap.any():
            r_fwd, x_fwd, _, end_fwd = _leg(km_slot, (dep_end0 + 1) % N_SLOTS, dist_km, kwh_per_km, +1)
            o = overlap[..., None]
            r_ret, x_ret = np.where(o, r_fwd, r_ret), np.where(o, x_fwd, x_ret)
            ret_start0 = np.where(overlap, (dep_end0 + 1) % N_SLOTS, ret_start0)
            ta_out = np.where(overlap, end_fwd + 1, ta)
        else:
            ta_out = ta
        road = r_dep + r_ret
        on = x_dep | x_ret
    return road, on, ta_out, dep_end0, ret_start0, overlap


def _cyclic_between(t_after0: np.ndarray, t_before0: np.ndarray) -> np.ndarray:
    """(…, 48) mask of the slots strictly after ``t_after0`` and strictly before ``t_before0`` (cyclic)."""
    t = np.arange(N_SLOTS)
    rel = (t - t_after0[..., None]) % N_SLOTS
    span = ((t_before0 - t_after0) % N_SLOTS)[..., None]
    return (rel > 0) & (rel < span)


def _run_edges(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) slot of every cyclic run of ``mask`` along the last axis."""
    before = np.roll(mask, 1, axis=-1)
    after = np.roll(mask, -1, axis=-1)
    return mask & ~before, mask & ~after


def _scenario_rng(options: McsOptions, scenario: int) -> list[np.random.Generator]:
    """Generators for buses, distance factor, consumption, times, speeds, weights of ``scenario``."""
    child = np.random.SeedSequence(options.seed).spawn(3)[scenario - 1]
    return [np.random.default_rng(s) for s in child.spawn(6)]


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def simulate_scenario(options: McsOptions, scenario: int) -> McsScenario:
    """Draw all samples of one scenario (1, 2 or 3); see the module docstring for the model.

    The result depends only on ``options`` and ``scenario``, not on which other scenarios are drawn.
    """
    if scenario not in (1, 2, 3):
        raise ValueError(f"scenario = {scenario}: 1, 2 or 3")
    p = options.resolved()
    n_evs = options.n_evs[scenario - 1]
    n_samples = options.n_samples[scenario - 1]
    n_veh = round(n_evs * options.vehicles_per_sample_fraction)
    shape = (n_samples, n_veh)
    rng_bus, rng_dist, rng_ce, rng_time, rng_speed, rng_weight = _scenario_rng(options, scenario)

    from_bus, to_bus = _draw_buses(rng_bus, shape)
    length = _network()[3][from_bus, to_bus]
    if options.mode == "authors":
        trip_km = options.authors_distance_factor * length
    else:
        factor = rng_dist.normal(*options.distance_factor_normal, size=shape)
        trip_km = length * np.clip(factor, *options.distance_factor_clip)
    lo, hi = options.consumption_kwh_per_km
    consumption = lo + (hi - lo) * rng_ce.random(shape)
    td, ta, dep_code, arr_code = _draw_times(rng_time, shape, p, options)
    speed = _draw_speeds(rng_speed, n_samples, p, options)
    road, on, ta_out, _, _, overlap = _trips(
        speed * options.dt_h, trip_km, consumption / options.eta_dsg, td, ta, dep_code, arr_code, options.mode)
    energy = road.sum(axis=2)
    w_min, w_max = _draw_weights(rng_weight, energy, p["weighting"], options.weights_evs)
    gchr_min = (w_min * energy).sum(axis=1) / 1000.0
    gchr_max = (w_max * energy).sum(axis=1) / 1000.0
    return McsScenario(
        scenario=scenario, n_evs=n_evs, options=options, from_bus=from_bus, to_bus=to_bus, trip_km=trip_km,
        consumption_kwh_per_km=consumption, weight_min_evs=w_min, weight_max_evs=w_max, dep_slot=td,
        arr_slot=ta_out, speed_kmh=speed, road_kwh=road, on_road=on, legs_overlap=overlap,
        gchr_min_mwh=gchr_min, gchr_max_mwh=gchr_max,
        sample_min=int(np.argmin(gchr_min)), sample_max=int(np.argmax(gchr_max)),
    )


def run_mcs(options: McsOptions | None = None) -> dict[int, McsScenario]:
    """All three scenarios: ``{1: McsScenario, 2: ..., 3: ...}``."""
    options = options or McsOptions()
    return {scenario: simulate_scenario(options, scenario) for scenario in (1, 2, 3)}


def rt_redraws(
    scenario: McsScenario, sample: Literal["min", "max"] | int, n: int | None = None, seed: int | None = None
) -> RtRedraws:
    """Real-time re-draws of one sample: same vehicles (buses, distance, weight), new times.

    Per re-draw the departure/arrival times, the consumption per km and the slot speeds are drawn
    anew (the authors' ``in.gdx`` differ between n in all three), with the mode of
    ``scenario.options``. Plug-in and arrival/departure flags as in the module docstring.

    Parameters
    ----------
    scenario : McsScenario
        The scenario the sample belongs to.
    sample : {"min", "max"} or int
        The chosen minimum or maximum sample, or a 0-based sample index (see :meth:`McsScenario.chosen`).
    n : int, optional
        Re-draws; default ``options.n_rt_scenarios`` (10).
    seed : int, optional
        Root seed; default ``options.seed``. The stream is ``SeedSequence(seed, spawn_key=(100 +
        scenario, sample_index))``, independent of the scenarios' streams.
    """
    options = scenario.options
    sample_index, weight = scenario.chosen(sample)
    n = options.n_rt_scenarios if n is None else int(n)
    if n < 1:
        raise ValueError(f"n = {n}: at least 1 re-draw")
    p = options.resolved()
    ss = np.random.SeedSequence(options.seed if seed is None else seed,
                                spawn_key=(100 + scenario.scenario, sample_index))
    rng_ce, rng_time, rng_speed = (np.random.default_rng(s) for s in ss.spawn(3))
    n_veh = scenario.n_vehicles
    shape = (n, n_veh)
    trip_km = np.broadcast_to(scenario.trip_km[sample_index], shape)
    lo, hi = options.consumption_kwh_per_km
    consumption = lo + (hi - lo) * rng_ce.random(shape)
    td, ta, dep_code, arr_code = _draw_times(rng_time, shape, p, options)
    speed = _draw_speeds(rng_speed, n, p, options)
    road, on, ta_out, dep_end0, ret_start0, overlap = _trips(
        speed * options.dt_h, trip_km, consumption / options.eta_dsg, td, ta, dep_code, arr_code, options.mode)
    home = _cyclic_between(ta_out - 1, td - 1) & ~on
    work = _cyclic_between(dep_end0, ret_start0) & ~overlap[..., None] & ~on
    arrival_from, departure_from = _run_edges(home)
    arrival_to, departure_to = _run_edges(work)
    return RtRedraws(
        scenario=scenario.scenario, sample_index=sample_index,
        from_bus=scenario.from_bus[sample_index].copy(), to_bus=scenario.to_bus[sample_index].copy(),
        trip_km=scenario.trip_km[sample_index].copy(), weight_evs=weight.copy(),
        consumption_kwh_per_km=consumption, dep_slot=td, arr_slot=ta_out, speed_kmh=speed, road_kwh=road,
        on_road=on, plugged_from=home, plugged_to=work, arrival_from=arrival_from, departure_from=departure_from,
        arrival_to=arrival_to, departure_to=departure_to, legs_overlap=overlap,
    )


def bus_counts(scenario: McsScenario, sample: Literal["min", "max"] | int) -> pd.DataFrame:
    """Our Table 1 for one sample: weighted EVs per load bus by home (``dep_evs``) and work (``arr_evs``) bus.

    ``sample``: ``"min"``, ``"max"`` or a 0-based index (see :meth:`McsScenario.chosen`).
    """
    index, weight = scenario.chosen(sample)
    buses = _network()[0]
    size = int(buses.max()) + 1
    dep = np.bincount(scenario.from_bus[index], weights=weight, minlength=size)[buses]
    arr = np.bincount(scenario.to_bus[index], weights=weight, minlength=size)[buses]
    frame = pd.DataFrame({"dep_evs": dep.astype(int), "arr_evs": arr.astype(int)}, index=pd.Index(buses, name="bus"))
    return frame


# --------------------------------------------------------------------------------------------
# statistics (verification against the authors' samples)
# --------------------------------------------------------------------------------------------


def vehicle_statistics(road_kwh: np.ndarray, on_road: np.ndarray, trip_km: np.ndarray) -> dict[str, np.ndarray]:
    """Per-vehicle checks of trips ``(..., V, 48)``.

    Returns
    -------
    dict
        ``implied_kwh_per_km``: sum_t R / (2 x one-way km), battery side, so within
        [0.19, 0.25] / eta_dsg unless the legs overlapped (authors' mode loses a leg);
        ``on_road_slots``: slots on the road; ``overnight``: on the road in a slot 1-10
        (00:00-05:00: a post-midnight arrival); ``midday``: on the road in slots 22-27
        (10:30-14:00; none in the authors' samples, many if departures were clipped at 24 and
        arrivals at 25 as in the public code).
    """
    return {
        "implied_kwh_per_km": road_kwh.sum(axis=-1) / (2.0 * trip_km),
        "on_road_slots": on_road.sum(axis=-1),
        "overnight": on_road[..., :10].any(axis=-1),
        "midday": on_road[..., 21:27].any(axis=-1),
    }


def summary_statistics(road_kwh: np.ndarray, on_road: np.ndarray, trip_km: np.ndarray) -> dict[str, float]:
    """Pooled :func:`vehicle_statistics` over all vehicles: ranges, means and shares."""
    stats = vehicle_statistics(road_kwh, on_road, trip_km)
    implied = stats["implied_kwh_per_km"]
    return {
        "vehicles": float(implied.size),
        "implied_kwh_per_km_min": float(implied.min()),
        "implied_kwh_per_km_max": float(implied.max()),
        "implied_kwh_per_km_mean": float(implied.mean()),
        "on_road_slots_mean": float(stats["on_road_slots"].mean()),
        "share_overnight": float(stats["overnight"].mean()),
        "share_midday": float(stats["midday"].mean()),
    }


def arrays_from_sample_trips(trips: pd.DataFrame, vehicles: pd.DataFrame, scenario: str, sample: str):
    """The authors' chosen sample as arrays: ``(road_kwh (V, 48), on_road (V, 48), trip_km (V,), weight (V,))``.

    ``trips`` and ``vehicles`` are :func:`.dataset.read_sample_trips` and
    :func:`.dataset.read_sample_vehicles`; ``scenario`` is ``"Sc1"`` ... ``"Sc3-CR"``, ``sample``
    ``"min"`` or ``"max"``.
    """
    veh = vehicles[(vehicles["scenario"] == scenario) & (vehicles["sample"] == sample)].sort_values("vehicle_id")
    if veh.empty:
        raise ValueError(f"no sample {scenario} {sample} in the vehicles table")
    rows = trips[(trips["scenario"] == scenario) & (trips["sample"] == sample)]
    n_veh = len(veh)
    road = np.zeros((n_veh, N_SLOTS))
    on = np.zeros((n_veh, N_SLOTS), dtype=bool)
    v = rows["vehicle_id"].to_numpy() - 1
    t = rows["t"].to_numpy() - 1
    road[v, t] = rows["road_energy_kwh"].to_numpy()
    on[v, t] = rows["on_road"].to_numpy() == 1
    return road, on, veh["trip_km_one_way"].to_numpy(), veh["weight_evs"].to_numpy()
