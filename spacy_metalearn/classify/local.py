"""Classifying a corpus on this machine: in this process, or in worker
processes (spawned, each loading the pipeline once) that take one shard at a
time and write it themselves. Shards already in the output are skipped, so
running the same command again after a crash finishes the job."""

import multiprocessing
import os
import time
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set

from tqdm import tqdm

from ..errors import Errors
from .predicting import ERROR, CorpusClassifier
from .reading import Shard, read_shards
from .writing import shard_path, write_shard

# errors printed with their file and row at the end of a run; the rest counted
ERRORS_SHOWN = 10


@dataclass
class ClassifierSettings:
    """How each process builds its CorpusClassifier."""

    model: str
    all_scores: bool = False
    out_of_scope: bool = False
    batch_size: Optional[int] = None
    inference_backend: Optional[str] = None
    threads: Optional[int] = None
    gpu_id: int = -1

    def build(self) -> CorpusClassifier:
        return CorpusClassifier(
            self.model,
            all_scores=self.all_scores,
            out_of_scope=self.out_of_scope,
            batch_size=self.batch_size,
            inference_backend=self.inference_backend,
            threads=self.threads,
            gpu_id=self.gpu_id,
        )


@dataclass
class RunSummary:
    """What a run did: rows classified here, rows found already written,
    rows not classified (with the first few reasons), and its speed."""

    classified: int = 0
    skipped: int = 0
    not_classified: int = 0
    shards_written: int = 0
    shards_skipped: int = 0
    seconds: float = 0.0
    errors: List[str] = field(default_factory=list)

    def add(self, written: "ShardResult") -> None:
        self.classified += written.rows - len(written.errors)
        self.not_classified += len(written.errors)
        self.shards_written += 1
        self.errors.extend(written.errors[: max(0, ERRORS_SHOWN - len(self.errors))])

    @property
    def docs_per_second(self) -> float:
        done = self.classified + self.not_classified
        return done / self.seconds if self.seconds else 0.0

    def to_dict(self) -> Dict[str, Any]:
        return {
            "classified": self.classified,
            "not_classified": self.not_classified,
            "skipped_already_written": self.skipped,
            "shards_written": self.shards_written,
            "shards_skipped": self.shards_skipped,
            "seconds": round(self.seconds, 3),
            "docs_per_second": round(self.docs_per_second, 1),
            "first_errors": self.errors,
        }


@dataclass
class ShardResult:
    rows: int
    errors: List[str]


def classify_shard(
    classifier: CorpusClassifier, shard: Shard, text_column: str, output: Path, output_format: str
) -> ShardResult:
    """Classify one shard and write it to its file in `output`."""
    texts = [row.get(text_column) for row in shard.rows]
    columns = classifier.classify(texts, shard.problems)
    arrow_types = classifier.arrow_types() if output_format == "parquet" else None
    write_shard(shard_path(output, shard.name, output_format), shard.rows, columns, arrow_types)
    errors = [
        Errors.E064.format(row=number, path=shard.path, problem=problem)
        for number, problem in zip(shard.numbers, columns[ERROR])
        if problem is not None
    ]
    return ShardResult(len(shard), errors)


def run_local(
    settings: ClassifierSettings,
    files: Sequence[Path],
    output: Path,
    *,
    text_column: str,
    shard_size: int,
    output_format: str,
    n_process: int = 1,
    classifier: Optional[CorpusClassifier] = None,
    progress: bool = True,
) -> RunSummary:
    """Classify every shard of `files` not yet in `output`.

    n_process (int): 1 classifies in this process (with `classifier`, if
        given); more spawn that many workers, with one torch thread each
        unless settings.threads says otherwise.
    """
    summary = RunSummary()
    start = time.perf_counter()
    bar = tqdm(unit=" docs", disable=not progress, smoothing=0.1, mininterval=1.0)
    todo = _shards_to_write(read_shards(files, shard_size), output, output_format, summary, bar)
    try:
        if n_process == 1:
            classifier = classifier or settings.build()
            for shard in todo:
                summary.add(classify_shard(classifier, shard, text_column, output, output_format))
                bar.update(len(shard))
        else:
            _run_in_workers(
                settings, todo, output, text_column, output_format, n_process, summary, bar
            )
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - start
    return summary


def _shards_to_write(shards, output: Path, output_format: str, summary: RunSummary, bar):
    """The shards whose file is not in `output` yet; the others are counted."""
    for shard in shards:
        if shard_path(output, shard.name, output_format).exists():
            summary.skipped += len(shard)
            summary.shards_skipped += 1
            continue
        yield shard


def _run_in_workers(
    settings: ClassifierSettings,
    shards,
    output: Path,
    text_column: str,
    output_format: str,
    n_process: int,
    summary: RunSummary,
    bar,
) -> None:
    """Feed shards to `n_process` spawned workers, at most two each in
    flight, so that reading never runs far ahead of classifying."""
    if settings.threads is None:
        settings = ClassifierSettings(**{**settings.__dict__, "threads": 1})
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        n_process, mp_context=context, initializer=_start_worker, initargs=(settings,)
    ) as pool:
        running: Set[Future] = set()
        sizes: Dict[Future, int] = {}
        try:
            for shard in shards:
                if len(running) >= 2 * n_process:
                    running = _collect(running, sizes, summary, bar, FIRST_COMPLETED)
                future = pool.submit(_work, shard, text_column, str(output), output_format)
                sizes[future] = len(shard)
                running.add(future)
            _collect(running, sizes, summary, bar, ALL_COMPLETED)
        except BaseException:
            for future in running:
                future.cancel()
            raise


def _collect(running: Set[Future], sizes, summary: RunSummary, bar, return_when) -> Set[Future]:
    """Wait for the first (or every) running shard; count what finished."""
    done, left = wait(running, return_when=return_when)
    for future in done:
        summary.add(future.result())
        bar.update(sizes.pop(future))
    return left


_worker_classifier: Optional[CorpusClassifier] = None


def _start_worker(settings: ClassifierSettings) -> None:
    global _worker_classifier
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _worker_classifier = settings.build()


def _work(shard: Shard, text_column: str, output: str, output_format: str) -> ShardResult:
    assert _worker_classifier is not None, "_start_worker() runs first"
    return classify_shard(_worker_classifier, shard, text_column, Path(output), output_format)
