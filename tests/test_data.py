import json
import re

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_metalearn.data import (
    group_by_label,
    k_shot,
    read_label_list,
    read_labelled,
    write_docbin,
)


def test_reads_jsonl_csv_and_folders(tmp_path):
    (tmp_path / "a.jsonl").write_text(
        '{"text": "lost card", "label": "card"}\n\n{"sentence": "refund?", "label": "refund"}\n'
    )
    (tmp_path / "a.csv").write_text('text,category\nlost card,card\n"refund, now?",refund\n')
    folder = tmp_path / "split"
    folder.mkdir()
    (folder / "seq.in").write_text("lost card\nrefund?\n")
    (folder / "label").write_text("card\nrefund\n")
    assert read_labelled(tmp_path / "a.jsonl") == [("lost card", "card"), ("refund?", "refund")]
    assert read_labelled(tmp_path / "a.csv") == [("lost card", "card"), ("refund, now?", "refund")]
    assert read_labelled(folder) == [("lost card", "card"), ("refund?", "refund")]
    assert group_by_label(read_labelled(folder)) == {"card": ["lost card"], "refund": ["refund?"]}


@pytest.mark.parametrize(
    "name,content,problem",
    [
        ("a.txt", "x", "expected a .jsonl, .csv or .spacy"),
        ("a.jsonl", "", "holds no examples"),
        ("a.jsonl", '{"text": "x"}\n', "line 1 needs a text"),
        ("a.jsonl", "{broken\n", "line 1 is not JSON"),
        ("a.jsonl", "[1, 2]\n", "line 1 is not an object"),
        ("a.csv", "words,label\nx,y\n", "row 2 needs a text"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, name, content, problem):
    (tmp_path / name).write_text(content)
    with pytest.raises(ValueError, match=rf"\[E02[34]\].*{problem}"):
        read_labelled(tmp_path / name)


def test_folder_with_mismatched_lines(tmp_path):
    (tmp_path / "seq.in").write_text("a\nb\n")
    (tmp_path / "label").write_text("x\n")
    with pytest.raises(ValueError, match="seq.in has 2 lines but label has 1"):
        read_labelled(tmp_path)
    (tmp_path / "label").unlink()
    with pytest.raises(ValueError, match="'label' is missing"):
        read_labelled(tmp_path)


def test_csv_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "support.csv"
    path.write_bytes("text,label\nlost card,card\n".encode("utf-8-sig"))
    assert read_labelled(path) == [("lost card", "card")]


@pytest.mark.parametrize(
    "line,problem",
    [
        ('{"text": "a", "label": 1}', "is a int, not a string"),
        ('{"text": "a", "label": ["x"]}', "is a list, not a string"),
        ('{"text": "   ", "label": "x"}', "line 1 has an empty text"),
        ('{"text": "a", "label": "  "}', "line 1 has an empty label"),
    ],
)
def test_jsonl_labels_must_be_strings_and_texts_not_empty(tmp_path, line, problem):
    path = tmp_path / "support.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ValueError, match=rf"\[E024\].*{re.escape(problem)}"):
        read_labelled(path)


def test_labels_lose_their_surrounding_whitespace(tmp_path):
    path = tmp_path / "support.jsonl"
    path.write_text('{"text": "a", "label": " card "}\n')
    assert read_labelled(path) == [("a", "card")]


def test_k_shot_draws_up_to_k_distinct_texts_per_label_the_same_for_a_seed():
    pairs = [("a", "x"), ("b", "x"), ("b", "x"), ("c", "x"), ("d", "y"), ("e", "z"), ("f", "z")]
    drawn = k_shot(pairs, 2, seed=0)
    assert [label for _, label in drawn] == ["x", "x", "y", "z", "z"]
    assert len({text for text, label in drawn if label == "x"}) == 2
    assert {text for text, label in drawn if label == "z"} == {"e", "f"}
    assert k_shot(pairs, 2, seed=0) == drawn
    assert {tuple(k_shot(pairs, 1, seed=s)) for s in range(20)} != {tuple(k_shot(pairs, 1, seed=0))}


@pytest.mark.parametrize(
    "rows,problem",
    [
        ("lost card,card,extra\n", "row 3 has 3 fields, the header 2"),
        ("lost card\n", "row 3 has 1 fields, the header 2"),
    ],
)
def test_csv_rows_must_have_as_many_fields_as_the_header(tmp_path, rows, problem):
    path = tmp_path / "support.csv"
    path.write_text("text,label\nfine,card\n" + rows)
    with pytest.raises(ValueError, match=rf"\[E024\].*{re.escape(problem)}"):
        read_labelled(path)


def test_csv_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "support.csv"
    path.write_text("text,label\nlost card,card\n\nnew pin,pin\n")
    assert read_labelled(path) == [("lost card", "card"), ("new pin", "pin")]


def test_a_missing_path_is_named(tmp_path):
    for path in (tmp_path / "nothing.jsonl", tmp_path / "no_folder"):
        with pytest.raises(ValueError, match=rf"\[E047\].*{re.escape(path.name)}"):
            read_labelled(path)
    with pytest.raises(ValueError, match=r"\[E047\]"):
        read_label_list(tmp_path / "labels.txt")


def test_an_empty_label_list_is_refused(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("\n  \n")
    with pytest.raises(ValueError, match=r"\[E049\]"):
        read_label_list(path)


def test_file_labels_are_nfc_and_visible(tmp_path):
    path = tmp_path / "support.jsonl"
    decomposed = "cafe\u0301"
    path.write_text(
        json.dumps({"text": "a", "label": decomposed}) + "\n"
        + json.dumps({"text": "b", "label": "caf\u00e9"}) + "\n"
    )  # fmt: skip
    assert [label for _, label in read_labelled(path)] == ["caf\u00e9", "caf\u00e9"]
    path.write_text(json.dumps({"text": "a", "label": "\u200b"}) + "\n")
    with pytest.raises(ValueError, match=r"\[E024\].*line 1 has an empty label"):
        read_labelled(path)


def docbin(path, cats_list, texts=None):
    nlp = spacy.blank("en")
    docs = []
    for i, cats in enumerate(cats_list):
        doc = nlp.make_doc(texts[i] if texts else f"text number {i}")
        doc.cats = cats
        docs.append(doc)
    DocBin(docs=docs).to_disk(path)
    return path


def test_reads_docbins_as_spacys_textcat_keeps_them(tmp_path):
    """Exclusive cats give one label a doc; multi-label cats every label of
    at least 0.5; labels as the other formats keep them (NFC, stripped)."""
    cats = [{"refund": 1.0, "card": 0.0}, {"refund": 0.0, "card": 1.0}]
    exclusive = docbin(tmp_path / "a.spacy", cats, ["where is my refund", "I lost my card"])
    assert read_labelled(exclusive) == [
        ("where is my refund", "refund"),
        ("I lost my card", "card"),
    ]
    multi = docbin(tmp_path / "m.spacy", [{"a": 1.0, "b": 0.7, "c": 0.2}, {" Cafe\u0301 ": 1.0}])
    assert read_labelled(multi) == [("text number 0", "a"), ("text number 0", "b"),
                                    ("text number 1", "Caf\u00e9")]  # fmt: skip
    # what the corpus command writes reads back the same
    pairs = [("where is my refund", "refund"), ("I lost my card", "card")]
    write_docbin(pairs, tmp_path / "corpus.spacy")
    assert read_labelled(tmp_path / "corpus.spacy") == pairs


@pytest.mark.parametrize(
    "cats,problem",
    [([{"refund": 0.0, "card": 0.2}], "doc 1 has no label"), ([{}], "doc 1 has no label"),
     ([{"refund": 1.0}, {" ": 1.0}], "doc 2 has an empty label")],
)  # fmt: skip
def test_bad_docbins_name_the_doc(tmp_path, cats, problem):
    with pytest.raises(ValueError, match=rf"\[E024\].*{problem}"):
        read_labelled(docbin(tmp_path / "bad.spacy", cats))


@pytest.mark.parametrize("content", [b"", b"not a docbin", b"\x82\xa5attrs\xc0"])
def test_a_damaged_docbin_is_refused(tmp_path, content):
    (tmp_path / "broken.spacy").write_bytes(content)
    with pytest.raises(ValueError, match=r"\[E024\].*not a DocBin"):
        read_labelled(tmp_path / "broken.spacy")
