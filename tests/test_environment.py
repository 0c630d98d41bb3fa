"""environment.yml (conda/Binder) and requirements.lock (make) describe one environment.

There is no conda here, so the YAML is parsed and compared with the lock: every
package it names is pinned to the lock's version, and every direct dependency of
the package (pyproject.toml) appears in it.
"""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock line is not pinned with ==: {line!r}"
            pins[_norm(name)] = version
    return pins


def _env_pip() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml must have exactly one pip: section"
    pins = {}
    for item in pip_sections[0]:
        if item.startswith("-"):  # --extra-index-url, -e .
            continue
        name, sep, version = item.partition("==")
        assert sep, f"environment.yml pip entry must be pinned with ==: {item!r}"
        pins[_norm(name)] = version
    return pins


def _direct_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return {_norm(re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0]) for r in reqs}


def test_lock_pins_the_cpu_torch():
    # an unpinned or ranged torch pulls a multi-GB CUDA build
    assert _lock()["torch"] == "2.13.0"


@pytest.mark.parametrize("name", sorted(_env_pip()))
def test_environment_yml_matches_lock(name):
    lock = _lock()
    assert name in lock, f"environment.yml names {name}, which requirements.lock lacks"
    assert _env_pip()[name] == lock[name], (
        f"{name}: environment.yml pins {_env_pip()[name]}, requirements.lock pins {lock[name]}"
    )


@pytest.mark.parametrize("name", sorted(_direct_dependencies()))
def test_direct_dependency_in_both(name):
    assert name in _lock(), f"{name} (pyproject.toml) is missing from requirements.lock"
    assert name in _env_pip(), f"{name} (pyproject.toml) is missing from environment.yml"


def test_environment_yml_installs_the_package_and_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-e ." in pip
