"""Where a webhook may connect, decided at send time: resolve the host once, check every address, connect to it.

A subscription's URL is checked when it is registered (`subscriptions.url_problem`), but a host
name may resolve elsewhere later (DNS rebinding: public at registration, `10.0.0.5` or `127.0.0.1`
at send time). So each send resolves the host, refuses it when any of its addresses is private,
loopback, link-local, multicast, reserved or unspecified (IPv4 and IPv6, including IPv4 addresses
inside IPv6: v4-mapped, 6to4, Teredo), unless the operator listed the host in
`ALLOWED_SERVICE_HOSTS`, and then connects to the address it checked: no second look-up. TLS is
still verified against the host name (SNI and certificate), and the `Host` header names the host.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH, extract_zipped_paths
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool

from .subscriptions import ALLOWED_HOSTS_SETTING, _listed

Resolver = Callable[..., list]  # socket.getaddrinfo's signature
lookup: Resolver = socket.getaddrinfo  # the resolver used when a caller passes none (tests replace it, saying why)
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The host resolved to an address events may not go to; the message says which and how to allow it."""


class Unresolved(Exception):
    """The host name did not resolve now (possibly a passing DNS failure)."""


def forbidden(address: Address) -> str | None:
    """What kind of address this is ("a loopback address") when events may not go there; None when public."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            kind = forbidden(address.ipv4_mapped)
            return kind and f"{kind} ({address.ipv4_mapped} inside an IPv6 address)"
        embedded = address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None and (kind := forbidden(embedded)):
            return f"{kind} ({embedded} inside an IPv6 address)"
    for kind, test in (("a loopback", address.is_loopback), ("a link-local", address.is_link_local),
                       ("a multicast", address.is_multicast), ("an unspecified", address.is_unspecified),
                       ("a reserved", address.is_reserved), ("a private", address.is_private),
                       ("a not publicly routable", not address.is_global)):
        if test:
            return f"{kind} address"
    return None


@dataclass(frozen=True)
class Destination:
    """The checked target of one send: the URL as registered and the one address it will connect to."""

    url: str
    host: str
    port: int
    address: str


def resolve(url: str, env: Mapping[str, str], resolver: Resolver | None = None) -> Destination:
    """Look the URL's host up once and check every address it has; raise `Refused` or `Unresolved`."""
    resolver = resolver or lookup
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = resolver(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as e:
        raise Unresolved(f"host {host} did not resolve ({type(e).__name__}: {e})") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in found))
    if not addresses:
        raise Unresolved(f"host {host} has no address")
    listed = _listed(env, ALLOWED_HOSTS_SETTING)
    if host not in listed and f"{host}:{port}" not in listed:
        for address in addresses:
            if (kind := forbidden(address)):
                raise Refused(f"host {host} resolved to {address}, {kind}; events are sent only to "
                              f"public addresses unless the host is listed in {ALLOWED_HOSTS_SETTING}")
    return Destination(url, host, port, str(addresses[0]))


class PinnedAdapter(HTTPAdapter):
    """Connects to the checked address; TLS is verified for the URL's host name, as without pinning."""

    def __init__(self, destination: Destination):
        self.destination = destination
        self.pools: list[HTTPConnectionPool] = []
        super().__init__(max_retries=0)

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        pool = self._pool(request, verify)
        self.pools.append(pool)
        return pool

    def close(self) -> None:
        for pool in self.pools:
            pool.close()
        super().close()

    def _pool(self, request, verify) -> HTTPConnectionPool:
        d = self.destination
        if urlsplit(request.url).scheme != "https":
            return HTTPConnectionPool(d.address, d.port, maxsize=1)
        if verify is False:
            return HTTPSConnectionPool(d.address, d.port, maxsize=1, cert_reqs="CERT_NONE", server_hostname=d.host,
                                       assert_hostname=False)
        bundle = verify if isinstance(verify, str) else extract_zipped_paths(DEFAULT_CA_BUNDLE_PATH)
        where = {"ca_cert_dir": bundle} if os.path.isdir(bundle) else {"ca_certs": bundle}
        return HTTPSConnectionPool(d.address, d.port, maxsize=1, cert_reqs="CERT_REQUIRED", server_hostname=d.host,
                                   assert_hostname=d.host, **where)

    def add_headers(self, request, **kwargs):
        default = 443 if urlsplit(request.url).scheme == "https" else 80
        d = self.destination
        name = f"[{d.host}]" if ":" in d.host else d.host
        request.headers["Host"] = name if d.port == default else f"{name}:{d.port}"


def post(session: requests.Session, destination: Destination, body: bytes, headers: dict[str, str],
         timeout: tuple[float, float]) -> requests.Response:
    """POST to the checked address with the session's response hooks and CA settings; no proxy, no redirect."""
    pinned = requests.Session()
    pinned.trust_env = False  # a proxy would resolve the name again
    pinned.hooks = session.hooks
    pinned.verify = session.verify if session.verify is not True else (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True)
    adapter = PinnedAdapter(destination)
    pinned.mount("http://", adapter)
    pinned.mount("https://", adapter)
    try:
        return pinned.post(destination.url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    finally:
        pinned.close()
