"""DELETE and POST of objects in mapped containers, as Swift does them.

Swift is asked first, always: every refusal it makes (ACLs, quotas, bad
``X-Delete-At``, a missing container...) is the client's answer, and the
shunt acts on the bucket only where Swift answered 404 for an archived
object that is part of the namespace.

DELETE
    Swift records the delete in a tombstone marked by the shunt (see
    :mod:`shunt.core.tombstones`), which hides the archived copy from GET, HEAD
    and listings; the client gets ``204`` as for a local object. Requests:
    a local HEAD (pre-authorized, to learn the current state), a remote
    HEAD (the archived copy's Etag goes into the tombstone, so that a copy
    archived again within the same second is told apart), and the client's
    DELETE itself. With
    ``"propagate_delete": true`` in the profile the bucket copy (and its SLO
    manifest sidecar) is deleted too; by default it is kept, and the
    container's ``X-Container-Sysmeta-Cloud-Shunt-Hidden`` records when an
    archived copy was last hidden (listings check tombstones only for
    archived rows older than that). A remote outage answers ``503`` before
    anything is deleted.

POST
    After Swift's own 404 (and a pre-authorized local HEAD for the
    tombstone), replaces the archived object's metadata in the bucket,
    with Swift's replace semantics (``X-Object-Meta-*``, ``Content-Type``
    if given, the headers the object server keeps, ``X-Delete-At`` or
    ``X-Delete-After``; an archived DLO stays one only if the POST says
    ``X-Object-Manifest`` again, else it becomes the plain object of its
    manifest's own bytes, as in Swift), by copying the object onto
    itself: the body and
    its Etag stay the same (multipart objects are copied part by part on
    their own boundaries) and nothing is written into Swift. A
    restore-then-POST was not chosen because it would refill the cluster
    with every object whose metadata is touched, and would need the whole
    body read.
"""

import time

from swift.common.http import is_success
from swift.common.swob import (
    HTTPAccepted,
    HTTPNoContent,
    Request,
    wsgi_quote,
)
from swift.common.utils import Timestamp, close_if_possible
from swift.common.wsgi import WSGIContext, make_pre_authed_request
from swift.proxy.controllers.base import get_container_info

from shunt.core import headers as shunt_headers
from shunt.core import tombstones
from shunt.core.layout import manifest_key, object_key
from shunt.core.remote import RemoteError, unavailable_response
from shunt.proxy import native

# when an archived copy of the container was last hidden by a delete
HIDDEN_SYSMETA = 'X-Container-Sysmeta-Cloud-Shunt-Hidden'
# CopyObject parameters for the headers Swift's object server keeps
PASSED_PARAMS = {'content-disposition': 'ContentDisposition',
                 'content-encoding': 'ContentEncoding',
                 'content-language': 'ContentLanguage',
                 'cache-control': 'CacheControl'}


class WriteContext(WSGIContext):
    """One DELETE or POST of an object in a mapped container."""

    def __init__(self, shunt, profile, swift_source):
        super().__init__(shunt.app)
        self.shunt = shunt
        self.profile = profile
        self.logger = shunt.logger
        self.swift_source = swift_source
        # the archived copy's HeadObject answer, when one was made
        self.seen_head = None

    def handle(self, env, start_response, obj):
        self.obj = obj
        self.key = object_key(self.profile.account, self.profile.container,
                              obj, self.profile.custom_prefix)
        if env['REQUEST_METHOD'] == 'DELETE':
            return self.handle_delete(env, start_response)
        return self.handle_post(env, start_response)

    # -- shared ---------------------------------------------------------

    def archived_head(self, tombstone):
        """The HeadObject response of the archived copy if it is part of
        the namespace, else None; raises RemoteError on outages."""
        try:
            head = self.shunt.remote.head_object(self.profile, self.key)
        except RemoteError as err:
            if err.kind == 'not_found':
                return None
            raise
        raw = head['ResponseMetadata']['HTTPHeaders']
        if not tombstones.archived_visible(tombstone, raw, time.time(),
                                           self.shunt.remote_clock_skew):
            return None
        return head

    def archived_etag(self):
        """The Etag of whatever is archived under the name, best effort:
        a local object's delete does not wait on a failing remote."""
        try:
            self.seen_head = self.shunt.remote.head_object(self.profile,
                                                           self.key)
        except RemoteError as err:
            return '' if err.kind == 'not_found' else None
        return self.seen_head.get('ETag', '')

    def unavailable(self, req, err):
        self.logger.increment('remote_error.%s' % err.kind)
        self.logger.error('Remote %s failed for %s key %r: %s: %s',
                          req.method, self.profile.describe(), self.key,
                          err.kind, err.message)
        return unavailable_response(req, err, 'Archived object')

    def pass_local(self, env, start_response):
        resp_iter = self._app_call(env)
        start_response(self._response_status, self._response_headers,
                       self._response_exc_info)
        return resp_iter

    # -- DELETE ---------------------------------------------------------

    def local_state(self, env):
        """Status and tombstone of the name in Swift, asked without the
        client's credentials: the DELETE itself is authorized by Swift."""
        head = make_pre_authed_request(
            env, 'HEAD', wsgi_quote(env['PATH_INFO']),
            swift_source=self.swift_source)
        resp = head.get_response(self.app)
        close_if_possible(resp.app_iter)
        return resp.status_int, resp.headers.get('X-Backend-Timestamp')

    def handle_delete(self, env, start_response):
        req = Request(env)
        sent = req.headers.get('X-Timestamp')
        when = tombstones.parse(sent)
        if sent and when is None:
            # Swift refuses the value itself
            return self.pass_local(env, start_response)
        when = when or Timestamp.now()
        status, tombstone = self.local_state(env)
        container = get_container_info(env, self.app,
                                       swift_source=self.swift_source)
        if status != 404 or not is_success(container['status']):
            # a local object, or an answer Swift will repeat (no container
            # means no tombstone could record the delete): Swift's DELETE,
            # marked so that the archived copy it saw stays hidden
            etag = self.archived_etag()
            env['HTTP_X_TIMESTAMP'] = tombstones.delete_timestamp(
                when, etag).internal
            resp_iter = self._app_call(env)
            if self._get_status_int() // 100 == 2 and etag:
                # an archived copy existed and is hidden now
                self.propagate_delete(req, self.seen_head)
                if not self.profile.propagate_delete:
                    self.record_hidden(env, env['HTTP_X_TIMESTAMP'])
            start_response(self._response_status, self._response_headers,
                           self._response_exc_info)
            return resp_iter
        try:
            head = self.archived_head(tombstone)
        except RemoteError as err:
            return self.unavailable(req, err)(env, start_response)
        etag = head.get('ETag') if head else None
        env['HTTP_X_TIMESTAMP'] = tombstones.delete_timestamp(
            when, etag).internal
        resp_iter = self._app_call(env)
        status = self._get_status_int()
        if head is None or (status != 404 and status // 100 != 2):
            start_response(self._response_status, self._response_headers,
                           self._response_exc_info)
            return resp_iter
        close_if_possible(resp_iter)
        self.logger.increment('delete.archived')
        self.propagate_delete(req, head)
        if not self.profile.propagate_delete:
            self.record_hidden(env, env['HTTP_X_TIMESTAMP'])
        return HTTPNoContent(request=req)(env, start_response)

    def record_hidden(self, env, timestamp):
        """Note on the container when an archived copy was last hidden, so
        listings know which archived rows may need a tombstone check."""
        path = '/'.join(env['PATH_INFO'].split('/', 4)[:4])
        post = make_pre_authed_request(
            env, 'POST', wsgi_quote(path),
            headers={HIDDEN_SYSMETA: timestamp},
            swift_source=self.swift_source)
        resp = post.get_response(self.app)
        close_if_possible(resp.app_iter)
        if not resp.is_success:
            self.logger.warning('Could not record the delete on %s: %s',
                                path, resp.status)

    def propagate_delete(self, req, head=None):
        if not self.profile.propagate_delete:
            return
        if native.is_swift(self.profile):
            # no sidecar on a remote Swift: its own SLO manifest
            keys = (self.key,)
        else:
            keys = (self.key, manifest_key(
                self.profile.account, self.profile.container, self.obj,
                self.profile.custom_prefix))
        for key in keys:
            try:
                if native.is_swift(self.profile):
                    native.delete_remote(self.shunt.remote, self.profile,
                                         key, head, req)
                else:
                    self.shunt.remote.delete_object(self.profile, key)
            except RemoteError as err:
                # the tombstone already hides it; the copy stays behind
                self.logger.error('Could not delete %r from %s: %s: %s',
                                  key, self.profile.describe(), err.kind,
                                  err.message)

    # -- POST -----------------------------------------------------------

    def handle_post(self, env, start_response):
        req = Request(env)
        # the proxy rewrites X-Delete-After in the environ: keep the request
        # as the client sent it
        sent = dict(req.headers)
        now = time.time()
        resp_iter = self._app_call(env)
        if self._get_status_int() != 404:
            start_response(self._response_status, self._response_headers,
                           self._response_exc_info)
            return resp_iter
        # a POST's 404 does not say whether a tombstone is there
        _, tombstone = self.local_state(env)
        try:
            head = self.archived_head(tombstone)
            if head is None:
                start_response(self._response_status,
                               self._response_headers,
                               self._response_exc_info)
                return resp_iter
            close_if_possible(resp_iter)
            self.replace_metadata(head, sent, now)
        except RemoteError as err:
            return self.unavailable(req, err)(env, start_response)
        self.logger.increment('post.archived')
        return HTTPAccepted(request=req)(env, start_response)

    def replace_metadata(self, head, sent, now):
        raw = head['ResponseMetadata']['HTTPHeaders']
        lowered = {k.lower(): v for k, v in sent.items()}
        metadata = shunt_headers.posted_metadata(raw, sent)
        delete_at = lowered.get('x-delete-at')
        if lowered.get('x-delete-after', '').isdigit():
            delete_at = str(int(now + int(lowered['x-delete-after'])))
        if delete_at:
            metadata['x-delete-at'] = delete_at
        # values as the client sent their bytes (both stores' clients send
        # str values UTF-8 encoded)
        extra = {param: shunt_headers.sent_value(lowered[name])
                 for name, param in PASSED_PARAMS.items()
                 if lowered.get(name)}
        content_type = shunt_headers.sent_value(
            lowered.get('content-type') or
            raw.get('content-type', 'application/octet-stream'))
        self.shunt.remote.copy_in_place(self.profile, self.key, head,
                                        metadata, content_type, extra)
