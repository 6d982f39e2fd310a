"""A recording, fault-injecting HTTP proxy in front of the S3 endpoint.

A profile whose ``aws_endpoint`` is :attr:`S3FaultProxy.url` sends every
S3 call of the daemon (and of the shunt) through it. The proxy parses each
request (request line, headers, a ``Content-Length`` or chunked body),
records it as a :class:`Request` (method, key, query, headers, the S3
operation it is) and forwards it untouched; responses are relayed as they
come. Tests then count what reached the bucket (``uploads()``), and make
chosen requests misbehave:

* ``stall(match, body_bytes=N)``: hold a matching request after its
  headers and the first N bytes of its body (None: before anything is
  forwarded) until :meth:`Stall.release` (or the proxy stops); the test
  waits for :attr:`Stall.hit` and can kill the client meanwhile, then
  let the request go on or drop it (``release(forward=False)``);
* ``fail(match, status=503, code='SlowDown', times=None)``: answer
  matching requests with an S3 error (and close the connection) instead
  of forwarding them; ``times`` limits how many;
* ``down = True``: close every new connection at once (the bucket is
  unreachable); ``down = False`` heals it.

``match`` is an operation name (``'PutObject'``, ``'UploadPart'``,
``'CompleteMultipartUpload'``, ``'HeadObject'``, ...), a callable taking
a :class:`Request`, or None (every request). Listens on 127.0.0.1 only.
"""

import dataclasses
import socket
import threading
import time
import urllib.parse

HOST = '127.0.0.1'
MAX_HEADER = 64 * 1024
CHUNK = 256 * 1024


@dataclasses.dataclass
class Request:
    method: str
    path: str           # unquoted, without the query
    query: dict
    headers: dict       # lower-case names
    when: float
    injected: str = ''  # 'failed': answered by the proxy, not forwarded

    @property
    def bucket(self):
        return self.path.lstrip('/').partition('/')[0]

    @property
    def key(self):
        return self.path.lstrip('/').partition('/')[2]

    @property
    def operation(self):
        return s3_operation(self)


def s3_operation(req):
    """The S3 API operation of a path-style request."""
    q, m, key = req.query, req.method, req.key
    if not key:
        if m == 'PUT':
            return 'CreateBucket'
        if m == 'HEAD':
            return 'HeadBucket'
        if m == 'POST' and 'delete' in q:
            return 'DeleteObjects'
        if m == 'GET' and 'uploads' in q:
            return 'ListMultipartUploads'
        if m == 'GET':
            return 'ListObjects'
        return m + 'Bucket'
    copy = 'x-amz-copy-source' in req.headers
    if m == 'PUT' and 'partNumber' in q:
        return 'UploadPartCopy' if copy else 'UploadPart'
    if m == 'PUT':
        return 'CopyObject' if copy else 'PutObject'
    if m == 'POST' and 'uploads' in q:
        return 'CreateMultipartUpload'
    if m == 'POST' and 'uploadId' in q:
        return 'CompleteMultipartUpload'
    if m == 'DELETE' and 'uploadId' in q:
        return 'AbortMultipartUpload'
    if m == 'DELETE':
        return 'DeleteObject'
    if m == 'GET' and 'uploadId' in q:
        return 'ListParts'
    if m == 'HEAD':
        return 'HeadObject'
    if m == 'GET':
        return 'GetObject'
    return m + 'Object'


# the operations that write object data into the bucket
UPLOAD_OPERATIONS = ('PutObject', 'UploadPart', 'CompleteMultipartUpload')


def _matcher(match):
    if match is None:
        return lambda req: True
    if isinstance(match, str):
        return lambda req: req.operation == match
    if isinstance(match, (tuple, list, set, frozenset)):
        names = set(match)
        return lambda req: req.operation in names
    return match


class Stall:
    """A held request: :attr:`hit` is set when one arrives."""

    def __init__(self, match, body_bytes, times):
        self.matches = _matcher(match)
        self.body_bytes = body_bytes
        self.times = times
        self.hit = threading.Event()
        self.released = threading.Event()
        self.request = None
        self.forward = True

    def release(self, forward=True):
        """Let the held request go on (``forward``), or drop it: its
        connections are closed and the bucket never sees the rest of it
        (a client killed meanwhile never completed it)."""
        self.forward = forward
        self.released.set()

    def wait(self, timeout=60):
        """Wait for a matching request; True if one came."""
        return self.hit.wait(timeout)


class _Failure:
    def __init__(self, match, status, code, times):
        self.matches = _matcher(match)
        self.status = status
        self.code = code
        self.times = times
        self.count = 0


class _ClientGone(Exception):
    pass


class S3FaultProxy:
    """``with S3FaultProxy(upstream_port) as proxy: ... proxy.url``."""

    def __init__(self, upstream_port, upstream_host=HOST):
        self.upstream = (upstream_host, upstream_port)
        self.requests = []
        self.down = False
        self._stalls = []
        self._failures = []
        # re-entrant: a match function may look at the requests seen
        self._lock = threading.RLock()
        self._listener = None
        self._socks = set()
        self._closing = False
        self._stopped = threading.Event()

    # -- what happened ---------------------------------------------------

    @property
    def port(self):
        return self._listener.getsockname()[1]

    @property
    def url(self):
        return f'http://{HOST}:{self.port}'

    def mark(self):
        """A position in :attr:`requests`, for ``since``/``uploads``."""
        with self._lock:
            return len(self.requests)

    def since(self, mark=0, operations=None, key=None):
        """The requests recorded after ``mark``, optionally only these
        operations and/or this key (or key prefix ending in ``*``)."""
        with self._lock:
            reqs = list(self.requests[mark:])
        if operations is not None:
            ops = ({operations} if isinstance(operations, str)
                   else set(operations))
            reqs = [r for r in reqs if r.operation in ops]
        if key is not None:
            if key.endswith('*'):
                reqs = [r for r in reqs if r.key.startswith(key[:-1])]
            else:
                reqs = [r for r in reqs if r.key == key]
        return reqs

    def uploads(self, mark=0, key=None):
        """The data-writing requests (PutObject, UploadPart,
        CompleteMultipartUpload) forwarded to the bucket after ``mark``."""
        return [r for r in self.since(mark, UPLOAD_OPERATIONS, key)
                if not r.injected]

    # -- faults ----------------------------------------------------------

    def stall(self, match, body_bytes=None, times=1):
        """Hold the next ``times`` matching requests (see module doc)."""
        stall = Stall(match, body_bytes, times)
        with self._lock:
            self._stalls.append(stall)
        return stall

    def fail(self, match=None, status=503, code='SlowDown', times=None):
        """Answer matching requests with an S3 error instead of forwarding
        them; returns a handle for :meth:`heal`."""
        failure = _Failure(match, status, code, times)
        with self._lock:
            self._failures.append(failure)
        return failure

    def heal(self, failure=None):
        """Remove one failure rule (None: every rule, stall and 'down')."""
        with self._lock:
            if failure is None:
                self._failures = []
                stalls, self._stalls = self._stalls, []
                self.down = False
            else:
                self._failures = [f for f in self._failures
                                  if f is not failure]
                stalls = []
        for stall in stalls:
            stall.release()

    def _take_rule(self, req):
        with self._lock:
            for failure in self._failures:
                if failure.matches(req) and (failure.times is None or
                                             failure.count < failure.times):
                    failure.count += 1
                    return failure
            for stall in self._stalls:
                if stall.times and stall.matches(req):
                    stall.times -= 1
                    return stall
        return None

    # -- lifecycle -------------------------------------------------------

    def start(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(128)
        self._spawn(self._accept_loop)
        return self

    def stop(self):
        self._closing = True
        self._stopped.set()
        with self._lock:
            stalls = list(self._stalls)
        for stall in stalls:
            stall.release()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        for sock in list(self._socks):
            self._close(sock)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    @staticmethod
    def _spawn(target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        return thread

    def _close(self, sock):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        self._socks.discard(sock)

    def _accept_loop(self):
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socks.add(client)
            self._spawn(self._serve, client)

    # -- one client connection -------------------------------------------

    def _serve(self, client):
        upstream = None
        reader = _Reader(client)
        try:
            while True:
                head = reader.read_head()
                if head is None:
                    return
                req, framing = self._parse(head)
                with self._lock:
                    self.requests.append(req)
                rule = self._take_rule(req)
                if isinstance(rule, _Failure):
                    req.injected = 'failed'
                    self._answer_error(client, rule, req)
                    return
                if self.down:
                    return
                if upstream is None:
                    upstream = socket.create_connection(self.upstream,
                                                        timeout=30)
                    upstream.settimeout(None)
                    upstream.setsockopt(socket.IPPROTO_TCP,
                                        socket.TCP_NODELAY, 1)
                    self._socks.add(upstream)
                    self._spawn(self._relay, upstream, client)
                stall = rule if isinstance(rule, Stall) else None
                if stall is not None and stall.body_bytes is None:
                    self._hold(stall, req)
                upstream.sendall(head)
                self._forward_body(reader, upstream, framing, stall, req)
        except (OSError, _ClientGone, ValueError):
            return
        finally:
            self._close(client)
            if upstream is not None:
                self._close(upstream)

    def _hold(self, stall, req):
        stall.request = req
        stall.hit.set()
        while not stall.released.wait(0.05):
            if self._closing:
                raise _ClientGone()
        if not stall.forward:
            req.injected = 'dropped'
            raise _ClientGone()

    def _forward_body(self, reader, upstream, framing, stall, req):
        sent = 0

        def send(data):
            nonlocal sent
            if stall is not None and stall.body_bytes is not None and \
                    not stall.hit.is_set():
                room = stall.body_bytes - sent
                if len(data) >= room:
                    upstream.sendall(data[:room])
                    sent += room
                    data = data[room:]
                    self._hold(stall, req)
            upstream.sendall(data)
            sent += len(data)

        kind, length = framing
        if kind == 'length':
            remaining = length
            while remaining:
                data = reader.read_some(min(CHUNK, remaining))
                remaining -= len(data)
                send(data)
        elif kind == 'chunked':
            while True:
                line = reader.read_line()
                send(line)
                size = int(line.split(b';')[0].strip() or b'0', 16)
                if size == 0:
                    # trailers, then an empty line
                    while True:
                        line = reader.read_line()
                        send(line)
                        if line in (b'\r\n', b'\n'):
                            return
                remaining = size + 2  # the chunk and its CRLF
                while remaining:
                    data = reader.read_some(min(CHUNK, remaining))
                    remaining -= len(data)
                    send(data)
        if stall is not None and stall.body_bytes is not None and \
                not stall.hit.is_set():
            # shorter than body_bytes: hold before the response
            self._hold(stall, req)

    def _relay(self, src, dst):
        try:
            while True:
                data = src.recv(CHUNK)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._close(src)
            self._close(dst)

    @staticmethod
    def _parse(head):
        lines = head.split(b'\r\n')
        method, target, _ = lines[0].decode('latin-1').split(' ', 2)
        headers = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.decode('latin-1').partition(':')
            headers[name.strip().lower()] = value.strip()
        parts = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(parts.query,
                                            keep_blank_values=True))
        req = Request(method, urllib.parse.unquote(parts.path), query,
                      headers, time.time())
        if 'chunked' in headers.get('transfer-encoding', '').lower():
            framing = ('chunked', None)
        else:
            framing = ('length', int(headers.get('content-length') or 0))
        return req, framing

    @staticmethod
    def _answer_error(client, failure, req):
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
                f'{failure.code}</Code><Message>injected by the test'
                f'</Message><Resource>{req.path}</Resource></Error>'
                ).encode()
        if req.method == 'HEAD':
            body_out = b''
        else:
            body_out = body
        reason = {503: 'Slow Down', 500: 'Internal Server Error',
                  403: 'Forbidden'}.get(failure.status, 'Error')
        client.sendall(
            f'HTTP/1.1 {failure.status} {reason}\r\n'
            f'Content-Type: application/xml\r\n'
            f'Content-Length: {len(body)}\r\n'
            f'Connection: close\r\n\r\n'.encode() + body_out)


class _Reader:
    """Buffered reads from a socket: heads, lines and body bytes."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b''

    def _fill(self):
        data = self.sock.recv(CHUNK)
        if not data:
            raise _ClientGone()
        self.buf += data

    def read_head(self):
        """The request head including its blank line, or None at EOF
        between requests."""
        while True:
            end = self.buf.find(b'\r\n\r\n')
            if end >= 0:
                head, self.buf = self.buf[:end + 4], self.buf[end + 4:]
                return head
            if len(self.buf) > MAX_HEADER:
                raise ValueError('header too long')
            try:
                self._fill()
            except _ClientGone:
                return None

    def read_line(self):
        while b'\n' not in self.buf:
            self._fill()
        end = self.buf.index(b'\n') + 1
        line, self.buf = self.buf[:end], self.buf[end:]
        return line

    def read_some(self, limit):
        if not self.buf:
            self._fill()
        data, self.buf = self.buf[:limit], self.buf[limit:]
        return data
