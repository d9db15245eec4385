"""Every label weighs the same in adaptation, whatever its number of support
rows: a label added with 5 examples beside labels with 100 is predicted as
often as its examples allow, not as often as its share of the support set.

The head steps minimise the cross-entropy over all support rows, so a head fitted
on uneven counts learns the support's label frequencies as a prior. Two ways
to take it out (the setting label_balance; docs/adding-labels.md has what each
measured):

- "logit_adjustment" (Menon et al. 2021, "Long-tail learning via logit
  adjustment", post-hoc): fit as usual, then subtract tau times each label's
  log share of the support rows from its bias. Each label's weights still
  move as far as its own evidence carries them (a label with 5 rows stays
  near its prototype); only the prior is taken out of the decision. tau = 1
  balances every label's errors; less keeps some of the prior, and so more of
  the old labels' accuracy beside many new ones.
- "reweighting": the class-balanced loss, each row weighted by one over its
  label's count, so every label's rows together weigh the same.
- "none": the head keeps the support's frequencies, for supports whose counts
  are the traffic's own.

With equal counts every way gives the same predictions. The in-scope
threshold, the multi-label calibration and deep adaptation's steps weight
every label the same too (LabelBalance.label_weights) unless label_balance is
"none".
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch

LOGIT_ADJUSTMENT = "logit_adjustment"
REWEIGHTING = "reweighting"
NO_BALANCE = "none"
LABEL_BALANCES = (LOGIT_ADJUSTMENT, REWEIGHTING, NO_BALANCE)


@dataclass(frozen=True)
class LabelBalance:
    """How adaptation keeps the support's label frequencies out of its
    predictions (the component's label_balance and logit_adjustment_tau).

    method (str): "logit_adjustment", "reweighting" or "none".
    tau (float): The share of the log frequencies logit adjustment takes out
        of the head's bias (Menon et al.'s tau; 1 balances every label's errors).
    """

    method: str = NO_BALANCE
    tau: float = 1.0

    @classmethod
    def from_settings(cls, settings: Dict[str, Any]) -> "LabelBalance":
        return cls(settings["label_balance"], settings["logit_adjustment_tau"])

    def loss_weights(self, labels: torch.Tensor, n_labels: int) -> Optional[torch.Tensor]:
        """The head's row weights in its loss: row_weights with reweighting,
        else None (every row the same)."""
        return row_weights(labels, n_labels) if self.method == REWEIGHTING else None

    def adjust_bias(self, bias: torch.Tensor, labels: torch.Tensor, n_labels: int) -> torch.Tensor:
        """A fitted head's bias, less tau times each label's log share of the
        rows with logit adjustment."""
        if self.method != LOGIT_ADJUSTMENT:
            return bias
        return bias - (self.tau * log_frequencies(labels, n_labels)).to(bias.dtype)

    def label_weights(self, labels: torch.Tensor, n_labels: int) -> Optional[torch.Tensor]:
        """Row weights that make every label weigh the same (row_weights) in
        what is fitted or read from the support besides the head (the
        in-scope threshold, the multi-label calibration, deep adaptation's
        loss); None where they change nothing: method "none", or even counts."""
        counts = torch.bincount(labels, minlength=n_labels)
        present = counts[counts > 0]
        if self.method == NO_BALANCE or len(present) == 0 or bool((present == present[0]).all()):
            return None
        return row_weights(labels, n_labels)


def label_counts(labels: torch.Tensor, n_labels: int) -> torch.Tensor:
    """(n_labels,) float64 rows of each label (at least 1, so that a label
    with no rows in a subset stays finite)."""
    return torch.bincount(labels, minlength=n_labels).clamp(min=1).double()


def row_weights(labels: torch.Tensor, n_labels: int) -> torch.Tensor:
    """(n_rows,) float64 weight of each row: one over its label's count, scaled
    to a mean of 1 (all ones when every label has as many rows)."""
    counts = label_counts(labels, n_labels)
    present = int((torch.bincount(labels, minlength=n_labels) > 0).sum())
    return len(labels) / (present * counts[labels])


def log_frequencies(labels: torch.Tensor, n_labels: int) -> torch.Tensor:
    """(n_labels,) float64 log share of the rows each label has: the prior
    that logit adjustment takes out of a head's bias."""
    counts = label_counts(labels, n_labels)
    return torch.log(counts / counts.sum())


def weighted_quantile(
    values: torch.Tensor, q: float, weights: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """The q-quantile of `values`, each counting as its weight: linear
    interpolation between the sorted values, placed at their cumulative weight
    before them over the total weight of all but the last. With no weights,
    or equal ones, this is torch.quantile's default (linear)."""
    if weights is None:
        return torch.quantile(values, q)
    order = torch.argsort(values)
    sorted_values = values[order].double()
    w = weights[order].double()
    if len(values) == 1:
        return values[0]
    before = torch.cumsum(w, 0) - w
    positions = before / (w.sum() - w[-1])
    upper = int(torch.searchsorted(positions, torch.tensor(q, dtype=positions.dtype), right=True))
    upper = min(max(upper, 1), len(values) - 1)
    low, high = positions[upper - 1], positions[upper]
    fraction = ((q - low) / (high - low)).clamp(0.0, 1.0) if high > low else high.new_tensor(0.0)
    result = sorted_values[upper - 1] + fraction * (sorted_values[upper] - sorted_values[upper - 1])
    return result.to(values.dtype)
