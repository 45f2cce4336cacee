import gzip
import json

import numpy as np
import pytest

from pipelines import text_files
from pipelines.errors import DataFormatError


def _examples(dataset):
    return [(e["text"].decode(), int(e["label"])) for e in dataset.as_numpy_iterator()]


def _write(path, content: str | bytes, compress=False):
    data = content.encode("utf-8") if isinstance(content, str) else content
    if compress:
        data = gzip.compress(data)
    path.write_bytes(data)
    return str(path)


@pytest.fixture
def acl_imdb(tmp_path):
    root = tmp_path / "aclImdb"
    for split, label, name, text in [
        ("train", "pos", "0_9.txt", "Great film."),
        ("train", "pos", "1_8.txt", "Loved it <br />truly."),
        ("train", "neg", "0_2.txt", "Awful."),
        ("train", "unsup", "0_0.txt", "unlabeled"),
        ("test", "neg", "5_1.txt", "Bad."),
        ("test", "pos", "6_10.txt", "Très bien."),
    ]:
        folder = root / split / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text + "\n", encoding="utf-8")
    return root


def test_acl_imdb_folder(acl_imdb):
    train = _examples(text_files.read_classification_folder(str(acl_imdb), split="train"))
    assert train == [("Awful.", 0), ("Great film.", 1), ("Loved it <br />truly.", 1)]
    test = _examples(text_files.read_classification(str(acl_imdb / "test")))
    assert test == [("Bad.", 0), ("Très bien.", 1)]


def test_folder_errors(acl_imdb, tmp_path):
    (acl_imdb / "train" / "neg" / "3_1.txt").write_bytes(b"ok\n\xff bad\n")
    with pytest.raises(DataFormatError, match=r"3_1\.txt:2: invalid UTF-8"):
        text_files.read_classification_folder(str(acl_imdb), split="train")
    (acl_imdb / "train" / "neg" / "3_1.txt").write_text("  \n")
    with pytest.raises(DataFormatError, match=r"3_1\.txt:1: empty file"):
        text_files.read_classification_folder(str(acl_imdb), split="train")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        text_files.read_classification_folder(str(tmp_path / "missing"))


def test_jsonl_gz_transparent(tmp_path):
    lines = [json.dumps({"id": i, "label": i % 2, "text": f"review {i}"}) for i in range(5)]
    path = _write(tmp_path / "train.jsonl.gz", "\n".join(lines) + "\n\n", compress=True)
    assert _examples(text_files.read_classification_file(path)) == [
        (f"review {i}", i % 2) for i in range(5)
    ]


def test_csv_with_header_quotes_and_string_labels(tmp_path):
    path = _write(
        tmp_path / "reviews.csv",
        'review,sentiment,extra\n"Good, really",positive,x\n"Two\nlines",negative,y\n',
    )
    texts, labels, names = text_files.read_classification_examples(
        path, text_field="review", label_field="sentiment"
    )
    assert texts == ["Good, really", "Two\nlines"]
    assert names == ["negative", "positive"] and labels == [1, 0]


def test_tsv_without_header(tmp_path):
    path = _write(tmp_path / "data.tsv", "1\tfine film\n0\tdull\n")
    assert _examples(text_files.read_classification_file(path)) == [("fine film", 1), ("dull", 0)]


@pytest.mark.parametrize(
    "name, content, pattern",
    [
        ("a.tsv", "1\tgood\n0\tbad\textra\n", r"a\.tsv:2: expected 2 columns, found 3"),
        ("b.csv", "1,good\n0\n", r"b\.csv:2: expected 2 columns, found 1"),
        (
            "c.jsonl",
            '{"label": 1, "text": "x"}\n{"label": 1, "text": \n',
            r"c\.jsonl:2: invalid JSON",
        ),
        ("d.jsonl", '{"label": 1}\n', r"d\.jsonl:1: missing field 'text'"),
        ("e.jsonl", "\n  \n\n", r"e\.jsonl: no examples"),
        ("f.csv", "", r"f\.csv: no examples"),
        ("g.tsv", "1\tgood\npositive\tbad\n", r"g\.tsv:2: label 'positive' is not an integer"),
        ("h.jsonl", '{"label": -1, "text": "x"}\n', r"h\.jsonl:1: negative label"),
        ("i.jsonl", '[1, "x"]\n', r"i\.jsonl:1: expected a JSON object"),
    ],
)
def test_classification_file_errors(tmp_path, name, content, pattern):
    path = _write(tmp_path / name, content)
    with pytest.raises(DataFormatError, match=pattern):
        text_files.read_classification_file(path)


def test_invalid_utf8_reports_line(tmp_path):
    path = _write(tmp_path / "bad.tsv", b"1\tok\n0\tfine\n1\tcaf\xe9\n")
    with pytest.raises(DataFormatError, match=r"bad\.tsv:3: invalid UTF-8 .*column 6"):
        text_files.read_classification_file(path)


def test_unknown_extension(tmp_path):
    path = _write(tmp_path / "data.xyz", "1\tx\n")
    with pytest.raises(ValueError, match="file_format"):
        text_files.read_classification_file(path)
    assert _examples(text_files.read_classification_file(path, file_format="tsv")) == [("x", 1)]


def test_label_names_mapping_and_unknown_label(tmp_path):
    path = _write(tmp_path / "d.tsv", "pos\tgood\nneg\tbad\n")
    texts, labels, _ = text_files.read_classification_examples(path, label_names=["neg", "pos"])
    assert labels == [1, 0]
    with pytest.raises(DataFormatError, match=r"d\.tsv:1: unknown label 'pos'"):
        text_files.read_classification_examples(path, label_names=["neg", "neutral"])


def test_read_text_and_lines(tmp_path):
    path = _write(tmp_path / "corpus.txt.gz", "First line\r\nsecond\n\nlast", compress=True)
    assert text_files.read_text(path) == "First line\r\nsecond\n\nlast"
    assert text_files.read_lines(path) == ["First line", "second", "", "last"]
    assert text_files.read_lines(path, skip_blank=True) == ["First line", "second", "last"]
    blank = _write(tmp_path / "blank.txt", " \n\n\t\n")
    with pytest.raises(DataFormatError, match=r"blank\.txt: no text"):
        text_files.read_text(blank)
    with pytest.raises(FileNotFoundError, match="no such file"):
        text_files.read_text(str(tmp_path / "nope.txt"))


def test_read_parallel(tmp_path):
    source = _write(tmp_path / "train.en.gz", "A dog runs.\nTwo cats.\n", compress=True)
    target = _write(tmp_path / "train.de", "Ein Hund läuft.\nZwei Katzen.\n")
    pairs = [
        (e["source"].decode(), e["target"].decode())
        for e in text_files.read_parallel(source, target).as_numpy_iterator()
    ]
    assert pairs == [("A dog runs.", "Ein Hund läuft."), ("Two cats.", "Zwei Katzen.")]


def test_parallel_errors(tmp_path):
    source = _write(tmp_path / "s.en", "one\ntwo\nthree\n")
    target = _write(tmp_path / "t.de", "eins\nzwei\n")
    with pytest.raises(DataFormatError) as error:
        text_files.read_parallel(source, target)
    message = str(error.value)
    assert "s.en has 3 lines" in message and "t.de has 2" in message
    target = _write(tmp_path / "t.de", "eins\n\ndrei\n")
    with pytest.raises(DataFormatError, match=r"t\.de:2: empty sentence"):
        text_files.read_parallel(source, target)
    kept = text_files.read_parallel_examples(source, target, allow_empty=True)
    assert kept == (["one", "two", "three"], ["eins", "", "drei"])
    bad = _write(tmp_path / "u.de", b"eins\nzw\xc3\n")
    with pytest.raises(DataFormatError, match=r"u\.de:2: invalid UTF-8"):
        text_files.read_parallel(_write(tmp_path / "v.en", "a\nb\n"), bad)
    empty = _write(tmp_path / "w.en", "")
    with pytest.raises(DataFormatError, match="empty"):
        text_files.read_parallel(empty, _write(tmp_path / "w.de", ""))


def test_dataset_dtypes(tmp_path):
    path = _write(tmp_path / "x.jsonl", '{"label": 1, "text": "a"}\n')
    spec = text_files.read_classification_file(path).element_spec
    assert spec["label"].dtype.name == "int64" and spec["text"].dtype.name == "string"
    assert np.dtype(spec["label"].dtype.as_numpy_dtype) == np.int64


# ----------------------------------------------------------------------------- found by the fault campaign


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        # a field over csv's default size limit (131,072 characters) is a text, not an error
        ("long.csv", "label,text\n1," + "y" * 200_000 + "\n0,bad\n", None),
        # a line end inside an unquoted field (old Mac line ends): one line, refused
        ("cr.csv", "label,text\r1,good\r0,bad\r", r"cr.csv:1: not valid CSV"),
        # JSON nested too deeply for Python's parser
        ("deep.jsonl", '{"label": 1, "text": "a"}\n' + "[" * 100_000 + "]" * 100_000 + "\n",
         r"deep.jsonl:2: JSON nested too deeply"),
        # gzip data that zlib refuses
        ("bad.jsonl", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(200, 256)) * 4,
         r"bad.jsonl: corrupt gzip data"),
    ],
)
def test_malformed_classification_files_are_one_clear_error(tmp_path, name, content, pattern):
    path = _write(tmp_path / name, content)
    if pattern is None:
        texts, labels, _ = text_files.read_classification_examples(path)
        assert len(texts[0]) == 200_000 and labels == [1, 0]
    else:
        with pytest.raises(DataFormatError, match=pattern):
            text_files.read_classification_examples(path)


def test_a_folder_given_as_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "train.txt").mkdir()
    with pytest.raises(DataFormatError, match=r"train.txt: a folder, not a file"):
        text_files.read_text(str(tmp_path / "train.txt"))


def test_a_byte_order_mark_is_not_part_of_the_text(tmp_path):
    path = _write(tmp_path / "bom.txt", b"\xef\xbb\xbfto be\n")
    assert text_files.read_text(path) == "to be\n"
