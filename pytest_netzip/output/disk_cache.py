"""``--netzip-cache DIR``: compressed models and evaluation outputs kept between runs, keyed by content.

An entry is one file, ``DIR/<kind>/<digest>.pt``: a line naming the format, a JSON header (the key, the versions
that wrote it, the payload's size and SHA-256) and the payload, a ``torch.save`` pickle. The file name is the digest
of the key's content; the versions are checked apart, so that an upgrade replaces its entries instead of piling up
new ones. A payload is unpickled (``weights_only=False``) only once its header shows this plugin wrote it for
this very key; files are written whole to a temporary name and renamed, so that xdist workers sharing DIR never
read half of one. Timings, memory and energy are never kept: they belong to the machine of each run.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_netzip.data.content import batches_digest, model_digest, value_digest
from pytest_netzip.output.storage import atomic_file

if TYPE_CHECKING:
    from torch import nn

    from pytest_netzip.compressors import CompressionContext, Compressor
    from pytest_netzip.evaluation import Predicted, Subject

T = TypeVar("T")

#: The first line of every entry; a new layout of the file, or of the outputs it holds, gets a new number
#: (2: a classifier's and a regression model's outputs reduced batch by batch).
MAGIC = b"pytest-netzip cache 3\n"

#: Where an enabled run keeps its cache: ``config.stash[CACHE_KEY]`` (absent without ``--netzip-cache``).
CACHE_KEY = pytest.StashKey["DiskCache"]()

#: What :meth:`DiskCache.compressed` and :meth:`DiskCache.outputs` say of a value: read from DIR, computed and
#: written there, or computed and not cacheable.
REUSED, MADE, UNCACHED = "reused", "made", "uncached"


def versions() -> dict[str, str | None]:
    """The releases whose code makes an entry: this plugin, torch and torchao (None where not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    try:
        plugin: str | None = version("pytest-netzip")
    except PackageNotFoundError:
        plugin = None
    try:
        torchao: str | None = version("torchao")
    except PackageNotFoundError:
        torchao = None
    return {"pytest-netzip": plugin, "torch": str(torch.__version__), "torchao": torchao}


def _bound(function: Callable[..., Any], owner: object) -> types.MethodType:
    """``function`` bound to ``owner``: how an entry rebuilds a method set on an instance."""
    return types.MethodType(function, owner)


class _Pickler(pickle.Pickler):
    """pickle's, saving a method set on an instance as its function and owner: torchao sets a module's
    ``extra_repr`` to a bound ``functools.partial``, which plain pickle looks up by a name it has not."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.MethodType):
            return _bound, (obj.__func__, obj.__self__)
        return NotImplemented


#: What ``torch.save`` takes as its ``pickle_module``: pickle with :class:`_Pickler`.
_PICKLE = types.ModuleType("pytest_netzip_pickle")
_PICKLE.Pickler = _Pickler  # type: ignore[attr-defined]  # the one attribute torch.save reads


def _name(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:40]


@dataclass
class CacheCounts:
    """What a run (a worker, or all of them on the controller) took from the cache and put in it."""

    models: dict[str, int] = field(default_factory=lambda: dict.fromkeys((REUSED, MADE), 0))
    outputs: dict[str, int] = field(default_factory=lambda: dict.fromkeys((REUSED, MADE), 0))

    def add(self, other: Mapping[str, Mapping[str, int]]) -> None:
        """Add the counts of another worker (:meth:`state`)."""
        for kind, counts in (("models", self.models), ("outputs", self.outputs)):
            for origin, count in other.get(kind, {}).items():
                counts[origin] = counts.get(origin, 0) + count

    def state(self) -> dict[str, dict[str, int]]:
        """JSON-safe counts, for xdist's workeroutput."""
        return {"models": dict(self.models), "outputs": dict(self.outputs)}


def _counted(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


class DiskCache:
    """The cache folder of ``--netzip-cache``: compressed models and each subject's outputs on its evaluation set.

    Every problem with an entry (unreadable, truncated, another key or version, a payload that does not load) is a
    note; the value is then made again and the entry overwritten. Notes are kept in :attr:`notes`, once each.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.counts = CacheCounts()
        self.notes: list[str] = []
        self._versions: dict[str, str | None] | None = None
        self._digests: dict[int, tuple[object, str]] = {}  # by id, holding the object so that no other takes its id

    def summary(self) -> str:
        """``cache DIR: 3 compressed models and 5 evaluations reused; 1 compressed model and 2 evaluations made``."""
        def phrase(origin: str) -> str:
            return (f"{_counted(self.counts.models[origin], 'compressed model', 'compressed models')} and "
                    f"{_counted(self.counts.outputs[origin], 'evaluation', 'evaluations')} {origin}")

        return f"cache {self.root}: {phrase(REUSED)}; {phrase(MADE)}"

    def compressed(
        self, model: nn.Module, compressor: Compressor, context: CompressionContext, compress: Callable[[], nn.Module],
    ) -> tuple[nn.Module, str]:
        """The model ``compress()`` makes, read from the cache where an earlier run kept it, else made and kept;
        with where it came from (:data:`REUSED`, :data:`MADE`, :data:`UNCACHED`)."""
        what = f"the {compressor.id} model of {type(model).__name__}"

        def key() -> dict[str, Any]:
            return {
                "kind": "model", "reference": self._digest(model, model_digest),
                "reference_class": f"{type(model).__module__}.{type(model).__qualname__}",
                "compressor": compressor.id, "compressor_code": value_digest(compressor),
                "calibration_data": self._digest(context.calibration_data, batches_digest),
                "train_data": self._digest(context.train_data, batches_digest),
                "example_input": self._digest(context.example_input, value_digest),
                "target_key": context.format.target_key, "seed": context.seed, "device": context.device.type,
            }

        def load(payload: bytes) -> nn.Module:
            import torch

            loaded = torch.load(io.BytesIO(payload), map_location=context.device, weights_only=False)
            if not isinstance(loaded, torch.nn.Module):
                raise TypeError(f"it holds a {type(loaded).__name__}, not a model")
            return loaded.to(context.device).eval()

        return self._through("models", what, key, load, compress, self.counts.models)

    def outputs(self, subject: Subject, task: str | None, predict: Callable[[], Predicted]) -> tuple[Predicted, str]:
        """``predict()``'s outputs of ``subject`` scored as ``task``, read from the cache where an earlier run kept
        them, else computed and kept; with where they came from."""
        from pytest_netzip.errors import DataError

        what = f"the outputs of {subject.label} on {subject.device.type}"
        reference = subject.reference

        def key() -> dict[str, Any]:
            return {
                "kind": "outputs", "subject": subject.label, "model": self._digest(subject.model, model_digest),
                "reference": self._digest(reference.model, model_digest) if reference is not None else None,
                "data": self._digest(subject.data, batches_digest), "task": task, "device": subject.device.type,
            }

        def load(payload: bytes) -> Predicted:
            import torch

            loaded = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)
            inferred = loaded["inferred"]
            return loaded["outputs"], inferred if isinstance(inferred, str) else DataError(inferred["error"])

        def stored(predicted: Predicted) -> dict[str, Any]:
            outputs, inferred = predicted
            return {"outputs": outputs, "inferred": inferred if isinstance(inferred, str) else {"error": str(inferred)}}

        # bad data fails the item as the evaluation would, saying what is wrong with it
        return self._through("outputs", what, key, load, predict, self.counts.outputs, stored, passed=DataError)

    def _through(
        self, kind: str, what: str, key: Callable[[], dict[str, Any]], load: Callable[[bytes], Any],
        make: Callable[[], T], counts: dict[str, int], stored: Callable[[T], object] = lambda value: value,
        passed: type[Exception] | None = None,
    ) -> tuple[T, str]:
        """The value of ``key`` in folder ``kind``: loaded, else made (``make``) and written as ``stored(value)``;
        with its origin. Making the key raises only ``passed``; any other error of it leaves the value uncached."""
        try:
            content = key()
        except Exception as exc:  # a model or data whose content cannot be read the same way twice
            if passed is not None and isinstance(exc, passed):
                raise
            self._note(f"{what} is not cached: {type(exc).__name__}: {exc}")
            return make(), UNCACHED
        path = self.root / kind / f"{_name(content)}.pt"
        payload = self._read(path, content)
        if payload is not None:
            try:
                value = load(payload)
            except Exception as exc:  # unpickling runs code of the classes it names: anything can fail
                self._note(f"cache entry {path} ({what}) does not load ({type(exc).__name__}: {exc}); not trusted: "
                           "made again and overwritten")
            else:
                counts[REUSED] += 1
                return value, REUSED
        value = make()
        origin = MADE if self._write(path, content, stored(value), what) else UNCACHED
        counts[origin] = counts.get(origin, 0) + 1
        return value, origin

    def _read(self, path: Path, content: dict[str, Any]) -> bytes | None:
        """The payload of the entry at ``path`` if its header shows it holds ``content``, written by these versions."""
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._note(f"cache entry {path} cannot be read ({exc.strerror or exc}): made again")
            return None
        problem, payload = self._problem(blob, path.stem, content)
        if problem:
            self._note(f"cache entry {path} {problem}; not trusted: made again and overwritten")
            return None
        return payload

    def _problem(self, blob: bytes, name: str, content: dict[str, Any]) -> tuple[str | None, bytes]:
        """What is wrong with an entry, if anything, and its payload."""
        if not blob.startswith(MAGIC):
            return "is not a pytest-netzip cache entry of this format", b""
        header_line, _, payload = blob[len(MAGIC):].partition(b"\n")
        try:
            header = json.loads(header_line)
            stored, written, size, checksum = header["key"], header["versions"], header["size"], header["sha256"]
        except (ValueError, TypeError, KeyError):
            return "has no readable header", b""
        if len(payload) != size:
            return f"is truncated ({len(payload)} of {size} payload bytes)", b""
        if hashlib.sha256(payload).hexdigest() != checksum:
            return "is corrupt (its payload does not match its checksum)", b""
        if not isinstance(stored, dict) or _name(stored) != name:
            return "holds a key that does not match its file name", b""
        if stored != content:
            return "holds another key than the one its name was looked up for", b""
        if written != self.versions:
            def shown(found: Mapping[str, object]) -> str:
                return ", ".join(f"{package} {found.get(package)}" for package in self.versions)

            return f"was written by {shown(written) if isinstance(written, dict) else written}; this run has " \
                   f"{shown(self.versions)}", b""
        return None, payload

    def _write(self, path: Path, content: dict[str, Any], value: object, what: str) -> bool:
        """Write ``value`` under ``content`` at ``path``, whole or not at all; False (and a note) where it cannot be."""
        import torch

        buffer = io.BytesIO()
        try:
            torch.save(value, buffer, pickle_module=_PICKLE)
        except Exception as exc:  # pickling: a lambda, an opaque tensor, a C++ object...
            self._note(f"{what} cannot be saved ({type(exc).__name__}: {exc}); it is not cached, so it is made "
                       "again in each run")
            return False
        payload = buffer.getvalue()
        header = {"key": content, "versions": self.versions, "size": len(payload),
                  "sha256": hashlib.sha256(payload).hexdigest()}
        try:
            with atomic_file(path, "wb") as stream:
                stream.write(MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload)
        except OSError as exc:
            self._note(f"cannot write the cache entry {path} ({exc.strerror or exc}): {what} is not cached")
            return False
        return True

    @property
    def versions(self) -> dict[str, str | None]:
        """The versions this run writes into entries and expects of them."""
        if self._versions is None:
            self._versions = versions()
        return self._versions

    def _digest(self, value: T, digest: Callable[[T], str]) -> str | None:
        """``digest(value)``, once per object for the session (None for None)."""
        if value is None:
            return None
        held = self._digests.get(id(value))
        if held is None:
            held = self._digests[id(value)] = (value, digest(value))
        return held[1]

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)

