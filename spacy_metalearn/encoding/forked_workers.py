"""What the workers of nlp.pipe(n_process > 1) need: they are forked from a
process that may have encoded already. Imported by the component, so that it
holds wherever the component is used."""

import os
from typing import List, Optional

import torch

# torch's thread pool, once started in the parent, deadlocks in a forked
# child: children compute with one thread each, as PyTorch's DataLoader
# workers do.
os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))

# Hugging Face tokenizers warns in every forked child when the parent used its
# thread pool, unless TOKENIZERS_PARALLELISM is set. The children tokenize
# without it either way (tokenizers turns it off after a fork), so it is set
# to false for the fork alone, and the parent keeps its own setting.
PARALLELISM = "TOKENIZERS_PARALLELISM"
_parallelism_before_fork: List[Optional[str]] = []


def _before_fork() -> None:
    _parallelism_before_fork.append(os.environ.get(PARALLELISM))
    os.environ.setdefault(PARALLELISM, "false")


def _after_fork_in_parent() -> None:
    if _parallelism_before_fork and _parallelism_before_fork.pop() is None:
        os.environ.pop(PARALLELISM, None)


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent)
