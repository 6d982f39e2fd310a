"""Object GET/HEAD through the middleware, with moto's in-process S3."""

import hashlib

import pytest
from swift.common.swob import Request, Response

from shunt.core.layout import object_key
from shunt.proxy.middleware import CloudShuntMiddleware
from tests.unit.helpers import BUCKET, FakeLogger, FakeSwift, write_mapping

BODY = bytes(range(256)) * 40  # 10240 bytes
ETAG = hashlib.md5(BODY).hexdigest()


@pytest.fixture
def local():
    return FakeSwift({'/v1/AUTH_a/c/local': Response(
        body=b'local body', headers={'Etag': 'x', 'X-Object-Meta-Where':
                                     'local'})})


def make_shunt(tmp_path, local, **conf):
    path = write_mapping(tmp_path / 'm.json', [{
        'account': 'AUTH_a', 'container': 'c', 'aws_bucket': BUCKET,
        'aws_identity': 'id', 'aws_secret': 'sekrit',
        'merge_namespaces': True}])
    return CloudShuntMiddleware(local, dict(conf, conf_file=path),
                                logger=FakeLogger())


@pytest.fixture
def shunt(tmp_path, s3, local):
    return make_shunt(tmp_path, local)


def archive(s3, name, body=BODY, **kw):
    s3.put_object(Bucket=BUCKET, Key=object_key('AUTH_a', 'c', name),
                  Body=body, **kw)


def call(app, path, method='GET', headers=None):
    return Request.blank(path, method=method, headers=headers or {}) \
        .get_response(app)


def test_local_hit_is_untouched(shunt, s3, local):
    archive(s3, 'local', b'remote')
    resp = call(shunt, '/v1/AUTH_a/c/local')
    assert resp.status_int == 200 and resp.body == b'local body'
    assert resp.headers['X-Object-Meta-Where'] == 'local'


def test_archived_get(shunt, s3):
    archive(s3, 'dir/obj', ContentType='image/png',
            Metadata={'color': '=?UTF-8?B?w6k=?=', 'plain': 'x y'})
    resp = call(shunt, '/v1/AUTH_a/c/dir/obj')
    assert resp.status_int == 200
    assert resp.body == BODY
    assert resp.headers['Content-Length'] == str(len(BODY))
    assert resp.headers['Content-Type'] == 'image/png'
    assert resp.headers['Etag'] == ETAG
    assert resp.headers['Accept-Ranges'] == 'bytes'
    assert resp.headers['X-Object-Meta-Color'] == '\u00e9'.encode() \
        .decode('latin-1')
    assert resp.headers['X-Object-Meta-Plain'] == 'x y'
    assert resp.headers['Content-Location'].endswith(
        '/%s/%s' % (BUCKET, object_key('AUTH_a', 'c', 'dir/obj')))
    assert 'X-Timestamp' in resp.headers and 'Last-Modified' in resp.headers
    assert not [h for h in resp.headers if h.lower().startswith('x-amz')]


def test_archived_head(shunt, s3):
    archive(s3, 'obj')
    resp = call(shunt, '/v1/AUTH_a/c/obj', 'HEAD')
    assert resp.status_int == 200 and resp.body == b''
    assert resp.headers['Content-Length'] == str(len(BODY))
    assert resp.headers['Etag'] == ETAG


@pytest.mark.parametrize('rng,status,start,stop', [
    ('bytes=0-9', 206, 0, 10), ('bytes=100-', 206, 100, 10240),
    ('bytes=-50', 206, 10190, 10240), ('bytes=10000-20000', 206, 10000,
                                       10240),
    ('bytes=-20000', 206, 0, 10240), ('bytes=junk', 200, 0, 10240),
])
def test_single_ranges(shunt, s3, rng, status, start, stop):
    archive(s3, 'obj')
    resp = call(shunt, '/v1/AUTH_a/c/obj', headers={'Range': rng})
    assert resp.status_int == status
    assert resp.body == BODY[start:stop]
    if status == 206:
        assert resp.headers['Content-Range'] == 'bytes %d-%d/%d' % (
            start, stop - 1, len(BODY))


@pytest.mark.parametrize('rng', ['bytes=20000-', 'bytes=-0'])
def test_unsatisfiable_range(shunt, s3, rng):
    archive(s3, 'obj')
    resp = call(shunt, '/v1/AUTH_a/c/obj', headers={'Range': rng})
    assert resp.status_int == 416
    assert resp.headers['Content-Range'] == 'bytes */10240'


def test_multi_range(shunt, s3):
    archive(s3, 'obj', ContentType='text/plain')
    resp = call(shunt, '/v1/AUTH_a/c/obj',
                headers={'Range': 'bytes=0-1,100-101'})
    assert resp.status_int == 206
    assert resp.content_type == 'multipart/byteranges'
    parts = resp.body.split(b'--' + resp.headers['Content-Type'].split(
        'boundary=')[1].encode())
    assert b'Content-Range: bytes 0-1/10240' in parts[1]
    assert parts[1].endswith(b'\r\n\r\n' + BODY[0:2] + b'\r\n')
    assert parts[2].endswith(b'\r\n\r\n' + BODY[100:102] + b'\r\n')
    assert int(resp.headers['Content-Length']) == len(resp.body)


@pytest.mark.parametrize('headers,status', [
    ({'If-None-Match': '"%s"' % ETAG}, 304),
    ({'If-None-Match': '"other"'}, 200),
    ({'If-Match': '"other"'}, 412),
    ({'If-Match': '"%s"' % ETAG}, 200),
    ({'If-Modified-Since': 'Thu, 01 Jan 2099 00:00:00 GMT'}, 304),
    ({'If-Unmodified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT'}, 412),
    ({'If-Match': '"%s"' % ETAG, 'Range': 'bytes=1-2'}, 206),
])
def test_conditionals(shunt, s3, headers, status):
    archive(s3, 'obj')
    resp = call(shunt, '/v1/AUTH_a/c/obj', headers=headers)
    assert resp.status_int == status
    if status in (304, 412):
        assert resp.body == b''
    elif status == 206:
        assert resp.body == BODY[1:3]
    else:
        assert resp.body == BODY


def test_remote_miss_gives_local_404(shunt, local):
    resp = call(shunt, '/v1/AUTH_a/c/missing')
    assert resp.status_int == 404
    assert resp.headers['X-Local'] == 'yes'
    assert b'Not Found' in resp.body


def test_unmapped_never_calls_remote(shunt, local):
    shunt.remote = None  # any remote use would raise
    for path in ('/v1/AUTH_a/other/o', '/v1/AUTH_b/c/o', '/v1/AUTH_a',
                 '/info', '/v1/AUTH_a/c'):
        resp = call(shunt, path.split('?')[0])
        assert resp.status_int == 404
    resp = call(shunt, '/v1/AUTH_a/c/o', 'PUT')
    assert resp.status_int == 404


def test_bypass_header(shunt, s3):
    archive(s3, 'obj')
    resp = call(shunt, '/v1/AUTH_a/c/obj',
                headers={'X-Cloud-Sync-Shunt-Bypass': 'true'})
    assert resp.status_int == 404


def test_remote_down_is_503(tmp_path, local):
    path = write_mapping(tmp_path / 'm.json', [{
        'account': 'AUTH_a', 'container': 'c', 'aws_bucket': BUCKET,
        'aws_endpoint': 'http://127.0.0.1:9', 'aws_identity': 'id',
        'aws_secret': 'sekrit', 'merge_namespaces': True}])
    logger = FakeLogger()
    shunt = CloudShuntMiddleware(local, {'conf_file': path,
                                         'conn_timeout': '0.5',
                                         's3_max_attempts': '1'},
                                 logger=logger)
    for method in ('GET', 'HEAD'):
        resp = call(shunt, '/v1/AUTH_a/c/obj', method)
        assert resp.status_int == 503
    assert b'cannot be reached' in call(shunt, '/v1/AUTH_a/c/obj').body
    assert 'connection' in logger.text('error')
    assert 'sekrit' not in logger.text()


def test_if_match_star(shunt, s3):
    archive(s3, 'obj')
    resp = call(shunt, '/v1/AUTH_a/c/obj', headers={'If-Match': '*'})
    assert resp.status_int == 200 and resp.body == BODY


def test_head_makes_one_remote_call(shunt, s3):
    archive(s3, 'obj')
    calls = []
    for name in ('head_object', 'get_object'):
        real = getattr(shunt.remote, name)
        setattr(shunt.remote, name,
                lambda *a, _n=name, _r=real, **k: calls.append(_n) or
                _r(*a, **k))
    resp = call(shunt, '/v1/AUTH_a/c/obj', 'HEAD')
    assert resp.status_int == 200 and resp.body == b''
    assert resp.headers['Content-Length'] == str(len(BODY))
    assert calls == ['head_object']


def test_first_chunk_small_then_large(tmp_path, s3, local):
    # the first byte goes out after 64 KiB, not after a whole large read
    shunt = make_shunt(tmp_path, local, network_chunk_size='300000')
    body = bytes(range(256)) * 4096  # 1 MiB
    archive(s3, 'big', body)
    resp = call(shunt, '/v1/AUTH_a/c/big')
    chunks = list(resp.app_iter)
    assert [len(c) for c in chunks] == [65536, 300000, 300000, 300000,
                                        83040]
    assert b''.join(chunks) == body
