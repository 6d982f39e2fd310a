"""The all-in-one's second Swift cluster: the remote of ``swift`` profiles.

``Cluster(s3_backend='swift')`` (:mod:`shunt.tools.aio`) archives to another
Swift cluster instead of an S3 store. :class:`RemoteSwift` is that cluster:
independent of the local one in everything that could make a test pass by
accident --

* its own ``memcached`` (tempauth keeps tokens, and the proxy container and
  account info, under keys such as ``AUTH_/token/<token>`` and
  ``container/AUTH_test/<c>``: a shared memcached would let a local token
  authorise remote requests and mix up the two clusters' container info);
* its own account, container, object and proxy servers, ports, 1-replica
  rings, devices directory and ``swift.conf`` (another hash prefix/suffix;
  storage policies ``standard`` (default) and ``cold``), all under
  ``<state dir>/remote/``; logs ``log/remote-<server>.log``;
* its own tempauth users (:data:`REMOTE_USERS`): ``remote:tester``/
  ``testing`` (admin of ``AUTH_remote``, the identity of the profiles
  :meth:`RemoteSwift.profile` makes), ``remote:reader``/``reading``
  (non-admin of ``AUTH_remote``), ``remote2:tester2``/``testing2`` (admin
  of ``AUTH_remote2``) and ``reseller:admin``/``reseller-key``
  (``.reseller_admin``: with ``remote_account: AUTH_remote2`` a profile
  works in another account than its user's). There is no Keystone (none
  can be installed here): ``keystone_v2``/``keystone_v3`` profiles are
  covered by unit tests only;
* its own ``max_file_size`` (Swift's default unless given): a remote may
  hold objects larger than the local cluster accepts.

Its proxy runs Swift's usual pipeline (tempauth, copy, slo, dlo, versioned
writes, symlink) and this project's ``cloud_shunt`` with a mapping file of
its own (``remote/cloud-shunt.json``, empty: :meth:`RemoteSwift.
write_mappings` maps remote containers back to the local cluster to try
loops). Its gatekeeper keeps Swift's default ``shunt_inbound_x_timestamp =
true`` (a client's ``X-Timestamp`` is ignored: remote objects get the
remote write time); ``keep_timestamps=True`` (constructor or
:meth:`RemoteSwift.restart_proxy`) sets it false, so writers keep their
original timestamps.

Layout written by the helpers (the sync daemon's, see issue 14): the
remote container of a local ``account/container`` is
:meth:`RemoteSwift.container_for` (``<bucket>_<account>_<container>``,
hashed when longer than Swift allows), objects keep their names, SLO
segments go to ``<remote container>_segments`` as ``<local segment
container>/<local segment name>``, DLO manifests point at ``<remote
container>_segments/<local container>/<prefix>`` and the segments are
copied there, manifests carry ``X-Object-Meta-Swift-Timestamp``.
"""

import concurrent.futures
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse

from shunt.core.headers import decode_meta_value

REMOTE_ACCOUNT = 'AUTH_remote'
REMOTE_ACCOUNT2 = 'AUTH_remote2'
REMOTE_USER = 'remote:tester'
REMOTE_KEY = 'testing'
RESELLER_USER = 'reseller:admin'
RESELLER_KEY = 'reseller-key'
REMOTE_USERS = (
    # (account, user, key, groups)
    ('remote', 'tester', REMOTE_KEY, '.admin'),
    ('remote', 'reader', 'reading', ''),
    ('remote2', 'tester2', 'testing2', '.admin'),
    ('reseller', 'admin', RESELLER_KEY, '.admin .reseller_admin'),
)
REMOTE_POLICIES = ('standard', 'cold')
# process names (Cluster.procs, log/<name>.log), in start order
SERVERS = ('account', 'container', 'object')
PROCS = tuple(f'remote-{n}' for n in ('memcached',) + SERVERS + ('proxy',))
PIPELINE = ('catch_errors gatekeeper healthcheck proxy-logging cache '
            'listing_formats tempauth copy cloud_shunt slo dlo '
            'versioned_writes symlink proxy-logging proxy-server')
MAX_CONTAINER_NAME = 256
# threads copying a DLO's segments
COPIERS = 8
# the metadata keys archive_object turns into Swift headers of their own
DELETE_AT_META = 'x-delete-at'
MANIFEST_META = 'x-object-manifest'
SLO_META = 'x-static-large-object'


def container_for(bucket, account, container):
    """The remote container of a local container: ``<bucket>_<account>_
    <container>``, or (when that is longer than Swift allows) ``<bucket>_
    <sha256 of account/container>``."""
    name = f'{bucket}_{account}_{container}'
    if len(name.encode('utf-8')) <= MAX_CONTAINER_NAME - len('_segments'):
        return name
    digest = hashlib.sha256(f'{account}/{container}'.encode()).hexdigest()
    return f'{bucket}_{digest}'


def swift_headers(metadata):
    """Swift request headers for S3-style ``metadata`` (lower-case keys,
    values maybe RFC 2047 encoded, as the S3 helpers take them):
    ``X-Object-Meta-<key>`` with the decoded value, ``x-delete-at`` as
    ``X-Delete-At``; the large-object keys are left to the callers."""
    headers = {}
    for key, value in (metadata or {}).items():
        key = key.lower()
        if key in (MANIFEST_META, SLO_META):
            continue
        value = decode_meta_value(value)
        if key == DELETE_AT_META:
            headers['X-Delete-At'] = value
        else:
            headers[f'X-Object-Meta-{key}'] = value
    return headers


def _internal(timestamp=None):
    """``Timestamp.internal`` of ``timestamp`` (default: now)."""
    from swift.common.utils import Timestamp
    return (timestamp or Timestamp.now()).internal


class RemoteSwift:
    """The remote Swift cluster of a :class:`shunt.tools.aio.Cluster`
    (started, stopped and logged by it: its processes are the cluster's
    ``remote-*`` processes)."""

    def __init__(self, cluster, keep_timestamps=False, max_file_size=None):
        from shunt.tools.aio import DEFAULT_MAX_FILE_SIZE
        self.cluster = cluster
        self.keep_timestamps = bool(keep_timestamps)
        # Swift's own limit, whatever the local cluster's (a remote may
        # well hold objects too large for the local one)
        self.max_file_size = int(max_file_size or DEFAULT_MAX_FILE_SIZE)
        self.state_dir = os.path.join(cluster.state_dir, 'remote')
        self.devices_dir = os.path.join(self.state_dir, 'srv')
        self.mapping_file = os.path.join(self.state_dir, 'cloud-shunt.json')
        # swiftclient connections are not thread-safe: one set per thread
        self._local = threading.local()

    # -- addresses ------------------------------------------------------

    def port(self, server):
        return self.cluster.ports[f'remote-{server}']

    @property
    def url(self):
        """The proxy's base URL (``http://127.0.0.1:<port>``)."""
        from shunt.tools.aio import HOST
        return f'http://{HOST}:{self.port("proxy")}'

    @property
    def auth_url(self):
        """tempauth's v1 URL: the ``aws_endpoint`` of swift profiles."""
        return self.url + '/auth/v1.0'

    def storage_url(self, account=REMOTE_ACCOUNT):
        return f'{self.url}/v1/{account}'

    def conf_path(self, server):
        return os.path.join(self.state_dir, f'{server}-server.conf')

    # -- configuration --------------------------------------------------

    def write_config(self):
        from shunt.tools.aio import _ini, _write_atomic
        os.makedirs(self.devices_dir, exist_ok=True)
        sections = [
            ('swift-hash', {
                'swift_hash_path_prefix': 'cloud-shunt-remote-prefix',
                'swift_hash_path_suffix': 'cloud-shunt-remote-suffix'}),
            ('storage-policy:0', {'name': REMOTE_POLICIES[0],
                                  'default': 'yes'}),
            ('storage-policy:1', {'name': REMOTE_POLICIES[1]}),
            ('swift-constraints', {'max_file_size': self.max_file_size}),
        ]
        _write_atomic(os.path.join(self.state_dir, 'swift.conf'),
                      _ini(sections).encode())
        self._write_rings()
        for server in SERVERS:
            self._write_backend_conf(server)
        self._write_proxy_conf()
        if not os.path.exists(self.mapping_file):
            self.write_mappings([])

    def _write_rings(self):
        from swift.common.ring import RingBuilder

        from shunt.tools.aio import HOST
        builders = os.path.join(self.state_dir, 'builders')
        os.makedirs(builders, exist_ok=True)
        rings = (('account', 'account'), ('container', 'container'),
                 ('object', 'object'), ('object-1', 'object'))
        for ring_name, server in rings:
            device = server[:4]
            os.makedirs(os.path.join(self.devices_dir, device),
                        exist_ok=True)
            builder = RingBuilder(6, 1, 1)
            builder.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': HOST,
                             'port': self.port(server), 'device': device,
                             'weight': 1.0})
            builder.rebalance()
            builder.save(os.path.join(builders, f'{ring_name}.builder'))
            builder.get_ring().save(
                os.path.join(self.state_dir, f'{ring_name}.ring.gz'))

    def _default_section(self, server, workers):
        section = self.cluster._default_section(
            f'remote-{server}', self.port(server), workers)
        section.update({'swift_dir': self.state_dir,
                        'devices': self.devices_dir})
        return section

    def _write_backend_conf(self, server):
        from shunt.tools.aio import _ini, _write_atomic
        sections = [
            ('DEFAULT', self._default_section(server, 0)),
            ('pipeline:main', {'pipeline': f'healthcheck {server}-server'}),
            ('filter:healthcheck', {'use': 'egg:swift#healthcheck'}),
            (f'app:{server}-server', {'use': f'egg:swift#{server}'}),
        ]
        _write_atomic(self.conf_path(server), _ini(sections).encode())

    def _write_proxy_conf(self):
        from shunt.tools.aio import HOST, _ini, _write_atomic
        tempauth = {'use': 'egg:swift#tempauth'}
        for account, user, key, groups in REMOTE_USERS:
            tempauth[f'user_{account}_{user}'] = f'{key} {groups}'.strip()
        gatekeeper = {'use': 'egg:swift#gatekeeper'}
        if self.keep_timestamps:
            gatekeeper['shunt_inbound_x_timestamp'] = False
        sections = [
            ('DEFAULT', self._default_section('proxy', 1)),
            ('pipeline:main', {'pipeline': PIPELINE}),
            ('app:proxy-server', {'use': 'egg:swift#proxy',
                                  'allow_account_management': True,
                                  'account_autocreate': True}),
            ('filter:catch_errors', {'use': 'egg:swift#catch_errors'}),
            ('filter:gatekeeper', gatekeeper),
            ('filter:healthcheck', {'use': 'egg:swift#healthcheck'}),
            ('filter:proxy-logging', {'use': 'egg:swift#proxy_logging'}),
            ('filter:cache', {
                'use': 'egg:swift#memcache',
                'memcache_servers': f'{HOST}:{self.port("memcached")}'}),
            ('filter:listing_formats', {'use': 'egg:swift#listing_formats'}),
            ('filter:tempauth', tempauth),
            ('filter:copy', {'use': 'egg:swift#copy'}),
            ('filter:cloud_shunt', {
                'use': 'egg:swift-cloud-shunt#cloud_shunt',
                'conf_file': self.mapping_file, 'reload_interval': 0,
                'negative_cache_ttl': 0, 'fail_fast_threshold': 0}),
            ('filter:slo', {'use': 'egg:swift#slo'}),
            ('filter:dlo', {'use': 'egg:swift#dlo'}),
            ('filter:versioned_writes', {'use': 'egg:swift#versioned_writes',
                                         'allow_versioned_writes': True}),
            ('filter:symlink', {'use': 'egg:swift#symlink'}),
        ]
        _write_atomic(self.conf_path('proxy'), _ini(sections).encode())

    def write_mappings(self, profiles):
        """The remote proxy's own mapping file (``{"containers": ...}``)."""
        from shunt.tools.aio import _write_atomic
        _write_atomic(self.mapping_file, json.dumps(
            {'containers': list(profiles)}, indent=2).encode())

    # -- processes ------------------------------------------------------

    def spawn(self, servers=('memcached',) + SERVERS + ('proxy',)):
        for server in servers:
            if server == 'memcached':
                self.cluster._spawn('remote-memcached',
                                    self.cluster._memcached_argv(
                                        self.port('memcached')))
                continue
            self.cluster._spawn(f'remote-{server}', [
                sys.executable, '-m', 'shunt.tools.aio_server', server,
                self.conf_path(server), '-v'])

    def wait(self, deadline, servers=('memcached',) + SERVERS + ('proxy',)):
        from shunt.tools.aio import _http_status, _memcached_answers
        for server in servers:
            name, port = f'remote-{server}', self.port(server)
            if server == 'memcached':
                self.cluster._wait_until(
                    deadline, name, lambda p=port: _memcached_answers(p))
            elif server != 'proxy':
                self.cluster._wait_until(
                    deadline, name,
                    lambda p=port: (_http_status(p, '/healthcheck') or
                                    (0,))[0] == 200,
                    what='no 200 from /healthcheck')
        if 'proxy' in servers:
            self._wait_proxy(deadline)

    def _wait_proxy(self, deadline):
        from shunt.tools.aio import _http_status

        def ready():
            got = _http_status(self.port('proxy'), '/auth/v1.0',
                               {'X-Auth-User': REMOTE_USER,
                                'X-Auth-Key': REMOTE_KEY})
            return bool(got and got[0] == 200 and
                        got[1].get('X-Auth-Token'))
        self.cluster._wait_until(deadline, 'remote-proxy', ready,
                                 what=f'no tempauth token for {REMOTE_USER}')
        # connections (and tokens: memcached may be new) of the last start
        self._local = threading.local()

    def stop_proxy(self):
        """Stop the remote proxy (the remote is down; its data stays)."""
        self.cluster._stop_processes(['remote-proxy'])

    def start_proxy(self):
        self.cluster._stop_processes(['remote-proxy'])
        self.spawn(('proxy',))
        self.wait(time.monotonic() + self.cluster.start_timeout, ('proxy',))

    def restart_proxy(self, keep_timestamps=None):
        """Restart the remote proxy; ``keep_timestamps`` (True/False)
        changes its gatekeeper's ``shunt_inbound_x_timestamp`` (True:
        a client's ``X-Timestamp`` is kept)."""
        if keep_timestamps is not None:
            self.keep_timestamps = bool(keep_timestamps)
        self._write_proxy_conf()
        self.start_proxy()

    # -- clients --------------------------------------------------------

    def conn(self, user=REMOTE_USER, key=REMOTE_KEY, account=None):
        """A ``swiftclient`` Connection to the remote (shared per user and
        account; no retries); ``account`` another account than the
        user's (a reseller admin's ``remote_account``)."""
        conns = getattr(self._local, 'conns', None)
        if conns is None:
            conns = self._local.conns = {}
        cache_key = (user, key, account)
        conn = conns.get(cache_key)
        if conn is None:
            from swiftclient import client as swiftclient
            options = {}
            if account:
                options['object_storage_url'] = self.storage_url(account)
            conn = conns[cache_key] = swiftclient.Connection(
                authurl=self.auth_url, user=user, key=key, retries=1,
                os_options=options)
        return conn

    def close(self):
        for conn in getattr(self._local, 'conns', {}).values():
            conn.close()
        self._local = threading.local()

    def container_for(self, account, container):
        return container_for(self.cluster.bucket, account, container)

    def profile(self, account, container, **overrides):
        """A ``protocol: swift`` profile: ``remote:tester`` writing into
        :meth:`container_for` of the local container. A ``custom_prefix``
        override is dropped (swift profiles have none: names are kept)."""
        overrides.pop('custom_prefix', None)
        profile = {
            'account': account,
            'container': container,
            'protocol': 'swift',
            'aws_endpoint': self.auth_url,
            'aws_identity': REMOTE_USER,
            'aws_secret': REMOTE_KEY,
            'aws_bucket': self.container_for(account, container),
            'merge_namespaces': True,
        }
        profile.update(overrides)
        return profile

    def create_container(self, name, policy=None):
        headers = {'X-Storage-Policy': policy} if policy else {}
        self.conn().put_container(name, headers=headers)

    def _ensure(self, container):
        from swiftclient.exceptions import ClientException
        try:
            self.conn().head_container(container)
        except ClientException as err:
            if err.http_status != 404:
                raise
            self.create_container(container)

    def head(self, container, name):
        """The remote object's headers (lower-case), or None if absent."""
        from swiftclient.exceptions import ClientException
        try:
            return self.conn().head_object(container, name)
        except ClientException as err:
            if err.http_status == 404:
                return None
            raise

    def archive_object(self, account, container, name, body, metadata=None,
                       content_type=None, bucket=None, timestamp=None):
        """Write ``account/container/name`` into its remote container
        (``bucket`` overrides it; created when missing); ``metadata`` in
        the S3 helpers' form (see :func:`swift_headers`). An
        ``x-object-manifest`` key (URL-quoted ``<container>/<prefix>``)
        archives a DLO as the daemon does: the segments (read through the
        local proxy) copied to ``<remote container>_segments/<container>/``
        and the manifest pointing there. ``timestamp`` (a
        :class:`Timestamp`, default now) becomes ``X-Object-Meta-Swift-
        Timestamp`` of manifests, and the object's ``X-Timestamp`` when the
        remote keeps them. Returns the name."""
        remote = bucket or self.container_for(account, container)
        self._ensure(remote)
        if isinstance(body, str):
            body = body.encode('utf-8')
        headers = swift_headers(metadata)
        meta = {k.lower(): v for k, v in (metadata or {}).items()}
        if MANIFEST_META in meta:
            value = urllib.parse.unquote(decode_meta_value(
                meta[MANIFEST_META]))
            headers.update(self._copy_dlo_segments(account, remote, value))
            headers['X-Object-Meta-Swift-Timestamp'] = _internal(timestamp)
        if timestamp is not None:
            headers['X-Timestamp'] = timestamp.internal
        self.conn().put_object(remote, name, body,
                               content_type=content_type, headers=headers)
        return name

    def _copy_dlo_segments(self, account, remote, value):
        """Copy the local segments of DLO manifest ``value`` to the remote
        segments container; the manifest's headers."""
        seg_container, _, prefix = value.partition('/')
        segments = f'{remote}_segments'
        self._ensure(segments)
        user = self.cluster.account_user(account)
        local = self.cluster.swift_conn(*user)
        try:
            rows = local.get_container(seg_container, prefix=prefix,
                                       full_listing=True)[1]
        finally:
            local.close()
        conns, opened = threading.local(), []

        def copy(row):
            if not hasattr(conns, 'local'):
                conns.local = self.cluster.swift_conn(*user)
                opened.append(conns.local)
            if not row['bytes']:
                data = b''
            else:
                # a range: a whole GET of an archived segment would
                # restore it where the profile restores
                _, data = conns.local.get_object(
                    seg_container, row['name'],
                    headers={'Range': 'bytes=0-'})
            self.conn().put_object(
                segments, f'{seg_container}/{row["name"]}', data,
                content_type=row.get('content_type'))
            return hashlib.md5(data).hexdigest()
        try:
            with concurrent.futures.ThreadPoolExecutor(COPIERS) as pool:
                hashes = list(pool.map(copy, rows))
        finally:
            for conn in opened:
                conn.close()
        return {
            'X-Object-Manifest': urllib.parse.quote(
                f'{segments}/{seg_container}/{prefix}'),
            'X-Object-Meta-Swift-Source-Dlo-Etag': hashlib.md5(
                ''.join(hashes).encode()).hexdigest()}

    def archive_slo(self, account, container, name, segments,
                    content_type=None, metadata=None, timestamp=None):
        """Archive a local SLO as the daemon does: each ``(local path,
        body)`` or ``(local path, body, Timestamp)`` of ``segments`` (path
        ``/<container>/<name>``) into ``<remote container>_segments/
        <container>/<name>``, then the manifest
        (``X-Object-Meta-Swift-Timestamp``). Timestamps are sent as
        ``X-Timestamp`` (kept when the remote keeps them). Returns the
        manifest's remote headers."""
        remote = self.container_for(account, container)
        seg_container = f'{remote}_segments'
        self._ensure(remote)
        self._ensure(seg_container)
        manifest = []
        for path, data, *when in segments:
            seg_name = path.lstrip('/')
            self.conn().put_object(
                seg_container, seg_name, data,
                headers={'X-Timestamp': when[0].internal} if when else {})
            manifest.append({'path': f'/{seg_container}/{seg_name}',
                             'etag': hashlib.md5(data).hexdigest(),
                             'size_bytes': len(data)})
        headers = swift_headers(metadata)
        headers['X-Object-Meta-Swift-Timestamp'] = _internal(timestamp)
        if timestamp is not None:
            headers['X-Timestamp'] = timestamp.internal
        self.conn().put_object(
            remote, name, json.dumps(manifest).encode(),
            content_type=content_type, headers=headers,
            query_string='multipart-manifest=put')
        return self.head(remote, name)
