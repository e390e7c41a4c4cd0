"""Every exception pytest-netzip raises, so that any layer can raise them."""

from __future__ import annotations


class BudgetError(ValueError):
    """A threshold marker was written wrongly; the message names the bad word and the valid ones."""


class DataError(TypeError):
    """The evaluation data or the model's outputs are not what the plugin can score."""


class MetricUnavailable(Exception):
    """Raised by a metric that cannot be measured here; the message says why.

    ``metric`` is the name it was read by, where a result's metrics were read (None where raised directly).
    """

    metric: str | None = None

    @property
    def reason(self) -> str:
        """Why the metric could not be measured."""
        return str(self.args[0]) if self.args else "unavailable"


class WrongTask(MetricUnavailable):
    """Raised where a metric needs another kind of model (a classifier's top1 on a detector).

    The message says what is needed and what the model is; the metric's name is put before it.
    """


class CompressionError(RuntimeError):
    """A compressor could not be applied to a model."""


class CompressorUnsupported(CompressionError):
    """A compressor does not apply on this device or machine: its items skip with the message."""


class StorageError(Exception):
    """A saved run cannot be read or found; the message names the file or the storage folder."""


class ReportError(Exception):
    """No report can be written: matplotlib is missing or the document is not a run; the message says what to do."""


class AttackError(RuntimeError):
    """An attack could not run or did not keep to its budget; the message says which and why."""


class InputSpaceError(ValueError):
    """The declared input space does not fit the inputs; the message says what to define."""
