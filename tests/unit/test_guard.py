from swift.common.swob import Request

from shunt.core.guard import FailFast, NegativeCache
from shunt.proxy.middleware import CloudShuntMiddleware
from tests.unit.helpers import BUCKET, FakeLogger, FakeSwift, write_mapping
from tests.unit.test_objects import archive


class FakeMemcache:
    def __init__(self):
        self.store = {}
        self.calls = []

    def get(self, key):
        self.calls.append(('get', key))
        return self.store.get(key)

    def set(self, key, value, time=0):
        self.calls.append(('set', key, time))
        self.store[key] = value

    def delete(self, key):
        self.calls.append(('delete', key))
        self.store.pop(key, None)


def test_fail_fast_opens_and_recovers():
    now = [0.0]
    ff = FailFast(3, 10, clock=lambda: now[0])
    for _ in range(2):
        assert ff.allows('e') and not ff.record('e', 'timeout')
    assert ff.record('e', 'connection')        # third failure opens
    assert not ff.allows('e')
    assert ff.allows('other')                   # per endpoint
    now[0] = 10.5
    assert ff.allows('e')                       # half-open probe
    assert ff.record('e', 'server')             # fails: open again
    assert not ff.allows('e')
    now[0] = 21
    assert ff.allows('e')
    ff.record('e')                              # success closes it
    assert ff.allows('e') and not ff.record('e', 'timeout')


def test_fail_fast_ignores_misses_and_refusals():
    ff = FailFast(1, 10)
    for kind in ('not_found', 'auth', 'range', 'client'):
        assert not ff.record('e', kind)
    assert ff.allows('e')
    assert FailFast(0, 10).allows('e')


def _shunt(tmp_path, conf=None, endpoint=None):
    profile = {'account': 'AUTH_a', 'container': 'c', 'aws_bucket': BUCKET,
               'aws_identity': 'id', 'aws_secret': 'sekrit',
               'merge_namespaces': True}
    if endpoint:
        profile['aws_endpoint'] = endpoint
    path = write_mapping(tmp_path / 'm.json', [profile])
    logger = FakeLogger()
    return CloudShuntMiddleware(FakeSwift(), dict(conf or {},
                                                  conf_file=path),
                                logger=logger), logger


def test_negative_cache_saves_remote_calls(tmp_path, s3):
    shunt, logger = _shunt(tmp_path, {'negative_cache_ttl': '30'})
    cache = FakeMemcache()
    env = {'swift.cache': cache}
    calls = []
    real = shunt.remote.get_object
    shunt.remote.get_object = lambda *a, **k: calls.append(a) or real(*a,
                                                                      **k)
    for _ in range(3):
        resp = Request.blank('/v1/AUTH_a/c/missing', environ=dict(env)) \
            .get_response(shunt)
        assert resp.status_int == 404
    assert len(calls) == 1
    assert ('increment', 'object.negative_cache_hit') in logger.metrics
    assert [c for c in cache.calls if c[0] == 'set'][0][2] == 30
    # a PUT through the proxy forgets the miss
    Request.blank('/v1/AUTH_a/c/missing', environ=dict(env),
                  method='PUT').get_response(shunt)
    archive(s3, 'missing', b'now here')
    resp = Request.blank('/v1/AUTH_a/c/missing', environ=dict(env)) \
        .get_response(shunt)
    assert resp.status_int == 200 and resp.body == b'now here'


def test_negative_cache_off_or_without_memcache(tmp_path, s3):
    shunt, _ = _shunt(tmp_path, {'negative_cache_ttl': '0'})
    cache = FakeMemcache()
    Request.blank('/v1/AUTH_a/c/missing', environ={'swift.cache': cache}) \
        .get_response(shunt)
    assert cache.calls == []
    assert not NegativeCache(10, None).is_missing({}, None, 'k')


def test_fail_fast_answers_503_at_once(tmp_path):
    shunt, logger = _shunt(tmp_path, {'fail_fast_threshold': '2',
                                      'fail_fast_period': '60',
                                      'conn_timeout': '0.5',
                                      's3_max_attempts': '1'},
                           endpoint='http://127.0.0.1:9')
    calls = []
    real = shunt.remote.s3.client
    shunt.remote.s3.client = lambda p: calls.append(p) or real(p)
    for _ in range(5):
        resp = Request.blank('/v1/AUTH_a/c/o').get_response(shunt)
        assert resp.status_int == 503
        assert b'remote store' in resp.body
    assert len(calls) == 2
    assert resp.headers['Retry-After'].isdigit()
    assert ('increment', 'fail_fast.open') in logger.metrics
