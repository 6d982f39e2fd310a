"""HTTP pieces of the remote Swift client (:mod:`shunt.core.swift_remote`).

Pure helpers (request paths, error kinds) and the body wrappers: what goes
out (:class:`Sized`, :func:`chunks`) and what comes back
(:class:`StreamingBody`, :class:`SwiftResponse`).
"""

import dataclasses
import urllib.parse

import requests.exceptions
import urllib3.exceptions

from shunt.core.remote import RemoteError

READ_CHUNK = 65536
# blocks of a request body read from a file-like object: few, large steps
# per byte (the socket takes what it can of each)
WRITE_CHUNK = 1024 * 1024


def account_storage_url(storage_url, account):
    """The storage URL of ``account`` on the host of ``storage_url``."""
    parts = urllib.parse.urlsplit(storage_url)
    return '%s://%s/v1/%s' % (parts.scheme, parts.netloc,
                              urllib.parse.quote(account, safe=''))


def status_kind(status):
    """The :class:`RemoteError` kind of a remote Swift error status."""
    if status == 404:
        return 'not_found'
    if status == 416:
        return 'range'
    if status in (401, 403):
        return 'auth'
    if status in (429, 498):
        return 'throttled'
    if status >= 500:
        return 'server'
    return 'client'


def exception_kind(err):
    """``timeout`` or ``connection`` for a transport exception."""
    if isinstance(err, urllib3.exceptions.NewConnectionError):
        # (urllib3 derives it from its ConnectTimeoutError)
        return 'connection'
    if isinstance(err, (requests.exceptions.Timeout, TimeoutError,
                        urllib3.exceptions.TimeoutError)):
        return 'timeout'
    return 'connection'


def request_path(storage_path, container, obj=None, query=None):
    """The quoted path (and query) of a request below a storage URL's
    path."""
    def quote(name, safe):
        return urllib.parse.quote(name, safe=safe,
                                  errors='surrogateescape')
    path = '%s/%s' % (storage_path.rstrip('/'), quote(container, ''))
    if obj is not None:
        path += '/' + quote(obj, '/')
    if query:
        path += '?' + urllib.parse.urlencode(
            query, quote_via=urllib.parse.quote)
    return path


def header_pairs(resp):
    """Every ``(name, value)`` header of a requests response (latin-1
    strings, as http.client hands them over).

    http.client's header parser stops at the first line whose name is not
    ASCII (Swift keeps such metadata names, e.g. ``X-Object-Meta-Café``)
    and leaves that line and every later one in the message's payload:
    they are read back from there, so no header is silently lost."""
    pairs = list(resp.headers.items())
    original = getattr(resp.raw, '_original_response', None)
    message = getattr(original, 'msg', None)
    rest = message.get_payload() if message is not None else None
    if not rest or not isinstance(rest, str):
        return pairs
    for line in rest.splitlines():
        if line[:1] in (' ', '\t') and pairs:
            # an obsolete folded continuation line
            name, value = pairs[-1]
            pairs[-1] = (name, value + ' ' + line.strip())
            continue
        name, sep, value = line.partition(':')
        if sep and name.strip():
            pairs.append((name.strip(), value.strip()))
    return pairs


def wire(value):
    """A header value as bytes on the wire (Swift takes UTF-8; values
    with surrogate escapes go out as the bytes they stand for)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode('utf-8', 'surrogateescape')


@dataclasses.dataclass
class SwiftResponse:
    """``status``, lower-case native ``headers``, and ``body``: bytes, or
    with ``stream=True`` a :class:`StreamingBody` the caller closes."""
    status: int
    headers: dict
    body: object = b''


class StreamingBody:
    """A remote response body read on demand, like botocore's:
    ``read(n)``, ``read1(n)``, iteration, ``iter_chunks(n)``,
    ``close()``. Its
    connection goes back to the pool once the body has been read to the
    end; read failures raise :class:`RemoteError` (``timeout`` or
    ``connection``)."""

    def __init__(self, resp, release, what):
        self._resp = resp
        # called once, when the body is done: the connection is reusable
        self._release = release
        self._what = what
        self._done = False

    def read(self, amt=None):
        """Up to ``amt`` bytes (all that is left when None), waiting for
        them; ``b''`` at the end."""
        data = self._read(self._resp.raw.read, amt)
        if amt is None and not self._done:
            self._finish(reusable=True)
        return data

    def read1(self, amt=None):
        """The bytes that have arrived (at least one, waiting for it), up
        to ``amt``; ``b''`` only at the end."""
        return self._read(self._resp.raw.read1, amt)

    def _read(self, method, amt):
        if self._done:
            return b''
        try:
            data = method(amt, decode_content=False)
        except Exception as err:
            self._finish(reusable=False)
            raise RemoteError(exception_kind(err), 'reading %s: %s' % (
                self._what, type(err).__name__)) from None
        if not data and amt != 0:
            self._finish(reusable=True)
        return data

    def iter_chunks(self, chunk_size=READ_CHUNK):
        while chunk := self.read(chunk_size):
            yield chunk

    def __iter__(self):
        return self.iter_chunks()

    def close(self):
        self._finish(reusable=False)

    def _finish(self, reusable):
        if self._done:
            return
        self._done = True
        if not reusable:
            # unread bytes: this socket cannot carry another request
            self._resp.close()
        self._release()


class Sized:
    """A body of known length for requests: an iterable of blocks (read
    ``WRITE_CHUNK`` at a time from a file-like object) with a ``len()``,
    so it goes out with ``Content-Length``, never chunked."""

    def __init__(self, source, length):
        self._source = source
        self.length = length

    def __len__(self):
        return self.length

    def __iter__(self):
        return chunks(self._source)


def chunks(source):
    read = getattr(source, 'read', None)
    if read is None:
        yield from source
        return
    while chunk := read(WRITE_CHUNK):
        yield chunk
