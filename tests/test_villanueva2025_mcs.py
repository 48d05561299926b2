"""Villanueva-Machado et al. (2025): the dataset loaders and the Monte Carlo of trips, against the paper and the
authors' own samples (``data/villanueva2025``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from evgrid.core.compare import load_paper_values
from evgrid.core.paths import repo_path
from evgrid.papers.villanueva2025 import dataset, mcs

AUTHORS_SAMPLES = [(sc, sa) for sc in ("Sc1", "Sc2", "Sc3", "Sc3-CR") for sa in ("min", "max")]
SCENARIO_OF = {"Sc1": 1, "Sc2": 2, "Sc3": 3, "Sc3-CR": 3}
ETA = 0.9


@pytest.fixture(scope="module")
def authors_run() -> dict[int, mcs.McsScenario]:
    """The paper-size Monte Carlo in the authors' mode (about 0.4 s)."""
    return mcs.run_mcs(mcs.McsOptions())


@pytest.fixture(scope="module")
def described_run() -> dict[int, mcs.McsScenario]:
    return mcs.run_mcs(mcs.McsOptions(mode="as_described"))


@pytest.fixture(scope="module")
def authors_samples() -> dict[tuple[str, str], tuple[np.ndarray, ...]]:
    """The authors' eight chosen samples as (R kWh (V, 48), X (V, 48), one-way km (V,), weight (V,))."""
    trips, vehicles = dataset.read_sample_trips(), dataset.read_sample_vehicles()
    return {key: mcs.arrays_from_sample_trips(trips, vehicles, *key) for key in AUTHORS_SAMPLES}


def _pooled(run: dict[int, mcs.McsScenario], key: str) -> np.ndarray:
    return np.concatenate([getattr(s, key).reshape(-1, *getattr(s, key).shape[2:]) for s in run.values()])


# --------------------------------------------------------------------------------------------
# dataset
# --------------------------------------------------------------------------------------------


def test_network_from_cdf():
    assert dataset.load_buses() == [2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14]
    lengths = dataset.line_lengths_km()
    assert lengths[(13, 14)] == 133.0 and lengths[(4, 5)] == 16.0 and lengths[(1, 2)] == 22.5
    assert (4, 7) not in lengths and (5, 6) not in lengths  # transformers: length 0
    load = set(dataset.load_buses())
    pairs = {p for p in lengths if set(p) <= load}
    assert pairs == {(2, 3), (2, 4), (2, 5), (3, 4), (4, 5), (6, 11), (6, 12), (6, 13), (9, 10), (9, 14),
                     (10, 11), (12, 13), (13, 14)}


def test_fitted_time_normals_match_notes():
    fit = dataset.fit_time_normals()
    assert fit["departure"] == pytest.approx((17.07, 2.83), abs=0.01)
    assert fit["arrival"] == pytest.approx((40.80, 5.28), abs=0.01)
    hist = dataset.time_histograms()
    assert hist["departures"].sum() == 10_000 and hist["arrivals"].sum() == 10_000


def test_bus_assignment_headers():
    a = dataset.read_bus_assignment(2000, "min")
    assert (a.gchr_mwh, a.mcs_sample, len(a.vehicles)) == (14.5867, 124, 200)
    b = dataset.read_bus_assignment(3750, "max")
    assert (b.gchr_mwh, b.mcs_sample, len(b.vehicles)) == (37.95372, 8, 375)
    # the headers agree with the authors' sample table
    samples = dataset.read_samples().set_index(["scenario", "sample"])
    for sc, n_evs in (("Sc1", 2000), ("Sc2", 2500), ("Sc3", 3750)):
        for sa in ("min", "max"):
            row, head = samples.loc[(sc, sa)], dataset.read_bus_assignment(n_evs, sa)
            assert head.mcs_sample == row["mcs_sample_index"]
            assert head.gchr_mwh == pytest.approx(row["gchr_mwh_reported"], abs=1e-4)
    with pytest.raises(ValueError, match="n_evs = 1000"):
        dataset.read_bus_assignment(1000, "min")


def test_table1_matches_every_cell_of_the_paper():
    try:
        paper = load_paper_values("villanueva2025")
    except FileNotFoundError:
        pytest.skip("data/paper_values/villanueva2025.yaml is not there yet")
    paper = paper[(paper["table"] == "Table 1") & paper["row"].str.startswith("Bus ")]
    assert len(paper) == 132
    ours = dataset.table1_from_assignment()
    got = [int(ours.loc[int(row.split()[1]), column]) for row, column in zip(paper["row"], paper["column"],
                                                                              strict=True)]
    assert got == paper["value"].astype(int).tolist()
    for column in ours.columns:
        assert ours[column].sum() == dataset.SCENARIO_EVS[int(column.split()[1])]


# --------------------------------------------------------------------------------------------
# the Monte Carlo, authors' mode
# --------------------------------------------------------------------------------------------


def test_authors_distances_are_quarter_line_lengths(authors_run):
    length = {**dataset.line_lengths_km(), **{(j, i): km for (i, j), km in dataset.line_lengths_km().items()}}
    ours = set()
    for s in authors_run.values():
        expected = np.vectorize(lambda i, j: 0.25 * length[(i, j)])(s.from_bus, s.to_bus)
        np.testing.assert_allclose(s.trip_km, expected, rtol=0, atol=1e-12)
        ours |= set(zip(s.from_bus.ravel().tolist(), s.to_bus.ravel().tolist(), strict=True))
    theirs = dataset.read_sample_vehicles()
    np.testing.assert_allclose(
        theirs["trip_km_one_way"],
        [0.25 * length[(i, j)] for i, j in zip(theirs["from_bus"], theirs["to_bus"], strict=True)], atol=1e-9)
    # the same 26 directed pairs: neighbours through a line of non-zero length, both ways
    assert ours == set(zip(theirs["from_bus"], theirs["to_bus"], strict=True))
    assert len(ours) == 26


def test_weights_sum_to_the_fleet(authors_run, described_run):
    for run in (authors_run, described_run):
        for s in run.values():
            for w in (s.weight_min_evs, s.weight_max_evs):
                assert (w.sum(axis=1) == s.n_evs).all()
                counts = {int(k): int(c) for k, c in zip(*np.unique(w[0], return_counts=True), strict=True)}
                half = s.n_vehicles // 2
                assert counts == ({7: half, 13: half} | ({10: 1} if s.n_vehicles % 2 else {}))
    for s in described_run.values():  # random weighting: one order, both readings equal
        np.testing.assert_array_equal(s.weight_min_evs, s.weight_max_evs)


def test_weights_follow_energy_rank_as_in_the_authors_samples(authors_run, authors_samples):
    """In the authors' samples weight 13 goes to exactly the low-energy half (min) / high-energy half (max)."""

    def ranked(energy: np.ndarray, weight: np.ndarray, heavy_low: bool) -> bool:
        heavy, light = energy[weight == 13], energy[weight == 7]
        return heavy.max() <= light.min() if heavy_low else heavy.min() >= light.max()

    for (sc, sa), (road, _, _, weight) in authors_samples.items():
        assert ranked(road.sum(axis=1), weight, sa == "min"), (sc, sa)
    for s in authors_run.values():
        energy = s.road_kwh.sum(axis=2)
        for k in range(0, s.n_samples, 7):
            assert ranked(energy[k], s.weight_min_evs[k], True)
            assert ranked(energy[k], s.weight_max_evs[k], False)


def test_implied_consumption_within_range(authors_run, described_run):
    lo, hi = 0.19 / ETA, 0.25 / ETA
    for run in (authors_run, described_run):
        for s in run.values():
            implied = mcs.vehicle_statistics(s.road_kwh, s.on_road, s.trip_km)["implied_kwh_per_km"]
            assert implied.min() >= lo - 1e-12 and implied.max() <= hi + 1e-12
            assert implied.min() < lo + 0.002 and implied.max() > hi - 0.002  # the whole range is used
    assert not any(s.legs_overlap.any() for s in authors_run.values())  # no departure leg was trimmed


def test_legs_follow_the_pseudocode(authors_run):
    """First slot of the departure leg and last slot of the return leg: min(speed x 0.5 h, trip) x SC / eta."""
    for s in authors_run.values():
        rows = np.arange(s.n_samples)[:, None]
        factor = s.consumption_kwh_per_km / ETA
        for slot in (s.dep_slot, s.arr_slot):
            km = s.speed_kmh[rows, slot - 1] * 0.5
            got = np.take_along_axis(s.road_kwh, (slot - 1)[..., None], axis=2)[..., 0]
            np.testing.assert_allclose(got, np.minimum(km, s.trip_km) * factor, rtol=1e-12)
        assert s.on_road.sum(axis=2).min() >= 2  # two legs, at least one slot each


def test_schedule_and_resolved_values():
    authors = mcs.McsOptions().resolved()
    classes = authors["schedule"]
    assert len(classes) == 48
    assert set(classes[:29]) == {"HS"} and set(classes[29:33]) == {"MS"}
    assert set(classes[33:43]) == {"LS"} and set(classes[43:]) == {"MS"}
    assert authors["speed_ls_kmh"] == (20.0, 10.0)
    assert (authors["dep_clip_slots"], authors["arr_clip_slots"]) == ((0.0, 20.0), (30.0, 56.0))
    described = mcs.McsOptions(mode="as_described").resolved()
    assert described["dep_normal_slots"] == pytest.approx((17.07, 2.372), abs=0.001)  # 08:02:05, 01:11:09
    assert described["arr_normal_slots"] == pytest.approx((45.146, 8.606), abs=0.001)  # 22:04:22, 04:18:11
    assert described["speed_ls_kmh"] == (25.0, 10.0)
    assert len(described["schedule"]) == 96 and described["schedule"][34:44] == ("LS",) * 10  # 08:30-10:45
    assert described["schedule"][65:81] == ("LS",) * 16 and described["schedule"][81] == "MS"  # 16:15-20:00


def _departure_start(on_road: np.ndarray) -> np.ndarray:
    """Departure slot seen in X alone: the latest start of an on-road run in slots 1-24.

    A post-midnight return leg starts earlier than the departure leg of the same day.
    """
    starts = on_road & ~np.roll(on_road, 1, axis=-1)
    slots = np.where(starts[..., :24], np.arange(1, 25), 0)
    return slots.max(axis=-1)


def test_statistics_match_the_authors_samples(authors_run, authors_samples):
    """Distributions over all vehicles, ours (100,000) vs the authors' eight samples (2,400 vehicles).

    Tolerances are about 3.5 standard errors of the authors' share over 2,400 vehicles (binomial:
    0.55 pp for 8 %, 0.8 pp for 19 %, 0.33 pp for 2.7 %); for the on-road slots, 3 standard errors
    of a mean of 8 samples (our per-sample sd is 0.21-0.23 slots; slot speeds are shared within a
    sample, so the sample is the unit).
    """
    road = np.concatenate([v[0] for v in authors_samples.values()])
    on = np.concatenate([v[1] for v in authors_samples.values()])
    km = np.concatenate([v[2] for v in authors_samples.values()])
    theirs = mcs.summary_statistics(road, on, km)
    ours = mcs.summary_statistics(_pooled(authors_run, "road_kwh"), _pooled(authors_run, "on_road"),
                                  _pooled(authors_run, "trip_km"))
    assert theirs["vehicles"] == 2400
    # post-midnight arrivals: 8.0 % in theirs (193 vehicles)
    assert ours["share_overnight"] == pytest.approx(theirs["share_overnight"], abs=0.02)
    assert ours["on_road_slots_mean"] == pytest.approx(theirs["on_road_slots_mean"], abs=0.25)
    assert ours["implied_kwh_per_km_mean"] == pytest.approx(theirs["implied_kwh_per_km_mean"], abs=0.003)
    # departures clipped at slot 20: none later, a pile at 20 (19 %; a clip at 24 would leave 8 % at 20)
    dep_theirs, dep_ours = _departure_start(on), _departure_start(_pooled(authors_run, "on_road"))
    assert (dep_ours == _pooled(authors_run, "dep_slot")).mean() > 0.999  # the X-only reading works
    assert dep_theirs.max() == 20 and dep_ours.max() == 20
    assert (dep_ours == 20).mean() == pytest.approx((dep_theirs == 20).mean(), abs=0.025)
    # arrivals clipped at slot 30: 2.7 % of return legs end exactly there, none end in 10:30-14:00 (slots 22-27)
    def share_ending_in_30(x: np.ndarray) -> float:
        return float((x[..., 29] & ~x[..., 30]).mean())

    assert share_ending_in_30(_pooled(authors_run, "on_road")) == pytest.approx(share_ending_in_30(on), abs=0.012)
    assert theirs["share_midday"] == 0 and ours["share_midday"] < 0.01
    # the public mksample.m's windows would show midday trips: the statistic tells the two apart
    public = mcs.simulate_scenario(mcs.McsOptions(dep_clip_slots=(0, 24), arr_clip_slots=(25, 56),
                                                  n_samples=(50, 1, 1)), 1)
    assert mcs.summary_statistics(public.road_kwh, public.on_road, public.trip_km)["share_midday"] > 0.04


def test_min_max_selection_and_gchr(authors_run):
    auth = dataset.read_samples().set_index(["scenario", "sample"])["gchr_mwh_reported"]
    for k, s in authors_run.items():
        energy = s.road_kwh.sum(axis=2)
        np.testing.assert_allclose(s.gchr_min_mwh, (s.weight_min_evs * energy).sum(axis=1) / 1000)
        np.testing.assert_allclose(s.gchr_max_mwh, (s.weight_max_evs * energy).sum(axis=1) / 1000)
        assert s.sample_min == int(np.argmin(s.gchr_min_mwh)) and s.sample_max == int(np.argmax(s.gchr_max_mwh))
        # The authors' extremes: over 12 seeds ours have sd 0.6-1.0 % and their mean lies within 2 % of the
        # authors' values (Sc1 14.59 vs 14.59, Sc3 min 28.09 vs 27.53); 4 % covers one seed.
        assert s.gchr_min_mwh.min() == pytest.approx(auth[(f"Sc{k}", "min")], rel=0.04)
        assert s.gchr_max_mwh.max() == pytest.approx(auth[(f"Sc{k}", "max")], rel=0.04)
        counts = mcs.bus_counts(s, "min")
        assert counts.index.tolist() == dataset.load_buses()
        assert counts.sum().tolist() == [s.n_evs, s.n_evs]


def test_overlapping_legs_follow_each_modes_rule():
    """Legs forced to overlap (slow traffic, arrivals at 12:00-15:00): the authors' trimming vs turning round."""
    slow = {"dep_clip_slots": (0, 24), "arr_clip_slots": (25, 30), "speed_hs_kmh": (12.0, 1.0),
            "speed_ms_kmh": (12.0, 1.0), "n_samples": (30, 1, 1)}
    s = mcs.simulate_scenario(mcs.McsOptions(**slow), 1)
    both_legs = s.trip_km * 2 * s.consumption_kwh_per_km / ETA
    share = s.road_kwh.sum(axis=2) / both_legs
    assert s.legs_overlap.sum() > 20
    np.testing.assert_allclose(share[~s.legs_overlap], 1.0)
    # mksample.m: the return leg overwrites the shared slot(s); if it starts before the departure leg ends, the
    # departure leg before it is zeroed too (only the return leg's half of the energy is left)
    lost = share[s.legs_overlap]
    assert (lost < 1 - 1e-9).all() and (lost > 0.5 - 1e-9).all() and np.isclose(lost, 0.5).sum() > 10
    d = mcs.simulate_scenario(mcs.McsOptions(mode="as_described", distance_factor_normal=(0.25, 0.01),
                                             distance_factor_clip=(0.2, 0.3), **slow), 1)
    assert d.legs_overlap.sum() > 20
    np.testing.assert_allclose(d.road_kwh.sum(axis=2), d.trip_km * 2 * d.consumption_kwh_per_km / ETA)
    # turned round at once: one run on the road from td to the (moved) arrival
    on = d.on_road[d.legs_overlap]
    td, ta = d.dep_slot[d.legs_overlap], d.arr_slot[d.legs_overlap]
    assert ((on & ~np.roll(on, 1, axis=-1)).sum(axis=-1) == 1).all()
    np.testing.assert_array_equal((ta - td) % 48 + 1, on.sum(axis=-1))


# --------------------------------------------------------------------------------------------
# seeds and options
# --------------------------------------------------------------------------------------------

_SMALL = {"n_samples": (4, 3, 2)}
_ARRAYS = ("from_bus", "to_bus", "trip_km", "consumption_kwh_per_km", "weight_min_evs", "weight_max_evs",
           "dep_slot", "arr_slot", "speed_kmh", "road_kwh", "on_road", "gchr_min_mwh", "gchr_max_mwh")


@pytest.mark.parametrize("mode", ["authors", "as_described"])
def test_seeds_reproduce_and_scenarios_are_independent(mode):
    a = mcs.run_mcs(mcs.McsOptions(mode=mode, **_SMALL))
    b = mcs.run_mcs(mcs.McsOptions(mode=mode, **_SMALL))
    c = mcs.run_mcs(mcs.McsOptions(mode=mode, seed=7, **_SMALL))
    for k in a:
        for name in _ARRAYS:
            assert getattr(a[k], name).tobytes() == getattr(b[k], name).tobytes(), (k, name)
        assert a[k].road_kwh.tobytes() != c[k].road_kwh.tobytes()
    # scenario 2 does not depend on how many samples scenario 1 draws
    other = mcs.simulate_scenario(mcs.McsOptions(mode=mode, n_samples=(9, 3, 2)), 2)
    assert other.road_kwh.tobytes() == a[2].road_kwh.tobytes()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"consumption_kwh_per_km": (0.25, 0.19)}, "consumption_kwh_per_km"),
        ({"eta_dsg": 1.5}, "eta_dsg"),
        ({"n_slots": 96}, "n_slots"),
        ({"dt_h": 0.25}, "dt_h"),
        ({"weights_evs": (7, 12)}, "weights_evs"),
        ({"n_evs": (2000, 2500, 3755)}, "n_evs"),
        ({"speed_ls_kmh": (20.0, -1.0)}, "speed_ls_kmh"),
        ({"dep_clip_slots": (20.0, 10.0)}, "dep_clip_slots"),
        ({"mode": "paper"}, "mode"),
        ({"seed": -1}, "seed"),
        ({"n_samples_typo": 3}, "n_samples_typo"),
    ],
)
def test_bad_options_name_the_field(changes, field):
    with pytest.raises(ValidationError, match=field):
        mcs.McsOptions(**changes)


def test_options_are_frozen():
    with pytest.raises(ValidationError):
        mcs.McsOptions().seed = 3  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# as_described
# --------------------------------------------------------------------------------------------


def test_as_described_draws(described_run):
    length = {**dataset.line_lengths_km(), **{(j, i): km for (i, j), km in dataset.line_lengths_km().items()}}
    s = described_run[1]
    factor = s.trip_km / np.vectorize(lambda i, j: length[(i, j)])(s.from_bus, s.to_bus)
    assert factor.min() >= 0.5 and factor.max() <= 1.5
    assert factor.mean() == pytest.approx(1.0, abs=0.005) and factor.std() == pytest.approx(0.125, abs=0.005)
    dep = _pooled(described_run, "dep_slot")
    assert dep.min() >= 1 and dep.max() <= 24
    assert dep.mean() == pytest.approx(17.07, abs=0.05)
    # N(45.15, 8.6) truncated to [25, 56]: about a quarter of the arrivals after midnight
    stats = mcs.summary_statistics(s.road_kwh, s.on_road, s.trip_km)
    assert 0.2 < stats["share_overnight"] < 0.35


# --------------------------------------------------------------------------------------------
# real-time re-draws and plug-in flags
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["authors", "as_described"])
def test_rt_redraws(mode, authors_run, described_run):
    s = (authors_run if mode == "authors" else described_run)[3]
    rt = mcs.rt_redraws(s, "max")
    n, v = 10, s.n_vehicles
    for name in ("road_kwh", "on_road", "plugged_from", "plugged_to", "arrival_from", "departure_from",
                 "arrival_to", "departure_to"):
        assert getattr(rt, name).shape == (n, v, 48), name
    assert rt.sample_index == s.sample_max
    np.testing.assert_array_equal(rt.weight_evs, s.weight_max_evs[s.sample_max])
    np.testing.assert_array_equal(rt.trip_km, s.trip_km[s.sample_max])
    assert (np.ptp(rt.consumption_kwh_per_km, axis=0) > 0).all()  # re-drawn per n
    assert (np.ptp(rt.dep_slot, axis=0) > 0).any() and (np.ptp(rt.arr_slot, axis=0) > 0).any()
    # plugged in and on the road never together (the authors' 680 such rows are a bug, see below)
    assert not ((rt.plugged_from | rt.plugged_to) & rt.on_road).any()
    assert not (rt.plugged_from & rt.plugged_to).any()
    # every slot is road, home or work, except the work slots of vehicles whose legs overlapped
    cover = rt.on_road.astype(int) + rt.plugged_from + rt.plugged_to
    assert (cover[~rt.legs_overlap] == 1).all()
    # one arrival and one departure per bus and re-draw, at the first / last plugged-in slot
    assert (rt.arrival_from.sum(axis=2) == 1).all() and (rt.departure_from.sum(axis=2) == 1).all()
    at_work = rt.plugged_to.any(axis=2)  # empty where the legs overlapped or the return leg follows at once
    assert not at_work[rt.legs_overlap].any() and at_work.mean() > 0.95
    np.testing.assert_array_equal(rt.arrival_to.sum(axis=2), at_work)
    np.testing.assert_array_equal(rt.departure_to.sum(axis=2), at_work)
    slot = np.arange(48)
    first_home = np.take_along_axis(rt.plugged_from, (rt.arr_slot % 48)[..., None], axis=2)[..., 0]
    assert first_home.all()  # plugged in at home from the slot after the return leg ends
    arrive = (slot * rt.arrival_from).sum(axis=2)
    np.testing.assert_array_equal(arrive, rt.arr_slot % 48)
    leave = (slot * rt.departure_from).sum(axis=2)
    np.testing.assert_array_equal(leave, (rt.dep_slot - 2) % 48)
    view = rt.at_bus(6)
    assert (np.diff(view["vehicles"]) > 0).all()
    assert view["plugged"].shape == (n, len(view["vehicles"]), 48)


def test_authors_plugged_and_on_road_rows_are_the_midnight_return_bug():
    """The authors' 680 rows with both ``on_road`` and ``plugged_in`` all belong to the 187 (run, v, n) of a
    home-bus vehicle whose return leg spans midnight (on the road in slots 48 and 1): the reason
    :func:`mcs.rt_redraws` never marks a vehicle plugged in while on the road."""
    folder = repo_path("data/villanueva2025/authors_runs/devcm_inputs")
    arrays = pd.read_csv(folder / "vehicle_time_arrays.csv.gz", usecols=["run", "t", "v", "n", "on_road", "plugged_in"],
                         dtype={"run": "category", "t": "int8", "v": "int16", "n": "int8", "on_road": "int8",
                                "plugged_in": "int8"})
    roles = pd.read_csv(folder / "vehicles.csv.gz", usecols=["run", "v", "bus_role"])
    both = arrays[(arrays["on_road"] == 1) & (arrays["plugged_in"] == 1)]
    assert len(both) == 680
    keys = ["run", "v", "n"]
    road = arrays[arrays["on_road"] == 1]
    spans = pd.merge(road.loc[road["t"] == 48, keys], road.loc[road["t"] == 1, keys], on=keys)
    spans = spans.merge(roles, on=["run", "v"])
    home_spans = set(map(tuple, spans.loc[spans["bus_role"] == "from(home)", keys].astype(str).to_numpy()))
    bugged = set(map(tuple, both[keys].drop_duplicates().astype(str).to_numpy()))
    assert len(bugged) == 187 and bugged == home_spans
