"""The lean path's transport against real local servers: TLS verification (CA bundle, hostname) and
proxies as botocore honours them (HTTP_PROXY with the absolute URL and Proxy-Authorization,
HTTPS_PROXY through a CONNECT tunnel that never sees the signed headers, NO_PROXY bypass)."""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time

import pytest
import sqlambda_http
from botocore import exceptions as bx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _cert(tmp_path, names: list[str], ips: list[str]) -> tuple[str, str]:
    """A self-signed certificate (its own CA) for ``names`` / ``ips``: (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sqlambda test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


class _Target:
    """An HTTP(S) server answering every POST with what it saw (path and headers)."""

    def __init__(self, cert: tuple[str, str] | None = None) -> None:
        seen = self.seen = []
        connections = self.connections = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def setup(self):
                super().setup()
                connections.append(self.client_address)

            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                seen.append({"path": self.path, "headers": dict(self.headers), "body": body.decode()})
                out = json.dumps({"path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *_a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*cert)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _Proxy:
    """A forward proxy: absolute-form requests are answered by the proxy itself (recording them);
    CONNECT opens a blind tunnel to the named host:port and records only the CONNECT head."""

    def __init__(self) -> None:
        self.heads: list[str] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                conn.close()
                return
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        self.heads.append(head.decode("latin-1"))
        if head.startswith(b"CONNECT "):
            host, port = head.split()[1].decode().rsplit(":", 1)
            upstream = socket.create_connection(("127.0.0.1" if host == "localhost" else host, int(port)))
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()
            return
        size = int(next(ln.split(b":", 1)[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")))
        while len(rest) < size:
            rest += conn.recv(65536)
        out = b'{"via": "proxy"}'
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out))
        conn.close()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.sock.close()


SIGNED = {"X-Amz-Date": "20261202T000000Z", "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/x, Signature=abc"}


def _post(sender, path="/2015-03-31/functions/f/invocations"):
    status, _headers, data = sender.send(sender.endpoint_url + path, dict(SIGNED), b"{}", 2.0, 5.0)
    return status, json.loads(data)


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_tls_is_verified_against_the_ca_bundle_and_the_host_name(tmp_path, no_proxy_env):
    cert = _cert(tmp_path, ["localhost"], [])
    server = _Target(cert)
    try:
        # the system's CAs do not know this certificate
        with pytest.raises(bx.SSLError):
            _post(sqlambda_http.Sender("https://localhost:%d" % server.port))
        # the CA bundle botocore would use (AWS_CA_BUNDLE / ca_bundle) does, and the TLS connection is
        # kept (TLS 1.3 session tickets waiting on an idle connection are no reason to drop it)
        sender = sqlambda_http.Sender("https://localhost:%d" % server.port, cert[0])
        before = len(server.connections)
        for _ in range(4):
            assert _post(sender)[0] == 200
            time.sleep(0.05)
        assert len(server.connections) - before == 1
        # and a certificate for another name is refused even with that bundle
        with pytest.raises(bx.SSLError):
            _post(sqlambda_http.Sender("https://127.0.0.1:%d" % server.port, cert[0]))
        assert len(server.seen) == 4
    finally:
        server.stop()


def test_http_proxy_gets_the_absolute_url_and_its_credentials(no_proxy_env):
    proxy, target = _Proxy(), _Target()
    try:
        no_proxy_env.setenv("HTTP_PROXY", "http://us%40er:p%3Ass@127.0.0.1:" + str(proxy.port))
        status, answer = _post(sqlambda_http.Sender("http://127.0.0.1:%d" % target.port))
        assert (status, answer) == (200, {"via": "proxy"}) and target.seen == []
        head = proxy.heads[0].split("\r\n")
        assert head[0] == "POST http://127.0.0.1:%d/2015-03-31/functions/f/invocations HTTP/1.1" % target.port
        assert "Proxy-Authorization: Basic " + base64.b64encode(b"us@er:p:ss").decode() in head
        assert "Host: 127.0.0.1:%d" % target.port in head
    finally:
        proxy.stop()
        target.stop()


def test_no_proxy_bypasses_the_proxy(no_proxy_env):
    proxy, target = _Proxy(), _Target()
    try:
        no_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:%d" % proxy.port)
        no_proxy_env.setenv("NO_PROXY", "127.0.0.1,.internal")
        assert _post(sqlambda_http.Sender("http://127.0.0.1:%d" % target.port))[0] == 200
        assert proxy.heads == [] and len(target.seen) == 1
    finally:
        proxy.stop()
        target.stop()


def test_https_proxy_tunnels_and_never_sees_the_signed_request(tmp_path, no_proxy_env):
    cert = _cert(tmp_path, ["localhost"], [])
    proxy, target = _Proxy(), _Target(cert)
    try:
        no_proxy_env.setenv("HTTPS_PROXY", "http://u:pw@127.0.0.1:%d" % proxy.port)
        sender = sqlambda_http.Sender("https://localhost:%d" % target.port, cert[0])
        for _ in range(3):  # the tunnel is the kept connection
            assert _post(sender)[0] == 200
        assert len(proxy.heads) == 1 and proxy.heads[0].startswith("CONNECT localhost:%d HTTP/1." % target.port)
        assert "Proxy-Authorization: Basic " + base64.b64encode(b"u:pw").decode() in proxy.heads[0]
        assert "Authorization: AWS4" not in proxy.heads[0] and "X-Amz-Date" not in proxy.heads[0]
        assert [s["headers"]["Authorization"] for s in target.seen] == [SIGNED["Authorization"]] * 3
        assert "Proxy-Authorization" not in target.seen[0]["headers"]  # the proxy's credentials stay with the proxy
    finally:
        proxy.stop()
        target.stop()
