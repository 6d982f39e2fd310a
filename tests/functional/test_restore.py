"""Restore on read on the all-in-one cluster: archived objects read whole are
written back into Swift (plain objects, SLOs, objects larger than
``max_file_size``), byte-identical and with their metadata; partial reads
never restore; interrupted restores leave nothing behind (checked with the
bypass header and container listings)."""

import hashlib
import json
import os
import re
import socket
import time
import urllib.parse

import pytest

from shunt.tools.aio import Cluster
from tests.functional import backends
from tests.functional.test_objects import quote
from tests.functional.test_slo import (
    archive_slo,
    request,
    s3_meta,
)

# archived to S3 and to another Swift (tests.functional.backends; the
# small-cluster tests at the end run on moto and a remote Swift)
pytestmark = pytest.mark.remotes('moto', 's3api', 'swift')

MiB = 1024 * 1024
BYPASS = {'X-Cloud-Sync-Shunt-Bypass': 'true'}
META = {'Color': 'blue', 'Unicode': '\u00e9t\u00e9 \u2603'}
# what must be the same on the archived view and the restored object
SAME = ('etag', 'content-type', 'content-length', 'last-modified',
        'x-timestamp', 'x-static-large-object')


def assert_restored_like(restored, archived):
    for name in SAME + tuple('x-object-meta-' + k.lower() for k in META):
        if name == 'x-timestamp' and restored.get(name) != archived[name]:
            # a restore is never written in the future: a Last-Modified
            # the store rounded up (s3api) past the proxy's clock gives
            # way to the restore's own time, less than a second earlier
            got, want = float(restored[name]), float(archived[name])
            assert want - 1 < got < want, name
            continue
        assert restored.get(name) == archived.get(name), name


def random_body(size, seed=b''):
    block = hashlib.sha512(seed).digest() * 1024
    return (block * (size // len(block) + 1))[:size]


class Env:
    """A mapped container with ``restore_object`` on one cluster."""

    def __init__(self, aio, **profile):
        self.aio = aio
        self.conn = aio.swift_conn()
        url, self.token = aio.token('test:tester', 'testing')
        self.base = urllib.parse.urlsplit(url).path
        self.account = self.base.split('/')[2]
        self.container = f'rst-{time.time_ns()}'
        self.conn.put_container(self.container)
        aio.write_mappings([aio.profile(self.account, self.container,
                                        restore_object=True, **profile)])

    def path(self, name, container=None):
        return f'{self.base}/{container or self.container}/{quote(name)}'

    def archive(self, name, body, meta=None, content_type='text/x-test'):
        self.aio.archive_object(self.account, self.container, name, body,
                                metadata=s3_meta(meta or {}),
                                content_type=content_type)

    def get(self, name, headers=None, method='GET', query=''):
        return request(self.aio, method, self.path(name) + query, headers,
                       self.token)

    def local(self, name, method='GET', query='', container=None):
        return request(self.aio, method,
                       self.path(name, container) + query, BYPASS,
                       self.token)

    def listing(self, container=None):
        status, _, body = request(
            self.aio, 'GET', f'{self.base}/{container or self.container}'
            '?format=json', BYPASS, self.token)
        return json.loads(body) if status == 200 else None


@pytest.fixture
def env(aio):
    yield Env(aio)
    aio.write_mappings([])


def log_size(aio):
    with open(aio.proxy_log_path, 'rb') as fp:
        return fp.seek(0, 2)


def wait_log(aio, since, pattern, timeout=20):
    """The proxy log text written since ``since`` once it matches."""
    deadline = time.monotonic() + timeout
    while True:
        with open(aio.proxy_log_path, 'rb') as fp:
            fp.seek(since)
            text = fp.read().decode('utf-8', 'replace')
        if re.search(pattern, text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f'no {pattern!r} in the proxy log:\n'
                                 f'{text[-3000:]}')
        time.sleep(0.1)


def wait_until(check, timeout=15):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError('condition not met in time')
        time.sleep(0.1)


def partial_get(aio, path, token, stop_after, during=None):
    """GET over a socket with a small receive buffer; read ``stop_after``
    body bytes, then close (a client disconnect), or call ``during()`` and
    read on until the connection ends. ``(content_length, received)``."""
    url = urllib.parse.urlsplit(aio.proxy_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    sock.settimeout(30)
    sock.connect((url.hostname, url.port))
    sock.sendall(f'GET {path} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: '
                 f'{token}\r\nConnection: close\r\n\r\n'.encode())
    data = b''
    while b'\r\n\r\n' not in data:
        data += sock.recv(65536)
    head, body = data.split(b'\r\n\r\n', 1)
    assert head.split()[1] == b'200', head
    length = int(re.search(rb'(?i)content-length: *(\d+)', head).group(1))
    got = len(body)
    while got < stop_after:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += len(chunk)
    if during is not None:
        during()
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += len(chunk)
        except OSError:
            pass
    sock.close()
    return length, got


# -- plain objects ---------------------------------------------------------

def test_plain_object_restores_byte_identical(aio, env):
    body = random_body(3 * MiB + 17, b'plain')
    env.archive('obj', body, META, 'image/x-test')
    status, archived, got = env.get('obj')
    assert status == 200 and got == body
    assert 'content-location' in archived
    # the restore committed before the client got the last bytes
    status, restored, local_body = env.local('obj')
    assert status == 200
    assert hashlib.md5(local_body).hexdigest() == hashlib.md5(
        body).hexdigest()
    assert_restored_like(restored, archived)
    assert restored['x-object-meta-unicode'].encode('latin-1').decode(
        'utf-8') == META['Unicode']
    # listed locally, and the next GET is local
    (row,) = env.listing()
    assert (row['name'], row['bytes'], row['hash']) == (
        'obj', len(body), hashlib.md5(body).hexdigest())
    status, headers, got = env.get('obj')
    assert status == 200 and got == body
    assert 'content-location' not in headers


@pytest.mark.parametrize('name', [
    'per%25cent%', 'q?uery=1&x', 'ha#sh', 'caf\u00e9 \u2603/\u65e5\u672c',
    'a/b/c/', 'plus+ sign'])
def test_names_restore_under_their_own_name(aio, env, name):
    body = b'body of ' + name.encode('utf-8')
    env.archive(name, body)
    assert env.get(name)[2] == body
    status, _, got = env.local(name)
    assert (status, got) == (200, body)
    assert [row['name'] for row in env.listing()] == [name]


@pytest.mark.parametrize('method,headers,status', [
    ('HEAD', {}, 200),
    ('GET', {'Range': 'bytes=0-9'}, 206),
    ('GET', {'Range': 'bytes=0-'}, 206),
    ('GET', {'Range': 'bytes=0-1,5-6'}, 206),
    ('GET', {'If-None-Match': '"%s"' % hashlib.md5(b'x' * 1000)
             .hexdigest()}, 304),
    ('GET', {'If-Match': '"nope"'}, 412),
])
def test_partial_reads_never_restore(aio, env, method, headers, status):
    env.archive('obj', b'x' * 1000)
    assert env.get('obj', headers, method)[0] == status
    assert env.local('obj', 'HEAD')[0] == 404
    assert env.listing() == []


def test_restore_ttl_sets_expiry(aio):
    env = Env(aio, restore_ttl=3600)
    try:
        env.archive('obj', b'temporary')
        before = time.time()
        assert env.get('obj')[2] == b'temporary'
        status, headers, _ = env.local('obj', 'HEAD')
        assert status == 200
        assert before + 3600 <= int(headers['x-delete-at']) <= \
            time.time() + 3602
    finally:
        aio.write_mappings([])


def test_expired_restore_reads_from_the_bucket_again(aio):
    env = Env(aio, restore_ttl=1)
    try:
        env.archive('obj', b'short-lived')
        assert env.get('obj')[2] == b'short-lived'
        status, headers, _ = env.local('obj', 'HEAD')
        assert status == 200
        delete_at = int(headers['x-delete-at'])
        time.sleep(max(0, delete_at - time.time()) + 0.5)
        assert env.local('obj', 'HEAD')[0] == 404
        status, headers, got = env.get('obj')
        assert (status, got) == (200, b'short-lived')
        assert 'content-location' in headers
    finally:
        aio.write_mappings([])


def test_client_disconnect_leaves_nothing(aio, env):
    body = random_body(48 * MiB, b'disconnect')
    env.archive('big', body)
    since = log_size(aio)
    length, got = partial_get(aio, env.path('big'), env.token, 4 * MiB)
    assert got < length
    wait_log(aio, since, r'Restore of \S+/big from .* failed')
    assert env.local('big', 'HEAD')[0] == 404
    assert env.listing() == []


def test_client_put_during_a_restore_wins(aio, env):
    # the restore streams (paced by a slow reader) when a client writes the
    # same name: whatever the commit order, the client's object stays
    body = random_body(48 * MiB, b'race')
    env.archive('raced', body)

    def client_put():
        env.conn.put_object(env.container, 'raced', b'client data')
    length, got = partial_get(aio, env.path('raced'), env.token, 4 * MiB,
                              during=client_put)
    assert got == length
    for _ in range(2):
        status, _, data = env.local('raced')
        assert (status, data) == (200, b'client data')
        time.sleep(0.5)
    (row,) = env.listing()
    assert row['hash'] == hashlib.md5(b'client data').hexdigest()


# -- SLOs ------------------------------------------------------------------

PARTS = [random_body(5 * MiB + extra, b'%d' % extra)
         for extra in (0, 3, 1001)]


def archive_slo_with_sidecar(env, name, seg_container):
    manifest = [{'name': f'/{seg_container}/{name}/seg{i:02d}',
                 'hash': hashlib.md5(p).hexdigest(), 'bytes': len(p),
                 'content_type': 'application/octet-stream',
                 'last_modified': '2026-01-02T03:04:05.000000'}
                for i, p in enumerate(PARTS)]
    archive_slo(env.aio, env.account, env.container, name, PARTS,
                json.dumps(manifest).encode(), content_type='video/x-test',
                meta=META)
    return manifest


def test_slo_restores_as_slo(aio, env):
    segs = env.container + '_segs'
    manifest = archive_slo_with_sidecar(env, 'movie', segs)
    status, archived, got = env.get('movie')
    assert status == 200 and got == b''.join(PARTS)
    assert archived['x-static-large-object'] == 'True'
    status, restored, local_body = env.local('movie')
    assert status == 200 and local_body == b''.join(PARTS)
    assert_restored_like(restored, archived)
    # segments where the sidecar says, and a real local SLO manifest
    assert [row['name'] for row in env.listing(segs)] == [
        m['name'].split('/', 2)[2] for m in manifest]
    status, _, raw = env.local('movie',
                               query='?multipart-manifest=get&format=raw')
    assert [(s['path'], s['etag'], s['size_bytes'])
            for s in json.loads(raw)] == [
        (m['name'], m['hash'], m['bytes']) for m in manifest]
    status, headers, _ = env.get('movie', method='HEAD')
    assert 'content-location' not in headers


def test_slo_restore_ttl_reaches_segments(aio):
    env = Env(aio, restore_ttl=3600)
    try:
        segs = env.container + '_segs'
        manifest = archive_slo_with_sidecar(env, 'movie', segs)
        assert env.get('movie')[0] == 200
        delete_ats = set()
        for path in [m['name'] for m in manifest]:
            container, name = path[1:].split('/', 1)
            status, headers, _ = env.local(name, 'HEAD',
                                           container=container)
            assert status == 200
            delete_ats.add(int(headers['x-delete-at']))
        status, headers, _ = env.local('movie', 'HEAD')
        delete_ats.add(int(headers['x-delete-at']))
        assert len(delete_ats) == 1
        assert abs(delete_ats.pop() - (time.time() + 3600)) < 30
    finally:
        aio.write_mappings([])


def test_slo_client_disconnect_removes_segments(aio, env):
    segs = env.container + '_segs'
    archive_slo_with_sidecar(env, 'movie', segs)
    since = log_size(aio)
    # past the first segment: it is written, then must be removed
    length, got = partial_get(aio, env.path('movie'), env.token, 7 * MiB)
    assert got < length
    wait_log(aio, since, r'Restore of \S+/movie from .* failed')
    wait_until(lambda: env.listing(segs) in ([], None))
    assert env.local('movie', 'HEAD')[0] == 404


# -- a cluster with a small max_file_size ---------------------------------

@pytest.fixture(scope='module',
                params=backends.backends_for(('moto', 'swift')))
def small(request):
    """A cluster of its own, archiving to moto or a remote Swift (whose
    objects may be larger than this cluster's max_file_size)."""
    keep = bool(os.environ.get('CLOUD_SHUNT_KEEP_STATE'))
    cluster = Cluster(reload_interval=0, keep_state_dir=keep,
                      max_file_size=8 * MiB, s3_backend=request.param,
                      filter_conf={'restore_segment_size': 3 * MiB})
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_oversize_object_restores_as_slo(small):
    env = Env(small)
    body = random_body(20 * MiB, b'oversize')
    env.archive('huge', body, META, 'application/x-huge')
    status, archived, got = env.get('huge')
    assert status == 200 and got == body
    status, restored, local_body = env.local('huge')
    assert status == 200
    assert hashlib.md5(local_body).digest() == hashlib.md5(body).digest()
    assert restored['x-static-large-object'] == 'True'
    for name in ('content-type', 'content-length', 'last-modified',
                 'x-timestamp') + tuple('x-object-meta-' + k.lower()
                                        for k in META):
        assert restored.get(name) == archived.get(name), name
    rows = env.listing(env.container + '_segments')
    assert [row['bytes'] for row in rows] == [3 * MiB] * 6 + [2 * MiB]
    assert all(row['name'].startswith('huge/restore/') for row in rows)


def test_s3_stopped_mid_body_leaves_nothing(small):
    env = Env(small)
    body = random_body(48 * MiB, b's3 stop')
    env.archive('huge', body)
    since = log_size(small)
    try:
        length, got = partial_get(small, env.path('huge'), env.token,
                                  4 * MiB, during=small.stop_s3)
        assert got < length
        wait_log(small, since, r'Restore of \S+/huge from .* failed')
        wait_until(lambda: env.listing(env.container + '_segments')
                   in ([], None))
        assert env.local('huge', 'HEAD')[0] == 404
    finally:
        small.start_s3()
