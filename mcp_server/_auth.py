"""A bearer-token verifier for one static token (``M2_AUTH_TOKEN``), for the SDK's HTTP auth."""

from __future__ import annotations

import hashlib
import hmac

from mcp.server.auth.provider import AccessToken

__all__ = ["StaticTokenVerifier"]


class StaticTokenVerifier:
    """Accepts exactly one token, compared in constant time.

    Args:
        token: The shared secret clients send as ``Authorization: Bearer <token>``.
    """

    def __init__(self, token: str) -> None:
        if not token.strip():
            # Why: a blank secret is no secret; a client sending an empty bearer would pass.
            raise ValueError("the bearer token must not be empty or whitespace")
        # Why: comparing digests keeps the time independent of the token's length as well.
        self._digest = hashlib.sha256(token.encode()).digest()

    async def verify_token(self, token: str) -> AccessToken | None:
        """Return the access granted to ``token``, or None when it is not the configured one."""
        offered = hashlib.sha256(token.encode()).digest()
        if not hmac.compare_digest(offered, self._digest):
            return None
        return AccessToken(token="static", client_id="m2-tools-client", scopes=[])
