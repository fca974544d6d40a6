"""sqlambda_http: the lean Invoke call path: one SigV4-signed HTTP request over a connection kept per
backend and endpoint.

Owns: building Lambda's Invoke request exactly as botocore does (path, query, headers), signing it
with AWS Signature Version 4, sending it over a kept-alive ``http.client`` connection (TLS verified
against botocore's CA bundle or AWS_CA_BUNDLE; HTTPS_PROXY/HTTP_PROXY/NO_PROXY honoured as botocore
does), and answering like ``client.invoke()``: a response dict, or the botocore exception botocore
would have raised, so ``sqlambda_core.classify`` maps every failure to the same SQLSTATE, message,
DETAIL and HINT as before.

What stays with boto3/botocore: the credential chain (with refresh), the endpoint and region rules
(regional, FIPS, VPC endpoints, from the boto3 client ``sqlambda_core.client`` builds once per
backend), and the exception classes.

Why written here and not botocore's own sender: a call through ``client.invoke()`` costs about
800 us of the database backend's CPU, of which botocore's signer alone is ~60 us and its request
pipeline (events, parameter validation, serialization, urllib3) most of the rest; the same call
here is a fraction of that (bench/pg_invoke.py prints both). The signer is ~40 lines and is
tested against botocore's on thousands of generated requests (tests/plpython/test_http.py).

Must not: import plpy, retry (``sqlambda_core.invoke_raw`` decides, by classification), or log
anything that carries a credential.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import select
import socket
import ssl
import time
from urllib.parse import quote, unquote, urlsplit

USER_AGENT = "sqlambda-lean botocore-credentials"
MAX_HEADER_BYTES = 65536
#: the most an answer's body may be: Lambda's sync response quota is 6 MB; anything far above it is
#: a broken or hostile server, refused instead of filling the backend's memory
MAX_ANSWER_BYTES = 8 * 1024 * 1024
#: interim (1xx) answers skipped before the real one, at most
MAX_INTERIM = 10
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")

#: the SigV4 signing key for (secret, date, region, service): four HMACs saved per call
_KEYS: dict = {}


# -- the request ----------------------------------------------------------------------------------
def invoke_request(endpoint_url, function_name, payload, invocation_type, log_type, qualifier, client_context):
    """(url, headers) of Lambda's Invoke as botocore serializes it (rest-json: the name in the path,
    Qualifier in the query, the rest in X-Amz-* headers; no Content-Type)."""
    path = "/2015-03-31/functions/" + quote(function_name, safe="") + "/invocations"
    url = endpoint_url.rstrip("/") + path + ("?Qualifier=" + quote(qualifier, safe="-_.~") if qualifier else "")
    headers = {"X-Amz-Invocation-Type": invocation_type}
    if log_type is not None:
        headers["X-Amz-Log-Type"] = log_type
    if client_context:
        headers["X-Amz-Client-Context"] = client_context
    return url, headers


def sign(method, url, headers, body, access_key, secret_key, token, region, service, now=None):
    """Add X-Amz-Date, X-Amz-Security-Token and Authorization to ``headers`` (AWS Signature Version 4,
    as botocore's SigV4Auth signs a non-S3 request: every header but User-Agent and Expect signed,
    the path URI-encoded once more, the body's SHA-256 in the canonical request)."""
    now = now or time.gmtime()
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", now)
    date = amz_date[:8]
    parts = urlsplit(url)
    headers["X-Amz-Date"] = amz_date
    if token:
        headers["X-Amz-Security-Token"] = token
    signed = {"host": _host(parts)}
    for k, v in headers.items():
        lk = k.lower()
        if lk not in ("user-agent", "expect", "x-amzn-trace-id", "authorization"):
            signed[lk] = " ".join(str(v).split())
    names = sorted(signed)
    canonical = "\n".join((
        method,
        quote(_dot_free(parts.path or "/"), safe="/~"),
        "&".join(sorted(_pair(p) for p in parts.query.split("&"))) if parts.query else "",
        "".join("%s:%s\n" % (n, signed[n]) for n in names),
        ";".join(names),
        hashlib.sha256(body).hexdigest(),
    ))
    scope = "%s/%s/%s/aws4_request" % (date, region, service)
    to_sign = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest())
    key = _signing_key(secret_key, date, region, service)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        access_key, scope, ";".join(names), signature)
    return headers


def _dot_free(path):
    """The path as botocore signs it: '.' and '..' segments removed (RFC 3986 5.2.4); the URL sent
    keeps them, as botocore's does. Only a function named '.' or '..' has any."""
    if "/." not in path:
        return path
    from botocore.utils import normalize_url_path

    return normalize_url_path(path)


def _pair(item):
    name, _, value = item.partition("=")
    return "%s=%s" % (quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~"))


def _host(parts):
    """The Host header botocore signs: host[:port], the port only when it is not the scheme's default."""
    host = parts.hostname or ""
    if ":" in host:
        host = "[%s]" % host
    default = 443 if parts.scheme == "https" else 80
    return host + (":%d" % parts.port if parts.port and parts.port != default else "")


def _signing_key(secret, date, region, service):
    k = (secret, date, region, service)
    key = _KEYS.get(k)
    if key is None:
        if len(_KEYS) > 64:
            _KEYS.clear()
        key = hmac.new(("AWS4" + secret).encode("utf-8"), date.encode("utf-8"), hashlib.sha256).digest()
        for part in (region, service, "aws4_request"):
            key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
        _KEYS[k] = key
    return key


# -- the connection -------------------------------------------------------------------------------
class Sender:
    """One kept-alive connection to one endpoint, used by one thread at a time (sqlambda_core keeps one
    per endpoint and thread in GD)."""

    def __init__(self, endpoint_url, ca_bundle=None):
        self.endpoint_url = endpoint_url.rstrip("/")
        parts = urlsplit(self.endpoint_url)
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ca_bundle = ca_bundle
        self.conn = None
        self.timeout = None  # the read timeout the open connection's socket has now
        self.pending = None  # (url, request bytes, timeouts) written by start(), not yet answered
        self.reused = self.answered = False
        self.resends = 0  # requests written again on a new connection for the current start()
        self.leased = False  # held by a core.Window (nested windows must not share a connection)
        self.proxy = _proxy_for(self.endpoint_url)
        self.proxy_headers = _proxy_headers(self.proxy) if self.proxy else None

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self.conn = None

    def _connect(self, connect_timeout):
        if self.proxy is not None:
            p = urlsplit(self.proxy)
            if p.scheme != "http":
                raise ValueError("the proxy %s://%s: only http:// proxy URLs are supported (HTTPS goes through them "
                                 "in a CONNECT tunnel, encrypted end to end)" % (p.scheme, p.hostname))
            target = (p.hostname, p.port or 80)
        else:
            target = (self.host, self.port)
        if self.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else ssl.create_default_context()
            conn = http.client.HTTPSConnection(target[0], target[1], timeout=connect_timeout, context=ctx)
            if self.proxy is not None:
                conn.set_tunnel(self.host, self.port, headers=self.proxy_headers)
        else:
            conn = http.client.HTTPConnection(target[0], target[1], timeout=connect_timeout)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn, self.timeout = conn, connect_timeout

    def send(self, url, headers, body, connect_timeout, read_timeout):
        """(status, headers as a lower-cased dict, body bytes); botocore's exception on a transport
        failure. A kept-alive connection the server had closed is opened again once, before any
        answer came (a read timeout never is: the function may be running). Timeouts in seconds.

        The connection (TCP, proxy tunnel, TLS with hostname check) is ``http.client``'s; the
        request is written and the answer read here, in one ``sendall`` and as few ``recv`` calls as
        the answer needs, because http.client's header writing and its email-package header parser
        were ~170 us of CPU per call (bench/pg_invoke.py)."""
        self.start(url, headers, body, connect_timeout, read_timeout)
        return self.finish()

    def start(self, url, headers, body, connect_timeout, read_timeout):
        """Write one request (connecting first if needed) without waiting for its answer, so a caller
        can have requests on several Senders in flight at once; ``finish`` reads the answer."""
        if self.pending is not None:
            self.close()  # an answer nobody read: the connection is out of step
        parts = urlsplit(url)
        target = url if (self.proxy is not None and self.scheme == "http") else \
            (parts.path + ("?" + parts.query if parts.query else ""))
        lines = ["POST %s HTTP/1.1" % target, "Host: " + _host(parts), "User-Agent: " + USER_AGENT,
                 "Accept-Encoding: identity", "Content-Length: %d" % len(body)]
        lines.extend("%s: %s" % kv for kv in headers.items())
        if self.proxy_headers and self.scheme == "http":
            lines.extend("%s: %s" % kv for kv in self.proxy_headers.items())  # a plain-HTTP proxy sees the request
        self.pending = (url, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body, connect_timeout, read_timeout)
        self.resends = 0
        self._write()

    def _write(self):
        from botocore import exceptions as bx

        url, request, connect_timeout, read_timeout = self.pending
        if self.conn is not None and self._stale():
            # an idle kept connection has something to say (a 408, a close, stray bytes): whatever it
            # is, it is no answer to this request, so never read it as one
            self.close()
        self.reused = self.conn is not None
        if not self.reused:
            try:
                self._connect(connect_timeout)
            except ssl.SSLError as exc:
                self._fail()
                raise bx.SSLError(endpoint_url=url, error=exc) from None
            except (TimeoutError, socket.timeout) as exc:
                self._fail()
                raise bx.ConnectTimeoutError(endpoint_url=url, error=exc) from None
            except (OSError, http.client.HTTPException, ValueError) as exc:  # ValueError: a bad proxy URL
                self._fail()
                raise bx.EndpointConnectionError(endpoint_url=url, error=exc) from None
        sock = self.conn.sock
        if self.timeout != read_timeout:
            sock.settimeout(read_timeout)
            self.timeout = read_timeout
        self.answered = False
        try:
            sock.sendall(request)
        except (TimeoutError, socket.timeout) as exc:
            self._fail()
            raise bx.ReadTimeoutError(endpoint_url=url, error=exc) from None
        except OSError as exc:
            self.close()
            if self.reused:
                self.resends += 1
                return self._write()  # the server had closed the idle connection: once more on a new one
            self._fail()
            raise bx.ConnectionClosedError(endpoint_url=url, error=exc) from None

    def finish(self):
        """The answer to the request ``start`` wrote, as ``send`` returns it."""
        from botocore import exceptions as bx

        if self.pending is None or self.conn is None:
            raise bx.ConnectionClosedError(endpoint_url=self.endpoint_url, error="no request is in flight here")
        url = self.pending[0]
        try:
            status, answer, data, close = self._answer(self.conn.sock)
        except (TimeoutError, socket.timeout) as exc:
            self._fail()
            raise bx.ReadTimeoutError(endpoint_url=url, error=exc) from None
        except (OSError, ValueError) as exc:
            self.close()
            if self.reused and not self.answered:
                self.resends += 1
                self._write()  # closed before any answer on a kept connection: once more on a new one
                return self.finish()
            self._fail()
            error = bx.ConnectionClosedError(endpoint_url=url, error=exc)
            # an answer had begun: the function ran (or runs); sending it again would run it twice
            error.answer_started = self.answered
            raise error from None
        self.pending = None
        if close:
            self.close()
        return status, answer, data

    def _fail(self):
        self.close()
        self.pending = None

    def _stale(self):
        """True when the idle kept connection has bytes (or its close) waiting: no answer to anything
        we sent. Over TLS a readable socket may hold only a session ticket (TLS 1.3 sends them after
        the handshake): reading it yields no data, and the connection stays."""
        sock = self.conn.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        try:
            if not select.select([sock], [], [], 0)[0]:
                return False
        except (OSError, ValueError):
            return True
        if not isinstance(sock, ssl.SSLSocket):
            return True
        sock.setblocking(False)
        try:
            sock.recv(1)
            return True  # application data or the close
        except ssl.SSLWantReadError:
            return False  # only TLS housekeeping was waiting
        except OSError:
            return True
        finally:
            sock.settimeout(self.timeout)

    def _fill(self, sock, buf):
        """Append what the server sends next to ``buf`` (a bytearray: in place, never quadratic)."""
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        self.answered = True
        buf += chunk

    def _line_end(self, sock, buf, pos, marker, most):
        end = buf.find(marker, pos)
        while end < 0:
            if len(buf) - pos > most:
                raise ValueError("the answer has a header or chunk line over %d bytes" % most)
            self._fill(sock, buf)
            end = buf.find(marker, pos)
        return end

    def _answer(self, sock):
        """(status, headers, body, close) of one HTTP/1.x answer: Content-Length, chunked, or until the
        server closes; interim 1xx answers skipped. ValueError for anything that is not HTTP or is
        larger than an answer can be (MAX_HEADER_BYTES, MAX_ANSWER_BYTES, MAX_INTERIM)."""
        buf, pos, interim = bytearray(), 0, 0
        while True:
            end = self._line_end(sock, buf, pos, b"\r\n\r\n", MAX_HEADER_BYTES)
            lines = bytes(buf[pos:end]).decode("latin-1").split("\r\n")
            pos = end + 4
            version, _, rest = lines[0].partition(" ")
            if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
                raise ValueError("not an HTTP/1.x answer: %r" % lines[0][:80])
            status = int(rest[:3])
            if 100 <= status < 200:
                interim += 1
                if interim > MAX_INTERIM:
                    raise ValueError("more than %d interim answers" % MAX_INTERIM)
                continue
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep or line[:1] in (" ", "\t"):  # no name, or an obsolete folded line
                    raise ValueError("a malformed header line: %r" % line[:80])
                name, value = name.strip().lower(), value.strip()
                headers[name] = headers[name] + ", " + value if name in headers else value
            connection = headers.get("connection", "").lower()
            close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
            if "chunked" in headers.get("transfer-encoding", "").lower():
                data, pos = self._chunked(sock, buf, pos)
            elif "content-length" in headers:
                length = headers["content-length"]
                if not length.isdigit() or int(length) > MAX_ANSWER_BYTES:
                    raise ValueError("an answer of Content-Length %r" % length[:40])
                size = int(length)
                while len(buf) - pos < size:
                    self._fill(sock, buf)
                data, pos = bytes(buf[pos:pos + size]), pos + size
            elif status in (204, 304):
                data = b""
            else:  # the body ends when the server closes the connection
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                    if len(buf) - pos > MAX_ANSWER_BYTES:
                        raise ValueError("an answer over %d bytes" % MAX_ANSWER_BYTES)
                data, pos, close = bytes(buf[pos:]), len(buf), True
            if pos < len(buf):
                close = True  # bytes nobody asked for: the connection is out of step
            return status, headers, data, close

    def _chunked(self, sock, buf, pos):
        parts, total = [], 0
        while True:
            end = self._line_end(sock, buf, pos, b"\r\n", 4096)
            field = bytes(buf[pos:end]).split(b";", 1)[0].strip()
            if not _HEX.fullmatch(field):
                raise ValueError("a malformed chunk size %r" % field[:40])
            size, pos = int(field, 16), end + 2
            if size == 0:  # the last chunk, then optional trailer lines up to an empty one
                while True:
                    end = self._line_end(sock, buf, pos, b"\r\n", MAX_HEADER_BYTES)
                    empty, pos = end == pos, end + 2
                    if empty:
                        return b"".join(parts), pos
            total += size
            if total > MAX_ANSWER_BYTES:
                raise ValueError("a chunked answer over %d bytes" % MAX_ANSWER_BYTES)
            while len(buf) - pos < size + 2:
                self._fill(sock, buf)
            if buf[pos + size:pos + size + 2] != b"\r\n":
                raise ValueError("a chunk not followed by CRLF")
            parts.append(bytes(buf[pos:pos + size]))
            pos += size + 2


def _proxy_for(url):
    """The proxy botocore would use for ``url`` (HTTPS_PROXY / HTTP_PROXY, unless NO_PROXY matches)."""
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(url)
    proxies = getproxies()
    proxy = proxies.get(parts.scheme)
    if not proxy or proxy_bypass(parts.netloc):  # netloc, as botocore: NO_PROXY=host:port matches
        return None
    return proxy if "://" in proxy else "http://" + proxy


def _proxy_headers(proxy):
    import base64

    p = urlsplit(proxy)
    if not p.username or not p.password:  # as botocore: credentials only when both are given
        return None
    token = base64.b64encode(("%s:%s" % (unquote(p.username), unquote(p.password or ""))).encode()).decode()
    return {"Proxy-Authorization": "Basic " + token}


# -- the answer -----------------------------------------------------------------------------------
def response(status, headers, body):
    """What ``client.invoke()`` returns, or raises the ClientError botocore would have raised."""
    if 200 <= status < 300:
        return {
            "StatusCode": status,
            "Payload": body,
            "FunctionError": headers.get("x-amz-function-error"),
            "LogResult": headers.get("x-amz-log-result"),
            "ExecutedVersion": headers.get("x-amz-executed-version"),
            "ResponseMetadata": {"RequestId": headers.get("x-amzn-requestid"), "HTTPStatusCode": status},
        }
    from botocore.exceptions import ClientError

    code, message = _error_code(status, headers, body)
    raise ClientError({"Error": {"Code": code, "Message": message},
                       "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": headers.get("x-amzn-requestid")}},
                      "Invoke")


def _error_code(status, headers, body):
    """(code, message) exactly as botocore's rest-json parser reads an error (tests/plpython/test_http.py
    compares them): a 5xx with no body or an HTML page is generic (the status and its reason phrase);
    else the message from the body's message / Message (a body that is not JSON is the message), the
    code from x-amzn-ErrorType, else the body's code / Code, else __type, else the HTTP status."""
    if status >= 500 and (not (body or b"").strip() or body.strip().startswith(b"<html>")):
        return str(status), http.client.responses.get(status, "")
    doc = {}
    if body:
        text = body.decode("utf-8", "replace")
        try:
            doc = json.loads(text)
        except ValueError:
            doc = {"message": text}
    if not isinstance(doc, dict):
        doc = {}
    message = doc.get("message", doc.get("Message", ""))
    code = doc.get("__type", str(status))
    if "x-amzn-errortype" in headers:
        code = headers["x-amzn-errortype"]
    elif "code" in doc or "Code" in doc:
        code = doc.get("code", doc.get("Code", ""))
    if isinstance(code, str):
        code = code.split(":", 1)[0].rsplit("#", 1)[-1]
    return code, message
