"""Deletes of archived objects stick on every backend (issue 12).

The store's ``Last-Modified`` is truncated (moto) or rounded up (s3api) to
whole seconds; a DELETE issued 0-1 s after the archiving must hide the
copy all the same (GET, HEAD and the listing), and a copy archived again
afterwards must reappear. Archives recording the object's Swift timestamp
(``x-amz-meta-swift-timestamp``, as the sync daemon writes them) are
decided on Swift's clock and answer that timestamp.
"""

import email.utils
import json
import time

import pytest
from swift.common.utils import Timestamp

from shunt.core.headers import TIMESTAMP_META
from tests.functional.test_objects import quote, request

# archived to S3 and to another Swift (tests.functional.backends)
pytestmark = pytest.mark.remotes('moto', 's3api', 'swift')

DELAYS = (0, 0.3, 0.7)
NAMES_PER_DELAY = 4


@pytest.fixture
def env(aio, tester, unique_name):
    container = unique_name('hide')
    tester.conn.put_container(container)
    aio.write_mappings([aio.profile(tester.account, container)])

    def call(method, name, headers=None):
        return request(aio, method,
                       f'{tester.base}/{container}/{quote(name)}',
                       headers, tester.token)

    def listed():
        status, _, body = request(aio, 'GET', f'{tester.base}/{container}',
                                  token=tester.token,
                                  query={'format': 'json'})
        assert status == 200
        return {row['name']: row for row in json.loads(body)}

    def archive(name, body, swift_timestamp=None):
        meta = {}
        if swift_timestamp is not None:
            meta[TIMESTAMP_META] = swift_timestamp.internal
        aio.archive_object(tester.account, container, name, body,
                           metadata=meta)

    yield type('Env', (), dict(call=staticmethod(call),
                               listed=staticmethod(listed),
                               archive=staticmethod(archive)))
    aio.write_mappings([])


def _hidden(env, name):
    return env.call('GET', name)[0] == 404 and \
        env.call('HEAD', name)[0] == 404


def test_delete_right_after_archiving_sticks(env):
    """The issue's reproduction: DELETE 0, 0.3 and 0.7 s after archiving
    (four names each) answers 204 and hides the copy from GET, HEAD and
    the listing; other content archived again right after reappears."""
    names = []
    for delay in DELAYS:
        for i in range(NAMES_PER_DELAY):
            name = f'd{delay}-{i}'
            env.archive(name, b'first ' + name.encode())
            time.sleep(delay)
            assert env.call('DELETE', name)[0] == 204, name
            names.append(name)
    listed = env.listed()
    for name in names:
        assert _hidden(env, name), name
        assert name not in listed, name
    # re-archived at once with other content: visible again, everywhere
    again = names[::NAMES_PER_DELAY]
    for name in again:
        env.archive(name, b'second ' + name.encode())
    listed = env.listed()
    for name in again:
        status, _, body = env.call('GET', name)
        assert (status, body) == (200, b'second ' + name.encode()), name
        assert name in listed, name
    for name in set(names) - set(again):
        assert _hidden(env, name) and name not in listed, name


def test_swift_timestamp_answers_the_original_version(env):
    version = Timestamp(time.time() - 3600.5)
    env.archive('dated', b'dated body', version)
    status, headers, body = env.call('GET', 'dated')
    assert (status, body) == (200, b'dated body')
    assert headers['x-timestamp'] == version.normal
    assert headers['last-modified'] == email.utils.formatdate(
        version.ceil(), usegmt=True)
    assert not any('swift-timestamp' in name for name in headers)
    status, head, _ = env.call('HEAD', 'dated')
    assert head['x-timestamp'] == version.normal
    # conditional requests use that Last-Modified
    since = email.utils.formatdate(version.ceil() + 60, usegmt=True)
    assert env.call('GET', 'dated', {'If-Modified-Since': since})[0] == 304


def test_swift_timestamp_decides_on_swifts_clock(env):
    version = Timestamp(time.time() - 1)
    env.archive('daemon', b'content', version)
    assert env.call('DELETE', 'daemon')[0] == 204
    deleted = Timestamp.now()
    assert _hidden(env, 'daemon')
    assert 'daemon' not in env.listed()
    # other content, but a version older than the delete: still hidden
    env.archive('daemon', b'other content', Timestamp(version, delta=5))
    assert _hidden(env, 'daemon')
    assert 'daemon' not in env.listed()
    # the same content as a version newer than the delete: visible
    newer = Timestamp(deleted, delta=1000)
    env.archive('daemon', b'content', newer)
    status, headers, body = env.call('GET', 'daemon')
    assert (status, body) == (200, b'content')
    assert headers['x-timestamp'] == newer.normal
    assert 'daemon' in env.listed()
