"""Fetch an image URL from public addresses only (the URL half of image intake).

Policy, checked on the first request and again on every redirect hop:

- only ``http`` and ``https``; URLs carrying credentials (``user:pass@``) are refused;
- a host written as a number in any form but the plain one (``0177.0.0.1``, ``0x7f.1``,
  ``2130706433``, ``127.1``) is refused before any lookup: resolvers read those as
  addresses, and no public service is reached that way;
- the host is resolved and *every* address must be public (see :func:`is_public_address`);
- the connection goes to the address that was checked, not to a second DNS answer:
  the request URL's host is replaced by that address, the ``Host`` header keeps the
  name, and for ``https`` the ``sni_hostname`` extension makes TLS send the name and
  verify the certificate against it. This closes the DNS-rebinding gap between the
  check and the connection;
- at most ``max_redirects`` redirects, followed by hand; one deadline for the whole
  fetch (DNS included); the body is streamed and reading stops past ``max_bytes``.

The client ignores proxy variables and ``.netrc`` (``trust_env=False``): a remote
caller must never make the server send its own credentials, and a proxy would
connect on our behalf to addresses we did not check. Keep-alive is off, so a TLS
connection verified for one name is never reused for another name on the same IP.

Residual risk: every resolved address is checked but only the first that accepts a
connection is used; a resolver that times out is abandoned on a daemon thread.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence

import httpx

from m2_tools.errors import ImageTooLarge, InvalidArgument, UrlFetchFailed, UrlNotAllowed
from m2_tools.intake.addresses import is_numeric_host, is_public_address

__all__ = ["Resolver", "UrlFetcher", "is_public_address", "system_resolver"]

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], Sequence[str]]

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "m2-tools image intake"


def system_resolver(host: str, port: int) -> Sequence[str]:
    """Resolve ``host`` with the operating system's resolver (``getaddrinfo``)."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


class UrlFetcher:
    """Downloads image bytes from public http(s) URLs under the policy above.

    Args:
        max_bytes: Largest body accepted; reading stops just past it.
        timeout_s: Deadline for the whole fetch, redirects and DNS included.
        max_redirects: Redirects followed before giving up.
        transport: httpx transport to send through; tests pass ``httpx.MockTransport``.
        resolver: ``(host, port) -> addresses``; defaults to :func:`system_resolver`.
    """

    def __init__(
        self,
        *,
        max_bytes: int,
        timeout_s: float,
        max_redirects: int,
        transport: httpx.BaseTransport | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s
        self._max_redirects = max_redirects
        self._transport = transport
        self._resolver: Resolver = resolver or system_resolver
        self._ssl_context: ssl.SSLContext | None = None

    def fetch(self, url: str, name: str) -> bytes:
        """Return the body of ``url``; ``name`` is how error messages refer to it.

        Raises:
            UrlNotAllowed: Bad scheme, credentials, non-public address, too many redirects.
            UrlFetchFailed: Network or HTTP error, or the deadline passed (retryable).
            ImageTooLarge: The body is larger than ``max_bytes``.
            InvalidArgument: The URL does not parse.
        """
        deadline = time.monotonic() + self._timeout_s
        try:
            current = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            if is_numeric_host(_host_of(url)):
                raise _numeric_host_refused(name) from None
            raise InvalidArgument(f"{name} is not a valid http(s) URL") from None
        client = self._client()
        try:
            for hop in range(self._max_redirects + 1):
                addresses = self._checked_addresses(current, name, deadline, hop)
                location = self._get(client, current, addresses, name, deadline)
                if isinstance(location, bytes):
                    return location
                try:
                    current = current.join(location)
                except (httpx.InvalidURL, TypeError, ValueError):
                    raise UrlFetchFailed(f"{name} redirected to an invalid URL") from None
        finally:
            # An injected transport belongs to the caller; closing the client would close it.
            if self._transport is None:
                client.close()
        raise UrlNotAllowed(
            f"{name} redirected more than {self._max_redirects} times; pass the final URL"
        )

    def _client(self) -> httpx.Client:
        transport = self._transport
        if transport is None:
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            transport = httpx.HTTPTransport(
                verify=self._ssl_context,
                trust_env=False,
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return httpx.Client(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"},
        )

    def _checked_addresses(self, url: httpx.URL, name: str, deadline: float, hop: int) -> list[str]:
        where = name if hop == 0 else f"a redirect of {name}"
        if url.scheme not in ("http", "https"):
            raise UrlNotAllowed(f"{where} uses scheme {url.scheme!r}; only http and https")
        if url.userinfo:
            raise UrlNotAllowed(f"{where} carries credentials; URLs with user:pass@ are refused")
        host = url.raw_host.decode("ascii")
        if not host:
            raise UrlNotAllowed(f"{where} has no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            if is_numeric_host(host):
                raise _numeric_host_refused(where) from None
            addresses = self._resolve(host, port, where, deadline)
        refused = [a for a in addresses if not is_public_address(a)]
        if refused:
            # The addresses go to the server log only: telling a remote caller what an
            # internal name resolves to would itself be a leak.
            logger.warning("refused URL host %s: non-public address(es) %s", host, refused)
            raise UrlNotAllowed(
                f"{where} points to a non-public address (loopback, private, link-local "
                "or reserved); only public hosts may be fetched"
            )
        return addresses

    def _resolve(self, host: str, port: int, where: str, deadline: float) -> list[str]:
        # getaddrinfo has no timeout of its own, so it runs on a daemon thread that we
        # stop waiting for at the deadline.
        outcome: dict[str, object] = {}

        def work() -> None:
            try:
                outcome["ok"] = [a.split("%", 1)[0] for a in self._resolver(host, port)]
            except Exception as exc:  # reported below as a fetch failure
                outcome["error"] = exc

        thread = threading.Thread(target=work, name="m2-intake-dns", daemon=True)
        thread.start()
        thread.join(max(0.0, deadline - time.monotonic()))
        found = outcome.get("ok")
        if not isinstance(found, list) or not found:
            reason = "timed out" if thread.is_alive() else "failed"
            logger.info("DNS for %s %s: %r", host, reason, outcome.get("error"))
            raise UrlFetchFailed(f"could not resolve the host of {where} (DNS {reason})")
        return list(dict.fromkeys(str(a) for a in found))

    def _get(
        self,
        client: httpx.Client,
        url: httpx.URL,
        addresses: Sequence[str],
        name: str,
        deadline: float,
    ) -> bytes | str:
        """One hop: the body on success, or the ``Location`` of a redirect."""
        headers = {"Host": url.netloc.decode("ascii")}
        extensions: dict[str, object] = {}
        host = url.raw_host.decode("ascii")
        if url.scheme == "https" and not _is_ip_literal(host):
            extensions["sni_hostname"] = host
        for index, address in enumerate(addresses):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UrlFetchFailed(f"fetching {name} took longer than {self._timeout_s:g} s")
            request = client.build_request(
                "GET",
                url.copy_with(host=address),
                headers=headers,
                extensions=extensions,
                timeout=httpx.Timeout(remaining),
            )
            try:
                response = client.send(request, stream=True)
            except httpx.ConnectError:
                if index + 1 < len(addresses):
                    continue
                raise UrlFetchFailed(f"could not connect to the host of {name}") from None
            except httpx.TimeoutException:
                raise UrlFetchFailed(
                    f"fetching {name} took longer than {self._timeout_s:g} s"
                ) from None
            except httpx.HTTPError as exc:
                raise UrlFetchFailed(f"fetching {name} failed ({type(exc).__name__})") from None
            try:
                return self._read(response, name, deadline)
            finally:
                response.close()
        raise UrlFetchFailed(f"could not connect to the host of {name}")  # pragma: no cover

    def _read(self, response: httpx.Response, name: str, deadline: float) -> bytes | str:
        status = response.status_code
        if status in _REDIRECT_CODES:
            location = str(response.headers.get("Location", ""))
            if not location:
                raise UrlFetchFailed(f"{name} answered HTTP {status} without a Location")
            return location
        if not 200 <= status < 300:
            raise UrlFetchFailed(f"{name} answered HTTP {status}")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise ImageTooLarge(
                f"{name} is {int(declared):,} bytes, more than {self._limit_text()}"
            )
        body = bytearray()
        try:
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise ImageTooLarge(f"{name} is larger than {self._limit_text()}")
                if time.monotonic() > deadline:
                    raise UrlFetchFailed(f"fetching {name} took longer than {self._timeout_s:g} s")
        except httpx.TimeoutException:
            raise UrlFetchFailed(
                f"fetching {name} took longer than {self._timeout_s:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise UrlFetchFailed(f"fetching {name} failed ({type(exc).__name__})") from None
        return bytes(body)

    def _limit_text(self) -> str:
        return f"{self._max_bytes / 2**20:g} MiB, the image size limit"


def _host_of(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _numeric_host_refused(where: str) -> UrlNotAllowed:
    return UrlNotAllowed(
        f"{where} gives its host as a non-standard numeric address (octal, hex or short "
        "form); only public hosts, by name or as a plain address, may be fetched"
    )


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
