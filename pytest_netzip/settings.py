"""Command-line options and ini keys, resolved once (CLI > ini > default) into frozen Settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_netzip.devices import check_device_name


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
    strict: bool = False
    ocs_weights: tuple[float, float, float, float] | None = None


def _split(values: list[str] | str | None) -> tuple[str, ...]:
    """``["a,b", "c(x=1, y=2)"]`` -> ``("a", "b", "c(x=1, y=2)")``: commas inside parentheses stay."""
    if not values:
        return ()
    text = ",".join([values] if isinstance(values, str) else values)
    return tuple(part.strip() for part in re.split(r",(?![^(]*\))", text) if part.strip())


def _count(option: str, text: str | None, minimum: int) -> int | None:
    if text in (None, ""):
        return None
    try:
        number = int(text)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise pytest.UsageError(f"{option} takes a whole number >= {minimum}, got {text!r}")
    return number


def _weights(values: tuple[str, ...]) -> tuple[float, float, float, float] | None:
    if not values:
        return None
    try:
        weights = tuple(float(value) for value in values)
    except ValueError:
        weights = ()
    if len(weights) != 4:
        raise pytest.UsageError(
            f"--netzip-ocs-weights takes four numbers, the weights of P, S, C and E (e.g. 1,1,1,1), got {','.join(values)!r}"
        )
    return weights


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
    ("--netzip-seed", "netzip_seed", "int", "seed for random compressors (default: 0)"),
    ("--netzip-threads", "netzip_threads", "int", "CPU threads for torch (default: torch's own choice)"),
    ("--netzip-json", "netzip_json", "path", "write every result to this JSON file"),
    ("--netzip-strict", "netzip_strict", "bool", "fail, instead of skip, when a budgeted metric cannot be measured"),
    ("--netzip-ocs-weights", "netzip_ocs_weights", "list", "weights of the performance, speedup, compression and efficiency ratios in OCS (default: 1,1,1,1)"),
)


def add_options(parser: pytest.Parser) -> None:
    """Register the ``netzip`` option group and its ini keys."""
    group = parser.getgroup("netzip", "compressed-model budgets (pytest-netzip)")
    for flag, key, kind, help_text in _OPTIONS:
        if kind == "bool":
            group.addoption(flag, action="store_true", default=None, dest=key, help=help_text)
            parser.addini(key, help_text, type="bool", default=False)
        elif kind == "list":
            group.addoption(flag, action="append", default=None, dest=key, metavar="NAMES", help=help_text)
            parser.addini(key, help_text, type="args", default=[])
        else:
            metavar = "PATH" if kind == "path" else "N"
            group.addoption(flag, default=None, dest=key, metavar=metavar, help=help_text)
            parser.addini(key, help_text, default="")


def resolve(config: pytest.Config) -> Settings:
    """Settings from the command line, falling back to the ini file, then to defaults."""

    def value(key: str) -> object:
        given = config.getoption(key)
        return config.getini(key) if given is None else given

    json_cli, json_ini = config.getoption("netzip_json"), config.getini("netzip_json")
    json_path = (
        Path(config.invocation_params.dir, json_cli) if json_cli else Path(config.rootpath, json_ini) if json_ini else None
    )
    return Settings(
        enabled=bool(value("netzip")),
        compressors=_split(value("netzip_compressors")),
        devices=_devices(_split(value("netzip_devices"))) or Settings.devices,
        max_samples=_count("--netzip-max-samples", value("netzip_max_samples"), minimum=1),
        seed=_count("--netzip-seed", value("netzip_seed"), minimum=0) or 0,
        threads=_count("--netzip-threads", value("netzip_threads"), minimum=1),
        json_path=json_path,
        strict=bool(value("netzip_strict")),
        ocs_weights=_weights(_split(value("netzip_ocs_weights"))),
    )
