"""The ``graphcnn`` group: its help, its error handling, and the list of its commands."""

from __future__ import annotations

import os
from typing import Any

import click

from graphcnn.cli import analyze, bench, compile, draw, onnx_import, passes, search, spec, train
from graphcnn.version import __version__

EXIT_SPEC_ERROR = 2
EXIT_INTERNAL_ERROR = 1


class _Group(click.Group):
    """Turns graphcnn errors into one clear message and exit code 2 (no traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        from graphcnn.errors import GraphcnnError

        try:
            return super().invoke(ctx)
        except GraphcnnError as e:
            click.echo(e.format(), err=True)
            ctx.exit(EXIT_SPEC_ERROR)
        except RecursionError:
            click.echo("error: the spec nests too deeply to process", err=True)
            ctx.exit(EXIT_SPEC_ERROR)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as e:
            # NOTE: bad input is always a GraphcnnError; anything else is a bug, said as one
            # line (exit 1, not 2: a bug must not pass for a user error).
            if os.environ.get("GRAPHCNN_DEBUG"):
                raise
            click.echo(
                f"internal error: {type(e).__name__}: {str(e)[:300]}\n"
                "  this is a bug in graphcnn, please report it with the command you ran "
                "(GRAPHCNN_DEBUG=1 shows the traceback)",
                err=True,
            )
            ctx.exit(EXIT_INTERNAL_ERROR)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="graphcnn")
def main() -> None:
    """graphcnn: compile CNN architecture specs (.gcnn) to a typed IR and profile them exactly.

    SPEC_OR_MODEL is a zoo model name (see `graphcnn list`), a path to a .gcnn file or an
    .onnx file (imported as `graphcnn import` does).

    \b
    Examples:
      graphcnn list
      graphcnn check resnet50
      graphcnn profile resnet50 --depth 1
      graphcnn profile my_net.gcnn --set classes=10 --input 3x32x32 --json
      graphcnn dump googlenet
      graphcnn compile resnet18 --target torch -o resnet18.py
    """


COMMANDS: tuple[click.Command, ...] = (
    spec.list_cmd,
    spec.check,
    spec.dump,
    passes.passes_cmd,
    compile.compile_cmd,
    spec.profile_cmd,
    analyze.analyze_cmd,
    draw.draw_cmd,
    onnx_import.import_cmd,
    bench.bench_cmd,
    train.train_cmd,
    search.search_cmd,
)
"""Every command of the group (``graphcnn --help`` lists them by name)."""

for _command in COMMANDS:
    main.add_command(_command)
