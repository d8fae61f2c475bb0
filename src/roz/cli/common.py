"""What every ``roz`` command module shares: the Typer apps, the consoles, the run-setting options
and the table printer. The command modules (``roz.cli`` itself, ``cli.results``, ``cli.overlap``,
``cli.prompts``, ...) import from here, so no module of the package imports ``roz.cli``."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from roz.engine.options import Executor

# rich_markup_mode=None: help texts are plain text (``corruption:fog:3`` is not an emoji code and
# ``[@PATH]`` is not a markup tag).
_PLAIN = dict(rich_markup_mode=None, add_completion=False, pretty_exceptions_enable=False)
app = typer.Typer(
    name="roz",
    help="ROZ - robustness of zero-shot image classifiers (CLIP and kin) vs standard ImageNet models.\n\n"
         "Natural shifts, synthetic shifts, adversarial and typographic attacks, effective/relative robustness, "
         "data-overlap analysis. Start with `roz demo` (the embedded ROZ-Mini world, offline).",
    no_args_is_help=True, **_PLAIN,
)
datasets_app = typer.Typer(help="List registered datasets and check a local copy's integrity.", no_args_is_help=False,
                           invoke_without_command=True, **_PLAIN)
world_app = typer.Typer(help="Build and train ROZ-Mini, the embedded miniature world.", no_args_is_help=True, **_PLAIN)
app.add_typer(datasets_app, name="datasets")
app.add_typer(world_app, name="world")
models_app = typer.Typer(help="Model sources and spec syntax; `roz models list LIBRARY` lists what a library knows.",
                         no_args_is_help=False, invoke_without_command=True, **_PLAIN)
app.add_typer(models_app, name="models")
console = Console(highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

# the run settings every evaluating command shares (one help text each)
BATCH = typer.Option(None, "--batch-size", "-b", help="Images per batch [default: 64].")
WORKERS = typer.Option(None, "--workers", help="DataLoader workers [default: min(4, CPUs)].")
DEVICE = typer.Option(None, "--device", help="cpu, cuda, cuda:N, mps [default: cuda if a GPU is visible, else cpu].")
AMP = typer.Option(None, "--amp/--no-amp", help="Autocast inference (fp16 on GPU, bf16 on CPU); part of the unit "
                   "identity, recorded [default: off].")
PART = typer.Option(None, "--part-size", help="Checkpoint progress every N samples [default: 2048].")
EXECUTOR = typer.Option(None, "--executor", help="local (this process) or ray [default: local].")


def _log(msg: str) -> None:
    err.print(Text(str(msg), style="dim"))


def _settings(**given) -> dict:
    """The run settings given on the command line (None = not given: the config or default applies)."""
    return {k: (str(v) if isinstance(v, Executor) else v) for k, v in given.items() if v is not None}


def _options():
    from roz.engine.options import RunOptions

    return RunOptions(progress=sys.stderr.isatty())


def _visible(text) -> str:
    """User-supplied text as printable characters: control characters (terminal escape sequences,
    newlines) are shown as ``\\xNN`` / ``\\n`` escapes, never sent to the terminal."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text))


def _cell(v) -> str:
    if isinstance(v, float):
        return "" if v != v else f"{v:.2f}"
    return _visible(v)


def _print_table(df, title: str = "") -> None:
    """A rich table on a terminal wide enough for it; otherwise plain aligned text, never folded or cut."""
    if df is None or len(df) == 0:
        console.print(Text("no finished units", style="yellow"))
        return
    df = df[[c for c in df.columns if not (df[c].astype(str).isin(["", "nan", "None"]).all())]]
    cells = [[_visible(c) for c in df.columns]] + [[_cell(v) for v in r] for r in df.itertuples(index=False)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(df.columns))]
    if console.is_terminal and sum(widths) + 3 * len(widths) + 1 <= console.width:
        t = Table(title=Text(_visible(title)) if title else None)
        for c in df.columns:
            t.add_column(Text(str(c)), justify="right" if df[c].dtype.kind in "fi" else "left", no_wrap=True)
        for row in cells[1:]:
            t.add_row(*[Text(v) for v in row])
        console.print(t)
        return
    numeric = [df[c].dtype.kind in "fi" for c in df.columns]
    if title:
        print(_visible(title))
    for row in cells:
        print("  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(row, widths, numeric)).rstrip())
