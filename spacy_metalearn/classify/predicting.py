"""Classifying rows of a corpus with a pipeline's few_shot_textcat: the one
piece that every engine runs, so that each gives the same labels.

Only the tokenizer and the component run (and the components its encoder
listens to); other components of the pipeline are skipped. A row whose text
is missing, not a string, empty or longer than the pipeline's max_length
(spaCy's E088) gets no label and says why in its error column; the other rows
of its batch are classified."""

from typing import Any, Dict, List, Optional, Sequence

import numpy

from ..device import use_gpu
from ..errors import Errors

LABEL = "predicted_label"
SCORE = "predicted_score"
OUT_OF_SCOPE = "predicted_out_of_scope"
SCORES = "predicted_scores"
ERROR = "classify_error"
COLUMNS = (LABEL, SCORE, OUT_OF_SCOPE, SCORES, ERROR)


class CorpusClassifier:
    """A loaded pipeline that classifies texts into columns.

    model (str): A pipeline folder or installed package name.
    all_scores (bool): Also give every label's score (column predicted_scores).
    out_of_scope (bool): Also give the out-of-scope decision (column
        predicted_out_of_scope); always given where the component has an
        unknown_label.
    batch_size (Optional[int]): Docs encoded at once (default: the component's).
    inference_backend (Optional[str]): torch, onnxruntime or onnxruntime-int8
        (default: the pipeline's setting).
    threads (Optional[int]): torch threads in this process (default: torch's).
    gpu_id (int): GPU to run on, or -1 for the CPU.
    """

    def __init__(
        self,
        model: str,
        *,
        all_scores: bool = False,
        out_of_scope: bool = False,
        batch_size: Optional[int] = None,
        inference_backend: Optional[str] = None,
        threads: Optional[int] = None,
        gpu_id: int = -1,
    ) -> None:
        import torch

        from ..evaluation import find_component, load_pipeline

        if threads is not None:
            torch.set_num_threads(threads)
        use_gpu(gpu_id)
        self.nlp = load_pipeline(model)
        self.component = find_component(self.nlp)
        if not self.component.labels:
            raise ValueError(Errors.E062.format(model=model))
        if inference_backend is not None:
            self.component.set_inference_backend(inference_backend)
        if batch_size is not None:
            self.component.embedder.batch_size = batch_size
        self.labels = list(self.component.labels)
        self.all_scores = all_scores
        self.out_of_scope = out_of_scope or self.component.cfg["unknown_label"] is not None

    @property
    def columns(self) -> List[str]:
        """The columns classify() gives, in order."""
        return [
            column
            for column in COLUMNS
            if (column != OUT_OF_SCOPE or self.out_of_scope)
            and (column != SCORES or self.all_scores)
        ]

    def classify(
        self, texts: Sequence[Any], problems: Optional[Sequence[Optional[str]]] = None
    ) -> Dict[str, list]:
        """Classify texts into columns of equal length.

        texts (Sequence[Any]): The text of each row (anything: rows whose text
            is not a non-empty string are reported, not classified).
        problems (Optional[Sequence[Optional[str]]]): Per row, why it could not
            be read (it is then not classified), or None.
        RETURNS (Dict[str, list]): The columns: predicted_label and
            predicted_score (None for a row not classified), predicted_out_of_scope
            and predicted_scores where asked for, and classify_error: why the
            row was not classified, or None.
        """
        errors = list(problems) if problems is not None else [None] * len(texts)
        for i, text in enumerate(texts):
            if errors[i] is None:
                errors[i] = text_problem(text, self.nlp.max_length)
        kept = [i for i, error in enumerate(errors) if error is None]
        columns: Dict[str, list] = {column: [None] * len(texts) for column in self.columns}
        columns[ERROR] = errors
        if not kept:
            return columns
        docs = self.component.embedder.make_docs([texts[i] for i in kept])
        scores = self.component.predict(docs)
        values = self.component.model.ops.to_numpy(scores.scores)
        best = values.argmax(axis=1)
        out_of_scope = self.component.out_of_scope(scores) if self.out_of_scope else None
        for row, i in enumerate(kept):
            columns[LABEL][i] = self.labels[best[row]]
            columns[SCORE][i] = float(values[row, best[row]])
            if out_of_scope is not None:
                columns[OUT_OF_SCOPE][i] = bool(out_of_scope[row])
            if self.all_scores:
                row_scores = values[row].astype(numpy.float64).tolist()
                columns[SCORES][i] = dict(zip(self.labels, row_scores))
        return columns

    def arrow_types(self) -> Dict[str, Any]:
        """The Arrow type of each column, so that every shard has one schema
        (a shard of errors only included)."""
        import pyarrow

        types = {
            LABEL: pyarrow.string(),
            SCORE: pyarrow.float64(),
            OUT_OF_SCOPE: pyarrow.bool_(),
            SCORES: pyarrow.struct([(label, pyarrow.float64()) for label in self.labels]),
            ERROR: pyarrow.string(),
        }
        return {column: types[column] for column in self.columns}

    def classify_table(self, table, text_column: str):
        """A pyarrow Table with the classify columns appended (Ray's batches)."""
        import pyarrow

        if text_column in table.column_names:
            texts = table.column(text_column).to_pylist()
        else:
            texts = [None] * table.num_rows
        columns = self.classify(texts)
        for column, arrow_type in self.arrow_types().items():
            table = table.append_column(column, pyarrow.array(columns[column], type=arrow_type))
        return table


def text_problem(text: Any, max_length: Optional[int] = None) -> Optional[str]:
    """Why a row's text cannot be classified, or None.

    max_length (Optional[int]): The pipeline's nlp.max_length: a longer text
        is refused by its tokenizer (spaCy's E088).
    """
    if text is None:
        return "it has no text"
    if not isinstance(text, str):
        return f"its text is not a string ({type(text).__name__})"
    if not text.strip():
        return "its text is empty"
    if max_length is not None and len(text) > max_length:
        return (
            f"its text has {len(text):,} characters, over the pipeline's nlp.max_length "
            f"of {max_length:,} (spaCy's E088)"
        )
    return None
