"""Webhook hosts checked at send time: every address the name has now, then a connection to that very address.

The resolver is patched (passed in) because no DNS server here can be made to answer a chosen name
with 10.x, 127.0.0.1 or ::1 (a DNS-rebinding attacker's trick); the connection and TLS are real: a
local HTTPS receiver with a certificate (trustme) for the host name, reached at 127.0.0.1.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
from datetime import datetime, timezone

import pytest
import requests
import trustme

from retrain.errors import SettingsError
from retrain.events import destination
from retrain.events.model import test_event as a_test_event
from retrain.events.sinks import WebhookSink
from retrain.events.subscriptions import Subscription
from tests.receiver import start_receiver

SECRET = "whsec_" + base64.b64encode(b"unit-test-signing-secret-32bytes").decode()
NAME = "hooks.example.test"


def resolving(*addresses: str, calls: list | None = None):
    """A getaddrinfo that answers every name with `addresses`, as a DNS server under someone's control would."""
    def getaddrinfo(host, port, *args, **kwargs):
        if calls is not None:
            calls.append(host)
        family = lambda a: socket.AF_INET6 if ":" in a else socket.AF_INET  # noqa: E731
        return [(family(a), socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]
    return getaddrinfo


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("172.16.0.1", "private"),
    ("192.168.1.1", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("240.0.0.1", "reserved"), ("0.0.0.0", "unspecified"),
    ("::", "unspecified"), ("fc00::1", "private"), ("100.64.0.1", "not publicly routable"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"), ("2002:a00:1::1", "private"),
])
def test_private_and_special_addresses_are_forbidden(address, kind):
    assert kind in destination.forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111", "::ffff:93.184.216.34"])
def test_public_unicast_addresses_are_allowed(address):
    assert destination.forbidden(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.0.0.5", "::ffff:127.0.0.1"])
def test_a_public_name_that_now_resolves_to_a_private_address_is_refused(address):
    with pytest.raises(destination.Refused) as refused:
        destination.resolve(f"https://{NAME}/hook", {}, resolving(address))
    assert address.removeprefix("::ffff:") in str(refused.value) and "ALLOWED_SERVICE_HOSTS" in str(refused.value)


def test_one_private_address_among_public_ones_is_refused():
    with pytest.raises(destination.Refused):
        destination.resolve(f"https://{NAME}/hook", {}, resolving("93.184.216.34", "10.0.0.5"))


def test_a_host_the_operator_listed_may_resolve_to_a_private_address():
    env = {"ALLOWED_SERVICE_HOSTS": f"{NAME}:8443"}
    checked = destination.resolve(f"https://{NAME}:8443/hook", env, resolving("10.0.0.5"))
    assert (checked.host, checked.port, checked.address) == (NAME, 8443, "10.0.0.5")
    with pytest.raises(destination.Refused):  # listed with another port: not this one
        destination.resolve(f"https://{NAME}:9443/hook", env, resolving("10.0.0.5"))


def test_a_name_that_does_not_resolve_is_unresolved_not_refused():
    def nxdomain(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    with pytest.raises(destination.Unresolved):
        destination.resolve(f"https://{NAME}/hook", {}, nxdomain)


# --- real sends over TLS to the checked address ---------------------------------------------------

@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def tls_receiver(ca, name: str):
    context = ssl_server_context(ca, name)
    return start_receiver(tls=context)


def ssl_server_context(ca, name: str):
    import ssl
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


def sink_for(receiver, ca, tmp_path, calls: list, address: str = "127.0.0.1") -> WebhookSink:
    port = receiver.server.server_address[1]
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    session = requests.Session()
    session.verify = str(bundle)
    seen = []
    session.hooks["response"].append(lambda r, *a, **kw: seen.append(r.status_code))
    session.seen = seen
    env = {"ALLOWED_SERVICE_HOSTS": f"{NAME}:{port}", "RETRAIN_SECRET_HOOK": SECRET}
    sub = Subscription("hook", f"https://{NAME}:{port}/hook", "RETRAIN_SECRET_HOOK")
    receiver.secrets["/hook"] = SECRET
    return WebhookSink(sub, env, session, resolving(address, calls=calls))


def event():
    return a_test_event("hook", "2026-01-01T00:00:00Z", "n1")


def test_the_post_goes_to_the_checked_address_with_tls_verified_for_the_host_name(ca, tmp_path):
    receiver = tls_receiver(ca, NAME)
    calls: list = []
    try:
        sink = sink_for(receiver, ca, tmp_path, calls)
        answer = sink.send(event(), datetime.now(timezone.utc))
        assert answer.ok, answer
        (request,) = receiver.at("/hook")
        assert request.verified and request.headers["host"] == f"{NAME}:{receiver.server.server_address[1]}"
        assert calls == [NAME]  # one look-up: the connection went to the address that was checked
        assert sink.session.seen == [200]  # the session's response hooks still see it (the benchmark counts)
    finally:
        receiver.stop()


def test_a_certificate_for_another_name_fails_verification(ca, tmp_path):
    receiver = tls_receiver(ca, "someone-else.example.test")
    try:
        answer = sink_for(receiver, ca, tmp_path, []).send(event(), datetime.now(timezone.utc))
        assert not answer.ok and answer.status is None and "SSLError" in answer.text
        assert receiver.at("/hook") == []
    finally:
        receiver.stop()


def test_a_send_to_a_name_rebound_to_loopback_is_refused_before_connecting(ca, tmp_path):
    receiver = tls_receiver(ca, NAME)
    try:
        sink = sink_for(receiver, ca, tmp_path, [])
        sink.env = {**sink.env, "ALLOWED_SERVICE_HOSTS": ""}  # the operator never allowed it
        with pytest.raises(SettingsError, match="resolved to 127.0.0.1, a loopback address"):
            sink.send(event(), datetime.now(timezone.utc))
        assert receiver.at("/hook") == []
    finally:
        receiver.stop()
