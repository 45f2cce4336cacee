"""Bad-input fuzz: generated malformed files for every reader, and option values in and
out of their ranges for every app's command line.

Files: from a valid file of each format, mutations drawn from the seed (empty, blank,
binary garbage, invalid UTF-8 on a line, truncation at a byte, BOM, CRLF and lone-CR line
ends, a 200,000-character line, NUL bytes, UTF-16, corrupt and truncated gzip, deep JSON,
and each format's own: wrong column counts, missing fields, bad labels, unequal parallel
files, ...). Each file is given to the app command that reads it (`evaluate --split test`
of a trained tiny run, or every fifth case `train` into a new run directory); the COCO
caption and JSB readers, which no app's command reads, are called directly. A case holds
when the command either accepts the file (exit 0) or refuses it with exit status 2 and
one final stderr line "error: ..." naming the file (and its line, where the mutation has
one), with no traceback, and with the run directory unchanged (a new one not made).
Mutations that can never be valid (empty, garbage, invalid UTF-8, ...) must be refused.

Options: for every option of every command, values inside the declared range or choices
(accepted by the command line's checks) and outside it, and values of the wrong type:
refused ones must exit 2 with one line naming the option and leave the run directory
(an existing run, or a new path) as it was.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

from benchmarks.reliability import tiny
from benchmarks.reliability.common import (
    Finished,
    Trial,
    changes,
    environment,
    error_problem,
    fingerprint,
    run,
)

HUGE = 200_000


@dataclasses.dataclass
class Mutation:
    name: str
    data: bytes | None  # None: the file does not exist
    must_fail: bool  # never a valid file
    line: int | None = None  # the line the error must name
    folder: bool = False  # a folder in place of the file


def _lines(base: bytes) -> list[bytes]:
    return base.split(b"\n")


def _with_line(base: bytes, index: int, new: bytes) -> bytes:
    lines = _lines(base)
    lines[index] = new
    return b"\n".join(lines)


def _content_lines(base: bytes) -> list[int]:
    return [i for i, line in enumerate(_lines(base)) if line.strip() and not line.startswith((b"#", b"-DOCSTART-"))]


def generic_mutations(base: bytes, rng: random.Random) -> list[Callable[[], Mutation]]:
    """Mutations every text format gets (each a function: parameters drawn when called)."""

    def invalid_utf8():
        index = rng.choice(_content_lines(base))
        line = _lines(base)[index]
        cut = rng.randrange(len(line) + 1)
        return Mutation(f"invalid UTF-8 on line {index + 1}",
                        _with_line(base, index, line[:cut] + b"\xff\xfe" + line[cut:]), True, index + 1)  # fmt: skip

    def truncated():
        cut = rng.randrange(1, len(base))
        return Mutation(f"truncated at byte {cut} of {len(base)}", base[:cut], False)

    def huge_line():
        index = rng.choice(_content_lines(base))
        return Mutation(f"a {HUGE:,}-character line {index + 1}",
                        _with_line(base, index, _lines(base)[index] + b"x" * HUGE), False, None)  # fmt: skip

    def nul():
        cut = rng.randrange(len(base))
        return Mutation(f"NUL byte at {cut}", base[:cut] + b"\x00" + base[cut:], False)

    def truncated_gzip():
        packed = gzip.compress(base)
        cut = rng.randrange(10, len(packed) - 1)
        return Mutation(f"gzip cut at byte {cut} of {len(packed)}", packed[:cut], True)

    def corrupt_gzip():
        packed = bytearray(gzip.compress(base))
        for _ in range(8):
            packed[rng.randrange(10, len(packed) - 8)] ^= 0xFF
        return Mutation("gzip with corrupt bytes", bytes(packed), True)

    def garbage():
        size = rng.randint(1, 4000)
        return Mutation(f"{size} random bytes", b"\xff" + rng.randbytes(size), True)

    fixed = [
        Mutation("empty file", b"", True),
        Mutation("blank lines only", b"\n \n\t\n\n", True),
        Mutation("UTF-8 byte-order mark", b"\xef\xbb\xbf" + base, False),
        Mutation("CRLF line ends", base.replace(b"\n", b"\r\n"), False),
        Mutation("lone-CR line ends", base.replace(b"\n", b"\r"), False),
        Mutation("UTF-16 text", base.decode("utf-8").encode("utf-16"), True),
        Mutation("gzip-compressed (valid)", gzip.compress(base), False),
        Mutation("a missing file", None, True),
        Mutation("a folder in place of the file", None, True, folder=True),
    ]
    return [*(lambda m=m: m for m in fixed), invalid_utf8, truncated, huge_line, nul,
            truncated_gzip, corrupt_gzip, garbage]  # fmt: skip


def column_mutations(base: bytes, rng: random.Random, separator: bytes, header: bool = False) -> list[Callable[[], Mutation]]:
    rows = _content_lines(base)[1 if header else 0:]  # a header's width is the expected one

    def dropped():
        index = rng.choice(rows)
        fields = _lines(base)[index].split(separator)
        return Mutation(f"a column missing on line {index + 1}",
                        _with_line(base, index, separator.join(fields[:-1])), True, index + 1)  # fmt: skip

    def added():
        index = rng.choice(rows)
        return Mutation(f"an extra column on line {index + 1}",
                        _with_line(base, index, _lines(base)[index] + separator + b"extra"), True, index + 1)  # fmt: skip

    return [dropped, added]


def json_lines_mutations(base: bytes, rng: random.Random) -> list[Callable[[], Mutation]]:
    def broken():
        index = rng.choice(_content_lines(base))
        line = _lines(base)[index]
        return Mutation(f"invalid JSON on line {index + 1}",
                        _with_line(base, index, line[: rng.randrange(1, len(line))]), True, index + 1)  # fmt: skip

    def missing_field():
        index = rng.choice(_content_lines(base))
        record = json.loads(_lines(base)[index])
        field = rng.choice(sorted(record))
        del record[field]
        return Mutation(f"field {field!r} missing on line {index + 1}",
                        _with_line(base, index, json.dumps(record).encode()), True, index + 1)  # fmt: skip

    def wrong_value():
        index = rng.choice(_content_lines(base))
        record = json.loads(_lines(base)[index])
        field = rng.choice(sorted(record))
        record[field] = rng.choice([None, [1, 2], {"a": 1}, 3.5, -1, 7, True, "maybe"])
        return Mutation(f"{field} = {record[field]!r} on line {index + 1}",
                        _with_line(base, index, json.dumps(record).encode()), False, None)  # fmt: skip

    def deep():
        index = rng.choice(_content_lines(base))
        depth = rng.choice([1_000, 100_000])
        return Mutation(f"JSON nested {depth} deep on line {index + 1}",
                        _with_line(base, index, b"[" * depth + b"]" * depth), True, index + 1)  # fmt: skip

    def not_object():
        index = rng.choice(_content_lines(base))
        return Mutation(f"a JSON array on line {index + 1}", _with_line(base, index, b"[1, 2]"), True, index + 1)

    return [broken, missing_field, wrong_value, deep, not_object]


def json_document_mutations(base: bytes, rng: random.Random, edits: list[Callable[[dict], str]]) -> list[Callable[[], Mutation]]:
    """Mutations of a JSON document (one object): structural edits and deep nesting."""

    def edited():
        document = json.loads(base)
        edit = rng.choice(edits)
        what = edit(document)
        return Mutation(what, json.dumps(document).encode(), False)

    def deep():
        depth = rng.choice([1_000, 100_000])
        return Mutation(f"JSON nested {depth} deep", b"[" * depth + b"]" * depth, True)

    def truncated_json():
        cut = rng.randrange(1, len(base) - 1)
        return Mutation(f"JSON cut at byte {cut}", base[:cut], True)

    return [edited, edited, edited, deep, truncated_json]


# --------------------------------------------------------------------------- readers


@dataclasses.dataclass
class Reader:
    """A reader under fuzz: its valid file, its mutations, and how a command reads it."""

    name: str
    suffix: str
    base: bytes
    mutations: Callable[[bytes, random.Random], list[Callable[[], Mutation]]]
    app: str = ""  # "" for a reader called directly (`function`)
    run: str = ""  # the trained tiny run whose evaluate reads it
    evaluate: Callable[[str], list[str]] | None = None
    train: Callable[[str], list[str]] | None = None  # flags of train reading it (new run)
    function: str = ""
    extra_args: Callable[[Path], list] | None = None


def _columns(separator: bytes):
    return lambda base, rng: [*generic_mutations(base, rng), *column_mutations(base, rng, separator)]


def _classification(separator: bytes, header: bool) -> Callable:
    def mutations(base, rng):
        def label():
            index = rng.choice(_content_lines(base)[1 if header else 0:])
            fields = _lines(base)[index].split(separator)
            fields[0] = rng.choice([b"2", b"-1", b"", b"1.5", b"positive"])
            return Mutation(f"label {fields[0]!r} on line {index + 1}",
                            _with_line(base, index, separator.join(fields)), False, None)  # fmt: skip

        def huge_field():
            index = rng.choice(_content_lines(base)[1 if header else 0:])
            fields = _lines(base)[index].split(separator)
            fields[-1] = b'"' + b"y" * HUGE + b'"'
            return Mutation(f"a quoted {HUGE:,}-character field on line {index + 1}",
                            _with_line(base, index, separator.join(fields)), False, None)  # fmt: skip

        def open_quote():
            index = rng.choice(_content_lines(base)[1 if header else 0:])
            fields = _lines(base)[index].split(separator)
            fields[-1] = b'"' + fields[-1]
            return Mutation(f"an unclosed quote on line {index + 1}",
                            _with_line(base, index, separator.join(fields)), False, None)  # fmt: skip

        return [*generic_mutations(base, rng), *column_mutations(base, rng, separator, header), label,
                huge_field, open_quote]

    return mutations


def _jsonl(base, rng):
    return [*generic_mutations(base, rng), *json_lines_mutations(base, rng)]


def _parallel(base, rng):
    def unequal():
        lines = _lines(base)
        index = rng.choice(_content_lines(base))
        return Mutation(f"line {index + 1} removed (one line fewer than the other side)",
                        b"\n".join(lines[:index] + lines[index + 1:]), True)  # fmt: skip

    def blank():
        index = rng.choice(_content_lines(base))
        return Mutation(f"an empty sentence on line {index + 1}", _with_line(base, index, b""), False, None)

    return [*generic_mutations(base, rng), unequal, blank]


def _conllu(base, rng):
    def bad_id():
        index = rng.choice(_content_lines(base))
        fields = _lines(base)[index].split(b"\t")
        fields[0] = rng.choice([b"x", b"0", b"99", b"-1", b""])
        return Mutation(f"word ID {fields[0]!r} on line {index + 1}",
                        _with_line(base, index, b"\t".join(fields)), True, index + 1)  # fmt: skip

    return [*generic_mutations(base, rng), *column_mutations(base, rng, b"\t"), bad_id]


def _coco_edits() -> list[Callable[[dict], str]]:
    def drop(key):
        def edit(document):
            del document[key]
            return f"no {key!r}"
        return edit

    def image_field(field, values):
        def edit(document):
            document["images"][0][field] = values[0]
            return f"images[0].{field} = {values[0]!r}"
        return edit

    def annotation_field(field, value):
        def edit(document):
            document["annotations"][0][field] = value
            return f"annotations[0].{field} = {value!r}"
        return edit

    def container(key, value):
        def edit(document):
            document[key] = value
            return f"{key} = {value!r}"
        return edit

    return [drop("images"), drop("annotations"), image_field("id", [[1, 2]]), image_field("id", [None]),
            image_field("file_name", [7]), image_field("file_name", ["missing.png"]),
            image_field("file_name", ["../../etc/passwd"]), annotation_field("image_id", [3]),
            annotation_field("image_id", 999), annotation_field("caption", 5),
            annotation_field("caption", ""), container("images", 5), container("annotations", "x"),
            container("images", [5])]  # fmt: skip


def _jsb_edits() -> list[Callable[[dict], str]]:
    def pitch(value):
        def edit(document):
            document["train"][0][0] = [value]
            return f"train[0][0] = [{value!r}]"
        return edit

    def split(value):
        def edit(document):
            document["train"] = value
            return f"train = {value!r}"
        return edit

    return [pitch(200), pitch(-5), pitch(60.5), pitch("C4"), pitch(None), pitch(True), pitch(1e308),
            split(5), split([]), split([[]]), split([5]), split({"a": 1})]  # fmt: skip


def readers(data: dict[str, Path]) -> dict[str, Reader]:
    sentences = tiny.tagged_sentences(12, seed=7)
    records = tiny.reviews(20, seed=9)
    tsv = ["label\ttext", *(f"{r['label']}\t{r['text']}" for r in records)]
    csv_rows = ["label,text", *(f"{r['label']},{r['text']}" for r in records)]
    coco = {"images": [{"id": i, "file_name": f"{i}.png"} for i in range(3)],
            "annotations": [{"image_id": i % 3, "caption": f"a caption {i}"} for i in range(6)]}  # fmt: skip
    jsb = {"train": [[[60, 64], [62], []], [[70]]], "valid": [[[65, 69]]]}
    test_file = lambda path: ["evaluate", "--split", "test", "--test-file", path]  # noqa: E731
    return {reader.name: reader for reader in [
        Reader("conll", ".txt", tiny.conll_text(sentences).encode(), _columns(b" "), "tagging", "tagging",
               test_file, lambda path: ["--train-file", path]),
        Reader("conllu", ".conllu", tiny.conllu_text(sentences).encode(), _conllu, "tagging", "tagging_pos",
               test_file, None),
        Reader("parallel", ".de", data["valid_de"].read_bytes(), _parallel, "translation", "translation",
               lambda path: ["evaluate", "--split", "test", "--test-source", str(data["valid_en"]),
                             "--test-target", path],
               lambda path: ["--train-target", path, "--train-source", str(data["valid_en"])]),
        Reader("jsonl", ".jsonl", "".join(json.dumps(r) + "\n" for r in records).encode(), _jsonl,
               "sentiment", "sentiment", test_file, None),
        Reader("csv", ".csv", ("\n".join(csv_rows) + "\n").encode(), _classification(b",", True),
               "sentiment", "sentiment", test_file, None),
        Reader("tsv", ".tsv", ("\n".join(tsv) + "\n").encode(), _classification(b"\t", True),
               "sentiment", "sentiment", test_file, None),
        Reader("plain_text", ".txt", tiny.lm_text(30, seed=10).encode(), lambda b, r: generic_mutations(b, r),
               "language_model", "language_model", test_file,
               lambda path: ["--text-file", path]),
        Reader("coco_captions", ".json", json.dumps(coco).encode(),
               lambda b, r: [*generic_mutations(b, r), *json_document_mutations(b, r, _coco_edits())],
               function="pipelines.captions:read_coco_captions", extra_args=lambda folder: [str(folder / "images")]),
        Reader("jsb", ".json", json.dumps(jsb).encode(),
               lambda b, r: [*generic_mutations(b, r), *json_document_mutations(b, r, _jsb_edits())],
               function="pipelines.music:read_jsb"),
    ]}  # fmt: skip


# --------------------------------------------------------------------------- folders


def folder_mutations(rng: random.Random) -> list[Callable[[Path], Mutation]]:
    """aclImdb-style review folders (test/{neg,pos}/*.txt), broken in one place each:
    a function that builds the folder under a path and says what it did."""

    def valid(root: Path) -> None:
        for label, words in (("neg", tiny.NEGATIVE), ("pos", tiny.POSITIVE)):
            (root / "test" / label).mkdir(parents=True, exist_ok=True)
            for index in range(3):
                (root / "test" / label / f"{index}_1.txt").write_text(f"a {words[index]} film", encoding="utf-8")

    def broken_file(name: str, data: bytes, must_fail: bool):
        def build(root: Path) -> Mutation:
            valid(root)
            label = rng.choice(["neg", "pos"])
            path = root / "test" / label / f"{rng.randrange(3)}_1.txt"
            path.write_bytes(data)
            return Mutation(f"{name} ({path.relative_to(root)})", None, must_fail)
        return build

    def structure(name: str, change: Callable[[Path], None], must_fail: bool):
        def build(root: Path) -> Mutation:
            valid(root)
            change(root)
            return Mutation(name, None, must_fail)
        return build

    return [
        broken_file("an empty review", b"", True),
        broken_file("a blank review", b" \n\t\n", True),
        broken_file("invalid UTF-8", b"a good \xff\xfe film", True),
        broken_file("random bytes", b"\xff" + rng.randbytes(300), True),
        broken_file("a UTF-8 byte-order mark", b"\xef\xbb\xbfa fine film", False),
        broken_file("a 200,000-character review", b"good " * 40_000, False),
        broken_file("NUL bytes", b"a \x00 film", False),
        broken_file("a gzip-compressed review", gzip.compress(b"a fine film"), False),
        broken_file("a corrupt gzip review", b"\x1f\x8b\x08\x00garbage", True),
        structure("no test folder", lambda root: shutil.rmtree(root / "test"), True),
        structure("an empty class folder", lambda root: [p.unlink() for p in (root / "test" / "pos").iterdir()], True),
        structure("one class folder only", lambda root: shutil.rmtree(root / "test" / "pos"), True),
        structure("a third class folder", lambda root: shutil.copytree(root / "test" / "pos", root / "test" / "zzz"), False),
        structure("a subfolder inside a class folder", lambda root: (root / "test" / "neg" / "sub").mkdir(), False),
        structure("a dangling link as a review",
                  lambda root: (root / "test" / "neg" / "link.txt").symlink_to(root / "nowhere"), True),
        structure("test is a file", lambda root: (shutil.rmtree(root / "test"), (root / "test").write_text("x")), True),
    ]  # fmt: skip


# --------------------------------------------------------------------------- plans


@dataclasses.dataclass
class Case:
    """A bad-input case: the worker's plan entry, and what the result is judged by."""

    subject: str
    plan: dict
    mutation: Mutation
    names: list[str]  # what the error must name
    line_mark: str = ""  # e.g. "path:17" when the error must name the line

    def describe(self) -> str:
        what = self.plan.get("argv") or [self.plan.get("function"), *self.plan.get("args", [])]
        return f"{self.mutation.name}: {' '.join(map(str, what))[:300]}"


def _write(path: Path, mutation: Mutation) -> None:
    if mutation.folder:
        path.mkdir(parents=True, exist_ok=True)
    elif mutation.data is not None:
        path.write_bytes(mutation.data)


def _draw(pool: list[Callable], rng: random.Random, count: int) -> list[Callable]:
    """Every mutation once (in an order drawn from the seed), then random ones."""
    drawn = rng.sample(pool, len(pool))
    return (drawn + [rng.choice(pool) for _ in range(max(0, count - len(pool)))])[:count]


def file_cases(reader: Reader, data: dict[str, Path], work: Path, rng: random.Random, count: int) -> list[Case]:
    folder = work / "fuzz" / reader.name
    folder.mkdir(parents=True, exist_ok=True)
    if reader.function == "pipelines.captions:read_coco_captions":
        images = folder / "images"
        images.mkdir(exist_ok=True)
        for index in range(3):
            (images / f"{index}.png").write_bytes(b"not decoded by the reader")
    run_dir = tiny.ensure_run(work, data, reader.run) if reader.app else None
    cases = []
    for index, make in enumerate(_draw(reader.mutations(reader.base, rng), rng, count)):
        mutation = make()
        path = folder / f"{index:03d}{reader.suffix}"
        _write(path, mutation)
        names = [str(path)]
        if reader.function:
            plan = {"kind": "reader", "function": reader.function,
                    "args": [str(path), *(reader.extra_args(folder) if reader.extra_args else [])]}  # fmt: skip
        elif reader.train is not None and index % 5 == 4:
            new_run = folder / f"{index:03d}_run"
            spec = dataclasses.replace(tiny.APPS[reader.app], epochs=1)
            argv = [*spec.train_argv(new_run, data), *reader.train(str(path))]
            plan = {"kind": "cli", "app": reader.app, "argv": argv, "watch": str(new_run)}
        else:
            argv = [reader.evaluate(str(path))[0], "--run-dir", str(run_dir), *reader.evaluate(str(path))[1:]]
            plan = {"kind": "cli", "app": reader.app, "argv": argv, "watch": str(run_dir)}
        mark = f"{path}:{mutation.line}" if mutation.line else ""
        cases.append(Case(reader.name, plan, mutation, names, mark))
    return cases


def folder_cases(data: dict[str, Path], work: Path, rng: random.Random, count: int) -> list[Case]:
    folder = work / "fuzz" / "aclimdb"
    run_dir = tiny.ensure_run(work, data, "sentiment")
    pool = folder_mutations(rng)
    cases = []
    for index, build in enumerate(_draw(pool, rng, count)):
        root = folder / f"{index:03d}"
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        mutation = build(root)
        argv = ["evaluate", "--run-dir", str(run_dir), "--split", "test", "--data-dir", str(root)]
        cases.append(Case("aclimdb", {"kind": "cli", "app": "sentiment", "argv": argv, "watch": str(run_dir)},
                          mutation, [str(root)]))  # fmt: skip
    return cases


# --------------------------------------------------------------------------- running


def run_worker(cases: list[Case], work: Path, name: str) -> list[dict]:
    """Runs the cases' plans in `fuzz_worker` processes (a new one after a crash, the
    crashed case recorded as such)."""
    plan_path, results_path = work / f"{name}.plan.json", work / f"{name}.results.jsonl"
    plan_path.write_text(json.dumps([case.plan for case in cases]), encoding="utf-8")
    results_path.write_text("", encoding="utf-8")
    while True:
        finished = run("benchmarks.reliability.fuzz_worker", [str(plan_path), str(results_path)],
                       timeout=3600)  # fmt: skip
        results = [json.loads(line) for line in results_path.read_text(encoding="utf-8").splitlines()]
        if len(results) >= len(cases):
            return results
        crashed = {"returncode": finished.returncode, "escaped": "the process died",
                   "stderr": f"Traceback: the worker died (exit {finished.returncode}): {finished.stderr[-500:]}",
                   "fingerprint_before": {}, "fingerprint_after": {}}  # fmt: skip
        with open(results_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(crashed) + "\n")


def judge(case: Case, result: dict) -> str | None:
    """None when the case ended as it must (see the module docstring); else what is wrong."""
    finished = Finished([], result["returncode"], "", result["stderr"], 0.0)
    if finished.returncode == 0 and not result.get("escaped"):
        return "accepted a file that can never be valid" if case.mutation.must_fail else None
    problem = error_problem(finished, case.names)
    if problem is None and case.line_mark:
        error = finished.stderr.strip().splitlines()[-1]
        if case.line_mark not in error:
            problem = f"the error does not name line {case.mutation.line}: {error[:300]}"
    moved = changes(result["fingerprint_before"], result["fingerprint_after"])
    if problem is None and moved:
        problem = f"the run directory changed: {moved[:5]}"
    return problem


def _separate_process(case: Case) -> dict:
    """The case as its own `python -m apps.<app>` process."""
    watch = case.plan.get("watch")
    before = fingerprint(watch) if watch else {}
    finished = run(f"apps.{case.plan['app']}", case.plan["argv"])
    return {"returncode": finished.returncode, "stderr": finished.stderr, "escaped": "",
            "fingerprint_before": before, "fingerprint_after": fingerprint(watch) if watch else {}}  # fmt: skip


def run_file_fuzz(work: Path, data: dict[str, Path], subjects: list[str], count: int,
                  separate: int, rng: random.Random, tally) -> None:  # fmt: skip
    """`count` malformed files per reader in `subjects` (reader names, or "aclimdb"); the
    first `separate` CLI cases of each also as separate processes."""
    table = readers(data)
    cases: list[Case] = []
    for subject in subjects:
        if subject == "aclimdb":
            cases += folder_cases(data, work, rng, count)
        else:
            cases += file_cases(table[subject], data, work, rng, count)
    results = run_worker(cases, work / "fuzz", "files")
    for case, result in zip(cases, results):
        problem = judge(case, result)
        ended = "accepted" if result["returncode"] == 0 else result["stderr"].strip().splitlines()[-1][:200]
        tally.add(Trial("fuzz", case.subject, problem is None,
                        f"{case.describe()} -> {problem or ended}"))  # fmt: skip
    shown: dict[str, int] = {}
    for case in cases:
        if case.plan["kind"] != "cli" or shown.get(case.subject, 0) >= separate:
            continue
        shown[case.subject] = shown.get(case.subject, 0) + 1
        problem = judge(case, _separate_process(case))
        tally.add(Trial("fuzz", case.subject, problem is None,
                        f"(separate process) {case.describe()} -> {problem or 'as in one process'}"))  # fmt: skip


# --------------------------------------------------------------------------- options


def _command_options(app: str) -> dict[str, list]:
    """{command: [(flag, config field or None, argparse action)]} of an app's parser."""
    from apps.common.cli import build_parser

    module = importlib.import_module(f"apps.{app}.__main__")
    config_cls = _config_class(app)
    parser = build_parser(app, config_cls, module.COMMANDS)
    subparsers = next(action for action in parser._actions if action.dest == "command")
    fields = {field.name for field in dataclasses.fields(config_cls)}
    options = {}
    for command, sub in subparsers.choices.items():
        options[command] = [(action.option_strings[0], action.dest if action.dest in fields else None, action)
                            for action in sub._actions if action.option_strings and action.dest != "help"]  # fmt: skip
    return options


def _config_class(app: str) -> type:
    config_module = importlib.import_module(f"apps.{app}.config")
    return next(value for value in vars(config_module).values()
                if dataclasses.is_dataclass(value) and value.__module__ == config_module.__name__)  # fmt: skip


def _values(config_cls: type, field: str, rng: random.Random) -> tuple[list[str], list[str]]:
    """(values inside the declared range or choices, values outside it or of the wrong
    type) of an option, as typed on a command line."""
    import typing

    from apps.common.config import _metadata

    metadata = _metadata(config_cls, field)
    kind = typing.get_type_hints(config_cls)[field]
    choices, bounds = metadata.get("choices"), metadata.get("bounds", {})
    if typing.get_origin(kind) is list:  # "" is an empty list, a value like any other
        if choices:
            inside = [",".join(rng.sample([str(c) for c in choices], min(2, len(choices))))]
            return inside, [f"{choices[0]},not-a-choice", "\u2603"]
        return ["a,b"], []
    inside, outside = [], ["", "\u2603", "x" * 300]
    if choices:
        inside.append(str(rng.choice(choices)))
        outside += ["not-a-choice", str(choices[-1]).upper() + "X"]
        return inside, outside
    if kind is bool:
        return [rng.choice(["true", "false", "yes", "no", "1", "0"])], ["maybe", "2", ""]
    if kind in (int, float):
        low = bounds.get("at_least", bounds.get("above", 0))
        high = bounds.get("at_most", bounds.get("below", low + 100))
        value = rng.uniform(low, high)
        if "above" in bounds and value == bounds["above"]:
            value = (low + high) / 2
        inside.append(str(int(value) if kind is int else value))
        if kind is int and int(value) < low + ("above" in bounds):
            inside[-1] = str(int(low) + 1)
        for name, bound in bounds.items():
            step = 1 if kind is int else rng.uniform(1e-6, 10)
            offending = {"at_least": bound - step, "above": bound, "at_most": bound + step, "below": bound}[name]
            outside.append(str(int(offending) if kind is int else offending))
        outside += ["abc", "1.5" if kind is int else "1,5", "nan"] + (["inf", "-inf", "1e400"] if kind is float else [])
        return inside, outside
    return [], []  # free text (paths, names): no declared range


def option_cases(app: str, run_dir: Path, new_run: Path, rng: random.Random, count: int) -> list[tuple]:
    """(command argv, the flag that must be named or None for accepted, run directory)
    cases: one to three options, at most one outside its range."""
    config_cls = _config_class(app)
    options = _command_options(app)
    cases = []
    while len(cases) < count:
        command = rng.choice(sorted(options))
        listed = [(flag, field) for flag, field, _ in options[command] if field and field != "run_dir"]
        if not listed:
            continue
        chosen = rng.sample(listed, min(len(listed), rng.randint(1, 3)))
        argv, bad = [command], None
        target = run_dir if command != "train" or rng.random() < 0.5 else new_run
        if command == "ensemble":  # a new run directory pooling the trained run
            target = new_run.with_name(f"{new_run.name}_ensemble")
            argv += ["--members", str(run_dir), str(run_dir)]
        argv += ["--run-dir", str(target)]
        for position, (flag, field) in enumerate(chosen):
            inside, outside = _values(config_cls, field, rng)
            if position == 0 and outside and rng.random() < 0.6:
                bad = flag
                argv += [flag, rng.choice(outside)]
            elif inside:
                argv += [flag, rng.choice(inside)]
        if bad is None and rng.random() < 0.1:
            bad = "--no-such-option"
            argv += ["--no-such-option", "3"]
        cases.append((argv, bad, target))
    return cases


def run_option_fuzz(work: Path, data: dict[str, Path], apps: list[str], count: int,
                    rng: random.Random, tally) -> None:  # fmt: skip
    """Out-of-range values as separate `python -m apps.<app>` processes (no TensorFlow
    before the check: each takes a fraction of a second); values inside the ranges
    through the same parse-and-check (`apps.common.cli.prepare`) in this process, since
    accepted ones would go on to train."""
    from apps.common.cli import prepare

    for app in apps:
        run_dir = tiny.ensure_run(work, data, app)
        new_run = work / "fuzz" / f"{app}_new_run"
        module = importlib.import_module(f"apps.{app}.__main__")
        for argv, bad, target in option_cases(app, run_dir, new_run, rng, count):
            shown = " ".join(argv)[:300]
            if bad is None:
                before = fingerprint(target)
                try:
                    prepare(app, _config_class(app), module.COMMANDS, argv)
                    problem = None
                except ValueError as error:  # a changed model option of a trained run, a cross-field rule
                    problem = None if "\n" not in str(error) and "--" in str(error) else f"refused: {error}"
                except SystemExit as exit_:
                    problem = f"refused (exit {exit_.code})"
                moved = changes(before, fingerprint(target))
                problem = problem or (f"the run directory changed: {moved[:5]}" if moved else None)
                tally.add(Trial("options", app, problem is None, f"inside the ranges: {shown} -> {problem or 'accepted'}"))
                continue
            before = fingerprint(target)
            finished = run(f"apps.{app}", argv, env=environment(), timeout=300)
            problem = error_problem(finished, [bad])
            moved = changes(before, fingerprint(target))
            if problem is None and moved:
                problem = f"the run directory changed: {moved[:5]}"
            ended = (finished.stderr.strip().splitlines() or [""])[-1][:200]
            tally.add(Trial("options", app, problem is None, f"{bad} outside its range: {shown} -> {problem or ended}"))
