"""``cloud-shunt-sync``: the sync/archive daemon, one per container node.

Usage::

    cloud-shunt-sync CONFIG [--once] [-v] [--dry-run]
    python -m shunt.daemon CONFIG [--once] [-v] [--dry-run]

Deploy it on **every container node**, exactly like
``swift-container-sync``: CONFIG is the node's container server config
(``/etc/swift/container-server.conf``, or any file of that form), whose
``[DEFAULT]`` gives ``devices``, ``mount_check``, ``swift_dir``,
``bind_ip`` and ``bind_port`` (the node's identity in the container ring)
and whose ``[cloud-shunt-sync]`` section holds the daemon's options. Run it
under the same init system as the other Swift daemons (``systemd`` unit,
``swift-init``-like supervisor) as the ``swift`` user; it needs read/write
access to the container DBs (like the replicator) and to ``status_dir``.
Every node holding a replica of a mapped container takes part; a node that
holds none does nothing for it (no network call). A systemd unit, for
example::

    [Unit]
    Description=swift-cloud-shunt sync daemon
    After=network-online.target swift-container.service

    [Service]
    User=swift
    ExecStart=/usr/bin/cloud-shunt-sync /etc/swift/container-server.conf
    Restart=on-failure
    KillSignal=SIGTERM
    TimeoutStopSec=60

    [Install]
    WantedBy=multi-user.target

(``TimeoutStopSec`` above ``shutdown_timeout``.) Cron-style operation
works too: ``cloud-shunt-sync CONFIG --once`` exits when its pass is done. See
:mod:`shunt.daemon.walker` for how the rows are split between the
replicas, and :mod:`shunt.daemon.progress` for what is kept where.

What it does, per profile of the mapping file (the same file the shunt
reads, see :mod:`shunt.core.config`; every profile, with or without
``merge_namespaces``):

* **sync** (``retain_local`` true, the default): every object PUT or POST
  is copied to the bucket in the layout the shunt reads; with
  ``propagate_delete`` (default true) delete rows delete the bucket copy
  (never a copy newer than the tombstone).
* **archive** (``retain_local: false``): objects whose last PUT/POST is
  older than ``copy_after`` are copied, the copy is verified, and the local
  copy is deleted with a tombstone that loses to any newer write. The
  shunt serves archived objects back (``merge_namespaces: true``).

``--once`` runs one pass over every mapped container DB of the node and
exits **0** when every row of the pass succeeded (rows not yet older than
``copy_after`` are not failures) and **1** when a row failed, a container
could not be walked, the account of a ``/*`` profile could not be listed,
there is no valid mapping file, or the pass was interrupted. A pass that
ran out of ``container_time`` is not a failure (the rest is left for the
next one; ``sync-status`` shows it as pending). Every failure recorded
in earlier passes is retried by ``--once``. ``--dry-run`` prints what a
pass would act on (per container: rows to handle, rows waiting for
``copy_after``, rows to retry) without any remote call or progress write.
``-v`` logs to the console as well.

Like every Swift daemon it runs as ``[DEFAULT] user`` (default ``swift``;
started as root it switches to it), so that what it writes into the
container DBs and ``status_dir`` keeps the container server's owner.

SIGTERM (and SIGINT) stop the daemon cleanly: no new row is started, rows
in flight may finish for ``shutdown_timeout`` seconds, the progress is
saved (it only ever covers finished rows), and it exits 0. A ``SIGKILL``
loses nothing either: the next start resumes from the last saved progress
and redoes the rows after it (every row handler is idempotent).

Options of ``[cloud-shunt-sync]`` (defaults shown; durations in seconds;
see also ``etc/container-server.conf-sample``):

``conf_file = /etc/swift/cloud-shunt.json``
    The mapping file; re-read at the start of every pass when it changed.
    A version that does not validate is logged as an ERROR and the last
    good mappings stay in force (at start-up with no good version, the
    daemon waits for one; ``--once`` exits 1).
``status_dir = /var/lib/cloud-shunt-sync``
    Progress files, one per container DB (created if missing).
``interval = 300``
    Minimum time between the starts of two passes (the next pass starts
    at once when a container's pass ran out of ``container_time``).
``concurrency = 8``
    Rows handled in parallel (green threads of one process).
``verification_slack = 3600``
    How long the replica owning a row has to handle it before the other
    replicas do it in its stead (a dead node's share is done this late).
``container_time = 60``
    Time per container DB per pass; the rest is resumed next pass.
``max_failures_in_row = 10``
    Consecutive failures of the remote store after which a container's
    pass stops (the store is down: the rows wait instead of piling up as
    failures).
``max_failed_rows = 10000``
    Rows kept for retry per container DB; beyond it the walk waits.
``shutdown_timeout = 30``
    How long rows in flight may finish after SIGTERM.
``internal_client_conf_path``
    An internal client config (for instance to add ``keymaster`` and
    ``encryption``); default: a built-in pipeline ``catch_errors
    proxy-logging cache proxy-server`` using this file's ``swift_dir``.
``request_tries = 3``
    Attempts of the internal client's requests.
``s3_region = us-east-1``, ``conn_timeout = 5.0``, ``read_timeout = 60.0``,
``max_pool_connections = 100``, ``s3_max_attempts = 3``
    The S3 client's, as in the shunt's filter section.
``slo_workers = 10``, ``part_size = 67108864``, ``max_put_size``,
``stale_retry_delay = 60``, ``small_object_size = 262144``,
``conditional_put = true``, ``verify_with_head = false``,
``list_check_rows = 1000``
    The row handler's (see :mod:`shunt.daemon.rows`,
    :mod:`shunt.daemon.transfer`, :mod:`shunt.daemon.listed`).
``log_name = cloud-shunt-sync``, ``log_level``, ``log_facility``,
``log_address``, ``log_statsd_host``, ``log_statsd_port``,
``log_statsd_metric_prefix`` ...
    Swift's logging options; the StatsD metrics are prefixed
    ``cloud_shunt_sync``.

StatsD metrics: from the row handler, one counter per row outcome
(``uploaded``, ``metadata``, ``noop``, ``archived``, ``kept``,
``remote_deleted``, ``skipped``, ``gone``), ``failures.<kind>`` and
``bytes`` (as data flows); from the engine, ``deferred``,
``failures.internal``, ``failures.container`` (a DB that could not be
walked), ``container_pass.timing``, ``pass.timing`` and ``lag.timing``
(seconds behind, sent as a timing in ms: its max is the worst lag). Each
container pass logs one INFO line (``Container pass <account>/<container>:
<n> handled (<outcomes>), <n> failed, ...; point1 .., point2 .., max row
..; <n> to retry; lag <s>s; <duration>``) and each pass a ``Pass done``
line.

Moving from 1space's ``swift-s3-sync``: stop it on every node, point
``conf_file`` at its ``sync.json`` (the same profiles, keys and defaults;
``exclude_pattern: ""`` now excludes nothing) and start this daemon on
every container node. Its first pass over each container checks every
row against the bucket (a HEAD per object: an object already there with
the same bytes is not uploaded again, at most its metadata is rewritten in
place to add the Swift timestamp), then only new rows cost anything.
1space's status files are not read.
"""

import argparse
import gc
import os
import random
import signal
import sys
import time

from swift.common import utils
from swift.common.concurrency import eventlet
from swift.common.daemon import Daemon
from swift.common.ring import Ring
from swift.common.utils import (
    get_logger,
    readconf,
    whataremyips,
)
from swift.common.wsgi import ConfigString
from swift.container.backend import ContainerBroker

from shunt.core.config import ConfigError, MappingSource
from shunt.core.guard import FailFast
from shunt.core.swiftdir import swift_dir_of, use_swift_dir
from shunt.daemon import progress as progress_mod
from shunt.daemon import walker

SECTION = 'cloud-shunt-sync'
STATSD_PREFIX = 'cloud_shunt_sync'
DEFAULT_CONF_FILE = '/etc/swift/cloud-shunt.json'
DEFAULT_STATUS_DIR = '/var/lib/cloud-shunt-sync'
DEFAULT_SWIFT_DIR = '/etc/swift'
# seconds between two sweeps of the progress files of DBs gone
PRUNE_EVERY = 3600

IC_CONF_BODY = """
[DEFAULT]
swift_dir = {swift_dir}

[pipeline:main]
pipeline = catch_errors proxy-logging cache proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
# large objects are read in 1 MiB chunks (fewer, bigger steps per byte; the
# MD5 of such chunks is computed in a thread while they are sent)
object_chunk_size = 1048576

[filter:cache]
use = egg:swift#memcache

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:catch_errors]
use = egg:swift#catch_errors
""".lstrip()


# the row handler's numeric options (shunt.daemon.rows, .transfer): name,
# type, least value
ROW_OPTIONS = (
    ('stale_retry_delay', float, 0), ('small_object_size', int, 0),
    ('remote_clock_skew', float, 0), ('list_check_rows', int, 0),
    ('slo_workers', int, 1), ('part_size', int, 5 * 1024 * 1024),
    ('max_put_size', int, 1))


class Options:
    """The daemon's options, validated; errors name the file, the section
    and the option."""

    def __init__(self, conf, path='<config>'):
        self.path = path
        self.devices = conf.get('devices', '/srv/node')
        self.mount_check = self._bool(conf, 'mount_check', True)
        self.swift_dir = conf.get('swift_dir', DEFAULT_SWIFT_DIR)
        self.bind_ip = conf.get('bind_ip', '0.0.0.0')
        self.bind_port = self._number(conf, 'bind_port', 6201, int, 1)
        self.conf_file = conf.get('conf_file') or DEFAULT_CONF_FILE
        self.status_dir = conf.get('status_dir') or DEFAULT_STATUS_DIR
        self.interval = self._number(conf, 'interval', 300, float)
        self.concurrency = self._number(conf, 'concurrency', 8, int, 1)
        self.verification_slack = self._number(conf, 'verification_slack',
                                               3600, float)
        self.container_time = self._number(conf, 'container_time', 60,
                                           float, 1)
        self.max_failures_in_row = self._number(conf, 'max_failures_in_row',
                                                10, int, 1)
        self.max_failed_rows = self._number(conf, 'max_failed_rows', 10000,
                                            int, 1)
        self.shutdown_timeout = self._number(conf, 'shutdown_timeout', 30,
                                             float)
        self.internal_client_conf_path = \
            conf.get('internal_client_conf_path') or None
        self.request_tries = self._number(conf, 'request_tries', 3, int, 1)
        self.s3_region = conf.get('s3_region') or 'us-east-1'
        self.conn_timeout = self._number(conf, 'conn_timeout', 5.0, float)
        self.read_timeout = self._number(conf, 'read_timeout', 60.0, float)
        self.max_pool_connections = self._number(
            conf, 'max_pool_connections', 100, int, 1)
        self.s3_max_attempts = self._number(conf, 's3_max_attempts', 3, int,
                                            1)
        # the row handler reads its own options from the section; they are
        # checked here so that a bad one stops the daemon at start-up,
        # named (it would otherwise fail as a bare ValueError)
        for name, kind, minimum in ROW_OPTIONS:
            self._number(conf, name, None, kind, minimum)
        for name in ('verify_with_head', 'conditional_put'):
            self._bool(conf, name, None)

    def _where(self, name):
        return f'{self.path}: [{SECTION}] {name}'

    def _number(self, conf, name, default, kind, minimum=0):
        raw = conf.get(name)
        if raw is None or str(raw).strip() == '':
            return default
        try:
            value = kind(str(raw).strip())
        except ValueError:
            value = None
        if value is None or value < minimum or value != value:
            what = 'a whole number' if kind is int else 'a number'
            raise ConfigError(f'{self._where(name)}: expected {what} >= '
                              f'{minimum}, got {raw!r}')
        return value

    def _bool(self, conf, name, default):
        raw = conf.get(name)
        if raw is None:
            return default
        lowered = str(raw).strip().lower()
        if lowered in utils.TRUE_VALUES:
            return True
        if lowered in ('false', '0', 'no', 'off', 'f', 'n'):
            return False
        raise ConfigError(f'{self._where(name)}: expected true or false, got '
                          f'{raw!r}')

    def walk_options(self):
        return walker.Options(
            verification_slack=self.verification_slack,
            container_time=self.container_time,
            max_failures_in_row=self.max_failures_in_row,
            max_failed_rows=self.max_failed_rows)


def internal_client_conf(options):
    """The internal client's config: the operator's file, or the built-in
    pipeline on this config's ``swift_dir``."""
    if options.internal_client_conf_path:
        return options.internal_client_conf_path
    return ConfigString(IC_CONF_BODY.format(swift_dir=options.swift_dir))


def build_internal_client(options, conf):
    from swift.common.internal_client import InternalClient
    ic_conf = internal_client_conf(options)
    try:
        return InternalClient(
            ic_conf, 'cloud-shunt-sync', options.request_tries,
            global_conf={'log_name': '%s-ic' % conf.get('log_name',
                                                          SECTION)})
    except (OSError, IOError, LookupError, ValueError) as err:
        raise ConfigError(
            f'{options.path}: [{SECTION}] internal_client_conf_path: cannot '
            f'load the internal client from '
            f'{options.internal_client_conf_path or "the built-in config"}:'
            f' {err}')


def build_remote(options, logger):
    # boto3 (urllib3, ssl) is imported only now, after eventlet's
    # monkey-patching: imported before it, its SSL contexts recurse
    from shunt.core.stores import Remotes
    # S3 and remote Swift clusters alike (per profile protocol)
    return Remotes.build(region=options.s3_region,
                         connect_timeout=options.conn_timeout,
                         read_timeout=options.read_timeout,
                         max_pool_connections=options.max_pool_connections,
                         max_attempts=options.s3_max_attempts,
                         fail_fast=FailFast(0, 0), logger=logger,
                         # uploads carry Content-MD5 (checked by the
                         # store): no SHA-256 of each body first, which
                         # would read every streamed object twice over http
                         payload_signing=False)


class CloudShuntSync(Daemon):
    """The daemon (see the module docstring).

    ``ring``, ``swift`` (InternalClient), ``remote`` (a
    :class:`shunt.core.stores.Remotes`) and
    ``handler`` (the row handler) are built from the config unless given
    (tests)."""

    log_route = SECTION

    def __init__(self, conf, logger=None, conf_path=None, ring=None,
                 swift=None, remote=None, handler=None, clock=time.time):
        self.conf = conf
        self.conf_path = conf_path or '<config>'
        self.options = Options(conf, self.conf_path)
        self.logger = logger or get_logger(
            conf, name=conf.get('log_name', SECTION), log_route=SECTION,
            statsd_tail_prefix=STATSD_PREFIX)
        self.clock = clock
        self.ring = ring or Ring(self.options.swift_dir,
                                 ring_name='container')
        self.locator = walker.Locator(
            self.ring, self.options.devices, self.options.mount_check,
            whataremyips(self.options.bind_ip), self.options.bind_port,
            self.logger)
        self._swift = swift
        self._remote = remote
        self._handler = handler
        self.pool = eventlet.GreenPool(self.options.concurrency)
        self.mapping_source = None
        self.stopping = False
        self.stop_requested_at = None
        self.started = clock()
        self.last_prune = None

    # -- collaborators, built on first use -------------------------------

    @property
    def swift(self):
        if self._swift is None:
            self._swift = build_internal_client(self.options, self.conf)
        return self._swift

    @property
    def remote(self):
        if self._remote is None:
            self._remote = build_remote(self.options, self.logger)
        return self._remote

    @property
    def handler(self):
        if self._handler is None:
            from shunt.daemon.rows import RowHandler
            self._handler = RowHandler(self.conf, self.logger, self.swift,
                                       self.remote)
        return self._handler

    def build(self):
        """Build the internal client, the S3 client and the row handler
        now."""
        return self.handler

    def mappings(self):
        """The mappings in force, or None when there has never been a valid
        mapping file (logged)."""
        if self.mapping_source is None:
            try:
                self.mapping_source = MappingSource(
                    self.options.conf_file, 0, self.logger,
                    shunted_only=False)
            except ConfigError as err:
                self.logger.error('No mappings: %s', err)
                return None
            return self.mapping_source.mappings
        return self.mapping_source.current()

    def list_containers(self, account):
        return [item['name'] for item in self.swift.iter_containers(account)]

    # -- stopping ----------------------------------------------------------

    def request_stop(self, *args):
        """The SIGTERM/SIGINT handler: only sets flags (no logging, no
        green thread switch inside a signal handler)."""
        if not self.stopping:
            self.stopping = True
            self.stop_requested_at = time.monotonic()

    def _watchdog(self):
        """Log a requested stop, and kill the rows still in flight
        ``shutdown_timeout`` after it (their progress is not recorded: they
        are redone at the next start)."""
        while not self.stopping:
            eventlet.sleep(0.2)
        if self.pool.running():
            self.logger.notice('Stopping: no new rows; %d row(s) in flight '
                               'have %ss', self.pool.running(),
                               self.options.shutdown_timeout)
        while time.monotonic() - self.stop_requested_at < \
                self.options.shutdown_timeout:
            if not self.pool.running():
                return
            eventlet.sleep(0.2)
        for thread in list(self.pool.coroutines_running):
            thread.kill()

    # -- passes ------------------------------------------------------------

    def run_once(self, *args, dry_run=False, **kwargs):
        """One pass over every mapped DB of this node; True when every row
        succeeded."""
        watchdog = eventlet.spawn(self._watchdog)
        try:
            return self.one_pass(dry_run=dry_run, once=True)[0]
        finally:
            watchdog.kill()

    def _sleep(self, seconds):
        """Sleep, but return as soon as a stop is requested."""
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            eventlet.sleep(min(0.5, max(0.0, end - time.monotonic())))

    def run_forever(self, *args, initial_delay=0, **kwargs):
        """Passes every ``interval`` seconds until a stop is
        requested."""
        watchdog = eventlet.spawn(self._watchdog)
        try:
            self._sleep(initial_delay)
            while not self.stopping:
                begin = time.monotonic()
                backlog = False
                try:
                    _, reports = self.one_pass()
                    backlog = any(stats.stopped == 'container_time'
                                  for _, stats in reports)
                except Exception:
                    self.logger.exception('Pass failed')
                if not backlog:
                    # a container left work for lack of time: go on now
                    # (container_time keeps the containers' turns fair)
                    self._sleep(self.options.interval -
                                (time.monotonic() - begin))
            self.logger.notice('Stopped on request')
        finally:
            watchdog.kill()

    def one_pass(self, dry_run=False, once=False):
        """``(ok, reports)``: ok when every row succeeded; one report per
        container DB walked: ``(target, stats)``."""
        begin = self.clock()
        mappings = self.mappings()
        if mappings is None:
            return False, []
        if not dry_run:
            # the remote clients are built before the rows (once per
            # endpoint and identity; later passes find them built)
            self.handler.warm(mappings)
        ok, reports = True, []
        self.locator.listing_failures = 0
        for target in self.locator.targets(mappings, self.list_containers):
            if self.stopping:
                ok = False
                break
            try:
                stats = self.walk(target, dry_run=dry_run, once=once)
            except Exception as err:
                ok = False
                self.logger.exception('Cannot walk %s (%s): %s',
                                      target.label, target.db_path, err)
                self.logger.increment('failures.container')
                continue
            reports.append((target, stats))
            ok = ok and stats.ok and stats.stopped != 'stopping'
        ok = ok and not self.locator.listing_failures
        elapsed = self.clock() - begin
        if not dry_run and (self.last_prune is None or
                            begin - self.last_prune >= PRUNE_EVERY):
            progress_mod.prune(self.options.status_dir, self.logger)
            self.last_prune = begin
        if not dry_run:
            self.logger.timing('pass.timing', elapsed * 1000)
            self.logger.info(
                'Pass done: %d container DB(s), %d row(s) handled, %d '
                'failed, %.2fs%s', len(reports),
                sum(s.handled for _, s in reports),
                sum(s.failed for _, s in reports), elapsed,
                '' if ok else ' (not all rows succeeded)')
        return ok, reports

    def walk(self, target, dry_run=False, once=False):
        """One pass over one container DB; returns its stats."""
        begin = self.clock()
        broker = ContainerBroker(target.db_path, account=target.db_account,
                                 container=target.db_container,
                                 logger=self.logger)
        info = broker.get_info()
        path = progress_mod.progress_path(self.options.status_dir,
                                          target.db_hash)
        progress = progress_mod.ContainerProgress.load(
            path, db_id=info['id'], profile=target.profile,
            account=target.account, container=target.container,
            db_path=target.db_path, ordinal=target.ordinal,
            replicas=target.replicas, logger=self.logger,
            db_account=target.db_account, db_container=target.db_container)
        walk = walker.ContainerWalk(
            target, broker, progress, None if dry_run else self.handler,
            self.pool, self.logger, self.options.walk_options(),
            clock=self.clock, stopping=lambda: self.stopping,
            dry_run=dry_run, once=once)
        stats = walk.run()
        end = self.clock()
        if dry_run:
            return stats
        progress.data['last_pass'] = {
            'start': begin, 'end': end, 'handled': stats.handled,
            'failed': stats.failed, 'deferred': stats.deferred,
            'verified': stats.verified, 'lag': stats.lag,
            'stopped': stats.stopped, 'max_row': broker.get_max_row()}
        progress.data['restart_reason'] = None
        progress.save()
        self.logger.timing('container_pass.timing', (end - begin) * 1000)
        self.logger.timing('lag.timing', stats.lag * 1000)
        self.log_pass(target, progress, stats, end - begin)
        return stats

    def log_pass(self, target, progress, stats, elapsed):
        outcomes = ', '.join('%s %d' % item for item in
                             sorted(stats.outcomes.items()))
        failing = len(progress.failing())
        self.logger.info(
            'Container pass %s: %d handled%s, %d failed, %d deferred, %d '
            'verified, %d retried; point1 %d, point2 %d, max row %d; %d to '
            'retry (%d failing); lag %ds; %.2fs%s',
            target.label, stats.handled,
            ' (%s)' % outcomes if outcomes else '', stats.failed,
            stats.deferred, stats.verified, stats.retried, progress.point1,
            progress.point2, progress.data['last_pass']['max_row'],
            len(progress.retries), failing, stats.lag, elapsed,
            '; stopped: %s' % stats.stopped if stats.stopped else '')


def print_plan(reports, out):
    """The ``--dry-run`` report: what a pass would act on."""
    from shunt.daemon.status import format_plan
    out.write(format_plan(reports))


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='cloud-shunt-sync',
        description='Copy (sync) or move (archive) the objects of mapped '
                    'containers to their buckets; run on every container '
                    'node.')
    parser.add_argument('config', help='the container server config with '
                        f'a [{SECTION}] section')
    parser.add_argument('--once', action='store_true',
                        help='run one pass; exit 0 when every row '
                        'succeeded, 1 otherwise')
    parser.add_argument('-v', '--verbose', action='store_true',
                        help='log to the console too')
    parser.add_argument('--dry-run', action='store_true',
                        help='print what a pass would act on; no remote '
                        'call, no progress written')
    return parser.parse_args(argv)


def drop_privileges(conf, path):
    """Become ``user`` (``[DEFAULT] user``, default ``swift``) like every
    Swift daemon, so that the container DBs (which the daemon commits
    pending updates into) and the progress files keep the container
    server's owner; ConfigError when that user does not exist or cannot be
    become."""
    user = conf.get('user') or 'swift'
    try:
        utils.drop_privileges(user)
    except KeyError:
        raise ConfigError(f'{path}: [DEFAULT] user: no such user {user!r}')
    except OSError as err:
        raise ConfigError(f'{path}: [DEFAULT] user: cannot run as {user!r}:'
                          f' {err.strerror or err}')


def check_status_dir(options):
    """Create ``status_dir`` if needed and make sure progress can be
    written there (as the daemon's user); ConfigError naming it
    otherwise."""
    try:
        os.makedirs(options.status_dir, exist_ok=True)
        probe = os.path.join(options.status_dir, '.write-test')
        with open(probe, 'w'):
            pass
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(f'{options.path}: [{SECTION}] status_dir: cannot '
                          f'write progress files in {options.status_dir}: '
                          f'{err.strerror or err}')


def load_conf(path):
    """``(conf, options)`` of a config file, with Swift pointed at its
    ``swift_dir``; ConfigError naming the file otherwise."""
    if not os.path.isfile(path):
        raise ConfigError(f'{path}: no such config file')
    try:
        swift_dir = swift_dir_of(path, default=DEFAULT_SWIFT_DIR)
        use_swift_dir(swift_dir)
        conf = readconf(path, SECTION)
    except (ValueError, OSError) as err:
        raise ConfigError(f'{path}: {err}' if path not in str(err)
                          else str(err))
    return conf, Options(conf, path)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        conf, options = load_conf(args.config)
        drop_privileges(conf, args.config)
        if not args.dry_run:
            check_status_dir(options)
    except ConfigError as err:
        print(f'cloud-shunt-sync: {err}', file=sys.stderr)
        return 1
    utils.monkey_patch()
    eventlet.hubs.use_hub(utils.get_hub())
    os.environ['TZ'] = 'UTC+0'
    time.tzset()
    logger = get_logger(conf, name=conf.get('log_name', SECTION),
                        log_to_console=args.verbose, log_route=SECTION,
                        statsd_tail_prefix=STATSD_PREFIX)
    try:
        daemon = CloudShuntSync(conf, logger=logger, conf_path=args.config)
        if not args.dry_run:
            daemon.build()      # fail at start-up, not on the first row
    except ConfigError as err:
        print(f'cloud-shunt-sync: {err}', file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, daemon.request_stop)
    signal.signal(signal.SIGINT, daemon.request_stop)
    if args.dry_run:
        ok, reports = daemon.one_pass(dry_run=True, once=True)
        print_plan(reports, sys.stdout)
        return 0 if ok else 1
    logger.notice('Starting %s (%s)', os.getpid(),
                  'once' if args.once else 'forever')
    if args.once:
        ok = daemon.run_once()
        logger.notice('Exited %s: %s', os.getpid(),
                      'every row succeeded' if ok else 'not every row '
                      'succeeded')
    else:
        # the nodes' passes spread over time, like container-sync's
        daemon.run_forever(initial_delay=random.random() *
                           min(options.interval, 60))
        logger.notice('Exited %s', os.getpid())
        ok = True
    # close what is left of the rows' responses while the hub still runs
    # (not in the interpreter's shutdown, where eventlet complains)
    gc.collect()
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
