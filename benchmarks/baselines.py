"""The baselines the benchmark runs beside few_shot_textcat, on the same
K-shot support set: spaCy's built-in `textcat` trained from scratch, and SetFit
(Tunstall et al. 2022) with the same sentence encoder."""

import random
import tempfile
import time
from typing import Any, Dict, List, Tuple

import spacy
from spacy.training import Example
from spacy.util import minibatch

from spacy_metalearn.evaluation import accuracy

Pairs = List[Tuple[str, str]]


def train_spacy_textcat(
    support: Pairs, *, epochs: int = 20, batch_size: int = 8, dropout: float = 0.2, seed: int = 0
):
    """spaCy's `textcat` with its default model (TextCatEnsemble.v2), trained
    on the support set alone: what a spaCy user without meta-learning does.

    RETURNS (Language): The trained pipeline.
    """
    spacy.util.fix_random_seed(seed)
    labels = sorted({label for _, label in support})
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe("textcat")
    examples = []
    for text, label in support:
        cats = {other: float(other == label) for other in labels}
        examples.append(Example.from_dict(nlp.make_doc(text), {"cats": cats}))
    for label in labels:
        textcat.add_label(label)
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(examples)
        for batch in minibatch(examples, size=batch_size):
            nlp.update(batch, sgd=optimizer, drop=dropout)
    return nlp


def run_spacy_textcat(support: Pairs, test: Pairs, **settings) -> Dict[str, Any]:
    start = time.perf_counter()
    nlp = train_spacy_textcat(support, **settings)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    docs = list(nlp.pipe([text for text, _ in test], batch_size=64))
    predict_seconds = time.perf_counter() - start
    predicted = [max(doc.cats, key=doc.cats.get) for doc in docs]
    return {
        "accuracy": accuracy(predicted, test),
        "adapt_seconds": train_seconds,
        "predict_docs_per_second": len(test) / predict_seconds,
    }


def run_setfit(
    support: Pairs,
    test: Pairs,
    model_path: str,
    *,
    num_iterations: int = 20,
    batch_size: int = 16,
    seed: int = 0,
    device: str = "cpu",
) -> Dict[str, Any]:
    """SetFit: contrastive fine-tuning of the sentence encoder on pairs drawn
    from the support set, then a logistic regression head (its defaults)."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    texts = [text for text, _ in support]
    labels = [label for _, label in support]
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir=output_dir,
            batch_size=batch_size,
            num_epochs=1,
            num_iterations=num_iterations,
            seed=seed,
            report_to="none",
            show_progress_bar=False,
            save_strategy="no",
        )
        start = time.perf_counter()
        model = SetFitModel.from_pretrained(model_path, device=device)
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict({"text": texts, "label": labels}),
        )
        trainer.train()
        train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predicted = [str(label) for label in model.predict([text for text, _ in test])]
    predict_seconds = time.perf_counter() - start
    return {
        "accuracy": accuracy(predicted, test),
        "adapt_seconds": train_seconds,
        "predict_docs_per_second": len(test) / predict_seconds,
    }
