"""scripts/preprocess.py on small stand-ins of the source datasets, in their
published formats."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

ROOT = Path(__file__).parent.parent.parent


def write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf8")


@pytest.fixture
def assets(tmp_path):
    root = tmp_path / "assets"
    (root / "clinc150").mkdir(parents=True)
    domains = {"banking": ["transfer", "balance"], "travel": ["book_flight", "car_rental"]}
    (root / "clinc150" / "domains.json").write_text(json.dumps(domains))
    intents = [i for d in domains.values() for i in d]
    full = {"train": [[f"{i} request {n}", i] for i in intents for n in range(5)], "val": []}
    (root / "clinc150" / "data_full.json").write_text(json.dumps(full))
    write_jsonl(
        root / "huffpost_bao" / "huffpost.json",
        [{"raw": f"headline {c} {n}", "label": c} for c in range(41) for n in range(3)],
    )
    write_jsonl(
        root / "reuters_bao" / "reuters.json",
        [{"raw": " ".join(["word"] * 100 + [str(n)]), "label": name, "text": []}
         for name in ("cocoa", "iron and steel", "ship") for n in range(3)],
    )  # fmt: skip
    for name, labels in (("train", ["HUM:ind"]), ("valid", ["NUM:date"]), ("test", ["LOC:city"])):
        rows = [
            {"global_ix": n, "sentence": f"question {n}?", "label": lab}
            for lab in labels
            for n in range(3)
        ]
        write_jsonl(root / "trec28" / f"{name}.jsonl", rows)
    snips = root / "few_shot_intent_detection" / "SNIPS" / "train"
    snips.mkdir(parents=True)
    (snips / "seq.in").write_text("play a song\nplay jazz\nrain today\nis it sunny\n")
    (snips / "label").write_text("PlayMusic\nPlayMusic\nGetWeather\nGetWeather\n")
    write_jsonl(
        root / "sgd_intents" / "intents.jsonl",
        [{"text": f"find a table {n}", "label": "Restaurants/FindRestaurants", "split": "dev"}
         for n in range(3)] + [{"text": f"wake me at {n}", "label": "Alarm/AddAlarm",
                                "split": "train"} for n in range(3)],
    )  # fmt: skip
    (root / "hint3").mkdir()
    for bot in ("curekart", "powerplay11", "sofmattress"):
        for part in ("train", "test"):
            lines = [
                "sentence,label",
                f"where is my order {part},ORDER_STATUS",
                f"refund {part} please,REFUND",
                f"what is the capital of France {part},NO_NODES_DETECTED",
            ]
            (root / "hint3" / f"{bot}_{part}.csv").write_text("\n".join(lines) + "\n")
    return root


def run(assets: Path, out: Path, *options: str):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "preprocess.py"), str(assets), str(out), *options],
        capture_output=True,
        text=True,
    )


def cats_of(path: Path):
    docs = DocBin().from_disk(path).get_docs(spacy.blank("en").vocab)
    return [(doc.text, next(iter(doc.cats))) for doc in docs]


def test_classes_are_split_by_source_and_named_by_group(assets, tmp_path):
    result = run(assets, tmp_path / "corpus", "--train-per-label", "2", "--dev-per-label", "1")
    assert result.returncode == 0, result.stderr
    train = cats_of(tmp_path / "corpus" / "meta_train.spacy")
    dev = cats_of(tmp_path / "corpus" / "meta_dev.spacy")
    train_labels = {label for _, label in train}
    dev_labels = {label for _, label in dev}
    assert not train_labels & dev_labels
    assert "clinc150/banking/transfer" in train_labels and "snips/PlayMusic" in train_labels
    assert {
        "huffpost/politics",
        "huffpost/divorce",
        "reuters/cocoa",
        "trec28/HUM:ind",
    } <= train_labels
    huffpost_dev = {f"huffpost/{n}" for n in "crime media weird_news green worldpost".split()}
    assert dev_labels == huffpost_dev | {"reuters/iron and steel", "trec28/NUM:date"}
    assert max(sum(1 for _, lab in train if lab == label) for label in train_labels) == 2
    assert all(len(text.split()) <= 64 for text, _ in train)  # Reuters articles cut short
    lines = (tmp_path / "corpus" / "meta_test_huffpost.jsonl").read_text().splitlines()
    held_out = [json.loads(line) for line in lines]
    assert {row["label"] for row in held_out} == {
        f"huffpost/{n}"
        for n in (
            "religion style science world_news taste tech money arts fifty good_news "
            "arts_&_culture environment college latino_voices culture_&_arts education"
        ).split()
    }


def test_sources_can_be_left_out(assets, tmp_path):
    result = run(assets, tmp_path / "corpus", "--sources", "huffpost,trec28")
    assert result.returncode == 0, result.stderr
    labels = {label for _, label in cats_of(tmp_path / "corpus" / "meta_train.spacy")}
    assert {label.split("/")[0] for label in labels} == {"huffpost", "trec28"}


def test_unknown_source_is_refused(assets, tmp_path):
    result = run(assets, tmp_path / "corpus", "--sources", "clinc150,banking77")
    assert result.returncode != 0
    assert "banking77" in result.stderr
    assert not (tmp_path / "corpus").exists()


def test_dev_groups_move_whole_domains_to_meta_dev(assets, tmp_path):
    result = run(assets, tmp_path / "corpus", "--dev-groups", "clinc150/banking")
    assert result.returncode == 0, result.stderr
    train = {label for _, label in cats_of(tmp_path / "corpus" / "meta_train.spacy")}
    dev = {label for _, label in cats_of(tmp_path / "corpus" / "meta_dev.spacy")}
    assert {"clinc150/banking/transfer", "clinc150/banking/balance"} <= dev
    assert not any(label.startswith("clinc150/banking/") for label in train)
    assert "clinc150/travel/book_flight" in train
    result = run(assets, tmp_path / "other", "--dev-groups", "clinc150/nowhere")
    assert result.returncode != 0 and "clinc150/nowhere" in result.stderr


def test_held_out_test_classes_are_written_for_every_source(assets, tmp_path):
    result = run(assets, tmp_path / "corpus", "--sources", "clinc150")
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "corpus" / "meta_test_reuters.jsonl").read_text().splitlines()
    assert {json.loads(line)["label"] for line in lines} == {"reuters/ship"}


def test_sgd_intents_train_and_hint3_is_held_out_whole(assets, tmp_path):
    result = run(assets, tmp_path / "corpus", "--sources", "snips,sgd_intents,hint3")
    assert result.returncode == 0, result.stderr
    train = {label for _, label in cats_of(tmp_path / "corpus" / "meta_train.spacy")}
    dev = cats_of(tmp_path / "corpus" / "meta_dev.spacy")
    assert train == {"snips/PlayMusic", "snips/GetWeather", "sgd/Restaurants_FindRestaurants",
                     "sgd/Alarm_AddAlarm"}  # fmt: skip
    assert {label for _, label in dev} == {
        f"hint3/{bot}/{label}"
        for bot in ("curekart", "powerplay11", "sofmattress")
        for label in ("ORDER_STATUS", "REFUND")
    }
    assert len(dev) == 12  # train and test queries, the out-of-scope ones left out


def test_hint3_as_meta_dev_tasks_that_interpolate_reads(assets, tmp_path):
    from spacy_metalearn.meta_dev import read_meta_dev

    args = ["--sources", "clinc150", "--dev-tasks", "hint3", "--dev-task-shots", "1"]
    result = run(assets, tmp_path / "corpus", *args)
    assert result.returncode == 0, result.stderr
    tasks = read_meta_dev(tmp_path / "corpus" / "meta_dev_tasks")
    assert [task.name for task in tasks] == ["curekart", "powerplay11", "sofmattress"]
    for task in tasks:
        assert sorted(task.support) == [("refund train please", "REFUND"),
                                        ("where is my order train", "ORDER_STATUS")]  # fmt: skip
        assert sorted(task.test) == [("refund test please", "REFUND"),
                                     ("where is my order test", "ORDER_STATUS")]  # fmt: skip
    result = run(assets, tmp_path / "other", "--sources", "clinc150", "--dev-tasks", "hint4")
    assert result.returncode != 0 and "hint4" in result.stderr


def test_the_held_out_clinc150_domains_as_one_meta_dev_task(assets, tmp_path):
    """`all`'s meta-dev beside HINT3: the intents of the CLINC150 domains held
    out of meta-training, K training utterances each as support, the rest as
    test queries."""
    from spacy_metalearn.meta_dev import read_meta_dev

    args = ["--sources", "clinc150", "--dev-groups", "clinc150/banking",
            "--dev-tasks", "hint3,clinc150_dev_domains", "--dev-task-shots", "2"]  # fmt: skip
    result = run(assets, tmp_path / "corpus", *args)
    assert result.returncode == 0, result.stderr
    tasks = {task.name: task for task in read_meta_dev(tmp_path / "corpus" / "meta_dev_tasks")}
    task = tasks["clinc150_banking_credit_cards"]
    assert sorted({label for _, label in task.support}) == ["balance", "transfer"]
    assert len(task.support) == 4 and len(task.test) == 6
    assert not set(task.support) & set(task.test)
    assert {text for text, _ in task.support + task.test} == {
        f"{i} request {n}" for i in ("transfer", "balance") for n in range(5)
    }
