import json

import pytest
import spacy
from typer.testing import CliRunner

from spacy_metalearn.__main__ import app

from .util import SUPPORT, tiny_nlp


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
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0
    assert not (out / "keep.txt").exists()


def test_adapt_with_bad_support_writes_nothing(files):
    tmp_path, _ = files
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "   ", "label": "refund"}\n')
    out = tmp_path / "adapted"
    result = CliRunner().invoke(
        app, ["adapt", str(tmp_path / "blank_pipeline"), str(bad), str(out)]
    )
    assert result.exit_code != 0
    assert "E006" in str(result.exception)
    assert not out.exists()


def test_evaluate_writes_json(files):
    tmp_path, support = files
    out = tmp_path / "metrics" / "result.json"
    args = ["evaluate", str(tmp_path / "blank_pipeline"), str(support), str(support)]
    result = CliRunner().invoke(app, [*args, "--output", str(out), "--repeats", "1"])
    assert result.exit_code == 0, result.output
    assert "| accuracy |" in result.output.replace("| model | n_labels | n_support ", "| ")
    data = json.loads(out.read_text())
    assert data["accuracy"] == 100.0
    assert data["n_labels"] == 3 and data["n_support"] == 3
    assert data["adapt_seconds"] > 0 and data["encode_seconds"] > 0
