"""The speed benchmark: interleaved rounds and ratios paired by round; target
lines for each backend against sentence-transformers, the fast paths' accuracy
against the torch row of the same pipeline."""

import pytest

from benchmarks import benchmark_speed


def rows(int8_rate, int8_accuracy):
    return {
        "pipeline frozen torch": {
            "docs_per_second": 200.0,
            "over_st": 1.0,
            "adapt_seconds": 4.0,
            "adapt_over_st_encode": 1.0,
            "accuracy": 86.0,
        },
        "pipeline frozen onnxruntime-int8": {
            "docs_per_second": int8_rate,
            "over_st": int8_rate / 200.0,
            "adapt_seconds": 2.0,
            "adapt_over_st_encode": 0.5,
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


class FakeWorker:
    def __init__(self, name, tasks, seconds, log):
        self.name, self.tasks, self.seconds, self.log = name, tasks, seconds, log

    def time(self, task):
        self.log.append(self.name)
        return self.seconds[task].pop(0)


def test_rounds_time_every_task_of_every_worker_in_a_rotating_order():
    log = []
    workers = [
        FakeWorker("a", ["predict", "support"], {"predict": [1, 2], "support": [3, 4]}, log),
        FakeWorker("b", ["predict"], {"predict": [5, 6]}, log),
    ]
    seconds = benchmark_speed.time_in_rounds(workers, 2)
    assert seconds == {"a": {"predict": [1, 2], "support": [3, 4]}, "b": {"predict": [5, 6]}}
    assert log == ["a", "a", "b", "b", "a", "a"]


def test_ratios_are_paired_by_round_so_a_slower_round_moves_both_sides():
    st = benchmark_speed.ST_ROW
    # the second round ran on a machine twice as loaded: every method took twice as long
    seconds = {
        st: {"predict": [5.0, 10.0], "support": [4.0, 8.0]},
        "pipeline x torch": {"predict": [4.0, 8.0], "support": [4.4, 8.8]},
        "bare transformer": {"predict": [5.0, 10.0]},
    }
    rows = benchmark_speed.timing_rows(seconds, 1000)
    assert rows["pipeline x torch"]["over_st"] == pytest.approx(1.25)
    assert rows["pipeline x torch"]["adapt_over_st_encode"] == pytest.approx(1.1)
    assert rows["pipeline x torch"]["docs_per_second"] == pytest.approx(1000 / 6.0)
    assert rows["pipeline x torch"]["adapt_seconds"] == pytest.approx(6.6)
    assert rows[st]["encode_support_seconds"] == pytest.approx(6.0)
    assert rows[st]["over_st"] == pytest.approx(1.0)
    assert "adapt_over_st_encode" not in rows[st] and "adapt_seconds" not in rows[st]
    assert set(rows["bare transformer"]) == {"docs_per_second", "over_st"}


def test_a_paired_ratio_needs_the_same_rounds_on_both_sides():
    with pytest.raises(ValueError):
        benchmark_speed.paired_ratio([1.0, 2.0], [1.0])
