"""Protection of the bucket and of the proxy: a negative cache and fail-fast.

Negative cache
    "This name is not in the bucket" is remembered in memcache
    (``swift.cache``, shared by every proxy) for ``negative_cache_ttl``
    seconds, so a flood of GETs for missing names in mapped containers costs
    one S3 request per name and period. Only true remote misses are cached
    (never errors, never names hidden by a delete). A PUT, POST or DELETE
    of the name through this proxy forgets the entry; an object written to
    the bucket behind the proxy's back becomes visible within the TTL.
    Without memcache nothing is cached and nothing fails.

Fail fast
    After ``fail_fast_threshold`` consecutive failed calls (unreachable,
    timeout, 5xx, throttling) to one endpoint, calls to it are refused at
    once for ``fail_fast_period`` seconds: clients get ``503`` immediately
    instead of each waiting for a timeout. The first call after the period
    is let through; a success closes the circuit, a failure opens it again.
    The state is per proxy worker.
"""

import hashlib
import time

MISS_PREFIX = 'cloud_shunt/miss/'
# failures that say the endpoint is in trouble (not: the object is missing,
# the credentials are wrong, the range is bad)
OUTAGE_KINDS = frozenset(('timeout', 'connection', 'server', 'throttled'))


def miss_key(profile, key):
    where = [profile.aws_endpoint, profile.aws_bucket, key]
    if getattr(profile, 'protocol', 's3') == 'swift':
        # the key is the bare object name there: the remote container
        # (and account) tell the containers of a /* profile apart
        where[1:1] = [profile.remote_account or '', profile.aws_identity,
                      profile.container]
    digest = hashlib.md5('\n'.join(where).encode('utf-8'),
                         usedforsecurity=False).hexdigest()
    return MISS_PREFIX + digest


class NegativeCache:
    def __init__(self, ttl, logger):
        self.ttl = ttl
        self.logger = logger

    def _cache(self, env):
        return env.get('swift.cache') if self.ttl > 0 else None

    def is_missing(self, env, profile, key):
        cache = self._cache(env)
        if cache is None:
            return False
        try:
            return bool(cache.get(miss_key(profile, key)))
        except Exception:  # memcache trouble must never fail a read
            return False

    def remember_missing(self, env, profile, key):
        cache = self._cache(env)
        if cache is not None:
            try:
                cache.set(miss_key(profile, key), 1, time=self.ttl)
            except Exception:
                pass

    def forget(self, env, profile, key):
        cache = self._cache(env)
        if cache is not None:
            try:
                cache.delete(miss_key(profile, key))
            except Exception:
                pass


class FailFast:
    """A circuit breaker per remote endpoint (and credentials)."""

    def __init__(self, threshold, period, clock=time.monotonic):
        self.threshold = threshold
        self.period = period
        self.clock = clock
        self._failures = {}
        self._open_until = {}

    def allows(self, endpoint):
        if self.threshold <= 0:
            return True
        until = self._open_until.get(endpoint)
        if until is None:
            return True
        if self.clock() >= until:
            # half-open: this call probes the endpoint
            del self._open_until[endpoint]
            self._failures[endpoint] = self.threshold - 1
            return True
        return False

    def record(self, endpoint, kind=None):
        """Note the outcome of a call (``kind`` None for success)."""
        if kind is None or kind not in OUTAGE_KINDS:
            self._failures.pop(endpoint, None)
            return False
        count = self._failures.get(endpoint, 0) + 1
        self._failures[endpoint] = count
        if self.threshold > 0 and count >= self.threshold:
            self._open_until[endpoint] = self.clock() + self.period
            return True
        return False
