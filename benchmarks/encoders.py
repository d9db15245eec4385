"""Choosing an encoder: each encoder side by side in one run, on all-label
K-shot tasks (BANKING77, CLINC150), with the factory default adaptation and
with deep adaptation; adapt seconds, inference speed against
sentence-transformers' encode with the same weights and threads, peak memory
and saved size. Each encoder runs in a fresh process (its peak memory is its
own), read as a sentence-transformers model (SentenceEncoder.v1) or with
spaCy-token mean pooling (DocEncoder.v1 + TransformerEncoder.v1).

    python -m benchmarks.encoders assets/few_shot_intent_detection metrics/encoders \
        --encoder all-MiniLM-L6-v2=sentence-transformers/all-MiniLM-L6-v2:sentence \
        --encoder all-MiniLM-L6-v2=sentence-transformers/all-MiniLM-L6-v2:token-mean \
        --encoder all-mpnet-base-v2=assets/all-mpnet-base-v2:sentence
"""

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import typer

from .benchmark import in_fresh_process, peak_mib, support_set, use_device
from .benchmark_speed import paired_ratio

READINGS = ("sentence", "token-mean")


def encoder_config(name: str, reading: str) -> Dict[str, Any]:
    if reading == "sentence":
        return {"@architectures": "spacy_metalearn.SentenceEncoder.v1", "name": name}
    return {
        "@architectures": "spacy_metalearn.DocEncoder.v1",
        "projection_width": None,
        "tok2vec": {"@architectures": "spacy_metalearn.TransformerEncoder.v1", "name": name},
    }


def build_pipeline(name: str, reading: str):
    import spacy

    from spacy_metalearn.pipeline.factory import DEFAULT_MODEL

    model = {**DEFAULT_MODEL, "encoder": encoder_config(name, reading)}
    nlp = spacy.blank("en")
    nlp.add_pipe("few_shot_textcat", config={"model": model})
    nlp.initialize()
    return nlp


def folder_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def run_encoder(
    name: str,
    reading: str,
    data: Path,
    datasets: List[str],
    shots: List[int],
    deep_steps: int,
    n_speed: int,
    rounds: int,
    seed: int,
    gpu_id: int,
) -> List[Dict[str, Any]]:
    """Every dataset and shot count with one encoder: rows of accuracy and
    adapt seconds per adaptation, and one row of speed, memory and size."""
    import torch
    from sentence_transformers import SentenceTransformer

    from spacy_metalearn.data import group_by_label, read_labelled
    from spacy_metalearn.evaluation import accuracy, find_component, predicted_labels
    from spacy_metalearn.models.encoder import resolve_transformer_name

    use_device(gpu_id)
    nlp = build_pipeline(name, reading)
    component = find_component(nlp)
    rows = []
    for dataset in datasets:
        test = read_labelled(data / dataset / "test")
        texts = [text for text, _ in test]
        frozen = component.embedder(texts)
        for k in shots:
            support = group_by_label(support_set(data / dataset, k, seed))
            for adaptation, steps in (("default", 0), (f"deep {deep_steps}", deep_steps)):
                start = time.perf_counter()
                component.adapt(support, replace=True, deep_steps=steps)
                seconds = time.perf_counter() - start
                embeddings = component.embedder(texts) if steps else frozen
                predicted = predicted_labels(component, embeddings)
                rows.append(
                    {
                        "dataset": dataset,
                        "shots": k,
                        "adaptation": adaptation,
                        "accuracy": accuracy(predicted, test),
                        "adapt_seconds": seconds,
                    }
                )
    component.adapt(support, replace=True, deep_steps=0)
    speed_texts = texts[:n_speed]
    device = "cpu" if gpu_id < 0 else "cuda"
    bare = SentenceTransformer(resolve_transformer_name(name), device=device)
    bare.encode(speed_texts[:32])
    list(nlp.pipe(speed_texts[:32]))
    passes = {
        "pipe": lambda: list(nlp.pipe(speed_texts)),
        "encode": lambda: bare.encode(speed_texts, batch_size=32),
    }
    seconds: Dict[str, List[float]] = {name: [] for name in passes}
    for i in range(rounds):  # interleaved rounds, the order rotated each round
        for name in list(passes) if i % 2 == 0 else list(passes)[::-1]:
            start = time.perf_counter()
            passes[name]()
            seconds[name].append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as folder:
        nlp.to_disk(folder)
        saved = folder_mib(Path(folder))
    rows.append(
        {
            "docs_per_second": len(speed_texts) / statistics.median(seconds["pipe"]),
            "encode_docs_per_second": len(speed_texts) / statistics.median(seconds["encode"]),
            "inference_ratio": paired_ratio(seconds["encode"], seconds["pipe"]),
            "threads": torch.get_num_threads(),
            "peak_mib": peak_mib(),
            "saved_mib": saved,
        }
    )
    return rows


def main(
    data: Path = typer.Argument(..., help="Folder holding the datasets' folders"),
    output: Path = typer.Argument(..., help="Folder for results.json and results.md"),
    encoder: List[str] = typer.Option(..., help="label=name:reading (repeatable)"),
    datasets: str = typer.Option("BANKING77,CLINC150", help="Datasets with train_K/ and test/"),
    shots: str = typer.Option("5,10", help="Shots per label"),
    deep_steps: int = typer.Option(10, help="Deep-adaptation steps"),
    speed_docs: int = typer.Option(1000, help="Test texts timed for inference speed"),
    rounds: int = typer.Option(3, min=1, help="Interleaved rounds of the speed timing"),
    seed: int = typer.Option(0),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU"),
) -> None:
    from spacy_metalearn.evaluation import markdown_table

    accuracy_rows, cost_rows = [], []
    for spec in encoder:
        label, _, rest = spec.partition("=")
        name, _, reading = rest.rpartition(":")
        if reading not in READINGS or not name:
            raise typer.BadParameter(f"{spec!r}: give label=name:reading ({', '.join(READINGS)})")
        print(f"== {label} ({reading}): {name}", flush=True)
        rows = in_fresh_process(
            run_encoder,
            name,
            reading,
            data,
            [d for d in datasets.split(",") if d],
            [int(k) for k in shots.split(",") if k.strip()],
            deep_steps,
            speed_docs,
            rounds,
            seed,
            gpu_id,
        )
        tag = {"encoder": label, "reading": reading}
        accuracy_rows += [{**tag, **row} for row in rows[:-1]]
        cost_rows.append({**tag, **rows[-1]})
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(
        json.dumps({"accuracy": accuracy_rows, "cost": cost_rows}, indent=2) + "\n"
    )
    accuracy_columns = ["encoder", "reading", "dataset", "shots", "adaptation", "accuracy",
                        "adapt_seconds"]  # fmt: skip
    cost_columns = ["encoder", "reading", "docs_per_second", "encode_docs_per_second",
                    "inference_ratio", "threads", "peak_mib", "saved_mib"]  # fmt: skip
    report = (
        markdown_table(accuracy_rows, accuracy_columns)
        + "\n\n"
        + markdown_table(cost_rows, cost_columns)
        + "\n"
    )
    (output / "results.md").write_text(report)
    print(report)


if __name__ == "__main__":
    typer.run(main)
