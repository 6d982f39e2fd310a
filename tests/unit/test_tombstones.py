from swift.common.utils import Timestamp

from shunt.core import tombstones

ETAG = '"0123456789abcdef0123456789abcdef"'


def test_marked_timestamp_round_trip():
    ts = tombstones.delete_timestamp(1700000000.5, ETAG)
    assert ts.timestamp == 1700000000.5
    assert tombstones.is_marked(Timestamp(ts.internal))
    assert not tombstones.is_marked(Timestamp(1700000000.5))
    assert Timestamp(ts.internal) > Timestamp(1700000000.5)


def test_unmarked_tombstone_never_hides():
    # an archiver deleting its local copy after upload
    assert not tombstones.hides(Timestamp(1700000100).internal,
                                1700000000, ETAG)
    assert not tombstones.hides(None, 1700000000, ETAG)
    assert not tombstones.hides('garbage', 1700000000, ETAG)


def test_marked_tombstone_hides_older_copies_only():
    ts = tombstones.delete_timestamp(1700000100.25, ETAG).internal
    assert tombstones.hides(ts, 1700000000, '"other"')
    assert tombstones.hides(ts, 1700000100, ETAG)          # same second
    assert not tombstones.hides(ts, 1700000100, '"new"')   # re-archived
    assert not tombstones.hides(ts, 1700000101, ETAG)      # later
    no_etag = tombstones.delete_timestamp(1700000100.25).internal
    assert tombstones.hides(no_etag, 1700000100, '"any"')


def test_archived_visible_checks_expiry():
    headers = {'last-modified': 'Tue, 14 Nov 2023 22:13:20 GMT',
               'etag': ETAG, 'x-amz-meta-x-delete-at': '1700000500'}
    assert tombstones.archived_visible(None, headers, 1700000499)
    assert not tombstones.archived_visible(None, headers, 1700000500)
    marked = tombstones.delete_timestamp(1700000100, ETAG).internal
    assert not tombstones.archived_visible(marked, headers, 1700000000)


def test_parse_never_raises():
    for value in ('1e400', 'inf', '-1', '9' * 400, 'x_y', '1.0_zz', None):
        assert tombstones.parse(value) is None or \
            isinstance(tombstones.parse(value), Timestamp)
