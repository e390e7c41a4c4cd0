"""Rewrite what the docs show of the code: the marker and option references, the CLI's help, recorded outputs.

    python docs/record.py            # the references, and the outputs of the pages' own projects (seconds)
    python docs/record.py --example  # also the example project's outputs (minutes)
    python docs/record.py --benchmarks benchmarks.md  # also rerun the benchmarks (minutes each)
    python docs/record.py --check    # rewrite nothing; exit 1 naming each page whose references are stale

A generated part of a page lies between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``.
A recorded output is a ``text`` block titled ``$ COMMAND · recorded DATE, ...`` (see ``docs/pages.py``).
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import io
import os
import re
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from docs.pages import DOCS, Page, pages, printed, run, steps  # noqa: E402

_REGION = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.DOTALL)


def _table(rows: list[tuple[str, ...]], head: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _params(doc: str) -> dict[str, str]:
    """``:param name: text`` entries of a docstring, continuation lines joined."""
    found: dict[str, str] = {}
    for match in re.finditer(r":param (\w+): (.*?)(?=\n:param |\Z)", doc, re.DOTALL):
        found[match.group(1)] = " ".join(match.group(2).split()).replace("``", "`")
    return found


def markers() -> str:
    """Every marker with its keywords, defaults and meanings, read from the code's own marker signatures."""
    from pytest_netzip.budgets.signatures import THRESHOLD_MARKERS
    from pytest_netzip.markers import NETZIP_KEYWORDS

    parts = ["### `netzip`\n\nMakes the test a netzip test: one item per compressor and device, "
             "with the id `test_name[compressor-device]`.\n\n",
             _table([(f"`{name}`", "required" if text.startswith("required: ") else "`None`",
                      text.removeprefix("required: ").replace("``", "`")) for name, text in NETZIP_KEYWORDS.items()],
                    ("keyword", "default", "meaning"))]
    for name, (parse, _) in THRESHOLD_MARKERS.items():
        doc = inspect.getdoc(parse) or ""
        described = _params(doc)
        rows = []
        for keyword, parameter in inspect.signature(parse).parameters.items():
            if keyword == "registry":
                continue
            if keyword not in described:
                raise SystemExit(f"{parse.__qualname__}'s docstring does not describe its keyword {keyword!r}")
            default = "required" if parameter.default is inspect.Parameter.empty else f"`{_literal(parameter.default)}`"
            rows.append((f"`{keyword}`", default, described[keyword]))
        parts.append(f"\n### `{name}`\n\n{doc.split(chr(10))[0].replace('``', '`')}\n\n")
        parts.append(_table(rows, ("keyword", "default", "passes when / means")))
    return "".join(parts)


def _literal(value: object) -> str:
    """``value`` as a marker keyword is written: strings in double quotes."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def options() -> str:
    """Every ``--netzip-*`` option with its ini key and help, as the plugin registers them."""
    from _pytest.config.argparsing import Parser

    from pytest_netzip.plugin import pytest_addoption

    parser = Parser(_ispytest=True)  # pytest builds its parser so; no public constructor
    pytest_addoption(parser)
    rows = []
    for group in parser._groups:  # pytest keeps its option groups here; there is no public reader
        for option in group.options:
            flag = option.names()[0]
            metavar = option.attrs().get("metavar")
            optional = option.attrs().get("nargs") == "?"
            written = f"{flag} [{metavar}]" if metavar and optional else f"{flag} {metavar}" if metavar else flag
            rows.append((f"`{written}`", f"`{option.dest}`", option.attrs()["help"].replace("%%", "%")))
    return _table(rows, ("option", "ini key", "meaning"))


def cli_help() -> str:
    """``python -m pytest_netzip --help`` and each command's help, as it prints them."""
    commands = re.findall(r"^    (\w+) ", _help([]), re.MULTILINE)
    return "\n".join(
        f'```text title="$ python -m pytest_netzip {" ".join([*argv, "--help"])}"\n{_help(argv)}```\n'
        for argv in ([], *([command] for command in commands))
    )


def _help(argv: list[str]) -> str:
    from pytest_netzip.output.cli import main

    out = io.StringIO()
    os.environ["COLUMNS"] = "100"
    with redirect_stdout(out):
        main([*argv, "--help"])
    return out.getvalue()


GENERATORS = {"markers": markers, "options": options, "cli-help": cli_help}


def refreshed(text: str) -> str:
    """``text`` with every generated region rewritten."""
    return _REGION.sub(lambda match: match.group(1) + GENERATORS[match.group("name")]() + match.group(4), text)


def stale_pages() -> list[Path]:
    """The pages whose generated regions differ from what the code gives now."""
    return [path for path in sorted(DOCS.glob("*.md")) if refreshed(path.read_text()) != path.read_text()]


def record(page: Page, example: bool, benchmarks: bool = False) -> str:
    """``page``'s text with the output of every recorded command it runs rewritten."""
    text = page.path.read_text()
    stamp = f"recorded {datetime.date.today().isoformat()}, {os.cpu_count()} CPU cores"
    recorded = []
    with tempfile.TemporaryDirectory() as project:
        for step, files in steps(page, Path(project)):
            if step.rule in ("run", "python") or (step.rule == "example" and example) or (
                step.rule == "benchmark" and benchmarks
            ):
                run(step, files, Path(project))
                if step.shown is not None:
                    recorded.append(step)
                    print(f"{page.path.name}: recorded {step.command!r} (exit {step.status})")
    lines = text.split("\n")
    for step in reversed(recorded):  # from the bottom up, so that the line numbers above stay true
        block = step.shown
        assert block is not None
        start = block.line - 1
        end = start + 1 + block.body.count("\n")
        body = [f"{block.indent}{line}" for line in printed(step.output).splitlines()]
        lines[start:end] = [f'{block.indent}```text title="$ {step.command} · {stamp}"', *body]
    return "\n".join(lines)


def main() -> int:
    """Rewrite (or, with ``--check``, check) the generated references and recorded outputs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="rewrite nothing; exit 1 if a reference is stale")
    parser.add_argument("--example", action="store_true", help="also record the example project's outputs")
    parser.add_argument("--benchmarks", action="store_true", help="also rerun the benchmarks (minutes each)")
    parser.add_argument("pages", nargs="*", metavar="PAGE", help="record only these pages (file names)")
    args = parser.parse_args()
    if args.check:
        stale = stale_pages()
        for path in stale:
            print(f"{path.relative_to(DOCS.parent)}: generated references are stale: run python docs/record.py")
        return 1 if stale else 0
    for path in sorted(DOCS.glob("*.md")):
        path.write_text(refreshed(path.read_text()))
    for page in pages():
        if args.pages and page.path.name not in args.pages:
            continue
        if any(step.shown for step, _ in steps(page, Path("."))):
            page.path.write_text(record(page, args.example, args.benchmarks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
