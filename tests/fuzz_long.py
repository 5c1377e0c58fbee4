"""The long fuzz run: the properties of tests/test_fuzz.py, for many more examples than CI affords.

    .venv/bin/python tests/fuzz_long.py                 # 20,000 examples
    .venv/bin/python tests/fuzz_long.py --examples 100000
    .venv/bin/python tests/fuzz_long.py --minutes 30    # as many as fit in 30 minutes

Not collected by pytest (its name does not start with test_). It reuses test_fuzz's strategies and
checks, runs them in batches of fresh hypothesis runs (random seeds, no example database), and prints the
number of examples, what the commands returned, every failure hypothesis found (shrunk to a minimal
example) and how often each already-known bug (test_fuzz.KNOWN_BUGS) was hit. Exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("NO_COLOR", "1")
os.environ.pop("FORCE_COLOR", None)
os.environ.setdefault("COLUMNS", "100")

import test_fuzz as tf  # noqa: E402
from hypothesis import Phase, Verbosity, given, settings  # noqa: E402
from hypothesis.errors import DeadlineExceeded, FlakyFailure  # noqa: E402

KNOWN_COMMANDS = ("run", "check", "trace", "export", "validate", "ops", "batch")
EXITS: Counter = Counter()
EXIT1: list[
    str
] = []  # a few outcomes with exit 1 (check mismatch, --strict), shown in the summary  # (command, exit code) -> count
COUNT = {"examples": 0, "invocations": 0}


def _count_invocations() -> None:
    original = tf.invoke

    def counted(args, env=None):
        o = original(args, env)
        COUNT["invocations"] += 1
        cmd = args[0] if args and args[0] in KNOWN_COMMANDS else "(other)" if args else "(none)"
        EXITS[(cmd, int(o.exit_code))] += 1
        if o.exit_code == 1 and len(EXIT1) < 8:  # computed, but a check failed: worth a look
            EXIT1.append(o.show())
        return o

    tf.invoke = counted


def describe(e: BaseException, limit: int = 4000) -> str:
    """The failure and hypothesis' notes (the falsifying example), each cut to a readable length."""
    parts = ["".join(traceback.format_exception_only(type(e), e)).strip()]
    parts += [str(n) for n in getattr(e, "__notes__", [])]
    for sub in getattr(e, "exceptions", []) or []:
        parts.append("  caused by: " + "".join(traceback.format_exception_only(type(sub), sub)).strip())
    return "\n".join(p if len(p) <= limit else p[:limit] + f" ... [{len(p) - limit:,} more characters]" for p in parts)


def timing_only(e: BaseException) -> bool:
    """Hypothesis' 'unreliable test timings': over the deadline once (a loaded machine), under it on replay."""
    return isinstance(e, FlakyFailure) and all(isinstance(x, DeadlineExceeded) for x in e.exceptions)


def make_properties(base: Path, batch: int, all_commands: bool, shrink: bool):
    phases = [Phase.generate, Phase.target] + ([Phase.shrink] if shrink else [])
    common = dict(
        max_examples=batch,
        database=None,
        phases=phases,
        verbosity=Verbosity.quiet,
        **{**tf.SETTINGS, "deadline": timedelta(seconds=10) if all_commands else tf.DEADLINE},
    )
    commands = tf.file_commands(min_size=len(tf.COMMAND_NAMES)) if all_commands else tf.file_commands()

    @settings(**common)
    @given(f=tf.graph_files(), commands=commands)
    def graph_files(f, commands):
        COUNT["examples"] += 1
        data, suffix, what = f
        tf.check_graph_file(base, data, suffix, commands, what)

    @settings(**common)
    @given(args=tf.cli_args())
    def command_lines(args):
        COUNT["examples"] += 1
        tf.check_cli_args(base, args)

    # files first and more often: they reach the most code
    return [("graph files", graph_files), ("graph files", graph_files), ("command lines", command_lines)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=20_000, help="stop after this many examples (default 20000)")
    p.add_argument("--minutes", type=float, default=None, help="stop after this many minutes instead")
    p.add_argument("--batch", type=int, default=300, help="examples per hypothesis run (default 300)")
    p.add_argument(
        "--some-commands",
        action="store_true",
        help="run a random subset of the commands on each file, as CI does (default: all of them)",
    )
    p.add_argument("--no-shrink", action="store_true", help="report failures unshrunk (faster)")
    args = p.parse_args()

    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
    limit = None if args.minutes else args.examples
    _count_invocations()
    tf.warm_up()
    failures: list[str] = []
    flakes: list[str] = []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cgcalc-fuzz-") as tmp:
        props = make_properties(Path(tmp), args.batch, not args.some_commands, not args.no_shrink)
        round_ = 0
        while True:
            if limit is not None and COUNT["examples"] >= limit:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            name, prop = props[round_ % len(props)]
            round_ += 1
            before = COUNT["examples"]
            try:
                prop()
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                break
            except BaseException as e:  # noqa: BLE001 - every failure is reported, then we go on
                # hypothesis raises one failure, or a group of distinct ones
                subs = (
                    list(e.exceptions) if isinstance(e, BaseExceptionGroup) and not isinstance(e, FlakyFailure) else [e]
                )
                for x in subs:
                    text = describe(x)
                    if timing_only(x):
                        flakes.append(f"[{name}] {text}")
                        print(
                            f"\n(slow once, fast on the rerun: a timing flake, not counted)\n{text[:600]}", flush=True
                        )
                    else:
                        failures.append(f"[{name}] {text}")
                        print(f"\nFAILURE in {name}:\n{text}", flush=True)
            elapsed = time.monotonic() - start
            print(
                f"{COUNT['examples']:,} examples ({COUNT['invocations']:,} cgcalc runs) in {elapsed:.0f} s "
                f"[{name}: {COUNT['examples'] - before} this round], failures so far: {len(failures)}",
                flush=True,
            )

    elapsed = time.monotonic() - start
    print("\n=== summary ===")
    print(
        f"examples: {COUNT['examples']:,}   cgcalc invocations: {COUNT['invocations']:,}   time: {elapsed / 60:.1f} min"
    )
    print("exit codes by command:")
    for (cmd, code), n in sorted(EXITS.items(), key=lambda kv: (kv[0][0], int(kv[0][1]))):
        print(f"  {cmd:10s} exit {int(code)}: {n:,}")
    if EXIT1:
        print("some exit-1 outcomes (check mismatches, --strict):")
        for x in EXIT1:
            print("    " + x[:800].replace("\n", "\n    "))
    if tf.KNOWN_SEEN:
        print("known bugs hit (excused; see the xfail reproducers in tests/test_fuzz.py):")
        for bug in tf.KNOWN_BUGS:
            if bug.id in tf.KNOWN_SEEN:
                print(f"  {bug.id}: {tf.KNOWN_SEEN[bug.id]:,} times - {bug.what}")
                for sample in tf.KNOWN_FIRST[bug.id]:
                    print("    e.g. " + sample[:1500].replace("\n", "\n    "))
    if flakes:
        print(f"\n{len(flakes)} timing flake(s) (over the deadline once, under it on the rerun; not failures):")
        for f in flakes:
            print(f[:600])
    if failures:
        print(f"\n{len(failures)} FAILURE(S):")
        for f in failures:
            print(f)
        return 1
    print("no new failures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
