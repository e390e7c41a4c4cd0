"""Run documents and saved runs: one JSON file per run under ``.netzip/``, written atomically."""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import math
import os
import platform
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from pytest_netzip.errors import StorageError
from pytest_netzip.metrics import is_number

#: Version of the layout of run documents (``--netzip-json`` files and saved runs).
SCHEMA_VERSION = 1


_SAVED = re.compile(r"^(\d{4,})_(.+)\.json$")


#: Names a run cannot be saved under: they would read as a counter or as the latest run.
_RESERVED = re.compile(r"^(\d+|latest)$")


class _Refused(ValueError):
    """A JSON value no run holds (NaN, an infinity, a number beyond a float); the message says which."""


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """What the timings depend on: Python, torch, the CPU, the threads torch uses (``threads`` if set), the GPUs."""
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": threads or torch.get_num_threads(),
        "cuda": [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())],
    }


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(errors="replace"), re.MULTILINE)
        if match:
            return match.group(1).strip()
    return platform.processor() or platform.machine()


def commit_id(directory: Path) -> str | None:
    """The short id of the git commit checked out in ``directory``, or None outside a repository."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if found.returncode != 0:
        return None
    return found.stdout.strip() or None


def run_document(
    records: list[dict[str, Any]], variants: list[dict[str, Any]], machine: dict[str, Any], commit: str | None
) -> dict[str, Any]:
    """The JSON document of a run: each item's record, each variant's merged metrics, when, where, which commit.

    Numbers JSON cannot hold are None (see ``json_safe``) here already: the report shows what the files hold.
    """
    document: dict[str, Any] = json_safe({
        "version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "machine": machine,
        "results": records,
        "variants": variants,
    })
    return document


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an int beyond any float
        return False


def json_safe(value: Any) -> Any:
    """``value`` with each number strict JSON cannot hold (NaN, infinities, ints beyond a float) as None: unavailable."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return None if is_number(value) and not _finite(value) else value


def write_document(path: Path, document: dict[str, Any]) -> Path:
    """Write ``document`` to ``path`` atomically, as strict JSON (see ``json_safe``): a temporary file beside it,
    then a rename.

    An interrupted write leaves the previous file (or none), never half a document. Returns ``path``.
    """
    with atomic_file(path) as stream:
        json.dump(json_safe(document), stream, indent=2, allow_nan=False)
    return path


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A file to write ``path``'s content into, whole or not at all: a temporary file beside it, renamed over
    it once the block ends without error (so that readers, other xdist workers among them, never see half a
    file). OSError where it cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open(mode) as stream:
            yield stream
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _refuse_constant(constant: str) -> float:
    raise _Refused(f"{constant}, which is not JSON")


def _number(text: str, kind: Callable[[str], float]) -> float:
    """The JSON number ``text`` read as ``kind``; _Refused where a float cannot hold it (1e400, 10**400)."""
    if not math.isfinite(float(text)):
        raise _Refused(f"the number {text if len(text) <= 20 else text[:12] + '...'}, beyond the range of a float")
    return kind(text)


def read_document(path: Path) -> dict[str, Any]:
    """The run document in ``path``; StorageError naming the file when it is not one this version reads.

    Strict JSON only: NaN, infinities and numbers beyond a float are refused, not read as values no rule can compare.
    """
    try:
        document = json.loads(
            path.read_text(), parse_constant=_refuse_constant,
            parse_float=functools.partial(_number, kind=float), parse_int=functools.partial(_number, kind=int),
        )
    except OSError as exc:
        raise StorageError(f"cannot read the saved run {path}: {exc.strerror}") from None
    except _Refused as exc:
        raise StorageError(f"the saved run {path} holds {exc}; delete it or save a new run") from None
    except RecursionError:
        raise StorageError(f"the saved run {path} is nested too deeply to be a run; delete it or save a new run") from None
    except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError
        raise StorageError(f"the saved run {path} is not valid JSON ({exc}); delete it or save a new run") from None
    if not isinstance(document, dict) or not isinstance(document.get("results"), list):
        raise StorageError(f"{path} is not a pytest-netzip run (no list of results)")
    if not isinstance(document.get("machine", {}), dict):
        raise StorageError(f"{path} is not a pytest-netzip run (its machine is not an object)")
    if type(document.get("version")) is not int or document["version"] != SCHEMA_VERSION:  # true == 1 in Python
        raise StorageError(
            f"{path} has schema version {document.get('version')!r}; this pytest-netzip reads version {SCHEMA_VERSION}"
        )
    return document


def _saved(path: Path) -> re.Match[str]:
    """``path``'s name split by ``_SAVED``: the counter and the slug."""
    match = _SAVED.match(path.name)
    assert match is not None  # only called on paths that Storage.runs() listed, all of which _SAVED matches
    return match


def _counter(path: Path) -> int:
    return int(_saved(path).group(1))


def _slug(name: str) -> str:
    """``name`` as a file name part: ``feature/x y`` -> ``feature-x-y``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "run"


#: The longest run name: its file and the temporary file beside it must fit a file system's 255-byte names.
MAX_RUN_NAME = 200


def check_run_name(name: str) -> str:
    """``name`` if a run can be saved under it; StorageError otherwise."""
    if _RESERVED.match(name):
        raise StorageError(f"a run cannot be named {name!r}: it would read as a counter or as the latest run")
    if len(_slug(name).encode()) > MAX_RUN_NAME:
        raise StorageError(f"a run name holds at most {MAX_RUN_NAME} characters; {name[:20]!r}... has {len(name)}")
    return name


class Storage:
    """Saved runs in one folder, named ``NNNN_name.json`` with a counter that orders them."""

    def __init__(self, root: Path) -> None:
        if root.exists() and not root.is_dir():
            raise StorageError(f"the storage folder {root} is a file")
        self.root = root

    def runs(self) -> list[Path]:
        """The saved runs, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted((path for path in self.root.iterdir() if _SAVED.match(path.name)), key=_counter)

    def save(self, name: str, document: dict[str, Any]) -> Path:
        """Save ``document`` as the next run called ``name``; returns its path.

        Sessions saving at once each get a counter of their own: no run overwrites another, no counter is used twice.
        """
        counter, claim = self._claim()
        try:
            path = self.root / f"{counter:04d}_{_slug(name)}.json"
            write_document(path, document)
        finally:
            claim.unlink(missing_ok=True)
        return path

    def _claim(self) -> tuple[int, Path]:
        """The next free counter and its claim, ``.NNNN.claim``, created exclusively.

        A counter is in use while its claim exists, and after, since its run is written before the claim is removed.
        A session killed while saving leaves its claim, and so a gap in the counters, never a counter used twice.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        runs = self.runs()
        counter = _counter(runs[-1]) + 1 if runs else 1
        while True:
            claim = self.root / f".{counter:04d}.claim"
            try:
                with claim.open("x"):
                    pass
            except FileExistsError:
                counter += 1
                continue
            if not any(_counter(path) == counter for path in self.runs()):
                return counter, claim
            claim.unlink()  # saved, and its claim removed, since the runs were listed
            counter += 1

    def find(self, name: str) -> Path:
        """The saved run ``name`` (``latest``, a counter ``0003``, a name, or ``0003_name``)."""
        runs = self.runs()
        if not runs:
            raise StorageError(f"no saved run in {self.root} to compare with (save one with --netzip-save NAME)")
        if name == "latest":
            return runs[-1]
        slug = _slug(name)
        matches = (
            [path for path in runs if path.stem == slug]
            or [path for path in runs if name.isdigit() and _counter(path) == int(name)]
            or [path for path in runs if _saved(path).group(2) == slug]
        )
        if not matches:
            listed = ", ".join(path.stem for path in runs)
            hint = (
                "; it is a path: put test paths before --netzip-compare, or write --netzip-compare= for the latest run"
                if Path(name).exists() else ""
            )
            raise StorageError(f"no saved run {name!r} in {self.root} (saved: {listed}){hint}")
        return matches[-1]
