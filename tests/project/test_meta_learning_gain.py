"""benchmarks/meta_learning_gain.py: the meta-pretrained minus the frozen accuracy
of two evaluations adapted the same way, and a refusal when they were not."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent


def result(path: Path, accuracy: float, **changes) -> str:
    row = {"support": "s", "test": "t", "adapt_steps": 100, "adapt_learn_rate": 30.0,
           "deep_adapt_steps": 0, "accuracy": accuracy, **changes}  # fmt: skip
    path.write_text(json.dumps(row))
    return str(path)


def run(*args: str):
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.meta_learning_gain", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_the_gain_is_meta_minus_frozen(tmp_path):
    meta, frozen = result(tmp_path / "m.json", 91.0), result(tmp_path / "f.json", 89.25)
    done = run(str(tmp_path / "gain.json"), f"X 10-shot={meta}:{frozen}")
    assert done.returncode == 0, done.stderr
    assert "X 10-shot: 91.00 - 89.25 = +1.75 (target >= +1.5: met)" in done.stdout
    (row,) = json.loads((tmp_path / "gain.json").read_text())
    assert row["gain"] == 1.75 and row["target_met"]


def test_results_adapted_differently_are_refused(tmp_path):
    meta = result(tmp_path / "m.json", 91.0)
    frozen = result(tmp_path / "f.json", 89.0, adapt_steps=0)
    done = run(str(tmp_path / "gain.json"), f"X={meta}:{frozen}")
    assert done.returncode != 0 and "adapt_steps" in done.stderr
    assert not (tmp_path / "gain.json").exists()


def test_results_from_other_deep_step_sizes_or_backends_are_refused(tmp_path):
    meta = result(tmp_path / "m.json", 91.0, deep_adapt_learn_rate=3e-5, inference_backend="torch")
    for key, value in (("deep_adapt_learn_rate", 1e-4), ("inference_backend", "onnxruntime")):
        changes = {"deep_adapt_learn_rate": 3e-5, "inference_backend": "torch", key: value}
        frozen = result(tmp_path / "f.json", 89.0, **changes)
        done = run(str(tmp_path / "gain.json"), f"X={meta}:{frozen}")
        assert done.returncode != 0 and key in done.stderr
        assert not (tmp_path / "gain.json").exists()
