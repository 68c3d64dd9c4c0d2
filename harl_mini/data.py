"""Where the shipped data lives: the named configs (``configs/``) and the recorded runs (``results/``).

The chapters plot recorded runs and read named configs. They find both through this module,
never through a path relative to the package's source file, so the same chapter runs in a
clone of the repository and from an installed wheel::

    from harl_mini import data

    data.path("results/games")                     # a folder of recorded runs
    data.config("mpe/simple_spread/happo.yaml")    # = data.path("configs/mpe/simple_spread/happo.yaml")

The **data root** is the first of:

1. ``$HARL_MINI_DATA`` (:data:`ENV_VAR`), when set: a folder holding ``configs/`` and/or
   ``results/``, e.g. a clone, or a folder of your own recorded runs;
2. the clone that holds the imported package (an editable install, or ``import harl_mini``
   from the repository root): its top-level ``configs/`` and ``results/`` (:func:`source_root`);
3. the package data of an installed wheel, ``harl_mini/_data/``, into which the build
   (``setup.py``) copies ``configs/`` and the recorded results (CSV, manifests, benchmark
   logs, READMEs).

A missing file or folder raises one :class:`~harl_mini.errors.HarlMiniError` that names it,
the data root and where that root came from.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from harl_mini.errors import HarlMiniError

__all__ = ["ENV_VAR", "PACKAGE_DATA", "source_root", "root", "origin", "find", "path", "config"]

#: Environment variable that overrides the data root.
ENV_VAR = "HARL_MINI_DATA"
_PACKAGE_DIR = Path(__file__).resolve().parent
#: Where a wheel keeps ``configs/`` and ``results/`` (filled by the build step in ``setup.py``).
PACKAGE_DATA = _PACKAGE_DIR / "_data"


def source_root() -> Path | None:
    """The repository root when harl_mini is imported from a clone, else None (an installed wheel).

    A clone is recognised by the ``pyproject.toml`` of this project next to the package folder.
    """
    parent = _PACKAGE_DIR.parent
    try:
        text = (parent / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return parent if 'name = "harl_mini"' in text else None


def _locate() -> tuple[Path | None, str]:
    """``(data root or None, how it was found)``."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser(), f"${ENV_VAR}"
    clone = source_root()
    if clone is not None:
        return clone, "the clone holding harl_mini"
    if PACKAGE_DATA.is_dir():
        return PACKAGE_DATA, "the installed package's data"
    return None, "nowhere"


def origin() -> str:
    """Where the data root comes from: ``"$HARL_MINI_DATA"``, a clone, or the installed package."""
    return _locate()[1]


def root() -> Path:
    """The data root (see the module docstring); HarlMiniError when there is none."""
    found, how = _locate()
    if found is None:
        raise HarlMiniError(f"harl_mini's data (configs/, results/) not found: {_PACKAGE_DIR} is neither in a "
                            f"clone of the repository nor an install with package data ({PACKAGE_DATA}); set "
                            f"{ENV_VAR} to a folder holding configs/ and results/, e.g. a clone")
    if not found.is_dir():
        raise HarlMiniError(f"{ENV_VAR}={os.environ.get(ENV_VAR)!r}: no such folder")
    return found


def _relative(rel) -> PurePosixPath:
    text = str(rel).replace("\\", "/")
    parts = PurePosixPath(text)
    if not text or parts.is_absolute() or ".." in parts.parts:
        raise HarlMiniError(f"data path: expected a path relative to the data root such as "
                            f"'results/games', got {str(rel)!r}")
    return parts


def find(rel) -> Path | None:
    """``root() / rel`` if that file or folder exists, else None (also when there is no data root)."""
    rel = _relative(rel)
    found, _ = _locate()
    if found is None:
        return None
    candidate = found.joinpath(*rel.parts)
    return candidate if candidate.exists() else None


def path(rel) -> Path:
    """The file or folder ``rel`` (e.g. ``"results/games"``) under the data root.

    Raises HarlMiniError naming ``rel``, the data root and its origin when it does not exist.
    """
    found = find(rel)
    if found is not None:
        return found
    base = root()  # raises the "no data at all" message first
    rel = _relative(rel)
    top = base / rel.parts[0]
    hint = "" if top.exists() else f" (the data root has no {rel.parts[0]}/ at all)"
    raise HarlMiniError(f"{rel} not found in harl_mini's data root {base} ({origin()}){hint}; "
                        f"set {ENV_VAR} to a folder that has it, e.g. a clone of the repository")


def config(name) -> Path:
    """The named config ``configs/<name>``, e.g. ``config("mpe/simple_spread/happo.yaml")``."""
    return path(PurePosixPath("configs") / _relative(name))
