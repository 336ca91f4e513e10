"""The SpecCache contract over every in-tree adapter of core."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from apiq.config import CacheSettings
from apiq.ports import SpecCache
from apiq.specs.cache import MemorySpecCache
from apiq.testing import SpecCacheContract

ADAPTERS: dict[str, Callable[[CacheSettings], SpecCache]] = {
    "memory": lambda settings: MemorySpecCache(settings),
}


class TestSpecCache(SpecCacheContract):
    @pytest.fixture(params=sorted(ADAPTERS))
    def spec_cache(
        self, request: pytest.FixtureRequest, contract_settings: CacheSettings
    ) -> SpecCache:
        return ADAPTERS[request.param](contract_settings)
