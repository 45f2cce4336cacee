import gzip

import pytest

from pipelines import conll
from pipelines.errors import DataFormatError

CONLL2003 = """EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC

-DOCSTART- -X- O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
-DOCSTART- -X- O O
BRUSSELS NNP I-NP I-LOC
1996-08-22 CD I-NP O


-DOCSTART- -X- O O
"""

CONLLU = """# newdoc id = x
# sent_id = 1
# text = I don't know.
1\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t4:nsubj\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t4:aux\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t4:advmod\t_
4\tknow\tknow\tVERB\tVB\t_\t0\troot\t0:root\t_
4.1\tknow\tknow\tVERB\tVB\t_\t_\t_\t4:conj\t_
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t4:punct\t_

# sent_id = 2
1\tHi\thi\tINTJ\tUH\t_\t0\troot\t0:root\t_
"""


def test_conll2003_docstart_anywhere(tmp_path):
    path = tmp_path / "eng.train"
    path.write_text(CONLL2003)
    sentences = conll.read_conll(str(path))
    assert [s["tokens"] for s in sentences] == [
        ["EU", "rejects", "German"],
        ["Peter", "Blackburn"],
        ["BRUSSELS", "1996-08-22"],
    ]
    assert sentences[0]["ner"] == ["I-ORG", "O", "I-MISC"]  # IOB1 kept as released
    assert sentences[1]["pos"] == ["NNP", "NNP"] and sentences[2]["chunks"] == ["I-NP", "I-NP"]


def test_conll2000_gz_and_custom_columns(tmp_path):
    path = tmp_path / "train.txt.gz"
    path.write_bytes(gzip.compress(b"Confidence NN B-NP\nin IN B-PP\n\nthe DT B-NP\n"))
    sentences = conll.read_conll(str(path))
    assert sentences == [
        {"tokens": ["Confidence", "in"], "pos": ["NN", "IN"], "chunks": ["B-NP", "B-PP"]},
        {"tokens": ["the"], "pos": ["DT"], "chunks": ["B-NP"]},
    ]
    named = conll.read_conll(str(path), columns=("word", "tag", "chunk"))
    assert named[1] == {"word": ["the"], "tag": ["DT"], "chunk": ["B-NP"]}


@pytest.mark.parametrize(
    "content, pattern",
    [
        (
            "EU NNP I-NP I-ORG\nrejects VBZ O\n",
            r":2: expected 4 columns \(tokens, pos, chunks, ner\), found 3",
        ),
        ("a b c d e\n", r":1: 5 columns; pass columns="),
        ("\n\n  \n", r": no sentences"),
        ("-DOCSTART- -X- O O\n\n", r": no sentences"),
        ("a\tb\t\tc\n", r":1: empty column"),
    ],
)
def test_conll_errors(tmp_path, content, pattern):
    path = tmp_path / "bad.conll"
    path.write_text(content)
    separator = "\t" if "\t" in content else None
    with pytest.raises(DataFormatError, match=r"bad\.conll" + pattern):
        conll.read_conll(str(path), separator=separator)


def test_conll_invalid_utf8(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_bytes(b"a DT B-NP\n\nb\xff NN I-NP\n")
    with pytest.raises(DataFormatError, match=r"bad\.conll:3: invalid UTF-8"):
        conll.read_conll(str(path))


def test_conllu_skips_comments_multiword_and_empty_nodes(tmp_path):
    path = tmp_path / "dev.conllu"
    path.write_text(CONLLU)
    sentences = conll.read_conllu(str(path))
    assert sentences[0] == {
        "tokens": ["I", "do", "n't", "know", "."],
        "upos": ["PRON", "AUX", "PART", "VERB", "PUNCT"],
        "xpos": ["PRP", "VBP", "RB", "VB", "."],
    }
    assert sentences[1]["tokens"] == ["Hi"]
    heads = conll.read_conllu(str(path), fields=("tokens", "head", "deprel"))
    assert heads[0]["head"] == ["4", "4", "4", "0", "4"]


@pytest.mark.parametrize(
    "content, pattern",
    [
        ("1\tI\tI\tPRON\tPRP\t_\t0\troot\t_\n", r":1: expected 10 TAB-separated columns"),
        (
            "1\tA\ta\tX\tX\t_\t0\troot\t_\t_\n3\tB\tb\tX\tX\t_\t1\tdep\t_\t_\n",
            r":2: word ID 3 out of sequence",
        ),
        ("x\tA\ta\tX\tX\t_\t0\troot\t_\t_\n", r":1: invalid word ID 'x'"),
        ("# only a comment\n\n", r": no sentences"),
    ],
)
def test_conllu_errors(tmp_path, content, pattern):
    path = tmp_path / "bad.conllu"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=r"bad\.conllu" + pattern):
        conll.read_conllu(str(path))


def test_conllu_unknown_field(tmp_path):
    with pytest.raises(ValueError, match="unknown CoNLL-U fields"):
        conll.read_conllu(str(tmp_path / "x"), fields=("tokens", "pos"))


def test_sentences_to_dataset_keeps_alignment():
    sentences = [{"tokens": ["a", "b"], "ner": ["O", "I-PER"]}, {"tokens": ["c"], "ner": ["O"]}]
    dataset = conll.sentences_to_dataset(sentences)
    assert dataset.element_spec["tokens"].shape.as_list() == [None]
    examples = list(dataset.as_numpy_iterator())
    assert [list(e["ner"]) for e in examples] == [[b"O", b"I-PER"], [b"O"]]
    assert [list(e["tokens"]) for e in examples] == [[b"a", b"b"], [b"c"]]
