from __future__ import annotations

import socket

import pytest
from conftest import NetworkGuardError


def test_network_beyond_loopback_fails_the_test() -> None:
    with pytest.raises(NetworkGuardError):
        socket.getaddrinfo("example.org", 443)
    with socket.socket() as sock, pytest.raises(NetworkGuardError):
        sock.connect(("192.0.2.1", 80))
