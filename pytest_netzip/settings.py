"""Command-line options and ini keys, resolved once (CLI > ini > default) into frozen Settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_netzip.budgets.regression import RegressionRule
from pytest_netzip.devices import check_device_name
from pytest_netzip.errors import BudgetError
from pytest_netzip.metrics.combined import parse_ocs_weights


@dataclass(frozen=True)
class Settings:
    """What ``--netzip*`` options and ``netzip_*`` ini keys asked for."""

    enabled: bool = False
    compressors: tuple[str, ...] = ()
    devices: tuple[str, ...] = ("cpu",)
    max_samples: int | None = None
    seed: int = 0
    threads: int | None = None
    json_path: Path | None = None
    report_dir: Path | None = None
    strict: bool = False
    ocs_weights: tuple[float, float, float, float] | None = None
    save: str | None = None
    autosave: bool = False
    compare: str | None = None
    compare_fail: tuple[RegressionRule, ...] = ()
    storage: Path = Path(".netzip")
    cache: Path | None = None
    traceback: bool = False


#: Where the resolved settings live: ``config.stash[SETTINGS_KEY]``.
SETTINGS_KEY = pytest.StashKey[Settings]()


def _split(values: list[str] | str | None) -> tuple[str, ...]:
    """``["a,b", "c(x=1, y=2)"]`` -> ``("a", "b", "c(x=1, y=2)")``: commas inside parentheses stay."""
    if not values:
        return ()
    text = ",".join([values] if isinstance(values, str) else values)
    return tuple(part.strip() for part in re.split(r",(?![^(]*\))", text) if part.strip())


def _count(option: str, text: str | None, minimum: int, maximum: int | None = None) -> int | None:
    if text in (None, ""):
        return None
    try:
        number = int(text)
    except ValueError:
        number = minimum - 1
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise pytest.UsageError(f"{option} takes a whole number {bounds}, got {text!r}")
    return number


#: The largest seed torch's generators take (an unsigned 64-bit integer).
MAX_SEED = 2**64 - 1

#: The most CPU threads netzip asks torch for: far more crash it (100,000 segfaults torch 2.14).
MAX_THREADS = 1024


def _weights(values: tuple[str, ...]) -> tuple[float, float, float, float] | None:
    try:
        return parse_ocs_weights(values) if values else None
    except ValueError as exc:
        raise pytest.UsageError(f"--netzip-ocs-weights {exc}") from None


def _rules(texts: tuple[str, ...]) -> tuple[RegressionRule, ...]:
    try:
        return tuple(RegressionRule.parse(text) for text in texts)
    except BudgetError as exc:
        raise pytest.UsageError(str(exc)) from None


def _compare(cli: str | None, ini: str) -> str | None:
    """The saved run to compare with: ``--netzip-compare=`` (empty) is the latest, an empty ini key none."""
    if cli is not None:
        return cli or "latest"
    return ini or None


def _devices(names: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(check_device_name(name) for name in names)
    except ValueError as exc:
        raise pytest.UsageError(f"--netzip-devices: {exc}") from None


#: (flag, ini key, kind, help): every option is mirrored by an ini key of the same name.
_OPTIONS = (
    ("--netzip", "netzip", "bool", "measure compressed models and check their netzip budgets"),
    ("--netzip-compressors", "netzip_compressors", "list", "run only these compressors: names (every parametrisation) or ids, comma-separated"),
    ("--netzip-devices", "netzip_devices", "list", "devices for tests whose netzip marker names none: cpu, cuda, cuda:N, mps, auto = all present (default: cpu)"),
    ("--netzip-max-samples", "netzip_max_samples", "int", "evaluate at most N samples of netzip_data"),
    ("--netzip-seed", "netzip_seed", "int", "seed for random compressors, training, attacks and perturbation searches (default: 0)"),
    ("--netzip-threads", "netzip_threads", "int", "CPU threads for torch (default: torch's own choice; 1 on shared runners of few cores)"),
    ("--netzip-json", "netzip_json", "path", "write every result to this JSON file"),
    ("--netzip-report", "netzip_report", "path", "write plots of the trade-offs and a self-contained index.html to this folder (needs matplotlib)"),
    ("--netzip-strict", "netzip_strict", "bool", "fail, instead of skip, when a budgeted metric cannot be measured"),
    ("--netzip-ocs-weights", "netzip_ocs_weights", "list", "weights of the performance, speedup, compression and efficiency ratios in OCS (default: 1,1,1,1)"),
    ("--netzip-save", "netzip_save", "name", "save this run's results as NAME in the storage folder"),
    ("--netzip-autosave", "netzip_autosave", "bool", "save this run's results, named by commit and time"),
    ("--netzip-compare", "netzip_compare", "optional", "compare with the saved run NAME (default: the latest)"),
    ("--netzip-compare-fail", "netzip_compare_fail", "list", "fail an item whose metric regressed against the compared run by more than this: metric:0.01 (absolute) or metric:10% (relative); repeatable"),
    ("--netzip-storage", "netzip_storage", "path", "folder of saved runs (default: .netzip in the rootdir)"),
    ("--netzip-cache", "netzip_cache", "path", "keep compressed models and evaluation outputs in this folder and reuse them in later runs, keyed by content (never timings, memory or energy)"),
    ("--netzip-traceback", "netzip_traceback", "bool", "show the full traceback of a compressor that fails (also shown under -vv)"),
)


#: What an option's value is, as ``--help`` names it, where the kind's own word (NAMES, PATH, N) says less.
_METAVARS = {
    "--netzip-ocs-weights": "P,S,C,E", "--netzip-compare-fail": "RULE", "--netzip-report": "DIR",
    "--netzip-storage": "DIR", "--netzip-cache": "DIR",
}


def add_options(parser: pytest.Parser) -> None:
    """Register the ``netzip`` option group and its ini keys."""
    group = parser.getgroup("netzip", "compressed-model budgets (pytest-netzip)")
    for flag, key, kind, help_text in _OPTIONS:
        cli_help = help_text.replace("%", "%%")  # argparse %-formats the help of options, not of ini keys
        named = _METAVARS.get(flag)
        if kind == "bool":
            group.addoption(flag, action="store_true", default=None, dest=key, help=cli_help)
            parser.addini(key, help_text, type="bool", default=False)
        elif kind == "list":
            group.addoption(flag, action="append", default=None, dest=key, metavar=named or "NAMES", help=cli_help)
            parser.addini(key, help_text, type="args", default=[])
        elif kind == "optional":
            group.addoption(flag, nargs="?", const="latest", default=None, dest=key, metavar="NAME", help=cli_help)
            parser.addini(key, help_text, default="")
        else:
            metavar = named or {"path": "PATH", "name": "NAME"}.get(kind, "N")
            group.addoption(flag, default=None, dest=key, metavar=metavar, help=cli_help)
            parser.addini(key, help_text, default="")


def resolve(config: pytest.Config) -> Settings:
    """Settings from the command line, falling back to the ini file, then to defaults."""

    def value(key: str) -> Any:  # what the option's kind gives: a bool, a list of str, a str or None
        given = config.getoption(key)
        return config.getini(key) if given is None else given

    def path(key: str) -> Path | None:
        """A path option: relative to the invocation directory on the command line, to the rootdir in the ini."""
        cli, ini = config.getoption(key), config.getini(key)
        if "\0" in (cli or ini or ""):
            where = f"--{key.replace('_', '-')}" if cli else f"the ini key {key}"
            raise pytest.UsageError(f"{where}: the path {cli or ini!r} holds a NUL character")
        return Path(config.invocation_params.dir, cli) if cli else Path(config.rootpath, ini) if ini else None

    rules = _rules(_split(value("netzip_compare_fail")))
    cache = path("netzip_cache")
    if cache is not None and cache.exists() and not cache.is_dir():
        raise pytest.UsageError(f"--netzip-cache / netzip_cache: {cache} is a file; it takes a folder (made if missing)")
    return Settings(
        enabled=bool(value("netzip")),
        compressors=_split(value("netzip_compressors")),
        devices=_devices(_split(value("netzip_devices"))) or Settings.devices,
        max_samples=_count("--netzip-max-samples", value("netzip_max_samples"), minimum=1),
        seed=_count("--netzip-seed", value("netzip_seed"), minimum=0, maximum=MAX_SEED) or 0,
        threads=_count("--netzip-threads", value("netzip_threads"), minimum=1, maximum=MAX_THREADS),
        json_path=path("netzip_json"),
        report_dir=path("netzip_report"),
        strict=bool(value("netzip_strict")),
        ocs_weights=_weights(_split(value("netzip_ocs_weights"))),
        save=value("netzip_save") or None,
        autosave=bool(value("netzip_autosave")),
        compare=_compare(config.getoption("netzip_compare"), config.getini("netzip_compare")),
        compare_fail=rules,
        storage=path("netzip_storage") or Path(config.rootpath, ".netzip"),
        cache=cache,
        traceback=bool(value("netzip_traceback")) or config.get_verbosity() >= 2,
    )
