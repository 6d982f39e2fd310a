"""The sync daemon on three container nodes: sync mode (a mirror of PUT,
POST and DELETE, the bucket checked with boto3), archive mode's round
trip (a local object's answers recorded before archiving are the
archived object's answers after), each object uploaded exactly once
across the three daemons, young objects left alone, and a stopped node's
share done by the others after ``verification_slack``.

Every test maps its own container (the fault proxy is the endpoint, so
every S3 call is counted) and runs ``cloud-shunt-sync --once`` on the
nodes; see :mod:`tests.functional.sync_support`. Every test runs on each
archive backend, the remote Swift cluster included (the archived copy
checked through the backend-neutral ``env.archived``), but the takeover
of 1space's S3 layout.
"""

import hashlib
import signal
import socket
import time

import pytest
from swift.common.utils import Timestamp

from tests.functional import backends
from tests.functional.sync_support import (
    MiB,
    assert_same_answers,
    body_of,
    internal_request,
    listing_row,
    names_owned,
    new_container,
    oracle_requests,
    primary_nodes,
    quote,
    record,
    wait_for,
)

pytestmark = pytest.mark.remotes('moto', 's3api', 'swift')

META = {'Color': 'blue', 'Unicode': '\u00e9t\u00e9 \u2603'}


def _md5(body):
    return hashlib.md5(body).hexdigest()


def _local_timestamp(env, container, name):
    status, headers, _ = env.local_get(container, name)
    assert status == 200
    return Timestamp(headers['x-timestamp'])


def test_three_container_nodes_each_hold_a_replica(sync_env):
    """The cluster the daemons run on: three container servers, each a
    node of the 3-replica container ring with its own devices and its
    own [cloud-shunt-sync] section."""
    import glob
    import os
    env = sync_env
    cluster = env.cluster
    c = new_container(env, 'replicas')
    env.put(c, 'obj', b'x')
    assert sorted(primary_nodes(cluster, env.account, c)) == sorted(
        cluster.container_nodes)
    for node in cluster.container_nodes:
        dbs = glob.glob(os.path.join(
            cluster.node_devices_dir(node), cluster.node_device(node),
            'containers', '*', '*', '*', '*.db'))
        assert dbs, node
        with open(cluster.conf_path(node)) as fp:
            conf = fp.read()
        assert f'bind_port = {cluster.ports[node]}' in conf
        assert '[cloud-shunt-sync]' in conf
        assert cluster.sync_status_dir(node) in conf
    # one node down: the cluster still lists and writes
    cluster.stop_container_server(2)
    env.put(c, 'obj2', b'y')
    names = [o['name'] for o in env.conn.get_container(c)[1]]
    assert names == ['obj', 'obj2']
    cluster.start_container_server(2)


def test_sync_mode_mirrors_put_post_delete(sync_env):
    env = sync_env
    c = new_container(env, 'mirror')
    env.map(env.profile(c))  # retain_local and propagate_delete default
    bodies = {'plain': body_of(300 * 1024, 'plain'),
              'caf\u00e9/\u2603 name': b'unicode name\n',
              'empty': b''}
    for name, body in bodies.items():
        env.put(c, name, body, content_type='text/x-mirror', meta=META)
    mark = env.proxy.mark()
    env.run()

    for name, body in bodies.items():
        key = env.key(c, name)
        head = env.archived(c, name)
        assert head is not None, name
        assert head['size'] == len(body)
        assert head['etag'] == _md5(body)
        assert head['content_type'] == 'text/x-mirror'
        assert head['meta']['color'] == 'blue'
        assert head['meta']['unicode'] == META['Unicode']
        assert head['swift_timestamp'] == _local_timestamp(env, c, name)
        assert env.archived_body(c, name) == body
        # sync mode keeps the local copy
        assert env.local_status(c, name) == 200
        # uploaded once, by one of the three daemons
        assert [r.operation for r in env.proxy.uploads(mark, key)] == \
            ['PutObject'], name

    # a POST: copied in place with the new metadata, the body not resent
    time.sleep(0.01)
    env.conn.post_object(c, 'plain', headers={
        'X-Object-Meta-Color': 'red', 'Content-Type': 'text/x-mirror'})
    mark = env.proxy.mark()
    env.run()
    key = env.key(c, 'plain')
    head = env.archived(c, 'plain')
    assert head['meta']['color'] == 'red'
    assert 'unicode' not in head['meta']
    assert head['etag'] == _md5(bodies['plain'])
    assert env.proxy.uploads(mark, key) == []
    assert len(env.proxy.since(mark, env.metadata_update, key)) == 1
    _, headers, body = env.request('GET', c, 'plain')
    assert body == bodies['plain'] and headers['x-object-meta-color'] == 'red'

    # a DELETE row deletes the bucket copy (propagate_delete's default)
    env.conn.delete_object(c, 'empty')
    env.run()
    assert env.archived(c, 'empty') is None
    assert env.archived(c, 'plain') is not None
    assert env.request('GET', c, 'empty')[0] == 404


def test_sync_mode_keeps_remote_copy_without_propagate_delete(sync_env):
    env = sync_env
    c = new_container(env, 'keep')
    env.map(env.profile(c, propagate_delete=False))
    env.put(c, 'obj', b'kept in the bucket')
    env.run()
    assert env.archived(c, 'obj') is not None
    env.conn.delete_object(c, 'obj')
    mark = env.proxy.mark()
    env.run()
    assert env.archived(c, 'obj') is not None
    assert env.proxy.since(mark, 'DeleteObject') == []


def test_archive_round_trip_matches_local_answers(sync_env):
    """Plain, unicode-named, SLO (5 MiB segments) and small-segment SLO
    objects: every answer recorded while local is given again once
    archived, through the shunt (original Last-Modified and X-Timestamp
    included); each object was uploaded exactly once by the three
    daemons (a plain one verified by its PUT's answer, no HEAD after it),
    and a later verifying pass uploads nothing."""
    env = sync_env
    c = new_container(env, 'roundtrip')
    env.map(env.profile(c, retain_local=False))
    env.cluster.configure_sync(verification_slack=600)
    objects = {}  # name -> (body, requests, kind, segments)
    plain = body_of(200 * 1024, 'plain')
    env.put(c, 'plain.bin', plain, meta=META)
    objects['plain.bin'] = (plain, oracle_requests(len(plain)), 'plain', 0)
    uname = 'd\u00e9j\u00e0 vu/\u65e5\u672c \u2603.txt'
    ubody = 'caf\u00e9 cr\u00e8me\n'.encode('utf-8') * 100
    # a non-ASCII Content-Disposition: the store gets Swift's bytes
    env.put(c, uname, ubody, content_type='text/plain; charset=utf-8',
            meta={'Lang': 'fr'}, headers={
                'Content-Disposition': 'attachment; filename="r\u00e9sum'
                                       '\u00e9 \u2603.txt"'})
    objects[uname] = (ubody, oracle_requests(len(ubody)), 'plain', 0)
    big = env.put_slo(c, 'big.slo', [5 * MiB, 5 * MiB, 1024], 'big',
                      meta=META)
    objects['big.slo'] = (big, oracle_requests(len(big), 5 * MiB, True),
                          'slo', 3)
    small = env.put_slo(c, 'small.slo', [100 * 1024, 100 * 1024, 7], 'sm')
    objects['small.slo'] = (small, oracle_requests(len(small), 100 * 1024,
                                                    True), 'small-slo', 3)
    before = {name: record(env, c, name, reqs)
              for name, (_, reqs, _, _) in objects.items()}
    rows = {name: listing_row(env, c, name) for name in objects}

    mark = env.proxy.mark()
    env.run()
    daemons = env.proxy.since(mark)

    for name, (body, reqs, kind, segments) in objects.items():
        # archived: the local copy is gone, the bucket copy verified
        assert env.local_status(c, name) == 404, name
        key = env.key(c, name)
        head = env.archived(c, name)
        assert head is not None, name
        assert head['size'] == len(body)
        assert head['swift_timestamp'] == \
            Timestamp(before[name]['HEAD'][1]['x-timestamp'])
        after = record(env, c, name, reqs)
        if env.swift:
            # a native remote SLO: segments copied, never re-chunked
            assert head['large'] == (None if kind == 'plain' else 'slo')
            assert after['GET'][1]['content-location'], name
        else:
            assert after['GET'][1]['content-location'].endswith(
                quote(key))
        assert_same_answers(before[name], after, name,
                            native_remote=env.swift)
        row = listing_row(env, c, name)
        assert row is not None, name
        assert (row['name'], row['bytes']) == (rows[name]['name'],
                                               rows[name]['bytes'])
        if kind == 'plain':
            assert row['hash'] == rows[name]['hash']
            # the PUT's own answer verified the copy: no HEAD after it
            ops = [r.operation for r in daemons if r.key == key]
            assert 'HeadObject' not in ops[ops.index('PutObject'):], ops
        # exactly once across the three daemons
        uploads = [r.operation for r in env.proxy.uploads(mark, key)]
        if env.swift:
            # one PUT of the object (an SLO: of its manifest, after one
            # PUT of each segment)
            assert uploads == ['PutObject'], (name, uploads)
            if kind != 'plain':
                segs = env.proxy.uploads(mark, env.segments_key(c)[:-1] +
                                         f'{c}-segments/{name}/*')
                assert len(segs) == segments, (name, segs)
            continue
        if kind == 'slo':
            assert sorted(uploads) == sorted(
                ['UploadPart'] * segments + ['CompleteMultipartUpload']), \
                name
        elif kind == 'small-slo':
            # re-chunked: one PutObject, or one multipart upload
            assert uploads == ['PutObject'] or (
                uploads.count('CompleteMultipartUpload') == 1 and
                set(uploads) == {'UploadPart', 'CompleteMultipartUpload'}), \
                uploads
        else:
            assert uploads == ['PutObject'], (name, uploads)
        if kind != 'plain':
            sidecar = env.manifest_key(c, name)
            assert len(env.proxy.uploads(mark, sidecar)) == 1, name
            assert env.head_key(sidecar) is not None
    assert env.open_uploads() == []

    # every replica verifies rows older than the slack: HEADs, no upload
    env.cluster.configure_sync(verification_slack=1)
    time.sleep(1.5)
    mark = env.proxy.mark()
    env.run()
    assert env.proxy.uploads(mark) == []
    assert env.proxy.since(mark, (env.metadata_update, 'DeleteObject')) \
        == []
    for name, (body, _, _, _) in objects.items():
        assert env.request('GET', c, name)[2] == body, name


def _statsd_names(sock):
    """The metric names received on ``sock`` so far (StatsD lines)."""
    names = []
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return names
        names += [line.split(':', 1)[0] for line in
                  data.decode('utf-8', 'replace').splitlines()]


def test_long_running_daemons_pass_every_interval_with_metrics(sync_env):
    """The daemons as they run in production (no ``--once``): a pass
    every ``interval`` on every node, each logged and timed (StatsD), an
    object written while they run archived by a later pass, and SIGTERM
    ends each one cleanly."""
    env = sync_env
    cluster = env.cluster
    statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    statsd.bind(('127.0.0.1', 0))
    statsd.setblocking(False)
    try:
        cluster.configure_sync(interval=1, log_statsd_host='127.0.0.1',
                               log_statsd_port=statsd.getsockname()[1])
        c = new_container(env, 'service')
        env.map(env.profile(c))
        env.put(c, 'first', b'before the daemons started')
        cluster.start_sync()
        wait_for(lambda: env.archived(c, 'first'), timeout=90,
                 what='first archived')
        env.put(c, 'second', b'while they run')
        wait_for(lambda: env.archived(c, 'second'), timeout=90,
                 what='second archived by a later pass')
        assert env.archived_body(c, 'second') == b'while they run'
        # every node keeps passing: two more passes each from now
        counts = {node: cluster.sync_output(node).count('Pass done: ')
                  for node in cluster.container_nodes}
        wait_for(lambda: all(
            cluster.sync_output(node).count('Pass done: ') >= n + 2
            for node, n in counts.items()), timeout=60,
            what='two more passes on every node')
        names = _statsd_names(statsd)
        passes = names.count('cloud_shunt_sync.pass.timing')
        assert passes >= 2 * len(cluster.container_nodes), names
        assert 'cloud_shunt_sync.container_pass.timing' in names
        assert names.count('cloud_shunt_sync.uploaded') == 2, names

        for node in cluster.container_nodes:
            proc = cluster.procs[f'sync-{node}']
            proc.signal(signal.SIGTERM)
            assert proc.popen.wait(timeout=60) == 0, \
                cluster.sync_output(node)[-3000:]
            output = cluster.sync_output(node)
            assert 'Stopped on request' in output, output[-3000:]
            assert 'Traceback' not in output, output[-3000:]
    finally:
        statsd.close()


def test_young_objects_wait_for_copy_after(sync_env):
    env = sync_env
    c = new_container(env, 'young')
    env.map(env.profile(c, retain_local=False, copy_after=3600))
    env.put(c, 'fresh', b'too young to archive')
    mark = env.proxy.mark()
    env.run()  # not eligible yet is not a failure
    assert env.local_status(c, 'fresh') == 200
    assert env.proxy.uploads(mark) == []


def test_stopped_node_share_done_by_others_after_slack(sync_env):
    env = sync_env
    cluster = env.cluster
    c = new_container(env, 'nodedown')
    env.map(env.profile(c, retain_local=False))
    owned = names_owned(cluster, env.account, c, 2)
    bodies = {name: body_of(1000 + i, name)
              for i, name in enumerate(sum(owned.values(), []))}
    for name, body in bodies.items():
        env.put(c, name, body)
    down = cluster.container_nodes[1]
    up = [n for n in cluster.container_nodes if n != down]

    # rows younger than the slack: only their owners handle them
    cluster.configure_sync(verification_slack=600)
    mark = env.proxy.mark()
    env.run(up)
    for node, names in owned.items():
        for name in names:
            assert env.local_status(c, name) == (
                200 if node == down else 404), (node, name)

    # once older than the slack, the running nodes do the stopped one's
    # (one after the other: two verifiers racing on one row is
    # /work/team/DAEMON_BUGS.md #4)
    cluster.configure_sync(verification_slack=2)
    time.sleep(2.5)
    for node in up:
        env.run(node)
    for name, body in bodies.items():
        assert env.local_status(c, name) == 404, name
        assert env.request('GET', c, name)[2] == body
        assert len(env.proxy.uploads(mark, env.key(c, name))) == 1, name

    # the node comes back: its rows are done, nothing is uploaded again
    mark = env.proxy.mark()
    env.run(down)
    assert env.proxy.uploads(mark) == []


@backends.S3_ONLY
def test_buckets_filled_by_1space_are_taken_over_without_uploads(sync_env):
    """Moving from 1space's daemon: an object it synced (its bucket copy
    has no swift-timestamp bookkeeping) is not uploaded again, and its
    archive tombstone (one offset tick after the archived version, no
    mark) is not taken for a client's delete: the archived copy stays in
    the bucket and readable through the shunt."""
    env = sync_env
    synced, archived = new_container(env, 'onespace-sync'), \
        new_container(env, 'onespace-archive')
    body = body_of(5000, '1space')
    for container in (synced, archived):
        env.put(container, 'obj', body, content_type='text/x-1space',
                meta={'Color': 'blue'})
    ts = _local_timestamp(env, archived, 'obj')
    time.sleep(1.1)  # 1space uploads after the PUT (S3 keeps seconds)
    for container in (synced, archived):
        env.s3.put_object(Bucket=env.bucket, Key=env.key(container, 'obj'),
                          Body=body, ContentType='text/x-1space',
                          Metadata={'color': 'blue'})
    # 1space's archive delete: the archived version plus one tick
    path = f'/v1/{env.account}/{archived}/obj'
    tick = Timestamp(ts.timestamp, offset=ts.offset + 1)
    assert internal_request(env.cluster, 'DELETE', path,
                            {'X-Timestamp': tick.internal}) == 204
    assert env.local_status(archived, 'obj') == 404
    env.map(env.profile(synced),
            env.profile(archived, retain_local=False))
    mark = env.proxy.mark()
    env.run()
    assert env.proxy.uploads(mark) == []
    assert env.proxy.since(mark, 'DeleteObject') == []
    for container in (synced, archived):
        status, headers, got = env.request('GET', container, 'obj')
        assert (status, got) == (200, body), container
        assert headers['x-object-meta-color'] == 'blue'


def _forget_progress(env):
    """Every node's daemon loses its status dir (its record of the
    rows)."""
    import shutil
    for node in env.cluster.container_nodes:
        shutil.rmtree(env.cluster.sync_status_dir(node), ignore_errors=True)


def test_walk_of_done_rows_without_progress_lists_instead_of_heads(
        sync_env):
    """A pass over many rows the daemons have no record of (their status
    dirs lost, as on a first walk after 1space's daemon) finds the
    up-to-date ones by listing the bucket: no HEAD or upload per row; a
    row whose copy is stale (overwritten since) still gets its HEAD and
    its upload. A listing the bucket refuses costs nothing but the HEADs
    it would have saved."""
    import concurrent.futures
    env = sync_env
    c = new_container(env, 'listed')
    names = ['obj-%04d' % i for i in range(1005)]
    env.conn.put_container(c)

    def put(chunk):
        conn = env.cluster.swift_conn()
        try:
            for name in chunk:
                conn.put_object(c, name, name.encode())
        finally:
            conn.close()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(put, [names[i::8] for i in range(8)]))
    # S3 keeps whole seconds: the copies are written after the rows
    time.sleep(1.1)
    env.cluster.configure_sync(remote_clock_skew=0)
    env.map(env.profile(c))
    env.run()
    env.conn.put_object(c, 'obj-0007', b'changed')
    _forget_progress(env)
    mark = env.proxy.mark()
    env.run()
    changed = env.key(c, 'obj-0007')
    assert [r.key for r in env.proxy.uploads(mark)] == [changed]
    # (a remote Swift: and the HEAD of its container, before the upload)
    assert {r.key for r in env.proxy.since(
        mark, 'HeadObject', key=env.key(c, '*'))} <= {changed}
    lists = [r for r in env.proxy.since(mark) if env.is_listing(c)(r)]
    # each node lists the container's keys once (1,005 keys: 2 pages)
    assert 0 < len(lists) <= 2 * len(env.cluster.container_nodes)
    assert env.archived_body(c, 'obj-0007') == b'changed'

    # the bucket refuses the listing: every row is checked as before
    _forget_progress(env)
    env.proxy.fail(env.is_listing(c), status=500, code='InternalError')
    mark = env.proxy.mark()
    outputs = [output for _, output in env.run()]
    assert env.proxy.uploads(mark) == []
    heads = {r.key for r in env.proxy.since(mark, 'HeadObject',
                                            key=env.key(c, '*'))}
    assert heads == {env.key(c, name) for name in names}
    assert all('could not list the bucket' in output for output in outputs)


@pytest.mark.s3_backends('swift', reason='the remote Swift keeps the '
                         'X-Timestamp a client sends when allowed to')
def test_remote_swift_keeps_timestamps_and_exact_values(sync_env):
    """On a remote Swift whose gatekeeper lets clients set X-Timestamp
    (``shunt_inbound_x_timestamp = false``) the archived copy has the
    local object's own X-Timestamp; metadata values and the content type
    arrive exactly as they were (1space lower-cased them), and the
    remote container was created by the daemon."""
    env = sync_env
    remote = env.cluster.remote
    remote.restart_proxy(keep_timestamps=True)
    try:
        c = new_container(env, 'keepts')
        env.map(env.profile(c))
        meta = {'Mixed': 'Blue Sky', 'Unicode': META['Unicode']}
        env.put(c, 'obj', b'exact', content_type='Text/X-Mixed; Charset=A',
                meta=meta, headers={'Content-Disposition': 'Inline'})
        local = _local_timestamp(env, c, 'obj')
        env.run()
        head = remote.head(remote.container_for(env.account, c), 'obj')
        assert Timestamp(head['x-timestamp']) == local
        got = env.archived(c, 'obj')
        assert got['swift_timestamp'] == local
        assert got['content_type'] == 'Text/X-Mixed; Charset=A'
        assert got['meta']['mixed'] == 'Blue Sky'
        assert got['meta']['unicode'] == META['Unicode']
        assert head['content-disposition'] == 'Inline'
    finally:
        remote.restart_proxy(keep_timestamps=False)


def test_dlo_archived_whole_round_trip(sync_env):
    """A DLO (segments in a container of their own, not mapped) archived
    in archive mode answers as it did while local (whole GET, ranges
    across segments, HEAD); its segments stay local (objects of their
    own) and, on a remote Swift, are copied next to the manifest."""
    env = sync_env
    c = new_container(env, 'dlo')
    segs = new_container(env, 'dlo-segs')
    env.map(env.profile(c, retain_local=False))
    parts = [body_of(3000 + i, f'dlo-{i}') for i in range(3)]
    for i, part in enumerate(parts):
        env.put(segs, f'movie/{i:03d}', part)
    env.put(c, 'movie', b'', content_type='video/x-dlo', meta=META,
            headers={'X-Object-Manifest': f'{segs}/movie/'})
    whole = b''.join(parts)
    reqs = oracle_requests(len(whole), len(parts[0]))
    before = record(env, c, 'movie', reqs)
    assert before['GET'][2] == whole
    env.run()
    assert env.local_status(c, 'movie') == 404
    assert env.archived(c, 'movie') is not None
    after = record(env, c, 'movie', reqs)
    assert_same_answers(before, after, 'dlo', native_remote=env.swift)
    for i in range(len(parts)):
        assert env.local_status(segs, f'movie/{i:03d}') == 200
    if env.swift:
        assert env.archived(c, 'movie')['large'] == 'dlo'
