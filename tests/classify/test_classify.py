"""python -m spacy_metalearn classify: every engine gives the same labels,
a killed run resumes with every row exactly once, and bad input gets a
coded error (the run refused before anything is written) or a per-row
reason (the rest classified)."""

import json
import signal
import subprocess
import sys

import pyarrow
import pyarrow.parquet
import pytest
from typer.testing import CliRunner

from spacy_metalearn.__main__ import app
from spacy_metalearn.classify import classify_corpus
from spacy_metalearn.classify.writing import MANIFEST

from ..util import SUPPORT, tiny_nlp

TEXTS = [text for texts in SUPPORT.values() for text in texts]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf8")
    return path


def corpus(n):
    return [{"id": i, "text": TEXTS[i % len(TEXTS)]} for i in range(n)]


def read_output(folder):
    """The output's rows in order, whatever the format."""
    rows = []
    for path in sorted(folder.glob("part-*")):
        if path.suffix == ".parquet":
            rows.extend(pyarrow.parquet.read_table(path).to_pylist())
        else:
            rows.extend(json.loads(line) for line in path.read_text("utf8").splitlines())
    return rows


def run(*args):
    return CliRunner().invoke(app, ["classify", *map(str, args)])


def said(result) -> str:
    """The command's output, its lines joined (wasabi wraps messages)."""
    return " ".join(result.output.split())


def test_classify_appends_the_pipelines_prediction_to_each_row(pipeline, tmp_path):
    import spacy

    source = write_jsonl(tmp_path / "in.jsonl", corpus(50))
    result = run(pipeline, source, tmp_path / "out", "--shard-size", 20, "--all-scores")
    assert result.exit_code == 0, result.output
    assert "Classified 50 rows" in said(result)
    rows = read_output(tmp_path / "out")
    assert [row["id"] for row in rows] == list(range(50))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        MANIFEST,
        "part-00000-00000.parquet",
        "part-00000-00001.parquet",
        "part-00000-00002.parquet",
    ]
    nlp = spacy.load(pipeline)
    for row in rows[:9]:
        cats = nlp(row["text"]).cats
        assert row["predicted_label"] == max(cats, key=cats.get)
        assert row["predicted_score"] == pytest.approx(cats[row["predicted_label"]], abs=1e-6)
        assert row["predicted_scores"] == pytest.approx(cats, abs=1e-6)
        assert row["classify_error"] is None
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["complete"] and manifest["last_run"]["classified"] == 50


def test_csv_parquet_and_a_folder_of_them_read_like_jsonl(pipeline, tmp_path):
    rows = corpus(12)
    folder = tmp_path / "input"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", rows[:4])
    (folder / "b.csv").write_text(
        "id,text\n" + "".join(f'{r["id"]},"{r["text"]}"\n' for r in rows[4:8]), encoding="utf8"
    )
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows[8:]), folder / "c.parquet")
    (folder / ".hidden.jsonl").write_text("not read\n")
    (folder / "notes.txt").write_text("not read\n")
    assert run(pipeline, folder, tmp_path / "out", "--output-format", "jsonl").exit_code == 0
    out = read_output(tmp_path / "out")
    assert [str(row["id"]) for row in out] == [str(i) for i in range(12)]  # CSV ids are text
    assert run(pipeline, write_jsonl(tmp_path / "all.jsonl", rows), tmp_path / "one").exit_code == 0
    assert [r["predicted_label"] for r in out] == [
        r["predicted_label"] for r in read_output(tmp_path / "one")
    ]


def test_one_process_two_processes_and_ray_give_the_same_labels(pipeline, tmp_path):
    ray = pytest.importorskip("ray")
    source = write_jsonl(tmp_path / "in.jsonl", corpus(300))
    one = classify_corpus(pipeline, source, tmp_path / "one", shard_size=40, progress=False)
    two = classify_corpus(
        pipeline, source, tmp_path / "two", shard_size=40, n_process=2, progress=False
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = classify_corpus(
            pipeline, source, tmp_path / "ray", engine="ray", n_process=2, progress=False
        )
    finally:
        ray.shutdown()
    assert one.classified == two.classified == on_ray.classified == 300
    expected = read_output(tmp_path / "one")
    assert [r["id"] for r in expected] == list(range(300))
    assert len({r["predicted_label"] for r in expected}) == 3
    for other in ("two", "ray"):
        got = read_output(tmp_path / other)
        assert [r["id"] for r in got] == list(range(300))
        assert [r["predicted_label"] for r in got] == [r["predicted_label"] for r in expected]
        assert [r["predicted_score"] for r in got] == pytest.approx(
            [r["predicted_score"] for r in expected], abs=1e-6
        )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


KILLED_AFTER_TWO_SHARDS = """
import os, signal, sys
from pathlib import Path
from spacy_metalearn.classify import classify_corpus, writing

written = []
write_shard = writing.write_shard

def dies_on_the_third(path, rows, columns, arrow_types=None):
    if len(written) == 2:  # half a shard under its temporary name, then SIGKILL
        path.with_name(f".{path.name}.tmp").write_bytes(b"PAR1 half")
        os.kill(os.getpid(), signal.SIGKILL)
    write_shard(path, rows, columns, arrow_types)
    written.append(path)

import spacy_metalearn.classify.local as local
local.write_shard = dies_on_the_third
classify_corpus(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), shard_size=25, progress=False)
"""


def test_a_killed_run_resumes_with_every_row_exactly_once(pipeline, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", corpus(110))
    out = tmp_path / "out"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_TWO_SHARDS, pipeline, str(source), str(out)]
    )
    assert killed.returncode == -signal.SIGKILL
    assert len(list(out.glob("part-*"))) == 2
    assert list(out.glob(".part-*.tmp"))
    assert not json.loads((out / MANIFEST).read_text())["complete"]
    refused = run(pipeline, source, out)
    assert refused.exit_code == 1 and "E056" in refused.output
    result = run(pipeline, source, out, "--shard-size", 25, "--resume")
    assert result.exit_code == 0, result.output
    assert "Classified 60 rows" in said(result) and "50 already written" in said(result)
    assert [row["id"] for row in read_output(out)] == list(range(110))
    assert not list(out.glob(".*"))
    assert json.loads((out / MANIFEST).read_text())["complete"]


def test_a_resumed_run_must_be_the_same_job(pipeline, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", corpus(30))
    out = tmp_path / "out"
    assert run(pipeline, source, out, "--shard-size", 10).exit_code == 0
    result = run(pipeline, source, out, "--shard-size", 20, "--resume")
    assert result.exit_code == 1 and "E058" in result.output and "shard_size" in result.output
    write_jsonl(source, corpus(31))
    result = run(pipeline, source, out, "--shard-size", 10, "--resume")
    assert result.exit_code == 1 and "E058" in result.output and "input" in result.output
    assert run(pipeline, source, out, "--shard-size", 10, "--overwrite").exit_code == 0
    assert len(read_output(out)) == 31


def test_rows_that_cannot_be_classified_are_kept_with_their_reason(pipeline, tmp_path):
    source = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"id": 0, "text": "I lost my card"}).encode(),
        json.dumps({"id": 1, "text": ""}).encode(),
        json.dumps({"id": 2, "text": "   "}).encode(),
        json.dumps({"id": 3, "text": 42}).encode(),
        json.dumps({"id": 4}).encode(),
        b'{"id": 5, "text": "caf\xe9"}',
        b"[1, 2]",
        json.dumps({"id": 7, "text": "will it rain today"}).encode(),
    ]
    source.write_bytes(b"\n".join(lines) + b"\n")
    result = run(pipeline, source, tmp_path / "out", "--output-format", "jsonl")
    assert result.exit_code == 0, result.output
    assert "Classified 2 rows" in said(result) and "6 not classified" in said(result)
    assert "E064" in said(result) and "Row 6 of" in said(result)
    rows = read_output(tmp_path / "out")
    assert len(rows) == 8
    assert [r["predicted_label"] for r in rows] == ["card_lost"] + [None] * 6 + ["weather"]
    errors = [r["classify_error"] for r in rows]
    assert errors[0] is None and errors[7] is None
    assert "empty" in errors[1] and "empty" in errors[2]
    assert "not a string (int)" in errors[3]
    assert "no text" in errors[4]
    assert "not UTF-8" in errors[5]
    assert "not a JSON object" in errors[6]


def test_csv_rows_that_are_not_utf8_or_misshapen_are_reported(pipeline, tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(b"id,text\n1,I lost my card\n2,caf\xe9 card\n3,a,b\n4,will it rain\n")
    assert run(pipeline, source, tmp_path / "out").exit_code == 0
    rows = read_output(tmp_path / "out")
    assert [r["classify_error"] is None for r in rows] == [True, False, False, True]
    assert rows[1]["text"] == "caf\ufffd card"  # kept, the bad byte replaced


def test_a_file_ray_cannot_read_is_refused_and_an_earlier_output_kept(pipeline, tmp_path):
    """Ray's readers refuse a whole file for one bad line (E066); OUTPUT is
    not touched before the Ray job has finished, --overwrite or not."""
    pytest.importorskip("ray")
    source = write_jsonl(tmp_path / "in.jsonl", corpus(6))
    out = tmp_path / "out"
    assert run(pipeline, source, out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    source.write_bytes(source.read_bytes() + b'{"id": 6, "text": "caf\xe9"}\n')
    result = run(pipeline, source, out, "--engine", "ray", "--overwrite")
    assert result.exit_code == 1 and "E066" in result.output, result.output
    assert str(source) in said(result)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_out_of_scope_decision_is_written_where_the_pipeline_makes_one(tmp_path):
    nlp = tiny_nlp(unknown_label="other", threshold=0.99)
    nlp.get_pipe("few_shot_textcat").adapt(SUPPORT)
    nlp.to_disk(tmp_path / "pipeline")
    source = write_jsonl(tmp_path / "in.jsonl", corpus(9))
    assert run(tmp_path / "pipeline", source, tmp_path / "out").exit_code == 0
    rows = read_output(tmp_path / "out")
    component = nlp.get_pipe("few_shot_textcat")
    expected = component.out_of_scope(component.predict([nlp.make_doc(r["text"]) for r in rows]))
    assert [r["predicted_out_of_scope"] for r in rows] == expected


@pytest.mark.parametrize(
    "setup,extra,code",
    [
        ("no_text_column", [], "E054"),
        ("clashing_column", [], "E055"),
        ("missing_input", [], "E047"),
        ("empty_folder", [], "E053"),
        ("output_is_a_file", [], "E035"),
        ("output_holds_other_files", ["--overwrite"], "E057"),
        ("fine", ["--engine", "spark"], "E059"),
        ("fine", ["--engine", "ray", "--address", "127.0.0.1:9"], "E061"),
        ("fine", ["--engine", "ray", "--address", "nonsense"], "E061"),
        ("fine", ["--address", "127.0.0.1:9"], "E063"),
        ("fine", ["--resume", "--overwrite"], "E063"),
        ("fine", ["--engine", "ray", "--resume"], "E063"),
        ("fine", ["--output-format", "csv"], "E019"),
        ("fine", ["--shard-size", "0"], "E019"),
        ("no_labels", [], "E062"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(pipeline, tmp_path, setup, extra, code):
    source = write_jsonl(tmp_path / "in.jsonl", corpus(5))
    out = tmp_path / "out"
    model = pipeline
    if setup == "no_text_column":
        write_jsonl(source, [{"body": "hello"}])
    elif setup == "clashing_column":
        write_jsonl(source, [{"text": "hello", "predicted_label": "mine"}])
    elif setup == "missing_input":
        source = tmp_path / "missing.jsonl"
    elif setup == "empty_folder":
        source = tmp_path / "empty"
        source.mkdir()
    elif setup == "output_is_a_file":
        out.write_text("mine")
    elif setup == "output_holds_other_files":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif setup == "no_labels":
        tiny_nlp().to_disk(tmp_path / "blank")
        model = str(tmp_path / "blank")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = run(model, source, out, *extra)
    assert result.exit_code == 1, result.output
    assert code in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
