"""Which hosts a URL fetch may reach: public addresses only, numbers in the plain form only."""

from __future__ import annotations

import ipaddress
import re

__all__ = ["is_numeric_host", "is_public_address"]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
# One to four parts, each decimal, octal (leading 0) or hex (0x): the forms inet_aton reads.
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?", re.I)


def is_public_address(address: str) -> bool:
    """Return whether ``address`` is a globally routable unicast IP address.

    Refuses loopback, private, link-local, reserved, multicast, unspecified,
    CGNAT (100.64.0.0/10), site-local and unique-local addresses, and IPv6 forms
    that embed an IPv4 address (mapped, 6to4, NAT64) unless the embedded one is
    public. Anything that does not parse is not public.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(str(embedded))
        if ip.is_site_local:
            return False
    elif ip in _CGNAT:
        return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def is_numeric_host(host: str) -> bool:
    """Whether ``host`` is a number in a form other than a plain address.

    Octal (``0177.0.0.1``), hex (``0x7f.1``), integer (``2130706433``) and short
    (``127.1``) forms are read as addresses by system resolvers; such a host is never
    looked up as a name. Plain dotted quads (``93.184.216.34``) are not matched.
    """
    if not _NUMERIC_HOST.fullmatch(host):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False
