"""The README's main command: ``pytest --netzip example_project`` passes and prints its table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"

#: The start of the skip reason of a latency gate timed on a contended CPU.
CONTENDED = "the CPU was contended while timing"


def test_the_example_project_meets_every_budget(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--netzip", "--netzip-json", "results.json", "-rs", str(EXAMPLE))
    outcomes = result.parseoutcomes()
    skips = [line for line in result.stdout.lines if line.startswith("SKIPPED")]
    # On a contended CPU (a shared runner) latency is not judged: such items skip saying so, and only they
    assert all(CONTENDED in line for line in skips), skips
    assert outcomes.get("passed", 0) + outcomes.get("skipped", 0) == 42 and set(outcomes) <= {"passed", "skipped"}
    result.stdout.fnmatch_lines(["*= netzip =*", "DigitsCNN on cpu (* CPU thread*)", "reference *", "int8_dynamic *"])
    for title, columns in [
        ("ShapesDetector (detection)", "map * map50 * map_vs_reference"),  # each folder's conftest defines its model
        ("BertForSequenceClassification (text)", "top1 * agreement"),
        ("GPT2LMHeadModel (language_model)", "perplexity * token_accuracy * token_agreement * kl_divergence"),
        ("ShapesSegmenter (segmentation)", "miou * pixel_accuracy"),
        ("DiabetesMLP (regression)", "mae * rmse"),
    ]:
        result.stdout.fnmatch_lines([f"{title} on cpu (* CPU thread*)", f"variant * {columns}*"])
    records = json.loads((pytester.path / "results.json").read_text())["results"]
    assert {record["compressor"] for record in records} == {
        "fp16", "bf16", "int8_dynamic", "int8_static", "int8_qat", "prune_l1", "prune_l1(amount=0.6)",
        "prune_random(amount=0.1)", "distill(student=mlp_student, epochs=30, lr=0.01)", "prune_l1(amount=0.1)",
        "prune_l1(amount=0.3)", "lowrank", "lowrank(rank=16)", "prune_structured", "int8_weight_only",
    }
    assert all(budget["passed"] is not False for record in records for budget in record["budgets"])
    assert all(CONTENDED in budget["note"] for record in records for budget in record["budgets"] if budget["passed"] is None)


def test_without_the_flag_the_example_project_skips(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(str(EXAMPLE), "-rs")
    result.assert_outcomes(skipped=42)
    result.stdout.fnmatch_lines(["SKIPPED [[]*[]] *: needs --netzip"])
