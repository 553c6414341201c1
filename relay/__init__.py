"""timeback-relay: Kafka activity records to TimeBack Caliper events."""

__version__ = "0.1.0"
