"""Running on a GPU by spaCy's convention (--gpu-id N; -1 is the CPU), with a
coded error that says what is missing where there is no GPU to run on."""

from .errors import Errors


def use_gpu(gpu_id: int) -> None:
    """Run on GPU `gpu_id` (thinc's ops and torch's tensors), or stay on the
    CPU for -1."""
    if gpu_id < 0:
        return
    from thinc.api import require_gpu

    try:
        require_gpu(gpu_id)
    except Exception as e:  # thinc: no CuPy; CuPy: no driver or no such device
        raise ValueError(Errors.E068.format(gpu_id=gpu_id, error=str(e).rstrip("."))) from e
