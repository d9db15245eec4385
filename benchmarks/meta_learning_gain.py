"""The meta-learning gain of `python -m spacy_metalearn evaluate` results:
each meta-pretrained pipeline's accuracy minus the frozen encoder's, adapted
the same way on the same support and test, printed against the target and
written to OUTPUT.

    python -m benchmarks.meta_learning_gain OUTPUT "NAME=META.json:FROZEN.json" ...

e.g. NAME "CLINC150 10-shot", META metrics/evaluate/clinc150_10shot_meta.json,
FROZEN metrics/evaluate/clinc150_10shot_frozen_steps.json.
"""

import json
from pathlib import Path
from typing import List

import typer

from benchmarks.benchmark import META_LEARNING_GAIN_TARGET

# what must match for two results to be compared
SAME = (
    "support",
    "test",
    "adapt_steps",
    "adapt_learn_rate",
    "deep_adapt_steps",
    "deep_adapt_learn_rate",
    "inference_backend",
)


def gain(name: str, meta: dict, frozen: dict) -> dict:
    different = [key for key in SAME if meta.get(key) != frozen.get(key)]
    if different:
        raise typer.BadParameter(f"{name}: the two results differ in {different}")
    value = meta["accuracy"] - frozen["accuracy"]
    return {
        "name": name,
        "meta": meta["accuracy"],
        "frozen": frozen["accuracy"],
        "gain": value,
        "target_met": value >= META_LEARNING_GAIN_TARGET,
    }


def main(
    output: Path = typer.Argument(..., help="JSON file for the gains"),
    pairs: List[str] = typer.Argument(..., help="NAME=META.json:FROZEN.json, one or more"),
) -> None:
    rows = []
    for pair in pairs:
        name, _, paths = pair.partition("=")
        meta_path, _, frozen_path = paths.partition(":")
        if not (name and meta_path and frozen_path):
            raise typer.BadParameter(f"expected NAME=META.json:FROZEN.json, got {pair!r}")
        meta, frozen = (json.loads(Path(p).read_text()) for p in (meta_path, frozen_path))
        rows.append(gain(name, meta, frozen))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(rows, indent=2) + "\n")
    for row in rows:
        verdict = "met" if row["target_met"] else "missed"
        print(
            f"meta-learning gain, {row['name']}: {row['meta']:.2f} - {row['frozen']:.2f} = "
            f"{row['gain']:+.2f} (target >= +{META_LEARNING_GAIN_TARGET}: {verdict})"
        )


if __name__ == "__main__":
    typer.run(main)
