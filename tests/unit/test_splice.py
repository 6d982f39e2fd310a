"""The pure listing logic, checked against Swift's own container broker.

The oracle is ``ContainerBroker.list_objects_iter`` over the union of both
stores: what Swift would list if every archived object were local. The
local side is the broker's listing of the local names alone (what the
proxy answers); the archived side is :class:`shunt.proxy.splice.RemoteScan`
over
a fake bucket that answers ListObjects like AWS, or like moto (every
CommonPrefix on every page, NextMarker unusable).
"""

import datetime
import os
import tempfile

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from swift.common.swob import HTTPException, Request
from swift.common.utils import Timestamp
from swift.container.backend import ContainerBroker

from shunt.proxy import splice

LOCATION = 'http://s3.example.com;bucket;kp/'
WHEN = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000,
                         tzinfo=datetime.timezone.utc)


# -- the oracle -----------------------------------------------------------

class Oracle:
    """A throw-away container DB holding ``names``."""

    def __init__(self, names):
        self.dir = tempfile.TemporaryDirectory()
        self.broker = ContainerBroker(os.path.join(self.dir.name, 'c.db'),
                                      account='a', container='c')
        self.broker.initialize(Timestamp.now().internal, 0)
        for name in names:
            self.broker.put_object(name, Timestamp.now().internal, 3,
                                   'text/plain', 'local-etag',
                                   storage_policy_index=0)
        self.broker._commit_puts()

    def close(self):
        self.dir.cleanup()

    def list(self, params, **overrides):
        """Rows as the container server sends them (JSON dicts)."""
        args = dict(limit=params.limit, marker=params.marker,
                    end_marker=params.end_marker or None,
                    prefix=params.prefix or None,
                    delimiter=params.delimiter or None, path=params.path,
                    reverse=params.reverse)
        args.update(overrides)
        rows = []
        for name, _, size, ctype, etag in (
                r[:5] for r in self.broker.list_objects_iter(
                    args.pop('limit'), args.pop('marker'),
                    args.pop('end_marker'), args.pop('prefix'),
                    args.pop('delimiter'), **args)):
            if ctype is None:
                rows.append({'subdir': name})
            else:
                rows.append({'bytes': size, 'hash': etag, 'name': name,
                             'content_type': ctype,
                             'last_modified': '2024-01-01T00:00:00.000000'})
        return rows

    def raw_page(self, query):
        """One page of Swift's listing for a :class:`LocalScan` query."""
        params = splice.ListingParams(
            limit=int(query['limit']), marker=query.get('marker', ''),
            end_marker=query.get('end_marker', ''),
            prefix=query.get('prefix', ''))
        return self.list(params)


def keys(rows):
    return [('d' if 'subdir' in r else 'o', splice.row_key(r)) for r in rows]


# -- the fake bucket ------------------------------------------------------

class FakeBucket:
    """ListObjects (v1) over a sorted key list."""

    def __init__(self, names, key_prefix='kp/', flavour='aws'):
        self.key_prefix = key_prefix
        self.keys = sorted(key_prefix + n for n in names)
        self.flavour = flavour
        self.calls = []

    def item(self, key):
        return {'Key': key, 'Size': 7, 'ETag': '"remote-etag"',
                'LastModified': WHEN}

    def list_objects(self, prefix='', marker='', delimiter='',
                     max_keys=1000):
        self.calls.append(dict(prefix=prefix, marker=marker,
                               delimiter=delimiter, max_keys=max_keys))
        keys = [k for k in self.keys if k.startswith(prefix)]

        def folded(key):
            if not delimiter:
                return None
            end = key.find(delimiter, len(prefix))
            return key[:end + len(delimiter)] if end >= 0 else None

        if self.flavour == 'moto':
            contents = [k for k in keys if folded(k) is None and k > marker]
            prefixes = sorted({folded(k) for k in keys} - {None})
            truncated = len(contents) > max_keys
            return {'IsTruncated': truncated,
                    'Contents': [self.item(k) for k in contents[:max_keys]],
                    'CommonPrefixes': [{'Prefix': p} for p in prefixes],
                    'NextMarker': 'an-opaque-token'}
        entries, seen = [], set()
        for key in keys:
            if key <= marker:
                continue
            group = folded(key)
            if group is None:
                entries.append((key, False))
            elif group not in seen and group != marker:
                seen.add(group)
                entries.append((group, True))
            if len(entries) > max_keys:
                break
        truncated = len(entries) > max_keys
        entries = entries[:max_keys]
        resp = {'IsTruncated': truncated,
                'Contents': [self.item(k) for k, cp in entries if not cp],
                'CommonPrefixes': [{'Prefix': k} for k, cp in entries if cp]}
        if truncated and delimiter:
            resp['NextMarker'] = entries[-1][0]
        return resp


def spliced(params, local_names, remote_names, flavour='aws', kp='kp/',
            page_keys=3, local_page=3, sidecars=()):
    """The spliced page and the union's oracle page."""
    union = Oracle(set(local_names) | set(remote_names))
    local = Oracle(local_names)
    try:
        bucket = FakeBucket(list(remote_names) + list(sidecars), kp,
                            flavour)
        scan = splice.RemoteScan(bucket.list_objects, params, kp, LOCATION,
                                 reserved=bool(sidecars),
                                 page_keys=page_keys)
        if params.path is None:
            rows = splice.spliced_rows(params, local.list(params), scan)
        else:
            local_scan = splice.LocalScan(local.raw_page, params,
                                          page_size=local_page)
            rows = splice.spliced_path_rows(params, local_scan, scan)
        return rows, union.list(params), bucket
    finally:
        union.close()
        local.close()


def check_rows(rows, expected, local_names, remote_names):
    assert keys(rows) == keys(expected)
    for row in rows:
        key = splice.row_key(row)
        here, there = key in local_names, key in remote_names
        if 'subdir' in row:
            continue
        if here:
            assert row['hash'] == 'local-etag'
            if there:
                assert row['content_location'] == [LOCATION, 'swift']
            else:
                assert 'content_location' not in row
        else:
            assert row == {
                'bytes': 7, 'hash': 'remote-etag', 'name': key,
                'content_type': 'application/octet-stream',
                'last_modified': '2024-05-06T07:08:09.123000',
                'content_location': [LOCATION]}


# -- strategies -----------------------------------------------------------

ALPHABET = ['a', 'b', '/', '-', '0', '.', '\u00e9', '\U0001f600']
name_st = st.text(st.sampled_from(ALPHABET), min_size=1, max_size=5)
bound_st = st.text(st.sampled_from(ALPHABET), max_size=4)


@st.composite
def cases(draw, path=False):
    local = draw(st.sets(name_st, max_size=14))
    remote = draw(st.sets(name_st, max_size=14))
    both = sorted(local | remote)

    # names, the subdirs they fold into, bits of them, names just past
    near = sorted({n[:i] for n in both for i in range(1, len(n) + 1)} |
                  {n + '0' for n in both})

    def bound():
        if near and draw(st.integers(0, 3)):
            return draw(st.sampled_from(near))
        return draw(bound_st)

    params = splice.ListingParams(
        limit=draw(st.one_of(st.just(10000), st.integers(0, 7))),
        marker=bound() if draw(st.booleans()) else '',
        end_marker=bound() if draw(st.booleans()) else '',
        prefix=bound() if draw(st.booleans()) else '',
        delimiter=draw(st.sampled_from(['', '/', '/', '-', 'a/', 'b'])),
        path=draw(st.sampled_from(['', 'a', 'a/', '/', 'a/b', '\u00e9']))
        if path else None,
        reverse=draw(st.booleans()))
    return params, local, remote


# SPLICE_EXAMPLES=5000 for a longer hunt
HYPOTHESIS = settings(max_examples=int(os.environ.get('SPLICE_EXAMPLES', 300)),
                      deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])


# -- the property: splice == listing of the union -------------------------

@HYPOTHESIS
@given(cases(), st.sampled_from(['aws', 'moto']),
       st.sampled_from(['kp/', '']), st.integers(1, 4))
@example((splice.ListingParams(delimiter='/', limit=4),
          {'a', 'unicod\u00e9'}, {'a/b', 'unicod\u00e9', 'z/y', 'zzzzz'}),
         'aws', 'kp/', 3)
def test_merge_equals_union(case, flavour, kp, page_keys):
    params, local, remote = case
    rows, expected, _ = spliced(params, local, remote, flavour, kp,
                                page_keys)
    check_rows(rows, expected, local, remote)


@HYPOTHESIS
@given(cases(path=True), st.sampled_from(['aws', 'moto']),
       st.integers(1, 4), st.integers(1, 4))
def test_path_equals_union(case, flavour, page_keys, local_page):
    params, local, remote = case
    rows, expected, _ = spliced(params, local, remote, flavour, 'kp/',
                                page_keys, local_page)
    check_rows(rows, expected, local, remote)


@HYPOTHESIS
@given(cases(path=False), st.sets(st.sampled_from(
    ['.manifests/' + 'ab' * 32 + '.swift_slo_manifest',
     '.manifests/' + 'cd' * 32 + '.swift_slo_manifest',
     '.manifests/x']), min_size=1), st.sampled_from(['aws', 'moto']),
    st.sampled_from(['', '.', 'm', '/', 's/']))
def test_sidecars_never_listed(case, sidecars, flavour, delimiter):
    params, local, remote = case
    params.delimiter = delimiter or params.delimiter
    remote = {n for n in remote if not n.startswith('.manifests/')}
    rows, expected, _ = spliced(params, local, remote, flavour, 'cp/',
                                sidecars=sidecars)
    check_rows(rows, expected, local, remote)


# -- edge cases, by name ---------------------------------------------------

AROUND_SLASH = ['a', 'a-b', 'a.b', 'a/', 'a//b', 'a/b', 'a/b/', 'a/b/c',
                'a/b0', 'a0', 'a0/', 'b']


@pytest.mark.parametrize('query', [
    {}, {'delimiter': '/'}, {'delimiter': '/', 'prefix': 'a/'},
    {'delimiter': '/', 'marker': 'a/'}, {'delimiter': '/', 'marker': 'a/b'},
    {'delimiter': '/', 'end_marker': 'a/b'},
    {'delimiter': '/', 'reverse': True, 'end_marker': 'a/'},
    {'delimiter': '/', 'reverse': True, 'marker': 'a/b/c'},
    {'path': 'a'}, {'path': 'a/b'}, {'path': 'a', 'reverse': True},
    {'path': 'a', 'marker': 'a/b/'}, {'path': ''},
    {'delimiter': '-'}, {'delimiter': 'b/'}, {'prefix': 'a/', 'limit': 2},
])
@pytest.mark.parametrize('split', [0, 1, 2])
def test_names_around_slash(query, split):
    params = splice.ListingParams(**query)
    # spread the names over the stores three ways, with overlaps
    local = set(AROUND_SLASH[split::3]) | {'a/b'}
    remote = set(AROUND_SLASH) - set(AROUND_SLASH[split::2]) | {'a/b'}
    for flavour in ('aws', 'moto'):
        rows, expected, _ = spliced(params, local, remote, flavour)
        check_rows(rows, expected, local, remote)


def test_path_cross_store_quirks():
    # Swift hides "a/b0" after a directory with contents (forward) and
    # the directory object "a/b/" (reverse) even across stores
    params = splice.ListingParams(path='a')
    rows, expected, _ = spliced(params, {'a/b0', 'a/b/'}, {'a/b/c'})
    assert keys(rows) == keys(expected) == [('o', 'a/b/')]
    params = splice.ListingParams(path='a', reverse=True)
    rows, expected, _ = spliced(params, {'a/b0', 'a/b/'}, {'a/b/c'})
    assert keys(rows) == keys(expected) == [('o', 'a/b0')]


def test_unicode_order_is_code_point_order():
    names = ['\u00e9', 'z', '\U0001f600', '\uff01', 'e\u0301']
    params = splice.ListingParams()
    rows, expected, _ = spliced(params, names[:2], names[2:])
    assert [r['name'] for r in rows] == sorted(names)
    check_rows(rows, expected, set(names[:2]), set(names[2:]))


def test_object_named_like_a_subdir():
    # the local object "a/" and the archived "a/x" are one subdir "a/"
    params = splice.ListingParams(delimiter='/')
    rows, _, _ = spliced(params, {'a/'}, {'a/x', 'b'})
    assert rows == [{'subdir': 'a/', 'content_location': [LOCATION,
                                                          'swift']},
                    dict(rows[1], name='b')]
    params = splice.ListingParams(delimiter='/', prefix='a/')
    rows, expected, _ = spliced(params, {'a/'}, {'a/x', 'a/y/z'})
    assert keys(rows) == keys(expected) == [
        ('o', 'a/'), ('o', 'a/x'), ('d', 'a/y/')]


# -- S3 call pattern -------------------------------------------------------

def test_forward_pages_are_lazy():
    remote = ['o%04d' % i for i in range(50)]
    params = splice.ListingParams(limit=7)
    rows, _, bucket = spliced(params, set(), remote, page_keys=5)
    assert [r['name'] for r in rows] == remote[:7]
    assert [c['max_keys'] for c in bucket.calls] == [5, 5]
    assert bucket.calls[0] == {'prefix': 'kp/', 'marker': '',
                               'delimiter': '', 'max_keys': 5}
    assert bucket.calls[1]['marker'] == 'kp/o0004'


def test_first_page_asks_for_limit():
    params = splice.ListingParams(limit=3, marker='m', prefix='p',
                                  delimiter='-')
    scan = splice.RemoteScan(None, params, '3a/AUTH_a/c/', LOCATION)
    assert scan.first_request() == {
        'prefix': '3a/AUTH_a/c/p', 'marker': '3a/AUTH_a/c/m',
        'delimiter': '-', 'max_keys': 3}
    assert splice.RemoteScan(None, splice.ListingParams(
        end_marker='a', marker='b'), '', LOCATION).first_request() is None


@pytest.mark.parametrize('qs', ['prefix=%00', 'prefix=a%00',
                                'path=%00', 'delimiter=%00',
                                'delimiter=a%00&prefix=o'])
def test_nul_in_prefix_or_delimiter_is_listed_as_swift_does(qs):
    # no object name holds a NUL: a prefix with one lists nothing (without
    # asking the store), a delimiter with one splits nothing (the store is
    # asked without it: moto's server fails on it)
    params = params_of(qs + '&format=json')
    remote, local = ['o1', 'o2', 'p/q'], ['o3']
    rows, expected, bucket = spliced(params, local, remote)
    check_rows(rows, expected, local, remote)
    assert all('\x00' not in call['delimiter'] and
               '\x00' not in call['prefix'] for call in bucket.calls)
    if qs.startswith(('prefix', 'path')):
        assert rows == [] and bucket.calls == []


def test_reverse_starts_at_end_marker_and_floor():
    remote = ['o%04d' % i for i in range(40)]
    params = splice.ListingParams(limit=3, reverse=True, end_marker='o0030')
    rows, _, bucket = spliced(params, set(), remote, page_keys=100)
    assert [r['name'] for r in rows] == ['o0039', 'o0038', 'o0037']
    assert bucket.calls[0]['marker'] == 'kp/o0030'
    # local rows fill the page: the archived scan starts near the lowest
    local = {'o%04d' % i + 'x' for i in range(20, 40)}
    params = splice.ListingParams(limit=5, reverse=True)
    rows, expected, bucket = spliced(params, local, remote, page_keys=4)
    assert keys(rows) == keys(expected)
    assert len(bucket.calls) < 10 / 4 + 2


def test_boundary_subdir_probe_only_when_bound_is_inside_a_group():
    remote = ['a/x', 'b/y', 'c']
    params = splice.ListingParams(delimiter='/', marker='a/')
    rows, expected, bucket = spliced(params, set(), remote)
    assert keys(rows) == keys(expected) == [('d', 'b/'), ('o', 'c')]
    assert len(bucket.calls) == 1
    params = splice.ListingParams(delimiter='/', marker='a/y')
    rows, expected, bucket = spliced(params, set(), remote, flavour='moto')
    assert keys(rows) == keys(expected) == [('d', 'b/'), ('o', 'c')]
    assert bucket.calls[1] == {'prefix': 'kp/a/', 'marker': 'kp/a/y',
                               'delimiter': '', 'max_keys': 10}
    params = splice.ListingParams(delimiter='/', marker='a/m')
    rows, expected, bucket = spliced(params, set(), remote, flavour='moto')
    assert keys(rows) == keys(expected) == [
        ('d', 'a/'), ('d', 'b/'), ('o', 'c')]


def test_stalled_bucket_raises():
    class Stuck:
        def list_objects(self, **kw):
            return {'IsTruncated': True, 'Contents': [
                {'Key': 'kp/a', 'Size': 1, 'ETag': '"x"',
                 'LastModified': WHEN}]}
    scan = splice.RemoteScan(Stuck().list_objects, splice.ListingParams(),
                             'kp/', LOCATION)
    with pytest.raises(splice.RemoteListingStalled):
        list(scan.rows())


# -- rows ------------------------------------------------------------------

def test_row_mapping():
    page = {'Contents': [
        {'Key': 'kp/b%2Fc', 'Size': 5, 'ETag': '"abc-2"',
         'LastModified': datetime.datetime(
             2024, 1, 2, 5, 4, 5, tzinfo=datetime.timezone(
                 datetime.timedelta(hours=2)))},
        {'Key': 'kp/', 'Size': 0, 'ETag': '"d41d"', 'LastModified': WHEN},
        {'Key': 'kp/a', 'Size': 1}],
        'CommonPrefixes': [{'Prefix': 'kp/a-'}]}
    rows = splice.page_rows(page, 'kp/', 'L')
    assert rows == [
        ('a', {'bytes': 1, 'hash': '', 'name': 'a',
               'content_type': 'application/octet-stream',
               'last_modified': '', 'content_location': ['L']}),
        ('a-', {'subdir': 'a-', 'content_location': ['L']}),
        # percent signs are kept: botocore has already decoded the key
        ('b%2Fc', {'bytes': 5, 'hash': 'abc-2', 'name': 'b%2Fc',
                   'content_type': 'application/octet-stream',
                   'last_modified': '2024-01-02T03:04:05.000000',
                   'content_location': ['L']})]


def test_remote_location():
    assert splice.remote_location('AWS S3', 'b', '3a/AUTH_a/c/') == \
        'AWS S3;b;3a/AUTH_a/c/'
    assert splice.remote_location('http://h:1', 'b', '') == 'http://h:1;b'


def test_just_below():
    for name in ('a', 'a0', 'b\x00', '\ue000', '\U0001f600x'):
        below = splice.just_below(name)
        assert below < name
        below.encode('utf-8')
    assert splice.just_below('a\x00') == 'a'
    assert splice.RESERVED_SKIP < '.manifests0'
    assert splice.RESERVED_SKIP > '.manifests/' + 'f' * 64


# -- parameters ------------------------------------------------------------

def params_of(qs):
    return splice.parse_params(Request.blank('/v1/a/c?' + qs))


def test_params_defaults_and_values():
    p = params_of('format=json')
    assert (p.limit, p.marker, p.end_marker, p.prefix, p.delimiter, p.path,
            p.reverse) == (10000, '', '', '', '', None, False)
    p = params_of('limit=5&marker=m&end_marker=e&prefix=p&delimiter=%2F'
                  '&reverse=on')
    assert (p.limit, p.lower, p.upper, p.base, p.delimiter, p.reverse) == \
        (5, 'e', 'm', 'p', '/', True)
    assert params_of('path=').base == ''
    assert params_of('path=a/b//&prefix=x').base == 'a/b/'
    assert params_of('path=%C3%A9').base == '\u00e9/'
    # Swift's reading: no number means the default, odd booleans are false
    assert params_of('limit=abc').limit == 10000
    assert params_of('limit=-1').limit == 10000
    assert params_of('limit=0').limit == 0
    assert params_of('reverse=maybe').reverse is False


@pytest.mark.parametrize('qs,status,body', [
    ('limit=10001', 412, b'Maximum limit is 10000'),
    ('marker=%FF', 400, b'"marker" parameter not valid UTF-8'),
    ('end_marker=%C3', 400, b'"end_marker" parameter not valid UTF-8'),
    ('prefix=%FE', 400, b'"prefix" parameter not valid UTF-8'),
    ('delimiter=%FF', 400, b'"delimiter" parameter not valid UTF-8'),
    ('path=%FF', 400, b'"path" parameter not valid UTF-8'),
    ('reverse=%FF', 400, b'"reverse" parameter not valid UTF-8'),
])
def test_bad_params(qs, status, body):
    with pytest.raises(HTTPException) as caught:
        params_of(qs)
    assert caught.value.status_int == status
    assert caught.value.body == body
