"""Streaming local objects into the bucket: bodies, parts and SLO layouts.

Nothing is ever held in memory beyond a few chunks of the local GET (one,
or for pieces of 1 MiB or more up to three: :class:`ReadAhead` keeps the
GET going while the bytes before are sent): a body
handed to boto3 is a :class:`SpanReader`, a file-like view of a byte span
of one or more *pieces* (a local object or a byte range of it, or inline
bytes of an SLO ``data`` segment) that opens its local GETs only when
boto3 starts reading (a Swift GET not read for a minute times out, so no
GET is opened while a part waits for a connection) and opens them again,
from the span's first byte, when botocore rewinds the body to retry.

Every local GET is sent with ``If-Match: <the Etag the row's HEAD or
manifest promised>``: if the object (or a segment) changed in between,
Swift answers 412 and the upload fails instead of mixing versions. A GET
that ends early fails the upload too (S3 would otherwise wait for the
missing bytes).

How a Swift SLO goes to S3 (:func:`part_plan`): one part per segment when
S3 can take the segments as parts (every segment a whole object, at least
5 MiB but the last, at most 5 GiB, at most 10,000 of them), so the S3 Etag
is the multipart Etag of the segment Etags, as 1space wrote them. Any
other SLO (small segments, ranges, inline data, nested SLOs) is
*re-chunked*: its bytes, nested manifests expanded (:func:`expand`), are
uploaded as one object (one ``PutObject`` up to 5 GiB, else a multipart
upload of fixed-size parts), with the SLO's Swift Etag in the
``swift-slo-etag`` metadata so the shunt trusts the sidecar by it.
"""

import dataclasses
import hashlib

import eventlet
from swift.common.utils import close_if_possible

from shunt.core.manifest import parse_manifest

MiB = 1024 * 1024
GiB = 1024 * MiB
# S3's limits
MAX_PUT_SIZE = 5 * GiB
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10000
# Swift's own limit on SLO nesting (slo max_manifest_segments depth)
MAX_DEPTH = 10


# pieces at least this long are read ahead (READ_AHEAD chunks, in a green
# thread) while the bytes read before them are sent
READ_AHEAD_MIN = 1024 * 1024
READ_AHEAD = 2
_END = object()


class ReadAhead:
    """Iterates ``source`` in a green thread, at most ``depth`` chunks
    ahead of the consumer (memory: ``depth`` + 1 chunks), so that the
    local GET goes on while what it gave is sent. Errors are raised to
    the consumer in order; :meth:`close` stops the thread and closes
    ``source``."""

    def __init__(self, source, depth=READ_AHEAD):
        self._source = source
        self._queue = eventlet.queue.LightQueue(depth)
        self._thread = eventlet.spawn(self._run)

    def _run(self):
        try:
            for chunk in self._source:
                self._queue.put(chunk)
        except eventlet.greenlet.GreenletExit:
            return
        except Exception as err:
            self._queue.put(err)
            return
        self._queue.put(_END)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is _END:
            raise StopIteration
        if isinstance(item, Exception):
            raise item
        return item

    def close(self):
        self._thread.kill()
        close_if_possible(self._source)


class Failed(Exception):
    """An upload failed; ``kind`` and ``permanent`` as
    :class:`shunt.daemon.rows.RowFailed`'s."""

    def __init__(self, kind, message, permanent=False):
        super().__init__(message)
        self.kind = kind
        self.permanent = permanent


class LocalReadError(Failed):
    """A local object could not be read as promised.

    ``kind`` is ``local`` (retry later) or ``invalid`` (the object no
    longer matches its manifest: retrying cannot help until it changes,
    ``permanent``)."""

    def __init__(self, message, kind='local', permanent=False):
        super().__init__(kind, message, permanent)


class LocalGone(LocalReadError):
    """The object itself (not a segment) answered 404 to the GET after the
    row's HEAD found it: deleted meanwhile (another replica archived it,
    a client deleted it) or a flaky node; the row handler re-checks."""


def precondition_failed(err):
    """Did the store refuse a conditional write (``If-None-Match: *`` on
    a key it holds, or one racing another conditional write of it)?"""
    return getattr(err, 'status', None) == 412 or getattr(
        err, 'code', None) in ('PreconditionFailed',
                               'ConditionalRequestConflict')


@dataclasses.dataclass(frozen=True)
class Piece:
    """``length`` bytes of the large object: bytes ``start..`` of the local
    object ``container/obj`` whose Etag is ``etag`` (or ``data``)."""
    length: int
    container: str | None = None
    obj: str | None = None
    etag: str | None = None
    start: int = 0
    # X-Backend-Storage-Policy-Index of a top-level object; segments are
    # read with their own container's policy
    policy: str | None = None
    # a segment of an SLO (missing or changed: the SLO itself is broken)
    segment: bool = True
    data: bytes | None = None
    # a whole object: its MD5 can be checked as it is read
    whole: bool = False


def part_plan(manifest, min_part=MIN_PART_SIZE, max_part=MAX_PART_SIZE,
              max_parts=MAX_PARTS):
    """Why S3 cannot take this manifest's segments as its parts (a
    sentence), or None when it can."""
    segments = manifest.segments
    if len(segments) > max_parts:
        return f'{len(segments)} segments, more than {max_parts} parts'
    for number, seg in enumerate(segments, 1):
        if seg.data is not None:
            return f'segment {number} is inline data'
        if seg.sub_slo:
            return f'segment {number} is a nested SLO'
        if seg.range is not None:
            return f'segment {number} is a byte range'
        if seg.length > max_part:
            return f'segment {number} is larger than {max_part} bytes'
        if seg.length < min_part and number < len(segments):
            return (f'segment {number} has {seg.length} bytes, less than '
                    f'{min_part}')
    return None


def segment_pieces(manifest):
    """One whole-object piece per segment (when :func:`part_plan` is
    None)."""
    return [Piece(seg.length, seg.container, seg.obj, seg.hash, whole=True)
            for seg in manifest.segments]


def _seg_range(seg):
    if seg.range is None:
        return 0, seg.length
    first = int(seg.range.split('-', 1)[0])
    return first, first + seg.length


def expand(manifest, fetch_manifest, depth=0):
    """The pieces making up an SLO's bytes, nested SLOs expanded.

    ``fetch_manifest(container, obj, etag)`` returns the bytes of a
    nested manifest (as Swift stores it)."""
    if depth > MAX_DEPTH:
        raise LocalReadError(f'SLOs nested more than {MAX_DEPTH} deep',
                             kind='invalid', permanent=True)
    pieces = []
    for seg in manifest.segments:
        if seg.data is not None:
            pieces.append(Piece(len(seg.data), data=seg.data))
            continue
        first, stop = _seg_range(seg)
        if not seg.sub_slo:
            pieces.append(Piece(stop - first, seg.container, seg.obj,
                                seg.hash, start=first,
                                whole=seg.range is None))
            continue
        try:
            sub = parse_manifest(fetch_manifest(seg.container, seg.obj,
                                                seg.hash))
        except ValueError as err:
            raise LocalReadError(f'nested SLO {seg.name}: {err}',
                                 kind='invalid', permanent=True)
        pieces.extend(cut(expand(sub, fetch_manifest, depth + 1),
                          first, stop))
    return pieces


def cut(pieces, start, stop):
    """The pieces covering bytes ``[start, stop)`` of ``pieces``."""
    out, offset = [], 0
    for piece in pieces:
        lo, hi = max(start, offset), min(stop, offset + piece.length)
        if lo < hi:
            skip = lo - offset
            if piece.data is not None:
                out.append(Piece(hi - lo,
                                 data=piece.data[skip:skip + hi - lo]))
            else:
                out.append(dataclasses.replace(
                    piece, length=hi - lo, start=piece.start + skip,
                    whole=piece.whole and hi - lo == piece.length))
        offset += piece.length
    return out


def part_size_for(size, wanted, max_parts=MAX_PARTS):
    """Fixed part size for a multipart upload of ``size`` bytes: ``wanted``
    grown so that no more than ``max_parts`` parts are needed."""
    return max(wanted, -(-size // max_parts), 1)


def spans(size, part_size):
    """``[(start, stop), ...]`` splitting ``size`` bytes into parts."""
    return [(start, min(start + part_size, size))
            for start in range(0, size, part_size)] or [(0, 0)]


class SpanReader:
    """A file-like object over ``pieces`` for boto3 to stream from.

    ``open_piece(piece)`` returns an iterator of the piece's bytes. The
    reader checks each piece's length (and, for whole objects, MD5, before
    handing out a piece's last bytes: a store never completes a body that
    does not make the Etag), keeps the MD5 of everything read in
    :attr:`md5` when ``digest`` is true, and restarts from its first byte
    on ``seek(0)``.

    ``store_checks``: the request carries the Etag of the span's only
    piece to a store that always checks it (a Swift ``ETag``: the object
    server refuses a body that does not make it), so that piece is not
    hashed here too (the MD5 of a 64 MiB object is a tenth of a second of
    CPU). Not for S3: stores that ignore ``Content-MD5`` exist (moto
    does), and would keep a body that does not make the Etag.
    """

    def __init__(self, pieces, open_piece, digest=False,
                 store_checks=False):
        self.pieces = list(pieces)
        self.length = sum(p.length for p in self.pieces)
        self.open_piece = open_piece
        self.digest = digest
        self.store_checks = store_checks and len(self.pieces) == 1
        self._reset()

    def _reset(self):
        self._index = 0
        self._iter = None
        self._buf = memoryview(b'')
        self._off = 0
        self._got = 0
        self._piece_md5 = None
        self.position = 0
        self.md5 = hashlib.md5(usedforsecurity=False) if self.digest \
            else None
        # the LocalReadError raised to the sender (an HTTP library may
        # wrap it in its own exception: the caller re-raises this one)
        self.error = None

    def __len__(self):
        return self.length

    def tell(self):
        return self.position

    def seek(self, offset, whence=0):
        if whence == 1:
            offset += self.position
        elif whence == 2:
            offset += self.length
        if offset == self.position:
            return self.position
        if offset != 0:
            raise OSError('a local object stream rewinds only to its start')
        self.close()
        self._reset()
        return 0

    def _next_chunk(self):
        """The next bytes of the span, b'' at its end. A piece is checked
        (length, MD5) before its last bytes are handed out, so a sender
        never completes a body that is not what the Etag promised."""
        while self._index < len(self.pieces):
            piece = self.pieces[self._index]
            if self._iter is None:
                self._iter = iter(self.open_piece(piece))
                if piece.length >= READ_AHEAD_MIN and piece.data is None:
                    self._iter = ReadAhead(self._iter)
                self._got = 0
                self._piece_md5 = hashlib.md5(usedforsecurity=False) \
                    if piece.whole and piece.etag and \
                    not self.store_checks else None
            chunk = b''
            if self._got < piece.length:
                try:
                    chunk = next(self._iter, None)
                except LocalReadError:
                    raise
                except Exception as err:
                    raise LocalReadError(
                        f'reading {self._where(piece)} failed: '
                        f'{err or type(err).__name__}')
                if chunk is None:
                    raise LocalReadError(
                        f'{self._where(piece)} ended after {self._got} of '
                        f'{piece.length} bytes')
                if len(chunk) > piece.length - self._got:
                    chunk = chunk[:piece.length - self._got]
                self._got += len(chunk)
                if self._piece_md5 is not None:
                    self._piece_md5.update(chunk)
            if self._got == piece.length:
                self._finish_piece(piece)
            if chunk:
                return chunk
        return b''

    @staticmethod
    def _where(piece):
        return 'inline data' if piece.data is not None else \
            f'/{piece.container}/{piece.obj}'

    def _finish_piece(self, piece):
        close_if_possible(self._iter)
        self._iter = None
        if self._piece_md5 is not None and \
                self._piece_md5.hexdigest() != piece.etag:
            raise LocalReadError(f'{self._where(piece)} read with MD5 '
                                 f'{self._piece_md5.hexdigest()}, expected '
                                 f'{piece.etag}')
        self._index += 1

    def read(self, size=-1):
        try:
            return self._read(size)
        except LocalReadError as err:
            self.error = err
            raise

    def _read(self, size):
        if size is None or size < 0:
            size = self.length - self.position
        out = []
        wanted = size
        while wanted > 0:
            if self._off >= len(self._buf):
                raw = self._next_chunk()
                if not raw:
                    break
                if len(raw) <= wanted:
                    # whole chunks are handed over as they are (no copy)
                    out.append(raw)
                    wanted -= len(raw)
                    continue
                self._buf = memoryview(raw)
                self._off = 0
            chunk = self._buf[self._off:self._off + wanted]
            self._off += len(chunk)
            out.append(chunk)
            wanted -= len(chunk)
        data = b''.join(out) if len(out) != 1 else \
            out[0].tobytes() if isinstance(out[0], memoryview) else out[0]
        if data:
            if self.md5 is not None:
                self.md5.update(data)
            self.position += len(data)
        return data

    def close(self):
        if self._iter is not None:
            close_if_possible(self._iter)
            self._iter = None
