"""APIQ reference server (Litestar): arrives with the "Reference server" issue.

The package installs and imports now so the workspace shape holds from the start.
"""

from __future__ import annotations

__all__: list[str] = []
