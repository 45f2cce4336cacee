"""Runs many bad-input cases in one process and records how each ended:

    python -m benchmarks.reliability.fuzz_worker PLAN.json RESULTS.jsonl

A case is either a command line of an app, run exactly as `python -m apps.<app>` runs it
(`main_guard(lambda: main(argv))`: the exit status, its stderr, an exception that
escapes), or a call of a reader (`module:function` with its arguments; the exception it
raises, as `main_guard` would print it). The folder a case names under "watch" is
fingerprinted before and after. One process saves TensorFlow's start-up for each case;
`benchmarks.reliability.fuzz` also runs a sample of the cases as separate processes.
Results are appended one JSON line a case, so a crash loses only the case it happened in.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import sys
import traceback

from benchmarks.reliability.common import fingerprint


def run_case(case: dict) -> dict:
    stderr = io.StringIO()
    status, escaped = 0, ""
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            if case["kind"] == "cli":
                from apps.common.cli import main_guard

                main = importlib.import_module(f"apps.{case['app']}.__main__").main
                main_guard(lambda: main(case["argv"]))
            else:
                module, _, name = case["function"].partition(":")
                function = getattr(importlib.import_module(module), name)
                try:
                    function(*case["args"])
                except (ValueError, FileNotFoundError, OSError) as error:  # main_guard's
                    print(f"error: {error}", file=sys.stderr)
                    status = 2
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException as error:  # noqa: BLE001 - what escapes is the finding
            status = 1
            escaped = "".join(traceback.format_exception_only(type(error), error)).strip()
            print("Traceback (most recent call last):\n" + escaped, file=sys.stderr)
    return {"returncode": status, "stderr": stderr.getvalue(), "escaped": escaped}


def main(argv: list[str] | None = None) -> None:
    plan_path, results_path = (sys.argv[1:] if argv is None else argv)[:2]
    with open(plan_path, encoding="utf-8") as plan_file:
        plan = json.load(plan_file)
    with open(results_path, encoding="utf-8") as done_file:
        done = sum(1 for _ in done_file)
    for case in plan[done:]:
        before = fingerprint(case["watch"]) if case.get("watch") else {}
        result = run_case(case)
        result["fingerprint_before"] = before
        result["fingerprint_after"] = fingerprint(case["watch"]) if case.get("watch") else {}
        with open(results_path, "a", encoding="utf-8") as results:
            results.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
