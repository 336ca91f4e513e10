"""Spec ingestion: fetching, decoding, reference checks and normalisation."""

__all__: list[str] = []
