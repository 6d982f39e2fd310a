"""An in-memory Swift cluster with Swift's own ``slo`` and ``dlo`` in front
of it, for the swift-profile tests of the shunt.

``Store`` stands in for the proxy server and the object servers (objects
with their metadata and sysmeta, ``X-Timestamp`` kept as sent, swob's
ranges and conditionals with ``X-Backend-Etag-Is-At`` and
``X-Backend-Ignore-Range-If-Metadata-Present`` honoured, the proxy's 412,
JSON container listings with ``prefix``/``marker``/``end_marker``/
``delimiter``/``limit``/``reverse`` and the container-update Etag
override). :func:`cluster` wraps it in Swift's real ``slo`` and ``dlo``
(and ``gatekeeper``, which hides sysmeta), so large objects are answered
by Swift's own code. :class:`AuthFront` adds a tempauth-like
``/auth/v1.0`` so that :class:`shunt.core.swift_remote.SwiftRemote` can
talk to it over HTTP.
"""

import email.utils
import hashlib
import json
import math
import re

from swift.common.middleware.dlo import DynamicLargeObject
from swift.common.middleware.gatekeeper import GatekeeperMiddleware
from swift.common.middleware.slo import StaticLargeObject
from swift.common.request_helpers import (
    resolve_etag_is_at_header,
    resolve_ignore_range_header,
)
from swift.common.swob import Request, Response, wsgi_to_str
from swift.common.utils import Timestamp, config_true_value

KEPT = ('content-type', 'content-disposition', 'content-encoding',
        'content-language', 'cache-control', 'expires', 'x-robots-tag',
        'x-delete-at', 'x-object-manifest', 'x-static-large-object')
OVERRIDE_ETAG = 'x-object-sysmeta-container-update-override-etag'
_SWIFT_BYTES = re.compile(r';\s*swift_bytes=(\d+)')


class Store:
    """Objects by WSGI path; containers exist when something was put in
    them or :meth:`make_container` made them."""

    def __init__(self):
        self.objects = {}  # WSGI path -> (metadata, body)
        self.containers = set()
        self.tombstones = {}
        # WSGI path -> seconds a GET's body stalls after its first byte, or
        # (seconds, bytes sent before the stall)
        self.stalls = {}
        self.calls = []

    def make_container(self, path):
        self.containers.add(path)

    def __call__(self, env, start_response):
        # the object servers get a copy of the proxy's request
        env = dict(env)
        req = Request(env)
        self.calls.append((req.method, req.path, req.query_string))
        parts = req.path.split('/')
        if len(parts) == 3:
            return Response(status=204)(env, start_response)
        if len(parts) == 4:
            return self._container(req)(env, start_response)
        container = '/'.join(parts[:4])
        method = req.method
        if method == 'PUT':
            resp = self._put(req, container)
        elif method == 'POST':
            resp = self._post(req)
        elif method == 'DELETE':
            resp = self._delete(req)
        else:
            return self._get(req, env, start_response)
        return resp(env, start_response)

    def _put(self, req, container):
        if container not in self.containers:
            return Response(status=404, body=b'no container')
        path = req.environ['PATH_INFO']
        if req.headers.get('If-None-Match') == '*' and path in self.objects:
            return Response(status=412)
        body = req.body
        etag = hashlib.md5(body).hexdigest()
        if req.headers.get('Etag', etag).strip('"') != etag:
            return Response(status=422)
        ts = Timestamp(req.headers.get('X-Timestamp') or Timestamp.now())
        meta = {'X-Timestamp': ts.internal, 'Etag': etag,
                'Content-Length': str(len(body))}
        for name, value in req.headers.items():
            low = name.lower()
            if low in KEPT or low.startswith(('x-object-meta-',
                                              'x-object-sysmeta-')):
                meta[name.title()] = value
        meta.setdefault('Content-Type', 'application/octet-stream')
        self.objects[path] = (meta, body)
        self.tombstones.pop(path, None)
        return Response(status=201, headers={'Etag': etag})

    def _post(self, req):
        path = req.environ['PATH_INFO']
        if path not in self.objects:
            return Response(status=404)
        meta, body = self.objects[path]
        kept = {k: v for k, v in meta.items()
                if not k.lower().startswith('x-object-meta-') and
                k.lower() not in ('x-delete-at', 'content-disposition',
                                  'content-encoding')}
        for name, value in req.headers.items():
            low = name.lower()
            if low.startswith('x-object-meta-') or low in (
                    'x-delete-at', 'content-type', 'content-disposition',
                    'content-encoding'):
                kept[name.title()] = value
        self.objects[path] = (kept, body)
        return Response(status=202)

    def _delete(self, req):
        path = req.environ['PATH_INFO']
        ts = Timestamp(req.headers.get('X-Timestamp') or Timestamp.now())
        self.tombstones[path] = ts.internal
        if self.objects.pop(path, None) is None:
            return Response(status=404, headers={
                'X-Backend-Timestamp': ts.internal})
        return Response(status=204)

    def _get(self, req, env, start_response):
        path = req.environ['PATH_INFO']
        if path not in self.objects:
            headers = {}
            if path in self.tombstones:
                headers['X-Backend-Timestamp'] = self.tombstones[path]
            return Response(status=404, body=b'Not Found',
                            headers=headers)(env, start_response)
        meta, body = self.objects[path]
        resolve_ignore_range_header(req, meta)
        headers = dict(meta)
        headers['Content-Type'] = _SWIFT_BYTES.sub(
            '', headers['Content-Type'])
        headers['Last-Modified'] = email.utils.formatdate(
            math.ceil(float(meta['X-Timestamp'])), usegmt=True)
        headers['Accept-Ranges'] = 'bytes'
        headers.pop(OVERRIDE_ETAG.title(), None)
        resp = Response(request=req, headers=headers, body=body,
                        conditional_response=True,
                        conditional_etag=resolve_etag_is_at_header(req,
                                                                   meta))
        stall = self.stalls.get(path)
        if stall and req.method == 'GET' and not req.range:
            resp.app_iter = _stalling(body, stall)
            resp.content_length = len(body)

        def as_proxy(status, headers, exc_info=None):
            if status.startswith('412'):
                headers = [(k, 'text/html; charset=UTF-8')
                           if k.lower() == 'content-type' else (k, v)
                           for k, v in headers
                           if k.lower() != 'accept-ranges']
            return start_response(status, headers, exc_info)
        return resp(env, as_proxy)

    def _container(self, req):
        path = req.environ['PATH_INFO']
        if req.method == 'PUT':
            self.containers.add(path)
            return Response(status=201)
        if path not in self.containers:
            return Response(status=404, body=b'no such container')
        if req.method != 'GET':
            return Response(status=204)
        params = {k: wsgi_to_str(v) for k, v in req.params.items()}
        prefix = params.get('prefix', '')
        marker = params.get('marker', '')
        end = params.get('end_marker', '')
        delimiter = params.get('delimiter', '')
        limit = int(params.get('limit', 10000))
        reverse = config_true_value(params.get('reverse', ''))
        names = sorted(wsgi_to_str(p[len(path) + 1:]) for p in self.objects
                       if p.startswith(path + '/'))
        if reverse:
            names.reverse()
            marker, end = end, marker
        rows, seen = [], set()
        for name in names:
            if not name.startswith(prefix):
                continue
            if (marker and name <= marker) if not reverse else \
                    (end and name >= end):
                continue
            if (end and name >= end) if not reverse else \
                    (marker and name <= marker):
                continue
            if delimiter:
                cut = name.find(delimiter, len(prefix))
                if cut >= 0:
                    sub = name[:cut + len(delimiter)]
                    if sub not in seen:
                        seen.add(sub)
                        rows.append({'subdir': sub})
                        if len(rows) >= limit:
                            break
                    continue
            meta, body = self.objects[path + '/' + _wsgi(name)]
            ctype = meta['Content-Type']
            size = len(body)
            match = _SWIFT_BYTES.search(ctype)
            if match:
                size = int(match.group(1))
                ctype = _SWIFT_BYTES.sub('', ctype)
            rows.append({
                'name': name, 'bytes': size,
                'hash': meta.get(OVERRIDE_ETAG.title(), meta['Etag']),
                'content_type': ctype,
                'last_modified': Timestamp(meta['X-Timestamp']).isoformat})
            if len(rows) >= limit:
                break
        body = json.dumps(rows).encode('ascii')
        return Response(body=body, content_type='application/json',
                        charset='utf-8')


def _stalling(body, stall):
    import eventlet
    seconds, at = stall if isinstance(stall, tuple) else (stall, 1)
    yield body[:at]
    eventlet.sleep(seconds)
    yield body[at:]


def _wsgi(name):
    return name.encode('utf-8').decode('latin-1')


def cluster(store):
    """Swift's ``gatekeeper``, ``slo`` and ``dlo`` in front of ``store``:
    the cluster's pipeline."""
    return GatekeeperMiddleware(StaticLargeObject(
        DynamicLargeObject(store, {}), {}), {})


class AuthFront:
    """``/auth/v1.0`` (any user, one account) in front of a cluster; the
    storage requests go to the cluster with the token checked."""

    TOKEN = 'AUTH_tk0123456789'

    def __init__(self, app, account='AUTH_remote'):
        self.app = app
        self.account = account
        self.base_url = None
        self.seen = []

    def __call__(self, env, start_response):
        # the object servers get a copy of the proxy's request
        env = dict(env)
        req = Request(env)
        self.seen.append((req.method, req.path, req.query_string,
                          dict(req.headers)))
        if req.path == '/auth/v1.0':
            return Response(status=200, headers={
                'X-Storage-Url': '%s/v1/%s' % (self.base_url, self.account),
                'X-Auth-Token': self.TOKEN,
                'X-Storage-Token': self.TOKEN})(env, start_response)
        if req.headers.get('X-Auth-Token') != self.TOKEN:
            return Response(status=401)(env, start_response)
        return self.app(env, start_response)
