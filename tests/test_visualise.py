"""The report (plots and a self-contained index.html from a run document), the Pareto front, and the CLI
``python -m pytest_netzip report|compare``."""

from __future__ import annotations

import base64
import html
import importlib.util
import json
import math
import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_netzip.errors import ReportError
from pytest_netzip.output import visualise
from pytest_netzip.output.cli import main
from pytest_netzip.output.plots import pareto_front
from pytest_netzip.output.storage import Storage, write_document
from pytest_netzip.output.visualise import require_matplotlib, write_report

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(__file__).resolve().parent / "data" / "example_run.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = ("metrics", "accuracy_vs_size", "accuracy_vs_latency", "ratios")


def _document(variants: list[dict[str, Any]], results: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"version": 1, "created": "2026-11-29T08:00:00+00:00", "commit": "abc1234",
            "machine": {"python": "3.11.7", "cpu": "Test CPU", "cuda": []}, "results": results or [],
            "variants": variants}


def _variant(compressor: str, model: str = "Net", device: str = "cpu", **metrics: Any) -> dict[str, Any]:
    return {"model": model, "device": device, "compressor": compressor, "metrics": metrics}


def _full(model: str = "Net", device: str = "cpu") -> list[dict[str, Any]]:
    """Every kind of metric: the four ratios, sizes over two orders of magnitude, latency, dicts, n/a, a custom one."""
    ratios = {"performance_ratio": 1.0, "speedup": 1.0, "size_ratio": 1.0, "efficiency_ratio": 1.0}
    return [
        _variant("reference", model, device, top1=0.9, size_bytes=4_000_000, latency_p50_ms=2.0, ocs=0.0,
                 class_accuracy={"0": 0.9, "1": 0.9}, custom_score=3.5, **ratios),
        _variant("int8_dynamic", model, device, top1=0.89, size_bytes=1_000_000, latency_p50_ms=1.0,
                 performance_ratio=0.99, speedup=2.0, speedup_interval={"low": 1.8, "high": 2.2}, size_ratio=4.0,
                 efficiency_ratio=1.5, ocs=3.4, energy_mj_per_sample=None),
        _variant("prune_l1(amount=0.5)", model, device, top1=0.85, size_bytes=40_000, latency_p50_ms=2.5,
                 performance_ratio=0.94, speedup=0.8, size_ratio=100.0, efficiency_ratio=0.9, ocs=92.0),
        _variant("fp16", model, device, top1=0.9, size_ratio=2.0, performance_ratio=1.0),
    ]


def _check_png(path: Path) -> tuple[int, int]:
    """The width and height of the PNG at ``path``, after checking it is one and not a stub."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk, first after the signature
    assert width > 100 and height > 100, path
    assert len(data) > 10_000, path
    return width, height


def _embedded(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_the_sample_run_gives_every_plot_and_a_self_contained_page(tmp_path: Path) -> None:
    notes = write_report(json.loads(SAMPLE.read_text()), tmp_path / "report")
    assert notes == []
    pictures = sorted((tmp_path / "report").glob("*.png"))
    assert [path.name for path in pictures] == sorted(f"{kind}_DigitsCNN_cpu.png" for kind in PLOTS)
    for path in pictures:
        _check_png(path)
    page = (tmp_path / "report" / "index.html").read_text()
    assert sorted(_embedded(page)) == sorted(path.read_bytes() for path in pictures)
    assert re.findall(r'(?:src|href)="([^"]*)"', page) == [f"data:image/png;base64,{base64.b64encode(p).decode()}"
                                                         for p in _embedded(page)]
    assert "<script" not in page
    for text in ("d92c6bb", "2026-11-29T08:35:13+00:00", "Intel(R) Xeon(R) Processor", "DigitsCNN on cpu", "11 passed"):
        assert text in page
    header = re.search(r"<thead>(.*?)</thead>", page).group(1)
    assert header.index("reference") < header.index("bf16") < header.index("int8_dynamic")
    assert "0.9750<br><small>(+0.0028)</small>" in page  # int8_dynamic's top1, its change against the reference
    assert "156.43 kB" in page
    assert "<td>0.958 (P,C)</td>" in page and "<td>0.00562 (P,S)</td>" in page  # OCS of different ratios, marked
    assert "ocs (P,S,C,E): which of the performance" in page


def test_a_hand_made_run_with_two_devices_draws_each(tmp_path: Path) -> None:
    notes = write_report(_document(_full("Net", "cpu") + _full("Net", "cuda:0")), tmp_path)
    assert notes == []
    for device in ("cpu", "cuda-0"):
        for kind in PLOTS:
            _check_png(tmp_path / f"{kind}_Net_{device}.png")
    page = (tmp_path / "index.html").read_text()
    assert len(_embedded(page)) == 8
    assert "custom_score" in page and "3.5" in page  # a metric the registry does not know, formatted plainly
    assert "class_accuracy" not in page  # dict-valued: neither a column nor a bar


def test_a_run_without_latency_or_ratios_gets_notes_instead(tmp_path: Path) -> None:
    document = _document([_variant("reference", top1=0.9, size_bytes=1000),
                          _variant("fp16", top1=0.89, size_bytes=500)])
    notes = write_report(document, tmp_path)
    assert notes == [
        "no accuracy-vs-latency plot for Net on cpu: no variant measured latency_p50_ms",
        "no radar plot for Net on cpu: it needs three of performance_ratio, speedup, size_ratio, efficiency_ratio; "
        "the variants measured none of them",
    ]
    drawn = sorted(path.name for path in tmp_path.glob("*.png"))
    assert drawn == ["accuracy_vs_size_Net_cpu.png", "metrics_Net_cpu.png"]
    page = (tmp_path / "index.html").read_text()
    assert all(note in page for note in notes)


@pytest.mark.parametrize(
    ("variants", "note"),
    [
        ([_variant("reference", size_bytes=10), _variant("fp16", size_bytes=5)],
         "no accuracy-vs-size plot for Net on cpu: no variant measured top1, f1, map or agreement"),
        ([_variant("reference", top1=0.9, size_bytes=10), _variant("fp16", top1=0.9)],
         "no accuracy-vs-size plot for Net on cpu: no compressed variant measured both top1 and size_bytes"),
        ([_variant("reference", performance_ratio=1.0, speedup=1.0, size_ratio=1.0), _variant("fp16", top1=0.9)],
         "no radar plot for Net on cpu: no compressed variant measured performance_ratio, speedup, size_ratio"),
        ([_variant("reference", class_accuracy={"0": 1.0})],
         "no bar chart for Net on cpu: no variant measured a numeric metric"),
    ],
)
def test_each_missing_metric_is_named(tmp_path: Path, variants: list[dict[str, Any]], note: str) -> None:
    assert note in write_report(_document(variants), tmp_path)


def test_a_size_from_size_ratio_and_the_first_accuracy_measured(tmp_path: Path) -> None:
    """fp16 measured only size_ratio: its size is the reference's over it; agreement stands in for top1."""
    document = _document([_variant("reference", agreement=1.0, size_bytes=1000),
                          _variant("fp16", agreement=0.99, size_ratio=2.0)])
    assert "accuracy-vs-size" not in " ".join(write_report(document, tmp_path))
    _check_png(tmp_path / "accuracy_vs_size_Net_cpu.png")


def test_text_from_the_run_is_escaped(tmp_path: Path) -> None:
    document = _document([_variant("reference", top1=0.9), _variant("<script>alert(1)</script>", top1=0.8)])
    document["commit"] = "a&b"
    write_report(document, tmp_path)
    page = (tmp_path / "index.html").read_text()
    assert "<script" not in page
    assert "&lt;script&gt;alert(" in page and "a&amp;b" in page


@pytest.mark.parametrize("text", ["$$", "x$^$y", "tagged(tag='$\\frac{$')"])
def test_dollars_are_drawn_as_written_not_as_mathtext(tmp_path: Path, text: str) -> None:
    variants = _full(model=f"Net{text}")
    variants[1]["compressor"] = text
    assert write_report(_document(variants), tmp_path) == []
    assert len(list(tmp_path.glob("*.png"))) == 4
    assert html.escape(text) in (tmp_path / "index.html").read_text()


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e308, -1e101, 5e-324])
def test_values_that_cannot_be_plotted_are_left_out_and_noted(tmp_path: Path, value: float) -> None:
    variants = _full()
    for name in ("speedup", "size_bytes", "top1"):
        variants[2]["metrics"][name] = value  # prune_l1's
    notes = write_report(_document(variants), tmp_path)
    (note,) = [note for note in notes if note.startswith("left out")]
    assert note.startswith("left out of the plots of Net on cpu (not finite, or not 0 and of magnitude outside "
                           "1e-100 .. 1e+100): ")
    assert note.count("prune_l1(amount=0.5) ") == 3
    assert all(note.startswith("left out") for note in notes)  # every plot drawn, without prune_l1's values
    assert len(list(tmp_path.glob("*.png"))) == 4
    assert note in (tmp_path / "index.html").read_text()


def test_a_plot_that_fails_is_noted_and_the_others_drawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise ValueError("cannot draw this\nsecond line")

    monkeypatch.setattr(visualise, "_KINDS", (visualise._KINDS[0]._replace(draw=broken), *visualise._KINDS[1:]))
    notes = write_report(_document(_full()), tmp_path)
    assert notes == ["no bar chart for Net on cpu: drawing it failed (ValueError: cannot draw this)"]
    assert sorted(path.name.split("_Net")[0] for path in tmp_path.glob("*.png")) == sorted(PLOTS[1:])
    assert notes[0] in (tmp_path / "index.html").read_text()


def test_models_with_one_file_name_get_distinct_files(tmp_path: Path) -> None:
    write_report(_document([_variant("reference", "a b", top1=0.9), _variant("reference", "a-b", top1=0.8)]), tmp_path)
    drawn = sorted(path.name for path in tmp_path.glob("metrics_*.png"))
    assert drawn == ["metrics_a-b_cpu.png", "metrics_a-b_cpu_2.png"]


def test_a_value_over_budget_is_marked(tmp_path: Path) -> None:
    budget = {"marker": "accuracy_drop", "keyword": "max", "metric": "top1", "passed": False}
    record = {"model": "Net", "device": "cpu", "compressor": "fp16", "outcome": "failed", "budgets": [budget]}
    junk: list[Any] = ["not a record", {"budgets": None}]  # hand-made documents: ignored, not a crash
    write_report(_document([_variant("reference", top1=0.9), _variant("fp16", top1=0.5)], [record, *junk]), tmp_path)
    page = (tmp_path / "index.html").read_text()
    assert '<td class="fail" title="over budget">0.5000 *' in page
    assert "1 failed" in page


def test_a_run_saved_before_documents_had_variants_is_merged_from_its_records(tmp_path: Path) -> None:
    document = json.loads(SAMPLE.read_text())
    del document["variants"]
    assert write_report(document, tmp_path) == []
    assert len(list(tmp_path.glob("*.png"))) == 4


def test_an_empty_run_still_gets_a_page(tmp_path: Path) -> None:
    assert write_report(_document([]), tmp_path / "new" / "folder") == ["the run has no results to draw"]
    assert "the run has no results to draw" in (tmp_path / "new" / "folder" / "index.html").read_text()


@pytest.mark.parametrize("document", [{"foo": 1}, [], {"variants": [{"model": "Net"}]}, {"variants": "x"}])
def test_not_a_run_document(tmp_path: Path, document: Any) -> None:
    with pytest.raises(ReportError, match="not a pytest-netzip run document"):
        write_report(document, tmp_path)


def test_without_matplotlib_the_error_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ReportError, match=re.escape("pip install matplotlib (the plugin's report extra)")):
        require_matplotlib()  # what the plugin can check before the tests run
    with pytest.raises(ReportError, match=re.escape("pip install matplotlib (the plugin's report extra)")):
        write_report(_document(_full()), tmp_path)
    assert not list(tmp_path.iterdir())


def test_the_users_matplotlib_settings_are_left_alone(tmp_path: Path) -> None:
    import matplotlib

    with matplotlib.rc_context({"lines.linewidth": 7.0, "axes.facecolor": "black"}):
        write_report(_document(_full()), tmp_path)
        assert matplotlib.rcParams["lines.linewidth"] == 7.0
        assert matplotlib.rcParams["axes.facecolor"] == "black"


@pytest.mark.parametrize(
    ("points", "front"),
    [
        ([], []),
        ([(1.0, 0.5)], [0]),
        ([(3.0, 0.9), (1.0, 0.5), (2.0, 0.8)], [1, 2, 0]),  # each costlier point is more valuable: all on it
        ([(1.0, 0.9), (2.0, 0.8), (3.0, 0.95)], [0, 2]),  # (2, 0.8) costs more than (1, 0.9) and is worth less
        ([(1.0, 0.8), (1.0, 0.9)], [1]),  # equal cost: the more valuable beats the other
        ([(1.0, 0.9), (2.0, 0.9)], [0]),  # equal value: the cheaper beats the other
        ([(1.0, 0.9), (1.0, 0.9), (0.5, 0.1)], [2, 0, 1]),  # equal points do not beat each other
    ],
)
def test_the_pareto_front(points: list[tuple[float, float]], front: list[int]) -> None:
    assert pareto_front(points) == front


# The command line


def _modified_sample(tmp_path: Path) -> Path:
    """The sample run with int8_dynamic's top1 lower, fp16's OCS from a speedup too, bf16 gone and a new compressor."""
    document = json.loads(SAMPLE.read_text())
    variants = document["variants"]
    next(v for v in variants if v["compressor"] == "int8_dynamic")["metrics"]["top1"] = 0.97
    fp16 = next(v for v in variants if v["compressor"] == "fp16")
    fp16["metrics"].update(speedup=0.5, ocs=fp16["metrics"]["ocs"] - 0.5)
    fp16["ocs_ratios"] = ["performance_ratio", "speedup", "size_ratio"]
    document["variants"] = [v for v in variants if v["compressor"] != "bf16"] + [
        _variant("lowrank", "DigitsCNN", top1=0.9)]
    path = tmp_path / "b.json"
    write_document(path, document)
    return path


def test_cli_report_from_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(SAMPLE), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out == f"netzip: report written to {tmp_path / 'out' / 'index.html'}\n"
    assert len(list((tmp_path / "out").glob("*.png"))) == 4


def test_cli_report_from_a_saved_run_prints_the_notes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Storage(tmp_path / "runs").save("main", _document([_variant("reference", top1=0.9, size_bytes=10),
                                                       _variant("fp16", top1=0.9, size_bytes=5)]))
    for name in ("main", "latest", "1"):
        assert main(["report", name, "--storage", str(tmp_path / "runs"), "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name / "index.html").is_file()
    assert "netzip: no accuracy-vs-latency plot for Net on cpu" in capsys.readouterr().out


def test_cli_compare_shows_both_values_and_the_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(SAMPLE), str(_modified_sample(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"A: {SAMPLE} (created 2026-11-29T08:35:13+00:00, commit d92c6bb)\nB: ")
    assert re.search(r"^int8_dynamic\n  top1 +0\.9750 +0\.9700 +-0\.0050 worse$", out, re.MULTILINE)
    assert re.search(r"^  size_bytes +156\.43 kB +156\.43 kB *$", out, re.MULTILINE)  # reference: unchanged
    assert re.search(r"^bf16 \(only in A\)\n  top1 +0\.9750 +-$", out, re.MULTILINE)
    assert re.search(r"^lowrank \(only in B\)\n  top1 +- +0\.9000$", out, re.MULTILINE)
    assert re.search(r"^  ocs +0\.958 +0\.458 +not comparable: A combines P,C, B P,S,C$", out, re.MULTILINE)
    assert re.search(r"^  ocs +1\.69 +1\.69 *$", out, re.MULTILINE)  # int8_dynamic: the same ratios
    assert "class_accuracy" not in out


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line ``main(argv)`` writes to stderr, having returned 2 and written nothing to stdout."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.count("\n") == 1
    return captured.err


def test_cli_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_json, old, not_a_run = tmp_path / "bad.json", tmp_path / "old.json", tmp_path / "list.json"
    bad_json.write_text("{not json")
    old.write_text(json.dumps({"version": 0, "results": []}))
    not_a_run.write_text("[1, 2]")
    out = ["--out", str(tmp_path / "out")]
    assert "cannot read the run missing.json: no such file" in _fails(["report", "missing.json", *out], capsys)
    assert "is not valid JSON" in _fails(["report", str(bad_json), *out], capsys)
    assert "has schema version 0" in _fails(["report", str(old), *out], capsys)
    assert "is not a pytest-netzip run" in _fails(["compare", str(not_a_run), str(SAMPLE)], capsys)
    storage = ["--storage", str(tmp_path / "runs")]
    assert "'main' is neither a file nor a saved run" in _fails(["report", "main", *storage, *out], capsys)
    Storage(tmp_path / "runs").save("main", json.loads(SAMPLE.read_text()))
    assert "no saved run 'nope'" in _fails(["compare", "main", "nope", *storage], capsys)
    (tmp_path / "file").write_text("")
    assert "cannot write the report" in _fails(["report", str(SAMPLE), "--out", str(tmp_path / "file")], capsys)


def test_cli_report_of_a_run_with_dollars_and_huge_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    variants = _full()
    variants[1]["compressor"] = "tagged(tag='$$')"
    variants[2]["metrics"]["speedup"] = 1e308
    write_document(tmp_path / "run.json", _document(variants))
    assert main(["report", str(tmp_path / "run.json"), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        ("netzip: left out of the plots of Net on cpu (not finite, or not 0 and of magnitude outside 1e-100 .. 1e+100): "
         "prune_l1(amount=0.5) speedup 1e+308"),
        f"netzip: report written to {tmp_path / 'out' / 'index.html'}",
    ]
    assert len(list((tmp_path / "out").glob("*.png"))) == 4


def test_cli_refuses_a_run_holding_nan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run.json").write_text(json.dumps(_document(_full())).replace("0.89", "NaN"))
    error = _fails(["report", str(tmp_path / "run.json"), "--out", str(tmp_path / "out")], capsys)
    assert error == f"netzip: error: the saved run {tmp_path / 'run.json'} holds NaN, which is not JSON; delete it or save a new run\n"
    assert not (tmp_path / "out").exists()


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["report", str(SAMPLE)]) == 2  # no --out
    assert "required: --out" in capsys.readouterr().err
    assert main(["--help"]) == 0


def test_cli_report_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert "pip install matplotlib (the plugin's report extra)" in _fails(["report", str(SAMPLE), "--out", str(tmp_path)], capsys)


def _python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python *args`` in a fresh process that imports this checkout's pytest_netzip."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, *args], cwd=cwd, env={**os.environ, "PYTHONPATH": path},
                          capture_output=True, text=True, timeout=300)


def test_python_m_pytest_netzip_report(tmp_path: Path) -> None:
    done = _python("-m", "pytest_netzip", "report", str(SAMPLE), "--out", "report", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"netzip: report written to {Path('report') / 'index.html'}\n"
    assert (tmp_path / "report" / "index.html").is_file()


def test_the_report_and_the_cli_do_not_import_torch(tmp_path: Path) -> None:
    check = (
        "import sys\n"
        "import pytest_netzip.output.cli, pytest_netzip.output.visualise\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib on import'\n"
        f"code = pytest_netzip.output.cli.main(['report', {str(SAMPLE)!r}, '--out', 'report'])\n"
        f"code += pytest_netzip.output.cli.main(['compare', {str(SAMPLE)!r}, {str(SAMPLE)!r}])\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "sys.exit(code)\n"
    )
    done = _python("-c", check, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_the_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("screenshot_report", ROOT / "benchmarks" / "screenshot_report.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    chromium = script.find_chromium()
    if chromium is None:
        pytest.skip(f"no Chromium on PATH (looked for {', '.join(script.CHROMIUM_NAMES)})")
    picture = script.screenshot(SAMPLE, tmp_path, chromium, "1280,2400")
    assert _check_png(picture) == (1280, 2400)
    from PIL import Image

    colours = Image.open(picture).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200  # the table and plots drawn, not a blank or error page


def _report_session(pytester: pytest.Pytester, compressors: str, header: str = "") -> pytest.RunResult:
    """``pytest --netzip --netzip-report report`` on a test gating ``compressors`` (source), after ``header``."""
    pytester.makepyfile(test_model=f"""
        import pytest
        {header}

        @pytest.mark.netzip(compressors=[{compressors}])
        @pytest.mark.accuracy_drop(max=0.01)
        @pytest.mark.size_ratio(min=0.5)
        def test_deployable():
            pass
    """)
    return pytester.runpytest("--netzip", "--netzip-report", "report")


def _row(page: str, metric: str) -> dict[str, str]:
    """The page's cell of ``metric`` for each variant (the first table's), by the variant heading its column."""
    headings = re.findall(r"<th>(.*?)</th>", re.search(r"<thead><tr><th>metric</th>(.*?)</tr></thead>", page).group(1))
    variants = [html.unescape(heading.replace("<wbr>", "")) for heading in headings]
    cells = re.search(rf"<tr><th[^>]*>{metric}</th>(.*?)</tr>", page).group(1)
    return dict(zip(variants, re.findall(r"<td[^>]*>(.*?)</td>", cells), strict=True))


def test_netzip_report_writes_the_page_after_a_session(pytester: pytest.Pytester) -> None:
    from tests.helpers import PROJECT_CONFTEST

    pytester.makeconftest(PROJECT_CONFTEST)
    result = _report_session(pytester, '"fp16", "prune_l1"')
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "netzip: no accuracy-vs-latency plot for Signed on cpu: no variant measured latency_p50_ms*",
        "netzip: report written to *report*index.html",
    ])
    page = (pytester.path / "report" / "index.html").read_text()
    pictures = sorted(path.name for path in (pytester.path / "report").glob("*.png"))
    assert pictures and len(re.findall("data:image/png;base64,", page)) == len(pictures)
    assert _row(page, "top1") == {"reference": "0.9000", "fp16": "0.9000", "prune_l1": "0.9000"}
    assert _row(page, "size_ratio") == {"reference": "1", "fp16": "1.86", "prune_l1": "1"}


def test_netzip_report_of_a_compressor_with_dollars_in_its_id(pytester: pytest.Pytester) -> None:
    from tests.helpers import PROJECT_CONFTEST

    pytester.makeconftest(PROJECT_CONFTEST + """
import dataclasses


@dataclasses.dataclass(frozen=True)
class Tagged(Compressor):
    name = "tagged"
    tag: str = ""

    def transform(self, model, ctx):
        with torch.no_grad():
            model.down.weight.mul_(2)  # the same predictions from other weights
        return model
""")
    result = _report_session(pytester, 'Tagged(tag="$$"), "fp16"', "from conftest import Tagged")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*drawing it failed*")
    result.stdout.fnmatch_lines(["netzip: report written to *report*index.html"])
    page = (pytester.path / "report" / "index.html").read_text()
    assert "tag=&#x27;$$&#x27;)" in page
    # doubled weights keep the predictions and the size
    assert _row(page, "top1") == {"reference": "0.9000", "fp16": "0.9000", "tagged(tag='$$')": "0.9000"}
    assert _row(page, "size_ratio") == {"reference": "1", "fp16": "1.86", "tagged(tag='$$')": "1"}


def test_netzip_report_without_matplotlib_is_a_usage_error(pytester: pytest.Pytester,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    pytester.makepyfile(test_model="def test_nothing():\n    pass\n")
    result = pytester.runpytest("--netzip", "--netzip-report", "report")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--netzip-report: *matplotlib*pip install matplotlib (the plugin's report extra)*"])
