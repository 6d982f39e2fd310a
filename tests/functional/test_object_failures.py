"""Remote failures, configuration errors and reloads on the all-in-one
cluster: never a false 404, never a 500, never a secret in the log."""

import json
import socketserver
import threading
import time
import urllib.parse

# a from-import, not "http.server.X": eventlet (imported by Swift) builds a
# green copy of http.server and leaves it as the attribute "server" of the
# "http" package; only sys.modules keeps the real one, with real threads
# (the green copy deadlocks in shutdown() once unit tests ran in the same
# process)
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.functional.backends import S3_ONLY
from tests.functional.test_objects import request

# archived to S3 and to another Swift (tests.functional.backends)
pytestmark = pytest.mark.remotes('moto', 's3api', 'swift')

S3_ERROR = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}'
            '</Code><Message>{message}</Message></Error>')


class FakeS3(socketserver.ThreadingMixIn, HTTPServer):
    """A real HTTP endpoint that answers every S3 call the same bad way."""
    daemon_threads = True

    def __init__(self, status, code, hang=False):
        self.status, self.code, self.hang = status, code, hang
        self.requests = 0
        super().__init__(('127.0.0.1', 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def endpoint(self):
        return 'http://127.0.0.1:%d' % self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    def _answer(self):
        self.server.requests += 1
        if self.server.hang:
            time.sleep(30)
            return
        body = S3_ERROR.format(code=self.server.code,
                               message='fake failure').encode()
        self.send_response(self.server.status)
        self.send_header('Content-Type', 'application/xml')
        self.send_header('Content-Length', str(len(body)))
        self.send_header('x-amz-request-id', 'FAKE')
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    do_GET = do_HEAD = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def env(aio):
    conn = aio.swift_conn()
    url, token = aio.token('test:tester', 'testing')
    account = urllib.parse.urlsplit(url).path.split('/')[2]
    base = urllib.parse.urlsplit(url).path
    name = f'fail-{time.time_ns()}'
    conn.put_container(name)
    conn.put_container(name + '-plain')
    conn.put_object(name + '-plain', 'local', b'local data')
    yield {'conn': conn, 'token': token, 'account': account, 'base': base,
           'container': name}
    aio.write_mappings([])




@pytest.mark.parametrize('status,code,words', [
    (403, 'SignatureDoesNotMatch', b'credentials'),
    (403, 'InvalidAccessKeyId', b'credentials'),
    (500, 'InternalError', b'failed'),
    (503, 'SlowDown', b'throttling'),
    (403, 'InvalidObjectState', b'archive storage class'),
])
@S3_ONLY
def test_remote_refusals_are_503(aio, env, status, code, words):
    fake = FakeS3(status, code)
    try:
        aio.write_mappings([aio.profile(env['account'], env['container'],
                                        aws_endpoint=fake.endpoint)])
        since = aio.proxy_log_offset()
        path = f'{env["base"]}/{env["container"]}/obj'
        for method in ('GET', 'HEAD'):
            got, headers, body = request(aio, method, path,
                                         token=env['token'])
            assert got == 503, (method, got, body)
            assert b'<Error>' not in body and b'fake failure' not in body
            assert not [h for h in headers if h.startswith('x-amz')]
        got, headers, body = request(aio, 'GET', path, token=env['token'])
        assert words in body
        if code in ('SlowDown', 'InvalidObjectState'):
            assert headers['retry-after'].isdigit()
        log = aio.proxy_log_since(since)
        assert 'Remote GET failed' in log
        assert aio.remote_secret not in log
    finally:
        fake.shutdown()


@pytest.mark.s3_backends('s3api', 'swift', reason='moto takes any key')
def test_wrong_key_is_503(aio, env):
    """The real store refuses a wrong secret: 503, never a false 404, the
    secret nowhere."""
    aio.write_mappings([aio.profile(env['account'], env['container'])])
    aio.archive_object(env['account'], env['container'], 'obj', b'data')
    aio.write_mappings([aio.profile(env['account'], env['container'],
                                    aws_secret='Wrong-Key-7Qz')])
    since = aio.proxy_log_offset()
    base = f'{env["base"]}/{env["container"]}'
    for method in ('GET', 'HEAD'):
        status, _, body = request(aio, method, f'{base}/obj',
                                  token=env['token'])
        assert status == 503, (method, status, body)
    assert b'credentials' in request(aio, 'GET', f'{base}/obj',
                                     token=env['token'])[2]
    assert request(aio, 'GET', base, token=env['token'],
                   query={'format': 'json'})[0] == 503
    log = aio.proxy_log_since(since)
    assert 'Wrong-Key-7Qz' not in log and aio.remote_secret not in log


def test_s3_stopped_is_fast_503_and_unmapped_unaffected(aio, env):
    aio.write_mappings([aio.profile(env['account'], env['container'])])
    aio.archive_object(env['account'], env['container'], 'obj', b'data')
    path = f'{env["base"]}/{env["container"]}/obj'
    assert request(aio, 'GET', path, token=env['token'])[2] == b'data'
    aio.stop_s3()
    try:
        start = time.monotonic()
        status, _, body = request(aio, 'GET', path, token=env['token'])
        elapsed = time.monotonic() - start
        assert status == 503 and b'cannot be reached' in body
        assert elapsed < 10
        status, _, body = request(
            aio, 'GET', f'{env["base"]}/{env["container"]}-plain/local',
            token=env['token'])
        assert (status, body) == (200, b'local data')
    finally:
        aio.start_s3()


def test_hanging_remote_is_bounded_503(aio, env):
    fake = FakeS3(200, '', hang=True)
    try:
        aio.restart_proxy(filter_conf={'read_timeout': '1',
                                       'conn_timeout': '1',
                                       's3_max_attempts': '1'})
        aio.write_mappings([aio.profile(env['account'], env['container'],
                                        aws_endpoint=fake.endpoint)])
        start = time.monotonic()
        status, _, body = request(
            aio, 'GET', f'{env["base"]}/{env["container"]}/obj',
            token=env['token'])
        assert status == 503 and b'timed out' in body
        assert time.monotonic() - start < 8
    finally:
        fake.shutdown()
        aio.restart_proxy()


def test_bad_mapping_refuses_to_start(aio, env):
    good = [aio.profile(env['account'], env['container'])]
    bad = good + [dict(good[0], container='other', restore_object='maybe')]
    aio.write_mappings(bad)
    try:
        with pytest.raises(Exception) as exc:
            aio.restart_proxy()
        msg = str(exc.value)
        assert aio.mapping_file in msg
        assert 'containers[1].restore_object' in msg
        assert aio.remote_secret not in msg
    finally:
        aio.write_mappings(good)
        aio.restart_proxy()


def test_broken_reload_keeps_mappings(aio, env):
    aio.write_mappings([aio.profile(env['account'], env['container'])])
    aio.archive_object(env['account'], env['container'], 'kept', b'kept')
    path = f'{env["base"]}/{env["container"]}/kept'
    assert request(aio, 'GET', path, token=env['token'])[2] == b'kept'
    since = aio.proxy_log_offset()
    with open(aio.mapping_file, 'w') as fp:
        fp.write('{"containers": [')
    time.sleep(0.05)
    status, _, body = request(aio, 'GET', path, token=env['token'])
    assert (status, body) == (200, b'kept')
    log = aio.proxy_log_since(since)
    assert 'Keeping the previous 1 mapping' in log
    assert aio.mapping_file in log and 'not valid JSON' in log
    # a valid new file takes effect
    aio.write_mappings([])
    assert request(aio, 'GET', path, token=env['token'])[0] == 404


def test_info_lists_cloud_shunt(aio):
    status, _, body = request(aio, 'GET', '/info')
    info = json.loads(body)['cloud_shunt']
    assert info['protocols'] == ['s3', 'swift']
