"""Build the meta-pretraining corpora: labelled texts from several public
datasets, loaded with Hugging Face `datasets`, split by class into meta-train
and meta-dev, saved as .spacy files.

Each label is named "<dataset>/<label>" (CLINC150: "clinc150/<domain>/<intent>"),
so the episode batcher can draw the classes of an episode from one dataset or
domain (group_separator = "/"). BANKING77 is not among the sources: it stays a
fair all-label test.

    python scripts/preprocess.py assets corpus --sources clinc150,huffpost,reuters,trec28,snips
"""

import json
import random
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import datasets
import typer

from spacy_metalearn.data import group_by_label, k_shot, write_docbin

Row = Tuple[str, str, str]  # text, label, split ("train", "dev" or "test")

# Class splits of Bao et al. (2020), by label index, for HuffPost and Reuters.
HUFFPOST_NAMES = (
    "politics wellness entertainment travel style_&_beauty parenting healthy_living "
    "queer_voices food_&_drink business comedy sports black_voices home_&_living parents "
    "the_worldpost weddings women impact divorce crime media weird_news green worldpost "
    "religion style science world_news taste tech money arts fifty good_news "
    "arts_&_culture environment college latino_voices culture_&_arts education"
).split()
REUTERS_NAMES = (
    "acquisitions|aluminium|balance of payment|cocoa|coffee|copper|cotton|consumer price index|"
    "crude|earn|gross national product|gold|grain|interest|industrial production index|"
    "iron and steel|jobs|livestock|money foreign exchange|money supply|natural gas|orange|"
    "reserves|retail|rubber|ship|sugar|tin|trade|vegetable oil|wholesale price index"
).split("|")
REUTERS_WORDS = 64  # newswire articles are long: their opening words carry the topic


def bao_split(index: int, train_below: int, dev_below: int) -> str:
    return "train" if index < train_below else "dev" if index < dev_below else "test"


def load_json(path: Path, **kwargs) -> datasets.Dataset:
    return datasets.load_dataset("json", data_files=str(path), split="train", **kwargs)


def clinc150(assets: Path) -> List[Row]:
    """All 150 intents for meta-training, grouped by their 10 domains."""
    domains = json.loads((assets / "clinc150" / "domains.json").read_text(encoding="utf8"))
    domain_of = {intent: domain for domain, intents in domains.items() for intent in intents}
    table = load_json(assets / "clinc150" / "data_full.json", field="train")
    return [(t, f"clinc150/{domain_of[i]}/{i}", "train") for t, i in zip(table["0"], table["1"])]


def huffpost(assets: Path) -> List[Row]:
    """Classes 0-19 train, 20-24 dev, 25-40 test (Bao et al.)."""
    table = load_json(assets / "huffpost_bao" / "huffpost.json")
    return [
        (text, f"huffpost/{HUFFPOST_NAMES[label]}", bao_split(label, 20, 25))
        for text, label in zip(table["raw"], table["label"])
    ]


def reuters(assets: Path) -> List[Row]:
    """Classes 0-14 train, 15-19 dev, 20-30 test (Bao et al.)."""
    table = load_json(assets / "reuters_bao" / "reuters.json")
    index = {name: i for i, name in enumerate(REUTERS_NAMES)}
    return [
        (" ".join(raw.split()[:REUTERS_WORDS]), f"reuters/{label}", bao_split(index[label], 15, 20))
        for raw, label in zip(table["raw"], table["label"])
    ]


def trec28(assets: Path) -> List[Row]:
    """The three files hold disjoint classes: train, dev (valid) and test."""
    rows = []
    for split, name in (("train", "train"), ("dev", "valid"), ("test", "test")):
        table = load_json(assets / "trec28" / f"{name}.jsonl")
        rows.extend(
            (t, f"trec28/{lab}", split) for t, lab in zip(table["sentence"], table["label"])
        )
    return rows


def snips(assets: Path) -> List[Row]:
    """Its 7 intents (too few to split) for meta-training."""
    folder = assets / "few_shot_intent_detection" / "SNIPS" / "train"
    texts = datasets.load_dataset("text", data_files=str(folder / "seq.in"), split="train")
    labels = datasets.load_dataset("text", data_files=str(folder / "label"), split="train")
    return [(t, f"snips/{lab.strip()}", "train") for t, lab in zip(texts["text"], labels["text"])]


def sgd_intents(assets: Path) -> List[Row]:
    """Its 47 intents (Schema-Guided Dialogue, every split of its dialogues)
    for meta-training, as one group of labels "sgd/<Service>_<Intent>"."""
    table = load_json(assets / "sgd_intents" / "intents.jsonl")
    labels = ["sgd/" + label.replace("/", "_") for label in table["label"]]
    return [(text, label, "train") for text, label in zip(table["text"], labels)]


def hint3(assets: Path) -> List[Row]:
    """The three HINT3 chatbots (train and test queries, the out-of-scope ones
    left out) as meta-dev: a whole source of real, noisy intents held out, each
    bot one group of labels "hint3/<bot>/<label>"."""
    rows = []
    for bot in ("curekart", "powerplay11", "sofmattress"):
        for part in ("train", "test"):
            table = load_csv(assets / "hint3" / f"{bot}_{part}.csv")
            rows.extend(
                (t, f"hint3/{bot}/{lab}", "dev")
                for t, lab in zip(table["sentence"], table["label"])
                if isinstance(t, str) and lab != "NO_NODES_DETECTED"
            )
    return rows


def hint3_tasks(assets: Path, shots: int, seed: int) -> Dict[str, Tuple[list, list]]:
    """Each HINT3 chatbot as one meta-dev task: a support set of up to `shots`
    training queries per label (drawn with `seed`), and its in-scope test
    queries (NO_NODES_DETECTED, out of scope, left out)."""
    tasks = {}
    for bot in ("curekart", "powerplay11", "sofmattress"):
        parts = {}
        for part in ("train", "test"):
            table = load_csv(assets / "hint3" / f"{bot}_{part}.csv")
            parts[part] = [
                (t, lab)
                for t, lab in zip(table["sentence"], table["label"])
                if isinstance(t, str) and t.strip() and lab != "NO_NODES_DETECTED"
            ]
        tasks[bot] = (k_shot(parts["train"], shots, seed), parts["test"])
    return tasks


# the CLINC150 domains `all` holds out of meta-training (vars.dev_groups)
CLINC150_DEV_DOMAINS = ("banking", "credit_cards")


def clinc150_dev_domains_task(assets: Path, shots: int, seed: int) -> Dict[str, Tuple[list, list]]:
    """One all-label task over the intents of CLINC150_DEV_DOMAINS: `shots`
    of each intent's training utterances (drawn with `seed`) as support, the
    rest of them as test queries."""
    rows = [(t, label.rpartition("/")[2]) for t, label, _ in clinc150(assets)
            if label.split("/")[1] in CLINC150_DEV_DOMAINS]  # fmt: skip
    support = k_shot(rows, shots, seed)
    taken = set(support)
    test = [pair for pair in rows if pair not in taken]
    return {"clinc150_" + "_".join(CLINC150_DEV_DOMAINS): (support, test)}


DEV_TASKS: Dict[str, Callable[[Path, int, int], Dict[str, Tuple[list, list]]]] = {
    "hint3": hint3_tasks,
    "clinc150_dev_domains": clinc150_dev_domains_task,
}


def write_jsonl(path: Path, pairs: List[Tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in pairs)
    path.write_text(rows, encoding="utf8")


def load_csv(path: Path) -> datasets.Dataset:
    return datasets.load_dataset("csv", data_files=str(path), split="train")


SOURCES: Dict[str, Callable[[Path], List[Row]]] = {
    "clinc150": clinc150,
    "huffpost": huffpost,
    "reuters": reuters,
    "trec28": trec28,
    "snips": snips,
    "sgd_intents": sgd_intents,
    "hint3": hint3,
}
DEFAULT_SOURCES = "clinc150,huffpost,reuters,trec28,snips"


def capped(pairs: List[Tuple[str, str]], per_label: int, seed: int) -> List[Tuple[str, str]]:
    """At most `per_label` texts of each label, drawn at random."""
    rng = random.Random(seed)
    kept = []
    for label, texts in group_by_label(pairs).items():
        texts = sorted(set(t.strip() for t in texts if t.strip()))
        kept.extend((t, label) for t in rng.sample(texts, min(per_label, len(texts))))
    return kept


def main(
    assets: Path = typer.Argument(..., help="Folder with the downloaded assets"),
    output: Path = typer.Argument(..., help="Folder for meta_train.spacy and meta_dev.spacy"),
    sources: str = typer.Option(DEFAULT_SOURCES, help="Comma-separated datasets to use"),
    train_per_label: int = typer.Option(40, help="Texts kept per meta-train class"),
    dev_per_label: int = typer.Option(20, help="Texts kept per meta-dev class"),
    dev_groups: str = typer.Option(
        "", help="Comma-separated label groups moved from meta-train to meta-dev (clinc150/banking)"
    ),
    dev_tasks: str = typer.Option(
        "",
        help="Whole held-out sources written as meta-dev tasks (meta_dev_tasks/<task>/"
        f"support.jsonl and test.jsonl) for `spacy_metalearn interpolate`: {', '.join(DEV_TASKS)}",
    ),
    dev_task_shots: int = typer.Option(10, help="Support examples per label of those tasks"),
    seed: int = typer.Option(0),
) -> None:
    names = [name.strip() for name in sources.split(",") if name.strip()]
    unknown = [name for name in names if name not in SOURCES]
    if unknown or not names:
        raise typer.BadParameter(f"unknown sources {unknown}; choose from {list(SOURCES)}")
    rows = [row for name in names for row in SOURCES[name](assets)]
    moved = {group.strip() for group in dev_groups.split(",") if group.strip()}
    missing = sorted(moved - {label.rpartition("/")[0] for _, label, _ in rows})
    if missing:
        raise typer.BadParameter(f"no labels in the groups {missing}")
    rows = [
        (text, label, "dev" if label.rpartition("/")[0] in moved and split == "train" else split)
        for text, label, split in rows
    ]
    summary = {}
    for split, per_label in (("train", train_per_label), ("dev", dev_per_label)):
        pairs = capped([(t, lab) for t, lab, s in rows if s == split], per_label, seed)
        n_docs = write_docbin(pairs, output / f"meta_{split}.spacy")
        by_source = Counter(label.split("/")[0] for label in {lab for _, lab in pairs})
        summary[split] = {"docs": n_docs, "labels": dict(sorted(by_source.items()))}
        print(f"{split}: {n_docs} docs, labels per source {summary[split]['labels']}")
    for name in DEFAULT_SOURCES.split(","):  # held-out test classes, for episodic evaluation
        source_rows = rows if name in names else SOURCES[name](assets)
        test = [
            {"text": text, "label": label}
            for text, label, split in source_rows
            if split == "test" and label.startswith(f"{name}/")
        ]
        if test:
            path = output / f"meta_test_{name}.jsonl"
            path.write_text("".join(json.dumps(row) + "\n" for row in test), encoding="utf8")
            summary[f"test_{name}"] = {"docs": len(test), "labels": len({r["label"] for r in test})}
            print(f"test classes of {name}: {len(test)} texts in {path}")
    for name in [name.strip() for name in dev_tasks.split(",") if name.strip()]:
        if name not in DEV_TASKS:
            raise typer.BadParameter(f"unknown dev tasks {name!r}; choose from {list(DEV_TASKS)}")
        for task, (support, test) in DEV_TASKS[name](assets, dev_task_shots, seed).items():
            write_jsonl(output / "meta_dev_tasks" / task / "support.jsonl", support)
            write_jsonl(output / "meta_dev_tasks" / task / "test.jsonl", test)
            summary[f"dev_task_{task}"] = {"support": len(support), "test": len(test)}
            print(f"meta-dev task {task}: {len(support)} support, {len(test)} test queries")
    (output / "meta_corpus.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
