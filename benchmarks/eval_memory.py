"""Evaluation memory: what one pass over a small and a large evaluation set keeps, for each task.

Each task's model returns random outputs of a fixed size per sample (a classifier 1,000 logits, a regression
model a 16 x 16 map, a segmenter 5 classes x 32 x 32, a language model 32 positions x 1,000 tokens), over batches
of 64 generated one at a time, so that the data itself takes one batch of memory. For each task and each size of
the evaluation set (``--small``, ``--large`` samples), a fresh process runs ``pytest_netzip.data.scoring.predict``
and prints the bytes its result holds (``kept``, by the tensors in it) and the most live heap memory above its
level before the pass, read from glibc's ``mallinfo2`` at every forward call (``peak live``: one batch's
outputs, the batch in flight, and what the pass has kept so far). Resident memory is not the measure: glibc's
allocator keeps freed batches mapped by a threshold it raises as it goes, so the process's peak RSS grows with
the number of batches even where nothing is kept. Memory O(batch) shows as a peak that stays level from the
small set to the large one but for the few bytes per sample kept; for scale, the outputs of the whole large set
are printed too. Nothing is asserted. Linux (glibc) only.

    python benchmarks/eval_memory.py [--small 2048] [--large 32768]
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import datetime
import subprocess
import sys
from collections.abc import Iterator

#: Per task: the shape of the model's output for one sample, and the targets of one sample.
SHAPES = {
    "classification": ((1000,), ()),
    "regression": ((16, 16), (16, 16)),
    "segmentation": ((5, 32, 32), (32, 32)),
    "language_modeling": ((32, 1000), (32,)),
}
BATCH = 64


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _live_heap() -> int:
    """The bytes malloc has handed out and not had back: in use on its heaps and in its own mappings."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def child(task: str, samples: int) -> None:
    """Evaluate ``samples`` samples of ``task`` and print the bytes kept and the peak rise of the live heap."""
    import torch
    from torch import nn

    from pytest_netzip.data.batches import EvalData
    from pytest_netzip.data.scoring import predict

    output_shape, target_shape = SHAPES[task]

    live: list[int] = []

    class Random(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            live.append(_live_heap())
            return torch.randn(len(x), *output_shape)

    class Batches:
        def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            generator = torch.Generator().manual_seed(0)
            for start in range(0, samples, BATCH):
                count = min(BATCH, samples - start)
                inputs = torch.rand(count, 8, generator=generator)
                if task == "regression":
                    targets = torch.randn(count, *target_shape, generator=generator)
                else:
                    high = output_shape[-1] if task == "language_modeling" else output_shape[0]
                    targets = torch.randint(0, high, (count, *target_shape), generator=generator)
                yield inputs, targets

    data = EvalData(Batches())
    predict(Random(), EvalData([next(iter(Batches()))]), torch.device("cpu"), task)  # warm: one batch's memory
    before = _live_heap()
    live.clear()
    outputs, _ = predict(Random(), data, torch.device("cpu"), task)
    rise = max(live) - before
    kept = sum(value.nbytes for field in dataclasses.fields(outputs)
               if isinstance(value := getattr(outputs, field.name), torch.Tensor))
    print(kept, rise)


def _mb(count: float) -> str:
    return f"{count / 2**20:.2f} MB"


def main() -> None:
    """Run each task on both sizes, each in a fresh process, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2048)
    parser.add_argument("--large", type=int, default=32768)
    parser.add_argument("--child", nargs=2, metavar=("TASK", "SAMPLES"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(options.child[0], int(options.child[1]))
        return
    import torch

    print(f"one pass of pytest_netzip's evaluation, batches of {BATCH}, CPU; {datetime.date.today()}, "
          f"torch {torch.__version__}")
    for task, (output_shape, _) in SHAPES.items():
        per_sample = 4 * int(torch.Size(output_shape).numel())
        figures = []
        for samples in (options.small, options.large):
            run = subprocess.run([sys.executable, __file__, "--child", task, str(samples)], capture_output=True,
                                 text=True, check=True)
            kept, rise = (int(word) for word in run.stdout.split())
            figures.append(f"{samples} samples: kept {_mb(kept)} ({kept / samples:.0f} B/sample), "
                           f"peak live {_mb(rise)}")
        print(f"{task}, outputs {'x'.join(map(str, output_shape))} per sample "
              f"({_mb(per_sample * options.large)} for {options.large} samples): {'; '.join(figures)}")


if __name__ == "__main__":
    main()
