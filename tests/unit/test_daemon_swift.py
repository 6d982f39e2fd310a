"""The sync daemon's write side for ``"protocol": "swift"`` profiles: the
row handler with Swift's own InternalClient over the in-memory local
cluster of test_daemon_rows, and an in-memory remote Swift
(tests/unit/fake_remote_swift.py) behind SwiftRemote's Swift-native face.

Assertions are on what lands in the remote cluster (names, bodies, Etags,
metadata byte for byte, timestamps, manifests) and in the local one
(objects, tombstones)."""

import base64
import json
import urllib.parse

import pytest
from swift.common.internal_client import InternalClient
from swift.common.swob import Request, Response, wsgi_to_str

from shunt.core.config import parse_profile
from shunt.core.manifest import parse_manifest
from shunt.core.tombstones import archive_timestamp, is_archiver_tombstone
from shunt.daemon import swift_bucket
from shunt.daemon.rows import Outcome, RowFailed, RowHandler, owned_segment
from shunt.daemon.swift_bucket import Want
from tests.unit.fake_remote_swift import FakeRemoteSwift
from tests.unit.helpers import FakeLogger
from tests.unit.test_daemon_rows import (
    ACCOUNT,
    CONTAINER,
    SEGS,
    FakeCluster,
    md5,
    put_slo,
    row,
    ts,
)

MiB = 1024 * 1024
RC = 'archive'
RSEGS = RC + '_segments'
ARCHIVE = {'retain_local': False, 'propagate_delete': False}


class ListingCluster(FakeCluster):
    """The local cluster, with JSON container listings (DLO segments)."""

    def __call__(self, env, start_response):
        req = Request(env)
        parts = wsgi_to_str(req.environ['PATH_INFO']).split('/')
        if req.method == 'GET' and len(parts) == 4:
            container = parts[3]
            prefix = wsgi_to_str(req.params.get('prefix', ''))
            marker = wsgi_to_str(req.params.get('marker', ''))
            found = []
            for path, entry in sorted(self.objects.items()):
                _, _, account, c, obj = path.split('/', 4)
                if account == parts[2] and c == container and \
                        obj.startswith(prefix) and obj > marker:
                    found.append({'name': obj, 'hash': entry['etag'],
                                  'bytes': len(entry['body']),
                                  'content_type': 'text/plain'})
            return Response(body=json.dumps(found).encode(),
                            content_type='application/json')(
                env, start_response)
        return super().__call__(env, start_response)


@pytest.fixture
def cluster():
    return ListingCluster()


@pytest.fixture
def remote():
    return FakeRemoteSwift()


@pytest.fixture
def handler(cluster, remote):
    swift = InternalClient(None, 'test-daemon', 1, app=cluster)
    return RowHandler({}, FakeLogger(), swift, remote)


def profile(**extra):
    raw = {'account': ACCOUNT, 'container': CONTAINER, 'protocol': 'swift',
           'aws_bucket': RC, 'aws_identity': 'remote:tester',
           'aws_secret': 'testing-secret',
           'aws_endpoint': 'http://127.0.0.1:9/auth/v1.0'}
    raw.update(extra)
    return parse_profile(raw, 'sync.json', 0, shunted_only=False)


def remote_body(remote, container, obj):
    """The bytes a GET of a remote object answers (an SLO assembled,
    nested ones too)."""
    entry = remote.get(container, obj)
    if 'slo_size' not in entry:
        return entry['body']
    out = b''
    for seg in json.loads(entry['body']):
        if 'data' in seg:
            out += base64.b64decode(seg['data'])
            continue
        c, o = seg['name'].lstrip('/').split('/', 1)
        data = remote_body(remote, c, o)
        if seg.get('range'):
            first, last = (int(x) for x in seg['range'].split('-'))
            data = data[first:last + 1]
        out += data
    return out


# -- pure ---------------------------------------------------------------

def test_object_headers_keep_values_as_they_are():
    local = {'Content-Type': 'Text/Plain;swift_bytes=10;charset=UTF-8',
             'X-Object-Meta-Color': 'Blue Sky',
             'X-Object-Meta-Note': 'caf\xc3\xa9',     # WSGI string
             'X-Object-Meta-Swift-Timestamp': 'forged',
             'X-Object-Meta-Empty': '',
             'Content-Encoding': 'gzip', 'X-Delete-At': '4000000000',
             'Etag': 'x', 'X-Timestamp': '1.0', 'X-Backend-Foo': 'bar'}
    out = swift_bucket.object_headers(local, ts(0))
    assert out == {'Content-Type': 'Text/Plain;charset=UTF-8',
                   'X-Object-Meta-Color': 'Blue Sky',
                   'X-Object-Meta-Note': 'café',
                   'Content-Encoding': 'gzip', 'X-Delete-At': '4000000000',
                   'X-Object-Meta-Swift-Timestamp': ts(0).internal}


def test_remote_state_decisions():
    want = Want('plain', 3, md5(b'abc'), {
        'Content-Type': 'text/plain', 'X-Object-Meta-A': 'Mixed',
        'X-Object-Meta-Swift-Timestamp': ts(1).internal}, ts(1))
    same = {'content-length': '3', 'etag': md5(b'abc'),
            'content-type': 'text/plain', 'x-object-meta-a': 'Mixed',
            'x-object-meta-swift-timestamp': ts(1).internal,
            'x-timestamp': ts(1).normal}
    assert swift_bucket.remote_state(None, want) == 'absent'
    assert swift_bucket.remote_state(same, want) == 'same'
    assert swift_bucket.remote_state(
        dict(same, **{'x-object-meta-a': 'mixed'}), want) == 'metadata'
    assert swift_bucket.remote_state(
        dict(same, **{'x-object-meta-swift-timestamp': ts(0).internal}),
        want) == 'metadata'
    assert swift_bucket.remote_state(dict(same, etag='0' * 32), want) == \
        'differs'
    assert swift_bucket.remote_state(
        dict(same, **{'x-static-large-object': 'True'}), want) == 'differs'
    assert swift_bucket.remote_state(
        dict(same, **{'x-object-meta-swift-timestamp': ts(2).internal}),
        want) == 'newer'
    # 1space's own bookkeeping on the remote copy is not ours to compare
    assert swift_bucket.remote_state(
        dict(same, **{'x-object-meta-combined-etag': 'x'}), want) == 'same'


def test_delete_reaches_by_swift_timestamp_else_remote_clock():
    ours = {'x-object-meta-swift-timestamp': ts(0).internal}
    assert swift_bucket.delete_reaches(ours, ts(1), 5)
    assert not swift_bucket.delete_reaches(ours, ts(0), 5)
    foreign = {'x-timestamp': ts(0).normal}
    assert swift_bucket.delete_reaches(foreign, ts(7), 5)
    assert not swift_bucket.delete_reaches(foreign, ts(5), 5)
    assert not swift_bucket.delete_reaches({}, ts(100), 5)


def test_dlo_names():
    assert swift_bucket.dlo_prefix('segs/a%20b/') == ('segs', 'a b/')
    assert swift_bucket.dlo_prefix('nocontainer') is None
    assert swift_bucket.manifest_header('rc_segments', 'segs/p') == \
        'rc_segments/segs/p'
    assert swift_bucket.dlo_etag(['"a"', 'b']) == md5(b'ab')


@pytest.mark.parametrize('path,owned', [
    ('/%s/c_segments/o/001' % RSEGS, True),
    ('/%s/c_segments/other/001' % RSEGS, False),
    ('/%s/d_segments/o/001' % RSEGS, False),
    ('/elsewhere/c_segments/o/001', False),
    ('/%s/c_segments' % RSEGS, False),
])
def test_owned_remote_segments(path, owned):
    assert swift_bucket.owned_segment_path(
        path, RSEGS, ACCOUNT, CONTAINER, 'o', owned_segment) is owned


# -- plain objects ----------------------------------------------------------

def test_plain_object_written_byte_exact_with_its_timestamp(
        handler, cluster, remote):
    body = b'hello world' * 1000
    when = cluster.put(CONTAINER, 'o', body, {
        'Content-Type': 'Text/Plain; charset=UTF-8',
        'X-Object-Meta-Color': 'Blue Sky', 'X-Object-Meta-Note': 'café',
        'Content-Disposition': 'attachment; filename="A.txt"',
        'Content-Encoding': 'gzip', 'X-Delete-At': '4000000000'})
    p = profile(storage_policy='gold')
    assert handler.handle(p, row('o')) is Outcome.UPLOADED
    entry = remote.get(RC, 'o')
    assert entry['body'] == body
    assert entry['ts'] == when           # X-Timestamp kept
    assert entry['headers'] == {
        'content-type': 'Text/Plain; charset=UTF-8',
        'x-object-meta-color': 'Blue Sky', 'x-object-meta-note': 'café',
        'content-disposition': 'attachment; filename="A.txt"',
        'content-encoding': 'gzip', 'x-delete-at': '4000000000',
        'x-object-meta-swift-timestamp': when.internal}
    # the remote container was created, with the profile's policy
    assert remote.containers[RC] == {'x-storage-policy': 'gold'}
    (put,) = [r for r in remote.requests if r[0] == 'PUT']
    assert put[3]['ETag'] == md5(body)
    assert put[3]['Content-Length'] == str(len(body))
    assert put[3]['X-Timestamp'] == when.internal
    # streamed from one local GET carrying the HEAD's Etag
    gets = [h for m, _, h in cluster.requests if m == 'GET']
    assert gets[-1]['If-Match'] == md5(body)
    assert ('update_stats', 'bytes', len(body)) in handler.logger.metrics


def test_up_to_date_copy_costs_one_remote_head(handler, cluster, remote):
    cluster.put(CONTAINER, 'o', b'data' * 100000, {'X-Object-Meta-A': 'B'})
    assert handler.handle(profile(), row('o')) is Outcome.UPLOADED
    remote.requests.clear()
    cluster.requests.clear()
    assert handler.handle(profile(), row('o')) is Outcome.NOOP
    assert remote.calls() == [('HEAD', RC, 'o')]
    assert [m for m, _, _ in cluster.requests] == ['HEAD']


def test_timestamps_not_kept_by_the_remote_still_recorded(cluster):
    remote = FakeRemoteSwift(keep_timestamps=False)
    handler = RowHandler({}, FakeLogger(), InternalClient(
        None, 'test-daemon', 1, app=cluster), remote)
    when = cluster.put(CONTAINER, 'o', b'data')
    assert handler.handle(profile(**ARCHIVE), row('o')) is Outcome.ARCHIVED
    entry = remote.get(RC, 'o')
    assert entry['ts'] != when
    assert entry['headers']['x-object-meta-swift-timestamp'] == \
        when.internal
    cluster.put(CONTAINER, 'o', b'data', when=when)
    assert handler.handle(profile(), row('o')) is Outcome.NOOP


def test_post_is_one_remote_post_keeping_bookkeeping(handler, cluster,
                                                      remote):
    cluster.put(CONTAINER, 'o', b'data', {'X-Object-Meta-A': '1',
                                          'Content-Language': 'en'})
    assert handler.handle(profile(), row('o')) is Outcome.UPLOADED
    cluster.post(CONTAINER, 'o', {'X-Object-Meta-B': 'Two',
                                  'Content-Language': 'en'}, ts(5))
    remote.requests.clear()
    assert handler.handle(profile(), row('o', meta=ts(5))) is \
        Outcome.METADATA
    assert remote.calls() == [('HEAD', RC, 'o'), ('POST', RC, 'o')]
    entry = remote.get(RC, 'o')
    assert entry['body'] == b'data'
    assert entry['ts'] == ts(5)
    assert entry['headers'] == {
        'content-type': 'application/octet-stream',
        'x-object-meta-b': 'Two', 'content-language': 'en',
        'x-object-meta-swift-timestamp': ts(5).internal}
    assert handler.handle(profile(), row('o', meta=ts(5))) is Outcome.NOOP


def test_later_remote_version_is_left_alone(handler, cluster, remote):
    cluster.put(CONTAINER, 'o', b'new', when=ts(10))
    handler.handle(profile(), row('o', ts(10)))
    cluster.put(CONTAINER, 'o', b'old', when=ts(1))
    assert handler.handle(profile(**ARCHIVE), row('o', ts(1))) is \
        Outcome.SKIPPED
    assert remote.get(RC, 'o')['body'] == b'new'
    assert cluster.get(CONTAINER, 'o') is not None


def test_remote_write_with_a_later_x_timestamp_wins(handler, cluster,
                                                     remote):
    """A remote object written there directly (no swift-timestamp) with a
    later X-Timestamp: the PUT answers 409 and nothing is deleted."""
    remote.containers[RC] = {}
    remote.objects[(RC, 'o')] = {'body': b'theirs', 'etag': md5(b'theirs'),
                                 'ts': ts(50), 'headers': {
                                     'content-type': 'text/plain'}}
    cluster.put(CONTAINER, 'o', b'ours', when=ts(1))
    assert handler.handle(profile(**ARCHIVE), row('o', ts(1))) is \
        Outcome.SKIPPED
    assert remote.get(RC, 'o')['body'] == b'theirs'
    assert cluster.get(CONTAINER, 'o') is not None


def test_small_object_sent_from_memory(handler, cluster, remote):
    cluster.put(CONTAINER, 'small', b'tiny')
    assert handler.handle(profile(), row('small', size=4)) is \
        Outcome.UPLOADED
    assert [m for m, _, _ in cluster.requests] == ['GET']
    assert remote.get(RC, 'small')['body'] == b'tiny'


def test_fresh_small_object_is_put_if_absent_without_a_head(
        handler, cluster, remote):
    when = cluster.put(CONTAINER, 'new', b'tiny', {'X-Object-Meta-A': 'B'})
    assert handler.handle(profile(**ARCHIVE), row('new', size=4),
                          fresh=True) is Outcome.ARCHIVED
    # PUT if absent, whose answer is the verification: no HEAD at all
    assert remote.calls() == [('ENSURE', RC, None), ('PUT', RC, 'new')]
    (put,) = [r for r in remote.requests if r[0] == 'PUT']
    assert put[3]['If-None-Match'] == '*'
    assert remote.get(RC, 'new')['ts'] == when


def test_fresh_row_of_an_existing_copy_is_compared_as_usual(
        handler, cluster, remote):
    cluster.put(CONTAINER, 'o', b'tiny')
    handler.handle(profile(), row('o', size=4))
    remote.requests.clear()
    assert handler.handle(profile(), row('o', size=4), fresh=True) is \
        Outcome.NOOP
    assert [c for c in remote.calls() if c[0] != 'ENSURE'] == [
        ('PUT', RC, 'o'), ('HEAD', RC, 'o')]
    assert remote.get(RC, 'o')['body'] == b'tiny'


def test_corrupt_local_bytes_are_refused_by_the_remote(handler, cluster,
                                                        remote):
    cluster.put(CONTAINER, 'o', b'x' * 1000)
    cluster.corrupt.add(cluster.path(CONTAINER, 'o'))
    with pytest.raises(RowFailed) as err:
        handler.handle(profile(**ARCHIVE), row('o'))
    assert err.value.kind == 'local'
    assert remote.get(RC, 'o') is None
    assert cluster.get(CONTAINER, 'o') is not None


def test_per_account_profile_names_the_container(handler, cluster, remote):
    cluster.put('photos', 'o', b'data')
    p = profile(container='/*', aws_bucket='pre-').for_container('photos')
    assert handler.handle(p, row('o')) is Outcome.UPLOADED
    assert remote.get('pre-photos', 'o')['body'] == b'data'


def test_log_lines_carry_no_secret(handler, cluster, remote):
    remote.fail[('HEAD', RC, 'o')] = [503]
    cluster.put(CONTAINER, 'o', b'data')
    with pytest.raises(RowFailed):
        handler.handle(profile(), row('o'))
    logged = ' '.join(str(line) for line in handler.logger.lines)
    assert 'testing-secret' not in logged
    assert 'server' in logged


# -- archive mode ---------------------------------------------------------

def test_archive_verifies_then_deletes_with_a_marked_tombstone(
        handler, cluster, remote):
    when = cluster.put(CONTAINER, 'o', b'cold data')
    assert handler.handle(profile(**ARCHIVE), row('o')) is Outcome.ARCHIVED
    assert cluster.get(CONTAINER, 'o') is None
    tombstone = cluster.tombstones[cluster.path(CONTAINER, 'o')]
    assert tombstone == archive_timestamp(when)
    assert is_archiver_tombstone(tombstone)
    # the PUT's answer (the local Etag, checked by the remote) verified it
    assert remote.calls()[-1] == ('PUT', RC, 'o')


def test_verify_with_head_heads_the_copy_again(cluster, remote):
    handler = RowHandler({'verify_with_head': 'true'}, FakeLogger(),
                         InternalClient(None, 'test-daemon', 1, app=cluster),
                         remote)
    cluster.put(CONTAINER, 'o', b'cold data')
    assert handler.handle(profile(**ARCHIVE), row('o')) is Outcome.ARCHIVED
    assert remote.calls()[-2:] == [('PUT', RC, 'o'), ('HEAD', RC, 'o')]
    assert cluster.get(CONTAINER, 'o') is None


def test_failed_verification_keeps_the_local_copy(cluster, remote):
    handler = RowHandler({'verify_with_head': 'true'}, FakeLogger(),
                         InternalClient(None, 'test-daemon', 1, app=cluster),
                         remote)
    cluster.put(CONTAINER, 'o', b'cold data')

    def tamper():
        remote.objects[(RC, 'o')]['headers'][
            'x-object-meta-swift-timestamp'] = ts(-5).internal

    def arm():
        # the first HEAD (up-to-date check) arms the second (verification)
        remote.before[('HEAD', RC, 'o')] = tamper
    remote.before[('HEAD', RC, 'o')] = arm
    with pytest.raises(RowFailed) as err:
        handler.handle(profile(**ARCHIVE), row('o'))
    assert err.value.kind == 'verify'
    assert cluster.get(CONTAINER, 'o') is not None


def test_remote_down_fails_the_row_and_deletes_nothing(handler, cluster,
                                                        remote):
    cluster.put(CONTAINER, 'o', b'data')
    remote.fail[('PUT', RC, 'o')] = [503]
    with pytest.raises(RowFailed) as err:
        handler.handle(profile(**ARCHIVE), row('o'))
    assert err.value.kind == 'remote'
    assert cluster.get(CONTAINER, 'o') is not None
    assert handler.handle(profile(**ARCHIVE), row('o')) is Outcome.ARCHIVED


# -- SLOs -----------------------------------------------------------------

PARTS = [b'\x01' * 3000, b'\x02' * 2000, b'\x03' * 1001]


def test_slo_becomes_a_native_remote_slo(handler, cluster, remote):
    manifest, body = put_slo(cluster, 'movie', PARTS,
                             headers={'Content-Type':
                                      'video/mp4;swift_bytes=6001'})
    assert handler.handle(profile(), row('movie')) is Outcome.UPLOADED
    entry = remote.get(RC, 'movie')
    assert remote_body(remote, RC, 'movie') == body
    assert entry['etag'] == parse_manifest(manifest).etag
    assert entry['headers']['content-type'] == 'video/mp4'
    assert entry['headers']['x-object-meta-title'] == 'big'
    names = sorted(o for c, o in remote.objects if c == RSEGS)
    assert names == ['%s/movie/%08d' % (SEGS, n) for n in range(3)]
    assert remote.containers[RSEGS] is not None
    # segments before the manifest, the manifest with the SLO's Etag
    puts = [r for r in remote.requests if r[0] == 'PUT']
    assert [r[1] for r in puts] == [RSEGS] * 3 + [RC]
    assert puts[-1][4] == {'multipart-manifest': 'put'}
    assert puts[-1][3]['ETag'] == parse_manifest(manifest).etag
    # the next visit finds it up to date without reading a segment
    remote.requests.clear()
    assert handler.handle(profile(), row('movie')) is Outcome.NOOP
    assert remote.calls() == [('HEAD', RC, 'movie')]


def test_slo_segments_already_there_are_not_sent_again(handler, cluster,
                                                       remote):
    put_slo(cluster, 'movie', PARTS)
    remote.fail[('PUT', RC, 'movie')] = [503]
    with pytest.raises(RowFailed):
        handler.handle(profile(**ARCHIVE), row('movie'))
    # a crash or failure leaves segments, never a manifest without them
    assert remote.get(RC, 'movie') is None
    assert len([1 for c, _ in remote.objects if c == RSEGS]) == 3
    assert cluster.get(CONTAINER, 'movie') is not None
    remote.requests.clear()
    assert handler.handle(profile(**ARCHIVE), row('movie')) is \
        Outcome.ARCHIVED
    assert [c for m, c, _ in remote.calls('PUT')] == [RC]
    # the local segments went with the archived manifest (rows' rule)
    assert cluster.get(SEGS, 'movie/00000000') is None


def test_segments_of_two_containers_never_collide(handler, cluster, remote):
    put_slo(cluster, 'a', [(('segs1', 'part', b'one'))])
    put_slo(cluster, 'b', [(('segs2', 'part', b'two'))])
    assert handler.handle(profile(), row('a')) is Outcome.UPLOADED
    assert handler.handle(profile(), row('b')) is Outcome.UPLOADED
    assert remote_body(remote, RC, 'a') == b'one'
    assert remote_body(remote, RC, 'b') == b'two'
    assert remote.get(RSEGS, 'segs1/part')['body'] == b'one'
    assert remote.get(RSEGS, 'segs2/part')['body'] == b'two'


def test_slo_ranges_and_inline_data_are_kept(handler, cluster, remote):
    cluster.put(SEGS, 'r/1', b'0123456789', when=ts(-100))
    entries = [
        {'name': '/%s/r/1' % SEGS, 'hash': md5(b'0123456789'), 'bytes': 10,
         'range': '2-5', 'content_type': 'text/plain'},
        {'data': base64.b64encode(b'INLINE').decode()},
        {'name': '/%s/r/1' % SEGS, 'hash': md5(b'0123456789'), 'bytes': 10,
         'content_type': 'text/plain'}]
    manifest = json.dumps(entries).encode()
    cluster.put(CONTAINER, 'mixed', manifest, {
        'X-Static-Large-Object': 'True', 'Content-Type': 'text/plain'})
    assert handler.handle(profile(**ARCHIVE), row('mixed')) is \
        Outcome.ARCHIVED
    assert remote_body(remote, RC, 'mixed') == b'2345INLINE0123456789'
    assert remote.get(RC, 'mixed')['etag'] == parse_manifest(manifest).etag
    # the one segment object was copied once
    assert remote.calls('PUT').count(('PUT', RSEGS, SEGS + '/r/1')) == 1


def nested_slo(cluster):
    """``outer``: inline data, then the SLO ``inner`` (as Swift stores a
    nested SLO: its SLO Etag and content size), then a segment; returns
    (outer manifest, its bytes)."""
    inner_manifest, inner_body = put_slo(cluster, 'inner', PARTS)
    inner = parse_manifest(inner_manifest)
    cluster.put(SEGS, 'tail', b'TAIL', when=ts(-100))
    entries = [
        {'data': base64.b64encode(b'HEAD').decode()},
        {'name': '/%s/inner' % CONTAINER, 'hash': inner.etag,
         'bytes': len(inner_body), 'sub_slo': True,
         'content_type': 'video/mp4'},
        {'name': '/%s/tail' % SEGS, 'hash': md5(b'TAIL'), 'bytes': 4,
         'content_type': 'text/plain'}]
    manifest = json.dumps(entries).encode()
    cluster.put(CONTAINER, 'outer', manifest, {
        'X-Static-Large-Object': 'True', 'Content-Type': 'video/mp4'})
    return manifest, b'HEAD' + inner_body + b'TAIL'


def test_nested_slo_becomes_a_nested_remote_slo(handler, cluster, remote):
    manifest, body = nested_slo(cluster)
    assert handler.handle(profile(**ARCHIVE), row('outer')) is \
        Outcome.ARCHIVED
    assert remote_body(remote, RC, 'outer') == body
    assert remote.get(RC, 'outer')['etag'] == parse_manifest(manifest).etag
    # the nested SLO is a remote SLO in the segments container
    inner = remote.get(RSEGS, CONTAINER + '/inner')
    assert inner['headers']['x-static-large-object'] == 'True'
    assert sorted(o for c, o in remote.objects if c == RSEGS) == sorted(
        [CONTAINER + '/inner', SEGS + '/tail'] +
        ['%s/inner/%08d' % (SEGS, n) for n in range(3)])
    # a second SLO nesting the same one: the nested copy is not sent again
    cluster.put(CONTAINER, 'outer2', manifest, {
        'X-Static-Large-Object': 'True'})
    remote.requests.clear()
    assert handler.handle(profile(), row('outer2')) is Outcome.UPLOADED
    assert remote.calls('PUT') == [('PUT', RC, 'outer2')]


def test_changed_nested_slo_fails_permanently_and_writes_no_manifest(
        handler, cluster, remote):
    nested_slo(cluster)
    put_slo(cluster, 'inner', [b'other'])    # replaced since
    with pytest.raises(RowFailed) as err:
        handler.handle(profile(**ARCHIVE), row('outer'))
    assert err.value.kind == 'invalid' and err.value.permanent
    assert 'nested SLO' in err.value.message
    assert remote.get(RC, 'outer') is None
    assert cluster.get(CONTAINER, 'outer') is not None


def test_slo_metadata_change_is_a_post(handler, cluster, remote):
    put_slo(cluster, 'movie', PARTS)
    handler.handle(profile(), row('movie'))
    cluster.post(CONTAINER, 'movie', {'X-Object-Meta-Title': 'Bigger'},
                 ts(5))
    remote.requests.clear()
    assert handler.handle(profile(), row('movie', meta=ts(5))) is \
        Outcome.METADATA
    assert remote.calls('PUT') == []
    entry = remote.get(RC, 'movie')
    assert entry['headers']['x-object-meta-title'] == 'Bigger'
    assert entry['headers']['x-static-large-object'] == 'True'


# -- DLOs -----------------------------------------------------------------

def test_dlo_kept_whole_with_its_segments(handler, cluster, remote):
    cluster.put(SEGS, 'dlo/é/1', b'one')
    cluster.put(SEGS, 'dlo/é/2', b'two')
    cluster.put(SEGS, 'dlox', b'not mine')
    cluster.put(CONTAINER, 'dlo', b'', {
        'X-Object-Manifest': SEGS + '/dlo/%C3%A9/',
        'X-Object-Meta-Kind': 'Dlo'})
    assert handler.handle(profile(**ARCHIVE), row('dlo')) is \
        Outcome.ARCHIVED
    entry = remote.get(RC, 'dlo')
    assert urllib.parse.unquote(entry['headers']['x-object-manifest']) == \
        '%s/%s/dlo/é/' % (RSEGS, SEGS)
    assert entry['headers']['x-object-meta-swift-source-dlo-etag'] == \
        md5((md5(b'one') + md5(b'two')).encode())
    assert entry['headers']['x-object-meta-kind'] == 'Dlo'
    assert sorted(o for c, o in remote.objects if c == RSEGS) == \
        [SEGS + '/dlo/é/1', SEGS + '/dlo/é/2']
    # the local segments are objects of their own: kept
    assert cluster.get(SEGS, 'dlo/é/1') is not None
    # up to date on the next visit; a new segment makes it differ
    cluster.put(CONTAINER, 'dlo', b'', {
        'X-Object-Manifest': SEGS + '/dlo/%C3%A9/',
        'X-Object-Meta-Kind': 'Dlo'})
    assert handler.handle(profile(), row('dlo')) is Outcome.NOOP
    cluster.put(SEGS, 'dlo/é/3', b'three')
    assert handler.handle(profile(), row('dlo')) is Outcome.UPLOADED
    assert remote.get(RSEGS, SEGS + '/dlo/é/3')['body'] == b'three'


# -- delete rows ----------------------------------------------------------

def delete_row(name, when):
    return row(name, when=when, deleted=1)


def test_delete_row_deletes_an_older_remote_copy(handler, cluster, remote):
    cluster.put(CONTAINER, 'o', b'data')
    handler.handle(profile(), row('o'))
    assert handler.handle(profile(), delete_row('o', ts(10))) is \
        Outcome.REMOTE_DELETED
    assert remote.get(RC, 'o') is None
    (delete,) = [r for r in remote.requests if r[0] == 'DELETE']
    assert delete[3]['X-Timestamp'] == ts(10).internal


def test_delete_row_spares_a_newer_remote_copy(handler, cluster, remote):
    cluster.put(CONTAINER, 'o', b'data', when=ts(20))
    handler.handle(profile(), row('o', ts(20)))
    assert handler.handle(profile(), delete_row('o', ts(10))) is \
        Outcome.SKIPPED
    assert remote.get(RC, 'o') is not None


def test_archive_tombstones_and_disabled_propagation_delete_nothing(
        handler, cluster, remote):
    cluster.put(CONTAINER, 'o', b'data')
    handler.handle(profile(), row('o'))
    assert handler.handle(profile(), delete_row(
        'o', archive_timestamp(ts(0)))) is Outcome.SKIPPED
    assert handler.handle(profile(propagate_delete=False), delete_row(
        'o', ts(10))) is Outcome.SKIPPED
    assert remote.get(RC, 'o') is not None


def test_delete_row_of_an_slo_deletes_only_its_own_segments(
        handler, cluster, remote):
    put_slo(cluster, 'movie', [b'a' * 10, ('shared', 'seg', b'b' * 10)])
    handler.handle(profile(), row('movie'))
    assert handler.handle(profile(), delete_row('movie', ts(10))) is \
        Outcome.REMOTE_DELETED
    assert remote.get(RC, 'movie') is None
    left = sorted(o for c, o in remote.objects if c == RSEGS)
    assert left == ['shared/seg']
    # the manifest went first, plainly (never multipart-manifest=delete)
    deletes = [r for r in remote.requests if r[0] == 'DELETE']
    assert deletes[0][1:3] == (RC, 'movie') and deletes[0][4] == {}


def test_delete_row_of_a_foreign_copy_uses_the_remote_clock(
        handler, remote):
    remote.containers[RC] = {}
    remote.objects[(RC, 'o')] = {'body': b'x', 'etag': md5(b'x'),
                                 'ts': ts(0), 'headers': {}}
    assert handler.handle(profile(), delete_row('o', ts(3))) is \
        Outcome.SKIPPED
    assert handler.handle(profile(), delete_row('o', ts(60))) is \
        Outcome.REMOTE_DELETED


def test_delete_row_without_remote_copy(handler, remote):
    assert handler.handle(profile(), delete_row('o', ts(3))) is \
        Outcome.SKIPPED
    assert remote.calls() == [('HEAD', RC, 'o')]

