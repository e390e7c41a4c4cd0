"""The fixtures netzip provides: defaults for those a repo defines, which say what to write, and the item's
compressor, device, compressed model and result. Registered by the plugin; nothing here imports torch at
module level."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_netzip.devices import missing_reason
from pytest_netzip.errors import CompressionError, CompressorUnsupported
from pytest_netzip.origins import model_origin
from pytest_netzip.plan import ItemPlan
from pytest_netzip.settings import SETTINGS_KEY
from pytest_netzip.variant import Variant

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_netzip.compressors import Compressor
    from pytest_netzip.data.batches import BatchFormat
    from pytest_netzip.reporting import NetzipReport
    from pytest_netzip.results import Result
    from pytest_netzip.session import NetzipSession

SESSION_KEY = pytest.StashKey["NetzipSession"]()
REPORT_KEY: pytest.StashKey[NetzipReport] = pytest.StashKey()
PLAN_KEY = pytest.StashKey[ItemPlan]()
RESULT_KEY = pytest.StashKey["Result"]()

#: Samples of ``netzip_data`` that ``int8_static`` calibrates on unless ``netzip_calibration_data`` is defined.
CALIBRATION_SAMPLES = 256


def fail_with(error: Exception | str) -> NoReturn:
    """Fail the item with ``error``'s message alone: it says what is wrong, a traceback would not."""
    outcome = pytest.fail.Exception(f"netzip: {error}", pytrace=False)
    outcome.__suppress_context__ = True
    raise outcome


def _model_hint(given: object) -> str:
    """What to do with what ``netzip_model`` returned instead of a module, where a usual mistake explains it."""
    from collections.abc import Mapping

    from torch import nn

    if isinstance(given, type) and issubclass(given, nn.Module):
        return f": the class itself; return an instance, {given.__name__}(...).eval()"
    if isinstance(given, Mapping):
        return ": a state dict? build the model and return it with the weights loaded, model.load_state_dict(...)"
    return ""


# Fixtures the user provides; these defaults explain what to write.


@pytest.fixture(scope="session")
def netzip_model() -> nn.Module:
    """The reference (uncompressed) model: define this fixture in your conftest.py."""
    pytest.fail(
        "netzip: this test needs the reference model. Define a fixture `netzip_model` in the "
        "conftest.py beside your tests, returning the uncompressed nn.Module, e.g.\n\n"
        "    @pytest.fixture(scope='session')\n    def netzip_model():\n        return build_model().eval()",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def netzip_data() -> Any:
    """The evaluation batches, an iterable of ``(inputs, targets)``: define it in your conftest.py."""
    pytest.fail(
        "netzip: this test needs evaluation data. Define a fixture `netzip_data` in the conftest.py "
        "beside your tests, returning a re-iterable of (inputs, targets) batches, e.g.\n\n"
        "    @pytest.fixture(scope='session')\n    def netzip_data():\n"
        "        return DataLoader(val_set, batch_size=64)",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def netzip_train_data() -> Any:
    """Training batches for compressors that train (``Distill``): define it in your conftest.py; default None."""
    return None


# The plugin's fixtures that read the user's are function-scoped: a session-scoped one would be made once, from the
# netzip_data of the first folder that asked, and handed to every folder that defines its own.


@pytest.fixture
def netzip_calibration_data(netzip_data: Any, netzip_target_key: str) -> Any:
    """Batches that static quantisation observes: by default the first 256 samples of ``netzip_data``."""
    from pytest_netzip.data.batches import BatchFormat, EvalData

    return EvalData(netzip_data, CALIBRATION_SAMPLES, format=BatchFormat(netzip_target_key))


@pytest.fixture(scope="session")
def netzip_target_key() -> str:
    """The key under which a dict batch holds its targets (the rest are the model's keyword arguments); default ``labels``."""
    return "labels"


@pytest.fixture(scope="session")
def netzip_output() -> Callable[[Any], Any] | None:
    """A function reading the model's output as its predictions, for outputs netzip cannot read; default None: a
    tensor, a tuple's first element, a dict's or ``ModelOutput``'s ``logits`` (else its first value)."""
    return None


@pytest.fixture
def _netzip_format(netzip_target_key: Any, netzip_output: Any) -> BatchFormat:
    """How the batches and outputs of this session are read."""
    from pytest_netzip.data.batches import BatchFormat

    if not isinstance(netzip_target_key, str):
        pytest.fail(f"netzip_target_key must return a str (the key of the targets), got {netzip_target_key!r}",
                    pytrace=False)
    if netzip_output is not None and not callable(netzip_output):
        pytest.fail(f"netzip_output must return a function (output -> predictions) or None, got {netzip_output!r}",
                    pytrace=False)
    return BatchFormat(netzip_target_key, netzip_output)


@pytest.fixture(scope="session")
def netzip_input_range() -> tuple[float, float]:
    """The values ``netzip_data``'s inputs can take, ``(low, high)``: attacks and perturbations stay inside; default (0, 1)."""
    return (0.0, 1.0)


@pytest.fixture(scope="session")
def netzip_input_normalization() -> tuple[Any, Any] | None:
    """``(mean, std)`` per channel if ``netzip_data``'s inputs are normalised pixels in [0, 1]; default None."""
    return None


@pytest.fixture
def netzip_example_input(netzip_data: Any, _netzip_format: BatchFormat) -> Any:
    """The input of per-sample measurements (MACs): by default the first sample of ``netzip_data``."""
    from pytest_netzip.data.batches import EvalData
    from pytest_netzip.errors import DataError

    try:
        return EvalData(netzip_data, format=_netzip_format).example()
    except DataError as exc:
        fail_with(exc)


# Fixtures the plugin provides.


@pytest.fixture
def _netzip_variant(request: pytest.FixtureRequest) -> Variant | None:
    """The compressor and device of a netzip item (set by parametrisation), else None."""
    return getattr(request, "param", None)


def _session(request: pytest.FixtureRequest) -> NetzipSession:
    session = request.config.stash.get(SESSION_KEY, None)
    if session is None:
        pytest.skip("needs --netzip")
    return session


#: The fixtures that exist for netzip items only: a compressed variant and what is measured of it.
_ITEM_FIXTURES = ("netzip_result", "netzip_compressed", "netzip_compressor", "netzip_device")


def _not_a_netzip_test(request: pytest.FixtureRequest) -> NoReturn:
    """Fail a test without the netzip marker that asks for an item's fixture, naming those it asked for."""
    import inspect

    asked = [name for name in _ITEM_FIXTURES if name in inspect.signature(request.function).parameters]
    asked = asked or [next(name for name in _ITEM_FIXTURES if name in request.fixturenames)]  # through a fixture
    pytest.fail(f"{', '.join(asked)} {'is' if len(asked) == 1 else 'are'} only for tests marked "
                "@pytest.mark.netzip(compressors=[...])", pytrace=False)


@pytest.fixture
def netzip_compressor(request: pytest.FixtureRequest, _netzip_variant: Variant | None) -> Compressor:
    """The ``Compressor`` of this item."""
    if _netzip_variant is None:
        _not_a_netzip_test(request)
    return _netzip_variant.compressor


@pytest.fixture
def netzip_device(request: pytest.FixtureRequest, _netzip_variant: Variant | None) -> torch.device:
    """The ``torch.device`` of this item; the item skips where this machine lacks it."""
    import torch

    if _netzip_variant is None:
        _not_a_netzip_test(request)
    device = torch.device(_netzip_variant.device)
    reason = missing_reason(device)
    if reason:
        pytest.skip(reason)
    return device


@pytest.fixture
def netzip_compressed(
    request: pytest.FixtureRequest,
    netzip_model: Any,
    netzip_compressor: Compressor,
    netzip_device: torch.device,
    netzip_example_input: Any,
    netzip_train_data: Any,
    netzip_calibration_data: Any,
    _netzip_format: BatchFormat,
) -> nn.Module:
    """The compressed model on this item's device (compressed once per session).

    The item skips where the compressor does not apply (``int8_static`` on CUDA).
    """
    from torch import nn

    if not isinstance(netzip_model, nn.Module):
        fail_with(f"netzip_model must return a torch.nn.Module, got {type(netzip_model).__name__}{_model_hint(netzip_model)}")
    try:
        return _session(request).compressed(
            netzip_model, netzip_compressor, netzip_device, netzip_example_input, netzip_train_data,
            netzip_calibration_data, _netzip_format,
        )
    except CompressorUnsupported as exc:
        pytest.skip(str(exc))
    except CompressionError as exc:
        if request.config.stash[SETTINGS_KEY].traceback:
            raise
        fail_with(f"{exc} (the full traceback: --netzip-traceback or -vv)")


@pytest.fixture
def netzip_result(
    request: pytest.FixtureRequest,
    netzip_model: nn.Module,
    netzip_data: Any,
    netzip_example_input: Any,
    netzip_compressor: Compressor,
    netzip_device: torch.device,
    netzip_compressed: nn.Module,
    netzip_input_range: Any,
    netzip_input_normalization: Any,
    _netzip_format: BatchFormat,
) -> Result:
    """Reference and compressed metrics of this item, each measured on first use and cached."""
    from pytest_netzip.data.space import InputSpace
    from pytest_netzip.errors import DataError, InputSpaceError

    plan = request.node.stash[PLAN_KEY]
    try:
        result = _session(request).result(
            netzip_model, netzip_data, netzip_example_input, netzip_compressor, netzip_device, plan.registry,
            plan.workload, InputSpace.of(netzip_input_range, netzip_input_normalization), plan.task, _netzip_format,
            model_origin(request.node),
        )
    except (DataError, InputSpaceError) as exc:
        fail_with(exc)
    request.node.stash[RESULT_KEY] = result
    return result
