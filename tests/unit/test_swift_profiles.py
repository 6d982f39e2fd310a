"""Swift profiles (``"protocol": "swift"``) through the whole shunt: the pure
helpers of :mod:`shunt.proxy.native`, then GET/HEAD/listings/writes through
the middleware with the real :class:`SwiftRemote` talking HTTP to an
in-memory remote cluster that runs Swift's own ``slo`` and ``dlo``. The
oracle is the same large object kept in the local cluster (Swift's ``slo``
and ``dlo`` serving it), compared byte for byte and header for header."""

import hashlib
import json
import urllib.parse

import pytest
from swift.common.swob import HeaderKeyDict, Request
from swift.common.utils import Timestamp

from shunt.core import headers as shunt_headers
from shunt.core.guard import FailFast
from shunt.core.remote import S3Remote
from shunt.core.stores import Remotes
from shunt.core.swift_remote import SwiftRemote
from shunt.proxy import native, restore
from shunt.proxy.middleware import CloudShuntMiddleware
from tests.unit.fake_swift import serve
from tests.unit.helpers import FakeLogger, write_mapping
from tests.unit.swift_store import AuthFront, Store, cluster

SEGMENTS = [b'a' * 1000, b'b' * 1111, b'c' * 1000]
SIZE = sum(len(s) for s in SEGMENTS)
BODY = b''.join(SEGMENTS)
TS = Timestamp(1764583200.12345)
SEG_TS = Timestamp(1764583100.5)


# -- pure --------------------------------------------------------------------

@pytest.mark.parametrize('name,expected', [
    ('/rc_segments/segs/s/00', '/segs/s/00'),
    ('/rc_segments/segs/a/b/c', '/segs/a/b/c'),
    ('/rc_segments/segs', None), ('/rc_segments/segs/', None),
    ('/rc_segments//x', None), ('/other/segs/x', None),
    ('/rc_segmentsX/segs/x', None),
])
def test_local_segment_name(name, expected):
    assert native.local_segment_name(name, 'rc_segments') == expected


def test_local_manifest_body_keeps_swifts_stored_form():
    remote = [{'name': '/rc_segments/segs/\u00e9/1', 'bytes': 3,
               'hash': 'h', 'content_type': 'x', 'last_modified': 't'},
              {'name': '/rc_segments/segs/\u00e9/2', 'bytes': 4,
               'hash': 'g', 'content_type': 'x', 'last_modified': 't',
               'range': '0-1'}]
    body = native.local_manifest_body(json.dumps(remote).encode(),
                                      'rc_segments')
    expected = [dict(e) for e in remote]
    expected[0]['name'] = '/segs/\u00e9/1'
    expected[1]['name'] = '/segs/\u00e9/2'
    assert body == json.dumps(expected).encode('ascii')


def test_local_manifest_body_maps_all_or_nothing():
    remote = [{'name': '/rc_segments/segs/1'}, {'name': '/elsewhere/x/2'}]
    assert native.local_manifest_body(json.dumps(remote), 'rc_segments') \
        is None
    assert native.local_manifest_body(b'not json', 'rc_segments') is None
    assert native.local_manifest_body(b'{}', 'rc_segments') is None


@pytest.mark.parametrize('value,ours,expected', [
    ('rc_segments/segs/v1/', True, 'segs/v1/'),
    ('rc_segments/segs/', True, 'segs/'),
    ('rc_segments/segs/caf%C3%A9/', True, 'segs/caf%C3%A9/'),
    ('rc_segments/v1/', True, 'v1/'),
    ('rc_segments/v1', True, 'rc_segments/v1'),
    ('rc_segments/segs/v1/', False, 'rc_segments/segs/v1/'),
    ('other/segs/v1/', True, 'other/segs/v1/'),
])
def test_local_dlo_value(value, ours, expected):
    assert native.local_dlo_value(value, 'rc_segments', ours) == expected


@pytest.mark.parametrize('body,failed', [
    (b'{"Response Status": "200 OK", "Errors": []}', None),
    (b'{"Response Status": "404 Not Found", "Errors": []}', None),
    (b'{"Response Status": "400 Bad Request", "Errors": [["a", "409"]]}',
     '400 Bad Request'),
    (b'<html>', 'an unreadable answer'), (b'[]', 'an unreadable answer'),
])
def test_bulk_delete_failure(body, failed):
    assert native.bulk_delete_failure(body) == failed


def test_swift_object_headers_of_a_remote_large_object():
    raw = {'etag': 'abc', 'x-swift-etag-quoted': '"%s"' % ('d' * 32),
           'x-swift-remote-timestamp': '1764583200.12345',
           'last-modified': 'Tue, 01 Dec 2026 10:00:01 GMT',
           'x-swift-static-large-object': 'True',
           'x-amz-meta-swift-source-dlo-etag': 'x',
           'x-amz-meta-combined-etag': 'y', 'x-amz-meta-color': 'blue'}
    headers = HeaderKeyDict(shunt_headers.swift_object_headers(raw))
    assert headers['Etag'] == '"%s"' % ('d' * 32)
    assert headers['X-Timestamp'] == '1764583200.12345'
    assert headers['Last-Modified'] == 'Mon, 01 Dec 2025 10:00:01 GMT'
    assert headers['X-Object-Meta-Color'] == 'blue'
    # 1space's bookkeeping on remote Swift never shows
    assert not [k for k in headers if 'etag' in k.lower() and k != 'Etag']
    # our daemon's own timestamp wins over the remote clock
    raw['x-amz-meta-swift-timestamp'] = '1764583100.00000'
    assert shunt_headers.swift_object_headers(raw)['X-Timestamp'] == \
        '1764583100.00000'


# -- the world: a local cluster with the shunt, a remote cluster over HTTP --

def put(app, path, body=b'', headers=None, query=''):
    req = Request.blank(path + query, method='PUT', headers=headers or {},
                        body=body)
    resp = req.get_response(app)
    assert resp.status_int == 201, (path, resp.status, resp.body)
    return resp


def make_slo(app, container, name, seg_container, seg_prefix, headers):
    entries = []
    for index, data in enumerate(SEGMENTS):
        seg = '/%s/%s%02d' % (seg_container, seg_prefix, index)
        put(app, container.rsplit('/', 1)[0] + seg, data,
            {'X-Timestamp': SEG_TS.internal})
        entries.append({'path': seg, 'etag': hashlib.md5(data).hexdigest(),
                        'size_bytes': len(data)})
    put(app, '%s/%s' % (container, name), json.dumps(entries).encode(),
        dict(headers, **{'X-Timestamp': TS.internal}),
        '?multipart-manifest=put')


def make_dlo(app, container, name, seg_container, seg_prefix, headers):
    for index, data in enumerate(SEGMENTS):
        put(app, '%s/%s/%s%02d' % (container.rsplit('/', 1)[0],
                                   seg_container, seg_prefix, index), data,
            {'X-Timestamp': SEG_TS.internal})
    put(app, '%s/%s' % (container, name), b'', dict(headers, **{
        'X-Timestamp': TS.internal,
        'X-Object-Manifest': '%s/%s' % (seg_container, seg_prefix)}))


class World:
    """``c`` (mapped to the remote container ``rc``) and ``ctl`` (the
    oracle, unmapped) in the local account ``AUTH_a``; local segments in
    ``segs``; the remote daemon's in ``rc_segments/segs/...``."""

    def __init__(self, tmp_path, server, **profile):
        self.local = Store()
        for name in ('c', 'ctl', 'segs', 'c_segments'):
            self.local.make_container('/v1/AUTH_a/' + name)
        self.local_inner = cluster(self.local).app  # below gatekeeper
        self.remote = server.store
        self.remote_inner = server.inner
        self.server = server
        conf = {'account': 'AUTH_a', 'container': 'c', 'protocol': 'swift',
                'aws_bucket': 'rc',
                'aws_endpoint': server.base_url + '/auth/v1.0',
                'aws_identity': 'remote:tester', 'aws_secret': 'testing',
                'merge_namespaces': True}
        conf.update(profile)
        self.rc = 'rc-c' if conf['container'] == '/*' else 'rc'
        path = write_mapping(tmp_path / 'm.json', [conf])
        self.logger = FakeLogger()
        remotes = Remotes(S3Remote(), SwiftRemote(fail_fast=FailFast(0, 0),
                                                  logger=self.logger))
        self.shunt = CloudShuntMiddleware(
            self.local_inner, {'conf_file': path}, logger=self.logger,
            remote=remotes)
        self.app = cluster_top(self.shunt)

    def call(self, path, method='GET', headers=None):
        req = Request.blank(path, method=method, headers=headers or {})
        return req.get_response(self.app)

    def both(self, name, method='GET', headers=None, query=''):
        return (self.call('/v1/AUTH_a/c/%s%s' % (name, query), method,
                          headers),
                self.call('/v1/AUTH_a/ctl/%s%s' % (name, query), method,
                          headers))

    def slo(self, name='slo', ours=True, meta=None):
        headers = {'Content-Type': 'video/x-test',
                   'X-Object-Meta-Color': 'blue'}
        headers.update(meta or {})
        make_slo(self.local_inner, '/v1/AUTH_a/ctl', name, 'segs',
                 name + '/', headers)
        if ours:
            headers['X-Object-Meta-Swift-Timestamp'] = TS.internal
            make_slo(self.remote_inner, '/v1/AUTH_remote/' + self.rc, name,
                     self.rc + '_segments', 'segs/%s/' % name, headers)
        else:
            make_slo(self.remote_inner, '/v1/AUTH_remote/' + self.rc, name,
                     self.rc + '_segments', name + '/', headers)

    def dlo(self, name='dlo', ours=True):
        headers = {'Content-Type': 'video/x-dlo',
                   'X-Object-Meta-Color': 'blue'}
        make_dlo(self.local_inner, '/v1/AUTH_a/ctl', name, 'segs',
                 name + '/', headers)
        if ours:
            headers['X-Object-Meta-Swift-Timestamp'] = TS.internal
            prefix = 'segs/%s/' % name
        else:
            prefix = name + '/'
        make_dlo(self.remote_inner, '/v1/AUTH_remote/' + self.rc, name,
                 self.rc + '_segments', prefix, headers)


def cluster_top(app):
    from swift.common.middleware.gatekeeper import GatekeeperMiddleware
    return GatekeeperMiddleware(app, {})


class Server:
    def __init__(self):
        self.store = Store()
        outer = cluster(self.store)
        self.inner = outer.app
        self.front = AuthFront(outer)
        self.base_url = self.front.base_url = serve(self.front)

    def reset(self):
        self.store.objects.clear()
        self.store.containers.clear()
        self.store.calls.clear()
        self.store.stalls.clear()
        self.front.seen.clear()
        for name in ('rc', 'rc_segments', 'rc-c', 'rc-c_segments'):
            self.store.make_container('/v1/AUTH_remote/' + name)


@pytest.fixture(scope='module')
def server():
    return Server()


@pytest.fixture
def world(tmp_path, server):
    server.reset()
    native.manifests.clear()
    native._log_once._seen.clear()
    return World(tmp_path, server)


VOLATILE = {'content-location'}


def assert_same(shunted, local, volatile=VOLATILE):
    assert shunted.status == local.status
    s_body, l_body = shunted.body, local.body
    s_headers = {k.lower(): v for k, v in shunted.headers.items()}
    l_headers = {k.lower(): v for k, v in local.headers.items()}
    ctype = l_headers.get('content-type', '')
    if 'boundary=' in ctype:
        s_b = s_headers.pop('content-type').split('boundary=')[1]
        l_b = l_headers.pop('content-type').split('boundary=')[1]
        s_body = s_body.replace(s_b.encode(), b'B')
        l_body = l_body.replace(l_b.encode(), b'B')
    assert s_body == l_body
    for name in volatile:
        s_headers.pop(name, None)
        l_headers.pop(name, None)
    assert s_headers == l_headers


# -- SLOs ---------------------------------------------------------------------

def test_slo_get_and_head_as_swift(world):
    world.slo()
    shunted, local = world.both('slo')
    assert local.status_int == 200 and local.body == BODY
    assert_same(shunted, local)
    assert shunted.headers['X-Static-Large-Object'] == 'True'
    assert shunted.headers['Etag'].startswith('"')
    assert shunted.headers['Content-Location'] == \
        world.server.base_url + '/auth/v1.0/rc/slo'
    assert_same(*world.both('slo', 'HEAD'))


@pytest.mark.parametrize('rng', [
    'bytes=0-9', 'bytes=995-1005', 'bytes=-7', 'bytes=2000-',
    'bytes=0-0,2500-2600', 'bytes=5-1,3-4', 'bytes=9999-',
])
def test_slo_ranges_as_swift(world, rng):
    world.slo()
    assert_same(*world.both('slo', headers={'Range': rng}))


@pytest.mark.parametrize('which', ['slo', 'manifest', 'other', 'star'])
@pytest.mark.parametrize('header', ['If-Match', 'If-None-Match'])
def test_slo_conditionals_as_swift(world, which, header):
    world.slo()
    etag = world.call('/v1/AUTH_a/ctl/slo', 'HEAD').headers['Etag']
    value = {'slo': etag, 'manifest': world.call(
        '/v1/AUTH_a/ctl/slo', 'HEAD').headers['X-Manifest-Etag'],
        'other': '"nope"', 'star': '*'}[which]
    assert_same(*world.both('slo', headers={header: value}))
    assert_same(*world.both('slo', 'HEAD', headers={header: value}))


@pytest.mark.parametrize('query', ['?multipart-manifest=get',
                                   '?multipart-manifest=get&format=raw'])
def test_slo_manifest_get_with_local_names(world, query):
    world.slo()
    shunted, local = world.both('slo', query=query)
    assert b'rc_segments' not in shunted.body
    assert_same(shunted, local)
    head = world.call('/v1/AUTH_a/c/slo' + query, 'HEAD')
    if 'raw' in query:
        # Swift 2.38's own slo answers 500 (it parses the HEAD's empty
        # body); the shunt answers the GET's headers
        assert world.call('/v1/AUTH_a/ctl/slo' + query,
                          'HEAD').status_int == 500
        assert head.status_int == 200 and head.body == b''
        assert dict(head.headers) == dict(shunted.headers)
    else:
        assert_same(head, world.call('/v1/AUTH_a/ctl/slo' + query, 'HEAD'))


def test_foreign_slo_manifest_keeps_the_remote_names(world):
    world.slo(ours=False)
    resp = world.call('/v1/AUTH_a/c/slo?multipart-manifest=get')
    assert resp.status_int == 200
    names = [e['name'] for e in json.loads(resp.body)]
    assert names == ['/rc_segments/slo/%02d' % i for i in range(3)]
    # still served as the SLO it is
    assert world.call('/v1/AUTH_a/c/slo').body == BODY


@pytest.mark.parametrize('query', ['?part-number=1', '?part-number=2',
                                   '?part-number=3', '?part-number=4',
                                   '?part-number=0', '?part-number=x'])
@pytest.mark.parametrize('method', ['GET', 'HEAD'])
def test_slo_part_number_as_swift(world, query, method):
    world.slo()
    assert_same(*world.both('slo', method, query=query))


def test_slo_bookkeeping_never_shows(world):
    world.slo(meta={'X-Object-Meta-Swift-Source-Dlo-Etag': 'x',
                    'X-Object-Meta-Combined-Etag': 'y'})
    resp = world.call('/v1/AUTH_a/c/slo', 'HEAD')
    assert resp.status_int == 200
    metas = {k.lower() for k in resp.headers
             if k.lower().startswith('x-object-meta-')}
    assert metas == {'x-object-meta-color'}


def test_slo_restored_as_an_slo(tmp_path, server):
    server.reset()
    native.manifests.clear()
    world = World(tmp_path, server, restore_object=True)
    world.slo()
    resp = world.call('/v1/AUTH_a/c/slo')
    assert resp.body == BODY
    _wait_restored(world.local, '/v1/AUTH_a/c/slo')
    # the daemon's SLO goes back under its local segment names
    assert set(p for p in world.local.objects if '/segs/slo/' in p) == {
        '/v1/AUTH_a/segs/slo/%02d' % i for i in range(3)}
    local = world.call('/v1/AUTH_a/c/slo?multipart-manifest=get')
    oracle = world.call('/v1/AUTH_a/ctl/slo?multipart-manifest=get')
    assert [e['name'] for e in json.loads(local.body)] == \
        [e['name'] for e in json.loads(oracle.body)]
    assert world.call('/v1/AUTH_a/c/slo').body == BODY


def test_foreign_slo_restored_beside_the_object(tmp_path, server):
    server.reset()
    native.manifests.clear()
    world = World(tmp_path, server, restore_object=True)
    world.slo(ours=False)
    assert world.call('/v1/AUTH_a/c/slo').body == BODY
    _wait_restored(world.local, '/v1/AUTH_a/c/slo')
    segs = sorted(p for p in world.local.objects
                  if p.startswith('/v1/AUTH_a/c_segments/slo/restore/'))
    assert len(segs) == 3
    # nothing written into a local container named after the remote's
    assert not [p for p in world.local.objects if 'rc_segments' in p]
    resp = world.call('/v1/AUTH_a/c/slo')
    assert resp.body == BODY
    assert resp.headers['Etag'] == world.call(
        '/v1/AUTH_a/ctl/slo', 'HEAD').headers['Etag']


def _wait_restored(store, path, timeout=5.0):
    import eventlet
    with eventlet.Timeout(timeout):
        while path not in store.objects:
            eventlet.sleep(0.01)


# -- DLOs ---------------------------------------------------------------------

DLO_VOLATILE = VOLATILE


def test_dlo_get_and_head_as_swift(world):
    world.dlo()
    shunted, local = world.both('dlo')
    assert local.body == BODY
    assert_same(shunted, local)
    assert shunted.headers['X-Object-Manifest'] == 'segs/dlo/'
    assert_same(*world.both('dlo', 'HEAD'))


@pytest.mark.parametrize('rng', ['bytes=0-9', 'bytes=995-1005', 'bytes=-7',
                                 'bytes=0-0,2500-2600', 'bytes=9999-'])
def test_dlo_ranges_as_swift(world, rng):
    world.dlo()
    assert_same(*world.both('dlo', headers={'Range': rng}))


@pytest.mark.parametrize('query', ['?multipart-manifest=get'])
@pytest.mark.parametrize('method', ['GET', 'HEAD'])
def test_dlo_manifest_get_as_swift(world, query, method):
    world.dlo()
    assert_same(*world.both('dlo', method, query=query))


def test_foreign_dlo_keeps_the_remote_value(world):
    world.dlo(ours=False)
    resp = world.call('/v1/AUTH_a/c/dlo')
    assert resp.body == BODY
    assert resp.headers['X-Object-Manifest'] == 'rc_segments/dlo/'


def test_dlo_is_not_restored(tmp_path, server):
    server.reset()
    world = World(tmp_path, server, restore_object=True)
    world.dlo()
    assert world.call('/v1/AUTH_a/c/dlo').body == BODY
    assert '/v1/AUTH_a/c/dlo' not in world.local.objects


# -- plain objects, listings, writes --------------------------------------

def test_plain_object_and_its_timestamp(world):
    put(world.remote_inner, '/v1/AUTH_remote/rc/plain', b'hello',
        {'X-Timestamp': TS.internal, 'X-Object-Meta-Color': 'blue',
         'Content-Type': 'text/x-test'})
    resp = world.call('/v1/AUTH_a/c/plain')
    assert resp.status_int == 200 and resp.body == b'hello'
    assert resp.headers['Etag'] == hashlib.md5(b'hello').hexdigest()
    # the remote clock's time, shown (never trusted to order deletes)
    assert resp.headers['X-Timestamp'] == TS.normal
    assert resp.headers['X-Object-Meta-Color'] == 'blue'
    # a plain object's manifest GET is the object, as in Swift
    assert world.call('/v1/AUTH_a/c/plain?multipart-manifest=get').body \
        == b'hello'


def test_listing_rows(world):
    world.slo()
    put(world.remote_inner, '/v1/AUTH_remote/rc/plain', b'hello',
        {'X-Timestamp': TS.internal, 'Content-Type': 'text/x-test'})
    put(world.remote_inner, '/v1/AUTH_remote/rc/.manifests/x', b'x',
        {'X-Timestamp': TS.internal})
    resp = world.call('/v1/AUTH_a/c?format=json')
    assert resp.status_int == 200
    rows = {r['name']: r for r in json.loads(resp.body)}
    # a remote Swift has no reserved names
    assert set(rows) == {'.manifests/x', 'plain', 'slo'}
    location = world.server.base_url + '/auth/v1.0;rc'
    assert rows['plain'] == {
        'bytes': 5, 'hash': hashlib.md5(b'hello').hexdigest(),
        'name': 'plain', 'content_type': 'text/x-test',
        'last_modified': TS.isoformat, 'content_location': [location]}
    oracle = {r['name']: r for r in json.loads(world.call(
        '/v1/AUTH_a/ctl?format=json').body)}
    # as the local SLO's row, but for its hash: the MD5 of the manifest
    # the remote cluster stores (with its own segment names)
    assert dict(rows['slo'], content_location=None, hash=None) == dict(
        oracle['slo'], content_location=None, hash=None)
    # no user name anywhere
    assert b'tester' not in resp.body


def test_post_keeps_bookkeeping(world):
    world.slo()
    resp = world.call('/v1/AUTH_a/c/slo', 'POST',
                      {'X-Object-Meta-Shape': 'round',
                       'X-Object-Meta-Swift-Timestamp': '1'})
    assert resp.status_int == 202
    meta, _ = world.remote.objects['/v1/AUTH_remote/rc/slo']
    assert meta['X-Object-Meta-Shape'] == 'round'
    assert 'X-Object-Meta-Color' not in meta
    assert meta['X-Object-Meta-Swift-Timestamp'] == TS.internal
    head = world.call('/v1/AUTH_a/c/slo', 'HEAD')
    assert head.headers['X-Object-Meta-Shape'] == 'round'
    assert head.headers['X-Static-Large-Object'] == 'True'


@pytest.mark.parametrize('query,segments_left', [
    ('', 3), ('?multipart-manifest=delete', 0)])
def test_delete_propagated(tmp_path, server, query, segments_left):
    server.reset()
    world = World(tmp_path, server, propagate_delete=True)
    world.slo()
    resp = world.call('/v1/AUTH_a/c/slo' + query, 'DELETE')
    assert resp.status_int in (200, 204)
    assert '/v1/AUTH_remote/rc/slo' not in world.remote.objects
    left = [p for p in world.remote.objects if '/rc_segments/' in p]
    assert len(left) == segments_left
    assert world.call('/v1/AUTH_a/c/slo').status_int == 404


def test_delete_hides_without_propagation(world):
    put(world.remote_inner, '/v1/AUTH_remote/rc/plain', b'hello',
        {'X-Timestamp': TS.internal,
         'X-Object-Meta-Swift-Timestamp': TS.internal})
    assert world.call('/v1/AUTH_a/c/plain', 'DELETE').status_int == 204
    assert world.call('/v1/AUTH_a/c/plain').status_int == 404
    assert '/v1/AUTH_remote/rc/plain' in world.remote.objects


def test_restore_plan_skips_an_unusable_remote_slo():
    class Ctx:
        profile = type('P', (), {'restore_object': True,
                                 'describe': lambda self: 'p'})()
        logger = FakeLogger()
        shunt = None
        app = None
    req = Request.blank('/v1/a/c/o')
    got = restore.plan(Ctx(), req, {'X-Timestamp': TS.normal},
                       {'etag': 'd' * 32, 'x-swift-static-large-object':
                        'True'}, 10)
    assert got is None
    assert 'could not be used' in Ctx.logger.text()


@pytest.mark.parametrize('which', ['dlo', 'manifest', 'other', 'star'])
@pytest.mark.parametrize('header', ['If-Match', 'If-None-Match'])
@pytest.mark.parametrize('method', ['GET', 'HEAD'])
def test_dlo_conditionals_as_swift(world, which, header, method):
    world.dlo()
    value = {'dlo': world.call('/v1/AUTH_a/ctl/dlo', 'HEAD').headers['Etag'],
             'manifest': hashlib.md5(b'').hexdigest(),
             'other': '"nope"', 'star': '*'}[which]
    assert_same(*world.both('dlo', method, headers={header: value}))


# -- COPY through Swift's copy middleware (left of the shunt) -------------

@pytest.fixture
def copy_world(world):
    from swift.common.middleware.copy import ServerSideCopyMiddleware
    from swift.common.middleware.gatekeeper import GatekeeperMiddleware
    world.app = GatekeeperMiddleware(
        ServerSideCopyMiddleware(world.shunt, {}), {})
    return world


@pytest.mark.parametrize('kind', ['slo', 'dlo'])
def test_copy_makes_a_plain_local_object(copy_world, kind):
    world = copy_world
    getattr(world, kind)()
    resp = world.call('/v1/AUTH_a/c/%s' % kind, 'COPY',
                      {'Destination': 'ctl/copied'})
    assert resp.status_int == 201, resp.body
    copied = world.call('/v1/AUTH_a/ctl/copied')
    assert copied.body == BODY
    assert copied.headers['Content-Type'] == 'video/x-%s' % (
        'test' if kind == 'slo' else 'dlo')
    assert copied.headers['X-Object-Meta-Color'] == 'blue'
    assert 'X-Object-Meta-Swift-Timestamp' not in copied.headers


def test_copy_of_the_slo_manifest(copy_world):
    world = copy_world
    world.slo()
    resp = world.call('/v1/AUTH_a/c/slo?multipart-manifest=get', 'COPY',
                      {'Destination': 'ctl/again'})
    assert resp.status_int == 201, resp.body
    again = world.call('/v1/AUTH_a/ctl/again')
    # a local SLO of the local segments, as the daemon's manifest names
    assert again.headers['X-Static-Large-Object'] == 'True'
    assert again.headers['Etag'] == world.call(
        '/v1/AUTH_a/ctl/slo', 'HEAD').headers['Etag']
    assert again.body == BODY


def test_copy_of_the_dlo_manifest(copy_world):
    world = copy_world
    world.dlo()
    resp = world.call('/v1/AUTH_a/c/dlo?multipart-manifest=get', 'COPY',
                      {'Destination': 'ctl/again'})
    assert resp.status_int == 201, resp.body
    assert_same(world.call('/v1/AUTH_a/ctl/again'),
                world.call('/v1/AUTH_a/ctl/dlo'),
                volatile=VOLATILE | {'x-timestamp', 'last-modified'})


@pytest.mark.skipif(
    not hasattr(__import__('shunt.core.swift_http', fromlist=['x'])
                .StreamingBody, 'read1'),
    reason='the remote Swift body has no read1 (requested of H1)')
def test_a_slow_remote_body_starts_at_once(world):
    """The first bytes go out as they arrive, not once a full read is
    there: a remote large object its cluster sends slowly (its dlo's rate
    limit) starts at once, and a remote failure later breaks the client's
    response instead of happening before it."""
    import time
    put(world.remote_inner, '/v1/AUTH_remote/rc/slow', b'x' * 5000,
        {'X-Timestamp': TS.internal})
    world.remote.stalls['/v1/AUTH_remote/rc/slow'] = 3.0
    env = Request.blank('/v1/AUTH_a/c/slow').environ
    started = time.time()
    body = world.app(env, lambda *args: None)
    chunks = iter(body)
    try:
        first = next(chunks)
        assert first and time.time() - started < 2.0
        assert first + b''.join(chunks) == b'x' * 5000
    finally:
        body.close()


def test_a_remote_body_flows_on_as_it_arrives(world):
    """Past the first read too, the bytes that have arrived go out to the
    client at once: a remote that pauses mid-body (a slow link, its
    cluster's rate limit) does not hold back what it sent before the
    pause until a whole network chunk is there."""
    import time
    body = bytes(range(256)) * 1200
    put(world.remote_inner, '/v1/AUTH_remote/rc/pausing', body,
        {'X-Timestamp': TS.internal})
    world.remote.stalls['/v1/AUTH_remote/rc/pausing'] = (3.0, 200000)
    env = Request.blank('/v1/AUTH_a/c/pausing').environ
    started = time.time()
    resp = world.app(env, lambda *args: None)
    chunks, got = iter(resp), b''
    try:
        while len(got) < 200000:
            got += next(chunks)
        assert time.time() - started < 2.0
        assert got + b''.join(chunks) == body
    finally:
        resp.close()


def test_all_containers_profile(tmp_path, server):
    """A ``/*`` profile: the remote container is the prefix plus the local
    container, its segments in ``<that>_segments``."""
    server.reset()
    native.manifests.clear()
    world = World(tmp_path, server, container='/*', aws_bucket='rc-')
    world.slo()
    world.dlo()
    assert_same(*world.both('slo'))
    assert_same(*world.both('slo', query='?multipart-manifest=get'))
    shunted, local = world.both('dlo')
    assert_same(shunted, local)
    assert shunted.headers['X-Object-Manifest'] == 'segs/dlo/'
    rows = json.loads(world.call('/v1/AUTH_a/c?format=json').body)
    assert [r['name'] for r in rows] == ['dlo', 'slo']
    assert rows[0]['content_location'] == [
        world.server.base_url + '/auth/v1.0;rc-c']


def test_delete_of_a_local_and_remote_slo(tmp_path, server):
    """A name both local and archived: Swift deletes the local one, and
    the remote SLO goes with its segments for ?multipart-manifest=delete
    (the HEAD made for the tombstone says it is an SLO)."""
    server.reset()
    native.manifests.clear()
    world = World(tmp_path, server, propagate_delete=True)
    world.slo()
    put(world.local_inner, '/v1/AUTH_a/c/slo', b'local')
    resp = world.call('/v1/AUTH_a/c/slo?multipart-manifest=delete',
                      'DELETE')
    assert resp.status_int in (200, 204)
    assert not [p for p in world.remote.objects if '/rc' in p]


REMOTE_NAMES = ['a', 'b/1', 'b/2', 'd', 'e/x', 'g/h/i']
LOCAL_NAMES = ['b/3', 'c', 'd', 'e/y', 'f', 'g/']


@pytest.fixture
def listed(world):
    for name in REMOTE_NAMES:
        put(world.remote_inner, '/v1/AUTH_remote/rc/' + name, b'r',
            {'X-Timestamp': TS.internal, 'Content-Type': 'text/x-r'})
        put(world.local_inner, '/v1/AUTH_a/ctl/' + name, b'r',
            {'X-Timestamp': TS.internal, 'Content-Type': 'text/x-r'})
    for name in LOCAL_NAMES:
        for container in ('c', 'ctl'):
            put(world.local_inner, '/v1/AUTH_a/%s/%s' % (container, name),
                b'local', {'X-Timestamp': TS.internal})
    return world


@pytest.mark.parametrize('query', [
    '', 'reverse=on', 'delimiter=/', 'delimiter=/&reverse=on', 'limit=2',
    'limit=3&reverse=on', 'marker=b/1', 'marker=b/&delimiter=/',
    'end_marker=e', 'end_marker=b/2&reverse=on', 'prefix=b/',
    'prefix=g/&delimiter=/', 'marker=e&reverse=on',
    'limit=3&reverse=on&delimiter=/', 'marker=d&end_marker=g&reverse=on',
    'limit=1&marker=a', 'prefix=z',
])
def test_listing_is_swifts_listing_of_the_union(listed, query):
    world = listed
    spliced = world.call('/v1/AUTH_a/c?format=json&' + query)
    oracle = world.call('/v1/AUTH_a/ctl?format=json&' + query)
    assert spliced.status_int == oracle.status_int == 200
    rows = json.loads(spliced.body)
    for row in rows:
        row.pop('content_location', None)
    assert rows == json.loads(oracle.body)


def test_reverse_listing_reads_one_page(listed):
    world = listed
    world.server.front.seen.clear()
    resp = world.call('/v1/AUTH_a/c?format=json&reverse=on&limit=2')
    assert [r['name'] for r in json.loads(resp.body)] == ['g/h/i', 'g/']
    listings = [s for s in world.server.front.seen if s[1].endswith('/rc')]
    assert len(listings) == 1
    assert 'reverse=' in listings[0][2] and 'limit=2' in listings[0][2]


def test_user_metadata_named_like_s3_flags_is_not_a_trigger(world):
    """On a remote Swift, metadata a client named like 1space's S3 flags
    is neither an SLO sidecar nor a DLO manifest: a plain object."""
    put(world.remote_inner, '/v1/AUTH_remote/rc/odd', b'odd body',
        {'X-Timestamp': TS.internal,
         'X-Object-Meta-X-Static-Large-Object': 'True',
         'X-Object-Meta-X-Object-Manifest': 'segs/odd/'})
    resp = world.call('/v1/AUTH_a/c/odd')
    assert resp.status_int == 200 and resp.body == b'odd body'
    assert 'X-Static-Large-Object' not in resp.headers
    assert 'X-Object-Manifest' not in resp.headers
    assert not [c for c in world.remote.calls if 'manifests' in c[1]]


def test_plain_object_restored(tmp_path, server):
    server.reset()
    world = World(tmp_path, server, restore_object=True)
    put(world.remote_inner, '/v1/AUTH_remote/rc/plain', b'hello',
        {'X-Timestamp': TS.internal, 'Content-Type': 'text/x-test',
         'X-Object-Meta-Color': 'blue',
         'X-Object-Meta-Swift-Timestamp': TS.internal})
    assert world.call('/v1/AUTH_a/c/plain').body == b'hello'
    _wait_restored(world.local, '/v1/AUTH_a/c/plain')
    meta, body = world.local.objects['/v1/AUTH_a/c/plain']
    assert body == b'hello'
    assert meta['Content-Type'] == 'text/x-test'
    assert meta['X-Object-Meta-Color'] == 'blue'
    assert meta['X-Timestamp'] == TS.internal
    assert 'X-Object-Meta-Swift-Timestamp' not in meta


def test_unicode_names_and_metadata(world):
    """An SLO whose name needs quoting (``%``, ``?``, ``#``, non-ASCII),
    with non-ASCII segment names and a non-ASCII metadata value."""
    name = 'sl\u00f6 %?#'
    meta = {'Content-Type': 'video/x-test',
            'X-Object-Meta-Cafe': '\u00e9t\u00e9'.encode().decode('latin-1')}

    def make(app, account, container, seg_container, prefix, headers):
        entries = []
        for index, data in enumerate(SEGMENTS):
            seg = '/%s/%s\u00e9%02d' % (seg_container, prefix, index)
            put(app, '/v1/%s%s' % (account, quote(seg)), data,
                {'X-Timestamp': SEG_TS.internal})
            entries.append({'path': seg, 'size_bytes': len(data),
                            'etag': hashlib.md5(data).hexdigest()})
        put(app, '/v1/%s/%s/%s' % (account, container, quote(name)),
            json.dumps(entries).encode(),
            dict(headers, **{'X-Timestamp': TS.internal}),
            '?multipart-manifest=put')
    make(world.local_inner, 'AUTH_a', 'ctl', 'segs', name + '/', meta)
    meta['X-Object-Meta-Swift-Timestamp'] = TS.internal
    make(world.remote_inner, 'AUTH_remote', 'rc', 'rc_segments',
         'segs/%s/' % name, meta)
    for query in ('', '?multipart-manifest=get',
                  '?multipart-manifest=get&format=raw'):
        shunted, local = world.both(quote(name), query=query)
        assert_same(shunted, local)
    assert shunted.status_int == 200
    assert_same(*world.both(quote(name), 'HEAD'))
    assert world.call('/v1/AUTH_a/c/' + quote(name), 'HEAD').headers[
        'X-Object-Meta-Cafe'] == '\u00e9t\u00e9'.encode().decode('latin-1')


def quote(name):
    return urllib.parse.quote(name.encode('utf-8'))


def test_dlo_answered_without_a_length(world, monkeypatch):
    """Swift's dlo answers a DLO of 10,000 segments or more without
    ``Content-Length`` and ``Etag``: so does the shunt, streaming the
    whole body (the remote's answer stripped of them stands in for one)."""
    world.dlo()
    swift = world.shunt.remote.swift

    def unsized(call):
        def wrapped(*args, **kwargs):
            resp = call(*args, **kwargs)
            raw = resp['ResponseMetadata']['HTTPHeaders']
            for name in ('content-length', 'etag', 'x-swift-etag-quoted'):
                raw.pop(name, None)
            return resp
        return wrapped
    monkeypatch.setattr(swift, 'get_object', unsized(swift.get_object))
    monkeypatch.setattr(swift, 'head_object', unsized(swift.head_object))
    for headers in ({}, {'Range': 'bytes=0-9'}):
        resp = world.call('/v1/AUTH_a/c/dlo', headers=headers)
        assert resp.status_int == 200 and resp.body == BODY
        assert 'Etag' not in resp.headers
        assert resp.headers['X-Object-Manifest'] == 'segs/dlo/'
    head = world.call('/v1/AUTH_a/c/dlo', 'HEAD')
    assert head.status_int == 200 and 'Etag' not in head.headers
    manifest = world.call('/v1/AUTH_a/c/dlo?multipart-manifest=get')
    assert manifest.body == b'' and manifest.headers['Etag'] == \
        hashlib.md5(b'').hexdigest()


def test_unusable_remote_manifest(world, monkeypatch):
    """A remote SLO whose manifest does not describe it (here: made to
    look so) is still served whole, quoted Etag and all, and its
    ``?multipart-manifest=get`` is the remote cluster's own answer."""
    def disagree(manifest, size, etag):
        raise native.ManifestError('made to disagree')
    monkeypatch.setattr(native, 'checked', disagree)
    world.slo()
    resp = world.call('/v1/AUTH_a/c/slo')
    assert resp.body == BODY
    assert resp.headers['X-Static-Large-Object'] == 'True'
    assert resp.headers['Etag'] == world.call(
        '/v1/AUTH_a/ctl/slo', 'HEAD').headers['Etag']
    assert 'made to disagree' in world.logger.text('warning')
    manifest = world.call('/v1/AUTH_a/c/slo?multipart-manifest=get')
    assert manifest.status_int == 200
    assert manifest.headers['X-Static-Large-Object'] == 'True'
    assert [e['name'] for e in json.loads(manifest.body)] == [
        '/rc_segments/segs/slo/%02d' % i for i in range(3)]
    raw = world.call('/v1/AUTH_a/c/slo?multipart-manifest=get&format=raw')
    assert [e['path'] for e in json.loads(raw.body)] == [
        '/rc_segments/segs/slo/%02d' % i for i in range(3)]


def test_non_ascii_metadata_name(world):
    """A metadata name that is not ASCII (Swift's own title-casing of
    the WSGI string already changes its bytes: 'CafÃ©' -> 'Cafã©') is
    answered with the bytes the remote sent, never a 500."""
    put(world.remote_inner, '/v1/AUTH_remote/rc/named', b'x',
        {'X-Timestamp': TS.internal,
         'X-Object-Meta-Caf\u00e9'.encode().decode('latin-1'): 'v'})
    resp = world.call('/v1/AUTH_a/c/named', 'HEAD')
    assert resp.status_int == 200
    assert resp.headers['X-Object-Meta-Caf\u00e3\u00a9'] == 'v'
    assert 'Last-Modified' in resp.headers
