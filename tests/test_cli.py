import json

import pytest
import spacy
from thinc.util import gpu_is_available
from typer.testing import CliRunner

from spacy_metalearn.__main__ import app

from .util import SUPPORT, support_docs, tiny_bert_nlp, tiny_nlp


@pytest.fixture
def files(tmp_path):
    nlp = tiny_nlp()
    with pytest.warns(UserWarning, match="W001"):
        nlp("warm up")  # no labels yet: the documented warning
    nlp.to_disk(tmp_path / "blank_pipeline")
    support = tmp_path / "support.jsonl"
    support.write_text(
        "".join(
            json.dumps({"text": t, "label": lab}) + "\n"
            for lab, ts in SUPPORT.items()
            for t in ts[:1]
        )
    )
    return tmp_path, support


def test_adapt_saves_an_adapted_pipeline(files):
    tmp_path, support = files
    out = tmp_path / "adapted"
    result = CliRunner().invoke(
        app, ["adapt", str(tmp_path / "blank_pipeline"), str(support), str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Adapted to 3 labels" in result.output
    nlp = spacy.load(out)
    assert nlp.get_pipe("few_shot_textcat").labels == tuple(SUPPORT)
    assert max(nlp("I lost my card").cats.items(), key=lambda kv: kv[1])[0] == "card_lost"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".adapted")]


def test_adapt_refuses_to_overwrite_without_force(files):
    tmp_path, support = files
    out = tmp_path / "adapted"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["adapt", str(tmp_path / "blank_pipeline"), str(support), str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "E025" in result.output
    assert (out / "keep.txt").read_text() == "mine"
    result = CliRunner().invoke(app, [*args, "--force"])
    assert result.exit_code == 1 and "[E045]" in result.output and "keep.txt" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    (out / "keep.txt").unlink()  # an empty folder is taken with --force
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0  # a pipeline is replaced
    assert spacy.load(out).get_pipe("few_shot_textcat").labels == tuple(SUPPORT)


def test_force_never_replaces_a_pipeline_folder_holding_other_files(files):
    tmp_path, support = files
    out = tmp_path / "adapted"
    args = ["adapt", str(tmp_path / "blank_pipeline"), str(support), str(out), "--force"]
    assert CliRunner().invoke(app, args).exit_code == 0
    (out / "notes.md").write_text("mine")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "[E045]" in result.output
    assert (out / "notes.md").read_text() == "mine"


@pytest.mark.parametrize("where", ["cwd", "cwd_parent", "support", "support_parent", "model"])
def test_force_never_replaces_the_inputs_or_the_current_directory(files, monkeypatch, where):
    tmp_path, support = files
    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.txt").write_text("mine")
    monkeypatch.chdir(work)
    model = tmp_path / "blank_pipeline"
    support_folder = tmp_path / "data" / "support"
    support_folder.mkdir(parents=True)
    (support_folder / "seq.in").write_text("I lost my card\nwhere is my refund\n")
    (support_folder / "label").write_text("card_lost\nrefund\n")
    out = {
        "cwd": ".",
        "cwd_parent": "..",
        "support": str(support_folder),
        "support_parent": str(tmp_path / "data"),
        "model": str(model),
    }[where]
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(app, ["adapt", str(model), str(support_folder), out, "--force"])
    assert result.exit_code == 1 and "[E044]" in result.output, result.output
    assert "Traceback" not in result.output
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_adapt_with_bad_support_writes_nothing(files):
    tmp_path, _ = files
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "   ", "label": "refund"}\n')
    out = tmp_path / "adapted"
    result = CliRunner().invoke(
        app, ["adapt", str(tmp_path / "blank_pipeline"), str(bad), str(out)]
    )
    assert result.exit_code == 1
    # the message is wrapped to the terminal's width, wherever the path ends
    message = " ".join(result.output.split())
    assert "[E024]" in message and "line 1 has an empty text" in message
    assert "Traceback" not in result.output
    assert not out.exists()


def test_evaluate_writes_json(files):
    tmp_path, support = files
    out = tmp_path / "metrics" / "result.json"
    args = ["evaluate", str(tmp_path / "blank_pipeline"), str(support), str(support)]
    result = CliRunner().invoke(app, [*args, "--output", str(out), "--repeats", "1"])
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0]
    assert header.startswith("| model |") and "| accuracy |" in header
    data = json.loads(out.read_text())
    assert data["accuracy"] == 100.0
    assert data["n_labels"] == 3 and data["n_support"] == 3
    assert data["adapt_seconds"] > 0 and data["encode_seconds"] > 0


def synthetic_jsonl(path, n_classes=6, per_class=8):
    from .util import synthetic_texts

    data = synthetic_texts(n_classes, per_class, seed=3)
    path.write_text(
        "".join(
            json.dumps({"sentence": t, "label": lab}) + "\n" for lab, ts in data.items() for t in ts
        )
    )
    return sorted(data)


def test_corpus_writes_a_docbin_of_the_listed_labels(tmp_path):
    from spacy.tokens import DocBin

    labels = synthetic_jsonl(tmp_path / "full.jsonl")
    (tmp_path / "labels.txt").write_text("\n".join(labels[:2]) + "\n")
    out = tmp_path / "train.spacy"
    args = [
        "corpus",
        str(tmp_path / "full.jsonl"),
        str(out),
        "--labels",
        str(tmp_path / "labels.txt"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    docs = list(DocBin().from_disk(out).get_docs(spacy.blank("en").vocab))
    assert len(docs) == 16
    assert {label for doc in docs for label in doc.cats} == set(labels[:2])
    (tmp_path / "labels.txt").write_text("no_such_label\n")
    result = CliRunner().invoke(app, [*args, "--force"])
    assert result.exit_code == 1 and "[E028]" in result.output


@pytest.mark.parametrize("separable", [True, False])
def test_episodes_reports_mean_and_confidence_interval(files, separable):
    """Classes of one repeated word each are told apart in every episode
    (100%, no spread); classes sharing their texts are not (spread > 0)."""
    tmp_path, _ = files
    path = tmp_path / "full.jsonl"
    path.write_text(
        "".join(
            json.dumps({"text": f"word{c} " * (1 + i % 3) if separable else f"same {i}",
                        "label": f"class{c}"}) + "\n"
            for c in range(6)
            for i in range(8)
        )
    )  # fmt: skip
    out = tmp_path / "episodes.json"
    args = ["episodes", str(tmp_path / "blank_pipeline"), str(path),
            "--shots", "1,2", "--n-way", "3", "--n-query", "2", "--n-episodes", "20",
            "--output", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [row["k_shot"] for row in rows] == [1, 2]
    for row in rows:
        assert row["n_episodes"] == 20 and row["n_classes"] == 6
        if separable:
            assert row["accuracy"] == 100.0 and row["ci95"] == 0.0
        else:
            assert row["accuracy"] < 70.0 and row["ci95"] > 0


def test_evaluate_steps_override_the_pipelines_adaptation(files):
    tmp_path, support = files
    args = ["evaluate", str(tmp_path / "blank_pipeline"), str(support), str(support)]
    out = tmp_path / "steps.json"
    result = CliRunner().invoke(
        app, [*args, "--steps", "7", "--learn-rate", "3", "--repeats", "1", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert (data["adapt_steps"], data["adapt_learn_rate"]) == (7, 3.0)
    assert data["deep_adapt_steps"] == 0
    result = CliRunner().invoke(app, [*args, "--learn-rate", "-1"])
    assert result.exit_code == 1
    assert "[E019]" in result.output


@pytest.mark.parametrize(
    "extra,expected",
    [
        (["--repeats", "0"], "--repeats"),
        (["--steps", "-3"], "[E019] adapt_steps"),
        (["--deep-steps", "-3"], "[E019] deep_adapt_steps"),
        # the tiny pipeline's encoder is a tok2vec: nothing to adapt deeply
        (["--deep-steps", "2"], "[E038]"),
        # nor a transformer of its own for ONNX Runtime to run
        (["--inference-backend", "onnxruntime"], "[E042]"),
        (["--inference-backend", "onnx"], "[E019] inference_backend"),
    ],
)
def test_evaluate_refuses_bad_numbers(files, extra, expected):
    tmp_path, support = files
    args = ["evaluate", str(tmp_path / "blank_pipeline"), str(support), str(support), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and expected in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "extra,expected",
    [(["--n-episodes", "0"], "--n-episodes"), (["--shots", "abc"], "[E019] --shots")],
)
def test_episodes_refuses_bad_numbers(files, extra, expected):
    tmp_path, support = files
    args = ["episodes", str(tmp_path / "blank_pipeline"), str(support), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and expected in result.output


def test_adapt_onto_a_file_is_refused_before_anything_moves(files):
    tmp_path, support = files
    out = tmp_path / "taken"
    out.write_text("mine")
    args = ["adapt", str(tmp_path / "blank_pipeline"), str(support), str(out), "--force"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "[E035]" in result.output
    assert out.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "blank_pipeline",
        "support.jsonl",
        "taken",
    ]


def test_without_an_atomic_exchange_a_save_killed_between_its_moves_is_recovered(
    files, monkeypatch
):
    """Where the filesystem cannot exchange two paths, the old pipeline is
    moved aside before the new one moves in: if the process dies in between,
    the next save restores it (and removes the staging folder the dead one
    left), then replaces it."""
    import os

    from spacy_metalearn import outputs

    tmp_path, support = files
    out = tmp_path / "adapted"
    args = ["adapt", str(tmp_path / "blank_pipeline"), str(support), str(out), "--force"]
    assert CliRunner().invoke(app, args).exit_code == 0
    monkeypatch.setattr(outputs, "exchange", lambda first, second: False)
    moves = []
    real_replace = os.replace

    def dies_on_second_move(source, target):
        if os.path.isdir(source):  # the folder moves, not the files saved inside
            moves.append(target)
        if len(moves) == 2:
            raise KeyboardInterrupt  # the process dies here
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", dies_on_second_move)
    CliRunner().invoke(app, args)
    monkeypatch.setattr(os, "replace", real_replace)
    monkeypatch.setattr(outputs, "exchange", outputs.exchange)
    assert not out.exists() and (tmp_path / ".adapted.previous").is_dir()
    (tmp_path / ".adapted.staging-dead").mkdir()  # as a kill -9 would leave it
    assert CliRunner().invoke(app, args).exit_code == 0
    assert spacy.load(out).get_pipe("few_shot_textcat").labels == tuple(SUPPORT)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert out.stat().st_mode & 0o777 == 0o777 & ~current_umask()


def current_umask() -> int:
    import os

    umask = os.umask(0)
    os.umask(umask)
    return umask


def small_run_args(command, model, support, out):
    """The arguments of a quick adapt / evaluate / episodes run of `model`."""
    return {
        "adapt": [model, str(support), str(out)],
        "evaluate": [model, str(support), str(support), "--repeats", "1"],
        "episodes": [model, str(support), "--n-way", "2", "--n-episodes", "1"],
    }[command]


@pytest.mark.skipif(gpu_is_available(), reason="checks the message where there is no GPU")
@pytest.mark.parametrize("command", ["adapt", "evaluate", "episodes"])
def test_gpu_id_without_a_gpu_is_a_clear_error(files, command):
    tmp_path, support = files
    args = small_run_args(command, str(tmp_path / "blank_pipeline"), support, tmp_path / "out")
    result = CliRunner().invoke(app, [command, *args, "--gpu-id", "0"])
    assert result.exit_code == 1
    assert "GPU" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "extra,expected",
    [
        (["--deep-steps", "2"], "[E038]"),
        (["--inference-backend", "onnxruntime-int8"], "[E042]"),
        (["--inference-backend", "fast"], "[E019] inference_backend"),
    ],
)
def test_adapt_refuses_what_the_pipeline_cannot_do_and_writes_nothing(files, extra, expected):
    tmp_path, support = files
    out = tmp_path / "adapted"
    args = ["adapt", str(tmp_path / "blank_pipeline"), str(support), str(out), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and expected in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_adapt_saves_the_inference_backend_and_deep_steps(files, tiny_bert):
    pytest.importorskip("onnxruntime")
    tmp_path, support = files
    tiny_bert_nlp(tiny_bert, deep_adapt_learn_rate=1e-3).to_disk(tmp_path / "bert_pipeline")
    out = tmp_path / "adapted"
    args = ["adapt", str(tmp_path / "bert_pipeline"), str(support), str(out)]
    result = CliRunner().invoke(
        app, [*args, "--inference-backend", "onnxruntime", "--deep-steps", "2"]
    )
    assert result.exit_code == 0, result.output
    component = spacy.load(out).get_pipe("few_shot_textcat")
    assert component.cfg["inference_backend"] == "onnxruntime"
    assert (out / "few_shot_textcat" / "deep_start").is_file()  # deep steps were taken


SAVE_PAUSED_AT_THE_SWAP = """
import sys, time
from pathlib import Path
import spacy
from spacy_metalearn import outputs

nlp = spacy.load(sys.argv[1])
exchange, where = outputs.exchange, sys.argv[3]

def paused(first, second):
    if where == "before":
        print("paused", flush=True)
        time.sleep(60)
    swapped = exchange(first, second)
    if where == "after":
        print("paused", flush=True)
        time.sleep(60)
    return swapped

outputs.exchange = paused
outputs.save_pipeline(nlp, Path(sys.argv[2]))
"""


@pytest.mark.parametrize("where,labels", [("before", "old"), ("after", "new")])
def test_a_save_killed_at_the_swap_leaves_a_loadable_pipeline(files, where, labels):
    """SIGKILL just before and just after the new folder is swapped in:
    OUTPUT loads (the old pipeline, or the new one) and the next save
    removes what the dead one left."""
    import os
    import signal
    import subprocess
    import sys

    tmp_path, support = files
    out, new = tmp_path / "adapted", tmp_path / "new_pipeline"
    old_args = ["adapt", str(tmp_path / "blank_pipeline"), str(support), str(out)]
    assert CliRunner().invoke(app, [*old_args, "--replace"]).exit_code == 0
    new_support = tmp_path / "new.jsonl"
    new_support.write_text(json.dumps({"text": "hello there", "label": "greeting"}) + "\n")
    new_args = ["adapt", str(out), str(new_support), str(new), "--replace"]
    assert CliRunner().invoke(app, new_args).exit_code == 0
    saver = subprocess.Popen(
        [sys.executable, "-c", SAVE_PAUSED_AT_THE_SWAP, str(new), str(out), where],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert saver.stdout.readline().strip() == "paused"
    os.kill(saver.pid, signal.SIGKILL)
    saver.communicate()  # reaps it and closes the pipe
    expected = {"old": tuple(SUPPORT), "new": ("greeting",)}[labels]
    assert spacy.load(out).get_pipe("few_shot_textcat").labels == expected
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".adapted.staging-")]
    assert CliRunner().invoke(app, [*old_args, "--replace", "--force"]).exit_code == 0
    assert spacy.load(out).get_pipe("few_shot_textcat").labels == tuple(SUPPORT)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("command", ["evaluate", "episodes", "corpus"])
def test_an_existing_output_file_is_replaced_only_with_force(files, command):
    tmp_path, support = files
    model = str(tmp_path / "blank_pipeline")
    out = tmp_path / "result.out"
    out.write_text("mine")
    full = tmp_path / "full.jsonl"
    full.write_text(
        "".join(
            json.dumps({"text": t, "label": lab}) + "\n" for lab, ts in SUPPORT.items() for t in ts
        )
    )
    args = {
        "evaluate": ["evaluate", model, str(support), str(support), "--repeats", "1", "-o"],
        "episodes": ["episodes", model, str(full), "--n-way", "2", "--shots", "1",
                     "--n-query", "1", "--n-episodes", "2", "-o"],
        "corpus": ["corpus", str(support)],
    }[command] + [str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "[E025]" in result.output
    assert out.read_text() == "mine"
    result = CliRunner().invoke(app, [*args, "--force"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() != b"mine"
    folder = tmp_path / "a_folder"
    folder.mkdir()
    result = CliRunner().invoke(app, [*args[:-1], str(folder), "--force"])
    assert result.exit_code == 1 and "[E046]" in result.output


@pytest.mark.parametrize("missing", ["support", "model"])
def test_missing_paths_get_a_coded_message_not_a_traceback(files, missing):
    tmp_path, support = files
    model = str(tmp_path / "blank_pipeline")
    if missing == "support":
        support = tmp_path / "no_such_support.jsonl"
    else:
        model = str(tmp_path / "no_such_pipeline")
    for args in (["adapt", model, str(support), str(tmp_path / "out")],
                 ["evaluate", model, str(support), str(support), "--repeats", "1"]):  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1
        assert {"support": "[E047]", "model": "[E048]"}[missing] in result.output
        assert "no_such" in result.output and "Traceback" not in result.output
        assert not (tmp_path / "out").exists()


def test_episodes_with_an_empty_labels_file_says_so(files):
    tmp_path, support = files
    labels = tmp_path / "labels.txt"
    labels.write_text("\n")
    args = ["episodes", str(tmp_path / "blank_pipeline"), str(support), "--labels", str(labels)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "[E049]" in result.output


def test_adapt_reads_a_docbin_and_checks_it_before_loading_the_model(files):
    """The .spacy corpus spaCy's textcat trains on (and `corpus` writes) is a
    support set; a bad one is refused before the model is read."""
    from spacy.tokens import DocBin

    tmp_path, _ = files
    docs = support_docs(spacy.blank("en"))
    DocBin(docs=docs).to_disk(tmp_path / "support.spacy")
    out = tmp_path / "adapted"
    args = ["adapt", str(tmp_path / "blank_pipeline"), str(tmp_path / "support.spacy"), str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert spacy.load(out).get_pipe("few_shot_textcat").support_counts == {
        label: 3 for label in SUPPORT
    }
    docs[0].cats = {label: 0.0 for label in SUPPORT}
    DocBin(docs=docs).to_disk(tmp_path / "bad.spacy")
    missing_model = tmp_path / "no_such_pipeline"
    result = CliRunner().invoke(
        app, ["adapt", str(missing_model), str(tmp_path / "bad.spacy"), str(tmp_path / "out2")]
    )
    message = " ".join(result.output.split())
    assert result.exit_code == 1 and "[E024]" in message and "doc 1 has no label" in message
    assert not (tmp_path / "out2").exists()


def test_adapt_default_with_another_encoder_saves_it(files, tiny_bert):
    """--encoder chooses the 'default' pipeline's encoder: the saved pipeline
    names it, reads it as a sentence-transformers model and embeds as it does."""
    tmp_path, support = files
    out = tmp_path / "adapted"
    result = CliRunner().invoke(
        app, ["adapt", "default", str(support), str(out), "--encoder", tiny_bert]
    )
    assert result.exit_code == 0, result.output
    nlp = spacy.load(out)
    encoder = nlp.config["components"]["few_shot_textcat"]["model"]["encoder"]
    assert encoder["@architectures"] == "spacy_metalearn.SentenceEncoder.v1"
    assert encoder["name"] == tiny_bert
    assert nlp.get_pipe("few_shot_textcat").embedder(["my card is lost"]).shape == (1, 32)


@pytest.mark.parametrize("command", ["adapt", "evaluate", "episodes"])
def test_encoder_with_a_saved_pipeline_is_refused(files, command):
    tmp_path, support = files
    args = small_run_args(command, str(tmp_path / "blank_pipeline"), support, tmp_path / "out")
    result = CliRunner().invoke(app, [command, *args, "--encoder", "all-MiniLM-L6-v2"])
    message = " ".join(result.output.split())
    assert result.exit_code == 1 and "[E063]" in message and "keeps its own encoder" in message
    assert not (tmp_path / "out").exists()
