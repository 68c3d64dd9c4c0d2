"""Run manifests name the code that ran: a commit, and whether the checkout differed from it."""

import subprocess

from harl_mini.provenance import git_info


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_git_info_flags_uncommitted_package_code_but_not_run_outputs(tmp_path):
    repo = tmp_path / "repo"
    (repo / "harl_mini").mkdir(parents=True)
    (repo / "harl_mini" / "a.py").write_text("x = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    commit, dirty = git_info(repo)
    assert len(commit) == 40 and dirty is False

    (repo / "results").mkdir()
    (repo / "results" / "metrics.csv").write_text("a\n")      # an untracked run output: still clean
    assert git_info(repo)[1] is False
    _git(repo, "add", "results")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "results")
    (repo / "results" / "metrics.csv").write_text("b\n")      # re-recording a committed run: clean
    assert git_info(repo)[1] is False

    (repo / "harl_mini" / "new.py").write_text("y = 2\n")     # untracked code in the package: dirty
    assert git_info(repo)[1] is True
    (repo / "harl_mini" / "new.py").unlink()

    (repo / "harl_mini" / "a.py").write_text("x = 2\n")       # a modified tracked file: dirty
    assert git_info(repo)[1] is True


def test_git_info_outside_git(tmp_path):
    assert git_info(tmp_path) == ("unknown", None)
