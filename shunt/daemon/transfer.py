"""Moving bytes from the local cluster into the bucket for the sync daemon.

:class:`Transfer` holds the daemon's internal client (``swift``) and
S3 client (``remote``) and does every upload a row needs:

* a plain object (or DLO manifest): one ``PutObject`` streamed from one
  local GET, with ``Content-MD5`` (S3 refuses bytes that do not make the
  object's Etag), or sent from memory when the row handler read a small
  object already (its MD5 checked first); above ``max_put_size`` (S3's
  5 GiB) a multipart upload of ``part_size`` parts read by range, each
  part checked against the MD5 of the bytes sent, the object recording
  its Swift Etag in ``swift-etag``;
* an SLO: see :mod:`shunt.daemon.upload` for its two shapes; its sidecar
  (the manifest as Swift stored it, at
  :func:`shunt.core.layout.manifest_key`) is written before the object
  is completed, so an archived SLO never lacks it, and is written again
  when a visit finds it missing;
* multipart uploads run ``slo_workers`` parts at once and are aborted on
  any failure. Before one starts, the key's uploads left by a crashed
  daemon (opened before this process started and over a minute ago, by
  our clock) are aborted; and once its parts are in, just before it is
  completed, every other open upload of the key initiated no later than
  it (by the store's ``Initiated``, so one clock on both sides, whatever
  its precision) is aborted too. That is what clears the upload of a
  daemon killed and restarted within the minute: the restarted one's
  upload is the later one. A peer replica uploading the same key at the
  same moment may lose its upload that way; its Complete fails and its
  row is retried (it is then up to date), and nothing local is deleted
  before the bucket copy is verified. An upload initiated *after* ours
  by a daemon that is then killed is left to the first rule.

Conditional writes: a new small object (see :mod:`shunt.daemon.rows`,
step 6) is written with ``If-None-Match: *`` instead of a HEAD first, but
only to a store seen to honour it: before the first such write, once per
store (endpoint and bucket) and process, the daemon writes an empty
object at ``.cloud-shunt-sync/if-none-match-probe/<random>`` (outside the
layout: no container shows it), writes it again with the header (a store
that honours it answers 412) and deletes it. While that runs, after it
failed (retried 5 minutes later), and for a store that ignores the header
(logged), a HEAD comes first as before. The bucket credentials need the
right to delete for the probe to leave nothing behind.

Options (the ``[cloud-shunt-sync]`` section): ``conditional_put`` (default
true; false: always a HEAD first), ``slo_workers`` (parts
uploaded at once per object, default 10), ``part_size`` (bytes per part
of an object uploaded in fixed parts, default 64 MiB), ``max_put_size``
(largest single ``PutObject``, default 5 GiB).
"""

import hashlib
import time
import uuid

import eventlet
from swift.common.http import is_success
from swift.common.internal_client import UnexpectedResponse
from swift.common.utils import close_if_possible, config_true_value

from shunt.core import headers as shunt_headers
from shunt.core.layout import manifest_key
from shunt.core.manifest import (
    MAX_SIDECAR_BYTES,
    SLO_ETAG_META,
    ManifestError,
    mpu_etag,
    parse_manifest,
)
from shunt.core.remote import RemoteError
from shunt.daemon import bucket, upload
from shunt.daemon.upload import Failed

POLICY_INDEX = 'X-Backend-Storage-Policy-Index'
# the key of the If-None-Match probe: outside the layout (no container
# listing shows it), an empty object deleted at once
PROBE_PREFIX = '.cloud-shunt-sync/if-none-match-probe/'
# seconds before a failed probe is tried again
PROBE_RETRY = 300


def md5_hex(body):
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


class Transfer:
    """Uploads for :class:`shunt.daemon.rows.RowHandler` (one per
    process, shared by its green threads)."""

    def __init__(self, conf, logger, swift, remote):
        self.logger = logger
        self.swift = swift
        self.remote = remote
        self.slo_workers = max(1, int(conf.get('slo_workers', 10)))
        self.part_size = int(conf.get('part_size', 64 * upload.MiB))
        self.max_put_size = int(conf.get('max_put_size',
                                         upload.MAX_PUT_SIZE))
        self.stale_upload_age = 60
        self.started = time.time()
        self.conditional_put = config_true_value(conf.get(
            'conditional_put', True))
        self.verify_with_head = config_true_value(conf.get(
            'verify_with_head', False))
        # per store (endpoint, bucket): True when it refused a PutObject
        # with If-None-Match: * on a key it holds, False when it wrote it
        # (it ignores the header); see probe_if_absent
        self.honours_if_absent = {}
        self._probe_after = {}

    def _local(self, method, path, headers, acceptable=(2,)):
        return self.swift.make_request(method, path, headers, acceptable)

    def _path(self, account, container, obj):
        return self.swift.make_path(account, container, obj)

    def read_manifest(self, resp):
        try:
            body = b''
            for chunk in resp.app_iter:
                body += chunk
                if len(body) > MAX_SIDECAR_BYTES:
                    raise Failed('invalid', 'SLO manifest too large',
                                 permanent=True)
        finally:
            close_if_possible(resp.app_iter)
        return self.parse_manifest(body)

    @staticmethod
    def parse_manifest(body):
        """``(manifest, body)`` of an SLO manifest's bytes."""
        if len(body) > MAX_SIDECAR_BYTES:
            raise Failed('invalid', 'SLO manifest too large', permanent=True)
        try:
            return parse_manifest(body), body
        except ManifestError as err:
            raise Failed('invalid', f'unusable SLO manifest: {err}',
                         permanent=True)

    def open_piece(self, account, piece):
        """The bytes of one :class:`upload.Piece` (an iterator)."""
        if piece.data is not None:
            return [piece.data]
        if not piece.length:
            return []
        headers = {}
        if piece.etag:
            headers['If-Match'] = piece.etag
        if piece.policy is not None:
            headers[POLICY_INDEX] = piece.policy
        if not piece.whole:
            headers['Range'] = 'bytes=%d-%d' % (
                piece.start, piece.start + piece.length - 1)
        path = self._path(account, piece.container, piece.obj)
        try:
            resp = self._local('GET', path, headers, (2, 404, 412, 416))
        except UnexpectedResponse as err:
            raise upload.LocalReadError(str(err))
        if not is_success(resp.status_int):
            close_if_possible(resp.app_iter)
            what = 'segment' if piece.segment else 'object'
            if resp.status_int == 404 and not piece.segment:
                raise upload.LocalGone(
                    f'{what} /{piece.container}/{piece.obj} answered '
                    f'{resp.status} (removed since it was listed)')
            raise upload.LocalReadError(
                f'{what} /{piece.container}/{piece.obj} answered '
                f'{resp.status} (changed or removed since it was listed)',
                kind='invalid' if piece.segment else 'local',
                permanent=piece.segment)
        return resp.app_iter

    def fetch_manifest(self, account):
        # a nested SLO's entry records its SLO Etag, not the MD5 of the
        # manifest object the internal client reads: no If-Match, the
        # parsed manifest's own Etag is compared instead
        def fetch(container, obj, etag):
            resp = self._local('GET', self._path(account, container, obj),
                               {}, (2,))
            manifest, body = self.read_manifest(resp)
            if manifest.etag != etag:
                raise upload.LocalReadError(
                    f'nested SLO /{container}/{obj} has Etag '
                    f'{manifest.etag}, its parent recorded {etag}',
                    kind='invalid', permanent=True)
            return body
        return fetch

    def remote_head(self, profile, key):
        try:
            return self.remote.head_object(profile, key)
        except RemoteError as err:
            if err.kind == 'not_found':
                return None
            raise

    @staticmethod
    def _store(profile):
        return (profile.aws_endpoint, profile.aws_bucket)

    def writes_if_absent(self, profile):
        """May a fresh small object be written with ``If-None-Match: *``
        instead of a HEAD first? Only to a store seen to honour it
        (:meth:`probe_if_absent`, run once per store and process)."""
        if not self.conditional_put:
            return False
        store = self._store(profile)
        if store not in self.honours_if_absent:
            self.probe_if_absent(profile, store)
        return self.honours_if_absent.get(store) is True

    def probe_if_absent(self, profile, store):
        """Find out whether the store refuses a ``PutObject`` with
        ``If-None-Match: *`` on a key it holds: an empty object at a key of
        its own, outside the layout (``PROBE_PREFIX`` + a random name), is
        written, written again with the header (a store that honours it
        answers 412), and deleted. While it runs, and for
        ``PROBE_RETRY`` seconds after it failed, uploads keep their
        HEAD."""
        now = time.time()
        if self._probe_after.get(store, 0) > now:
            return
        self._probe_after[store] = float('inf')
        key = PROBE_PREFIX + uuid.uuid4().hex
        md5 = bucket.content_md5(md5_hex(b''))
        written = False
        try:
            self.remote.put_object(profile, key, b'', ContentMD5=md5)
            written = True
            try:
                self.remote.put_object(profile, key, b'', ContentMD5=md5,
                                       IfNoneMatch='*')
                honours = False
            except RemoteError as err:
                if not upload.precondition_failed(err):
                    raise
                honours = True
        except RemoteError as err:
            self._probe_after[store] = now + PROBE_RETRY
            self.logger.warning('Could not find out whether %s honours '
                                'If-None-Match (%s): HEAD first for %ds',
                                profile.describe(), err.message,
                                PROBE_RETRY)
            return
        finally:
            if written:
                try:
                    self.remote.delete_object(profile, key)
                except RemoteError as err:
                    self.logger.warning('Could not delete the probe %r: '
                                        '%s', key, err.message)
        self.honours_if_absent[store] = honours
        self.logger.info('%s %s If-None-Match: new small objects are '
                         'written %s', profile.describe(),
                         'honours' if honours else 'ignores',
                         'without a HEAD first' if honours else
                         'after a HEAD')

    def upload_plain(self, profile, key, local, policy, meta,
                     content_type, extra, if_absent=False):
        """Upload a plain object (or DLO manifest); returns its size.
        ``if_absent``: a single ``PutObject`` with ``If-None-Match: *``
        (a RemoteError for which :func:`upload.precondition_failed` is
        true when the key exists)."""
        piece = upload.Piece(local.size, profile.container, local.name,
                             local.etag, policy=policy, segment=False,
                             whole=True)
        if local.size > self.max_put_size:
            meta = dict(meta, **{bucket.SWIFT_ETAG_META: local.etag})
        params = dict(extra, Metadata=meta, ContentType=content_type)
        if local.size > self.max_put_size:
            self._multipart(profile, key, params, self._fixed_parts(
                [piece], local.size))
            return local.size
        md5 = bucket.content_md5(local.etag)
        if md5:
            params['ContentMD5'] = md5
        if if_absent:
            params['IfNoneMatch'] = '*'
        if local.body is not None and len(local.body) == local.size:
            # read already (a small object): sent in one piece
            if md5_hex(local.body) != local.etag:
                raise upload.LocalReadError(
                    f'/{profile.container}/{local.name} read with MD5 '
                    f'{md5_hex(local.body)}, expected {local.etag}')
            resp = self.remote.put_object(profile, key, local.body,
                                          ContentLength=local.size, **params)
        else:
            body = upload.SpanReader([piece], lambda p: self.open_piece(
                profile.account, p))
            resp = self._send(body, self.remote.put_object, profile, key,
                              body, ContentLength=local.size, **params)
        etag = shunt_headers.bare_etag(resp.get('ETag'))
        if etag != local.etag:
            raise Failed('verify', f'S3 answered Etag {etag}, the local '
                         f'object has {local.etag}')
        return local.size

    @staticmethod
    def _send(body, call, *args, **kwargs):
        """``call(*args, **kwargs)`` sending the :class:`upload.SpanReader`
        ``body``; a local read failure is raised as itself, not as what
        the HTTP library made of it."""
        try:
            return call(*args, **kwargs)
        except Exception as err:
            if body.error is not None and body.error is not err:
                raise body.error from err
            raise
        finally:
            body.close()

    def _fixed_parts(self, pieces, size):
        part = upload.part_size_for(size, max(self.part_size,
                                              upload.MIN_PART_SIZE))
        return [(upload.cut(pieces, a, b), None)
                for a, b in upload.spans(size, part)]

    def upload_slo(self, profile, key, local, meta, content_type, extra):
        manifest = local.manifest
        if local.parts_reason is not None:
            meta = dict(meta, **{SLO_ETAG_META: local.alt[1]})
        params = dict(extra, Metadata=meta, ContentType=content_type)
        sidecar = (manifest_key(profile.account, profile.container,
                                local.name, profile.custom_prefix),
                   local.manifest_body)
        if local.parts_reason is None:
            parts = [([piece], piece.etag)
                     for piece in upload.segment_pieces(manifest)]
            self._multipart(profile, key, params, parts, sidecar=sidecar)
            return manifest.size
        self.logger.info('Re-chunking SLO %r for S3: %s', local.name,
                         local.parts_reason)
        pieces = upload.expand(manifest, self.fetch_manifest(
            profile.account))
        if manifest.size > self.max_put_size:
            self._multipart(profile, key, params, self._fixed_parts(
                pieces, manifest.size), sidecar=sidecar)
            return manifest.size
        self._put_sidecar(profile, *sidecar)
        body = upload.SpanReader(pieces, lambda p: self.open_piece(
            profile.account, p), digest=True)
        resp = self._send(body, self.remote.put_object, profile, key, body,
                          ContentLength=manifest.size, **params)
        etag = shunt_headers.bare_etag(resp.get('ETag'))
        if etag != body.md5.hexdigest():
            raise Failed('verify', f'S3 answered Etag {etag} for bytes '
                         f'with MD5 {body.md5.hexdigest()}')
        return manifest.size

    def _put_sidecar(self, profile, key, body):
        self.remote.put_object(profile, key, body,
                               ContentType='application/json',
                               ContentMD5=bucket.content_md5(
                                   md5_hex(body)))

    def repair_sidecar(self, profile, local):
        """Write the sidecar of an SLO whose bucket copy is up to date if
        it is missing or another; True when it was written."""
        key = manifest_key(profile.account, profile.container, local.name,
                           profile.custom_prefix)
        head = self.remote_head(profile, key)
        if head is not None and shunt_headers.bare_etag(
                head.get('ETag')) == md5_hex(local.manifest_body):
            return False
        self._put_sidecar(profile, key, local.manifest_body)
        return True

    def _abort_stale_uploads(self, profile, key, now):
        cutoff = min(self.started, now - self.stale_upload_age)
        for stale in self.remote.list_multipart_uploads(profile, key):
            if stale['Key'] != key or \
                    stale['Initiated'].timestamp() >= cutoff:
                continue
            self.remote.abort_multipart_upload(profile, key,
                                               stale['UploadId'])
            self.logger.increment('stale_uploads_aborted')
            self.logger.info('Aborted a stale multipart upload of %r '
                             '(started %s)', key, stale['Initiated'])

    def _abort_earlier_uploads(self, profile, key, upload_id):
        """Abort every other open upload of ``key`` the store says was
        initiated no later than ``upload_id`` (its own clock on both
        sides, whatever its precision): a killed daemon's, or a peer's
        still running (its Complete then fails and its row is retried;
        nothing local is deleted before a verification). Best effort: a
        failure here leaves them to :meth:`_abort_stale_uploads`."""
        try:
            uploads = [u for u in self.remote.list_multipart_uploads(
                profile, key) if u.get('Key') == key]
            ours = [u['Initiated'] for u in uploads
                    if u.get('UploadId') == upload_id]
            if not ours:
                return
            for other in uploads:
                if other['UploadId'] == upload_id or \
                        other['Initiated'] > ours[0]:
                    continue
                self.remote.abort_multipart_upload(profile, key,
                                                   other['UploadId'])
                self.logger.increment('stale_uploads_aborted')
                self.logger.info('Aborted an earlier multipart upload of '
                                 '%r (started %s)', key, other['Initiated'])
        except RemoteError as err:
            self.logger.warning('Could not abort earlier multipart uploads '
                                'of %r: %s', key, err.message)

    def _multipart(self, profile, key, params, parts, sidecar=None):
        """Upload ``parts`` (``[(pieces, md5 or None), ...]``) as one
        multipart upload (in parallel; aborted on any failure), writing
        ``sidecar`` (``(key, body)``) just before completing it. A part
        without an MD5 is checked against the MD5 of the bytes read for
        it."""
        self._abort_stale_uploads(profile, key, time.time())
        upload_id = self.remote.create_multipart_upload(profile, key,
                                                        **params)
        try:
            etags = self._upload_parts(profile, key, upload_id, parts)
            self._abort_earlier_uploads(profile, key, upload_id)
            if sidecar is not None:
                self._put_sidecar(profile, *sidecar)
            resp = self.remote.complete_multipart_upload(
                profile, key, upload_id, ['"%s"' % e for e in etags])
        except BaseException:
            try:
                self.remote.abort_multipart_upload(profile, key, upload_id)
            except RemoteError as err:
                self.logger.error('Could not abort the multipart upload of '
                                  '%r: %s', key, err.message)
            raise
        etag = shunt_headers.bare_etag(resp.get('ETag'))
        if etag != mpu_etag(etags):
            raise Failed('verify', f'S3 answered Etag {etag}, the parts '
                         f'make {mpu_etag(etags)}')

    def _upload_parts(self, profile, key, upload_id, parts):
        pool = eventlet.GreenPool(self.slo_workers)
        failed = []

        def one(number, pieces, md5):
            if failed:
                return None
            body = upload.SpanReader(pieces, lambda p: self.open_piece(
                profile.account, p), digest=not md5)
            kwargs = {'ContentLength': body.length}
            if md5:
                kwargs['ContentMD5'] = bucket.content_md5(md5)
            try:
                etag = shunt_headers.bare_etag(self._send(
                    body, self.remote.upload_part, profile, key, upload_id,
                    number, body, **kwargs))
            except BaseException as err:
                failed.append(err)
                raise
            want = md5 or body.md5.hexdigest()
            if etag != want:
                err = Failed('verify', f'part {number}: S3 answered '
                             f'Etag {etag}, the bytes make {want}')
                failed.append(err)
                raise err
            return etag

        threads = [pool.spawn(one, number, pieces, md5)
                   for number, (pieces, md5) in enumerate(parts, 1)]
        etags = []
        for thread in threads:
            try:
                etags.append(thread.wait())
            except BaseException:
                pass
        if failed:
            raise failed[0]
        return etags
