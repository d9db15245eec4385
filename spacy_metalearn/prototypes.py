"""Class prototypes as the component stores them: per label, the sum of the
(prepared) support embeddings and their count, so that adapting in parts gives
the same prototypes as adapting once with everything."""

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Dict, Optional, Tuple

import numpy
import srsly

from .errors import Errors

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Prototypes:
    """An immutable set of labelled prototypes; changes return a new object, so
    a failed adapt() leaves the component as it was.

    labels (Tuple[str, ...]): The labels, in score order.
    sums (numpy.ndarray): (n_labels, width) float64 sums of support embeddings.
    counts (numpy.ndarray): (n_labels,) int64 numbers of support examples.
    head_weight (Optional[numpy.ndarray]): (n_labels, width) float32 rows of a
        linear head fitted by adapt(steps=N > 0), or None (prototypes score).
    head_bias (Optional[numpy.ndarray]): (n_labels,) float32 biases of that head.
    """

    labels: Tuple[str, ...]
    sums: numpy.ndarray
    counts: numpy.ndarray
    head_weight: Optional[numpy.ndarray] = None
    head_bias: Optional[numpy.ndarray] = None

    @classmethod
    def empty(cls) -> "Prototypes":
        return cls((), numpy.zeros((0, 0), dtype="float64"), numpy.zeros((0,), dtype="int64"))

    def __post_init__(self) -> None:
        problem = _find_problem(self.labels, self.sums, self.counts) or _find_head_problem(
            self.sums, self.head_weight, self.head_bias
        )
        if problem:
            raise ValueError(Errors.E014.format(problem=problem))

    @property
    def width(self) -> int:
        return int(self.sums.shape[1])

    @cached_property
    def means(self) -> numpy.ndarray:
        """(n_labels, width) float32 prototypes."""
        return (self.sums / self.counts[:, None]).astype("float32")

    def add(self, sums: Dict[str, numpy.ndarray], counts: Dict[str, int]) -> "Prototypes":
        """Add support sums to existing labels and append new labels (in the
        order given)."""
        labels = list(self.labels)
        width = self.width if labels else next(iter(sums.values())).shape[0]
        new_labels = [label for label in sums if label not in self.labels]
        all_sums = numpy.zeros((len(labels) + len(new_labels), width), dtype="float64")
        all_counts = numpy.zeros((len(labels) + len(new_labels),), dtype="int64")
        if labels:
            all_sums[: len(labels)] = self.sums
            all_counts[: len(labels)] = self.counts
        labels.extend(new_labels)
        index = {label: i for i, label in enumerate(labels)}
        for label, row in sums.items():
            all_sums[index[label]] += row
            all_counts[index[label]] += counts[label]
        return Prototypes(tuple(labels), all_sums, all_counts)

    def with_head(self, weight: numpy.ndarray, bias: numpy.ndarray) -> "Prototypes":
        """The same prototypes with a fitted linear head, one row per label."""
        return replace(self, head_weight=weight.astype("float32"), head_bias=bias.astype("float32"))

    def remove(self, label: str) -> "Prototypes":
        keep = [i for i, name in enumerate(self.labels) if name != label]
        if len(keep) == 0:
            return Prototypes.empty()
        has_head = self.head_weight is not None and self.head_bias is not None
        return Prototypes(
            tuple(self.labels[i] for i in keep),
            self.sums[keep],
            self.counts[keep],
            self.head_weight[keep] if has_head else None,
            self.head_bias[keep] if has_head else None,
        )

    def to_bytes(self) -> bytes:
        return srsly.msgpack_dumps(
            {
                "format": FORMAT_VERSION,
                "labels": list(self.labels),
                "sums": self.sums,
                "counts": self.counts,
                "head_weight": self.head_weight,
                "head_bias": self.head_bias,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> "Prototypes":
        """Read prototypes, checking shape, type and values; raise ValueError
        (E014) for anything inconsistent."""
        msg = srsly.msgpack_loads(data)
        if not isinstance(msg, dict) or msg.get("format") != FORMAT_VERSION:
            raise ValueError(Errors.E014.format(problem="unknown format"))
        labels, sums, counts = msg.get("labels"), msg.get("sums"), msg.get("counts")
        if not isinstance(labels, list) or not isinstance(sums, numpy.ndarray):
            raise ValueError(Errors.E014.format(problem="labels or sums are missing"))
        if not isinstance(counts, numpy.ndarray):
            raise ValueError(Errors.E014.format(problem="counts are missing"))
        if len(labels) == 0:
            return cls.empty()
        return cls(tuple(labels), sums, counts, msg.get("head_weight"), msg.get("head_bias"))


def _find_problem(labels, sums: numpy.ndarray, counts: numpy.ndarray) -> str:
    if any(not isinstance(label, str) or not label for label in labels):
        return "labels must be non-empty strings"
    if len(set(labels)) != len(labels):
        return "labels are not unique"
    if sums.ndim != 2 or sums.dtype != numpy.float64:
        return f"sums must be a 2-d float64 array, not {sums.ndim}-d {sums.dtype}"
    if counts.ndim != 1 or counts.dtype != numpy.int64:
        return f"counts must be a 1-d int64 array, not {counts.ndim}-d {counts.dtype}"
    if not (sums.shape[0] == counts.shape[0] == len(labels)):
        return (
            f"{len(labels)} labels but {sums.shape[0]} prototype rows and {counts.shape[0]} counts"
        )
    if len(labels) and (counts < 1).any():
        return "every label needs a count of at least 1"
    if not numpy.isfinite(sums).all():
        return "prototypes hold NaN or infinite values"
    return ""


def _find_head_problem(sums: numpy.ndarray, weight, bias) -> str:
    if weight is None and bias is None:
        return ""
    if not isinstance(weight, numpy.ndarray) or not isinstance(bias, numpy.ndarray):
        return "the fitted head needs both a weight and a bias array"
    if weight.shape != sums.shape or bias.shape != sums.shape[:1]:
        return f"the fitted head has shapes {weight.shape} and {bias.shape}, not {sums.shape}"
    if weight.dtype != numpy.float32 or bias.dtype != numpy.float32:
        return "the fitted head must be float32"
    if not (numpy.isfinite(weight).all() and numpy.isfinite(bias).all()):
        return "the fitted head holds NaN or infinite values"
    return ""
