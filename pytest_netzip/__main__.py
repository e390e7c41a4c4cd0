"""``python -m pytest_netzip``: the command line of :mod:`pytest_netzip.output.cli`."""

from pytest_netzip.output.cli import main

raise SystemExit(main())
