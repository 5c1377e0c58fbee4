"""The typer app, `cgcalc`: every command registered, and main(), the console script."""

from __future__ import annotations

import gc
import io
import signal
import sys

_gc_was_on = gc.isenabled()
gc.disable()  # importing typer (and later rich) makes ~50,000 objects: no collection is worth running meanwhile

from . import batch, commands, derive, fit, schema, whatif  # noqa: E402, F401 - their @app.command()s register the commands
from .common import _STOP_SIGNALS, _ClosedStdout, _stopped, _terminate, app  # noqa: E402

ORDER = [
    "run",
    "check",
    "trace",
    "export",
    "derive",
    "hessian",
    "sweep",
    "tornado",
    "solve",
    "fit",
    "batch",
    "validate",
    "ops",
    "schema",
]  # as --help lists them
app.registered_commands.sort(key=lambda c: ORDER.index(c.name or c.callback.__name__))


def main() -> None:
    # Typer turns every command's signature into click parameters before running one (~12 ms for all of
    # them): for `cgcalc COMMAND ...` register only that command. (The callback keeps the app a group,
    # so the command line is read the same way; `cgcalc --help` and a mistyped command see them all.)
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    chosen = [c for c in app.registered_commands if (c.name or c.callback.__name__) == name]
    if chosen:
        app.registered_commands[:] = chosen
    # A command other than batch is short, and makes no garbage cycles worth collecting: the collector
    # stays off (5 ms of a 100 ms start-up). batch and fit may run for hours: they get the collector back.
    if name in ("batch", "fit"):
        gc.enable()
    else:
        gc.disable()
    for sig in _STOP_SIGNALS:
        if signal.getsignal(sig) is signal.SIG_DFL:  # (`nohup` ignores SIGHUP: then so does cgcalc)
            signal.signal(sig, _terminate)
    if sys.stdout is None:
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(_ClosedStdout()), encoding="utf-8")
    try:
        app()
    except KeyboardInterrupt as e:
        # a Ctrl-C outside a command's own handling: before it, or a second one while the first ends the run
        # (pyarrow reports one Ctrl-C twice: its own KeyboardInterrupt, then Python's pending signal), which
        # Python would otherwise end by killing the process with SIGINT after the clean-up was done
        sys.exit(_stopped(e))


if _gc_was_on:
    gc.enable()  # imported by a program (a test, say) rather than run as `cgcalc`: as it was
