"""Container listings through the middleware: a local container answered by
Swift's own broker, the bucket by moto's in-process S3 (or a fake remote
for failures and timing)."""

import hashlib
import json
import re
import time
import urllib.parse
import xml.etree.ElementTree as ET

import eventlet
import pytest
from swift.common.middleware.listing_formats import ListingFilter
from swift.common.request_helpers import validate_container_params
from swift.common.swob import HTTPException, Request, Response

from shunt.core.layout import key_prefix, manifest_key, object_key
from shunt.core.remote import RemoteError, S3Remote
from shunt.proxy import listing, splice
from shunt.proxy.middleware import CloudShuntMiddleware
from tests.unit.helpers import BUCKET, FakeLogger, write_mapping
from tests.unit.test_splice import Oracle, keys

KP = key_prefix('AUTH_a', 'c')
LOCATION = 'AWS S3;%s;%s' % (BUCKET, KP)
TIME_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$')


class ContainerApp:
    """The pipeline right of the shunt for one container ``/v1/AUTH_a/c``
    holding ``names``: Swift's parameter checks and broker listing."""

    def __init__(self, names=(), delay=0, public=False):
        self.oracle = Oracle(names)
        self.calls = []
        self.delay = delay
        self.public = public

    def __call__(self, env, start_response):
        req = Request(env)
        self.calls.append((req.method, req.path, req.params,
                           env.get('swift.source')))
        if self.delay and req.method == 'GET':
            eventlet.sleep(self.delay)
        if req.path == '/v1/AUTH_a' and req.method == 'HEAD':
            return Response(status=204)(env, start_response)
        if req.path != '/v1/AUTH_a/c':
            return Response(status=404, body=b'Not Found')(
                env, start_response)
        try:
            validate_container_params(req)
            params = splice.parse_params(req)
        except HTTPException as err:
            return err(env, start_response)
        headers = {'X-Container-Object-Count': '42',
                   'X-Timestamp': '1700000000.00000',
                   'X-Container-Read': '.r:*' if self.public else ''}
        if req.method == 'GET' and 'swift.authorize' in env:
            # as the proxy does, with the container's read ACL
            req.acl = headers['X-Container-Read']
            denied = env['swift.authorize'](req)
            if denied:
                return denied(env, start_response)
        if req.method == 'HEAD':
            return Response(status=204, headers=headers)(env, start_response)
        body = json.dumps(self.oracle.list(params)).encode('ascii')
        return Response(body=body, headers=headers,
                        content_type='application/json',
                        charset='utf-8')(env, start_response)


class SlowRemote(S3Remote):
    """Real calls, after a green pause (to see what overlaps)."""

    def __init__(self, delay):
        super().__init__()
        self.delay = delay
        self.started = []

    def list_objects(self, profile, **kwargs):
        self.started.append(time.monotonic())
        eventlet.sleep(self.delay)
        return super().list_objects(profile, **kwargs)


class FailingRemote(S3Remote):
    """Fails every listing call from the ``fail_from``-th on."""

    def __init__(self, kind='connection', fail_from=0):
        super().__init__()
        self.kind = kind
        self.fail_from = fail_from
        self.calls = 0

    def list_objects(self, profile, **kwargs):
        self.calls += 1
        if self.calls > self.fail_from:
            raise RemoteError(self.kind, 'boom (%s)' % self.kind)
        return super().list_objects(profile, **kwargs)


def profile_dict(**overrides):
    profile = {'account': 'AUTH_a', 'container': 'c', 'aws_bucket': BUCKET,
               'aws_identity': 'id', 'aws_secret': 'sekrit',
               'merge_namespaces': True}
    profile.update(overrides)
    return profile


def make_shunt(tmp_path, local, remote=None, conf=None, **overrides):
    path = write_mapping(tmp_path / 'm.json', [profile_dict(**overrides)])
    conf = dict(conf or {}, conf_file=path)
    return CloudShuntMiddleware(local, conf, logger=FakeLogger(),
                                remote=remote)


def archive(s3, names, custom_prefix=None, body=b'archived'):
    for name in names:
        s3.put_object(Bucket=BUCKET, Body=body, Key=object_key(
            'AUTH_a', 'c', name, custom_prefix))


def get(app, qs='', path='/v1/AUTH_a/c', method='GET', headers=None):
    qs = qs + '&format=json' if 'format=' not in qs else qs
    return Request.blank(path + '?' + qs.lstrip('&'), method=method,
                         headers=headers or {}).get_response(app)


def names_of(resp):
    return [splice.row_key(r) for r in json.loads(resp.body)]


# -- the basics -------------------------------------------------------------

def test_union_with_duplicates(tmp_path, s3):
    local = ContainerApp(['a', 'c', 'e'])
    archive(s3, ['b', 'c', 'd'])
    resp = get(make_shunt(tmp_path, local))
    assert resp.status_int == 200
    assert resp.headers['Content-Type'] == 'application/json; charset=utf-8'
    assert resp.headers['Content-Length'] == str(len(resp.body))
    assert resp.headers['X-Container-Object-Count'] == '42'
    rows = json.loads(resp.body)
    assert [r['name'] for r in rows] == ['a', 'b', 'c', 'd', 'e']
    assert 'content_location' not in rows[0]
    # a duplicate is the local row, naming both places
    assert rows[2]['hash'] == 'local-etag'
    assert rows[2]['content_type'] == 'text/plain'
    assert rows[2]['content_location'] == [LOCATION, 'swift']
    remote = rows[1]
    assert remote['content_location'] == [LOCATION]
    assert remote['hash'] == hashlib.md5(b'archived').hexdigest()
    assert remote['bytes'] == len(b'archived')
    assert remote['content_type'] == 'application/octet-stream'
    assert TIME_RE.match(remote['last_modified'])
    assert sorted(remote) == ['bytes', 'content_location', 'content_type',
                              'hash', 'last_modified', 'name']


def test_hash_is_unquoted_md5(tmp_path, s3):
    archive(s3, ['x'], body=b'hello')
    rows = json.loads(get(make_shunt(tmp_path, ContainerApp())).body)
    assert rows[0]['hash'] == '5d41402abc4b2a76b9719d911017c592'


@pytest.mark.parametrize('overrides,location', [
    ({'aws_endpoint': 'http://user:pw@s3.example.com:8080/'},
     'http://s3.example.com:8080;%s;%s' % (BUCKET, KP)),
    ({'custom_prefix': '/pre/'}, 'AWS S3;%s;pre/' % BUCKET),
    ({'custom_prefix': ''}, 'AWS S3;%s' % BUCKET),
])
def test_content_location_forms(tmp_path, s3, overrides, location):
    shunt = make_shunt(tmp_path, ContainerApp(), **overrides)
    profile = shunt.mapping_source.current().lookup('AUTH_a', 'c')
    assert listing.ListingContext(shunt, profile).location == location


def test_names_are_not_decoded_twice(tmp_path, s3):
    names = ['a%20b', 'a%2Fb', 'caf\u00e9', 'plus+sign', 'x?y#z']
    archive(s3, names)
    resp = get(make_shunt(tmp_path, ContainerApp()))
    assert names_of(resp) == sorted(names)


def test_sidecars_are_never_listed(tmp_path, s3):
    archive(s3, ['a', '.manifests/b', 'z'], custom_prefix='pre')
    s3.put_object(Bucket=BUCKET, Body=b'{}', Key=manifest_key(
        'AUTH_a', 'c', 'a', 'pre'))
    shunt = make_shunt(tmp_path, ContainerApp(['m']), custom_prefix='pre')
    assert names_of(get(shunt)) == ['a', 'm', 'z']
    assert names_of(get(shunt, 'delimiter=/')) == ['a', 'm', 'z']
    assert names_of(get(shunt, 'delimiter=m')) == ['a', 'm', 'z']


# -- what is not spliced ------------------------------------------------------

def test_local_404_stays_404(tmp_path, s3):
    remote = FailingRemote()
    path = write_mapping(tmp_path / 'm.json', [profile_dict(
        container='/*')])
    shunt = CloudShuntMiddleware(ContainerApp(), {'conf_file': path},
                                 logger=FakeLogger(), remote=remote)
    resp = get(shunt, path='/v1/AUTH_a/missing')
    assert resp.status_int == 404 and resp.body == b'Not Found'
    assert not shunt.logger.text('error')


def test_head_and_account_untouched(tmp_path, s3):
    local = ContainerApp(['a'])
    remote = FailingRemote()
    shunt = make_shunt(tmp_path, local, remote)
    assert get(shunt, method='HEAD').status_int == 204
    assert get(shunt, path='/v1/AUTH_a').status_int == 404
    assert remote.calls == 0


@pytest.mark.parametrize('qs,status,body', [
    ('limit=10001', 412, b'Maximum limit is 10000'),
    ('marker=%FF', 400, b'"marker" parameter not valid UTF-8'),
    ('path=%FF', 400, b'"path" parameter not valid UTF-8'),
])
def test_bad_params_get_swifts_answer(tmp_path, s3, qs, status, body):
    remote = FailingRemote()
    local = ContainerApp(['a'])
    resp = get(make_shunt(tmp_path, local, remote), qs)
    assert (resp.status_int, resp.body) == (status, body)
    assert remote.calls == 0 and len(local.calls) == 1


def test_limit_zero(tmp_path, s3):
    archive(s3, ['a'])
    remote = FailingRemote()
    resp = get(make_shunt(tmp_path, ContainerApp(['b']), remote), 'limit=0')
    assert resp.status_int == 200 and json.loads(resp.body) == []
    assert remote.calls == 0


def test_non_json_local_listing_passes(tmp_path, s3):
    def app(env, start_response):
        return Response(body=b'<html/>', content_type='text/html')(
            env, start_response)
    archive(s3, ['a'])
    resp = get(make_shunt(tmp_path, app))
    assert resp.status_int == 200 and resp.body == b'<html/>'


# -- parameters, against the union ------------------------------------------

LOCAL = ['a', 'a/', 'a/b/c', 'a0', 'b-1', 'caf\u00e9', 'x/y', '\U0001f600']
REMOTE = ['a', 'a.b', 'a/b', 'a/b/', 'a/b0', 'b-2', 'caf\u00e9/', 'x/z',
          'zz']


@pytest.fixture
def both(tmp_path, s3):
    archive(s3, REMOTE)
    union = Oracle(set(LOCAL) | set(REMOTE))
    yield make_shunt(tmp_path, ContainerApp(LOCAL)), union
    union.close()


@pytest.mark.parametrize('query', [
    {}, {'limit': 3}, {'marker': 'a/'}, {'end_marker': 'b-2'},
    {'prefix': 'a/'}, {'delimiter': '/'}, {'delimiter': '-'},
    {'reverse': 'true'}, {'path': 'a'}, {'path': 'a/b'}, {'path': ''},
    {'delimiter': '/', 'marker': 'a/b', 'limit': 2},
    {'delimiter': '/', 'reverse': 'on', 'end_marker': 'a', 'limit': 3},
    {'prefix': 'a', 'delimiter': '/', 'reverse': 'yes'},
    {'path': 'a', 'reverse': 'true'},
    {'path': 'a', 'marker': 'a/b', 'end_marker': 'a/c'},
    {'prefix': 'caf', 'delimiter': '/', 'marker': 'caf\u00e9'},
])
def test_parameters_on_the_union(both, query):
    shunt, union = both
    qs = urllib.parse.urlencode(query)
    resp = get(shunt, qs)
    assert resp.status_int == 200
    params = splice.parse_params(Request.blank('/?' + qs))
    assert keys(json.loads(resp.body)) == keys(union.list(params))


def test_path_pages_are_subrequests(tmp_path, s3):
    local = ContainerApp(['d/%03d' % i for i in range(30)])
    archive(s3, ['d/%03da' % i for i in range(30)])
    shunt = make_shunt(tmp_path, local)
    resp = get(shunt, 'path=d&limit=50')
    assert len(names_of(resp)) == 50
    assert all(source == listing.SWIFT_SOURCE
               for _, _, _, source in local.calls)
    gets = [params for method, _, params, _ in local.calls
            if method == 'GET']
    assert gets[0]['prefix'] == 'd/' and 'marker' not in gets[0]


# -- formats (listing_formats left of the shunt) ---------------------------

def test_xml_and_plain(tmp_path, s3):
    archive(s3, ['b', 'd/e'])
    app = ListingFilter(make_shunt(tmp_path, ContainerApp(['a', 'd/f'])),
                        {})
    resp = get(app, 'format=xml&delimiter=/')
    assert resp.status_int == 200
    doc = ET.fromstring(resp.body)
    assert doc.tag == 'container' and doc.get('name') == 'c'
    assert [(e.tag, e.findtext('name')) for e in doc] == [
        ('object', 'a'), ('object', 'b'), ('subdir', 'd/')]
    remote = doc[1]
    assert [c.tag for c in remote] == ['name', 'hash', 'bytes',
                                       'content_type', 'last_modified']
    resp = get(app, 'format=plain')
    assert resp.body == b'a\nb\nd/e\nd/f\n'
    assert resp.headers['Content-Type'] == 'text/plain; charset=utf-8'
    resp = get(app, 'format=json')
    assert names_of(resp) == ['a', 'b', 'd/e', 'd/f']
    resp = Request.blank('/v1/AUTH_a/c', headers={
        'Accept': 'application/xml'}).get_response(app)
    assert resp.body.startswith(b'<?xml')


# -- pages, concurrency ----------------------------------------------------

def walk(shunt, query):
    """Every name, page by page with ``marker``."""
    seen = []
    while True:
        marker = urllib.parse.quote(seen[-1]) if seen else ''
        page = names_of(get(shunt, f'{query}&marker={marker}'))
        if not page:
            return seen
        seen.extend(page)


def test_walk_more_than_one_s3_page(tmp_path, s3):
    remote = ['r%05d' % i for i in range(0, 2100, 2)]
    local = ['r%05d' % i for i in range(1, 300, 3)]
    archive(s3, remote)
    shunt = make_shunt(tmp_path, ContainerApp(local))
    everything = sorted(set(remote) | set(local))
    assert walk(shunt, 'limit=700') == everything
    assert walk(shunt, 'limit=900&reverse=1') == everything[::-1]
    assert names_of(get(shunt)) == everything


def test_local_and_first_page_overlap(tmp_path, s3):
    archive(s3, ['b'])
    remote = SlowRemote(0.3)
    local = ContainerApp(['a'], delay=0.3)
    shunt = make_shunt(tmp_path, local, remote)
    start = time.monotonic()
    resp = get(shunt)
    elapsed = time.monotonic() - start
    assert names_of(resp) == ['a', 'b']
    assert elapsed < 0.5, elapsed
    assert remote.started[0] - start < 0.1


# -- failures --------------------------------------------------------------

@pytest.mark.parametrize('kind,reason', [
    ('connection', b'cannot be reached'), ('timeout', b'timed out'),
    ('auth', b'refused the credentials'), ('server', b'failed'),
    ('throttled', b'throttling')])
def test_remote_failure_is_503(tmp_path, s3, kind, reason):
    shunt = make_shunt(tmp_path, ContainerApp(['a']), FailingRemote(kind))
    resp = get(shunt)
    assert resp.status_int == 503
    assert reason in resp.body and resp.body.endswith(b'.\n')
    assert resp.body.startswith(b'Container listing unavailable: ')
    errors = shunt.logger.text('error')
    assert 'AUTH_a/c' in errors and kind in errors
    assert BUCKET in errors and 'sekrit' not in errors
    assert ('Retry-After' in resp.headers) == (kind == 'throttled')


def test_failure_on_a_later_page_is_503(tmp_path, s3):
    archive(s3, ['r%04d' % i for i in range(1200)])
    remote = FailingRemote('timeout', fail_from=1)
    resp = get(make_shunt(tmp_path, ContainerApp(['a']), remote))
    assert resp.status_int == 503 and remote.calls == 2


def test_real_bucket_missing_is_503(tmp_path, s3):
    shunt = make_shunt(tmp_path, ContainerApp(['a']), aws_bucket='nope')
    resp = get(shunt)
    assert resp.status_int == 503


def test_local_policy_gives_partial_listing(tmp_path, s3):
    shunt = make_shunt(tmp_path, ContainerApp(['a', 'b/c']),
                       FailingRemote(), {'listing_on_remote_error': 'local'})
    resp = get(shunt, 'delimiter=/')
    assert resp.status_int == 200
    assert resp.headers['X-Cloud-Shunt-Listing'] == 'partial'
    assert names_of(resp) == ['a', 'b/']
    assert resp.headers['Content-Length'] == str(len(resp.body))
    assert shunt.logger.text('error')
    resp = get(shunt, 'path=b')
    assert names_of(resp) == ['b/c']
    assert resp.headers['X-Cloud-Shunt-Listing'] == 'partial'


def test_option_is_checked():
    assert listing.remote_error_policy({}) == 'fail'
    assert listing.remote_error_policy(
        {'listing_on_remote_error': ' Local '}) == 'local'
    with pytest.raises(ValueError, match='listing_on_remote_error'):
        listing.remote_error_policy({'listing_on_remote_error': 'partial'})


def test_failing_later_local_page_is_503(tmp_path, s3):
    local = ContainerApp(['d/%04d' % i for i in range(1200)])

    def app(env, start_response):
        if 'marker=' in env.get('QUERY_STRING', ''):
            return Response(status=500, body=b'oops')(env, start_response)
        return local(env, start_response)
    archive(s3, ['d/x'])
    shunt = make_shunt(tmp_path, app)
    resp = get(shunt, 'path=d&limit=400&reverse=on')
    assert resp.status_int == 503
    assert b'the local listing failed' in resp.body
    assert 'local listing failed' in shunt.logger.text('error')


def _authorize(req):
    """A stand-in for tempauth: the token 'good' may read; anybody may
    read a container whose read ACL is public."""
    if req.headers.get('X-Auth-Token') == 'good' or req.acl == '.r:*':
        return None
    return Response(status=401, body=b'Unauthorized')


@pytest.mark.parametrize('token,public,status', [
    ('good', False, 200), ('bad', False, 401), (None, True, 200),
    (None, False, 401)])
def test_bucket_asked_ahead_only_when_allowed(tmp_path, s3, token, public,
                                             status):
    archive(s3, ['b'])
    remote = SlowRemote(0.2)
    local = ContainerApp(['a'], delay=0.2, public=public)
    shunt = make_shunt(tmp_path, local, remote)
    headers = {'X-Auth-Token': token} if token else {}
    req = Request.blank('/v1/AUTH_a/c?format=json', headers=headers,
                        environ={'swift.authorize': _authorize})
    start = time.monotonic()
    resp = req.get_response(shunt)
    elapsed = time.monotonic() - start
    assert resp.status_int == status
    if status == 200:
        assert names_of(resp) == ['a', 'b']
        # asked ahead: both waits overlap
        assert remote.started[0] - start < 0.1 and elapsed < 0.35
    else:
        # refused by Swift: the bucket is never called
        assert remote.started == [] and resp.body == b'Unauthorized'


@pytest.mark.parametrize('value', [
    '2026-12-01T23:55:53.000Z', '2026-12-01T23:55:53Z',
    '2026-12-01T23:55:53.123456Z', 'Tue, 01 Dec 2026 23:55:53 GMT',
    '2026-12-01T23:55:53+01:00', 1700000000])
def test_timestamps_read_as_botocore_reads_them(value):
    import botocore.utils

    from shunt.core.remote import parse_timestamp
    ours, theirs = parse_timestamp(value), botocore.utils.parse_timestamp(
        value)
    assert ours == theirs and ours.timestamp() == theirs.timestamp()
    assert ours.tzinfo is not None
