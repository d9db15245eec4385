"""Out-of-scope detection with the component's defaults: the pipeline is loaded
with `unknown_label = "oos"` and nothing else changed, adapted to the in-scope
labels of a set from their support examples alone, then asked about the set's
in-scope test queries and its out-of-scope ones.

Sets (folders under ASSETS, as `spacy project run assets` lays them out):
CLINC150 at 5 and 10 shots (its 1,000 out-of-scope test queries);
BANKING77-OOS and CLINC-Single-Domain-OOS (banking, credit_cards) at 10 shots
drawn with a seed from their train split, each against its id-oos queries
(held-out intents of the same domain) and its ood-oos ones (other domains);
HINT3's three chatbots, adapted to their whole train sets, against their
NO_NODES_DETECTED test queries.

Per set: in-scope accuracy when never abstaining and with the default decision
(an abstention counts as wrong), out-of-scope recall and precision, and the
AUROC (in scope against out of scope) of the score the decision uses (the
fitted head's top logit with adapt steps, else the nearest prototype's
similarity) and of the top label's probability.

    python -m benchmarks.benchmark_oos assets metrics/oos --model default
    python -m benchmarks.benchmark_oos assets metrics/oos_head --model default \
        --steps 100 --learn-rate 30
"""

import csv
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import typer

Pairs = List[Tuple[str, str]]
FEW_SHOT = Path("few_shot_intent_detection")
UNKNOWN = "oos"
HINT3_OOS = "NO_NODES_DETECTED"
# printed target: CLINC150 10-shot, with the defaults
RECALL_TARGET = 75.0
DROP_TARGET = 2.0


def read_lines(folder: Path, with_labels: bool = True):
    """Line-aligned seq.in (and label), skipping empty texts (BANKING77-OOS's
    train split has two)."""
    texts = (folder / "seq.in").read_text(encoding="utf8").splitlines()
    if not with_labels:
        return [text.strip() for text in texts if text.strip()]
    labels = (folder / "label").read_text(encoding="utf8").splitlines()
    return [(text.strip(), label.strip()) for text, label in zip(texts, labels) if text.strip()]


def read_hint3(path: Path) -> Pairs:
    with path.open(encoding="utf8") as f:
        rows = list(csv.DictReader(f))
    return [
        (row["sentence"].strip(), row["label"].strip()) for row in rows if row["sentence"].strip()
    ]


def oos_sets(assets: Path, seed: int) -> List[Dict[str, Any]]:
    """(name, support, in-scope test, out-of-scope texts) for every set."""
    from spacy_metalearn.data import k_shot

    sets = []
    clinc = assets / FEW_SHOT / "CLINC150"
    for shots in (5, 10):
        sets.append(
            {
                "set": f"CLINC150 {shots}-shot",
                "support": read_lines(clinc / f"train_{shots}"),
                "test": read_lines(clinc / "test"),
                "oos": read_lines(clinc / "oos" / "test", with_labels=False),
            }
        )
    domains = [("BANKING77-OOS", assets / FEW_SHOT / "BANKING77-OOS")] + [
        (f"CLINC-Single-Domain-OOS {d}", assets / FEW_SHOT / "CLINC-Single-Domain-OOS" / d)
        for d in ("banking", "credit_cards")
    ]
    for name, folder in domains:
        support = k_shot(read_lines(folder / "train"), 10, seed)
        test = read_lines(folder / "test")
        for kind in ("id-oos", "ood-oos"):
            sets.append(
                {
                    "set": f"{name} 10-shot {kind}",
                    "support": support,
                    "test": test,
                    "oos": read_lines(folder / kind / "test", with_labels=False),
                }
            )
    for bot in ("curekart", "powerplay11", "sofmattress"):
        test = read_hint3(assets / "hint3" / f"{bot}_test.csv")
        sets.append(
            {
                "set": f"HINT3 {bot} (full train)",
                "support": read_hint3(assets / "hint3" / f"{bot}_train.csv"),
                "test": [(text, label) for text, label in test if label != HINT3_OOS],
                "oos": [text for text, label in test if label == HINT3_OOS],
            }
        )
    return sets


def auroc(in_scope, out_of_scope) -> float:
    from sklearn.metrics import roc_auc_score

    labels = [1] * len(in_scope) + [0] * len(out_of_scope)
    return float(roc_auc_score(labels, list(in_scope) + list(out_of_scope)))


def evaluate_set(component, spec: Dict[str, Any]) -> Dict[str, Any]:
    """Adapt to the set's support, then score its in-scope and out-of-scope
    queries as predict() does (the same embeddings, scores and decision)."""
    from spacy_metalearn.data import group_by_label

    labels = {label for _, label in spec["support"]}
    test = [(text, label) for text, label in spec["test"] if label in labels]
    start = time.perf_counter()
    component.adapt(group_by_label(spec["support"]), replace=True)
    adapt_seconds = time.perf_counter() - start
    texts = [text for text, _ in test] + spec["oos"]
    embeddings = component.embedder(texts)
    classified = component.classify_embeddings(embeddings)  # what predict() gives
    scores = component.model.ops.to_numpy(classified.scores)
    decided = [not out for out in component.out_of_scope(classified)]
    adaptation = component.adaptation
    in_scope_score = adaptation.in_scope_scores(embeddings).cpu().tolist()
    top = [component.labels[i] for i in scores.argmax(1)]
    n_test = len(test)
    right = [top[i] == label for i, (_, label) in enumerate(test)]
    accuracy_all = 100.0 * sum(right) / n_test
    accuracy = 100.0 * sum(r and decided[i] for i, r in enumerate(right)) / n_test
    flagged_oos = sum(not d for d in decided[n_test:])
    flagged_in = sum(not d for d in decided[:n_test])
    return {
        "set": spec["set"],
        "n_labels": len(labels),
        "n_support": len(spec["support"]),
        "n_in_scope": n_test,
        "n_oos": len(spec["oos"]),
        "accuracy_never_abstaining": accuracy_all,
        "accuracy": accuracy,
        "drop": accuracy_all - accuracy,
        "oos_recall": 100.0 * flagged_oos / len(spec["oos"]),
        "oos_precision": 100.0 * flagged_oos / max(1, flagged_oos + flagged_in),
        "auroc_in_scope_score": auroc(in_scope_score[:n_test], in_scope_score[n_test:]),
        "auroc_top_score": auroc(scores.max(1)[:n_test], scores.max(1)[n_test:]),
        "adapt_seconds": adapt_seconds,
    }


def main(
    assets: Path = typer.Argument(..., help="The project's assets folder"),
    output: Path = typer.Argument(..., help="Folder for results.json and results.md"),
    model: str = typer.Option("default", help="Pipeline name or path, or 'default'"),
    seed: int = typer.Option(0, help="Seed of the 10-shot draws"),
    only: Optional[str] = typer.Option(None, help="Only sets whose name contains this"),
    steps: Optional[int] = typer.Option(None, help="adapt_steps; default: the pipeline's own"),
    learn_rate: Optional[float] = typer.Option(None, help="adapt_learn_rate; default: its own"),
    encoder: Optional[str] = typer.Option(
        None, help="The 'default' pipeline's encoder (default: all-MiniLM-L6-v2)"
    ),
) -> None:
    from spacy_metalearn.evaluation import find_component, load_pipeline, markdown_table

    settings: Dict[str, Any] = {"unknown_label": UNKNOWN}
    if steps is not None:
        settings["adapt_steps"] = steps
    if learn_rate is not None:
        settings["adapt_learn_rate"] = learn_rate
    component = find_component(load_pipeline(model, encoder=encoder, settings=settings))
    rows = []
    for spec in oos_sets(assets, seed):
        if only is None or only in spec["set"]:
            print(f"== {spec['set']}", flush=True)
            rows.append(evaluate_set(component, spec))
    columns = ["set", "n_labels", "n_support", "n_in_scope", "n_oos", "accuracy_never_abstaining",
               "accuracy", "drop", "oos_recall", "oos_precision", "auroc_in_scope_score",
               "auroc_top_score", "adapt_seconds"]  # fmt: skip
    table = markdown_table(rows, columns)
    setting = (
        f"{model}, unknown_label={UNKNOWN!r}, in_scope_quantile="
        f"{component.cfg['in_scope_quantile']}, adapt_steps={component.cfg['adapt_steps']}, "
        f"adapt_learn_rate={component.cfg['adapt_learn_rate']}"
    )
    targets = [
        f"{row['set']}: OOS recall {row['oos_recall']:.1f} (target >= {RECALL_TARGET}: "
        f"{'met' if row['oos_recall'] >= RECALL_TARGET else 'missed'}), in-scope accuracy drop "
        f"{row['drop']:.2f} (target <= {DROP_TARGET}: "
        f"{'met' if row['drop'] <= DROP_TARGET else 'missed'})"
        for row in rows
        if row["set"] == "CLINC150 10-shot"
    ]
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(
        json.dumps({"setting": setting, "rows": rows, "targets": targets}, indent=2) + "\n"
    )
    (output / "results.md").write_text(
        f"{setting}\n\n{table}\n\n" + "\n".join(f"- {t}" for t in targets) + "\n"
    )
    print(setting)
    print(table)
    print("\n".join(f"- {t}" for t in targets))


if __name__ == "__main__":
    typer.run(main)
