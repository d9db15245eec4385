"""Pooling a transformer's wordpiece vectors into one vector per text, the
ways sentence-transformers models are trained to be read (their
`1_Pooling/config.json`): each mode reads only the wordpieces of the
attention mask, and several modes are concatenated in the order given."""

from typing import Optional, Sequence

import torch

POOLING_MODES = ("cls", "mean", "max", "lasttoken", "mean_sqrt_len_tokens", "weightedmean")


def pool(
    hidden: torch.Tensor,
    mask: torch.Tensor,
    modes: Sequence[str],
    prompt_length: Optional[int] = None,
) -> torch.Tensor:
    """One vector per row of wordpieces.

    hidden (torch.Tensor): (rows, wordpieces, width) transformer outputs.
    mask (torch.Tensor): (rows, wordpieces) attention mask, 1 for a real
        wordpiece and 0 for padding (on either side).
    modes (Sequence[str]): Pooling modes from POOLING_MODES.
    prompt_length (Optional[int]): The first wordpieces of each row that are
        a prompt, left out of every mode (a model pooled without its
        prompt: include_prompt false); None leaves them in.
    RETURNS (torch.Tensor): (rows, width * len(modes)).
    """
    mask = mask.to(hidden.dtype)
    if prompt_length:
        mask = without_prompt(mask, prompt_length)
    weights = mask.unsqueeze(-1)
    first = mask.argmax(dim=1)
    last = hidden.shape[1] - 1 - mask.flip(1).argmax(dim=1)
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    total = (hidden * weights).sum(dim=1)
    count = torch.clamp(weights.sum(dim=1), min=1e-9)
    pooled = []
    for mode in modes:
        if mode == "cls":
            pooled.append(hidden[rows, first])
        elif mode == "lasttoken":
            pooled.append(hidden[rows, last] * mask[rows, last].unsqueeze(-1))
        elif mode == "mean":
            pooled.append(total / count)
        elif mode == "mean_sqrt_len_tokens":
            pooled.append(total / torch.sqrt(count))
        elif mode == "max":
            pooled.append(hidden.masked_fill(weights == 0, float("-inf")).max(dim=1).values)
        elif mode == "weightedmean":
            positions = torch.arange(1, hidden.shape[1] + 1, device=hidden.device)
            position_weights = weights * positions.to(hidden.dtype).view(1, -1, 1)
            pooled.append(
                (hidden * position_weights).sum(dim=1)
                / torch.clamp(position_weights.sum(dim=1), min=1e-9)
            )
        else:
            raise ValueError(f"unknown pooling mode {mode!r}")  # checked where modes are set
    return torch.cat(pooled, dim=-1)


def without_prompt(mask: torch.Tensor, prompt_length: int) -> torch.Tensor:
    """The mask without each row's first `prompt_length` real wordpieces."""
    positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    start = mask.argmax(dim=1, keepdim=True)
    return mask * ~((positions >= start) & (positions < start + prompt_length))
