"""Operator tools, apart from the path of a record: ``relay check``, ``relay dlq`` (inspect and
replay) and the dead-letter topic as an operator reads it. Nothing in ``relay.pipeline`` imports
from here."""
