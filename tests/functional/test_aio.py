"""The all-in-one cluster itself: its own swift.conf, tempauth, the S3
endpoint, the archive helpers, restarts and the ``cloud-shunt`` command."""

import glob
import http.client
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse

import pytest
from swiftclient.exceptions import ClientException

from shunt.core import layout
from shunt.tools.aio import Cluster, ClusterError


def request(url, method='GET', headers=None, body=None):
    parts = urllib.parse.urlsplit(url)
    path = parts.path + (f'?{parts.query}' if parts.query else '')
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, \
            resp.read()
    finally:
        conn.close()


def process_groups_alive(pgids):
    """Processes (pid list) still running in any of the process groups."""
    alive = []
    for stat in glob.glob('/proc/[0-9]*/stat'):
        try:
            with open(stat) as fp:
                fields = fp.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state, fields[2] the process group
        if fields[0] != 'Z' and int(fields[2]) in pgids:
            alive.append(int(stat.split('/')[2]))
    return alive


# -- the cluster runs on its own swift.conf --------------------------------

def test_info_shows_own_policies_and_constraints(aio):
    info = aio.info()
    policies = info['swift']['policies']
    assert [p['name'] for p in policies] == ['gold', 'silver']
    assert policies[0].get('default') is True
    assert info['swift']['max_file_size'] == aio.max_file_size == 5368709122
    assert info['cloud_shunt']['reload_interval'] == 0


def test_silver_container_round_trip(aio, swift_conn, unique_name):
    container = unique_name('silver')
    swift_conn.put_container(container,
                             headers={'X-Storage-Policy': 'silver'})
    headers = swift_conn.head_container(container)
    assert headers['x-storage-policy'] == 'silver'
    body = os.urandom(3000)
    etag = swift_conn.put_object(container, 'obj', body)
    headers, got = swift_conn.get_object(container, 'obj')
    assert got == body
    assert headers['etag'] == etag
    # stored by policy 1 (objects-1), proving its ring is in use
    datafiles = glob.glob(os.path.join(aio.devices_dir, '*', 'objects-1',
                                       '*', '*', '*', '*.data'))
    assert datafiles
    with pytest.raises(ClientException) as err:
        swift_conn.put_container(unique_name('bronze'),
                                 headers={'X-Storage-Policy': 'bronze'})
    assert err.value.http_status == 400


def test_server_configs_name_the_state_dir(aio):
    for server in ('account', 'container', 'object', 'proxy'):
        with open(aio.conf_path(server)) as fp:
            text = fp.read()
        assert f'swift_dir = {aio.state_dir}\n' in text
        assert '/etc/swift' not in text


def test_launcher_refuses_config_without_swift_dir(tmp_path):
    conf = tmp_path / 'proxy-server.conf'
    conf.write_text('[DEFAULT]\nbind_port = 1\n')
    result = subprocess.run(
        [sys.executable, '-m', 'shunt.tools.aio_server', 'proxy', str(conf)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert 'swift_dir is not set' in result.stderr


def test_custom_cluster_constraints_options_and_clean_stop(tmp_path):
    state = tmp_path / 'state'
    cluster = Cluster(state_dir=str(state), reload_interval=7,
                      max_file_size=4096, bucket='custom-bucket',
                      proxy_conf={'strict_cors_mode': 'false'},
                      filter_conf={'read_timeout': '3'})
    with cluster:
        info = cluster.info()
        assert info['swift']['max_file_size'] == 4096
        assert info['swift']['strict_cors_mode'] is False
        assert info['cloud_shunt']['reload_interval'] == 7
        with open(cluster.conf_path('proxy')) as fp:
            assert 'read_timeout = 3\n' in fp.read()
        conn = cluster.swift_conn()
        conn.put_container('c')
        conn.put_object('c', 'max', b'x' * 4096)
        with pytest.raises(ClientException) as err:
            conn.put_object('c', 'too-big', b'x' * 4097)
        assert err.value.http_status == 413
        assert cluster.s3_client().head_bucket(Bucket='custom-bucket')
        pgids = {proc.pid for proc in cluster.procs.values()}
        assert len(pgids) == 6
    assert process_groups_alive(pgids) == []
    # a given state dir is kept, with every component's log
    assert os.path.isfile(state / 'swift.conf')
    for name in ('proxy-server', 'account-server', 'container-server',
                 'object-server', 's3', 'memcached'):
        assert os.path.isfile(state / 'log' / f'{name}.log')


def test_bad_mapping_file_stops_start_with_proxy_error(tmp_path):
    cluster = Cluster(state_dir=str(tmp_path))
    with open(cluster.mapping_file, 'w') as fp:
        json.dump({'containers': [{'account': 'AUTH_test',
                                   'container': 'c',
                                   'merge_namespaces': True}]}, fp)
    with pytest.raises(ClusterError) as err:
        cluster.start()
    message = str(err.value)
    assert message.startswith('proxy: exited with status')
    assert cluster.mapping_file in message
    assert 'containers[0].aws_bucket' in message
    assert cluster.procs == {}


# -- tempauth -------------------------------------------------------------

def test_tempauth_users(aio):
    url, token = aio.token('test:tester', 'testing')
    assert url == aio.proxy_url + '/v1/AUTH_test'
    assert request(url)[0] == 401
    assert request(url, headers={'X-Auth-Token': 'AUTH_tkbogus'})[0] == 401
    status, _, _ = request(url, headers={'X-Auth-Token': token})
    assert status in (200, 204)
    status, _, _ = request(aio.auth_url, headers={
        'X-Auth-User': 'test:tester', 'X-Auth-Key': 'wrong'})
    assert status == 401

    url2, token2 = aio.token('test2:tester2', 'testing2')
    assert url2 == aio.proxy_url + '/v1/AUTH_test2'
    assert request(url, headers={'X-Auth-Token': token2})[0] == 403

    url3, token3 = aio.token('test:tester3', 'testing3')
    assert url3 == url
    # a non-admin user may not create containers
    status, _, _ = request(url3 + '/not-mine', 'PUT',
                           headers={'X-Auth-Token': token3})
    assert status == 403


def test_memcached_restart(aio):
    aio.stop_memcached()
    try:
        with pytest.raises(ClientException):
            aio.token()
    finally:
        aio.start_memcached()
    url, token = aio.token()
    assert request(url, headers={'X-Auth-Token': token})[0] in (200, 204)


# -- the S3 endpoint and the archive helpers ------------------------------

def test_s3_endpoint_with_boto3(aio, s3, unique_name):
    assert aio.s3_endpoint.startswith('http://127.0.0.1:')
    assert aio.bucket in [b['Name'] for b in s3.list_buckets()['Buckets']]
    bucket = unique_name('bkt')
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key='dir/k', Body=b'value',
                  Metadata={'color': 'blue'})
    got = s3.get_object(Bucket=bucket, Key='dir/k')
    assert got['Body'].read() == b'value'
    assert got['Metadata'] == {'color': 'blue'}
    listing = s3.list_objects_v2(Bucket=bucket, Delimiter='/')
    assert [p['Prefix'] for p in listing['CommonPrefixes']] == ['dir/']


def test_archive_object_uses_the_layout_key(aio, s3, unique_name):
    container = unique_name('arc')
    name = '2019/caf\u00e9 \u2603.txt'
    key = aio.archive_object('AUTH_test', container, name, 'hello \u00e9',
                             metadata={'color': 'blue'},
                             content_type='text/plain')
    assert key == layout.object_key('AUTH_test', container, name)
    prefix = layout.hashed_prefix('AUTH_test', container)
    assert key == f'{prefix}/AUTH_test/{container}/{name}'
    got = s3.get_object(Bucket=aio.bucket, Key=key)
    assert got['Body'].read() == 'hello \u00e9'.encode('utf-8')
    assert got['Metadata'] == {'color': 'blue'}
    assert got['ContentType'] == 'text/plain'

    other = unique_name('other-bucket')
    s3.create_bucket(Bucket=other)
    key = aio.archive_object('AUTH_test', container, 'obj', b'x',
                             custom_prefix='/pre/', bucket=other)
    assert key == 'pre/obj'
    assert s3.get_object(Bucket=other, Key=key)['Body'].read() == b'x'


def test_s3_restart_recreates_default_bucket(aio, s3, unique_name):
    key = aio.archive_object('AUTH_test', unique_name('c'), 'gone', b'x')
    aio.stop_s3()
    aio.start_s3()
    s3 = aio.s3_client()
    if aio.s3_backend == 's3api':
        # s3api's buckets are containers of the cluster: they survive
        assert s3.get_object(Bucket=aio.bucket, Key=key)['Body'].read() \
            == b'x'
        return
    assert s3.list_objects_v2(Bucket=aio.bucket).get('KeyCount') == 0
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=aio.bucket, Key=key)


def test_profile_and_write_mappings(aio, mappings):
    profile = aio.profile('AUTH_test', 'photos', custom_prefix='p')
    assert profile == {
        'account': 'AUTH_test', 'container': 'photos',
        'aws_bucket': aio.bucket, 'aws_endpoint': aio.s3_endpoint,
        'aws_identity': aio.s3_key, 'aws_secret': aio.s3_secret,
        'merge_namespaces': True, 'protocol': 's3', 'custom_prefix': 'p'}
    mtimes = []
    for profiles in ([profile], [], [profile]):
        mappings(profiles)
        with open(aio.mapping_file) as fp:
            assert json.load(fp) == {'containers': profiles}
        mtimes.append(os.stat(aio.mapping_file).st_mtime_ns)
    assert mtimes == sorted(set(mtimes))
    leftovers = [n for n in os.listdir(aio.state_dir) if n.endswith('.tmp')]
    assert leftovers == []


# -- proxy restarts and logs ----------------------------------------------

def test_restart_proxy_changes_then_restores_options(aio, restart_proxy):
    restart_proxy(filter_conf={'reload_interval': '3'},
                  proxy_conf={'strict_cors_mode': 'false'})
    info = aio.info()
    assert info['cloud_shunt']['reload_interval'] == 3
    assert info['swift']['strict_cors_mode'] is False
    aio.restart_proxy()
    info = aio.info()
    assert info['cloud_shunt']['reload_interval'] == 0
    assert info['swift']['strict_cors_mode'] is True


def test_restart_proxy_without_the_shunt(aio):
    try:
        aio.restart_proxy(shunt_in_pipeline=False)
        assert 'cloud_shunt' not in aio.info()
        with open(aio.conf_path('proxy')) as fp:
            pipeline = [line for line in fp if line.startswith('pipeline')]
        assert pipeline and 'cloud_shunt' not in pipeline[0]
        assert 'copy slo' in pipeline[0]
    finally:
        aio.restart_proxy()
    assert 'cloud_shunt' in aio.info()


def test_proxy_log_has_access_and_shunt_lines(aio, restart_proxy):
    restart_proxy()
    path = '/v1/AUTH_test/log-probe-%s' % os.getpid()
    _, token = aio.token()
    request(aio.proxy_url + path, 'HEAD', headers={'X-Auth-Token': token})
    with open(aio.proxy_log_path, encoding='utf-8', errors='replace') as fp:
        log = fp.read()
    assert f'HEAD {path}' in log
    # the cloud_shunt logger (route cloud_shunt) names its mapping file
    assert aio.mapping_file in log


# -- the command ----------------------------------------------------------

def _cloud_shunt_command():
    script = os.path.join(os.path.dirname(sys.executable), 'cloud-shunt')
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, '-m', 'shunt.tools.cli']


def test_demo_check_exits_zero():
    with tempfile.TemporaryDirectory() as state:
        result = subprocess.run(
            _cloud_shunt_command() + ['demo', '--check', '--state-dir',
                                      state],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert 'OK' in lines
        assert any('download archive' in line for line in lines)
        assert any(line.startswith('  curl ') for line in lines)
        assert 'Stopped.' in lines
        # everything it started is gone
        assert not [p for p in glob.glob('/proc/[0-9]*/cmdline')
                    if state in _read(p)]


def _read(path):
    try:
        with open(path, 'rb') as fp:
            return fp.read().decode('utf-8', 'replace')
    except OSError:
        return ''


def test_cli_help_lists_subcommands():
    result = subprocess.run(_cloud_shunt_command() + ['--help'],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert 'aio' in result.stdout and 'demo' in result.stdout
