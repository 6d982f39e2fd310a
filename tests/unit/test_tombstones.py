import math

import pytest
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
    assert tombstones.hides(ts, 1700000101, ETAG)          # in the window
    assert not tombstones.hides(ts, 1700000200, ETAG)      # later
    no_etag = tombstones.delete_timestamp(1700000100.25).internal
    assert tombstones.hides(no_etag, 1700000100, '"any"')
    assert tombstones.hides(no_etag, 1700000104, '"any"')


DELETED = 1700000100.591
SKEW = 5.0


def _archived_at(upload, precision, skew):
    """The Last-Modified a store whose clock is ``skew`` seconds ahead of
    the proxies' reports for an upload at ``upload`` (proxy clock)."""
    store = upload + skew
    if precision == 'truncated':       # moto
        return float(math.floor(store))
    if precision == 'rounded-up':      # Swift's s3api
        return float(math.ceil(store))
    return math.floor(store * 1000) / 1000.0   # listings of AWS, RGW


PRECISIONS = ('truncated', 'rounded-up', 'milliseconds')
SKEWS = (-SKEW, -2.5, -0.4, 0.0, 0.4, 2.5, SKEW)


@pytest.mark.parametrize('precision', PRECISIONS)
@pytest.mark.parametrize('skew', SKEWS)
@pytest.mark.parametrize('delay', (0.0, 0.3, 0.7, 1.0))
def test_delete_after_archiving_sticks(precision, skew, delay):
    """The issue's reproduction: archived, then deleted 0-1 s later; the
    copy the delete saw stays hidden whatever the store's precision and
    clock (within remote_clock_skew)."""
    upload = DELETED - delay
    ts = tombstones.delete_timestamp(DELETED, ETAG).internal
    archived = _archived_at(upload, precision, skew)
    assert tombstones.hides(ts, archived, ETAG, skew=SKEW)
    # an unknown Etag (the remote HEAD failed) hides too
    unknown = tombstones.delete_timestamp(DELETED).internal
    assert tombstones.hides(unknown, archived, ETAG, skew=SKEW)


@pytest.mark.parametrize('precision', PRECISIONS)
@pytest.mark.parametrize('skew', SKEWS)
@pytest.mark.parametrize('delay', (0.0, 0.3, 0.7, 1.0))
def test_other_content_archived_right_after_the_delete_is_visible(
        precision, skew, delay):
    upload = DELETED + delay
    ts = tombstones.delete_timestamp(DELETED, ETAG).internal
    archived = _archived_at(upload, precision, skew)
    assert not tombstones.hides(ts, archived, '"other"', skew=SKEW)


@pytest.mark.parametrize('precision', PRECISIONS)
@pytest.mark.parametrize('skew', SKEWS)
def test_beyond_the_window_time_decides(precision, skew):
    ts = tombstones.delete_timestamp(DELETED, ETAG).internal
    margin = tombstones.window(SKEW)
    older = _archived_at(DELETED - margin - 2 * SKEW - 1, precision, skew)
    newer = _archived_at(DELETED + margin + 2 * SKEW + 1, precision, skew)
    # clearly older: hidden whatever its content
    assert tombstones.hides(ts, older, ETAG, skew=SKEW)
    assert tombstones.hides(ts, older, '"other"', skew=SKEW)
    # clearly newer: a re-archived copy, visible whatever its content
    assert not tombstones.hides(ts, newer, ETAG, skew=SKEW)
    assert not tombstones.hides(ts, newer, '"other"', skew=SKEW)


def test_window_edges():
    ts = tombstones.delete_timestamp(DELETED, ETAG).internal
    margin = tombstones.window(SKEW)
    assert margin == SKEW + 1
    # the edges themselves are in doubt: content decides
    for edge in (DELETED - margin, DELETED + margin):
        assert tombstones.hides(ts, edge, ETAG, skew=SKEW)
        assert not tombstones.hides(ts, edge, '"other"', skew=SKEW)
    assert tombstones.hides(ts, DELETED - margin - 0.001, '"other"',
                            skew=SKEW)
    assert not tombstones.hides(ts, DELETED + margin + 0.001, ETAG,
                                skew=SKEW)
    # skew 0 still allows for the store's precision
    assert tombstones.window(0) == 1.0
    assert tombstones.hides(ts, math.ceil(DELETED), ETAG, skew=0)
    assert not tombstones.hides(ts, DELETED + 1.01, ETAG, skew=0)
    assert tombstones.window(-3) == 1.0


def test_nothing_archived_at_delete_time():
    # the delete saw no archived copy ('' recorded): one archived inside
    # the window is other content, so visible; before the window, hidden
    ts = tombstones.delete_timestamp(DELETED, '').internal
    assert not tombstones.hides(ts, DELETED + 0.5, ETAG, skew=SKEW)
    assert not tombstones.hides(ts, DELETED - 0.5, ETAG, skew=SKEW)
    assert tombstones.hides(ts, DELETED - 10, ETAG, skew=SKEW)


def test_unknown_archived_time_is_decided_by_content():
    ts = tombstones.delete_timestamp(DELETED, ETAG).internal
    assert tombstones.hides(ts, None, ETAG)
    assert not tombstones.hides(ts, None, '"other"')
    assert not tombstones.hides(Timestamp(DELETED).internal, None, ETAG)


def test_swift_timestamp_decides_on_swifts_clock():
    ts = tombstones.delete_timestamp(DELETED, ETAG).internal
    before = Timestamp(DELETED - 0.00001)
    after = Timestamp(DELETED + 0.00001)
    for archived in (DELETED - 100, DELETED, DELETED + 100, None):
        for etag in (ETAG, '"other"'):
            # the store's time and the content no longer matter
            assert tombstones.hides(ts, archived, etag, before)
            assert tombstones.hides(ts, archived, etag, before.internal)
            assert not tombstones.hides(ts, archived, etag, after)
    # the same second as the delete, by offset: the delete is newer
    assert tombstones.hides(ts, DELETED, ETAG, Timestamp(DELETED))
    assert tombstones.hides(ts, DELETED, ETAG,
                            Timestamp(DELETED, offset=7))
    # never for an unmarked tombstone
    assert not tombstones.hides(Timestamp(DELETED).internal, DELETED,
                                ETAG, before)
    # an unreadable value falls back to the time and content rule
    assert tombstones.hides(ts, DELETED, ETAG, 'garbage')
    assert not tombstones.hides(ts, DELETED, '"other"', 'garbage')


def test_archiver_tombstone_never_hides():
    version = Timestamp(DELETED)
    ts = tombstones.archive_timestamp(version)
    assert tombstones.is_archiver_tombstone(ts)
    assert not tombstones.hides(ts.internal, DELETED - 100, ETAG)
    assert not tombstones.hides(ts.internal, DELETED, ETAG, version)


def test_may_hide_and_in_doubt():
    hidden_at = Timestamp(tombstones.delete_timestamp(DELETED, ETAG))
    margin = tombstones.window(SKEW)
    assert tombstones.may_hide(hidden_at, DELETED - 1000, SKEW)
    assert tombstones.may_hide(hidden_at, DELETED + margin, SKEW)
    assert not tombstones.may_hide(hidden_at, DELETED + margin + 0.01,
                                   SKEW)
    assert tombstones.may_hide(hidden_at, None, SKEW)
    assert not tombstones.may_hide(None, DELETED, SKEW)
    ts = hidden_at.internal
    assert tombstones.in_doubt(ts, DELETED + margin, SKEW)
    assert tombstones.in_doubt(ts, DELETED - margin, SKEW)
    assert tombstones.in_doubt(ts, None, SKEW)
    assert not tombstones.in_doubt(ts, DELETED - margin - 0.01, SKEW)
    assert not tombstones.in_doubt(ts, DELETED + margin + 0.01, SKEW)
    assert not tombstones.in_doubt(Timestamp(DELETED).internal, DELETED,
                                   SKEW)
    assert not tombstones.in_doubt(None, DELETED, SKEW)


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


def test_archived_visible_reads_the_swift_timestamp():
    headers = {'last-modified': 'Tue, 14 Nov 2023 22:15:01 GMT',
               'etag': '"other"'}
    ts = tombstones.delete_timestamp(DELETED, ETAG).internal
    # rounded up past the delete, other content: visible by content
    assert tombstones.archived_visible(ts, headers, DELETED)
    older = dict(headers, **{
        'x-amz-meta-swift-timestamp': Timestamp(DELETED - 0.5).internal})
    assert not tombstones.archived_visible(ts, older, DELETED)
    newer = dict(headers, **{
        'x-amz-meta-swift-timestamp': Timestamp(DELETED + 0.5).internal})
    assert tombstones.archived_visible(ts, newer, DELETED)
    # the window follows the option
    late = {'last-modified': 'Tue, 14 Nov 2023 22:15:10 GMT',
            'etag': ETAG}
    assert tombstones.archived_visible(ts, late, DELETED)
    assert not tombstones.archived_visible(ts, late, DELETED, skew=10)
