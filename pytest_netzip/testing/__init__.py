"""Contract tests for compressors and metrics, to run on the built-ins and on your own.

Subclass a tester in a test module (name the subclass ``Test...`` so pytest collects it) and say what
to check; each clause of the contract is then a test of its own::

    class TestHalfLinear(CompressorTester):
        compressor = HalfLinear()

        def make_model(self):
            return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()

        def example_input(self):
            return torch.randn(1, 4)

or call one at once, as a parametrised test over many does: ``CompressorTester.check(HalfLinear(),
model, example_input)`` and ``MetricTester.check(metric, reference, compressed, data)``. A broken
clause fails with an AssertionError that names it; a compressor that says it does not apply here
(CompressorUnsupported) skips the subclass's tests, and ``check`` returns its reason.
"""

from pytest_netzip.testing.compressors import CompressorTester
from pytest_netzip.testing.metrics import MetricTester

__all__ = ["CompressorTester", "MetricTester"]
