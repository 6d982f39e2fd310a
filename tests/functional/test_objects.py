"""Archived object GET/HEAD on the all-in-one cluster, with real Swift as
the oracle: every request is sent both to an archived-only object in a
mapped container and to the same object stored locally in an unmapped
container, and the answers must match."""

import hashlib
import http.client
import json
import time
import urllib.parse

import pytest

# archived to S3 and to another Swift (tests.functional.backends)
pytestmark = pytest.mark.remotes('moto', 's3api', 'swift')

# headers that differ between any two objects or responses by nature
VOLATILE = {'x-trans-id', 'x-openstack-request-id', 'date', 'last-modified',
            'x-timestamp', 'content-location', 'connection'}

BODY = b''.join(hashlib.sha256(b'%d' % i).digest() for i in range(4096))
META = {'Color': 'blue', 'Unicode': '\u00e9t\u00e9 \u2603', 'Empty-ish': '-'}


def request(aio, method, path, headers=None, token=None, query=None,
            timeout=30):
    """(status, lower-cased headers, body) of one request to the proxy;
    ``query`` a string or a dict."""
    url = urllib.parse.urlsplit(aio.proxy_url)
    conn = http.client.HTTPConnection(url.hostname, url.port,
                                      timeout=timeout)
    if query:
        path += '?' + (query if isinstance(query, str)
                       else urllib.parse.urlencode(query))
    hdrs = dict(headers or {})
    if token:
        hdrs['X-Auth-Token'] = token
    conn.request(method, path, headers=hdrs)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def quote(name):
    return urllib.parse.quote(name.encode('utf-8'))


@pytest.fixture(scope='module')
def pair(aio):
    """A mapped container with archived-only objects and a local control
    container holding the same objects."""
    conn = aio.swift_conn()
    url, token = aio.token('test:tester', 'testing')
    account = urllib.parse.urlsplit(url).path.split('/')[2]
    suffix = str(time.time_ns())
    mapped, control = f'arc-{suffix}', f'ctl-{suffix}'
    conn.put_container(mapped)
    conn.put_container(control)
    profiles = [aio.profile(account, mapped),
                aio.profile(account, f'flat-{suffix}', custom_prefix='')]
    aio.write_mappings(profiles)

    def add(name, body=BODY, meta=META, content_type='application/x-test'):
        conn.put_object(control, name, body, content_type=content_type,
                        headers={f'X-Object-Meta-{k}': v
                                 for k, v in meta.items()})
        s3_meta = {k.lower(): _s3_value(v) for k, v in meta.items()}
        aio.archive_object(account, mapped, name, body, metadata=s3_meta,
                           content_type=content_type)

    add('obj')
    add('empty', b'')
    yield {'conn': conn, 'url': url, 'token': token, 'account': account,
           'mapped': mapped, 'control': control, 'add': add,
           'flat': f'flat-{suffix}', 'profiles': profiles}
    aio.write_mappings([])


def _s3_value(value):
    """The way 1space stores a metadata value: printable ASCII verbatim,
    otherwise an RFC 2047 encoded word."""
    import email.charset
    if value.isascii() and value.isprintable():
        return value
    cs = email.charset.Charset('utf-8')
    return cs.header_encode(value)


def both(aio, pair, method, name, headers=None):
    """The answer for the archived object and for the local one."""
    base = urllib.parse.urlsplit(pair['url']).path
    out = []
    for container in (pair['mapped'], pair['control']):
        path = f'{base}/{container}/{quote(name)}'
        out.append(request(aio, method, path, headers, pair['token']))
    return out


def assert_same(shunted, local):
    s_status, s_headers, s_body = shunted
    l_status, l_headers, l_body = local
    assert s_status == l_status
    ctype = l_headers.get('content-type', '')
    if ctype.startswith('multipart/byteranges'):
        s_boundary = s_headers['content-type'].split('boundary=')[1]
        l_boundary = ctype.split('boundary=')[1]
        assert s_body.replace(s_boundary.encode(), b'B') == \
            l_body.replace(l_boundary.encode(), b'B')
        s_headers = dict(s_headers, **{'content-type': 'm'})
        l_headers = dict(l_headers, **{'content-type': 'm'})
    else:
        assert s_body == l_body
    assert _stable(s_headers) == _stable(l_headers)


def _stable(headers):
    return {k: v for k, v in headers.items() if k not in VOLATILE}


@pytest.mark.parametrize('method', ['GET', 'HEAD'])
@pytest.mark.parametrize('name', ['obj', 'empty'])
def test_plain_get_head_match_local(aio, pair, method, name):
    shunted, local = both(aio, pair, method, name)
    assert shunted[0] == 200
    assert_same(shunted, local)
    assert shunted[1]['content-location'].startswith(aio.remote_endpoint)
    if method == 'GET':
        assert hashlib.md5(shunted[2]).hexdigest() == \
            shunted[1]['etag'].strip('"')


@pytest.mark.parametrize('rng', [
    'bytes=0-0', 'bytes=0-99', 'bytes=100-', 'bytes=-100', 'bytes=-1',
    'bytes=131071-', 'bytes=0-999999', 'bytes=-999999', 'bytes=131072-',
    'bytes=999999-', 'bytes=-0', 'bytes=5-1', 'bytes=0-1,10-20',
    'bytes=0-1,5-6,100-', 'bytes=-5,0-3', 'bytes=0-1,999999-', 'junk',
    'bytes=', 'bytes=a-b', 'bytes=1-2,1-2,1-2,1-2'])
def test_ranges_match_local(aio, pair, rng):
    for method in ('GET', 'HEAD'):
        shunted, local = both(aio, pair, method, 'obj', {'Range': rng})
        assert_same(shunted, local)


@pytest.mark.parametrize('rng', ['bytes=0-0', 'bytes=-5', 'bytes=3-'])
def test_ranges_on_empty_object_match_local(aio, pair, rng):
    shunted, local = both(aio, pair, 'GET', 'empty', {'Range': rng})
    assert_same(shunted, local)


def _etag():
    return '"%s"' % hashlib.md5(BODY).hexdigest()


@pytest.mark.parametrize('headers', [
    {'If-Match': _etag()}, {'If-Match': '"nope"'}, {'If-Match': '*'},
    {'If-None-Match': _etag()}, {'If-None-Match': '"nope"'},
    {'If-None-Match': '*'}, {'If-Match': f'"x", {_etag()}'},
    {'If-Match': _etag(), 'Range': 'bytes=1-5'},
    {'If-None-Match': _etag(), 'Range': 'bytes=1-5'},
    {'If-Match': '"nope"', 'Range': 'bytes=1-5'},
    {'If-Modified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT'},
    {'If-Modified-Since': 'Fri, 01 Jan 2100 00:00:00 GMT'},
    {'If-Unmodified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT'},
    {'If-Unmodified-Since': 'Fri, 01 Jan 2100 00:00:00 GMT'},
    {'If-Modified-Since': 'garbage'},
    {'If-None-Match': '"nope"', 'If-Modified-Since':
     'Fri, 01 Jan 2100 00:00:00 GMT'},
])
def test_conditionals_match_local(aio, pair, headers):
    for method in ('GET', 'HEAD'):
        shunted, local = both(aio, pair, method, 'obj', headers)
        assert_same(shunted, local)


def test_conditional_on_own_last_modified(aio, pair):
    # each object's own Last-Modified: not modified since then
    for container in (pair['mapped'], pair['control']):
        base = urllib.parse.urlsplit(pair['url']).path
        path = f'{base}/{container}/obj'
        _, headers, _ = request(aio, 'HEAD', path, token=pair['token'])
        lm = headers['last-modified']
        status, _, body = request(aio, 'GET', path,
                                  {'If-Modified-Since': lm}, pair['token'])
        assert (status, body) == (304, b'')
        status, _, body = request(aio, 'GET', path,
                                  {'If-Unmodified-Since': lm},
                                  pair['token'])
        assert status == 200 and body == BODY


@pytest.mark.parametrize('name', [
    'caf\u00e9 \u2603/\u65e5\u672c', 'with space', 'per%25cent%', 'q?uery',
    'ha#sh', 'plus+sign', 'a/b/c/', 'semi;colon', "qu'ote\"s", '\u00e9' * 10,
])
def test_odd_names_match_local(aio, pair, name):
    pair['add'](name, b'body of ' + name.encode('utf-8'))
    for method in ('GET', 'HEAD'):
        shunted, local = both(aio, pair, method, name)
        assert shunted[0] == 200
        assert_same(shunted, local)


def test_thousand_byte_name(aio, pair):
    conn, account = pair['conn'], pair['account']
    name = ('n\u00e9/' * 250)[:999] + 'x'
    assert len(name.encode('utf-8')) >= 1000
    conn.put_container(pair['flat'])
    aio.archive_object(account, pair['flat'], name, b'long name',
                       custom_prefix='')
    base = urllib.parse.urlsplit(pair['url']).path
    status, headers, body = request(
        aio, 'GET', f'{base}/{pair["flat"]}/{quote(name)}',
        token=pair['token'])
    assert (status, body) == (200, b'long name')


def test_miss_is_local_404(aio, pair):
    shunted, local = both(aio, pair, 'GET', 'not-there')
    assert shunted[0] == 404
    assert_same(shunted, local)
    shunted, local = both(aio, pair, 'HEAD', 'not-there')
    assert_same(shunted, local)


def test_local_copy_wins(aio, pair):
    conn = pair['conn']
    aio.archive_object(pair['account'], pair['mapped'], 'both', b'remote')
    conn.put_object(pair['mapped'], 'both', b'local')
    _, body = conn.get_object(pair['mapped'], 'both')
    assert body == b'local'


def test_bypass_header_gives_local_view(aio, pair):
    base = urllib.parse.urlsplit(pair['url']).path
    status, _, _ = request(aio, 'GET', f'{base}/{pair["mapped"]}/obj',
                           {'X-Cloud-Sync-Shunt-Bypass': 'true'},
                           pair['token'])
    assert status == 404


def test_no_s3_headers_leak(aio, pair):
    shunted, _ = both(aio, pair, 'GET', 'obj')
    leaked = [h for h in shunted[1]
              if h.startswith('x-amz') or h == 'server' and
              'amazon' in shunted[1][h].lower()]
    assert leaked == []


def test_swiftclient_reads_archived_object(aio, pair):
    headers, body = pair['conn'].get_object(pair['mapped'], 'obj')
    assert body == BODY
    assert headers['x-object-meta-unicode'] == META['Unicode']
    headers = pair['conn'].head_object(pair['mapped'], 'obj')
    assert int(headers['content-length']) == len(BODY)


def test_auth_is_never_bypassed(aio, pair):
    base = urllib.parse.urlsplit(pair['url']).path
    path = f'{base}/{pair["mapped"]}/obj'
    status, _, body = request(aio, 'GET', path)
    assert status == 401 and body != BODY
    _, token2 = aio.token('test2:tester2', 'testing2')
    status, _, body = request(aio, 'GET', path, token=token2)
    assert status == 403 and body != BODY
    _, token3 = aio.token('test:tester3', 'testing3')
    status, _, body = request(aio, 'GET', path, token=token3)
    assert status == 403 and body != BODY


def test_public_read_container_is_readable_anonymously(aio, pair):
    conn, account = pair['conn'], pair['account']
    public = pair['mapped'] + '-pub'
    conn.put_container(public, headers={'X-Container-Read': '.r:*'})
    aio.write_mappings(pair['profiles'] + [aio.profile(account, public)])
    try:
        aio.archive_object(account, public, 'pub', b'public data')
        base = urllib.parse.urlsplit(pair['url']).path
        status, _, body = request(aio, 'GET', f'{base}/{public}/pub')
        assert (status, body) == (200, b'public data')
    finally:
        aio.write_mappings(pair['profiles'])


def test_info_has_no_secrets(aio, pair):
    status, _, body = request(aio, 'GET', '/info')
    info = json.loads(body)
    assert status == 200 and 'cloud_shunt' in info
    text = json.dumps(info['cloud_shunt'])
    assert aio.remote_secret not in text and aio.bucket not in text


@pytest.mark.parametrize('headers', [{'If-Match': '*'},
                                     {'If-None-Match': '*'},
                                     {'If-Match': '"x"'}])
def test_conditionals_on_missing_object_match_local(aio, pair, headers):
    for method in ('GET', 'HEAD'):
        shunted, local = both(aio, pair, method, 'not-there', headers)
        assert_same(shunted, local)
