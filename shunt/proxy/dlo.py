"""Archived dynamic large objects (DLOs): served as Swift serves a local one.

swift-s3-sync/1space archives a Swift DLO as its manifest object alone: an
S3 object (usually 0 bytes) whose user metadata ``x-object-manifest`` holds
the manifest's ``X-Object-Manifest`` value, URL-quoted
(``x-amz-meta-x-object-manifest: dlo-segs/v1/``). The segments stay local,
or are archived from their own container when that one is mapped too.
``dlo`` sits right of ``cloud_shunt`` and never sees such a manifest, so the
shunt serves it itself, with Swift's own DLO code
(``swift.common.middleware.dlo.GetContext``) fed the archived manifest:

* ``GET``: the segments ``<container>/<prefix>*`` concatenated in listing
  order, streamed; ``Etag`` the quoted MD5 of the segment Etags,
  ``Content-Length`` their sum, ``X-Object-Manifest`` the manifest's value
  (as the client PUT it); the manifest's ``Content-Type``, ``X-Timestamp``,
  ``Last-Modified`` and ``X-Object-Meta-*``. ``HEAD`` the same without the
  body. Single and suffix ranges across segments, ``If-Match``,
  ``If-None-Match``, ``If-(Un)Modified-Since`` against the DLO Etag, and
  Swift's own DLO quirks (several ranges answer the whole object; a listing
  of 10,000 segments or more gives no ``Content-Length``/``Etag`` and
  ignores ranges past the first page) are Swift's, since it is Swift's code.
* ``?multipart-manifest=get``: the manifest object itself (its own body
  and Etag) with its ``X-Object-Manifest`` header; ``COPY`` and
  ``X-Copy-From`` therefore copy the concatenated object, or with
  ``?multipart-manifest=get`` the manifest, as for a local DLO.
* The container listing row of an archived manifest is the S3 object's row:
  ``bytes`` 0 and ``hash`` the MD5 of the manifest's own body, as Swift
  lists a DLO manifest; its ``content_type`` is
  ``application/octet-stream``, as for every archived row (S3 listings
  carry none; see :mod:`shunt.proxy.listing`). The ``x-object-manifest``
  metadata is never shown as ``X-Object-Meta-X-Object-Manifest``.
* The ``dlo`` options of the proxy (``rate_limit_after_segment``,
  ``rate_limit_segments_per_sec``, ``max_get_time``) are taken from the
  pipeline's ``dlo`` filter, so archived DLOs are rate-limited like local
  ones.

Segments
--------
The segment listing and every segment GET that Swift's DLO code makes go
through the shunt (a local DLO's go straight to Swift): the listing of a
mapped segment container is the spliced one (local and archived rows, with
segments deleted through the shunt left out), and each segment is read
locally or, if Swift does not have it, from the bucket. A DLO may thus mix
local and archived segments, and its segments may live in a mapped or an
unmapped container. Segments are read with ``?multipart-manifest=get``,
as Swift's DLO code reads them: a segment that is itself a manifest is
read as it is stored, never expanded (so a manifest that matches its own
prefix is read as one of its segments, as in Swift).

Failures
--------
A segment listing or segment GET the bucket cannot answer gets the shunt's
``503`` (one line naming the reason, ``Retry-After`` when waiting helps)
when it happens before the response starts: the first listing page and the
first segment are read before the status line. Swift's DLO code logs a
failure after that (a later listing page, a later segment, an Etag or size
that changed) and ends the body early; the shunt turns any such failure
into an exception, so the proxy breaks the connection and the client (or a
``COPY``) sees a short read, never a silently short object. A listing that
``listing_on_remote_error = local`` would answer with the local rows alone
is a ``503`` for a DLO.

Restore on read
---------------
With ``restore_object`` in the manifest's profile, a ``GET`` that streams
the whole DLO (no ``Range``, no conditional headers) restores the manifest
once the body is served: a PUT of the manifest object (its own body, at
most 64 KiB, with its Etag and ``X-Object-Manifest``, the archived copy's
timestamp and ``If-None-Match: *``, as for any restore). Archived segments
read whole on that GET are restored by the ordinary restore of their own
profile (when it has ``restore_object``) as they stream. The manifest is
written only if, afterwards, Swift alone lists the very segments that were
served (same names, Etags and sizes): Swift's ``dlo`` reads a local
manifest's segments straight from Swift, so a manifest restored while some
of its segments are only in the bucket would turn a complete archived DLO
into a short local one. Otherwise it is not restored (one INFO line per
object and worker). Range, conditional and ``HEAD`` requests never restore.

Costs
-----
A GET of an archived DLO costs: the manifest (one ``GetObject``; one
``HeadObject`` for a ``HEAD`` or a conditional request; for a range, the
ranged ``GetObject`` S3 refuses for a 0-byte manifest, then a
``HeadObject``), the segment
listing (the local listing plus one ``ListObjects`` per 1,000 archived
keys of a mapped segment container; none for an unmapped one), and per
segment a local GET, plus one ``GetObject`` when Swift does not have it.
A ``HEAD`` lists the segments but reads none of them. Swift's DLO code
reads one segment at a time (with its rate limit), so an archived DLO of
many small archived segments is slower than a local one: on the (busy)
all-in-one cluster a GET of a DLO of four 1 KB segments took 1.4 times the
local DLO's time with its segments local in a mapped container, 1.6 times
with half of them archived and 2.3 times with all archived (a HEAD 1.2 to
1.5 times).

The functions up to :func:`wants_restore` are pure; the classes below them
drive Swift's ``GetContext``.
"""

import hashlib

from swift.common.constraints import CONTAINER_LISTING_LIMIT
from swift.common.exceptions import ListingIterError, SegmentError
from swift.common.http import is_success
from swift.common.middleware.dlo import DynamicLargeObject, GetContext
from swift.common.swob import (
    HTTPServiceUnavailable,
    Request,
    Response,
    normalize_etag,
    str_to_wsgi,
    wsgi_quote,
    wsgi_to_str,
    wsgi_unquote,
)
from swift.common.utils import close_if_possible, quote, split_path
from swift.common.wsgi import make_pre_authed_request

from shunt.core import headers as shunt_headers
from shunt.core.remote import RemoteError, unavailable_response
from shunt.proxy import restore, slo
from shunt.proxy.listing import PARTIAL_HEADER, parse_listing

MANIFEST_META = 'x-object-manifest'
MANIFEST_HEADER = 'X-Object-Manifest'
# the DynamicLargeObject defaults, for a pipeline without ``dlo``
DEFAULT_SETTINGS = {'max_get_time': 86400, 'rate_limit_after_segment': 10,
                    'rate_limit_segments_per_sec': 1}
# filters looked through for the pipeline's ``dlo``
MAX_PIPELINE_DEPTH = 64
# a manifest with a larger body of its own is not restored
MAX_RESTORED_MANIFEST = 65536
# set in the environment of the segment reads of an archived DLO
SEGMENT_READ = 'cloud_shunt.dlo_segment'

_log_once = slo.LogOnce()


class SegmentFailure(Exception):
    """A segment listing or segment read failed after the response began:
    raised into the WSGI server so that it breaks the connection."""


# -- pure ------------------------------------------------------------------

def manifest_of(s3_headers):
    """The ``X-Object-Manifest`` value (native, as the client PUT it) that
    an archived object's user metadata names, or None."""
    raw = s3_headers.get(shunt_headers.META_PREFIX + MANIFEST_META)
    if raw is None:
        return None
    # archivers store the value URL-quoted; the codec undoes that quoting
    return shunt_headers.decode_meta_value(raw).strip() or None


def segments_target(value):
    """``(container, prefix)`` (native) the manifest value points at, read
    as Swift's ``dlo`` reads it (URL-unquoted), or None when it names no
    container."""
    target = wsgi_to_str(wsgi_unquote(str_to_wsgi(value)))
    container, sep, prefix = target.partition('/')
    if not sep or not container:
        return None
    return container, prefix


def dlo_settings(app):
    """The options of the pipeline's ``dlo`` filter found right of ``app``
    (its ``app`` chain), or Swift's defaults."""
    for _ in range(MAX_PIPELINE_DEPTH):
        if app is None:
            break
        if isinstance(app, DynamicLargeObject):
            return {name: getattr(app, name, default)
                    for name, default in DEFAULT_SETTINGS.items()}
        app = getattr(app, 'app', None)
    return dict(DEFAULT_SETTINGS)


def listing_digest(digest, rows):
    """Fold listing rows (name, Etag, size) into ``digest``; the number of
    rows."""
    count = 0
    for row in rows:
        if 'name' not in row:
            continue
        digest.update(('%s\0%s\0%s\n' % (
            row['name'], normalize_etag(str(row.get('hash', ''))),
            row.get('bytes'))).encode('utf-8', 'surrogateescape'))
        count += 1
    return count


def manifest_headers(req, headers):
    """The manifest's headers as Swift's proxy hands them to ``dlo``: the
    client's conditions are first evaluated against the manifest object
    itself (its own Etag and date), and a manifest GET that fails them
    comes back as the proxy's 412, with its error ``Content-Type`` and no
    ``Accept-Ranges``; ``dlo`` then builds its answer on those headers."""
    probe = Response(request=req, headers=headers, conditional_response=True)
    if probe._get_conditional_response_status() != 412:
        return list(headers.items())
    return [(k, 'text/html; charset=UTF-8' if k.lower() == 'content-type'
             else v) for k, v in headers.items()
            if k.lower() != 'accept-ranges']


def is_segment_read(req):
    """Is this a segment read of an archived DLO? (Such a read, with
    ``?multipart-manifest=get``, is almost always of a plain object: one
    ``GetObject`` serves it, no ``HeadObject`` first.)"""
    return bool(req.environ.get(SEGMENT_READ))


def wants_restore(req):
    """Is this a request that streams the whole DLO (the only kind that
    restores)?"""
    env = req.environ
    return req.method == 'GET' and 'HTTP_RANGE' not in env and not any(
        name in env for name in (
            'HTTP_IF_MATCH', 'HTTP_IF_NONE_MATCH', 'HTTP_IF_MODIFIED_SINCE',
            'HTTP_IF_UNMODIFIED_SINCE'))


# -- Swift's DLO code, reading through the shunt ---------------------------

class _Watch:
    """The logger handed to Swift's DLO code: its ``SegmentedIterable``
    logs the failures it swallows after the first segment (and then ends
    the body early); they are remembered here to be made visible."""

    def __init__(self, logger):
        self.logger = logger
        self.swallowed = None

    def error(self, msg, *args, **kwargs):
        if isinstance(msg, (ListingIterError, SegmentError)) and \
                self.swallowed is None:
            self.swallowed = msg
        return self.logger.error(msg, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.logger, name)


class SegmentReader:
    """The WSGI app Swift's DLO code reads from (its ``dlo.app``): every
    segment listing and segment GET goes through the shunt. Remembers the
    first failed answer (to answer the shunt's own 503 before the response
    starts, and to break the body after) and a digest of the listed
    segments (for the restore check)."""

    def __init__(self, shunt, restore_segments=False):
        self.shunt = shunt
        self.restore_segments = restore_segments
        self.failure = None
        self.listed = hashlib.md5(usedforsecurity=False)
        self.listed_count = 0

    def __call__(self, env, start_response):
        if not self.restore_segments:
            env[restore.NO_RESTORE] = True
        env[SEGMENT_READ] = True
        req = Request(env)
        resp = req.get_response(self.shunt)
        is_listing = _is_container_path(req)
        if is_listing and is_success(resp.status_int) and \
                resp.headers.get(PARTIAL_HEADER):
            # the bucket could not be listed: local rows alone would make
            # a shorter object, silently
            close_if_possible(resp.app_iter)
            resp = unavailable_response(req, RemoteError(
                'server', 'partial listing'), 'Large object segment listing')
        if not is_success(resp.status_int):
            body = resp.body  # an error page: small
            if self.failure is None:
                self.failure = (resp.status, list(resp.headers.items()),
                                body)
            resp.body = body
        elif is_listing and req.method == 'GET':
            body = resp.body  # Swift's DLO code reads it whole anyway
            self._record_listing(body)
            resp.body = body
        return resp(env, start_response)

    def _record_listing(self, body):
        rows = parse_listing(body)
        if rows is not None:
            self.listed_count += listing_digest(self.listed, rows)

    def failure_response(self, req):
        """The shunt's own answer to the first failed read, for a response
        that has not started (None if nothing failed with a 5xx)."""
        if self.failure is None or not self.failure[0].startswith('5'):
            return None
        status, headers, body = self.failure
        resp = HTTPServiceUnavailable(request=req, headers=dict(headers))
        resp.status = status
        resp.body = b'' if req.method == 'HEAD' else body
        return resp


def _is_container_path(req):
    try:
        split_path(req.environ['PATH_INFO'], 3, 3)
    except ValueError:
        return False
    return True


class _Filter:
    """A stand-in for the ``dlo`` filter instance that ``GetContext``
    expects: its ``app`` is the :class:`SegmentReader`, its options those
    of the pipeline's own ``dlo``."""

    def __init__(self, app, settings):
        self.app = app
        for name, value in settings.items():
            setattr(self, name, value)


class ArchivedDLO:
    """The answer (a WSGI app) for an archived DLO manifest: Swift's
    ``GetContext`` fed the archived manifest's headers."""

    def __init__(self, ctx, req, key, headers, s3_headers, size, value):
        self.ctx = ctx
        self.req = req
        self.key = key
        self.headers = headers
        self.s3_headers = s3_headers
        self.size = size
        self.value = value
        self.restoring = wants_restore(req)
        self.reader = SegmentReader(ctx.shunt, self.restoring)
        self.watch = _Watch(ctx.logger)

    def __call__(self, env, start_response):
        req = self.req
        context = GetContext(
            _Filter(self.reader, dlo_settings(self.ctx.shunt.app)),
            self.watch)
        context._response_status = '200 OK'
        context._response_headers = manifest_headers(req, self.headers)
        target = wsgi_to_str(wsgi_unquote(str_to_wsgi(self.value)))
        resp = context.get_or_head_response(req, target)
        if resp.status_int == 503:
            resp = self.reader.failure_response(req) or resp
        body = resp(env, start_response)
        if req.method != 'GET' or not is_success(resp.status_int):
            return body
        return self._checked(body)

    def _checked(self, body):
        """The body, raising if Swift's DLO code ended it early. When the
        manifest is to be restored, its last bytes go out once that is
        done (the client's next request then finds it local)."""
        restoring = self.restoring and self.ctx.profile.restore_object
        pending = None
        try:
            for chunk in body:
                if not restoring:
                    yield chunk
                    continue
                if pending is not None:
                    yield pending
                pending = chunk
            failed = self._failure()
            if not failed and restoring:
                self._restore_manifest()
            if pending is not None:
                yield pending
            if failed:
                raise SegmentFailure(failed)
        finally:
            close_if_possible(body)

    def _failure(self):
        """Why the body ended early (logged), or None."""
        failed = self.watch.swallowed or (
            self.reader.failure and 'a read answered %s' %
            self.reader.failure[0])
        if failed:
            self.ctx.logger.error(
                'DLO %s: its segments could not all be read (%s): breaking '
                'the response', wsgi_quote(self.req.path_info), failed)
        return failed and str(failed)

    # -- restore -----------------------------------------------------------

    def _restore_manifest(self):
        path = self.req.path_info
        why = self._not_restorable()
        if why:
            if _log_once((why, path)):
                self.ctx.logger.info('Not restoring the DLO manifest %s '
                                     '(%s): %s', wsgi_quote(path),
                                     self.ctx.profile.describe(), why)
            return
        headers = {k: v for k, v in self.headers.items()
                   if k != MANIFEST_HEADER}
        plan = restore.plan(self.ctx, self.req, headers, self.s3_headers,
                            self.size)
        if plan is None:
            return
        plan.headers[MANIFEST_HEADER] = str_to_wsgi(self.value)
        try:
            chunks = self._manifest_body()
        except RemoteError as err:
            self.ctx.log_remote_error('GET', path, err)
            return
        for _ in plan.tee(iter(chunks)):
            pass

    def _not_restorable(self):
        if self.size > MAX_RESTORED_MANIFEST:
            return 'its own body is larger than %d bytes' % \
                MAX_RESTORED_MANIFEST
        target = segments_target(self.value)
        if target is None:
            return 'its X-Object-Manifest names no container'
        local = hashlib.md5(usedforsecurity=False)
        try:
            count = self._local_listing(local, *target)
        except _ListingFailed as err:
            return 'the local segment listing failed: %s' % err
        if count != self.reader.listed_count or \
                local.digest() != self.reader.listed.digest():
            return 'Swift does not have all of its segments'
        return None

    def _local_listing(self, digest, container, prefix):
        """Fold Swift's own listing of the segments (as the ``dlo`` of a
        local manifest sees it) into ``digest``; the number of rows."""
        version, account = split_path(self.req.path_info, 2, 4, True)[:2]
        path = wsgi_quote('/'.join(('', version, account,
                                    str_to_wsgi(container))))
        count, marker = 0, ''
        while True:
            query = 'format=json&prefix=%s' % quote(prefix)
            if marker:
                query += '&marker=%s' % quote(marker)
            resp = make_pre_authed_request(
                self.req.environ, 'GET', path + '?' + query,
                swift_source=restore.SWIFT_SOURCE).get_response(
                    self.ctx.shunt.app)
            body = resp.body
            if resp.status_int != 200:
                raise _ListingFailed(resp.status)
            rows = parse_listing(body)
            if rows is None:
                raise _ListingFailed('not a JSON listing')
            count += listing_digest(digest, rows)
            if len(rows) < CONTAINER_LISTING_LIMIT or not rows:
                return count
            marker = rows[-1].get('name', '')

    def _manifest_body(self):
        if not self.size:
            return []
        resp = self.ctx.get_remote(self.key)
        stream = resp['Body']
        try:
            return [stream.read(MAX_RESTORED_MANIFEST + 1)]
        except Exception as err:
            raise RemoteError('connection', str(err) or type(err).__name__)
        finally:
            stream.close()


class _ListingFailed(Exception):
    pass


def archived_dlo(ctx, req, key, headers, s3_headers, size):
    """For an archived object whose metadata names a DLO manifest: adds
    ``X-Object-Manifest`` to ``headers`` and returns the answer to serve
    (None for ``?multipart-manifest=get``, which serves the manifest
    object itself). None for any other object."""
    value = manifest_of(s3_headers)
    if value is None:
        return None
    if segments_target(value) is None:
        if _log_once(('bad', key, value)):
            ctx.logger.warning('Archived object %r (%s) has an '
                               'x-object-manifest %r that names no '
                               'container: serving it as one object', key,
                               ctx.profile.describe(), value)
        return None
    headers[MANIFEST_HEADER] = str_to_wsgi(value)
    if slo.wants_manifest(req):
        return None
    return ArchivedDLO(ctx, req, key, headers, s3_headers, size, value)
