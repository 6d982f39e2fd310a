"""The remote Swift client: another Swift cluster as the archive.

A profile with ``"protocol": "swift"`` (see :mod:`shunt.core.config`) maps a
local container to a container of another Swift cluster. One
:class:`SwiftRemote` per process (proxy worker or sync daemon) talks to
every such cluster.

Names
    The remote container is ``aws_bucket`` (a profile for one container)
    or ``aws_bucket`` + the local container name (a ``/*`` profile). Object
    names are kept as they are. Large-object segments the sync daemon
    writes go to ``<remote container>_segments``, named
    ``<local segment container>/<local segment name>`` there.

Authentication
    With python-swiftclient's ``get_auth``: tempauth-style auth v1
    (``auth_type: swift``, the default), Keystone v3 or v2 (which need the
    ``python-keystoneclient`` package: the ``keystone`` extra; one timeout,
    the larger of the two, bounds a Keystone auth). The storage URL and
    token are kept
    per (auth URL, user, key, auth options) for the life of the process; a
    ``401`` is answered by authenticating again and repeating the request
    once (a request whose body is a stream cannot be repeated: it fails
    with kind ``auth`` and the next one authenticates afresh). Green
    threads needing the same token wait for one auth. Metrics:
    ``remote_swift.auth`` per auth, ``remote_swift.token_renewed`` per
    renewal after a ``401``.
    ``remote_account`` replaces the storage URL's account:
    ``<scheme>://<host[:port]>/v1/<remote_account>``.

Connections
    Requests go through swiftclient's low-level ``HTTPConnection`` (a
    requests session, that is urllib3 underneath): idle connections are
    kept per storage host, at most ``max_pool_connections`` of them, and a
    request takes one, keeps it while its body is read and gives it back
    when the body has been read to the end (a body closed early closes its
    socket). A green thread never waits for another's connection: when all
    are busy a new one is opened, and closed afterwards if the pool is
    full. A request whose body can be sent again is repeated once on a
    fresh connection when an idle one turns out closed by the remote.
    This is the connection reuse of swiftclient's ``Connection``
    without its per-object state (one response at a time, retries that
    re-read bodies, an auth per ``Connection``), so one client serves every
    green thread of a proxy worker. Swift's ``bufferedhttp`` was the other
    choice; it opens a connection per request. Under the proxy's (and the
    daemon's) eventlet monkey-patching the sockets are green: a slow remote
    stalls only the requests that wait for it.
    ``connect_timeout`` bounds the connect, ``read_timeout`` every wait for
    data.

Requests
    Every request carries ``X-Cloud-Sync-Shunt-Bypass: true`` (a remote
    cluster running the shunt serves it from its own Swift and never from
    its archive, so two clusters archiving into each other do not loop),
    and ``X-Trans-Id-Extra`` with the transaction id of the request being
    served (the proxy logger's ``txn_id``) when there is one, so both
    clusters' logs can be matched. Auth requests are sent by swiftclient
    and carry neither (they never reach a shunt).

Failures
    Every failure is a :class:`shunt.core.remote.RemoteError` with the kinds
    of the S3 client: ``404`` ``not_found``, ``416`` ``range``,
    ``401``/``403`` ``auth`` (after one renewal), ``429``/``498``
    ``throttled``, ``5xx`` ``server``, other refusals ``client``, and
    ``timeout`` / ``connection``; ``unavailable`` while the fail-fast guard
    (:class:`shunt.core.guard.FailFast`, per auth identity) refuses calls.
    Messages name the method, container and object, never a key or token.

The proxy reads through the boto3-shaped face (:meth:`SwiftRemote.head_object`,
``get_object``, ``list_objects``, ``delete_object``, ``copy_in_place``; see
:mod:`shunt.core.swift_shapes` for the header translation); the sync daemon
through :meth:`SwiftRemote.request` and the container helpers.
"""

import dataclasses
import json
import logging
import threading
import urllib.parse

from swiftclient import client as swiftclient
from swiftclient.exceptions import ClientException

from shunt.core import swift_shapes
from shunt.core.guard import FailFast
from shunt.core.remote import RemoteError, public_endpoint
from shunt.core.swift_http import (  # noqa: F401 (part of this API)
    Sized,
    StreamingBody,
    SwiftResponse,
    account_storage_url,
    chunks,
    exception_kind,
    header_pairs,
    request_path,
    status_kind,
    wire,
)

# the HTTPHeaders of the boto3-shaped answers, for a native answer's
# headers (see shunt.core.swift_shapes)
boto_headers = swift_shapes.s3_headers

BYPASS_HEADER = 'X-Cloud-Sync-Shunt-Bypass'
TRANS_ID_EXTRA = 'X-Trans-Id-Extra'
SEGMENTS_SUFFIX = '_segments'
USER_AGENT = 'swift-cloud-shunt'
AUTH_VERSIONS = {'swift': '1.0', 'keystone_v2': '2.0', 'keystone_v3': '3'}
AUTH_OPTIONS = {'keystone_v2': ('tenant_name',),
                'keystone_v3': ('project_name', 'project_domain_name',
                                'user_domain_name')}


def remote_container(profile):
    """The remote container of a profile (``profile.container`` is the
    local container, as :meth:`Mappings.lookup` fills it in)."""
    if profile.all_containers:
        if profile.container == '/*':
            raise ValueError('a /* profile has no container until looked up')
        return profile.aws_bucket + profile.container
    return profile.aws_bucket


def segments_container(profile):
    """Where the sync daemon puts the segments of a profile's large
    objects."""
    return remote_container(profile) + SEGMENTS_SUFFIX


@dataclasses.dataclass
class _Auth:
    storage_url: str
    token: str = dataclasses.field(repr=False)


class SwiftRemote:
    """Remote calls for ``protocol: "swift"`` profiles (see the module
    docstring)."""

    def __init__(self, connect_timeout=2.0, read_timeout=10.0,
                 max_pool_connections=100, fail_fast=None, logger=None,
                 get_auth=None):
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_pool_connections = max_pool_connections
        self.fail_fast = fail_fast or FailFast(0, 0)
        self.logger = logger
        self._get_auth = get_auth or swiftclient.get_auth
        self._auths = {}
        self._auth_locks = {}
        self._pools = {}
        self._containers = set()
        self._container_locks = {}
        # swiftclient's curl-style log of a failed request shows the first
        # characters of the key: never below WARNING
        logging.getLogger('swiftclient').setLevel(logging.WARNING)

    # -- identity and tokens ----------------------------------------------

    @staticmethod
    def auth_key(profile):
        """What a token is cached (and the fail-fast guard keyed) by."""
        return (profile.aws_endpoint, profile.aws_identity,
                profile.aws_secret, profile.auth_type, profile.tenant_name,
                profile.project_name, profile.project_domain_name,
                profile.user_domain_name, profile.remote_account)

    def warm(self, profiles):
        """Nothing to build ahead: the first request of a profile
        authenticates (a proxy must start even when a remote is down)."""
        for profile in profiles:
            self.auth_key(profile)

    def _increment(self, metric):
        if self.logger:
            self.logger.increment(metric)

    def _auth(self, profile, key):
        auth = self._auths.get(key)
        if auth is not None:
            return auth
        # green threads that need the same token wait for one auth
        lock = self._auth_locks.setdefault(key, threading.Lock())
        with lock:
            auth = self._auths.get(key)
            if auth is None:
                auth = self._auths[key] = self._authenticate(profile)
        return auth

    def _forget(self, key, auth):
        # only if no other green thread renewed it meanwhile
        if self._auths.get(key) is auth:
            self._auths.pop(key, None)

    def _authenticate(self, profile):
        where = 'auth at %s as %s' % (public_endpoint(profile.aws_endpoint),
                                      profile.aws_identity)
        options = {name: getattr(profile, name)
                   for name in AUTH_OPTIONS.get(profile.auth_type, ())}
        kwargs = {'auth_version': AUTH_VERSIONS[profile.auth_type],
                  # requests takes (connect, read); keystoneclient's
                  # session one number
                  'timeout': (self.connect_timeout, self.read_timeout)
                  if profile.auth_type == 'swift' else
                  max(self.connect_timeout, self.read_timeout)}
        if options:
            kwargs['os_options'] = options
        if profile.tenant_name:
            kwargs['tenant_name'] = profile.tenant_name
        self._increment('remote_swift.auth')
        try:
            url, token = self._get_auth(profile.aws_endpoint,
                                        profile.aws_identity,
                                        profile.aws_secret, **kwargs)
        except ClientException as err:
            status = err.http_status
            kind = status_kind(status) if status else 'auth'
            if kind in ('not_found', 'range', 'client'):
                kind = 'auth'
            detail = status or _scrub(err.msg, profile)
            raise RemoteError(kind, '%s failed: %s' % (where, detail),
                              status) from None
        except Exception as err:
            raise RemoteError(exception_kind(err), '%s failed: %s' % (
                where, type(err).__name__)) from None
        if not url or not token:
            raise RemoteError('auth', '%s gave no storage URL or token'
                              % where)
        if profile.remote_account:
            url = account_storage_url(url, profile.remote_account)
        return _Auth(url, token)

    # -- connections ------------------------------------------------------

    def _checkout(self, storage_url):
        parts = urllib.parse.urlsplit(storage_url)
        pool_key = (parts.scheme, parts.netloc)
        try:
            # (atomic: safe for OS threads too, e.g. a daemon's workers)
            return pool_key, self._pools[pool_key].pop(), True
        except (KeyError, IndexError):
            pass
        _, conn = swiftclient.http_connection(
            '%s://%s' % pool_key, default_user_agent=USER_AGENT,
            timeout=(self.connect_timeout, self.read_timeout))
        return pool_key, conn, False

    def _checkin(self, pool_key, conn):
        idle = self._pools.setdefault(pool_key, [])
        if len(idle) < self.max_pool_connections:
            idle.append(conn)
        else:
            conn.close()

    def close(self):
        """Close every idle connection."""
        for idle in self._pools.values():
            while idle:
                idle.pop().close()

    # -- requests ---------------------------------------------------------

    def request(self, profile, method, container, obj=None, headers=None,
                query=None, body=None, stream=False):
        """One request to the remote cluster: ``container`` (and ``obj``)
        below the profile's storage URL, ``query`` a dict or list of
        pairs, ``body`` bytes, a file-like object or an iterable of bytes
        (sent chunked unless ``headers`` give ``Content-Length``). Returns
        a :class:`SwiftResponse`; raises :class:`RemoteError` (with
        ``status``) unless the answer is 2xx."""
        key = self.auth_key(profile)
        if not self.fail_fast.allows(key):
            self._increment('fail_fast.rejected')
            raise RemoteError('unavailable', 'recent calls to the remote '
                              'cluster failed; not trying again yet')
        what = '%s %s' % (method, container if obj is None else
                          '%s/%s' % (container, obj))
        try:
            result = self._send(profile, key, method, what,
                                (container, obj, query), headers, body,
                                stream)
        except RemoteError as err:
            if self.fail_fast.record(key, err.kind) and self.logger:
                self._increment('fail_fast.open')
                self.logger.error(
                    'Remote Swift %s failing: refusing calls for %ss',
                    public_endpoint(profile.aws_endpoint),
                    self.fail_fast.period)
            raise
        self.fail_fast.record(key)
        return result

    def _headers(self, headers):
        out = {BYPASS_HEADER: 'true'}
        txn_id = getattr(self.logger, 'txn_id', None)
        if txn_id:
            out[TRANS_ID_EXTRA] = txn_id
        for name, value in (headers or {}).items():
            out[name] = value
        return {name: wire(value) for name, value in out.items()}

    def _send(self, profile, key, method, what, target, headers, body,
              stream):
        replayable = body is None or isinstance(body, (bytes, bytearray))
        headers = self._headers(headers)
        if not replayable:
            length = next((v for k, v in headers.items()
                           if k.lower() == 'content-length'), None)
            body = chunks(body) if length is None else \
                Sized(body, int(length))
        for attempt in (1, 2):
            auth = self._auth(profile, key)
            path = request_path(urllib.parse.urlsplit(auth.storage_url).path,
                                *target)
            headers['X-Auth-Token'] = wire(auth.token)
            try:
                pool_key, conn, reused = self._checkout(auth.storage_url)
            except ClientException as err:  # a storage URL it cannot use
                raise RemoteError('client', '%s: %s' % (
                    what, _scrub(err.msg, profile))) from None
            try:
                resp = conn.request(method, path, body, dict(headers))
            except Exception as err:
                conn.close()
                kind = exception_kind(err)
                if attempt == 1 and replayable and reused and \
                        kind == 'connection':
                    # an idle connection the remote closed meanwhile
                    continue
                raise RemoteError(kind, '%s: %s' % (
                    what, type(err).__name__)) from None
            status = resp.status_code
            if status == 401:
                self._forget(key, auth)
            if status == 401 and attempt == 1 and replayable:
                self._read_all(resp, pool_key, conn, what)
                self._increment('remote_swift.token_renewed')
                continue
            if status // 100 != 2:
                self._read_all(resp, pool_key, conn, what)
                raise RemoteError(status_kind(status), '%s: %s %s' % (
                    what, status, resp.reason), status)
            headers_out = swift_shapes.native_headers(header_pairs(resp))
            if stream:
                return SwiftResponse(status, headers_out, StreamingBody(
                    resp, self._releaser(pool_key, conn), what))
            return SwiftResponse(status, headers_out,
                                 self._read_all(resp, pool_key, conn, what))

    def _releaser(self, pool_key, conn):
        return lambda: self._checkin(pool_key, conn)

    def _read_all(self, resp, pool_key, conn, what):
        body = StreamingBody(resp, self._releaser(pool_key, conn), what)
        chunks = list(body.iter_chunks())
        return b''.join(chunks)

    # -- containers (the sync daemon) -------------------------------------

    def ensure_container(self, profile, container):
        """Create ``container`` remotely unless it exists (with the
        profile's ``storage_policy``); known containers cost nothing."""
        known = (self.auth_key(profile), container)
        if known in self._containers:
            return
        # green threads that need the same container wait for one check
        with self._container_locks.setdefault(known, threading.Lock()):
            if known in self._containers:
                return
            try:
                self.request(profile, 'HEAD', container)
            except RemoteError as err:
                if err.kind != 'not_found':
                    raise
                headers = {}
                if profile.storage_policy:
                    headers['X-Storage-Policy'] = profile.storage_policy
                self.request(profile, 'PUT', container, headers=headers)
            self._containers.add(known)

    def forget_container(self, profile, container):
        """Forget that ``container`` exists (it answered 404)."""
        self._containers.discard((self.auth_key(profile), container))

    # -- the boto3-shaped face (the proxy) ----------------------------------

    def head_object(self, profile, key):
        resp = self.request(profile, 'HEAD', remote_container(profile), key)
        return swift_shapes.object_response(resp.status, resp.headers)

    def get_object(self, profile, key, byte_range=None):
        """GET an object (or one byte range of it, ``bytes=…``); the
        response's ``Body`` is a stream the caller must close."""
        headers = {'Range': byte_range} if byte_range else None
        resp = self.request(profile, 'GET', remote_container(profile), key,
                            headers=headers, stream=True)
        return swift_shapes.object_response(resp.status, resp.headers,
                                            resp.body)

    def list_objects(self, profile, prefix, marker='', delimiter='',
                     max_keys=1000, end_marker='', reverse=False):
        """One page of the remote container's listing, as ``ListObjects``
        gives it; a remote container that does not exist (nothing archived
        yet) lists empty."""
        query = {'format': 'json', 'limit': str(max_keys)}
        for name, value in (('prefix', prefix), ('marker', marker),
                            ('delimiter', delimiter),
                            ('end_marker', end_marker)):
            if value:
                query[name] = value
        if reverse:
            query['reverse'] = 'true'
        try:
            resp = self.request(profile, 'GET', remote_container(profile),
                                query=query)
        except RemoteError as err:
            if err.kind != 'not_found':
                raise
            return swift_shapes.listing_page([], prefix, max_keys)
        try:
            rows = json.loads(resp.body) if resp.status == 200 else []
            if not isinstance(rows, list):
                raise ValueError('not a list')
        except ValueError:
            raise RemoteError('server', 'listing of %s: not a JSON listing'
                              % remote_container(profile), resp.status)
        return swift_shapes.listing_page(rows, prefix, max_keys)

    def delete_object(self, profile, key):
        """DELETE an object; one that is already gone is not an error."""
        try:
            resp = self.request(profile, 'DELETE', remote_container(profile),
                                key)
        except RemoteError as err:
            if err.kind != 'not_found':
                raise
            return {'ResponseMetadata': {'HTTPStatusCode': err.status,
                                         'HTTPHeaders': {}}}
        return {'ResponseMetadata': {'HTTPStatusCode': resp.status,
                                     'HTTPHeaders': resp.headers}}

    def copy_in_place(self, profile, key, head, metadata, content_type,
                      extra=None):
        """Replace an object's metadata with a Swift POST (body, Etag and
        an SLO's manifest unchanged); ``metadata`` is S3-style user
        metadata, ``x-delete-at`` and a DLO's ``x-object-manifest`` among
        it (see :func:`swift_shapes.swift_post_headers`)."""
        headers = swift_shapes.swift_post_headers(
            metadata, content_type, extra, segments_container(profile))
        resp = self.request(profile, 'POST', remote_container(profile), key,
                            headers=headers)
        return {'ResponseMetadata': {'HTTPStatusCode': resp.status,
                                     'HTTPHeaders': resp.headers}}

    def restore_archived(self, profile, key, days, tier):
        raise RemoteError('client', 'a remote Swift cluster has no archive '
                          'storage classes to restore from')


def _scrub(text, profile):
    """``text`` without the profile's key in it."""
    text = str(text)
    if profile.aws_secret:
        text = text.replace(profile.aws_secret, '<secret>')
    return text
