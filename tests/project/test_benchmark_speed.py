"""The speed benchmark's target lines: each backend against sentence-transformers,
the fast paths' accuracy against the torch row of the same pipeline."""

from .test_benchmark import load_script

benchmark_speed = load_script("benchmark_speed")


def rows(int8_rate, int8_accuracy):
    return {
        "pipeline frozen torch": {"docs_per_second": 200.0, "adapt_seconds": 4.0, "accuracy": 86.0},
        "pipeline frozen onnxruntime-int8": {
            "docs_per_second": int8_rate,
            "adapt_seconds": 2.0,
            "accuracy": int8_accuracy,
        },
        "sentence-transformers encode": {"docs_per_second": 200.0, "encode_support_seconds": 4.0},
        "bare transformer": {"docs_per_second": 250.0},
    }


def fast_path_line(lines):
    (line,) = [line for line in lines if "fast path" in line]
    return line


def test_the_fast_path_needs_both_its_speed_and_its_accuracy():
    met = fast_path_line(benchmark_speed.target_lines(rows(400.0, 85.6)))
    assert met.startswith("pipeline frozen onnxruntime-int8: fast path 2.00x")
    assert "+0.40 points" in met and met.endswith(": met)")
    assert fast_path_line(benchmark_speed.target_lines(rows(400.0, 85.4))).endswith(": missed)")
    assert fast_path_line(benchmark_speed.target_lines(rows(390.0, 86.0))).endswith(": missed)")


def test_the_torch_row_has_no_fast_path_line():
    lines = benchmark_speed.target_lines(rows(400.0, 85.6))
    assert not any(line.startswith("pipeline frozen torch: fast path") for line in lines)
    assert sum(line.startswith("pipeline frozen torch:") for line in lines) == 2


def test_a_peer_row_gets_no_target_lines():
    table = rows(400.0, 85.6)
    table["classy-classification (SVM)"] = {
        "docs_per_second": 150.0,
        "adapt_seconds": 3.0,
        "accuracy": 84.0,
    }
    lines = benchmark_speed.target_lines(table)
    assert lines == benchmark_speed.target_lines(rows(400.0, 85.6))
