"""``cloud-shunt check-config`` and ``locate`` for ``protocol: swift``
profiles, run as commands against the all-in-one's second Swift cluster
(``aio[swift]``) and its proxy."""

import json
import urllib.parse

import pytest

from tests.functional.test_objects import quote, request
from tests.functional.test_tools import cloud_shunt, free_port, results

pytestmark = pytest.mark.remotes('swift')


def test_check_config_and_locate_on_the_remote_swift(aio, tmp_path,
                                                     mappings, swift_conn,
                                                     unique_name):
    remote = aio.remote
    good, new = unique_name('good'), unique_name('new')
    swift_conn.put_container(good)
    aio.archive_object('AUTH_test', good, 'obj', b'data')
    key = remote.profile('AUTH_test', good)['aws_secret']
    profiles = [
        aio.profile('AUTH_test', good),
        aio.profile('AUTH_test', new),
        aio.profile('AUTH_test', '/*', aws_bucket=f'{aio.bucket}_x_'),
        aio.profile('AUTH_test2', 'badkey', aws_secret='Not-The-Key-4'),
        aio.profile('AUTH_test2', 'down', aws_endpoint=(
            f'http://127.0.0.1:{free_port()}/auth/v1.0')),
    ]
    path = tmp_path / 'm.json'
    path.write_text(json.dumps({'containers': profiles}))
    status, out, err = cloud_shunt('check-config', '--timeout', '5',
                                   str(path))
    assert status == 1, out + err
    got = results(out)
    assert got[f'AUTH_test/{good}'] == 'OK'
    assert got[f'AUTH_test/{new}'] == ('OK (remote container not created '
                                       'yet: the sync daemon creates it)')
    assert got['AUTH_test/*'] == ('OK (auth and account only: "/*" '
                                  'profile, one remote container per '
                                  'container)')
    assert got['AUTH_test2/badkey'] == \
        'FAIL the credentials were refused (401)'
    assert got['AUTH_test2/down'] == \
        'FAIL cannot connect to the auth endpoint'
    assert '2 of 5 profile(s) failed' in out
    assert remote.auth_url in out
    for text in (out, err):
        assert key not in text and 'Not-The-Key-4' not in text
        assert '/v1/AUTH_' not in text and 'AUTH_tk' not in text
    # probing created nothing remotely
    assert new not in [c['name'] for c in
                       remote.conn().get_account()[1]]

    # locate: where the object is, and the proxy serves it from there
    mappings([aio.profile('AUTH_test', good)])
    status, out, err = cloud_shunt('locate', '--conf', aio.mapping_file,
                                   '--json', 'AUTH_test', good, 'obj')
    assert status == 0, err
    where = json.loads(out)
    assert where['protocol'] == 'swift' and where['key'] == 'obj'
    assert where['remote_container'] == remote.container_for('AUTH_test',
                                                             good)
    assert where['listing_location'] == \
        f"{where['endpoint']};{where['remote_container']}"
    assert key not in out
    _, body = remote.conn().get_object(where['remote_container'],
                                       where['key'])
    assert body == b'data'
    url, token = aio.token()
    path = f"{urllib.parse.urlsplit(url).path}/{good}/{quote('obj')}"
    status_, headers, body = request(aio, 'GET', path, token=token)
    assert (status_, body) == (200, b'data')
    assert headers['content-location'] == where['url']
