"""Archived SLOs: the pure manifest logic, then GET/HEAD through the
middleware with moto's in-process S3."""

import base64
import hashlib
import json

import boto3
import pytest
from moto import mock_aws
from swift.common.middleware.slo import (
    RespAttrs,
    SloGetContext,
    _annotate_segments,
)
from swift.common.swob import Request

from shunt.core.layout import MANIFEST_SUFFIX, manifest_key, object_key
from shunt.core.remote import RemoteError
from shunt.proxy import slo
from shunt.proxy.middleware import CloudShuntMiddleware
from tests.unit.helpers import (
    BUCKET,
    FakeLogger,
    FakeSwift,
    archive_mpu,
    write_mapping,
)

MiB = 1024 * 1024


def entry(name, data, **extra):
    out = {'name': name, 'hash': hashlib.md5(data).hexdigest(),
           'bytes': len(data), 'content_type': 'application/octet-stream',
           'last_modified': '2026-01-02T03:04:05.000000'}
    out.update(extra)
    return out


def sidecar(entries):
    # the way Swift's slo stores a manifest
    return json.dumps(entries).encode('utf-8')


# -- pure ---------------------------------------------------------------

def test_mpu_etag_matches_the_reference_vector():
    assert slo.mpu_etag(['abcdef', 'fedcba']) == \
        'ce7989f0e2f1f3e4fdd2a01dda0844ae-2'


@pytest.mark.parametrize('entries', [
    [entry('/s/a', b'a' * 10), entry('/s/b', b'b' * 3)],
    [entry('/s/a', b'a' * 10, range='2-5'), entry('/s/b', b'bb')],
    [{'data': base64.b64encode(b'inline').decode()}, entry('/s/x', b'x')],
    [entry('/s/sub', b'{}', sub_slo=True,
           content_type='application/json;swift_bytes=1234')],
])
def test_etag_and_size_match_swift(entries):
    manifest = slo.parse_manifest(sidecar(entries))
    segments = json.loads(json.dumps(entries))
    _annotate_segments(segments)
    attrs = RespAttrs(True, None, None, None, None)
    attrs.update_from_segments(segments)
    assert manifest.etag == attrs.slo_etag
    assert manifest.size == attrs.slo_size
    assert manifest.response_headers()['Etag'] == '"%s"' % attrs.slo_etag


def test_raw_manifest_is_byte_identical_to_swift():
    entries = [entry('/segs/caf\u00e9 1', b'1' * 7),
               entry('/segs/a/b?c#d%25', b'22'),
               entry('/other/x', b'x' * 9, range='1-3'),
               {'data': base64.b64encode(b'inline').decode()}]
    body = sidecar(entries)
    ctx = SloGetContext.__new__(SloGetContext)
    assert slo.raw_manifest(slo.parse_manifest(body)) == \
        ctx.convert_segment_listing([body])


def test_manifest_keeps_the_sidecar_bytes():
    body = sidecar([entry('/s/a', b'a')])
    manifest = slo.parse_manifest(body)
    assert manifest.body == body
    assert manifest.json_md5 == hashlib.md5(body).hexdigest()
    assert manifest.segments[0].container == 's'
    assert manifest.segments[0].obj == 'a'
    assert manifest.restorable


@pytest.mark.parametrize('body,words', [
    (b'{not json', 'not JSON'),
    (b'{}', 'non-empty list'),
    (b'[]', 'non-empty list'),
    (b'[3]', 'segment 0: not an object'),
    (json.dumps([{'name': 'noslash', 'hash': 'a' * 32, 'bytes': 1}]),
     '/container/object'),
    (json.dumps([{'name': '/c/', 'hash': 'a' * 32, 'bytes': 1}]),
     'no object'),
    (json.dumps([{'name': '/c/o', 'hash': 'xyz', 'bytes': 1}]), 'MD5'),
    (json.dumps([{'name': '/c/o', 'hash': 'a' * 32, 'bytes': -1}]),
     'not a size'),
    (json.dumps([{'name': '/c/o', 'hash': 'a' * 32, 'bytes': '1'}]),
     'not a size'),
    (json.dumps([{'name': '/c/o', 'hash': 'a' * 32, 'bytes': 5,
                  'range': '3-9'}]), 'bad range'),
    (json.dumps([{'data': '***'}]), 'base64'),
])
def test_bad_manifests(body, words):
    if isinstance(body, str):
        body = body.encode()
    with pytest.raises(slo.ManifestError) as exc:
        slo.parse_manifest(body)
    assert words in str(exc.value)


def test_only_plain_segments_are_restorable():
    plain = slo.parse_manifest(sidecar([entry('/s/a', b'a')]))
    ranged = slo.parse_manifest(sidecar([entry('/s/a', b'ab', range='0-0')]))
    assert plain.restorable and not ranged.restorable


def test_check_object():
    a, b = b'a' * 10, b'b' * 4
    manifest = slo.parse_manifest(sidecar([entry('/s/a', a),
                                           entry('/s/b', b)]))
    good = slo.mpu_etag([hashlib.md5(a).hexdigest(),
                         hashlib.md5(b).hexdigest()])
    slo.check_object(manifest, 14, good)
    slo.check_object(manifest, 14, hashlib.md5(a + b).hexdigest())
    slo.check_object(manifest, 14, 'anything', manifest.etag)
    for size, etag, meta, words in [
            (15, good, None, 'add up to 14 bytes, the object has 15'),
            (14, good[:-1] + '3', None, '2 segments, the object has 3'),
            (14, '0' * 32 + '-2', None, 'multipart Etag'),
            (14, good, 'f' * 32, 'SLO Etag')]:
        with pytest.raises(slo.ManifestError) as exc:
            slo.check_object(manifest, size, etag, meta)
        assert words in str(exc.value)


def test_part_range():
    manifest = slo.parse_manifest(sidecar([
        entry('/s/a', b'a' * 10), entry('/s/b', b'b' * 5),
        entry('/s/c', b'c')]))
    assert [slo.part_range(manifest.segments, n) for n in range(5)] == [
        None, (0, 9), (10, 14), (15, 15), None]


@pytest.mark.parametrize('size,seg,expected', [
    (10, 3, [3, 3, 3, 1]), (9, 3, [3, 3, 3]), (0, 3, []), (2, 5, [2])])
def test_fixed_segments(size, seg, expected):
    assert slo.fixed_segments(size, seg) == expected


@pytest.mark.parametrize('size,wanted,max_file,max_segs,expected', [
    (100, 10, 50, 1000, 10),     # as configured
    (100, 80, 50, 1000, 50),     # never above max_file_size
    (100, 10, 50, 4, 25),        # grown to stay within the segment count
    (1000, 10, 50, 4, None),     # impossible
])
def test_segment_size_for(size, wanted, max_file, max_segs, expected):
    assert slo.segment_size_for(size, wanted, max_file, max_segs) == expected


@pytest.mark.parametrize('value,expected', [
    ('True', True), ('true', True), ('yes', True), ('False', False),
    (None, False)])
def test_is_marked_slo(value, expected):
    headers = {} if value is None else \
        {'x-amz-meta-x-static-large-object': value}
    assert slo.is_marked_slo(headers) is expected


def test_log_once_is_bounded():
    once = slo.LogOnce(size=2)
    assert [once(k) for k in 'aab'] == [True, False, True]
    assert once('c') and once('a')  # 'a' was pushed out


# -- through the middleware -----------------------------------------------

PARTS = [b'\x01' * (5 * MiB), b'\x02' * (5 * MiB + 3), b'\x03' * 1001]
ENTRIES = [entry('/segs/p%d' % i, data) for i, data in enumerate(PARTS)]
BODY = b''.join(PARTS)
SIDECAR = sidecar(ENTRIES)
SLO_ETAG = hashlib.md5(''.join(e['hash'] for e in ENTRIES).encode()
                       ).hexdigest()


@pytest.fixture(scope='module')
def s3():
    with mock_aws():
        client = boto3.client('s3', region_name='us-east-1')
        client.create_bucket(Bucket=BUCKET)
        archive_mpu(client, 'slo', PARTS, sidecar_body=SIDECAR)
        archive_mpu(client, 'mpu-no-sidecar', PARTS[:2])
        archive_mpu(client, 'mpu-plain', PARTS[:2], marked=False,
                    sidecar_body=sidecar(ENTRIES[:2]))
        archive_mpu(client, 'bad-size', PARTS[:2],
                    sidecar_body=sidecar(ENTRIES))
        yield client


class CountingRemote:
    """Wraps the real remote and records the keys it GETs."""

    def __init__(self, remote):
        self.remote = remote
        self.gets = []
        self.fail_sidecar = None

    def get_object(self, profile, key, byte_range=None):
        self.gets.append(key)
        if self.fail_sidecar and key.endswith(MANIFEST_SUFFIX):
            raise self.fail_sidecar
        return self.remote.get_object(profile, key, byte_range)

    def __getattr__(self, name):
        return getattr(self.remote, name)


@pytest.fixture
def shunt(tmp_path, s3):
    path = write_mapping(tmp_path / 'm.json', [{
        'account': 'AUTH_a', 'container': 'c', 'aws_bucket': BUCKET,
        'aws_identity': 'id', 'aws_secret': 'sekrit',
        'merge_namespaces': True}])
    mw = CloudShuntMiddleware(FakeSwift(), {'conf_file': path},
                              logger=FakeLogger())
    mw.remote = CountingRemote(mw.remote)
    slo.log_once._seen.clear()
    slo.sidecars.clear()
    return mw


def call(app, path, method='GET', headers=None):
    return Request.blank(path, method=method, headers=headers or {}) \
        .get_response(app)


def test_get_is_the_slo(shunt):
    resp = call(shunt, '/v1/AUTH_a/c/slo')
    assert resp.status_int == 200
    assert hashlib.md5(resp.body).digest() == hashlib.md5(BODY).digest()
    assert resp.headers['Etag'] == '"%s"' % SLO_ETAG
    assert resp.headers['X-Static-Large-Object'] == 'True'
    assert resp.headers['X-Manifest-Etag'] == \
        hashlib.md5(SIDECAR).hexdigest()
    assert resp.headers['Content-Length'] == str(len(BODY))
    assert resp.headers['Content-Type'] == 'video/x-test'
    assert resp.headers['X-Object-Meta-Color'] == 'blue'


def test_head_is_the_slo(shunt):
    resp = call(shunt, '/v1/AUTH_a/c/slo', 'HEAD')
    assert resp.status_int == 200 and resp.body == b''
    assert resp.headers['Etag'] == '"%s"' % SLO_ETAG
    assert resp.headers['Content-Length'] == str(len(BODY))


@pytest.mark.parametrize('rng', [
    'bytes=%d-%d' % (5 * MiB - 3, 5 * MiB + 2),
    'bytes=%d-' % (10 * MiB),
    'bytes=-1005'])
def test_ranges_across_parts(shunt, rng):
    resp = call(shunt, '/v1/AUTH_a/c/slo', headers={'Range': rng})
    assert resp.status_int == 206
    first, last = resp.headers['Content-Range'].split()[1].split('/')[0] \
        .split('-')
    assert resp.body == BODY[int(first):int(last) + 1]
    assert resp.headers['Etag'] == '"%s"' % SLO_ETAG


@pytest.mark.parametrize('headers,status', [
    ({'If-Match': '"%s"' % SLO_ETAG}, 200),
    ({'If-None-Match': '"%s"' % SLO_ETAG}, 304),
    ({'If-Match': '"%s"' % hashlib.md5(BODY).hexdigest()}, 412),
    ({'If-None-Match': '"other"'}, 200),
])
def test_conditionals_use_the_slo_etag(shunt, headers, status):
    resp = call(shunt, '/v1/AUTH_a/c/slo', headers=headers)
    assert resp.status_int == status
    assert resp.body == (BODY if status == 200 else b'')


def test_manifest_get(shunt):
    resp = call(shunt, '/v1/AUTH_a/c/slo?multipart-manifest=get')
    assert resp.status_int == 200
    assert resp.body == SIDECAR
    assert resp.headers['Content-Type'] == 'application/json; charset=utf-8'
    assert resp.headers['Etag'] == hashlib.md5(SIDECAR).hexdigest()
    assert resp.headers['X-Static-Large-Object'] == 'True'
    assert 'X-Manifest-Etag' not in resp.headers
    # the object itself was never streamed
    assert shunt.remote.gets == [manifest_key('AUTH_a', 'c', 'slo')]


def test_manifest_get_raw(shunt):
    resp = call(shunt, '/v1/AUTH_a/c/slo?multipart-manifest=get&format=raw')
    assert resp.status_int == 200
    raw = json.loads(resp.body)
    assert raw == [{'path': e['name'], 'etag': e['hash'],
                    'size_bytes': e['bytes']} for e in ENTRIES]
    assert resp.headers['Content-Type'] == 'video/x-test'
    assert resp.headers['Etag'] == hashlib.md5(resp.body).hexdigest()


@pytest.mark.parametrize('method', ['GET', 'HEAD'])
@pytest.mark.parametrize('part', [1, 2, 3])
def test_part_number(shunt, method, part):
    resp = call(shunt, '/v1/AUTH_a/c/slo?part-number=%d' % part, method)
    first = sum(len(p) for p in PARTS[:part - 1])
    last = first + len(PARTS[part - 1]) - 1
    assert resp.status_int == 206
    assert resp.headers['Content-Range'] == 'bytes %d-%d/%d' % (
        first, last, len(BODY))
    assert resp.headers['X-Parts-Count'] == '3'
    assert resp.headers['Content-Length'] == str(last - first + 1)
    if method == 'GET':
        assert resp.body == PARTS[part - 1]


@pytest.mark.parametrize('query,headers,status', [
    ('part-number=4', {}, 416), ('part-number=0', {}, 400),
    ('part-number=x', {}, 400), ('part-number=1', {'Range': 'bytes=0-1'},
                                 400)])
def test_bad_part_numbers(shunt, query, headers, status):
    resp = call(shunt, '/v1/AUTH_a/c/slo?' + query, headers=headers)
    assert resp.status_int == status


def test_mpu_without_sidecar_is_one_object(shunt):
    for _ in range(2):
        resp = call(shunt, '/v1/AUTH_a/c/mpu-no-sidecar')
        assert resp.status_int == 200
        assert resp.body == b''.join(PARTS[:2])
        assert resp.headers['Etag'].endswith('-2')
        assert not resp.headers['Etag'].startswith('"')
        assert 'X-Static-Large-Object' not in resp.headers
    assert shunt.logger.text('info').count('has no manifest sidecar') == 1
    resp = call(shunt, '/v1/AUTH_a/c/mpu-no-sidecar?multipart-manifest=get')
    assert resp.body == b''.join(PARTS[:2])


def test_unmarked_mpu_never_fetches_a_sidecar(shunt):
    resp = call(shunt, '/v1/AUTH_a/c/mpu-plain')
    assert resp.status_int == 200 and resp.headers['Etag'].endswith('-2')
    assert shunt.remote.gets == [object_key('AUTH_a', 'c', 'mpu-plain')]


def test_sidecar_that_disagrees_is_ignored_and_logged(shunt):
    for _ in range(2):
        resp = call(shunt, '/v1/AUTH_a/c/bad-size')
        assert resp.status_int == 200
        assert resp.headers['Etag'].endswith('-2')
        assert 'X-Static-Large-Object' not in resp.headers
    assert shunt.logger.text('warning').count(
        'Ignoring the manifest sidecar') == 1
    assert 'add up to' in shunt.logger.text('warning')


def test_sidecar_outage_is_503(shunt):
    shunt.remote.fail_sidecar = RemoteError('server', 'boom', 500)
    resp = call(shunt, '/v1/AUTH_a/c/slo')
    assert resp.status_int == 503


def test_sidecar_is_read_once_for_many_range_requests(shunt):
    for first in (0, 100, 5 * MiB):
        resp = call(shunt, '/v1/AUTH_a/c/slo',
                    headers={'Range': 'bytes=%d-%d' % (first, first + 9)})
        assert resp.status_int == 206
        assert resp.body == BODY[first:first + 10]
    sidecar = manifest_key('AUTH_a', 'c', 'slo')
    assert shunt.remote.gets.count(sidecar) == 1
    # nor is a missing one looked for again
    for _ in range(2):
        call(shunt, '/v1/AUTH_a/c/mpu-no-sidecar', 'HEAD')
    assert shunt.remote.gets.count(
        manifest_key('AUTH_a', 'c', 'mpu-no-sidecar')) == 1


def test_sidecar_cache():
    now = [100.0]
    small = slo.parse_manifest(sidecar([entry('/s/a', b'a')]))
    cache = slo.SidecarCache(ttl=10, max_bytes=len(small.body) * 3 // 2,
                             clock=lambda: now[0])
    assert cache.get('k') == (False, None)
    cache.put('k', small)
    cache.put('none', None)
    assert cache.get('k') == (True, small)
    assert cache.get('none') == (True, None)
    now[0] += 11
    assert cache.get('k') == (False, None)
    big = slo.parse_manifest(sidecar([entry('/s/' + 'x' * 500, b'a')]))
    cache.put('big', big)  # larger than the whole cache: not kept
    assert cache.get('big') == (False, None)
    cache.put('a', small)
    cache.put('b', slo.parse_manifest(sidecar([entry('/s/b', b'b')])))
    assert cache.get('a') == (False, None)  # pushed out by size
    assert cache.get('b')[0]
