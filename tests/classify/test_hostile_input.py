"""classify through the real CLI (a subprocess) on hostile input: one bad row
never costs the run, values the output format cannot hold are carried as
text, and places it cannot or must not write to are refused with a coded
error before the pipeline loads, with nothing changed."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet
import pytest
from thinc.util import gpu_is_available

from ..util import SUPPORT
from .test_classify import read_output, write_jsonl

TEXTS = [text for texts in SUPPORT.values() for text in texts]


def classify(*args):
    result = subprocess.run(
        [sys.executable, "-m", "spacy_metalearn", "classify", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def snapshot(folder: Path):
    return sorted((str(p), p.stat().st_size) for p in folder.rglob("*"))


def test_a_text_over_max_length_is_a_row_with_its_reason(pipeline, tmp_path):
    long = "word " * (1_048_576 // 5 + 1)
    rows = [{"id": 0, "text": TEXTS[0]}, {"id": 1, "text": long}, {"id": 2, "text": TEXTS[3]}]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    code, output = classify(pipeline, source, tmp_path / "out", "--output-format", "jsonl")
    assert code == 0, output
    rows = read_output(tmp_path / "out")
    assert [row["id"] for row in rows] == [0, 1, 2]
    assert rows[0]["predicted_label"] == "card_lost" and rows[2]["predicted_label"] == "refund"
    assert rows[1]["predicted_label"] is None
    assert "nlp.max_length" in rows[1]["classify_error"]
    assert "E088" in rows[1]["classify_error"]
    assert "Classified 2 rows" in output and "1 not classified" in output


def test_values_parquet_cannot_hold_are_carried_as_text(pipeline, tmp_path):
    big = 10**29
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"id": 1, "text": TEXTS[0], "meta": {}}) + "\n"
        + f'{{"id": {big}, "text": "{TEXTS[3]}", "meta": {{}}}}\n'
        + json.dumps({"id": 3, "text": TEXTS[6], "meta": {"nested": {}}}) + "\n"
    )  # fmt: skip
    code, output = classify(pipeline, source, tmp_path / "out")
    assert code == 0, output
    rows = read_output(tmp_path / "out")
    assert [row["id"] for row in rows] == ["1", str(big), "3"]
    assert [row["meta"] for row in rows] == ["{}", "{}", '{"nested": {}}']
    assert [row["predicted_label"] for row in rows] == ["card_lost", "refund", "weather"]
    schema = pyarrow.parquet.read_schema(next((tmp_path / "out").glob("part-*.parquet")))
    assert schema.field("id").type == pyarrow.string()


def test_an_output_inside_the_input_folder_is_refused_on_the_first_run(pipeline, tmp_path):
    folder = tmp_path / "input"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [{"text": TEXTS[0]}])
    before = snapshot(tmp_path)
    code, output = classify(pipeline, folder, folder / "out")
    assert code == 1 and "[E070]" in output and "Traceback" not in output
    assert snapshot(tmp_path) == before
    # and the input inside the output: the output is a folder above the input
    code, output = classify(pipeline, folder, tmp_path)
    assert code == 1 and "[E044]" in output
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("option", ["--batch-size", "--threads"])
def test_zero_batch_size_or_threads_say_the_valid_range(pipeline, tmp_path, option):
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": TEXTS[0]}])
    code, output = classify(pipeline, source, tmp_path / "out", option, "0")
    assert code == 1 and f"[E019] {option} must be an integer >= 1, but got 0" in output
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(gpu_is_available(), reason="tests the machine without a GPU")
def test_gpu_id_without_a_gpu_says_what_is_missing(pipeline, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": TEXTS[0]}])
    code, output = classify(pipeline, source, tmp_path / "out", "--gpu-id", "0")
    assert code == 1 and "[E068] Cannot run on GPU 0" in output
    assert "CuPy" in output and "-1" in output and "Traceback" not in output
    assert not (tmp_path / "out").exists()


@pytest.fixture
def read_only_place(tmp_path):
    """A tmpfs mounted here, which the test can turn read-only (root only)."""
    place = tmp_path / "mounted"
    place.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(place)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("cannot mount a file system here (needs root)")

    def make_read_only():
        subprocess.run(["mount", "-o", "remount,ro", str(place)], check=True)

    yield place, make_read_only
    subprocess.run(["umount", str(place)], check=True)


def test_a_read_only_place_is_refused_before_the_pipeline_loads(
    pipeline, tmp_path, read_only_place
):
    place, make_read_only = read_only_place
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": text} for text in TEXTS])
    code, output = classify(pipeline, source, place / "earlier")
    assert code == 0, output
    earlier = snapshot(place)
    make_read_only()
    for target, extra in ((place / "new" / "out", []), (place / "earlier", ["--overwrite"])):
        code, output = classify("no_such_pipeline", source, target, *extra)
        assert code == 1 and "[E069]" in output and "Read-only file system" in output, output
        assert str(target) in output and "Traceback" not in output
        assert snapshot(place) == earlier
