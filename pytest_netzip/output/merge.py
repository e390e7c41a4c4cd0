"""CI shards merged: the run documents of jobs that each ran part of the tests, as one run document.

The results are concatenated in the order of the shards, and ``variants`` (each model and device's reference once,
NetZIP's P, OCS) are computed over them all by ``variant_summaries``, as at the end of a session: a ratio measured in
one shard and a top-1 in another combine. The shards must be parts of one run: one commit, no test in two of them,
and where two hold the same model and device, one reference (the same figures, the same Python and torch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from pytest_netzip.errors import StorageError
from pytest_netzip.metrics import MetricRegistry, is_number
from pytest_netzip.metrics.combined import DEFAULT_OCS_WEIGHTS
from pytest_netzip.output.storage import json_safe, run_document
from pytest_netzip.output.tables import variant_summaries

#: Relative slack between two shards' figures of one reference: the CPUs of two runners may round floats apart.
FIGURE_TOLERANCE = 1e-6

#: What a reference's figures depend on besides the model and data, as the document records it.
_IDENTITY = ("commit", "python", "torch")

#: Units of wall times, which differ from one measurement to the next.
_TIMES = ("s", "ms")


class Shard(NamedTuple):
    """A run document to merge, and what messages call it (its file)."""

    name: str
    document: dict[str, Any]


def merge_runs(
    shards: Sequence[Shard], weights: tuple[float, ...] = DEFAULT_OCS_WEIGHTS
) -> tuple[dict[str, Any], list[str]]:
    """The run document of ``shards`` together, and notes on what their machines did not share.

    ``weights`` are the shards' OCS weights (``--netzip-ocs-weights``). StorageError, naming the files and what
    differs, where the shards are not parts of one run or a result is not a record.
    """
    if not shards:
        raise StorageError("nothing to merge: name the run documents (--netzip-json files) or saved runs of the shards")
    for shard in shards:
        _check_records(shard)
    _check_references(shards)
    _check_commits(shards)
    _check_tests(shards)
    for shard in shards:
        _check_ocs(shard, weights)
    results = [record for shard in shards for record in shard.document["results"]]
    first = shards[0].document
    document = run_document(results, variant_summaries(results, weights), dict(first.get("machine") or {}),
                            first.get("commit"))
    created = [stamp for shard in shards if isinstance(stamp := shard.document.get("created"), str)]
    if created:  # when the run was measured: its first shard's start
        document["created"] = min(created)
    return document, _machine_notes(shards)


def _check_records(shard: Shard) -> None:
    """StorageError unless each result of ``shard`` is an item's record, as ``variant_summaries`` reads them."""
    for record in shard.document["results"]:
        reference = record.get("reference") if isinstance(record, dict) else None
        if not (
            isinstance(record, dict) and all(isinstance(record.get(key), str) for key in ("test", "device", "compressor"))
            and (isinstance(record.get("model"), str) or record.get("model") is None and not record.get("metrics"))
            and isinstance(record.get("metrics"), dict)
            and isinstance(reference, dict) and isinstance(reference.get("metrics"), dict)
        ):
            raise StorageError(
                f"{shard.name} holds a result that is not an item's record (test, model, device, compressor, metrics "
                f"and reference.metrics): {str(record)[:80]}"
            )


def _variant_key(entry: dict[str, Any]) -> tuple[str, str, str]:
    return str(entry.get("model")), str(entry.get("device")), str(entry.get("compressor"))


def _check_ocs(shard: Shard, weights: tuple[float, ...]) -> None:
    """StorageError where the OCS ``shard`` holds are not those its results give with ``weights``: merged with other
    weights, its variants would change."""
    stored = shard.document.get("variants")
    if not isinstance(stored, list):  # a run saved before documents held variants: nothing computed to check
        return
    computed = {
        _variant_key(entry): entry["metrics"].get("ocs")
        for entry in json_safe(variant_summaries(shard.document["results"], weights))
    }
    for entry in stored:
        held = entry.get("metrics", {}).get("ocs") if isinstance(entry, dict) else None
        again = computed.get(_variant_key(entry)) if isinstance(entry, dict) else None
        if is_number(held) and is_number(again) and not math.isclose(held, again, rel_tol=FIGURE_TOLERANCE):
            model, device, compressor = _variant_key(entry)
            shown = ",".join(f"{weight:g}" for weight in weights)
            raise StorageError(
                f"{shard.name}: the OCS of {compressor} ({model} on {device}) is {held:.4g}, and its results give "
                f"{again:.4g} with the OCS weights {shown}: pass the shards' --netzip-ocs-weights as --ocs-weights "
                "(or the file was edited)"
            )


def _fixed(registry: MetricRegistry, name: str) -> bool:
    """Whether the model and data fix ``name``'s value: a built-in metric that neither runs a workload (latency,
    memory, energy) nor is a wall time. Metrics of plugins and conftests are not known here, so not compared."""
    return name in registry and not registry[name].workload and registry[name].unit not in _TIMES


def _figures(shard: Shard, registry: MetricRegistry) -> dict[tuple[str, str], dict[tuple[str, Any], Any]]:
    """The reference's fixed figures in ``shard`` by (model, device), each keyed by metric and setting (an attack)."""
    found: dict[tuple[str, str], dict[tuple[str, Any], Any]] = {}
    for record in shard.document["results"]:
        settings = record.get("settings") if isinstance(record.get("settings"), dict) else {}
        figures = found.setdefault((record["model"], record["device"]), {})
        for name, value in record["reference"]["metrics"].items():
            if value is not None and _fixed(registry, name):
                figures[name, settings.get(name)] = value
    return found


def _identity(shard: Shard) -> dict[str, Any]:
    machine = shard.document.get("machine") or {}
    return {"commit": shard.document.get("commit"), "python": machine.get("python"), "torch": machine.get("torch")}


def _same(first: Any, second: Any) -> bool:
    """Whether two figures agree (numbers within ``FIGURE_TOLERANCE``, values by key each)."""
    if is_number(first) and is_number(second):
        return math.isclose(first, second, rel_tol=FIGURE_TOLERANCE, abs_tol=1e-12)
    if isinstance(first, dict) and isinstance(second, dict):
        return first.keys() == second.keys() and all(_same(first[key], second[key]) for key in first)
    return bool(first == second)


def _shown(registry: MetricRegistry, name: str, value: Any) -> str:
    return registry[name].format(value) if isinstance(value, (int, float, str, dict)) else repr(value)


def _differences(
    registry: MetricRegistry, earlier: tuple[Shard, dict[tuple[str, Any], Any]], later: tuple[Shard, dict[tuple[str, Any], Any]]
) -> list[str]:
    """``commit 'b7b7d3a' in a.json, 'c0ffee1' in b.json`` for what two shards' references of a model do not share."""
    (first, held), (second, figures) = earlier, later
    identities = _identity(first), _identity(second)
    found = [
        f"{key} {identities[0][key]!r} in {first.name}, {identities[1][key]!r} in {second.name}"
        for key in _IDENTITY if identities[0][key] != identities[1][key]
    ]
    for (name, setting), value in figures.items():
        if (name, setting) in held and not _same(held[name, setting], value):
            label = name if setting is None else f"{name} under {setting}"
            found.append(f"{label} {_shown(registry, name, held[name, setting])} in {first.name}, "
                         f"{_shown(registry, name, value)} in {second.name}")
    return found


def _check_references(shards: Sequence[Shard]) -> None:
    """StorageError where two shards hold the reference of one model and device, with other figures or identity."""
    registry = MetricRegistry()
    seen: dict[tuple[str, str], list[tuple[Shard, dict[tuple[str, Any], Any]]]] = {}
    for shard in shards:
        for (model, device), figures in _figures(shard, registry).items():
            for earlier in seen.get((model, device), []):
                differences = _differences(registry, earlier, (shard, figures))
                if differences:
                    raise StorageError(
                        f"cannot merge {earlier[0].name} and {shard.name}: the reference of {model} on {device} differs "
                        f"({'; '.join(differences[:3])}): shards of one run measure one reference, on one commit, "
                        "with the same data, Python and torch"
                    )
            seen.setdefault((model, device), []).append((shard, figures))


def _check_commits(shards: Sequence[Shard]) -> None:
    """StorageError unless every shard was run on the first one's commit: the merged run records one."""
    first = shards[0]
    for shard in shards[1:]:
        if shard.document.get("commit") != first.document.get("commit"):
            raise StorageError(
                f"cannot merge {first.name} and {shard.name}: they were run on other commits "
                f"({first.document.get('commit')!r} and {shard.document.get('commit')!r}); shards of one run share one"
            )


def _check_tests(shards: Sequence[Shard]) -> None:
    """StorageError where two shards hold one test: it would count twice, and a comparison would see one of them."""
    seen: dict[str, Shard] = {}
    for shard in shards:
        for record in shard.document["results"]:
            earlier = seen.setdefault(record["test"], shard)
            if earlier is not shard and earlier.name == shard.name:
                raise StorageError(f"{shard.name} is named twice: each shard's run is merged once")
            if earlier is not shard:
                raise StorageError(
                    f"cannot merge {earlier.name} and {shard.name}: both hold {record['test']}; "
                    "shards of one run each run other tests (split them with -k, test paths or pytest-split)"
                )


def _machine_notes(shards: Sequence[Shard]) -> list[str]:
    """A note naming what the shards' machines did not share, if anything: the merged run records the first's."""
    machines = [shard.document.get("machine") or {} for shard in shards]
    keys = list(dict.fromkeys(key for machine in machines for key in machine))
    differing = [
        f"{key} " + ", ".join(f"{machine.get(key)!r} in {shard.name}" for shard, machine in zip(shards, machines))
        for key in keys if any(machine.get(key) != machines[0].get(key) for machine in machines)
    ]
    if not differing:
        return []
    return [f"the shards ran on different machines ({'; '.join(differing)}); the merged run records "
            f"{shards[0].name}'s: timings compare well only on like machines"]
