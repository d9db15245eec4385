"""How adapt and predict scale with the number of labels (issue: scale in labels).

For each label count, the default pipeline (all-MiniLM-L6-v2) adapts to that
many labels from one short synthetic text each, then predicts a fixed batch of
queries. Prints, per label count: adapt seconds, the saved support set's size,
the process's peak memory, full-pipeline docs/s, and the share of predict time
spent in the classifier (the rest is the encoder and writing doc.cats).

python scripts/benchmark_scale.py [--labels 10,100,1000,10000] [--queries 256] [--output FILE]
"""

import argparse
import json
import random
import resource
import time
from pathlib import Path

import spacy

from spacy_metalearn.adaptation import Adaptation

WORDS = "card refund account transfer payment balance cash limit fee rate pin top".split()


def synthetic_text(rng: random.Random, i: int) -> str:
    return f"request {i} about " + " ".join(rng.choices(WORDS, k=6))


def timed_pipe(nlp, texts):
    """Run the pipeline; return the docs, its seconds and the seconds spent
    turning embeddings into scores (the classifier; the rest is tokenizing,
    encoding and writing doc.cats)."""
    head_seconds = [0.0]
    original = Adaptation.scores

    def timed_scores(adaptation, embeddings, **kwargs):
        start = time.perf_counter()
        result = original(adaptation, embeddings, **kwargs)
        head_seconds[0] += time.perf_counter() - start
        return result

    Adaptation.scores = timed_scores
    try:
        start = time.perf_counter()
        docs = list(nlp.pipe(texts))
        return docs, time.perf_counter() - start, head_seconds[0]
    finally:
        Adaptation.scores = original


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", default="10,100,1000,10000")
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    rng = random.Random(0)
    nlp = spacy.blank("en")
    component = nlp.add_pipe("few_shot_textcat")
    nlp.initialize()
    queries = [synthetic_text(rng, -1) for _ in range(args.queries)]
    rows = []
    for n_labels in [int(n) for n in args.labels.split(",")]:
        support = {f"label_{i}": [synthetic_text(rng, i)] for i in range(n_labels)}
        start = time.perf_counter()
        component.adapt(support, replace=True)
        adapt_seconds = time.perf_counter() - start
        docs, predict_seconds, head_seconds = timed_pipe(nlp, queries)
        assert len(docs[0].cats) == n_labels
        rows.append(
            {
                "n_labels": n_labels,
                "adapt_seconds": adapt_seconds,
                "store_mib": len(component.to_bytes(exclude=["model", "vocab"])) / 2**20,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "predict_docs_per_second": len(queries) / predict_seconds,
                "head_share_of_predict": head_seconds / predict_seconds,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    lines = [
        "| labels | adapt (s) | support store (MiB) | peak RSS (MiB) | predict docs/s "
        "| head share of predict |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n_labels']} | {r['adapt_seconds']:.2f} | {r['store_mib']:.2f} | "
            f"{r['peak_rss_mib']:.0f} | {r['predict_docs_per_second']:.1f} | "
            f"{100 * r['head_share_of_predict']:.1f}% |"
        )
    print("\n".join(lines))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
