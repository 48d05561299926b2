"""Bad parameters fail before any model is built, naming field, value and range."""

import pytest
import yaml

from evgrid.core.config import (
    SECTIONS,
    ConfigError,
    FleetOptions,
    SolverOptions,
    known_sections,
    load_section,
    section_model,
    validate_section,
)
from evgrid.core.paths import repo_path


def _section(name):
    return yaml.safe_load(repo_path("params.yaml").read_text())[name]


def test_every_params_section_validates_and_has_a_model():
    params = yaml.safe_load(repo_path("params.yaml").read_text())
    assert set(params) == set(known_sections())
    for name in params:
        load_section(name)


@pytest.mark.parametrize(
    ("section", "change", "expected"),
    [
        # an unknown network
        ("test_systems", {"networks": ["ieee999"]}, ["networks", "ieee999", "ieee33"]),
        # an empty list of networks
        ("test_systems", {"networks": []}, ["networks", "at least 1 item"]),
        # inverted voltage bounds
        ("test_systems", {"vmin_pu": 1.0, "vmax_pu": 1.0}, ["vmin_pu", "below vmax_pu"]),
        # a value out of range
        ("test_systems", {"vmax_pu": 1.5}, ["vmax_pu", "1.5", "1.0 <= x <= 1.2"]),
        # a negative tolerance
        ("test_systems", {"ieee13_tolerance_pu": -0.1}, ["ieee13_tolerance_pu", "0 < x <= 0.05"]),
        # an unknown option value
        ("test_systems", {"ieee13_regulator": "manual"}, ["ieee13_regulator", "'fixed', 'auto'"]),
        # a typo in a field name
        ("test_systems", {"vmin_p": 0.9}, ["vmin_p", "not a known field"]),
        # a missing file
        ("reproduction_report", {"comparisons": ["results/nope.csv"]}, ["results/nope.csv", "does not exist"]),
        ("reproduction_report", {"paper_values_dir": "data/nowhere"}, ["data/nowhere", "does not exist"]),
        # a tolerance above 1
        ("reproduction_report", {"rel_tol": 2.0}, ["rel_tol", "2.0", "0 <= x <= 1"]),
    ],
)
def test_bad_section_values_name_field_value_and_range(section, change, expected):
    values = {**_section(section), **change}
    with pytest.raises(ConfigError) as err:
        validate_section(section, values)
    message = str(err.value)
    assert f"[{section}]" in message
    for fragment in expected:
        assert fragment in message, message


@pytest.mark.parametrize(
    ("model", "values", "expected"),
    [
        (FleetOptions, {"n_evs": -5}, ["n_evs", "-5", "0 <= x <= 100000"]),  # a negative count
        (FleetOptions, {"charge_efficiency": 1.2}, ["charge_efficiency", "0 < x <= 1"]),
        (FleetOptions, {"soc_min": 0.9, "soc_max": 0.2}, ["soc_min", "below soc_max"]),
        (SolverOptions, {"solver": "cplex"}, ["solver", "cplex", "'highs', 'gurobi', 'scip'"]),
        (SolverOptions, {"time_limit_s": -1}, ["time_limit_s", "0 < x <= 86400"]),
    ],
)
def test_shared_blocks_reject_bad_values(model, values, expected, monkeypatch):
    monkeypatch.setitem(SECTIONS, "block", model)
    with pytest.raises(ConfigError) as err:
        validate_section("block", values)
    for fragment in expected:
        assert fragment in str(err.value), str(err.value)


def test_unknown_section_and_missing_file_are_reported():
    with pytest.raises(ConfigError, match="unknown params.yaml section 'nope'"):
        validate_section("nope", {})
    with pytest.raises(ConfigError, match="does not exist"):
        load_section("test_systems", "missing_params.yaml")


def test_runner_rejects_bad_override_before_running_anything(capsys):
    from evgrid.core.run import main

    code = main(["notebooks/00_test_systems.ipynb", "--section", "test_systems",
                 "--set", "vmin_pu=2", "--out", "results/should_not_exist"])
    assert code == 2
    assert "vmin_pu" in capsys.readouterr().err
    assert not repo_path("results/should_not_exist").exists()


def test_a_section_lacking_a_field_fails_instead_of_taking_the_default(tmp_path):
    import yaml as _yaml

    from evgrid.core.config import ConfigError, load_section

    params = _yaml.safe_load(open(repo_path("params.yaml")))
    del params["eva2025"]["grid_limit_kw"]
    del params["eva2025"]["solver"]["mip_gap"]
    path = tmp_path / "params.yaml"
    path.write_text(_yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=r"lacks 'grid_limit_kw', 'solver.mip_gap'"):
        load_section("eva2025", path)


def test_malformed_yaml_is_a_config_error(tmp_path):
    from evgrid.core.config import ConfigError, load_section

    path = tmp_path / "params.yaml"
    path.write_text("test_systems: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_section("test_systems", path)


def test_notebook_params_takes_every_field_from_the_namespace():
    import yaml as _yaml

    from evgrid.core.config import ConfigError, notebook_params

    section = _yaml.safe_load(open(repo_path("params.yaml")))["test_systems"]
    assert notebook_params("test_systems", dict(section, unrelated=1)).vmin_pu == section["vmin_pu"]
    partial = {k: v for k, v in section.items() if k != "vmax_pu"}
    with pytest.raises(ConfigError, match="does not define 'vmax_pu'"):
        notebook_params("test_systems", partial)


def test_a_papers_sections_are_found_in_its_own_params_module():
    from evgrid.papers.kerama2025.params import Kerama2025SweepsParams

    assert section_model("kerama2025_sweeps") is Kerama2025SweepsParams
    assert {"kerama2025", "kerama2025_sweeps", "eva2025", "parallel"} <= set(known_sections())
    for name in ("kerama2025_typo", "nopaper"):
        with pytest.raises(ConfigError, match=rf"unknown params.yaml section '{name}': known .*eva2025"):
            section_model(name)
