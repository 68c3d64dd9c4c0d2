"""Build step that ships the book's data inside the wheel (the metadata is in pyproject.toml).

``configs/`` and ``results/`` are top-level folders of the repository, next to the package.
A wheel copies them into ``harl_mini/_data/`` so that :mod:`harl_mini.data` finds them after
a normal ``pip install``. An editable install copies nothing: it reads the clone's folders.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: top-level folder -> file suffixes shipped from it (recursively). Training outputs written
#: into a clone (results/runs/, checkpoints, logs) are never shipped.
SHIPPED = {"configs": (".yaml", ".md"), "results": (".csv", ".json", ".txt", ".md")}
SKIPPED_DIRS = {"runs", "checkpoints", "tb", "__pycache__"}


def shipped_files():
    for top, suffixes in SHIPPED.items():
        for file in sorted((ROOT / top).rglob("*")):
            rel = file.relative_to(ROOT)
            if file.is_file() and file.suffix in suffixes and not SKIPPED_DIRS & set(rel.parts[:-1]):
                yield rel


class BuildPyWithData(build_py):
    """``build_py`` that also copies the shipped data into ``<build>/harl_mini/_data/``."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for rel in shipped_files():
            target = Path(self.build_lib) / "harl_mini" / "_data" / rel
            self.mkpath(str(target.parent))
            self.copy_file(str(ROOT / rel), str(target))


setup(cmdclass={"build_py": BuildPyWithData})
