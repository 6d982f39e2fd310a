"""The sync daemon's Swift write side over the wire: the row handler with
the real :class:`shunt.core.swift_remote.SwiftRemote` (behind the
``Remotes`` dispatcher) writing over loopback HTTP into a remote cluster
made of Swift's own gatekeeper, ``slo`` and ``dlo`` middlewares
(tests/unit/swift_store.py); what was written is read back with the
shunt's boto3-shaped face and header translation, with the local object
as the oracle."""

import json

import pytest
from swift.common.header_key_dict import HeaderKeyDict
from swift.common.internal_client import InternalClient
from swift.common.swob import wsgi_to_str
from swift.common.utils import Timestamp

from shunt.core import headers as shunt_headers
from shunt.core.config import parse_profile
from shunt.core.stores import Remotes
from shunt.core.swift_remote import SwiftRemote
from shunt.daemon.rows import Outcome, RowHandler
from tests.unit.fake_swift import serve
from tests.unit.helpers import FakeLogger
from tests.unit.test_daemon_rows import (
    ACCOUNT,
    CONTAINER,
    SEGS,
    put_slo,
    row,
    ts,
)
from tests.unit.test_daemon_swift import ListingCluster, nested_slo

# Swift's own slo and dlo middlewares over an in-memory store (the swift
# profile tests' cluster)
swift_store = pytest.importorskip(
    'tests.unit.swift_store', reason='tests/unit/swift_store.py is needed')

RC = 'wire'


class Remote:
    def __init__(self):
        self.store = swift_store.Store()
        self.front = swift_store.AuthFront(swift_store.cluster(self.store))
        self.front.base_url = serve(self.front)

    def objects(self, container):
        prefix = '/v1/AUTH_remote/%s/' % container
        return sorted(wsgi_to_str(p[len(prefix):])
                      for p in self.store.objects if p.startswith(prefix))


@pytest.fixture(scope='module')
def server():
    return Remote()


@pytest.fixture
def world(server):
    server.store.objects.clear()
    server.store.containers.clear()
    local = ListingCluster()
    swift = SwiftRemote(connect_timeout=2, read_timeout=10)
    remotes = Remotes(None, swift)
    handler = RowHandler({}, FakeLogger(), InternalClient(
        None, 'test-daemon', 1, app=local), remotes)
    return local, remotes, handler


def profile(server, **extra):
    raw = {'account': ACCOUNT, 'container': CONTAINER, 'protocol': 'swift',
           'aws_bucket': RC, 'aws_identity': 'remote:tester',
           'aws_secret': 'testing',
           'aws_endpoint': server.front.base_url + '/auth/v1.0'}
    raw.update(extra)
    return parse_profile(raw, 'sync.json', 0, shunted_only=False)


def test_plain_object_round_trip(server, world):
    local, remotes, handler = world
    body = b'wire bytes ' * 30000
    when = local.put(CONTAINER, 'dir/é', body, {
        'Content-Type': 'Text/Plain', 'X-Object-Meta-Mixed': 'Blue Sky',
        'X-Object-Meta-Utf8': 'été ☃', 'X-Object-Meta-Pct': '100%',
        'Content-Disposition': 'inline', 'X-Delete-At': '4000000000'})
    p = profile(server)
    assert handler.handle(p, row('dir/é')) is Outcome.UPLOADED
    assert server.objects(RC) == ['dir/é']
    # what the shunt shows for it is what Swift showed locally
    head = remotes.head_object(p, 'dir/é')
    shown = HeaderKeyDict(shunt_headers.swift_object_headers(
        head['ResponseMetadata']['HTTPHeaders']))
    assert shown['Etag'] == local.get(CONTAINER, 'dir/é')['etag']
    assert shown['Content-Type'] == 'Text/Plain'
    assert shown['Content-Disposition'] == 'inline'
    assert shown['X-Delete-At'] == '4000000000'
    assert shown['X-Timestamp'] == when.normal
    assert wsgi_to_str(shown['X-Object-Meta-Utf8']) == 'été ☃'
    assert shown['X-Object-Meta-Mixed'] == 'Blue Sky'
    assert shown['X-Object-Meta-Pct'] == '100%'
    assert not any('swift-timestamp' in k.lower() for k in shown)
    got = remotes.get_object(p, 'dir/é')['Body']
    try:
        assert got.read() == body
    finally:
        got.close()
    # the next visit: one remote HEAD, nothing written
    seen = len(server.front.seen)
    assert handler.handle(p, row('dir/é')) is Outcome.NOOP
    assert [s[0] for s in server.front.seen[seen:]] == ['HEAD']
    # a small object new to the node: PUT if absent, no HEAD first
    local.put(CONTAINER, 'small', b'tiny')
    seen = len(server.front.seen)
    assert handler.handle(p, row('small', size=4), fresh=True) is \
        Outcome.UPLOADED
    assert [s[0] for s in server.front.seen[seen:]] == ['PUT']
    # and when it exists already (412): compared as usual
    assert handler.handle(p, row('small', size=4), fresh=True) is \
        Outcome.NOOP
    # every request carried the bypass header
    assert all(s[3].get('X-Cloud-Sync-Shunt-Bypass') == 'true'
               for s in server.front.seen if s[1] != '/auth/v1.0')


def test_archived_slo_is_a_native_remote_slo(server, world):
    local, remotes, handler = world
    parts = [b'a' * 70000, b'b' * 70000, b'c' * 5]
    _manifest, body = put_slo(local, 'movie', parts)
    p = profile(server, retain_local=False)
    assert handler.handle(p, row('movie')) is Outcome.ARCHIVED
    assert local.get(CONTAINER, 'movie') is None
    assert server.objects(RC + '_segments') == [
        '%s/movie/%08d' % (SEGS, n) for n in range(3)]
    head = remotes.head_object(p, 'movie')
    raw = head['ResponseMetadata']['HTTPHeaders']
    assert raw['x-swift-static-large-object'] == 'True'
    assert int(raw['content-length']) == len(body)
    got = remotes.get_object(p, 'movie')['Body']
    try:
        assert got.read() == body
    finally:
        got.close()
    # the manifest names our segments
    resp = remotes.request(p, 'GET', RC, 'movie',
                           query={'multipart-manifest': 'get'})
    names = [e['name'] for e in json.loads(resp.body)]
    assert names == ['/%s_segments/%s/movie/%08d' % (RC, SEGS, n)
                     for n in range(3)]


def test_dlo_round_trip(server, world):
    local, remotes, handler = world
    local.put(SEGS, 'd/1', b'one-', when=ts(-50))
    local.put(SEGS, 'd/2', b'two', when=ts(-50))
    local.put(CONTAINER, 'dlo', b'', {'X-Object-Manifest': SEGS + '/d/'})
    p = profile(server)
    assert handler.handle(p, row('dlo')) is Outcome.UPLOADED
    got = remotes.get_object(p, 'dlo')['Body']
    try:
        assert got.read() == b'one-two'
    finally:
        got.close()
    assert handler.handle(p, row('dlo')) is Outcome.NOOP


def test_delete_row_removes_the_remote_copy(server, world):
    local, remotes, handler = world
    local.put(CONTAINER, 'gone', b'bytes')
    p = profile(server)
    handler.handle(p, row('gone'))
    assert handler.handle(p, row('gone', when=ts(10), deleted=1)) is \
        Outcome.REMOTE_DELETED
    assert server.objects(RC) == []


def test_nested_slo_round_trip(server, world):
    local, remotes, handler = world
    _manifest, body = nested_slo(local)
    p = profile(server, retain_local=False)
    assert handler.handle(p, row('outer')) is Outcome.ARCHIVED
    got = remotes.get_object(p, 'outer')['Body']
    try:
        assert got.read() == body
    finally:
        got.close()


@pytest.mark.parametrize('keeps_timestamps', [True, False])
def test_listed_rows_are_noops_without_a_request(server, world, tmp_path,
                                                 monkeypatch,
                                                 keeps_timestamps):
    """A first walk of rows whose copies the remote holds: one listing of
    the remote container makes them noops without a request, whether the
    remote kept their X-Timestamp (its last_modified is the version each
    was written as) or wrote them by its own clock (later than the rows'
    changes); a row the remote lacks, or whose copy is older, is not
    listed."""
    from shunt.daemon import listed
    from tests.unit.test_daemon_rows import T0, md5, put_rows
    monkeypatch.setattr(listed, 'LIST_COST', 1)
    # the remote's gatekeeper: shunt_inbound_x_timestamp = false or true
    monkeypatch.setattr(server.front.app, 'shunt_x_timestamp',
                        not keeps_timestamps)
    local, remotes, handler = world
    written = T0 - 3600.12345
    names = ['o1', 'o2', 'é/3', 'old']
    for name in names:
        local.put(CONTAINER, name, b'data', when=written)
        assert handler.handle(profile(server), row(
            name, when=written, size=4)) is Outcome.UPLOADED
    broker = put_rows(tmp_path, names[:3] + ['not-there'], md5(b'data'), 4,
                      written)
    # 'old' was overwritten locally (same bytes) a second after the version
    # its copy was made of
    broker.put_object('old', Timestamp(written + 1).internal, 4,
                      'application/octet-stream', md5(b'data'))
    handler.list_check_rows = 2
    found = handler.list_rows(profile(server), broker, -1, 'AUTH_test/c')
    # a kept X-Timestamp shows that copy is of the older version; by the
    # remote's clock it was written (now) after the overwrite
    assert found.listed(5) is not keeps_timestamps
    assert (found.count, found.requests) == (4 - keeps_timestamps, 1)
    server.store.calls.clear()
    local.requests.clear()
    for rowid, name in enumerate(names[:3], 1):
        assert found.listed(rowid)
        assert handler.handle(profile(server), dict(
            row(name, when=written, size=4), ROWID=rowid),
            listed=True) is Outcome.NOOP
    assert server.store.calls == [] and local.requests == []
    assert not found.listed(4)
