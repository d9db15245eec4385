"""Classifying a corpus on a Ray cluster with Ray Data: read the files,
map_batches through a pool of actors that each load the pipeline once (and
ask for a GPU where told), write the output. The actors run the same
CorpusClassifier as the local engine, so both give the same labels.

Ray writes its files to a staging folder beside OUTPUT; they are moved into
OUTPUT, in input order, only when the whole job has finished, and OUTPUT is
not touched before: a job that dies leaves it as it was (an earlier run's
output included), and the next run removes the staging folder. (Resuming
half a job is what the local engine does, shard by shard.)"""

import contextlib
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

from ..errors import Errors
from .local import ERRORS_SHOWN, ClassifierSettings, RunSummary
from .predicting import ERROR
from .writing import clear_output

READERS = {".jsonl": "read_json", ".csv": "read_csv", ".parquet": "read_parquet"}
# reading and writing ask for no CPU: the actors, which do the work, hold
# whole CPUs, and a read that waited for a CPU of its own would wait for ever
LIGHT_TASK = {"num_cpus": 0}
# rows per map_batches call: enough for length-sorted batches, small enough
# that the actors of a small job all get work
RAY_BATCH_ROWS = 1024
# seconds to wait for a cluster's address to answer
CONNECT_TIMEOUT = 10.0


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise ImportError(Errors.E060.format(error=e)) from e
    return ray


def staging_folder(output: Path) -> Path:
    return output.absolute().parent / f".{output.name}.ray-staging"


def run_ray(
    settings: ClassifierSettings,
    files: Sequence[Path],
    output: Path,
    *,
    text_column: str,
    output_format: str,
    n_workers: int = 1,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    progress: bool = True,
) -> RunSummary:
    """Classify `files` into `output` on the Ray cluster this process has
    joined (see cluster()).

    n_workers (int): Actors in the pool, each holding the pipeline.
    cpus_per_worker (float): CPUs each actor asks for (its torch threads,
        unless settings.threads says otherwise).
    gpus_per_worker (float): GPUs each actor asks for (0: none).
    """
    ray = import_ray()
    start = time.perf_counter()
    staging = staging_folder(output)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # output rows in input order
        context.enable_progress_bars = progress
        if settings.threads is None:
            threads = max(1, int(cpus_per_worker))
            settings = ClassifierSettings(**{**settings.__dict__, "threads": threads})
        if gpus_per_worker > 0 and settings.gpu_id < 0:
            settings = ClassifierSettings(**{**settings.__dict__, "gpu_id": 0})
        dataset = read_dataset(ray, files)
        classified = dataset.map_batches(
            RayClassifier,
            fn_constructor_kwargs={"settings": settings, "text_column": text_column},
            batch_size=RAY_BATCH_ROWS,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=n_workers),
            num_cpus=cpus_per_worker,
            num_gpus=gpus_per_worker,
        )
        if output_format == "parquet":
            classified.write_parquet(str(staging), ray_remote_args=LIGHT_TASK)
        else:
            classified.write_json(str(staging), ray_remote_args=LIGHT_TASK, force_ascii=False)
        summary = move_into_place(staging, output, output_format)
    except ray.exceptions.RayError as e:
        coded = _read_error(e, files)
        if coded is None:
            raise
        raise coded from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary.seconds = time.perf_counter() - start
    return summary


@contextlib.contextmanager
def cluster(address: Optional[str]) -> Iterator[None]:
    """Join the Ray cluster at `address` (or RAY_ADDRESS), or, where neither
    is given, the one this process has joined or a new local one, which is
    stopped at the end. An address that does not answer is refused at once
    (E061), rather than after Ray's minutes of retries."""
    ray = import_ray()
    address = address or os.environ.get("RAY_ADDRESS")
    if ray.is_initialized() and address is None:
        yield
        return
    if address is not None:
        check_reachable(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ValueError(Errors.E061.format(address=address or "local", error=e)) from e
    try:
        yield
    finally:
        ray.shutdown()


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse an address of the form [ray://]host:port where nothing listens."""
    if address in ("auto", "local"):
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(
            Errors.E061.format(address=address, error="not host:port, ray://host:port or auto")
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ValueError(Errors.E061.format(address=address, error=e)) from e


def read_dataset(ray, files: Sequence[Path]):
    """One dataset of every file's rows, in file order."""
    datasets = []
    for path in files:
        reader = getattr(ray.data, READERS[path.suffix.lower()])
        kwargs = {"lines": True} if path.suffix.lower() == ".jsonl" else {}
        datasets.append(
            reader(
                str(path.absolute()), partitioning=None, num_cpus=LIGHT_TASK["num_cpus"], **kwargs
            )
        )
    return datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0]


class RayClassifier:
    """An actor of the pool: loads the pipeline once, classifies batches."""

    def __init__(self, settings: ClassifierSettings, text_column: str) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.classifier = settings.build()
        self.text_column = text_column

    def __call__(self, batch):
        return self.classifier.classify_table(batch, self.text_column)


def move_into_place(staging: Path, output: Path, output_format: str) -> RunSummary:
    """Replace what `output` held (an earlier run's files, with
    --overwrite) by Ray's files, as part-r<n> in Ray's (input) order, and
    count what they hold."""
    summary = RunSummary()
    written = sorted(p for p in staging.iterdir() if not p.name.startswith("."))
    clear_output(output, everything=True)
    for index, path in enumerate(written):
        target = output / f"part-r{index:05d}.{output_format}"
        errors = _errors_in(path, output_format)
        rows = _count_rows(path, output_format)
        os.replace(path, target)
        summary.classified += rows - len(errors)
        summary.not_classified += len(errors)
        summary.shards_written += 1
        for row, problem in errors[: max(0, ERRORS_SHOWN - len(summary.errors))]:
            summary.errors.append(Errors.E064.format(row=row, path=target, problem=problem))
    return summary


def _errors_in(path: Path, output_format: str) -> List[tuple]:
    """(row, problem) of the rows of an output file not classified."""
    if output_format == "parquet":
        import pyarrow.parquet

        values = pyarrow.parquet.read_table(path, columns=[ERROR]).column(ERROR).to_pylist()
    else:
        import json

        with path.open(encoding="utf8") as file:
            values = [json.loads(line).get(ERROR) for line in file if line.strip()]
    return [(i + 1, problem) for i, problem in enumerate(values) if problem is not None]


def _count_rows(path: Path, output_format: str) -> int:
    if output_format == "parquet":
        import pyarrow.parquet

        return pyarrow.parquet.ParquetFile(path).metadata.num_rows
    with path.open(encoding="utf8") as file:
        return sum(1 for line in file if line.strip())


def _read_error(error: Exception, files: Sequence[Path]) -> Optional[ValueError]:
    """A coded error for input that Ray's readers refused, or None where the
    error is another."""
    text = str(error)
    if "ray::Read" not in text:
        return None
    named = [path for path in files if str(path.absolute()) in text]
    where = named[0] if named else files[0] if len(files) == 1 else f"{files[0].parent}/*"
    return ValueError(Errors.E066.format(path=where, error=_first_line(text)))


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    interesting = [line for line in lines if "Error" in line or "error" in line]
    return (interesting or lines or [""])[-1][:300]
