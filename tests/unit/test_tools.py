"""Operator tools (``cloud-shunt check-config`` and ``locate``), with
moto's in-process S3 and real unreachable or silent endpoints."""

import contextlib
import io
import json
import socket

import pytest
from moto.core import set_initial_no_auth_action_count
from swift.common.swob import Request, Response, str_to_wsgi, wsgi_quote

from shunt.core.config import load_mappings
from shunt.core.layout import key_prefix, manifest_key, object_key
from shunt.proxy.middleware import CloudShuntMiddleware
from shunt.tools import checks as tools
from shunt.tools import cli
from tests.unit import fake_swift
from tests.unit.helpers import BUCKET, FakeLogger, FakeSwift, write_mapping

SECRET = 'Sup3r-Secret-Key/+abc'
TOKEN = 'Session-Token-Value-42'


def profile(container='c', **kw):
    base = {'account': 'AUTH_a', 'container': container,
            'aws_bucket': BUCKET, 'aws_identity': 'AKIDEXAMPLE',
            'aws_secret': SECRET, 'merge_namespaces': True}
    base.update(kw)
    return base


@pytest.fixture
def refused_port():
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port():
    """A port that accepts connections (kernel backlog) and never
    answers."""
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    return status, out.getvalue(), err.getvalue()


def rows(output):
    """``{profile index: result}`` from the printed table."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('#'))
    result_col = lines[start].index('result')
    out = {}
    for line in lines[start + 2:]:
        if not line.strip():
            break
        out[int(line.split()[0])] = line[result_col:]
    return out


def assert_no_secret(*texts):
    for text in texts:
        for secret in (SECRET, TOKEN, 'Pw-In-Url-9z'):
            assert secret not in text
            # not even a part of it
            assert secret[:6] not in text and secret[-6:] not in text


# -- check-config -------------------------------------------------------

def test_all_ok(tmp_path, s3):
    s3.put_object(Bucket=BUCKET, Key=object_key('AUTH_a', 'c', 'o'),
                  Body=b'x')
    s3.put_object(Bucket=BUCKET, Key='flat/o', Body=b'x')
    path = write_mapping(tmp_path / 'm.json', [
        profile(aws_session_token=TOKEN),
        profile('d', custom_prefix='/flat/'),
        profile('/*'),
        profile('old', merge_namespaces=False)])
    status, out, err = run(['check-config', path])
    assert status == 0, out + err
    assert out.startswith(f'{path}: valid; 3 shunted profile(s), 1 not '
                          f'shunted\n')
    assert 'containers[3] (AUTH_a/old): not shunted' in out
    got = rows(out)
    assert got[0] == 'OK' and got[1] == 'OK'
    assert got[2].startswith('OK (bucket only')
    assert key_prefix('AUTH_a', 'c') in out and 'flat/' in out
    assert 'AUTH_a/*' in out and 'AWS S3' in out
    assert out.rstrip().endswith('all 3 profile(s) OK')
    assert err == ''
    assert_no_secret(out, err)


def test_failures_are_rows_and_exit_1(tmp_path, s3, refused_port):
    s3.put_object(Bucket=BUCKET, Key=object_key('AUTH_a', 'c', 'o'),
                  Body=b'x')
    path = write_mapping(tmp_path / 'm.json', [
        profile(),
        profile('empty'),
        profile('nobucket', aws_bucket='no-such-bucket'),
        profile('down', aws_endpoint=f'http://127.0.0.1:{refused_port}'),
        profile('creds-in-url', aws_endpoint=f'http://user:Pw-In-Url-9z@'
                                         f'127.0.0.1:{refused_port}/'),
    ])
    status, out, err = run(['check-config', '--timeout', '2', path])
    assert status == 1
    got = rows(out)
    assert got[0] == 'OK'
    assert got[1] == 'FAIL nothing archived under the prefix'
    assert got[2] == 'FAIL the bucket does not exist (NoSuchBucket)'
    assert got[3] == got[4] == 'FAIL cannot connect to the endpoint'
    assert f'http://127.0.0.1:{refused_port}' in out
    assert '4 of 5 profile(s) failed: containers[1], containers[2], ' \
        'containers[3], containers[4]' in out
    assert_no_secret(out, err)


def test_allow_empty(tmp_path, s3):
    path = write_mapping(tmp_path / 'm.json', [profile('empty')])
    status, out, _ = run(['check-config', '--allow-empty', path])
    assert status == 0
    assert rows(out)[0] == 'OK (nothing archived under the prefix yet)'


def test_all_containers_with_custom_prefix_probes_the_prefix(tmp_path, s3):
    path = write_mapping(tmp_path / 'm.json', [
        profile('/*', custom_prefix='shared')])
    status, out, _ = run(['check-config', path])
    assert status == 1
    assert rows(out)[0] == 'FAIL nothing archived under the prefix'
    s3.put_object(Bucket=BUCKET, Key='shared/x', Body=b'x')
    status, out, _ = run(['check-config', path])
    assert status == 0 and rows(out)[0] == 'OK'


def test_refused_credentials(tmp_path, s3):
    s3.put_object(Bucket=BUCKET, Key=object_key('AUTH_a', 'c', 'o'),
                  Body=b'x')
    path = write_mapping(tmp_path / 'm.json', [profile()])

    @set_initial_no_auth_action_count(0)
    def check():
        return run(['check-config', path])
    status, out, err = check()
    assert status == 1
    assert rows(out)[0] == \
        'FAIL the credentials were refused (InvalidAccessKeyId)'
    assert_no_secret(out, err)


def test_silent_endpoint_times_out(tmp_path, silent_port):
    path = write_mapping(tmp_path / 'm.json', [
        profile(aws_endpoint=f'http://127.0.0.1:{silent_port}')])
    status, out, _ = run(['check-config', '--timeout', '0.3', path])
    assert status == 1
    assert rows(out)[0] == 'FAIL no answer within 0.3s'


def test_no_probe_contacts_nothing(tmp_path, refused_port):
    path = write_mapping(tmp_path / 'm.json', [
        profile(aws_endpoint=f'http://127.0.0.1:{refused_port}')])

    class NoRemote:
        def __getattr__(self, name):
            raise AssertionError('contacted a bucket')
    out, err = io.StringIO(), io.StringIO()
    status = tools.check_config(path, out, err, do_probe=False,
                                remote=NoRemote())
    assert status == 0
    assert rows(out.getvalue())[0] == 'not probed'


@pytest.mark.parametrize('content,words', [
    (None, 'cannot read the mapping file'),
    (b'{"containers": [', 'not valid JSON'),
    (json.dumps({'containers': [profile(restore_object='maybe')]}),
     'containers[0].restore_object: expected true or false'),
])
def test_invalid_file_is_the_middleware_error(tmp_path, content, words):
    path = str(tmp_path / 'm.json')
    if content is not None:
        with open(path, 'wb') as fp:
            fp.write(content if isinstance(content, bytes)
                     else content.encode())
    status, out, err = run(['check-config', path])
    assert status == 1 and out == ''
    assert err.startswith(f'cloud-shunt: {path}: ') and words in err
    assert_no_secret(out, err)


def test_empty_file_is_valid(tmp_path):
    path = write_mapping(tmp_path / 'm.json', [])
    status, out, _ = run(['check-config', path])
    assert status == 0
    assert '0 shunted profile(s)' in out


def test_secret_scrubbed_even_where_a_name_holds_it(tmp_path):
    path = write_mapping(tmp_path / 'm.json', [
        profile(aws_bucket='bucket-with-sekrit-inside',
                aws_secret='sekrit-inside')])
    status, out, err = run(['check-config', '--no-probe', path])
    assert status == 0
    assert 'sekrit-inside' not in out
    assert 'bucket-with-' + tools.REDACTED in out


def test_unprintable_names_do_not_crash(tmp_path):
    path = str(tmp_path / 'm.json')
    with open(path, 'w') as fp:
        fp.write('{"containers": [{"account": "AUTH_\\ud800", '
                 '"container": "c\\u0000"}]}')
    out = io.TextIOWrapper(io.BytesIO(), encoding='ascii')
    err = io.StringIO()
    assert tools.check_config(path, out, err, do_probe=False) == 0
    out.seek(0)
    assert 'AUTH_\\ud800' in out.read()


def test_probe_builds_clients_like_the_middleware(tmp_path, s3):
    path = write_mapping(tmp_path / 'm.json', [
        profile(), profile('d', signature_version='s3',
                           addressing_style='virtual',
                           aws_region='eu-west-1')])
    remote = tools.make_remote(timeout=1.5, region='us-west-2')
    mappings = load_mappings(path)
    results = tools.probe_all(remote, mappings, allow_empty=True)
    assert all(r.ok for r in results.values())
    s3, swift = remote.s3, remote.swift
    assert s3.connect_timeout == s3.read_timeout == 1.5
    assert swift.connect_timeout == swift.read_timeout == 1.5
    assert s3.max_attempts == 1 and s3.region == 'us-west-2'
    configs = {p.container: remote.client(p).meta.config for p in mappings}
    assert configs['c'].region_name == 'us-west-2'
    assert configs['d'].region_name == 'eu-west-1'
    assert configs['d'].signature_version == 's3'


# -- locate -------------------------------------------------------------

@pytest.fixture
def conf(tmp_path):
    return write_mapping(tmp_path / 'm.json', [
        profile('c', aws_endpoint='https://user:Pw-In-Url-9z@s3.example.com',
                aws_session_token=TOKEN),
        profile('flat', custom_prefix='/pre/'),
        profile('/*', aws_bucket='other-bucket'),
        profile('old', account='AUTH_b', merge_namespaces=False),
    ])


def test_locate_exact_container(conf):
    name = 'dir/caf\u00e9 ?#%.txt'
    status, out, err = run(['locate', '--conf', conf, 'AUTH_a', 'c', name])
    assert status == 0, err
    lines = dict(line.split(None, 1) for line in out.splitlines())
    key = object_key('AUTH_a', 'c', name)
    assert lines['object'] == f'AUTH_a/c/{name}'
    assert lines['profile'] == 'containers[0] (AUTH_a/c)'
    assert lines['endpoint'] == 'https://s3.example.com'
    assert lines['bucket'] == BUCKET
    assert lines['key'] == key
    assert lines['manifest'].split()[0] == manifest_key('AUTH_a', 'c', name)
    assert lines['url'].startswith('https://s3.example.com/archive-bucket/')
    assert_no_secret(out, err)


def test_locate_custom_prefix_and_all_containers(conf):
    _, out, _ = run(['locate', '--conf', conf, '--json', 'AUTH_a', 'flat',
                     'x'])
    got = json.loads(out)
    assert got['key'] == 'pre/x' and got['manifest_key'] == \
        manifest_key('AUTH_a', 'flat', 'x', 'pre')
    assert got['endpoint'] == 'AWS S3' and got['mapped_by'] == 'AUTH_a/flat'
    _, out, _ = run(['locate', '--conf', conf, '--json', 'AUTH_a', 'zz',
                     'x'])
    got = json.loads(out)
    assert got['mapped_by'] == 'AUTH_a/*' and got['profile_index'] == 2
    assert got['bucket'] == 'other-bucket'
    assert got['key'] == object_key('AUTH_a', 'zz', 'x')


def test_locate_not_mapped(conf):
    status, out, err = run(['locate', '--conf', conf, 'AUTH_z', 'c', 'x'])
    assert status == 1 and out == ''
    assert 'AUTH_z/c is not mapped in' in err and 'AUTH_z/*' in err
    status, out, err = run(['locate', '--conf', conf, 'AUTH_b', 'old', 'x'])
    assert status == 1
    assert 'containers[3] maps AUTH_b/old but is not shunted' in err


def test_locate_invalid_file(tmp_path):
    path = str(tmp_path / 'missing.json')
    status, out, err = run(['locate', '--conf', path, 'AUTH_a', 'c', 'x'])
    assert status == 1
    assert err.startswith(f'cloud-shunt: {path}: cannot read')


def test_locate_without_conf():
    status, out, _ = run(['locate', '--no-conf', 'AUTH_a', 'c', 'x'])
    assert status == 0
    assert f"key       {object_key('AUTH_a', 'c', 'x')}\n" in out
    status, out, _ = run(['locate', '--custom-prefix', '', '--json',
                          'AUTH_a', 'c', 'x'])
    got = json.loads(out)
    assert got['key'] == 'x' and got['bucket'] is None


def test_locate_quoted(conf):
    _, out, _ = run(['locate', '--conf', conf, '--quoted', '--json',
                     'AUTH_a', 'c', 'caf%C3%A9%20%3F'])
    assert json.loads(out)['object'] == 'caf\u00e9 ?'


@pytest.mark.parametrize('args', [
    ['AUTH_a', 'c', ''], ['AUTH_a', 'c/d', 'x'], ['', 'c', 'x'],
    ['--quoted', 'AUTH_a', 'c', 'bad%FF'],
])
def test_locate_bad_names(conf, args):
    status, out, err = run(['locate', '--conf', conf] + args)
    assert status == 2 and out == ''
    assert err.startswith('cloud-shunt: ')


def test_located_key_is_where_the_middleware_reads(tmp_path, s3):
    path = write_mapping(tmp_path / 'm.json', [profile('c')])
    name = 'a/b \u2603 %41'
    _, out, _ = run(['locate', '--conf', path, '--json', 'AUTH_a', 'c',
                     name])
    s3.put_object(Bucket=BUCKET, Key=json.loads(out)['key'], Body=b'found')
    app = CloudShuntMiddleware(FakeSwift(), {'conf_file': path},
                               logger=FakeLogger())
    resp = Request.blank(wsgi_quote(str_to_wsgi(f'/v1/AUTH_a/c/{name}'))) \
        .get_response(app)
    assert resp.status_int == 200 and resp.body == b'found'


# -- swift profiles (a fake remote Swift on loopback) ---------------------

SWIFT_KEY = fake_swift.USERS['remote:tester'][0]


class AccountSwift(fake_swift.FakeSwift):
    """The fake remote Swift, also answering an account HEAD."""

    def storage(self, req):
        parts = req.path.strip('/').split('/')
        if req.method == 'HEAD' and len(parts) == 2:
            if parts[1] not in self.tokens.get(
                    req.headers.get('X-Auth-Token'), ()):
                return Response(status=401)
            return Response(status=204)
        return super().storage(req)


@pytest.fixture(scope='module')
def swift_server():
    fake = AccountSwift()
    fake.base_url = fake_swift.serve(fake)
    return fake


@pytest.fixture
def remote_swift(swift_server):
    swift_server.containers.clear()
    swift_server.requests.clear()
    swift_server.storage_host = None
    swift_server.expire_tokens()
    swift_server.put('AUTH_remote', 'rc', 'o', b'archived')
    swift_server.containers[('AUTH_remote', 'empty-rc')] = {
        'headers': {}, 'objects': {}}
    return swift_server


def swift_profile(fake, container='c', **kw):
    base = {'account': 'AUTH_a', 'container': container,
            'protocol': 'swift', 'aws_bucket': 'rc',
            'aws_endpoint': fake.base_url + '/auth/v1.0',
            'aws_identity': 'remote:tester', 'aws_secret': SWIFT_KEY,
            'merge_namespaces': True}
    base.update(kw)
    return base


def assert_no_swift_secret(fake, *texts):
    for text in texts:
        assert SWIFT_KEY not in text
        assert '/v1/AUTH_' not in text  # no storage URL
        for token in fake.tokens:
            assert token not in text


def test_swift_profiles_probed_with_their_auth(tmp_path, s3, remote_swift):
    s3.put_object(Bucket=BUCKET, Key=object_key('AUTH_a', 'c', 'o'),
                  Body=b'x')
    path = write_mapping(tmp_path / 'm.json', [
        profile(),
        swift_profile(remote_swift, 'sw'),
        swift_profile(remote_swift, 'new', aws_bucket='not-yet'),
        swift_profile(remote_swift, '/*', aws_bucket='arch-'),
        swift_profile(remote_swift, '/*', account='AUTH_b',
                      aws_bucket='x-', remote_account='AUTH_other'),
    ])
    status, out, err = run(['check-config', '--timeout', '2', path])
    assert status == 0, out + err
    got = rows(out)
    assert got[0] == 'OK' and got[1] == 'OK'
    assert got[2] == ('OK (remote container not created yet: the sync '
                      'daemon creates it)')
    assert got[3] == got[4] == (
        'OK (auth and account only: "/*" profile, one remote container '
        'per container)')
    assert 'arch-<container>' in out and '(remote container)' in out
    assert f'{remote_swift.base_url}/auth/v1.0' in out
    # real auth, then one listing of one name / one account HEAD; every
    # request bypasses a remote shunt
    storage = [r for r in remote_swift.requests
               if r.path.startswith('/v1/')]
    assert sorted((r.method, r.path) for r in storage) == [
        ('GET', '/v1/AUTH_remote/not-yet'), ('GET', '/v1/AUTH_remote/rc'),
        ('HEAD', '/v1/AUTH_other/'), ('HEAD', '/v1/AUTH_remote/')]
    assert all('limit=1' in r.query for r in storage if r.method == 'GET')
    assert all(r.headers.get('X-Cloud-Sync-Shunt-Bypass') == 'true'
               for r in storage)
    assert_no_secret(out, err)
    assert_no_swift_secret(remote_swift, out, err)


def test_swift_empty_remote_container(tmp_path, remote_swift):
    path = write_mapping(tmp_path / 'm.json', [
        swift_profile(remote_swift, aws_bucket='empty-rc')])
    status, out, _ = run(['check-config', path])
    assert status == 1
    assert rows(out)[0] == 'FAIL nothing archived in the remote container'
    status, out, _ = run(['check-config', '--allow-empty', path])
    assert status == 0
    assert rows(out)[0] == \
        'OK (nothing archived in the remote container yet)'


def test_swift_failures(tmp_path, remote_swift, refused_port, silent_port):
    down = f'http://127.0.0.1:{refused_port}/auth/v1.0'
    silent = f'http://127.0.0.1:{silent_port}/auth/v1.0'
    path = write_mapping(tmp_path / 'm.json', [
        swift_profile(remote_swift, 'badkey', aws_secret='Wrong-Key-77'),
        swift_profile(remote_swift, 'down', aws_endpoint=down),
        swift_profile(remote_swift, 'silent', aws_endpoint=silent),
        swift_profile(remote_swift, '/*', remote_account='AUTH_nobody'),
        swift_profile(remote_swift, 'v3', auth_type='keystone_v3',
                      aws_endpoint=remote_swift.base_url + '/v3',
                      project_name='p', project_domain_name='pd',
                      user_domain_name='ud'),
    ])
    status, out, err = run(['check-config', '--timeout', '0.5', path])
    assert status == 1
    got = rows(out)
    assert got[0] == 'FAIL the credentials were refused (401)'
    assert got[1] == 'FAIL cannot connect to the auth endpoint'
    assert got[2] == 'FAIL no answer within 0.5s'
    assert got[3] == 'FAIL the credentials were refused (401)'
    assert got[4] == 'FAIL the credentials were refused'
    assert '5 of 5 profile(s) failed' in out
    assert_no_swift_secret(remote_swift, out, err)
    assert 'Wrong-Key-77' not in out + err


def test_swift_storage_url_unreachable(tmp_path, remote_swift,
                                       refused_port):
    remote_swift.storage_host = f'http://127.0.0.1:{refused_port}'
    path = write_mapping(tmp_path / 'm.json', [swift_profile(remote_swift)])
    status, out, err = run(['check-config', '--timeout', '1', path])
    assert status == 1
    assert rows(out)[0] == ('FAIL cannot connect to the storage URL the '
                            'auth endpoint gave')
    assert str(refused_port) not in out + err
    assert_no_swift_secret(remote_swift, out, err)


def test_swift_probe_builds_no_boto_client(tmp_path, remote_swift):
    path = write_mapping(tmp_path / 'm.json', [swift_profile(remote_swift)])
    remote = tools.make_remote(timeout=1.0)

    class NoS3:
        def __getattr__(self, name):
            raise AssertionError('S3 used for a swift profile')
    remote.s3 = NoS3()
    results = tools.probe_all(remote, load_mappings(path))
    assert results[0].ok
    remote.close()


def test_locate_swift(tmp_path, remote_swift):
    endpoint = 'https://user:Pw-In-Url-9z@swift.example.com/auth/v1.0'
    path = write_mapping(tmp_path / 'm.json', [
        swift_profile(remote_swift, 'c', aws_endpoint=endpoint),
        swift_profile(remote_swift, '/*', aws_endpoint=endpoint,
                      aws_bucket='arch-')])
    name = 'dir/caf\u00e9 ?#%.txt'
    status, out, err = run(['locate', '--conf', path, 'AUTH_a', 'c', name])
    assert status == 0, err
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert lines['profile'] == 'containers[0] (AUTH_a/c, protocol swift)'
    assert lines['endpoint'] == \
        'https://swift.example.com/auth/v1.0  (auth)'
    assert lines['container'] == 'rc  (remote)'
    assert lines['name'] == name
    assert lines['listing'] == 'https://swift.example.com/auth/v1.0;rc'
    assert lines['segments'].startswith('rc_segments  ')
    assert lines['url'] == ('https://swift.example.com/auth/v1.0/rc/'
                            'dir/caf%C3%A9%20%3F%23%25.txt')
    assert 'manifest' not in lines
    assert_no_secret(out, err)
    assert_no_swift_secret(remote_swift, out, err)
    _, out, _ = run(['locate', '--conf', path, '--json', 'AUTH_a', 'zz',
                     name])
    got = json.loads(out)
    assert got['protocol'] == 'swift' and got['mapped_by'] == 'AUTH_a/*'
    assert got['remote_container'] == 'arch-zz'
    assert got['segments_container'] == 'arch-zz_segments'
    assert got['key'] == name and got['manifest_key'] is None
    assert got['url'].startswith('https://swift.example.com/auth/v1.0/'
                                 'arch-zz/dir/')
    # no remote call
    assert not remote_swift.requests


def test_swift_keystone_v3_profile(tmp_path, remote_swift):
    pytest.importorskip('keystoneclient')
    user, password, user_domain, project, project_domain = \
        fake_swift.KEYSTONE_V3
    path = write_mapping(tmp_path / 'm.json', [swift_profile(
        remote_swift, auth_type='keystone_v3',
        aws_endpoint=remote_swift.base_url + '/v3', aws_identity=user,
        aws_secret=password, project_name=project,
        project_domain_name=project_domain, user_domain_name=user_domain)])
    status, out, err = run(['check-config', path])
    assert status == 0, out + err
    assert rows(out)[0] == 'OK'
    assert password not in out + err
    assert_no_swift_secret(remote_swift, out, err)
