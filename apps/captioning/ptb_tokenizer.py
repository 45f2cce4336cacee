"""The tokenisation of the COCO caption metrics, in Python.

`pycocoevalcap` tokenises candidates and references with Stanford CoreNLP's
`PTBTokenizer` (Java, `-preserveLines -lowerCase`) and then drops the tokens of its
`PUNCTUATIONS` list. `ptb_tokenize` does the same without Java, for machines that have
none; with Java the metrics use the original (`apps.captioning.metrics`).

The rules, those of the Penn Treebank tokenizer as CoreNLP 3.4.1 applies them:
- text is lowercased; `(`, `)`, `[`, `]`, `{`, `}` become `-lrb-`, `-rrb-`, `-lsb-`,
  `-rsb-`, `-lcb-`, `-rcb-` (lowercased, so the metrics' `-LRB-` entries never match them
  and they stay, as with the Java tokenizer);
- double quotes become `` (opening: at the start of a word) and '' (closing, or standing
  alone), single quotes ` and ';
- clitics are split off: `'s 'm 'd 'll 're 've n't` (`doesn't` -> `does n't`,
  `can't` -> `ca n't`), as are `cannot`, `gonna`, `wanna`, `gotta` (`can not`, `gon na`...);
- `, ; ! ? : % $ # & * + = ~ ^ |` are tokens of their own (runs of `!` and `?` stay one
  token), except a comma or colon inside a number (`1,000`, `5:30`); `...` and `--` (and
  the Unicode ellipsis and dashes) are tokens;
- a period ends a word into a token of its own unless the word is an abbreviation
  (`mr.`, `st.`, `p.m.`, `u.s.`); at the end of the line an abbreviation keeps its period
  and a sentence-final `.` follows it;
- then the tokens `'' ' `` ` . ? ! , : - -- ... ;` are removed.
"""

from __future__ import annotations

import re

#: pycocoevalcap.tokenizer.ptbtokenizer.PUNCTUATIONS: dropped after tokenisation.
PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-",
     "--", "...", ";"]
)
#: Words kept whole with their period (CoreNLP's list, the part captions meet).
ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr prof mt ft vs etc inc co ltd corp gen col lt sgt capt rev ave "
    "blvd rd jan feb mar apr aug sep sept oct nov dec no mo".split()
)
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_UNICODE = {"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2026": "...",
            "\u2013": "--", "\u2014": "--", "\u00a0": " "}
_CONTRACTIONS = re.compile(r"^(can)(not)$|^(gon)(na)$|^(wan)(na)$|^(got)(ta)$|^(gim)(me)$|^(lem)(me)$")
_CLITIC = re.compile(r"^(.+?)(n't|'s|'m|'d|'ll|'re|'ve)$")
_SYMBOLS = re.compile(r"([;!?%$#&*+=~^|]+|\.\.\.|--)")
_ACRONYM = re.compile(r"^([a-z]\.)+[a-z]?\.?$")


def _is_abbreviation(word: str) -> bool:
    """`word` ends in a period that belongs to it: `mr.`, `u.s.`, `p.m.`."""
    return word.endswith(".") and (word[:-1] in ABBREVIATIONS or bool(_ACRONYM.match(word)))


def _split_symbols(text: str) -> list[str]:
    parts = []
    for piece in _SYMBOLS.split(text):
        if not piece:
            continue
        if _SYMBOLS.fullmatch(piece) and piece[0] in "!?":
            parts.append(piece)  # runs of ! and ? stay one token
        elif _SYMBOLS.fullmatch(piece) and piece not in ("...", "--"):
            parts.extend(piece)  # other symbols one a token
        else:
            parts.append(piece)
    return parts


def _split_word(word: str) -> list[str]:
    """Tokens of one whitespace-separated chunk: a double quote that starts a chunk and
    is followed by more of it opens a quotation (``), any other closes one ('')."""
    tokens: list[str] = []
    pieces = [piece for piece in re.split(r'(")', word) if piece]
    for index, piece in enumerate(pieces):
        if piece == '"':
            tokens.append("``" if index == 0 and len(pieces) > 1 else "''")
        else:
            tokens.extend(_split_plain(piece))
    return tokens


def _split_plain(chunk: str) -> list[str]:
    tokens: list[str] = []
    # Brackets.
    for part in re.split(r"([()\[\]{}])", chunk):
        if not part:
            continue
        if part in _BRACKETS:
            tokens.append(_BRACKETS[part])
            continue
        for piece in _split_symbols(part):
            if piece in ("...", "--") or (piece and piece[0] in ";!?%$#&*+=~^|"):
                tokens.append(piece)
            else:
                tokens.extend(_split_punctuation(piece))
    return tokens


def _split_punctuation(piece: str) -> list[str]:
    """Commas and colons (not inside numbers), then quotes, clitics and periods."""
    tokens: list[str] = []
    for part in re.split(r"((?<!\d)[,:]|[,:](?!\d))", piece):
        if not part:
            continue
        if part in (",", ":"):
            tokens.append(part)
        else:
            tokens.extend(_split_quotes_and_clitics(part))
    return tokens


def _split_quotes_and_clitics(part: str) -> list[str]:
    leading: list[str] = []
    trailing: list[str] = []
    if part == "y'all":
        return ["y'", "all"]
    while part[:1] in ("'", "`") and len(part) > 1 and not re.match(r"^'(s|m|d|ll|re|ve|em|n'|t)$|^'t(is|was)$", part):
        leading.append("`")
        part = part[1:]
    if re.match(r"^'t(is|was)$", part):
        return leading + ["'t", part[2:]]
    # Periods at the end: "...", or one period split off unless an abbreviation.
    if part.endswith("...") and len(part) > 3:
        trailing.insert(0, "...")
        part = part[:-3]
    elif part.endswith(".") and len(part) > 1 and not _is_abbreviation(part):
        trailing.insert(0, ".")
        part = part[:-1]
    if part.endswith("'") and len(part) > 1 and not part.endswith("n'") and part != "'n'":
        trailing.insert(0, "'")
        part = part[:-1]
    words: list[str] = []
    contraction = _CONTRACTIONS.match(part)
    clitic = _CLITIC.match(part)
    if contraction:
        words = [group for group in contraction.groups() if group]
    elif clitic and part not in ("'s", "'m", "'d", "'ll", "'re", "'ve", "n't"):
        stem, ending = clitic.groups()
        if ending == "n't" and stem == "ca":
            words = ["ca", "n't"]
        else:
            words = [stem, ending]
    elif part:
        words = [part]
    return leading + words + trailing


def ptb_tokenize_line(text: str) -> list[str]:
    """The lowercased PTB tokens of one caption (punctuation not yet removed)."""
    for source, target in _UNICODE.items():
        text = text.replace(source, target)
    text = text.replace("\n", " ").lower()
    text = re.sub(r"\.\s+\.\s+\.", " ... ", text)  # spaced dots are one ellipsis
    tokens: list[str] = []
    for chunk in text.split():
        tokens.extend(_split_word(chunk))
    if tokens and _is_abbreviation(tokens[-1]) and tokens[-1] != ".":
        tokens.append(".")  # a sentence-final period after an abbreviation
    return tokens


def ptb_tokenize(text: str) -> str:
    """A caption as pycocoevalcap scores it: PTB tokens, lowercased, punctuation dropped,
    joined by single spaces."""
    return " ".join(token for token in ptb_tokenize_line(text) if token not in PUNCTUATIONS)
