"""Spliced container listings on the all-in-one cluster.

The oracle is Swift itself: a control container (not mapped) holds every
object of the mapped container, local and archived, stored locally. Each
listing of the mapped container must list the same names and subdirs in
the same order as the control's, for every parameter combination and in
all three formats.

What differs by nature, and is checked as such: ``last_modified`` (the
objects were written at different times); ``content_location`` (only in
the spliced JSON); the ``content_type`` of archived rows, which S3
listings do not carry (``application/octet-stream``). ``hash`` and
``bytes`` are equal (single-part uploads: the S3 ETag is the MD5).
"""

import concurrent.futures
import hashlib
import http.client
import json
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from shunt.core.layout import key_prefix
from tests.functional.backends import S3_ONLY
from tests.functional.test_object_failures import FakeS3
from tests.functional.test_objects import quote
from tests.functional.test_objects import request as objects_request

LOCAL_TYPE = 'text/x-local'
ARCHIVED_TYPE = 'application/x-archived'
REMOTE_TYPE = 'application/octet-stream'

# archived to S3 and to another Swift (tests.functional.backends)
pytestmark = pytest.mark.remotes('moto', 's3api', 'swift')

LOCAL = ['a', 'a-1', 'a.b', 'a/', 'a/b', 'dir/x', 'dir/sub/',
         'dir/sub/deep', '\u00e9', 'z z', '%41', 'b/c/d', 'q-r/s']
ARCHIVED = ['a0', 'a-2', 'a/c', 'a//x', 'dir/y', 'dir/sub0',
            'dir/other/deep', 'dir/other/', '\u00e9a', '\U0001f600',
            'plus+', '%2F', 'b/c', 'b.c', 'x/y/z', 'q-r', 'q.r']
BOTH = ['a/b/c', 'dir/z', 'm', '\u00e9/x', 'q-r/t']

QUERIES = [
    {},
    {'limit': '1'}, {'limit': '7'},
    {'marker': 'a/'}, {'marker': 'dir/sub'}, {'marker': '\u00e9'},
    {'end_marker': 'a/c'}, {'end_marker': 'm'},
    {'prefix': 'a'}, {'prefix': 'a/'}, {'prefix': 'dir/'},
    {'prefix': '\u00e9'},
    {'delimiter': '/'}, {'delimiter': '-'}, {'delimiter': '.'},
    {'reverse': 'true'},
    {'path': 'dir'}, {'path': 'dir/sub'}, {'path': ''}, {'path': 'a'},
    # combinations
    {'delimiter': '/', 'limit': '3'},
    {'delimiter': '/', 'marker': 'a/b'},
    {'delimiter': '/', 'marker': 'a/'},
    {'delimiter': '/', 'end_marker': 'dir/y'},
    {'delimiter': '/', 'prefix': 'dir/'},
    {'delimiter': '/', 'prefix': 'dir/', 'reverse': 'on'},
    {'delimiter': '/', 'reverse': 'yes', 'limit': '4'},
    {'delimiter': '/', 'reverse': 'true', 'marker': 'dir/',
     'end_marker': 'a'},
    {'delimiter': '-', 'prefix': 'q'}, {'delimiter': '.', 'prefix': 'q'},
    {'prefix': 'a', 'marker': 'a.b', 'end_marker': 'a/c', 'limit': '3'},
    {'reverse': '1', 'marker': 'm', 'end_marker': 'a/'},
    {'reverse': 'true', 'limit': '5', 'prefix': 'dir/'},
    {'path': 'dir', 'reverse': 'true'},
    {'path': 'dir', 'marker': 'dir/sub/', 'limit': '2'},
    {'path': 'dir', 'end_marker': 'dir/z'},
    {'marker': '\U0001f600'}, {'end_marker': '\u00e9a', 'reverse': 't'},
    # NUL, in no object name (some stores fail on it)
    {'prefix': '\x00'}, {'delimiter': '\x00'}, {'path': '\x00'},
    {'delimiter': 'a\x00', 'prefix': 'a'},
]


def request(aio, method, path, token, query=None):
    # listings of a thousand archived rows can take a while on moto
    return objects_request(aio, method, path, token=token, query=query,
                           timeout=60)


def body_of(name):
    return hashlib.sha256(name.encode('utf-8')).digest() * 3


def parallel(func, items, workers=16):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(func, items))


class World:
    """Account, token, and container names of this module."""

    def __init__(self, aio):
        self.aio = aio
        url, self.token = aio.token('test:tester', 'testing')
        self.base = urllib.parse.urlsplit(url).path
        self.account = self.base.split('/')[2]
        suffix = str(time.time_ns())
        self.mapped = 'spl\u00e9-' + suffix
        self.control = 'ctl-' + suffix
        self.big = 'big-' + suffix
        self.creds = 'creds-' + suffix
        if aio.remote is None:
            self.location = '%s;%s;%s' % (
                aio.s3_endpoint, aio.bucket,
                key_prefix(self.account, self.mapped))
            # S3 listings carry no content type
            self.remote_type = REMOTE_TYPE
        else:
            # (1space's form named the remote user too: not shown)
            self.location = '%s;%s' % (
                aio.remote.auth_url,
                aio.remote.container_for(self.account, self.mapped))
            self.remote_type = ARCHIVED_TYPE

    def broken_profile(self):
        """A profile of the mapped container whose listings fail: a
        missing bucket, or a wrong key on a remote Swift (where a missing
        container is one nothing was archived to yet)."""
        if self.aio.remote is not None:
            return self.aio.profile(self.account, self.mapped,
                                    aws_secret='wrong-key')
        return self.aio.profile(self.account, self.mapped,
                                aws_bucket='no-such-bucket-here')

    def profiles(self):
        return [self.aio.profile(self.account, self.mapped),
                self.aio.profile(self.account, self.big)]

    def path(self, container):
        return '%s/%s' % (self.base, quote(container))

    def get(self, container, query=None, method='GET'):
        return request(self.aio, method, self.path(container), self.token,
                       query)


@pytest.fixture(scope='module')
def world(aio):
    world = World(aio)
    conn = aio.swift_conn()
    for container in (world.mapped, world.control, world.big):
        conn.put_container(container)

    def put(args):
        container, name, content_type = args
        conn = aio.swift_conn()
        conn.put_object(container, name, body_of(name),
                        content_type=content_type)
        conn.close()

    def archive(args):
        container, name = args
        aio.archive_object(world.account, container, name, body_of(name),
                           content_type=ARCHIVED_TYPE)

    parallel(put, [(world.mapped, n, LOCAL_TYPE) for n in LOCAL + BOTH] +
             [(world.control, n, LOCAL_TYPE) for n in LOCAL + BOTH] +
             [(world.control, n, ARCHIVED_TYPE) for n in ARCHIVED])
    parallel(archive, [(world.mapped, n) for n in ARCHIVED + BOTH])
    # more than one S3 page in the big container
    world.big_archived = ['o%05d' % i for i in range(0, 2200, 2)]
    world.big_local = ['o%05d' % i for i in range(1, 600, 4)] + [
        'o00100', 'o01000']
    parallel(archive, [(world.big, n) for n in world.big_archived])
    parallel(put, [(world.big, n, LOCAL_TYPE) for n in world.big_local])
    conn.close()
    yield world
    aio.write_mappings([])


@pytest.fixture(autouse=True)
def mapped(world):
    world.aio.write_mappings(world.profiles())


# -- comparison --------------------------------------------------------------

def check_json(world, query):
    status, headers, body = world.get(world.mapped, dict(query,
                                                         format='json'))
    c_status, _, c_body = world.get(world.control, dict(query,
                                                        format='json'))
    assert (status, c_status) == (200, 200)
    assert headers['content-length'] == str(len(body))
    rows, expected = json.loads(body), json.loads(c_body)
    assert [r.get('name', r.get('subdir')) for r in rows] == \
        [r.get('name', r.get('subdir')) for r in expected], query
    for row, ctl in zip(rows, expected, strict=True):
        if 'subdir' in row:
            assert row.get('content_location') in (
                None, [world.location], [world.location, 'swift'])
            assert set(row) <= {'subdir', 'content_location'}
            continue
        name = row['name']
        assert (row['hash'], row['bytes']) == (ctl['hash'], ctl['bytes'])
        if name in ARCHIVED:
            assert row['content_location'] == [world.location]
            assert row['content_type'] == world.remote_type
            assert ctl['content_type'] == ARCHIVED_TYPE
        else:
            assert row['content_type'] == ctl['content_type'] == LOCAL_TYPE
            assert row.get('content_location') == (
                [world.location, 'swift'] if name in BOTH else None)
        assert len(row['last_modified']) == 26
    return rows


def check_xml(world, query):
    status, _, body = world.get(world.mapped, dict(query, format='xml'))
    c_status, _, c_body = world.get(world.control, dict(query,
                                                        format='xml'))
    assert status == c_status == 200
    doc, ctl = ET.fromstring(body), ET.fromstring(c_body)
    assert doc.get('name') == world.mapped
    assert [(e.tag, e.findtext('name')) for e in doc] == \
        [(e.tag, e.findtext('name')) for e in ctl], query
    for obj, c_obj in zip(doc, ctl, strict=True):
        assert [c.tag for c in obj] == [c.tag for c in c_obj]
        for field in ('hash', 'bytes'):
            assert obj.findtext(field) == c_obj.findtext(field)


def check_plain(world, query):
    status, headers, body = world.get(world.mapped, dict(query,
                                                         format='plain'))
    c_status, _, c_body = world.get(world.control, dict(query,
                                                        format='plain'))
    assert (status, body) == (c_status, c_body), query
    assert headers['content-type'] == 'text/plain; charset=utf-8'


@pytest.mark.parametrize('query', QUERIES, ids=[
    urllib.parse.urlencode(q) or 'none' for q in QUERIES])
def test_listing_equals_control(world, query):
    check_json(world, query)
    check_xml(world, query)
    check_plain(world, query)


def test_accept_header_formats(world):
    url = urllib.parse.urlsplit(world.aio.proxy_url)
    for accept in ('application/json', 'application/xml', 'text/plain'):
        bodies = []
        for container in (world.mapped, world.control):
            conn = http.client.HTTPConnection(url.hostname, url.port,
                                              timeout=30)
            conn.request('GET', world.path(container) + '?delimiter=/',
                         headers={'X-Auth-Token': world.token,
                                  'Accept': accept})
            resp = conn.getresponse()
            bodies.append((resp.status, resp.getheader('Content-Type'),
                           resp.read()))
            conn.close()
        (status, ctype, body), (c_status, c_ctype, c_body) = bodies
        assert (status, ctype) == (c_status, c_ctype) == (
            200, accept + '; charset=utf-8')
        if accept == 'text/plain':
            assert body == c_body


def test_every_name_once_with_its_location(world):
    rows = check_json(world, {})
    assert [r['name'] for r in rows] == sorted(set(LOCAL + ARCHIVED + BOTH))


@pytest.mark.parametrize('query', [
    'limit=10001', 'limit=20000&delimiter=/', 'marker=%FF',
    'end_marker=%C3', 'prefix=%FE%FF', 'delimiter=%FF', 'path=%FF',
    'reverse=%FF'])
def test_bad_values_same_answer_as_swift(world, query):
    got = world.get(world.mapped, query)
    want = world.get(world.control, query)
    assert got[0] == want[0] and got[0] in (400, 412)
    assert got[2] == want[2]


def test_odd_values_read_as_swift_reads_them(world):
    for query in ('limit=abc', 'limit=-3', 'limit=', 'reverse=maybe',
                  'limit=0'):
        got = world.get(world.mapped, query + '&format=json')
        want = world.get(world.control, query + '&format=json')
        assert got[0] == want[0]
        assert [r.get('name', r.get('subdir')) for r in
                json.loads(got[2])] == [
            r.get('name', r.get('subdir')) for r in json.loads(want[2])]


# -- what is not spliced -------------------------------------------------

def test_head_account_and_missing_container(world):
    status, headers, _ = world.get(world.mapped, method='HEAD')
    assert status == 204
    assert headers['x-container-object-count'] == str(len(LOCAL + BOTH))
    status, _, body = request(world.aio, 'GET', world.base, world.token,
                              'format=json')
    assert status == 200
    assert world.mapped in [c['name'] for c in json.loads(body)]
    world.aio.write_mappings(world.profiles() + [world.aio.profile(
        world.account, 'never-created')])
    assert world.get('never-created')[0] == 404


# -- paging across more than one S3 page ------------------------------------

def walk(world, query, step, reverse=False):
    seen, marker = [], query.pop('marker', '')
    while True:
        q = dict(query, limit=str(step), format='json')
        if marker:
            q['marker'] = marker
        if reverse:
            q['reverse'] = 'true'
        status, _, body = world.get(world.big, q)
        assert status == 200
        page = [r['name'] for r in json.loads(body)]
        if not page:
            return seen
        seen.extend(page)
        marker = page[-1]


def test_pages_visit_every_name_once(world):
    everything = sorted(set(world.big_archived) | set(world.big_local))
    assert len(world.big_archived) > 1000
    status, _, body = world.get(world.big, {'format': 'json'})
    assert [r['name'] for r in json.loads(body)] == everything
    assert walk(world, {}, 333) == everything
    assert walk(world, {}, 1000) == everything
    assert walk(world, {}, 450, reverse=True) == everything[::-1]
    # end_marker as the lower bound of a reverse walk, and of a forward one
    low, high = 'o00301', 'o01999'
    inside = [n for n in everything if low < n < high]
    assert walk(world, {'end_marker': low, 'marker': high}, 97,
                reverse=True) == inside[::-1]
    assert walk(world, {'end_marker': high, 'marker': low}, 211) == inside


# -- failures ------------------------------------------------------------



@pytest.mark.parametrize('status,code,words', [
    (403, 'SignatureDoesNotMatch', b'refused the credentials'),
    (403, 'InvalidAccessKeyId', b'refused the credentials'),
    (500, 'InternalError', b'failed'),
    (503, 'SlowDown', b'throttling'),
])
@S3_ONLY
def test_refused_listing_is_503(world, status, code, words):
    fake = FakeS3(status, code)
    conn = world.aio.swift_conn()
    try:
        conn.put_container(world.creds)
        conn.put_object(world.creds, 'local', b'x')
        world.aio.write_mappings([world.aio.profile(
            world.account, world.creds, aws_endpoint=fake.endpoint,
            aws_secret='wrong')])
        since = world.aio.proxy_log_offset()
        got, headers, body = world.get(world.creds, 'format=json')
        assert got == 503 and words in body
        assert b'fake failure' not in body and b'<Error>' not in body
        assert not [h for h in headers if h.startswith('x-amz')]
        log = world.aio.proxy_log_since(since)
        # (the console log format carries no level name)
        assert 'Container listing of %s/%s cannot list the bucket' % (
            world.account, world.creds) in log
        assert 'wrong' not in log
        assert world.get(world.creds, 'format=json', method='HEAD')[0] == 204
    finally:
        fake.shutdown()
        conn.close()


@S3_ONLY
def test_refused_clients_never_reach_the_bucket(world):
    fake = FakeS3(500, 'InternalError')
    conn = world.aio.swift_conn()
    try:
        conn.put_container(world.creds)
        world.aio.write_mappings([world.aio.profile(
            world.account, world.creds, aws_endpoint=fake.endpoint)])
        _, other = world.aio.token('test2:tester2', 'testing2')
        path = world.path(world.creds)
        for token in (other, 'not-a-token', ''):
            got = request(world.aio, 'GET', path, token, 'format=json')[0]
            assert got in (401, 403)
        assert fake.requests == 0
        assert world.get(world.creds, 'format=json')[0] == 503
        assert fake.requests > 0
    finally:
        fake.shutdown()
        conn.close()


def test_missing_bucket_is_503(world):
    world.aio.write_mappings([world.broken_profile()])
    got, _, body = world.get(world.mapped, 'format=json')
    assert got == 503 and body.startswith(b'Container listing unavailable')


@pytest.mark.s3_backends('swift', reason='an S3 bucket is not created by '
                         'the first archive')
def test_missing_remote_container_lists_local_rows(world):
    world.aio.write_mappings([world.aio.profile(
        world.account, world.mapped, aws_bucket='nothing-archived-yet')])
    got, _, body = world.get(world.mapped, 'format=json')
    assert got == 200
    assert [r['name'] for r in json.loads(body)] == sorted(LOCAL + BOTH)


def test_partial_listing_option(world, restart_proxy):
    restart_proxy(filter_conf={'listing_on_remote_error': 'local'})
    world.aio.write_mappings([world.broken_profile()])
    for query, expected in (({}, sorted(LOCAL + BOTH)),
                            ({'path': 'dir'}, ['dir/sub/', 'dir/x',
                                               'dir/z'])):
        got, headers, body = world.get(world.mapped,
                                       dict(query, format='json'))
        assert got == 200
        assert headers['x-cloud-shunt-listing'] == 'partial'
        assert [r['name'] for r in json.loads(body)] == expected
    got, headers, body = world.get(world.mapped, 'format=plain')
    assert headers['x-cloud-shunt-listing'] == 'partial'


def test_s3_stopped_is_503_not_partial(world):
    # last in the module: stopping S3 loses every bucket
    aio = world.aio
    since = aio.proxy_log_offset()
    aio.stop_s3()
    try:
        start = time.monotonic()
        got, _, body = world.get(world.mapped, 'format=json')
        assert got == 503 and b'cannot be reached' in body
        assert time.monotonic() - start < 10
        got, _, body = world.get(world.control, 'format=json')
        assert got == 200
        assert 'Container listing of' in aio.proxy_log_since(since)
    finally:
        aio.start_s3()
