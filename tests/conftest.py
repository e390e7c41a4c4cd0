"""Fixtures of the suite: the tiny model repo in a pytester dir; libraries imported once for every pytester run."""

from __future__ import annotations

import hypothesis  # noqa: F401 - imported once here: its pytest plugin would import it again in every pytester run
import pytest
import torch  # noqa: F401 - imported once here: pytester's in-process runs cannot re-import torch

from pytest_netzip.compressors.quantize import _import_torchao_quantization
from tests.helpers import PROJECT_CONFTEST

_import_torchao_quantization()  # likewise torchao, whose import the runs would otherwise repeat
import torchao.quantization.pt2e.lowering  # noqa: E402, F401 - and int8_static's, which register custom ops
import torchao.quantization.pt2e.quantize_pt2e  # noqa: E402, F401
import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: E402, F401
import torchmetrics.detection  # noqa: E402, F401 - and the mAP of detection runs (seconds to import)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir holding the tiny model repo's conftest.py."""
    pytester.makeconftest(PROJECT_CONFTEST)
    return pytester
