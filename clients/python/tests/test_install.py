"""Installing the client as a user would, outside the repository: from a clean copy of the checkout
(what a clone of it holds: the tracked files and the new ones git does not ignore; no virtualenv,
no build output), ``pip install <clone>/clients/python`` into a fresh virtualenv, and a wheel
built with ``pip wheel`` into another; each then imports the package from a directory outside the
repository and makes real calls, sync and asyncio, with the packaged tool definition.

Needs git and PyPI (pip fetches hatchling to build, and grpcio and protobuf); each step is
bounded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
STEP_TIMEOUT = 300

CHECK = """
import asyncio, sys
import council_client as cc
from council_client import aio

addr, repo = sys.argv[1], sys.argv[2]
assert not cc.__file__.startswith(repo), f"imported from the checkout: {cc.__file__}"
with cc.connect(addr) as council:
    assert len(council.reviewers().reviewers) == 5

async def main() -> str:
    async with aio.connect(addr) as council:
        suggestion = cc.suggestion_from_tool_input(
            {"id": sys.argv[3], "title": "Installed", "risk": "low", "impact": "minimal"}
        )
        decision = await council.review(suggestion)
        return decision.id

print("decision", asyncio.run(main()), cc.tool_definition()["name"], cc.__file__)
"""


def _run(args: Sequence[str | Path], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {done.returncode}\n"
            f"--- stdout ---\n{done.stdout[-5000:]}\n--- stderr ---\n{done.stderr[-5000:]}",
            pytrace=False,
        )
    return done.stdout


def _clean_clone(dest: Path) -> Path:
    """The files of clients/python a clone of this checkout would have (as if committed now)."""
    if shutil.which("git") is None:
        pytest.fail("git is needed to copy the checkout as a clone would", pytrace=False)
    listed = _run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "clients/python"],
        REPO,
    )
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the work tree is not in the clone
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    package = dest / "clients" / "python"
    assert (package / "pyproject.toml").is_file()
    assert not (package / ".venv").exists()
    return package


def _venv(path: Path, cwd: Path) -> Path:
    _run([sys.executable, "-m", "venv", path], cwd)
    return path / "bin" / "python"


@pytest.mark.timeout(4 * STEP_TIMEOUT)
def test_pip_install_and_a_built_wheel_work_outside_the_repository(
    addr: str, tmp_path: Path, new_id: Callable[[str], str]
) -> None:
    scratch = tmp_path / "project"  # the user's project, outside the repository
    scratch.mkdir()
    package = _clean_clone(tmp_path / "clone")
    (scratch / "check.py").write_text(CHECK)

    # pip install <clone>/clients/python
    python = _venv(tmp_path / "venv", scratch)
    _run([python, "-m", "pip", "install", "--quiet", package], scratch)
    out = _run([python, "check.py", addr, str(REPO), new_id("dir")], scratch)
    assert "council_review" in out and str(tmp_path / "venv") in out

    # pip wheel, then the wheel alone into another fresh virtualenv.
    dist = tmp_path / "dist"
    _run([python, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, package], scratch)
    wheels = list(dist.glob("council_client-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
    for needed in (
        "council_client/council_review.json",
        "council_client/py.typed",
        "council_client/aio.py",
        "council_client/_gen/council/v1/council_service_pb2_grpc.py",
        "council_client/_gen/council/v1/review_pb2.pyi",
    ):
        assert needed in names, f"{needed} is not in {wheels[0].name}"
    python2 = _venv(tmp_path / "venv-wheel", scratch)
    _run([python2, "-m", "pip", "install", "--quiet", wheels[0]], scratch)
    out = _run([python2, "check.py", addr, str(REPO), new_id("wheel")], scratch)
    assert "council_review" in out and str(tmp_path / "venv-wheel") in out
