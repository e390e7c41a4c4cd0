"""The samples robustness metrics attack or perturb, read once per reference and checked against its clean pass."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pytest_netzip.errors import DataError, InputSpaceError, MetricUnavailable

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_netzip.metrics.base import Subject


def samples_of(subject: Subject, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` evaluation samples, inputs in [0, 1], on the subject's device: read once per reference.

    Every compressed model of a reference is attacked and perturbed on these very samples; they are
    checked against the reference's clean pass, so shuffled data fails instead of being scored.
    """
    import torch

    from pytest_netzip.data.fingerprint import fingerprint, same_inputs
    from pytest_netzip.data.inputs import describe

    owner = subject.reference or subject

    def take() -> tuple[torch.Tensor, torch.Tensor]:
        owner.predictions  # noqa: B018 - a detector's raises WrongTask here, before its targets are stacked
        inputs: list[torch.Tensor] = []
        target_chunks: list[torch.Tensor] = []
        taken = 0
        for batch_inputs, batch_targets in owner.data:
            if not isinstance(batch_inputs, torch.Tensor):
                raise MetricUnavailable(f"attacks and perturbations need one input tensor; netzip_data gives "
                                        f"{describe(batch_inputs)}")
            if not batch_inputs.is_floating_point():
                raise MetricUnavailable(f"attacks and perturbations need continuous inputs; netzip_data's are "
                                        f"{describe(batch_inputs)} (token ids or other integers)")
            inputs.append(batch_inputs[: count - taken])
            target_chunks.append(batch_targets[: count - taken])
            taken += len(target_chunks[-1])
            if taken >= count:
                break
        targets = torch.cat(target_chunks)
        clean = owner.predictions
        if not (torch.equal(targets, clean.targets[: len(targets)])
                and same_inputs(fingerprint(torch.cat(inputs), len(targets)),
                                cast("torch.Tensor", clean.inputs)[: len(targets)])):
            raise DataError("netzip_data gave other samples on a second pass (shuffle=True?): robustness checks need "
                            "the same samples in the same order every time")
        try:
            unit = owner.data.space.to_unit(torch.cat(inputs).to(owner.device))
        except InputSpaceError as exc:
            raise DataError(str(exc)) from None
        return unit, targets.to(owner.device)

    return owner.once(("samples", count), take)


#: Samples per forward pass when robustness checks score a model (lowered int8 programs see one shape).
CHUNK = 64


def labels_of(model: nn.Module, unit: torch.Tensor, label: str) -> torch.Tensor:
    """Top-1 labels of ``label``'s model taking [0, 1] inputs (``on_unit_inputs``), in chunks of ``CHUNK`` samples.

    DataError where its logits are not finite: argmax would read a NaN row as class 0.
    """
    import torch

    with torch.inference_mode():
        logits = torch.cat([model(unit[start:start + CHUNK]) for start in range(0, len(unit), CHUNK)])
    nonfinite = int((~torch.isfinite(logits)).flatten(1).any(dim=1).sum())
    if nonfinite:
        raise DataError(f"{label} returns NaN or infinite outputs for {nonfinite} of {len(logits)} attacked or "
                        "perturbed samples: no gate can judge them")
    return logits.argmax(dim=1)
