"""Rows found up to date by a listing of the bucket (shunt.daemon.listed):
the merge against a real ContainerBroker, the walker's use of it against
real DBs (the row handler's side is in test_daemon_rows)."""

import datetime
import hashlib

import pytest
from swift.common.utils import Timestamp, encode_timestamps

from shunt.daemon import listed
from tests.unit.daemon_support import T0, Clock, Cluster, FakeHandler

ETAG = hashlib.md5(b'data').hexdigest()


@pytest.fixture(autouse=True)
def hash_suffix(monkeypatch):
    from swift.common import utils
    monkeypatch.setattr(utils, 'HASH_PATH_SUFFIX', b'unit-test-suffix')


def at(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


def entry(etag=ETAG, size=4, when=T0 + 60):
    return {'ETag': f'"{etag}"', 'Size': size, 'LastModified': at(when)}


def created(data, meta=None):
    data = Timestamp(data)
    return encode_timestamps(data, data, Timestamp(meta or data))


@pytest.mark.parametrize('listing, row_etag, meta, expected', [
    (entry(), ETAG, None, True),
    (entry(etag='0' * 32), ETAG, None, False),          # other bytes
    (entry(size=5), ETAG, None, False),                 # other size
    (entry(when=T0 + 5), ETAG, None, False),            # within the skew
    (entry(when=T0 + 60), ETAG, T0 + 58, False),        # POST after it
    (entry(when=T0 + 60), ETAG, T0 + 50, True),
    (entry(), f'{ETAG}; slo_etag=x', None, False),      # not a plain MD5
    (entry(etag=f'{ETAG}-2'), ETAG, None, False),       # a multipart copy
    (dict(entry(), LastModified=None), ETAG, None, False),
    (entry(etag=ETAG.upper()), ETAG.upper(), None, True),
])
def test_row_is_copied(listing, row_etag, meta, expected):
    assert listed.row_is_copied(row_etag, 4, created(T0, meta), listing,
                                skew=5) is expected


def swift_entry(when, size=4):
    """A remote Swift listing's row as SwiftRemote.list_objects gives it
    (its last_modified: the Timestamp it was written with, to the µs)."""
    from shunt.core.swift_shapes import listing_datetime
    return {'ETag': f'"{ETAG}"', 'Size': size,
            'LastModified': listing_datetime(Timestamp(when).isoformat)}


@pytest.mark.parametrize('when, meta, size, expected', [
    (T0 + 0.12345, None, 4, True),          # its X-Timestamp kept: equal
    (T0 + 0.12346, None, 4, False),         # 10 µs later: not that version
    (T0 + 0.12344, None, 4, False),         # an older version
    (T0 + 0.12345, T0 + 1.5, 4, False),     # POSTed since
    (T0 + 1.5, T0 + 1.5, 4, True),          # the POST's X-Timestamp kept
    (T0 + 60, None, 4, True),               # a remote with its own clock
    (T0 + 0.12345, None, 0, False),         # 0 bytes: maybe a DLO
])
def test_remote_swift_copy_written_as_the_row_is_listed(when, meta, size,
                                                         expected):
    etag = ETAG if size else hashlib.md5(b'').hexdigest()
    listing = dict(swift_entry(when, size), ETag=f'"{etag}"')
    row = created(T0 + 0.12345, meta)
    assert listed.row_is_copied(etag, size, row, listing, skew=5,
                                native=True) is expected
    # S3 listings: only a copy written after the skew
    assert listed.row_is_copied(etag, size, row, listing, skew=5) is (
        when > T0 + 0.12345 + 5 and (meta or 0) < when - 5)


def test_merge_marks_only_matching_rows_in_range():
    db = [(5, 'a', created(T0), 4, ETAG), (2, 'b', created(T0), 4, ETAG),
          (9, 'c', created(T0), 4, ETAG), (3, 'd', created(T0), 4, 'x' * 32),
          (7, 'é', created(T0), 4, ETAG), (12, 'z', created(T0), 4, ETAG)]
    bucket = [('a', entry()), ('aa', entry()), ('c', entry()),
              ('d', entry()), ('é', entry()), ('z', entry())]
    rows = listed.ListedRows(2, 10).build(iter(db), iter(bucket), skew=5)
    # 'b' is not in the bucket, 'd' has other bytes, 'z' is past the range
    assert [r for r in range(0, 14) if rows.listed(r)] == [5, 7, 9]
    assert rows.count == 3


def test_db_rows_by_name_pages_in_utf8_order(tmp_path):
    db = Cluster(tmp_path, replicas=1)
    names = ['b', 'a', 'é', 'z', 'ab', '\U0001f642', 'gone']
    db.put('c', names)
    db.delete('c', 'gone', T0)
    broker = db.broker(0, 'c')
    broker.get_info()       # the rows put are pending until then
    got = list(listed.db_rows_by_name(broker, page=2))
    # S3 lists keys in the order of their UTF-8 bytes: the same order
    expected = sorted((n for n in names if n != 'gone'),
                      key=lambda n: n.encode('utf-8'))
    assert [r[1] for r in got] == expected
    assert all(r[3] == 10 and r[4] == 'etag-' + r[1] for r in got)


def test_worth_listing():
    assert listed.worth_listing(1000, 5000, 1000)
    assert not listed.worth_listing(999, 10, 1000)
    # 1,000 rows of a container of 1,000,000 objects: 1,000 listing pages
    assert not listed.worth_listing(1000, 10 ** 6, 1000)
    assert listed.worth_listing(10 ** 6, 10 ** 6, 1000)
    assert listed.worth_listing(20 * 50, 50 * 1000, 1000)
    assert not listed.worth_listing(20 * 50, 50 * 1000 + 1, 1000)
    assert not listed.worth_listing(10 ** 6, 10, 0)


# -- the walker -----------------------------------------------------------

def test_walker_lists_once_before_the_rows_and_passes_the_word(tmp_path):
    cluster = Cluster(tmp_path, replicas=1)
    cluster.write_mapping({})
    names = ['n%02d' % i for i in range(10)]
    cluster.put('c', names)
    broker = cluster.broker(0, 'c')
    broker.get_info()
    high = broker.get_max_row()
    handler = FakeHandler()
    handler.listed_rows = listed.ListedRows(-1, high)
    for rowid in (2, 5):
        handler.listed_rows._mark(rowid)
    cluster.daemon(0, handler).run_once()
    assert handler.listings == [(-1, high)]
    by_name = dict(zip(handler.names(), handler.listed, strict=True))
    ids = {r['name']: r['ROWID'] for r in broker.get_items_since(-1, 100)}
    assert {n for n, was in by_name.items() if was} == {
        n for n, rowid in ids.items() if rowid in (2, 5)}
    # the next pass has no row due: no listing
    cluster.daemon(0, handler).run_once()
    assert handler.listings == [(-1, high)]


def test_the_listing_does_not_eat_the_pass_budget(tmp_path):
    cluster = Cluster(tmp_path, replicas=1)
    cluster.write_mapping({})
    names = ['n%02d' % i for i in range(10)]
    cluster.put('c', names)
    clock = Clock(T0)
    handler = FakeHandler()

    def slow_listing(profile, broker, low, label):
        clock.now += 3600       # far past container_time
    handler.list_rows = slow_listing
    assert cluster.daemon(0, handler, clock=clock).run_once() is True
    assert sorted(handler.names()) == sorted(names)


def test_no_listing_while_verification_waits_for_rows_to_age(tmp_path):
    cluster = Cluster(tmp_path, replicas=3)
    cluster.write_mapping({})
    cluster.put('c', ['n%02d' % i for i in range(30)], when=T0 - 100)
    handler = FakeHandler()
    cluster.daemon(0, handler, clock=Clock(T0)).run_once()
    # the first pass had its own rows due
    assert len(handler.listings) == 1
    # the next: its own rows are done, the others' not old enough to be
    # verified (verification_slack)
    cluster.daemon(0, handler, clock=Clock(T0 + 60)).run_once()
    assert len(handler.listings) == 1
    # once they are, their verification lists again
    cluster.daemon(0, handler, clock=Clock(T0 + 7200)).run_once()
    assert len(handler.listings) == 2
