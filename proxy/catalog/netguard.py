"""SSRF guard: which addresses the proxy may connect to when it pre-flights a URL.

Forbidden: loopback, private, link-local, multicast, reserved, unspecified,
shared (CGNAT) and any other non-global address, the cloud metadata endpoints,
and the same hidden inside IPv6 (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96,
6to4 2002::/16, Teredo). Host strings are parsed the way ``inet_aton`` does
(``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``), because that is what
the socket layer would connect to. Operators may allow internal hosts by name
(``images.internal``, ``*.corp.example``) or by CIDR (``10.1.0.0/16``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address
DnsResolver = Callable[[str], Awaitable[list[str]]]

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "192.0.0.192", "fd00:ec2::254")
)
_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")


class GuardError(OSError):
    """A host the guard refuses (``reason`` forbidden_address) or cannot resolve (unreachable)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_ipv4_lenient(host: str) -> IPv4Address | None:
    """``inet_aton`` semantics: 1-4 parts, each decimal, 0x-hex or 0-octal."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        try:
            if part[:2].lower() == "0x":
                values.append(int(part[2:], 16) if len(part) > 2 else 0)
            elif len(part) > 1 and part[0] == "0":
                values.append(int(part[1:], 8))
            else:
                values.append(int(part, 10) if part.isdigit() else -1)
        except ValueError:
            return None
        if values[-1] < 0:
            return None
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for v in head:
        number = number * 256 + v
    return IPv4Address(number * 256 ** (4 - len(head)) + last)


def parse_host(host: str) -> IPAddress | None:
    """The address a host string denotes literally, or ``None`` for a DNS name."""
    text = host.strip().strip("[]").rstrip(".")
    text = text.split("%", 1)[0]  # IPv6 zone id
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return parse_ipv4_lenient(text) if text else None


def embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _NAT64_LOCAL or (int(ip) >> 32 == 0 and int(ip) > 1):
        return IPv4Address(int(ip) & 0xFFFFFFFF)  # NAT64 or IPv4-compatible ::a.b.c.d
    return None


def forbidden_kind(ip: IPAddress) -> str | None:
    """Why connecting to ``ip`` is forbidden, or ``None`` if it is a public address."""
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    if isinstance(ip, IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            kind = forbidden_kind(inner)
            if kind is not None:
                return f"{kind} (embedded in IPv6)"
    for attr, kind in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, attr):
            return kind
    return None if ip.is_global else "non-global"


async def system_resolve(host: str) -> list[str]:
    """Addresses of ``host`` from the operating system's resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class HostGuard:
    """Resolve and vet hosts; one answer is cached briefly so check and connect agree."""

    def __init__(
        self,
        allow: Iterable[str] = (),
        *,
        resolver: DnsResolver | None = None,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._networks: list[IPv4Network | IPv6Network] = []
        self._names: set[str] = set()
        self._suffixes: list[str] = []
        for entry in allow:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                name = entry.lower().rstrip(".")
                if name.startswith("*."):
                    self._suffixes.append(name[1:])
                else:
                    self._names.add(name)
        self._resolver = resolver or system_resolve
        self._ttl, self._clock = ttl, clock
        self._cache: dict[str, tuple[float, list[IPAddress]]] = {}

    def name_allowed(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return name in self._names or any(name.endswith(s) for s in self._suffixes)

    def check_ip(self, ip: IPAddress, host: str = "") -> None:
        """Raise ``GuardError`` unless ``ip`` may be connected to."""
        if any(ip.version == net.version and ip in net for net in self._networks):
            return
        kind = forbidden_kind(ip)
        if kind is not None:
            shown = f"{host} -> {ip}" if host and host != str(ip) else str(ip)
            raise GuardError("forbidden_address", f"{shown} is a {kind} address")

    async def resolve(self, host: str) -> list[IPAddress]:
        """Vetted addresses of ``host``; every one must pass, or ``GuardError``."""
        key = host.lower().rstrip(".")
        literal = parse_host(key)
        if literal is not None:
            self.check_ip(literal, host)
            return [literal]
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            raw = await self._resolver(key)
        except (OSError, ValueError) as exc:  # ValueError: IDNA errors, NUL in the name
            raise GuardError("unreachable", f"cannot resolve {host[:100]}: {exc}") from exc
        addresses = [a for a in (parse_host(r) for r in raw) if a is not None]
        if not addresses:
            raise GuardError("unreachable", f"{host} has no addresses")
        if not self.name_allowed(key):
            for ip in addresses:
                self.check_ip(ip, host)
        if len(self._cache) > 1024:
            self._cache.clear()
        self._cache[key] = (now + self._ttl, addresses)
        return addresses
