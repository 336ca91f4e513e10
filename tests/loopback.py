"""The loopback HTTP machinery lives in `apiq.testing.loopback`; tests import it from here."""

from __future__ import annotations

from apiq.testing.loopback import *  # noqa: F403
from apiq.testing.loopback import __all__ as __all__
