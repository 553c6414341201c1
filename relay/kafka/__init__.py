"""Kafka without faust: the ``RELAY_KAFKA_*`` client settings, reading a whole topic, the
diagnosis of a refused connection and the login gate before ``relay run`` starts faust. Used by
the pipeline and the operator tools alike; knows nothing of either."""
