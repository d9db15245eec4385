"""The output folder of a classify run: one file per shard, each written
under a temporary name and renamed into place when whole, and a manifest
(_manifest.json) that says what the run read and how, so that --resume can
tell whether the folder is the same job, half done.

OUTPUT/
    _manifest.json          the run's input and settings; "complete" at the end
    part-00000-00000.parquet  (or .jsonl) the rows of one shard, with the
    part-00000-00001.parquet  predictions appended, in input order
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import srsly

from ..errors import Errors
from ..outputs import check_not_input, write_atomically
from .reading import Row

MANIFEST = "_manifest.json"
OUTPUT_FORMATS = ("parquet", "jsonl")
# settings that must be the same for a resumed run to continue the first one
RESUMED_SETTINGS = (
    "input",
    "pipeline",
    "labels",
    "text_column",
    "shard_size",
    "output_format",
    "all_scores",
    "out_of_scope",
    "engine",
)


def check_output_format(output_format: str) -> None:
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(
            Errors.E019.format(
                setting="--output-format", requirement="parquet or jsonl", value=output_format
            )
        )
    if output_format == "parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError as e:
            raise ImportError(Errors.E065.format(error=e)) from e


def check_outside_input(output: Path, input_path: Path) -> None:
    """Refuse an output inside the input folder (E070): the next run would
    read its shards as input. (An output that is the input, or a folder
    above it, is E044.)"""
    if input_path.is_dir():
        folder = input_path.absolute().resolve()
        if folder in output.absolute().resolve().parents:
            raise ValueError(Errors.E070.format(output=output, input=input_path))


def check_writable(output: Path) -> None:
    """Refuse an output where no file can be written (E069): a read-only
    file system or a folder without write permission, tried by writing a
    temporary file in `output` or the nearest folder above it that exists."""
    folder = output.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return  # a file: prepare_output refuses it (E035)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise ValueError(
            Errors.E069.format(path=output, error=e.strerror or e, folder=folder)
        ) from e


def describe_input(files: Sequence[Path]) -> List[Dict[str, Any]]:
    """What --resume compares of the input: each file's path, size and
    modification time."""
    described = []
    for path in files:
        stat = path.stat()
        described.append(
            {"path": str(path.absolute()), "bytes": stat.st_size, "modified_ns": stat.st_mtime_ns}
        )
    return described


def prepare_output(
    output: Path,
    manifest: Dict[str, Any],
    *,
    resume: bool,
    overwrite: bool,
    inputs: Sequence[Path],
    at_once: bool = False,
) -> None:
    """Make `output` ready for the run described by `manifest`, or refuse.

    A new folder is created. An existing one is refused (E056) unless the run
    resumes it (its manifest must match, E058) or overwrites it; either way
    it must hold nothing but what classify writes (E057), and overwriting
    removes those files first. A file is refused (E035), and so are the
    inputs and the current directory (E044).

    at_once (bool): The engine writes OUTPUT whole when it has finished (the
        Ray engine): only check now, and leave `output` as it is until
        clear_output().
    """
    if resume and overwrite:
        raise ValueError(
            Errors.E063.format(
                first="--resume",
                second="--overwrite",
                why="one finishes the run in OUTPUT, the other starts it over",
            )
        )
    check_not_input(output, inputs)
    if output.exists() and not output.is_dir():
        raise ValueError(Errors.E035.format(path=output))
    if output.exists() and any(output.iterdir()):
        if not (resume or overwrite):
            raise ValueError(Errors.E056.format(path=output))
        foreign = [
            entry.name
            for entry in output.iterdir()
            if not (entry.is_file() and is_written_here(entry.name))
        ]
        if foreign:
            listed = ", ".join(sorted(foreign)[:5]) + (", ..." if len(foreign) > 5 else "")
            action = "resume" if resume else "overwrite"
            raise ValueError(Errors.E057.format(action=action, path=output, entries=listed))
        if resume:
            check_same_run(output, manifest)
    if at_once:
        return
    clear_output(output, everything=overwrite)
    write_manifest(output, {**manifest, "complete": False})


def clear_output(output: Path, *, everything: bool) -> None:
    """Create `output`, or remove from it the temporaries of a killed run,
    or (everything) all that classify wrote there. prepare_output() has
    checked that it holds nothing else."""
    if output.is_dir():
        for entry in output.iterdir():
            if everything or entry.name.startswith("."):
                entry.unlink()
    output.mkdir(parents=True, exist_ok=True)


def is_written_here(name: str) -> bool:
    """Whether classify writes files of this name (shards, their
    temporaries, the manifest)."""
    if name.startswith("."):
        name = name[1:]
        if name.endswith(".tmp"):
            name = name[: -len(".tmp")]
    return name == MANIFEST or (
        name.startswith("part-") and name.endswith(tuple(f".{f}" for f in OUTPUT_FORMATS))
    )


def check_same_run(output: Path, manifest: Dict[str, Any]) -> None:
    """Refuse to resume a folder whose manifest describes another run (E058)."""
    try:
        previous = json.loads((output / MANIFEST).read_text(encoding="utf8"))
    except (OSError, ValueError):
        previous = {}
    for key in RESUMED_SETTINGS:
        if previous.get(key) != manifest.get(key):
            then, now = previous.get(key, "not recorded"), manifest.get(key)
            if key == "input":
                then, now = _input_difference(then, now)
            raise ValueError(Errors.E058.format(path=output, what=key, then=then, now=now))


def _input_difference(then: Any, now: List[Dict[str, Any]]) -> Sequence[str]:
    """The first input file that differs, as (then, now) descriptions."""
    then = then if isinstance(then, list) else []
    for index in range(max(len(then), len(now))):
        old = then[index] if index < len(then) else None
        new = now[index] if index < len(now) else None
        if old != new:
            return _describe_file(old), _describe_file(new)
    return "?", "?"


def _describe_file(file: Optional[Dict[str, Any]]) -> str:
    if not isinstance(file, dict):
        return "no file"
    return f"{file.get('path')}, {file.get('bytes')} bytes, modified_ns {file.get('modified_ns')}"


def write_manifest(output: Path, manifest: Dict[str, Any]) -> None:
    write_atomically(output / MANIFEST, srsly.json_dumps(manifest, indent=2).encode("utf8"))


def shard_path(output: Path, name: str, output_format: str) -> Path:
    return output / f"{name}.{output_format}"


def write_shard(
    path: Path,
    rows: Sequence[Row],
    columns: Dict[str, list],
    arrow_types: Optional[Dict[str, Any]] = None,
) -> None:
    """Write the rows with the prediction columns appended to `path`, through
    a temporary name: the file is whole or absent, at every instant."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        if path.suffix == ".parquet":
            _write_parquet(temporary, rows, columns, arrow_types or {})
        else:
            _write_jsonl(temporary, rows, columns)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _write_jsonl(path: Path, rows: Sequence[Row], columns: Dict[str, list]) -> None:
    with path.open("w", encoding="utf8") as file:
        for i, row in enumerate(rows):
            out = {**row, **{column: values[i] for column, values in columns.items()}}
            file.write(json.dumps(out, ensure_ascii=False, default=str) + "\n")
        file.flush()
        os.fsync(file.fileno())


def _write_parquet(
    path: Path, rows: Sequence[Row], columns: Dict[str, list], arrow_types: Dict[str, Any]
) -> None:
    import pyarrow
    import pyarrow.parquet

    table = rows_table(rows)
    for column, values in columns.items():
        table = table.append_column(column, pyarrow.array(values, type=arrow_types.get(column)))
    with path.open("wb") as file:
        pyarrow.parquet.write_table(table, file)
        file.flush()
        os.fsync(file.fileno())


def rows_table(rows: Sequence[Row]):
    """The rows as a pyarrow Table with every column any row has. A column
    that Arrow or Parquet cannot hold as it is (values of several kinds,
    integers past 64 bits, an object with no fields) is written as text (what
    is not a string as JSON), so that no row is lost."""
    import pyarrow

    names: Dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    arrays = []
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            array = pyarrow.array(values)
        except (pyarrow.ArrowException, OverflowError):
            array = None
        if array is None or not _storable(array.type):
            array = pyarrow.array([_as_text(v) for v in values], type=pyarrow.string())
        arrays.append(array)
    if not arrays:
        return pyarrow.table({"_": pyarrow.nulls(len(rows))}).drop_columns(["_"])
    return pyarrow.table(dict(zip(names, arrays)))


def _storable(arrow_type) -> bool:
    """Whether Parquet can store an Arrow type: not a struct without fields,
    at any depth."""
    import pyarrow.types as types

    if types.is_struct(arrow_type):
        fields = [arrow_type.field(i) for i in range(arrow_type.num_fields)]
        return bool(fields) and all(_storable(field.type) for field in fields)
    if types.is_list(arrow_type) or types.is_large_list(arrow_type):
        return _storable(arrow_type.value_type)
    if types.is_map(arrow_type):
        return _storable(arrow_type.key_type) and _storable(arrow_type.item_type)
    return True


def _as_text(value: Any) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
