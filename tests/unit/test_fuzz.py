"""Bad input, property-based: whatever a client sends to a mapped container
and whatever an operator writes into the mapping file, the shunt answers
as Swift would or refuses cleanly; never a 500, never a traceback.

The middleware runs over Swift's own ``slo`` and a small fake Swift (the
proxy's own checks of paths, timestamps and POST headers, a container
listing with Swift's parameter checks, a local object, 404 for the rest),
with ``swift.cache`` set and moto's in-process S3 holding a few archived
objects; one mapped container points at an endpoint that refuses
connections. Every response body is read to its end, as the proxy would;
an exception out of the middleware is what Swift's ``catch_errors`` would
turn into a 500.

``CLOUD_SHUNT_FUZZ_EXAMPLES=5000`` (default 200) hunts longer.
"""

import json
import os
import socket
import string

import boto3
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from swift.common.constraints import (
    check_delete_headers,
    check_metadata,
    check_utf8,
)
from swift.common.middleware import slo
from swift.common.request_helpers import validate_container_params
from swift.common.swob import (
    HTTPBadRequest,
    HTTPException,
    HTTPPreconditionFailed,
    Request,
    Response,
    wsgi_to_str,
)

from shunt.core.config import ConfigError, load_mappings
from shunt.core.layout import key_prefix, manifest_key, object_key
from shunt.proxy import splice
from shunt.proxy.middleware import CloudShuntMiddleware
from tests.fuzz_common import TRACEBACK_WORDS, xml_unsafe
from tests.unit.helpers import FakeLogger, FakeSwift
from tests.unit.test_splice import Oracle

BUCKET = 'fuzz-bucket'
ARCHIVED = {
    'obj': b'0123456789' * 100,
    'empty': b'',
    'dir/caf\u00e9 %41?#x': b'unicode name',
    'local': b'archived copy of a local name',
}
LOCAL_ROWS = ['a', 'dir/x', 'local', 'z\u00e9']
FUZZ = settings(max_examples=int(os.environ.get('CLOUD_SHUNT_FUZZ_EXAMPLES',
                                                200)),
                deadline=None, database=None,
                # fixed examples in CI; CLOUD_SHUNT_FUZZ_RANDOM=1 hunts
                derandomize=not os.environ.get('CLOUD_SHUNT_FUZZ_RANDOM'),
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


class LocalSwift(FakeSwift):
    """Swift right of the shunt. What the proxy checks before it looks for
    anything is checked as the proxy does, with Swift's own functions: a
    path that is not UTF-8 or holds a NUL is a 412, a bad ``X-Timestamp``
    a 400 (a missing one is set), and an object POST's metadata and
    ``X-Delete-*`` headers are validated (400). Then ``/v1/AUTH_a/c``
    lists ``LOCAL_ROWS`` with Swift's parameter checks,
    ``/v1/AUTH_a/c/local`` exists, and every other path is a 404 (also the
    other mapped containers' listings)."""

    def __call__(self, env, start_response):
        try:
            valid = check_utf8(wsgi_to_str(env['PATH_INFO']))
        except UnicodeError:
            valid = False
        if not valid:
            self.calls.append((env['REQUEST_METHOD'], env['PATH_INFO']))
            return HTTPPreconditionFailed(
                body=b'Invalid UTF8 or contains NULL')(env, start_response)
        req = Request(env)
        try:
            try:
                req.ensure_x_timestamp()
            except OverflowError:
                # Swift 2.38's own proxy answers 500 for "X-Timestamp: 1e309"
                # (Timestamp() raises OverflowError), shunt or not; the
                # fake answers as for any other bad value
                raise HTTPBadRequest(body=b'X-Timestamp should be a UNIX '
                                          b'timestamp float value')
            if req.method == 'POST' and req.path.count('/') >= 4:
                error = check_metadata(req, 'object')
                if error:
                    return error(env, start_response)
                check_delete_headers(req)
        except HTTPException as err:
            return err(env, start_response)
        return super().__call__(env, start_response)

    def __init__(self):
        oracle = Oracle(LOCAL_ROWS)

        def container(req):
            if req.method == 'HEAD':
                return Response(status=204)
            if req.method != 'GET':
                return Response(status=405)
            try:
                validate_container_params(req)
                params = splice.parse_params(req)
            except HTTPException as err:
                return err
            return Response(body=json.dumps(oracle.list(params)).encode(),
                            content_type='application/json',
                            charset='utf-8')
        super().__init__({
            '/v1/AUTH_a/c': container,
            '/v1/AUTH_a/c/local': Response(body=b'local body',
                                           headers={'Etag': 'abc'}),
        })


class FakeMemcache:
    """``swift.cache`` as the proxy's memcache middleware sets it."""

    def __init__(self):
        self.store = {}

    def get(self, key, **kwargs):
        return self.store.get(key)

    def set(self, key, value, time=0, **kwargs):
        self.store[key] = value

    def delete(self, key, **kwargs):
        self.store.pop(key, None)


MEMCACHE = FakeMemcache()


def seed(s3):
    MEMCACHE.store.clear()
    for name, body in ARCHIVED.items():
        s3.put_object(Bucket=BUCKET, Key=object_key('AUTH_a', 'c', name),
                      Body=body, Metadata={'color': 'blue'})
        s3.put_object(Bucket=BUCKET, Key=name, Body=body)


def _refused_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def shunt(tmp_path_factory):
    path = tmp_path_factory.mktemp('fuzz') / 'm.json'
    base = {'account': 'AUTH_a', 'aws_bucket': BUCKET,
            'aws_identity': 'id', 'aws_secret': 'fuzz-secret',
            'merge_namespaces': True}
    path.write_text(json.dumps({'containers': [
        dict(base, container='c'),
        dict(base, container='flat', custom_prefix=''),
        dict(base, container='/*', account='AUTH_all'),
        dict(base, container='down',
             aws_endpoint=f'http://127.0.0.1:{_refused_port()}'),
    ]}))
    with mock_aws():
        s3 = boto3.client('s3', region_name='us-east-1')
        s3.create_bucket(Bucket=BUCKET)
        seed(s3)
        # Swift's own slo sits right of the shunt, as in the pipeline
        app = CloudShuntMiddleware(
            slo.filter_factory({})(LocalSwift()),
            {'conf_file': str(path), 's3_max_attempts': '1',
             'conn_timeout': '1', 'read_timeout': '2',
             # examples must not depend on each other: moto's own 500s
             # (see xml_unsafe) would open the circuit for later ones
             'fail_fast_threshold': '0'},
            logger=FakeLogger())
        # a POST changes the archived copy: every example starts afresh
        app.reseed = lambda: seed(s3)
        yield app


def call(app, method, path_info, query='', headers=None):
    """Run one request through ``app`` as the proxy's WSGI server would;
    ``(status int, headers, body)``; an exception out of ``app`` fails the
    test (that is Swift's 500)."""
    env = Request.blank('/').environ
    env.update({'REQUEST_METHOD': method, 'PATH_INFO': path_info,
                'QUERY_STRING': query, 'swift.trans_id': 'tx-fuzz',
                'swift.cache': MEMCACHE})
    for name, value in (headers or {}).items():
        key = name.upper().replace('-', '_')
        if key not in ('CONTENT_TYPE', 'CONTENT_LENGTH'):
            key = 'HTTP_' + key
        env[key] = value
    got = {}

    def start_response(status, hdrs, exc_info=None):
        got['status'], got['headers'] = status, hdrs
        return lambda data: None
    body_iter = app(env, start_response)
    try:
        body = b''.join(body_iter)
    finally:
        if hasattr(body_iter, 'close'):
            body_iter.close()
    return int(got['status'].split()[0]), dict(got['headers']), body


def assert_clean(status, body, allowed_5xx=()):
    assert status < 500 or status in allowed_5xx, (status, body[:300])
    for word in TRACEBACK_WORDS:
        assert word not in body, body[:300]


# -- strategies ---------------------------------------------------------

def wsgi(data):
    """A WSGI string: bytes as the server hands them over (latin-1)."""
    return data.decode('latin-1')


NASTY = '%?#&=;+/ \\\x00\x01\x7f\u00e9\u2603\U0001F600\ufffe\ud7ff'
text_names = st.text(alphabet=st.characters(
    blacklist_categories=('Cs',)), min_size=1, max_size=60) | \
    st.text(alphabet=NASTY + 'ab', min_size=1, max_size=30)
object_names = st.one_of(
    st.sampled_from(sorted(ARCHIVED)),
    text_names.map(lambda s: wsgi(s.encode('utf-8'))),
    # not UTF-8 at all (the proxy app refuses those, but only right of
    # the shunt)
    st.binary(min_size=1, max_size=40).map(wsgi),
    # very long, valid and not
    st.integers(1000, 3000).map(lambda n: 'x' * n),
    st.integers(1000, 3000).map(lambda n: wsgi(b'\xff' * n)),
).filter(lambda s: s not in ('', '.', '..'))
query_strings = st.one_of(
    st.just(''),
    st.lists(st.tuples(
        st.sampled_from(['format', 'limit', 'marker', 'end_marker',
                         'prefix', 'delimiter', 'reverse', 'path',
                         'multipart-manifest', 'symlink', 'version-id',
                         'temp_url_sig', 'x']),
        st.one_of(st.sampled_from(['json', 'xml', 'plain', '0', '-1', '1',
                                   '10001', 'true', 'get', '/', '']),
                  st.binary(max_size=20).map(wsgi),
                  text_names.map(lambda s: wsgi(s.encode('utf-8')))))).map(
        lambda pairs: '&'.join(f'{k}={v}' for k, v in pairs)),
    st.binary(max_size=60).map(wsgi),
)
header_values = st.one_of(
    st.sampled_from(['', '*', '"abc"', 'W/"x"', 'true', 'false', 'yes',
                     'bytes=0-0', 'bytes=-1', 'bytes=5-', 'bytes=0-1,3-4',
                     'bytes=9999999999999999999-', 'bytes=-0', 'bytes=',
                     'bytes=1-0', 'bytes=0-1,' * 200,
                     'Thu, 01 Jan 1970 00:00:00 GMT',
                     'Mon, 32 Foo 99999 99:99:99 XYZ', '0', '-1',
                     '1e309', 'nan', '99999999999999999999999']),
    st.binary(max_size=80).filter(
        lambda b: b'\r' not in b and b'\n' not in b).map(wsgi),
)
request_headers = st.dictionaries(
    st.sampled_from(['Range', 'If-Match', 'If-None-Match',
                     'If-Modified-Since', 'If-Unmodified-Since',
                     'X-Cloud-Sync-Shunt-Bypass', 'X-Timestamp',
                     'X-Delete-At', 'X-Delete-After', 'X-Object-Meta-Fuzz',
                     'Content-Type', 'Content-Disposition',
                     'X-Newest', 'X-Backend-Storage-Policy-Index']),
    header_values, max_size=5)
containers = st.sampled_from(['c', 'flat', 'down', 'unmapped'])
accounts = st.sampled_from(['AUTH_a', 'AUTH_all'])


# -- requests -----------------------------------------------------------

@FUZZ
@given(method=st.sampled_from(['GET', 'HEAD', 'DELETE', 'POST', 'PUT']),
       account=accounts, container=containers, name=object_names,
       query=query_strings, headers=request_headers)
@example(method='GET', account='AUTH_a', container='c', name='obj',
         query='', headers={'Range': 'bytes=0-1,' * 200})
@example(method='POST', account='AUTH_a', container='c', name='obj',
         query='', headers={'X-Delete-After': '99999999999999999999'})
def test_object_requests(shunt, method, account, container, name, query,
                         headers):
    try:
        status, _, body = call(shunt, method,
                               f'/v1/{account}/{container}/{name}', query,
                               headers)
    finally:
        if method in ('POST', 'DELETE'):
            shunt.reseed()
    assert_clean(status, body, allowed_5xx=(
        (503,) if container == 'down' else ()))


@FUZZ
@given(account=accounts, container=containers, query=query_strings,
       headers=request_headers)
@example(account='AUTH_a', container='c', query='path=\xff', headers={})
@example(account='AUTH_a', container='c', query='limit=1&reverse=on',
         headers={})
def test_container_listings(shunt, account, container, query, headers):
    status, _, body = call(shunt, 'GET', f'/v1/{account}/{container}', query,
                           headers)
    assert_clean(status, body, allowed_5xx=(
        (503,) if container == 'down' or xml_unsafe(query) else ()))
    if status == 200 and account == 'AUTH_a' and container == 'c' and \
            'format=' not in query:
        # a spliced JSON listing stays JSON
        assert isinstance(json.loads(body), list)


@FUZZ
@given(path=st.binary(max_size=80).map(wsgi),
       method=st.sampled_from(['GET', 'HEAD', 'DELETE', 'POST', 'PUT',
                               'OPTIONS', 'COPY']))
@example(path='/v1/AUTH_a/c/', method='GET')
@example(path='/v1/AUTH_a//x', method='DELETE')
@example(path='/v1//c/x', method='GET')
@example(path='/v1.0/AUTH_a/c/obj', method='HEAD')
def test_any_path(shunt, path, method):
    status, _, body = call(shunt, method, path)
    assert_clean(status, body)


def test_post_of_metadata_bytes_that_are_not_utf8(shunt):
    """Swift keeps object metadata as sent, UTF-8 or not (it checks UTF-8
    only for account and container metadata); an archived object does the
    same (was a 500: UnicodeEncodeError in headers.encode_meta_value)."""
    try:
        status, _, body = call(shunt, 'POST', '/v1/AUTH_a/c/obj', '',
                               {'X-Object-Meta-Raw': '\x80\xff',
                                'X-Object-Meta-Text': 'caf\xc3\xa9'})
        assert status == 202, body
        status, headers, _ = call(shunt, 'HEAD', '/v1/AUTH_a/c/obj')
        assert status == 200
        assert headers['X-Object-Meta-Raw'] == '\x80\xff'
        assert headers['X-Object-Meta-Text'] == 'caf\xc3\xa9'
    finally:
        shunt.reseed()


def test_delete_of_a_name_swift_refuses(shunt):
    # the proxy answers 412 "Invalid UTF8 or contains NULL"; the shunt
    # must leave such names to Swift (it used to ask the bucket first)
    status, _, body = call(shunt, 'DELETE', '/v1/AUTH_a/c/\xff')
    assert status == 412


def test_delete_with_an_overflowing_timestamp(shunt):
    """``Timestamp("1e309")`` raises OverflowError, not ValueError (was a
    500, fixed in tombstones.parse)."""
    try:
        status, _, body = call(shunt, 'DELETE', '/v1/AUTH_a/c/obj', '',
                               {'X-Timestamp': '1e309'})
    finally:
        shunt.reseed()
    assert_clean(status, body)


def test_archived_object_still_served(shunt):
    """The fuzzing above reads only: the fixtures are intact, and the
    harness sees archived objects (so the properties were not vacuous)."""
    status, headers, body = call(shunt, 'GET', '/v1/AUTH_a/c/obj', '',
                                 {'Range': 'bytes=0-3'})
    assert (status, body) == (206, b'0123')
    status, _, body = call(shunt, 'GET', '/v1/AUTH_all/any/x')
    assert status == 404
    status, _, body = call(shunt, 'GET', '/v1/AUTH_a/c', 'format=json')
    names = [row.get('name') for row in json.loads(body)]
    assert 'obj' in names and 'a' in names


# -- mapping files ------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() |
    st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) |
    st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)
PROFILE_KEYS = ('account', 'container', 'aws_bucket', 'aws_identity',
                'aws_secret', 'aws_endpoint', 'aws_session_token',
                'aws_region', 'signature_version', 'addressing_style',
                'custom_prefix', 'protocol', 'merge_namespaces',
                'restore_object', 'propagate_delete')
REQUIRED = ('account', 'container', 'aws_bucket', 'aws_identity',
            'aws_secret', 'merge_namespaces')
field_values = st.one_of(
    json_values,
    st.sampled_from(['AUTH_a', 'c', '/*', 'a/b', '', 'http://x',
                     'https://s3.example.com/', 'ftp://x', 's3', 's3v4',
                     'swift', 'path', 'virtual', 'true', 'no', 'maybe',
                     '\ud800', 'x\udcff', '\x00']),
    st.booleans())
profiles = st.one_of(
    st.fixed_dictionaries(
        {'account': st.sampled_from(['AUTH_a', 'AUTH_b']),
         'container': st.sampled_from(['c', 'd', '/*']),
         'aws_bucket': st.just('b'), 'aws_identity': st.just('i'),
         'aws_secret': st.just('s'), 'merge_namespaces': st.just(True)},
        optional={k: field_values for k in PROFILE_KEYS
                  if k not in REQUIRED}),
    st.dictionaries(st.sampled_from(PROFILE_KEYS) | st.text(max_size=8),
                    field_values, max_size=8),
    json_values)
documents = st.one_of(
    st.fixed_dictionaries({'containers': st.lists(profiles, max_size=5)}),
    st.dictionaries(st.sampled_from(['containers', 'x']), json_values,
                    max_size=2),
    json_values)


def _check_document(tmp_path, raw):
    path = str(tmp_path / 'mapping.json')
    with open(path, 'wb') as fp:
        fp.write(raw)
    try:
        mappings = load_mappings(path)
    except ConfigError as err:
        assert str(err).startswith(f'{path}: ')
        return
    # what validated is usable: every key the middleware will compute
    for profile in mappings:
        profile.describe()
        key_prefix(profile.account, profile.container,
                   profile.custom_prefix).encode('utf-8')
        object_key(profile.account, profile.container, 'o',
                   profile.custom_prefix).encode('utf-8')
        manifest_key(profile.account, profile.container, 'o',
                     profile.custom_prefix).encode('utf-8')
        profile.aws_bucket.encode('utf-8')
        assert mappings.lookup(profile.account, profile.container if
                               not profile.all_containers else 'x')


@FUZZ
@given(document=documents)
@example(document={'containers': [dict(
    account='AUTH_\ud800', container='c', aws_bucket='b', aws_identity='i',
    aws_secret='s', merge_namespaces=True)]})
@example(document={'containers': [dict(
    account='AUTH_a', container='/*', aws_bucket='b', aws_identity='i',
    aws_secret='s', merge_namespaces=True, custom_prefix='\udcff')]})
def test_mapping_documents(tmp_path_factory, document):
    tmp_path = tmp_path_factory.mktemp('doc')
    # JSON with lone surrogates written as \\u escapes, as a file may hold
    _check_document(tmp_path, json.dumps(document).encode('utf-8'))


@FUZZ
@given(raw=st.one_of(
    st.binary(max_size=200),
    st.text(alphabet=string.printable + '\u00e9\ud800', max_size=200).map(
        lambda s: s.encode('utf-8', 'surrogatepass')),
    documents.map(lambda d: json.dumps(d).encode('utf-16')),
    st.integers(1, 100000).map(lambda n: b'[' * n + b']' * n),
    st.integers(1, 100000).map(
        lambda n: b'{"containers": ' + b'[' * n + b']' * n + b'}'),
))
@example(raw=b'\xef\xbb\xbf{"containers": []}')
@example(raw=b'{"containers": [{"account": "\\ud800"}]}')
def test_mapping_bytes(tmp_path_factory, raw):
    assume(raw)
    _check_document(tmp_path_factory.mktemp('raw'), raw)
