"""Restore on read, through the middleware, with moto's in-process S3 and a
fake Swift that really stores what is PUT (and checks Etag, length and
timestamps as Swift does)."""

import hashlib
import json
import time

import eventlet
import pytest
from swift.common import constraints
from swift.common.exceptions import ChunkReadError
from swift.common.swob import Request, Response, str_to_wsgi, wsgi_to_str
from swift.common.utils import Timestamp

from shunt.core.layout import object_key
from shunt.proxy import restore, slo
from shunt.proxy.middleware import CloudShuntMiddleware
from tests.unit.helpers import (
    BUCKET,
    FakeLogger,
    archive_mpu,
    write_mapping,
)

BODY = b''.join(hashlib.sha256(b'%d' % i).digest() for i in range(8192))
ETAG = hashlib.md5(BODY).hexdigest()
CHUNK = 65536


class StoringSwift:
    """The pipeline right of the shunt, storing objects in a dict.

    Answers like Swift: 404 for a missing container or object (with
    ``X-Backend-Timestamp`` of a tombstone), 412 for ``If-None-Match: *``
    on an existing object, 202 when a newer object or tombstone exists at
    commit time, 499 for a short or failed body, 422 for an Etag mismatch;
    ``?multipart-manifest=put`` checks its segments like ``slo``.
    Hooks: ``put_hooks[path](stage)`` runs at ``start`` and ``commit``;
    ``put_status[path]`` answers at once without reading the body.
    """

    def __init__(self):
        self.containers = {'/v1/AUTH_a/c': {}}
        self.objects = {}      # WSGI path -> dict(headers, body, ts)
        self.tombstones = {}   # WSGI path -> Timestamp
        self.calls = []
        self.envs = []
        self.put_hooks = {}
        self.put_status = {}
        self.stall = None

    def __call__(self, env, start_response):
        req = Request(env)
        path = env['PATH_INFO']
        self.calls.append((req.method, path, req.query_string,
                           dict(req.headers)))
        self.envs.append(env)
        parts = path.split('/', 4)
        if len(parts) == 3:
            resp = Response(status=204)  # the account
        elif len(parts) == 4:
            resp = self.container(req, path)
        else:
            resp = self.object(req, path, '/'.join(parts[:4]))
        return resp(env, start_response)

    def container(self, req, path):
        if req.method == 'PUT':
            created = path not in self.containers
            self.containers.setdefault(path, dict(req.headers))
            return Response(status=201 if created else 202)
        if path in self.containers:
            return Response(status=204, headers={
                'X-Backend-Storage-Policy-Index': '0'})
        return Response(status=404)

    def object(self, req, path, container):
        if container not in self.containers:
            return Response(status=404)
        stored = self.objects.get(path)
        if req.method in ('GET', 'HEAD'):
            if stored is None:
                headers = {}
                if path in self.tombstones:
                    headers['X-Backend-Timestamp'] = \
                        self.tombstones[path].internal
                return Response(status=404, headers=headers)
            return Response(body=stored['body'], headers=stored['headers'])
        if req.method == 'DELETE':
            ts = Timestamp(req.headers['X-Timestamp'])
            if stored is None:
                return Response(status=404)
            if stored['ts'] >= ts:
                return Response(status=409)
            del self.objects[path]
            self.tombstones[path] = ts
            return Response(status=204)
        return self.put(req, path)

    def _newer(self, path, ts):
        stored = self.objects.get(path)
        if stored is not None and stored['ts'] >= ts:
            return True
        return path in self.tombstones and self.tombstones[path] >= ts

    def put(self, req, path):
        if path in self.put_status:
            return Response(status=self.put_status[path])
        hook = self.put_hooks.get(path)
        if hook:
            hook('start')
        ts = Timestamp(req.headers.get('X-Timestamp') or time.time())
        if req.headers.get('If-None-Match') == '*' and path in self.objects:
            return Response(status=412)
        if self._newer(path, ts):
            return Response(status=202)
        length = req.content_length
        data = []
        got = 0
        try:
            while got < length:
                chunk = req.environ['wsgi.input'].read(
                    min(CHUNK, length - got))
                if not chunk:
                    break
                data.append(chunk)
                got += len(chunk)
                if self.stall is not None and self.stall(path, got):
                    eventlet.sleep(3600)
        except ChunkReadError:
            return Response(status=499)
        if got < length:
            return Response(status=499)
        body = b''.join(data)
        headers = {k: v for k, v in req.headers.items()
                   if k.lower() not in ('if-none-match', 'host',
                                        'user-agent')}
        if req.params.get('multipart-manifest') == 'put':
            return self.put_manifest(req, path, body, headers, ts)
        etag = hashlib.md5(body).hexdigest()
        if req.headers.get('Etag', etag).strip('"') != etag:
            return Response(status=422)
        if hook:
            hook('commit')
        if self._newer(path, ts):
            return Response(status=202)
        headers['Etag'] = etag
        self.objects[path] = {'headers': headers, 'body': body, 'ts': ts}
        return Response(status=201, headers={'Etag': etag})

    def put_manifest(self, req, path, body, headers, ts):
        segments = json.loads(body)
        content = b''
        for seg in segments:
            stored = self.objects.get(str_to_wsgi('/v1/AUTH_a' +
                                                  seg['path']))
            if stored is None or stored['headers']['Etag'] != seg['etag'] \
                    or len(stored['body']) != seg['size_bytes']:
                return Response(status=400, body=b'bad segment')
            content += stored['body']
        slo_etag = hashlib.md5(''.join(s['etag'] for s in segments)
                               .encode()).hexdigest()
        if req.headers['Etag'] != slo_etag:
            return Response(status=422)
        if self._newer(path, ts):
            return Response(status=202)
        headers.update({'X-Static-Large-Object': 'True', 'Etag': slo_etag})
        self.objects[path] = {'headers': headers, 'body': content, 'ts': ts,
                              'manifest': segments}
        return Response(status=201)

    def requests(self, method):
        return [c for c in self.calls if c[0] == method]


class FakeMemcache:
    def __init__(self):
        self.store = {}

    def incr(self, key, delta=1, time=0):
        self.store[key] = self.store.get(key, 0) + delta
        return self.store[key]

    def delete(self, key):
        self.store.pop(key, None)

    def get(self, key, **kwargs):
        return None

    def set(self, key, value, **kwargs):
        pass


@pytest.fixture
def swift():
    return StoringSwift()


def make_shunt(tmp_path, swift, conf=None, **profile):
    raw = {'account': 'AUTH_a', 'container': 'c', 'aws_bucket': BUCKET,
           'aws_identity': 'id', 'aws_secret': 'sekrit',
           'merge_namespaces': True, 'restore_object': True}
    raw.update(profile)
    path = write_mapping(tmp_path / 'm.json', [raw])
    # the tests count in chunks of CHUNK bytes
    conf = dict({'network_chunk_size': str(CHUNK)}, **(conf or {}))
    conf['conf_file'] = path
    slo.log_once._seen.clear()
    slo.sidecars.clear()
    restore._log_once._seen.clear()
    return CloudShuntMiddleware(swift, conf, logger=FakeLogger())


@pytest.fixture
def shunt(tmp_path, s3, swift):
    return make_shunt(tmp_path, swift)


def archive(s3, name, body=BODY, **kw):
    s3.put_object(Bucket=BUCKET, Key=object_key('AUTH_a', 'c', name),
                  Body=body, **kw)


def last_modified(s3, name):
    head = s3.head_object(Bucket=BUCKET, Key=object_key('AUTH_a', 'c', name))
    return Timestamp(head['LastModified'].timestamp())


def path_of(name, container='c'):
    return str_to_wsgi('/v1/AUTH_a/%s/%s' % (container, name))


def quoted(name):
    from urllib.parse import quote
    return '/v1/AUTH_a/c/' + quote(name.encode('utf-8'))


def get(app, name, method='GET', headers=None, env=None, query=''):
    req = Request.blank(quoted(name) + query, method=method,
                        headers=headers or {}, environ=env or {})
    resp = req.get_response(app)
    # reading resp.body drops the app_iter: keep its restore
    resp.restore = getattr(resp.app_iter, 'restore', None)
    return resp


def wait_for(resp, timeout=10):
    return resp.restore.wait(timeout)


# -- pure ----------------------------------------------------------------

def test_restore_timestamp():
    now = 2000000000.0
    assert restore.restore_timestamp('1700000000.00000', None, now) == \
        Timestamp(1700000000)
    # never in the future
    assert restore.restore_timestamp('2100000000', None, now) == \
        Timestamp(now)
    assert restore.restore_timestamp(None, None, now) == Timestamp(now)
    # after a local tombstone that is newer than the archived copy
    tomb = Timestamp(1800000000.5, offset=7)
    ts = restore.restore_timestamp('1700000000', tomb, now)
    assert ts > tomb and ts.offset == 0
    assert ts < Timestamp(1800000000.50002)
    # an older tombstone changes nothing
    assert restore.restore_timestamp('1700000000', Timestamp(1600000000),
                                     now) == Timestamp(1700000000)


@pytest.mark.parametrize('value,expected', [
    (None, None), ('', None), ('junk', None), ('0000000000.00000', None),
    ('1700000000.12345', Timestamp('1700000000.12345'))])
def test_local_timestamp(value, expected):
    assert restore.local_timestamp(value) == expected


def test_expiry():
    now = 1000.0
    assert restore.expiry({}, None, now) == (False, None)
    assert restore.expiry({}, 60, now) == (False, 1061)
    assert restore.expiry({'X-Delete-At': '5000'}, None, now) == \
        (False, 5000)
    assert restore.expiry({'X-Delete-At': '5000'}, 60, now) == (False, 1061)
    assert restore.expiry({'X-Delete-At': '1030'}, 60, now) == (False, 1030)
    assert restore.expiry({'X-Delete-At': '900'}, 60, now) == (True, None)


def test_restored_headers():
    headers = {'Content-Type': 'a/b', 'Etag': 'x', 'X-Timestamp': '1',
               'Last-Modified': 'y', 'X-Object-Meta-Color': 'blue',
               'Content-Disposition': 'inline', 'Content-Location': 'z',
               'X-Static-Large-Object': 'True', 'Accept-Ranges': 'bytes',
               'X-Manifest-Etag': 'm'}
    assert restore.restored_headers(headers, 42) == {
        'Content-Type': 'a/b', 'X-Object-Meta-Color': 'blue',
        'Content-Disposition': 'inline', 'X-Delete-At': '42'}


def test_feed_splits_chunks_and_ends():
    feed = restore.Feed(depth=4)
    assert feed.put(b'abcdef', 1) and feed.put(b'gh', 1) and feed.finish(1)
    segment = restore.SegmentInput(feed, 4)
    assert segment.read(3) == b'abc' and segment.read(10) == b'd'
    assert segment.read(10) == b''
    rest = restore.SegmentInput(feed, 10)
    assert rest.read() == b'ef' and rest.read() == b'gh'
    assert rest.read() == b''
    with pytest.raises(restore.RestoreFailed):
        rest.drain()


def test_feed_abort_and_close():
    feed = restore.Feed(depth=1)
    assert feed.put(b'x', 1)
    assert not feed.put(b'y', 0.01)   # full: times out
    feed.abort()
    with pytest.raises(ChunkReadError):
        feed.read(1)
    feed = restore.Feed(depth=1)
    feed.put(b'x', 1)
    feed.close()
    assert not feed.put(b'y', 0.01)


def test_config_from_filter_options():
    conf = restore.RestoreConfig.from_conf({'restore_segment_size': '100',
                                            'restore_timeout': '2.5'})
    assert (conf.segment_size, conf.timeout) == (100, 2.5)
    for bad in ({'restore_segment_size': '0'}, {'restore_timeout': 'x'}):
        with pytest.raises(ValueError):
            restore.RestoreConfig.from_conf(bad)


# -- plain objects ----------------------------------------------------------

def test_full_get_restores_with_metadata(shunt, s3, swift):
    archive(s3, 'obj', ContentType='image/png',
            Metadata={'color': 'blue', 'u': '=?UTF-8?B?w6k=?='},
            ContentDisposition='inline')
    resp = get(shunt, 'obj', env={'swift.trans_id': 'tx123'})
    assert resp.status_int == 200 and resp.body == BODY
    # committed before the client saw the last bytes
    assert resp.restore.outcome == 'restored'
    stored = swift.objects[path_of('obj')]
    assert stored['body'] == BODY
    assert stored['headers']['Etag'] == ETAG
    assert stored['headers']['Content-Type'] == 'image/png'
    assert stored['headers']['X-Object-Meta-Color'] == 'blue'
    assert stored['headers']['X-Object-Meta-U'] == str_to_wsgi('\u00e9')
    assert stored['headers']['Content-Disposition'] == 'inline'
    assert stored['ts'] == last_modified(s3, 'obj')
    (put,) = swift.requests('PUT')
    assert put[3]['If-None-Match'] == '*'
    assert put[3]['Etag'] == ETAG
    assert put[3]['Content-Length'] == str(len(BODY))
    assert 'X-Delete-At' not in put[3]
    env = swift.envs[swift.calls.index(put)]
    assert env['swift.source'] == restore.SWIFT_SOURCE
    assert env['swift.trans_id'] == 'tx123'
    assert 'restore.completed' in [m[1] for m in shunt.logger.metrics]
    # the next GET is local
    resp = get(shunt, 'obj')
    assert resp.body == BODY and 'Content-Location' not in resp.headers


def test_empty_object_restores(shunt, s3, swift):
    archive(s3, 'empty', b'')
    resp = get(shunt, 'empty')
    assert resp.body == b'' and wait_for(resp) == 'restored'
    assert swift.objects[path_of('empty')]['body'] == b''


@pytest.mark.parametrize('name', [
    'per%25cent%', 'q?uery', 'ha#sh', 'caf\u00e9 \u2603/\u65e5\u672c',
    'a/b/c/', 'plus+ sign'])
def test_names_restore_under_their_own_name(shunt, s3, swift, name):
    archive(s3, name, b'data of ' + name.encode('utf-8'))
    resp = get(shunt, name)
    assert resp.status_int == 200 and resp.body.startswith(b'data of ')
    assert resp.restore.outcome == 'restored'
    assert list(swift.objects) == [path_of(name)]
    assert wsgi_to_str(list(swift.objects)[0]) == '/v1/AUTH_a/c/' + name


@pytest.mark.parametrize('method,headers,status', [
    ('HEAD', {}, 200),
    ('GET', {'Range': 'bytes=0-9'}, 206),
    ('GET', {'Range': 'bytes=0-'}, 206),
    ('GET', {'Range': 'bytes=0-1,5-6'}, 206),
    ('GET', {'If-None-Match': '"%s"' % ETAG}, 304),
    ('GET', {'If-Match': '"nope"'}, 412),
    ('GET', {'If-Modified-Since': 'Fri, 01 Jan 2100 00:00:00 GMT'}, 304),
])
def test_partial_answers_never_restore(shunt, s3, swift, method, headers,
                                       status):
    archive(s3, 'obj')
    resp = get(shunt, 'obj', method, headers)
    assert resp.status_int == status
    _ = resp.body
    assert swift.requests('PUT') == [] and swift.objects == {}


def test_conditional_get_that_answers_200_restores(shunt, s3, swift):
    archive(s3, 'obj')
    resp = get(shunt, 'obj', headers={'If-None-Match': '"other"'})
    assert resp.status_int == 200 and resp.body == BODY
    assert swift.objects[path_of('obj')]['body'] == BODY


def test_profile_without_restore(tmp_path, s3, swift):
    shunt = make_shunt(tmp_path, swift, restore_object=False)
    archive(s3, 'obj')
    assert get(shunt, 'obj').body == BODY
    assert swift.requests('PUT') == []


def test_restore_ttl_sets_delete_at(tmp_path, s3, swift):
    shunt = make_shunt(tmp_path, swift, restore_ttl=3600)
    archive(s3, 'obj')
    before = time.time()
    resp = get(shunt, 'obj')
    assert resp.body == BODY and resp.restore.outcome == 'restored'
    delete_at = int(swift.objects[path_of('obj')]['headers']['X-Delete-At'])
    assert before + 3600 <= delete_at <= time.time() + 3602


def test_past_delete_at_is_not_restored(shunt, s3, swift, monkeypatch):
    # still served, but too close to its expiry to restore; the clock is
    # frozen so that a slow machine does not see it expire before the GET
    now = time.time()
    monkeypatch.setattr(time, 'time', lambda: now)
    archive(s3, 'obj', Metadata={'x-delete-at': str(int(now) + 1)})
    resp = get(shunt, 'obj')
    _ = resp.body
    assert swift.requests('PUT') == []
    assert 'X-Delete-At has passed' in shunt.logger.text('info')


def test_non_md5_etag_is_served_but_not_restored(shunt, s3, swift):
    key = object_key('AUTH_a', 'c', 'mpu')
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    part = s3.upload_part(Bucket=BUCKET, Key=key, PartNumber=1,
                          UploadId=upload['UploadId'], Body=b'x' * 100)
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload['UploadId'],
        MultipartUpload={'Parts': [{'PartNumber': 1,
                                    'ETag': part['ETag']}]})
    for _ in range(2):
        assert get(shunt, 'mpu').body == b'x' * 100
    assert swift.requests('PUT') == []
    assert shunt.logger.text('info').count('is not an MD5') == 1


# -- races ------------------------------------------------------------------

@pytest.mark.parametrize('stage', [
    'start',   # a client PUT committed before the restore's
    'commit',  # one that started before it but commits while it streams
])
def test_object_written_meanwhile_is_not_replaced(shunt, s3, swift, stage):
    archive(s3, 'obj')
    newer = {'headers': {'Etag': 'new'}, 'body': b'client data',
             'ts': Timestamp.now()}

    def client_put(at):
        if at == stage:
            swift.objects[path_of('obj')] = newer
    swift.put_hooks[path_of('obj')] = client_put
    resp = get(shunt, 'obj')
    assert resp.body == BODY
    assert resp.restore.outcome == 'superseded'
    assert swift.objects[path_of('obj')] is newer


def test_restore_goes_after_an_older_tombstone(shunt, s3, swift):
    archive(s3, 'obj')
    lm = last_modified(s3, 'obj')
    swift.tombstones[path_of('obj')] = Timestamp(lm.timestamp + 0.5)
    resp = get(shunt, 'obj')
    assert resp.body == BODY and resp.restore.outcome == 'restored'
    assert swift.objects[path_of('obj')]['ts'] > Timestamp(
        lm.timestamp + 0.5)


def test_concurrent_reader_does_not_restore_again(shunt, s3, swift):
    archive(s3, 'obj')
    cache = FakeMemcache()
    first = get(shunt, 'obj', env={'swift.cache': cache})
    it = iter(first.app_iter)
    next(it)
    second = get(shunt, 'obj', env={'swift.cache': cache})
    assert second.body == BODY
    assert second.restore.outcome == 'not started'
    b''.join(it)
    first.app_iter.close()
    assert first.restore.outcome == 'restored'
    assert cache.store == {}
    assert len(swift.requests('PUT')) == 1


# -- failures ---------------------------------------------------------------

def test_client_disconnect_leaves_nothing(shunt, s3, swift):
    archive(s3, 'obj')
    resp = get(shunt, 'obj')
    it = iter(resp.app_iter)
    got = next(it) + next(it)
    assert BODY.startswith(got)
    resp.app_iter.close()
    assert wait_for(resp) == 'failed'
    assert resp.restore.thread.dead
    assert swift.objects == {}
    (put,) = swift.requests('PUT')
    assert 'client disconnected' in shunt.logger.text('warning')


class BreakingRemote:
    """The real remote, whose object bodies break after ``after`` bytes."""

    def __init__(self, remote, after):
        self.remote = remote
        self.after = after
        self.closed = []

    def get_object(self, profile, key, byte_range=None):
        resp = self.remote.get_object(profile, key, byte_range)
        resp['Body'] = BreakingBody(resp['Body'], self.after, self.closed)
        return resp

    def __getattr__(self, name):
        return getattr(self.remote, name)


class BreakingBody:
    def __init__(self, body, after, closed):
        self.body, self.after, self.closed = body, after, closed
        self.sent = 0

    def read(self, size):
        if self.sent >= self.after:
            raise ConnectionResetError('remote went away')
        chunk = self.body.read(size)
        self.sent += len(chunk)
        return chunk

    def close(self):
        self.closed.append(True)
        self.body.close()


def test_remote_break_leaves_nothing(shunt, s3, swift):
    archive(s3, 'obj')
    shunt.remote = BreakingRemote(shunt.remote, 2 * CHUNK)
    resp = get(shunt, 'obj')
    with pytest.raises(ConnectionResetError):
        b''.join(resp.app_iter)
    resp.app_iter.close()
    assert wait_for(resp) == 'failed'
    assert swift.objects == {}
    assert shunt.remote.closed
    assert 'archived stream broke' in shunt.logger.text('warning')


@pytest.mark.parametrize('status', [503, 404, 413])
def test_local_put_failing_at_once_does_not_hurt_the_client(
        shunt, s3, swift, status):
    archive(s3, 'obj')
    swift.put_status[path_of('obj')] = status
    start = time.monotonic()
    resp = get(shunt, 'obj')
    assert resp.status_int == 200 and resp.body == BODY
    assert time.monotonic() - start < 5
    assert resp.restore.outcome == 'failed'
    assert swift.objects == {}


def test_stalled_local_put_is_abandoned(tmp_path, s3, swift):
    shunt = make_shunt(tmp_path, swift, conf={'restore_timeout': '0.2'})
    body = BODY * 8  # more than the queue holds
    archive(s3, 'obj', body)
    swift.stall = lambda path, got: got >= CHUNK
    start = time.monotonic()
    resp = get(shunt, 'obj')
    assert resp.body == body
    assert time.monotonic() - start < 5
    assert 'stalled' in resp.restore.abort_reason
    resp.restore.thread.kill()
    assert swift.objects == {}


def test_missing_container_is_not_restored(shunt, s3, swift):
    archive(s3, 'obj')
    del swift.containers['/v1/AUTH_a/c']
    for _ in range(2):
        resp = get(shunt, 'obj')
        assert resp.body == BODY and resp.restore.outcome == 'skipped'
    assert swift.requests('PUT') == []
    assert shunt.logger.text('info').count('its container answers 404') == 1
    assert shunt.logger.text('warning') == ''


# -- SLOs -------------------------------------------------------------------

MiB = 1024 * 1024
PARTS = [b'\x01' * (5 * MiB), b'\x02' * (5 * MiB + 3), b'\x03' * 1001]
SLO_BODY = b''.join(PARTS)


def entries(container='c_segments'):
    return [{'name': '/%s/p\u00e9%d' % (container, i),
             'hash': hashlib.md5(p).hexdigest(), 'bytes': len(p),
             'content_type': 'application/octet-stream',
             'last_modified': '2026-01-02T03:04:05.000000'}
            for i, p in enumerate(PARTS)]


def archive_slo(s3, name, manifest):
    archive_mpu(s3, name, PARTS, sidecar_body=json.dumps(manifest).encode())


def test_slo_restores_as_slo(shunt, s3, swift):
    archive_slo(s3, 'big', entries())
    resp = get(shunt, 'big')
    assert resp.body == SLO_BODY
    assert resp.restore.outcome == 'restored'
    # the segment container was created, in the container's policy
    assert '/v1/AUTH_a/c_segments' in swift.containers
    assert swift.containers['/v1/AUTH_a/c_segments'][
        'X-Storage-Policy'] == 'Policy-0'
    for i, part in enumerate(PARTS):
        seg = swift.objects[path_of('p\u00e9%d' % i, 'c_segments')]
        assert seg['body'] == part
    stored = swift.objects[path_of('big')]
    assert stored['body'] == SLO_BODY
    assert stored['headers']['Content-Type'] == 'video/x-test'
    assert stored['headers']['X-Object-Meta-Color'] == 'blue'
    assert stored['ts'] == last_modified(s3, 'big')
    assert [s['path'] for s in stored['manifest']] == [
        e['name'] for e in entries()]
    manifest_put = [c for c in swift.requests('PUT')
                    if c[2] == 'multipart-manifest=put']
    assert manifest_put[0][3]['If-None-Match'] == '*'


def test_slo_segments_commit_while_the_next_streams(shunt, s3, swift):
    archive_slo(s3, 'big', entries())
    events = []

    def hook(index):
        def run(stage):
            events.append((index, stage))
            if stage == 'commit':
                # the object servers' fsync, long enough for a loaded
                # machine to start the next segment meanwhile
                eventlet.sleep(0.3)
                events.append((index, 'committed'))
        return run
    for i in range(3):
        swift.put_hooks[path_of('p\u00e9%d' % i, 'c_segments')] = hook(i)
    resp = get(shunt, 'big')
    assert resp.body == SLO_BODY and resp.restore.outcome == 'restored'
    assert events.index((1, 'start')) < events.index((0, 'committed'))
    assert events.index((2, 'start')) < events.index((1, 'committed'))


def test_slo_reuses_identical_segments(shunt, s3, swift):
    archive_slo(s3, 'big', entries())
    swift.containers['/v1/AUTH_a/c_segments'] = {}
    existing = {'headers': {'Etag': hashlib.md5(PARTS[1]).hexdigest()},
                'body': PARTS[1], 'ts': Timestamp.now()}
    swift.objects[path_of('p\u00e91', 'c_segments')] = existing
    resp = get(shunt, 'big')
    assert resp.body == SLO_BODY
    assert resp.restore.outcome == 'restored'
    assert swift.objects[path_of('p\u00e91', 'c_segments')] is existing
    assert swift.objects[path_of('big')]['body'] == SLO_BODY


def test_slo_failure_deletes_only_its_own_segments(shunt, s3, swift):
    archive_slo(s3, 'big', entries())
    swift.containers['/v1/AUTH_a/c_segments'] = {}
    other = {'headers': {'Etag': 'f' * 32}, 'body': b'someone else',
             'ts': Timestamp.now()}
    swift.objects[path_of('p\u00e91', 'c_segments')] = other
    resp = get(shunt, 'big')
    assert resp.body == SLO_BODY
    assert resp.restore.outcome == 'failed'
    assert swift.objects == {path_of('p\u00e91', 'c_segments'): other}
    # what this restore wrote (the third segment may have been written
    # while the second was checked) is deleted, nothing else
    deleted = {c[1] for c in swift.requests('DELETE')}
    assert path_of('p\u00e91', 'c_segments') not in deleted
    assert path_of('p\u00e90', 'c_segments') in deleted
    assert 'exists with other content' in shunt.logger.text('warning')


def test_slo_manifest_failure_cleans_up(shunt, s3, swift):
    archive_slo(s3, 'big', entries())
    swift.put_status[path_of('big')] = 400
    resp = get(shunt, 'big')
    assert resp.body == SLO_BODY
    assert resp.restore.outcome == 'failed'
    assert swift.objects == {}
    assert len(swift.requests('DELETE')) == 3


def test_slo_client_disconnect_cleans_up(shunt, s3, swift):
    archive_slo(s3, 'big', entries())
    resp = get(shunt, 'big')
    it = iter(resp.app_iter)
    got = 0
    while got < 6 * MiB:
        got += len(next(it))
    resp.app_iter.close()
    assert wait_for(resp) == 'failed'
    assert swift.objects == {}
    assert [c[1] for c in swift.requests('DELETE')] == [
        path_of('p\u00e90', 'c_segments')]


def test_slo_ttl_reaches_segments(tmp_path, s3, swift):
    shunt = make_shunt(tmp_path, swift, restore_ttl=60)
    archive_slo(s3, 'big', entries())
    resp = get(shunt, 'big')
    assert resp.body == SLO_BODY
    delete_ats = {c[3].get('X-Delete-At') for c in swift.requests('PUT')
                  if c[1] != '/v1/AUTH_a/c_segments'}
    assert len(delete_ats) == 1 and None not in delete_ats
    assert abs(int(delete_ats.pop()) - (time.time() + 60)) < 5


def test_slo_with_ranged_segments_is_not_restored(shunt, s3, swift):
    manifest = entries()
    manifest[2]['range'] = '0-1000'
    manifest[2]['bytes'] = 2000
    archive_slo(s3, 'big', manifest)
    resp = get(shunt, 'big')
    assert resp.body == SLO_BODY
    assert resp.headers['X-Static-Large-Object'] == 'True'
    assert swift.requests('PUT') == []
    assert 'ranges, inline data or nested SLOs' in shunt.logger.text('info')


def test_part_number_never_restores(shunt, s3, swift):
    archive_slo(s3, 'big', entries())
    resp = get(shunt, 'big', query='?part-number=1')
    assert resp.status_int == 206 and resp.body == PARTS[0]
    assert swift.requests('PUT') == []


# -- larger than max_file_size ------------------------------------------------

@pytest.fixture
def small_max_file_size(monkeypatch):
    monkeypatch.setattr(constraints, 'MAX_FILE_SIZE', 100000)


def test_oversize_object_restores_as_slo(tmp_path, s3, swift,
                                         small_max_file_size):
    shunt = make_shunt(tmp_path, swift,
                       conf={'restore_segment_size': '60000'},
                       restore_ttl=600)
    archive(s3, 'huge', ContentType='text/x-big', Metadata={'k': 'v'})
    resp = get(shunt, 'huge')
    assert resp.body == BODY
    assert resp.restore.outcome == 'restored'
    stored = swift.objects[path_of('huge')]
    assert stored['body'] == BODY
    assert stored['headers']['X-Static-Large-Object'] == 'True'
    assert stored['headers']['Content-Type'] == 'text/x-big'
    assert stored['headers']['X-Object-Meta-K'] == 'v'
    segments = stored['manifest']
    assert [s['size_bytes'] for s in segments] == \
        slo.fixed_segments(len(BODY), 60000)
    for index, seg in enumerate(segments):
        container, name = seg['path'][1:].split('/', 1)
        assert container == 'c_segments'
        assert name.startswith('huge/restore/')
        assert name.endswith('/%d/60000/%08d' % (len(BODY), index))
    assert all('X-Delete-At' in c[3] for c in swift.requests('PUT')
               if c[1] != '/v1/AUTH_a/c_segments')


def test_oversize_object_with_wrong_md5_is_not_kept(tmp_path, s3, swift,
                                                    small_max_file_size):
    shunt = make_shunt(tmp_path, swift,
                       conf={'restore_segment_size': '60000'})
    archive(s3, 'huge')
    resp = get(shunt, 'huge')
    resp.restore.etag = '0' * 32  # as if S3 lied
    assert resp.body == BODY
    assert resp.restore.outcome == 'failed'
    assert swift.objects == {}
    assert 'has MD5' in shunt.logger.text('warning')
