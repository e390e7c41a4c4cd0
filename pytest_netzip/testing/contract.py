"""What the contract testers share: a contract is a class whose ``test_*`` methods are its clauses."""

from __future__ import annotations


class Contract:
    """A contract whose clauses are its ``test_*`` methods."""

    @classmethod
    def clauses(cls) -> list[str]:
        """The names of the contract's clauses, the ``test_*`` methods."""
        return sorted(name for name in dir(cls) if name.startswith("test_"))
