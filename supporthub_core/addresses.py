"""The client's address, and the key per-address limits count it under.

Behind a load balancer every connection comes from the balancer's address, and the
client's own is in a header the balancer adds. Anyone can send that header, so it is
believed only from a trusted proxy (setting `trusted_proxies`: addresses and CIDRs):

* the socket peer is not a trusted proxy: the peer is the client; headers are ignored;
* it is: the chain in the configured header (`X-Forwarded-For`, or RFC 7239 `Forwarded`
  with `forwarded_header = "forwarded"`) is read from the right, skipping trusted
  proxies; the first address that is not one is the client. Entries to its left were
  written by the client itself and are never believed. If that entry is not an address
  (`unknown`, an obfuscated name, garbage) the nearest trusted hop stands for the client.

Only one header is read, the one the operator's proxy writes: a proxy that writes one
passes the other through untouched, as the client sent it.

Per-address limits count IPv6 clients per /64 (setting `address_ipv6_prefix`): one
subscriber usually holds a whole /64 and could otherwise rotate through it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(spec: str | None) -> tuple[Network, ...]:
    """`"10.0.0.0/8, 192.168.1.7, ::1"` -> networks; ValueError on a bad entry."""
    if not spec:
        return ()
    nets = []
    for part in spec.split(","):
        part = part.strip()
        if part:
            nets.append(ipaddress.ip_network(part, strict=False))
    return tuple(nets)


def _address(text: str) -> Address | None:
    """An address from a header entry: `1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `"[::1]"`, `::1`."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: Address, networks: tuple[Network, ...]) -> bool:
    return any(addr.version == net.version and addr in net for net in networks)


def _chain_xff(values: Iterable[str]) -> list[str]:
    return [part for value in values for part in value.split(",") if part.strip()]


def _chain_forwarded(values: Iterable[str]) -> list[str]:
    """The `for=` of each element of RFC 7239 `Forwarded` headers, in order."""
    chain = []
    for value in values:
        for element in value.split(","):
            found = "unknown"
            for pair in element.split(";"):
                name, _, val = pair.partition("=")
                if name.strip().lower() == "for":
                    found = val.strip()
            chain.append(found)
    return chain


def client_address(
    peer: str | None,
    headers: Iterable[tuple[str, str]],
    trusted: tuple[Network, ...],
    header: str = "x-forwarded-for",
) -> str:
    """The client's address: the socket `peer`, or (from a trusted proxy) what the proxy
    chain in `header` says. `headers` are (lowercase name, value) pairs in order."""
    peer = peer or "?"
    if not trusted:
        return peer
    peer_addr = _address(peer)
    if peer_addr is None or not _trusted(peer_addr, trusted):
        return peer
    values = [v for k, v in headers if k == header]
    if not values:
        return peer
    chain = _chain_forwarded(values) if header == "forwarded" else _chain_xff(values)
    client = peer_addr
    for entry in reversed(chain):
        addr = _address(entry)
        if addr is None:
            break  # not an address: the nearest trusted hop stands for the client
        client = addr
        if not _trusted(addr, trusted):
            break
    return str(client)


def asgi_headers(scope: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers") or ()
    ]


@lru_cache(maxsize=4096)
def limit_key(address: str, ipv6_prefix: int = 64) -> str:
    """What per-address limits count under: the address, an IPv6 one as its /prefix."""
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(addr, ipaddress.IPv6Address) and ipv6_prefix < 128:
        return str(ipaddress.ip_network(f"{addr}/{ipv6_prefix}", strict=False))
    return address


class ClientAddresses:
    """The settings' view: whose headers to believe, which header, how IPv6 is grouped."""

    def __init__(self, trusted_proxies: str | None, header: str, ipv6_prefix: int = 64):
        self.trusted = parse_networks(trusted_proxies)
        self.header = header
        self.ipv6_prefix = ipv6_prefix

    def of(self, peer: str | None, headers: Iterable[tuple[str, str]]) -> str:
        return client_address(peer, headers, self.trusted, self.header)

    def of_scope(self, scope: Mapping[str, Any]) -> str:
        """The client's address of an ASGI connection (HTTP or WebSocket)."""
        peer = (scope.get("client") or ("?", 0))[0]
        return self.of(peer, asgi_headers(scope) if self.trusted else ())

    def key(self, address: str) -> str:
        return limit_key(address, self.ipv6_prefix)
