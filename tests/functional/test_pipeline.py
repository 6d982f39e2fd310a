"""Archived objects with symlink and versioned_writes in the pipeline: what
works where (the README's "Symlinks and versioning" section)."""

import time

import pytest

from shunt.tools.aio import PIPELINE
from tests.functional.test_objects import request

SYMLINK_LEFT = PIPELINE.replace(' symlink', '').replace(
    'copy cloud_shunt', 'copy symlink cloud_shunt')


@pytest.fixture
def env(aio, tester):
    conn, token, base, account = (tester.conn, tester.token, tester.base,
                                  tester.account)
    name = f'pl-{time.time_ns()}'
    conn.put_container(name)
    aio.write_mappings([aio.profile(account, name)])
    aio.archive_object(account, name, 'target', b'archived target')
    conn.put_object(name, 'link', b'', headers={
        'X-Symlink-Target': f'{name}/target'}, content_type='text/plain')
    yield {'conn': conn, 'token': token, 'base': base, 'account': account,
           'container': name}
    aio.write_mappings([])


def get(aio, env, name, headers=None):
    return request(aio, 'GET', f'{env["base"]}/{env["container"]}/{name}',
                   headers, env['token'])


def test_symlink_right_of_shunt_does_not_resolve_archived_target(aio, env):
    status, _, body = get(aio, env, 'link')
    assert status == 404 and body != b'archived target'
    # the symlink itself is local and intact
    status, headers, _ = get(aio, env, 'link?symlink=get')
    assert status == 200 and 'x-symlink-target' in headers


def test_symlink_left_of_shunt_resolves_archived_target(aio, env):
    aio.restart_proxy(pipeline=SYMLINK_LEFT)
    try:
        status, headers, body = get(aio, env, 'link')
        assert (status, body) == (200, b'archived target')
        assert 'content-location' in headers
        # and plain archived reads are unchanged there
        assert get(aio, env, 'target')[2] == b'archived target'
    finally:
        aio.restart_proxy()


def test_versioned_container_with_archived_object(aio, env):
    conn = env['conn']
    versioned = env['container'] + '-v'
    conn.put_container(versioned + '-versions')
    conn.put_container(versioned, headers={
        'X-Versions-Location': versioned + '-versions'})
    aio.write_mappings([aio.profile(env['account'], env['container']),
                        aio.profile(env['account'], versioned)])
    aio.archive_object(env['account'], versioned, 'doc', b'archived v1')
    path = f'{env["base"]}/{versioned}/doc'
    assert request(aio, 'GET', path, token=env['token'])[2] == b'archived v1'
    # overwriting: the new local version wins; the archived copy is not
    # versioned (it never was a local version)
    conn.put_object(versioned, 'doc', b'local v2')
    assert request(aio, 'GET', path, token=env['token'])[2] == b'local v2'
    assert conn.get_container(versioned + '-versions')[1] == []
