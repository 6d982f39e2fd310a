"""Real container DBs, a real ring and a fake row handler for the sync
daemon's engine tests (the row handler itself is tested elsewhere)."""

import enum
import json
import os
import pwd

from swift.common.ring import Ring, RingBuilder
from swift.common.utils import Timestamp, hash_path, storage_directory
from swift.container.backend import DATADIR, ContainerBroker

from shunt.daemon.daemon import CloudShuntSync
from tests.unit.helpers import FakeLogger

ACCOUNT = 'AUTH_test'
BASE_PORT = 6011
T0 = 1_700_000_000.0


class Outcome(enum.Enum):
    UPLOADED = 'uploaded'
    NOOP = 'noop'
    ARCHIVED = 'archived'


class Later(Exception):
    """Stands for rows.RowLater (the engine duck-types on retry_at)."""

    def __init__(self, retry_at):
        super().__init__('later')
        self.retry_at = retry_at


class Failed(Exception):
    """Stands for rows.RowFailed."""

    def __init__(self, kind, message='boom', permanent=False):
        super().__init__(message)
        self.kind = kind
        self.permanent = permanent


class Logger(FakeLogger):
    def notice(self, msg, *args):
        self._log('notice', msg, *args)

    def timing(self, name, value, *args, **kwargs):
        self.metrics.append(('timing', name))


class FakeHandler:
    """Records every call; ``script`` maps a name to a list of results
    (exceptions are raised), used one per call; then UPLOADED."""

    def __init__(self, script=None, on_call=None):
        self.calls = []
        self.fresh = []
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.on_call = on_call

    def warm(self, profiles):
        self.warmed = list(profiles)

    def list_rows(self, profile, broker, low, label):
        self.listings = getattr(self, 'listings', []) + [
            (low, broker.get_max_row())]
        return self.listed_rows

    listed_rows = None

    def handle(self, profile, row, now=None, fresh=False, listed=False):
        self.fresh.append(fresh)
        self.listed = getattr(self, 'listed', []) + [listed]
        self.calls.append((profile.container, row['name'], row['ROWID'],
                           now))
        if self.on_call:
            self.on_call(row)
        results = self.script.get(row['name'])
        if results:
            result = results.pop(0)
            if isinstance(result, Exception):
                raise result
            return result
        return Outcome.UPLOADED

    def names(self):
        return [c[1] for c in self.calls]


class FakeSwift:
    """The internal client, for account listings only."""

    def __init__(self, containers=None):
        self.containers = containers or {}

    def iter_containers(self, account):
        return iter([{'name': n} for n in self.containers.get(account, ())])


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


class Cluster:
    """``replicas`` container nodes on 127.0.0.1 (ports 6011, 6021, ...),
    each with one device, and the container ring in ``swift_dir``."""

    def __init__(self, root, replicas=3):
        self.root = str(root)
        self.replicas = replicas
        self.swift_dir = os.path.join(self.root, 'etc')
        self.devices = os.path.join(self.root, 'srv')
        os.makedirs(self.swift_dir, exist_ok=True)
        builder = RingBuilder(6, replicas, 1)
        for index in range(replicas):
            builder.add_dev({'id': index, 'region': 1, 'zone': index,
                             'weight': 1, 'ip': '127.0.0.1',
                             'port': self.port(index),
                             'device': 'sd%d' % index})
            os.makedirs(os.path.join(self.devices, 'sd%d' % index))
        builder.rebalance()
        builder.get_ring().save(
            os.path.join(self.swift_dir, 'container.ring.gz'))
        self.ring = Ring(self.swift_dir, ring_name='container')
        self.mapping = os.path.join(self.root, 'mapping.json')

    @staticmethod
    def port(index):
        return BASE_PORT + 10 * index

    def node_index(self, device):
        return int(device[2:])

    def db_path(self, node, account, container):
        part, nodes = self.ring.get_nodes(account, container)
        (dev,) = [n for n in nodes if n['port'] == self.port(node)]
        db_hash = hash_path(account, container)
        return os.path.join(self.devices, dev['device'],
                            storage_directory(DATADIR, part, db_hash),
                            db_hash + '.db')

    def broker(self, node, container, account=ACCOUNT, create=True):
        path = self.db_path(node, account, container)
        broker = ContainerBroker(path, account=account, container=container)
        if create and not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            broker.initialize(Timestamp(T0 - 1000).internal, 0)
        return broker

    def put(self, container, names, when=T0 - 100, nodes=None,
            account=ACCOUNT, size=10):
        """PUT rows for ``names`` into the DBs of ``nodes`` (all), in a
        different order on each node (ROWIDs differ between replicas)."""
        for node in (range(self.replicas) if nodes is None else nodes):
            broker = self.broker(node, container, account)
            ordered = list(names)
            if node % 2:
                ordered.reverse()
            for name in ordered:
                broker.put_object(name, Timestamp(when).internal, size,
                                  'text/plain', 'etag-%s' % name)

    def delete(self, container, name, when, nodes=None, account=ACCOUNT):
        for node in (range(self.replicas) if nodes is None else nodes):
            self.broker(node, container, account).delete_object(
                name, Timestamp(when).internal)

    def write_mapping(self, *profiles):
        entries = []
        for profile in profiles:
            entry = {'account': ACCOUNT, 'container': 'c',
                     'aws_bucket': 'bucket', 'aws_identity': 'id',
                     'aws_secret': 's3cr3t',
                     'aws_endpoint': 'http://127.0.0.1:1'}
            entry.update(profile)
            entries.append(entry)
        with open(self.mapping, 'w') as fp:
            json.dump({'containers': entries}, fp)
        # a rewrite within the same second must still be seen as a change
        st = os.stat(self.mapping)
        os.utime(self.mapping, ns=(st.st_atime_ns,
                                   st.st_mtime_ns + 10 ** 9 *
                                   (1 + len(json.dumps(entries)) % 7)))

    def conf(self, node, **extra):
        conf = {'devices': self.devices, 'mount_check': 'false',
                'swift_dir': self.swift_dir, 'bind_ip': '127.0.0.1',
                'bind_port': str(self.port(node)),
                'conf_file': self.mapping,
                'status_dir': os.path.join(self.root, 'status%d' % node),
                'verification_slack': '3600', 'container_time': '60'}
        conf.update({k: str(v) for k, v in extra.items()})
        return conf

    def daemon(self, node, handler, clock=None, swift=None, **extra):
        return CloudShuntSync(self.conf(node, **extra), logger=Logger(),
                              conf_path='/etc/swift/container-server.conf',
                              ring=self.ring, swift=swift or FakeSwift(),
                              remote=object(), handler=handler,
                              clock=clock or Clock())


SWIFT_CONF = """[swift-hash]
swift_hash_path_suffix = unit-test-suffix

[storage-policy:0]
name = gold
default = yes
"""


def write_node_config(cluster, node=0, section=None, default=None):
    """A container-server.conf for ``node`` of ``cluster`` (with the
    account and object rings and the swift.conf an internal client
    needs); its path."""
    with open(os.path.join(cluster.swift_dir, 'swift.conf'), 'w') as fp:
        fp.write(SWIFT_CONF)
    for ring_name in ('account', 'object'):
        path = os.path.join(cluster.swift_dir, ring_name + '.ring.gz')
        if os.path.exists(path):
            continue
        builder = RingBuilder(6, 1, 1)
        builder.add_dev({'id': 0, 'region': 1, 'zone': 0, 'weight': 1,
                         'ip': '127.0.0.1', 'port': 1, 'device': 'sd0'})
        builder.rebalance()
        builder.get_ring().save(path)
    conf = cluster.conf(node)
    options = {'DEFAULT': {k: conf.pop(k) for k in (
        'devices', 'mount_check', 'swift_dir', 'bind_ip', 'bind_port')}}
    options['DEFAULT']['user'] = pwd.getpwuid(os.getuid()).pw_name
    options['DEFAULT'].update(default or {})
    options['cloud-shunt-sync'] = dict(conf, log_name='cloud-shunt-sync',
                                       **(section or {}))
    path = os.path.join(cluster.root, 'container-server-%d.conf' % node)
    with open(path, 'w') as fp:
        for name, values in options.items():
            fp.write('[%s]\n' % name)
            for key, value in values.items():
                fp.write('%s = %s\n' % (key, value))
            fp.write('\n')
    return path
