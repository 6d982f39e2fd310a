"""
Cloud shunt: objects archived to S3, readable through the Swift API.

Operators move cold objects out of Swift into an S3 bucket (AWS S3 or any
S3-compatible store) with swift-s3-sync/1space or any tool that writes the
same key layout. This middleware makes those archived objects readable
through the ordinary Swift API, as if they were still local.

Behaviour
---------
For a container mapped in the mapping file (see :mod:`shunt.core.config`):

* Object ``GET``/``HEAD`` go to Swift first. Only a local ``404`` consults the
  bucket; every other local answer (200, 206, 304, 412, 401, 403, 5xx...) is
  returned untouched, so authorization is Swift's as usual. A hit is
  streamed from the bucket with Swift's semantics: ``Content-Length``,
  ``Content-Type``, ``Etag`` (bare, as Swift shows a plain object's),
  ``Last-Modified``, ``X-Timestamp``,
  ``Accept-Ranges``, ``X-Object-Meta-*`` (decoded from the S3 user
  metadata), single and multiple byte ranges, ``If-Match``,
  ``If-None-Match``, ``If-Modified-Since`` and ``If-Unmodified-Since``. The
  response carries ``Content-Location: <endpoint>/<bucket>/<key>`` naming
  where it came from.
* A miss in the bucket gives the local 404. A bucket that cannot be reached,
  times out, fails or refuses the credentials gives ``503 Service
  Unavailable`` with a one-line reason (never a false 404) and an ERROR line
  in the proxy log.
* Object ``DELETE`` and ``POST`` behave as for a local object (see
  :mod:`shunt.proxy.writes`): a DELETE answers 204 and hides the archived copy
  from then on (a marked Swift tombstone records it; with
  ``propagate_delete`` the bucket copy is deleted too); a POST replaces the
  archived copy's metadata in the bucket and answers 202. A newer local
  PUT always wins; a copy archived again after a delete is visible again.
  An archived copy whose ``x-delete-at`` metadata is past is not served.
* ``COPY`` and ``PUT`` with ``X-Copy-From`` read an archived source through
  the shunt (``copy`` sits left of it), so they create a correct local
  object.
* A container ``GET`` lists local and archived objects as one container,
  in Swift's order, with every listing parameter applied to the union (see
  :mod:`shunt.proxy.listing`); a bucket that cannot be listed gives ``503``.
* An archived SLO (an S3 multipart upload with Swift's manifest in a
  sidecar) is served as Swift serves a local SLO: its SLO ``Etag``,
  ``X-Static-Large-Object``, ranges across segments, ``?multipart-manifest=
  get`` and ``?part-number`` (see :mod:`shunt.proxy.slo`).
* An archived DLO manifest (``x-object-manifest`` metadata) is served as
  Swift's ``dlo`` serves a local one, its segments read through the shunt
  (local, archived or mixed; see :mod:`shunt.proxy.dlo`).
* With ``restore_object`` in the profile, an archived object read whole is
  also written back into Swift as it streams, so that the next read is
  local; with ``restore_ttl`` the restored copy expires (see
  :mod:`shunt.proxy.restore`).
* Remote misses may be cached in memcache, a failing endpoint is answered
  with ``503`` at once for a while, and objects in archive storage classes
  answer ``503`` with ``Retry-After`` (optionally starting an S3 restore;
  see :mod:`shunt.core.guard` and the options below).
* The request header ``X-Cloud-Sync-Shunt-Bypass: true`` gives the
  local-only view (for DELETE: Swift's own, unmarked tombstone). Names
  that are not UTF-8 are left to Swift (which refuses them).

* A profile with ``"protocol": "swift"`` maps the container to a container
  of another Swift cluster instead of a bucket: everything above holds
  for it, and the remote cluster's own SLOs and DLOs are answered as
  Swift answers local ones (see :mod:`shunt.proxy.native`).

Unmapped containers, account requests and every other verb pass straight
through and never touch the bucket.

Pipeline placement
------------------
After the auth middleware and ``copy``, before ``slo`` and ``dlo``::

    [pipeline:main]
    pipeline = catch_errors gatekeeper healthcheck proxy-logging cache
        listing_formats tempauth copy cloud_shunt slo dlo versioned_writes
        symlink proxy-logging proxy-server

    [filter:cloud_shunt]
    use = egg:swift-cloud-shunt#cloud_shunt
    conf_file = /etc/swift/cloud-shunt.json

Options of the filter section (defaults shown):

``conf_file = /etc/swift/cloud-shunt.json``
    The JSON mapping file.
``reload_interval = 15``
    Seconds between checks of the mapping file for changes. A changed file
    that does not validate is logged as an ERROR and the previous mappings
    stay in force.
``s3_region = us-east-1``
    Signing region for profiles that set no ``aws_region``.
``conn_timeout = 2.0``, ``read_timeout = 10.0``
    Seconds to connect to the bucket and to wait for each read from it.
``max_pool_connections = 100``
    Connections kept per S3 client (one client per distinct endpoint and
    credentials, shared by the worker's requests). Keep it above the
    number of archived GETs one worker serves at once: each request
    beyond it opens a connection (a TLS handshake with AWS) and drops it
    afterwards.
``s3_max_attempts = 2``
    Attempts per remote call (botocore "standard" retries, whose retry
    quota stops retry storms).
``negative_cache_ttl = 10``
    Seconds a remote miss ("not in the bucket") is remembered in memcache,
    shared by all proxies; 0 disables. A PUT, POST or DELETE through the
    proxy forgets the name; objects written to the bucket behind the
    proxy's back show up within this time.
``fail_fast_threshold = 5``, ``fail_fast_period = 5``
    After this many consecutive failed calls to one endpoint (unreachable,
    timeout, 5xx, throttled), answer ``503`` at once for this many seconds
    instead of waiting for timeouts; 0 disables. Per worker; it recovers
    on its own.
``network_chunk_size = 1048576``
    Bytes read from the bucket (and written to the client) at a time,
    after a first read of 64 KiB (so the first byte leaves as early as
    with Swift's own chunks). The proxy's CPU per byte served falls with
    larger reads: about 0.75 s/GB at 262144, 0.5 s/GB at 1048576 on the
    benchmark machine (``tests/bench``). Each archived GET in flight holds
    up to about two of them, like an erasure-coded GET holds its 1 MiB
    segments.
``restore_segment_size = 1073741824``
    Segment size in bytes of restores of objects larger than Swift's
    ``max_file_size`` (restored as SLOs into ``<container>_segments``);
    grown when the object would need more segments than ``slo`` allows.
``restore_timeout = 10``
    Seconds a restore may wait for the local PUT to accept data before it
    is abandoned (the client's download goes on), and the longest the end
    of a restoring response waits for the restore to commit.
``remote_clock_skew = 5``
    Seconds the S3 store's clock may run apart from the proxies'. An
    archived copy whose ``Last-Modified`` is within this (plus one second
    for the store's precision) of a delete is hidden or not by content
    (the Etag the delete saw), not by time; see
    :mod:`shunt.core.tombstones`. Archives recording the object's Swift
    timestamp are decided on Swift's clock and need no margin.
``listing_on_remote_error = fail``
    What a container listing does when the bucket cannot be listed:
    ``fail`` answers ``503 Service Unavailable``; ``local`` answers the
    local rows alone, with the header ``X-Cloud-Shunt-Listing: partial``.
``log_name``, ``log_level``, ``log_statsd_*`` ...
    The usual Swift logging options. The log route is ``cloud_shunt``.

``/info`` shows ``cloud_shunt`` with the version, the supported protocols
and the reload interval; never a bucket, endpoint or credential.
"""

from swift.common.constraints import valid_api_version
from swift.common.registry import register_swift_info
from swift.common.swob import wsgi_to_str
from swift.common.utils import config_true_value, get_logger, split_path

from shunt import SWIFT_SOURCE, __version__
from shunt.core import tombstones
from shunt.core.config import ConfigError, MappingSource
from shunt.core.guard import FailFast, NegativeCache
from shunt.core.layout import object_key
from shunt.core.stores import Remotes
from shunt.proxy.listing import ListingContext, remote_error_policy
from shunt.proxy.objects import ObjectContext
from shunt.proxy.restore import RestoreConfig
from shunt.proxy.writes import WriteContext

BYPASS_HEADER = 'HTTP_X_CLOUD_SYNC_SHUNT_BYPASS'
HANDLED_METHODS = frozenset(('GET', 'HEAD', 'DELETE', 'POST', 'PUT'))
DEFAULT_CONF_FILE = '/etc/swift/cloud-shunt.json'


class CloudShuntMiddleware:
    def __init__(self, app, conf, logger=None, mapping_source=None,
                 remote=None):
        self.app = app
        self.conf = conf
        self.logger = logger or get_logger(
            conf, log_route='cloud_shunt', statsd_tail_prefix='cloud_shunt')
        self.conf_file = conf.get('conf_file', DEFAULT_CONF_FILE)
        self.reload_interval = _number(conf, 'reload_interval', 15, float)
        self.chunk_size = _number(conf, 'network_chunk_size', 1048576,
                                  int)
        self.listing_on_remote_error = remote_error_policy(conf)
        self.remote_clock_skew = _number(
            conf, 'remote_clock_skew', tombstones.DEFAULT_CLOCK_SKEW, float)
        self.restore_conf = RestoreConfig.from_conf(conf)
        # S3 and remote Swift clusters alike (per profile protocol)
        self.remote = remote or Remotes.build(
            region=conf.get('s3_region', 'us-east-1'),
            connect_timeout=_number(conf, 'conn_timeout', 2.0, float),
            read_timeout=_number(conf, 'read_timeout', 10.0, float),
            max_pool_connections=_number(conf, 'max_pool_connections', 100,
                                         int),
            max_attempts=_number(conf, 's3_max_attempts', 2, int),
            fail_fast=FailFast(
                _number(conf, 'fail_fast_threshold', 5, int),
                _number(conf, 'fail_fast_period', 5.0, float)),
            logger=self.logger)
        self.negative_cache = NegativeCache(
            _number(conf, 'negative_cache_ttl', 10, int), self.logger)
        self.mapping_source = mapping_source or MappingSource(
            self.conf_file, self.reload_interval, self.logger)
        self.remote.warm(self.mapping_source.mappings)

    def profile_for(self, env):
        """The profile mapping this request's container, and the split
        path; (None, None) when the shunt has nothing to do with it."""
        try:
            version, account, container, obj = split_path(
                env.get('PATH_INFO', ''), 3, 4, True)
        except ValueError:
            return None, None
        if not valid_api_version(version):
            return None, None
        if config_true_value(env.get(BYPASS_HEADER)):
            return None, None
        if not _is_utf8(account, container, obj):
            # Swift refuses such names itself (412); no key could hold them
            return None, None
        profile = self.mapping_source.current().lookup(
            wsgi_to_str(account), wsgi_to_str(container))
        return profile, (account, container, obj)

    def __call__(self, env, start_response):
        method = env.get('REQUEST_METHOD')
        if method not in HANDLED_METHODS:
            return self.app(env, start_response)
        profile, parts = self.profile_for(env)
        if profile is None:
            return self.app(env, start_response)
        account, container, obj = parts
        if obj and method in ('PUT', 'POST', 'DELETE'):
            # a name written here must not stay hidden by a cached miss
            self.negative_cache.forget(env, profile, object_key(
                profile.account, profile.container, wsgi_to_str(obj),
                profile.custom_prefix))
        if method == 'PUT':
            return self.app(env, start_response)
        if obj and method in ('DELETE', 'POST'):
            return WriteContext(self, profile, SWIFT_SOURCE).handle(
                env, start_response, wsgi_to_str(obj))
        if obj:
            return ObjectContext(self, profile).handle(
                env, start_response, wsgi_to_str(obj))
        if method == 'GET':
            return ListingContext(self, profile).handle(env, start_response)
        return self.app(env, start_response)


def _is_utf8(*wsgi_strings):
    try:
        for value in wsgi_strings:
            if value:
                value.encode('latin-1').decode('utf-8')
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return True


def _number(conf, name, default, kind):
    value = conf.get(name, default)
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f'cloud_shunt: {name} must be a number, got '
                         f'{value!r}')
    if number < 0:
        raise ValueError(f'cloud_shunt: {name} must not be negative')
    return number


def filter_factory(global_conf, **local_conf):
    conf = dict(global_conf, **local_conf)
    conf_file = conf.get('conf_file', DEFAULT_CONF_FILE)
    reload_interval = _number(conf, 'reload_interval', 15, float)
    logger = get_logger(conf, log_route='cloud_shunt',
                        statsd_tail_prefix='cloud_shunt')
    try:
        mapping_source = MappingSource(conf_file, reload_interval, logger)
    except ConfigError as err:
        # refuse to start: a proxy silently serving without its mappings
        # would hide archived objects from every client
        raise ValueError(f'cloud_shunt: {err}') from None
    register_swift_info('cloud_shunt', version=__version__,
                        protocols=['s3', 'swift'],
                        reload_interval=reload_interval,
                        bypass_header='X-Cloud-Sync-Shunt-Bypass')

    def shunt_filter(app):
        return CloudShuntMiddleware(app, conf, logger=logger,
                                    mapping_source=mapping_source)
    return shunt_filter
