"""Layout: passes/ and backends/ install as graphcnn.passes / graphcnn.backends only."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.parametrize("pkg", ["passes", "backends"])
def test_bare_import_is_refused(pkg: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", f"import {pkg}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode != 0
    assert f"must be imported as 'graphcnn.{pkg}'" in proc.stderr


@pytest.mark.parametrize("pkg", ["graphcnn.passes", "graphcnn.backends"])
def test_namespaced_import_works(pkg: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", f"import {pkg}; print({pkg}.__file__)"],
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("__init__.py")


def test_package_data_ships_grammar_and_zoo() -> None:
    from graphcnn import zoo
    from graphcnn.lang.parser import GRAMMAR

    assert GRAMMAR.is_file() and GRAMMAR.suffix == ".lark"
    assert len(list(zoo.ZOO_DIR.glob("*.gcnn"))) >= 12
    assert (REPO / "graphcnn" / "py.typed").is_file()
