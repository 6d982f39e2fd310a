"""Archived DLO manifests on the all-in-one cluster, with Swift as the
oracle: a DLO archived the way swift-s3-sync/1space archives one (the
manifest alone, a 0-byte S3 object whose ``x-object-manifest`` metadata
holds the URL-quoted ``<container>/<prefix>``) must answer exactly as the
same DLO kept locally in an unmapped container, whose segments are local
in an unmapped container. The archived DLO's segments are local,
archived (their container is mapped) or a mix. On a remote Swift the DLO
is archived as the sync daemon writes it there: a native remote DLO whose
segments were copied (as the shunt serves them) to the remote segments
container."""

import concurrent.futures
import hashlib
import http.client
import json
import threading
import time
import urllib.parse

import pytest

from shunt.tools.aio import pick_ports
from tests.functional.test_objects import VOLATILE, quote, request

# archived to S3 and to another Swift (tests.functional.backends)
pytestmark = pytest.mark.remotes('moto', 's3api', 'swift')

# what a DLO archived to a remote Swift cannot be
NATIVE_DLO = pytest.mark.s3_backends(
    'moto', 's3api', reason='a remote Swift DLO keeps its segments in the '
    'remote segments container, read by the remote cluster: not the local '
    'segment container this test is about')

SEGMENTS = [b'a' * 1000, b'b' * 1111, b'c' * 1000, b'd' * 1111]
BODY = b''.join(SEGMENTS)
DLO_ETAG = '"%s"' % hashlib.md5(''.join(
    hashlib.md5(s).hexdigest() for s in SEGMENTS).encode()).hexdigest()
EMPTY_MD5 = hashlib.md5(b'').hexdigest()
UNICODE_PREFIX = 'caf\u00e9 \u2603/'
MANY = 1100


def dlo_etag(bodies):
    return '"%s"' % hashlib.md5(''.join(
        hashlib.md5(b).hexdigest() for b in bodies).encode()).hexdigest()


def archive_segment(aio, account, container, name, body):
    aio.archive_object(account, container, name, body)


def archive_manifest(aio, account, container, name, value, body=b''):
    """The 1space way: the manifest object alone, with the URL-quoted
    ``X-Object-Manifest`` value in its metadata."""
    aio.archive_object(account, container, name, body,
                       content_type='video/x-dlo',
                       metadata={'x-object-manifest': urllib.parse.quote(
                           value), 'color': 'blue'})


def put_local_manifest(conn, container, name, value, body=b''):
    conn.put_object(container, name, body, content_type='video/x-dlo',
                    headers={'X-Object-Manifest': value,
                             'X-Object-Meta-Color': 'blue'})


def in_parallel(func, items, workers=8):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(func, items):
            pass


@pytest.fixture(scope='module')
def env(aio):
    """Containers (``<kind>-<suffix>``): ``man`` (mapped) holds archived
    manifests, ``ctl`` (unmapped) the local oracle manifests, ``lseg``
    (unmapped) every segment locally, ``aseg`` (mapped) the segments of
    the archived DLOs: local (``loc/``), archived (``arc/``) or mixed
    (``mix/``)."""
    conn = aio.swift_conn()
    url, token = aio.token('test:tester', 'testing')
    base = urllib.parse.urlsplit(url).path
    account = base.split('/')[2]
    suffix = str(time.time_ns())
    names = {kind: f'dlo{kind}-{suffix}'
             for kind in ('man', 'ctl', 'lseg', 'aseg')}
    for name in names.values():
        conn.put_container(name)
    aio.write_mappings([aio.profile(account, names['man']),
                        aio.profile(account, names['aseg'])])
    for prefix in ('v1/', 'loc/', 'arc/', 'mix/', UNICODE_PREFIX):
        for i, body in enumerate(SEGMENTS):
            conn.put_object(names['lseg'], f'{prefix}{i:02d}', body)
            if prefix == 'loc/' or (prefix == 'mix/' and i % 2):
                conn.put_object(names['aseg'], f'{prefix}{i:02d}', body)
            elif prefix != 'v1/':
                archive_segment(aio, account, names['aseg'],
                                f'{prefix}{i:02d}', body)
    for prefix in ('loc/', 'arc/', 'mix/', UNICODE_PREFIX):
        name = 'dlo-' + prefix.rstrip('/')
        put_local_manifest(conn, names['ctl'], name,
                           f'{names["lseg"]}/{prefix}')
        archive_manifest(aio, account, names['man'], name,
                         f'{names["aseg"]}/{prefix}')
    # the same manifest value on both sides (the headers match too)
    put_local_manifest(conn, names['ctl'], 'same', f'{names["lseg"]}/v1/')
    archive_manifest(aio, account, names['man'], 'same',
                     f'{names["lseg"]}/v1/')
    yield dict(names, conn=conn, token=token, base=base, account=account,
               suffix=suffix)
    aio.write_mappings([])


def both(aio, env, method, name, headers=None, query=''):
    out = []
    for kind in ('man', 'ctl'):
        path = f'{env["base"]}/{env[kind]}/{quote(name)}{query}'
        out.append(request(aio, method, path, headers, env['token']))
    return out


def assert_same(archived, local, manifest_header=False):
    a_status, a_headers, a_body = archived
    l_status, l_headers, l_body = local
    assert a_status == l_status
    ctype = l_headers.get('content-type', '')
    if 'boundary=' in ctype:
        a_b = a_headers['content-type'].split('boundary=')[1]
        l_b = ctype.split('boundary=')[1]
        a_body, l_body = (a_body.replace(a_b.encode(), b'B'),
                          l_body.replace(l_b.encode(), b'B'))
        a_headers = dict(a_headers, **{'content-type': 'm'})
        l_headers = dict(l_headers, **{'content-type': 'm'})
    assert a_body == l_body
    volatile = VOLATILE | ({'x-object-manifest'} if not manifest_header
                           else set())
    assert {k: v for k, v in a_headers.items() if k not in volatile} == \
        {k: v for k, v in l_headers.items() if k not in volatile}


@pytest.mark.parametrize('method', ['GET', 'HEAD'])
@pytest.mark.parametrize('where', ['loc', 'arc', 'mix'])
def test_get_head_match_local(aio, env, where, method):
    archived, local = both(aio, env, method, f'dlo-{where}')
    assert archived[0] == 200
    assert_same(archived, local)
    headers = archived[1]
    assert headers['etag'] == DLO_ETAG
    assert headers['content-length'] == str(len(BODY))
    assert headers['x-object-manifest'] == f'{env["aseg"]}/{where}/'
    assert headers['x-object-meta-color'] == 'blue'
    assert headers['content-location'].startswith(aio.remote_endpoint)
    if method == 'GET':
        assert archived[2] == BODY


def test_same_manifest_value_has_the_same_headers(aio, env):
    for method in ('GET', 'HEAD'):
        archived, local = both(aio, env, method, 'same')
        assert_same(archived, local, manifest_header=True)


B1 = len(SEGMENTS[0])
B2 = B1 + len(SEGMENTS[1])


@pytest.mark.parametrize('rng', [
    'bytes=0-9',
    'bytes=%d-%d' % (B1 - 5, B1 + 4),                  # across segments
    'bytes=%d-%d' % (B1 - 1, B2 + 10),                 # three segments
    'bytes=%d-' % B2,
    'bytes=-5', 'bytes=-3000',
    'bytes=0-1,%d-%d,-3' % (B1 - 1, B1),               # multi-range
    'bytes=%d-' % len(BODY),                           # 416
    'bytes=junk',
])
def test_ranges_match_local(aio, env, rng):
    for method in ('GET', 'HEAD'):
        archived, local = both(aio, env, method, 'dlo-mix',
                               {'Range': rng})
        assert_same(archived, local)


@pytest.mark.parametrize('headers', [
    {'If-Match': DLO_ETAG}, {'If-Match': '"nope"'}, {'If-Match': '*'},
    {'If-None-Match': DLO_ETAG}, {'If-None-Match': '"nope"'},
    {'If-None-Match': '*'}, {'If-None-Match': '"%s"' % EMPTY_MD5},
    {'If-Match': DLO_ETAG, 'Range': 'bytes=%d-%d' % (B1 - 1, B1)},
    {'If-None-Match': DLO_ETAG, 'Range': 'bytes=1-5'},
    {'If-Modified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT'},
    {'If-Modified-Since': 'Fri, 01 Jan 2100 00:00:00 GMT'},
    {'If-Unmodified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT'},
])
def test_conditionals_match_local(aio, env, headers):
    for method in ('GET', 'HEAD'):
        archived, local = both(aio, env, method, 'dlo-arc', headers)
        assert_same(archived, local)


@pytest.mark.parametrize('headers', [{}, {'Range': 'bytes=0-9'},
                                     {'If-None-Match': '*'}])
def test_manifest_get_is_the_manifest_object(aio, env, headers):
    for method in ('GET', 'HEAD'):
        archived, local = both(aio, env, method, 'same', headers,
                               '?multipart-manifest=get')
        assert_same(archived, local, manifest_header=True)
    status, headers, body = archived
    if status == 200:
        assert body == b'' and headers['etag'] == EMPTY_MD5
        assert headers['x-object-manifest'] == f'{env["lseg"]}/v1/'


@pytest.mark.parametrize('query', ['', '?multipart-manifest=get'])
def test_copy_matches_local(aio, env, query):
    results = []
    for kind in ('man', 'ctl'):
        dest = f'{env["ctl"]}/copy-{kind}-{len(query)}'
        status, _, body = request(
            aio, 'COPY', f'{env["base"]}/{env[kind]}/same{query}',
            {'Destination': dest}, env['token'])
        assert status == 201, body
        results.append(request(aio, 'GET', f'{env["base"]}/{dest}',
                               token=env['token']))
    assert_same(*results, manifest_header=True)
    status, headers, body = results[0]
    assert status == 200 and body == BODY
    if query:
        # a copy of the manifest: a local DLO
        assert headers['x-object-manifest'] == f'{env["lseg"]}/v1/'
        assert headers['etag'] == DLO_ETAG
    else:
        assert 'x-object-manifest' not in headers
        assert headers['etag'] == hashlib.md5(BODY).hexdigest()


@pytest.mark.parametrize('keep', [False, True])
def test_post_matches_local(aio, env, keep):
    """Swift's POST replaces a DLO manifest's metadata: without
    ``X-Object-Manifest`` the DLO becomes the plain object of its own
    bytes; saying it again keeps the DLO. The archived DLO does the
    same."""
    name = f'posted-{keep}'
    value = f'{env["lseg"]}/v1/'
    put_local_manifest(env['conn'], env['ctl'], name, value)
    archive_manifest(aio, env['account'], env['man'], name, value)
    post = {'X-Object-Meta-Shape': 'round'}
    if keep:
        post['X-Object-Manifest'] = value
    archived, local = both(aio, env, 'POST', name, post)
    assert archived[0] == local[0] == 202
    for method in ('GET', 'HEAD'):
        archived, local = both(aio, env, method, name)
        assert_same(archived, local, manifest_header=True)
        status, headers, body = archived
        assert status == 200 and headers['x-object-meta-shape'] == 'round'
        assert 'x-object-meta-color' not in headers
        if keep:
            assert headers['x-object-manifest'] == value
            assert headers['etag'] == DLO_ETAG
            assert method == 'HEAD' or body == BODY
        else:
            assert 'x-object-manifest' not in headers
            assert headers['etag'] == EMPTY_MD5
            assert headers['content-length'] == '0' and body == b''
    # the bypass: still archived only
    path = f'{env["base"]}/{env["man"]}/{quote(name)}'
    assert request(aio, 'HEAD', path, {'X-Cloud-Sync-Shunt-Bypass': 'true'},
                   env['token'])[0] == 404


def test_listing_row_is_the_manifests(aio, env):
    rows = {}
    for kind in ('man', 'ctl'):
        status, _, body = request(
            aio, 'GET', f'{env["base"]}/{env[kind]}',
            token=env['token'], query={'format': 'json', 'prefix': 'same'})
        assert status == 200
        rows[kind] = json.loads(body)
    archived, local = rows['man'][0], rows['ctl'][0]
    assert archived['name'] == local['name'] == 'same'
    assert archived['bytes'] == local['bytes'] == 0
    assert archived['hash'] == local['hash'] == EMPTY_MD5
    # S3 listings carry no content type (as for every archived row)
    assert archived['content_type'] == (
        'video/x-dlo' if aio.remote else 'application/octet-stream')


def test_empty_prefix_match(aio, env):
    put_local_manifest(env['conn'], env['ctl'], 'none',
                       f'{env["lseg"]}/nothing/')
    archive_manifest(aio, env['account'], env['man'], 'none',
                     f'{env["aseg"]}/nothing/')
    for method in ('GET', 'HEAD'):
        archived, local = both(aio, env, method, 'none')
        assert archived[0] == 200
        assert archived[1]['content-length'] == '0'
        assert archived[1]['etag'] == '"%s"' % EMPTY_MD5
        assert_same(archived, local)


def test_unicode_names(aio, env):
    name = 'dlo-' + UNICODE_PREFIX.rstrip('/')
    for method in ('GET', 'HEAD'):
        archived, local = both(aio, env, method, name)
        assert archived[0] == 200
        assert_same(archived, local)
    archived, local = both(aio, env, 'GET', name, {'Range': 'bytes=-1500'})
    assert_same(archived, local)
    assert archived[2] == BODY[-1500:]
    assert env['conn'].get_object(env['man'], name)[1] == BODY


@NATIVE_DLO
def test_manifest_that_matches_its_own_prefix(aio, env):
    # Swift reads such a manifest's own body as its first segment
    conn = env['conn']
    conn.put_object(env['man'], 'self/1', b'one')
    archive_segment(aio, env['account'], env['man'], 'self/2', b'two')
    archive_manifest(aio, env['account'], env['man'], 'self',
                     f'{env["man"]}/self', body=b'me')
    conn.put_object(env['ctl'], 'self/1', b'one')
    conn.put_object(env['ctl'], 'self/2', b'two')
    put_local_manifest(conn, env['ctl'], 'self', f'{env["ctl"]}/self',
                       body=b'me')
    archived, local = both(aio, env, 'GET', 'self')
    assert local[2] == b'meonetwo'
    assert_same(archived, local)


@pytest.fixture(scope='module')
def many(aio, env):
    """A DLO of 1,100 segments (more than one S3 listing page): a third
    local, the rest archived; the oracle's all local."""
    bodies = [b'%05d' % i for i in range(MANY)]
    names = [f'many/{i:05d}' for i in range(MANY)]
    local = threading.local()

    def conn():
        if not hasattr(local, 'conn'):
            local.conn = aio.swift_conn()
        return local.conn

    def put(i):
        conn().put_object(env['lseg'], names[i], bodies[i])
        if i % 3 == 0:
            conn().put_object(env['aseg'], names[i], bodies[i])
        else:
            archive_segment(aio, env['account'], env['aseg'], names[i],
                            bodies[i])
    in_parallel(put, range(MANY))
    put_local_manifest(env['conn'], env['ctl'], 'many',
                       f'{env["lseg"]}/many/')
    archive_manifest(aio, env['account'], env['man'], 'many',
                     f'{env["aseg"]}/many/')
    return bodies


def test_many_segments_head_matches_local(aio, env, many):
    archived, local = both(aio, env, 'HEAD', 'many')
    assert archived[0] == 200
    assert_same(archived, local)
    assert archived[1]['content-length'] == str(5 * MANY)
    assert archived[1]['etag'] == dlo_etag(many)


@pytest.mark.parametrize('rng', [
    'bytes=-7',
    'bytes=%d-%d' % (5 * 999 - 2, 5 * 1001 + 2),      # S3 page boundary
    'bytes=%d-' % (5 * (MANY - 3)),
])
def test_many_segments_ranges_match_local(aio, env, many, rng):
    # (a whole GET takes Swift's dlo rate limit of one segment a second
    # after the first ten, for the oracle as for the archived DLO)
    archived, local = both(aio, env, 'GET', 'many', {'Range': rng})
    assert archived[0] == 206
    assert_same(archived, local)


def _restoring(aio, env, unique_name, segs_restore):
    man, segs = unique_name('dlorman'), unique_name('dlorseg')
    for name in (man, segs):
        env['conn'].put_container(name)
    for i, body in enumerate(SEGMENTS):
        if i % 2:
            env['conn'].put_object(segs, f'r/{i:02d}', body)
        else:
            archive_segment(aio, env['account'], segs, f'r/{i:02d}', body)
    aio.write_mappings([
        aio.profile(env['account'], env['man']),
        aio.profile(env['account'], env['aseg']),
        aio.profile(env['account'], man, restore_object=True),
        aio.profile(env['account'], segs, restore_object=segs_restore)])
    # (mapped first: a remote Swift's DLO copies the segments it sees)
    archive_manifest(aio, env['account'], man, 'dlo', f'{segs}/r/')
    return man, segs


def _local_view(aio, env, path, method='HEAD'):
    return request(aio, method, f'{env["base"]}/{path}',
                   {'X-Cloud-Sync-Shunt-Bypass': 'true'}, env['token'])


NOT_RESTORED = pytest.mark.s3_backends(
    'moto', 's3api', reason='a remote Swift DLO is never restored: its '
    'segments are the remote cluster\'s (shunt.proxy.native)')


@NOT_RESTORED
def test_restore_writes_segments_then_manifest(aio, env, unique_name):
    man, segs = _restoring(aio, env, unique_name, True)
    try:
        status, headers, body = request(
            aio, 'GET', f'{env["base"]}/{man}/dlo', token=env['token'])
        assert status == 200 and body == BODY
        for i in range(len(SEGMENTS)):
            assert _local_view(aio, env, f'{segs}/r/{i:02d}')[0] == 200
        status, headers, body = _local_view(aio, env, f'{man}/dlo', 'GET')
        # Swift's own dlo serves the restored DLO now
        assert status == 200 and body == BODY
        assert headers['x-object-manifest'] == f'{segs}/r/'
        assert headers['etag'] == DLO_ETAG
        assert headers['x-object-meta-color'] == 'blue'
    finally:
        aio.write_mappings([aio.profile(env['account'], env['man']),
                            aio.profile(env['account'], env['aseg'])])


@NOT_RESTORED
def test_manifest_not_restored_without_its_segments(aio, env,
                                                    unique_name):
    man, segs = _restoring(aio, env, unique_name, False)
    since = aio.proxy_log_offset()
    try:
        status, _, body = request(
            aio, 'GET', f'{env["base"]}/{man}/dlo', token=env['token'])
        assert status == 200 and body == BODY
        assert _local_view(aio, env, f'{man}/dlo')[0] == 404
        assert _local_view(aio, env, f'{segs}/r/00')[0] == 404
        assert 'Swift does not have all of its segments' in \
            aio.proxy_log_since(since)
    finally:
        aio.write_mappings([aio.profile(env['account'], env['man']),
                            aio.profile(env['account'], env['aseg'])])


# -- failures (last: stopping S3 loses the bucket's contents) ------------

@NATIVE_DLO
def test_segment_listing_outage_is_503(aio, env, unique_name):
    """The segments' container is mapped to an endpoint that is down: the
    DLO answers the shunt's 503, never a short or empty 200."""
    segs = unique_name('dlodown')
    env['conn'].put_container(segs)
    env['conn'].put_object(segs, 'p/00', b'local part')
    port = pick_ports(1)[0]
    aio.write_mappings([
        aio.profile(env['account'], env['man']),
        aio.profile(env['account'], segs,
                    aws_endpoint=f'http://127.0.0.1:{port}')])
    archive_manifest(aio, env['account'], env['man'], 'down', f'{segs}/p/')
    try:
        for method in ('GET', 'HEAD'):
            status, headers, body = request(
                aio, method, f'{env["base"]}/{env["man"]}/down',
                token=env['token'])
            assert status == 503
            if method == 'GET':
                assert body.startswith(b'Container listing unavailable: ')
    finally:
        aio.write_mappings([aio.profile(env['account'], env['man']),
                            aio.profile(env['account'], env['aseg'])])


def _recovered(aio, env, timeout=15):
    """Wait until the proxy reaches the restarted S3 again (its fail-fast
    circuit may be open for a few seconds), so that later tests do not
    meet it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = request(aio, 'HEAD', f'{env["base"]}/{env["man"]}/'
                         f'probe-{time.time_ns()}', token=env['token'])[0]
        if status == 404:
            return
        time.sleep(0.5)
    raise AssertionError('the proxy does not reach S3 again')


def _open(aio, path, token):
    url = urllib.parse.urlsplit(aio.proxy_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request('GET', path, headers={'X-Auth-Token': token})
    return conn, conn.getresponse()


def test_segment_read_outage_breaks_the_response(aio, env):
    """S3 goes away while an archived DLO streams: the client gets the
    status line, then a broken connection (fewer bytes than
    Content-Length), never a silently short object."""
    count = 30
    bodies = [bytes([65 + i % 26]) * 1000 for i in range(count)]
    in_parallel(lambda i: archive_segment(
        aio, env['account'], env['aseg'], f'slow/{i:03d}', bodies[i]),
        range(count))
    archive_manifest(aio, env['account'], env['man'], 'slow',
                     f'{env["aseg"]}/slow/')
    since = aio.proxy_log_offset()
    conn, resp = _open(aio, f'{env["base"]}/{env["man"]}/slow',
                       env['token'])
    try:
        assert resp.status == 200
        assert int(resp.getheader('Content-Length')) == 1000 * count
        # Swift's dlo reads one segment a second after the first ten or
        # so: S3 goes away while the rest are still to be read
        got = resp.read(2000)
        aio.stop_s3()
        try:
            got += resp.read()
        except http.client.IncompleteRead as err:
            got += err.partial
        assert len(got) < 1000 * count
        assert got == b''.join(bodies)[:len(got)]
    finally:
        conn.close()
        aio.start_s3()
        _recovered(aio, env)
    assert 'breaking the response' in aio.proxy_log_since(since) or \
        'got 503' in aio.proxy_log_since(since)


def test_archived_manifest_outage_is_503(aio, env):
    aio.stop_s3()
    try:
        status, _, body = request(
            aio, 'GET', f'{env["base"]}/{env["man"]}/dlo-arc',
            token=env['token'])
    finally:
        aio.start_s3()
        _recovered(aio, env)
    assert status == 503
    assert body.startswith(b'Archived object unavailable: ')
