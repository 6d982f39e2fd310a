"""The sync daemon's per-row behaviour against moto's in-process S3 and a
small in-memory Swift behind Swift's own InternalClient.

Assertions are on what lands in the bucket (keys, bodies, Etags, metadata,
sidecars) and in Swift (objects, tombstones), and on the shunt reading it
back (``swift_object_headers``, the SLO sidecar loader)."""

import base64
import datetime
import hashlib
import json
import time

import boto3
import pytest
from moto import mock_aws
from swift.common.header_key_dict import HeaderKeyDict
from swift.common.internal_client import InternalClient
from swift.common.swob import Request, Response, str_to_wsgi, wsgi_to_str
from swift.common.utils import Timestamp, encode_timestamps
from swift.container.backend import ContainerBroker

from shunt.core import headers as shunt_headers
from shunt.core.config import parse_profile
from shunt.core.layout import manifest_key, object_key
from shunt.core.remote import RemoteError, S3Remote
from shunt.core.tombstones import (
    archive_timestamp,
    delete_timestamp,
    is_archiver_tombstone,
)
from shunt.daemon import bucket, rows, transfer, upload
from shunt.daemon.rows import (
    Outcome,
    RowFailed,
    RowHandler,
    RowLater,
    matches,
    owned_segment,
)
from shunt.proxy import slo
from tests.unit.helpers import BUCKET, FakeLogger

MiB = 1024 * 1024
ACCOUNT, CONTAINER = 'AUTH_a', 'c'
T0 = 1700000000.0


def ts(offset=0.0):
    return Timestamp(T0 + offset)


def md5(data):
    return hashlib.md5(data).hexdigest()


class FakeCluster:
    """An in-memory Swift (what the proxy answers an internal client):
    objects with their headers and timestamps, tombstones, Range and
    If-Match through swob, a DELETE that loses to newer versions (409)."""

    def __init__(self):
        self.objects = {}
        self.tombstones = {}
        self.requests = []
        self.before = {}   # (method, path) -> callable run before answering
        self.corrupt = set()
        # what InternalClient looks up on the app
        self._pipeline_final_app = self
        self.get_object_ring = self.container_ring = None
        self.account_ring = None
        self.auto_create_account_prefix = '.'
        self.backend_user_agent = None

    @staticmethod
    def path(container, obj, account=ACCOUNT):
        return f'/v1/{account}/{container}/{obj}'

    def put(self, container, obj, body, headers=None, when=None,
            account=ACCOUNT):
        when = Timestamp(when if when is not None else ts())
        self.objects[self.path(container, obj, account)] = {
            'body': body, 'etag': md5(body), 'ts': when,
            'headers': dict(headers or {})}
        return when

    def post(self, container, obj, headers, when):
        entry = self.objects[self.path(container, obj)]
        entry['headers'] = {k: v for k, v in entry['headers'].items()
                            if not k.lower().startswith('x-object-meta-')}
        entry['headers'].update(headers)
        entry['ts'] = Timestamp(when)

    def get(self, container, obj):
        return self.objects.get(self.path(container, obj))

    def __call__(self, env, start_response):
        req = Request(env)
        path = wsgi_to_str(req.environ['PATH_INFO'])
        self.requests.append((req.method, path, dict(req.headers)))
        hook = self.before.pop((req.method, path), None)
        if hook:
            hook()
        entry = self.objects.get(path)
        if req.method == 'DELETE':
            when = Timestamp(req.headers['X-Timestamp'])
            current = entry['ts'] if entry else self.tombstones.get(path)
            if current is not None and current >= when:
                resp = Response(status=409, headers={
                    'X-Backend-Timestamp': current.internal})
            else:
                self.objects.pop(path, None)
                self.tombstones[path] = when
                resp = Response(status=204 if entry else 404)
            return resp(env, start_response)
        if entry is None:
            headers = {}
            if path in self.tombstones:
                headers['X-Backend-Timestamp'] = \
                    self.tombstones[path].internal
            return Response(status=404, headers=headers)(env, start_response)
        body = entry['body']
        if path in self.corrupt:
            body = b'X' + body[1:]
        headers = {'Content-Type': 'application/octet-stream',
                   'X-Timestamp': entry['ts'].normal,
                   'X-Backend-Timestamp': entry['ts'].internal}
        headers.update({k: str_to_wsgi(v)
                        for k, v in entry['headers'].items()})
        resp = Response(request=req, body=body, headers=headers,
                        conditional_response=True)
        resp.etag = entry['etag']
        resp.last_modified = entry['ts'].ceil()
        return resp(env, start_response)


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client('s3', region_name='us-east-1')
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def cluster():
    return FakeCluster()


@pytest.fixture
def logger():
    return FakeLogger()


@pytest.fixture
def handler(s3, cluster, logger):
    swift = InternalClient(None, 'test-daemon', 1, app=cluster)
    remote = S3Remote(payload_signing=False)
    return RowHandler({}, logger, swift, remote)


def profile(**extra):
    raw = {'account': ACCOUNT, 'container': CONTAINER,
           'aws_bucket': BUCKET, 'aws_identity': 'id',
           'aws_secret': 'secret'}
    raw.update(extra)
    return parse_profile(raw, 'sync.json', 0, shunted_only=False)


ARCHIVE = {'retain_local': False, 'propagate_delete': False}


def row(name, when=None, meta=None, deleted=0, policy=0, size=MiB):
    """A DB row (its size above small_object_size unless told: the
    object's bytes are streamed by a second GET)."""
    when = Timestamp(when if when is not None else ts())
    return {'name': name, 'ROWID': 1, 'deleted': deleted,
            'storage_policy_index': policy, 'size': size, 'etag': '',
            'content_type': 'application/octet-stream',
            'created_at': encode_timestamps(
                when, when, Timestamp(meta) if meta else when)}


def key_of(name):
    return object_key(ACCOUNT, CONTAINER, name)


def bucket_keys(s3):
    return sorted(o['Key'] for o in s3.list_objects(
        Bucket=BUCKET).get('Contents', []))


def s3_puts(cluster_or_none, s3):
    return bucket_keys(s3)


def raw_head(s3, key):
    return s3.head_object(Bucket=BUCKET, Key=key)


# -- pure ---------------------------------------------------------------

@pytest.mark.parametrize('criteria,expected', [
    (None, True),
    ({}, True),
    ({'x-object-meta-tier': 'COLD'}, True),
    ({'X-Object-Meta-Tier': 'cold'}, True),
    ({'x-object-meta-tier': 'hot'}, False),
    ({'x-object-meta-missing': 'x'}, False),
    ({'NOT': {'x-object-meta-tier': 'hot'}}, True),
    ({'AND': [{'x-object-meta-tier': 'cold'},
              {'content-type': 'text/plain'}]}, True),
    ({'AND': [{'x-object-meta-tier': 'cold'},
              {'content-type': 'image/png'}]}, False),
    ({'OR': [{'x-object-meta-msd': 'boo'},
             {'x-object-meta-msd': 'bár'}]}, True),
])
def test_selection_criteria_grammar(criteria, expected):
    headers = {'x-object-meta-tier': 'cold', 'content-type': 'text/plain',
               'x-object-meta-msd': 'BÁR'}
    assert matches(criteria, headers) is expected


def test_object_params_encode_what_the_shunt_decodes():
    version = Timestamp('1700000000.12345_0000000000000003')
    headers = {'X-Object-Meta-Color': 'blue',
               'X-Object-Meta-Note': str_to_wsgi('café'),
               'X-Delete-At': '1900000000',
               'X-Object-Manifest': str_to_wsgi('segs/vidé/'),
               'Content-Type': 'text/plain;swift_bytes=12',
               'Content-Encoding': 'gzip',
               'Content-Disposition': str_to_wsgi(
                   'attachment; filename="résumé.txt"'),
               'Expires': 'Wed, 21 Oct 2037 07:28:00 GMT',
               'X-Object-Sysmeta-Secret': 'x'}
    meta, content_type, extra = bucket.object_params(headers, version)
    assert meta == {'color': 'blue',
                    'note': shunt_headers.encode_meta_value('café'),
                    'swift-timestamp': version.internal,
                    'x-delete-at': '1900000000',
                    'x-object-manifest': 'segs/vid%C3%A9/'}
    assert content_type == 'text/plain'
    assert extra['ContentEncoding'] == 'gzip'
    # botocore sends str UTF-8 encoded: the native string of Swift's bytes
    assert extra['ContentDisposition'] == 'attachment; filename="résumé.txt"'
    assert extra['Expires'].timestamp() == 2139722880
    # a copy holding those bytes (read back as latin-1, as http.client
    # decodes them) is the same
    head = {'ContentLength': 3, 'ETag': '"%s"' % md5(b'abc'),
            'ContentType': 'text/plain', 'Metadata': meta,
            'ResponseMetadata': {'HTTPHeaders': {
                'content-disposition': str_to_wsgi(
                    'attachment; filename="résumé.txt"'),
                'content-encoding': 'gzip',
                'expires': 'Wed, 21 Oct 2037 07:28:00 GMT'}}}
    assert bucket.remote_state(head, version, 3, md5(b'abc'), meta,
                               content_type, extra) == 'same'
    head['ResponseMetadata']['HTTPHeaders']['content-disposition'] = \
        'attachment; filename="resume.txt"'
    assert bucket.remote_state(head, version, 3, md5(b'abc'), meta,
                               content_type, extra) == 'metadata'


def test_metadata_names_s3_cannot_take_are_refused():
    with pytest.raises(bucket.BadMetadata):
        bucket.object_params({'X-Object-Meta-a b': 'x'}, ts())


def test_part_plan_and_expand():
    seg = {'bytes': 5 * MiB, 'hash': 'a' * 32, 'name': '/s/1'}
    last = {'bytes': 10, 'hash': 'b' * 32, 'name': '/s/2'}
    ok = slo.parse_manifest(json.dumps([seg, last]).encode())
    assert upload.part_plan(ok) is None
    small = slo.parse_manifest(json.dumps([last, seg]).encode())
    assert 'less than' in upload.part_plan(small)
    ranged = slo.parse_manifest(json.dumps(
        [dict(seg, range='1-3')]).encode())
    assert 'range' in upload.part_plan(ranged)
    pieces = upload.expand(ranged, None)
    assert [(p.start, p.length, p.whole) for p in pieces] == [(1, 3, False)]


def test_cut_splits_pieces_at_part_boundaries():
    pieces = [upload.Piece(10, 's', 'a', whole=True),
              upload.Piece(3, data=b'xyz'),
              upload.Piece(5, 's', 'b', start=2)]
    part = upload.cut(pieces, 8, 15)
    assert [(p.obj, p.start, p.length, p.data, p.whole) for p in part] == [
        ('a', 8, 2, None, False), (None, 0, 3, b'xyz', False),
        ('b', 2, 2, None, False)]
    assert upload.spans(10, 4) == [(0, 4), (4, 8), (8, 10)]


def test_span_reader_checks_lengths_and_rewinds():
    opened = []

    def open_piece(piece):
        opened.append(piece.obj)
        return [b'ab', b'cd'] if piece.obj == 'a' else [b'e']

    reader = upload.SpanReader([upload.Piece(4, 's', 'a'),
                                upload.Piece(1, 's', 'b')], open_piece)
    assert reader.read(3) == b'abc'
    assert reader.tell() == 3
    reader.seek(0)
    assert reader.read() == b'abcde'
    assert reader.read() == b''
    assert opened == ['a', 'a', 'b']
    short = upload.SpanReader([upload.Piece(9, 's', 'a')], open_piece)
    with pytest.raises(upload.LocalReadError, match='ended after 4 of 9'):
        short.read()


def test_span_reader_hands_whole_chunks_over_without_copying():
    chunks = [b'a' * 1000, b'b' * 1000, b'c' * 10]
    reader = upload.SpanReader([upload.Piece(2010, 's', 'a')],
                               lambda piece: iter(chunks))
    assert reader.read(1000) is chunks[0]
    assert reader.read(1500) == b'b' * 1000 + b'c' * 10
    assert reader.read(10) == b''


def test_span_reader_holds_back_the_last_bytes_of_a_corrupt_piece():
    piece = upload.Piece(4, 's', 'a', etag=md5(b'abcd'), whole=True)
    good = upload.SpanReader([piece], lambda p: [b'ab', b'cd'], digest=True)
    assert good.read(1) + good.read(10) == b'abcd'
    assert good.md5.hexdigest() == md5(b'abcd')
    bad = upload.SpanReader([piece], lambda p: [b'ab', b'cX'])
    assert bad.read(2) == b'ab'
    with pytest.raises(upload.LocalReadError, match='MD5'):
        bad.read(2)


def test_span_reader_leaves_the_md5_to_a_store_that_checks_it():
    body = b'abcd'
    piece = upload.Piece(4, 's', 'a', etag=md5(body), whole=True)
    corrupt = [b'ab', b'cX']
    # the request carries the Etag to a store that checks it (a remote
    # Swift answers 422): nothing is hashed here
    checked = upload.SpanReader([piece], lambda p: list(corrupt),
                                store_checks=True)
    assert checked.read() == b'abcX'
    assert checked._piece_md5 is None
    # a span of several pieces has no single Etag the store could check
    other = upload.Piece(1, 's', 'b', etag=md5(b'e'), whole=True)
    several = upload.SpanReader(
        [piece, other], lambda p: list(corrupt) if p.obj == 'a' else [b'e'],
        store_checks=True)
    with pytest.raises(upload.LocalReadError, match='MD5'):
        several.read()
    assert several.position < 4


def test_read_ahead_keeps_order_bounds_memory_and_raises_in_place():
    import eventlet
    produced = []

    def source():
        for i in range(6):
            produced.append(i)
            yield bytes([i]) * 10
        raise OSError('disk gone')
    reader = upload.ReadAhead(source(), depth=2)
    assert next(reader) == bytes([0]) * 10
    eventlet.sleep(0)
    # at most depth chunks waiting beyond the one handed out (plus the
    # one the thread holds while the queue is full)
    assert len(produced) <= 4
    assert [next(reader) for _ in range(5)] == [bytes([i]) * 10
                                                for i in range(1, 6)]
    with pytest.raises(OSError, match='disk gone'):
        next(reader)
    closed = []

    def endless():
        try:
            while True:
                yield b'x'
        finally:
            closed.append(True)
    reader = upload.ReadAhead(endless())
    assert next(reader) == b'x'
    reader.close()
    assert closed == [True]


# -- plain objects --------------------------------------------------------

def test_plain_object_uploaded_with_its_metadata(handler, cluster, s3):
    body = b'hello world' * 1000
    when = cluster.put(CONTAINER, 'o', body, {
        'Content-Type': 'text/plain', 'X-Object-Meta-Color': 'blue',
        'X-Object-Meta-Note': 'café', 'Content-Disposition': 'inline',
        'X-Delete-At': '4000000000'})
    assert handler.handle(profile(), row('o')) is Outcome.UPLOADED
    got = s3.get_object(Bucket=BUCKET, Key=key_of('o'))
    assert got['Body'].read() == body
    assert got['ETag'] == '"%s"' % md5(body)
    assert got['ContentType'] == 'text/plain'
    assert got['Metadata'] == {
        'color': 'blue', 'note': shunt_headers.encode_meta_value('café'),
        'swift-timestamp': when.internal, 'x-delete-at': '4000000000'}
    # the shunt reads back what Swift answered
    back = HeaderKeyDict(shunt_headers.swift_object_headers(
        got['ResponseMetadata']['HTTPHeaders']))
    assert back['Etag'] == md5(body)
    assert back['Content-Type'] == 'text/plain'
    assert back['Content-Disposition'] == 'inline'
    assert wsgi_to_str(back['X-Object-Meta-Note']) == 'café'
    assert back['X-Object-Meta-Color'] == 'blue'
    assert back['X-Delete-At'] == '4000000000'
    assert back['X-Timestamp'] == when.normal
    assert 'X-Object-Meta-Swift-Timestamp' not in back
    # the local GET carried the row's policy and the HEAD's Etag
    gets = [h for m, p, h in cluster.requests if m == 'GET']
    assert gets[0]['X-Backend-Storage-Policy-Index'] == '0'
    assert gets[0]['If-Match'] == md5(body)
    assert ('update_stats', 'bytes', len(body)) in handler.logger.metrics
    assert ('increment', 'uploaded') in handler.logger.metrics


def test_up_to_date_object_costs_no_upload(handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'data', {'X-Object-Meta-A': '1'})
    assert handler.handle(profile(), row('o')) is Outcome.UPLOADED
    cluster.requests.clear()
    assert handler.handle(profile(), row('o')) is Outcome.NOOP
    assert [m for m, _, _ in cluster.requests] == ['HEAD']


def test_post_is_copied_in_place(handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'data', {'X-Object-Meta-A': '1'})
    assert handler.handle(profile(), row('o')) is Outcome.UPLOADED
    cluster.post(CONTAINER, 'o', {'X-Object-Meta-B': '2'}, ts(5))
    cluster.requests.clear()
    assert handler.handle(profile(), row('o', meta=ts(5))) is \
        Outcome.METADATA
    assert [m for m, _, _ in cluster.requests] == ['HEAD']
    head = raw_head(s3, key_of('o'))
    assert head['Metadata'] == {'b': '2', 'swift-timestamp': ts(5).internal}
    assert s3.get_object(Bucket=BUCKET, Key=key_of('o'))['Body'].read() \
        == b'data'


def test_overwrite_is_uploaded_again(handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'one')
    handler.handle(profile(), row('o'))
    cluster.put(CONTAINER, 'o', b'two', when=ts(1))
    assert handler.handle(profile(), row('o', ts(1))) is Outcome.UPLOADED
    assert s3.get_object(Bucket=BUCKET, Key=key_of('o'))['Body'].read() \
        == b'two'


def test_later_version_in_the_bucket_is_left_alone(handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'new', when=ts(10))
    handler.handle(profile(), row('o', ts(10)))
    cluster.put(CONTAINER, 'o', b'old', when=ts(1))
    assert handler.handle(profile(), row('o', ts(1))) is Outcome.SKIPPED
    assert s3.get_object(Bucket=BUCKET, Key=key_of('o'))['Body'].read() \
        == b'new'


def test_empty_object(handler, cluster, s3):
    cluster.put(CONTAINER, 'empty', b'')
    assert handler.handle(profile(), row('empty')) is Outcome.UPLOADED
    assert raw_head(s3, key_of('empty'))['ContentLength'] == 0


def test_large_plain_object_goes_as_multipart(s3, cluster, logger):
    swift = InternalClient(None, 'test-daemon', 1, app=cluster)
    handler = RowHandler({'max_put_size': str(6 * MiB),
                          'part_size': str(5 * MiB)}, logger, swift,
                         S3Remote(payload_signing=False))
    body = bytes(range(256)) * (45 * 1024)   # 11.25 MiB
    cluster.put(CONTAINER, 'big', body)
    assert handler.handle(profile(**ARCHIVE), row('big')) is \
        Outcome.ARCHIVED
    got = s3.get_object(Bucket=BUCKET, Key=key_of('big'))
    assert got['Body'].read() == body
    assert got['ETag'].strip('"').endswith('-3')
    assert s3.list_multipart_uploads(Bucket=BUCKET).get('Uploads') is None
    assert cluster.get(CONTAINER, 'big') is None
    # the shunt answers the Swift Etag, not the multipart one
    back = shunt_headers.swift_object_headers(
        got['ResponseMetadata']['HTTPHeaders'])
    assert back['Etag'] == md5(body)
    assert not any(k.lower().startswith('x-object-meta-') for k in back)
    # and the next visit finds it up to date
    cluster.put(CONTAINER, 'big', body)
    assert handler.handle(profile(), row('big')) is Outcome.NOOP


# -- archive mode ---------------------------------------------------------

def test_archive_deletes_the_local_copy_with_a_marked_tombstone(
        handler, cluster, s3):
    when = cluster.put(CONTAINER, 'o', b'cold data')
    assert handler.handle(profile(**ARCHIVE), row('o')) is Outcome.ARCHIVED
    assert cluster.get(CONTAINER, 'o') is None
    tombstone = cluster.tombstones[cluster.path(CONTAINER, 'o')]
    assert tombstone == archive_timestamp(when)
    assert is_archiver_tombstone(tombstone)
    head = raw_head(s3, key_of('o'))
    assert head['Metadata']['swift-timestamp'] == when.internal
    assert ('increment', 'archived') in handler.logger.metrics
    # the daemon's own tombstone row is never propagated
    assert handler.handle(profile(retain_local=False), row(
        'o', tombstone, deleted=1)) is Outcome.SKIPPED
    assert bucket_keys(s3) == [key_of('o')]


def test_archive_of_an_up_to_date_copy_verifies_then_deletes(
        handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'x')
    assert handler.handle(profile(), row('o')) is Outcome.UPLOADED
    assert handler.handle(profile(**ARCHIVE), row('o')) is Outcome.ARCHIVED
    assert cluster.get(CONTAINER, 'o') is None


def test_archive_loses_to_a_newer_write(handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'old')
    path = cluster.path(CONTAINER, 'o')
    cluster.before[('DELETE', path)] = lambda: cluster.put(
        CONTAINER, 'o', b'new', when=ts(0.00001))
    assert handler.handle(profile(**ARCHIVE), row('o')) is Outcome.KEPT
    assert cluster.get(CONTAINER, 'o')['body'] == b'new'
    assert ('increment', 'kept') in handler.logger.metrics


def test_archive_loses_to_a_post_in_the_same_second(handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'data')
    path = cluster.path(CONTAINER, 'o')
    cluster.before[('DELETE', path)] = lambda: cluster.post(
        CONTAINER, 'o', {'X-Object-Meta-New': '1'}, ts(0.00001))
    assert handler.handle(profile(**ARCHIVE), row('o')) is Outcome.KEPT
    assert cluster.get(CONTAINER, 'o')['headers'] == {
        'X-Object-Meta-New': '1'}


def test_failed_verification_keeps_the_local_copy(handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'data')
    handler.handle(profile(), row('o'))
    s3.copy_object(Bucket=BUCKET, Key=key_of('o'), CopySource={
        'Bucket': BUCKET, 'Key': key_of('o')}, MetadataDirective='REPLACE',
        Metadata={'swift-timestamp': ts(-5).internal})
    # a later HEAD shows another version: nothing is deleted
    real_head = handler.remote.head_object
    calls = []

    def head(profile, key):
        calls.append(key)
        resp = real_head(profile, key)
        if len(calls) > 1:
            resp['ContentLength'] += 1
        return resp
    handler.remote.head_object = head
    with pytest.raises(RowFailed) as exc:
        handler.handle(profile(**ARCHIVE), row('o'))
    assert exc.value.kind == 'verify'
    assert cluster.get(CONTAINER, 'o') is not None


def counting(handler, method):
    """Count the calls of one of the handler's remote methods."""
    real, calls = getattr(handler.remote, method), []

    def call(*args, **kwargs):
        calls.append(args[1] if len(args) > 1 else None)
        return real(*args, **kwargs)
    setattr(handler.remote, method, call)
    return calls


def test_archive_after_one_put_is_verified_by_its_answer(
        handler, cluster, s3):
    when = cluster.put(CONTAINER, 'o', b'cold data')
    heads = counting(handler, 'head_object')
    assert handler.handle(profile(**ARCHIVE), row('o', size=9)) is \
        Outcome.ARCHIVED
    # the HEAD before the upload only: the PUT's answer verified the copy
    assert heads == [key_of('o')]
    assert raw_head(s3, key_of('o'))['Metadata']['swift-timestamp'] == \
        when.internal
    assert cluster.get(CONTAINER, 'o') is None


def test_verify_with_head_heads_the_copy_again(s3, cluster, logger):
    swift = InternalClient(None, 'test-daemon', 1, app=cluster)
    handler = RowHandler({'verify_with_head': 'true'}, logger, swift,
                         S3Remote(payload_signing=False))
    cluster.put(CONTAINER, 'o', b'cold data')
    heads = counting(handler, 'head_object')
    assert handler.handle(profile(**ARCHIVE), row('o')) is Outcome.ARCHIVED
    assert heads == [key_of('o'), key_of('o')]


def test_a_put_answering_another_etag_keeps_the_local_copy(
        handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'data')
    real = handler.remote.put_object

    def put(*args, **kwargs):
        resp = real(*args, **kwargs)
        return dict(resp, ETag='"%s"' % md5(b'other'))
    handler.remote.put_object = put
    with pytest.raises(RowFailed) as exc:
        handler.handle(profile(**ARCHIVE), row('o', size=4))
    assert exc.value.kind == 'verify'
    assert cluster.get(CONTAINER, 'o') is not None


def recording_puts(handler):
    puts = []
    real_put = handler.remote.put_object

    def put(profile_, key, body, **params):
        puts.append((key, params.get('IfNoneMatch')))
        return real_put(profile_, key, body, **params)
    handler.remote.put_object = put
    return puts


def test_fresh_small_objects_are_written_if_absent_without_a_head(
        handler, cluster, s3):
    for name in ('a', 'b', 'c'):
        cluster.put(CONTAINER, name, name.encode() * 10)
    heads = counting(handler, 'head_object')
    puts = recording_puts(handler)
    # first the store is probed (moto refuses a PUT with If-None-Match: *
    # of a key it holds) at a key of its own, deleted afterwards
    assert handler.handle(profile(**ARCHIVE), row('a', size=10),
                          fresh=True) is Outcome.ARCHIVED
    probe = puts[0][0]
    assert probe.startswith(transfer.PROBE_PREFIX)
    assert puts == [(probe, None), (probe, '*'), (key_of('a'), '*')]
    assert heads == []
    assert bucket_keys(s3) == [key_of('a')]
    assert handler.transfer.writes_if_absent(profile())
    # then a fresh row costs one PutObject: no HEAD before or after it
    del heads[:], puts[:]
    assert handler.handle(profile(**ARCHIVE), row('b', size=10),
                          fresh=True) is Outcome.ARCHIVED
    assert heads == [] and puts == [(key_of('b'), '*')]
    assert cluster.get(CONTAINER, 'b') is None
    assert s3.get_object(Bucket=BUCKET, Key=key_of('b'))['Body'].read() \
        == b'b' * 10
    # a row that is not fresh keeps its HEAD
    assert handler.handle(profile(), row('c', size=10)) is \
        Outcome.UPLOADED
    assert heads == [key_of('c')]


def test_a_failed_probe_keeps_the_head_first_for_a_while(
        handler, cluster, s3, monkeypatch):
    real_put = handler.remote.put_object

    def put(profile_, key, body, **params):
        if key.startswith(transfer.PROBE_PREFIX):
            raise RemoteError('throttled', 'slow down', 503, 'SlowDown')
        return real_put(profile_, key, body, **params)
    handler.remote.put_object = put
    cluster.put(CONTAINER, 'a', b'a')
    heads = counting(handler, 'head_object')
    assert handler.handle(profile(), row('a', size=1), fresh=True) is \
        Outcome.UPLOADED
    assert heads == [key_of('a')]
    assert handler.transfer.honours_if_absent == {}
    assert bucket_keys(s3) == [key_of('a')]
    # tried again only after PROBE_RETRY
    handler.remote.put_object = real_put
    assert not handler.transfer.writes_if_absent(profile())
    later = time.time() + transfer.PROBE_RETRY + 1
    monkeypatch.setattr(transfer.time, 'time', lambda: later)
    assert handler.transfer.writes_if_absent(profile())


def test_a_fresh_row_whose_key_exists_is_compared_as_usual(
        handler, cluster, s3):
    handler.transfer.honours_if_absent[
        handler.transfer._store(profile())] = True
    cluster.put(CONTAINER, 'o', b'data')
    assert handler.handle(profile(), row('o', size=4)) is Outcome.UPLOADED
    heads = counting(handler, 'head_object')
    puts = counting(handler, 'put_object')
    # same version: the conditional PUT is refused, the HEAD finds it
    assert handler.handle(profile(), row('o', size=4), fresh=True) is \
        Outcome.NOOP
    assert heads == [key_of('o')] and puts == [key_of('o')]
    # a later version in the bucket is left alone
    cluster.put(CONTAINER, 'p', b'old', when=ts(-10))
    s3.put_object(Bucket=BUCKET, Key=key_of('p'), Body=b'newer', Metadata={
        'swift-timestamp': ts(5).internal})
    assert handler.handle(profile(**ARCHIVE), row('p', when=ts(-10),
                                                  size=3),
                          fresh=True) is Outcome.SKIPPED
    assert s3.get_object(Bucket=BUCKET, Key=key_of('p'))['Body'].read() \
        == b'newer'
    assert cluster.get(CONTAINER, 'p')['body'] == b'old'


def test_a_store_ignoring_if_none_match_keeps_the_head_first(
        handler, cluster, s3):
    real_put = handler.remote.put_object

    def put(profile_, key, body, **params):
        params.pop('IfNoneMatch', None)
        return real_put(profile_, key, body, **params)
    handler.remote.put_object = put
    cluster.put(CONTAINER, 'a', b'a')
    cluster.put(CONTAINER, 'b', b'b')
    heads = counting(handler, 'head_object')
    assert handler.handle(profile(), row('a', size=1), fresh=True) is \
        Outcome.UPLOADED
    assert bucket_keys(s3) == [key_of('a')]
    assert handler.transfer.honours_if_absent == {
        handler.transfer._store(profile()): False}
    assert handler.handle(profile(), row('b', size=1), fresh=True) is \
        Outcome.UPLOADED
    assert heads == [key_of('a'), key_of('b')]
    assert any('ignores If-None-Match' in line
               for _, line in handler.logger.lines)


def test_conditional_put_can_be_disabled(s3, cluster, logger):
    swift = InternalClient(None, 'test-daemon', 1, app=cluster)
    handler = RowHandler({'conditional_put': 'false'}, logger, swift,
                         S3Remote(payload_signing=False))
    cluster.put(CONTAINER, 'a', b'a')
    cluster.put(CONTAINER, 'b', b'b')
    heads = counting(handler, 'head_object')
    for name in ('a', 'b'):
        assert handler.handle(profile(), row(name, size=1), fresh=True) \
            is Outcome.UPLOADED
    assert heads == [key_of('a'), key_of('b')]
    assert handler.transfer.honours_if_absent == {}


def test_rows_of_one_object_are_handled_one_at_a_time(handler, cluster, s3):
    import eventlet
    cluster.put(CONTAINER, 'o', b'data')
    cluster.put(CONTAINER, 'p', b'data')
    inside, most, order = [], [], []

    def slow_get(env_path):
        def hook():
            inside.append(env_path)
            most.append(len(inside))
            eventlet.sleep(0.05)
            inside.remove(env_path)
        return hook

    def handle(name):
        path = cluster.path(CONTAINER, name)
        cluster.before[('GET', path)] = slow_get(path)
        outcome = handler.handle(profile(), row(name, size=4))
        order.append((name, outcome))
        return outcome
    pool = eventlet.GreenPool()
    # two rows of 'o' and one of 'p' at once: 'p' overlaps the first 'o',
    # the second 'o' waits for the first
    threads = [pool.spawn(handle, n) for n in ('o', 'o', 'p')]
    outcomes = [t.wait() for t in threads]
    assert outcomes == [Outcome.UPLOADED, Outcome.NOOP, Outcome.UPLOADED]
    assert max(most) == 2
    assert [n for n, _ in order].index('p') < 2
    assert handler._busy == {}


# -- delete rows ----------------------------------------------------------

def test_delete_row_deletes_the_bucket_copy(handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'data')
    handler.handle(profile(), row('o'))
    assert handler.handle(profile(), row('o', ts(5), deleted=1)) is \
        Outcome.REMOTE_DELETED
    assert bucket_keys(s3) == []


def test_delete_row_spares_a_newer_bucket_copy(handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'data', when=ts(10))
    handler.handle(profile(), row('o', ts(10)))
    assert handler.handle(profile(), row('o', ts(5), deleted=1)) is \
        Outcome.SKIPPED
    assert bucket_keys(s3) == [key_of('o')]


def test_delete_row_of_a_foreign_copy_uses_last_modified(handler, s3):
    s3.put_object(Bucket=BUCKET, Key=key_of('o'), Body=b'1space')
    # a tombstone older than the upload: kept
    assert handler.handle(profile(), row('o', ts(), deleted=1)) is \
        Outcome.SKIPPED
    assert bucket_keys(s3) == [key_of('o')]
    future = Timestamp(4000000000)
    assert handler.handle(profile(), row('o', future, deleted=1)) is \
        Outcome.REMOTE_DELETED


def test_delete_row_of_a_foreign_copy_in_the_window_of_doubt(handler, s3):
    """Last-Modified (the store's clock, whole seconds) within
    remote_clock_skew + 1 s of the delete: deleted only when the shunt's
    tombstone recorded this copy's Etag; otherwise kept."""
    s3.put_object(Bucket=BUCKET, Key=key_of('o'), Body=b'1space')
    modified = raw_head(s3, key_of('o'))['LastModified'].timestamp()
    etag = md5(b'1space')

    def delete_row(when):
        return handler.handle(profile(), row('o', when, deleted=1))
    # a plain delete half a second after the archive: undecidable, kept
    # (before, a rounded-up Last-Modified made it "newer": kept by chance;
    # a truncated one deleted it)
    assert delete_row(Timestamp(modified + 0.5)) is Outcome.SKIPPED
    assert delete_row(Timestamp(modified - 0.5)) is Outcome.SKIPPED
    # the shunt's tombstone for another copy: kept
    assert delete_row(delete_timestamp(modified - 0.5, md5(b'other'))) is \
        Outcome.SKIPPED
    assert delete_row(delete_timestamp(modified - 0.5, None)) is \
        Outcome.SKIPPED
    assert bucket_keys(s3) == [key_of('o')]
    # ... for this copy, even with the delete "before" it by the clocks
    assert delete_row(delete_timestamp(modified - 0.5, etag)) is \
        Outcome.REMOTE_DELETED
    assert bucket_keys(s3) == []
    # beyond the window (5 s skew + 1 s): decided by the time alone
    s3.put_object(Bucket=BUCKET, Key=key_of('o'), Body=b'1space')
    modified = raw_head(s3, key_of('o'))['LastModified'].timestamp()
    assert delete_row(Timestamp(modified - 6.5)) is Outcome.SKIPPED
    assert delete_row(Timestamp(modified + 6.5)) is Outcome.REMOTE_DELETED


def test_delete_row_of_a_daemon_copy_uses_its_swift_timestamp(
        handler, cluster, s3):
    """Swift's clock on both sides: a delete a tick after the archived
    version deletes it, whatever the store's Last-Modified says."""
    when = cluster.put(CONTAINER, 'o', b'data', when=time.time())
    handler.handle(profile(), row('o', when))
    later = Timestamp(when.timestamp + 0.00001)
    assert handler.handle(profile(), row('o', later, deleted=1)) is \
        Outcome.REMOTE_DELETED


def test_delete_rows_not_propagated_when_disabled(handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'data')
    handler.handle(profile(), row('o'))
    assert handler.handle(profile(propagate_delete=False), row(
        'o', ts(5), deleted=1)) is Outcome.SKIPPED
    assert bucket_keys(s3) == [key_of('o')]


# -- eligibility ----------------------------------------------------------

def test_excluded_names_are_skipped(handler, cluster, s3):
    cluster.put(CONTAINER, 'tmp/x', b'data')
    assert handler.handle(profile(exclude_pattern='tmp/'), row('tmp/x')) \
        is Outcome.SKIPPED
    assert handler.handle(profile(exclude_pattern='tmp/'), row(
        'tmp/x', deleted=1)) is Outcome.SKIPPED
    assert handler.handle(profile(exclude_pattern=''), row('tmp/x')) is \
        Outcome.UPLOADED


def test_selection_criteria_select(handler, cluster, s3):
    cluster.put(CONTAINER, 'hot', b'h', {'X-Object-Meta-Tier': 'hot'})
    cluster.put(CONTAINER, 'cold', b'c', {'X-Object-Meta-Tier': 'Cold'})
    crit = {'x-object-meta-tier': 'cold'}
    assert handler.handle(profile(selection_criteria=crit), row('hot')) is \
        Outcome.SKIPPED
    assert handler.handle(profile(selection_criteria=crit), row('cold')) \
        is Outcome.UPLOADED
    assert bucket_keys(s3) == [key_of('cold')]


def test_copy_after_defers(handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'data', when=ts(100))
    with pytest.raises(RowLater) as exc:
        handler.handle(profile(copy_after=60), row('o', ts(100)),
                       now=T0 + 130)
    assert exc.value.retry_at == T0 + 160
    assert bucket_keys(s3) == []
    assert handler.handle(profile(copy_after=60), row('o', ts(100)),
                          now=T0 + 161) is Outcome.UPLOADED


def test_a_stale_replica_defers(handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'data', when=ts(1))
    with pytest.raises(RowLater):
        handler.handle(profile(), row('o', ts(2)), now=T0 + 10)
    assert bucket_keys(s3) == []


def test_gone_and_lost_objects(handler, cluster, s3):
    cluster.tombstones[cluster.path(CONTAINER, 'gone')] = ts(2)
    assert handler.handle(profile(), row('gone', ts(1))) is Outcome.GONE
    with pytest.raises(RowFailed) as exc:
        handler.handle(profile(), row('lost'))
    assert exc.value.kind == 'local' and not exc.value.permanent
    assert ('increment', 'failures.local') in handler.logger.metrics


def _delete_before(cluster, method, name, tombstone):
    path = cluster.path(CONTAINER, name)

    def delete():
        cluster.objects.pop(path)
        if tombstone is not None:
            cluster.tombstones[path] = tombstone
    cluster.before[(method, path)] = delete


@pytest.mark.parametrize('archive', [False, True])
def test_object_deleted_between_head_and_get_is_gone(handler, cluster, s3,
                                                     archive):
    """DAEMON_BUGS #4: another replica archived it (its archiver
    tombstone) after our HEAD: the GET's 404 ends the row as gone."""
    when = cluster.put(CONTAINER, 'o', b'data' * 1000)
    _delete_before(cluster, 'GET', 'o', archive_timestamp(when))
    p = profile(**ARCHIVE) if archive else profile()
    assert handler.handle(p, row('o')) is Outcome.GONE
    assert ('increment', 'gone') in handler.logger.metrics
    assert not [m for m in handler.logger.metrics
                if m[1].startswith('failures')]


def test_slo_deleted_between_head_and_get_is_gone(handler, cluster, s3):
    put_slo(cluster, 'movie', BIG)
    _delete_before(cluster, 'GET', 'movie', ts(30))
    assert handler.handle(profile(**ARCHIVE), row('movie')) is Outcome.GONE
    assert s3.list_multipart_uploads(Bucket=BUCKET).get('Uploads') is None


def test_object_lost_between_head_and_get_fails(handler, cluster, s3):
    """A 404 with no newer tombstone behind it is a local failure."""
    cluster.put(CONTAINER, 'o', b'data')
    _delete_before(cluster, 'GET', 'o', None)
    with pytest.raises(RowFailed) as exc:
        handler.handle(profile(), row('o'))
    assert exc.value.kind == 'local' and not exc.value.permanent


# -- small objects: one GET instead of HEAD + GET ------------------------

def test_small_object_read_with_its_headers(handler, cluster, s3):
    body = b'small' * 100
    when = cluster.put(CONTAINER, 'o', body, {'X-Object-Meta-Color': 'red'})
    assert handler.handle(profile(**ARCHIVE), row('o', size=len(body))) is \
        Outcome.ARCHIVED
    assert [m for m, _, _ in cluster.requests] == ['GET', 'DELETE']
    got = s3.get_object(Bucket=BUCKET, Key=key_of('o'))
    assert got['Body'].read() == body
    assert got['ETag'] == '"%s"' % md5(body)
    assert got['Metadata']['color'] == 'red'
    assert got['Metadata']['swift-timestamp'] == when.internal
    assert cluster.get(CONTAINER, 'o') is None


def test_small_object_corrupt_replica_is_refused(handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'good bytes')
    cluster.corrupt.add(cluster.path(CONTAINER, 'o'))
    with pytest.raises(RowFailed) as exc:
        handler.handle(profile(**ARCHIVE), row('o', size=10))
    assert exc.value.kind == 'local'
    assert bucket_keys(s3) == []
    assert cluster.get(CONTAINER, 'o') is not None


def test_small_row_of_a_large_object_streams_it(s3, cluster, logger):
    """The row's size is stale (overwritten since): the first GET is
    dropped and the bytes streamed by a GET that names the Etag."""
    swift = InternalClient(None, 'test-daemon', 1, app=cluster)
    handler = RowHandler({'small_object_size': '1000'}, logger, swift,
                         S3Remote(payload_signing=False))
    body = b'x' * 5000
    cluster.put(CONTAINER, 'o', body)
    assert handler.handle(profile(), row('o', size=10)) is Outcome.UPLOADED
    gets = [h for m, _, h in cluster.requests if m == 'GET']
    assert len(gets) == 2 and gets[1]['If-Match'] == md5(body)
    assert s3.get_object(Bucket=BUCKET, Key=key_of('o'))['Body'].read() \
        == body


def test_small_object_gone_before_its_get(handler, cluster, s3):
    cluster.tombstones[cluster.path(CONTAINER, 'o')] = ts(2)
    assert handler.handle(profile(), row('o', ts(1), size=1)) is \
        Outcome.GONE


def test_corrupt_local_bytes_are_refused_by_content_md5(
        handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'good bytes')
    cluster.corrupt.add(cluster.path(CONTAINER, 'o'))
    with pytest.raises(RowFailed) as exc:
        handler.handle(profile(**ARCHIVE), row('o'))
    assert exc.value.kind == 'local'
    assert bucket_keys(s3) == []
    assert cluster.get(CONTAINER, 'o') is not None


# -- names ----------------------------------------------------------------

@pytest.mark.parametrize('name', [
    'unicodé/🙂 name', 'a' * 1024, 'q?x#y%20z', ' lead', 'dir/'])
def test_odd_names_round_trip(handler, cluster, s3, name):
    name = name[:1024 - len(key_of('').encode())] \
        if name.startswith('aaa') else name
    cluster.put(CONTAINER, name, b'odd')
    assert handler.handle(profile(**ARCHIVE), row(name)) is Outcome.ARCHIVED
    assert s3.get_object(Bucket=BUCKET, Key=key_of(name))['Body'].read() \
        == b'odd'
    assert cluster.get(CONTAINER, name) is None


def test_names_too_long_for_s3_fail_permanently(handler, cluster, s3,
                                                logger):
    name = 'é' * 512   # 1024 bytes: Swift takes it, S3 not with the prefix
    cluster.put(CONTAINER, name, b'x')
    with pytest.raises(RowFailed) as exc:
        handler.handle(profile(**ARCHIVE), row(name))
    assert (exc.value.kind, exc.value.permanent) == ('name', True)
    errors = logger.text('error').splitlines()
    assert len(errors) == 1 and '1024' in errors[0]
    assert cluster.get(CONTAINER, name) is not None
    assert bucket_keys(s3) == []


def test_key_problems():
    assert rows.key_problem('a' * 1024) is None
    assert '1025 bytes' in rows.key_problem('é' + 'a' * 1023)
    assert 'UTF-8' in rows.key_problem('bad\udcff')


def test_log_lines_carry_no_secret(handler, cluster, s3, logger):
    with pytest.raises(RowFailed):
        handler.handle(profile(), row('lost'))
    assert 'secret' not in logger.text()


# -- helpers used above ---------------------------------------------------

def test_content_md5():
    assert bucket.content_md5(md5(b'x')) == base64.b64encode(
        hashlib.md5(b'x').digest()).decode()
    assert bucket.content_md5('not-an-md5') is None


# -- SLOs -----------------------------------------------------------------

SEGS = 'c_segments'


def put_slo(cluster, name, parts, container=SEGS, prefix=None, when=None,
            headers=None, extra_entries=()):
    """Segments ``parts`` (bytes, or (container, obj, bytes)) and their
    manifest as Swift's slo stores it; returns (manifest bytes, body)."""
    entries, body = [], b''
    for number, part in enumerate(parts):
        seg_container, seg_name = container, '%s/%08d' % (
            prefix or name, number)
        if isinstance(part, tuple):
            seg_container, seg_name, part = part
        cluster.put(seg_container, seg_name, part, when=ts(-100))
        entries.append({'name': '/%s/%s' % (seg_container, seg_name),
                        'hash': md5(part), 'bytes': len(part),
                        'content_type': 'application/octet-stream',
                        'last_modified': '2023-11-14T22:11:40.000000'})
        body += part
    entries.extend(extra_entries)
    manifest = json.dumps(entries).encode()
    slo_etag = md5(''.join(e['hash'] for e in entries
                           if 'hash' in e).encode())
    hdrs = {'X-Static-Large-Object': 'True',
            'Content-Type': 'video/mp4',
            'X-Object-Sysmeta-Slo-Etag': slo_etag,
            'X-Object-Sysmeta-Slo-Size': str(len(body)),
            'X-Object-Meta-Title': 'big'}
    hdrs.update(headers or {})
    cluster.put(CONTAINER, name, manifest, hdrs, when=when)
    return manifest, body


BIG = [b'\x01' * (5 * MiB), b'\x02' * (5 * MiB + 3), b'\x03' * 1001]


def read_back(s3, name, size):
    """What the shunt serves for an archived SLO: its headers and the
    sidecar manifest it trusts (None when it would not)."""
    head = raw_head(s3, key_of(name))
    raw = head['ResponseMetadata']['HTTPHeaders']
    remote = S3Remote()
    manifest = slo.load_archived_manifest(
        remote, profile(), name, raw, size, FakeLogger(),
        cache=slo.SidecarCache())
    return raw, manifest


def test_slo_goes_as_one_part_per_segment_with_its_sidecar(
        handler, cluster, s3):
    manifest, body = put_slo(cluster, 'movie', BIG)
    assert handler.handle(profile(), row('movie')) is Outcome.UPLOADED
    got = s3.get_object(Bucket=BUCKET, Key=key_of('movie'))
    assert got['Body'].read() == body
    assert got['ETag'].strip('"') == slo.mpu_etag([md5(p) for p in BIG])
    assert got['Metadata']['x-static-large-object'] == 'True'
    assert got['Metadata']['title'] == 'big'
    assert got['ContentType'] == 'video/mp4'
    sidecar = s3.get_object(Bucket=BUCKET, Key=manifest_key(
        ACCOUNT, CONTAINER, 'movie'))
    assert sidecar['Body'].read() == manifest
    raw, loaded = read_back(s3, 'movie', len(body))
    assert loaded is not None
    assert loaded.etag == md5(''.join(md5(p) for p in BIG).encode())
    assert slo.is_marked_slo(raw)
    assert s3.list_multipart_uploads(Bucket=BUCKET).get('Uploads') is None
    # a second visit finds it up to date: no local GET at all
    cluster.requests.clear()
    assert handler.handle(profile(), row('movie')) is Outcome.NOOP
    assert [m for m, _, _ in cluster.requests] == ['HEAD', 'GET']


def test_slo_manifest_read_by_the_first_get(handler, cluster, s3):
    manifest, body = put_slo(cluster, 'movie', BIG)
    assert handler.handle(profile(**ARCHIVE), row(
        'movie', size=len(manifest))) is Outcome.ARCHIVED
    assert [p for m, p, _ in cluster.requests if m == 'GET'][0] == \
        cluster.path(CONTAINER, 'movie')
    assert [m for m, p, _ in cluster.requests
            if p == cluster.path(CONTAINER, 'movie')] == ['GET', 'DELETE']
    assert s3.get_object(Bucket=BUCKET, Key=key_of('movie'))[
        'Body'].read() == body
    assert s3.get_object(Bucket=BUCKET, Key=manifest_key(
        ACCOUNT, CONTAINER, 'movie'))['Body'].read() == manifest


def test_a_missing_sidecar_is_written_again(handler, cluster, s3):
    manifest, _ = put_slo(cluster, 'movie', BIG)
    handler.handle(profile(), row('movie'))
    sidecar = manifest_key(ACCOUNT, CONTAINER, 'movie')
    s3.delete_object(Bucket=BUCKET, Key=sidecar)
    assert handler.handle(profile(), row('movie')) is Outcome.METADATA
    assert s3.get_object(Bucket=BUCKET, Key=sidecar)['Body'].read() == \
        manifest


def test_a_failed_part_aborts_the_upload(handler, cluster, s3):
    put_slo(cluster, 'movie', BIG)
    cluster.corrupt.add(cluster.path(SEGS, 'movie/00000001'))
    with pytest.raises(RowFailed) as exc:
        handler.handle(profile(**ARCHIVE), row('movie'))
    assert exc.value.kind == 'local'
    assert s3.list_multipart_uploads(Bucket=BUCKET).get('Uploads') is None
    assert bucket_keys(s3) == []
    assert cluster.get(CONTAINER, 'movie') is not None


def test_a_changed_segment_fails_the_slo_permanently(handler, cluster, s3):
    put_slo(cluster, 'movie', BIG)
    cluster.put(SEGS, 'movie/00000002', b'rewritten', when=ts(-50))
    with pytest.raises(RowFailed) as exc:
        handler.handle(profile(), row('movie'))
    assert (exc.value.kind, exc.value.permanent) == ('invalid', True)
    assert s3.list_multipart_uploads(Bucket=BUCKET).get('Uploads') is None


def test_stale_uploads_of_the_key_are_aborted(handler, cluster, s3):
    put_slo(cluster, 'movie', BIG)
    crashed = s3.create_multipart_upload(Bucket=BUCKET, Key=key_of('movie'))
    other = s3.create_multipart_upload(Bucket=BUCKET,
                                       Key=key_of('movie') + '2')
    # as if this process had started after a crash, a minute later
    handler.transfer.started += 3600
    handler.transfer.stale_upload_age = -3600
    assert handler.handle(profile(), row('movie')) is Outcome.UPLOADED
    left = s3.list_multipart_uploads(Bucket=BUCKET)['Uploads']
    assert [u['UploadId'] for u in left] == [other['UploadId']]
    assert crashed['UploadId'] not in [u['UploadId'] for u in left]


def test_earlier_uploads_of_the_key_are_aborted_whatever_their_age(
        handler, cluster, s3):
    """A daemon killed and restarted within the minute: its upload is not
    stale by our clock, but initiated no later than the new one by the
    store's, so it is aborted before the new one completes; one
    initiated later (a peer's) and other keys' stay."""
    put_slo(cluster, 'movie', BIG)
    killed = s3.create_multipart_upload(Bucket=BUCKET, Key=key_of('movie'))
    later = s3.create_multipart_upload(Bucket=BUCKET, Key=key_of('movie'))
    other = s3.create_multipart_upload(Bucket=BUCKET,
                                       Key=key_of('movie') + '2')
    listed = handler.remote.list_multipart_uploads

    def listing(profile, prefix):
        uploads = listed(profile, prefix)
        for u in uploads:
            if u['UploadId'] == later['UploadId']:
                u['Initiated'] += datetime.timedelta(seconds=1)
        return uploads
    handler.remote.list_multipart_uploads = listing
    # none of them is stale by our clock (as moto's fixed Initiated would)
    handler.transfer.started = 0
    assert handler.handle(profile(**ARCHIVE), row('movie')) is \
        Outcome.ARCHIVED
    left = sorted(u['UploadId'] for u in s3.list_multipart_uploads(
        Bucket=BUCKET)['Uploads'])
    assert left == sorted([later['UploadId'], other['UploadId']])
    assert killed['UploadId'] not in left
    assert ('increment', 'stale_uploads_aborted') in handler.logger.metrics


def test_failing_to_list_uploads_does_not_fail_the_row(handler, cluster,
                                                       s3):
    put_slo(cluster, 'movie', BIG)
    calls = []

    def listing(profile, prefix):
        calls.append(prefix)
        if len(calls) > 1:
            raise RemoteError('client', 'NotImplemented')
        return []
    handler.remote.list_multipart_uploads = listing
    assert handler.handle(profile(), row('movie')) is Outcome.UPLOADED
    assert len(calls) == 2


def test_archived_slo_deletes_only_its_own_segments(handler, cluster, s3):
    shared = (CONTAINER + '_segments', 'shared/seg', b'\x05' * 5 * MiB)
    foreign = ('elsewhere', 'movie/x', b'\x06' * 5 * MiB)
    put_slo(cluster, 'movie', [BIG[0], shared, foreign, BIG[2]])
    when = cluster.get(CONTAINER, 'movie')['ts']
    assert handler.handle(profile(**ARCHIVE), row('movie')) is \
        Outcome.ARCHIVED
    assert cluster.get(CONTAINER, 'movie') is None
    assert cluster.tombstones[cluster.path(CONTAINER, 'movie')] == \
        archive_timestamp(when)
    assert cluster.get(SEGS, 'movie/00000000') is None
    assert cluster.get(SEGS, 'movie/00000003') is None
    assert is_archiver_tombstone(
        cluster.tombstones[cluster.path(SEGS, 'movie/00000000')])
    assert cluster.get(SEGS, 'shared/seg') is not None
    assert cluster.get('elsewhere', 'movie/x') is not None


def test_retain_local_segments_keeps_them(handler, cluster, s3):
    put_slo(cluster, 'movie', BIG)
    assert handler.handle(profile(retain_local_segments=True, **ARCHIVE),
                          row('movie')) is Outcome.ARCHIVED
    assert cluster.get(SEGS, 'movie/00000000') is not None


def test_segments_of_a_kept_slo_stay(handler, cluster, s3):
    put_slo(cluster, 'movie', BIG)
    cluster.before[('DELETE', cluster.path(CONTAINER, 'movie'))] = \
        lambda: put_slo(cluster, 'movie', BIG, prefix='movie2',
                        when=ts(1))
    assert handler.handle(profile(**ARCHIVE), row('movie')) is Outcome.KEPT
    assert cluster.get(SEGS, 'movie/00000000') is not None


def test_small_segments_are_rechunked_into_one_object(handler, cluster, s3):
    data = {'data': base64.b64encode(b'inline!').decode()}
    ranged = dict(json.loads(put_slo(cluster, 'tmp', [b'r' * 100])[0])[0],
                  range='10-19')
    manifest, body = put_slo(cluster, 'small', [b'a' * 1000, b'b' * 2000],
                             extra_entries=[data, ranged])
    body += b'inline!' + b'r' * 10
    assert handler.handle(profile(**ARCHIVE), row('small')) is \
        Outcome.ARCHIVED
    got = s3.get_object(Bucket=BUCKET, Key=key_of('small'))
    assert got['Body'].read() == body
    swift_etag = slo.parse_manifest(manifest).etag
    assert got['Metadata']['swift-slo-etag'] == swift_etag
    _, loaded = read_back(s3, 'small', len(body))
    assert loaded is not None and loaded.etag == swift_etag
    # re-chunked copies are recognised as up to date too
    put_slo(cluster, 'again', [b'a' * 1000, b'b' * 2000])
    handler.handle(profile(), row('again'))
    assert handler.handle(profile(), row('again')) is Outcome.NOOP


def test_large_rechunked_slo_goes_as_fixed_parts(s3, cluster, logger):
    swift = InternalClient(None, 'test-daemon', 1, app=cluster)
    handler = RowHandler({'max_put_size': str(6 * MiB),
                          'part_size': str(5 * MiB)}, logger, swift,
                         S3Remote(payload_signing=False))
    parts = [bytes([n]) * (3 * MiB) for n in range(4)]   # 12 MiB
    manifest, body = put_slo(cluster, 'chunky', parts)
    assert handler.handle(profile(**ARCHIVE), row('chunky')) is \
        Outcome.ARCHIVED
    got = s3.get_object(Bucket=BUCKET, Key=key_of('chunky'))
    assert got['Body'].read() == body
    assert got['ETag'].strip('"').endswith('-3')
    # the shunt trusts the sidecar by swift-slo-etag, not by part count
    _, loaded = read_back(s3, 'chunky', len(body))
    assert loaded is not None
    assert loaded.etag == slo.parse_manifest(manifest).etag


def test_nested_slo_is_expanded(handler, cluster, s3):
    inner, inner_body = put_slo(cluster, 'inner', [b'x' * 300, b'y' * 200])
    # as Swift records a nested SLO: its SLO Etag, not its manifest's MD5
    outer_entry = {'name': '/%s/inner' % CONTAINER,
                   'hash': slo.parse_manifest(inner).etag,
                   'bytes': len(inner), 'sub_slo': True,
                   'content_type': 'application/octet-stream;swift_bytes=%d'
                   % len(inner_body)}
    _, body = put_slo(cluster, 'outer', [b'z' * 50],
                      extra_entries=[outer_entry])
    assert handler.handle(profile(), row('outer')) is Outcome.UPLOADED
    assert s3.get_object(Bucket=BUCKET, Key=key_of('outer'))[
        'Body'].read() == body + inner_body


def test_nested_slo_changed_since_its_parent_fails_for_good(
        handler, cluster, s3):
    inner, _ = put_slo(cluster, 'inner2', [b'x' * 300, b'y' * 200])
    outer_entry = {'name': '/%s/inner2' % CONTAINER, 'hash': md5(b'old'),
                   'bytes': len(inner), 'sub_slo': True}
    put_slo(cluster, 'outer2', [b'z' * 50], extra_entries=[outer_entry])
    with pytest.raises(RowFailed) as exc:
        handler.handle(profile(**ARCHIVE), row('outer2'))
    assert (exc.value.kind, exc.value.permanent) == ('invalid', True)
    assert cluster.get(CONTAINER, 'outer2') is not None


def test_check_object_trusts_swift_slo_etag_over_the_part_count():
    entries = [{'name': '/s/%d' % n, 'hash': md5(b'%d' % n), 'bytes': 1}
               for n in range(4)]
    manifest = slo.parse_manifest(json.dumps(entries).encode())
    three_parts = slo.mpu_etag([md5(b'a'), md5(b'b'), md5(b'c')])
    slo.check_object(manifest, 4, three_parts, manifest.etag)
    with pytest.raises(slo.ManifestError):
        slo.check_object(manifest, 4, three_parts)
    with pytest.raises(slo.ManifestError):
        slo.check_object(manifest, 4, three_parts, md5(b'other'))


# -- DLOs -----------------------------------------------------------------

def test_dlo_manifest_goes_with_its_manifest_header(handler, cluster, s3):
    cluster.put(SEGS, 'dlo/1', b'one')
    cluster.put(CONTAINER, 'dlo', b'', {
        'X-Object-Manifest': SEGS + '/dlo/é'})
    assert handler.handle(profile(**ARCHIVE), row('dlo')) is \
        Outcome.ARCHIVED
    head = raw_head(s3, key_of('dlo'))
    assert head['Metadata']['x-object-manifest'] == \
        'c_segments/dlo/%C3%A9'
    assert cluster.get(SEGS, 'dlo/1') is not None
    # up to date on the next visit (1space compared quoted values: never)
    cluster.put(CONTAINER, 'dlo2', b'', {
        'X-Object-Manifest': SEGS + '/dlo/é'})
    handler.handle(profile(), row('dlo2'))
    assert handler.handle(profile(), row('dlo2')) is Outcome.NOOP


def test_bucket_trouble_fails_the_row_and_deletes_nothing(
        handler, cluster, s3):
    cluster.put(CONTAINER, 'o', b'data')
    with pytest.raises(RowFailed) as exc:
        handler.handle(profile(aws_bucket='no-such-bucket', **ARCHIVE),
                       row('o'))
    assert exc.value.kind == 'remote' and not exc.value.permanent
    assert cluster.get(CONTAINER, 'o') is not None
    assert ('increment', 'failures.remote') in handler.logger.metrics


def test_slo_replaced_by_a_plain_object_while_read(handler, cluster, s3):
    put_slo(cluster, 'movie', BIG)
    cluster.before[('GET', cluster.path(CONTAINER, 'movie'))] = \
        lambda: cluster.put(CONTAINER, 'movie', b'plain now', when=ts(1))
    with pytest.raises(RowFailed) as exc:
        handler.handle(profile(), row('movie'))
    assert (exc.value.kind, exc.value.permanent) == ('local', False)
    assert bucket_keys(s3) == []


@pytest.mark.parametrize('seg_name,owned', [
    ('/c_segments/movie/1', True),
    ('/c+segments/movie/000/1', True),
    ('/c_segments/movie2/1', False),
    ('/c_segments/movie', False),
    ('/other_segments/movie/1', False),
    ('/c/movie/1', False),
])
def test_owned_segments_follow_swiftclient_conventions(seg_name, owned):
    entry = {'name': seg_name, 'hash': md5(b'x'), 'bytes': 1}
    seg = slo.parse_manifest(json.dumps([entry]).encode()).segments[0]
    assert owned_segment(ACCOUNT, 'c', 'movie', seg) is owned


def test_post_to_an_archived_slo_keeps_its_parts(handler, cluster, s3):
    put_slo(cluster, 'movie', BIG)
    handler.handle(profile(), row('movie'))
    etag = raw_head(s3, key_of('movie'))['ETag']
    cluster.post(CONTAINER, 'movie', {'X-Object-Meta-Title': 'renamed'},
                 ts(5))
    assert handler.handle(profile(), row('movie', meta=ts(5))) is \
        Outcome.METADATA
    head = raw_head(s3, key_of('movie'))
    assert head['ETag'] == etag
    assert head['Metadata']['title'] == 'renamed'
    assert head['Metadata']['swift-timestamp'] == ts(5).internal
    assert head['Metadata']['x-static-large-object'] == 'True'
    assert s3.list_multipart_uploads(Bucket=BUCKET).get('Uploads') is None


# -- rows up to date by the bucket listing (shunt.daemon.listed) ----------

def put_rows(tmp_path, names, etag, size, when):
    broker = ContainerBroker(str(tmp_path / 'c.db'), account=ACCOUNT,
                             container=CONTAINER)
    broker.initialize(Timestamp(T0 - 7200).internal, 0)
    for name in names:
        broker.put_object(name, Timestamp(when).internal, size,
                          'application/octet-stream', etag)
    return broker


@pytest.fixture
def cheap_listings(monkeypatch):
    """A listing request weighed as one HEAD: a few rows make it worth
    it."""
    from shunt.daemon import listed
    monkeypatch.setattr(listed, 'LIST_COST', 1)


def test_listed_rows_are_noops_without_a_request(handler, cluster, s3,
                                                 tmp_path, cheap_listings):
    names = ['o1', 'o2', 'é/3']
    written = T0 - 3600
    for name in names:
        cluster.put(CONTAINER, name, b'data', when=written)
        assert handler.handle(profile(), row(
            name, when=written, size=4)) is Outcome.UPLOADED
    broker = put_rows(tmp_path, names + ['not-there'], md5(b'data'), 4,
                      written)
    handler.list_check_rows = 2
    found = handler.list_rows(profile(), broker, -1, 'AUTH_test/c')
    assert found.count == 3 and found.requests == 1
    heads = counting(handler, 'head_object')
    cluster.requests.clear()
    for rowid, name in enumerate(names, 1):
        assert found.listed(rowid)
        listed_row = dict(row(name, when=written, size=4), ROWID=rowid)
        assert handler.handle(profile(), listed_row,
                              listed=True) is Outcome.NOOP
    assert heads == [] and cluster.requests == []
    assert not found.listed(4)      # not in the bucket: a HEAD as before


def test_no_listing_when_it_cannot_help_or_fails(handler, s3, tmp_path,
                                                 logger, cheap_listings):
    broker = put_rows(tmp_path, ['a', 'b', 'c'], md5(b'data'), 4, T0)
    handler.list_check_rows = 2
    archive = profile(retain_local=False, propagate_delete=False)
    assert handler.list_rows(archive, broker, -1, 'x') is None
    handler.list_check_rows = 4
    assert handler.list_rows(profile(), broker, -1, 'x') is None
    handler.list_check_rows = 0
    assert handler.list_rows(profile(), broker, -1, 'x') is None
    handler.list_check_rows = 2
    missing = profile(aws_bucket='no-such-bucket')
    assert handler.list_rows(missing, broker, -1, 'x') is None
    assert 'could not list the bucket' in logger.text('warning')


def test_listed_archive_row_still_goes_through_the_head(handler, cluster,
                                                        s3):
    # an archive-mode row is never a noop by the listing: its upload and
    # HEAD guard the local delete
    archive = profile(retain_local=False, propagate_delete=False)
    cluster.put(CONTAINER, 'o', b'data', when=T0 - 3600)
    assert handler.handle(archive, row('o', when=T0 - 3600, size=4),
                          listed=True) is Outcome.ARCHIVED
    assert s3.get_object(Bucket=BUCKET, Key=key_of('o'))[
        'Body'].read() == b'data'
