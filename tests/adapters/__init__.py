"""Tests of the adapters in `apiq_adapters` against real backends."""
