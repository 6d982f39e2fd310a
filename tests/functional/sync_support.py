"""Support for the sync daemon's functional tests (``test_sync_*.py``).

* :func:`sync_cluster` (a session fixture, imported by ``conftest.py``):
  a second all-in-one cluster with three container nodes (a 3-replica
  container ring) and an :class:`~tests.functional.s3faults.S3FaultProxy`
  in front of its S3 endpoint; :func:`sync_env` (function scope) hands
  it to a test as a :class:`SyncEnv` and puts everything back afterwards
  (daemons stopped, faults healed, daemon options reset, mapping emptied).
* Ownership: :func:`owner` says which container node's daemon handles a
  row first (the daemon's rule, computed here from the cluster's own ring
  and hash settings, so that tests can target one node's share).
* The oracle: :func:`record` answers a list of requests for an object
  while it is local; :func:`assert_same_answers` compares the answers for
  the archived object with them (bodies, statuses, every header but the
  per-request ones).
"""

import configparser
import hashlib
import http.client
import json
import os
import struct
import time
import urllib.parse

import pytest

from shunt.core import layout
from tests.functional.s3faults import S3FaultProxy

MiB = 1024 * 1024
ACCOUNT = 'AUTH_test'
BYPASS = {'X-Cloud-Sync-Shunt-Bypass': 'true'}
# differ between any two responses by nature (Content-Location tells
# where an answer came from: checked separately)
VOLATILE = {'x-trans-id', 'x-openstack-request-id', 'date', 'connection',
            'content-location'}


def _native(value):
    """A header value as the remote sent it (http.client and swiftclient
    decode them as latin-1)."""
    try:
        return value.encode('latin-1').decode('utf-8')
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def quote(name):
    return urllib.parse.quote(name.encode('utf-8'))


def body_of(size, seed):
    """``size`` bytes that differ for every seed and at every offset."""
    block = hashlib.sha256(seed.encode('utf-8')).digest() * 2048  # 64 KiB
    out = bytearray()
    n = 0
    while len(out) < size:
        out += hashlib.sha256(b'%d' % n).digest()[:4] + block[:65532]
        n += 1
    return bytes(out[:size])


# -- the cluster -----------------------------------------------------------

class SyncEnv:
    """What a daemon test works with (see the module doc)."""

    def __init__(self, cluster, proxy):
        self.cluster = cluster
        self.proxy = proxy
        # the archive is another Swift cluster (backend 'swift'): no S3
        self.swift = cluster.remote is not None
        self.s3 = None if self.swift else cluster.s3_client()
        self.bucket = cluster.bucket
        self.conn = cluster.swift_conn()
        url, self.token = cluster.token()
        self.base = urllib.parse.urlsplit(url).path
        self.account = self.base.split('/')[2]

    # profiles and containers

    def profile(self, container, **overrides):
        """A profile of the test account's ``container`` whose endpoint is
        the fault proxy (so every S3 call is seen)."""
        overrides.setdefault('aws_endpoint', self.proxy.url + (
            '/auth/v1.0' if self.swift else ''))
        return self.cluster.profile(self.account, container, **overrides)

    def map(self, *profiles):
        self.cluster.write_mappings(list(profiles))

    def key(self, container, name):
        """The archived copy's key as the fault proxy sees it (a remote
        Swift: ``<remote account>/<remote container>/<name>``)."""
        if self.swift:
            return f'{self._remote_prefix(container)}/{name}'
        return layout.object_key(self.account, container, name)

    def segments_key(self, container):
        """A remote Swift: the fault proxy's key pattern of a container's
        segment copies (``<rc>_segments``), for :meth:`S3FaultProxy.since`.
        """
        return f'{self._remote_prefix(container)}_segments/*'

    def is_listing(self, container):
        """A fault-proxy matcher of the requests that list the archive of
        ``container`` (S3: ListObjects; a remote Swift: a GET of the
        remote container)."""
        if not self.swift:
            return lambda req: req.operation == 'ListObjects'
        path = self._remote_prefix(container)
        return lambda req: req.method == 'GET' and req.key == path

    def _remote_prefix(self, container):
        from shunt.tools.aio_remote import REMOTE_ACCOUNT
        return '%s/%s' % (REMOTE_ACCOUNT, self.cluster.remote.container_for(
            self.account, container))

    def archived(self, container, name):
        """The archived copy, whatever the archive is: ``{'size', 'etag'
        (bare), 'content_type', 'meta' ({lower-case name: native value}:
        user and bookkeeping metadata), 'swift_timestamp' (a Timestamp or
        None), 'large' (an SLO: 'slo' on S3 or Swift, a DLO: 'dlo')}`` or
        None when there is none."""
        from swift.common.utils import Timestamp

        from shunt.core import headers as shunt_headers
        raw = self.cluster.archived_head(self.account, container, name)
        if raw is None:
            return None
        raw = {k.lower(): _native(v) for k, v in raw.items()}
        prefix = 'x-object-meta-' if self.swift else 'x-amz-meta-'
        meta = {k[len(prefix):]: shunt_headers.decode_meta_value(v)
                if not self.swift else v
                for k, v in raw.items() if k.startswith(prefix)}
        large = None
        if raw.get('x-static-large-object') or \
                meta.get('x-static-large-object'):
            large = 'slo'
        elif raw.get('x-object-manifest') or meta.get('x-object-manifest'):
            large = 'dlo'
        stamp = meta.get(shunt_headers.TIMESTAMP_META)
        return {'size': int(raw.get('content-length', -1)),
                'etag': shunt_headers.bare_etag(raw.get('etag')),
                'content_type': raw.get('content-type'), 'meta': meta,
                'swift_timestamp': Timestamp(stamp) if stamp else None,
                'large': large}

    def manifest_key(self, container, name):
        return layout.manifest_key(self.account, container, name)

    # requests through the proxy

    def request(self, method, container, name=None, headers=None,
                query=None, body=None, timeout=60):
        """(status, lower-cased headers, body) of one proxy request."""
        path = f'{self.base}/{quote(container)}'
        if name is not None:
            path += f'/{quote(name)}'
        if query:
            path += '?' + (query if isinstance(query, str)
                           else urllib.parse.urlencode(query))
        url = urllib.parse.urlsplit(self.cluster.proxy_url)
        conn = http.client.HTTPConnection(url.hostname, url.port,
                                          timeout=timeout)
        try:
            conn.request(method, path, body=body,
                         headers=dict(headers or {},
                                      **{'X-Auth-Token': self.token}))
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, \
            data

    def local_status(self, container, name):
        """The status of a HEAD of the local copy only (bypass)."""
        return self.request('HEAD', container, name, BYPASS)[0]

    def local_get(self, container, name):
        return self.request('GET', container, name, BYPASS)

    # the daemon

    def run(self, nodes=None, expect=0, timeout=240):
        """One pass at the same time on ``nodes`` (a node, a list of them,
        None: every node); asserts each exit status is ``expect`` (None:
        no check, a callable: a check of it) and returns the ``(status,
        output)`` of each."""
        names = self._nodes(nodes)
        for name in names:
            self.cluster.start_sync(name, once=True)
        results = [self.cluster.wait_sync(name, timeout) for name in names]
        for (status, output), name in zip(results, names, strict=True):
            ok = (expect is None or
                  (expect(status) if callable(expect) else
                   status == expect))
            assert ok, (f'daemon on {name}: exit status {status}, '
                        f'expected {expect}; its output:\n'
                        f'{output[-6000:]}')
        return results

    def _nodes(self, nodes):
        if nodes is None:
            return list(self.cluster.container_nodes)
        if isinstance(nodes, (str, int)):
            nodes = [nodes]
        return [self.cluster.container_node(n) for n in nodes]

    def owner(self, container, name):
        return owner(self.cluster, self.account, container, name)

    # the bucket

    def head_key(self, key):
        """The bucket's HEAD of ``key`` (a dict), or None if absent."""
        try:
            return self.s3.head_object(Bucket=self.bucket, Key=key)
        except self.s3.exceptions.ClientError as err:
            if err.response['Error']['Code'] in ('404', 'NoSuchKey'):
                return None
            raise

    def archived_body(self, container, name):
        """The archived copy's bytes, read from the archive itself."""
        if self.swift:
            remote = self.cluster.remote
            return remote.conn().get_object(remote.container_for(
                self.account, container), name)[1]
        return self.s3.get_object(Bucket=self.bucket, Key=self.key(
            container, name))['Body'].read()

    @property
    def metadata_update(self):
        """The fault proxy's operation name of a metadata-only update (S3:
        a copy in place; a remote Swift: a POST)."""
        return 'POSTObject' if self.swift else 'CopyObject'

    def open_uploads(self):
        """The bucket's multipart uploads that are still open (a remote
        Swift has none)."""
        if self.swift:
            return []
        resp = self.s3.list_multipart_uploads(Bucket=self.bucket)
        return [(u['Key'], u['UploadId']) for u in resp.get('Uploads', [])]

    def abort_open_uploads(self):
        for key, upload_id in self.open_uploads():
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key,
                                           UploadId=upload_id)

    # writing objects

    def put(self, container, name, body, content_type='application/x-test',
            meta=None, headers=None):
        hdrs = {f'X-Object-Meta-{k}': v for k, v in (meta or {}).items()}
        hdrs.update(headers or {})
        return self.conn.put_object(container, name, body,
                                    content_type=content_type, headers=hdrs)

    def put_slo(self, container, name, sizes, seed, segments_container=None,
                content_type='application/x-slo', meta=None):
        """An SLO of segments of ``sizes`` bytes (in
        ``<container>-segments``); returns its whole body."""
        seg_container = segments_container or f'{container}-segments'
        self.conn.put_container(seg_container)
        manifest, whole = [], []
        for i, size in enumerate(sizes):
            body = body_of(size, f'{seed}-{i}')
            seg = f'{name}/{seed}/{i:04d}'
            etag = self.conn.put_object(seg_container, seg, body)
            manifest.append({'path': f'/{seg_container}/{seg}',
                             'etag': etag, 'size_bytes': size})
            whole.append(body)
        hdrs = {f'X-Object-Meta-{k}': v for k, v in (meta or {}).items()}
        self.conn.put_object(container, name, json.dumps(manifest),
                             content_type=content_type, headers=hdrs,
                             query_string='multipart-manifest=put')
        return b''.join(whole)


_INTERNAL_REQUEST = r"""
import json, sys
from shunt.core.swiftdir import use_swift_dir
conf_path, method, path, headers = sys.argv[1:5]
with open(conf_path) as fp:
    swift_dir = [l.split('=', 1)[1].strip() for l in fp
                 if l.startswith('swift_dir')][0]
use_swift_dir(swift_dir)
from swift.common.internal_client import InternalClient
client = InternalClient(conf_path, 'cloud-shunt-tests', 1)
resp = client.make_request(method, path, json.loads(headers),
                           acceptable_statuses=(2, 4))
print(resp.status_int)
"""


def internal_request(cluster, method, path, headers):
    """A request through an internal client of the cluster (no
    gatekeeper: an ``X-Timestamp`` is honoured, as for Swift's own
    daemons); returns the status. ``path`` is ``/v1/a/c/o``, quoted."""
    import subprocess
    import sys

    from shunt.daemon.daemon import IC_CONF_BODY
    conf = os.path.join(cluster.state_dir, 'tests-internal-client.conf')
    user = cluster._default_section('internal', 0, 0)['user']
    with open(conf, 'w') as fp:
        # the daemon's own built-in pipeline (memcache from the cluster's
        # memcache.conf), run as the cluster's user
        fp.write(IC_CONF_BODY.format(swift_dir=cluster.state_dir).replace(
            '[DEFAULT]\n',
            f'[DEFAULT]\nuser = {user}\nlog_level = WARNING\n', 1))
    out = subprocess.run(
        [sys.executable, '-c', _INTERNAL_REQUEST, conf, method, path,
         json.dumps(headers)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    return int(out.stdout.strip().splitlines()[-1])


def owner(cluster, account, container, name):
    """The container node whose daemon owns a row: ordinal ``i`` in the
    container's primary nodes (ring order) where ``i`` is the first four
    bytes of the object's path hash (big-endian) modulo the replica count
    (swift-container-sync's rule)."""
    nodes = primary_nodes(cluster, account, container)
    digest = _hash_path(cluster, account, container, name)
    return nodes[struct.unpack('>I', digest[:4])[0] % len(nodes)]


def primary_nodes(cluster, account, container):
    """The container nodes holding ``account/container``, in ring order."""
    from swift.common.ring import RingData
    ring = RingData.load(os.path.join(cluster.state_dir,
                                      'container.ring.gz'))
    digest = _hash_path(cluster, account, container)
    part = struct.unpack_from('>I', digest)[0] >> ring._part_shift
    by_port = {cluster.ports[node]: node for node in cluster.container_nodes}
    nodes, seen = [], set()
    for part2dev in ring._replica2part2dev_id:
        dev_id = part2dev[part]
        if dev_id in seen:
            continue
        seen.add(dev_id)
        nodes.append(by_port[ring.devs[dev_id]['port']])
    return nodes


def _hash_path(cluster, *parts):
    """Swift's ``hash_path(..., raw_digest=True)`` with the cluster's own
    hash prefix and suffix (this process's Swift may have others)."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(os.path.join(cluster.state_dir, 'swift.conf'))
    prefix = conf.get('swift-hash', 'swift_hash_path_prefix').encode()
    suffix = conf.get('swift-hash', 'swift_hash_path_suffix').encode()
    path = b'/'.join(p.encode('utf-8') for p in parts)
    return hashlib.md5(prefix + b'/' + path + suffix).digest()


def names_owned(cluster, account, container, per_node, stem='obj'):
    """Object names such that every container node owns ``per_node`` of
    them: ``{node: [names]}``."""
    owned = {node: [] for node in cluster.container_nodes}
    i = 0
    while any(len(names) < per_node for names in owned.values()):
        name = f'{stem}-{i}'
        names = owned[owner(cluster, account, container, name)]
        if len(names) < per_node:
            names.append(name)
        i += 1
    return owned


@pytest.fixture(scope='session')
def sync_cluster(request):
    """The daemon tests' cluster: 3 container nodes + the fault proxy,
    once per backend (parametrized by :mod:`tests.functional.backends`)."""
    from shunt.tools.aio import Cluster
    keep = bool(os.environ.get('CLOUD_SHUNT_KEEP_STATE'))
    cluster = Cluster(reload_interval=0, keep_state_dir=keep,
                      container_replicas=3, s3_backend=request.param)
    cluster.start()
    # a remote Swift: every request (auth included: tempauth's storage URL
    # is built from the Host header, the proxy's) goes through the proxy
    proxy = S3FaultProxy(cluster.remote.port('proxy') if cluster.remote
                         else cluster.ports['s3']).start()
    try:
        yield cluster, proxy
    finally:
        proxy.stop()
        cluster.stop()
        if keep:
            print(f'\nsync cluster state dir kept: {cluster.state_dir}')


@pytest.fixture
def sync_env(sync_cluster):
    """A :class:`SyncEnv` (``verification_slack`` 600 s); afterwards every
    daemon is stopped, the faults healed, the daemon options reset and the
    mapping file emptied."""
    from shunt.tools.aio import SYNC_DEFAULTS
    cluster, proxy = sync_cluster
    # only a row's owner handles it unless a test lowers the slack (three
    # daemons starting at once on a busy machine take seconds)
    cluster.configure_sync(verification_slack=600)
    env = SyncEnv(cluster, proxy)
    try:
        yield env
    finally:
        cluster.kill_sync()
        proxy.heal()
        cluster.sync_conf = dict(SYNC_DEFAULTS)
        cluster.configure_sync()
        cluster.write_mappings([])
        for node in cluster.container_nodes:
            if node not in cluster.procs:
                cluster.start_container_server(node)
        env.abort_open_uploads()
        env.conn.close()


# -- the oracle ------------------------------------------------------------

def oracle_requests(size, segment=None, slo=False):
    """``[(label, method, headers, query)]`` for an object of ``size``
    bytes (``segment``: the first segment's size, for a range across the
    segment boundary)."""
    reqs = [('GET', 'GET', {}, None), ('HEAD', 'HEAD', {}, None)]
    if size:
        reqs += [
            ('first bytes', 'GET', {'Range': 'bytes=0-9'}, None),
            ('suffix', 'GET', {'Range': 'bytes=-7'}, None),
            ('open end', 'GET', {'Range': f'bytes={size // 2}-'}, None),
            ('two ranges', 'GET', {'Range': f'bytes=0-0,{size - 3}-'},
             None),
            ('beyond', 'GET', {'Range': f'bytes={size + 10}-'}, None),
        ]
    if segment and segment < size:
        reqs.append(('across segments', 'GET',
                     {'Range': f'bytes={segment - 5}-{segment + 4}'}, None))
    if slo:
        reqs.append(('manifest', 'GET', {}, 'multipart-manifest=get'))
    return reqs


def record(env, container, name, requests):
    """The answers, by label, for the object as it is now."""
    return {label: env.request(method, container, name, headers, query)
            for label, method, headers, query in requests}


def _without_copy_times(manifest):
    return [{k: v for k, v in seg.items() if k != 'last_modified'}
            for seg in manifest]


def assert_same_answers(before, after, where, native_remote=False):
    """Every answer after archiving equals the one recorded before:
    status, body (multipart boundaries aside), every header but
    :data:`VOLATILE`. ``native_remote``: an SLO archived as a remote
    Swift's own SLO, whose manifest names the remote copies of the
    segments: its ``X-Manifest-Etag`` (the MD5 of the remote manifest) and
    the segments' ``last_modified`` (their copy time) differ by nature."""
    for label, (status, headers, body) in before.items():
        if native_remote:
            headers = {k: v for k, v in headers.items()
                       if k != 'x-manifest-etag'}
            a_headers = {k: v for k, v in after[label][1].items()
                         if k != 'x-manifest-etag'}
            after = dict(after, **{label: (after[label][0], a_headers,
                                           after[label][2])})
        a_status, a_headers, a_body = after[label]
        what = f'{where}: {label}'
        assert a_status == status, (what, a_status, status, a_body[:300])
        ctype = headers.get('content-type', '')
        if ctype.startswith('multipart/byteranges'):
            b_mark = ctype.split('boundary=')[1].encode()
            a_mark = a_headers['content-type'].split(
                'boundary=')[1].encode()
            assert a_body.replace(a_mark, b'B') == \
                body.replace(b_mark, b'B'), what
            headers = dict(headers, **{'content-type': 'm'})
            a_headers = dict(a_headers, **{'content-type': 'm'})
        elif label == 'manifest' and native_remote:
            assert _without_copy_times(json.loads(a_body)) == \
                _without_copy_times(json.loads(body)), what
            headers = {k: v for k, v in headers.items()
                       if k not in ('content-length', 'etag')}
            a_headers = {k: v for k, v in a_headers.items()
                         if k not in ('content-length', 'etag')}
        elif label == 'manifest':
            assert json.loads(a_body) == json.loads(body), what
            headers = {k: v for k, v in headers.items()
                       if k not in ('content-length', 'etag')}
            a_headers = {k: v for k, v in a_headers.items()
                         if k not in ('content-length', 'etag')}
        else:
            assert a_body == body, what
        stable = {k: v for k, v in headers.items() if k not in VOLATILE}
        a_stable = {k: v for k, v in a_headers.items() if k not in VOLATILE}
        assert a_stable == stable, (what, {
            k: (stable.get(k), a_stable.get(k))
            for k in set(stable) | set(a_stable)
            if stable.get(k) != a_stable.get(k)})


def listing_row(env, container, name):
    _, _, body = env.request('GET', container, query={
        'format': 'json', 'prefix': name, 'limit': 1})
    rows = [r for r in json.loads(body) if r.get('name') == name]
    return rows[0] if rows else None


def wait_for(predicate, timeout=30.0, interval=0.2, what='condition'):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'{what}: not true after {timeout:g}s')
        time.sleep(interval)


def new_container(env, prefix):
    name = f'{prefix}-{time.time_ns()}'
    env.conn.put_container(name)
    return name


__all__ = ['SyncEnv', 'sync_cluster', 'sync_env', 'owner', 'primary_nodes',
           'names_owned', 'oracle_requests', 'record', 'assert_same_answers',
           'listing_row', 'wait_for', 'new_container', 'body_of', 'quote',
           'internal_request', 'MiB', 'ACCOUNT', 'BYPASS']
