"""``python -m pytest_netzip merge``: the runs of CI shards as one run, read like any other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_netzip.output.cli import main
from pytest_netzip.output.storage import Storage, write_document
from pytest_netzip.output.tables import variant_summaries
from tests.helpers import ACCURACY_TEST, SIZE_TEST

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(__file__).resolve().parent / "data" / "example_run.json"

GATED = """
import pytest

@pytest.mark.netzip(compressors=["fp16", "prune_l1"])
@pytest.mark.accuracy_drop(max=0.5)
@pytest.mark.size_ratio(min=0.5)
def test_deployable():
    pass
"""


@pytest.fixture
def zoo(project: pytest.Pytester) -> pytest.Pytester:
    """The tiny model repo with an accuracy test file and a size test file, both of fp16 and prune_l1."""
    project.makepyfile(test_accuracy=ACCURACY_TEST, test_size=SIZE_TEST)
    return project


@pytest.fixture
def gated(project: pytest.Pytester) -> pytest.Pytester:
    """The tiny model repo with one test gating accuracy and size, of fp16 and prune_l1."""
    project.makepyfile(test_model=GATED)
    return project


def _run(pytester: pytest.Pytester, *args: str, passed: int = 2) -> pytest.RunResult:
    result = pytester.runpytest("--netzip", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=passed)
    return result


def _read(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def _untimed(metrics: dict[str, Any]) -> dict[str, Any]:
    """Every figure but the time compression took, which differs from run to run."""
    return {name: value for name, value in metrics.items() if name != "compress_seconds"}


def _variants(document: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(v["model"], v["device"], v["compressor"]): _untimed(v["metrics"]) for v in document["variants"]}


def _merge(*argv: str | Path, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``merge argv`` printed, having succeeded."""
    capsys.readouterr()  # what came before: a pytester session's output, say
    code = main(["merge", *map(str, argv)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _refused(argv: list[str | Path], capsys: pytest.CaptureFixture[str]) -> str:
    """The one ``netzip: error:`` line ``main(argv)`` writes to stderr, having returned 2 and printed nothing."""
    capsys.readouterr()
    assert main([str(arg) for arg in argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.startswith("netzip: error: ") and captured.err.count("\n") == 1, captured.err
    return captured.err


# Shards of real sessions


def test_shards_merge_into_the_run_one_session_makes(zoo: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """Split by test path: prune_l1's P (from the top-1s of one shard) and C (from the sizes of the other) give its OCS."""
    _run(zoo, "test_accuracy.py", "--netzip-json", "accuracy.json")
    _run(zoo, "test_size.py", "--netzip-json", "size.json")
    _run(zoo, "--netzip-json", "whole.json", passed=4)
    shards = [zoo.path / "accuracy.json", zoo.path / "size.json"]
    out = _merge(*shards, "--out", zoo.path / "merged.json", capsys=capsys)
    assert out == f"netzip: merged 2 runs (4 results) into {zoo.path / 'merged.json'}\n"
    merged, whole = _read(zoo.path / "merged.json"), _read(zoo.path / "whole.json")

    in_order = [record for shard in shards for record in _read(shard)["results"]]
    assert merged["results"] == in_order  # concatenated, in the order of the inputs
    # the union of the tests, each with the figures it had in the whole run (there, items also hold what came free
    # with the session's other measurements: the size items a top1 and P)
    unsharded = {record["test"]: _untimed(record["metrics"]) for record in whole["results"]}
    assert sorted(record["test"] for record in merged["results"]) == sorted(unsharded)
    for record in merged["results"]:
        assert _untimed(record["metrics"]).items() <= unsharded[record["test"]].items()
    assert _variants(merged) == _variants(whole)
    assert [v["compressor"] for v in merged["variants"]].count("reference") == 1  # one model, one device
    assert "ocs" in _variants(merged)["Signed", "cpu", "prune_l1"]
    assert not any("ocs" in v["metrics"] for shard in shards for v in _read(shard)["variants"] if v["compressor"] != "reference")
    assert (merged["version"], merged["commit"], merged["machine"]) == (whole["version"], whole["commit"], whole["machine"])
    assert merged["created"] == min(_read(shard)["created"] for shard in shards)


def test_shards_of_other_data_or_commits_are_refused(
    gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Split by ``-k``: each shard measures the reference's top-1 and size, which must agree."""
    _run(gated, "-k", "fp16", "--netzip-json", "a.json", passed=1)
    _run(gated, "-k", "prune_l1", "--netzip-json", "b.json", passed=1)
    monkeypatch.setenv("NETZIP_TEST_FLIP_EVERY", "5")  # other labels: the reference's top1 is 0.8, not 0.9
    _run(gated, "-k", "prune_l1", "--netzip-json", "other_data.json", passed=1)
    a, b, other = (gated.path / name for name in ("a.json", "b.json", "other_data.json"))
    out = gated.path / "merged.json"

    _merge(a, b, "--out", out, capsys=capsys)
    merged = _read(out)
    assert [r["compressor"] for r in merged["results"]] == ["fp16", "prune_l1"]
    (reference,) = [v["metrics"] for v in merged["variants"] if v["compressor"] == "reference"]
    assert reference["top1"] == pytest.approx(0.9)
    out.unlink()

    error = _refused(["merge", a, other, "--out", out], capsys)
    assert error == (
        f"netzip: error: cannot merge {a} and {other}: the reference of Signed on cpu differs (top1 0.9000 in {a}, "
        f"0.8000 in {other}): shards of one run measure one reference, on one commit, with the same data, Python and torch\n"
    )
    assert not out.exists()

    edited = _read(b)
    edited["results"][0]["reference"]["metrics"]["size_bytes"] += 4
    write_document(gated.path / "edited.json", edited)
    error = _refused(["merge", a, gated.path / "edited.json", "--out", out], capsys)
    size = next(r for r in _read(a)["results"])["reference"]["metrics"]["size_bytes"]
    assert f"differs (size_bytes {size / 1000:.2f} kB in {a}, {(size + 4) / 1000:.2f} kB in {gated.path / 'edited.json'})" in error

    write_document(gated.path / "commit.json", {**_read(b), "commit": "c0ffee1"})
    assert f"differs (commit None in {a}, 'c0ffee1' in " in _refused(
        ["merge", a, gated.path / "commit.json", "--out", out], capsys)
    write_document(gated.path / "torch.json", {**_read(b), "machine": {**_read(b)["machine"], "torch": "2.0.0"}})
    assert ", '2.0.0' in " in _refused(["merge", a, gated.path / "torch.json", "--out", out], capsys)
    assert not out.exists()


def test_saved_shards_merge_into_a_saved_run_that_report_compare_and_pytest_read(
    gated: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(gated, "-k", "fp16", "--netzip-save", "shard-1", passed=1)
    _run(gated, "-k", "prune_l1", "--netzip-save", "shard-2", passed=1)
    storage = gated.path / ".netzip"
    out = _merge("shard-1", "2", "--storage", storage, "--save", "main", "--out", gated.path / "run.json", capsys=capsys)
    assert out.splitlines() == [
        f"netzip: merged 2 runs (2 results) into {gated.path / 'run.json'}",
        f"netzip: merged 2 runs (2 results) into {storage / '0003_main.json'}",
    ]
    assert _read(storage / "0003_main.json")["results"] == _read(gated.path / "run.json")["results"]

    assert main(["report", "main", "--storage", str(storage), "--out", str(gated.path / "report")]) == 0
    assert (gated.path / "report" / "index.html").is_file()
    capsys.readouterr()
    assert main(["compare", "shard-1", "main", "--storage", str(storage)]) == 0
    compared = capsys.readouterr().out
    assert "\nprune_l1 (only in B)\n" in compared and "\nfp16\n" in compared

    # a pull request's run, compared item by item with main's merged run
    result = _run(gated, "--netzip-compare", "main", "--netzip-compare-fail", "top1:0.05",
                  "--netzip-compare-fail", "size_bytes:5%")
    result.stdout.fnmatch_lines(["netzip: comparing with *0003_main.json"])
    result.stdout.no_fnmatch_line("*compared * of * items*")  # every item found in the merged run
    assert main(["compare", str(storage / "0003_main.json"), "latest", "--storage", str(storage)]) == 0


# Merging documents


def test_a_split_sample_run_merges_back_into_its_variants(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = _read(SAMPLE)
    halves = [sample["results"][:5], sample["results"][5:]]
    for index, results in enumerate(halves):
        write_document(tmp_path / f"{index}.json", {**sample, "results": results, "variants": variant_summaries(results)})
    _merge(tmp_path / "0.json", tmp_path / "1.json", "--out", tmp_path / "run.json", capsys=capsys)
    merged = _read(tmp_path / "run.json")
    assert merged["variants"] == sample["variants"] and merged["results"] == sample["results"]


def test_the_shards_ocs_weights_are_checked_and_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = _read(SAMPLE)
    weighted = variant_summaries(sample["results"], (1, 0, 2, 1))
    write_document(tmp_path / "weighted.json", {**sample, "variants": weighted})
    error = _refused(["merge", tmp_path / "weighted.json", "--out", tmp_path / "run.json"], capsys)
    assert "with the OCS weights 1,1,1,1: pass the shards' --netzip-ocs-weights as --ocs-weights" in error
    _merge(tmp_path / "weighted.json", "--ocs-weights", "1,0,2,1", "--out", tmp_path / "run.json", capsys=capsys)
    assert _read(tmp_path / "run.json")["variants"] == json.loads(json.dumps(weighted))


def test_machines_that_differ_are_noted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = _read(SAMPLE)
    first = {**sample, "results": sample["results"][:1], "variants": variant_summaries(sample["results"][:1])}
    second = {**sample, "results": sample["results"][1:], "variants": variant_summaries(sample["results"][1:]),
              "machine": {**sample["machine"], "cpu": "Other CPU"}}
    write_document(tmp_path / "a.json", first)
    write_document(tmp_path / "b.json", second)
    out = _merge(tmp_path / "a.json", tmp_path / "b.json", "--out", tmp_path / "run.json", capsys=capsys)
    assert out.splitlines()[0] == (
        f"netzip: the shards ran on different machines (cpu {sample['machine']['cpu']!r} in {tmp_path / 'a.json'}, "
        f"'Other CPU' in {tmp_path / 'b.json'}); the merged run records {tmp_path / 'a.json'}'s: timings compare "
        "well only on like machines"
    )
    assert _read(tmp_path / "run.json")["machine"] == sample["machine"]


def test_what_cannot_be_merged_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_json, not_a_run, old = tmp_path / "bad.json", tmp_path / "list.json", tmp_path / "old.json"
    bad_json.write_text("{not json")
    not_a_run.write_text("[1, 2]")
    old.write_text(json.dumps({"version": 0, "results": []}))
    broken = tmp_path / "broken.json"
    write_document(broken, {"version": 1, "machine": {}, "results": [{"test": "t", "metrics": {}}]})
    out = ["--out", tmp_path / "run.json"]
    cases: list[tuple[list[str | Path], str]] = [
        ([*out], "nothing to merge: name the run documents (--netzip-json files) or saved runs of the shards"),
        ([SAMPLE], "merge writes the merged run to --out FILE or saves it with --save NAME: give one"),
        ([SAMPLE, "missing.json", *out], "cannot read the run missing.json: no such file"),
        ([SAMPLE, "main", *out, "--storage", tmp_path / "runs"],
         f"'main' is neither a file nor a saved run (no saved run in {tmp_path / 'runs'})"),
        ([bad_json, *out], f"the saved run {bad_json} is not valid JSON (*"),
        ([not_a_run, *out], f"{not_a_run} is not a pytest-netzip run (no list of results)"),
        ([old, *out], f"{old} has schema version 0; this pytest-netzip reads version 1"),
        ([broken, *out], f"{broken} holds a result that is not an item's record (test, model, device, compressor, "
                         "metrics and reference.metrics): {'test': 't', 'metrics': {}}"),
        ([SAMPLE, SAMPLE, *out], f"{SAMPLE} is named twice: each shard's run is merged once"),
        ([SAMPLE, "--save", "latest"], "a run cannot be named 'latest': it would read as a counter or as the latest run"),
        ([SAMPLE, "--out", tmp_path], f"cannot write the merged run to {tmp_path}: *"),
        ([SAMPLE, "--out", bad_json / "run.json"], f"cannot write the merged run to {bad_json / 'run.json'}: *"),
        ([SAMPLE, "--save", "main", "--storage", bad_json], f"the storage folder {bad_json} is a file"),
    ]
    for argv, expected in cases:
        error = _refused(["merge", *argv], capsys)
        assert error.rstrip("\n") == f"netzip: error: {expected}" or (
            expected.endswith("*") and error.startswith(f"netzip: error: {expected[:-1]}")), (argv, error)
    assert not (tmp_path / "run.json").exists()

    Storage(tmp_path / "runs").save("main", _read(SAMPLE))
    copy = tmp_path / "copy.json"
    write_document(copy, _read(SAMPLE))
    error = _refused(["merge", "main", copy, "--storage", tmp_path / "runs", *out], capsys)
    assert error.startswith(f"netzip: error: cannot merge {tmp_path / 'runs' / '0001_main.json'} and {copy}: both hold "
                            "test_compression.py::test_half_precision[fp16-cpu]; shards of one run each run other tests")
    assert main(["merge", str(SAMPLE), "--ocs-weights", "1,1", *map(str, out)]) == 2
    assert "argument --ocs-weights: takes four finite numbers >= 0" in capsys.readouterr().err


def test_python_m_pytest_netzip_merge_does_not_import_torch(tmp_path: Path) -> None:
    sample = _read(SAMPLE)
    for index, results in enumerate([sample["results"][:5], sample["results"][5:]]):
        write_document(tmp_path / f"{index}.json", {**sample, "results": results, "variants": variant_summaries(results)})
    check = (
        "import sys, runpy\n"
        "sys.argv = ['pytest_netzip', 'merge', '0.json', '1.json', '--out', 'run.json']\n"
        "try:\n"
        "    runpy.run_module('pytest_netzip', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env={**os.environ, "PYTHONPATH": path},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "netzip: merged 2 runs (11 results) into run.json\n"
    assert _read(tmp_path / "run.json")["variants"] == sample["variants"]


def test_shards_of_other_commits_are_refused_whatever_they_hold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = _read(SAMPLE)
    other = [{**record, "model": "OtherNet"} for record in sample["results"][5:]]  # no reference in common
    write_document(tmp_path / "a.json", {**sample, "results": sample["results"][:5], "variants": None})
    write_document(tmp_path / "b.json", {**sample, "results": other, "variants": None, "commit": "c0ffee1"})
    error = _refused(["merge", tmp_path / "a.json", tmp_path / "b.json", "--out", tmp_path / "run.json"], capsys)
    assert error == (f"netzip: error: cannot merge {tmp_path / 'a.json'} and {tmp_path / 'b.json'}: they were run on "
                     "other commits ('d92c6bb' and 'c0ffee1'); shards of one run share one\n")
