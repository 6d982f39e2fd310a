"""The benchmarks' cluster: one all-in-one cluster, its data and clients.

:class:`Bench` starts a :class:`shunt.tools.aio.Cluster` (one proxy worker, the
production ``reload_interval`` of 15 s), a :class:`CountingProxy` in front
of its S3 endpoint, and writes the mapping file:

* ``ARCHIVE`` (``bench-archive``) is mapped to the bucket directly: the
  throughput, latency, memory and concurrency figures read from it;
* ``COUNTED`` (``bench-counted``) is mapped to the same bucket through the
  counting proxy: every remote call made for it is seen and counted;
* ``LOCAL`` (``bench-local``) is not mapped;
* ``DECOYS`` more profiles for other containers and accounts, so the
  mapping lookup works on a realistic table, not a single entry.

Beside the cluster's proxy (pipeline with ``cloud_shunt``) a second proxy,
the *plain* one, runs the very same configuration with ``cloud_shunt``
removed from the pipeline (:func:`shunt.tools.aio.proxy_pipeline`), on the same
backends, memcached and tokens. Both stay up, so comparisons alternate
between them every few seconds with no restart in between.
"""

import http.client
import os
import re
import sys
import time
import urllib.parse

from shunt.tools.aio import Cluster, Process, pick_ports, proxy_pipeline
from tests.bench.common import HOST, Client, worker_of
from tests.bench.countproxy import CountingProxy

ARCHIVE = 'bench-archive'
COUNTED = 'bench-counted'
LOCAL = 'bench-local'
DECOYS = 24


class Bench:
    def __init__(self, quick=False, log=print, keep_state_dir=False,
                 filter_conf=None):
        self.quick = quick
        self.log = log
        self.cluster = Cluster(reload_interval=15, proxy_workers=1,
                               keep_state_dir=keep_state_dir,
                               filter_conf=filter_conf)
        self.counting = None
        self.plain = None
        self.plain_port = None
        # profiles a phase maps for a while (see write_mappings)
        self.extra_profiles = []
        self.storage_url = self.token = self.account = None
        self._s3 = {}

    # -- lifecycle ------------------------------------------------------

    def start(self):
        t0 = time.monotonic()
        self.cluster.start()
        self.counting = CountingProxy(self.cluster.ports['s3']).start()
        self.storage_url, self.token = self.cluster.token()
        self.account = urllib.parse.urlsplit(
            self.storage_url).path.split('/')[2]
        self.write_mappings()
        self.cluster.restart_proxy()  # load the mappings now
        self.start_plain_proxy()
        self.log(f'cluster up in {time.monotonic() - t0:.1f}s '
                 f'(state dir {self.cluster.state_dir})')
        return self

    def stop(self):
        if self.plain is not None:
            self.plain.stop()
            self.plain = None
        if self.counting is not None:
            self.counting.stop()
        self.cluster.stop()

    def start_plain_proxy(self, timeout=30.0):
        """Start the proxy without ``cloud_shunt`` (see module doc)."""
        aio = self.cluster
        with open(aio.conf_path('proxy')) as fp:
            conf = fp.read()
        self.plain_port = pick_ports(1, taken=set(aio.ports.values()))[0]
        conf, n_port = re.subn(r'(?m)^bind_port = .*$',
                               f'bind_port = {self.plain_port}', conf)
        conf, n_pipe = re.subn(r'(?m)^pipeline = .*$',
                               f'pipeline = {proxy_pipeline(False)}', conf)
        if (n_port, n_pipe) != (1, 1):
            raise RuntimeError('unexpected proxy-server.conf layout')
        path = os.path.join(aio.state_dir, 'proxy-plain-server.conf')
        with open(path, 'w') as fp:
            fp.write(conf)
        self.plain = Process(
            'proxy-plain', [sys.executable, '-m', 'shunt.tools.aio_server',
                            'proxy', path, '-v'],
            os.path.join(aio.log_dir, 'proxy-plain-server.log'),
            cwd=aio.state_dir)
        self.plain.start()
        deadline = time.monotonic() + timeout
        while True:
            if not self.plain.running():
                raise RuntimeError('the plain proxy did not start:\n' +
                                   self.plain.tail())
            try:
                conn = http.client.HTTPConnection(HOST, self.plain_port,
                                                  timeout=1)
                conn.request('GET', '/healthcheck')
                if conn.getresponse().status == 200:
                    conn.close()
                    break
                conn.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError('the plain proxy does not answer:\n' +
                                   self.plain.tail())
            time.sleep(0.05)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def write_mappings(self):
        aio = self.cluster
        profiles = [aio.profile(self.account, ARCHIVE),
                    aio.profile(self.account, COUNTED,
                                aws_endpoint=self.counting.url)]
        for i in range(DECOYS):
            profiles.append(aio.profile(self.account, f'decoy-{i}'))
            profiles.append(aio.profile(f'AUTH_decoy{i}', ARCHIVE))
        aio.write_mappings(profiles + list(self.extra_profiles))

    # -- addresses and clients ------------------------------------------

    @property
    def proxy_port(self):
        return self.cluster.ports['proxy']

    def port(self, shunt=True):
        """The port of the proxy with (or without) the shunt."""
        return self.proxy_port if shunt else self.plain_port

    def proxy_pid(self, shunt=True):
        """The pid of the worker of the proxy with (or without) the
        shunt."""
        parent = self.cluster.procs['proxy'].pid if shunt \
            else self.plain.pid
        return worker_of(parent, self.cluster.proxy_workers)

    def path(self, container, obj=None):
        path = f'/v1/{self.account}/{urllib.parse.quote(container)}'
        if obj is not None:
            path += '/' + urllib.parse.quote(obj)
        return path

    def url(self, container, obj=None, query='', shunt=True):
        url = (f'http://{HOST}:{self.port(shunt)}'
               f'{self.path(container, obj)}')
        return url + (f'?{query}' if query else '')

    @property
    def auth_headers(self):
        return {'X-Auth-Token': self.token}

    def client(self, shunt=True):
        return Client(self.port(shunt), self.token)

    def s3(self, pool=10, endpoint=None):
        """A boto3 client of the S3 endpoint (or of ``endpoint``) for
        direct reads (the limit the shunt is compared with): the same
        signing and path style as the shunt's, ``pool`` connections."""
        aio = self.cluster
        endpoint = endpoint or aio.s3_endpoint
        if (pool, endpoint) not in self._s3:
            import boto3
            from botocore.config import Config
            self._s3[pool, endpoint] = boto3.session.Session().client(
                's3', endpoint_url=endpoint,
                aws_access_key_id=aio.s3_key,
                aws_secret_access_key=aio.s3_secret,
                region_name=aio.s3_region,
                config=Config(signature_version='s3v4',
                              s3={'addressing_style': 'path'},
                              max_pool_connections=pool,
                              retries={'mode': 'standard',
                                       'total_max_attempts': 1},
                              request_checksum_calculation='when_required',
                              response_checksum_validation='when_required',
                              connect_timeout=5, read_timeout=60))
        return self._s3[pool, endpoint]

    # -- data -----------------------------------------------------------

    def put_container(self, container):
        conn = self.cluster.swift_conn()
        try:
            conn.put_container(container)
        finally:
            conn.close()

    def put_local(self, container, objects):
        """Store ``{name: body}`` in Swift."""
        conn = self.cluster.swift_conn()
        try:
            conn.put_container(container)
            for name, body in objects.items():
                conn.put_object(container, name, body)
        finally:
            conn.close()

    def archive(self, container, name, body):
        """Put an object where the archive layout puts it (only there)."""
        return self.cluster.archive_object(self.account, container, name,
                                           body)
