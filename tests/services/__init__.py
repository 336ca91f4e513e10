"""Real HTTP services on loopback for tests: echo, flaky (429/503), redirect trap, OAuth, ...

The base (`LoopbackService`, `Reply`, `ServiceRequest`, `json_reply`) and the Petstore
service ship in `apiq.testing` (the demo runs the Petstore too); they are re-exported here.
The pytest fixtures that start and stop the services live in `tests.services.fixtures`.
"""

from __future__ import annotations

from apiq.testing.services import *  # noqa: F403
from apiq.testing.services import __all__ as __all__
