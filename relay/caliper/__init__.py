"""The output model: Caliper v1p2 events as TimeBack accepts them.

- ``ids``: deterministic event ids, entity IRIs, the ``.SSSZ`` time format;
- ``events``: one pure builder per event type;
- ``validate``: the rule checker (Caliper + TimeBack), used by the relay and the sandbox.
"""
