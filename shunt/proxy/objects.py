"""Object GET/HEAD: a local 404 in a mapped container served from the bucket.

The archived object is answered through ``swob.Response`` with
``conditional_response=True`` and a body object offering
``app_iter_range``/``app_iter_ranges``, exactly as Swift's object server
answers for a local object; swob therefore decides 200/206/304/412/416 and
builds ``multipart/byteranges`` bodies with Swift's own rules, and the body
object fetches from the bucket only the bytes swob asks for.

Remote calls per request:

* plain GET, or GET of a single byte range: one ``GetObject`` carrying the
  range (its response gives the size, Etag and metadata swob needs);
* GET with conditional headers or several ranges: one ``HeadObject``, then
  one ranged ``GetObject`` per range actually served (none on 304/412);
* HEAD: one ``HeadObject``.
"""

import time

from swift.common.swob import (
    Request,
    Response,
    multi_range_iterator,
    wsgi_to_str,
)
from swift.common.utils import close_if_possible, split_path
from swift.common.wsgi import WSGIContext

from shunt.core import headers as shunt_headers
from shunt.core.layout import object_key
from shunt.core.remote import (
    RemoteError,
    location_label,
    object_url,
    unavailable_response,
)
from shunt.core.tombstones import archived_visible
from shunt.proxy import dlo, native, restore, slo

# storage classes S3 cannot read without a restore
ARCHIVE_CLASSES = frozenset(('GLACIER', 'DEEP_ARCHIVE'))
# bytes of an archived body read before the first chunk goes out: Swift's
# own object chunk size
FIRST_READ = 65536
ARCHIVE_STATE_HEADER = 'X-Cloud-Shunt-Archive-State'
CONDITIONAL_HEADERS = ('HTTP_IF_MATCH', 'HTTP_IF_NONE_MATCH',
                       'HTTP_IF_MODIFIED_SINCE', 'HTTP_IF_UNMODIFIED_SINCE')


def _s3_range(start, end):
    """``Range`` value for one parsed swob range (either bound may be
    None, ``end`` inclusive)."""
    return 'bytes=%s-%s' % ('' if start is None else start,
                            '' if end is None else end)


def archive_state(s3_headers):
    """``archived``, ``restoring`` or ``restored`` for an object in an
    archive storage class (from S3's ``x-amz-restore``), else None."""
    if s3_headers.get('x-amz-storage-class') not in ARCHIVE_CLASSES:
        return None
    restore = s3_headers.get('x-amz-restore', '')
    if 'ongoing-request="true"' in restore:
        return 'restoring'
    return 'restored' if restore else 'archived'


def _as_swift_412(start_response):
    """Swift's proxy answers a failed precondition with the object's
    headers but its own error Content-Type and no Accept-Ranges."""
    def wrapped(status, headers, exc_info=None):
        if status.startswith('412'):
            headers = [
                (k, 'text/html; charset=UTF-8' if k.lower() == 'content-type'
                 else v)
                for k, v in headers if k.lower() != 'accept-ranges']
        return start_response(status, headers, exc_info)
    return wrapped


class RemoteBody:
    """The body of an archived object, read from the bucket on demand.

    ``stream`` is an already open S3 body covering ``covers`` (a half-open
    byte range); it is used if swob asks for exactly that range, otherwise
    closed and the wanted bytes fetched instead.
    """

    def __init__(self, ctx, key, size, stream=None, covers=None):
        self.ctx = ctx
        self.key = key
        self.size = size
        self._stream = stream
        self._covers = covers
        # a restore.Restore, started if the whole body is served
        self.restore = None
        self._tee = None

    def _take_stream(self, start, stop):
        stream, self._stream = self._stream, None
        if stream is not None and self._covers == (start, stop):
            return stream
        if stream is not None:
            stream.close()
        if start >= stop:
            return None
        byte_range = None
        if (start, stop) != (0, self.size):
            byte_range = _s3_range(start, stop - 1)
        resp = self.ctx.get_remote(self.key, byte_range)
        return resp['Body']

    def _chunks(self, start, stop):
        stream = None
        try:
            stream = self._take_stream(start, stop)
            if stream is None:
                return
            logger, sent = self.ctx.logger, 0
            # a small first read keeps the first byte as early as Swift's
            # own; large reads after it keep the CPU per byte low. A body
            # that can say what it has (a remote Swift's) hands over what
            # has arrived, up to that size: the bytes flow on to the
            # client while the next ones arrive (a remote large object its
            # cluster sends slowly starts at once)
            size = min(FIRST_READ, self.ctx.shunt.chunk_size)
            read = getattr(stream, 'read1', None) or stream.read
            while chunk := read(size):
                if not sent:
                    logger.timing_since('object.first_byte_time',
                                        self.ctx.started)
                sent += len(chunk)
                yield chunk
                size = self.ctx.shunt.chunk_size
            logger.update_stats('object.bytes', sent)
            logger.timing_since('object.read_time', self.ctx.started)
        except Exception as err:
            self.ctx.log_remote_error('read', self.key, err,
                                      ': breaking the response')
            # the status line is already sent: breaking the connection is
            # the only way left to tell the client the body is short
            raise
        finally:
            if stream is not None:
                stream.close()

    def __iter__(self):
        chunks = self._chunks(0, self.size)
        if self.restore is not None:
            chunks = self._tee = self.restore.tee(chunks)
        return chunks

    def app_iter_range(self, start, stop):
        return self._chunks(start, stop)

    def app_iter_ranges(self, ranges, content_type, boundary, size):
        return multi_range_iterator(ranges, content_type, boundary, size,
                                    self._chunks)

    def close(self):
        if self._tee is not None:
            self._tee.close()
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()


class ObjectContext(WSGIContext):
    """One object GET/HEAD in a mapped container."""

    def __init__(self, shunt, profile):
        super().__init__(shunt.app)
        self.shunt = shunt
        self.profile = profile
        self.logger = shunt.logger
        # the local 404's tombstone time, if Swift has one for the name
        self.tombstone = None
        # a remote Swift's DLO (answered as Swift's dlo answers)
        self.native_dlo = False
        self.started = time.time()

    def handle(self, env, start_response, obj):
        # "If-Match: *" turns a local miss into a 412 before we could see
        # the 404; the wildcard is always true for an existing object, so
        # asking without it changes nothing else
        wildcard = '*' in env.get('HTTP_IF_MATCH', '')
        local_env = env
        if wildcard:
            local_env = dict(env)
            del local_env['HTTP_IF_MATCH']
        local_iter = self._app_call(local_env)
        if self._get_status_int() != 404:
            start_response(self._response_status, self._response_headers,
                           self._response_exc_info)
            return local_iter
        self.tombstone = self._response_header_value('x-backend-timestamp')
        # a local 404 page is small: keep it to answer a remote miss
        try:
            local_body = b''.join(local_iter)
        finally:
            close_if_possible(local_iter)
        req = Request(env)
        key = object_key(self.profile.account, self.profile.container, obj,
                         self.profile.custom_prefix)
        negative = self.shunt.negative_cache
        try:
            if negative.is_missing(env, self.profile, key):
                self.logger.increment('object.negative_cache_hit')
                raise RemoteError('hidden', 'cached remote miss')
            resp = self.remote_response(req, key)
        except RemoteError as err:
            if err.kind in ('not_found', 'hidden'):
                self.logger.increment('object.miss')
                if err.kind == 'not_found':
                    negative.remember_missing(env, self.profile, key)
                if wildcard:
                    # Swift's own answer for a missing object and "*"
                    return self.app(env, start_response)
                start_response(self._response_status,
                               self._response_headers)
                return [local_body]
            if err.kind == 'archived' and self.profile.archive_restore_days:
                err = self.start_archive_restore(key, err)
            resp = self.error_response(req, key, err)
        else:
            self.logger.increment('object.hit')
            self.logger.info('%s %s served from %s', req.method, req.path,
                             location_label(self.profile))
            if not isinstance(resp, dlo.ArchivedDLO) and \
                    not self.native_dlo:
                start_response = _as_swift_412(start_response)
        return resp(env, start_response)

    # -- remote calls ---------------------------------------------------

    def get_remote(self, key, byte_range=None):
        return self.shunt.remote.get_object(self.profile, key, byte_range)

    def remote_response(self, req, key):
        """A swob Response for the archived object; raises RemoteError."""
        ranges = req.range.ranges if req.range else []
        single = len(ranges) == 1 and ranges[0] != (None, 0)
        conditional = any(h in req.environ for h in CONDITIONAL_HEADERS)
        if req.method == 'GET' and not conditional and (
                single or not ranges) and (not slo.wants_manifest(req) or
                                           dlo.is_segment_read(req)):
            byte_range = _s3_range(*ranges[0]) if single else None
            try:
                s3 = self.get_remote(key, byte_range)
            except RemoteError as err:
                if err.kind != 'range':
                    raise
                # an unsatisfiable range: swob answers 416 from the size
            else:
                return self._response(req, key, s3, stream=s3['Body'])
        s3 = self.shunt.remote.head_object(self.profile, key)
        return self._response(req, key, s3)

    def _response(self, req, key, s3, stream=None):
        raw = s3['ResponseMetadata']['HTTPHeaders']
        if not archived_visible(self.tombstone, raw, time.time(),
                                self.shunt.remote_clock_skew):
            if stream is not None:
                stream.close()
            raise RemoteError('hidden', 'deleted or expired')
        headers = shunt_headers.swift_object_headers(raw)
        state = archive_state(raw)
        if state:
            headers[ARCHIVE_STATE_HEADER] = state
        headers['Content-Location'] = native.object_location(
            self.shunt.remote, self.profile, key) \
            if native.is_swift(self.profile) else \
            object_url(self.profile, key)
        if native.is_unsized_dlo(self.profile, raw):
            # Swift's own answer for a DLO of 10,000 segments or more
            self.native_dlo = True
            return native.unsized_dlo_response(self, req, key, headers,
                                               raw, stream)
        size = int(raw.get('content-length', 0))
        covers = (0, size)
        if s3['ResponseMetadata'].get('HTTPStatusCode') == 206:
            size, covers = shunt_headers.content_range_total(
                raw.get('content-range'))
            if size is None:
                stream.close()
                raise RemoteError('server', 'unparseable Content-Range from '
                                  'the remote store')
        swift = native.is_swift(self.profile)
        if swift and native.is_remote_slo(raw):
            native.slo_headers(headers, raw)
        try:
            manifest = self.archived_manifest(req, key, raw, size)
        except RemoteError:
            if stream is not None:
                stream.close()
            raise
        if manifest is None and swift and native.is_remote_slo(raw) and \
                slo.wants_manifest(req):
            if stream is not None:
                stream.close()
            return native.slo_manifest_fallback(self, req, key)
        if manifest is not None:
            # an archived SLO: answered as Swift answers a local one
            headers.update(manifest.response_headers())
            special = slo.manifest_response(req, headers, manifest) \
                if slo.wants_manifest(req) else \
                slo.apply_part_number(req, headers, manifest)
            if special is not None:
                if stream is not None:
                    stream.close()
                return special
        elif swift:
            # a remote DLO: served as the remote cluster serves it
            try:
                special = native.dlo_answer(self, req, key, headers, raw,
                                           size)
            except RemoteError:
                if stream is not None:
                    stream.close()
                raise
            # its manifest object itself is answered by the proxy
            self.native_dlo = native.MANIFEST_HEADER in headers and \
                not slo.wants_manifest(req)
            if special is not None:
                if stream is not None:
                    stream.close()
                return special
        else:
            # an archived DLO manifest: answered as Swift's dlo answers
            large = dlo.archived_dlo(self, req, key, headers, raw, size)
            if large is not None:
                if stream is not None:
                    stream.close()
                return large
        if req.method == 'HEAD':
            # swob drains a HEAD's app_iter: give it nothing to fetch
            body = []
        else:
            body = RemoteBody(self, key, size, stream, covers)
            body.restore = restore.plan(self, req, headers, raw, size,
                                        manifest)
        resp = Response(request=req, headers=headers, app_iter=body,
                        conditional_response=True)
        resp.content_length = size
        return resp

    def archived_manifest(self, req, key, s3_headers, size):
        """The sidecar manifest of an archived object marked as an SLO
        (fetched only then), or the manifest of a remote Swift's SLO, or
        None."""
        if native.is_swift(self.profile):
            if not native.is_remote_slo(s3_headers):
                return None
            return native.load_manifest(
                self.shunt.remote, self.profile, key, s3_headers, size,
                self.logger)
        if not slo.is_marked_slo(s3_headers):
            return None
        obj = split_path(req.environ['PATH_INFO'], 4, 4, True)[3]
        return slo.load_archived_manifest(
            self.shunt.remote, self.profile, wsgi_to_str(obj), s3_headers,
            size, self.logger)

    def start_archive_restore(self, key, err):
        """Ask S3 to restore an archive-class object, once: S3's own restore
        state (``x-amz-restore``) says whether one is already running."""
        remote = self.shunt.remote
        try:
            if 'Restore' not in remote.head_object(self.profile, key):
                remote.restore_archived(
                    self.profile, key, self.profile.archive_restore_days,
                    self.profile.archive_restore_tier)
                self.logger.increment('archive.restore_started')
                self.logger.info('Started the S3 restore of %r (%s)', key,
                                 self.profile.describe())
        except RemoteError as restore_err:
            if restore_err.code != 'RestoreAlreadyInProgress':
                self.log_remote_error('RestoreObject', key, restore_err)
                return err
        return RemoteError('restoring', err.message, err.status, err.code)

    # -- failures -------------------------------------------------------

    def log_remote_error(self, op, key, err, then=''):
        if not isinstance(err, RemoteError):
            err = RemoteError('connection', str(err) or type(err).__name__)
        self.logger.increment('remote_error.%s' % err.kind)
        self.logger.error(
            'Remote %s failed for %s bucket %s key %r (%s): %s: %s%s', op,
            location_label(self.profile), self.profile.aws_bucket, key,
            self.profile.describe(), err.kind, err.message, then)

    def error_response(self, req, key, err):
        self.log_remote_error(req.method, key, err)
        return unavailable_response(req, err, 'Archived object')
