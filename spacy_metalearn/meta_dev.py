"""A meta-dev of whole held-out tasks: each a support set and test queries of
its own labels, scored all-label with the adaptation the pipeline ships (what
a user does after meta-pretraining), not in small episodes.

On disk, a folder with one subfolder per task, each holding `support` and
`test` data in any format read_labelled() reads (`support.jsonl`,
`support.csv` or a `support/` folder with `seq.in` and `label`; the same for
`test`)."""

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from spacy.language import Language

from .data import group_by_label, read_labelled
from .errors import Errors
from .evaluation import accuracy, find_component, predicted_labels

DATA_NAMES = ("{part}.jsonl", "{part}.csv", "{part}")


@dataclass(frozen=True)
class MetaDevTask:
    name: str
    support: List[Tuple[str, str]]
    test: List[Tuple[str, str]]


def read_meta_dev(path: Path) -> List[MetaDevTask]:
    """The tasks of a meta-dev folder, in name order; each needs two labels
    or more, and test labels that its support set has."""
    if not path.is_dir():
        raise ValueError(Errors.E047.format(path=path))
    tasks = []
    for folder in sorted(p for p in path.iterdir() if p.is_dir()):
        parts = {part: _find_part(folder, part) for part in ("support", "test")}
        if not all(parts.values()):
            continue
        support, test = (read_labelled(parts[part]) for part in ("support", "test"))
        labels = {label for _, label in support}
        if len(labels) < 2:
            raise ValueError(Errors.E051.format(path=folder, problem="its support has one label"))
        unknown = sorted({label for _, label in test} - labels)
        if unknown:
            problem = f"its test labels {unknown[:5]} are not in its support"
            raise ValueError(Errors.E051.format(path=folder, problem=problem))
        tasks.append(MetaDevTask(folder.name, support, test))
    if not tasks:
        problem = "it has no task folder with support and test data"
        raise ValueError(Errors.E051.format(path=path, problem=problem))
    return tasks


def _find_part(folder: Path, part: str):
    for pattern in DATA_NAMES:
        candidate = folder / pattern.format(part=part)
        if candidate.exists():
            return candidate
    return None


def meta_dev_accuracy(nlp: Language, tasks: Sequence[MetaDevTask]) -> Dict[str, Any]:
    """All-label accuracy on each task (adapt() to its support with the
    pipeline's settings, replacing any labels; predict its test queries) and
    their mean. The pipeline's labels are replaced.

    RETURNS (Dict[str, Any]): {"accuracy": mean %, "tasks": {name: %},
        "correct": {name: [whether each test query was right]}}.
    """
    component = find_component(nlp)
    scores, correct = {}, {}
    for task in tasks:
        component.adapt(group_by_label(task.support), replace=True)
        embeddings = component.embedder([text for text, _ in task.test])
        predicted = predicted_labels(component, embeddings)
        scores[task.name] = accuracy(predicted, task.test)
        correct[task.name] = [p == label for p, (_, label) in zip(predicted, task.test)]
    return {"accuracy": statistics.fmean(scores.values()), "tasks": scores, "correct": correct}


def paired_bootstrap(
    candidate: Dict[str, List[bool]],
    baseline: Dict[str, List[bool]],
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> Dict[str, float]:
    """The candidate's gain over the baseline in meta-dev accuracy (the mean
    of the tasks' accuracies, %) and its 95% interval: the same test queries
    of each task drawn with replacement for both (a paired bootstrap), every
    task resampled apart.

    candidate, baseline (Dict[str, List[bool]]): Per task, whether each test
    query was right (meta_dev_accuracy's "correct"), the same queries.
    RETURNS (Dict[str, float]): {"gain", "low", "high"}.
    """
    import numpy

    rng = numpy.random.default_rng(seed)
    gains = numpy.zeros(resamples)
    gain = 0.0
    for name, right in candidate.items():
        difference = numpy.asarray(right, dtype=float) - numpy.asarray(baseline[name], dtype=float)
        gain += difference.mean()
        drawn = rng.integers(0, len(difference), size=(resamples, len(difference)))
        gains += difference[drawn].mean(axis=1)
    scale = 100.0 / len(candidate)
    low, high = numpy.percentile(gains * scale, [2.5, 97.5])
    return {"gain": gain * scale, "low": float(low), "high": float(high)}
