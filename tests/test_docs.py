"""The docs as a user follows them: every code block runs, or is checked where running it here makes no sense.

See ``docs/pages.py`` for how a page's blocks become a project and its commands; ``docs/record.py``
rewrites the generated references and the recorded outputs these tests compare with.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from docs.pages import ROOT, Block, Page, Step, missing_lines, pages, run, steps
from docs.record import stale_pages

PAGES = pages()
CI_SCRIPT = (ROOT / ".ci" / "run").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _page_id(page: Page) -> str:
    return str(page.path.relative_to(ROOT))


def test_the_readme_is_short_and_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme.count("\n") <= 250
    assert "python -m pip install -e '.[example]' && pytest --netzip example_project" in readme
    assert "python -m pip install -e '.[test]' && pytest" in readme
    assert "## Quick start" in readme


def test_the_readmes_quick_start_is_the_docs_one() -> None:
    for page in PAGES:
        if page.path.name in ("README.md", "getting-started.md"):  # shown inline, so that GitHub shows it too
            (conftest,) = [block for block in page.blocks if block.file == "conftest.py"]
            assert conftest.body == (ROOT / "docs" / "projects" / "quickstart" / "conftest.py").read_text()
    readme = next(page for page in PAGES if page.path.name == "README.md")
    table = readme.blocks[0]  # the table at the top: what the quick start's first run prints
    getting_started = next(page for page in PAGES if page.path.name == "getting-started.md")
    first_run = next(block for block in getting_started.blocks if block.recorded_command == "pytest --netzip")
    assert table.lang == "text" and not missing_lines(table.body, first_run.body)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_output_shown_is_recorded_from_a_command_of_its_page(page: Page) -> None:
    text = page.path.read_text().split("\n")
    generated = [index + 1 for index, line in enumerate(text) if line.startswith(("<!-- generated:", "<!-- end generated"))]
    regions = list(zip(generated[::2], generated[1::2]))
    shown = {step.shown.line for step, _ in steps(page, ROOT) if step.shown is not None}
    for block in page.blocks:
        if block.lang != "text" or (page.path.name == "README.md" and block is page.blocks[0]):
            continue
        in_region = any(start < block.line < end for start, end in regions)
        assert in_region or block.line in shown, (
            f"{block.where}: an output block must be titled '$ COMMAND' after a block running COMMAND, so that "
            "python docs/record.py records it and the tests compare it"
        )


def test_help_texts_hold_no_markup(tmp_path: Path) -> None:
    from docs.record import _help

    done = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=tmp_path, capture_output=True, text=True)
    netzip = done.stdout[done.stdout.index("compressed-model budgets (pytest-netzip):"):]
    texts = [netzip, _help([]), *(_help([command]) for command in ("report", "compare", "merge"))]
    for text in texts:
        assert "``" not in text and ":func:" not in text and ":class:" not in text, text


def test_the_generated_references_are_current() -> None:
    assert stale_pages() == [], "run python docs/record.py"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_block_is_of_a_kind_the_tests_check(page: Page) -> None:
    known = {"python", "bash", "text", "toml", "yaml", "json"}
    for block in page.blocks:
        assert block.lang in known, f"{block.where}: a ```{block.lang} block: give it one of {sorted(known)}"
    files = [block for block in page.blocks if block.file]
    # steps() gives each command its rule, and raises naming a command no rule covers
    commands = [step for step, _ in steps(page, ROOT) if step.rule in ("run", "python")]
    if files:
        last_file = max(block.line for block in files)
        assert any(step.block.line > last_file for step in commands), (
            f"{page.path.name}: the file written at line {last_file} is never run by a command after it"
        )


@pytest.mark.parametrize("page", [page for page in PAGES if any(b.included for b in page.blocks)], ids=_page_id)
def test_included_files_exist_and_are_run_by_the_suite(page: Page) -> None:
    for block in page.blocks:
        for included in block.included:
            path, _, section = included.partition(":")
            assert (ROOT / path).is_file(), f"{block.where}: includes {path}, which does not exist"
            run_by_tests = path.startswith(("example_project/", "tests/")) or block.file  # a page project runs it
            assert run_by_tests, f"{block.where}: {path} is run by no test"
            if section:
                assert f"--8<-- [start:{section}]" in (ROOT / path).read_text(), f"{block.where}: no {included}"


def _check_install(step: Step) -> None:
    words = shlex.split(step.command)
    words = words[words.index("install") + 1:]
    if words[:1] == ["-r"]:  # a requirements file of this repository
        assert len(words) == 2 and (ROOT / words[1]).is_file(), f"{step.block.where}: no requirements file {words[1:]}"
        return
    requirements = [word for word in words if not word.startswith("-")]
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    for requirement in requirements:
        match = re.fullmatch(r"(?P<where>\.|dist/pytest_netzip-[\w.]+-py3-none-any\.whl)(?:\[(?P<extras>[\w,]+)\])?",
                             requirement)
        assert match, f"{step.block.where}: {requirement!r} is not this project (a clone's folder or its wheel)"
        asked = set((match.group("extras") or "").split(",")) - {""}
        assert asked <= extras, f"{step.block.where}: no extra {sorted(asked - extras)} in pyproject.toml"
        if match.group("where") != ".":
            wheel = ROOT / match.group("where")
            assert wheel.is_file(), f"{step.block.where}: the wheel command before it made no {wheel.name}"
            with zipfile.ZipFile(wheel) as archive:
                metadata = next(name for name in archive.namelist() if name.endswith("METADATA"))
                assert "Provides-Extra: report" in archive.read(metadata).decode()


def _check_pytest_options(step: Step, command: str, pytester: pytest.Pytester) -> None:
    """A pytest command's options are ones pytest and the plugin take (parsed as pytest parses them)."""
    words = [word for word in shlex.split(command)[1:] if not word.startswith(("example_project", "-k"))]
    try:
        pytester.parseconfig(*words)
    except pytest.UsageError as exc:
        pytest.fail(f"{step.block.where}: {command!r}: {exc}")


@pytest.mark.parametrize("page", [page for page in PAGES if steps(page, ROOT)], ids=_page_id)
def test_the_commands_of_a_page_do_what_it_shows(page: Page, tmp_path: Path, pytester: pytest.Pytester) -> None:
    for step, files in steps(page, tmp_path):
        if step.rule in ("run", "python", "wheel"):
            run(step, files, tmp_path)
            if step.shown is not None:
                missing = missing_lines(step.shown.body, step.output)
                assert not missing, (
                    f"{step.shown.where}: `{step.command}` no longer prints these lines (run python docs/record.py "
                    f"if the change is right):\n" + "\n".join(missing) + f"\n--- it printed:\n{step.output}"
                )
            else:
                assert step.status == 0, f"{step.block.where}: `{step.command}` failed:\n{step.output}"
        elif step.rule == "install":
            _check_install(step)
        elif step.rule == "ci":
            assert any(line.strip().startswith(step.command) for line in CI_SCRIPT.splitlines()), (
                f"{step.block.where}: .ci/run does not run `{step.command}`"
            )
        elif step.rule == "example":
            _check_pytest_options(step, step.command, pytester)
        elif step.rule == "benchmark":
            script = shlex.split(step.command)[1]
            done = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True)
            assert done.returncode == 0, f"{step.block.where}: {script} --help: {done.stderr}"
        else:
            assert step.rule == "offline" and "--index-url https://download.pytorch.org/whl/cpu" in step.command


def _ci_commands(block: Block) -> list[str]:
    """The shell lines of a CI file's steps (GitHub's ``run:``, GitLab's ``script:``)."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("run", "script"):
                    for text in value if isinstance(value, list) else [value]:
                        found.extend(Block(block.page, block.line, "bash", "", str(text)).commands())
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(block.body))
    return found


@pytest.mark.parametrize("page", [page for page in PAGES if any(b.lang in ("yaml", "toml") for b in page.blocks)],
                         ids=_page_id)
def test_ci_files_and_settings_name_real_options(page: Page, pytester: pytest.Pytester) -> None:
    ini_keys = {match for match in re.findall(r"`(netzip\w*)`", (ROOT / "docs" / "cli.md").read_text())}
    for block in page.blocks:
        if block.lang == "toml":
            settings = tomllib.loads(block.body).get("tool", {}).get("pytest", {}).get("ini_options", {})
            unknown = {key for key in settings if key.startswith("netzip") and key not in ini_keys}
            assert not unknown, f"{block.where}: no ini key {sorted(unknown)}"
        if block.lang != "yaml":
            continue
        for command in _ci_commands(block):
            for part in re.split(r"\s*(?:&&|;|\bthen\b|\belse\b)\s*", command):
                if part.startswith("pytest "):
                    _check_pytest_options(Step(block, part, "run", ROOT), part, pytester)


def test_every_built_in_metric_is_defined_on_the_metrics_page_or_one_it_points_to() -> None:
    from pytest_netzip.metrics import BUILTIN_METRICS

    metrics_page = (ROOT / "docs" / "metrics.md").read_text()
    pointed = [name for name in ("tasks", "robustness", "measuring") if f"]({name}.md" in metrics_page]
    text = metrics_page + "".join((ROOT / "docs" / f"{name}.md").read_text() for name in pointed)
    assert [metric.name for metric in BUILTIN_METRICS if f"`{metric.name}`" not in text] == []
