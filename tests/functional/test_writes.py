"""DELETE, POST and copies of archived objects on the all-in-one cluster,
each compared with what Swift does for the same object kept locally."""

import hashlib
import json
import threading
import time
import urllib.parse

import pytest

from tests.functional.backends import S3_ONLY
from tests.functional.test_objects import _stable, quote, request

# archived to S3 and to another Swift (tests.functional.backends)
pytestmark = pytest.mark.remotes('moto', 's3api', 'swift')


@pytest.fixture
def env(aio, tester):
    conn, token, base, account = (tester.conn, tester.token, tester.base,
                                  tester.account)
    suffix = time.time_ns()
    mapped, control = f'wr-{suffix}', f'wrc-{suffix}'
    conn.put_container(mapped)
    conn.put_container(control)
    profiles = [aio.profile(account, mapped)]
    aio.write_mappings(profiles)

    def add(name, body=b'archived body', meta=None, content_type='text/x-a'):
        conn.put_object(control, name, body, content_type=content_type,
                        headers={f'X-Object-Meta-{k}': v
                                 for k, v in (meta or {}).items()})
        return aio.archive_object(account, mapped, name, body,
                                  metadata={k.lower(): v for k, v in
                                            (meta or {}).items()},
                                  content_type=content_type)

    def call(method, container, name, headers=None):
        return request(aio, method, f'{base}/{container}/{quote(name)}',
                       headers, token)

    yield {'conn': conn, 'token': token, 'base': base, 'account': account,
           'mapped': mapped, 'control': control, 'add': add, 'call': call,
           'profiles': profiles}
    aio.write_mappings([])


def both(env, method, name, headers=None):
    return (env['call'](method, env['mapped'], name, headers),
            env['call'](method, env['control'], name, headers))


def test_delete_archived_only_object(aio, env):
    env['add']('gone')
    shunted, local = both(env, 'DELETE', 'gone')
    assert shunted[0] == local[0] == 204
    assert _stable(shunted[1]) == _stable(local[1])
    for method in ('GET', 'HEAD'):
        shunted, local = both(env, method, 'gone')
        assert shunted[0] == local[0] == 404
        assert shunted[2] == local[2]
    # the archive copy is kept by default
    assert aio.archived_head(env['account'], env['mapped'], 'gone')
    # a second DELETE is a 404, as in Swift
    shunted, local = both(env, 'DELETE', 'gone')
    assert shunted[0] == local[0] == 404


def test_delete_of_name_that_exists_nowhere(aio, env):
    shunted, local = both(env, 'DELETE', 'never-was')
    assert shunted[0] == local[0] == 404


def test_delete_then_put_then_rearchive(aio, env):
    env['add']('cycle', b'first')
    assert env['call']('DELETE', env['mapped'], 'cycle')[0] == 204
    assert env['call']('GET', env['mapped'], 'cycle')[0] == 404
    # a newer local PUT wins
    env['conn'].put_object(env['mapped'], 'cycle', b'local')
    assert env['call']('GET', env['mapped'], 'cycle')[2] == b'local'
    assert env['call']('DELETE', env['mapped'], 'cycle')[0] == 204
    assert env['call']('GET', env['mapped'], 'cycle')[0] == 404
    # a copy archived again (newer than the delete) is visible again
    aio.archive_object(env['account'], env['mapped'], 'cycle', b'again')
    status, _, body = env['call']('GET', env['mapped'], 'cycle')
    assert (status, body) == (200, b'again')


def test_propagate_delete_removes_bucket_copy(aio, env):
    aio.write_mappings([aio.profile(env['account'], env['mapped'],
                                    propagate_delete=True)])
    env['add']('propagated')
    assert env['call']('DELETE', env['mapped'], 'propagated')[0] == 204
    assert aio.archived_head(env['account'], env['mapped'],
                             'propagated') is None
    assert env['call']('GET', env['mapped'], 'propagated')[0] == 404


def test_delete_with_remote_down_is_503_and_deletes_nothing(aio, env):
    env['add']('keep-me', b'kept')
    aio.stop_s3()
    try:
        assert env['call']('DELETE', env['mapped'], 'keep-me')[0] == 503
    finally:
        aio.start_s3()
    env['add']('keep-me', b'kept')
    status, _, body = env['call']('GET', env['mapped'], 'keep-me')
    assert (status, body) == (200, b'kept')


def test_archiver_style_local_delete_does_not_hide(aio, env):
    """An archiver uploads, then deletes the local copy without the shunt:
    the archived copy must stay readable."""
    env['conn'].put_object(env['mapped'], 'moved', b'moved body')
    env['add']('moved', b'moved body')
    status, _, _ = env['call']('DELETE', env['mapped'], 'moved',
                               {'X-Cloud-Sync-Shunt-Bypass': 'true'})
    assert status == 204
    status, _, body = env['call']('GET', env['mapped'], 'moved')
    assert (status, body) == (200, b'moved body')


def test_expired_archived_object_is_not_served(aio, env):
    if aio.remote is None:
        # (a remote Swift refuses a past X-Delete-At, and expires its
        # objects itself)
        aio.archive_object(env['account'], env['mapped'], 'old', b'x',
                           metadata={'x-delete-at': str(int(time.time()) -
                                                        5)})
        assert env['call']('GET', env['mapped'], 'old')[0] == 404
    aio.archive_object(env['account'], env['mapped'], 'later', b'x',
                       metadata={'x-delete-at': str(int(time.time()) + 600)})
    status, headers, _ = env['call']('GET', env['mapped'], 'later')
    assert status == 200 and 'x-delete-at' in headers


def test_post_metadata_matches_local(aio, env):
    env['add']('meta', b'meta body', meta={'Old': 'value'})
    before = env['call']('HEAD', env['mapped'], 'meta')[1]
    wire = '\u00e9t\u00e9'.encode('utf-8').decode('latin-1')
    post = {'X-Object-Meta-New': wire, 'X-Object-Meta-Plain': 'p',
            'Content-Type': 'text/x-new',
            # non-ASCII: the store gets the bytes the client sent
            'Content-Disposition': 'inline; filename="%s.txt"' % wire}
    shunted, local = both(env, 'POST', 'meta', post)
    assert shunted[0] == local[0] == 202
    assert shunted[2] == local[2]
    for method in ('GET', 'HEAD'):
        shunted, local = both(env, method, 'meta')
        assert shunted[0] == local[0] == 200
        assert shunted[2] == local[2]
        assert _stable(shunted[1]) == _stable(local[1])
    after = env['call']('HEAD', env['mapped'], 'meta')[1]
    assert after['etag'] == before['etag']
    assert 'x-object-meta-old' not in after
    assert after['x-object-meta-new'] == wire
    # the object is still archived only
    status, _, _ = env['call']('HEAD', env['mapped'], 'meta',
                               {'X-Cloud-Sync-Shunt-Bypass': 'true'})
    assert status == 404


def test_post_delete_after(aio, env):
    env['add']('ttl')
    shunted, local = both(env, 'POST', 'ttl', {'X-Delete-After': '600'})
    assert shunted[0] == local[0] == 202
    s_at = int(env['call']('HEAD', env['mapped'], 'ttl')[1]['x-delete-at'])
    l_at = int(env['call']('HEAD', env['control'], 'ttl')[1]['x-delete-at'])
    assert abs(s_at - l_at) <= 2
    shunted, local = both(env, 'POST', 'ttl', {'X-Delete-At': '1'})
    assert shunted[0] == local[0] == 400


@S3_ONLY
def test_post_to_multipart_object_keeps_etag(aio, env):
    s3 = aio.s3_client()
    key = aio.archive_object(env['account'], env['mapped'], 'mpu', b'')
    upload = s3.create_multipart_upload(Bucket=aio.bucket, Key=key)
    parts, data = [], b''
    for n, size in enumerate((5 * 2 ** 20, 5 * 2 ** 20, 1000), 1):
        chunk = bytes([n]) * size
        data += chunk
        part = s3.upload_part(Bucket=aio.bucket, Key=key, PartNumber=n,
                              UploadId=upload['UploadId'], Body=chunk)
        parts.append({'ETag': part['ETag'], 'PartNumber': n})
    s3.complete_multipart_upload(Bucket=aio.bucket, Key=key,
                                 UploadId=upload['UploadId'],
                                 MultipartUpload={'Parts': parts})
    before = env['call']('HEAD', env['mapped'], 'mpu')[1]
    assert before['etag'].endswith('-3')
    assert env['call']('POST', env['mapped'], 'mpu',
                       {'X-Object-Meta-K': 'v'})[0] == 202
    status, after, body = env['call']('GET', env['mapped'], 'mpu')
    assert status == 200 and after['etag'] == before['etag']
    assert after['x-object-meta-k'] == 'v'
    assert hashlib.md5(body).digest() == hashlib.md5(data).digest()


def test_post_to_missing_or_deleted_is_404(aio, env):
    shunted, local = both(env, 'POST', 'nothing', {'X-Object-Meta-A': 'b'})
    assert shunted[0] == local[0] == 404
    env['add']('deleted')
    env['call']('DELETE', env['mapped'], 'deleted')
    assert env['call']('POST', env['mapped'], 'deleted',
                       {'X-Object-Meta-A': 'b'})[0] == 404


def test_writes_respect_acls(aio, env):
    env['add']('guarded')
    _, token3 = aio.token('test:tester3', 'testing3')
    path = f'{env["base"]}/{env["mapped"]}/guarded'
    for method in ('DELETE', 'POST'):
        assert request(aio, method, path, {'X-Object-Meta-A': 'b'},
                       token3)[0] == 403
        assert request(aio, method, path)[0] == 401
    status, headers, body = env['call']('GET', env['mapped'], 'guarded')
    assert status == 200 and 'x-object-meta-a' not in headers


@pytest.mark.parametrize('how', ['COPY', 'PUT'])
def test_server_side_copy_from_archived(aio, env, how):
    env['add']('source', b'copy me', meta={'Kept': 'yes'})
    other = env['mapped'] + '-dst'
    env['conn'].put_container(other)
    dest = f'/{other}/copied'
    if how == 'COPY':
        status, _, _ = env['call']('COPY', env['mapped'], 'source',
                                   {'Destination': dest})
    else:
        status, _, _ = request(
            aio, 'PUT', f'{env["base"]}{dest}',
            {'X-Copy-From': f'/{env["mapped"]}/source',
             'Content-Length': '0'}, env['token'])
    assert status == 201
    headers, body = env['conn'].get_object(other, 'copied')
    assert body == b'copy me' and headers['x-object-meta-kept'] == 'yes'


def test_copy_across_accounts(aio, env):
    env['add']('shared', b'shared body')
    env['conn'].post_container(env['mapped'], {
        'X-Container-Read': 'test2:tester2'})
    url2, token2 = aio.token('test2:tester2', 'testing2')
    base2 = urllib.parse.urlsplit(url2).path
    conn2 = aio.swift_conn('test2:tester2', 'testing2')
    conn2.put_container('incoming')
    status, _, _ = request(
        aio, 'PUT', f'{base2}/incoming/copied',
        {'X-Copy-From': f'/{env["mapped"]}/shared',
         'X-Copy-From-Account': env['account'], 'Content-Length': '0'},
        token2)
    assert status == 201
    assert conn2.get_object('incoming', 'copied')[1] == b'shared body'


def test_concurrent_delete_and_get(aio, env):
    names = [f'race-{i}' for i in range(8)]
    for name in names:
        env['add'](name, b'race body')
    statuses = []

    def get_loop():
        for _ in range(20):
            for name in names:
                statuses.append(env['call']('GET', env['mapped'], name)[0])

    readers = [threading.Thread(target=get_loop) for _ in range(3)]
    for t in readers:
        t.start()
    deletes = [env['call']('DELETE', env['mapped'], n)[0] for n in names]
    for t in readers:
        t.join()
    assert deletes == [204] * len(names)
    assert set(statuses) <= {200, 404}
    for name in names:
        assert env['call']('GET', env['mapped'], name)[0] == 404


def _names(env, container, query=''):
    status, _, body = request(
        env['aio'], 'GET',
        f'{env["base"]}/{container}?format=json{query}', token=env['token'])
    assert status == 200
    return [row.get('name', row.get('subdir')) for row in json.loads(body)]


def test_listing_omits_deleted_archived_objects(aio, env):
    env['aio'] = aio
    for name in ('a', 'b', 'c', 'd/e'):
        env['add'](name)
    env['conn'].put_object(env['mapped'], 'local', b'l')
    assert _names(env, env['mapped']) == ['a', 'b', 'c', 'd/e', 'local']
    assert env['call']('DELETE', env['mapped'], 'b')[0] == 204
    assert env['call']('DELETE', env['mapped'], 'local')[0] == 204
    assert _names(env, env['mapped']) == ['a', 'c', 'd/e']
    assert _names(env, env['mapped'], '&delimiter=/') == ['a', 'c', 'd/']
    assert _names(env, env['mapped'], '&limit=1&marker=a') == ['c']
    assert _names(env, env['mapped'], '&reverse=on') == ['d/e', 'c', 'a']
    # re-archived: listed again
    aio.archive_object(env['account'], env['mapped'], 'b', b'again')
    assert _names(env, env['mapped']) == ['a', 'b', 'c', 'd/e']


@pytest.mark.parametrize('query', ['', '?multipart-manifest=get'])
def test_copy_of_archived_slo_matches_local(aio, query):
    """COPY of an archived SLO (a real multipart upload with its sidecar)
    gives what the same COPY of the local SLO gives: the whole object, or
    with ``multipart-manifest=get`` a copy of the manifest (whose segments
    must exist in Swift, as for a local SLO)."""
    from tests.functional import test_slo
    conn = aio.swift_conn()
    url, token = aio.token('test:tester', 'testing')
    base = urllib.parse.urlsplit(url).path
    account = base.split('/')[2]
    suffix = time.time_ns()
    mapped, control, dest = (f'slocp-{suffix}', f'slocpc-{suffix}',
                             f'slocpd-{suffix}')
    for name in (mapped, control, dest):
        conn.put_container(name)
    aio.write_mappings([aio.profile(account, mapped)])
    try:
        stored = test_slo.put_local_slo(aio, conn, token, base, control,
                                        'big', test_slo.PARTS)
        test_slo.archive_slo(aio, account, mapped, 'big', test_slo.PARTS,
                             stored)
        copies = {}
        for source in (mapped, control):
            status, _, _ = request(
                aio, 'COPY', f'{base}/{source}/big{query}',
                {'Destination': f'/{dest}/{source}'}, token)
            assert status == 201
            copies[source] = conn.get_object(dest, source)
        (s_head, s_body), (l_head, l_body) = copies[mapped], copies[control]
        assert hashlib.md5(s_body).digest() == \
            hashlib.md5(test_slo.BODY).digest() == hashlib.md5(l_body) \
            .digest()
        assert s_head['etag'] == l_head['etag']
        assert s_head.get('x-static-large-object') == \
            l_head.get('x-static-large-object')
    finally:
        aio.write_mappings([])
