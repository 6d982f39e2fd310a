"""The remote Swift client (:mod:`shunt.core.swift_remote`) against the
all-in-one's real second Swift cluster: tempauth tokens and their renewal,
another account, metadata bytes, native SLOs and DLOs, listings with every
parameter, container creation with a policy. python-swiftclient's own
answers are the oracle."""

import hashlib
import json

import pytest
from swift.common.swob import str_to_wsgi

from shunt.core import headers as shunt_headers
from shunt.core.config import parse_profile
from shunt.core.remote import RemoteError
from shunt.core.swift_remote import SwiftRemote
from shunt.tools import aio_remote

pytestmark = pytest.mark.remotes('swift')


@pytest.fixture
def client():
    remote = SwiftRemote(connect_timeout=2, read_timeout=10)
    yield remote
    remote.close()


@pytest.fixture
def target(aio, unique_name):
    """(profile, remote container name), the container created."""
    local = unique_name('c')
    raw = aio.remote.profile('AUTH_test', local)
    aio.remote.create_container(raw['aws_bucket'])
    return parse_profile(raw, 'm.json', 0), raw['aws_bucket']


def test_object_round_trip_matches_swiftclient(aio, client, target):
    profile, container = target
    values = {'plain': 'Mixed Case', 'utf8': 'ünï €', 'pct': '100%',
              'word': '=?utf-8?q?x?='}
    headers = {'X-Object-Meta-' + k: v for k, v in values.items()}
    headers['X-Object-Meta-Swift-Timestamp'] = '1700000000.00000'
    headers['Content-Disposition'] = 'attachment; filename="x"'
    resp = client.request(profile, 'PUT', container, 'dir/ob ject',
                          headers=dict(headers, **{
                              'Content-Type': 'text/x-mine'}),
                          body=b'remote body')
    assert resp.status == 201
    oracle = aio.remote.conn().head_object(container, 'dir/ob ject')
    head = client.head_object(profile, 'dir/ob ject')
    raw = head['ResponseMetadata']['HTTPHeaders']
    assert raw['etag'] == oracle['etag'] == \
        hashlib.md5(b'remote body').hexdigest()
    assert raw['x-swift-remote-timestamp'] == oracle['x-timestamp']
    assert raw['last-modified'] == oracle['last-modified']
    assert raw['content-type'] == 'text/x-mine'
    assert raw['content-disposition'] == 'attachment; filename="x"'
    for key, value in values.items():
        assert shunt_headers.decode_meta_value(
            raw['x-amz-meta-' + key]) == value
    shown = {k.lower(): v for k, v in
             shunt_headers.swift_object_headers(raw).items()}
    assert shown['x-object-meta-utf8'] == str_to_wsgi('ünï €')
    assert shown['x-timestamp'] == '1700000000.00000'
    assert 'x-object-meta-swift-timestamp' not in shown
    body = client.get_object(profile, 'dir/ob ject', 'bytes=7-')
    assert body['ResponseMetadata']['HTTPStatusCode'] == 206
    assert body['ResponseMetadata']['HTTPHeaders']['content-range'] == \
        'bytes 7-10/11'
    assert body['Body'].read() == b'body'


def test_token_renewed_after_a_real_401(client, target):
    profile, container = target
    client.request(profile, 'HEAD', container)
    key = client.auth_key(profile)
    client._auths[key].token = 'AUTH_tk' + '0' * 32
    assert client.request(profile, 'HEAD', container).status == 204
    assert client._auths[key].token != 'AUTH_tk' + '0' * 32


def test_wrong_key_is_auth(aio, client, unique_name):
    raw = aio.remote.profile('AUTH_test', unique_name('c'),
                             aws_secret='not-the-key')
    with pytest.raises(RemoteError) as exc:
        client.head_object(parse_profile(raw, 'm.json', 0), 'o')
    assert (exc.value.kind, exc.value.status) == ('auth', 401)
    assert 'not-the-key' not in str(exc.value)


def test_remote_account_of_a_reseller_admin(aio, client, unique_name):
    container = unique_name('other')
    conn = aio.remote.conn(aio_remote.RESELLER_USER, aio_remote.RESELLER_KEY,
                           account=aio_remote.REMOTE_ACCOUNT2)
    conn.put_container(container)
    conn.put_object(container, 'o', b'in remote2')
    raw = aio.remote.profile(
        'AUTH_test', 'c', aws_identity=aio_remote.RESELLER_USER,
        aws_secret=aio_remote.RESELLER_KEY, aws_bucket=container,
        remote_account=aio_remote.REMOTE_ACCOUNT2)
    profile = parse_profile(raw, 'm.json', 0)
    assert client.get_object(profile, 'o')['Body'].read() == b'in remote2'


def test_native_slo_and_dlo(aio, client, target):
    profile, container = target
    segments = container + '_segments'
    client.ensure_container(profile, segments)
    parts = [b'a' * 1048576, b'b' * 10]
    for number, part in enumerate(parts):
        client.request(profile, 'PUT', segments, 'c/seg/%d' % number,
                       body=part)
    manifest = [{'path': '/%s/c/seg/%d' % (segments, n),
                 'etag': hashlib.md5(p).hexdigest(), 'size_bytes': len(p)}
                for n, p in enumerate(parts)]
    client.request(profile, 'PUT', container, 'slo',
                   query={'multipart-manifest': 'put'},
                   body=json.dumps(manifest).encode())
    client.request(profile, 'PUT', container, 'dlo', body=b'', headers={
        'X-Object-Manifest': '%s/c/seg/' % segments})
    oracle = aio.remote.conn().head_object(container, 'slo')
    raw = client.head_object(profile, 'slo')['ResponseMetadata'][
        'HTTPHeaders']
    assert raw['x-swift-static-large-object'] == 'True'
    assert raw['x-swift-etag-quoted'] == oracle['etag']
    assert raw['etag'] == oracle['etag'].strip('"')
    assert raw['content-length'] == str(1048586)
    got = client.get_object(profile, 'slo', 'bytes=1048570-1048579')
    assert got['Body'].read() == b'a' * 6 + b'b' * 4
    whole = client.get_object(profile, 'dlo')
    assert whole['ResponseMetadata']['HTTPHeaders'][
        'x-swift-object-manifest'] == '%s/c/seg/' % segments
    assert b''.join(whole['Body']) == b''.join(parts)
    listing = client.list_objects(profile, '')
    rows = {item['Key']: item for item in listing['Contents']}
    assert rows['slo']['Size'] == 1048586
    assert rows['slo']['SloEtag'] == oracle['etag']
    assert ';' not in rows['slo']['ContentType']


def test_listing_parameters_match_swift(aio, client, target):
    profile, container = target
    names = ['a', 'b/1', 'b/2', 'c', 'd/x', 'e', 'é']
    for name in names:
        aio.remote.conn().put_object(container, name, name.encode())

    def swift(**params):
        _, rows = aio.remote.conn().get_container(container, **params)
        return [r.get('name') or r.get('subdir') for r in rows]

    def ours(**params):
        page = client.list_objects(profile, **params)
        return [i['Key'] for i in page['Contents']] + \
            [p['Prefix'] for p in page['CommonPrefixes']]

    assert ours(prefix='') == swift() == names
    assert sorted(ours(prefix='', delimiter='/')) == \
        sorted(swift(delimiter='/'))
    assert ours(prefix='b/', marker='b/1') == swift(prefix='b/',
                                                    marker='b/1')
    assert ours(prefix='', end_marker='c') == swift(end_marker='c')
    page = client.list_objects(profile, '', max_keys=2, reverse=True)
    assert [i['Key'] for i in page['Contents']] == ['é', 'e']
    assert page['IsTruncated'] and page['NextMarker'] == 'e'


def test_ensure_container_with_a_policy(aio, client, unique_name):
    raw = aio.remote.profile('AUTH_test', unique_name('c'),
                             storage_policy='cold')
    profile = parse_profile(raw, 'm.json', 0)
    client.ensure_container(profile, raw['aws_bucket'])
    assert aio.remote.conn().head_container(raw['aws_bucket'])[
        'x-storage-policy'] == 'cold'
    assert client.list_objects(profile, '')['Contents'] == []


def test_missing_remote_container_lists_empty(aio, client, unique_name):
    raw = aio.remote.profile('AUTH_test', unique_name('never'))
    page = client.list_objects(parse_profile(raw, 'm.json', 0), '')
    assert page['Contents'] == [] and page['CommonPrefixes'] == []


def test_metadata_name_that_is_not_ascii(aio, client, target):
    profile, container = target
    aio.remote.conn().put_object(container, 'o', b'x', headers={
        'X-Object-Meta-A': 'first', 'X-Object-Meta-Café': 'crème',
        'X-Object-Meta-Z': 'last'})
    raw = client.head_object(profile, 'o')['ResponseMetadata'][
        'HTTPHeaders']
    assert shunt_headers.decode_meta_value(raw['x-amz-meta-café']) == \
        'crème'
    assert raw['x-amz-meta-a'] == 'first' and raw['x-amz-meta-z'] == 'last'
    assert 'last-modified' in raw and 'x-swift-remote-timestamp' in raw
