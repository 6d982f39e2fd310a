"""Negative cache, fail-fast and archive storage classes on the all-in-one
cluster (issue 6)."""

import http.client
import os
import socket
import socketserver
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler  # see test_object_failures

import pytest

from tests.functional.test_object_failures import FakeS3
from tests.functional.test_objects import request


@pytest.fixture
def env(aio, tester):
    conn, token, base, account = (tester.conn, tester.token, tester.base,
                                  tester.account)
    name = f'prot-{time.time_ns()}'
    conn.put_container(name)
    aio.write_mappings([aio.profile(account, name)])

    def call(method, obj, headers=None):
        return request(aio, method, f'{base}/{name}/{obj}', headers, token)

    yield {'conn': conn, 'account': account, 'container': name,
           'call': call}
    aio.write_mappings([])
    aio.restart_proxy()


def test_negative_cache(aio, env):
    aio.restart_proxy(filter_conf={'negative_cache_ttl': '2'})
    assert env['call']('GET', 'late')[0] == 404
    # archived behind the proxy's back: the cached miss holds for the TTL
    aio.archive_object(env['account'], env['container'], 'late', b'late')
    assert env['call']('GET', 'late')[0] == 404
    time.sleep(2.5)
    assert env['call']('GET', 'late')[2] == b'late'
    # a PUT through the proxy forgets the miss at once
    assert env['call']('GET', 'put-here')[0] == 404
    env['conn'].put_object(env['container'], 'put-here', b'local')
    env['call']('DELETE', 'put-here')
    aio.archive_object(env['account'], env['container'], 'put-here',
                       b'archived later')
    time.sleep(1.1)  # archived after the delete's second
    assert env['call']('GET', 'put-here')[2] == b'archived later'


def test_fail_fast_and_recovery(aio, env):
    aio.restart_proxy(filter_conf={'fail_fast_threshold': '2',
                                   'fail_fast_period': '2',
                                   'read_timeout': '1', 'conn_timeout': '1',
                                   's3_max_attempts': '1'})
    fake = FakeS3(200, '', hang=True)
    try:
        aio.write_mappings([aio.profile(env['account'], env['container'],
                                        aws_endpoint=fake.endpoint)])
        for _ in range(2):
            assert env['call']('GET', 'o')[0] == 503
        seen = fake.requests
        start = time.monotonic()
        status, headers, body = env['call']('GET', 'o')
        assert status == 503 and time.monotonic() - start < 0.5
        assert b'recent calls' in body and 'retry-after' in headers
        assert fake.requests == seen
    finally:
        fake.shutdown()
    # the fault ends: the shunt recovers on its own
    aio.write_mappings([aio.profile(env['account'], env['container'])])
    aio.archive_object(env['account'], env['container'], 'o', b'back')
    time.sleep(2.1)
    assert env['call']('GET', 'o')[2] == b'back'


@pytest.mark.s3_backends(
    'moto', reason='no storage classes (InvalidStorageClass) and no '
    'RestoreObject (NotImplemented)')
def test_glacier_object_and_automatic_restore(aio, env):
    s3 = aio.s3_client()
    key = aio.archive_object(env['account'], env['container'], 'cold', b'')
    s3.put_object(Bucket=aio.bucket, Key=key, Body=b'cold data',
                  StorageClass='GLACIER')
    status, headers, _ = env['call']('HEAD', 'cold')
    assert status == 200
    assert headers['x-cloud-shunt-archive-state'] == 'archived'
    status, headers, body = env['call']('GET', 'cold')
    assert status == 503 and 'retry-after' in headers
    assert b'archive storage class' in body and b'<Error>' not in body
    # with automatic restores: the first GET starts one S3 restore
    aio.write_mappings([aio.profile(env['account'], env['container'],
                                    archive_restore_days=1,
                                    archive_restore_tier='Bulk')])
    status, headers, body = env['call']('GET', 'cold')
    head = s3.head_object(Bucket=aio.bucket, Key=key)
    assert 'Restore' in head
    if status == 503:
        assert b'being restored' in body
        status, _, body = env['call']('GET', 'cold')
    state = env['call']('HEAD', 'cold')[1]['x-cloud-shunt-archive-state']
    assert state in ('restoring', 'restored')
    # moto completes restores at once: the next GET streams
    assert (status, body) == (200, b'cold data')


class _HalfBody(BaseHTTPRequestHandler):
    """Answers every GET with a 200 announcing 1 MiB, sends half, then
    closes the connection."""

    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', str(2 ** 20))
        self.send_header('ETag', '"%s"' % ('0' * 32))
        self.send_header('Last-Modified', 'Thu, 01 Jan 2015 00:00:00 GMT')
        self.end_headers()
        self.wfile.write(b'x' * 2 ** 19)
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.mark.parametrize('restore', [False, True])
def test_s3_closing_mid_body(aio, env, restore):
    server = socketserver.ThreadingTCPServer(('127.0.0.1', 0), _HalfBody)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        aio.write_mappings([aio.profile(
            env['account'], env['container'], restore_object=restore,
            aws_endpoint='http://127.0.0.1:%d' % server.server_address[1])])
        start = time.monotonic()
        status, received, error = _get_partial(aio, env, 'half')
        assert status == 200
        # the client is told: a short body and a closed connection
        assert error and received < 2 ** 20
        assert time.monotonic() - start < 15
    finally:
        server.shutdown()
        server.server_close()
    aio.write_mappings([aio.profile(env['account'], env['container'])])
    # nothing partial was written into Swift, and the proxy is fine
    status, _, _ = env['call']('HEAD', 'half',
                               {'X-Cloud-Sync-Shunt-Bypass': 'true'})
    assert status == 404
    assert env['conn'].get_container(env['container'])[1] == []
    status, _, _ = request(aio, 'GET', '/healthcheck')
    assert status == 200


def _get_partial(aio, env, name):
    url = urllib.parse.urlsplit(aio.proxy_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=15)
    path = f'/v1/{env["account"]}/{env["container"]}/{name}'
    _, token = aio.token('test:tester', 'testing')
    conn.request('GET', path, headers={'X-Auth-Token': token})
    resp = conn.getresponse()
    received, error = 0, None
    try:
        while True:
            chunk = resp.read(65536)
            if not chunk:
                break
            received += len(chunk)
    except (http.client.IncompleteRead, ConnectionError) as err:
        error = err
    if error is None and received < int(resp.getheader('Content-Length')):
        error = 'short body'
    conn.close()
    return resp.status, received, error


def test_memcached_stopped_and_back(aio, env):
    aio.archive_object(env['account'], env['container'], 'mc', b'mc body')
    aio.stop_memcached()
    try:
        start = time.monotonic()
        status, _, _ = env['call']('GET', 'mc')
        # tempauth keeps tokens in memcache: Swift's own answer is 401
        assert status == 401 and time.monotonic() - start < 10
    finally:
        aio.start_memcached()
    _, token = aio.token('test:tester', 'testing')
    status, _, body = request(
        aio, 'GET', f'/v1/{env["account"]}/{env["container"]}/mc',
        token=token)
    assert (status, body) == (200, b'mc body')


def _proxy_worker_fds(aio):
    from tests.bench.common import children
    pid = aio.procs['proxy'].pid
    workers = children(pid) or [pid]
    return sum(len(os.listdir(f'/proc/{w}/fd')) for w in workers)


def test_client_disconnects_release_remote_connections(aio, env):
    aio.archive_object(env['account'], env['container'], 'big',
                       b'z' * (16 * 2 ** 20))
    _, token = aio.token('test:tester', 'testing')
    url = urllib.parse.urlsplit(aio.proxy_url)
    path = f'/v1/{env["account"]}/{env["container"]}/big'

    def read_a_little_and_go():
        conn = http.client.HTTPConnection(url.hostname, url.port,
                                          timeout=10)
        conn.request('GET', path, headers={'X-Auth-Token': token})
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read(65536)
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()

    read_a_little_and_go()
    time.sleep(1)
    baseline = _proxy_worker_fds(aio)
    for _ in range(10):
        read_a_little_and_go()
    deadline = time.monotonic() + 10
    while _proxy_worker_fds(aio) > baseline + 2 and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    assert _proxy_worker_fds(aio) <= baseline + 2
    # and the object is still served whole
    status, _, body = env['call']('GET', 'big')
    assert status == 200 and len(body) == 16 * 2 ** 20
