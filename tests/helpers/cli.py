"""graphcnn's command line run in-process (click's ``CliRunner``), its exit code checked."""

from __future__ import annotations

from click.testing import CliRunner, Result

from graphcnn.cli import main


def invoke(*args: str, code: int | None = 0) -> Result:
    """``graphcnn ARGS``; the exit code must be ``code`` (``None``: not checked)."""
    result = CliRunner().invoke(main, list(args))
    if code is not None:
        assert result.exit_code == code, result.output
    return result
