"""Nothing is ever lost: the sync daemon (archive mode, three container
nodes) killed with SIGKILL at every point of an upload, the bucket down
or throttling, objects overwritten and SLOs replaced while they are being
archived.

The fault proxy in front of the bucket holds a chosen S3 request (a
PutObject body, an UploadPart, the CompleteMultipartUpload, the manifest
sidecar, the verification HEAD) while the test kills the daemon waiting
on it. After a restart every object must be either local or archived and
verified (the bucket copy is exactly the version that was local), read
through the shunt with the same bytes and metadata, and no multipart
upload may be left open. See :mod:`tests.functional.sync_support`.

On a remote Swift archive the same tests run with Swift's requests held
instead (a segment PUT, the manifest PUT); the multipart and sidecar
points are S3's only.
"""

import time

import pytest
from swift.common.utils import Timestamp

from tests.functional import backends
from tests.functional.sync_support import (
    MiB,
    body_of,
    names_owned,
    new_container,
    wait_for,
)

pytestmark = pytest.mark.remotes('moto', 's3api', 'swift')

META = {'Color': 'green'}
STALL_WAIT = 60
SWIFT_ONLY = pytest.mark.s3_backends(
    'swift', reason='a request of the remote Swift layout (native SLO)')


def _archived_or_local(env, container, name, body, content_type):
    """The object is local (unchanged) or archived and verified; either
    way the shunt serves it with the same bytes and metadata."""
    status, headers, local_body = env.local_get(container, name)
    if status == 200:
        assert local_body == body, name
        where = 'local'
    else:
        assert status == 404, (name, status)
        head = env.archived(container, name)
        assert head is not None, f'{name}: neither local nor archived'
        assert head['size'] == len(body)
        assert head['swift_timestamp'], head['meta']
        where = 'archived'
    status, headers, got = env.request('GET', container, name)
    assert status == 200, (name, status, got[:200])
    assert got == body, name
    assert headers['content-type'] == content_type
    assert headers['x-object-meta-color'] == META['Color']
    assert bool(headers.get('content-location')) == (where == 'archived')
    return where


def _after_put(env, key, mark):
    """A matcher for the HEAD of ``key`` that follows its upload (the
    verification before the local copy is deleted)."""
    def match(req):
        if req.operation != 'HeadObject' or req.key != key:
            return False
        return bool(env.proxy.since(mark, ('PutObject',
                                           'CompleteMultipartUpload'),
                                    key))
    return match


def _first_head(key):
    return lambda req: req.operation == 'HeadObject' and req.key == key


def _segment_put(key):
    """A remote Swift: a PUT of one of the object's segment copies
    (``<rc>_segments/...``; ``key`` is ``<account>/<rc>/<name>``)."""
    prefix = key.rsplit('/', 1)[0] + '_segments/'
    return lambda r: r.operation == 'PutObject' and \
        r.key.startswith(prefix)


# (point, object kind, how the stalled request is found, body bytes sent
# before the stall)
KILL_POINTS = [
    ('before-upload', 'plain', lambda env, key, skey, mark:
        _first_head(key), None),
    ('putobject-body', 'plain', lambda env, key, skey, mark:
        lambda r: r.operation == 'PutObject' and r.key == key, 64 * 1024),
    ('verify-head', 'plain', lambda env, key, skey, mark:
        _after_put(env, key, mark), None),
    pytest.param('uploadpart-body', 'slo', lambda env, key, skey, mark:
                 lambda r: r.operation == 'UploadPart' and r.key == key,
                 64 * 1024, marks=backends.S3_ONLY, id='uploadpart-body'),
    pytest.param('complete-mpu', 'slo', lambda env, key, skey, mark:
                 lambda r: r.operation == 'CompleteMultipartUpload' and
                 r.key == key, None, marks=backends.S3_ONLY,
                 id='complete-mpu'),
    pytest.param('sidecar', 'slo', lambda env, key, skey, mark:
                 lambda r: r.operation == 'PutObject' and r.key == skey,
                 None, marks=backends.S3_ONLY, id='sidecar'),
    pytest.param('segment-body', 'slo', lambda env, key, skey, mark:
                 _segment_put(key), 64 * 1024, marks=SWIFT_ONLY,
                 id='segment-body'),
    pytest.param('manifest-put', 'slo', lambda env, key, skey, mark:
                 lambda r: r.operation == 'PutObject' and r.key == key and
                 'multipart-manifest' in r.query, None, marks=SWIFT_ONLY,
                 id='manifest-put'),
    ('slo-verify-head', 'slo', lambda env, key, skey, mark:
        _after_put(env, key, mark), None),
]


@pytest.mark.parametrize('point,kind,matcher,body_bytes', KILL_POINTS,
                         ids=[p[0] if isinstance(p, tuple) else p.id
                              for p in KILL_POINTS])
def test_sigkill_during_archive_loses_nothing(sync_env, point, kind,
                                              matcher, body_bytes):
    env = sync_env
    c = new_container(env, f'kill-{point}')
    env.map(env.profile(c, retain_local=False))
    name = 'victim'
    if kind == 'plain':
        body = body_of(MiB, point)
        env.put(c, name, body, meta=META)
        ctype = 'application/x-test'
    else:
        body = env.put_slo(c, name, [5 * MiB, 5 * MiB, 1000], point,
                           meta=META)
        ctype = 'application/x-slo'
    key, skey = env.key(c, name), env.manifest_key(c, name)
    node = env.owner(c, name)
    if point == 'verify-head':
        # a single PutObject is verified by its own answer unless told:
        # the HEAD to stall at (between upload and local delete) is there
        # with verify_with_head only
        env.cluster.configure_sync(verify_with_head=True)
    mark = env.proxy.mark()
    stall = env.proxy.stall(matcher(env, key, skey, mark),
                            body_bytes=body_bytes)
    env.cluster.start_sync(node, once=True)
    assert stall.wait(STALL_WAIT), (
        f'the daemon never sent the request to stall at ({point}); '
        f'its output:\n{env.cluster.sync_output(node)[-4000:]}')
    env.cluster.kill_sync(node)
    # the request never reaches the bucket (a PUT cut short, a
    # CompleteMultipartUpload never sent, ...)
    stall.release(forward=False)
    env.proxy.heal()
    # what the killed daemon left is consistent already
    _archived_or_local(env, c, name, body, ctype)

    # after a restart the object ends archived and verified, and no
    # multipart upload is left open
    (_, output), = env.run(node)
    try:
        assert _archived_or_local(env, c, name, body, ctype) == 'archived'
    except AssertionError as err:
        raise AssertionError(f'{err}\nthe restarted daemon on {node}:\n'
                             f'{output[-5000:]}') from err
    if kind == 'slo' and not env.swift:
        assert env.head_key(skey) is not None
        # the shunt serves it as the SLO it was (its SLO Etag)
        _, headers, _ = env.request('HEAD', c, name)
        assert headers.get('x-static-large-object') == 'True'
    assert env.open_uploads() == []


def test_sigkill_after_an_archive_before_its_progress_is_saved(sync_env):
    """Killed once an object is archived (uploaded, verified, deleted
    locally) but before the pass saved its progress: the restarted daemon
    neither loses nor uploads it again."""
    env = sync_env
    cluster = env.cluster
    c = new_container(env, 'kill-after')
    env.map(env.profile(c, retain_local=False))
    cluster.configure_sync(concurrency=1)  # rows one after the other
    owned = names_owned(cluster, env.account, c, 2)
    node = cluster.container_nodes[0]
    first, second = owned[node]
    bodies = {first: body_of(3000, first), second: body_of(4000, second)}
    for name in (first, second):  # in this order: ROWIDs follow
        env.put(c, name, bodies[name], meta=META)
    mark = env.proxy.mark()
    stall = env.proxy.stall(_first_head(env.key(c, second)))
    cluster.start_sync(node, once=True)
    assert stall.wait(STALL_WAIT), cluster.sync_output(node)[-4000:]
    cluster.kill_sync(node)
    stall.release(forward=False)
    assert env.local_status(c, first) == 404  # archived before the kill
    env.run(node)
    for name, body in bodies.items():
        assert _archived_or_local(env, c, name, body,
                                  'application/x-test') == 'archived'
        assert len(env.proxy.uploads(mark, env.key(c, name))) == 1, name


@pytest.mark.parametrize('fault', ['down', 'throttling'])
def test_bucket_unavailable_deletes_nothing_and_resumes(sync_env, fault):
    env = sync_env
    c = new_container(env, f'bucket-{fault}')
    env.map(env.profile(c, retain_local=False))
    owned = names_owned(env.cluster, env.account, c, 1)
    bodies = {}
    for (name,) in owned.values():
        bodies[name] = body_of(2000, name)
        env.put(c, name, bodies[name], meta=META)
    if fault == 'down':
        env.proxy.down = True
    else:
        env.proxy.fail(None, status=503, code='SlowDown')
    # every node owns a row that fails: --once says so
    env.run(expect=lambda status: status != 0)
    for name, body in bodies.items():
        status, _, got = env.local_get(c, name)
        assert (status, got) == (200, body), name
    assert env.open_uploads() == []

    # the bucket is back: the work is done (failed rows are retried)
    env.proxy.heal()

    def all_archived():
        env.run(expect=None)
        return all(env.local_status(c, name) == 404 for name in bodies)
    wait_for(all_archived, timeout=120, interval=1,
             what='archived after the bucket came back')
    env.run()  # and a pass now succeeds
    for name, body in bodies.items():
        status, headers, got = env.request('GET', c, name)
        assert (status, got) == (200, body)
        assert headers['x-object-meta-color'] == META['Color']


def test_object_overwritten_while_archived_keeps_new_version(sync_env):
    env = sync_env
    c = new_container(env, 'overwrite')
    env.map(env.profile(c, retain_local=False))
    old = body_of(MiB, 'old')
    env.put(c, 'obj', old, meta=META)
    key = env.key(c, 'obj')
    node = env.owner(c, 'obj')
    stall = env.proxy.stall(
        lambda r: r.operation == 'PutObject' and r.key == key,
        body_bytes=64 * 1024)
    env.cluster.start_sync(node, once=True)
    assert stall.wait(STALL_WAIT), env.cluster.sync_output(node)[-4000:]
    new = body_of(MiB // 2, 'new')
    env.put(c, 'obj', new, meta={'Color': 'new'})
    new_ts = Timestamp(env.local_get(c, 'obj')[1]['x-timestamp'])
    stall.release()
    env.cluster.wait_sync(node)
    # the old version's archiving never deletes the new one
    status, headers, got = env.local_get(c, 'obj')
    assert (status, got) == (200, new)
    assert Timestamp(headers['x-timestamp']) == new_ts
    status, headers, got = env.request('GET', c, 'obj')
    assert (status, got, headers['x-object-meta-color']) == (200, new, 'new')

    # the new version is archived in its turn, and read back intact
    env.run(node)
    assert env.local_status(c, 'obj') == 404
    assert env.archived(c, 'obj')['swift_timestamp'] == new_ts
    status, headers, got = env.request('GET', c, 'obj')
    assert (status, got, headers['x-object-meta-color']) == (200, new, 'new')


def test_slo_replaced_while_archived_keeps_new_version(sync_env):
    env = sync_env
    c = new_container(env, 'replace-slo')
    env.map(env.profile(c, retain_local=False))
    env.put_slo(c, 'movie', [5 * MiB, 5 * MiB, 100], 'v1', meta=META)
    key = env.key(c, 'movie')
    node = env.owner(c, 'movie')
    stall = env.proxy.stall(
        _segment_put(key) if env.swift else
        lambda r: r.operation == 'UploadPart' and r.key == key,
        body_bytes=64 * 1024)
    env.cluster.start_sync(node, once=True)
    assert stall.wait(STALL_WAIT), env.cluster.sync_output(node)[-4000:]
    # a new SLO under the same name, sharing no segment with the old one
    time.sleep(0.01)
    new = env.put_slo(c, 'movie', [5 * MiB, 2 * MiB], 'v2',
                      meta={'Color': 'new'})
    stall.release()
    env.cluster.wait_sync(node)
    assert env.local_get(c, 'movie')[2] == new
    status, headers, got = env.request('GET', c, 'movie')
    assert (status, got, headers['x-object-meta-color']) == (200, new, 'new')
    assert env.open_uploads() == []

    env.run(node)
    assert env.local_status(c, 'movie') == 404
    status, headers, got = env.request('GET', c, 'movie')
    assert (status, got, headers['x-object-meta-color']) == (200, new, 'new')
    assert headers.get('x-static-large-object') == 'True'
    assert env.open_uploads() == []
