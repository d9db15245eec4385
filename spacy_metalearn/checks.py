"""Checks of one setting's value, each raising E019 with the setting, what
it must be and the value given. A bool is never a number here (True is an
int to Python, not a step count to a user)."""

import math
from typing import Any, Optional, Sequence

from .errors import Errors

# Bounds on adaptation: inner-loop steps cost a few milliseconds each on a
# linear head, so 10,000 is minutes; step sizes beyond 1e6 only overflow.
MAX_STEPS = 10_000
MAX_LEARN_RATE = 1e6


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_integer(
    setting: str, value: Any, minimum: int, maximum: Optional[int] = None, *, nullable=False
) -> None:
    """An integer >= minimum (and <= maximum), or None where nullable."""
    if nullable and value is None:
        return
    valid = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    if valid and maximum is not None:
        valid = value <= maximum
    if not valid:
        requirement = (
            f"an integer >= {minimum}"
            if maximum is None
            else f"an integer in [{minimum}, {maximum}]"
        )
        raise ValueError(
            Errors.E019.format(
                setting=setting,
                requirement=f"null or {requirement}" if nullable else requirement,
                value=value,
            )
        )


def check_one_of(setting: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        requirement = "one of " + ", ".join(f"'{choice}'" for choice in choices)
        raise ValueError(Errors.E019.format(setting=setting, requirement=requirement, value=value))


def check_boolean(setting: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(Errors.E019.format(setting=setting, requirement="a boolean", value=value))


def check_positive(setting: str, value: Any) -> None:
    """A finite number > 0."""
    if not (is_number(value) and 0 < value < math.inf):
        raise ValueError(
            Errors.E019.format(setting=setting, requirement="a number > 0", value=value)
        )


def check_steps(setting: str, steps: Any) -> None:
    """Adaptation steps: an integer in [0, MAX_STEPS]."""
    check_integer(setting, steps, 0, MAX_STEPS)


def check_learn_rate(setting: str, learn_rate: Any) -> None:
    """An adaptation step size in (0, MAX_LEARN_RATE]."""
    if not (is_number(learn_rate) and 0 < learn_rate <= MAX_LEARN_RATE):
        raise ValueError(
            Errors.E019.format(
                setting=setting,
                requirement=f"a number in (0, {MAX_LEARN_RATE:g}]",
                value=learn_rate,
            )
        )
