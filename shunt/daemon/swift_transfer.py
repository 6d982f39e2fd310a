"""Moving bytes from the local cluster into a remote Swift for the sync
daemon (profiles with ``"protocol": "swift"``).

:class:`SwiftTransfer` is the remote side of
:class:`shunt.daemon.rows.RowHandler` for swift profiles; everything before
(exclusion, ``copy_after``, the local HEAD, selection criteria) and after
(archive mode's guarded local delete, an SLO's own segments) is the row
handler's, the same as for S3. What lands where is
:mod:`shunt.daemon.swift_bucket`'s. Per row:

1. ``HEAD`` of the remote copy (a small object new to this node is PUT
   with ``If-None-Match: *`` instead, and compared only when it exists).
   The same version (size, Etag, metadata, ``swift-timestamp``):
   **noop**. The same bytes with other metadata: one ``POST`` with the
   full set (user metadata, content type, kept headers, ``X-Delete-At``,
   the bookkeeping keys and a DLO's manifest header, which a Swift POST
   would otherwise drop): **metadata**. A later
   version (its ``swift-timestamp``), or a PUT/POST the remote answers 409
   (its ``X-Timestamp`` is newer than ours): **skipped**.
2. Otherwise **uploaded**, the remote container created first when
   missing (``SwiftRemote.ensure_container``, with the profile's
   ``storage_policy``):

   * a plain object: one ``PUT`` streamed from one local GET (constant
     memory; or sent from memory when the row handler read a small object
     already, its MD5 checked first) with ``ETag`` = the local Etag (the
     remote refuses bytes that do not make it: 422), ``X-Timestamp`` and
     the headers of :func:`swift_bucket.object_headers`;
   * an SLO: every distinct segment object copied into the segments
     container (created on demand) as ``<local container>/<name>``,
     ``slo_workers`` at once, each ``PUT`` with its Etag, a segment
     already there with that Etag and size skipped (a retried row resumes
     where it stopped); then the manifest, ``PUT ?multipart-manifest=put``
     with ``ETag`` = the SLO's Etag: the remote SLO middleware checks every
     segment before it stores the manifest. Byte ranges and inline
     ``data`` segments are kept. A nested SLO is copied as a remote SLO of
     its own (its manifest read locally and checked against the Etag its
     parent records), its segments first, up to Swift's nesting depth
     (deeper, or a nested manifest that changed: the row fails
     permanently, ``invalid``, reported, never retried in a loop);
   * a DLO: every object of the local prefix copied the same way, then the
     manifest object (its own body) with ``X-Object-Manifest`` pointing at
     the copies and ``X-Object-Meta-Swift-Source-Dlo-Etag``.
3. Archive mode: a ``HEAD`` verifies the remote copy (size, Etag,
   ``swift-timestamp`` = the local version) before the row handler deletes
   the local copy (:func:`swift_bucket.verify_problem`). After a plain
   object's single ``PUT`` its answer is the verification, as for S3's
   ``PutObject`` (see :mod:`shunt.daemon.rows`, step 8): sent with the
   local Etag, which the remote checked, and the ``swift-timestamp`` of
   this version in the same request, it answered 201 with that Etag;
   ``verify_with_head = true`` keeps the HEAD.

Delete rows (``propagate_delete``): the remote copy is deleted only when it
is older than the tombstone (:func:`swift_bucket.delete_reaches`), with
``X-Timestamp`` = the tombstone's (a remote that keeps timestamps answers
409 to a delete older than its copy). A remote SLO is deleted as its
manifest first, then the segments the daemon copied for that object alone
(the local rule of :func:`shunt.daemon.rows.owned_segment` applied to the
local names the remote names stand for); never with
``?multipart-manifest=delete``, which would delete segments other manifests
share. A DLO's segments are never deleted (they are copies of objects of
their own, as locally).

Crash safety: a plain object is one PUT (there or not); an SLO's or DLO's
manifest is written only after all its segments, so a daemon killed at any
point leaves at most segments no manifest refers to yet (the next visit
finds and skips them); the local copy is deleted only after the HEAD
verification of exactly that version. Orphaned segments of a manifest that
is never written (the object changed or was deleted locally in between)
stay in the segments container: they are named after their local segments,
so an operator can tell what they were.

Moving from 1space: a remote copy it wrote with the same bytes (no
``swift-timestamp``) is taken over with one POST that adds the bookkeeping,
never uploaded again (on a remote that keeps client X-Timestamps, that
copy's own, later, timestamp wins: 409, the row is skipped and the object
stays local).

Limits: segment copies carry no ``X-Delete-At`` (only the manifest
expires); a DLO whose local segments were deleted after they were copied
keeps those copies remotely (they may be another archived object's
segments), so the remote DLO still lists them: archive mode then never
verifies that DLO (its Etag differs) and keeps it local, sync mode's copy
serves the extra segments until an operator removes them; an SLO deleted
through the shunt (not by a delete row) leaves its remote segments.

Options: ``slo_workers`` (segments copied at once per object, default 10,
shared with S3's parts), ``verify_with_head`` (shared with S3).
"""

import hashlib
import json

import eventlet
from swift.common.swob import wsgi_to_str
from swift.common.utils import close_if_possible, config_true_value

from shunt.core import headers as shunt_headers
from shunt.core.remote import RemoteError
from shunt.daemon import swift_bucket, upload
from shunt.daemon.swift_bucket import NotArchivable, Want
from shunt.daemon.upload import Failed

HTTP_PRECONDITION_FAILED = 412
HTTP_CONFLICT = 409
HTTP_UNPROCESSABLE = 422


class Copy:
    """The remote side of one row after :meth:`SwiftTransfer.sync`: what
    the remote copy must be (``want``) and the HEAD that found it up to
    date, or what a plain object's PUT wrote (None: verified by a new
    HEAD)."""

    def __init__(self, want, headers=None):
        self.want = want
        self.headers = headers


class SwiftTransfer:
    """Uploads to a remote Swift for :class:`shunt.daemon.rows.RowHandler`
    (one per process, shared by its green threads). ``transfer`` is the
    row handler's :class:`shunt.daemon.transfer.Transfer`, whose local
    reads are reused; ``remote`` answers the Swift-native calls of
    :class:`shunt.core.swift_remote.SwiftRemote`."""

    def __init__(self, conf, logger, swift, remote, transfer):
        self.logger = logger
        self.swift = swift
        self.remote = remote
        self.transfer = transfer
        # shared with S3's uploads
        self.slo_workers = transfer.slo_workers
        self.verify_with_head = transfer.verify_with_head

    @property
    def client(self):
        # the Remotes dispatcher (shunt.core.stores) forwards the
        # Swift-native calls of swift profiles
        return self.remote

    # -- remote calls -------------------------------------------------------

    def _request(self, profile, method, container, obj=None, headers=None,
                 query=None, body=None):
        return self.client.request(profile, method, container, obj,
                                   headers=headers, query=query, body=body)

    def head(self, profile, container, obj):
        """The remote object's headers (lower-case names), None on 404."""
        try:
            return self._request(profile, 'HEAD', container, obj).headers
        except RemoteError as err:
            if err.kind == 'not_found':
                return None
            raise

    def _open(self, profile):
        return lambda piece: self.transfer.open_piece(profile.account, piece)

    # -- the row ------------------------------------------------------------

    def want(self, profile, local):
        """The :class:`swift_bucket.Want` of a local version (a DLO's
        segments listed locally)."""
        headers = swift_bucket.object_headers(local.headers, local.version)
        if local.manifest is not None:
            return Want('slo', local.manifest.size, local.manifest.etag,
                        headers, local.version), None
        manifest = local.headers.get('X-Object-Manifest')
        if manifest:
            value = wsgi_to_str(manifest)
            where = swift_bucket.dlo_prefix(value)
            if where is None:
                raise Failed('invalid', f'X-Object-Manifest {value!r} is '
                             f'not <container>/<prefix>', permanent=True)
            listing = list(self.swift.iter_objects(
                profile.account, where[0], prefix=where[1]))
            etag = swift_bucket.dlo_etag([e['hash'] for e in listing])
            headers['X-Object-Manifest'] = swift_bucket.manifest_header(
                self.client.segments_container(profile), value)
            headers['X-Object-Meta-Swift-Source-Dlo-Etag'] = etag
            return Want('dlo', sum(e['bytes'] for e in listing), etag,
                        headers, local.version), (where[0], listing)
        return Want('plain', local.size, local.etag, headers,
                    local.version), None

    def sync(self, profile, key, local, policy, fresh=False):
        """Bring the remote copy up to date: ``(outcome, copy)`` with the
        outcome's name (``noop``, ``metadata``, ``uploaded``, ``skipped``)
        and a :class:`Copy` for :meth:`verify`. ``fresh``: the row is new
        to this node (a small plain object read already is then PUT with
        ``If-None-Match: *``, no HEAD first; one that exists, 412, is
        compared as usual)."""
        want, dlo = self.want(profile, local)
        container = self.client.remote_container(profile)
        if fresh and want.kind == 'plain' and local.body is not None:
            try:
                self.client.ensure_container(profile, container)
                sent = self._put_plain(profile, container, key, local,
                                       policy, want, if_absent=True)
            except RemoteError as err:
                if err.status == HTTP_CONFLICT:
                    return 'skipped', Copy(want)
                if err.status != HTTP_PRECONDITION_FAILED:
                    raise
            else:
                self.logger.update_stats('bytes', sent)
                return 'uploaded', Copy(want, self._written(want))
        head = self.head(profile, container, key)
        state = swift_bucket.remote_state(head, want)
        if state == 'newer':
            self.logger.info('Not archiving %r: the remote holds a later '
                             'version (%s)', local.name,
                             swift_bucket.remote_version(head).internal)
            return 'skipped', Copy(want, head)
        if state == 'same':
            return 'noop', Copy(want, head)
        try:
            if state == 'metadata':
                self._post(profile, container, key, want)
                return 'metadata', Copy(want)
            self.client.ensure_container(profile, container)
            if want.kind == 'slo':
                sent = self._put_slo(profile, container, key,
                                     local.manifest,
                                     self._write_headers(want))
            else:
                sent = 0
                if dlo is not None:
                    sent = self._copy_segments(profile, [
                        (dlo[0], e['name'], shunt_headers.bare_etag(
                            e['hash']), e['bytes'], e.get('content_type'))
                        for e in dlo[1]])
                # a DLO whose segments changed under the same manifest
                # version: the remote DLO lists the new copies already
                if not swift_bucket.only_segments_differ(head, want):
                    sent += self._put_plain(profile, container, key, local,
                                            policy, want)
                    if dlo is None:
                        self.logger.update_stats('bytes', sent)
                        return 'uploaded', Copy(want, self._written(want))
        except NotArchivable as err:
            raise Failed('invalid', str(err), permanent=True)
        except RemoteError as err:
            if err.status == HTTP_CONFLICT:
                self.logger.info('Not archiving %r: the remote holds a '
                                 'later X-Timestamp', local.name)
                return 'skipped', Copy(want)
            raise
        self.logger.update_stats('bytes', sent)
        return 'uploaded', Copy(want)

    def _written(self, want):
        """What a plain object's PUT wrote, when its answer stands for the
        verification HEAD (its Etag was checked to be the local one)."""
        if self.verify_with_head or not want.etag:
            return None
        return swift_bucket.as_written(want)

    def verify(self, profile, key, copy):
        """Raise :class:`Failed` (``verify``) unless the remote holds a
        verified copy of exactly the wanted version."""
        headers = copy.headers
        if headers is None:
            headers = self.head(profile, self.client.remote_container(
                profile), key)
        problem = swift_bucket.verify_problem(headers, copy.want)
        if problem:
            raise Failed('verify', problem)

    # -- writes ---------------------------------------------------------------

    @staticmethod
    def _write_headers(want, **extra):
        headers = dict(want.headers)
        headers['X-Timestamp'] = want.version.internal
        headers.update(extra)
        return headers

    def _post(self, profile, container, key, want):
        self._request(profile, 'POST', container, key,
                      headers=self._write_headers(want))

    def _put(self, profile, container, obj, headers, body, query=None):
        """One PUT of ``body`` (bytes or a :class:`upload.SpanReader`); a
        422 (the bytes sent do not make the Etag) is a local failure."""
        try:
            return self._request(profile, 'PUT', container, obj,
                                 headers=headers, query=query, body=body)
        except Exception as err:
            # a local read failure is raised as itself, not as what the
            # HTTP library made of it
            error = getattr(body, 'error', None)
            if error is not None and error is not err:
                raise error from err
            if not isinstance(err, RemoteError):
                raise
            if err.kind == 'not_found':
                # the container was deleted since it was created: created
                # again when the row is retried
                forget = getattr(self.client, 'forget_container', None)
                if forget is not None:
                    forget(profile, container)
            if err.status == HTTP_UNPROCESSABLE and query:
                raise Failed('verify', f'/{container}/{obj}: the remote '
                             f'SLO Etag is not the local one') from err
            if err.status == HTTP_UNPROCESSABLE:
                raise Failed('local', f'/{container}/{obj}: the bytes read '
                             f'do not make the local Etag (corrupt '
                             f'replica?)') from err
            raise
        finally:
            if isinstance(body, upload.SpanReader):
                body.close()

    def _put_plain(self, profile, container, key, local, policy, want,
                   if_absent=False):
        """A plain object or DLO manifest: its own bytes (``if_absent``:
        only if the name is free)."""
        headers = self._write_headers(want, **{
            'Content-Length': str(local.size)})
        if if_absent:
            headers['If-None-Match'] = '*'
        if local.etag:
            headers['ETag'] = local.etag
        if local.body is not None and len(local.body) == local.size:
            got = hashlib.md5(local.body, usedforsecurity=False).hexdigest()
            if got != local.etag:
                raise upload.LocalReadError(
                    f'/{profile.container}/{local.name} read with MD5 '
                    f'{got}, expected {local.etag}')
            body = local.body
        else:
            body = upload.SpanReader([upload.Piece(
                local.size, profile.container, local.name, local.etag,
                policy=policy, segment=False, whole=True)],
                self._open(profile), store_checks=bool(local.etag))
        resp = self._put(profile, container, key, headers, body)
        etag = shunt_headers.bare_etag(resp.headers.get('etag'))
        if local.etag and etag != local.etag:
            raise Failed('verify', f'the remote answered Etag {etag}, the '
                         f'local object has {local.etag}')
        return local.size

    def _put_slo(self, profile, container, key, manifest, headers,
                 depth=0):
        """A remote SLO ``container/key`` of ``manifest``'s segments (nested
        SLOs first, as remote SLOs of their own, then the segments), then
        its manifest; the bytes sent."""
        if depth > upload.MAX_DEPTH:
            raise NotArchivable(f'SLOs nested more than {upload.MAX_DEPTH} '
                                f'deep')
        target = self.client.segments_container(profile)
        sent = 0
        for seg in swift_bucket.nested_slos(manifest):
            sent += self._put_nested(profile, target, seg, depth + 1)
        sent += self._copy_segments(
            profile, swift_bucket.segments_to_copy(manifest))
        body = swift_bucket.slo_manifest_body(manifest, target)
        self._put(profile, container, key, dict(headers, ETag=manifest.etag),
                  body, query={'multipart-manifest': 'put'})
        return sent

    def _put_nested(self, profile, target, seg, depth):
        """Copy the nested SLO ``seg`` into the segments container as a
        remote SLO (skipped when one with its Etag is there)."""
        name = swift_bucket.segment_name(seg.container, seg.obj)
        there = self.head(profile, target, name)
        if there is not None and config_true_value(
                there.get('x-static-large-object')) and \
                shunt_headers.bare_etag(there.get('etag')) == seg.hash:
            return 0
        path = self.swift.make_path(profile.account, seg.container, seg.obj)
        resp = self.swift.make_request('GET', path, {}, (2, 404))
        if not config_true_value(resp.headers.get('X-Static-Large-Object')):
            close_if_possible(resp.app_iter)
            raise NotArchivable(f'nested SLO {seg.name} answered '
                                f'{resp.status} (changed or removed since '
                                f'its parent was written)')
        sub = self.transfer.read_manifest(resp)[0]
        if sub.etag != seg.hash:
            raise NotArchivable(f'nested SLO {seg.name} has Etag {sub.etag}, '
                                f'its parent says {seg.hash}')
        self.client.ensure_container(profile, target)
        content_type = swift_bucket.strip_swift_bytes(
            seg.content_type or 'application/octet-stream')
        return self._put_slo(profile, target, name, sub,
                             {'Content-Type': content_type}, depth)

    def _copy_segments(self, profile, segments):
        """Copy local objects ``[(container, obj, etag, size,
        content_type)]`` into the segments container, ``slo_workers`` at
        once; the bytes sent."""
        if not segments:
            return 0
        target = self.client.segments_container(profile)
        self.client.ensure_container(profile, target)
        pool = eventlet.GreenPool(self.slo_workers)
        failed = []

        def one(container, obj, etag, size, content_type):
            if failed:
                return 0
            name = swift_bucket.segment_name(container, obj)
            try:
                there = self.head(profile, target, name)
                if there is not None and shunt_headers.bare_etag(
                        there.get('etag')) == etag and \
                        there.get('content-length') == str(size) and \
                        not config_true_value(
                            there.get('x-static-large-object')):
                    return 0
                body = upload.SpanReader([upload.Piece(
                    size, container, obj, etag, whole=True)],
                    self._open(profile), store_checks=True)
                self._put(profile, target, name, {
                    'ETag': etag, 'Content-Length': str(size),
                    'Content-Type': content_type or
                    'application/octet-stream'}, body)
            except BaseException as err:
                failed.append(err)
                raise
            return size

        threads = [pool.spawn(one, *seg) for seg in segments]
        sent = 0
        for thread in threads:
            try:
                sent += thread.wait()
            except BaseException:
                pass
        if failed:
            raise failed[0]
        return sent

    # -- delete rows ----------------------------------------------------------

    def delete_row(self, profile, key, deleted_at, skew, owned):
        """Propagate a local delete (``deleted_at``: the tombstone's
        Timestamp): ``remote_deleted`` or ``skipped``. ``owned`` is the
        row handler's segment ownership rule."""
        container = self.client.remote_container(profile)
        head = self.head(profile, container, key)
        if head is None:
            return 'skipped'
        if not swift_bucket.delete_reaches(head, deleted_at, skew):
            self.logger.info('Not deleting %r from the remote: its copy may '
                             'be newer than the delete (%s)', key,
                             deleted_at.internal)
            return 'skipped'
        segments = []
        if config_true_value(head.get('x-static-large-object')):
            segments = self._remote_segments(profile, container, key)
        try:
            self._request(profile, 'DELETE', container, key, headers={
                'X-Timestamp': deleted_at.internal})
        except RemoteError as err:
            if err.status == HTTP_CONFLICT:
                self.logger.info('Not deleting %r from the remote: it holds '
                                 'a later X-Timestamp', key)
                return 'skipped'
            if err.kind != 'not_found':
                raise
        target = self.client.segments_container(profile)
        for path in segments:
            if not swift_bucket.owned_segment_path(
                    path, target, profile.account, profile.container, key,
                    owned):
                continue
            try:
                self._request(profile, 'DELETE', target,
                              path[len(target) + 2:])
            except RemoteError as err:
                if err.kind != 'not_found':
                    self.logger.warning('Could not delete remote segment %r '
                                        'of %r: %s', path, key, err.message)
        return 'remote_deleted'

    def _remote_segments(self, profile, container, key):
        """The segment paths (``/<c>/<o>``) of a remote SLO's manifest."""
        resp = self._request(profile, 'GET', container, key,
                             query={'multipart-manifest': 'get'})
        body = resp.body if isinstance(resp.body, bytes) else b''.join(
            resp.body)
        try:
            entries = json.loads(body)
        except ValueError:
            return []
        return [e['name'] for e in entries if isinstance(e, dict) and
                isinstance(e.get('name'), str)]
