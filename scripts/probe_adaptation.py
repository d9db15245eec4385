"""All-label accuracy of one pipeline's encoder under a grid of adaptation
settings, encoding the support and test sets once: nearest centroid (steps 0)
and the inner loop on a linear head started from the prototypes, for each step
size and number of steps. The head's temperature is `--scale` (the default
head's 10), not the pipeline's, so encoders compare under the same adaptation.
It is how the adapt-time settings were chosen on CLINC150 and how the
meta-pretraining runs in the README were compared.

    python scripts/probe_adaptation.py default assets/few_shot_intent_detection/CLINC150 \
        --learn-rates 10,30,100 --steps 0,50,100,200
"""

import math
from pathlib import Path
from typing import List

import torch
import typer

from spacy_metalearn.data import read_labelled
from spacy_metalearn.evaluation import find_component, load_pipeline
from spacy_metalearn.learners.base import inner_loop
from spacy_metalearn.models.metric import (
    MetricHead,
    class_prototypes,
    prepare,
    prototype_linear_head,
)


def numbers(text: str, kind=float) -> List:
    return [kind(value) for value in text.split(",") if value.strip()]


def main(
    model: str = typer.Argument(..., help="Pipeline name or path, or 'default'"),
    data: Path = typer.Argument(..., help="Folder with train_K/ and test/ (seq.in, label)"),
    shots: str = typer.Option("5,10", help="Fixed splits train_K to adapt to"),
    learn_rates: str = typer.Option("30", help="Inner-loop step sizes"),
    steps: str = typer.Option("0,100", help="Inner-loop steps"),
    scale: float = typer.Option(10.0, help="Inverse temperature of the starting head"),
) -> None:
    component = find_component(load_pipeline(model))

    def encode(pairs):
        return component._embed(component._make_docs([text for text, _ in pairs])).float()

    test = read_labelled(data / "test")
    test_x = encode(test)
    for k in numbers(shots, int):
        support = read_labelled(data / f"train_{k}")
        labels = sorted({label for _, label in support})
        index = {label: i for i, label in enumerate(labels)}
        x = encode(support)
        y = torch.tensor([index[label] for _, label in support])
        test_y = torch.tensor([index[label] for _, label in test])
        for learn_rate in numbers(learn_rates):
            head = MetricHead(
                "cosine",
                torch.tensor([math.log(scale)]),
                torch.tensor([0.0]),
                torch.full((2,), math.log(learn_rate)),
            )
            start = prototype_linear_head(
                class_prototypes(prepare(x, "cosine"), y, len(labels)), head
            )
            row = []
            for n_steps in numbers(steps, int):
                fitted = start
                if n_steps > 0:
                    with torch.enable_grad():
                        fitted, _ = inner_loop(head, start, x, y, n_steps, second_order=False)
                with torch.no_grad():
                    predicted = fitted.logits(head, test_x).argmax(1)
                accuracy = 100.0 * (predicted == test_y).float().mean().item()
                row.append(f"{n_steps} steps {accuracy:.2f}")
            print(f"{model} {data.name} {k}-shot, step size {learn_rate:g}: " + ", ".join(row))


if __name__ == "__main__":
    typer.run(main)
