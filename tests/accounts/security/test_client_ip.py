"""Which address is the client's: the direct peer, unless a trusted proxy says otherwise."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from pipetower.core.http import client_ip

rf = RequestFactory()


def request_from(peer: str, **headers: str):  # type: ignore[no-untyped-def]
    return rf.get("/", REMOTE_ADDR=peer, **headers)


def test_without_trusted_proxies_a_forged_x_forwarded_for_is_ignored(settings):
    settings.TRUSTED_PROXIES = []
    request = request_from("203.0.113.9", HTTP_X_FORWARDED_FOR="8.8.8.8")
    assert client_ip(request) == "203.0.113.9"


def test_a_forwarded_address_from_an_untrusted_peer_is_ignored(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = request_from("203.0.113.9", HTTP_X_FORWARDED_FOR="8.8.8.8")
    assert client_ip(request) == "203.0.113.9"


def test_behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.10"]
    # The client claims to be 1.1.1.1; the proxy appended what it saw.
    request = request_from("10.0.0.5", HTTP_X_FORWARDED_FOR="1.1.1.1, 8.8.8.8, 192.0.2.10")
    assert client_ip(request) == "8.8.8.8"


def test_when_every_hop_is_a_trusted_proxy_the_left_most_is_used(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = request_from("10.0.0.5", HTTP_X_FORWARDED_FOR="10.1.1.1, 10.2.2.2")
    assert client_ip(request) == "10.1.1.1"


def test_trusted_proxy_without_forwarded_header_gives_the_peer(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(request_from("10.0.0.5")) == "10.0.0.5"


@pytest.mark.parametrize(
    "header",
    ["not-an-ip", "8.8.8.8, garbage", "8.8.8.8,,", "999.1.1.1", "[2001:db8::1", "1.2.3.4:http"],
)
def test_a_malformed_forwarded_header_falls_back_to_the_peer(settings, header):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(request_from("10.0.0.5", HTTP_X_FORWARDED_FOR=header)) == "10.0.0.5"


def test_forwarded_hops_may_carry_ports_and_ipv6_brackets(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(request_from("10.0.0.5", HTTP_X_FORWARDED_FOR="8.8.8.8:4711")) == "8.8.8.8"
    request = request_from("10.0.0.5", HTTP_X_FORWARDED_FOR="[2001:4860:4860::8888]:443")
    assert client_ip(request) == "2001:4860:4860::8888"


def test_an_overlong_forwarded_chain_is_not_walked(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    chain = ", ".join(["8.8.8.8"] * 200)
    assert client_ip(request_from("10.0.0.5", HTTP_X_FORWARDED_FOR=chain)) == "10.0.0.5"


def test_cloudflare_header_is_believed_only_from_a_trusted_proxy(settings):
    settings.TRUSTED_PROXIES = ["173.245.48.0/20"]
    settings.CLIENT_IP_HEADER = "CF-Connecting-IP"
    from_cloudflare = request_from(
        "173.245.48.7", HTTP_CF_CONNECTING_IP="81.2.69.142", HTTP_X_FORWARDED_FOR="9.9.9.9"
    )
    assert client_ip(from_cloudflare) == "81.2.69.142"
    direct = request_from("203.0.113.9", HTTP_CF_CONNECTING_IP="81.2.69.142")
    assert client_ip(direct) == "203.0.113.9"


def test_a_malformed_client_ip_header_falls_back_to_the_peer(settings):
    settings.TRUSTED_PROXIES = ["173.245.48.0/20"]
    settings.CLIENT_IP_HEADER = "CF-Connecting-IP"
    request = request_from("173.245.48.7", HTTP_CF_CONNECTING_IP="81.2.69.142, 1.1.1.1")
    assert client_ip(request) == "173.245.48.7"
    missing = request_from("173.245.48.7")
    assert client_ip(missing) == "173.245.48.7"


def test_ipv4_mapped_ipv6_peers_are_shown_as_ipv4(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip(request_from("::ffff:81.2.69.142")) == "81.2.69.142"


def test_a_request_without_a_usable_peer_address_has_no_client_ip(settings):
    assert client_ip(request_from("")) is None
    assert client_ip(request_from("unix-socket")) is None
    assert client_ip(None) is None


def test_a_bad_trusted_proxy_setting_stops_start_up_with_a_clear_message(monkeypatch):
    import importlib

    import pipetower.config.settings as real_settings
    from pipetower.config.env import ConfigurationError

    monkeypatch.setenv("PIPETOWER_TRUSTED_PROXIES", "10.0.0.0/8, proxy.example.com")
    with pytest.raises(ConfigurationError, match=r"'proxy\.example\.com' is not an IP address"):
        importlib.reload(real_settings)
    monkeypatch.setenv("PIPETOWER_TRUSTED_PROXIES", "")
    monkeypatch.setenv("PIPETOWER_CLIENT_IP_HEADER", "CF-Connecting-IP")
    with pytest.raises(ConfigurationError, match="set PIPETOWER_TRUSTED_PROXIES too"):
        importlib.reload(real_settings)
    monkeypatch.delenv("PIPETOWER_CLIENT_IP_HEADER")
    importlib.reload(real_settings)
