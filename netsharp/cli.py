"""The `netsharp` command. Thin: it parses options, calls the library, and owns the exit codes.

Exit status: 0 success, 1 an error in the user's program or data, 2 a usage error,
3 an internal error (a bug in netsharp).
"""

from __future__ import annotations

import json
import sys

import click

from . import __version__
from .errors import NetsharpError

TASKS = ("multiclass", "binary", "regression")


class _Group(click.Group):
    """Turns a NetsharpError into its message and exit status 1, unless --traceback is given."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NetsharpError as error:
            if ctx.params.get("traceback"):
                raise
            click.echo(str(error), err=True)
            ctx.exit(1)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as error:  # a bug in netsharp, not the user's mistake
            if ctx.params.get("traceback"):
                raise
            click.echo(f"netsharp: internal error: {type(error).__name__}: {error}\n"
                       "  = note: run again with --traceback and report it", err=True)
            ctx.exit(3)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--traceback", is_flag=True, help="Show Python tracebacks (for bug reports).")
@click.version_option(version=__version__, prog_name="netsharp")
def main(traceback: bool) -> None:
    """netsharp: compile and train Net# neural networks."""


def _context_options(function):
    options = [
        click.option("--features", type=click.IntRange(min=1),
                     help="Number of input features (resolves `auto` input layers)."),
        click.option("--classes", type=click.IntRange(min=1),
                     help="Number of classes (resolves an `auto` output layer)."),
        click.option("--task", type=click.Choice(TASKS),
                     help="Learning task; decides the output layer's default function."),
        click.option("--hidden-size", type=click.IntRange(min=1), default=100,
                     show_default=True, help="Size of `auto` hidden layers."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@main.command("compile")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document per file.")
@_context_options
def compile_command(files, as_json, features, classes, task, hidden_size) -> None:
    """Check Net# programs and report every layer's shape, nodes, bundles and weights."""
    from .compiler import compile_file

    failed = False
    for index, path in enumerate(files):
        try:
            network = compile_file(path, features=features, classes=classes, task=task,
                                   hidden_size=hidden_size)
        except NetsharpError as error:
            if click.get_current_context().find_root().params.get("traceback"):
                raise
            click.echo(str(error), err=True)
            failed = True
            continue
        if as_json:
            click.echo(json.dumps(network.to_dict()))
        else:
            click.echo(("\n" if index else "") + network.summary())
    sys.exit(1 if failed else 0)


@main.command("train")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", "data_spec", required=True,
              help="mnist, fashion-mnist, or a directory of MNIST-style IDX files.")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam",
              show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True),
              help="Learning rate (default: the optimizer's).")
@click.option("--momentum", type=click.FloatRange(min=0, max=1), help="SGD momentum.")
@click.option("--weight-decay", type=click.FloatRange(min=0))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--validation-split", type=click.FloatRange(min=0, max=0.5), default=0.0,
              show_default=True, help="Fraction of the training images held out each epoch.")
@click.option("--limit", type=click.IntRange(min=1), help="Train on the first N images only.")
@click.option("--output", type=click.Path(file_okay=False), default="netsharp-run",
              show_default=True, help="Directory for model.safetensors and metrics.json.")
@click.option("--cache", type=click.Path(file_okay=False),
              help="Download cache (default $NETSHARP_CACHE or ~/.cache/netsharp).")
def train_command(model, data_spec, output, cache, **options) -> None:
    """Train a Net# network on a data set, evaluate it on the test set, save it."""
    from pathlib import Path

    from .train import TrainOptions, train

    settings = TrainOptions(output=Path(output), cache=Path(cache) if cache else None, **options)
    train(Path(model), data_spec, settings, say=click.echo)
