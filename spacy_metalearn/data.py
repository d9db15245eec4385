"""Reading labelled texts: JSONL, CSV, a .spacy DocBin with doc.cats (what
spaCy's textcat trains on), or a folder of line-aligned `seq.in` and `label`
files (the format of the public few-shot intent detection splits)."""

import csv
import json
import random
import unicodedata
from pathlib import Path
from typing import Dict, List, Tuple, Union

import spacy
from spacy.tokens import DocBin
from spacy.vocab import Vocab

from .adaptation.support import has_visible_text
from .errors import Errors
from .outputs import write_atomically

TEXT_KEYS = ("text", "sentence", "raw")
LABEL_KEYS = ("label", "category", "intent")


def read_labelled(path: Union[str, Path]) -> List[Tuple[str, str]]:
    """Read (text, label) pairs.

    path (Union[str, Path]): a .jsonl file (keys text/sentence and label), a .csv
        file with a header (columns text and label/category), a .spacy DocBin
        (each doc's text with every label its cats give at least 0.5: one for
        exclusive classes, any number for multi-label), or a folder holding
        `seq.in` and `label`.
    RETURNS (List[Tuple[str, str]]): The pairs, in file order.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(Errors.E047.format(path=path))
    if path.is_dir():
        pairs = _read_folder(path)
    elif path.suffix == ".jsonl":
        pairs = _read_jsonl(path)
    elif path.suffix == ".csv":
        pairs = _read_csv(path)
    elif path.suffix == ".spacy":
        pairs = _read_docbin(path)
    else:
        raise ValueError(Errors.E023.format(path=path))
    if not pairs:
        raise ValueError(Errors.E024.format(path=path, problem="it holds no examples"))
    return pairs


def read_label_list(path: Union[str, Path]) -> List[str]:
    """Labels, one per line (blank lines ignored); at least one."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(Errors.E047.format(path=path))
    lines = [line.strip() for line in path.read_text(encoding="utf8").splitlines()]
    labels = [label for label in lines if label]
    if not labels:
        raise ValueError(Errors.E049.format(path=path))
    return labels


def keep_labels(pairs: List[Tuple[str, str]], labels: List[str]) -> List[Tuple[str, str]]:
    """The pairs whose label is in `labels`; every listed label must occur."""
    wanted = set(labels)
    kept = [(text, label) for text, label in pairs if label in wanted]
    missing = sorted(wanted - {label for _, label in kept})
    if missing:
        raise ValueError(Errors.E028.format(labels=missing))
    return kept


def write_docbin(pairs: List[Tuple[str, str]], path: Union[str, Path], lang: str = "en") -> int:
    """Save (text, label) pairs as a .spacy DocBin, each doc's cats {label: 1.0}.

    RETURNS (int): The number of docs written.
    """
    nlp = spacy.blank(lang)
    docs = []
    for text, label in pairs:
        doc = nlp.make_doc(text)
        doc.cats = {label: 1.0}
        docs.append(doc)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, DocBin(docs=docs).to_bytes())
    return len(docs)


def group_by_label(pairs: List[Tuple[str, str]]) -> Dict[str, List[str]]:
    """label -> texts, labels in order of first appearance."""
    grouped: Dict[str, List[str]] = {}
    for text, label in pairs:
        grouped.setdefault(label, []).append(text)
    return grouped


def _read_folder(path: Path) -> List[Tuple[str, str]]:
    texts_path, labels_path = path / "seq.in", path / "label"
    for required in (texts_path, labels_path):
        if not required.is_file():
            raise ValueError(Errors.E024.format(path=path, problem=f"'{required.name}' is missing"))
    texts = texts_path.read_text(encoding="utf8").splitlines()
    labels = labels_path.read_text(encoding="utf8").splitlines()
    if len(texts) != len(labels):
        problem = f"seq.in has {len(texts)} lines but label has {len(labels)}"
        raise ValueError(Errors.E024.format(path=path, problem=problem))
    return [
        _checked(text, label, path, f"line {number}")
        for number, (text, label) in enumerate(zip(texts, labels), 1)
    ]


def _read_jsonl(path: Path) -> List[Tuple[str, str]]:
    pairs = []
    with path.open(encoding="utf8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                problem = f"line {number} is not JSON ({e})"
                raise ValueError(Errors.E024.format(path=path, problem=problem)) from e
            pairs.append(_pick(record, path, f"line {number}"))
    return pairs


def _read_csv(path: Path) -> List[Tuple[str, str]]:
    # utf-8-sig: a byte-order mark (as spreadsheet programs write) is not part
    # of the first column's name
    with path.open(encoding="utf-8-sig", newline="") as file:
        rows = csv.reader(file)
        header = next(rows, [])
        pairs = []
        for number, row in enumerate(rows, 2):
            if not row:  # a blank line
                continue
            if len(row) != len(header):
                problem = f"row {number} has {len(row)} fields, the header {len(header)}"
                raise ValueError(Errors.E024.format(path=path, problem=problem))
            pairs.append(_pick(dict(zip(header, row)), path, f"row {number}"))
        return pairs


def _read_docbin(path: Path) -> List[Tuple[str, str]]:
    try:
        docs = list(DocBin().from_bytes(path.read_bytes()).get_docs(Vocab()))
    except Exception as e:  # msgpack and zlib have many ways to refuse a damaged file
        raise ValueError(Errors.E024.format(path=path, problem=f"it is not a DocBin ({e})")) from e
    pairs = []
    for number, doc in enumerate(docs, 1):
        where = f"doc {number}"
        if not all(isinstance(score, (int, float)) for score in doc.cats.values()):
            problem = f"{where} has cats that are not numbers ({doc.cats})"
            raise ValueError(Errors.E024.format(path=path, problem=problem))
        labels = [label for label, score in doc.cats.items() if score >= 0.5]
        if not labels:
            problem = f"{where} has no label: none of its cats {doc.cats} is at least 0.5"
            raise ValueError(Errors.E024.format(path=path, problem=problem))
        pairs += [_checked(doc.text, label, path, where) for label in labels]
    return pairs


def _pick(record, path: Path, where: str) -> Tuple[str, str]:
    if not isinstance(record, dict):
        raise ValueError(Errors.E024.format(path=path, problem=f"{where} is not an object"))
    text = next((record[k] for k in TEXT_KEYS if k in record), None)
    label = next((record[k] for k in LABEL_KEYS if k in record), None)
    if not isinstance(text, str) or label is None:
        problem = (
            f"{where} needs a text ({'/'.join(TEXT_KEYS)}) and a label ({'/'.join(LABEL_KEYS)})"
        )
        raise ValueError(Errors.E024.format(path=path, problem=problem))
    if not isinstance(label, str):
        # 1 and 1.0, or a list, would otherwise become labels by their repr
        problem = f"{where}: the label {label!r} is a {type(label).__name__}, not a string"
        raise ValueError(Errors.E024.format(path=path, problem=problem))
    return _checked(text, label, path, where)


def _checked(text: str, label: str, path: Path, where: str) -> Tuple[str, str]:
    """The pair with the label's surrounding whitespace removed and its
    characters in NFC (as adapt() keeps labels); an empty text or a label
    without a visible character is an error naming where it is."""
    label = unicodedata.normalize("NFC", label.strip())
    if not has_visible_text(label):
        raise ValueError(Errors.E024.format(path=path, problem=f"{where} has an empty label"))
    if not has_visible_text(text):
        raise ValueError(Errors.E024.format(path=path, problem=f"{where} has an empty text"))
    return text, label


def k_shot(pairs: List[Tuple[str, str]], shots: int, seed: int) -> List[Tuple[str, str]]:
    """Up to `shots` distinct texts per label drawn from (text, label) pairs
    with a seed, labels in sorted order."""
    rng = random.Random(seed)
    by_label = group_by_label(pairs)
    drawn = []
    for label in sorted(by_label):
        texts = sorted(set(by_label[label]))
        drawn.extend((text, label) for text in rng.sample(texts, min(shots, len(texts))))
    return drawn
