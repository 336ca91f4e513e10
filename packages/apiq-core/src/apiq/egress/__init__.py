"""The egress policy: one guard for every outbound request APIQ makes.

Spec fetches, `$ref` targets, `servers[].url` at execution, OAuth endpoints and every
redirect hop go through it (SECURITY.md, "The five places SSRF can enter"):

- `EgressPolicy.check(url)` allows http(s) URLs whose host resolves only to public
  addresses (or to loopback, for exact pairs on the `APIQ_EGRESS_ALLOW` test allow-list);
- `EgressTransport` / `egress_client` check each request and connect to the checked
  address, keeping the Host header and TLS name (no second lookup: DNS rebinding);
- `send_following_redirects` follows at most `max_redirects` hops, each checked, dropping
  credentials when a hop leaves the origin.
"""

from __future__ import annotations

from apiq.egress.policy import CheckedTarget, EgressPolicy, Resolver
from apiq.egress.redirects import send_following_redirects
from apiq.egress.transport import EgressTransport, egress_client

__all__ = [
    "CheckedTarget",
    "EgressPolicy",
    "EgressTransport",
    "Resolver",
    "egress_client",
    "send_following_redirects",
]
