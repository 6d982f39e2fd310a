"""``cloud-shunt check-config`` and ``locate`` run as commands against the
all-in-one cluster's S3 endpoint and proxy."""

import json
import os
import socket
import subprocess
import sys
import urllib.parse

from tests.functional.test_objects import quote, request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def cloud_shunt(*args, timeout=60):
    proc = subprocess.run(
        [sys.executable, '-m', 'shunt.tools.cli'] + list(args), cwd=ROOT,
        capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# moto in server mode accepts any secret: a distinctive one shows whether
# any part of it leaks (s3api checks it: its cluster's own is distinctive)
SECRET = 'Fn-Secret-Xq7Zp/w+9'


def secret_for(aio):
    return SECRET if aio.s3_backend == 'moto' else aio.s3_secret


def results(output):
    """``{account/container: result}`` of the printed table."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('#'))
    col = lines[start].index('result')
    out = {}
    for line in lines[start + 2:]:
        if not line.strip():
            break
        out[line.split()[1]] = line[col:]
    return out


def test_check_config_against_the_cluster(aio, tmp_path, unique_name):
    good, empty = unique_name('good'), unique_name('empty')
    aio.archive_object('AUTH_test', good, 'obj', b'data')
    secret = secret_for(aio)
    profiles = [aio.profile('AUTH_test', good, aws_secret=secret),
                aio.profile('AUTH_test', '/*', aws_secret=secret)]
    path = tmp_path / 'ok.json'
    path.write_text(json.dumps({'containers': profiles}))
    status, out, err = cloud_shunt('check-config', str(path))
    assert status == 0, out + err
    got = results(out)
    assert got[f'AUTH_test/{good}'] == 'OK'
    assert got['AUTH_test/*'].startswith('OK (bucket only')
    assert aio.s3_endpoint in out and aio.bucket in out

    profiles += [
        aio.profile('AUTH_test', empty, aws_secret=secret),
        aio.profile('AUTH_test', 'nobucket', aws_bucket=unique_name('nob'),
                    aws_secret=secret),
        aio.profile('AUTH_test', 'down', aws_secret=secret,
                    aws_endpoint=f'http://127.0.0.1:{free_port()}'),
        aio.profile('AUTH_test2', 'skipped', merge_namespaces=False,
                    aws_secret=secret),
    ]
    path = tmp_path / 'bad.json'
    path.write_text(json.dumps({'containers': profiles}))
    status, out, err = cloud_shunt('check-config', '--timeout', '2',
                                   str(path))
    assert status == 1
    got = results(out)
    assert got[f'AUTH_test/{good}'] == 'OK'
    assert got[f'AUTH_test/{empty}'] == \
        'FAIL nothing archived under the prefix'
    assert got['AUTH_test/nobucket'] == \
        'FAIL the bucket does not exist (NoSuchBucket)'
    assert got['AUTH_test/down'] == 'FAIL cannot connect to the endpoint'
    assert 'containers[5] (AUTH_test2/skipped): not shunted' in out
    assert '3 of 5 profile(s) failed' in out
    for text in (out, err):
        assert secret[:6] not in text and secret[-6:] not in text


def test_check_config_reports_the_middleware_error(aio, tmp_path):
    path = tmp_path / 'broken.json'
    path.write_text(json.dumps({'containers': [
        aio.profile('AUTH_test', 'c', propagate_delete='sometimes')]}))
    status, out, err = cloud_shunt('check-config', str(path))
    assert status == 1 and out == ''
    assert err.strip() == (
        f'cloud-shunt: {path}: containers[0].propagate_delete: expected '
        f'true or false, got "sometimes"')
    assert aio.s3_secret not in err


def test_locate_finds_what_the_proxy_serves(aio, mappings, swift_conn,
                                            unique_name):
    container = unique_name('loc')
    swift_conn.put_container(container)
    mappings([aio.profile('AUTH_test', container)])
    name = 'dir/caf\u00e9 100%.txt'
    status, out, err = cloud_shunt('locate', '--conf', aio.mapping_file,
                                   '--json', 'AUTH_test', container, name)
    assert status == 0, err
    where = json.loads(out)
    assert where['bucket'] == aio.bucket
    assert where['endpoint'] == aio.s3_endpoint
    assert aio.s3_secret not in out
    # put the body exactly where locate says, and read it through Swift
    aio.s3_client().put_object(Bucket=where['bucket'], Key=where['key'],
                               Body=b'located')
    url, token = aio.token()
    path = f'{urllib.parse.urlsplit(url).path}/{container}/{quote(name)}'
    status_, headers, body = request(aio, 'GET', path, token=token)
    assert (status_, body) == (200, b'located')
    assert headers['content-location'] == where['url']

    status, out, err = cloud_shunt('locate', '--conf', aio.mapping_file,
                                   'AUTH_test', unique_name('unmapped'),
                                   'x')
    assert status == 1 and 'is not mapped' in err
