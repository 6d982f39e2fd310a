"""A small Swift cluster served over real HTTP on loopback, for the remote
Swift client's unit tests.

``FakeSwift`` is a WSGI app (swob underneath, so ranges, conditionals and
HEAD bodies follow Swift's own rules) with tempauth-like ``/auth/v1.0``,
accounts, containers (JSON listings with ``prefix``, ``marker``,
``end_marker``, ``delimiter``, ``limit``, ``reverse``), Keystone v3/v2
password auth (``/v3/auth/tokens``, ``/v2.0/tokens``) and objects (PUT with
metadata, GET/HEAD, POST replacing metadata as Swift's object server does,
DELETE). ``serve(app)`` runs it with eventlet's WSGI server (HTTP/1.1
keep-alive) in a thread of its own and returns its base URL.

Test hooks: ``requests`` (every request seen, with its headers and the
client's port), ``expire_tokens()``, ``delays`` (seconds before answering a
path), ``body_stall`` (seconds to stall after the first body chunk), and
``fail_next`` (statuses to answer the next requests with).
"""

import hashlib
import json
import threading
import time

import eventlet
import eventlet.wsgi
from swift.common.swob import HTTPException, Request, Response, status_map
from swift.common.utils import Timestamp, split_path

# (user, password, user domain, project, project domain)
KEYSTONE_V3 = ('ks-user', 'ks-password', 'ud', 'proj', 'pd')
# (user, password, tenant)
KEYSTONE_V2 = ('ks-user', 'ks-password', 'tenant')
USERS = {'remote:tester': ('testing', ('AUTH_remote', 'AUTH_other')),
         'other:user': ('secret2', ('AUTH_someone',))}


class Seen:
    def __init__(self, req):
        self.method = req.method
        self.path = req.path
        self.query = req.query_string or ''
        self.headers = dict(req.headers)
        self.peer = (req.environ.get('REMOTE_ADDR'),
                     req.environ.get('REMOTE_PORT'))

    def __repr__(self):
        return '<%s %s?%s>' % (self.method, self.path, self.query)


class FakeSwift:
    def __init__(self):
        self.base_url = None
        self.tokens = {}
        # (account, container) -> {'headers': {}, 'objects': {name: obj}}
        self.containers = {}
        self.requests = []
        self.delays = {}
        self.body_stall = {}
        self.fail_next = []
        self.storage_host = None
        self._count = 0

    # -- hooks ------------------------------------------------------------

    def expire_tokens(self):
        self.tokens.clear()

    def put(self, account, container, name, body, headers=None):
        """Store an object directly (headers are WSGI strings, as Swift
        keeps them)."""
        objects = self.containers.setdefault(
            (account, container), {'headers': {}, 'objects': {}})['objects']
        ts = Timestamp.now()
        stored = {'Content-Type': 'application/octet-stream',
                  'Etag': hashlib.md5(body).hexdigest(),
                  'X-Timestamp': ts.normal,
                  'Last-Modified': time.strftime(
                      '%a, %d %b %Y %H:%M:%S GMT',
                      time.gmtime(ts.ceil()))}
        stored.update(headers or {})
        objects[name] = {'body': body, 'headers': stored, 'ts': ts}

    def seen(self, method=None):
        return [r for r in self.requests
                if method is None or r.method == method]

    # -- WSGI -------------------------------------------------------------

    def __call__(self, env, start_response):
        req = Request(env)
        self.requests.append(Seen(req))
        delay = self.delays.get(req.path)
        if delay:
            eventlet.sleep(delay)
        try:
            if self.fail_next:
                # a status line swob may not know (429, 498)
                start_response('%d Failed' % self.fail_next.pop(0),
                               [('Content-Length', '6')])
                return [b'failed']
            if req.path == '/auth/v1.0':
                resp = self.auth(req)
            elif req.path in ('/v3/auth/tokens', '/v2.0/tokens'):
                resp = self.keystone(req)
            else:
                resp = self.storage(req)
        except HTTPException as err:
            resp = err
        return resp(env, start_response)

    def auth(self, req):
        user = USERS.get(req.headers.get('X-Auth-User'))
        if not user or req.headers.get('X-Auth-Key') != user[0]:
            raise status_map[401]()
        self._count += 1
        token = 'AUTH_tk%032d' % self._count
        self.tokens[token] = user[1]
        host = self.storage_host or self.base_url
        return Response(status=200, headers={
            'X-Storage-Url': '%s/v1/%s' % (host, user[1][0]),
            'X-Auth-Token': token, 'X-Storage-Token': token,
            'X-Auth-Token-Expires': '86399'})

    def _token_for(self, accounts):
        self._count += 1
        token = 'AUTH_tk%032d' % self._count
        self.tokens[token] = accounts
        return token, '%s/v1/%s' % (self.storage_host or self.base_url,
                                    accounts[0])

    def keystone(self, req):
        """Password auth as Keystone v3 (``POST /v3/auth/tokens``) and
        v2 (``POST /v2.0/tokens``) answer it: the user ``KEYSTONE_USER``
        in a project (tenant) whose object-store endpoint is
        ``AUTH_remote``."""
        if req.method != 'POST':
            raise status_map[405]()
        auth = json.loads(req.body)['auth']
        if req.path.startswith('/v3/'):
            user = auth['identity']['password']['user']
            project = auth['scope']['project']
            ok = ((user['name'], user['password'], user['domain']['name'],
                   project['name'], project['domain']['name']) ==
                  KEYSTONE_V3)
        else:
            creds = auth['passwordCredentials']
            ok = (creds['username'], creds['password'],
                  auth.get('tenantName')) == KEYSTONE_V2
        if not ok:
            return Response(status=401, content_type='application/json',
                            body=b'{"error": {"code": 401}}')
        token, url = self._token_for(('AUTH_remote',))
        endpoint = {'id': 'e1', 'interface': 'public', 'url': url,
                    'region': 'RegionOne', 'region_id': 'RegionOne'}
        if req.path.startswith('/v3/'):
            body = {'token': {
                'methods': ['password'],
                'expires_at': '2099-01-01T00:00:00.000000Z',
                'issued_at': '2026-01-01T00:00:00.000000Z',
                'user': {'id': 'u1', 'name': KEYSTONE_V3[0],
                         'domain': {'id': 'd1', 'name': KEYSTONE_V3[2]}},
                'project': {'id': 'p1', 'name': KEYSTONE_V3[3],
                            'domain': {'id': 'd2',
                                       'name': KEYSTONE_V3[4]}},
                'catalog': [{'id': 's1', 'type': 'object-store',
                             'name': 'swift', 'endpoints': [endpoint]}]}}
            return Response(status=201, content_type='application/json',
                            headers={'X-Subject-Token': token},
                            body=json.dumps(body).encode())
        body = {'access': {
            'token': {'id': token, 'expires': '2099-01-01T00:00:00Z',
                      'tenant': {'id': 't1', 'name': KEYSTONE_V2[2]}},
            'user': {'id': 'u1', 'name': KEYSTONE_V2[0], 'roles': []},
            'serviceCatalog': [{'type': 'object-store', 'name': 'swift',
                                'endpoints': [{'publicURL': url,
                                               'region': 'RegionOne'}]}]}}
        return Response(status=200, content_type='application/json',
                        body=json.dumps(body).encode())

    def storage(self, req):
        _, account, container, obj = split_path(req.path, 2, 4, True)
        if account not in self.tokens.get(req.headers.get('X-Auth-Token'),
                                          ()):
            raise status_map[401]()
        if container is None:
            raise status_map[405]()
        if obj is None:
            return self.container(req, account, container)
        return self.object(req, account, container, obj)

    def container(self, req, account, container):
        key = (account, container)
        if req.method == 'PUT':
            created = key not in self.containers
            self.containers.setdefault(key, {'headers': {}, 'objects': {}})
            policy = req.headers.get('X-Storage-Policy')
            if policy:
                self.containers[key]['headers']['X-Storage-Policy'] = policy
            return Response(status=201 if created else 202)
        if key not in self.containers:
            raise status_map[404]()
        if req.method == 'HEAD':
            return Response(status=204,
                            headers=self.containers[key]['headers'])
        if req.method != 'GET':
            raise status_map[405]()
        return Response(status=200, content_type='application/json',
                        body=json.dumps(self.listing(req, key)).encode())

    def listing(self, req, key):
        params = req.params
        prefix = params.get('prefix', '')
        marker = params.get('marker', '')
        end_marker = params.get('end_marker', '')
        delimiter = params.get('delimiter', '')
        limit = int(params.get('limit', 10000))
        reverse = params.get('reverse') == 'true'
        objects = self.containers[key]['objects']
        names = sorted(objects, reverse=reverse)
        rows = []
        for name in names:
            if not name.startswith(prefix):
                continue
            if marker and (name <= marker if not reverse else name >= marker):
                continue
            if end_marker and (name >= end_marker if not reverse
                               else name <= end_marker):
                continue
            if delimiter:
                cut = name.find(delimiter, len(prefix))
                if cut >= 0:
                    subdir = name[:cut + len(delimiter)]
                    if rows and rows[-1].get('subdir') == subdir:
                        continue
                    if marker and subdir == marker:
                        continue
                    rows.append({'subdir': subdir})
                    if len(rows) >= limit:
                        break
                    continue
            stored = objects[name]
            rows.append({
                'name': name,
                'hash': stored['headers']['Etag'].strip('"'),
                'bytes': len(stored['body']),
                'content_type': stored['headers']['Content-Type'],
                'last_modified': stored['ts'].isoformat})
            if len(rows) >= limit:
                break
        return rows

    def object(self, req, account, container, obj):
        key = (account, container)
        objects = self.containers.get(key, {}).get('objects')
        if req.method == 'PUT':
            if objects is None:
                raise status_map[404]()
            body = req.body
            headers = {k: v for k, v in req.headers.items()
                       if k.lower().startswith('x-object-meta-') or
                       k.lower() in ('content-type', 'x-delete-at',
                                     'x-object-manifest')}
            self.put(account, container, obj, body, headers)
            etag = objects[obj]['headers']['Etag']
            if req.headers.get('Etag') not in (None, etag):
                del objects[obj]
                raise status_map[422]()
            return Response(status=201, headers={'Etag': etag})
        stored = (objects or {}).get(obj)
        if stored is None:
            raise status_map[404]()
        if req.method == 'DELETE':
            del objects[obj]
            return Response(status=204)
        if req.method == 'POST':
            kept = {k: v for k, v in stored['headers'].items()
                    if k in ('Etag', 'X-Timestamp', 'Last-Modified',
                             'X-Static-Large-Object')}
            kept['Content-Type'] = stored['headers']['Content-Type']
            for name, value in req.headers.items():
                if name.lower().startswith('x-object-meta-') or \
                        name.lower() in ('content-type', 'x-delete-at',
                                         'x-object-manifest',
                                         'content-disposition'):
                    kept[name.title()] = value
            stored['headers'] = kept
            return Response(status=202)
        resp = Response(status=200, headers=dict(stored['headers']),
                        body=stored['body'], request=req,
                        conditional_response=True)
        stall = self.body_stall.get(req.path)
        if stall and req.method == 'GET':
            resp.app_iter = self._stalling(stored['body'], stall)
            resp.content_length = len(stored['body'])
        return resp

    @staticmethod
    def _stalling(body, seconds):
        yield body[:1]
        eventlet.sleep(seconds)
        yield body[1:]


class _Quiet:
    def write(self, *args):
        pass


def serve(app):
    """Serve ``app`` on a free loopback port from a thread of its own;
    returns the base URL (``http://127.0.0.1:<port>``)."""
    sock = eventlet.listen(('127.0.0.1', 0))
    thread = threading.Thread(
        target=eventlet.wsgi.server, args=(sock, app),
        kwargs={'log': _Quiet(), 'log_output': False,
                # every chunk goes out as the app yields it
                'minimum_chunk_size': 1}, daemon=True)
    thread.start()
    return 'http://127.0.0.1:%d' % sock.getsockname()[1]
