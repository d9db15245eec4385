"""All-label K-shot evaluation: adapt a pipeline to every label of a support set,
predict a test set, and time adaptation against bare encoding of the support."""

import statistics
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import spacy
import torch
from spacy.language import Language

from .data import group_by_label
from .errors import Errors
from .pipeline.factory import DEFAULT_MODEL as FACTORY_MODEL
from .pipeline.few_shot_textcat import FewShotTextCategorizer
from .training.scoring import episode_accuracies

DEFAULT_MODEL = "default"


def load_pipeline(
    model: str, *, encoder: Optional[str] = None, settings: Optional[Dict[str, Any]] = None
) -> Language:
    """A pipeline by name or path, or "default": a blank English pipeline with
    the default few_shot_textcat (a frozen encoder, no meta-learning).

    encoder (Optional[str]): The default pipeline's encoder, a Hugging Face
        name or a model folder (None: all-MiniLM-L6-v2). A saved pipeline
        keeps its own.
    settings (Optional[Dict[str, Any]]): few_shot_textcat settings over the
        pipeline's own.
    """
    settings = dict(settings or {})
    if model == DEFAULT_MODEL:
        if encoder is not None:
            settings["model"] = default_model_with(encoder)
        nlp = spacy.blank("en")
        nlp.add_pipe("few_shot_textcat", config=settings)
        nlp.initialize()
        return nlp
    if encoder is not None:
        raise ValueError(
            Errors.E063.format(
                first="an encoder",
                second=f"the pipeline '{model}'",
                why=f"a saved pipeline keeps its own encoder; choose one for '{DEFAULT_MODEL}'",
            )
        )
    config = {"components": {"few_shot_textcat": settings}} if settings else {}
    try:
        return spacy.load(model, config=config)
    except OSError as e:  # spaCy's E050 / E053: no such folder or package
        raise ValueError(Errors.E048.format(model=model, error=str(e).strip())) from e


def default_model_with(encoder: str) -> Dict[str, Any]:
    """The factory's default model with another encoder, read as its
    sentence-transformers folder says (spacy_metalearn.SentenceEncoder.v1)."""
    return {**FACTORY_MODEL, "encoder": {**FACTORY_MODEL["encoder"], "name": encoder}}


def find_component(nlp: Language) -> FewShotTextCategorizer:
    for _, component in nlp.pipeline:
        if isinstance(component, FewShotTextCategorizer):
            return component
    raise ValueError(Errors.E026.format(pipes=nlp.pipe_names))


def time_encoding(component: FewShotTextCategorizer, texts: Sequence[str]) -> float:
    """Seconds to tokenize and encode `texts` with the component's embedder,
    in the same batches as adapt()."""
    start = time.perf_counter()
    component.embedder(list(texts))
    return time.perf_counter() - start


def accuracy(predicted: Sequence[str], test: Sequence[Tuple[str, str]]) -> float:
    """Percentage of (text, label) pairs whose label was predicted."""
    return 100.0 * sum(p == label for p, (_, label) in zip(predicted, test)) / len(test)


def adapt_timed(
    component: FewShotTextCategorizer, support: List[Tuple[str, str]], *, repeats: int = 3
) -> Dict[str, float]:
    """Adapt to all labels of `support` (replacing any), timing it against the
    embedder's encoding of the same texts.

    RETURNS (Dict[str, float]): median adapt_seconds and encode_seconds over
        `repeats` runs, and their ratio adapt_over_encode.
    """
    grouped = group_by_label(support)
    texts = [text for text, _ in support]
    time_encoding(component, texts[: component.cfg["batch_size"]])  # warm-up
    encode_seconds, adapt_seconds = [], []
    for _ in range(repeats):
        encode_seconds.append(time_encoding(component, texts))
        start = time.perf_counter()
        component.adapt(grouped, replace=True)
        adapt_seconds.append(time.perf_counter() - start)
    encode, adapt = statistics.median(encode_seconds), statistics.median(adapt_seconds)
    return {"adapt_seconds": adapt, "encode_seconds": encode, "adapt_over_encode": adapt / encode}


def predicted_labels(component: FewShotTextCategorizer, embeddings) -> List[str]:
    """The top label of each embedded doc, as predict() scores it."""
    scores = component.model.ops.to_numpy(component.classify_embeddings(embeddings).scores)
    return [component.labels[i] for i in scores.argmax(1)]


def evaluate_all_labels(
    nlp: Language,
    support: List[Tuple[str, str]],
    test: List[Tuple[str, str]],
    *,
    repeats: int = 3,
) -> Dict[str, Any]:
    """Adapt to all labels of `support` (replacing any), predict `test` with
    the whole pipeline.

    nlp (Language): A pipeline with a few_shot_textcat.
    support (List[Tuple[str, str]]): (text, label) support examples.
    test (List[Tuple[str, str]]): (text, label) test examples.
    repeats (int): Timings are the median of this many runs.
    RETURNS (Dict[str, Any]): accuracy, timings and sizes.
    """
    component = find_component(nlp)
    labels = {label for _, label in support}
    unknown = sorted({label for _, label in test} - labels)
    if unknown:
        raise ValueError(
            Errors.E015.format(name=component.name, labels=unknown, known=sorted(labels))
        )
    timings = adapt_timed(component, support, repeats=repeats)
    start = time.perf_counter()
    # spaCy's default batch: the component sorts each batch by length
    docs = list(nlp.pipe([text for text, _ in test]))
    predict_seconds = time.perf_counter() - start
    predicted = [max(doc.cats, key=doc.cats.get) for doc in docs]
    return {
        "n_labels": len(labels),
        "n_support": len(support),
        "n_test": len(test),
        "accuracy": accuracy(predicted, test),
        **timings,
        "predict_docs_per_second": len(test) / predict_seconds,
    }


def markdown_table(rows: List[Dict[str, Any]], columns: Sequence[str]) -> str:
    def fmt(value: Any) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def evaluate_episodes(
    nlp: Language,
    pairs: List[Tuple[str, str]],
    *,
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 5,
    n_episodes: int = 600,
    seed: int = 0,
    cache: Optional[Dict[int, Any]] = None,
    steps: Optional[int] = None,
    learn_rate: Optional[float] = None,
) -> Dict[str, Any]:
    """Episodic N-way K-shot accuracy on the classes of `pairs`, adapted as the
    pipeline's learner adapts (nearest prototype or its inner loop).

    cache (Optional[Dict[int, torch.Tensor]]): Embeddings by pair index, filled
        and reused across calls with the same pipeline and pairs.
    steps (Optional[int]): Inner-loop steps per episode; None: as adapt() does.
    learn_rate (Optional[float]): Their step size; None: as adapt() does.

    RETURNS (Dict[str, Any]): accuracy (mean %, over episodes) and ci95 (the
        half-width of its 95% confidence interval, 1.96 standard errors).
    """
    component = find_component(nlp)
    groups: Dict[str, List[int]] = {}
    for i, (_, label) in enumerate(pairs):
        groups.setdefault(label, []).append(i)
    cache = {} if cache is None else cache

    def encode(indices: List[int]) -> torch.Tensor:
        missing = [i for i in indices if i not in cache]
        if missing:
            cache.update(zip(missing, component.embedder([pairs[i][0] for i in missing])))
        return torch.stack([cache[i] for i in indices])

    def fit(support: torch.Tensor, support_labels: torch.Tensor, n_way: int):
        return component.fit_classifier(
            support, support_labels, n_way, steps=steps, learn_rate=learn_rate
        )

    start = time.perf_counter()
    accuracies = episode_accuracies(
        groups,
        encode,
        fit,
        n_way=n_way,
        k_shot=k_shot,
        n_query=n_query,
        n_episodes=n_episodes,
        seed=seed,
        progress=True,
    )
    mean = statistics.fmean(accuracies)
    ci95 = (
        1.96 * statistics.stdev(accuracies) / len(accuracies) ** 0.5 if len(accuracies) > 1 else 0.0
    )
    return {
        "n_way": n_way,
        "k_shot": k_shot,
        "n_query": n_query,
        "n_episodes": n_episodes,
        "n_classes": len(groups),
        "accuracy": 100.0 * mean,
        "ci95": 100.0 * ci95,
        "seconds": time.perf_counter() - start,
    }
