"""The command line: a root app (:mod:`~.app`) and one module per command group. Every step runs by hand
and inside a pod (`warriorflow COMMAND`, or `python -m warriorflow.cli COMMAND`)."""

from warriorflow.cli.app import main

__all__ = ["main"]
