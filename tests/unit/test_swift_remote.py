"""SwiftRemote against a small Swift served over real HTTP on loopback
(tests/unit/fake_swift.py): auth and token renewal, connection reuse,
timeouts, failures, header and listing translation, the daemon's calls."""

import io
import logging
import socket
import threading
import time

import pytest
from swift.common.swob import str_to_wsgi

from shunt.core import headers as shunt_headers
from shunt.core import swift_shapes
from shunt.core.config import parse_profile
from shunt.core.guard import FailFast
from shunt.core.remote import RemoteError
from shunt.core.stores import Remotes
from shunt.core.swift_remote import (
    BYPASS_HEADER,
    SwiftRemote,
    account_storage_url,
    boto_headers,
    remote_container,
    request_path,
    segments_container,
    status_kind,
)
from tests.unit.fake_swift import FakeSwift, serve
from tests.unit.helpers import FakeLogger

KEY = 'testing'


@pytest.fixture(scope='module')
def server():
    fake = FakeSwift()
    fake.base_url = serve(fake)
    return fake


@pytest.fixture
def fake(server):
    server.containers.clear()
    server.requests.clear()
    server.delays.clear()
    server.body_stall.clear()
    server.fail_next.clear()
    server.storage_host = None
    server.expire_tokens()
    server.containers[('AUTH_remote', 'rc')] = {'headers': {},
                                                'objects': {}}
    return server


def make_profile(fake, **kw):
    raw = {'account': 'AUTH_a', 'container': 'c', 'aws_bucket': 'rc',
           'aws_identity': 'remote:tester', 'aws_secret': KEY,
           'protocol': 'swift', 'merge_namespaces': True,
           'aws_endpoint': fake.base_url + '/auth/v1.0'}
    raw.update(kw)
    return parse_profile(raw, 'm.json', 0)


@pytest.fixture
def logger():
    return FakeLogger()


@pytest.fixture
def remote(logger):
    remote = SwiftRemote(connect_timeout=1.0, read_timeout=1.0,
                         max_pool_connections=4, logger=logger)
    yield remote
    remote.close()


def shown_headers(raw):
    """What the shunt answers for these HTTPHeaders (names
    lower-cased)."""
    return {k.lower(): v for k, v in
            shunt_headers.swift_object_headers(raw).items()}


def storage_requests(fake):
    return [r for r in fake.requests if r.path.startswith('/v1/')]


# -- pure functions ------------------------------------------------------


def test_names(fake):
    profile = make_profile(fake)
    assert remote_container(profile) == 'rc'
    assert segments_container(profile) == 'rc_segments'
    every = make_profile(fake, container='/*', aws_bucket='arch-')
    with pytest.raises(ValueError):
        remote_container(every)
    looked_up = every.for_container('photos')
    assert remote_container(looked_up) == 'arch-photos'
    assert segments_container(looked_up) == 'arch-photos_segments'


def test_account_storage_url_and_paths():
    assert account_storage_url('https://h:8080/prefix/v1/AUTH_me',
                               'AUTH_é x') == \
        'https://h:8080/v1/AUTH_%C3%A9%20x'
    assert request_path('/v1/AUTH_a', 'c') == '/v1/AUTH_a/c'
    assert request_path('/v1/AUTH_a', 'c d', 'a/b ü?', {
        'multipart-manifest': 'get'}) == \
        '/v1/AUTH_a/c%20d/a/b%20%C3%BC%3F?multipart-manifest=get'


@pytest.mark.parametrize('status,kind', [
    (404, 'not_found'), (416, 'range'), (401, 'auth'), (403, 'auth'),
    (429, 'throttled'), (498, 'throttled'), (500, 'server'),
    (503, 'server'), (409, 'client'), (412, 'client')])
def test_status_kinds(status, kind):
    assert status_kind(status) == kind


# -- the boto3-shaped face ---------------------------------------------------


def test_head_translates_headers(fake, remote):
    fake.put('AUTH_remote', 'rc', 'o', b'hello world', {
        'Content-Type': 'text/plain', 'X-Object-Meta-Color': 'Blue',
        'Content-Disposition': 'attachment', 'X-Delete-At': '9999999999',
        'X-Object-Meta-Swift-Timestamp': '1700000000.00000'})
    head = remote.head_object(make_profile(fake), 'o')
    raw = head['ResponseMetadata']['HTTPHeaders']
    assert head['ResponseMetadata']['HTTPStatusCode'] == 200
    assert raw['content-type'] == 'text/plain'
    assert raw['etag'] == '5eb63bbbe01eeed093cb22bb8f5acdc3'
    assert head['ETag'] == '"5eb63bbbe01eeed093cb22bb8f5acdc3"'
    assert raw['content-length'] == '11' and head['ContentLength'] == 11
    assert raw['x-amz-meta-color'] == 'Blue'
    assert raw['content-disposition'] == 'attachment'
    assert raw['x-amz-meta-x-delete-at'] == '9999999999'
    assert raw['x-swift-remote-timestamp'] == \
        fake.containers[('AUTH_remote', 'rc')]['objects']['o'][
            'headers']['X-Timestamp']
    assert 'x-swift-static-large-object' not in raw
    assert 'x-swift-etag-quoted' not in raw
    assert 'x-trans-id' not in raw and 'date' not in raw
    # what the shunt shows for it
    shown = shown_headers(raw)
    assert shown['x-object-meta-color'] == 'Blue'
    assert shown['x-delete-at'] == '9999999999'
    assert shown['x-timestamp'] == '1700000000.00000'
    assert 'x-object-meta-swift-timestamp' not in shown


@pytest.mark.parametrize('value', [
    'plain', 'Mixed Case', 'ünï cödé', '50% off', '%41', '=?utf-8?q?x?=',
    'spaced  inside', 'tab\there', '€'])
def test_metadata_values_come_back_exactly(fake, remote, value):
    fake.put('AUTH_remote', 'rc', 'o', b'x',
             {'X-Object-Meta-K': str_to_wsgi(value)})
    raw = remote.head_object(make_profile(fake), 'o')[
        'ResponseMetadata']['HTTPHeaders']
    assert shunt_headers.decode_meta_value(raw['x-amz-meta-k']) == value
    assert shown_headers(raw)['x-object-meta-k'] == str_to_wsgi(value)


def test_metadata_bytes_that_are_not_utf8_come_back(fake, remote):
    fake.put('AUTH_remote', 'rc', 'o', b'x',
             {'X-Object-Meta-K': b'\xff\xfe'.decode('latin-1')})
    raw = remote.head_object(make_profile(fake), 'o')[
        'ResponseMetadata']['HTTPHeaders']
    shown = shown_headers(raw)
    assert shown['x-object-meta-k'].encode('latin-1') == b'\xff\xfe'


def test_large_object_headers(fake, remote):
    fake.put('AUTH_remote', 'rc', 'slo', b'[]', {
        'X-Static-Large-Object': 'True', 'Etag': '"abcdef"'})
    fake.put('AUTH_remote', 'rc', 'dlo', b'', {
        'X-Object-Manifest': 'rc_segments/dlo/'})
    profile = make_profile(fake)
    raw = remote.head_object(profile, 'slo')[
        'ResponseMetadata']['HTTPHeaders']
    assert raw['x-swift-static-large-object'] == 'True'
    assert raw['etag'] == 'abcdef'
    assert raw['x-swift-etag-quoted'] == '"abcdef"'
    assert 'x-amz-meta-x-static-large-object' not in raw
    raw = remote.head_object(profile, 'dlo')[
        'ResponseMetadata']['HTTPHeaders']
    assert raw['x-swift-object-manifest'] == 'rc_segments/dlo/'
    assert 'x-amz-meta-x-object-manifest' not in raw


def test_get_streams_whole_and_ranges(fake, remote):
    body = bytes(range(256)) * 1000
    fake.put('AUTH_remote', 'rc', 'big', body)
    profile = make_profile(fake)
    whole = remote.get_object(profile, 'big')
    assert whole['ResponseMetadata']['HTTPStatusCode'] == 200
    stream = whole['Body']
    first = stream.read(1000)
    assert first == body[:1000]
    assert first + b''.join(stream) == body
    stream.close()
    part = remote.get_object(profile, 'big', 'bytes=10-19')
    assert part['ResponseMetadata']['HTTPStatusCode'] == 206
    raw = part['ResponseMetadata']['HTTPHeaders']
    assert raw['content-range'] == 'bytes 10-19/256000'
    assert raw['content-length'] == '10'
    assert part['Body'].read() == body[10:20]
    tail = remote.get_object(profile, 'big', 'bytes=-5')
    assert tail['Body'].read() == body[-5:]
    with pytest.raises(RemoteError) as exc:
        remote.get_object(profile, 'big', 'bytes=300000-')
    assert (exc.value.kind, exc.value.status) == ('range', 416)
    with pytest.raises(RemoteError) as exc:
        remote.get_object(profile, 'missing')
    assert (exc.value.kind, exc.value.status) == ('not_found', 404)


def test_listing_with_every_parameter(fake, remote):
    for name in ('a', 'b/1', 'b/2', 'c', 'd/x', 'e'):
        fake.put('AUTH_remote', 'rc', name, name.encode())
    profile = make_profile(fake)
    page = remote.list_objects(profile, '')
    assert [i['Key'] for i in page['Contents']] == [
        'a', 'b/1', 'b/2', 'c', 'd/x', 'e']
    assert page['Contents'][0]['Size'] == 1
    assert page['Contents'][0]['ETag'] == \
        '"0cc175b9c0f1b6a831c399e269772661"'
    assert page['Contents'][0]['LastModified'].tzinfo is not None
    assert page['IsTruncated'] is False
    page = remote.list_objects(profile, '', delimiter='/')
    assert [i['Key'] for i in page['Contents']] == ['a', 'c', 'e']
    assert page['CommonPrefixes'] == [{'Prefix': 'b/'}, {'Prefix': 'd/'}]
    page = remote.list_objects(profile, 'b/', marker='b/1')
    assert [i['Key'] for i in page['Contents']] == ['b/2']
    page = remote.list_objects(profile, '', max_keys=2)
    assert page['IsTruncated'] is True and page['NextMarker'] == 'b/1'
    page = remote.list_objects(profile, '', end_marker='c', reverse=False)
    assert [i['Key'] for i in page['Contents']] == ['a', 'b/1', 'b/2']
    page = remote.list_objects(profile, '', reverse=True, max_keys=2)
    assert [i['Key'] for i in page['Contents']] == ['e', 'd/x']
    query = fake.requests[-1].query
    assert 'reverse=true' in query and 'limit=2' in query
    assert 'format=json' in query


def test_listing_rows_of_large_objects():
    page = swift_shapes.listing_page([{
        'name': 'slo', 'hash': 'abc', 'bytes': 5,
        'content_type': 'text/plain;swift_bytes=5',
        'slo_etag': '"def"',
        'last_modified': '2026-12-01T20:00:00.5'}], '', 10)
    (item,) = page['Contents']
    assert item['ContentType'] == 'text/plain'
    assert item['SloEtag'] == '"def"'
    assert item['LastModified'].isoformat() == \
        '2026-12-01T20:00:00.500000+00:00'


def test_boto_headers_of_a_native_answer(fake, remote):
    fake.put('AUTH_remote', 'rc', 'dlo', b'', {
        'X-Object-Manifest': 'rc_segments/p/', 'X-Object-Meta-A': 'b'})
    resp = remote.request(make_profile(fake), 'GET', 'rc', 'dlo',
                          query={'multipart-manifest': 'get'})
    raw = boto_headers(resp.headers)
    assert raw['x-swift-object-manifest'] == 'rc_segments/p/'
    assert raw['x-amz-meta-a'] == 'b'


def test_listing_of_a_missing_remote_container_is_empty(fake, remote):
    page = remote.list_objects(make_profile(fake, aws_bucket='nope'), '')
    assert page['Contents'] == [] and page['IsTruncated'] is False


def test_delete(fake, remote):
    fake.put('AUTH_remote', 'rc', 'o', b'x')
    profile = make_profile(fake)
    resp = remote.delete_object(profile, 'o')
    assert resp['ResponseMetadata']['HTTPStatusCode'] == 204
    assert 'o' not in fake.containers[('AUTH_remote', 'rc')]['objects']
    # already gone: not an error (as S3's DeleteObject)
    resp = remote.delete_object(profile, 'o')
    assert resp['ResponseMetadata']['HTTPStatusCode'] == 404


def test_copy_in_place_replaces_metadata_and_keeps_bookkeeping(
        fake, remote):
    fake.put('AUTH_remote', 'rc', 'dlo', b'', {
        'Content-Type': 'text/plain', 'X-Object-Manifest': 'rc_segments/p/',
        'X-Object-Meta-Old': 'gone',
        'X-Object-Meta-Swift-Timestamp': '1700000000.00000'})
    profile = make_profile(fake)
    head = remote.head_object(profile, 'dlo')
    raw = head['ResponseMetadata']['HTTPHeaders']
    # the POST says X-Object-Manifest again (the local value): the remote
    # DLO still names the copies of its segments
    metadata = shunt_headers.posted_metadata(raw, {
        'X-Object-Meta-New': str_to_wsgi('ünï'), 'X-Object-Manifest': 'p/'})
    metadata['x-delete-at'] = '9999999999'
    remote.copy_in_place(profile, 'dlo', head, metadata, 'text/x-new',
                         {'ContentDisposition': 'inline'})
    after = remote.head_object(profile, 'dlo')[
        'ResponseMetadata']['HTTPHeaders']
    assert after['content-type'] == 'text/x-new'
    assert after['x-swift-object-manifest'] == 'rc_segments/p/'
    assert 'x-amz-meta-old' not in after
    assert shunt_headers.decode_meta_value(after['x-amz-meta-new']) == 'ünï'
    assert after['x-amz-meta-swift-timestamp'] == '1700000000.00000'
    assert after['x-amz-meta-x-delete-at'] == '9999999999'
    assert after['content-disposition'] == 'inline'
    assert after['etag'] == raw['etag']
    # a POST without it makes the DLO a plain object, as Swift's does
    remote.copy_in_place(profile, 'dlo', head, shunt_headers.posted_metadata(
        after, {}), 'text/x-new')
    after = remote.head_object(profile, 'dlo')[
        'ResponseMetadata']['HTTPHeaders']
    assert 'x-swift-object-manifest' not in after
    assert after['x-amz-meta-swift-timestamp'] == '1700000000.00000'


def test_restore_archived_is_a_client_error(fake, remote):
    with pytest.raises(RemoteError) as exc:
        remote.restore_archived(make_profile(fake), 'o', 1, 'Standard')
    assert exc.value.kind == 'client'


# -- the daemon's face -------------------------------------------------------


def test_request_put_bodies_and_get(fake, remote):
    profile = make_profile(fake)
    resp = remote.request(profile, 'PUT', 'rc', 'bytes', body=b'abc',
                          headers={'X-Object-Meta-Swift-Timestamp': '1.0',
                                   'Content-Type': 'text/plain'})
    assert resp.status == 201 and resp.headers['etag'] == \
        '900150983cd24fb0d6963f7d28e17f72'
    remote.request(profile, 'PUT', 'rc', 'file', body=io.BytesIO(b'x' * 5),
                   headers={'Content-Length': '5'})
    remote.request(profile, 'PUT', 'rc', 'chunked',
                   body=iter([b'ab', b'', b'cd']))
    remote.request(profile, 'PUT', 'rc', 'iter-len',
                   body=iter([b'ab', b'cd']),
                   headers={'Content-Length': '4'})
    objects = fake.containers[('AUTH_remote', 'rc')]['objects']
    assert objects['bytes']['headers']['X-Object-Meta-Swift-Timestamp'] \
        == '1.0'
    assert objects['file']['body'] == b'xxxxx'
    assert objects['chunked']['body'] == b'abcd'
    assert objects['iter-len']['body'] == b'abcd'
    sent = {r.path.rsplit('/', 1)[1]: r.headers for r in fake.requests
            if r.method == 'PUT'}
    assert sent['chunked'].get('Transfer-Encoding') == 'chunked'
    for name, length in (('file', '5'), ('iter-len', '4')):
        assert sent[name]['Content-Length'] == length
        assert 'Transfer-Encoding' not in sent[name]
    resp = remote.request(profile, 'GET', 'rc', 'file')
    assert (resp.status, resp.body) == (200, b'xxxxx')
    resp = remote.request(profile, 'GET', 'rc', 'file', stream=True)
    assert b''.join(resp.body) == b'xxxxx'
    with pytest.raises(RemoteError) as exc:
        remote.request(profile, 'PUT', 'rc', 'bad', body=b'abc',
                       headers={'Etag': '0' * 32})
    assert (exc.value.kind, exc.value.status) == ('client', 422)


def test_ensure_container_creates_once_with_policy(fake, remote):
    profile = make_profile(fake, storage_policy='cold')
    remote.ensure_container(profile, 'rc_segments')
    remote.ensure_container(profile, 'rc_segments')
    remote.ensure_container(profile, 'rc')
    seen = [(r.method, r.path) for r in storage_requests(fake)]
    assert seen == [('HEAD', '/v1/AUTH_remote/rc_segments'),
                    ('PUT', '/v1/AUTH_remote/rc_segments'),
                    ('HEAD', '/v1/AUTH_remote/rc')]
    assert fake.containers[('AUTH_remote', 'rc_segments')]['headers'] == {
        'X-Storage-Policy': 'cold'}
    put = [r for r in fake.requests if r.method == 'PUT'][0]
    assert put.headers['X-Storage-Policy'] == 'cold'
    remote.forget_container(profile, 'rc_segments')
    remote.ensure_container(profile, 'rc_segments')
    assert len(storage_requests(fake)) == 4


# -- auth, tokens, connections ---------------------------------------------


def test_token_cached_and_renewed_once_on_401(fake, remote, logger):
    fake.put('AUTH_remote', 'rc', 'o', b'x')
    profile = make_profile(fake)
    for _ in range(3):
        remote.head_object(profile, 'o')
    assert len(fake.seen('GET')) == 1  # one auth
    fake.expire_tokens()
    assert remote.get_object(profile, 'o')['Body'].read() == b'x'
    auths = [r for r in fake.requests if r.path == '/auth/v1.0']
    assert len(auths) == 2
    assert [r.method for r in fake.requests[-3:]] == ['GET', 'GET', 'GET']
    assert ('increment', 'remote_swift.token_renewed') in logger.metrics


def test_streamed_body_is_not_replayed_after_401(fake, remote):
    profile = make_profile(fake)
    remote.request(profile, 'HEAD', 'rc')
    fake.expire_tokens()
    with pytest.raises(RemoteError) as exc:
        remote.request(profile, 'PUT', 'rc', 'o', body=iter([b'ab']))
    assert (exc.value.kind, exc.value.status) == ('auth', 401)
    # the next request authenticates afresh
    remote.request(profile, 'PUT', 'rc', 'o', body=iter([b'ab']))
    assert fake.containers[('AUTH_remote', 'rc')]['objects']['o'][
        'body'] == b'ab'


def test_persistent_401_and_403_are_auth(fake, remote):
    profile = make_profile(fake)
    fake.fail_next[:] = [401, 401]
    with pytest.raises(RemoteError) as exc:
        remote.request(profile, 'HEAD', 'rc')
    assert exc.value.kind == 'auth'
    fake.fail_next[:] = [403]
    with pytest.raises(RemoteError) as exc:
        remote.request(profile, 'HEAD', 'rc')
    assert (exc.value.kind, exc.value.status) == ('auth', 403)


def test_wrong_key_is_auth_without_the_key(fake, remote, logger):
    profile = make_profile(fake, aws_secret='not-the-key-42')
    with pytest.raises(RemoteError) as exc:
        remote.head_object(profile, 'o')
    assert exc.value.kind == 'auth'
    assert 'not-the-key-42' not in str(exc.value)
    assert 'remote:tester' in str(exc.value)
    assert 'not-the-key-42' not in logger.text()


def test_every_request_carries_bypass_and_trans_id(fake, logger):
    logger.txn_id = 'tx123-abc'
    remote = SwiftRemote(logger=logger)
    fake.put('AUTH_remote', 'rc', 'o', b'x')
    profile = make_profile(fake)
    remote.head_object(profile, 'o')
    remote.get_object(profile, 'o')['Body'].close()
    remote.list_objects(profile, '')
    remote.request(profile, 'PUT', 'rc', 'p', body=b'y')
    remote.delete_object(profile, 'p')
    seen = storage_requests(fake)
    assert len(seen) == 5
    for req in seen:
        assert req.headers[BYPASS_HEADER] == 'true'
        assert req.headers['X-Trans-Id-Extra'] == 'tx123-abc'
        assert req.headers['User-Agent'] == 'swift-cloud-shunt'
    remote.close()


def test_connections_are_reused(fake, remote):
    fake.put('AUTH_remote', 'rc', 'o', b'x' * 100000)
    profile = make_profile(fake)
    for _ in range(5):
        remote.head_object(profile, 'o')
        body = remote.get_object(profile, 'o')['Body']
        assert len(body.read()) == 100000
        remote.list_objects(profile, '')
    peers = {r.peer for r in storage_requests(fake)}
    assert len(peers) == 1, peers
    # a body closed before its end closes its socket; the next request
    # takes a new connection
    remote.get_object(profile, 'o')['Body'].close()
    remote.head_object(profile, 'o')
    assert len({r.peer for r in storage_requests(fake)}) == 2


def test_pool_holds_at_most_max_idle_connections(fake, remote):
    fake.put('AUTH_remote', 'rc', 'o', b'x')
    profile = make_profile(fake)
    bodies = [remote.get_object(profile, 'o')['Body'] for _ in range(6)]
    for body in bodies:
        assert body.read() == b'x'
        assert body.read() == b''
    assert [len(idle) for idle in remote._pools.values()] == [4]


def test_remote_account_rewrites_the_storage_url(fake, remote):
    fake.containers[('AUTH_other', 'rc')] = {'headers': {}, 'objects': {}}
    fake.put('AUTH_other', 'rc', 'o', b'other')
    profile = make_profile(fake, remote_account='AUTH_other')
    assert remote.get_object(profile, 'o')['Body'].read() == b'other'
    assert storage_requests(fake)[0].path == '/v1/AUTH_other/rc/o'


def test_keystone_options_go_to_get_auth(fake):
    calls = []

    def get_auth(url, user, key, **kwargs):
        calls.append((url, user, key, kwargs))
        return fake.base_url + '/v1/AUTH_remote', 'AUTH_tkfake'
    remote = SwiftRemote(get_auth=get_auth, connect_timeout=1,
                         read_timeout=3)
    v3 = make_profile(fake, auth_type='keystone_v3', project_name='p',
                      project_domain_name='pd', user_domain_name='ud',
                      aws_endpoint='http://ks.example.com:5000/v3')
    v2 = make_profile(fake, auth_type='keystone_v2', tenant_name='t',
                      aws_endpoint='http://ks.example.com:5000/v2.0')
    for profile in (v3, v2):
        # the fake never issued that token: 401, a renewal, 401 again
        with pytest.raises(RemoteError) as exc:
            remote.request(profile, 'HEAD', 'rc')
        assert exc.value.kind == 'auth'
    assert len(calls) == 4
    (_, user, key, kw3), (_, _, _, kw2) = calls[0], calls[2]
    assert (user, key) == ('remote:tester', KEY)
    assert kw3['auth_version'] == '3'
    assert kw3['os_options'] == {'project_name': 'p',
                                 'project_domain_name': 'pd',
                                 'user_domain_name': 'ud'}
    assert kw3['timeout'] == 3
    assert kw2['auth_version'] == '2.0' and kw2['tenant_name'] == 't'
    assert kw2['os_options'] == {'tenant_name': 't'}


@pytest.mark.parametrize('flavour', ['v3', 'v2'])
def test_keystone_against_a_fake_keystone(fake, remote, flavour):
    """Through swiftclient's Keystone path (python-keystoneclient, when
    installed): the token and storage URL of the catalog are used, a wrong
    password is kind auth without the password."""
    pytest.importorskip('keystoneclient')
    from tests.unit.fake_swift import KEYSTONE_V2, KEYSTONE_V3
    if flavour == 'v3':
        user, key, udom, project, pdom = KEYSTONE_V3
        options = dict(auth_type='keystone_v3', project_name=project,
                       project_domain_name=pdom, user_domain_name=udom,
                       aws_endpoint=fake.base_url + '/v3')
    else:
        pytest.importorskip('keystoneclient.v2_0')
        user, key, tenant = KEYSTONE_V2
        options = dict(auth_type='keystone_v2', tenant_name=tenant,
                       aws_endpoint=fake.base_url + '/v2.0')
    fake.put('AUTH_remote', 'rc', 'o', b'via keystone')
    profile = make_profile(fake, aws_identity=user, aws_secret=key,
                           **options)
    assert remote.get_object(profile, 'o')['Body'].read() == \
        b'via keystone'
    fake.expire_tokens()
    assert remote.head_object(profile, 'o')['ContentLength'] == 12
    auths = [r for r in fake.requests if r.method == 'POST']
    assert len(auths) == 2
    bad = make_profile(fake, aws_identity=user, aws_secret='Wr0ngPassw0rd',
                       **options)
    with pytest.raises(RemoteError) as exc:
        remote.head_object(bad, 'o')
    assert exc.value.kind == 'auth'
    assert 'Wr0ngPassw0rd' not in str(exc.value)


def test_keystone_without_keystoneclient_is_an_auth_error(
        fake, remote, monkeypatch):
    from swiftclient import client as swiftclient
    # as where python-keystoneclient is not installed
    monkeypatch.setattr(swiftclient, 'ksclient_v3', None)
    monkeypatch.setattr(swiftclient, 'ksclient_v2', None)
    profile = make_profile(fake, auth_type='keystone_v3', project_name='p',
                           project_domain_name='d', user_domain_name='d')
    with pytest.raises(RemoteError) as exc:
        remote.request(profile, 'HEAD', 'rc')
    assert exc.value.kind == 'auth'
    assert 'keystoneclient' in exc.value.message
    assert KEY not in exc.value.message


# -- failures ----------------------------------------------------------------


def _closed_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_connection_refused_is_connection(fake, remote):
    profile = make_profile(fake, aws_endpoint='http://127.0.0.1:%d/auth/v1.0'
                           % _closed_port())
    with pytest.raises(RemoteError) as exc:
        remote.head_object(profile, 'o')
    assert exc.value.kind == 'connection'
    fake.storage_host = 'http://127.0.0.1:%d' % _closed_port()
    with pytest.raises(RemoteError) as exc:
        remote.head_object(make_profile(fake), 'o')
    assert exc.value.kind == 'connection'


def test_slow_answers_are_timeouts(fake):
    remote = SwiftRemote(connect_timeout=1, read_timeout=0.2)
    fake.put('AUTH_remote', 'rc', 'slow', b'x')
    fake.put('AUTH_remote', 'rc', 'stall', b'abc')
    profile = make_profile(fake)
    fake.delays['/v1/AUTH_remote/rc/slow'] = 0.5
    with pytest.raises(RemoteError) as exc:
        remote.head_object(profile, 'slow')
    assert exc.value.kind == 'timeout'
    fake.body_stall['/v1/AUTH_remote/rc/stall'] = 0.5
    body = remote.get_object(profile, 'stall')['Body']
    with pytest.raises(RemoteError) as exc:
        while body.read(1):
            pass
    assert exc.value.kind == 'timeout'
    fake.delays['/auth/v1.0'] = 0.5
    remote = SwiftRemote(connect_timeout=1, read_timeout=0.2)
    with pytest.raises(RemoteError) as exc:
        remote.head_object(profile, 'o')
    assert exc.value.kind == 'timeout'


@pytest.mark.parametrize('status,kind', [
    (500, 'server'), (503, 'server'), (429, 'throttled'), (498, 'throttled')])
def test_error_statuses(fake, remote, status, kind):
    fake.put('AUTH_remote', 'rc', 'o', b'x')
    profile = make_profile(fake)
    remote.request(profile, 'HEAD', 'rc')
    fake.fail_next[:] = [status]
    with pytest.raises(RemoteError) as exc:
        remote.get_object(profile, 'o')
    assert (exc.value.kind, exc.value.status) == (kind, status)
    assert exc.value.is_outage
    # the connection is still good after an error answer
    assert remote.get_object(profile, 'o')['Body'].read() == b'x'
    assert len({r.peer for r in storage_requests(fake)}) == 1


def test_fail_fast(fake, logger):
    clock = [100.0]
    remote = SwiftRemote(connect_timeout=0.5, read_timeout=0.5,
                         fail_fast=FailFast(2, 30, clock=lambda: clock[0]),
                         logger=logger)
    port = _closed_port()
    profile = make_profile(fake, aws_endpoint='http://127.0.0.1:%d/auth'
                           % port)
    kinds = []
    for _ in range(4):
        with pytest.raises(RemoteError) as exc:
            remote.head_object(profile, 'o')
        kinds.append(exc.value.kind)
    assert kinds == ['connection', 'connection', 'unavailable',
                     'unavailable']
    assert ('increment', 'fail_fast.open') in logger.metrics
    assert ('increment', 'fail_fast.rejected') in logger.metrics
    assert '127.0.0.1:%d' % port in logger.text('error')
    # another identity is not refused
    fake.put('AUTH_remote', 'rc', 'o', b'x')
    assert remote.head_object(make_profile(fake), 'o')['ContentLength'] == 1
    # after the period one call probes again
    clock[0] += 31
    with pytest.raises(RemoteError) as exc:
        remote.head_object(profile, 'o')
    assert exc.value.kind == 'connection'


def test_no_secret_or_token_in_logs_or_errors(fake, logger, caplog):
    caplog.set_level(logging.DEBUG)
    remote = SwiftRemote(logger=logger)
    profile = make_profile(fake)
    fake.put('AUTH_remote', 'rc', 'o', b'x')
    remote.head_object(profile, 'o')
    token = next(iter(fake.tokens))
    errors = []
    for status in (500, 404, 401):
        fake.fail_next[:] = [status, status]
        try:
            remote.head_object(profile, 'o')
        except RemoteError as err:
            errors.append(str(err))
    bad = make_profile(fake, aws_secret='wr0ng-s3cret')
    try:
        remote.head_object(bad, 'o')
    except RemoteError as err:
        errors.append(str(err))
    assert len(errors) == 4
    text = '\n'.join(errors + [logger.text(), caplog.text,
                               repr(remote._auths)])
    for secret in (KEY, 'wr0ng-s3cret', token):
        assert secret not in text


def test_negative_cache_keys_tell_containers_of_a_swift_profile_apart(
        fake):
    from shunt.core.guard import miss_key
    every = make_profile(fake, container='/*', aws_bucket='arch-')
    assert miss_key(every.for_container('a'), 'o') != \
        miss_key(every.for_container('b'), 'o')
    s3 = parse_profile({'account': 'AUTH_a', 'container': 'c',
                        'aws_bucket': 'b', 'aws_identity': 'i',
                        'aws_secret': 's', 'merge_namespaces': True},
                       'm.json', 0)
    # unchanged for S3 (the key holds the container there)
    assert miss_key(s3, 'k') == miss_key(s3.for_container('d'), 'k')


def test_concurrent_cold_requests_authenticate_once(fake, remote):
    fake.put('AUTH_remote', 'rc', 'o', b'x')
    profile = make_profile(fake)
    fake.delays['/auth/v1.0'] = 0.2
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        remote.head_object(profile, 'o')['ContentLength']))
        for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [1] * 6
    assert len([r for r in fake.requests if r.path == '/auth/v1.0']) == 1


# -- Remotes: one client per process for both protocols ---------------------


class Recorder:
    def __init__(self, name):
        self.name = name
        self.calls = []
        self.warmed = None

    def warm(self, profiles):
        self.warmed = list(profiles)

    def __getattr__(self, method):
        def call(profile, *args, **kwargs):
            self.calls.append((method, profile.protocol))
            return self.name
        return call


def test_remotes_forward_by_protocol(fake):
    s3_profile = parse_profile({
        'account': 'AUTH_a', 'container': 'c', 'aws_bucket': 'b',
        'aws_identity': 'i', 'aws_secret': 's', 'merge_namespaces': True},
        'm.json', 0)
    swift_profile = make_profile(fake)
    remotes = Remotes(Recorder('s3'), Recorder('swift'))
    for profile, name in ((s3_profile, 's3'), (swift_profile, 'swift')):
        assert remotes.head_object(profile, 'k') == name
        assert remotes.get_object(profile, 'k', 'bytes=0-1') == name
        assert remotes.list_objects(profile, 'p', marker='m') == name
        assert remotes.delete_object(profile, 'k') == name
        assert remotes.copy_in_place(profile, 'k', {}, {}, 'a/b') == name
        assert remotes.restore_archived(profile, 'k', 1, 'Bulk') == name
    assert remotes.put_object(s3_profile, 'k', b'') == 's3'
    assert remotes.request(swift_profile, 'HEAD', 'rc') == 'swift'
    assert remotes.ensure_container(swift_profile, 'rc') == 'swift'
    for call in (lambda: remotes.put_object(swift_profile, 'k', b''),
                 lambda: remotes.create_multipart_upload(swift_profile,
                                                         'k'),
                 lambda: remotes.request(s3_profile, 'GET', 'c'),
                 lambda: remotes.ensure_container(s3_profile, 'c')):
        with pytest.raises(RemoteError) as exc:
            call()
        assert exc.value.kind == 'client'
    remotes.warm([s3_profile, swift_profile])
    assert remotes.s3.warmed == [s3_profile]
    assert remotes.swift.warmed == [swift_profile]
    assert Remotes.remote_container(swift_profile) == 'rc'
    assert Remotes.segments_container(swift_profile) == 'rc_segments'


def test_remotes_build_shares_the_options():
    guard = FailFast(3, 7)
    remotes = Remotes.build(connect_timeout=0.7, read_timeout=9,
                            max_pool_connections=5, fail_fast=guard,
                            region='eu-west-1', max_attempts=3)
    assert isinstance(remotes.swift, SwiftRemote)
    assert (remotes.swift.connect_timeout, remotes.swift.read_timeout,
            remotes.swift.max_pool_connections) == (0.7, 9, 5)
    assert (remotes.s3.connect_timeout, remotes.s3.read_timeout,
            remotes.s3.max_pool_connections, remotes.s3.region,
            remotes.s3.max_attempts) == (0.7, 9, 5, 'eu-west-1', 3)
    assert remotes.swift.fail_fast is guard is remotes.s3.fail_fast


def test_middleware_serves_swift_profiles_through_remotes(fake, tmp_path):
    from shunt.proxy.middleware import CloudShuntMiddleware
    from tests.unit.helpers import write_mapping
    raw = {'account': 'AUTH_a', 'container': 'c', 'aws_bucket': 'rc',
           'aws_identity': 'remote:tester', 'aws_secret': KEY,
           'protocol': 'swift', 'merge_namespaces': True,
           'aws_endpoint': fake.base_url + '/auth/v1.0'}
    path = write_mapping(tmp_path / 'm.json', [raw])
    shunt = CloudShuntMiddleware(
        None, {'conf_file': path, 'conn_timeout': '0.5',
               'read_timeout': '4', 'max_pool_connections': '7'},
        logger=FakeLogger())
    assert isinstance(shunt.remote, Remotes)
    assert (shunt.remote.swift.connect_timeout,
            shunt.remote.swift.read_timeout,
            shunt.remote.swift.max_pool_connections) == (0.5, 4, 7)
    # warming a swift profile costs no request
    assert fake.requests == []


GREEN_SCRIPT = r'''
import eventlet
eventlet.monkey_patch()
import json, time
from shunt.core.config import parse_profile
from shunt.core.swift_remote import SwiftRemote
from tests.unit.fake_swift import FakeSwift, serve

fake = FakeSwift()
fake.base_url = serve(fake)
fake.containers[('AUTH_remote', 'rc')] = {'headers': {}, 'objects': {}}
fake.put('AUTH_remote', 'rc', 'o', b'x' * 70000)
fake.delays['/v1/AUTH_remote/rc/o'] = 0.3
profile = parse_profile({
    'account': 'AUTH_a', 'container': 'c', 'aws_bucket': 'rc',
    'aws_identity': 'remote:tester', 'aws_secret': 'testing',
    'protocol': 'swift', 'merge_namespaces': True,
    'aws_endpoint': fake.base_url + '/auth/v1.0'}, 'm.json', 0)
remote = SwiftRemote(max_pool_connections=8)

def fetch(_):
    return len(remote.get_object(profile, 'o')['Body'].read())

start = time.monotonic()
sizes = list(eventlet.GreenPool(20).imap(fetch, range(20)))
elapsed = time.monotonic() - start

def peers():
    return {r.peer for r in fake.requests if r.path.startswith('/v1/')}

first = peers()
again = list(eventlet.GreenPool(8).imap(fetch, range(8)))
fake.delays['/v1/AUTH_remote/newc'] = 0.2
list(eventlet.GreenPool(10).imap(
    lambda _: remote.ensure_container(profile, 'newc'), range(10)))
print(json.dumps({'sizes': sizes + again, 'elapsed': elapsed,
                  'creates': [r.method for r in fake.requests
                              if r.path == '/v1/AUTH_remote/newc'],
                  'idle': [len(v) for v in remote._pools.values()],
                  'first': len(first), 'new': len(peers() - first),
                  'auths': sum(r.path == '/auth/v1.0'
                               for r in fake.requests)}))
'''


def test_green_threads_share_one_client_without_blocking():
    """Under eventlet's monkey-patching (as in a proxy worker) 20
    concurrent GETs of a remote that takes 0.3 s each overlap, share one
    token, and leave at most max_pool_connections idle connections, which
    the next requests reuse; 10 green threads that need the same new
    container wait for one HEAD and one PUT."""
    import json
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, '-c', GREEN_SCRIPT], cwd=root, capture_output=True,
        text=True, timeout=120, env=dict(os.environ, PYTHONPATH=root))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result['sizes'] == [70000] * 28
    # sequential would take 6 s
    assert result['elapsed'] < 3, result
    assert result['auths'] == 1
    assert result['creates'] == ['HEAD', 'PUT']
    assert result['idle'] == [8]
    # the last 8 requests opened no connection
    assert result['first'] <= 20 and result['new'] == 0, result


# -- swift_shapes: the pure translations ----------------------------------


@pytest.mark.parametrize('value,verbatim', [
    ('', True), ('a b', True), ('50%', False), ('=?utf-8?b?eA==?=', False),
    ('é', False), ('\udcff', False), ('line\nbreak', False)])
def test_meta_value(value, verbatim):
    encoded = swift_shapes.meta_value(value)
    assert (encoded == value) is verbatim
    assert encoded.isascii()
    assert shunt_headers.decode_meta_value(encoded) == value


def test_listing_datetime():
    assert swift_shapes.listing_datetime('2026-12-01T20:00:00') \
        .isoformat() == '2026-12-01T20:00:00+00:00'
    assert swift_shapes.listing_datetime('2026-12-01T20:00:00.000001') \
        .microsecond == 1
    for bad in ('', None, 'yesterday', '2026-12-01 20:00:00'):
        assert swift_shapes.listing_datetime(bad) is None


def test_swift_post_headers():
    out = swift_shapes.swift_post_headers(
        {'color': 'blue', 'name': '=?utf-8?b?w6k=?=', 'x-delete-at': '123',
         'x-object-manifest': 'segs/p%C3%A9'}, 'text/plain',
        {'ContentDisposition': 'inline', 'CacheControl': 'no-cache',
         'ContentEncoding': 'gzip', 'ContentLanguage': 'fr'},
        segments='rc_segments')
    assert out == {'Content-Type': 'text/plain',
                   'X-Object-Meta-color': 'blue',
                   'X-Object-Meta-name': 'é',
                   'X-Delete-At': '123',
                   # the copies of the local segments, as the daemon writes
                   'X-Object-Manifest': 'rc_segments/segs/pé',
                   'Content-Disposition': 'inline',
                   'Cache-Control': 'no-cache',
                   'Content-Encoding': 'gzip',
                   'Content-Language': 'fr'}
    # no manifest in the POST: no DLO any more (Swift's POST semantics)
    assert 'X-Object-Manifest' not in swift_shapes.swift_post_headers(
        {'color': 'blue'}, 'text/plain', segments='rc_segments')


def test_read1_hands_over_what_has_arrived(fake, remote):
    fake.put('AUTH_remote', 'rc', 'stall', b'abcdef')
    fake.body_stall['/v1/AUTH_remote/rc/stall'] = 0.5
    profile = make_profile(fake)
    body = remote.get_object(profile, 'stall')['Body']
    started = time.monotonic()
    assert body.read1(65536) == b'a'
    assert time.monotonic() - started < 0.4
    rest = b''
    while chunk := body.read1(65536):
        rest += chunk
    assert rest == b'bcdef'
    assert body.read1(10) == b''
    # read to the end: its connection serves the next request
    remote.head_object(profile, 'stall')
    assert len({r.peer for r in storage_requests(fake)}) == 1


def test_os_threads_share_one_client(fake, remote):
    """A daemon's worker threads may share the client: every answer is
    right and at most max_pool_connections stay idle."""
    for number in range(8):
        fake.put('AUTH_remote', 'rc', 'o%d' % number, b'%d' % number * 999)
    profile = make_profile(fake)
    wrong = []

    def work(number):
        for _ in range(15):
            body = remote.get_object(profile, 'o%d' % number)['Body']
            if body.read() != b'%d' % number * 999:
                wrong.append(number)
    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert [len(idle) for idle in remote._pools.values()] == [4]


def test_metadata_names_that_are_not_ascii_lose_no_header(fake, remote):
    # http.client stops parsing at such a name; the rest is read back
    fake.put('AUTH_remote', 'rc', 'o', b'x', {
        'X-Object-Meta-A': 'first',
        str_to_wsgi('X-Object-Meta-Café'): str_to_wsgi('crème'),
        'X-Object-Meta-Z': 'last', 'X-Static-Large-Object': 'True',
        'Etag': '"abc"'})
    raw = remote.head_object(make_profile(fake), 'o')[
        'ResponseMetadata']['HTTPHeaders']
    assert raw['x-amz-meta-a'] == 'first'
    assert shunt_headers.decode_meta_value(raw['x-amz-meta-café']) == \
        'crème'
    assert raw['x-amz-meta-z'] == 'last'
    assert raw['x-swift-static-large-object'] == 'True'
    assert raw['x-swift-etag-quoted'] == '"abc"'
    assert 'last-modified' in raw and 'x-swift-remote-timestamp' in raw


def test_an_idle_connection_closed_by_the_remote_is_retried_once(
        fake, remote):
    import requests
    fake.put('AUTH_remote', 'rc', 'o', b'x')
    profile = make_profile(fake)
    remote.head_object(profile, 'o')
    (idle,) = [conn for pool in remote._pools.values() for conn in pool]
    real, failures = idle.request, []

    def stale(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise requests.exceptions.ConnectionError('reset by peer')
        return real(*args, **kwargs)
    idle.request = stale
    assert remote.head_object(profile, 'o')['ContentLength'] == 1
    assert failures == [1]
    # a streamed body is never sent twice
    remote.head_object(profile, 'o')
    (idle,) = [conn for pool in remote._pools.values() for conn in pool]
    idle.request = lambda *a, **k: (_ for _ in ()).throw(
        requests.exceptions.ConnectionError('reset'))
    with pytest.raises(RemoteError) as exc:
        remote.request(profile, 'PUT', 'rc', 'p', body=iter([b'y']))
    assert exc.value.kind == 'connection'
