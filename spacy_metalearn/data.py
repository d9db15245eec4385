"""Reading labelled texts: JSONL, CSV, or a folder of line-aligned `seq.in` and
`label` files (the format of the public few-shot intent detection splits)."""

import csv
import json
from pathlib import Path
from typing import Dict, List, Tuple, Union

from .errors import Errors

TEXT_KEYS = ("text", "sentence", "raw")
LABEL_KEYS = ("label", "category", "intent")


def read_labelled(path: Union[str, Path]) -> List[Tuple[str, str]]:
    """Read (text, label) pairs.

    path (Union[str, Path]): a .jsonl file (keys text/sentence and label), a .csv
        file with a header (columns text and label/category), or a folder holding
        `seq.in` and `label`.
    RETURNS (List[Tuple[str, str]]): The pairs, in file order.
    """
    path = Path(path)
    if path.is_dir():
        pairs = _read_folder(path)
    elif path.suffix == ".jsonl":
        pairs = _read_jsonl(path)
    elif path.suffix == ".csv":
        pairs = _read_csv(path)
    else:
        raise ValueError(Errors.E023.format(path=path))
    if not pairs:
        raise ValueError(Errors.E024.format(path=path, problem="it holds no examples"))
    return pairs


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
    return [(t, lab.strip()) for t, lab in zip(texts, labels)]


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
    with path.open(encoding="utf8", newline="") as file:
        return [_pick(row, path, f"row {n}") for n, row in enumerate(csv.DictReader(file), 2)]


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
    return text, str(label)
