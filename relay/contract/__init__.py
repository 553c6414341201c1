"""The input side of the pipeline: what producers send (schemas, framings, typed records).

``relay.contract.encode(record_type, value, framing=...)`` is the producer's entry point; the
relay decodes with ``relay.contract.decode.Decoder``.
"""

from relay.contract.encode import encode, encode_activity

__all__ = ["encode", "encode_activity"]
