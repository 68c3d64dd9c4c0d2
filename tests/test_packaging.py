"""The package outside a clone: where its data comes from, what the wheel ships, and its map.

* :mod:`harl_mini.data` finds configs and recorded runs in a clone, in an installed wheel and
  under ``$HARL_MINI_DATA``, and names what is missing in one HarlMiniError;
* the wheel (built by setup.py's step) ships every config and every recorded-run file;
* ``help(harl_mini)`` and ``harl_mini.LAYERS`` list every top-level module, the layers import
  only downward, and the API reference (book/api) documents every public module.

The end-to-end check, every page executed from a wheel installed in a fresh venv, is
``make wheel-test`` (tests/wheel_install.py).
"""

import ast
import importlib.util
import pkgutil
import re
import runpy
import zipfile
from pathlib import Path

import pytest
import yaml

import harl_mini
from harl_mini import data
from harl_mini.errors import HarlMiniError
from harl_mini.marl.trainer import named_config
from harl_mini.provenance import git_info

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_override(monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)


def fake_install(tmp_path, monkeypatch, with_data=True) -> Path:
    """Point harl_mini.data at a site-packages-like folder (no pyproject.toml next to the package)."""
    package = tmp_path / "site-packages" / "harl_mini"
    package.mkdir(parents=True)
    if with_data:
        (package / "_data" / "configs" / "mpe" / "simple_spread").mkdir(parents=True)
        (package / "_data" / "configs" / "mpe" / "simple_spread" / "happo.yaml").write_text("algo: happo\n")
        (package / "_data" / "results" / "games").mkdir(parents=True)
    monkeypatch.setattr(data, "_PACKAGE_DIR", package)
    monkeypatch.setattr(data, "PACKAGE_DATA", package / "_data")
    return package


# --------------------------------------------------------------------------- harl_mini.data


def test_in_the_clone_data_is_the_clones(no_override):
    assert data.source_root() == ROOT and data.origin() == "the clone holding harl_mini"
    assert data.root() == ROOT
    assert data.path("results/games") == ROOT / "results" / "games"
    assert data.config("mpe/simple_spread/happo.yaml") == ROOT / "configs/mpe/simple_spread/happo.yaml"
    assert named_config("happo", "mpe:simple_spread") == ROOT / "configs/mpe/simple_spread/happo.yaml"


def test_an_installed_wheel_reads_its_package_data(tmp_path, monkeypatch, no_override):
    package = fake_install(tmp_path, monkeypatch)
    assert data.source_root() is None and data.origin() == "the installed package's data"
    assert data.root() == package / "_data"
    assert data.config("mpe/simple_spread/happo.yaml") == package / "_data/configs/mpe/simple_spread/happo.yaml"
    assert data.path("results/games").is_dir()
    # the trainer's named configs come through the same API (not from the clone next to the code)
    assert named_config("happo", "mpe:simple_spread") == package / "_data/configs/mpe/simple_spread/happo.yaml"
    assert named_config("mappo", "mpe:simple_spread") is None
    # a wheel is not a git checkout: no commit is claimed for it
    assert git_info() == ("unknown", None)


def test_a_missing_file_is_one_clear_error(tmp_path, monkeypatch, no_override):
    fake_install(tmp_path, monkeypatch)
    with pytest.raises(HarlMiniError) as err:
        data.path("results/fullscale/bench.txt")
    message = str(err.value)
    assert "results/fullscale/bench.txt" in message and str(tmp_path) in message and data.ENV_VAR in message
    assert data.find("results/fullscale/bench.txt") is None


def test_without_any_data_the_error_says_how_to_provide_it(tmp_path, monkeypatch, no_override):
    fake_install(tmp_path, monkeypatch, with_data=False)
    assert data.find("configs") is None and named_config("happo", "mpe:simple_spread") is None
    with pytest.raises(HarlMiniError, match=f"not found.*set {data.ENV_VAR}"):
        data.config("mpe/simple_spread/happo.yaml")


def test_the_environment_variable_overrides_the_root(tmp_path, monkeypatch):
    (tmp_path / "configs" / "mpe" / "simple_spread").mkdir(parents=True)
    (tmp_path / "configs" / "mpe" / "simple_spread" / "happo.yaml").write_text("algo: happo\n")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    assert data.root() == tmp_path and data.origin() == f"${data.ENV_VAR}"
    assert named_config("happo", "mpe:simple_spread") == tmp_path / "configs/mpe/simple_spread/happo.yaml"
    with pytest.raises(HarlMiniError, match=r"results/games not found.*no results/ at all"):
        data.path("results/games")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(HarlMiniError, match=f"{data.ENV_VAR}=.*no such folder"):
        data.path("configs")


@pytest.mark.parametrize("bad", ["", "/etc/passwd", "../results", "results/../../x"])
def test_paths_outside_the_data_root_are_rejected(bad):
    with pytest.raises(HarlMiniError, match="relative to the data root"):
        data.path(bad)


# --------------------------------------------------------------------------- the wheel


def test_setup_py_ships_every_config_and_recorded_run_file(monkeypatch):
    import setuptools

    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: None)  # read setup.py's file list only
    shipped = {p.as_posix() for p in runpy.run_path(str(ROOT / "setup.py"))["shipped_files"]()}
    configs = {p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").rglob("*.yaml")}
    runs = {p.relative_to(ROOT).as_posix() for group in ("single_agent", "games", "fullscale")
            for name in ("metrics.csv", "manifest.json", "bench.txt") for p in (ROOT / "results" / group).rglob(name)}
    assert configs and runs and configs <= shipped and runs <= shipped, sorted((configs | runs) - shipped)[:5]
    assert not [p for p in shipped if "/runs/" in p or "checkpoints" in p or p.endswith((".pt", ".log", ".sh"))]


@pytest.mark.slow
def test_the_wheel_holds_the_code_and_the_data(tmp_path):
    spec = importlib.util.spec_from_file_location("wheel_install", ROOT / "tests" / "wheel_install.py")
    wheel_install = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wheel_install)
    clone_build = (ROOT / "build").exists()
    wheel = wheel_install.build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "harl_mini/data.py" in names and "harl_mini/marl/trainer.py" in names
    for rel in ("configs/mpe/simple_spread/happo.yaml", "results/games/bench.txt", "results/fullscale/bench.txt",
                "results/single_agent/trpo_cartpole_s0/metrics.csv", "results/games/happo_xor_s0/manifest.json"):
        assert f"harl_mini/_data/{rel}" in names, rel
    assert not [n for n in names if n.startswith("harl_mini/_data/results/runs/")]
    assert (ROOT / "build").exists() == clone_build, "the wheel build must not write into the clone"


# --------------------------------------------------------------------------- the map


def top_level_modules() -> set[str]:
    return {m.name for m in pkgutil.iter_modules(harl_mini.__path__)} - {"__main__"}


def test_help_lists_every_layer():
    assert top_level_modules() == set(harl_mini.LAYERS), top_level_modules() ^ set(harl_mini.LAYERS)
    table = re.findall(r"^``harl_mini\.(\w+)``", harl_mini.__doc__, flags=re.M)
    assert table == list(harl_mini.LAYERS), table
    for name in harl_mini.LAYERS:
        assert f"`harl_mini.{name}`" in (ROOT / "book" / "package.md").read_text(), name


def _harl_imports(path: Path) -> set[str]:
    """The top-level harl_mini modules that ``path`` imports (lazy imports in functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "harl_mini":
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("harl_mini.")}
    return found


def test_layers_import_only_the_layers_above_them():
    order = {name: i for i, name in enumerate(harl_mini.LAYERS)}
    wrong = []
    for name in harl_mini.LAYERS:
        base = ROOT / "harl_mini" / name
        files = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
        for f in files:
            for imported in _harl_imports(f) - {name, "__version__", "set_num_threads", "LAYERS"}:
                if imported in order and order[imported] > order[name]:
                    wrong.append(f"{f.relative_to(ROOT)} imports harl_mini.{imported}, a layer below {name}")
    assert not wrong, "\n".join(wrong)


def _documented_arguments() -> list[str]:
    args = []
    for page in sorted((ROOT / "book" / "api").glob("*.md")):
        for line in re.findall(r"^```\{automodules\}(.*)$", page.read_text(), flags=re.M):
            args += line.split()
    return args


def test_the_api_reference_documents_every_public_module():
    from harl_mini.sphinxext import public_modules

    documented = {m for arg in _documented_arguments() for m in public_modules(arg)}
    public = {m.name for m in pkgutil.walk_packages(harl_mini.__path__, "harl_mini.")
              if not any(p.startswith("_") for p in m.name.split(".")[1:])} | {"harl_mini.__main__"}
    assert public <= documented, sorted(public - documented)
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = set(re.findall(r"book/api/\w+", str(toc)))
    pages = {f"book/api/{p.stem}" for p in (ROOT / "book" / "api").glob("*.md")}
    assert pages == listed, pages ^ listed
