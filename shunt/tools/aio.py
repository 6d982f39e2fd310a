"""An all-in-one Swift cluster with an S3 endpoint, for demos and tests.

:class:`Cluster` starts, on 127.0.0.1 and in a state directory of its own
(a fresh temporary directory unless one is given):

* ``memcached`` (tempauth keeps its tokens there);
* an S3 endpoint, with a default bucket: moto in server mode (``python -m
  moto.server``), or with ``s3_backend='s3api'`` a second Swift proxy
  running Swift's own ``s3api`` (its buckets are containers of the
  account ``AUTH_store`` on this cluster's servers; its config is
  ``s3api-proxy-server.conf``, its log ``log/s3.log``);
* Swift's account, container, object and proxy servers, each a separate
  process started from config files and 1-replica rings written into the
  state directory. The proxy runs this project's ``cloud_shunt`` filter.

Nothing is read from ``/etc/swift``: every server is started through
:mod:`shunt.tools.aio_server`, which makes Swift use the state directory's
``swift.conf`` (two storage policies, ``gold`` and ``silver``, and the
configured ``max_file_size``).

Layout of the state directory::

    swift.conf  *.ring.gz  builders/     cluster config and rings
    {account,container,object,proxy}-server.conf
    cloud-shunt.json                     the mapping file
    log/<component>.log                  every process's console output
    srv/<device>/                        the storage devices

Container nodes and the sync daemon: ``Cluster(container_replicas=3)``
runs three container servers (``container``, ``container-1``,
``container-2``: same IP, own ports, own ``devices`` roots ``srv``,
``srv-1``, ``srv-2``) behind one 3-replica container ring, each a separate
node of that ring; the default is one. Every container server's config
carries a ``[cloud-shunt-sync]`` section (:data:`SYNC_DEFAULTS`: the
cluster's mapping file, ``status_dir`` ``sync-status/<node>``, a short
``interval`` and ``verification_slack``, fast S3 timeouts; change it with
:meth:`Cluster.configure_sync`), so ``cloud-shunt-sync <node's conf>``
runs the daemon as on a real container node: :meth:`Cluster.sync_once`
(one pass on one node or on all at once: exit status and output),
:meth:`Cluster.start_sync` (long-running, or one pass awaited with
:meth:`Cluster.wait_sync`), :meth:`Cluster.stop_sync`,
:meth:`Cluster.kill_sync` (SIGKILL), :meth:`Cluster.sync_output` and
:meth:`Cluster.sync_log_path`; :meth:`Cluster.stop_container_server` and
:meth:`Cluster.start_container_server` take one container node down and
up. More state::

    srv-<n>/  sync-status/<node>/        container node n's devices, and
                                         each node's daemon progress files
    log/sync-<node>.log                  each node's daemon output

The archive can also be another Swift cluster: ``s3_backend='swift'``
starts a second, independent all-in-one Swift (:mod:`shunt.tools.aio_remote`,
``remote/`` in the state directory, processes ``remote-*``) and the helpers
below (:meth:`Cluster.profile`, :meth:`Cluster.archive_object`,
:meth:`Cluster.create_bucket`, :meth:`Cluster.archived_head`,
:meth:`Cluster.stop_s3`/:meth:`Cluster.start_s3`) work on it; the S3-only
ones (:meth:`Cluster.s3_client`, :attr:`Cluster.s3_endpoint`) raise
:class:`ClusterError` there. :data:`REMOTE_BACKENDS` names every backend.

Users (tempauth): ``test:tester``/``testing`` (admin of ``AUTH_test``),
``test:tester3``/``testing3`` (non-admin user of ``AUTH_test``) and
``test2:tester2``/``testing2`` (admin of ``AUTH_test2``).

Example::

    with Cluster(reload_interval=0) as aio:
        aio.write_mappings([aio.profile('AUTH_test', 'photos')])
        aio.archive_object('AUTH_test', 'photos', 'cat.jpg', b'...')
        conn = aio.swift_conn()
        headers, body = conn.get_object('photos', 'cat.jpg')
"""

import atexit
import http.client
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings

from shunt.core import layout
from shunt.tools.aio_remote import RemoteSwift

HOST = '127.0.0.1'
# below Linux's ephemeral range (32768-60999), so client sockets in
# TIME_WAIT never hold them
PORT_RANGE = (20000, 30000)
DEFAULT_BUCKET = 'cloud-shunt-archive'
DEFAULT_MAX_FILE_SIZE = 5368709122
S3_KEY = 'cloud-shunt-aio-key'
S3_SECRET = 'cloud-shunt-aio-secret'
S3_REGION = 'us-east-1'
# the S3 implementations the cluster can run (see Cluster's s3_backend)
S3_BACKENDS = ('moto', 's3api')
# every archive store the cluster can run: the S3 ones and a remote Swift
REMOTE_BACKENDS = S3_BACKENDS + ('swift',)
# s3api: the tempauth account holding the buckets and its user, whose
# name is the S3 access key ("account:user", as tempauth wants it)
S3API_ACCOUNT = 'store'
S3API_USER = 'archiver'
# its key (checked, unlike moto's): distinctive, so tests can tell whether
# any part of it leaks
S3API_SECRET = 'Store-Secret-Kq4Vn/w+2'
S3API_PIPELINE = ('catch_errors gatekeeper healthcheck proxy-logging cache '
                  's3api tempauth copy slo dlo proxy-logging proxy-server')
USERS = (
    # (account, user, key, groups)
    ('test', 'tester', 'testing', '.admin'),
    ('test', 'tester3', 'testing3', ''),
    ('test2', 'tester2', 'testing2', '.admin'),
)
BACKENDS = ('account', 'container', 'object')
# rings: (ring file name, server, device)
RINGS = (
    ('account', 'account', 'acct'),
    ('container', 'container', 'cont'),
    ('object', 'object', 'obj'),
    ('object-1', 'object', 'obj'),
)
PIPELINE = ('catch_errors gatekeeper healthcheck proxy-logging cache '
            'listing_formats tempauth copy cloud_shunt slo dlo '
            'versioned_writes symlink proxy-logging proxy-server')


def proxy_pipeline(shunt_in_pipeline=True):
    """The proxy's pipeline, with or without ``cloud_shunt`` (everything
    else identical, for side-by-side comparisons)."""
    if shunt_in_pipeline:
        return PIPELINE
    return ' '.join(f for f in PIPELINE.split() if f != 'cloud_shunt')
STOP_GRACE = 5.0
LOG_TAIL_LINES = 30
# the [cloud-shunt-sync] section of every container server's config (plus
# conf_file, status_dir and log_name, set per node); Cluster(sync_conf=...)
# and Cluster.configure_sync() change it
SYNC_DEFAULTS = {
    'interval': 2,
    'verification_slack': 5,
    'concurrency': 4,
    'conn_timeout': 2,
    'read_timeout': 10,
    's3_max_attempts': 2,
    'log_level': 'INFO',
}
SYNC_ONCE_TIMEOUT = 300.0
# a port found in use at start-up is retried with new ports this often
START_ATTEMPTS = 3


class ClusterError(RuntimeError):
    """A component of the cluster failed to start (or to stop)."""


def _port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_ports(count, taken=()):
    """``count`` distinct ports in :data:`PORT_RANGE` free right now."""
    rng = random.SystemRandom()
    ports = []
    for _ in range(2000):
        port = rng.randint(*PORT_RANGE)
        if port in ports or port in taken:
            continue
        if _port_is_free(port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise ClusterError(f'no {count} free ports found in {PORT_RANGE}')


def _port_taken(message):
    """Does a start-up failure say that a port was taken meanwhile?"""
    return 'Address already in use' in message or (
        'Could not bind to' in message)


def tail(path, lines=LOG_TAIL_LINES):
    """The last ``lines`` lines of a text file ('' if unreadable)."""
    try:
        with open(path, 'rb') as fp:
            fp.seek(0, os.SEEK_END)
            size = fp.tell()
            fp.seek(max(0, size - 64 * 1024))
            data = fp.read()
    except OSError:
        return ''
    text = data.decode('utf-8', 'replace')
    return '\n'.join(text.splitlines()[-lines:])


def _set_parent_death_signal():
    """Child side of :class:`Process`: get SIGTERM if the parent dies, so a
    killed test run leaves no servers behind (Linux only, best effort)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except Exception:
        pass


class Process:
    """One component: a child process in its own session, its console
    output appended to ``log_path``."""

    def __init__(self, name, argv, log_path, cwd=None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.popen = None

    def start(self):
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        with open(self.log_path, 'ab') as log:
            log.write(f'--- {time.strftime("%Y-%m-%d %H:%M:%S")} starting '
                      f'{self.name}: {" ".join(self.argv)}\n'.encode())
            log.flush()
            with warnings.catch_warnings():
                # preexec_fn means fork(), and eventlet (imported by Swift)
                # warns on every fork; harmless here: the child execs
                warnings.filterwarnings('ignore', 'Using fork',
                                        DeprecationWarning)
                self.popen = subprocess.Popen(
                    self.argv, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, cwd=self.cwd, env=env,
                    start_new_session=True, close_fds=True,
                    preexec_fn=(_set_parent_death_signal
                                if sys.platform.startswith('linux')
                                else None))

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def running(self):
        return self.popen is not None and self.popen.poll() is None

    def exit_status(self):
        return None if self.popen is None else self.popen.poll()

    def signal(self, signum):
        """Signal the whole process group (servers fork workers)."""
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, signum)
        except ProcessLookupError:
            pass
        except PermissionError:
            self.popen.send_signal(signum)

    def reap(self, timeout):
        """Wait up to ``timeout`` for the process; kill its group with
        SIGKILL after that. Returns when it is gone."""
        if self.popen is None:
            return
        try:
            self.popen.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait()
        # workers left in the group (their parent died first) go too
        self.signal(signal.SIGKILL)
        self.popen = None

    def stop(self, grace=STOP_GRACE):
        if self.popen is None:
            return
        self.signal(signal.SIGTERM)
        self.reap(grace)

    def tail(self, lines=LOG_TAIL_LINES):
        return tail(self.log_path, lines)


def _http_status(port, path, headers=None, timeout=1.0):
    """(status, headers) of a GET on 127.0.0.1:port, or None when the
    server does not answer."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request('GET', path, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.headers
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _memcached_answers(port, timeout=1.0):
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b'version\r\n')
            return sock.recv(64).startswith(b'VERSION')
    except OSError:
        return False


def _ini(sections):
    """Render ``[(section, {option: value})]`` as an ini file."""
    out = []
    for section, options in sections:
        out.append(f'[{section}]')
        for key, value in options.items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = 'true' if value else 'false'
            out.append(f'{key} = {value}')
        out.append('')
    return '\n'.join(out)


def _write_atomic(path, data):
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'wb') as fp:
        fp.write(data)
        fp.flush()
        os.fsync(fp.fileno())
    os.replace(tmp, path)


class Cluster:
    """An all-in-one Swift + S3 cluster on 127.0.0.1 (see module doc).

    :param state_dir: directory for configs, rings, data and logs; created
        if missing. Default: a new temporary directory, removed by
        :meth:`stop` (a given directory is kept).
    :param reload_interval: the ``cloud_shunt`` filter's reload interval
        (0: every request sees the current mapping file).
    :param filter_conf: extra ``[filter:cloud_shunt]`` options.
    :param proxy_conf: extra ``[app:proxy-server]`` options.
    :param proxy_workers: proxy ``workers``.
    :param max_file_size: ``[swift-constraints] max_file_size``.
    :param bucket: the default bucket, created at start.
    :param start_timeout: seconds to wait for every component to be ready.
    :param keep_state_dir: keep a temporary state directory after
        :meth:`stop` (to read the logs of a failed run).
    :param shunt_in_pipeline: run ``cloud_shunt`` in the proxy pipeline
        (False: the same pipeline without it, e.g. to measure its
        overhead).
    :param container_replicas: container servers, one per replica of the
        container ring (1 or more; 3 for the daemon's distribution).
    :param sync_conf: options of the ``[cloud-shunt-sync]`` section over
        :data:`SYNC_DEFAULTS` (a value of None removes one).
    :param s3_backend: the S3 endpoint: ``moto`` (moto's server, in memory)
        or ``s3api`` (a second Swift proxy with Swift's own ``s3api`` and
        ``tempauth`` on this cluster's account, container and object
        servers; the buckets are containers of the account ``AUTH_store``
        and :attr:`s3_key` is ``store:archiver``). Everything that uses
        :attr:`s3_endpoint`, :meth:`s3_client`, :meth:`create_bucket`,
        :meth:`stop_s3` and :meth:`start_s3` works with either; s3api's
        buckets survive :meth:`stop_s3`, moto's do not. ``swift``: the
        archive is a second Swift cluster (:attr:`remote`, see
        :mod:`shunt.tools.aio_remote`); :attr:`s3_key`/:attr:`s3_secret`
        are then its user and key.

    Every component is started in its own session (so a terminal's Ctrl-C
    reaches only the controlling process, which stops them in order) and
    gets SIGTERM if the thread that started it goes away (Linux
    ``PR_SET_PDEATHSIG``): a killed test run leaves nothing behind. Start
    and restart components from a long-lived thread (normally the main
    one).
    """

    def __init__(self, state_dir=None, reload_interval=15, filter_conf=None,
                 proxy_conf=None, proxy_workers=1,
                 max_file_size=DEFAULT_MAX_FILE_SIZE, bucket=DEFAULT_BUCKET,
                 start_timeout=30.0, keep_state_dir=False,
                 shunt_in_pipeline=True, container_replicas=1,
                 sync_conf=None, s3_backend='moto'):
        if s3_backend not in REMOTE_BACKENDS:
            raise ValueError(f's3_backend must be one of {REMOTE_BACKENDS}'
                             f', got {s3_backend!r}')
        self.s3_backend = s3_backend
        if int(container_replicas) < 1:
            raise ValueError('container_replicas must be at least 1')
        self.container_replicas = int(container_replicas)
        self.sync_conf = dict(SYNC_DEFAULTS, **(sync_conf or {}))
        self._remove_state_dir = state_dir is None and not keep_state_dir
        self.state_dir = os.path.abspath(
            state_dir or tempfile.mkdtemp(prefix='cloud-shunt-aio-'))
        self.reload_interval = reload_interval
        self.filter_conf = dict(filter_conf or {})
        self.proxy_conf = dict(proxy_conf or {})
        self.proxy_workers = proxy_workers
        self.shunt_in_pipeline = bool(shunt_in_pipeline)
        self.max_file_size = int(max_file_size)
        self.bucket = bucket
        self.start_timeout = start_timeout
        self.s3_key = S3_KEY if s3_backend == 'moto' else \
            f'{S3API_ACCOUNT}:{S3API_USER}'
        self.s3_secret = S3_SECRET if s3_backend == 'moto' else S3API_SECRET
        if s3_backend == 'swift':
            # the archive's credentials (secret-leak checks look for them)
            from shunt.tools.aio_remote import REMOTE_KEY, REMOTE_USER
            self.s3_key, self.s3_secret = REMOTE_USER, REMOTE_KEY
        self.s3_region = S3_REGION
        self.mapping_file = os.path.join(self.state_dir, 'cloud-shunt.json')
        self.log_dir = os.path.join(self.state_dir, 'log')
        self.devices_dir = os.path.join(self.state_dir, 'srv')
        self.ports = {}
        self.procs = {}
        self._s3_client = None
        self._last_mapping_mtime = 0
        self._atexit = None
        self.started = False
        self._sync_offsets = {}
        self.remote = (RemoteSwift(self) if s3_backend == 'swift'
                       else None)

    # -- addresses ------------------------------------------------------

    @property
    def proxy_url(self):
        return f'http://{HOST}:{self.ports["proxy"]}'

    @property
    def auth_url(self):
        return self.proxy_url + '/auth/v1.0'

    @property
    def s3_endpoint(self):
        self._s3_only('s3_endpoint')
        return f'http://{HOST}:{self.ports["s3"]}'

    def _s3_only(self, what):
        if self.remote is not None:
            raise ClusterError(
                f'{what}: the archive of this cluster is a remote Swift '
                f'(s3_backend={self.s3_backend!r}), not an S3 store; use '
                f'the backend-neutral helpers (remote_endpoint, '
                f'archive_object, archived_head) or .remote')

    @property
    def remote_endpoint(self):
        """The archive's base URL: the S3 endpoint, or the remote Swift
        proxy's ``http://127.0.0.1:<port>`` (its auth URL, the profiles'
        ``aws_endpoint``, is ``<remote_endpoint>/auth/v1.0``)."""
        return self.remote.url if self.remote else self.s3_endpoint

    @property
    def remote_identity(self):
        """The profiles' ``aws_identity``."""
        from shunt.tools.aio_remote import REMOTE_USER
        return REMOTE_USER if self.remote else self.s3_key

    @property
    def remote_secret(self):
        """The profiles' ``aws_secret``."""
        from shunt.tools.aio_remote import REMOTE_KEY
        return REMOTE_KEY if self.remote else self.s3_secret

    @property
    def memcache_servers(self):
        return f'{HOST}:{self.ports["memcached"]}'

    def log_path(self, component):
        """The log file of ``component`` (``proxy``, ``account``,
        ``container`` (or another container node's name), ``object``,
        ``s3``, ``memcached`` or ``sync-<container node>``)."""
        name = f'{component}-server' if component in self.backend_nodes + (
            'proxy',) else component
        return os.path.join(self.log_dir, f'{name}.log')

    @property
    def proxy_log_path(self):
        return self.log_path('proxy')

    def conf_path(self, server):
        return os.path.join(self.state_dir, f'{server}-server.conf')

    # -- container nodes ------------------------------------------------

    @property
    def container_nodes(self):
        """The container servers' names, in ring device order:
        ``('container',)`` or ``('container', 'container-1', ...)``."""
        return ('container',) + tuple(
            f'container-{i}' for i in range(1, self.container_replicas))

    @property
    def backend_nodes(self):
        """Every account, container and object server's name."""
        return ('account',) + self.container_nodes + ('object',)

    def container_node(self, node):
        """A container node's name, from its name or its index."""
        if isinstance(node, int):
            return self.container_nodes[node]
        if node not in self.container_nodes:
            raise ValueError(f'no container node {node!r}')
        return node

    def node_devices_dir(self, server):
        """The ``devices`` root of a server: container node n > 0 has its
        own (``srv-<n>``), so that no node sees another's replicas."""
        if server in self.container_nodes[1:]:
            return os.path.join(self.state_dir,
                                'srv-' + server.rsplit('-', 1)[1])
        return self.devices_dir

    def node_device(self, server):
        """The ring device name of a container node."""
        if server == 'container':
            return 'cont'
        return 'cont-' + server.rsplit('-', 1)[1]

    # -- lifecycle ------------------------------------------------------

    def __enter__(self):
        if not self.started:
            self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def start(self):
        """Write the configuration, start every component and wait until
        all are ready; raises :class:`ClusterError` (after stopping what
        was started) naming the failing component."""
        if self.started:
            return self
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._start_once()
            except ClusterError as err:
                self._stop_processes()
                if attempt < START_ATTEMPTS and _port_taken(str(err)):
                    continue
                raise
            break
        self.started = True
        if self._atexit is None:
            self._atexit = self.stop
            atexit.register(self._atexit)
        return self

    def _start_once(self):
        for path in (self.state_dir, self.log_dir, self.devices_dir):
            os.makedirs(path, exist_ok=True)
        names = ('memcached', 's3') + self.backend_nodes + ('proxy',)
        if self.remote is not None:
            from shunt.tools.aio_remote import PROCS
            names = ('memcached',) + self.backend_nodes + ('proxy',) + PROCS
        self.ports = dict(zip(names, pick_ports(len(names)),
                              strict=True))
        self._s3_client = None  # bound to the previous endpoint
        self._write_swift_conf()
        self._write_rings()
        for server in self.backend_nodes:
            self._write_backend_conf(server)
        self._write_proxy_conf(self.filter_conf, self.proxy_conf)
        if not os.path.exists(self.mapping_file):
            self.write_mappings([])
        deadline = time.monotonic() + self.start_timeout
        self._spawn_memcached()
        self._spawn_s3()
        for server in self.backend_nodes:
            self._spawn_swift(server)
        # the proxy starts while the others come up: it only needs them
        # when requests arrive
        self._spawn_swift('proxy')
        self._wait_until(deadline, 'memcached',
                         lambda: _memcached_answers(self.ports['memcached']))
        self._wait_s3(deadline)
        for server in self.backend_nodes:
            self._wait_healthcheck(server, deadline)
        self._wait_proxy(deadline)

    def stop(self):
        """Stop every component (SIGTERM, SIGKILL after a grace period);
        remove the state directory if it was a temporary one."""
        self._stop_processes()
        self.started = False
        if self._atexit is not None:
            atexit.unregister(self._atexit)
            self._atexit = None
        if self._remove_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _stop_processes(self, names=None):
        names = list(self.procs) if names is None else names
        procs = [self.procs.pop(n) for n in names if n in self.procs]
        for proc in procs:
            proc.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in procs:
            proc.reap(deadline - time.monotonic())

    # -- waiting --------------------------------------------------------

    def _failure(self, name, what):
        proc = self.procs.get(name)
        log = self.log_path(name)
        status = proc.exit_status() if proc else None
        last = tail(log)
        if status is not None:
            what = f'exited with status {status} ({what})'
            # the last line of a dying server is usually its error
            lines = [line for line in last.splitlines() if line.strip()]
            if lines and not lines[-1].startswith('--- '):
                what += f': {lines[-1].strip()}'
        return ClusterError(
            f'{name}: {what}\n--- last lines of {log} ---\n{last}')

    def _wait_until(self, deadline, name, ready, what='not ready'):
        while True:
            proc = self.procs.get(name)
            if proc is not None and not proc.running():
                raise self._failure(name, 'failed to start')
            if ready():
                return
            if time.monotonic() > deadline:
                raise self._failure(
                    name, f'{what} after {self.start_timeout:g}s')
            time.sleep(0.05)

    def _wait_healthcheck(self, server, deadline):
        port = self.ports[server]
        self._wait_until(
            deadline, server,
            lambda: (_http_status(port, '/healthcheck') or (0,))[0] == 200,
            what='no 200 from /healthcheck')

    def _wait_s3(self, deadline):
        if self.remote is not None:
            self.remote.wait(deadline)
            self.create_bucket(self.bucket)
            return
        self._wait_until(
            deadline, 's3',
            lambda: _http_status(self.ports['s3'], '/') is not None,
            what='S3 endpoint does not answer')
        while True:
            try:
                self.create_bucket(self.bucket)
                return
            except Exception as err:
                # s3api answers before the servers behind it do
                if time.monotonic() > deadline:
                    raise self._failure('s3', f'cannot create bucket '
                                              f'{self.bucket}: {err}')
            time.sleep(0.1)

    def _wait_proxy(self, deadline):
        self._wait_healthcheck('proxy', deadline)
        user, key = 'test:tester', 'testing'

        def token_ok():
            got = _http_status(self.ports['proxy'], '/auth/v1.0',
                               {'X-Auth-User': user, 'X-Auth-Key': key})
            return bool(got and got[0] == 200 and
                        got[1].get('X-Auth-Token'))
        self._wait_until(deadline, 'proxy', token_ok,
                         what=f'no tempauth token for {user}')

    # -- components -----------------------------------------------------

    def _spawn(self, name, argv):
        log = self.log_path(name)
        proc = Process(name, argv, log, cwd=self.state_dir)
        proc.start()
        self.procs[name] = proc
        return proc

    def _memcached_argv(self, port):
        binary = shutil.which('memcached') or '/usr/bin/memcached'
        if not os.path.exists(binary):
            raise ClusterError('memcached: not installed (run '
                               'tools/bootstrap.sh)')
        argv = [binary, '-l', HOST, '-p', str(port),
                '-U', '0', '-m', '64', '-c', '1024']
        if os.geteuid() == 0:
            argv += ['-u', 'root']
        return argv

    def _spawn_memcached(self):
        self._spawn('memcached', self._memcached_argv(self.ports['memcached']))

    def _spawn_s3(self):
        if self.remote is not None:
            self.remote.write_config()
            self.remote.spawn()
            return
        if self.s3_backend == 's3api':
            self._write_s3api_conf()
            self._spawn('s3', [sys.executable, '-m',
                               'shunt.tools.aio_server', 'proxy',
                               self.s3api_conf_path, '-v'])
            return
        self._spawn('s3', [sys.executable, '-m', 'moto.server', '-H', HOST,
                           '-p', str(self.ports['s3'])])

    def _spawn_swift(self, server):
        kind = 'container' if server in self.container_nodes else server
        self._spawn(server, [sys.executable, '-m', 'shunt.tools.aio_server',
                             kind, self.conf_path(server), '-v'])

    def stop_s3(self):
        """Stop the S3 endpoint (moto: every bucket and object is lost;
        s3api: only its proxy stops, the buckets stay in Swift); for a
        remote Swift, its proxy (its data stays)."""
        if self.remote is not None:
            self.remote.stop_proxy()
            return
        self._stop_processes(['s3'])

    def start_s3(self):
        """Start the S3 endpoint again on the same port, with the default
        bucket (moto: empty; s3api: as it was; a remote Swift: its
        proxy)."""
        if self.remote is not None:
            self.remote.start_proxy()
            return
        self._stop_processes(['s3'])
        self._spawn_s3()
        self._wait_s3(time.monotonic() + self.start_timeout)

    def stop_memcached(self):
        self._stop_processes(['memcached'])

    def start_memcached(self):
        self._stop_processes(['memcached'])
        self._spawn_memcached()
        self._wait_until(time.monotonic() + self.start_timeout, 'memcached',
                         lambda: _memcached_answers(self.ports['memcached']))

    def restart_proxy(self, filter_conf=None, proxy_conf=None,
                      shunt_in_pipeline=None, pipeline=None):
        """Rewrite the proxy config and restart only the proxy.

        ``filter_conf``/``proxy_conf`` are applied on top of the
        constructor's options (a value of None removes an option);
        ``shunt_in_pipeline`` (True/False) overrides the constructor's
        choice for this start only; ``pipeline`` replaces the whole
        pipeline string for this start; ``restart_proxy()`` restores the
        constructor's configuration.
        Raises :class:`ClusterError` with the proxy's output when it does
        not start (the proxy stays down until the next restart).
        """
        self._stop_processes(['proxy'])
        self._write_proxy_conf(
            dict(self.filter_conf, **(filter_conf or {})),
            dict(self.proxy_conf, **(proxy_conf or {})),
            shunt_in_pipeline, pipeline)
        self._spawn_swift('proxy')
        try:
            self._wait_proxy(time.monotonic() + self.start_timeout)
        except ClusterError:
            self._stop_processes(['proxy'])
            raise

    def proxy_log_offset(self):
        """The current end of the proxy's log (for :meth:`proxy_log_since`)."""
        with open(self.proxy_log_path, 'rb') as fp:
            return fp.seek(0, 2)

    def proxy_log_since(self, offset):
        """What the proxy logged after ``offset``."""
        with open(self.proxy_log_path, 'rb') as fp:
            fp.seek(offset)
            return fp.read().decode('utf-8', 'replace')

    def proxy_running(self):
        proc = self.procs.get('proxy')
        return bool(proc and proc.running())

    def stop_container_server(self, node):
        """Stop one container server (its daemon keeps running, if any):
        updates for it wait in the object server's async pendings."""
        self._stop_processes([self.container_node(node)])

    def start_container_server(self, node):
        """Start a stopped container server again, on its port."""
        name = self.container_node(node)
        self._stop_processes([name])
        self._spawn_swift(name)
        self._wait_healthcheck(name, time.monotonic() + self.start_timeout)

    # -- the sync daemon ------------------------------------------------

    def sync_status_dir(self, node):
        """The daemon's progress files of a container node."""
        return os.path.join(self.state_dir, 'sync-status',
                            self.container_node(node))

    def sync_log_path(self, node):
        """The daemon's output of a container node (every run appends)."""
        return self.log_path(f'sync-{self.container_node(node)}')

    def sync_argv(self, node, args=()):
        """The daemon's command line on a container node."""
        return [sys.executable, '-m', 'shunt.daemon',
                self.conf_path(self.container_node(node)), '-v', *args]

    def _sync_section(self, server):
        section = {
            'conf_file': self.mapping_file,
            'status_dir': self.sync_status_dir(server),
            'log_name': 'cloud-shunt-sync',
        }
        section.update(self.sync_conf)
        return section

    def configure_sync(self, **options):
        """Change ``[cloud-shunt-sync]`` options of every container node
        (None removes one; see :data:`SYNC_DEFAULTS`); a daemon reads them
        when it starts."""
        self.sync_conf.update(options)
        if self.ports:
            for node in self.container_nodes:
                self._write_backend_conf(node)

    def _sync_names(self, node):
        nodes = (self.container_nodes if node is None
                 else (self.container_node(node),))
        return [f'sync-{name}' for name in nodes]

    def start_sync(self, node=None, args=(), once=False):
        """Start the daemon on a container node (name or index; None: on
        every node), as a long-running process, or for one pass with
        ``once``; a daemon already running there is left alone. Stopped by
        :meth:`stop_sync`, :meth:`kill_sync`, :meth:`stop`; a pass is
        awaited with :meth:`wait_sync`."""
        for name in self._sync_names(node):
            proc = self.procs.get(name)
            if proc is not None and proc.running():
                continue
            self._stop_processes([name])
            server = name[len('sync-'):]
            log = self.log_path(name)
            self._sync_offsets[name] = (os.path.getsize(log)
                                        if os.path.exists(log) else 0)
            argv = self.sync_argv(server, list(args) + (
                ['--once'] if once else []))
            self._spawn(name, argv)

    def wait_sync(self, node=None, timeout=SYNC_ONCE_TIMEOUT):
        """Wait for daemons started by :meth:`start_sync` to exit: ``(exit
        status, output of this run)`` of the node, or a list of them in
        node order when ``node`` is None. Raises :class:`ClusterError`
        (after killing them) if they run longer than ``timeout``."""
        names = self._sync_names(node)
        deadline = time.monotonic() + timeout
        results = []
        for name in names:
            proc = self.procs.get(name)
            if proc is None:
                raise ClusterError(f'{name}: not started')
            try:
                status = proc.popen.wait(
                    timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill_sync(node)
                raise self._failure(name, f'still running after '
                                          f'{timeout:g}s (killed)')
            results.append((status, self.sync_output(name[5:])))
        self._stop_processes(names)
        return results if node is None else results[0]

    def sync_once(self, node=None, args=(), timeout=SYNC_ONCE_TIMEOUT):
        """One pass (``--once``) of the daemon on a node, or on every
        node at the same time (None); returns what :meth:`wait_sync`
        returns."""
        self.start_sync(node, args, once=True)
        return self.wait_sync(node, timeout)

    def sync_output(self, node):
        """What the node's daemon logged since its last start."""
        name = f'sync-{self.container_node(node)}'
        try:
            with open(self.log_path(name), 'rb') as fp:
                fp.seek(self._sync_offsets.get(name, 0))
                return fp.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def sync_running(self, node):
        proc = self.procs.get(f'sync-{self.container_node(node)}')
        return bool(proc and proc.running())

    def stop_sync(self, node=None):
        """Stop the daemon of a node (None: every node) with SIGTERM."""
        self._stop_processes(self._sync_names(node))

    def kill_sync(self, node=None):
        """SIGKILL the daemon of a node (None: every node) and reap it."""
        names = [n for n in self._sync_names(node) if n in self.procs]
        for name in names:
            self.procs[name].signal(signal.SIGKILL)
        self._stop_processes(names)

    # -- configuration files --------------------------------------------

    def _write_swift_conf(self):
        sections = [
            ('swift-hash', {
                'swift_hash_path_prefix': 'cloud-shunt-aio-prefix',
                'swift_hash_path_suffix': 'cloud-shunt-aio-suffix'}),
            ('storage-policy:0', {'name': 'gold', 'default': 'yes'}),
            ('storage-policy:1', {'name': 'silver'}),
            ('swift-constraints', {'max_file_size': self.max_file_size}),
        ]
        _write_atomic(os.path.join(self.state_dir, 'swift.conf'),
                      _ini(sections).encode())
        # for the memcache middleware of processes whose config names no
        # memcache_servers (the sync daemon's built-in internal client)
        _write_atomic(os.path.join(self.state_dir, 'memcache.conf'),
                      _ini([('memcache', {
                          'memcache_servers': self.memcache_servers})
                      ]).encode())

    def _write_rings(self):
        from swift.common.ring import RingBuilder
        builders = os.path.join(self.state_dir, 'builders')
        os.makedirs(builders, exist_ok=True)
        for ring_name, server, device in RINGS:
            nodes = [(server, device)]
            if ring_name == 'container':
                nodes = [(node, self.node_device(node))
                         for node in self.container_nodes]
            builder = RingBuilder(6, len(nodes), 1)
            for dev_id, (node, dev) in enumerate(nodes):
                os.makedirs(os.path.join(self.node_devices_dir(node), dev),
                            exist_ok=True)
                builder.add_dev({'id': dev_id, 'region': 1,
                                 'zone': dev_id + 1, 'ip': HOST,
                                 'port': self.ports[node], 'device': dev,
                                 'weight': 1.0})
            builder.rebalance()
            builder.save(os.path.join(builders, f'{ring_name}.builder'))
            builder.get_ring().save(
                os.path.join(self.state_dir, f'{ring_name}.ring.gz'))

    def _default_section(self, server, port, workers):
        return {
            'bind_ip': HOST,
            'bind_port': port,
            # fail fast on a taken port (start() then retries elsewhere)
            'bind_timeout': 2,
            'workers': workers,
            # run as whoever runs the cluster (Swift defaults to 'swift')
            'user': pwd.getpwuid(os.geteuid()).pw_name,
            'swift_dir': self.state_dir,
            'devices': self.devices_dir,
            'mount_check': False,
            'disable_fallocate': True,
            'log_name': f'{server}-server',
            'log_level': 'INFO',
            'log_custom_handlers':
                'shunt.tools.aio_server.console_only_logging',
        }

    def _write_backend_conf(self, server):
        default = self._default_section(server, self.ports[server], 0)
        default['devices'] = self.node_devices_dir(server)
        kind = 'container' if server in self.container_nodes else server
        sections = [
            ('DEFAULT', default),
            ('pipeline:main', {'pipeline': f'healthcheck {kind}-server'}),
            ('filter:healthcheck', {'use': 'egg:swift#healthcheck'}),
            (f'app:{kind}-server', {'use': f'egg:swift#{kind}'}),
        ]
        if kind == 'container':
            sections.append(('cloud-shunt-sync', self._sync_section(server)))
        _write_atomic(self.conf_path(server), _ini(sections).encode())

    def _write_proxy_conf(self, filter_conf, proxy_conf,
                          shunt_in_pipeline=None, pipeline=None):
        if shunt_in_pipeline is None:
            shunt_in_pipeline = self.shunt_in_pipeline
        proxy = {'use': 'egg:swift#proxy',
                 'allow_account_management': True,
                 'account_autocreate': True}
        proxy.update(proxy_conf)
        tempauth = {'use': 'egg:swift#tempauth'}
        for account, user, key, groups in USERS:
            tempauth[f'user_{account}_{user}'] = f'{key} {groups}'.strip()
        shunt = {'use': 'egg:swift-cloud-shunt#cloud_shunt',
                 'conf_file': self.mapping_file,
                 'reload_interval': self.reload_interval,
                 # tests and demos write to the bucket behind the proxy's
                 # back and stop/start it: every request sees the bucket as
                 # it is now (pass filter_conf to try these protections)
                 'negative_cache_ttl': 0,
                 'fail_fast_threshold': 0}
        shunt.update(filter_conf)
        sections = [
            ('DEFAULT', self._default_section('proxy', self.ports['proxy'],
                                              self.proxy_workers)),
            ('pipeline:main',
             {'pipeline': pipeline or proxy_pipeline(shunt_in_pipeline)}),
            ('app:proxy-server', proxy),
            ('filter:catch_errors', {'use': 'egg:swift#catch_errors'}),
            ('filter:gatekeeper', {'use': 'egg:swift#gatekeeper'}),
            ('filter:healthcheck', {'use': 'egg:swift#healthcheck'}),
            ('filter:proxy-logging', {'use': 'egg:swift#proxy_logging'}),
            ('filter:cache', {'use': 'egg:swift#memcache',
                              'memcache_servers': self.memcache_servers}),
            ('filter:listing_formats', {'use': 'egg:swift#listing_formats'}),
            ('filter:tempauth', tempauth),
            ('filter:copy', {'use': 'egg:swift#copy'}),
            ('filter:cloud_shunt', shunt),
            ('filter:slo', {'use': 'egg:swift#slo'}),
            ('filter:dlo', {'use': 'egg:swift#dlo'}),
            ('filter:versioned_writes', {'use': 'egg:swift#versioned_writes',
                                         'allow_versioned_writes': True}),
            ('filter:symlink', {'use': 'egg:swift#symlink'}),
        ]
        _write_atomic(self.conf_path('proxy'), _ini(sections).encode())

    @property
    def s3api_conf_path(self):
        return os.path.join(self.state_dir, 's3api-proxy-server.conf')

    def _write_s3api_conf(self):
        """The config of the s3api proxy: Swift's own S3 implementation on
        this cluster's servers, one tempauth user (the cluster's S3 key
        and secret) owning the store account."""
        tempauth = {'use': 'egg:swift#tempauth',
                    f'user_{S3API_ACCOUNT}_{S3API_USER}':
                        f'{self.s3_secret} .admin'}
        sections = [
            ('DEFAULT', self._default_section('s3api-proxy',
                                              self.ports['s3'], 1)),
            ('pipeline:main', {'pipeline': S3API_PIPELINE}),
            ('app:proxy-server', {'use': 'egg:swift#proxy',
                                  'account_autocreate': True}),
            ('filter:catch_errors', {'use': 'egg:swift#catch_errors'}),
            ('filter:gatekeeper', {'use': 'egg:swift#gatekeeper'}),
            ('filter:healthcheck', {'use': 'egg:swift#healthcheck'}),
            ('filter:proxy-logging', {'use': 'egg:swift#proxy_logging'}),
            ('filter:cache', {'use': 'egg:swift#memcache',
                              'memcache_servers': self.memcache_servers}),
            ('filter:s3api', {'use': 'egg:swift#s3api',
                              'location': self.s3_region}),
            ('filter:tempauth', tempauth),
            ('filter:copy', {'use': 'egg:swift#copy'}),
            ('filter:slo', {'use': 'egg:swift#slo'}),
            ('filter:dlo', {'use': 'egg:swift#dlo'}),
        ]
        _write_atomic(self.s3api_conf_path, _ini(sections).encode())

    def write_mappings(self, profiles):
        """Replace the mapping file atomically (temp file + rename).

        ``profiles`` is the list of profiles (written as
        ``{"containers": profiles}``), or a str/bytes written verbatim (to
        test broken files). The new file always has a later mtime than the
        previous one, so a reloading proxy sees the change.
        """
        if isinstance(profiles, str):
            data = profiles.encode('utf-8')
        elif isinstance(profiles, bytes):
            data = profiles
        else:
            data = json.dumps({'containers': list(profiles)},
                              indent=2).encode('utf-8')
        _write_atomic(self.mapping_file, data)
        mtime = os.stat(self.mapping_file).st_mtime_ns
        if mtime <= self._last_mapping_mtime:
            mtime = self._last_mapping_mtime + 1_000_000
            os.utime(self.mapping_file, ns=(mtime, mtime))
        self._last_mapping_mtime = mtime

    def profile(self, account, container, **overrides):
        """A mapping profile for the default bucket, endpoint and
        credentials (hashed layout unless ``custom_prefix`` is given); a
        ``protocol: swift`` one on a remote Swift (see
        :meth:`RemoteSwift.profile`)."""
        if self.remote is not None:
            return self.remote.profile(account, container, **overrides)
        profile = {
            'account': account,
            'container': container,
            'aws_bucket': self.bucket,
            'aws_endpoint': self.s3_endpoint,
            'aws_identity': self.s3_key,
            'aws_secret': self.s3_secret,
            'merge_namespaces': True,
            'protocol': 's3',
        }
        profile.update(overrides)
        return profile

    # -- clients --------------------------------------------------------

    def s3_client(self):
        """A boto3 S3 client for the endpoint (path style, SigV4); the
        same client on every call."""
        self._s3_only('s3_client()')
        if self._s3_client is None:
            import boto3
            from botocore.config import Config
            self._s3_client = boto3.session.Session().client(
                's3', endpoint_url=self.s3_endpoint,
                aws_access_key_id=self.s3_key,
                aws_secret_access_key=self.s3_secret,
                region_name=self.s3_region,
                config=Config(signature_version='s3v4',
                              s3={'addressing_style': 'path'},
                              retries={'max_attempts': 2, 'mode': 'standard'},
                              connect_timeout=5, read_timeout=30))
        return self._s3_client

    def create_bucket(self, bucket):
        """Create a bucket (a remote Swift: a remote container)."""
        if self.remote is not None:
            self.remote.create_container(bucket)
            return
        client = self.s3_client()
        try:
            client.create_bucket(Bucket=bucket)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass

    def swift_conn(self, user='test:tester', key='testing', **kwargs):
        """A ``swiftclient.client.Connection`` (no retries unless asked)."""
        from swiftclient import client as swiftclient
        kwargs.setdefault('retries', 0)
        return swiftclient.Connection(authurl=self.auth_url, user=user,
                                      key=key, **kwargs)

    def token(self, user='test:tester', key='testing'):
        """``(storage_url, token)`` for a tempauth user."""
        from swiftclient import client as swiftclient
        return swiftclient.get_auth(self.auth_url, user, key)

    def info(self):
        """The proxy's ``/info`` document."""
        conn = http.client.HTTPConnection(HOST, self.ports['proxy'],
                                          timeout=10)
        try:
            conn.request('GET', '/info')
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise ClusterError(f'/info answered {resp.status}')
        return json.loads(body)

    def archive_slo(self, account, container, name, segments,
                    content_type=None, metadata=None, timestamp=None):
        """A remote Swift only (S3 tests build their multipart uploads):
        :meth:`RemoteSwift.archive_slo`."""
        if self.remote is None:
            raise ClusterError('archive_slo: for a remote Swift only')
        return self.remote.archive_slo(account, container, name, segments,
                                       content_type=content_type,
                                       metadata=metadata,
                                       timestamp=timestamp)

    def account_user(self, account):
        """``(user, key)`` of an admin of a local account."""
        for acct, user, key, groups in USERS:
            if f'AUTH_{acct}' == account and '.admin' in groups:
                return f'{acct}:{user}', key
        raise ClusterError(f'no admin user of {account}')

    def archived_head(self, account, container, name, custom_prefix=None,
                      bucket=None):
        """The archived copy's headers (lower-case; S3 ones as boto3's
        ``HTTPHeaders``) where the layout puts ``account/container/name``,
        or None when there is none."""
        if self.remote is not None:
            return self.remote.head(
                bucket or self.remote.container_for(account, container),
                name)
        import botocore.exceptions
        key = layout.object_key(account, container, name, custom_prefix)
        try:
            resp = self.s3_client().head_object(Bucket=bucket or self.bucket,
                                                Key=key)
        except botocore.exceptions.ClientError as err:
            if err.response['ResponseMetadata']['HTTPStatusCode'] == 404:
                return None
            raise
        return resp['ResponseMetadata']['HTTPHeaders']

    def archive_object(self, account, container, name, body, metadata=None,
                       content_type=None, custom_prefix=None, bucket=None,
                       timestamp=None):
        """Put an object into the bucket where the archive layout puts
        ``account/container/name``; returns the key. On a remote Swift:
        :meth:`RemoteSwift.archive_object` (``custom_prefix`` ignored,
        ``bucket`` the remote container, ``timestamp`` the original
        ``X-Timestamp``; returns the name)."""
        if self.remote is not None:
            return self.remote.archive_object(
                account, container, name, body, metadata=metadata,
                content_type=content_type, bucket=bucket,
                timestamp=timestamp)
        if timestamp is not None:
            raise ClusterError('archive_object: timestamp is for a remote '
                               'Swift only')
        key = layout.object_key(account, container, name, custom_prefix)
        if isinstance(body, str):
            body = body.encode('utf-8')
        kwargs = {'Bucket': bucket or self.bucket, 'Key': key, 'Body': body,
                  'Metadata': dict(metadata or {})}
        if content_type:
            kwargs['ContentType'] = content_type
        self.s3_client().put_object(**kwargs)
        return key

