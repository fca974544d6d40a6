"""OracleTarget.connect with the real python-oracledb thin driver against a port where nothing
listens: a clear ConnectionFailed with a hint, and the password never in the message."""

from __future__ import annotations

import socket

import pytest

from sqlambda.errors import ConnectionFailed
from sqlambda.targets.oracle import OracleTarget


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_listener_is_connection_failed_without_the_password():
    pytest.importorskip("oracledb")
    port = _closed_port()
    with pytest.raises(ConnectionFailed) as info:
        OracleTarget().connect(f"scott/t1ger-secret@127.0.0.1:{port}/FREEPDB1")
    err = info.value
    assert f"127.0.0.1:{port}/FREEPDB1" in err.message
    assert "t1ger-secret" not in err.message and "t1ger-secret" not in (err.hint or "")
    assert err.hint and err.exit_code == 5
