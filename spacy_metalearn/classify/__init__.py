"""Classifying a whole corpus with an adapted pipeline, on this machine
(python -m spacy_metalearn classify) or on a Ray cluster (--engine ray)."""

import contextlib
from pathlib import Path
from typing import Iterator, Optional

from ..checks import check_integer
from ..errors import Errors
from .local import ClassifierSettings, RunSummary, run_local
from .predicting import COLUMNS, CorpusClassifier
from .reading import check_columns, input_files
from .writing import (
    check_output_format,
    check_outside_input,
    check_writable,
    describe_input,
    prepare_output,
    write_manifest,
)

ENGINES = ("local", "ray")


def classify_corpus(
    model: str,
    input_path: Path,
    output: Path,
    *,
    text_column: str = "text",
    output_format: str = "parquet",
    all_scores: bool = False,
    out_of_scope: bool = False,
    shard_size: int = 10_000,
    batch_size: Optional[int] = None,
    n_process: int = 1,
    threads: Optional[int] = None,
    inference_backend: Optional[str] = None,
    gpu_id: int = -1,
    resume: bool = False,
    overwrite: bool = False,
    engine: str = "local",
    address: Optional[str] = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    progress: bool = True,
) -> RunSummary:
    """Classify every row of `input_path` (a .jsonl, .csv or .parquet file, or
    a folder of them) into shards in the folder `output`: the rows with
    predicted_label, predicted_score (and predicted_out_of_scope,
    predicted_scores where asked for) and classify_error appended.

    Everything that can be checked before classifying is checked first (the
    engine, the output, every file's columns, the pipeline), so that a bad
    input refuses the run before anything is written. See the CLI for the
    settings.
    """
    if engine not in ENGINES:
        raise ValueError(Errors.E059.format(engine=engine))
    if engine == "ray" and resume:
        raise ValueError(
            Errors.E063.format(
                first="--engine ray",
                second="--resume",
                why="a Ray job moves its output into place only when it has "
                "finished; --engine local resumes shard by shard",
            )
        )
    check_integer("--shard-size", shard_size, 1)
    check_integer("--n-process", n_process, 1)
    for option, value in (("--batch-size", batch_size), ("--threads", threads)):
        if value is not None:  # None: the pipeline's, torch's
            check_integer(option, value, 1)
    check_output_format(output_format)
    files = input_files(input_path)
    for path in files:
        check_columns(path, text_column, COLUMNS)
    # before the pipeline loads: where the output goes
    check_outside_input(output, input_path)
    check_writable(output)
    if engine == "ray":
        from .ray_engine import cluster
    else:
        cluster = _this_machine
    with cluster(address):
        settings = ClassifierSettings(
            model,
            all_scores=all_scores,
            out_of_scope=out_of_scope,
            batch_size=batch_size,
            inference_backend=inference_backend,
            threads=threads,
            gpu_id=gpu_id,
        )
        # loaded here first: a pipeline without labels or a bad backend is
        # refused before any output, and the labels go into the manifest
        classifier = settings.build()
        labels = classifier.labels
        if engine != "local" or n_process > 1:
            classifier = None  # the workers load their own
        manifest = {
            "pipeline": model,
            "labels": labels,
            "input": describe_input(files),
            "text_column": text_column,
            "shard_size": shard_size,
            "output_format": output_format,
            "all_scores": all_scores,
            "out_of_scope": out_of_scope,
            "engine": engine,
        }
        prepare_output(
            output,
            manifest,
            resume=resume,
            overwrite=overwrite,
            inputs=[input_path],
            at_once=engine == "ray",
        )
        if engine == "local":
            summary = run_local(
                settings,
                files,
                output,
                text_column=text_column,
                shard_size=shard_size,
                output_format=output_format,
                n_process=n_process,
                classifier=classifier,
                progress=progress,
            )
        else:
            from .ray_engine import run_ray

            summary = run_ray(
                settings,
                files,
                output,
                text_column=text_column,
                output_format=output_format,
                n_workers=n_process,
                cpus_per_worker=cpus_per_worker,
                gpus_per_worker=gpus_per_worker,
                progress=progress,
            )
        write_manifest(output, {**manifest, "complete": True, "last_run": summary.to_dict()})
        return summary


@contextlib.contextmanager
def _this_machine(address: Optional[str]) -> Iterator[None]:
    if address is not None:
        raise ValueError(
            Errors.E063.format(
                first="--address",
                second="--engine local",
                why="an address names a Ray cluster: pass --engine ray",
            )
        )
    yield


__all__ = ["classify_corpus", "ClassifierSettings", "CorpusClassifier", "RunSummary"]
