"""The input side of the pipeline: what producers send (schemas, framings, typed records)."""
