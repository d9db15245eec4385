"""Command line: python -m spacy_metalearn adapt|evaluate ..."""

import functools
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import srsly
import typer
from wasabi import msg

from . import device
from .data import group_by_label, keep_labels, read_label_list, read_labelled, write_docbin
from .errors import Errors
from .evaluation import (
    evaluate_all_labels,
    evaluate_episodes,
    find_component,
    load_pipeline,
    markdown_table,
)
from .interpolation import (
    DEFAULT_GRID,
    META_KEY,
    choose_interpolation,
    find_checkpoints,
    parse_grid,
    set_model_weights,
    start_pipeline,
)
from .meta_dev import read_meta_dev
from .outputs import check_output_file, check_output_folder, save_pipeline, write_atomically

app = typer.Typer(name="spacy_metalearn", help="Few-shot text classification for spaCy.")

MODEL_HELP = "Pipeline name or path, or 'default' (a frozen encoder, --encoder)"
ENCODER_HELP = (
    "The 'default' pipeline's encoder: a Hugging Face name or a sentence-transformers "
    "model folder (default: all-MiniLM-L6-v2)"
)
DATA_HELP = ".jsonl / .csv / .spacy (DocBin with cats) file or a folder with seq.in and label"
STEPS_HELP = "Inner-loop steps on the support set at adaptation (default: the pipeline's setting)"
LEARN_RATE_HELP = "Step size of those steps (default: the pipeline's setting)"
DEEP_STEPS_HELP = (
    "Deep-adaptation steps through the top transformer layers before those "
    "(default: the pipeline's setting)"
)
BACKEND_HELP = (
    "What runs the transformer when docs are only encoded: torch, onnxruntime or "
    "onnxruntime-int8 (default: the pipeline's setting)"
)
ADAPT_BACKEND_HELP = BACKEND_HELP[:-1] + "; saved with the adapted pipeline)"
GPU_HELP = "GPU id, or -1 for CPU"
OUTPUT_HELP = "Write results as JSON (an existing file only with --force)"
FORCE_FILE_HELP = "Overwrite an existing output file"


def use_gpu(gpu_id: int) -> None:
    """Run on GPU `gpu_id` (thinc's ops and torch's tensors), or stay on the CPU."""
    if gpu_id >= 0:
        msg.info(f"Using GPU: {gpu_id}")
        device.use_gpu(gpu_id)


def reports_errors(command):
    """Print a command's coded errors as spaCy's CLI does (a message, exit 1),
    not as a traceback."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (ValueError, ImportError) as e:  # ImportError: E041, a missing extra
            msg.fail(str(e), exits=1)

    return run


def parse_shots(shots: str) -> List[int]:
    """'1,5' -> [1, 5]; each a whole number >= 1."""
    try:
        values = [int(k) for k in shots.split(",") if k.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ValueError(
            Errors.E019.format(
                setting="--shots", requirement="comma-separated integers >= 1", value=shots
            )
        )
    return values


def load_configured(
    model: str,
    steps: Optional[int],
    learn_rate: Optional[float],
    deep_steps: Optional[int] = None,
    inference_backend: Optional[str] = None,
    encoder: Optional[str] = None,
):
    """The pipeline ('default': with `encoder`), with its adaptation settings
    and inference backend overridden where given."""
    nlp = load_pipeline(model, encoder=encoder)
    component = find_component(nlp)
    component.set_adaptation(
        component.cfg["adapt_steps"] if steps is None else steps,
        component.cfg["adapt_learn_rate"] if learn_rate is None else learn_rate,
        deep_steps=deep_steps,
    )
    if inference_backend is not None:
        component.set_inference_backend(inference_backend)
    return nlp


@app.command("adapt")
@reports_errors
def adapt_cli(
    model: str = typer.Argument(..., help=MODEL_HELP),
    support_path: Path = typer.Argument(..., help=f"Support examples: {DATA_HELP}"),
    output: Path = typer.Argument(..., help="Folder to save the adapted pipeline to"),
    replace: bool = typer.Option(False, "--replace", help="Forget the current labels first"),
    force: bool = typer.Option(
        False, "--force", help="Replace an existing output folder that holds a pipeline"
    ),
    deep_steps: Optional[int] = typer.Option(None, "--deep-steps", help=DEEP_STEPS_HELP),
    inference_backend: Optional[str] = typer.Option(
        None, "--inference-backend", help=ADAPT_BACKEND_HELP
    ),
    encoder: Optional[str] = typer.Option(None, "--encoder", help=ENCODER_HELP),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help=GPU_HELP),
) -> None:
    """Adapt a pipeline's few_shot_textcat to the labels of a support set and save it.
    The output is written completely or not at all; --force replaces only an
    empty folder or a pipeline, never the inputs or the current directory."""
    inputs = [support_path] + ([Path(model)] if Path(model).exists() else [])
    check_output_folder(output, force=force, inputs=inputs)
    support = group_by_label(read_labelled(support_path))  # bad input: before the model loads
    use_gpu(gpu_id)
    nlp = load_pipeline(model, encoder=encoder)
    component = find_component(nlp)
    if inference_backend is not None:
        component.set_inference_backend(inference_backend)
    start = time.perf_counter()
    changes = component.adapt(support, replace=replace, deep_steps=deep_steps)
    seconds = time.perf_counter() - start
    save_pipeline(nlp, output)
    msg.good(
        f"Adapted to {len(support)} labels in {seconds:.2f}s "
        f"({len(changes['added'])} added, {len(changes['updated'])} updated, "
        f"{len(changes['removed'])} removed); saved to {output}"
    )


@app.command("evaluate")
@reports_errors
def evaluate_cli(
    model: str = typer.Argument(..., help=MODEL_HELP),
    support_path: Path = typer.Argument(..., help=f"Support examples: {DATA_HELP}"),
    test_path: Path = typer.Argument(..., help=f"Test examples: {DATA_HELP}"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help=OUTPUT_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_FILE_HELP),
    repeats: int = typer.Option(3, "--repeats", min=1, help="Timing runs (median reported)"),
    steps: Optional[int] = typer.Option(None, "--steps", help=STEPS_HELP),
    learn_rate: Optional[float] = typer.Option(None, "--learn-rate", help=LEARN_RATE_HELP),
    deep_steps: Optional[int] = typer.Option(None, "--deep-steps", help=DEEP_STEPS_HELP),
    inference_backend: Optional[str] = typer.Option(None, "--inference-backend", help=BACKEND_HELP),
    encoder: Optional[str] = typer.Option(None, "--encoder", help=ENCODER_HELP),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help=GPU_HELP),
) -> None:
    """All-label K-shot evaluation: adapt to every label of the support set,
    predict the test set, report accuracy and adaptation time against the
    time to encode the support texts with the bare encoder."""
    if output is not None:
        check_output_file(output, force=force)
    support, test = read_labelled(support_path), read_labelled(test_path)
    use_gpu(gpu_id)
    nlp = load_configured(model, steps, learn_rate, deep_steps, inference_backend, encoder)
    cfg = find_component(nlp).cfg
    result = {"model": model, "support": str(support_path), "test": str(test_path)}
    result["inference_backend"] = cfg["inference_backend"]
    result.update(adapt_steps=cfg["adapt_steps"], adapt_learn_rate=cfg["adapt_learn_rate"])
    result.update(
        deep_adapt_steps=cfg["deep_adapt_steps"], deep_adapt_learn_rate=cfg["deep_adapt_learn_rate"]
    )
    result.update(evaluate_all_labels(nlp, support, test, repeats=repeats))
    columns = ["model", "adapt_steps", "deep_adapt_steps", "n_labels", "n_support", "accuracy",
               "adapt_seconds", "encode_seconds", "adapt_over_encode",
               "predict_docs_per_second"]  # fmt: skip
    report([result], columns, output, result)


@app.command("episodes")
@reports_errors
def episodes_cli(
    model: str = typer.Argument(..., help=MODEL_HELP),
    data_path: Path = typer.Argument(..., help=f"Labelled examples: {DATA_HELP}"),
    labels_path: Optional[Path] = typer.Option(
        None, "--labels", help="Only these classes (one per line)"
    ),
    n_way: int = typer.Option(5, "--n-way", min=2),
    shots: str = typer.Option("1,5", "--shots", help="Comma-separated K values"),
    n_query: int = typer.Option(5, "--n-query", min=1),
    n_episodes: int = typer.Option(600, "--n-episodes", min=1),
    seed: int = typer.Option(0, "--seed"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help=OUTPUT_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_FILE_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", help=STEPS_HELP),
    learn_rate: Optional[float] = typer.Option(None, "--learn-rate", help=LEARN_RATE_HELP),
    encoder: Optional[str] = typer.Option(None, "--encoder", help=ENCODER_HELP),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help=GPU_HELP),
) -> None:
    """Episodic N-way K-shot accuracy (mean and 95% CI over episodes) on
    held-out classes, adapted the way the pipeline adapts."""
    if output is not None:
        check_output_file(output, force=force)
    shot_list = parse_shots(shots)
    pairs = read_labelled(data_path)
    if labels_path is not None:
        pairs = keep_labels(pairs, read_label_list(labels_path))
    use_gpu(gpu_id)
    nlp = load_configured(model, steps, learn_rate, encoder=encoder)
    rows, cache = [], {}
    for k_shot in shot_list:
        row = {"model": model, "data": str(data_path)}
        row["adapt_steps"] = find_component(nlp).cfg["adapt_steps"]
        row.update(
            evaluate_episodes(
                nlp, pairs, n_way=n_way, k_shot=k_shot, n_query=n_query,
                n_episodes=n_episodes, seed=seed, cache=cache,
            )
        )  # fmt: skip
        rows.append(row)
    columns = ["model", "adapt_steps", "n_way", "k_shot", "n_episodes", "accuracy", "ci95"]
    report(rows, columns, output, rows)


@app.command("corpus")
@reports_errors
def corpus_cli(
    data_path: Path = typer.Argument(..., help=f"Labelled examples: {DATA_HELP}"),
    output: Path = typer.Argument(..., help="The .spacy file to write"),
    labels_path: Optional[Path] = typer.Option(
        None, "--labels", help="Only these classes (one per line)"
    ),
    lang: str = typer.Option("en", "--lang"),
    force: bool = typer.Option(False, "--force", help=FORCE_FILE_HELP),
) -> None:
    """Convert labelled texts to a .spacy corpus (cats {label: 1.0}) for
    meta-pretraining with `spacy train`."""
    check_output_file(output, force=force)
    pairs = read_labelled(data_path)
    if labels_path is not None:
        pairs = keep_labels(pairs, read_label_list(labels_path))
    n_docs = write_docbin(pairs, output, lang=lang)
    n_labels = len({label for _, label in pairs})
    msg.good(f"Wrote {n_docs} docs over {n_labels} labels to {output}")


@app.command("interpolate")
@reports_errors
def interpolate_cli(
    training: Path = typer.Argument(
        ..., help="A `spacy train` output folder (model-best, model-last) or one pipeline"
    ),
    meta_dev: Path = typer.Argument(
        ..., help="Meta-dev tasks: a folder of task folders, each with support and test data"
    ),
    output: Path = typer.Argument(..., help="Folder to save the chosen pipeline to"),
    grid: str = typer.Option(
        ",".join(str(a) for a in DEFAULT_GRID),
        "--grid",
        help="Weights of the trained model, in [0, 1]",
    ),
    start: Optional[str] = typer.Option(
        None,
        "--start",
        help="The pipeline training started from (default: the trained config, initialized afresh)",
    ),
    scores: Optional[Path] = typer.Option(None, "--scores", help=OUTPUT_HELP),
    force: bool = typer.Option(
        False, "--force", help="Replace an existing output folder that holds a pipeline, and scores"
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help=GPU_HELP),
) -> None:
    """Interpolate a meta-pretrained pipeline's weights with those it started
    from, (1 - alpha) * start + alpha * trained, choosing alpha on the grid and
    the checkpoint by all-label accuracy on the meta-dev tasks, adapted as the
    pipeline adapts. alpha = 0 (the start) is always scored; the grid, its
    scores and the choice go into the output's meta.json and --scores."""
    alphas = sorted({0.0, *parse_grid(grid)})
    checkpoints = find_checkpoints(training)
    check_output_folder(output, force=force, inputs=[training, meta_dev])
    if scores is not None:
        check_output_file(scores, force=force)
    tasks = read_meta_dev(meta_dev)
    use_gpu(gpu_id)
    pipelines = {name: load_pipeline(str(path)) for name, path in checkpoints.items()}
    first = next(iter(pipelines.values()))
    start_nlp = start_pipeline(first) if start is None else load_pipeline(start)
    result, weights = choose_interpolation(pipelines, start_nlp, tasks, alphas)
    # the chosen checkpoint as saved (no labels), with the chosen weights
    nlp = load_pipeline(str(checkpoints[result["chosen"]["checkpoint"]]))
    set_model_weights(find_component(nlp).model, weights)
    result.update(
        training=str(training),
        start=start or "the trained config, initialized afresh",
        meta_dev=str(meta_dev),
        tasks={task.name: {"support": len(task.support), "test": len(task.test)} for task in tasks},
        meta_pretraining_helped=result["chosen"]["alpha"] > 0.0,
    )
    print(markdown_table(result["grid"], ["checkpoint", "alpha", "accuracy"]))
    nlp.meta[META_KEY] = {**nlp.meta.get(META_KEY, {}), "interpolation": result}
    save_pipeline(nlp, output)
    chosen = result["chosen"]
    msg.good(
        f"Chose {chosen['checkpoint']} at alpha = {chosen['alpha']:g} (meta-dev "
        f"{chosen['accuracy']:.2f}); saved to {output}"
    )
    if result["within_noise"]:
        best, bootstrap = result["best"], result["bootstrap"]
        msg.warn(
            f"{best['checkpoint']} at alpha = {best['alpha']:g} scored best, "
            f"{bootstrap['gain']:+.2f} over alpha = 0, within the meta-dev's noise "
            f"(95% interval {bootstrap['low']:+.2f} to {bootstrap['high']:+.2f}): "
            "shipping alpha = 0"
        )
    elif not result["meta_pretraining_helped"]:
        msg.warn("alpha = 0 scored best: meta-pretraining did not help on this meta-dev")
    if scores is not None:
        write_json(scores, result)


@app.command("classify")
@reports_errors
def classify_cli(
    model: str = typer.Argument(..., help="Adapted pipeline: a folder or an installed package"),
    input_path: Path = typer.Argument(
        ..., help="A .jsonl, .csv or .parquet file, or a folder of them"
    ),
    output: Path = typer.Argument(..., help="Folder to write the classified rows to, in shards"),
    text_column: str = typer.Option("text", "--text-column", help="The column with the texts"),
    output_format: str = typer.Option("parquet", "--output-format", help="parquet or jsonl"),
    all_scores: bool = typer.Option(
        False, "--all-scores", help="Also write every label's score (predicted_scores)"
    ),
    out_of_scope: bool = typer.Option(
        False,
        "--out-of-scope",
        help="Also write the out-of-scope decision (always where the pipeline has an "
        "unknown_label)",
    ),
    shard_size: int = typer.Option(10_000, "--shard-size", help="Rows per output file"),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", help="Docs encoded at once, >= 1 (default: the pipeline's)"
    ),
    n_process: int = typer.Option(
        1, "--n-process", "-n", help="Worker processes (local) or actors (ray)"
    ),
    threads: Optional[int] = typer.Option(
        None,
        "--threads",
        help="torch threads per process, >= 1 (default: torch's with one process, one each "
        "with several, --cpus-per-worker with ray)",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Finish the run that wrote OUTPUT: skip its shards"
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace what an earlier classify wrote to OUTPUT"
    ),
    engine: str = typer.Option("local", "--engine", help="local (this machine) or ray"),
    address: Optional[str] = typer.Option(
        None,
        "--address",
        help="Ray cluster to connect to (default: RAY_ADDRESS, or a new local cluster)",
    ),
    cpus_per_worker: float = typer.Option(1.0, "--cpus-per-worker", help="CPUs per Ray actor"),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", help="GPUs per Ray actor"),
    inference_backend: Optional[str] = typer.Option(None, "--inference-backend", help=BACKEND_HELP),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help=GPU_HELP),
):
    """Classify every row of INPUT with the pipeline MODEL and write the rows,
    with predicted_label, predicted_score and classify_error appended, to the
    folder OUTPUT in shards (part-*.parquet or .jsonl) and a _manifest.json.
    A row that cannot be classified (empty or missing text, a line that is
    not UTF-8 or not JSON) is written with its reason in classify_error; the
    first few are listed at the end. Running the command again with --resume
    skips the shards already written."""
    from .classify import classify_corpus

    summary = classify_corpus(
        model,
        input_path,
        output,
        text_column=text_column,
        output_format=output_format,
        all_scores=all_scores,
        out_of_scope=out_of_scope,
        shard_size=shard_size,
        batch_size=batch_size,
        n_process=n_process,
        threads=threads,
        inference_backend=inference_backend,
        gpu_id=gpu_id,
        resume=resume,
        overwrite=overwrite,
        engine=engine,
        address=address,
        cpus_per_worker=cpus_per_worker,
        gpus_per_worker=gpus_per_worker,
    )
    for error in summary.errors:
        msg.warn(error)
    if summary.not_classified > len(summary.errors):
        msg.warn(f"... {summary.not_classified - len(summary.errors)} more rows not classified")
    skipped = f"; {summary.skipped} already written were skipped" if summary.skipped else ""
    msg.good(
        f"Classified {summary.classified} rows ({summary.docs_per_second:.0f} docs/s), "
        f"{summary.not_classified} not classified{skipped}: {output}"
    )


def report(rows: List[Dict[str, Any]], columns: List[str], output: Optional[Path], data) -> None:
    """Print rows as a Markdown table and write `data` as JSON to `output`."""
    print(markdown_table(rows, columns))
    if output is not None:
        write_json(output, data)


def write_json(output: Path, data) -> None:
    """Write `data` as JSON to `output` through a temporary file."""
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(output, srsly.json_dumps(data, indent=2).encode("utf8"))
    msg.good(f"Saved results to {output}")


if __name__ == "__main__":
    app()
