"""All-label accuracy of one pipeline under a grid of adaptation settings,
encoding the support and test sets once: nearest centroid (steps 0) and the
inner loop on a linear head started from the prototypes, for each step size
and number of steps, each fitted as the pipeline's adapt() fits it
(`fit_classifier`). It is how the adapt-time settings were chosen on CLINC150
and how the meta-pretraining runs in the README were compared.

    python scripts/probe_adaptation.py default assets/few_shot_intent_detection/CLINC150 \
        --learn-rates 10,30,100 --steps 0,50,100,200
"""

from pathlib import Path
from typing import List

import torch
import typer

from spacy_metalearn.data import read_labelled
from spacy_metalearn.evaluation import accuracy, find_component, load_pipeline


def numbers(text: str, kind=float) -> List:
    return [kind(value) for value in text.split(",") if value.strip()]


def main(
    model: str = typer.Argument(..., help="Pipeline name or path, or 'default'"),
    data: Path = typer.Argument(..., help="Folder with train_K/ and test/ (seq.in, label)"),
    shots: str = typer.Option("5,10", help="Fixed splits train_K to adapt to"),
    learn_rates: str = typer.Option("30", help="Inner-loop step sizes"),
    steps: str = typer.Option("0,100", help="Inner-loop steps"),
) -> None:
    component = find_component(load_pipeline(model))
    test = read_labelled(data / "test")
    test_x = component.embedder([text for text, _ in test])
    for k in numbers(shots, int):
        support = read_labelled(data / f"train_{k}")
        labels = sorted({label for _, label in support})
        index = {label: i for i, label in enumerate(labels)}
        x = component.embedder([text for text, _ in support])
        y = torch.tensor([index[label] for _, label in support])
        for learn_rate in numbers(learn_rates):
            row = []
            for n_steps in numbers(steps, int):
                classifier = component.fit_classifier(
                    x, y, len(labels), steps=n_steps, learn_rate=learn_rate
                )
                with torch.no_grad():
                    predicted = [labels[i] for i in classifier.logits(test_x).argmax(1)]
                row.append(f"{n_steps} steps {accuracy(predicted, test):.2f}")
            print(f"{model} {data.name} {k}-shot, step size {learn_rate:g}: " + ", ".join(row))


if __name__ == "__main__":
    typer.run(main)
