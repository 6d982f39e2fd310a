"""The all-in-one's second Swift cluster (``aio[swift]``), checked directly
with python-swiftclient: an independent, working Swift (its own auth,
policies, SLO and DLO), and the helpers that archive into it the way the
sync daemon does."""

import glob
import hashlib
import json
import subprocess
import tempfile
import time

import pytest
from swiftclient import client as swiftclient
from swiftclient.exceptions import ClientException

from shunt.tools import aio_remote
from shunt.tools.aio import Cluster, ClusterError
from tests.functional import backends
from tests.functional.test_aio import _cloud_shunt_command, _read

pytestmark = pytest.mark.remotes('swift')


@pytest.fixture
def remote(aio):
    return aio.remote


def test_backend_names():
    from shunt.tools.aio import REMOTE_BACKENDS, S3_BACKENDS
    assert REMOTE_BACKENDS == S3_BACKENDS + ('swift',)
    with pytest.raises(ValueError, match='s3_backend'):
        Cluster(s3_backend='ftp')


def test_is_its_own_cluster(aio, remote):
    info = remote.conn().get_capabilities()
    assert [p['name'] for p in info['swift']['policies']] == \
        list(aio_remote.REMOTE_POLICIES)
    local = aio.info()
    assert [p['name'] for p in local['swift']['policies']] == \
        ['gold', 'silver']
    ports = {aio.ports[n] for n in aio_remote.PROCS}
    assert len(ports) == len(aio_remote.PROCS)
    assert not ports & {aio.ports[n] for n in aio.ports
                        if not n.startswith('remote-')}
    assert remote.auth_url.startswith(aio.remote_endpoint)
    assert aio.remote_endpoint != aio.proxy_url


def test_local_token_is_not_a_remote_token(aio, remote):
    # own memcached: a local token means nothing there
    _, token = aio.token('test:tester', 'testing')
    with pytest.raises(ClientException) as err:
        swiftclient.head_account(remote.storage_url('AUTH_test'), token)
    assert err.value.http_status == 401


def test_plain_put_get_and_policies(remote, unique_name):
    conn = remote.conn()
    name = unique_name('plain')
    conn.put_container(name, headers={'X-Storage-Policy': 'cold'})
    assert conn.head_container(name)['x-storage-policy'] == 'cold'
    conn.put_object(name, 'o', b'remote data',
                    headers={'X-Object-Meta-K': '\u00e9'})
    headers, body = conn.get_object(name, 'o')
    assert body == b'remote data'
    assert headers['x-object-meta-k'] == '\u00e9'


def test_slo_and_dlo(remote, unique_name):
    conn = remote.conn()
    name = unique_name('lo')
    conn.put_container(name)
    parts = [b'a' * 1000, b'b' * 10]
    for i, part in enumerate(parts):
        conn.put_object(name, f'seg/{i}', part)
    manifest = [{'path': f'/{name}/seg/{i}',
                 'etag': hashlib.md5(p).hexdigest(), 'size_bytes': len(p)}
                for i, p in enumerate(parts)]
    conn.put_object(name, 'slo', json.dumps(manifest),
                    query_string='multipart-manifest=put')
    headers, body = conn.get_object(name, 'slo')
    assert body == b''.join(parts)
    assert headers['x-static-large-object'] == 'True'
    conn.put_object(name, 'dlo', b'',
                    headers={'X-Object-Manifest': f'{name}/seg/'})
    headers, body = conn.get_object(name, 'dlo')
    assert body == b''.join(parts)
    assert headers['x-object-manifest'] == f'{name}/seg/'


def test_reseller_admin_reaches_the_second_account(remote, unique_name):
    name = unique_name('other')
    conn = remote.conn(aio_remote.RESELLER_USER, aio_remote.RESELLER_KEY,
                       account=aio_remote.REMOTE_ACCOUNT2)
    conn.put_container(name)
    conn.put_object(name, 'o', b'in remote2')
    owner = remote.conn('remote2:tester2', 'testing2')
    assert owner.get_object(name, 'o')[1] == b'in remote2'
    with pytest.raises(ClientException) as err:
        remote.conn('remote:reader', 'reading').get_object(name, 'o')
    assert err.value.http_status in (403, 404)


def test_profile_is_a_swift_profile(aio, remote):
    profile = aio.profile('AUTH_test', 'photos', custom_prefix='',
                          restore_object=True)
    assert profile == {
        'account': 'AUTH_test', 'container': 'photos', 'protocol': 'swift',
        'aws_endpoint': remote.auth_url,
        'aws_identity': 'remote:tester', 'aws_secret': 'testing',
        'aws_bucket': f'{aio.bucket}_AUTH_test_photos',
        'merge_namespaces': True, 'restore_object': True}
    assert aio.remote_identity == 'remote:tester'
    assert aio.remote_secret == 'testing'


def test_long_container_names_stay_valid():
    long = 'c' * 256
    name = aio_remote.container_for('bucket', 'AUTH_test', long)
    assert len(name + '_segments') <= 256
    assert name != aio_remote.container_for('bucket', 'AUTH_test',
                                            long[:-1] + 'd')


def test_archive_object_decodes_metadata(aio, remote, unique_name):
    container = unique_name('arc')
    at = str(int(time.time()) + 3600)
    aio.archive_object('AUTH_test', container, 'caf\u00e9', b'body',
                       content_type='text/x-a',
                       metadata={'plain': 'Mixed Case',
                                 'enc': '=?utf-8?q?=C3=A9t=C3=A9?=',
                                 'x-delete-at': at})
    headers = aio.archived_head('AUTH_test', container, 'caf\u00e9')
    assert headers['content-type'] == 'text/x-a'
    assert headers['x-object-meta-plain'] == 'Mixed Case'
    assert headers['x-object-meta-enc'] == '\u00e9t\u00e9'
    assert headers['x-delete-at'] == at
    assert aio.archived_head('AUTH_test', container, 'nope') is None
    rc = remote.container_for('AUTH_test', container)
    assert remote.conn().get_object(rc, 'caf\u00e9')[1] == b'body'


def test_archive_dlo_copies_segments(aio, remote, swift_conn, unique_name):
    segs, man = unique_name('dseg'), unique_name('dman')
    swift_conn.put_container(segs)
    for i in range(3):
        swift_conn.put_object(segs, f'p/{i}', b'%d' % i * 10)
    aio.archive_object('AUTH_test', man, 'dlo', b'',
                       metadata={'x-object-manifest': f'{segs}/p/'})
    rc = remote.container_for('AUTH_test', man)
    headers, body = remote.conn().get_object(rc, 'dlo')
    assert body == b'0' * 10 + b'1' * 10 + b'2' * 10
    assert headers['x-object-manifest'] == f'{rc}_segments/{segs}/p/'
    assert 'x-object-meta-swift-timestamp' in headers
    assert headers['x-object-meta-swift-source-dlo-etag'] == hashlib.md5(
        ''.join(hashlib.md5(b'%d' % i * 10).hexdigest()
                for i in range(3)).encode()).hexdigest()


def test_archive_slo(aio, remote, unique_name):
    container = unique_name('slo')
    parts = [b'x' * 2000, b'y' * 3]
    head = aio.archive_slo('AUTH_test', container, 'big',
                           [(f'/{container}_segments/big/{i}', p)
                            for i, p in enumerate(parts)],
                           content_type='text/x-slo',
                           metadata={'color': 'blue'})
    assert head['x-static-large-object'] == 'True'
    assert head['x-object-meta-color'] == 'blue'
    rc = remote.container_for('AUTH_test', container)
    _, body = remote.conn().get_object(
        rc, 'big', query_string='multipart-manifest=get')
    assert [seg['name'] for seg in json.loads(body)] == [
        f'/{rc}_segments/{container}_segments/big/{i}' for i in range(2)]
    assert remote.conn().get_object(rc, 'big')[1] == b''.join(parts)


def test_remote_account_profile_reads_through_the_shunt(
        aio, remote, swift_conn, tester, mappings, unique_name):
    """``remote_account``: the reseller admin's credentials, another
    account's container (the shunt's read path, end to end)."""
    container = unique_name('racct')
    swift_conn.put_container(container)
    rc = remote.container_for(tester.account, container)
    other = remote.conn(aio_remote.RESELLER_USER, aio_remote.RESELLER_KEY,
                        account=aio_remote.REMOTE_ACCOUNT2)
    other.put_container(rc)
    other.put_object(rc, 'o', b'from remote2')
    reseller = {'aws_identity': aio_remote.RESELLER_USER,
                'aws_secret': aio_remote.RESELLER_KEY}
    mappings([aio.profile(tester.account, container,
                          remote_account=aio_remote.REMOTE_ACCOUNT2,
                          **reseller)])
    assert swift_conn.get_object(container, 'o')[1] == b'from remote2'
    listed = swift_conn.get_container(container)[1]
    assert [row['name'] for row in listed] == ['o']
    # the user's own account has no such object
    mappings([aio.profile(tester.account, container, **reseller)])
    with pytest.raises(ClientException) as err:
        swift_conn.get_object(container, 'o')
    assert err.value.http_status == 404


def test_clusters_mapping_each_other_never_ping_pong(
        aio, remote, swift_conn, tester, mappings, unique_name):
    """The remote runs the shunt too, mapping the remote container back
    to the local one: the shunt's requests carry the bypass header, so a
    miss is one remote request and a 404, a listing is spliced once."""
    container = unique_name('loop')
    swift_conn.put_container(container)
    swift_conn.put_object(container, 'local-only', b'here')
    rc = remote.container_for(tester.account, container)
    remote.create_container(rc)
    remote.conn().put_object(rc, 'remote-only', b'there')
    mappings([aio.profile(tester.account, container)])
    remote.write_mappings([{
        'account': aio_remote.REMOTE_ACCOUNT, 'container': rc,
        'protocol': 'swift', 'aws_endpoint': aio.auth_url,
        'aws_identity': 'test:tester', 'aws_secret': 'testing',
        'aws_bucket': container, 'merge_namespaces': True}])
    try:
        since = aio.proxy_log_offset()
        with pytest.raises(ClientException) as err:
            swift_conn.get_object(container, 'nowhere')
        assert err.value.http_status == 404
        names = [row['name'] for row in
                 swift_conn.get_container(container)[1]]
        assert names == ['local-only', 'remote-only']
        assert swift_conn.get_object(container, 'remote-only')[1] == \
            b'there'
        log = aio.proxy_log_since(since)
        # only the client's requests reached the local proxy
        assert log.count(f'/{container}/nowhere') == 1, log
        listings = [line for line in log.splitlines()
                    if f' GET /v1/{tester.account}/{container}' in line and
                    f'/{container}/' not in line]
        assert len(listings) == 1, log
        # while a client of the remote does see the local cluster there
        assert remote.conn().get_object(rc, 'local-only')[1] == b'here'
    finally:
        remote.write_mappings([])


def test_s3_only_helpers_refuse(aio):
    with pytest.raises(ClusterError, match='remote Swift'):
        aio.s3_client()
    with pytest.raises(ClusterError, match='remote Swift'):
        print(aio.s3_endpoint)


def test_stop_and_start_keep_data(aio, remote, unique_name):
    container = unique_name('down')
    aio.archive_object('AUTH_test', container, 'o', b'kept')
    aio.stop_s3()
    try:
        with pytest.raises((ClientException, OSError)):
            remote.conn().head_account()
    finally:
        aio.start_s3()
    assert aio.archived_head('AUTH_test', container, 'o')[
        'content-length'] == '4'


def test_kept_timestamps_are_a_gatekeeper_option(aio, remote, unique_name):
    from swift.common.utils import Timestamp
    container = unique_name('ts')
    old = Timestamp(time.time() - 86400)
    aio.archive_object('AUTH_test', container, 'default', b'x',
                       timestamp=old)
    assert aio.archived_head('AUTH_test', container, 'default')[
        'x-timestamp'] != old.normal
    remote.restart_proxy(keep_timestamps=True)
    try:
        aio.archive_object('AUTH_test', container, 'kept', b'x',
                           timestamp=old)
        assert aio.archived_head('AUTH_test', container, 'kept')[
            'x-timestamp'] == old.normal
    finally:
        remote.restart_proxy(keep_timestamps=False)


@pytest.mark.skipif(not backends.backends_for(('swift',)),
                    reason='swift is not among CLOUD_SHUNT_S3_BACKENDS')
def test_demo_with_remote_swift_checks_out():
    """``cloud-shunt demo --remote swift --check``: the daemon archives
    into the remote Swift, the listing is spliced, reads come from there
    and a whole GET restores."""
    with tempfile.TemporaryDirectory() as state:
        result = subprocess.run(
            _cloud_shunt_command() + ['demo', '--check', '--remote', 'swift',
                                      '--state-dir', state],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert 'OK' in lines and 'Stopped.' in lines
        assert any(line.startswith('Remote Swift ') for line in lines)
        assert any('remote Swift container' in line for line in lines)
        assert any(line.startswith('GET archive/report.txt: 78 bytes from '
                                   'http://') for line in lines)
        assert any('restored into Swift' in line for line in lines)
        assert not [p for p in glob.glob('/proc/[0-9]*/cmdline')
                    if state in _read(p)]
