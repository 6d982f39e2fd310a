"""Which archived rows a listing leaves out after deletes (issue 12): the
window of doubt around the container's last delete, the local tombstone
per row, and a remote HEAD only for rows whose decision rests on content."""

import datetime
import types

import pytest
from swift.common.utils import Timestamp

from shunt.core import tombstones
from shunt.core.config import Profile
from shunt.core.layout import key_prefix
from shunt.core.remote import RemoteError
from shunt.proxy import splice
from shunt.proxy.listing import ListingContext
from shunt.proxy.writes import HIDDEN_SYSMETA
from tests.unit.helpers import FakeLogger

KP = key_prefix('AUTH_a', 'c')
ETAG = '"0123456789abcdef0123456789abcdef"'
DELETED = 1700000100.591


class FakeRemote:
    def __init__(self, heads=None):
        self.heads = heads or {}
        self.calls = []

    def head_object(self, profile, key):
        self.calls.append(key)
        head = self.heads.get(key)
        if head is None:
            raise RemoteError('not_found', 'gone')
        return {'ResponseMetadata': {'HTTPHeaders': head}}


def context(remote, tombstones_by_name, hidden_at, skew=5.0):
    profile = Profile(index=0, account='AUTH_a', container='c',
                      aws_bucket='b', aws_identity='i', aws_secret='s')
    shunt = types.SimpleNamespace(app=None, remote=remote,
                                  logger=FakeLogger(),
                                  remote_clock_skew=skew)
    ctx = ListingContext(shunt, profile)
    ctx.env = {'PATH_INFO': '/v1/AUTH_a/c'}
    ctx._response_headers = [] if hidden_at is None else [
        (HIDDEN_SYSMETA, hidden_at)]
    looked_up = []

    def local_tombstone(item):
        name = item['Key'][len(KP):]
        looked_up.append(name)
        return tombstones_by_name.get(name)
    ctx._local_tombstone = local_tombstone
    return ctx, looked_up


def row(name, when, etag=ETAG):
    return {'Key': KP + name, 'ETag': etag,
            'LastModified': datetime.datetime.fromtimestamp(
                when, datetime.timezone.utc)}


def hidden(page):
    return sorted(item['Key'][len(KP):] for item in page['Contents']
                  if item.get(splice.HIDDEN))


def test_nothing_ever_hidden_costs_nothing():
    remote = FakeRemote()
    ctx, looked_up = context(remote, {}, None)
    page = {'Contents': [row('a', DELETED)]}
    ctx._mark_hidden(page)
    assert hidden(page) == [] and looked_up == [] and remote.calls == []


@pytest.mark.parametrize('archived', [
    DELETED - 100,                 # clearly older
    float(int(DELETED)),           # truncated (moto)
    float(int(DELETED) + 1),       # rounded up past the delete (s3api)
    DELETED + 5.9,                 # a store clock 5 s ahead
    DELETED - 5.9,                 # ... or behind
])
def test_rows_up_to_the_window_are_checked(archived):
    mark = tombstones.delete_timestamp(DELETED, ETAG).internal
    remote = FakeRemote({KP + 'same': {}, KP + 'other': {}})
    ctx, looked_up = context(remote, {'same': mark, 'other': mark}, mark)
    page = {'Contents': [row('same', archived),
                         row('other', archived, '"other"')]}
    ctx._mark_hidden(page)
    in_doubt = abs(archived - DELETED) <= tombstones.window(5.0)
    # the copy the delete saw is hidden; other content only when clearly
    # archived before the delete
    assert hidden(page) == (['same'] if in_doubt else ['other', 'same'])
    assert sorted(looked_up) == ['other', 'same']
    # the remote is asked only inside the window of doubt
    assert sorted(remote.calls) == (
        [KP + 'other', KP + 'same'] if in_doubt else [])


def test_rows_beyond_the_window_are_not_checked():
    mark = tombstones.delete_timestamp(DELETED, ETAG).internal
    remote = FakeRemote()
    ctx, looked_up = context(remote, {'late': mark}, mark)
    page = {'Contents': [row('late', DELETED + 6.1)]}
    ctx._mark_hidden(page)
    assert hidden(page) == [] and looked_up == [] and remote.calls == []
    # a larger remote_clock_skew widens the window
    ctx, looked_up = context(remote, {'late': mark}, mark, skew=10)
    ctx._mark_hidden(page)
    assert hidden(page) == ['late'] and looked_up == ['late']


def test_recorded_swift_timestamp_decides_in_the_window():
    mark = tombstones.delete_timestamp(DELETED, ETAG).internal
    meta = 'x-amz-meta-swift-timestamp'
    remote = FakeRemote({
        KP + 'older': {meta: Timestamp(DELETED - 0.2).internal},
        KP + 'newer': {meta: Timestamp(DELETED + 0.2).internal},
        KP + 'unreadable': {meta: 'garbage'},
    })
    names = ('older', 'newer', 'unreadable', 'vanished')
    ctx, _ = context(remote, {name: mark for name in names}, mark)
    page = {'Contents': [row(name, DELETED + 0.4, '"other"')
                         for name in names]}
    ctx._mark_hidden(page)
    # older than the delete on Swift's clock: hidden whatever the content;
    # newer: visible even with the same content; unreadable: by content;
    # gone from the bucket since it was listed: hidden
    assert hidden(page) == ['older', 'vanished']
    same = {'Contents': [row('newer', DELETED + 0.4)]}
    ctx._mark_hidden(same)
    assert hidden(same) == []


def test_unmarked_tombstones_never_hide_nor_cost_a_remote_call():
    mark = tombstones.delete_timestamp(DELETED, ETAG).internal
    archiver = tombstones.archive_timestamp(Timestamp(DELETED)).internal
    remote = FakeRemote()
    ctx, _ = context(remote, {'a': archiver, 'b': None}, mark)
    page = {'Contents': [row('a', DELETED), row('b', DELETED)]}
    ctx._mark_hidden(page)
    assert hidden(page) == [] and remote.calls == []


def test_remote_failure_in_the_window_fails_the_page():
    mark = tombstones.delete_timestamp(DELETED, ETAG).internal

    class Down(FakeRemote):
        def head_object(self, profile, key):
            raise RemoteError('connection', 'down')
    ctx, _ = context(Down(), {'a': mark}, mark)
    with pytest.raises(RemoteError):
        ctx._mark_hidden({'Contents': [row('a', DELETED)]})
