"""README tables generated from the results files, so that no README restates a figure by
hand.

    python -m benchmarks.summary            # lists the tables that differ from the files; exit 1 if any
    python -m benchmarks.summary --write    # rewrites them

A table lives in a README between `<!-- table:NAME -->` and `<!-- /table:NAME -->`; its
rows are declared in `benchmarks/tables.py` (which run of which results file, described
how) and every figure, command, date and condition is read from
`benchmarks/results/<file>.json`. tests/benchmarks/test_summary.py fails when a README
table differs from what the files say.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import results_file

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


# --------------------------------------------------------------------------- formats


def percent(value: float) -> str:
    """A fraction as a percentage, 88.70 %."""
    return f"{100 * value:.2f} %"


def fixed(digits: int) -> Callable[[float], str]:
    return lambda value: f"{value:.{digits}f}"


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def integer(value: float) -> str:
    return f"{int(round(value)):,}"


def text(value) -> str:
    return str(value)


def _budget(value: float) -> str:
    return f"{value:g} min"


def _day(value) -> str:
    return str(value)[:10]  # an ISO date or timestamp -> YYYY-MM-DD


# --------------------------------------------------------------------------- declarations


@dataclasses.dataclass(frozen=True)
class Column:
    """A figure column: `key` is the key after the run's prefix (`<run>_<key>`); `missing`
    is shown where the file has no such key (e.g. "not measured yet" for a test figure)."""

    header: str
    key: str
    format: Callable = fixed(2)
    missing: str = "-"


@dataclasses.dataclass(frozen=True)
class Row:
    """One run of a results file, described as the README shows it. `keys` maps a
    column's key to another key of this run where its names differ."""

    file: str
    run: str
    what: str
    keys: dict = dataclasses.field(default_factory=dict)
    wall_key: str = "train_wall_time_s"
    #: Another run prefix whose command, date, time and conditions this row shares (the
    #: models of one benchmark command).
    shared: str = ""
    #: The training budget of the run's command, shown where the file records no
    #: `<run>_budget_minutes` (a setting of the recipe, not a measured figure).
    budget_minutes: float | None = None


@dataclasses.dataclass(frozen=True)
class RunTable:
    """Rows of runs with figure columns, then training time, (budget,) date, (machine,)
    conditions, command. With `budget`, a column of each run's training budget; with
    `machine`, one of the machine it ran on (the run's or the file's `machine`), and the
    conditions column then holds only what the run's `conditions` say."""

    readme: str
    columns: Sequence[Column]
    rows: Sequence[Row]
    first_header: str = "what"
    budget: bool = False
    machine: bool = False

    def render(self) -> str:
        headers = [self.first_header, *(c.header for c in self.columns), "training time",
                   *(["budget"] if self.budget else []), "date",
                   *(["machine"] if self.machine else []), "conditions", "command"]
        lines = [_line(headers), _line(["---"] * len(headers))]
        for row in self.rows:
            results = _results(row.file)
            def get(key, row=row, results=results):
                value = _value(results, row.run, row.keys.get(key, key))
                if value is None and row.shared and key not in {c.key for c in self.columns}:
                    value = _value(results, row.shared, key)
                return value

            cells = [row.what]
            for column in self.columns:
                value = get(column.key)
                cells.append(_shown(value, column.format, column.missing))
            cells.append(_shown(get(row.wall_key), minutes))
            if self.budget:
                cells.append(_shown(get("budget_minutes") or row.budget_minutes, _budget))
            cells.append(_shown(get("date") or results.get("date"), _day))
            # The file's machine only for a run the file records.
            machine = get("machine") or (results.get("machine") if get("command") else None)
            if self.machine:
                cells.append(_shown(machine, text))
            cells.append(_shown(get("conditions") or (None if self.machine else machine), text))
            cells.append(_command(get("command")))
            lines.append(_line(cells))
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class KeyTable:
    """Rows whose figures are keys built from templates: each row gives its first cells
    and the values substituted into the columns' keys (e.g. "{data}_padded_fraction_{mode}"
    with data=imdb, mode=bucketing; a "format" entry overrides the columns' format). For
    results files keyed other than `<run>_<figure>`."""

    readme: str
    file: str
    headers: Sequence[str]
    columns: Sequence[Column]
    rows: Sequence[tuple[Sequence[str], dict]]

    def render(self) -> str:
        results = _results(self.file)
        headers = [*self.headers, *(column.header for column in self.columns)]
        lines = [_line(headers), _line(["---"] * len(headers))]
        for cells, substitutions in self.rows:
            values = [
                _shown(results.get(column.key.format(**substitutions)),
                       substitutions.get("format", column.format), column.missing)
                for column in self.columns
            ]
            lines.append(_line([*cells, *values]))
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Target:
    """A quality target and where its figures are: `dev_key`/`test_key` of `run`."""

    app: str
    target: str
    file: str
    run: str
    test_key: str | None
    dev_key: str | None
    threshold: float
    higher_is_better: bool
    format: Callable = fixed(2)
    dev_label: str = "dev"
    keys: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TargetTable:
    """The targets of the apps, what was measured, and whether the target is met."""

    readme: str
    targets: Sequence[Target]

    def render(self) -> str:
        headers = ["app", "target", "dev / validation", "test", "met", "date", "command"]
        lines = [_line(headers), _line(["---"] * len(headers))]
        for target in self.targets:
            results = _results(target.file)
            def get(key, target=target, results=results):
                return _value(results, target.run, target.keys.get(key, key)) if key else None

            dev, test = get(target.dev_key), get(target.test_key)
            judged = test if target.test_key else dev
            if judged is None:
                status = "not measured"
            else:
                met = judged >= target.threshold if target.higher_is_better else (
                    judged <= target.threshold)
                status = "**met**" if met else "not met"
            dev_text = _shown(dev, target.format)
            if dev is not None:
                dev_text = f"{dev_text} ({target.dev_label})"
            lines.append(_line([
                target.app, target.target, dev_text,
                _shown(test, target.format) if target.test_key else "(a validation target)",
                status, _shown(get("date") or results.get("date"), _day), _command(get("command")),
            ]))
        return "\n".join(lines)


# --------------------------------------------------------------------------- reading


_CACHE: dict[str, dict] = {}


def _results(name: str) -> dict:
    if name not in _CACHE:
        _CACHE[name] = results_file.read(RESULTS / f"{name}.json")
    return _CACHE[name]


def _value(results: dict, run: str, key: str):
    return results.get(f"{run}_{key}") if run else results.get(key)


def _shown(value, format: Callable, missing: str = "-") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return format(value)


#: Absolute paths of the machine the figures were measured on -> the paths a user has.
_PATHS = (("/work/shared/", "../shared/"), ("/work/main/", ""))


def _command(command) -> str:
    if not command:
        return "-"
    for measured, shown in _PATHS:
        command = command.replace(measured, shown)
    return f"`{command}`"


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"


# --------------------------------------------------------------------------- READMEs

_BLOCK = re.compile(r"(<!-- table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table:(?P=name) -->)", re.S)


def render_readme(text_in: str, tables: dict) -> str:
    """`text_in` with every marked table replaced by its rendering (unknown names are an
    error: a README must not hold a table nobody generates)."""

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in tables:
            raise ValueError(f"README table {name!r} is declared in no benchmarks/tables.py entry")
        return match.group(1) + tables[name].render() + "\n" + match.group(4)

    return _BLOCK.sub(replace, text_in)


def stale(tables: dict) -> dict[Path, str]:
    """{README path: its regenerated text} for every README whose tables differ."""
    _CACHE.clear()
    changed = {}
    for readme in sorted({table.readme for table in tables.values()}):
        path = ROOT / readme
        current = path.read_text(encoding="utf-8")
        names = set(_BLOCK_NAMES.findall(current))
        missing = sorted(name for name, table in tables.items() if table.readme == readme and name not in names)
        if missing:
            raise ValueError(f"{readme}: no <!-- table:NAME --> block for {missing}")
        regenerated = render_readme(current, tables)
        if regenerated != current:
            changed[path] = regenerated
    return changed


_BLOCK_NAMES = re.compile(r"<!-- table:([\w-]+) -->")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the stale tables")
    args = parser.parse_args(argv)
    from benchmarks.tables import TABLES

    changed = stale(TABLES)
    for path, regenerated in changed.items():
        if args.write:
            path.write_text(regenerated, encoding="utf-8")
            print(f"rewrote {path.relative_to(ROOT)}")
        else:
            print(f"stale: {path.relative_to(ROOT)} (run python -m benchmarks.summary --write)")
    if not changed:
        print("every README table matches benchmarks/results")
    return 1 if changed and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
