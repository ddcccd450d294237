"""The command line: parse arguments, call the pipeline, print what it returns, turn errors into an exit code.

No work happens here: every command is one call of ``pipeline`` (and ``text`` for what to print).
Only click is imported at start-up; the pipeline (pandas, numpy) is imported inside the commands
that need it, so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import shlex
import signal
import sys
import traceback

import click

from . import __version__
from .errors import DISK_FULL_FIX, ConfigError, ExitCode, RnnForecastError, Terminated, disk_full, first_line
from .masking import mask_secrets

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Group(click.Group):
    """Runs a command and maps failures to exit codes in one place."""

    def invoke(self, ctx: click.Context):
        previous = _terminate_like_ctrl_c()
        try:
            return super().invoke(ctx)
        except RnnForecastError as e:
            _fail(ctx, f"error: {e.one_line()}", int(e.exit_code))
        except Terminated:
            _fail(ctx, "terminated (SIGTERM)", int(ExitCode.TERMINATED))
        except KeyboardInterrupt:
            _fail(ctx, "interrupted", int(ExitCode.INTERRUPTED))
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as e:  # a full disk is the machine's state, not a bug; anything else is a bug: say so
            why = disk_full(e)
            if why:
                where = getattr(e, "filename", None)
                _fail(ctx, f"error: {f'{where}: ' if where else ''}disk full ({why}). Fix: {DISK_FULL_FIX}.", 1)
            _fail(
                ctx,
                f"error: internal error: {type(e).__name__}: {first_line(e)} (rerun with --traceback and report it)",
                1,
            )
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _terminate_like_ctrl_c():
    """SIGTERM (kill, systemd, schedulers) raises ``Terminated``, a KeyboardInterrupt, so it gets Ctrl-C's cleanup.

    Returns the previous handler, or None off the main thread (where Python cannot set handlers).
    """

    def terminate(signum, frame):
        raise Terminated

    try:
        return signal.signal(signal.SIGTERM, terminate)
    except ValueError:
        return None


def _fail(ctx: click.Context, message: str, code: int):
    if (ctx.obj or {}).get("traceback"):
        traceback.print_exc()
    click.echo(mask_secrets(" ".join(message.split())), err=True)
    ctx.exit(code)


def _config(path: str, overrides: tuple[str, ...]):
    from .config import load_config  # PyYAML and the config schema: not needed by --help
    from .starter import refuse_data_file

    refuse_data_file(path)  # a CSV where a config belongs: answer with the init command
    return load_config(path, overrides)


def _config_path(path: str, overrides: tuple[str, ...]) -> str:
    """How the user named the config, ``--set`` options included: for the resume hints the run writes."""
    return shlex.quote(path) + "".join(f" --set {shlex.quote(o)}" for o in overrides)  # pastes into a shell


def _warn(warnings: list[str]) -> None:
    for w in warnings:
        click.echo(mask_secrets(w), err=True)


set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key, e.g. --set training.epochs=3 (repeatable).",
)
config_argument = click.argument("config", type=click.Path(dir_okay=False))
json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document on stdout (fields: docs/json.md); the human text goes to stderr.",
)


def count_option(name: str, default: int, help: str):
    """An option that counts something (runs, folds, trials, rows): a whole number >= 1 with a shown default."""
    return click.option(name, type=click.IntRange(min=1), default=default, show_default=True, help=help)


def _result(human: str, as_json: bool, document) -> None:
    """The human text on stdout, or with --json on stderr and ``document()`` (a JSON string) on stdout."""
    click.echo(mask_secrets(human), err=as_json)
    if as_json:
        click.echo(mask_secrets(document()))


def executor_options(workers_help: str):
    """``--workers``, ``--executor`` and ``--address``: where the many trainings of compare and tune run."""

    def decorate(command):
        for option in reversed(
            (
                count_option("--workers", 1, workers_help),
                click.option(
                    "--executor",
                    type=click.Choice(["local", "ray"]),
                    default="local",
                    show_default=True,
                    help="Where the trainings run: local processes or Ray tasks.",
                ),
                click.option(
                    "--address", help="Ray cluster address (auto, ray://host:10001); default: a local Ray runtime."
                ),
            )
        ):
            command = option(command)
        return command

    return decorate


def split_option(help_text: str):
    # the split names are series.SPLITS, written out so that --help imports nothing heavy
    return click.option(
        "--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True, help=help_text
    )


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, "--version", "-V", prog_name="rnnforecast")
@click.option("--traceback", is_flag=True, envvar="RNNFORECAST_TRACEBACK", help="Show the Python traceback on errors.")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """Forecast time series with SimpleRNN, LSTM or GRU stacks described in one YAML file.

    \b
    rnnforecast validate configs/weather_lstm.yaml   check config and data, no training
    rnnforecast train configs/weather_lstm.yaml      train, evaluate, write a run directory
    rnnforecast predict runs/<run>                   forecast the next steps
    rnnforecast compare configs/weather_lstm.yaml    SimpleRNN vs LSTM vs GRU on identical data
    rnnforecast backtest configs/weather_lstm.yaml   rolling-origin evaluation over K folds
    rnnforecast tune configs/weather_lstm.yaml       search the config's `tune:` section with Optuna
    rnnforecast inspect runs/<run>                   hidden states, gates, gradients through time
    rnnforecast report runs/<run-or-compare>         one self-contained HTML page beside it
    """
    ctx.ensure_object(dict)["traceback"] = traceback


@cli.command()
@config_argument
@set_option
@click.option("--show-config", is_flag=True, help="Also print the resolved config (every key, defaults filled in).")
def validate(config: str, overrides: tuple[str, ...], show_config: bool) -> None:
    """Check CONFIG and its data; print splits, window geometry and batch shapes. No training."""
    cfg = _config(config, overrides)
    from . import pipeline, text

    click.echo(mask_secrets(pipeline.validate(cfg)))  # the data source and --set values may hold a URL
    if show_config:
        click.echo(mask_secrets("\n" + text.resolved_config(cfg)))
    click.echo(mask_secrets("\n" + text.ready_line(_config_path(config, overrides))))


@cli.command()
@config_argument
@set_option
@click.option("--run-dir", type=click.Path(file_okay=False), help="Write the run here instead of runs/<name>-<time>/.")
@click.option(
    "--resume", type=click.Path(file_okay=False), help="Continue an interrupted run (its .partial directory)."
)
@click.option(
    "--force-resume",
    is_flag=True,
    help="With --resume: continue although the config or the data file changed since the run started.",
)
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch progress lines.")
@click.option(
    "--final-fit/--no-final-fit",
    default=None,
    help="After the held-out evaluation, train again on every row; that model forecasts (training.final_fit).",
)
@json_option
def train(
    config: str,
    overrides: tuple[str, ...],
    run_dir: str | None,
    resume: str | None,
    force_resume: bool,
    quiet: bool,
    final_fit: bool | None,
    as_json: bool,
) -> None:
    """Train the model CONFIG describes, evaluate it against baselines and write a run directory."""
    if final_fit is not None:  # a --set, so the resume hints repeat it
        overrides = (*overrides, f"training.final_fit={str(final_fit).lower()}")
    cfg = _config(config, overrides)
    from . import nextsteps, pipeline, text

    result = pipeline.train(
        cfg,
        config_path=_config_path(config, overrides),
        run_dir=run_dir,
        resume=resume,
        quiet=quiet,
        force_resume=force_resume,
    )
    head, last = result.table.rsplit("\n", 1)  # the last line stays "run directory: ..."
    human = f"{head}\n{nextsteps.train_next(result.run_dir, result.decimals, result.latest)}\n\n{last}"
    _result(human, as_json, lambda: text.train_json(result.metrics, result.run_dir, result.timing))


@cli.command()
@click.argument("run", type=click.Path())
@click.option(
    "--data", "data_path", type=click.Path(dir_okay=False), help="Evaluate on this file instead of the run's own data."
)
@split_option("Which split's windows to score.")
@json_option
@click.option(
    "--output",
    "-o",
    type=click.Path(),
    help="Also write every window's forecast here as CSV, one row per window, lead and target.",
)
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
def evaluate(run: str, data_path: str | None, split: str, as_json: bool, output: str | None, force: bool) -> None:
    """Score a trained RUN and the naive baselines on identical windows, in original units."""
    from . import pipeline, text

    ev, warnings = pipeline.evaluate(run, data_path, split, output, force=force)
    _warn(warnings)
    _result(text.evaluation_text(ev), as_json, lambda: text.evaluation_json(ev, run, output))
    if output:
        click.echo(f"predictions written to {output}", err=True)


@cli.command()
@click.argument("run", type=click.Path())
@click.option(
    "--data",
    "data_path",
    type=click.Path(dir_okay=False),
    help="Forecast from the end of this file instead of the run's data.",
)
@click.option("--output", "-o", type=click.Path(), help="Write the forecast CSV here (default: print it).")
@click.option("--plot", type=click.Path(), help="Draw history and forecast into this PNG.")
@click.option("--force", is_flag=True, help="Replace an existing --output or --plot file.")
@click.option(
    "--allow-missing-tail",
    is_flag=True,
    help="Forecast although the last target values of --data are missing (they are filled; a warning says so).",
)
@json_option
def predict(
    run: str,
    data_path: str | None,
    output: str | None,
    plot: str | None,
    force: bool,
    allow_missing_tail: bool,
    as_json: bool,
) -> None:
    """Forecast the next `horizon` steps after the data's last row, in the data's units and timestamps."""
    from . import pipeline, text

    p = pipeline.predict(run, data_path, output=output, plot=plot, allow_missing_tail=allow_missing_tail, force=force)
    _warn(p.warnings)
    if output:
        click.echo(f"forecast written to {output}", err=True)
    elif not as_json:
        from .nextsteps import printed_forecast_csv

        csv, note = printed_forecast_csv(p.table, p.data)
        click.echo(csv, nl=False)
        click.echo(note, err=True)
    if plot:
        click.echo(f"plot written to {plot}", err=True)
    if as_json:
        click.echo(mask_secrets(text.forecast_json(p.table, run, p.data.frame.path, output, plot)))


def _cells(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    from .compare import parse_cells

    try:
        return parse_cells(value)
    except ConfigError as e:
        raise click.BadParameter(f"{e.message}; {e.fix}") from None


@cli.command()
@config_argument
@set_option
@click.option(
    "--cells",
    default="simple_rnn,lstm,gru",
    show_default=True,
    callback=_cells,
    help="Comma-separated cells to compare (simple_rnn, lstm, gru, dense).",
)
@click.option("--dense", is_flag=True, help="Add the non-recurrent dense reference model.")
@count_option("--repeats", 1, "Seeds per cell (seed, seed+1, ...); tables show mean ± std.")
@click.option(
    "--out", type=click.Path(file_okay=False), help="Write the comparison here instead of runs/<name>-compare-<time>/."
)
@executor_options("Runs trained at once; above 1 each run is a task of --executor (no per-epoch lines).")
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch progress lines.")
@json_option
def compare(config: str, overrides: tuple[str, ...], cells: list[str], dense: bool, as_json: bool, **options) -> None:
    """Train each cell on identical data, windows, epochs and seeds; rank them on the test split.

    Writes one run directory per cell and seed, compare.json, compare.md and plots/ into the
    comparison directory.
    """
    cfg = _config(config, overrides)
    from . import pipeline, text

    cells_ = cells + ["dense"] if dense and "dense" not in cells else cells
    result = pipeline.compare(cfg, config_path=_config_path(config, overrides), cells=cells_, **options)
    _result(result.table, as_json, lambda: text.compare_json(result.record, result.out))


def _levels(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, ...]:
    from .intervals import check_levels  # the one rule for levels (numpy: after --help)

    try:
        return check_levels([float(v) for v in value.split(",") if v.strip()])
    except ValueError:
        raise click.BadParameter(
            f"levels must be comma-separated percentages between 0 and 100, e.g. 80,95. Received: {value!r}"
        ) from None


def _refit(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from .folds import parse_refit

    try:
        parse_refit(value)
    except ConfigError as e:
        raise click.BadParameter(f"{e.message}; {e.fix}") from None
    return value.strip().lower()


@cli.command()
@config_argument
@set_option
@count_option("--folds", 4, "Number of folds (origins).")
@click.option(
    "--step",
    type=click.IntRange(min=1),
    help="Steps between origins, and forecast starts per fold [default: the folds tile the config's test split].",
)
@click.option(
    "--refit",
    default="all",
    show_default=True,
    callback=_refit,
    help="all: train every fold; none: train once and slide the origin; every:N: retrain every N folds.",
)
@click.option(
    "--levels", default="80,95", show_default=True, callback=_levels, help="Interval levels in percent (conformal)."
)
@count_option("--workers", 1, "Models trained at once.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Backtest directory (default runs/<name>-backtest-<time>/); rerun with it to resume.",
)
@json_option
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch progress lines.")
def backtest(config: str, overrides: tuple[str, ...], as_json: bool, **options) -> None:
    """Rolling-origin backtest: K folds over the end of the series, each trained on everything before it.

    Each fold validates on the stretch just before its origin (early stopping, conformal calibration) and
    forecasts every window of its test stretch. Writes predictions.csv, metrics.json and plots/.
    """
    cfg = _config(config, overrides)
    from . import pipeline, text

    result = pipeline.backtest(cfg, config_path=_config_path(config, overrides), **options)
    _result(result.table, as_json, lambda: text.backtest_json(result.record, result.out))


@cli.command()
@config_argument
@set_option
@count_option("--trials", 20, "Finished trials the study should hold.")
@click.option(
    "--timeout", type=click.FloatRange(min=0, min_open=True), help="Stop starting trials after this many seconds."
)
@click.option(
    "--metric",
    type=click.Choice(["val_mae", "val_rmse", "val_mse", "val_mase", "val_loss"]),
    default="val_mae",
    show_default=True,
    help="Validation-split metric to minimise.",
)
@executor_options("Trials run at once.")
@click.option("--storage", metavar="URL", help="Study database shared by several processes, e.g. postgresql://host/db.")
@click.option("--study", "study_name", help="Study name in the storage (default: the config's name).")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Tune directory (default tunes/<name>-<time>/); rerun with it to resume.",
)
@click.option("--quiet", "-q", is_flag=True, help="No per-trial progress lines.")
@json_option
def tune(config: str, overrides: tuple[str, ...], as_json: bool, **options) -> None:
    """Search the config's `tune:` section with Optuna on the validation split, then train the best config once.

    Writes every trial's run directory, trials.csv, best.yaml, plots/ and the best run into the tune directory.
    """
    from . import text
    from . import tune as T

    result = T.tune(config, overrides, **options)
    _result(result.table, as_json, lambda: text.tune_json(result.summary, result.directory))


@cli.command("inspect")
@click.argument("run", type=click.Path())
@click.option(
    "--window",
    "window_index",
    type=int,
    default=0,
    show_default=True,
    help="Which window of the split to draw (0 = the first).",
)
@split_option("Which split's windows to use.")
@click.option(
    "--output",
    "-o",
    type=click.Path(),
    help="A new or empty directory, or an earlier inspection (default: RUN-inspect beside RUN).",
)
def inspect_command(run: str, window_index: int, split: str, output: str | None) -> None:
    """Look inside a trained RUN: hidden states, gates, gradient flow through time, input saliency.

    Writes PNGs and inspect.json into RUN-inspect/ beside RUN (the run itself is never written into);
    report shows them in the run's page.
    """
    from . import pipeline
    from .text import inspect_text

    numbers, out, warnings = pipeline.inspect_run(run, split, window_index, output)
    _warn(warnings)
    click.echo(inspect_text(numbers, split, out))


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--output", "-o", type=click.Path(), help="Write the HTML here (default: DIRECTORY-report.html beside DIRECTORY)."
)
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
def report(directory: str, output: str | None, force: bool) -> None:
    """Write one self-contained HTML report of a run, comparison, backtest or tune DIRECTORY (images embedded)."""
    from . import report as R

    path = R.write_report(directory, output, force)
    click.echo(f"report written to {path}")


@cli.command()
@click.argument("data", type=click.Path())  # a directory: one error line (starter.init), not click's usage block
@click.option("--target", help="Column to forecast (default: guessed from the names, and said so).")
@click.option("--horizon", type=click.IntRange(min=1), help="Steps to forecast at once (default: from the step).")
@click.option("--time-column", help="The timestamp column, when several columns hold timestamps.")
@click.option(
    "--time-unit",
    type=click.Choice(["year", "s", "ms", "us", "ns"]),
    help="What a numeric time column counts: whole years, or s/ms/us/ns since 1970 (YEAR columns: found alone).",
)
@click.option(
    "--output",
    "-o",
    default="config.yaml",
    show_default=True,
    type=click.Path(),
    help="Where to write the config.",
)
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
def init(
    data: str, target: str | None, horizon: int | None, time_column: str | None, time_unit: str | None, **kw
) -> None:
    """Look at DATA (CSV or Parquet) and write a commented starter config for it, checked by validate."""
    from .starter import init as write_starter

    click.echo(write_starter(data, target=target, horizon=horizon, time_column=time_column, time_unit=time_unit, **kw))


@cli.command()
@click.argument("run", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["savedmodel", "onnx"]), required=True, help="What to write.")
@click.option(
    "--output",
    "-o",
    type=click.Path(),  # a file there: one error line (export.target_dir), not click's usage block
    help="A new or empty directory (default: RUN-export-FORMAT beside RUN).",
)
def export(run: str, fmt: str, output: str | None) -> None:
    """Export RUN as a model that takes raw input windows and returns forecasts in original units.

    Writes the model, signature.json (input and output columns, shapes) and example.json (one window
    and its forecast) into a new directory.
    """
    from .export import export_run

    click.echo(export_run(run, fmt, output))


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="TCP port.")
@count_option("--workers", 1, "Server processes (with --ray: replicas).")
@click.option(
    "--token-env", metavar="VAR", help="Require 'Authorization: Bearer <$VAR>' on every route but / and /health."
)
@count_option("--max-rows", 10_000, "Rows per request.")
@count_option("--max-bytes", 1 << 20, "Bytes per request.")
@click.option("--ray", "on_ray", is_flag=True, help="Deploy on Ray Serve instead, --workers replicas over the cluster.")
@click.option("--address", help="With --ray: the cluster (auto, ray://host:10001); default: a local Ray runtime.")
def serve(runs: tuple[str, ...], host: str, port: int, workers: int, token_env: str | None, **limits) -> None:
    """Answer forecasts over HTTP from the trained RUNS, each loaded once (docs/serve.md).

    POST /v1/runs/<run>/forecast with {"data": [rows]} or CSV; GET /v1/runs, /health, /metrics, /openapi.json;
    a page at /. SIGHUP reloads every run; SIGTERM finishes the requests in flight and stops.
    """
    from . import serve as S  # starlette, uvicorn, pandas: not for --help

    options = S.Options(list(runs), token_env, limits["max_bytes"], limits["max_rows"])
    if limits["on_ray"]:
        from .serve_ray import run

        run(options, host, port, workers, limits["address"])
    else:
        signal.signal(signal.SIGTERM, lambda *_: None)  # uvicorn answers it and re-raises it when it has stopped
        S.serve(options, host, port, workers)
    click.echo("stopped", err=True)


@cli.command("config")
def show_config() -> None:
    """Print every config key with its default and meaning."""
    from .config import default_config_yaml

    click.echo(default_config_yaml(), nl=False)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="rnnforecast", standalone_mode=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
