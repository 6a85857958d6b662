"""SSRF guard: address classification, lenient host parsing and the allow-list."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address

import pytest

from proxy.catalog.netguard import GuardError, HostGuard, forbidden_kind, parse_host


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:7f00:1", "::ffff:7f00:1"),
        ("fe80::1%eth0", "fe80::1"),
        ("10.0.0.1.", "10.0.0.1"),
        ("example.com", None),
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
        ("0x", "0.0.0.0"),
    ],
)
def test_parse_host_follows_inet_aton(host: str, expected: str | None) -> None:
    """Numeric host forms resolve to the address the socket layer would use."""
    parsed = parse_host(host)
    assert (str(parsed) if parsed is not None else None) == expected


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.100.100.200",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "2002:7f00:1::",
        "::127.0.0.1",
    ],
)
def test_forbidden_addresses(address: str) -> None:
    """Private, loopback, link-local, metadata, multicast, reserved and embedded forms fail."""
    assert forbidden_kind(ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    """Global unicast addresses are allowed."""
    assert forbidden_kind(ip_address(address)) is None


async def test_name_resolving_to_private_is_refused() -> None:
    """A public-looking name whose DNS answer is private is refused."""

    async def resolve(host: str) -> list[str]:
        return ["93.184.216.34", "10.0.0.5"]

    with pytest.raises(GuardError) as info:
        await HostGuard(resolver=resolve).resolve("images.example.com")
    assert info.value.reason == "forbidden_address"
    assert "10.0.0.5" in info.value.detail


async def test_allow_list_by_cidr_and_name() -> None:
    """Allow-listed CIDRs and names pass; everything else private stays refused."""

    async def resolve(host: str) -> list[str]:
        return {"img.corp.example": ["10.9.9.9"], "other.example": ["10.9.9.9"]}[host]

    guard = HostGuard(["127.0.0.0/8", "*.corp.example"], resolver=resolve)
    assert await guard.resolve("127.0.0.1") == [IPv4Address("127.0.0.1")]
    assert await guard.resolve("img.corp.example") == [IPv4Address("10.9.9.9")]
    with pytest.raises(GuardError):
        await guard.resolve("other.example")
    with pytest.raises(GuardError):
        await guard.resolve("[::1]")


async def test_dns_failure_is_unreachable() -> None:
    """A name that does not resolve is reported unreachable, not forbidden."""

    async def resolve(host: str) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(GuardError) as info:
        await HostGuard(resolver=resolve).resolve("nowhere.invalid")
    assert info.value.reason == "unreachable"
