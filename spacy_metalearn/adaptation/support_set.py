"""The support set as the component keeps it: every support example's
(prepared) embedding with its label, plus what adapt() fitted on them. Keeping
the examples, not only their class means, lets an inner loop fit every label
after adapting in parts, and lets Matching Networks attend over the examples.
A label's description (its name made readable, or a text given to adapt()) is
kept as one more row of its label, marked as such: it counts toward the
prototype and the fitted head like an example, but not as a text the label
was seen with."""

import hashlib
import json
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy
import srsly

from ..errors import Errors

FORMAT_VERSION = 5
# the arrays a support set is saved with, in the order its checksum reads them
ARRAYS = (
    "embeddings",
    "label_ids",
    "head_weight",
    "head_bias",
    "is_description",
    "held_out_scores",
)


@dataclass(frozen=True)
class SupportSet:
    """An immutable support set; changes return a new object, so a failed
    adapt() leaves the component as it was.

    labels (Tuple[str, ...]): The labels, in score order.
    embeddings (numpy.ndarray): (n_rows, width) float32 prepared embeddings,
        in the order they were added.
    label_ids (numpy.ndarray): (n_rows,) int64 index into `labels` of each row.
    head_weight (Optional[numpy.ndarray]): (n_labels, width) float32 rows of a
        linear head fitted by adapt(steps=N > 0), or None.
    head_bias (Optional[numpy.ndarray]): (n_labels,) float32 biases of that head.
    calibration (Optional[Tuple[float, float]]): Slope and offset of the
        multi-label scores, fitted on the support set, or None.
    is_description (Optional[numpy.ndarray]): (n_rows,) bool, True for the
        rows that embed a label's description; None: no row does.
    held_out_scores (Optional[numpy.ndarray]): (n_rows,) float32 top logit of
        each example from the fitted head refitted without it (NaN for rows
        never held out; see held_out.py): what in-scope scores of the head
        look like. None: not computed.
    """

    labels: Tuple[str, ...]
    embeddings: numpy.ndarray
    label_ids: numpy.ndarray
    head_weight: Optional[numpy.ndarray] = None
    head_bias: Optional[numpy.ndarray] = None
    calibration: Optional[Tuple[float, float]] = None
    is_description: Optional[numpy.ndarray] = None
    held_out_scores: Optional[numpy.ndarray] = None

    @classmethod
    def empty(cls) -> "SupportSet":
        return cls((), numpy.zeros((0, 0), dtype="float32"), numpy.zeros((0,), dtype="int64"))

    def __post_init__(self) -> None:
        if self.is_description is None:
            object.__setattr__(self, "is_description", numpy.zeros(len(self.label_ids), dtype=bool))
        problem = (
            _find_problem(self.labels, self.embeddings, self.label_ids)
            or _find_description_problem(self.label_ids, self.is_description)
            or _find_head_problem(len(self.labels), self.width, self.head_weight, self.head_bias)
            or _find_calibration_problem(self.calibration)
            or _find_held_out_problem(self.label_ids, self.head_weight, self.held_out_scores)
        )
        if problem:
            raise ValueError(Errors.E014.format(problem=problem))

    @property
    def width(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def has_head(self) -> bool:
        return self.head_weight is not None

    @cached_property
    def counts(self) -> numpy.ndarray:
        """(n_labels,) int64 number of support examples of each label (its
        description not counted)."""
        ids = self.label_ids[~self.is_description]
        return numpy.bincount(ids, minlength=len(self.labels)).astype("int64")

    @cached_property
    def described(self) -> Tuple[str, ...]:
        """The labels that have a description."""
        return tuple(self.labels[i] for i in sorted(set(self.label_ids[self.is_description])))

    @cached_property
    def means(self) -> numpy.ndarray:
        """(n_labels, width) float32 prototypes: the mean of each label's rows,
        its description included, summed in float64."""
        sums = numpy.zeros((len(self.labels), self.width), dtype="float64")
        numpy.add.at(sums, self.label_ids, self.embeddings.astype("float64"))
        rows = numpy.bincount(self.label_ids, minlength=len(self.labels))
        return (sums / rows[:, None]).astype("float32")

    def add(
        self,
        labels: Sequence[str],
        embeddings: numpy.ndarray,
        is_description: Optional[Sequence[bool]] = None,
    ) -> "SupportSet":
        """Append rows: `labels[i]` is the label of row i, an example or, where
        `is_description[i]`, the label's description, which replaces the one
        it had. New labels come after the existing ones, in order of first
        appearance. The fitted head and calibration are dropped: they no
        longer match."""
        names = list(self.labels) + [
            label for label in dict.fromkeys(labels) if label not in self.labels
        ]
        index = {label: i for i, label in enumerate(names)}
        ids = numpy.asarray([index[label] for label in labels], dtype="int64")
        rows = numpy.asarray(embeddings, dtype="float32")
        marks = numpy.zeros(len(ids), dtype=bool)
        if is_description is not None:
            marks = numpy.asarray(is_description, dtype=bool)
        if self.labels:
            redescribed = self.is_description & numpy.isin(self.label_ids, ids[marks])
            rows = numpy.concatenate([self.embeddings[~redescribed], rows])
            ids = numpy.concatenate([self.label_ids[~redescribed], ids])
            marks = numpy.concatenate([self.is_description[~redescribed], marks])
        return SupportSet(tuple(names), rows, ids, is_description=marks)

    def with_head(self, weight: numpy.ndarray, bias: numpy.ndarray) -> "SupportSet":
        """The same examples with a fitted linear head, one row per label."""
        return replace(
            self,
            head_weight=weight.astype("float32"),
            head_bias=bias.astype("float32"),
            held_out_scores=None,
        )

    def with_held_out_scores(self, scores: numpy.ndarray) -> "SupportSet":
        """The same examples and head with the head's held-out scores."""
        return replace(self, held_out_scores=scores.astype("float32"))

    def with_calibration(self, calibration: Optional[Tuple[float, float]]) -> "SupportSet":
        return replace(self, calibration=calibration)

    def remove(self, label: str) -> "SupportSet":
        """Without `label`, its examples and description; a fitted head keeps
        its other rows, and the other examples their held-out scores."""
        keep = [i for i, name in enumerate(self.labels) if name != label]
        if not keep:
            return SupportSet.empty()
        renumber = numpy.full(len(self.labels), -1, dtype="int64")
        renumber[keep] = numpy.arange(len(keep))
        rows = renumber[self.label_ids] >= 0
        return SupportSet(
            tuple(self.labels[i] for i in keep),
            self.embeddings[rows],
            renumber[self.label_ids[rows]],
            self.head_weight[keep] if self.head_weight is not None else None,
            self.head_bias[keep] if self.head_bias is not None else None,
            self.calibration,
            self.is_description[rows],
            self.held_out_scores[rows] if self.held_out_scores is not None else None,
        )

    def to_bytes(self) -> bytes:
        """msgpack of the labels, the arrays and a checksum over them, so that
        a damaged file (a flipped byte, a reordered label list) is refused on
        load. The checksum guards against damage, not deliberate edits:
        loading a pipeline trusts its weights, as with any spaCy pipeline."""
        msg = {
            "format": FORMAT_VERSION,
            "labels": list(self.labels),
            "calibration": None if self.calibration is None else list(self.calibration),
            **{name: getattr(self, name) for name in ARRAYS},
        }
        msg["checksum"] = checksum(msg)
        return srsly.msgpack_dumps(msg)

    def find_row_problem(self, unit_length: bool) -> str:
        """What adapt() cannot have stored: an all-zero row, or, where the
        metric stores unit-length rows (`unit_length`), a row of another length."""
        norms = numpy.linalg.norm(self.embeddings.astype("float64"), axis=1)
        zero = numpy.flatnonzero(norms == 0.0)
        if len(zero):
            return f"row {int(zero[0])} of the embeddings is all zeros"
        if unit_length:
            off = numpy.flatnonzero(numpy.abs(norms - 1.0) > UNIT_LENGTH_TOLERANCE)
            if len(off):
                row = int(off[0])
                return f"row {row} of the embeddings has length {norms[row]:.4g}, not 1"
        return ""

    @classmethod
    def from_bytes(cls, data: bytes, *, unit_length: bool = False) -> "SupportSet":
        """Read a support set, checking shape, type and values, the rows
        (find_row_problem) and the checksum; raise ValueError (E014) for
        anything inconsistent."""
        try:
            msg = srsly.msgpack_loads(data)
        except Exception as e:
            raise ValueError(Errors.E014.format(problem=f"not msgpack ({e})")) from e
        if not isinstance(msg, dict) or msg.get("format") != FORMAT_VERSION:
            raise ValueError(
                Errors.E014.format(
                    problem=f"unknown format (this version reads format {FORMAT_VERSION}; "
                    "a support set saved by another version must be adapted again)"
                )
            )
        labels, embeddings, ids = msg.get("labels"), msg.get("embeddings"), msg.get("label_ids")
        if not isinstance(labels, list) or not isinstance(embeddings, numpy.ndarray):
            raise ValueError(Errors.E014.format(problem="labels or embeddings are missing"))
        if not isinstance(ids, numpy.ndarray):
            raise ValueError(Errors.E014.format(problem="label ids are missing"))
        if len(labels) == 0:
            return cls.empty()
        calibration = msg.get("calibration")
        if calibration is not None:
            if not (isinstance(calibration, list) and len(calibration) == 2):
                raise ValueError(Errors.E014.format(problem="calibration must be two numbers"))
            calibration = tuple(calibration)
        is_description = msg.get("is_description")
        if not isinstance(is_description, numpy.ndarray):
            raise ValueError(Errors.E014.format(problem="description marks are missing"))
        support_set = cls(
            tuple(labels),
            embeddings,
            ids,
            msg.get("head_weight"),
            msg.get("head_bias"),
            calibration,
            is_description,
            msg.get("held_out_scores"),
        )
        # after the checks above, which name what is wrong where they can
        problem = support_set.find_row_problem(unit_length)
        if problem:
            raise ValueError(Errors.E014.format(problem=problem))
        if msg.get("checksum") != checksum(msg):
            raise ValueError(
                Errors.E014.format(problem="its checksum does not match its labels and arrays")
            )
        return support_set


# a unit-length row saved as float32 is within about 1e-7 of length 1
UNIT_LENGTH_TOLERANCE = 1e-4


def checksum(msg: Dict[str, Any]) -> str:
    """SHA-256 over a saved support set's labels, calibration and arrays
    (their dtypes, shapes and bytes), in a fixed order."""
    digest = hashlib.sha256()
    digest.update(json.dumps([msg.get("labels"), msg.get("calibration")]).encode("utf8"))
    for name in ARRAYS:
        value = msg.get(name)
        if isinstance(value, numpy.ndarray):
            digest.update(f"{name}:{value.dtype.str}:{value.shape}".encode())
            digest.update(numpy.ascontiguousarray(value).tobytes())
        else:
            digest.update(f"{name}:{value!r}".encode())
    return digest.hexdigest()


def _find_problem(labels, embeddings: numpy.ndarray, label_ids: numpy.ndarray) -> str:
    if any(not isinstance(label, str) or not label for label in labels):
        return "labels must be non-empty strings"
    if len(set(labels)) != len(labels):
        return "labels are not unique"
    if embeddings.ndim != 2 or embeddings.dtype != numpy.float32:
        return f"embeddings must be a 2-d float32 array, not {embeddings.ndim}-d {embeddings.dtype}"
    if label_ids.ndim != 1 or label_ids.dtype != numpy.int64:
        return f"label ids must be a 1-d int64 array, not {label_ids.ndim}-d {label_ids.dtype}"
    if embeddings.shape[0] != label_ids.shape[0]:
        return f"{embeddings.shape[0]} embeddings but {label_ids.shape[0]} label ids"
    if len(label_ids) and (label_ids.min() < 0 or label_ids.max() >= len(labels)):
        return f"label ids must be in [0, {len(labels)})"
    if len(labels) and len(numpy.unique(label_ids)) != len(labels):
        return "every label needs at least one example or a description"
    if not numpy.isfinite(embeddings).all():
        return "embeddings hold NaN or infinite values"
    return ""


def _find_description_problem(label_ids: numpy.ndarray, is_description: numpy.ndarray) -> str:
    if not isinstance(is_description, numpy.ndarray) or is_description.dtype != bool:
        return "description marks must be a bool array"
    if is_description.shape != label_ids.shape:
        return f"{is_description.shape[0]} description marks for {label_ids.shape[0]} rows"
    described = label_ids[is_description]
    if len(numpy.unique(described)) != len(described):
        return "a label has more than one description"
    return ""


def _find_head_problem(n_labels: int, width: int, weight, bias) -> str:
    if weight is None and bias is None:
        return ""
    if not isinstance(weight, numpy.ndarray) or not isinstance(bias, numpy.ndarray):
        return "the fitted head needs both a weight and a bias array"
    if weight.shape != (n_labels, width) or bias.shape != (n_labels,):
        return (
            f"the fitted head has shapes {weight.shape} and {bias.shape}, "
            f"not {(n_labels, width)} and {(n_labels,)}"
        )
    if weight.dtype != numpy.float32 or bias.dtype != numpy.float32:
        return "the fitted head must be float32"
    if not (numpy.isfinite(weight).all() and numpy.isfinite(bias).all()):
        return "the fitted head holds NaN or infinite values"
    return ""


def _find_calibration_problem(calibration) -> str:
    if calibration is None:
        return ""
    if len(calibration) != 2 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and numpy.isfinite(v)
        for v in calibration
    ):
        return "calibration must be two finite numbers"
    return ""


def _find_held_out_problem(label_ids: numpy.ndarray, head_weight, scores) -> str:
    if scores is None:
        return ""
    if head_weight is None:
        return "held-out scores need a fitted head"
    if not isinstance(scores, numpy.ndarray) or scores.dtype != numpy.float32:
        return "held-out scores must be a float32 array"
    if scores.shape != label_ids.shape:
        return f"{scores.shape[0]} held-out scores for {label_ids.shape[0]} rows"
    if numpy.isinf(scores).any():
        return "held-out scores hold infinite values"
    return ""
