"""Code run in a fresh interpreter, where what it imports is visible: ``imported(code, "torch")``
is what a test asserts when a path must stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_python(code: str) -> str:
    """Run ``code`` (dedented) with this interpreter in a new process in the repo root; it must
    exit 0. Returns its stdout."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def imported(code: str, *modules: str) -> list[str]:
    """Those of ``modules`` a fresh interpreter has imported once ``code`` ran, sorted."""
    report = f"\nimport sys\nprint(sorted(m for m in {modules!r} if m in sys.modules))\n"
    out = run_python(textwrap.dedent(code) + report)
    return list(ast.literal_eval(out.strip().splitlines()[-1]))
