"""New labels added to a pipeline that already has many (EVALUATION.md 2c):
each adaptation method side by side, on the frozen encoder and, with
--meta-models, on the encoder meta-pretrained on the old labels.

- banking77: each ProtAugment split's train classes are the old labels, with
  80% of their utterances as support (the rest as their test queries); its
  test classes are the new labels with K examples each (0: their names
  alone), the rest as queries. One adaptation over all labels, every label
  predicted; old and new accuracy, their harmonic mean and the accuracy over
  all test queries, mean and 95% CI over the splits.
- clinc150: 3 of CLINC150's 10 domains drawn as the new labels (K examples
  from each intent's training utterances), the 7 others old with all their
  training data; its in-scope test queries; mean and CI over the draws.
- incremental: on each split, the old labels, then 5 rounds that each add 5
  of the test classes with K examples to the pipeline of the round before
  (adapt() without replace); after each round, the accuracy of each round's
  labels.
- long_tail: all 77 BANKING77 labels, the counts going geometrically from
  100 down to 1 (Cui et al. 2019's long-tailed profile, imbalance 100) in an
  order drawn with the seed, from the training set; the balanced test set,
  macro (mean of each label's accuracy) and micro.
- balanced: all 77 labels from the public 10-shot support, the test set.

Every adaptation is the public adapt(), every prediction classify_embeddings
of the encoder's output (what predict() gives); each text is encoded once per
encoder (encoded_once) and reused across methods and tasks.

    python -m benchmarks.new_labels assets metrics/new_labels
    python -m benchmarks.new_labels assets metrics/new_labels_meta_pretrained \
        --only banking77,incremental --meta-models "training/new_intents/{split}/model-interpolated"
"""

import json
import random
import statistics
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import typer

from benchmarks.new_intents import by_label, read_full, read_labels
from benchmarks.new_labels_report import FROZEN, META, summarize, target_lines

Pairs = List[Tuple[str, str]]
Support = Dict[str, List[str]]

# each method: the component's settings that make it (the factory default's others)
METHODS: Dict[str, Dict[str, Any]] = {
    "default": {},
    "prototypes": {"adapt_steps": 0},
    "logit adjustment tau 1": {"logit_adjustment_tau": 1.0},
    "reweighting": {"label_balance": "reweighting"},
    "no balance": {"label_balance": "none"},
}
PROTOCOLS = ("banking77", "clinc150", "incremental", "long_tail", "balanced")
OLD_TEST_SHARE = 0.2
NEW_DOMAINS = 3
ROUNDS, LABELS_PER_ROUND = 5, 5
LONG_TAIL_MAX, LONG_TAIL_MIN = 100, 1
# the long tail's labels with fewer examples than this are its "few"
FEW = 10


@contextmanager
def encoded_once(component, memo: Dict[str, Any]) -> Iterator[None]:
    """Within the block, the component's embedder encodes each text once and
    takes it from `memo` (text -> embedding) afterwards: the encoder is
    deterministic, so adapt() and predict() give what they give without it."""
    import torch

    embedder = component.embedder
    encode = embedder.embed_docs

    def embed_docs(docs, *, torch_only: bool = False):
        new = list({doc.text: doc for doc in docs if doc.text not in memo}.values())
        if new:
            memo.update(zip((doc.text for doc in new), encode(new, torch_only=torch_only)))
        return torch.stack([memo[doc.text] for doc in docs])

    previous = vars(embedder).get("embed_docs")
    embedder.embed_docs = embed_docs
    try:
        yield
    finally:
        if previous is None:
            del embedder.embed_docs
        else:
            embedder.embed_docs = previous


def load_component(model: str, settings: Dict[str, Any], encoder: Optional[str] = None):
    """The few_shot_textcat of `model` ("default": the frozen encoder, `encoder`
    if given) with `settings` over its own."""
    from spacy_metalearn.evaluation import find_component, load_pipeline

    return find_component(load_pipeline(model, encoder=encoder, settings=settings))


class Encoders:
    """The components of each method for an encoder, loaded once, and the
    embeddings they share."""

    def __init__(self, methods: Dict[str, Dict[str, Any]], encoder: Optional[str] = None):
        self.methods = methods
        self.encoder = encoder
        self._loaded: Dict[str, Tuple[Dict[str, Any], Dict[str, Any]]] = {}

    def components(self, model: str) -> Iterator[Tuple[str, Any]]:
        if model not in self._loaded:
            # the frozen encoder's pipelines and at most one other's in memory
            self._loaded = {m: v for m, v in self._loaded.items() if m == "default"}
            components = {
                name: load_component(model, settings, self.encoder if model == "default" else None)
                for name, settings in self.methods.items()
            }
            self._loaded[model] = (components, {})
        components, memo = self._loaded[model]
        for name, component in components.items():
            with encoded_once(component, memo):
                yield name, component


def keep(rows: List[dict], row: dict) -> None:
    """Add a result row, and print it as it comes."""
    rows.append(row)
    print(json.dumps(row), flush=True)


def check_disjoint(old: Sequence[str], new: Sequence[str], where: str) -> None:
    from spacy_metalearn.errors import Errors

    shared = sorted(set(old) & set(new))
    if shared:
        raise ValueError(Errors.E067.format(where=where, labels=shared))


def predicted(component, texts: Sequence[str]) -> List[str]:
    from spacy_metalearn.evaluation import predicted_labels

    return predicted_labels(component, component.embedder(list(texts)))


def accuracy(component, pairs: Pairs) -> float:
    if not pairs:
        return float("nan")
    labels = predicted(component, [text for text, _ in pairs])
    return 100.0 * sum(p == label for p, (_, label) in zip(labels, pairs)) / len(pairs)


def harmonic(old: float, new: float) -> float:
    return 2 * old * new / (old + new) if old + new else 0.0


def old_and_new(
    groups: Dict[str, List[str]], old: Sequence[str], new: Sequence[str], k: int, rng: random.Random
) -> Tuple[Support, Pairs, Pairs]:
    """The support (old labels with the first 1 - OLD_TEST_SHARE of their
    texts, new ones with k drawn by `rng`) and the old and new test pairs."""
    support: Support = {}
    old_test: Pairs = []
    new_test: Pairs = []
    for label in old:
        texts = groups[label]
        cut = int(len(texts) * (1 - OLD_TEST_SHARE))
        support[label] = texts[:cut]
        old_test += [(text, label) for text in texts[cut:]]
    for label in new:
        texts = rng.sample(groups[label], len(groups[label]))
        support[label] = texts[:k]
        new_test += [(text, label) for text in texts[k:]]
    return support, old_test, new_test


def generalized_row(component, support: Support, old_test: Pairs, new_test: Pairs) -> dict:
    component.adapt(support, replace=True)
    old, new = accuracy(component, old_test), accuracy(component, new_test)
    return {
        "old": old,
        "new": new,
        "harmonic": harmonic(old, new),
        "all": accuracy(component, old_test + new_test),
    }


def encoders_for(split: str, meta_models: Optional[str]) -> List[Tuple[str, str]]:
    encoders = [(FROZEN, "default")]
    if meta_models:
        encoders.append((META, meta_models.format(split=split)))
    return encoders


def protaugment_splits(
    assets: Path, splits: Sequence[str], new_part: str
) -> Iterator[Tuple[str, Dict[str, List[str]], List[str], List[str]]]:
    """Each BANKING77 ProtAugment split's name, label -> texts, old labels
    (its train classes) and new ones (its `new_part` classes), apart (E067)."""
    data = assets / "protaugment_splits" / "BANKING77"
    groups = by_label(read_full(data / "full.jsonl"))
    for split in splits:
        folder = data / "few_shot" / split
        old = read_labels(folder / "labels.train.txt")
        new = read_labels(folder / f"labels.{new_part}.txt")
        check_disjoint(old, new, f"split {split}")
        yield split, groups, old, new


def banking77(
    assets: Path, loaded: Encoders, splits, shots, seed, meta_models, new_part: str = "test"
) -> List[dict]:
    rows = []
    for split, groups, old, new in protaugment_splits(assets, splits, new_part):
        for encoder, model in encoders_for(split, meta_models):
            for k in shots:
                task = old_and_new(groups, old, new, k, random.Random(seed + k))
                for method, component in loaded.components(model):
                    keep(
                        rows,
                        {
                            "protocol": "banking77",
                            "encoder": encoder,
                            "method": method,
                            "split": split,
                            "shots": k,
                            **generalized_row(component, *task),
                        },
                    )
    return rows


def clinc150(assets: Path, loaded: Encoders, draws: int, shots, seed) -> List[dict]:
    data = json.loads((assets / "clinc150" / "data_full.json").read_text(encoding="utf8"))
    domains = json.loads((assets / "clinc150" / "domains.json").read_text(encoding="utf8"))
    train = by_label([(text, label) for text, label in data["train"]])
    test = [(text, label) for text, label in data["test"]]
    rows = []
    for draw in range(draws):
        new_domains = random.Random(seed + draw).sample(sorted(domains), NEW_DOMAINS)
        new = [intent for domain in new_domains for intent in domains[domain]]
        old = [
            intent
            for domain in sorted(domains)
            if domain not in new_domains
            for intent in domains[domain]
        ]
        check_disjoint(old, new, f"CLINC150 draw {draw}")
        for k in shots:
            rng = random.Random(seed + 1000 * (draw + 1) + k)
            support = {label: train[label] for label in old}
            support.update({label: rng.sample(train[label], k) for label in new})
            old_test = [pair for pair in test if pair[1] in support and pair[1] not in new]
            new_test = [pair for pair in test if pair[1] in new]
            for method, component in loaded.components("default"):
                keep(
                    rows,
                    {
                        "protocol": "clinc150",
                        "encoder": FROZEN,
                        "method": method,
                        "draw": draw,
                        "new_domains": new_domains,
                        "shots": k,
                        **generalized_row(component, support, old_test, new_test),
                    },
                )
    return rows


def incremental(
    assets: Path, loaded: Encoders, splits, k: int, seed, meta_models, new_part: str = "test"
) -> List[dict]:
    rows = []
    for split, groups, old, new in protaugment_splits(assets, splits, new_part):
        rng = random.Random(seed)
        order = rng.sample(new, ROUNDS * LABELS_PER_ROUND)
        rounds = [order[i * LABELS_PER_ROUND : (i + 1) * LABELS_PER_ROUND] for i in range(ROUNDS)]
        support, old_test, _ = old_and_new(groups, old, [], k, rng)
        supports, tests = [support], [old_test]
        for labels in rounds:
            added, _, added_test = old_and_new(groups, [], labels, k, rng)
            supports.append(added)
            tests.append(added_test)
        for encoder, model in encoders_for(split, meta_models):
            for method, component in loaded.components(model):
                for done, support in enumerate(supports):
                    component.adapt(support, replace=done == 0)
                    keep(
                        rows,
                        {
                            "protocol": "incremental",
                            "encoder": encoder,
                            "method": method,
                            "split": split,
                            "shots": k,
                            "round": done,
                            "accuracy": [accuracy(component, t) for t in tests[: done + 1]],
                        },
                    )
    return rows


def long_tail_counts(n_labels: int) -> List[int]:
    """Support counts from LONG_TAIL_MAX down to LONG_TAIL_MIN, geometrically."""
    ratio = LONG_TAIL_MIN / LONG_TAIL_MAX
    return [round(LONG_TAIL_MAX * ratio ** (i / (n_labels - 1))) for i in range(n_labels)]


def long_tail(assets: Path, loaded: Encoders, seeds: int, seed: int) -> List[dict]:
    from spacy_metalearn.data import read_labelled

    data = assets / "few_shot_intent_detection" / "BANKING77"
    pool, test = by_label(read_labelled(data / "train")), read_labelled(data / "test")
    rows = []
    for draw in range(seeds):
        rng = random.Random(seed + draw)
        order = rng.sample(sorted(pool), len(pool))
        support = {
            label: rng.sample(pool[label], min(count, len(pool[label])))
            for label, count in zip(order, long_tail_counts(len(order)))
        }
        counts = sorted(len(texts) for texts in support.values())
        for method, component in loaded.components("default"):
            component.adapt(support, replace=True)
            labels = predicted(component, [text for text, _ in test])
            right: Dict[str, List[bool]] = {}
            for p, (_, label) in zip(labels, test):
                right.setdefault(label, []).append(p == label)
            per_label = {label: 100.0 * statistics.mean(r) for label, r in right.items()}
            few = [per_label[label] for label in per_label if len(support[label]) < FEW]
            many = [per_label[label] for label in per_label if len(support[label]) >= FEW]
            keep(
                rows,
                {
                    "protocol": "long_tail",
                    "encoder": FROZEN,
                    "method": method,
                    "draw": draw,
                    "support_counts": [
                        counts[0],
                        counts[len(counts) // 2],
                        counts[-1],
                        sum(counts),
                    ],
                    "macro": statistics.mean(per_label.values()),
                    "micro": 100.0 * statistics.mean(x for r in right.values() for x in r),
                    "few_below": FEW,
                    "few": statistics.mean(few) if few else float("nan"),
                    "many": statistics.mean(many) if many else float("nan"),
                },
            )
    return rows


def balanced(assets: Path, loaded: Encoders) -> List[dict]:
    from spacy_metalearn.data import group_by_label, read_labelled

    data = assets / "few_shot_intent_detection" / "BANKING77"
    support, test = group_by_label(read_labelled(data / "train_10")), read_labelled(data / "test")
    rows = []
    for method, component in loaded.components("default"):
        component.adapt(support, replace=True)
        rows.append(
            {
                "protocol": "balanced",
                "encoder": FROZEN,
                "method": method,
                "shots": 10,
                "accuracy": accuracy(component, test),
            }
        )
    return rows


def main(
    assets: Path = typer.Argument(..., help="The project's assets folder"),
    output: Path = typer.Argument(..., help="Folder for results.json and results.md"),
    only: str = typer.Option(",".join(PROTOCOLS), help="Protocols to run"),
    methods: str = typer.Option(",".join(METHODS), help="Methods to run"),
    taus: str = typer.Option(
        "", help="More methods: logit adjustment at each of these taus (e.g. 0.7,0.8,0.9)"
    ),
    new_classes: str = typer.Option(
        "test",
        help="The splits' classes that are the new labels: test (the benchmark) or valid "
        "(where the default was chosen)",
    ),
    splits: str = typer.Option("01,02,03,04,05"),
    shots: str = typer.Option("0,1,5,10", help="New labels' examples (0: their names alone)"),
    clinc150_shots: str = typer.Option("1,5,10"),
    clinc150_draws: int = typer.Option(5, min=1, help="Draws of the new domains"),
    incremental_shots: int = typer.Option(5, min=1),
    long_tail_draws: int = typer.Option(5, min=1),
    meta_models: Optional[str] = typer.Option(
        None,
        help="Each split's pipeline meta-pretrained on its train classes: a path with "
        "{split}, e.g. training/new_intents/{split}/model-interpolated",
    ),
    encoder: Optional[str] = typer.Option(
        None, help="The frozen pipeline's encoder (default: all-MiniLM-L6-v2)"
    ),
    seed: int = typer.Option(0),
) -> None:
    protocols = [p for p in only.split(",") if p]
    names = [m for m in methods.split(",") if m]
    unknown = [p for p in protocols if p not in PROTOCOLS] + [m for m in names if m not in METHODS]
    if unknown:
        raise typer.BadParameter(
            f"unknown {unknown}: protocols {PROTOCOLS}, methods {list(METHODS)}"
        )
    if new_classes not in ("test", "valid"):
        raise typer.BadParameter("test or valid", param_hint="--new-classes")
    chosen = {name: METHODS[name] for name in names}
    for tau in (float(t) for t in taus.split(",") if t):
        chosen[f"logit adjustment tau {tau:g}"] = {"logit_adjustment_tau": tau}
    if meta_models is not None and "{split}" not in meta_models:
        raise typer.BadParameter("must hold {split}", param_hint="--meta-models")
    shot_counts = [int(k) for k in shots.split(",")]
    split_names = splits.split(",")
    loaded = Encoders(chosen, encoder)
    rows: List[dict] = []
    if "balanced" in protocols:
        rows += balanced(assets, loaded)
    if "long_tail" in protocols:
        rows += long_tail(assets, loaded, long_tail_draws, seed)
    if "clinc150" in protocols:
        k_clinc = [int(k) for k in clinc150_shots.split(",")]
        rows += clinc150(assets, loaded, clinc150_draws, k_clinc, seed)
    if "banking77" in protocols:
        rows += banking77(assets, loaded, split_names, shot_counts, seed, meta_models, new_classes)
    if "incremental" in protocols:
        rows += incremental(
            assets, loaded, split_names, incremental_shots, seed, meta_models, new_classes
        )
    summary, lines = summarize(rows, list(chosen), new_classes)
    targets = target_lines(summary) if new_classes == "test" else []
    text = "\n".join(lines + (["## Targets", ""] + [f"- {t}" for t in targets] if targets else []))
    print(text)
    output.mkdir(parents=True, exist_ok=True)
    settings = {
        "only": protocols,
        "methods": chosen,
        "new_classes": new_classes,
        "splits": split_names,
        "shots": shot_counts,
        "clinc150_shots": clinc150_shots,
        "clinc150_draws": clinc150_draws,
        "incremental_shots": incremental_shots,
        "long_tail_draws": long_tail_draws,
        "meta_models": meta_models,
        "seed": seed,
    }
    (output / "results.json").write_text(
        json.dumps(
            {"settings": settings, "summary": summary, "targets": targets, "rows": rows}, indent=1
        )
        + "\n"
    )
    (output / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    typer.run(main)
