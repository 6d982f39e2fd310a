"""Archived DLO manifests: the pure helpers, then GET/HEAD through the
middleware with moto's in-process S3, with Swift's own ``dlo`` serving the
same DLO kept locally as the oracle."""

import hashlib
import json
import urllib.parse

import pytest
from swift.common import constraints
from swift.common.middleware.dlo import DynamicLargeObject
from swift.common.swob import (
    HTTPException,
    Request,
    Response,
    str_to_wsgi,
    wsgi_to_str,
)
from swift.common.utils import Timestamp

from shunt.core.layout import object_key
from shunt.core.remote import RemoteError
from shunt.proxy import dlo, restore
from shunt.proxy.middleware import CloudShuntMiddleware
from tests.unit.helpers import BUCKET, FakeLogger, write_mapping

SEGMENTS = [b'a' * 1000, b'b' * 1111, b'c' * 1000, b'd' * 1111]
BODY = b''.join(SEGMENTS)
DLO_ETAG = '"%s"' % hashlib.md5(''.join(
    hashlib.md5(s).hexdigest() for s in SEGMENTS).encode()).hexdigest()
EMPTY_MD5 = hashlib.md5(b'').hexdigest()
LAST_MODIFIED = 'Tue, 01 Dec 2026 10:00:00 GMT'
# headers that differ between a local and an archived copy by nature
# the containers the fake Swift has
CONTAINERS = frozenset(('c', 'ctl', 'segs', 'asegs'))
VOLATILE = {'content-location', 'x-object-manifest', 'x-timestamp',
            'last-modified'}


# -- pure ---------------------------------------------------------------

@pytest.mark.parametrize('raw,expected', [
    ('dlo-segs/v1/', 'dlo-segs/v1/'),
    # 1space stores the value URL-quoted
    ('segs/caf%C3%A9/', 'segs/caf\u00e9/'),
    # a client that PUT it quoted: quoted once more by the archiver
    ('segs/caf%25C3%25A9/', 'segs/caf%C3%A9/'),
    ('', None),
])
def test_manifest_of(raw, expected):
    assert dlo.manifest_of({'x-amz-meta-x-object-manifest': raw}) == \
        expected


def test_manifest_of_other_objects():
    assert dlo.manifest_of({'x-amz-meta-color': 'blue'}) is None


@pytest.mark.parametrize('value,expected', [
    ('segs/v1/', ('segs', 'v1/')),
    ('segs/', ('segs', '')),
    ('segs/caf%C3%A9/', ('segs', 'caf\u00e9/')),
    ('segs', None), ('/v1/', None), ('%2Fx', None),
])
def test_segments_target(value, expected):
    assert dlo.segments_target(value) == expected


def test_dlo_settings_come_from_the_pipeline():
    class Filter:
        def __init__(self, app):
            self.app = app
    inner = DynamicLargeObject(lambda env, sr: [], {
        'rate_limit_after_segment': '3', 'rate_limit_segments_per_sec': '7',
        'max_get_time': '9'})
    assert dlo.dlo_settings(Filter(Filter(inner))) == {
        'rate_limit_after_segment': 3, 'rate_limit_segments_per_sec': 7,
        'max_get_time': 9}
    assert dlo.dlo_settings(Filter(None)) == dlo.DEFAULT_SETTINGS


def test_listing_digest_ignores_subdirs_and_quotes():
    one, two = hashlib.md5(), hashlib.md5()
    assert dlo.listing_digest(one, [{'name': 'a', 'hash': 'x', 'bytes': 1},
                                    {'subdir': 'b/'}]) == 1
    assert dlo.listing_digest(two, [{'name': 'a', 'hash': '"x"',
                                     'bytes': 1}]) == 1
    assert one.digest() == two.digest()


@pytest.mark.parametrize('headers,failed', [
    ({}, False), ({'If-Match': '"%s"' % EMPTY_MD5}, False),
    ({'If-Match': DLO_ETAG}, True), ({'If-None-Match': '*'}, False),
    ({'If-Unmodified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT'}, True),
])
def test_manifest_headers_as_the_proxy_gives_them(headers, failed):
    manifest = {'Content-Type': 'video/x-dlo', 'Accept-Ranges': 'bytes',
                'Etag': EMPTY_MD5, 'Last-Modified': LAST_MODIFIED}
    got = dict(dlo.manifest_headers(
        Request.blank('/v1/a/c/o', headers=headers), manifest))
    if failed:
        assert got == {'Content-Type': 'text/html; charset=UTF-8',
                       'Etag': EMPTY_MD5, 'Last-Modified': LAST_MODIFIED}
    else:
        assert got == manifest


@pytest.mark.parametrize('headers,expected', [
    ({}, True), ({'Range': 'bytes=0-1'}, False),
    ({'If-None-Match': '"x"'}, False), ({'If-Match': '*'}, False),
])
def test_wants_restore(headers, expected):
    assert dlo.wants_restore(Request.blank('/v1/a/c/o', headers=headers)) \
        is expected
    assert not dlo.wants_restore(Request.blank('/v1/a/c/o',
                                               method='HEAD'))


# -- a fake Swift with containers, listings and ranges --------------------

class FakeSwift:
    """The pipeline right of ``dlo``: objects in a dict, JSON container
    listings with ``prefix``/``marker``/``limit``, ranges and conditional
    requests by swob, PUTs stored (``If-None-Match: *`` honoured)."""

    def __init__(self):
        self.objects = {}  # WSGI path -> (headers, body)
        self.calls = []
        self.fail = {}     # WSGI path -> status
        self.fail_later_pages = set()  # container paths

    def put(self, path, body, headers=None):
        hdrs = {'Content-Type': 'application/octet-stream',
                'Etag': hashlib.md5(body).hexdigest(),
                'X-Timestamp': Timestamp.now().internal,
                'Last-Modified': LAST_MODIFIED, 'Accept-Ranges': 'bytes'}
        hdrs.update(headers or {})
        self.objects[path] = (hdrs, body)

    def __call__(self, env, start_response):
        req = Request(env)
        path = env['PATH_INFO']
        self.calls.append((req.method, path, req.query_string))
        if path in self.fail:
            return Response(status=self.fail[path])(env, start_response)
        parts = path.split('/')
        if len(parts) == 3:
            return Response(status=204)(env, start_response)
        if len(parts) == 4:
            return self._container(req)(env, start_response)
        if req.method == 'PUT':
            return self._put(req)(env, start_response)
        if path not in self.objects:
            return Response(status=404, body=b'Not Found')(
                env, start_response)
        headers, body = self.objects[path]
        if 'x-object-manifest' in (k.lower() for k in headers):
            headers = dict(headers)
        resp = Response(request=req, headers=headers, body=body,
                        conditional_response=True)

        def as_proxy(status, headers, exc_info=None):
            # Swift's proxy answers a failed precondition with the object's
            # headers but its own error Content-Type and no Accept-Ranges
            if status.startswith('412'):
                headers = [(k, 'text/html; charset=UTF-8')
                           if k.lower() == 'content-type' else (k, v)
                           for k, v in headers
                           if k.lower() != 'accept-ranges']
            return start_response(status, headers, exc_info)
        return resp(env, as_proxy)

    def _container(self, req):
        path = req.environ['PATH_INFO']
        if path.rsplit('/', 1)[1] not in CONTAINERS:
            return Response(status=404, body=b'no such container')
        if req.method == 'HEAD':
            return Response(status=204)
        prefix = wsgi_to_str(req.params.get('prefix', ''))
        marker = wsgi_to_str(req.params.get('marker', ''))
        limit = int(req.params.get('limit',
                                   constraints.CONTAINER_LISTING_LIMIT))
        if req.params.get('marker') and path in self.fail_later_pages:
            return Response(status=503, body=b'listing failed')
        rows = []
        for name in sorted(p[len(path) + 1:] for p in self.objects
                           if p.startswith(path + '/')):
            native = wsgi_to_str(name)
            if not native.startswith(prefix) or native <= marker:
                continue
            headers, body = self.objects[path + '/' + name]
            rows.append({'name': native, 'bytes': len(body),
                         'hash': headers['Etag'],
                         'content_type': headers['Content-Type'],
                         'last_modified': '2026-12-01T10:00:00.000000'})
        body = json.dumps(rows[:limit]).encode()
        return Response(body=body, content_type='application/json')

    def _put(self, req):
        path = req.environ['PATH_INFO']
        if req.headers.get('If-None-Match') == '*' and path in self.objects:
            return Response(status=412)
        body = req.body
        etag = hashlib.md5(body).hexdigest()
        if req.headers.get('Etag') not in (None, etag):
            return Response(status=422)
        headers = {k: v for k, v in req.headers.items()
                   if k.lower().startswith(('x-object-', 'content-type'))}
        self.put(path, body, headers)
        return Response(status=201, headers={'Etag': etag})


def quote(name):
    return urllib.parse.quote(name.encode('utf-8'))


class World:
    """A shunt in front of Swift's ``dlo`` in front of :class:`FakeSwift`,
    with ``c`` and ``asegs`` mapped to the moto bucket; the unmapped
    ``ctl`` holds local manifests (the oracle) and ``segs`` local
    segments."""

    def __init__(self, tmp_path, s3, restore_object=()):
        self.s3 = s3
        self.swift = FakeSwift()
        profiles = [{'account': 'AUTH_a', 'container': name,
                     'aws_bucket': BUCKET, 'aws_identity': 'id',
                     'aws_secret': 'sekrit', 'merge_namespaces': True,
                     'restore_object': name in restore_object}
                    for name in ('c', 'asegs')]
        path = write_mapping(tmp_path / 'm.json', profiles)
        self.logger = FakeLogger()
        self.shunt = CloudShuntMiddleware(
            DynamicLargeObject(self.swift, {}), {'conf_file': path},
            logger=self.logger)

    def local_segment(self, container, name, body):
        self.swift.put('/v1/AUTH_a/%s/%s' % (container, str_to_wsgi(name)),
                       body)

    def archived_segment(self, container, name, body):
        self.s3.put_object(Bucket=BUCKET,
                           Key=object_key('AUTH_a', container, name),
                           Body=body)

    def local_manifest(self, name, value, body=b''):
        self.swift.put('/v1/AUTH_a/ctl/%s' % str_to_wsgi(name), body, {
            'X-Object-Manifest': value, 'Content-Type': 'video/x-dlo',
            'X-Object-Meta-Color': 'blue'})

    def archived_manifest(self, name, value, body=b''):
        self.s3.put_object(
            Bucket=BUCKET, Key=object_key('AUTH_a', 'c', name), Body=body,
            ContentType='video/x-dlo',
            Metadata={'x-object-manifest': urllib.parse.quote(value),
                      'color': 'blue'})

    def call(self, path, method='GET', headers=None):
        req = Request.blank(path, method=method, headers=headers or {})
        return req.get_response(self.shunt)

    def both(self, name, method='GET', headers=None, query=''):
        return (self.call('/v1/AUTH_a/c/%s%s' % (quote(name), query),
                          method, headers),
                self.call('/v1/AUTH_a/ctl/%s%s' % (quote(name), query),
                          method, headers))


def assert_same(archived, local):
    assert archived.status == local.status
    a_body, l_body = archived.body, local.body
    a_headers = {k.lower(): v for k, v in archived.headers.items()}
    l_headers = {k.lower(): v for k, v in local.headers.items()}
    ctype = l_headers.get('content-type', '')
    if 'boundary=' in ctype:
        a_b = a_headers.pop('content-type').split('boundary=')[1]
        l_b = l_headers.pop('content-type').split('boundary=')[1]
        a_body = a_body.replace(a_b.encode(), b'B')
        l_body = l_body.replace(l_b.encode(), b'B')
    assert a_body == l_body
    for name in VOLATILE:
        a_headers.pop(name, None)
        l_headers.pop(name, None)
    assert a_headers == l_headers


def segment_names(prefix='v1/'):
    return ['%s%02d' % (prefix, i) for i in range(len(SEGMENTS))]


@pytest.fixture
def world(tmp_path, s3):
    dlo._log_once._seen.clear()
    return World(tmp_path, s3)


def _layout(world, where):
    """The four segments in ``segs`` (local oracle) and in ``asegs``
    (``where``: local, archived or mixed)."""
    for i, (name, body) in enumerate(zip(segment_names(), SEGMENTS,
                                         strict=True)):
        world.local_segment('segs', name, body)
        if where == 'local' or (where == 'mixed' and i % 2):
            world.local_segment('asegs', name, body)
        else:
            world.archived_segment('asegs', name, body)
    world.local_manifest('dlo', 'segs/v1/')
    world.archived_manifest('dlo', 'asegs/v1/')


@pytest.mark.parametrize('where', ['local', 'archived', 'mixed'])
@pytest.mark.parametrize('method', ['GET', 'HEAD'])
def test_get_head_is_the_dlo(world, where, method):
    _layout(world, where)
    archived, local = world.both('dlo', method)
    assert archived.status_int == 200
    assert_same(archived, local)
    assert archived.headers['Etag'] == DLO_ETAG
    assert archived.headers['Content-Length'] == str(len(BODY))
    assert archived.headers['X-Object-Manifest'] == 'asegs/v1/'
    assert archived.headers['X-Object-Meta-Color'] == 'blue'
    if method == 'GET':
        assert archived.body == BODY


@pytest.mark.parametrize('rng', [
    'bytes=0-9', 'bytes=995-1005', 'bytes=999-3200', 'bytes=-5',
    'bytes=-3000', 'bytes=4000-', 'bytes=0-1,2000-2010,-3',
    'bytes=%d-' % len(BODY), 'bytes=junk',
])
def test_ranges_match_local(world, rng):
    _layout(world, 'mixed')
    for method in ('GET', 'HEAD'):
        archived, local = world.both('dlo', method, {'Range': rng})
        assert_same(archived, local)


@pytest.mark.parametrize('headers', [
    {'If-Match': DLO_ETAG}, {'If-Match': '"nope"'}, {'If-Match': '*'},
    {'If-None-Match': DLO_ETAG}, {'If-None-Match': '*'},
    {'If-None-Match': '"%s"' % EMPTY_MD5},
    {'If-Match': DLO_ETAG, 'Range': 'bytes=990-1010'},
    {'If-Modified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT'},
    {'If-Unmodified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT'},
])
def test_conditionals_match_local(world, headers):
    _layout(world, 'archived')
    for method in ('GET', 'HEAD'):
        archived, local = world.both('dlo', method, headers)
        assert_same(archived, local)


def test_manifest_get_is_the_manifest_object(world):
    _layout(world, 'archived')
    archived, local = world.both('dlo', query='?multipart-manifest=get')
    assert_same(archived, local)
    assert archived.status_int == 200
    assert archived.body == b''
    assert archived.headers['Etag'] == EMPTY_MD5
    assert archived.headers['X-Object-Manifest'] == 'asegs/v1/'
    # no segment was read or listed
    assert not [c for c in world.swift.calls if 'asegs' in c[1]]


def test_empty_prefix_match_is_an_empty_dlo(world):
    world.local_manifest('none', 'segs/nothing-here/')
    world.archived_manifest('none', 'asegs/nothing-here/')
    for method in ('GET', 'HEAD'):
        archived, local = world.both('none', method)
        assert archived.status_int == 200
        assert_same(archived, local)
        assert archived.headers['Etag'] == '"%s"' % EMPTY_MD5


def test_unicode_names(world):
    names = ['caf\u00e9/\u2603 %02d' % i for i in range(len(SEGMENTS))]
    for name, body in zip(names, SEGMENTS, strict=True):
        world.local_segment('segs', name, body)
        world.archived_segment('asegs', name, body)
    world.local_manifest('\u00fcber', 'segs/caf%C3%A9/')
    world.archived_manifest('\u00fcber', 'asegs/caf\u00e9/')
    archived, local = world.both('\u00fcber')
    assert archived.status_int == 200
    assert_same(archived, local)
    assert archived.body == BODY
    # shown as the archiver kept it (unquoted once): the UTF-8 bytes
    assert wsgi_to_str(archived.headers['X-Object-Manifest']) == \
        'asegs/caf\u00e9/'


def test_manifest_that_matches_its_own_prefix(world):
    # Swift reads such a manifest's own body as a segment, unexpanded
    world.local_segment('c', 'me/1', b'one')
    world.local_segment('ctl', 'me/1', b'one')
    world.archived_segment('c', 'me/2', b'two')
    world.local_segment('ctl', 'me/2', b'two')
    world.local_manifest('me', 'ctl/me', body=b'self')
    world.archived_manifest('me', 'c/me', body=b'self')
    archived, local = world.both('me')
    assert local.body == b'selfonetwo'
    assert archived.body == b'selfonetwo'
    assert archived.headers['Etag'] == local.headers['Etag']


def test_listing_of_segments_is_paged_beyond_one_s3_page(world):
    bodies = [b'%04d' % i for i in range(1100)]
    for i, body in enumerate(bodies):
        if i % 3:
            world.archived_segment('asegs', 'big/%04d' % i, body)
        else:
            world.local_segment('asegs', 'big/%04d' % i, body)
    world.archived_manifest('big', 'asegs/big/')
    resp = world.call('/v1/AUTH_a/c/big', 'HEAD')
    assert resp.status_int == 200
    assert resp.headers['Content-Length'] == str(4 * 1100)
    assert resp.headers['Etag'] == '"%s"' % hashlib.md5(''.join(
        hashlib.md5(b).hexdigest() for b in bodies).encode()).hexdigest()
    resp = world.call('/v1/AUTH_a/c/big', headers={'Range': 'bytes=-10'})
    assert resp.status_int == 206
    assert resp.body == b''.join(bodies)[-10:]


def test_segment_listing_outage_is_the_shunts_503(world):
    _layout(world, 'archived')

    def broken(*args, **kwargs):
        raise RemoteError('timeout', 'read timed out')
    world.shunt.remote.list_objects = broken
    for method in ('GET', 'HEAD'):
        resp = world.call('/v1/AUTH_a/c/dlo', method)
        assert resp.status_int == 503
        if method == 'GET':
            assert resp.body == (b'Container listing unavailable: the '
                                 b'remote store timed out.\n')


def test_partial_segment_listing_is_503(world, tmp_path):
    _layout(world, 'archived')
    world.shunt.listing_on_remote_error = 'local'

    def broken(*args, **kwargs):
        raise RemoteError('connection', 'refused')
    world.shunt.remote.list_objects = broken
    resp = world.call('/v1/AUTH_a/c/dlo')
    assert resp.status_int == 503
    assert b'segment listing unavailable' in resp.body


def _break_segment(world, index, kind='throttled'):
    real = world.shunt.remote.get_object
    key = object_key('AUTH_a', 'asegs', segment_names()[index])

    def get_object(profile, k, byte_range=None):
        if k == key:
            raise RemoteError(kind, 'nope')
        return real(profile, k, byte_range)
    world.shunt.remote.get_object = get_object
    real_head = world.shunt.remote.head_object

    def head_object(profile, k):
        if k == key:
            raise RemoteError(kind, 'nope')
        return real_head(profile, k)
    world.shunt.remote.head_object = head_object


def test_first_segment_outage_is_the_shunts_503(world):
    _layout(world, 'archived')
    _break_segment(world, 0)
    resp = world.call('/v1/AUTH_a/c/dlo')
    assert resp.status_int == 503
    assert resp.headers['Retry-After'] == '5'
    assert resp.body == (b'Archived object unavailable: the remote store '
                         b'is throttling requests.\n')


def test_later_segment_outage_breaks_the_body(world):
    _layout(world, 'archived')
    _break_segment(world, 2, 'timeout')
    req = Request.blank('/v1/AUTH_a/c/dlo')
    status = []
    body = world.shunt(req.environ, lambda s, h, e=None: status.append(s))
    got = b''
    with pytest.raises(HTTPException):
        for chunk in body:
            got += chunk
    assert status == ['200 OK']
    assert got == b''.join(SEGMENTS[:2])
    assert 'got 503' in world.logger.text('error')


def test_later_segment_deleted_breaks_the_body(world):
    # what Swift's DLO code swallows (a SegmentError) is made visible
    _layout(world, 'local')
    # listed, but gone when read
    world.swift.fail['/v1/AUTH_a/asegs/v1/03'] = 404
    req = Request.blank('/v1/AUTH_a/c/dlo')
    body = world.shunt(req.environ, lambda s, h, e=None: None)
    with pytest.raises(dlo.SegmentFailure):
        b''.join(body)


# -- restore --------------------------------------------------------------

@pytest.fixture
def restoring(tmp_path, s3):
    dlo._log_once._seen.clear()
    restore._log_once._seen.clear()
    return World(tmp_path, s3, restore_object=('c', 'asegs'))


def test_whole_get_restores_segments_then_manifest(restoring):
    world = restoring
    _layout(world, 'mixed')
    resp = world.call('/v1/AUTH_a/c/dlo')
    assert resp.body == BODY
    for name in segment_names():
        assert '/v1/AUTH_a/asegs/' + name in world.swift.objects
    headers, body = world.swift.objects['/v1/AUTH_a/c/dlo']
    assert body == b''
    assert headers['X-Object-Manifest'] == 'asegs/v1/'
    assert headers['X-Object-Meta-Color'] == 'blue'
    # now served by Swift's own dlo, the same
    local = world.call('/v1/AUTH_a/c/dlo')
    assert local.body == BODY
    assert local.headers['Etag'] == DLO_ETAG
    assert 'Content-Location' not in local.headers


@pytest.mark.parametrize('headers', [{'Range': 'bytes=0-5000'},
                                     {'If-None-Match': '"x"'}])
def test_ranges_and_conditionals_never_restore(restoring, headers):
    world = restoring
    _layout(world, 'archived')
    world.call('/v1/AUTH_a/c/dlo', headers=headers)
    assert not [c for c in world.swift.calls if c[0] == 'PUT']


def test_manifest_not_restored_while_segments_are_only_archived(
        tmp_path, s3):
    dlo._log_once._seen.clear()
    # only the manifest's profile restores: its segments stay archived
    world = World(tmp_path, s3, restore_object=('c',))
    _layout(world, 'archived')
    resp = world.call('/v1/AUTH_a/c/dlo')
    assert resp.body == BODY
    assert '/v1/AUTH_a/c/dlo' not in world.swift.objects
    assert 'Swift does not have all of its segments' in \
        world.logger.text('info')


def test_manifest_get_never_restores(restoring):
    world = restoring
    _layout(world, 'archived')
    world.call('/v1/AUTH_a/c/dlo?multipart-manifest=get')
    assert not [c for c in world.swift.calls if c[0] == 'PUT']


def test_archived_segment_costs_one_get(world):
    _layout(world, 'archived')
    calls = []
    remote = world.shunt.remote

    def counting(name, real):
        def counted(*args, **kwargs):
            calls.append(name)
            return real(*args, **kwargs)
        return counted
    for name in ('get_object', 'head_object', 'list_objects'):
        setattr(remote, name, counting(name, getattr(remote, name)))
    assert world.call('/v1/AUTH_a/c/dlo').body == BODY
    # the manifest, one listing page, one GET per segment
    assert sorted(calls) == ['get_object'] * 5 + ['list_objects']


def test_later_listing_page_failure_breaks_the_body(world, monkeypatch):
    # Swift's DLO code swallows it (ListingIterError) and ends the body
    monkeypatch.setattr(constraints, 'CONTAINER_LISTING_LIMIT', 2)
    _layout(world, 'archived')
    world.archived_manifest('paged', 'segs/v1/')
    # a full page of two: neither Content-Length nor Etag, as in Swift
    resp = world.call('/v1/AUTH_a/c/paged')
    assert resp.body == BODY
    assert 'Content-Length' not in resp.headers
    world.swift.fail_later_pages.add('/v1/AUTH_a/segs')
    req = Request.blank('/v1/AUTH_a/c/paged')
    body = world.shunt(req.environ, lambda s, h, e=None: None)
    got = b''
    with pytest.raises(dlo.SegmentFailure):
        for chunk in body:
            got += chunk
    assert got == b''.join(SEGMENTS[:2])
    assert any('breaking the response' in str(line)
               for _, line in world.logger.lines)


@pytest.mark.parametrize('value', ['no-slash', '/leading', '%2Fquoted'])
def test_manifest_naming_no_container_is_one_object(world, value):
    world.archived_manifest('odd', value, body=b'just me')
    resp = world.call('/v1/AUTH_a/c/odd')
    assert resp.status_int == 200
    assert resp.body == b'just me'
    assert 'X-Object-Manifest' not in resp.headers
    assert 'names no container' in world.logger.text('warning')


def test_missing_segment_container_answers_as_swift(world):
    world.local_manifest('lost', 'nowhere/p/')
    world.archived_manifest('lost', 'nowhere/p/')
    for method in ('GET', 'HEAD'):
        archived, local = world.both('lost', method)
        assert archived.status_int == local.status_int == 404
        assert archived.body == local.body
