"""Pure parts of the all-in-one's remote Swift and of the functional tests'
backend selection."""

import pytest

from shunt.tools import aio_remote
from shunt.tools.aio import REMOTE_BACKENDS, S3_BACKENDS
from tests.functional import backends


def test_container_for_names_account_and_container():
    assert aio_remote.container_for('arc', 'AUTH_test', 'photos') == \
        'arc_AUTH_test_photos'
    assert aio_remote.container_for('arc', 'AUTH_test', 'caf\u00e9') == \
        'arc_AUTH_test_caf\u00e9'


def test_container_for_long_names_is_hashed_and_distinct():
    names = {aio_remote.container_for('arc', 'AUTH_test', c * 250)
             for c in 'ab'}
    assert len(names) == 2
    for name in names:
        assert len((name + '_segments').encode()) <= 256
    # just under the limit: still readable
    fits = 'c' * (256 - len('_segments') - len('arc_AUTH_test_'))
    assert aio_remote.container_for('arc', 'AUTH_test', fits).endswith(fits)


def test_swift_headers_decode_s3_style_metadata():
    headers = aio_remote.swift_headers({
        'Color': 'Blue',
        'unicode': '=?utf-8?q?=C3=A9t=C3=A9?=',
        'x-delete-at': '1900000000',
        'x-object-manifest': 'c/p',
        'x-static-large-object': 'True',
    })
    assert headers == {'X-Object-Meta-color': 'Blue',
                       'X-Object-Meta-unicode': '\u00e9t\u00e9',
                       'X-Delete-At': '1900000000'}
    assert aio_remote.swift_headers(None) == {}


def test_backend_names():
    assert REMOTE_BACKENDS == S3_BACKENDS + ('swift',)


@pytest.mark.parametrize('env,allowed,expected', [
    ('', S3_BACKENDS, ['moto', 's3api']),
    ('', REMOTE_BACKENDS, ['moto', 's3api', 'swift']),
    ('swift', S3_BACKENDS, []),
    ('swift', REMOTE_BACKENDS, ['swift']),
    ('swift, moto', REMOTE_BACKENDS, ['moto', 'swift']),
    ('s3api', ('swift',), []),
])
def test_backends_for(monkeypatch, env, allowed, expected):
    monkeypatch.setenv(backends.ENV_VAR, env)
    assert backends.backends_for(allowed) == expected


def test_unknown_backend_is_a_usage_error(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, 'moto,minio')
    with pytest.raises(pytest.UsageError, match='minio'):
        backends.backends_for()
