"""What a model returned, read as its predictions: a tensor, a tuple's first element, a dict's or ``ModelOutput``'s logits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_netzip.data.inputs import describe
from pytest_netzip.errors import DataError

#: What to write when netzip cannot read a model's output.
_DEFINE_READER = (
    "define a session fixture netzip_output returning a function that takes the model's output and returns its "
    "predictions (a tensor, or a detector's list of dicts)"
)


def predictions_of(output: Any) -> Any:
    """The predictions in ``output``: a tensor as it is; a detector's list of dicts as it is; a dict or
    ``ModelOutput``'s ``logits`` (else its first value); a tuple's or list's first element (so ``(logits,
    hidden)``). DataError naming what was found, and the fixture to define, for anything else."""
    from pytest_netzip.data.detection import is_detection_batch

    found = output
    for _ in range(3):  # ((logits, state), ...) and {"out": ...} unwrap; deeper nesting is the user's to read
        if hasattr(found, "shape") and hasattr(found, "dtype") or is_detection_batch(found):
            return found
        if isinstance(found, Mapping) and found:
            found = found["logits"] if "logits" in found else next(iter(found.values()))
        elif isinstance(found, (tuple, list)) and found:
            found = found[0]
        else:
            break
    raise DataError(f"cannot read predictions from the model's output, {describe(output)}: {_DEFINE_READER}")


def read_with(reader: Any, output: Any) -> Any:
    """``reader(output)`` (the user's ``netzip_output``), checked to be a tensor or a detector's list of dicts."""
    from pytest_netzip.data.detection import is_detection_batch

    try:
        found = reader(output)
    except Exception as exc:
        raise DataError(f"netzip_output failed on the model's output, {describe(output)}: "
                        f"{type(exc).__name__}: {exc}") from exc
    if not (hasattr(found, "shape") and hasattr(found, "dtype") or is_detection_batch(found)):
        raise DataError(f"netzip_output returned {describe(found)}; it must return the predictions as a tensor, or a "
                        "detector's list of dicts")
    return found
