"""Restore on read: write an archived object back into Swift while it streams.

With ``"restore_object": true`` in a profile, a GET that streams an archived
object whole to the client (a 200: no Range, no unmet condition) also PUTs
the same bytes into local Swift, so that the next read is local. Range
GETs, HEADs, ``?part-number`` reads and conditional GETs that answer 304 or
412 never restore.

How it is written
-----------------
The PUTs are subrequests through the pipeline to the shunt's right (``slo``,
..., ``proxy-server``), made with the client request's context (trans-id,
memcache, cached info) and the ``swift.source`` ``CLOUD_SHUNT_RESTORE``.
They are authorized by the operator's ``restore_object``, not by the
reader's ACLs: a user who may read an object restores it even without write
access (Swift's own middlewares write their bookkeeping objects the same
way).

* A plain object is one PUT with the object's ``Content-Type``, user
  metadata, ``Content-Disposition``/``Content-Encoding``/... and
  ``Etag`` + ``Content-Length``: Swift itself rejects a short or corrupt
  body (499/422) and nothing is stored.
* An archived SLO (with a valid sidecar, :mod:`shunt.proxy.slo`, or a
  remote Swift's SLO, :mod:`shunt.proxy.native`) is written as an
  SLO: each segment to the container and name its manifest gives (for a
  remote Swift's SLO not written by the sync daemon, whose names are the
  remote cluster's: ``<container>_segments/<object>/restore/<timestamp>/
  <size>/<segment count>/<%08d index>``)
  (containers created if missing, in the storage policy of the object's
  container), each with its ``Etag``; a segment that already exists with
  the same Etag and size is kept and reused. Then the manifest, with
  ``?multipart-manifest=put`` and the SLO's Etag.
* An object larger than Swift's ``max_file_size`` is written as an SLO with
  segments of ``restore_segment_size`` bytes (grown when the object would
  need more segments than the ``slo`` middleware allows) named
  ``<object>/restore/<timestamp>/<size>/<segment size>/<%08d index>`` in
  ``<container>_segments``. The MD5 of the whole stream must equal the
  archived Etag before the manifest is written.
* Not restored (one INFO line per object and worker): multipart uploads
  without a Swift manifest sidecar and other objects whose Etag is not an
  MD5 (nothing to verify the copy against), SLOs whose manifest uses
  ranges, inline data or nested SLOs, objects whose ``X-Delete-At`` has
  passed.

The profile's ``restore_ttl`` (seconds) makes restored copies temporary:
the object and its segments get ``X-Delete-At`` = now + ``restore_ttl`` (or
the archived object's own ``X-Delete-At`` if that is sooner); once Swift's
object expirer has removed them, reads go to the bucket again.

Never losing data, never hanging
--------------------------------
* A restore never replaces a newer local object: the PUTs carry
  ``If-None-Match: *`` and the object (or manifest) is written with the
  archived copy's own timestamp (its ``Last-Modified``, or just after the
  local tombstone if that is newer). Any client write made since the object
  left Swift therefore has a newer timestamp and wins, even one that
  commits while the restore streams. The restored object keeps the
  archived copy's ``Last-Modified``. (An expired copy that the expirer has
  not removed yet is not replaced: until then reads are served from the
  bucket without restoring.)
* The client's download is paced by the local write (a few chunks are
  queued), so memory stays bounded. If the local PUT stops accepting data
  for ``restore_timeout`` seconds the restore is abandoned and the client's
  download continues at the bucket's pace; if the local PUT fails, the
  download simply continues.
* If the client disconnects or the bucket's stream breaks, the local PUT is
  failed on purpose (Swift answers 499 and stores nothing), the bucket's
  connection is closed, and segments this restore wrote are deleted; no
  partial object, no orphaned segment is left behind. Segment deletes carry
  the segment's own timestamp, so they never delete a newer object.
* The end of the client's body waits (up to ``restore_timeout``) for the
  restore to commit, so that a client's next request finds the object
  local.
* Concurrent reads of the same object restore it once: a marker in
  memcache (when there is one) lets only the first reader restore.

Metrics (StatsD, through the proxy logger): ``restore.started``,
``restore.completed``, ``restore.failed``, ``restore.bytes``.
"""

import hashlib
import time

import eventlet
import eventlet.event
import eventlet.queue
from swift.common import constraints
from swift.common.exceptions import ChunkReadError
from swift.common.http import is_success
from swift.common.registry import get_swift_info
from swift.common.request_helpers import get_param
from swift.common.storage_policy import POLICIES
from swift.common.swob import str_to_wsgi, wsgi_quote, wsgi_to_str
from swift.common.utils import Timestamp, close_if_possible, split_path
from swift.common.wsgi import make_pre_authed_request
from swift.proxy.controllers.base import get_container_info

from shunt.core.headers import PASSED_HEADERS, SWIFT_SLO, bare_etag
from shunt.proxy import slo

SWIFT_SOURCE = 'CLOUD_SHUNT_RESTORE'
USER_AGENT = '%(orig)s CloudShuntRestore'
DEFAULT_SEGMENT_SIZE = 1024 ** 3
DEFAULT_TIMEOUT = 10.0
# chunks queued between the client's response and the local PUT
QUEUE_DEPTH = 8
# seconds an in-flight marker keeps other readers from restoring the same
# object (a restore that takes longer may be repeated, harmlessly)
CLAIM_TTL = 900
DEFAULT_MAX_MANIFEST_SEGMENTS = 1000
RESTORED_HEADERS = frozenset(('content-type',) + PASSED_HEADERS)
# set in a request's environment: never restore what it reads (the segment
# reads of an archived DLO that is not read whole, see shunt.proxy.dlo)
NO_RESTORE = 'cloud_shunt.no_restore'
_MD5 = slo._HEX32


class RestoreConfig:
    """The filter options of restores (validated once, at start-up)."""

    def __init__(self, segment_size=DEFAULT_SEGMENT_SIZE,
                 timeout=DEFAULT_TIMEOUT):
        if segment_size < 1:
            raise ValueError('cloud_shunt: restore_segment_size must be at '
                             'least 1')
        self.segment_size = int(segment_size)
        self.timeout = float(timeout)

    @classmethod
    def from_conf(cls, conf):
        values = {}
        for name, option, kind in (
                ('segment_size', 'restore_segment_size', int),
                ('timeout', 'restore_timeout', float)):
            if option not in conf:
                continue
            try:
                values[name] = kind(conf[option])
            except (TypeError, ValueError):
                raise ValueError(f'cloud_shunt: {option} must be a number, '
                                 f'got {conf[option]!r}')
            if values[name] <= 0:
                raise ValueError(f'cloud_shunt: {option} must be positive')
        return cls(**values)


class RestoreFailed(Exception):
    """The restore cannot complete; what it wrote is removed."""


class Superseded(Exception):
    """Swift already has a newer object (or tombstone) of that name."""


class NotRestorable(Exception):
    """Nothing can be restored there (the container is missing)."""


_EOF = object()
_ABORT = object()


class Feed:
    """Chunks handed from the client's response (producer) to the restore
    writer (consumer), through a small bounded queue."""

    def __init__(self, depth=QUEUE_DEPTH):
        self._queue = eventlet.queue.Queue(depth)
        self._buffer = b''
        self._eof = False
        self.aborted = False
        self.closed = False

    # -- producer -------------------------------------------------------

    def put(self, item, timeout):
        """Queue a chunk (or the end of the stream); False if the consumer
        is gone or did not take it within ``timeout`` seconds."""
        if self.closed or self.aborted:
            return False
        try:
            self._queue.put(item, timeout=timeout)
        except eventlet.queue.Full:
            return False
        return not self.closed

    def finish(self, timeout):
        return self.put(_EOF, timeout)

    def abort(self):
        """Make the consumer's next read fail."""
        self.aborted = True
        try:
            self._queue.put_nowait(_ABORT)
        except eventlet.queue.Full:
            pass  # a full queue is read from: the flag is seen

    # -- consumer -------------------------------------------------------

    def read(self, size):
        if self.aborted:
            raise ChunkReadError('restore aborted')
        if not self._buffer:
            if self._eof:
                return b''
            item = self._queue.get()
            if item is _ABORT or self.aborted:
                raise ChunkReadError('restore aborted')
            if item is _EOF:
                self._eof = True
                return b''
            self._buffer = item
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def close(self):
        """The consumer is gone: free the producer if it waits."""
        self.closed = True
        while True:
            try:
                self._queue.get_nowait()
            except eventlet.queue.Empty:
                break


class SegmentInput:
    """``wsgi.input`` of one PUT: the next ``length`` bytes of the feed.
    ``consumed`` (an event) is sent once all of them are read."""

    def __init__(self, feed, length, hashers=(), consumed=None):
        self.feed = feed
        self.remaining = length
        self.hashers = hashers
        self.consumed = consumed

    def read(self, size=-1):
        if self.remaining <= 0:
            return b''
        want = self.remaining if size is None or size < 0 \
            else min(size, self.remaining)
        data = self.feed.read(want)
        self.remaining -= len(data)
        for hasher in self.hashers:
            hasher.update(data)
        if self.remaining <= 0 and self.consumed is not None and \
                not self.consumed.ready():
            self.consumed.send()
        return data

    def drain(self):
        while self.read(65536):
            pass
        if self.remaining:
            raise RestoreFailed('the archived stream ended early')


class Piece:
    """One object a restore writes: the object itself or a segment."""

    def __init__(self, path, length, etag=None,
                 content_type='application/octet-stream'):
        self.path = path  # WSGI string /v1/a/c/o
        self.length = length
        self.etag = etag
        self.content_type = content_type

    @property
    def container_path(self):
        return '/'.join(self.path.split('/', 4)[:4])

    @property
    def name(self):
        """``/container/object`` (native) as a manifest names it."""
        return wsgi_to_str('/' + self.path.split('/', 3)[3])


# -- planning ---------------------------------------------------------------

_log_once = slo.LogOnce()


def restore_config(shunt):
    conf = getattr(shunt, 'restore_conf', None)
    return conf if conf is not None else RestoreConfig()


def local_timestamp(value):
    """The timestamp of what Swift has under the name (a tombstone, an
    expired object), from its 404's ``X-Backend-Timestamp``, or None."""
    try:
        ts = Timestamp(value) if value else None
    except ValueError:
        return None
    return ts if ts and ts > Timestamp(0) else None


def restore_timestamp(archived, local, now):
    """The ``X-Timestamp`` of a restored object: the archived copy's
    (never in the future), or just after the local ``local`` timestamp when
    that is not older, so that any write made by a client since wins."""
    try:
        ts = Timestamp(min(float(archived), now)) if archived \
            else Timestamp(now)
    except ValueError:
        ts = Timestamp(now)
    if local is not None and local >= ts:
        # 10 microseconds later, with no offset (offsets of tombstones
        # carry the shunt's delete marks, see shunt.core.tombstones)
        ts = Timestamp(local.timestamp, delta=1)
    return ts


def restored_headers(object_headers, delete_at=None):
    """The headers of the restored object (WSGI strings) from the ones the
    archived object is served with."""
    out = {k: v for k, v in object_headers.items()
           if k.lower() in RESTORED_HEADERS or
           k.lower().startswith('x-object-meta-')}
    if delete_at is not None:
        out['X-Delete-At'] = str(delete_at)
    return out


def expiry(object_headers, ttl, now):
    """``(expired, delete_at)`` of a restored copy: the archived object's
    ``X-Delete-At`` and ``now + ttl``, whichever is sooner."""
    delete_at = None
    value = object_headers.get('X-Delete-At', '')
    if str(value).isdigit():
        delete_at = int(value)
        if delete_at <= now + 1:
            return True, None
    if ttl:
        by_ttl = int(now + ttl) + 1
        delete_at = by_ttl if delete_at is None else min(delete_at, by_ttl)
    return False, delete_at


def _skip(ctx, path, why):
    if _log_once((why, path)):
        ctx.logger.info('Not restoring %s (%s): %s', wsgi_quote(path),
                        ctx.profile.describe(), why)
    return None


def _segment_prefix(obj, timestamp, size, segment_size):
    prefix = f'{obj}/restore/{timestamp.internal}/{size}/{segment_size}/'
    if len(prefix.encode('utf-8')) + 8 > constraints.MAX_OBJECT_NAME_LENGTH:
        digest = hashlib.md5(obj.encode('utf-8'),
                             usedforsecurity=False).hexdigest()
        prefix = prefix.replace(obj, digest, 1)
    return prefix


def plan(ctx, req, object_headers, s3_headers, size, manifest=None):
    """A :class:`Restore` for an archived object about to be served (it
    starts only if the whole body is then streamed), or None."""
    if req.method != 'GET' or not ctx.profile.restore_object:
        return None
    if req.environ.get(NO_RESTORE) or 'X-Object-Manifest' in object_headers:
        # a DLO manifest is restored by a whole read of the DLO alone
        return None
    if get_param(req, 'part-number') is not None:
        return None
    path = req.environ['PATH_INFO']
    try:
        version, account, container, obj = split_path(path, 4, 4, True)
    except ValueError:
        return None
    conf = restore_config(ctx.shunt)
    now = time.time()
    expired, delete_at = expiry(object_headers,
                                getattr(ctx.profile, 'restore_ttl', None),
                                now)
    if expired:
        return _skip(ctx, path, 'its X-Delete-At has passed')
    headers = restored_headers(object_headers, delete_at)
    timestamp = restore_timestamp(
        object_headers.get('X-Timestamp'),
        local_timestamp(getattr(ctx, 'tombstone', None)), now)
    max_file_size = constraints.MAX_FILE_SIZE
    max_segments = int(get_swift_info().get('slo', {}).get(
        'max_manifest_segments', DEFAULT_MAX_MANIFEST_SEGMENTS))
    kwargs = dict(app=ctx.app, env=req.environ, logger=ctx.logger,
                  path=path, headers=headers, size=size,
                  timestamp=timestamp, delete_at=delete_at, conf=conf,
                  where=ctx.profile.describe())

    def seg_path(seg_container, seg_obj):
        return '/'.join(('', version, account, str_to_wsgi(seg_container),
                         str_to_wsgi(seg_obj)))

    if manifest is not None:
        if not manifest.restorable:
            return _skip(ctx, path, 'its SLO manifest has ranges, inline '
                                    'data or nested SLOs')
        if len(manifest.segments) > max_segments or any(
                seg.length > max_file_size for seg in manifest.segments):
            return _skip(ctx, path, 'its SLO manifest has more or larger '
                                    'segments than this cluster accepts')
        names = [(seg.container, seg.obj) for seg in manifest.segments]
        if not getattr(manifest, 'local', True):
            # a remote Swift's SLO whose segments are named after the
            # remote cluster's containers: never written into local
            # containers of those names, but beside the object
            prefix = _segment_prefix(wsgi_to_str(obj), Timestamp.now(),
                                     size, len(names))
            names = [(wsgi_to_str(container) + '_segments',
                      '%s%08d' % (prefix, index))
                     for index in range(len(names))]
        pieces = [Piece(seg_path(*name), seg.length, seg.hash,
                        seg.content_type or 'application/octet-stream')
                  for name, seg in zip(names, manifest.segments,
                                       strict=True)]
        return Restore(pieces=pieces, **kwargs)
    if SWIFT_SLO in s3_headers:
        return _skip(ctx, path, 'the manifest of this remote SLO could not '
                                'be used')
    etag = bare_etag(s3_headers.get('etag')).lower()
    if not _MD5.match(etag):
        return _skip(ctx, path, f'its Etag {etag} is not an MD5 (a '
                                f'multipart upload without a Swift SLO '
                                f'manifest?): nothing to verify it against')
    if size <= max_file_size:
        return Restore(etag=etag, **kwargs)
    segment_size = slo.segment_size_for(size, conf.segment_size,
                                        max_file_size, max_segments)
    if segment_size is None:
        return _skip(ctx, path, 'too large for the segments this cluster '
                                'accepts')
    prefix = _segment_prefix(wsgi_to_str(obj), Timestamp.now(), size,
                             segment_size)
    seg_container = wsgi_to_str(container) + '_segments'
    pieces = [Piece(seg_path(seg_container, '%s%08d' % (prefix, index)),
                    length)
              for index, length in enumerate(
                  slo.fixed_segments(size, segment_size))]
    return Restore(pieces=pieces, etag=etag, **kwargs)


# -- the restore -------------------------------------------------------------

class Restore:
    """One restore: a green thread writing into Swift what the client's
    response streams through :meth:`tee`.

    ``pieces`` None: one PUT of the object with Etag ``etag``. Otherwise an
    SLO: the pieces (segments) in order, then its manifest; ``etag`` is then
    the MD5 the whole stream must have (a split object), or None (an SLO
    whose segments each carry their Etag).
    """

    def __init__(self, app, env, logger, path, headers, size, timestamp,
                 conf, where='', delete_at=None, etag=None, pieces=None):
        self.app = app
        self.env = env
        self.logger = logger
        self.path = path
        self.headers = headers
        self.size = size
        self.timestamp = timestamp
        self.conf = conf
        self.where = where
        self.delete_at = delete_at
        self.etag = etag
        self.pieces = pieces
        self.feed = Feed()
        self.thread = None
        self.outcome = None  # restored, superseded, failed, not started
        self.abort_reason = None
        self.created = []  # (path, timestamp) of segments we wrote
        self._claim_key = None

    # -- the client's side ----------------------------------------------

    def tee(self, chunks):
        """Iterate over ``chunks`` (the object's whole body) for the client
        while the restore writes them into Swift."""
        return self._tee(chunks)

    def _tee(self, chunks):
        if not self._start():
            yield from chunks
            return
        pending = None
        done = False
        why = 'the client disconnected'
        try:
            for chunk in chunks:
                if not chunk:
                    continue
                self._offer(chunk)
                if pending is not None:
                    yield pending
                pending = chunk
            self._end()
            done = True
            if pending is not None:
                # the last bytes go out once the restore has committed: the
                # client's next request finds the object local
                yield pending
        except Exception:
            why = 'the archived stream broke'
            raise
        finally:
            if not done:
                self._abort(why)
            close_if_possible(chunks)

    def _writer_gone(self):
        return self.abort_reason or self.feed.closed or self.feed.aborted

    def _offer(self, chunk):
        if self._writer_gone():
            return
        if not self.feed.put(chunk, self.conf.timeout) and \
                not self._writer_gone():
            self._abort('the local PUT stalled for %gs' % self.conf.timeout)

    def _end(self):
        if self._writer_gone():
            return
        if not self.feed.finish(self.conf.timeout):
            if not self._writer_gone():
                self._abort('the local PUT stalled for %gs' %
                            self.conf.timeout)
            return
        with eventlet.Timeout(self.conf.timeout, False):
            self.thread.wait()

    def _abort(self, why):
        if self.abort_reason or self.thread is None or self.thread.dead:
            return
        self.abort_reason = why
        self.feed.abort()

    def wait(self, timeout=None):
        """Wait for the writer (tests); the outcome."""
        if self.thread is not None:
            with eventlet.Timeout(timeout, False):
                self.thread.wait()
        return self.outcome

    # -- claim ----------------------------------------------------------

    def _start(self):
        if not self._claim():
            self.outcome = 'not started'
            self.logger.debug('Restore of %s already in progress',
                              wsgi_quote(self.path))
            return False
        self.logger.increment('restore.started')
        self.thread = eventlet.spawn(self._run)
        return True

    def _claim(self):
        cache = self.env.get('swift.cache')
        if cache is None:
            return True
        self._claim_key = 'cloud_shunt/restoring/%s' % hashlib.md5(
            self.path.encode('latin-1'), usedforsecurity=False).hexdigest()
        try:
            count = cache.incr(self._claim_key, delta=1, time=CLAIM_TTL)
        except Exception:
            self._claim_key = None
            return True  # no memcache: restore anyway
        if count != 1:
            self._claim_key = None
            return False
        return True

    def _release(self):
        if self._claim_key is None:
            return
        try:
            self.env['swift.cache'].delete(self._claim_key)
        except Exception:
            pass

    # -- the writer -----------------------------------------------------

    def _run(self):
        try:
            self._check_containers()
            if self.pieces is None:
                self._put_object()
            else:
                whole = hashlib.md5(usedforsecurity=False) if self.etag \
                    else None
                entries = self._put_segments(whole)
                if whole is not None and whole.hexdigest() != self.etag:
                    raise RestoreFailed(
                        'the archived stream has MD5 %s, its Etag is %s' %
                        (whole.hexdigest(), self.etag))
                self._put_manifest(entries)
        except NotRestorable as err:
            self.outcome = 'skipped'
            container = '/'.join(self.path.split('/', 4)[:4])
            if _log_once((str(err), container)):
                self.logger.info('Not restoring into %s: %s',
                                 wsgi_quote(container), err)
        except Superseded as err:
            self.outcome = 'superseded'
            self.logger.info('Not restoring %s: %s', wsgi_quote(self.path),
                             err)
            self._cleanup()
        except RestoreFailed as err:
            self._failed(str(err))
        except Exception as err:
            self.logger.exception('Restore of %s failed',
                                  wsgi_quote(self.path))
            self._failed(str(err) or type(err).__name__, logged=True)
        else:
            self.outcome = 'restored'
            self.logger.increment('restore.completed')
            self.logger.update_stats('restore.bytes', self.size)
            self.logger.info('Restored %s (%d bytes) from %s',
                             wsgi_quote(self.path), self.size, self.where)
        finally:
            self.feed.close()
            self._release()

    def _failed(self, message, logged=False):
        self.outcome = 'failed'
        self.logger.increment('restore.failed')
        if not logged:
            self.logger.warning(
                'Restore of %s from %s failed: %s', wsgi_quote(self.path),
                self.where, self.abort_reason or message)
        self._cleanup()

    def _request(self, method, path, headers=None, body=None, query=None,
                 wsgi_input=None):
        target = wsgi_quote(path) + ('?' + query if query else '')
        req = make_pre_authed_request(
            self.env, method, target, body=body, headers=headers,
            agent=USER_AGENT, swift_source=SWIFT_SOURCE)
        if wsgi_input is not None:
            req.environ['wsgi.input'] = wsgi_input
        resp = req.get_response(self.app)
        # answers to PUT/HEAD/DELETE are small: reading the body (swob keeps
        # it) also closes the app_iter
        _ = resp.body
        return resp

    def _check_containers(self):
        version, account, container = self.path.split('/', 4)[1:4]
        info = self._container_info(
            '/'.join(('', version, account, container)))
        if not is_success(info.get('status') or 0):
            raise NotRestorable('its container answers %s' %
                                info.get('status'))
        policy = None
        if info.get('storage_policy') is not None:
            policy = POLICIES.get_by_index(info['storage_policy'])
        done = {'/'.join(('', version, account, container))}
        for piece in self.pieces or ():
            path = piece.container_path
            if path in done:
                continue
            done.add(path)
            if is_success(self._container_info(path).get('status') or 0):
                continue
            headers = {'X-Storage-Policy': policy.name} if policy else {}
            resp = self._request('PUT', path, headers)
            if not is_success(resp.status_int):
                raise RestoreFailed('creating the segment container %s '
                                    'answered %s' % (wsgi_quote(path),
                                                     resp.status))

    def _container_info(self, path):
        env = dict(self.env, PATH_INFO=path)
        return get_container_info(env, self.app, swift_source=SWIFT_SOURCE)

    def _put_object(self):
        headers = dict(self.headers)
        headers.update({
            'Content-Length': str(self.size),
            'Etag': self.etag,
            'X-Timestamp': self.timestamp.internal,
            'If-None-Match': '*',
        })
        resp = self._request('PUT', self.path, headers,
                             wsgi_input=SegmentInput(self.feed, self.size))
        if resp.status_int in (202, 412):
            raise Superseded('Swift already has an object or tombstone of '
                             'that name (PUT answered %s)' % resp.status)
        if resp.status_int != 201:
            raise RestoreFailed('PUT answered %s' % resp.status)

    def _put_segments(self, whole):
        """Write the segments in order; their manifest entries.

        A segment's PUT starts as soon as the previous one has read all of
        its bytes, so that the previous one commits (the object servers'
        fsync) while the next streams; at most two are in flight.
        """
        in_flight, entries = [], []
        try:
            for piece in self.pieces:
                while len(in_flight) >= 2:
                    entries.append(in_flight.pop(0).wait())
                consumed = eventlet.event.Event()
                in_flight.append(eventlet.spawn(
                    self._put_segment, piece, whole, consumed))
                consumed.wait()
            while in_flight:
                entries.append(in_flight.pop(0).wait())
        except BaseException:
            # make any PUT still reading fail, and wait for all of them:
            # the cleanup must see every segment that was written
            self.feed.abort()
            for thread in in_flight:
                try:
                    thread.wait()
                except Exception:
                    pass
            raise
        return entries

    def _put_segment(self, piece, whole=None, consumed=None):
        """Write one segment; ``(name, size, etag)`` for the manifest."""
        try:
            return self._write_segment(piece, whole, consumed)
        finally:
            if consumed is not None and not consumed.ready():
                consumed.send()

    def _write_segment(self, piece, whole, consumed):
        mine = hashlib.md5(usedforsecurity=False) if piece.etag is None \
            else None
        hashers = tuple(h for h in (mine, whole) if h is not None)
        body = SegmentInput(self.feed, piece.length, hashers, consumed)
        ts = Timestamp.now()
        headers = {'Content-Length': str(piece.length),
                   'Content-Type': piece.content_type,
                   'X-Timestamp': ts.internal,
                   'If-None-Match': '*'}
        if piece.etag:
            headers['Etag'] = piece.etag
        if self.delete_at is not None:
            headers['X-Delete-At'] = str(self.delete_at)
        resp = self._request('PUT', piece.path, headers, wsgi_input=body)
        if resp.status_int == 201:
            self.created.append((piece.path, ts))
            etag = bare_etag(resp.headers.get('Etag'))
            expected = piece.etag or mine.hexdigest()
            if etag != expected:
                raise RestoreFailed('segment %s stored with Etag %s, not %s'
                                    % (wsgi_quote(piece.path), etag,
                                       expected))
            return piece.name, piece.length, etag
        if resp.status_int == 412 and piece.etag:
            # the segment is there already: keep it if it is the same
            body.drain()
            head = self._request('HEAD', piece.path)
            if head.status_int == 200 and \
                    bare_etag(head.headers.get('Etag')) == piece.etag and \
                    head.content_length == piece.length:
                return piece.name, piece.length, piece.etag
            raise RestoreFailed('segment %s exists with other content' %
                                wsgi_quote(piece.path))
        raise RestoreFailed('PUT of segment %s answered %s' %
                            (wsgi_quote(piece.path), resp.status))

    def _put_manifest(self, entries):
        body = slo.put_manifest(entries)
        headers = dict(self.headers)
        headers.update({
            'Content-Length': str(len(body)),
            'Etag': hashlib.md5(''.join(e[2] for e in entries).encode(
                'ascii'), usedforsecurity=False).hexdigest(),
            'X-Timestamp': self.timestamp.internal,
            'If-None-Match': '*',
        })
        resp = self._request('PUT', self.path, headers, body=body,
                             query='multipart-manifest=put')
        if resp.status_int in (202, 412):
            raise Superseded('Swift already has an object or tombstone of '
                             'that name (manifest PUT answered %s)' %
                             resp.status)
        if resp.status_int != 201:
            raise RestoreFailed('manifest PUT answered %s: %s' % (
                resp.status, resp.body[:200].decode('utf-8', 'replace')))

    def _cleanup(self):
        """Delete the segments this restore wrote (never anything newer:
        each DELETE carries the segment's own timestamp)."""
        for path, ts in reversed(self.created):
            headers = {'X-Timestamp': Timestamp(
                ts.timestamp, offset=ts.offset + 1).internal}
            try:
                resp = self._request('DELETE', path, headers)
            except Exception as err:
                resp = None
                status = str(err)
            else:
                status = resp.status
            if resp is None or resp.status_int not in (204, 404):
                self.logger.warning('Restore of %s: cannot delete its '
                                    'segment %s: %s', wsgi_quote(self.path),
                                    wsgi_quote(path), status)
        self.created = []
