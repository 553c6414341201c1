"""Operator tools, apart from the path of a record: ``relay check``, the dead-letter commands,
the Kafka login gate and diagnosis, the Schema Registry report. Nothing in ``relay.pipeline``
imports from here."""
