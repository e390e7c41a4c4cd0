"""The docs' code blocks as a project: what ``tests/test_docs.py`` runs and ``docs/record.py`` records.

A page is read as a user reads it, top to bottom. A Python block titled with a file name
(```` ```python title="conftest.py" ````) writes that file into the page's project; a ``bash`` block holds
commands, run there in order; a ``text`` block titled ``$ COMMAND`` shows what that command printed.
Commands are run, or checked where running them here makes no sense (an install, a benchmark of
minutes), by the rules of :func:`rule_of`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                    re.MULTILINE | re.DOTALL)
_TITLE = re.compile(r'title="(?P<title>[^"]*)"')
#: A recorded output's title: ``$ COMMAND · recorded DATE, ...``.
_RECORDED = re.compile(r"^\$ (?P<command>.+?)(?: · recorded\b.*)?$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    lang: str
    title: str
    body: str
    indent: str = ""

    @property
    def where(self) -> str:
        """``docs/page.md:LINE``, for messages."""
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def included(self) -> list[str]:
        """The files (``path`` or ``path:section``) a block of pymdownx snippets includes; empty for others."""
        lines = [line.strip() for line in self.body.splitlines() if line.strip()]
        if not lines or not all(line.startswith("--8<-- ") for line in lines):
            return []
        return [line.removeprefix("--8<-- ").strip('"') for line in lines]

    @property
    def file(self) -> str | None:
        """The project file this block writes, or None: a Python block titled with a file name (other titled
        blocks, CI files and settings, are shown, and checked, but not written)."""
        if self.lang != "python" or not self.title or " " in self.title or "." not in self.title or len(self.included) > 1:
            return None
        if self.included and (":" in self.included[0] or self.included[0] == self.title):
            return None  # a part of a file, or a file of the repository shown where it lies
        return self.title

    @property
    def content(self) -> str:
        """What the block shows: its body, or the file it includes."""
        return (ROOT / self.included[0]).read_text() if self.included else self.body

    @property
    def recorded_command(self) -> str | None:
        """The command whose output this block shows, or None."""
        match = _RECORDED.match(self.title) if self.lang == "text" else None
        return match.group("command") if match else None

    def commands(self) -> Iterator[str]:
        """The commands of a shell block: one per line, ``\\``-continued lines joined, comments dropped."""
        joined = self.body.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                yield line


@dataclass
class Page:
    """A page of the docs and its blocks, in order."""

    path: Path
    blocks: list[Block] = field(default_factory=list)

    @property
    def files(self) -> list[Block]:
        """The blocks that write project files."""
        return [block for block in self.blocks if block.file]


def read_page(path: Path) -> Page:
    """The fenced blocks of the Markdown file ``path``."""
    text = path.read_text()
    page = Page(path)
    for match in _FENCE.finditer(text):
        title = _TITLE.search(match.group("info"))
        body = "".join(line[len(match.group("indent")):] + "\n" for line in match.group("body").splitlines())
        page.blocks.append(Block(
            path, text.count("\n", 0, match.start()) + 1, match.group("lang"), title.group("title") if title else "",
            body, match.group("indent"),
        ))
    return page


def pages() -> list[Page]:
    """The README and every page of the docs site."""
    return [read_page(ROOT / "README.md"), *(read_page(path) for path in sorted(DOCS.glob("**/*.md")))]


#: How each kind of command in the docs is checked: run in the page's project, or checked without running.
RULES = {
    "python": "a Python block that writes no file: run as a script in the page's project folder",
    "run": "run in the page's project folder (or the repository, for a page without files); its output is compared "
           "with the output block after it",
    "wheel": "builds the wheel, in the clone (the repository)",
    "install": "an install: its requirement must name this project (a folder, a wheel) with extras pyproject.toml has",
    "ci": "run by .ci/run, which must hold the same command",
    "example": "runs the example project, as tests/test_example_project.py does: checked for valid options",
    "benchmark": "a benchmark of minutes: the script must exist and take --help",
    "offline": "needs a host CI cannot reach (download.pytorch.org): checked for its form only",
}


def rule_of(command: str) -> str:
    """Which of :data:`RULES` checks ``command``; ValueError for a command no rule covers."""
    words = shlex.split(command)
    if words[:3] == ["python", "-m", "pip"]:
        words = ["pip", *words[3:]]
    if words[:2] == ["pip", "wheel"]:
        return "wheel"
    if words[:2] == ["pip", "install"]:
        return "offline" if "download.pytorch.org" in command else "install"
    if words[0] == "pytest" and any(word.startswith("example_project") for word in words):
        return "example"
    if words[0] in ("pytest", "cd") or words[:3] == ["python", "-m", "pytest_netzip"] or (
        words[0] == "python" and len(words) == 2 and words[1].endswith(".py") and "/" not in words[1]
    ):
        return "run"
    if words[0] == "python" and len(words) > 1 and words[1].startswith("benchmarks/"):
        return "benchmark"
    if words[:2] in (["mkdocs", "build"], ["python", "docs/record.py"], ["bash", ".ci/run"]):
        return "ci"
    raise ValueError(f"no rule says how to check the command {command!r} (rules: {', '.join(RULES)})")


_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")


_RULE = re.compile(r"={3,}|_{3,}|-{3,}")


def skeleton(line: str) -> str:
    """``line`` with every number as ``#``, and runs of spaces or of a rule's ``=``/``_``/``-`` as one: what a
    rerun must print again (pytest pads its rules to the width of their text)."""
    return " ".join(_RULE.sub(lambda match: match.group(0)[0] * 3, _NUMBER.sub("#", line)).split())


#: Lines about timings, whose verdicts (``1.11x worse``) a rerun may turn: compared up to their first number.
_TIMED = re.compile(r"seconds|latency|throughput|speedup|energy|power|efficiency")


def _compared(line: str) -> str:
    return skeleton(_NUMBER.split(line)[0]) if _TIMED.search(line) else skeleton(line)


def missing_lines(shown: str, printed: str) -> list[str]:
    """The lines of a shown output (``...`` elides) that the printed output lacks, numbers aside."""
    have = {_compared(line) for line in printed.splitlines()}
    return [line for line in shown.splitlines() if line.strip() not in ("", "...") and _compared(line) not in have]


#: Lines of pytest's header that depend on the machine and folder, left out of recorded outputs.
_MACHINE_LINES = re.compile(r"^(platform |rootdir:|plugins:|cachedir:|configfile:|benchmark: |hypothesis profile|"
                            r"Using --randomly|=+ test session starts =+$)")


def printed(output: str) -> str:
    """What a recorded output block shows of a command's output: all but the machine's header lines."""
    return "\n".join(line.rstrip() for line in output.splitlines() if not _MACHINE_LINES.match(line)).strip() + "\n"


@dataclass
class Step:
    """A command of a page, the rule that checks it, and (once run) its exit status and output."""

    block: Block
    command: str
    rule: str
    cwd: Path
    status: int | None = None
    output: str = ""
    shown: Block | None = None  # the output block after it, if any


def steps(page: Page, project: Path) -> list[tuple[Step, list[Block]]]:
    """The page's commands in order, each with the file blocks to write (into ``project``) before it runs.

    A page without project files runs its commands in the repository.
    """
    cwd = project if page.files else ROOT
    ci_lines = {line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()}
    found: list[tuple[Step, list[Block]]] = []
    pending: list[Block] = []
    for block in page.blocks:
        if block.file:
            pending.append(block)
        elif block.lang == "python" and not block.included:
            found.append((Step(block, "python -", "python", cwd), pending))
            pending = []
        elif block.lang == "bash":
            for line in block.commands():
                ci = line in ci_lines  # .ci/run runs it verbatim: the README's test command
                for command in [line] if ci else line.split(" && "):
                    rule = "ci" if ci else rule_of(command)
                    found.append((Step(block, command, rule, ROOT if rule in ("wheel", "install") else cwd), pending))
                    pending = []
                    if command.startswith("cd "):
                        cwd = (cwd / command[3:].strip()).resolve()
        elif block.recorded_command is not None and found and found[-1][0].command == block.recorded_command:
            found[-1][0].shown = block
    return found


def run(step: Step, files: list[Block], project: Path, timeout: float = 600) -> Step:
    """Write ``files`` into ``project``, run ``step``'s command there; its status and output are set."""
    import os
    import subprocess
    import sys

    for block in files:
        path = project / block.file  # type: ignore[operator]  # file blocks have a file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.content)
    if step.command.startswith("cd "):
        step.status = 0
        return step
    env = {**os.environ, "COLUMNS": "100", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "CI", "BUILD_NUMBER"):  # a CI's pytest prints whole lines
        env.pop(name, None)
    python_block = step.rule == "python"
    done = subprocess.run(step.command if not python_block else [sys.executable, "-"], shell=not python_block,
                          input=step.block.body if python_block else None, cwd=step.cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    step.status, step.output = done.returncode, done.stdout + done.stderr
    return step
