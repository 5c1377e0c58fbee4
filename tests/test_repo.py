"""The test suite itself: it writes only in temporary folders (conftest.py fails a run that changes the work
tree; these check the pieces of that)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import GRAPHS, git_status
from test_fuzz import invoke


def test_a_fuzzed_relative_output_lands_in_a_scratch_folder_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    o = invoke(["export", str(GRAPHS / "apple.yaml"), "-o", "--set"])  # `-o` takes `--set` as its file name
    assert o.exit_code == 0, o.show()
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_status_sees_a_new_file_and_nothing_outside_a_checkout(tmp_path):
    assert git_status(tmp_path) is None  # not a checkout
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert git_status(tmp_path) == ""
    (tmp_path / "--set").write_text("digraph {}\n")
    assert git_status(tmp_path) == "?? --set\n"
    (tmp_path / "sub").mkdir()
    assert git_status(tmp_path / "sub") is None  # only the top of a checkout is watched
