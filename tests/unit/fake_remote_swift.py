"""An in-memory remote Swift cluster behind SwiftRemote's Swift-native face
(``request``, ``remote_container``, ``segments_container``,
``ensure_container``), for the sync daemon's unit tests.

It keeps what a real cluster with the SLO and DLO middlewares does that the
daemon depends on: ``ETag`` checked on PUT (422), ``X-Timestamp`` honoured
(409 for a write not newer than the stored version) only when
``keep_timestamps`` (gatekeeper's ``shunt_inbound_x_timestamp = false``),
PUT into a missing container 404, manifests validated against their
segments (400) and their ``ETag`` (422), an SLO's HEAD with Swift's SLO
Etag (quoted) and content size, a DLO's HEAD computed from a listing of its
segments, a POST replacing the metadata and kept headers (and dropping a
DLO's manifest header unless sent again), ``?multipart-manifest=get``.
"""

import base64
import hashlib
import json
import urllib.parse

from swift.common.utils import Timestamp, config_true_value

from shunt.core.remote import RemoteError

PASSED = ('content-disposition', 'content-encoding', 'content-language',
          'cache-control', 'expires', 'x-robots-tag', 'x-delete-at',
          'x-object-manifest')
KINDS = {401: 'auth', 404: 'not_found', 409: 'client', 412: 'client',
         422: 'client',
         400: 'client', 503: 'server', 500: 'server'}


def md5(data):
    return hashlib.md5(data).hexdigest()


class Response:
    def __init__(self, status, headers=None, body=b''):
        self.status = status
        self.headers = headers or {}
        self.body = body


def _read(body):
    if body is None:
        return b''
    if isinstance(body, bytes):
        return body
    if hasattr(body, 'read'):
        out = []
        while True:
            chunk = body.read(65536)
            if not chunk:
                return b''.join(out)
            out.append(chunk)
    return b''.join(body)


class FakeRemoteSwift:

    def __init__(self, keep_timestamps=True):
        self.keep_timestamps = keep_timestamps
        self.containers = {}        # name -> headers
        self.objects = {}           # (container, obj) -> dict
        self.requests = []          # (method, container, obj, headers, query)
        self.fail = {}              # (method, container, obj) -> [status]
        self.before = {}            # (method, container, obj) -> callable
        self.clock = 1800000000.0

    # -- names ---------------------------------------------------------------

    @staticmethod
    def remote_container(profile):
        return profile.aws_bucket + (profile.container
                                     if profile.all_containers else '')

    def segments_container(self, profile):
        return self.remote_container(profile) + '_segments'

    def ensure_container(self, profile, container):
        self.requests.append(('ENSURE', container, None, {}, None))
        if container not in self.containers:
            self.containers[container] = {
                'x-storage-policy': profile.storage_policy}

    # -- inspection --------------------------------------------------------

    def get(self, container, obj):
        return self.objects.get((container, obj))

    def calls(self, method=None):
        return [(m, c, o) for m, c, o, _, _ in self.requests
                if method is None or m == method]

    # -- the API -------------------------------------------------------------

    def request(self, profile, method, container, obj=None, headers=None,
                query=None, body=None, stream=False):
        headers = dict(headers or {})
        query = dict(query or {})
        self.requests.append((method, container, obj, headers, query))
        hook = self.before.pop((method, container, obj), None)
        if hook:
            hook()
        failing = self.fail.get((method, container, obj))
        if failing:
            status = failing.pop(0)
            raise RemoteError(KINDS.get(status, 'client'),
                              f'{status} injected', status=status)
        resp = getattr(self, '_' + method.lower())(
            container, obj, {k.lower(): v for k, v in headers.items()},
            query, body)
        if resp.status >= 300:
            raise RemoteError(KINDS.get(resp.status, 'client'),
                              f'{method} answered {resp.status}',
                              status=resp.status)
        return resp

    def _now(self):
        self.clock += 1
        return Timestamp(self.clock)

    def _stamp(self, headers, current):
        """The timestamp of a write, or None for a 409."""
        if self.keep_timestamps and 'x-timestamp' in headers:
            when = Timestamp(headers['x-timestamp'])
        else:
            when = self._now()
        if current is not None and current['ts'] >= when:
            return None
        return when

    def _put(self, container, obj, headers, query, body):
        if container not in self.containers:
            return Response(404)
        data = _read(body)
        if 'content-length' in headers and \
                int(headers['content-length']) != len(data):
            return Response(499)
        current = self.objects.get((container, obj))
        if headers.get('if-none-match') == '*' and current is not None:
            return Response(412)
        when = self._stamp(headers, current)
        if when is None:
            return Response(409)
        stored = {k: v for k, v in headers.items()
                  if k.startswith('x-object-meta-') or k in PASSED}
        stored['content-type'] = headers.get('content-type',
                                             'application/octet-stream')
        if query.get('multipart-manifest') == 'put':
            return self._put_manifest(container, obj, headers, data, stored,
                                      when)
        etag = md5(data)
        if 'etag' in headers and headers['etag'].strip('"') != etag:
            return Response(422)
        self.objects[(container, obj)] = {
            'body': data, 'etag': etag, 'ts': when, 'headers': stored}
        return Response(201, {'etag': etag})

    def _put_manifest(self, container, obj, headers, data, stored, when):
        stored_entries, parts, size = [], [], 0
        for entry in json.loads(data):
            if 'data' in entry:
                raw = base64.b64decode(entry['data'])
                parts.append(md5(raw))
                stored_entries.append({'data': entry['data']})
                size += len(raw)
                continue
            seg_c, seg_o = entry['path'].lstrip('/').split('/', 1)
            seg = self.objects.get((seg_c, seg_o))
            seg_size = None if seg is None else seg.get(
                'slo_size', len(seg['body']))
            if seg is None or seg['etag'] != entry['etag'] or \
                    entry['size_bytes'] not in (None, seg_size):
                return Response(400)
            if entry.get('range'):
                first, last = (int(x) for x in entry['range'].split('-'))
                size += last - first + 1
                parts.append('%s:%s;' % (seg['etag'], entry['range']))
            else:
                size += seg_size
                parts.append(seg['etag'])
            stored_entries.append(dict(
                {'name': entry['path'], 'hash': seg['etag'],
                 'bytes': seg_size},
                **({'range': entry['range']} if entry.get('range') else {}),
                **({'sub_slo': True} if 'slo_size' in seg else {})))
        slo_etag = md5(''.join(parts).encode())
        if 'etag' in headers and headers['etag'].strip('"') != slo_etag:
            return Response(422)
        stored['x-static-large-object'] = 'True'
        self.objects[(container, obj)] = {
            'body': json.dumps(stored_entries).encode(), 'etag': slo_etag,
            'ts': when, 'headers': stored, 'slo_size': size}
        return Response(201, {'etag': '"%s"' % slo_etag})

    def _answer(self, entry, query):
        headers = dict(entry['headers'])
        headers['x-timestamp'] = entry['ts'].normal
        if config_true_value(headers.get('x-static-large-object')) and \
                query.get('multipart-manifest') != 'get':
            headers['etag'] = '"%s"' % entry['etag']
            headers['content-length'] = str(entry['slo_size'])
            return headers, None
        if headers.get('x-object-manifest') and \
                query.get('multipart-manifest') != 'get':
            seg_c, prefix = urllib.parse.unquote(
                headers['x-object-manifest']).split('/', 1)
            segs = sorted((o, e) for (c, o), e in self.objects.items()
                          if c == seg_c and o.startswith(prefix))
            headers['etag'] = '"%s"' % md5(''.join(
                e['etag'] for _, e in segs).encode())
            headers['content-length'] = str(sum(
                len(e['body']) for _, e in segs))
            return headers, b''.join(e['body'] for _, e in segs)
        headers['etag'] = entry['etag']
        headers['content-length'] = str(len(entry['body']))
        return headers, entry['body']

    def _head(self, container, obj, headers, query, body):
        entry = self.objects.get((container, obj))
        if entry is None:
            return Response(404)
        return Response(200, self._answer(entry, query)[0])

    def _get(self, container, obj, headers, query, body):
        if obj is None:
            if container not in self.containers:
                return Response(404)
            prefix = query.get('prefix', '')
            names = sorted(o for c, o in self.objects if c == container and
                           o.startswith(prefix) and
                           o > query.get('marker', ''))
            return Response(200, {}, json.dumps(
                [{'name': n} for n in names]).encode())
        entry = self.objects.get((container, obj))
        if entry is None:
            return Response(404)
        out, data = self._answer(entry, query)
        return Response(200, out, data)

    def _post(self, container, obj, headers, query, body):
        entry = self.objects.get((container, obj))
        if entry is None:
            return Response(404)
        when = self._stamp(headers, entry)
        if when is None:
            return Response(409)
        kept = {k: v for k, v in entry['headers'].items()
                if k == 'x-static-large-object'}
        kept.update({k: v for k, v in headers.items()
                     if k.startswith('x-object-meta-') or k in PASSED})
        kept['content-type'] = headers.get(
            'content-type', entry['headers']['content-type'])
        entry['headers'] = kept
        entry['ts'] = when
        return Response(202)

    def _delete(self, container, obj, headers, query, body):
        entry = self.objects.get((container, obj))
        if entry is None:
            return Response(404)
        if self._stamp(headers, entry) is None:
            return Response(409)
        del self.objects[(container, obj)]
        return Response(204)
