"""The `netsharp` command. Thin: it parses options, calls the library, and owns the exit codes.

Exit status: 0 success, 1 an error in the user's program or data, 2 a usage error,
3 an internal error (a bug in netsharp).
"""

from __future__ import annotations

import json
import sys

import click
from click.core import ParameterSource

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


DATA_HELP = ("digits (built in, no network), mnist, fashion-mnist, a directory of IDX files, "
             "a .csv file or an .npz file.")


@main.command("train")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", default="digits", show_default=True, help=DATA_HELP)
@click.option("--label", help="CSV label column: a name or a 0-based index (default: a column "
              "named label/class/target/y, else the first).")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam",
              show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True),
              help="Learning rate (default: adam 0.001, sgd 0.01).")
@click.option("--momentum", type=click.FloatRange(min=0, max=1, max_open=True),
              help="SGD momentum.")
@click.option("--weight-decay", type=click.FloatRange(min=0))
@click.option("--lr-decay", type=click.FloatRange(min=0, max=1, min_open=True),
              help="Multiply the learning rate by this ...")
@click.option("--lr-decay-every", type=click.IntRange(min=1), help="... every this many epochs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--validation-split", type=click.FloatRange(min=0, max=0.5), default=0.0,
              show_default=True, help="Fraction of the training samples held out to validate "
              "each epoch.")
@click.option("--patience", type=click.IntRange(min=1), help="Early stopping: stop after this "
              "many epochs without a better validation loss (training loss without "
              "--validation-split) and keep the best weights.")
@click.option("--normalize", type=click.Choice(["scale", "minmax", "none"]), default="scale",
              show_default=True, help="scale: pixels to [0, 1]; minmax: each feature to [0, 1] "
              "by the training set's range; none: raw values.")
@click.option("--limit", type=click.IntRange(min=1), help="Train on the first N samples only.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads for the kernels and BLAS "
              "(default: all cores).")
@click.option("--output", type=click.Path(file_okay=False), default="netsharp-run",
              show_default=True, help="Directory for the model, checkpoint, metrics and plots.")
@click.option("--resume", is_flag=True, help="Continue the run whose checkpoint is in --output.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier run in --output.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG learning curve and confusion matrix.")
@click.option("--cache", type=click.Path(file_okay=False),
              help="Download cache (default $NETSHARP_CACHE or ~/.cache/netsharp).")
@click.pass_context
def train_command(ctx, model, output, cache, no_plots, **options) -> None:
    """Train a Net# network, evaluate it on the test set, save model, checkpoint and reports."""
    from pathlib import Path

    from .train import TrainOptions, train

    if options["resume"] and options["overwrite"]:
        raise click.UsageError("--resume and --overwrite exclude each other")
    explicit = frozenset(name for name in options
                         if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE)
    settings = TrainOptions(output=Path(output), cache=Path(cache) if cache else None,
                            plots=not no_plots, **options)
    metrics = train(Path(model), settings, say=click.echo, explicit=explicit)
    if metrics.get("stopped") == "interrupted":
        sys.exit(130)


@main.command("evaluate")
@click.argument("model", type=click.Path())
@click.option("--data", default="digits", show_default=True, help=DATA_HELP)
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@click.option("--label", help="CSV label column: a name or a 0-based index.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON document.")
@click.option("--cache", type=click.Path(file_okay=False), help="Download cache.")
def evaluate_command(model, data, split, label, as_json, cache) -> None:
    """Loss, accuracy and confusion matrix of a trained model (a .safetensors file)."""
    from .inference import evaluate, format_evaluation

    result = evaluate(model, data, split=split, cache=cache, label=label)
    click.echo(json.dumps(result) if as_json else format_evaluation(result))


@main.command("predict")
@click.argument("model", type=click.Path())
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--top", type=click.IntRange(min=1), default=1, show_default=True,
              help="Show this many most likely classes per input.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def predict_command(model, inputs, top, as_json) -> None:
    """Labels and probabilities for INPUTS: IDX, CSV or NPZ files, PNG/JPEG images or
    directories of images."""
    from .inference import format_predictions, predict

    records = predict(model, list(inputs), top=top)
    click.echo(json.dumps(records) if as_json else format_predictions(records))
