"""Reading a corpus to classify: JSONL, CSV or Parquet files, or a folder of
them, cut into shards of rows in a fixed order, so that a second run of the
same command cuts the same shards (and can skip those already written).

A row that cannot be read (a line that is not UTF-8 or not a JSON object, a
CSV row with the wrong number of fields) is kept as a row with an error, and
the rest of the file is read: one bad row never stops a run."""

import csv
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import Errors

FORMATS = (".jsonl", ".csv", ".parquet")

Row = Dict[str, Any]


@dataclass
class Shard:
    """Consecutive rows of one input file.

    name (str): The output's name for it: part-<file index>-<chunk index>.
    path (Path): The input file.
    numbers (List[int]): Where each row is in the file (1-based): the line of
        a JSONL file, the record after a CSV's header, the row of a Parquet file.
    rows (List[Row]): The rows as read.
    problems (List[Optional[str]]): Per row, why it could not be read, or None.
    """

    name: str
    path: Path
    numbers: List[int] = field(default_factory=list)
    rows: List[Row] = field(default_factory=list)
    problems: List[Optional[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


def input_files(path: Path) -> List[Path]:
    """The files to classify: `path` itself, or the .jsonl, .csv and .parquet
    files under the folder `path` (hidden ones left out), in sorted order."""
    if not path.exists():
        raise ValueError(Errors.E047.format(path=path))
    if path.is_file():
        if path.suffix.lower() not in FORMATS:
            raise ValueError(Errors.E053.format(path=path, problem="its format is not known"))
        return [path]
    files = sorted(
        found
        for found in path.rglob("*")
        if found.is_file()
        and found.suffix.lower() in FORMATS
        and not any(part.startswith(".") for part in found.relative_to(path).parts)
    )
    if not files:
        raise ValueError(Errors.E053.format(path=path, problem="the folder holds no such files"))
    return files


def check_columns(path: Path, text_column: str, written: Sequence[str]) -> None:
    """Refuse a file without the text column (E054) or with a column that
    classify writes (E055). A JSONL file's columns are its first object's."""
    columns = read_columns(path)
    if text_column not in columns:
        listed = ", ".join(repr(c) for c in columns[:10]) or "none"
        raise ValueError(Errors.E054.format(path=path, column=text_column, columns=listed))
    for column in written:
        if column in columns:
            raise ValueError(Errors.E055.format(path=path, column=column))


def read_columns(path: Path) -> List[str]:
    """The column names of a file, read from its start."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet

        return list(pyarrow.parquet.read_schema(path).names)
    if suffix == ".csv":
        with path.open(encoding="utf8", errors="replace", newline="") as file:
            return next(csv.reader(file), [])
    for _, row, problem in _read_jsonl(path):
        if problem is None:
            return list(row)
    return []


def read_shards(files: Sequence[Path], shard_size: int) -> Iterator[Shard]:
    """The files' rows, `shard_size` at a time; a shard never spans two files."""
    for file_index, path in enumerate(files):
        rows = read_rows(path)
        for chunk in itertools.count():
            batch = list(itertools.islice(rows, shard_size))
            if not batch:
                break
            shard = Shard(f"part-{file_index:05d}-{chunk:05d}", path)
            for number, row, problem in batch:
                shard.numbers.append(number)
                shard.rows.append(row)
                shard.problems.append(problem)
            yield shard


def read_rows(path: Path) -> Iterator[Tuple[int, Row, Optional[str]]]:
    """(number, row, problem) of each row of one file, in order."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl(path)
    if suffix == ".csv":
        return _read_csv(path)
    return _read_parquet(path)


def _read_jsonl(path: Path) -> Iterator[Tuple[int, Row, Optional[str]]]:
    """One row per non-blank line. A line that is not UTF-8 or not a JSON
    object is a row with a problem (and no columns)."""
    with path.open("rb") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                text = line.decode("utf8")
            except UnicodeDecodeError as e:
                yield number, {}, f"it is not UTF-8 (byte {e.start + 1} of the line)"
                continue
            try:
                row = json.loads(text)
            except ValueError:
                row = None
            if not isinstance(row, dict):
                yield number, {}, "it is not a JSON object"
                continue
            yield number, row, None


def _read_csv(path: Path) -> Iterator[Tuple[int, Row, Optional[str]]]:
    """One row per record after the header. Bytes that are not UTF-8 are
    replaced (U+FFFD) and the row reported; so is a row whose number of
    fields differs from the header's."""
    with path.open(encoding="utf8", errors="surrogateescape", newline="") as file:
        records = csv.reader(file)
        header = [_replace_bad_bytes(name) for name in next(records, [])]
        for number, record in enumerate(records, 1):
            if not record:
                continue
            problem = None
            if any(_has_bad_bytes(value) for value in record):
                problem = "it is not UTF-8"
                record = [_replace_bad_bytes(value) for value in record]
            if len(record) != len(header):
                problem = f"it has {len(record)} fields and the header {len(header)}"
            yield number, dict(zip(header, record)), problem


def _has_bad_bytes(value: str) -> bool:
    """Whether `value`, decoded with surrogateescape, held bytes that are not UTF-8."""
    return any("\udc80" <= char <= "\udcff" for char in value)


def _replace_bad_bytes(value: str) -> str:
    return value.encode("utf8", "surrogateescape").decode("utf8", "replace")


def _read_parquet(path: Path) -> Iterator[Tuple[int, Row, Optional[str]]]:
    import pyarrow.parquet

    number = 0
    for batch in pyarrow.parquet.ParquetFile(path).iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            number += 1
            yield number, row, None
