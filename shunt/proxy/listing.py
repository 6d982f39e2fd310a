"""Spliced container listings: one namespace across Swift and the bucket.

A ``GET`` of a mapped container whose local listing answers ``200`` lists
the local and the archived objects as one container, in Swift's order and
with every listing parameter (``limit``, ``marker``, ``end_marker``,
``prefix``, ``delimiter``, ``reverse``, ``path``) applied to the union,
exactly as Swift would list it if every archived object were local (see
:mod:`shunt.proxy.splice` for how). A local ``404`` (or any other local answer)
is returned untouched; ``HEAD`` and account listings are never spliced.
Parameters Swift refuses get Swift's own answer (``400`` for a value that
is not UTF-8, ``412`` for a ``limit`` above 10000).

Rows
----
Local rows are Swift's, untouched. (Rows of a remote Swift cluster, for
``"protocol": "swift"`` profiles, carry its content types and SLO Etags and
are listed with the request's own parameters: see
:mod:`shunt.proxy.native`.) Archived rows are built from the S3
listing under the container's key prefix::

    {"bytes": 1234, "hash": "<S3 ETag, unquoted>", "name": "photo.jpg",
     "content_type": "application/octet-stream",
     "last_modified": "2024-05-06T07:08:09.000000",
     "content_location": ["AWS S3;my-bucket;3a9f1/AUTH_test/photos/"]}

S3 listings carry no content type, so archived rows report
``application/octet-stream`` (a ``HEAD`` of the object gives the real
one). ``hash`` is the S3 ETag: the MD5 of the body, or ``<md5>-<parts>``
for a multipart upload. ``content_location`` follows swift-s3-sync/1space:
``"<where>;<bucket>;<key prefix>"`` where ``<where>`` is ``AWS S3`` or the
endpoint URL, and the key prefix part is left out when it is empty. A
name present in both stores is listed once, as the local row, with
``"content_location": ["<remote location>", "swift"]``; the same holds for
a ``subdir`` present on both sides. Local-only rows have no
``content_location``. With a ``custom_prefix`` layout the SLO manifest
sidecars under ``.manifests/`` are never listed. ``X-Container-Object-
Count`` and ``X-Container-Bytes-Used`` stay the local figures.

The shunt sits right of ``listing_formats``, so it answers JSON with an
exact ``Content-Length``; ``format=xml`` and ``format=plain`` are produced
from it by Swift's ``listing_formats`` (every archived row has the five
fields it needs).

Requests
--------
The local listing and the first S3 page are requested at the same time
(the S3 call in a green thread) when Swift is expected to allow the
listing: the container exists and the auth middleware's
``swift.authorize`` accepts the request with the container's read ACL
(from the container info the proxy caches anyway). Otherwise the bucket is
asked only after Swift answered ``200``, so that a client Swift refuses
never causes a call to the bucket. Further S3 pages (at most 1,000 keys
each) are read only while the page being built needs them. Memory is
bounded by the page size (``limit`` rows, one S3 page). ``reverse`` and
``path`` listings cost more (see :mod:`shunt.proxy.splice`): a reverse listing
reads the archived keys between ``end_marker`` (or the lowest local row,
when the local rows fill the page; else the start of the container) and
``marker``.

Deleted archived objects
------------------------
An archived object deleted through the shunt (see :mod:`shunt.proxy.writes`) is
left out of listings. Swift's listings do not show tombstones, so the
container records when an archived copy was last hidden
(``X-Container-Sysmeta-Cloud-Shunt-Hidden``) and each archived entry
older than that, or within the window of doubt after it
(``remote_clock_skew`` + 1 s, see :mod:`shunt.core.tombstones`), costs one
local ``HEAD`` (16 at a time) to read its tombstone; an entry whose
tombstone's decision falls inside that window also costs one remote
``HEAD``, so that an archive recording its Swift timestamp is decided on
Swift's clock as a GET decides it. Containers where nothing was ever
hidden pay nothing; for containers with many deletes,
``propagate_delete`` (which removes the bucket copy) keeps listings
cheap. A subdir whose archived objects are all
hidden may still be listed. Archived copies past their ``x-delete-at`` are
not served but stay listed until the archiver removes them (S3 listings
carry no metadata).

Failures
--------
If the bucket cannot be listed (unreachable, timeout, throttling, 5xx,
refused credentials) the client gets ``503 Service Unavailable`` with a
one-line reason, and the proxy log an ERROR line; never a ``200`` that
silently lacks the archived objects. With ``listing_on_remote_error =
local`` in the filter section the client gets the local rows alone and the
header ``X-Cloud-Shunt-Listing: partial`` instead (the ERROR line is
logged all the same).
"""

import json
import urllib.parse

import eventlet
from swift.common.http import is_success
from swift.common.swob import (
    HTTPException,
    HTTPServiceUnavailable,
    Request,
    str_to_wsgi,
    wsgi_quote,
)
from swift.common.utils import Timestamp, close_if_possible
from swift.common.wsgi import WSGIContext, make_env, make_pre_authed_request
from swift.proxy.controllers.base import get_container_info

from shunt import SWIFT_SOURCE
from shunt.core import headers as shunt_headers
from shunt.core import tombstones
from shunt.core.layout import key_prefix
from shunt.core.remote import RemoteError, location_label, unavailable_response
from shunt.proxy import native, splice
from shunt.proxy.writes import HIDDEN_SYSMETA

# local HEADs at a time when reading tombstones of hidden archived rows
TOMBSTONE_CHECKS = 16
PARTIAL_HEADER = 'X-Cloud-Shunt-Listing'
ON_REMOTE_ERROR = ('fail', 'local')
# response headers of the local listing that do not describe the new body
STALE_HEADERS = frozenset(('content-length', 'etag', 'transfer-encoding',
                           'content-range', 'content-encoding'))


def remote_error_policy(conf):
    """The ``listing_on_remote_error`` filter option (``fail`` or
    ``local``)."""
    value = str(conf.get('listing_on_remote_error', 'fail')).strip().lower()
    if value not in ON_REMOTE_ERROR:
        raise ValueError('cloud_shunt: listing_on_remote_error must be '
                         '"fail" or "local", got %r' % value)
    return value


def _listed_time(item):
    """An S3 listing entry's LastModified in epoch seconds, or None."""
    modified = item.get('LastModified')
    return None if modified is None else modified.timestamp()


def parse_listing(body):
    """The rows of a JSON container listing, or None if it is not one."""
    try:
        rows = json.loads(body)
    except ValueError:
        return None
    if not isinstance(rows, list) or not all(
            isinstance(row, dict) and ('name' in row or 'subdir' in row)
            for row in rows):
        return None
    return rows


class LocalListingError(Exception):
    """A later page of the local listing failed."""


class Prefetch:
    """One remote call started ahead, in a green thread."""

    def __init__(self, call, request):
        self.request = request
        self.thread = None
        if request is not None:
            self.thread = eventlet.spawn(self._run, call, request)

    @staticmethod
    def _run(call, request):
        try:
            return call(**request), None
        except Exception as err:
            return None, err

    def take(self, request):
        """The result if ``request`` is the call made ahead, else None."""
        if self.thread is None or request != self.request:
            return None
        thread, self.thread = self.thread, None
        result, err = thread.wait()
        if err is not None:
            raise err
        return result

    def cancel(self):
        thread, self.thread = self.thread, None
        if thread is not None:
            thread.kill()


class ListingContext(WSGIContext):
    """One container GET of a mapped container."""

    def __init__(self, shunt, profile):
        super().__init__(shunt.app)
        self.shunt = shunt
        self.profile = profile
        self.logger = shunt.logger
        self.key_prefix = key_prefix(profile.account, profile.container,
                                     profile.custom_prefix)
        if native.is_swift(profile):
            # a remote Swift container: names are object names, nothing
            # is reserved, rows say where without naming the remote user
            self.location = native.location(shunt.remote, profile)
            self.reserved = False
        else:
            self.location = splice.remote_location(
                location_label(profile), profile.aws_bucket,
                self.key_prefix)
            self.reserved = profile.custom_prefix is not None
        self.prefetch = None
        self.env = None

    def handle(self, env, start_response):
        self.env = env
        req = Request(env)
        try:
            params = splice.parse_params(req)
        except HTTPException:
            # Swift refuses the value itself, with the same answer
            return self.app(env, start_response)
        if params.limit <= 0:
            return self.app(env, start_response)
        if native.is_swift(self.profile) and params.path is None:
            # a remote Swift applies every parameter as Swift does
            scan = splice.NativeScan(self._list_remote, params,
                                     self.location)
        else:
            scan = splice.RemoteScan(
                self._list_remote, params, self.key_prefix, self.location,
                reserved=self.reserved)
        first = scan.first_request()
        if first is not None and not self._may_list(req):
            first = None
        self.prefetch = Prefetch(self._call_remote, first)
        try:
            if params.path is None:
                return self._splice(req, start_response, params, scan)
            return self._splice_path(req, start_response, params, scan)
        finally:
            self.prefetch.cancel()

    def _may_list(self, req):
        """Whether Swift is expected to let this client list the container
        (it exists and the auth middleware allows the read). Only then is
        the first S3 page fetched ahead of Swift's answer: a client Swift
        refuses must not make the shunt call the bucket. The container
        info normally comes from the cache the proxy fills anyway."""
        env = req.environ
        authorize = env.get('swift.authorize')
        info = get_container_info(env, self.app, swift_source=SWIFT_SOURCE)
        if not is_success(info.get('status') or 0):
            return False
        if authorize is None:
            return True
        probe = Request(dict(env))
        probe.acl = info.get('read_acl')
        return authorize(probe) is None

    # -- the two kinds of listing ----------------------------------------

    def _splice(self, req, start_response, params, scan):
        local_iter = self._app_call(self.env)
        rows, local_body = self._local_rows(local_iter)
        if rows is None:
            return self._pass_local(start_response, local_iter, local_body)
        try:
            spliced = splice.spliced_rows(params, rows, scan)
        except (RemoteError, splice.RemoteListingStalled) as err:
            return self._remote_failed(req, start_response, err, rows)
        return self._respond(start_response, spliced)

    def _splice_path(self, req, start_response, params, scan):
        local_scan = splice.LocalScan(self._local_page, params)
        local_iter = self._app_call(self._local_env(local_scan.first_query()))
        rows, local_body = self._local_rows(local_iter)
        if rows is None:
            return self._pass_local(start_response, local_iter, local_body)
        local_scan.first_page = rows
        try:
            spliced = splice.spliced_path_rows(params, local_scan, scan)
        except (RemoteError, splice.RemoteListingStalled) as err:
            try:
                local_only = splice.spliced_path_rows(params, local_scan)
            except LocalListingError as local_err:
                return self._local_failed(req, start_response, local_err)
            return self._remote_failed(req, start_response, err, local_only)
        except LocalListingError as err:
            return self._local_failed(req, start_response, err)
        return self._respond(start_response, spliced)

    # -- local side -------------------------------------------------------

    def _local_rows(self, local_iter):
        """The local rows of a 200 JSON listing (None otherwise), and the
        body when it was read."""
        if self._get_status_int() != 200:
            return None, None
        try:
            body = b''.join(local_iter)
        finally:
            close_if_possible(local_iter)
        return parse_listing(body), body

    def _pass_local(self, start_response, local_iter, body):
        start_response(self._response_status, self._response_headers,
                       self._response_exc_info)
        return local_iter if body is None else [body]

    def _local_env(self, query):
        return make_env(
            self.env, method='GET', agent='%(orig)s CloudShunt',
            query_string=urllib.parse.urlencode(
                query, quote_via=urllib.parse.quote),
            swift_source=SWIFT_SOURCE)

    def _local_page(self, query):
        """Rows of a further page of the local listing (``path``)."""
        resp = Request(self._local_env(query)).get_response(self.app)
        body = resp.body
        if resp.status_int != 200:
            raise LocalListingError('status %s' % resp.status)
        rows = parse_listing(body)
        if rows is None:
            raise LocalListingError('not a JSON listing')
        return rows

    def _local_failed(self, req, start_response, err):
        self.logger.error('Container listing of %s/%s: a further page of '
                          'the local listing failed: %s',
                          self.profile.account, self.profile.container, err)
        resp = HTTPServiceUnavailable(
            request=req, content_type='text/plain',
            body='Container listing unavailable: the local listing '
                 'failed.\n')
        return resp(self.env, start_response)

    # -- remote side ------------------------------------------------------

    def _call_remote(self, **request):
        return self.shunt.remote.list_objects(self.profile, **request)

    def _list_remote(self, **request):
        page = self.prefetch.take(request)
        if page is None:
            page = self._call_remote(**request)
        self.logger.increment('listing.remote_page')
        self._mark_hidden(page)
        return page

    def _mark_hidden(self, page):
        """Mark the archived entries a delete through the shunt has hidden.

        The container records when an archived copy was last hidden; only
        entries archived before that (or within the window of doubt after
        it, see :mod:`shunt.core.tombstones`) can be, and each of them
        costs one local HEAD (concurrently) to read its tombstone. An entry
        whose tombstone is marked and whose time is inside the window also
        costs one remote HEAD, for the Swift timestamp the archive may
        record. Containers where nothing was ever hidden pay nothing."""
        hidden_at = tombstones.parse(self._response_header_value(
            HIDDEN_SYSMETA.lower()))
        if hidden_at is None:
            return
        skew = getattr(self.shunt, 'remote_clock_skew',
                       tombstones.DEFAULT_CLOCK_SKEW)
        suspects = [
            item for item in page.get('Contents') or ()
            if (item.get('Key') or '').startswith(self.key_prefix) and
            tombstones.may_hide(hidden_at, _listed_time(item), skew)]
        pool = eventlet.GreenPool(TOMBSTONE_CHECKS)
        checked = pool.imap(self._hiding_state, suspects)
        for item, (tombstone, version) in zip(suspects, checked,
                                              strict=True):
            if tombstones.hides(tombstone, _listed_time(item),
                                # a remote Swift's SLO: the Etag a
                                # HEAD (and so the delete) saw
                                item.get('SloEtag') or item.get('ETag'),
                                version, skew):
                item[splice.HIDDEN] = True

    def _hiding_state(self, item):
        """The entry's local tombstone, and the archived version's Swift
        timestamp when the tombstone's decision would rest on content."""
        tombstone = self._local_tombstone(item)
        skew = getattr(self.shunt, 'remote_clock_skew',
                       tombstones.DEFAULT_CLOCK_SKEW)
        if not tombstones.in_doubt(tombstone, _listed_time(item), skew):
            return tombstone, None
        try:
            head = self.shunt.remote.head_object(self.profile, item['Key'])
        except RemoteError as err:
            if err.kind != 'not_found':
                raise
            # gone from the bucket since it was listed: as old as can be
            return tombstone, Timestamp(0)
        raw = head['ResponseMetadata']['HTTPHeaders']
        return tombstone, shunt_headers.archived_swift_timestamp(raw)

    def _local_tombstone(self, item):
        name = item['Key'][len(self.key_prefix):]
        path = '/'.join(('', self.env['PATH_INFO'].split('/', 2)[1],
                         wsgi_quote(str_to_wsgi(self.profile.account)),
                         wsgi_quote(str_to_wsgi(self.profile.container)),
                         wsgi_quote(str_to_wsgi(name))))
        resp = make_pre_authed_request(
            self.env, 'HEAD', path, swift_source=SWIFT_SOURCE).get_response(
                self.app)
        close_if_possible(resp.app_iter)
        if resp.status_int != 404:
            return None
        return resp.headers.get('X-Backend-Timestamp')

    def _remote_failed(self, req, start_response, err, local_rows):
        if not isinstance(err, RemoteError):
            err = RemoteError('server', str(err))
        self.logger.increment('remote_error.%s' % err.kind)
        self.logger.error(
            'Container listing of %s/%s cannot list the bucket (%s): %s: %s',
            self.profile.account, self.profile.container,
            self.profile.describe(), err.kind, err.message)
        if getattr(self.shunt, 'listing_on_remote_error', 'fail') == 'local':
            return self._respond(start_response, local_rows,
                                 [(PARTIAL_HEADER, 'partial')])
        resp = unavailable_response(req, err, 'Container listing')
        return resp(self.env, start_response)

    # -- response ---------------------------------------------------------

    def _respond(self, start_response, rows, extra_headers=()):
        body = json.dumps(rows).encode('ascii')
        headers = [(name, value) for name, value in self._response_headers
                   if name.lower() not in STALE_HEADERS]
        headers.append(('Content-Length', str(len(body))))
        headers.extend(extra_headers)
        self.logger.increment('listing.spliced')
        start_response(self._response_status, headers)
        return [body]
