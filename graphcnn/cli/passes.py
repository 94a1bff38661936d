"""``graphcnn passes``: the transform passes and the named pipelines."""

from __future__ import annotations

import click


@click.command("passes")
def passes_cmd() -> None:
    """List the transform passes and the named pipelines."""
    from graphcnn.passes import PASSES, PIPELINES, describe

    for name in PASSES:
        click.echo(f"{name:26s} {describe(name).split(': ', 1)[-1]}")
    click.echo("")
    for name, names in PIPELINES.items():
        click.echo(f"pipeline {name}: {', '.join(names) or '(no passes)'}")
