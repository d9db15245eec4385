"""How adapt and predict scale with the number of labels.

For each label count, the default pipeline (all-MiniLM-L6-v2) adapts to that
many labels from one short synthetic text each, then pipes a fixed set of
queries. Prints, per label count: adapt seconds, the saved support set's
size, the process's peak memory, the pipeline's docs/s, and the classifier's
share of that time: the seconds it takes to score the queries' embeddings
against every label (component.classify_embeddings), over the seconds of the
whole nlp.pipe (tokenizing, encoding, classifying, writing doc.cats).

    python -m benchmarks.benchmark_scale --labels 10,100,1000,10000 --output metrics/scale.json
"""

import json
import random
import resource
import time
from pathlib import Path
from typing import Optional

import spacy
import typer

WORDS = "card refund account transfer payment balance cash limit fee rate pin top".split()


def synthetic_text(rng: random.Random, i: int) -> str:
    return f"request {i} about " + " ".join(rng.choices(WORDS, k=6))


def main(
    labels: str = typer.Option("10,100,1000,10000", help="Label counts, comma-separated"),
    queries: int = typer.Option(256, min=1, help="Texts piped at each label count"),
    output: Optional[Path] = typer.Option(None, help="JSON file for the rows"),
) -> None:
    rng = random.Random(0)
    nlp = spacy.blank("en")
    component = nlp.add_pipe("few_shot_textcat")
    nlp.initialize()
    texts = [synthetic_text(rng, -1) for _ in range(queries)]
    rows = []
    for n_labels in [int(n) for n in labels.split(",")]:
        support = {f"label_{i}": [synthetic_text(rng, i)] for i in range(n_labels)}
        start = time.perf_counter()
        component.adapt(support, replace=True)
        adapt_seconds = time.perf_counter() - start
        start = time.perf_counter()
        docs = list(nlp.pipe(texts))
        pipe_seconds = time.perf_counter() - start
        assert len(docs[0].cats) == n_labels
        embeddings = component.embedder.embed_docs([nlp.make_doc(text) for text in texts])
        start = time.perf_counter()
        component.classify_embeddings(embeddings)
        classifier_seconds = time.perf_counter() - start
        rows.append(
            {
                "n_labels": n_labels,
                "adapt_seconds": adapt_seconds,
                "store_mib": len(component.to_bytes(exclude=["model", "vocab"])) / 2**20,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "predict_docs_per_second": queries / pipe_seconds,
                "classifier_share_of_predict": classifier_seconds / pipe_seconds,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    lines = [
        "| labels | adapt (s) | support store (MiB) | peak RSS (MiB) | predict docs/s "
        "| classifier's share of predict |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n_labels']} | {r['adapt_seconds']:.2f} | {r['store_mib']:.2f} | "
            f"{r['peak_rss_mib']:.0f} | {r['predict_docs_per_second']:.1f} | "
            f"{100 * r['classifier_share_of_predict']:.1f}% |"
        )
    print("\n".join(lines))
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
