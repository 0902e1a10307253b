"""environment.yml and pyproject.toml name the same dependencies with the same versions.

The conda environment lists the package's runtime dependencies as conda-forge packages and
installs srlib itself with its ``book`` and ``test`` extras through pip, so a dependency added
to (or dropped from) one file and not the other fails here.
"""

import re
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# conda-forge name -> PyPI name, where they differ
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib"}
# conda packages that are the environment itself, not dependencies of srlib
ENVIRONMENT_ONLY = {"python", "pip"}
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;#]*)")


def normalise(name: str) -> str:
    """A package name as PEP 503 compares them (lower case, runs of -_. as one -)."""
    name = re.sub(r"[-_.]+", "-", name).lower()
    return CONDA_TO_PYPI.get(name, name)


def split(requirement: str) -> tuple[str, str]:
    """(normalised name, version specifier without spaces) of a requirement string."""
    match = _REQUIREMENT.match(requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    return normalise(match.group(1)), re.sub(r"\s+", "", match.group(3))


def read_pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def read_environment() -> tuple[dict[str, str], list[str]]:
    """Conda dependencies as {name: specifier} and the pip section's lines."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = {}, []
    for entry in env["dependencies"]:
        if isinstance(entry, dict):
            pip += entry.get("pip", [])
        else:
            name, spec = split(entry)
            assert name not in conda, f"{name} listed twice in environment.yml"
            conda[name] = spec
    return conda, pip


def test_normalise_maps_conda_names_to_pypi_names():
    assert split("pytorch>=2.2,<3") == ("torch", ">=2.2,<3")
    assert split("scikit_fem >= 9") == ("scikit-fem", ">=9")
    assert split("Matplotlib-Base") == ("matplotlib", "")


def test_environment_lists_every_runtime_dependency_with_its_version():
    project = read_pyproject()
    runtime = dict(split(r) for r in project["dependencies"])
    conda, _ = read_environment()
    missing = sorted(set(runtime) - set(conda))
    assert not missing, f"in pyproject.toml but not in environment.yml: {missing}"
    differ = {n: (runtime[n], conda[n]) for n in runtime if runtime[n] != conda[n]}
    assert not differ, f"versions differ (pyproject, environment.yml): {differ}"


def test_environment_lists_nothing_pyproject_does_not_know():
    project = read_pyproject()
    known = {split(r)[0] for r in project["dependencies"]}
    for extra in ("book", "test"):
        known |= {split(r)[0] for r in project["optional-dependencies"][extra]}
    conda, _ = read_environment()
    unknown = sorted(set(conda) - known - ENVIRONMENT_ONLY)
    assert not unknown, f"in environment.yml but not in pyproject.toml: {unknown}"


def test_environment_installs_srlib_with_book_and_test_extras():
    conda, pip = read_environment()
    assert "python" in conda and conda["python"].startswith(">=3.10")
    assert read_pyproject()["requires-python"] == ">=3.10"
    editable = [line for line in pip if re.fullmatch(r"-e\s+\.\[(.*)\]", line.strip())]
    assert editable, f"the pip section does not install srlib editable: {pip}"
    extras = re.fullmatch(r"-e\s+\.\[(.*)\]", editable[0].strip()).group(1)
    assert {e.strip() for e in extras.split(",")} >= {"book", "test"}


def test_torch_is_pinned_once_and_the_pin_satisfies_the_range():
    """The Makefile pins the installed torch build; pyproject.toml states the supported range."""
    from packaging.requirements import Requirement

    makefile = (ROOT / "Makefile").read_text()
    pins = re.findall(r"^TORCH_SPEC \?= torch==(\S+)$", makefile, re.M)
    assert len(pins) == 1, "the Makefile must pin exactly one torch version"
    assert len(re.findall(r"torch\s*==\s*\d", makefile)) == 1
    torch = [Requirement(r) for r in read_pyproject()["dependencies"] if split(r)[0] == "torch"]
    assert len(torch) == 1 and "==" not in str(torch[0].specifier), "pyproject states a range"
    assert pins[0] in torch[0].specifier, f"torch {pins[0]} is outside {torch[0].specifier}"
