"""What the sync daemon does with one row of a mapped container's DB.

A row is an object PUT, POST or DELETE as the container DB recorded it.
:meth:`RowHandler.handle` takes it with the profile of its container and
answers an :class:`Outcome`, or raises :class:`RowLater` (not eligible
yet: try again at ``retry_at``) or :class:`RowFailed` (logged as one ERROR
line, counted, retried later; ``permanent`` when retrying cannot help until
the object changes).

Object rows, in order:

1. ``exclude_pattern`` matches the name (from its start): **skipped**.
2. The row's last PUT/POST is younger than ``copy_after``: **later**.
   A row the bucket listing showed up to date (sync mode; see
   :mod:`shunt.daemon.listed`): **noop**, without a request.
3. The S3 key cannot be written (longer than 1024 UTF-8 bytes with the
   prefix): **failed** (``name``, permanent).
4. Local ``HEAD`` (with the row's storage policy, through the internal
   client: no shunt, no SLO/DLO middleware) — a ``GET`` when the row's
   size is at most ``small_object_size``: its headers serve as the HEAD's
   and its body (a small object's bytes, checked against its Etag before
   it is sent; or an SLO manifest) is kept, so a small object costs one
   local request, not two (a body larger than that after all is dropped
   and streamed later). 404: **gone** if Swift's
   tombstone (or expiry) is not older than the row, else **failed**
   (``local``: quarantined or lost; retried). A replica older than the row
   answered: **later**. Symlinks are **skipped**; objects the internal
   client cannot decrypt **fail** (``invalid``). The same holds when a
   later GET of the object (or SLO manifest) answers 404 although the
   HEAD found it (another replica archived it meanwhile, or a client
   deleted it): HEAD again, **gone** when a tombstone not older than the
   row (or a newer version, whose own row follows) is found, else
   **failed** (``local``).
5. ``selection_criteria`` do not match the HEAD's headers: **skipped**.
   A criterion is ``{"AND": [...]}``, ``{"OR": [...]}``, ``{"NOT": c}`` or
   ``{"<header>": "<value>"}`` (header names and values compared without
   regard to case; a missing header never matches).
6. ``HEAD`` of the bucket copy: the same version (size, Etag, metadata,
   ``swift-timestamp``): **noop**; the same bytes with other metadata (a
   POST): copied onto itself with the new metadata, **metadata**; a later
   Swift version in the bucket: **skipped** (a newer row follows).
   A *fresh* row (an own row written after this node's walk of the DB
   began: new to this node, see :mod:`shunt.daemon.walker`) of a small
   object read in step 4 skips this HEAD when the store honours
   ``If-None-Match`` (``conditional_put``, see
   :mod:`shunt.daemon.transfer`): it is written with ``If-None-Match: *``,
   which the store refuses (412) when the key exists, atomically — no copy
   is ever overwritten unseen, which a HEAD then a PUT cannot promise —
   and a refused row goes through this HEAD as any other.
7. Otherwise **uploaded** (:mod:`shunt.daemon.transfer`; SLOs:
   :mod:`shunt.daemon.upload`; what is written: :mod:`shunt.daemon.bucket`):
   plain objects and DLO manifests (their own body, with
   ``x-object-manifest``) as one ``PutObject`` with ``Content-MD5``
   (multipart above 5 GiB); SLOs as a multipart upload plus the manifest
   sidecar. A multipart upload is aborted on any failure, stale
   uploads of the key (opened before this process started and over a
   minute ago: a crashed daemon's) are aborted before a new one starts,
   and every other upload of the key the store initiated no later than
   the new one is aborted before it completes (a daemon killed and
   restarted within the minute leaves nothing open).
8. Archive mode (``retain_local: false``): a ``HEAD`` verifies the bucket
   copy (size, Etag, ``swift-timestamp``), then the local copy is deleted
   with ``X-Timestamp`` = :func:`shunt.core.tombstones.archive_timestamp`
   of the archived version: **archived**, or **kept** when Swift answers
   409 (a newer PUT or POST exists; its own row archives it). After an
   SLO's manifest was deleted, and unless ``retain_local_segments``, its
   segments are deleted too, but only those that belong to that object
   alone by swiftclient's conventions (in ``<container>_segments`` or
   ``<container>+segments`` of the same account, named
   ``<object name>/...``), still have the manifest's Etag, and with each
   delete guarded by the segment's own timestamp; every other segment is
   kept (a segment shared with another manifest, in another container,
   or rewritten since). A crash between the manifest's delete and its
   segments' leaves those segments in place. A DLO's segments are never
   deleted (they are objects of their own).
   After a single ``PutObject`` (every plain object up to 5 GiB) the
   verification is that PUT's own answer, not a HEAD: it was sent with
   ``Content-MD5`` and the metadata naming this version, and its Etag is
   checked to be the local one, so the store held exactly this version
   (size, bytes, ``swift-timestamp``) when it answered. A HEAD a moment
   later would only add a check against another writer overwriting the
   key in between, and that check cannot be complete (the same write
   could land just after the HEAD, before the local delete); what guards
   the local copy is the delete that loses to every newer local version
   (a newer version's own upload and delete follow), and in this process
   rows of one object are handled one at a time (an older version's
   upload never lands after a newer one's). ``verify_with_head = true``
   keeps the HEAD. Multipart uploads, copies in place and up-to-date
   copies are verified by a HEAD (the last one by the HEAD of step 6).

Profiles with ``"protocol": "swift"`` (another Swift cluster): steps 1-5
and the archive delete of step 8 are the same; the remote side (6, 7 and
the verification) is :mod:`shunt.daemon.swift_transfer`'s, what is written
there :mod:`shunt.daemon.swift_bucket`'s (native SLOs and DLOs, metadata
and ``X-Timestamp`` kept), and so are their delete rows.

Delete rows: the daemon's own archive tombstones are **skipped** (never
propagated). With ``propagate_delete`` true or absent, the bucket copy
(and an SLO's sidecar) is deleted, **remote_deleted**, unless it is newer
than the tombstone (its ``swift-timestamp``, else its ``Last-Modified``):
then it is kept, **skipped**. A copy without ``swift-timestamp`` (another
tool's) is judged by its ``Last-Modified``, the store's clock: deleted
when older than the delete by more than ``remote_clock_skew`` + 1 s,
kept when newer by as much; in between, deleted only when the tombstone
is the shunt's and recorded this copy's Etag, else kept (a copy that may
have been written after the delete is never deleted; see
:func:`delete_reaches`).

StatsD (the logger's prefix): ``uploaded``, ``bytes``, ``metadata``,
``noop``, ``archived``, ``kept``, ``remote_deleted``, ``skipped``,
``gone``, ``failures.<kind>``, ``stale_uploads_aborted``.

Rows of one object (``account/container/name``) are handled one at a
time per process, in the order they started; rows of other objects in
parallel (``concurrency``).

Options: ``verify_with_head`` (default false: see step 8),
``list_check_rows`` (default 1000: a pass with at least this many rows
due ahead of its pointers lists the bucket first, see
:mod:`shunt.daemon.listed`; 0: never),
``stale_retry_delay`` (seconds before a row a stale replica
answered is tried again, default 60), ``small_object_size`` (bytes, default
262144: objects up to this size are read with one GET and sent from
memory, so at most ``concurrency`` times this is held; 0 disables it for
all but empty objects), ``remote_clock_skew`` (seconds the
store's clock may run apart from Swift's, default 5, as the filter's);
the upload options are
:mod:`shunt.daemon.transfer`'s.
"""

import contextlib
import enum
import time

import eventlet
from swift.common.http import (
    HTTP_CONFLICT,
    HTTP_NOT_FOUND,
    is_success,
)
from swift.common.internal_client import UnexpectedResponse
from swift.common.swob import wsgi_to_str
from swift.common.utils import (
    Timestamp,
    close_if_possible,
    config_true_value,
    decode_timestamps,
)

from shunt.core import headers as shunt_headers
from shunt.core import tombstones
from shunt.core.layout import manifest_key, object_key
from shunt.core.manifest import (
    SLO_ETAG_META,
    mpu_etag,
)
from shunt.core.remote import RemoteError
from shunt.core.tombstones import (
    DEFAULT_CLOCK_SKEW,
    archive_timestamp,
    is_archiver_tombstone,
    is_marked,
    window,
)
from shunt.daemon import bucket, upload
from shunt.daemon.listed import build as list_bucket
from shunt.daemon.listed import worth_listing
from shunt.daemon.swift_transfer import SwiftTransfer
from shunt.daemon.transfer import POLICY_INDEX, Transfer

MAX_KEY_BYTES = 1024
# S3 error codes that mean the key itself cannot be written
NAME_CODES = frozenset(('KeyTooLongError', 'InvalidURI', 'InvalidObjectName'))
TOO_LARGE_CODES = frozenset(('EntityTooLarge', 'MetadataTooLarge'))
SEGMENT_CONTAINER_SUFFIXES = ('_segments', '+segments')
# default small_object_size
SMALL_SIZE = 256 * 1024
# default list_check_rows
LIST_CHECK_ROWS = 1000


class Outcome(enum.Enum):
    UPLOADED = 'uploaded'
    METADATA = 'metadata'
    NOOP = 'noop'
    ARCHIVED = 'archived'
    KEPT = 'kept'
    REMOTE_DELETED = 'remote_deleted'
    SKIPPED = 'skipped'
    GONE = 'gone'


class RowLater(Exception):
    """Not a failure: the row is not eligible before ``retry_at``."""

    def __init__(self, message, retry_at):
        super().__init__(message)
        self.retry_at = retry_at


class RowFailed(Exception):
    """A failed row (``kind``: ``remote``, ``local``, ``name``,
    ``too_large``, ``invalid``, ``verify``)."""

    def __init__(self, kind, message, permanent=False):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.permanent = permanent


def matches(criteria, headers):
    """Does an object with these headers (lower-case names, native values)
    match ``selection_criteria`` (None or ``{}`` matches everything)?"""
    if not criteria:
        return True
    ((key, operand),) = criteria.items()
    if key == 'AND':
        return all(matches(item, headers) for item in operand)
    if key == 'OR':
        return any(matches(item, headers) for item in operand)
    if key == 'NOT':
        return not matches(operand, headers)
    value = headers.get(key.lower())
    return value is not None and value.lower() == operand.lower()


def key_problem(key):
    """Why S3 cannot take this key (a sentence), or None."""
    try:
        size = len(key.encode('utf-8'))
    except UnicodeEncodeError:
        return 'its name is not valid UTF-8'
    if size > MAX_KEY_BYTES:
        return f'its S3 key has {size} bytes, more than S3\'s 1024'
    return None


def row_timestamps(row):
    """(data, meta) Timestamps of a row."""
    data, _ctype, meta = decode_timestamps(row['created_at'])
    return data, meta


def local_version(headers):
    """The Swift version (Timestamp, internal precision) of a local
    response."""
    value = headers.get('X-Backend-Timestamp') or headers.get('X-Timestamp')
    return Timestamp(value)


def delete_reaches(head, deleted_at, skew=DEFAULT_CLOCK_SKEW):
    """Does a delete at ``deleted_at`` (the tombstone's Timestamp) apply
    to the bucket copy ``head`` (a ``HeadObject`` answer)?

    A copy recording its ``swift-timestamp`` is decided on Swift's clock:
    yes exactly when that version is older than the delete. Any other
    copy (written by another tool) only has the store's ``Last-Modified``
    (another clock, whole seconds truncated or rounded up): older than
    the window of doubt (:func:`shunt.core.tombstones.window`) yes, newer
    no; inside it the content decides when the tombstone is the shunt's
    and recorded the Etag of the copy it deleted (yes when it is this
    copy's), and otherwise the copy is kept: a copy that cannot be told
    apart from one written after the delete is never deleted."""
    theirs = bucket.remote_version(head)
    if theirs is not None:
        return theirs < deleted_at
    modified = head.get('LastModified')
    if modified is None:
        return False
    modified = modified.timestamp()
    margin = window(skew)
    if modified < deleted_at.timestamp - margin:
        return True
    if modified > deleted_at.timestamp + margin or \
            not is_marked(deleted_at) or \
            not deleted_at.offset & tombstones._HAS_ETAG:
        return False
    return tombstones.hides(deleted_at, modified, head.get('ETag'),
                            skew=skew)


def owned_segment(account, container, obj, seg):
    """Does this manifest segment belong to ``obj`` alone by swiftclient's
    naming conventions?"""
    return seg.plain and seg.container in tuple(
        container + s for s in SEGMENT_CONTAINER_SUFFIXES) and \
        seg.obj.startswith(obj + '/')


class Local:
    """A local object version as the internal client showed it."""

    def __init__(self, name, headers, manifest=None, manifest_body=None,
                 body=None):
        self.name = name
        self.headers = headers
        # a small object's bytes, read with its headers (else None: read
        # when uploaded)
        self.body = body
        self.version = local_version(headers)
        self.manifest = manifest
        self.manifest_body = manifest_body
        if manifest is not None:
            self.size = manifest.size
            self.parts_reason = upload.part_plan(manifest)
            # the S3 Etag of a part-per-segment upload; a re-chunked copy
            # records the SLO's Swift Etag instead
            self.etag = mpu_etag([s.hash for s in manifest.segments]) \
                if self.parts_reason is None else None
            self.alt = (SLO_ETAG_META, manifest.etag)
        else:
            self.size = int(headers.get('Content-Length') or 0)
            self.etag = shunt_headers.bare_etag(headers.get('Etag'))
            self.alt = (bucket.SWIFT_ETAG_META, self.etag)

    @property
    def is_slo(self):
        return config_true_value(self.headers.get('X-Static-Large-Object'))


class RowHandler:
    """Handles rows for the daemon; one per process, shared by its green
    threads. ``swift`` is an InternalClient, ``remote`` an S3Remote."""

    def __init__(self, conf, logger, swift, remote):
        self.logger = logger
        self.swift = swift
        self.remote = remote
        self.transfer = Transfer(conf, logger, swift, remote)
        # the remote side of protocol "swift" profiles
        self.native = SwiftTransfer(conf, logger, swift, remote,
                                    self.transfer)
        self.retry_delay = float(conf.get('stale_retry_delay', 60))
        self.small_size = int(conf.get('small_object_size', SMALL_SIZE))
        self.clock_skew = float(conf.get('remote_clock_skew',
                                         DEFAULT_CLOCK_SKEW))
        self.verify_with_head = self.transfer.verify_with_head
        self.list_check_rows = int(conf.get('list_check_rows',
                                            LIST_CHECK_ROWS))
        # the objects whose rows are in flight: (account, container, name)
        # -> an Event sent when that row is done
        self._busy = {}

    def warm(self, profiles):
        """Build the remote clients of these profiles now (at a pass's
        start), not on the first row; a profile whose client cannot be
        built is left to fail on its rows."""
        try:
            self.remote.warm(profiles)
        except Exception as err:
            self.logger.warning('Could not prepare the remote clients: %s',
                                err)

    @contextlib.contextmanager
    def _exclusive(self, profile, name):
        """Rows of one object are handled one at a time in this process
        (in the order they started): a row's upload never overlaps
        another of the same key, so an older version's upload can never
        land after a newer one's."""
        key = (profile.account, profile.container, name)
        while key in self._busy:
            self._busy[key].wait()
        done = self._busy[key] = eventlet.event.Event()
        try:
            yield
        finally:
            del self._busy[key]
            done.send()

    # -- the row ------------------------------------------------------------

    def list_rows(self, profile, broker, low, label):
        """:class:`shunt.daemon.listed.ListedRows` for a walk of the rows
        of ``broker`` after ``low`` (up to its last row now) when one
        listing of the bucket is worth it (sync mode,
        ``list_check_rows``), else None (also when the listing fails: the
        rows get their HEAD)."""
        if not profile.retain_local or not self.list_check_rows:
            return None
        try:
            # get_info first: it moves the DB's pending rows into it
            count = broker.get_info()['object_count']
            high = broker.get_max_row()
            if not worth_listing(high - max(low, 0), count,
                                 self.list_check_rows):
                return None
            found = list_bucket(broker, self.remote, profile, low, high,
                                self.clock_skew)
        except Exception as err:
            self.logger.warning('%s: could not list the bucket (%s); every '
                                'row is checked with a HEAD', label,
                                getattr(err, 'message', None) or err)
            return None
        self.logger.info('%s: %d of rows %d-%d up to date by the bucket '
                         'listing (%d requests)', label, found.count,
                         low + 1, high, found.requests)
        return found

    def handle(self, profile, row, now=None, fresh=False, listed=False):
        """``fresh``: the walker's word that this node never handled the
        row (an own row written after its walk began): a small object is
        then written with ``If-None-Match: *`` instead of a HEAD first
        where the store honours it. ``listed``: the bucket listing showed
        the row up to date (:meth:`list_rows`)."""
        now = time.time() if now is None else now
        try:
            with self._exclusive(profile, row['name']):
                outcome = self._handle(profile, row, now, fresh, listed)
        except RowLater:
            raise
        except Exception as err:
            failed = self._as_failure(err)
            self.logger.increment('failures.%s' % failed.kind)
            self.logger.error(
                'Row failed (%s%s): %s/%s/%r (%s): %s', failed.kind,
                ', permanent' if failed.permanent else '', profile.account,
                profile.container, row['name'], profile.describe(),
                failed.message)
            if failed is err:
                raise
            raise failed from err
        self.logger.increment(outcome.value)
        return outcome

    def _as_failure(self, err):
        if isinstance(err, RowFailed):
            return err
        if isinstance(err, upload.Failed):
            return RowFailed(err.kind, str(err), err.permanent)
        if isinstance(err, RemoteError):
            if err.code in NAME_CODES:
                return RowFailed('name', f'S3 refused the key: {err.code}',
                                 permanent=True)
            if err.code in TOO_LARGE_CODES:
                return RowFailed('too_large', f'S3 refused it: {err.code}',
                                 permanent=True)
            if err.code in ('BadDigest', 'InvalidDigest'):
                return RowFailed('local', 'the bytes read do not match the '
                                 'local Etag (corrupt replica?)')
            return RowFailed('remote', f'{err.kind}: {err.message}')
        if isinstance(err, UnexpectedResponse):
            return RowFailed('local', str(err))
        self.logger.exception('Unexpected error handling a row')
        return RowFailed('local', f'{type(err).__name__}: {err}')

    def _handle(self, profile, row, now, fresh=False, listed=False):
        name = row['name']
        pattern = profile.exclude_pattern
        if pattern is not None and pattern.pattern and pattern.match(name):
            self.logger.debug('Skipping excluded object %r', name)
            return Outcome.SKIPPED
        if row['deleted']:
            return self._delete_row(profile, row)
        data_ts, meta_ts = row_timestamps(row)
        if profile.copy_after and now < meta_ts.timestamp + \
                profile.copy_after:
            raise RowLater('not yet eligible (copy_after)',
                           meta_ts.timestamp + profile.copy_after)
        if listed and profile.retain_local:
            return Outcome.NOOP
        key = object_key(profile.account, profile.container, name,
                         profile.custom_prefix)
        problem = key_problem(key)
        if problem:
            raise RowFailed('name', f'cannot be archived: {problem}',
                            permanent=True)
        policy = str(row['storage_policy_index'])
        fetch = 0 <= (row.get('size') or 0) <= self.small_size
        got = self._head_local(profile, name, policy, data_ts, fetch=fetch)
        if got is None:
            return Outcome.GONE
        headers, body = got
        if local_version(headers) < meta_ts:
            raise RowLater('a replica older than the row answered',
                           now + self.retry_delay)
        if any(h.lower().startswith('x-object-sysmeta-symlink-')
               for h in headers):
            self.logger.info('Not archiving symlink %r', name)
            return Outcome.SKIPPED
        if any(h.lower().startswith('x-object-sysmeta-crypto-')
               for h in headers):
            raise RowFailed('invalid', 'encrypted: the internal client '
                            'pipeline cannot decrypt it', permanent=True)
        if not matches(profile.selection_criteria, {
                k.lower(): wsgi_to_str(v) for k, v in headers.items()}):
            self.logger.debug('Not archiving %r: selection criteria do not '
                              'match', name)
            return Outcome.SKIPPED
        local = Local(name, headers, body=body)
        try:
            if local.is_slo:
                local = self._get_slo(profile, name, policy, meta_ts, now,
                                      local)
            if profile.protocol == 'swift':
                outcome, head = self.native.sync(profile, key, local,
                                                 policy, fresh)
                outcome = Outcome(outcome)
            else:
                outcome, head = self._sync(profile, key, local, policy,
                                           fresh)
        except upload.LocalGone:
            # deleted since the HEAD (another replica archived it, a
            # client deleted it): ends like a HEAD 404 does
            if self._gone_since(profile, name, policy, data_ts,
                                local.version):
                return Outcome.GONE
            raise
        if outcome is Outcome.SKIPPED or profile.retain_local:
            return outcome
        if profile.protocol == 'swift':
            self.native.verify(profile, key, head)
        else:
            if head is None:
                head = self.transfer.remote_head(profile, key)
            self._verify(key, local, head)
        return self._delete_local(profile, local, policy)

    # -- local side ---------------------------------------------------------

    def _local(self, method, path, headers, acceptable=(2,)):
        return self.swift.make_request(method, path, headers, acceptable)

    def _path(self, account, container, obj):
        return self.swift.make_path(account, container, obj)

    def _head_local(self, profile, name, policy, data_ts, fetch=False):
        """``(headers, body)`` of the local object (None when it is gone
        since the row). ``fetch``: a GET instead of the HEAD, whose body
        is kept when it is at most ``small_object_size`` bytes (a plain
        object's bytes, or an SLO's manifest), else dropped (None)."""
        resp = self._local('GET' if fetch else 'HEAD', self._path(
            profile.account, profile.container, name), {
            POLICY_INDEX: policy}, (2, HTTP_NOT_FOUND))
        if resp.status_int != HTTP_NOT_FOUND:
            body = self._small_body(resp) if fetch else None
            return resp.headers, body
        close_if_possible(resp.app_iter)
        tombstone = resp.headers.get('X-Backend-Timestamp')
        if tombstone and Timestamp(tombstone) >= data_ts:
            return None
        raise RowFailed('local', 'not found on any object server (lost or '
                        'quarantined?)')

    def _small_body(self, resp):
        try:
            length = int(resp.headers.get('Content-Length'))
        except (TypeError, ValueError):
            length = None
        if length is None or length > self.small_size:
            # the row's size was stale: the body is streamed later
            close_if_possible(resp.app_iter)
            return None
        try:
            body = b''.join(resp.app_iter)
        finally:
            close_if_possible(resp.app_iter)
        if len(body) != length:
            raise RowFailed('local', f'the local GET ended after '
                            f'{len(body)} of {length} bytes')
        return body

    def _get_slo(self, profile, name, policy, meta_ts, now, first):
        if first.body is not None:
            # the manifest came with the object's first GET
            manifest, body = self.transfer.parse_manifest(first.body)
            return Local(name, first.headers, manifest, body)
        resp = self._local('GET', self._path(
            profile.account, profile.container, name), {
            POLICY_INDEX: policy}, (2, HTTP_NOT_FOUND))
        if resp.status_int == HTTP_NOT_FOUND:
            close_if_possible(resp.app_iter)
            raise upload.LocalGone('the SLO manifest answered 404 (removed '
                                   'since it was listed)')
        if not config_true_value(resp.headers.get('X-Static-Large-Object')):
            close_if_possible(resp.app_iter)
            raise RowFailed('local', 'the SLO manifest changed while it was '
                            'read')
        manifest, body = self.transfer.read_manifest(resp)
        local = Local(name, resp.headers, manifest, body)
        if local.version < meta_ts:
            raise RowLater('a replica older than the row answered',
                           now + self.retry_delay)
        return local

    def _gone_since(self, profile, name, policy, data_ts, version):
        """After a GET answered 404 where the HEAD found ``version``: is
        the row's version gone for good (a tombstone not older than the
        row, or a newer version whose own row follows)?"""
        try:
            headers = self._head_local(profile, name, policy, data_ts)
        except RowFailed:
            return False
        return headers is None or local_version(headers) > version

    # -- bucket side --------------------------------------------------------

    def _sync(self, profile, key, local, policy, fresh=False):
        """Bring the bucket copy up to date; ``(outcome, head)``: the
        HEAD when it showed the copy up to date, or what a single
        ``PutObject`` wrote (its answer verified it), else None."""
        try:
            meta, content_type, extra = bucket.object_params(
                local.headers, local.version, slo=local.is_slo)
        except bucket.BadMetadata as err:
            raise RowFailed('invalid', str(err), permanent=True)
        if fresh and local.body is not None and local.manifest is None and \
                self.transfer.writes_if_absent(profile):
            # new here: written only if the key is absent (atomically, no
            # HEAD first); a key that exists is compared as usual
            try:
                sent = self.transfer.upload_plain(
                    profile, key, local, policy, meta, content_type, extra,
                    if_absent=True)
            except RemoteError as err:
                if not upload.precondition_failed(err):
                    raise
            else:
                return self._put_done(local, meta, sent)
        head = self.transfer.remote_head(profile, key)
        state = bucket.remote_state(head, local.version, local.size,
                                    local.etag, meta, content_type, extra,
                                    local.alt)
        if state == 'newer':
            self.logger.info('Not archiving %r: the bucket holds a later '
                             'version (%s)', local.name,
                             bucket.remote_version(head).internal)
            return Outcome.SKIPPED, head
        if state in ('same', 'metadata'):
            if state == 'metadata':
                key_, value = local.alt
                if head.get('Metadata', {}).get(key_) == value:
                    meta[key_] = value
                self.remote.copy_in_place(profile, key, head, meta,
                                          content_type, extra)
            if local.manifest is not None and \
                    self.transfer.repair_sidecar(profile, local):
                state = 'metadata'
            if state == 'same':
                return Outcome.NOOP, head
            return Outcome.METADATA, None
        if local.manifest is not None:
            sent = self.transfer.upload_slo(profile, key, local, meta,
                                            content_type, extra)
        else:
            sent = self.transfer.upload_plain(profile, key, local, policy,
                                              meta, content_type, extra)
            if local.size <= self.transfer.max_put_size:
                return self._put_done(local, meta, sent)
        self.logger.update_stats('bytes', sent)
        return Outcome.UPLOADED, None

    def _put_done(self, local, meta, sent):
        """A single ``PutObject`` wrote the version: with Content-MD5, and
        :meth:`Transfer.upload_plain` checked that its answer had the local
        Etag, so the bucket held exactly this version (size, bytes, the
        metadata with ``swift-timestamp``) when it answered; that answer
        stands for the verification HEAD unless ``verify_with_head``."""
        self.logger.update_stats('bytes', sent)
        if self.verify_with_head:
            return Outcome.UPLOADED, None
        return Outcome.UPLOADED, bucket.as_written(local.size, local.etag,
                                                   meta)

    def _verify(self, key, local, head):
        if head is None:
            raise RowFailed('verify', 'the bucket copy is missing after the '
                            'upload')
        if not bucket.same_content(head, local.size, local.etag,
                                   local.alt):
            raise RowFailed('verify', 'the bucket copy does not have the '
                            'local size and Etag')
        if bucket.remote_version(head) != local.version:
            raise RowFailed('verify', 'the bucket copy is not of the local '
                            'version')

    # -- archive: the local delete -------------------------------------------

    def _delete_local(self, profile, local, policy):
        path = self._path(profile.account, profile.container, local.name)
        resp = self._local('DELETE', path, {
            'X-Timestamp': archive_timestamp(local.version).internal,
            POLICY_INDEX: policy}, (2, HTTP_NOT_FOUND, HTTP_CONFLICT))
        if resp.status_int == HTTP_CONFLICT:
            self.logger.info('Kept %r: a newer version exists', local.name)
            return Outcome.KEPT
        self.logger.debug('Archived %r', local.name)
        if local.manifest is not None and is_success(resp.status_int) and \
                not profile.retain_local_segments:
            self._delete_segments(profile, local)
        return Outcome.ARCHIVED

    def _delete_segments(self, profile, local):
        seen, kept, deleted = set(), 0, 0
        for seg in local.manifest.segments:
            if seg.name in seen:
                continue
            seen.add(seg.name)
            if not owned_segment(profile.account, profile.container,
                                 local.name, seg):
                kept += 1
                continue
            try:
                if self._delete_segment(profile.account, seg):
                    deleted += 1
                else:
                    kept += 1
            except Exception as err:
                kept += 1
                self.logger.warning('Could not delete segment %r of %r: %s',
                                    seg.name, local.name, err)
        self.logger.info('Archived SLO %r: %d segment(s) deleted, %d kept',
                         local.name, deleted, kept)

    def _delete_segment(self, account, seg):
        path = self._path(account, seg.container, seg.obj)
        resp = self._local('HEAD', path, {}, (2, HTTP_NOT_FOUND))
        if resp.status_int == HTTP_NOT_FOUND or shunt_headers.bare_etag(
                resp.headers.get('Etag')) != seg.hash:
            return False
        resp = self._local('DELETE', path, {
            'X-Timestamp': archive_timestamp(
                local_version(resp.headers)).internal},
            (2, HTTP_NOT_FOUND, HTTP_CONFLICT))
        return is_success(resp.status_int)

    # -- delete rows ----------------------------------------------------------

    def _delete_row(self, profile, row):
        deleted_at = row_timestamps(row)[0]
        if is_archiver_tombstone(deleted_at):
            return Outcome.SKIPPED
        if profile.propagate_delete is False:
            return Outcome.SKIPPED
        name = row['name']
        key = object_key(profile.account, profile.container, name,
                         profile.custom_prefix)
        if key_problem(key):
            return Outcome.SKIPPED
        if profile.protocol == 'swift':
            return Outcome(self.native.delete_row(
                profile, key, deleted_at, self.clock_skew, owned_segment))
        head = self.transfer.remote_head(profile, key)
        if head is None:
            return Outcome.SKIPPED
        if not delete_reaches(head, deleted_at, self.clock_skew):
            self.logger.info('Not deleting %r from the bucket: its copy '
                             'may be newer than the delete (%s)', name,
                             deleted_at.internal)
            return Outcome.SKIPPED
        self._remote_delete(profile, key)
        if config_true_value(head.get('Metadata', {}).get(
                'x-static-large-object')):
            self._remote_delete(profile, manifest_key(
                profile.account, profile.container, name,
                profile.custom_prefix))
        return Outcome.REMOTE_DELETED

    def _remote_delete(self, profile, key):
        try:
            self.remote.delete_object(profile, key)
        except RemoteError as err:
            if err.kind != 'not_found':
                raise
