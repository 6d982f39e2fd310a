"""A TCP proxy in front of the S3 endpoint that counts the HTTP requests
passing through it.

moto does not expose how many requests it served, so a profile whose
``aws_endpoint`` is this proxy's URL makes every remote call of the shunt
visible: :attr:`CountingProxy.requests` lists ``(method, path)`` of each
request, in order. Bytes are forwarded untouched in both directions;
requests are found by parsing the client-to-server stream (request line,
headers and a ``Content-Length`` body, which is all the S3 calls of the
shunt use). It listens on 127.0.0.1 only.

Responses are moved with ``splice(2)`` through a pipe (no copy to user
space, the GIL released), so the proxy is also a near-ideal extra hop: a
direct read through it shows what one more loopback hop costs on this
machine, the floor of any proxy's overhead.
"""

import os
import socket
import threading

HOST = '127.0.0.1'
MAX_HEADER = 64 * 1024
SPLICE_CHUNK = 1024 * 1024


class RequestCounter:
    """Incremental parser of one connection's client-to-server bytes."""

    def __init__(self, record):
        self.record = record
        self.buf = b''
        self.skip = 0  # body bytes of the current request still to come

    def feed(self, data):
        if self.skip:
            taken = min(self.skip, len(data))
            self.skip -= taken
            data = data[taken:]
        self.buf += data
        while not self.skip:
            end = self.buf.find(b'\r\n\r\n')
            if end < 0:
                if len(self.buf) > MAX_HEADER:
                    # not HTTP as we know it: count it once, stop parsing
                    self.record(('?', '?'))
                    self.buf = b''
                return
            head, self.buf = self.buf[:end], self.buf[end + 4:]
            lines = head.split(b'\r\n')
            parts = lines[0].split(b' ')
            method = parts[0].decode('latin-1')
            path = parts[1].decode('latin-1') if len(parts) > 1 else ''
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b':')
                if name.strip().lower() == b'content-length':
                    length = int(value.strip() or 0)
            self.record((method, path))
            taken = min(length, len(self.buf))
            self.buf = self.buf[taken:]
            self.skip = length - taken


class CountingProxy:
    """``with CountingProxy(upstream_port) as proxy: ... proxy.url``."""

    def __init__(self, upstream_port, upstream_host=HOST):
        self.upstream = (upstream_host, upstream_port)
        self.requests = []
        self._lock = threading.Lock()
        self._listener = None
        self._threads = []
        self._socks = set()
        self._closing = False

    @property
    def port(self):
        return self._listener.getsockname()[1]

    @property
    def url(self):
        return f'http://{HOST}:{self.port}'

    def count(self):
        with self._lock:
            return len(self.requests)

    def since(self, mark):
        """The requests recorded after ``count()`` returned ``mark``."""
        with self._lock:
            return list(self.requests[mark:])

    def _record(self, request):
        with self._lock:
            self.requests.append(request)

    def start(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(128)
        self._spawn(self._accept_loop)
        return self

    def stop(self):
        self._closing = True
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        for sock in list(self._socks):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)
        self._threads = [t for t in self._threads if t.is_alive()]

    def _accept_loop(self):
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._socks.add(sock)
            counter = RequestCounter(self._record)
            self._spawn(self._pump, client, upstream, counter)
            self._spawn(self._pump, upstream, client, None)

    def _pump(self, src, dst, counter):
        try:
            if counter is None and hasattr(os, 'splice'):
                self._splice(src, dst)
                return
            while True:
                data = src.recv(256 * 1024)
                if not data:
                    break
                if counter is not None:
                    counter.feed(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            for sock in (src, dst):
                sock.close()
                self._socks.discard(sock)

    @staticmethod
    def _splice(src, dst):
        """Move bytes from ``src`` to ``dst`` through a pipe, in the
        kernel, until ``src`` ends."""
        pipe_r, pipe_w = os.pipe()
        try:
            while True:
                n = os.splice(src.fileno(), pipe_w, SPLICE_CHUNK)
                if not n:
                    return
                while n:
                    n -= os.splice(pipe_r, dst.fileno(), n)
        finally:
            os.close(pipe_r)
            os.close(pipe_w)
