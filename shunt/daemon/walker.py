"""Finding this node's container DBs and walking their rows.

Which DBs
---------
For every profile of the mapping file (``/*`` profiles: every container of
the account, listed through the internal client once per pass; a profile
for an exact container wins over the account's ``/*``; segment containers
such as ``<container>_segments`` are containers of the account too, and
their objects are copied as objects of their own, as 1space did), the
container
ring gives the DB's primary nodes. The DB is this node's when one of the
primaries matches this server's IP **and** port (``bind_ip``/``bind_port``
of ``[DEFAULT]``, like ``swift-container-sync``; the first match wins when
one server holds several replicas). Its position among the primaries is
this node's *ordinal*. Handoff copies are not walked: their rows reach the
primaries by replication and are walked there. Unmounted devices (with
``mount_check``), missing DBs and deleted containers are skipped (a deleted
container is empty; delete rows not yet propagated when it was deleted
stay unpropagated, as with container-sync).

Sharded containers: once a root DB is sharded its rows live in shard DBs
(``.shards_<account>`` containers with their own placement). A node that
holds a replica of the root reads the shard ranges from its local root DB
(no network call) and walks every shard DB of which it holds a primary,
with the root's profile; rows moved into a shard get new ROWIDs there and
are checked once more (no-ops). While a root is *sharding* only its fresh
DB is walked; the rows being moved wait until the shards are walked (once
the root is sharded). A shard none of whose primaries holds a
root replica is not walked (logged once per pass at DEBUG by the nodes
that see it); with the usual ring sizes every shard has such a primary.

Distribution (who handles a row)
--------------------------------
Swift's container-sync scheme with two pointers per DB and node (see
:mod:`shunt.daemon.progress`):

1. **Own rows**: rows after ``point1``; the row is this node's when
   ``unpack('>I', hash_path(account, container, name, raw_digest=True)[:4])
   % replicas == ordinal`` (the same rule as container-sync, the same hash
   on every node). Each row is normally handled by exactly one replica.
   Rows are handled in parallel (``concurrency``); ``point1`` only moves
   over rows that are finished (succeeded, or recorded for a retry), so a
   crash never skips a row. A row not yet older than ``copy_after`` stops
   the own pass of the DB (rows are in time order, the later ones are
   younger): its pointer waits there, no row is re-examined pass after
   pass and nothing is kept per deferred row. Delete rows are not subject
   to ``copy_after`` but wait behind such a row: with ``copy_after`` a
   delete reaches the bucket at most ``copy_after`` late.
2. **Verification**: rows up to ``point1`` (as it was at the start of
   the pass: rows passed in an earlier pass) that another replica owns are
   handled again by this node once the owner has had its chance: the rows
   of the replica just before this one (in the order of the ring's
   primaries, circularly) once older than ``verification_slack`` (+
   ``copy_after``), those of the one before it once older than twice the
   slack, and so on (one pointer per distance). If the owner is dead or
   failing, the next replica does the work after one slack, and the
   replica after it finds it done after two — so even with a dead node
   no object is uploaded twice at once. For rows the owner already did,
   the handler finds the bucket up to date (a HEAD, no upload). So a dead
   node's share is done ``verification_slack`` late, and in the common
   case each object is uploaded once and checked by each other replica
   once.
3. **Retries**: rows that failed, or that the handler asked to see later
   (``RowLater``: a replica not yet up to date), are kept in the progress
   file and retried when due (1, 2, 4 ... minutes, at most an hour apart;
   permanent failures only when the object changes, or by ``--once``).
   Pointers never wait for them: a poison row never blocks later rows.

A pass over one DB is bounded by ``container_time`` seconds (the rest is
resumed next pass) and stops early after ``max_failures_in_row``
consecutive failures of the remote store (``kind`` ``remote``; the bucket
is down: the pointer stays and the next pass resumes, instead of filling
the retry list); at most ``max_failed_rows`` rows are kept for retry per
DB (past that, the pointer waits).

Lag: seconds since the oldest row this node should have handled by now
(own or verification) became eligible; 0 when the node is up to date.

Why this design: it is container-sync's (a stable hash of the name splits
the work, a second pointer makes every replica check the others' rows
once, per-row progress), with what 1space's daemon lacked: a row that
keeps failing is set aside instead of pinning the pointers of every
replica (1space re-read its whole window every poll and never got past
a poison row); rows not yet old enough cost nothing per pass; the
verification waits for the slack so that, normally, each object is
uploaded once and only checked by the other replicas; and progress is
written atomically, keyed by the DB's id and the profile's fingerprint so
that a rebuilt DB or a new bucket is never mistaken for work done.
Walking rows that need nothing costs no remote call at all: they are
behind both pointers.
"""

import dataclasses
import os
import struct
import time

from swift.common.constraints import check_drive
from swift.common.ring.utils import is_local_device
from swift.common.utils import (
    decode_timestamps,
    get_db_files,
    hash_path,
    storage_directory,
)
from swift.container.backend import DATADIR, ContainerBroker

BATCH = 1000
SAVE_EVERY = 5.0
OUTAGE_KINDS = frozenset(('remote',))


@dataclasses.dataclass
class Target:
    """One container DB of this node to walk for one profile."""
    profile: object
    account: str            # the mapped (root) container
    container: str
    db_path: str
    db_hash: str
    ordinal: int
    replicas: int
    db_account: str = None   # the DB's own names (differ for shards)
    db_container: str = None

    def __post_init__(self):
        self.db_account = self.db_account or self.account
        self.db_container = self.db_container or self.container

    @property
    def label(self):
        if self.db_container != self.container:
            return '%s/%s (shard %s)' % (self.account, self.container,
                                         self.db_container)
        return '%s/%s' % (self.account, self.container)


def owner_of(account, container, name, replicas):
    """The ordinal of the primary that handles this row first
    (container-sync's rule)."""
    digest = hash_path(account, container, name, raw_digest=True)
    return struct.unpack_from('>I', digest)[0] % replicas


def row_time(row):
    """The row's meta timestamp (last PUT or POST, or the DELETE) in
    epoch seconds."""
    return float(decode_timestamps(row['created_at'])[2])


def eligible_at(row, copy_after):
    """When the owner may act on the row: deletes at once, other rows
    once their last PUT/POST is ``copy_after`` seconds old."""
    if row['deleted']:
        return row_time(row)
    return row_time(row) + copy_after


def verifiable_at(row, copy_after, slack):
    return eligible_at(row, copy_after) + slack


def due_rows(rows, now, copy_after):
    """The prefix of ``rows`` eligible at ``now``, and the first row that is
    not (or None)."""
    for index, row in enumerate(rows):
        if eligible_at(row, copy_after) > now:
            return rows[:index], row
    return rows, None


class Locator:
    """Which container DBs of the mappings this node walks."""

    def __init__(self, ring, devices, mount_check, my_ips, my_port, logger):
        self.ring = ring
        self.devices = devices
        self.mount_check = mount_check
        self.my_ips = my_ips
        self.my_port = my_port
        self.logger = logger
        # accounts of /* profiles that could not be listed (this pass)
        self.listing_failures = 0

    def local_db(self, account, container):
        """``(db_path, db_hash, ordinal, replicas)`` of this node's primary
        replica, or None."""
        part, nodes = self.ring.get_nodes(account, container)
        ordinal = next((index for index, node in enumerate(nodes)
                        if is_local_device(self.my_ips, self.my_port,
                                           node['ip'], node['port'])), None)
        if ordinal is None:
            return None
        node = nodes[ordinal]
        try:
            device_path = check_drive(self.devices, node['device'],
                                      self.mount_check)
        except ValueError as err:
            self.logger.warning('Skipping %s/%s: %s', account, container,
                                err)
            return None
        db_hash = hash_path(account, container)
        db_path = os.path.join(
            device_path, storage_directory(DATADIR, part, db_hash),
            db_hash + '.db')
        return db_path, db_hash, ordinal, len(nodes)

    def containers(self, mappings, list_containers):
        """``(profile, account, container)`` for every mapped container;
        ``list_containers(account)`` lists the accounts of ``/*``
        profiles (errors are logged and the account skipped this pass)."""
        seen = set()
        for profile in mappings:
            if not profile.all_containers:
                seen.add((profile.account, profile.container))
                yield profile, profile.account, profile.container
        for profile in mappings:
            if not profile.all_containers:
                continue
            try:
                names = list_containers(profile.account)
            except Exception as err:
                self.listing_failures += 1
                self.logger.error('Cannot list the containers of %s for %s:'
                                  ' %s', profile.account, profile.describe(),
                                  err)
                continue
            for name in names:
                if (profile.account, name) not in seen:
                    yield (profile.for_container(name), profile.account,
                           name)

    def targets(self, mappings, list_containers):
        """Every DB of this node to walk, as :class:`Target`."""
        for profile, account, container in self.containers(
                mappings, list_containers):
            local = self.local_db(account, container)
            if local is None:
                continue
            db_path, db_hash, ordinal, replicas = local
            if not get_db_files(db_path):    # <hash>.db or <hash>_<epoch>.db
                self.logger.debug('No DB for %s/%s at %s', account,
                                  container, db_path)
                continue
            target = Target(profile, account, container, db_path, db_hash,
                            ordinal, replicas)
            broker = ContainerBroker(db_path, account=account,
                                     container=container,
                                     logger=self.logger)
            try:
                if broker.is_deleted():
                    self.logger.debug('Skipping deleted container %s/%s',
                                      account, container)
                    continue
                sharded = broker.is_sharded()
            except Exception as err:
                self.logger.error('Cannot open the DB of %s/%s (%s): %s',
                                  account, container, db_path, err)
                continue
            if not sharded:
                yield target
                continue
            yield from self.shard_targets(target, broker)

    def shard_targets(self, root, broker):
        for shard in broker.get_shard_ranges():
            local = self.local_db(shard.account, shard.container)
            if local is None:
                self.logger.debug('Shard %s of %s is not on this node',
                                  shard.name, root.label)
                continue
            db_path, db_hash, ordinal, replicas = local
            if get_db_files(db_path):
                yield Target(root.profile, root.account, root.container,
                             db_path, db_hash, ordinal, replicas,
                             shard.account, shard.container)


@dataclasses.dataclass
class PassStats:
    """What one pass over one DB did."""
    handled: int = 0
    failed: int = 0
    deferred: int = 0
    verified: int = 0
    retried: int = 0
    outcomes: dict = dataclasses.field(default_factory=dict)
    failures: dict = dataclasses.field(default_factory=dict)
    stopped: str = ''
    lag: float = 0.0
    # dry run: what would be acted on
    plan: list = dataclasses.field(default_factory=list)
    held: int = 0

    @property
    def ok(self):
        return self.failed == 0


class Options:
    """The walk's knobs (see :mod:`shunt.daemon.daemon`)."""

    def __init__(self, verification_slack=3600, container_time=60,
                 max_failures_in_row=10, max_failed_rows=10000,
                 batch=BATCH, save_every=SAVE_EVERY, plan_limit=1000):
        self.verification_slack = verification_slack
        self.container_time = container_time
        self.max_failures_in_row = max_failures_in_row
        self.max_failed_rows = max_failed_rows
        self.batch = batch
        self.save_every = save_every
        self.plan_limit = plan_limit


class ContainerWalk:
    """One pass over one container DB."""

    def __init__(self, target, broker, progress, handler, pool, logger,
                 options, clock=time.time, stopping=lambda: False,
                 dry_run=False, once=False):
        self.target = target
        self.profile = target.profile
        self.broker = broker
        self.progress = progress
        self.handler = handler
        self.pool = pool
        self.logger = logger
        self.options = options
        self.clock = clock
        self.stopping = stopping
        self.dry_run = dry_run
        self.once = once
        self.stats = PassStats()
        self.inflight = set()
        self.failures_in_row = 0
        self.last_save = clock()
        self.deadline = None
        # rows the bucket listing showed up to date (shunt.daemon.listed)
        self.listed = None

    # -- helpers ---------------------------------------------------------

    def owned(self, row):
        return owner_of(self.target.account, self.target.container,
                        row['name'], self.target.replicas) == \
            self.target.ordinal

    def fresh(self, row, phase):
        """Has this node never handled the row? True for an own row
        written after this DB's walk (re)started (see
        :meth:`shunt.daemon.rows.RowHandler.handle`); a hint that the
        bucket has no copy yet, never relied upon for safety."""
        since = self.progress.data.get('restarted')
        if phase != 'point1' or not since:
            return False
        return decode_timestamps(row['created_at'])[0].timestamp > since

    def excluded(self, row):
        """The profile's ``exclude_pattern`` matches the row's name (the
        handler skips it: no need to wait for ``copy_after``)."""
        pattern = self.profile.exclude_pattern
        return bool(pattern and pattern.match(row['name']))

    def _over(self, new_rows=True):
        """Whether the pass must stop here; waits for a free slot in the
        pool first, so that what the rows in flight did counts. Retries
        (``new_rows`` false) go on when the retry list is full: they are
        what empties it."""
        if not self.dry_run and not self.pool.free():
            self.pool.sem.acquire()
            self.pool.sem.release()
        if self.stats.stopped:
            return True
        if self.stopping():
            self.stats.stopped = 'stopping'
        elif not self.dry_run and self.clock() >= self.deadline:
            self.stats.stopped = 'container_time'
        elif self.failures_in_row >= self.options.max_failures_in_row:
            self.stats.stopped = 'remote failing'
        elif new_rows and not self.dry_run and \
                len(self.progress.retries) >= self.options.max_failed_rows:
            self.stats.stopped = 'too many failed rows'
        return bool(self.stats.stopped)

    def _rows(self, after, limit=None):
        return self.broker.get_items_since(after, limit or
                                           self.options.batch)

    def row_by_id(self, rowid):
        rows = self.broker.get_items_since(rowid - 1, 1)
        if rows and rows[0]['ROWID'] == rowid:
            return rows[0]
        return None

    def _maybe_save(self, scanned):
        if self.dry_run:
            return
        if self.clock() - self.last_save >= self.options.save_every:
            self._settle(scanned)
            self.progress.save()
            self.last_save = self.clock()

    def _settle(self, scanned):
        """Move the phase's pointer to the last row before the first row
        still in flight."""
        key, value = scanned
        if key is None:
            return
        pending = [rowid for rowid, phase in self.inflight if phase == key]
        point = min(pending) - 1 if pending else value
        if point > self.progress.pointer(key):
            self.progress.set_pointer(key, point)

    # -- handling one row ------------------------------------------------

    def submit(self, row, phase):
        if self.dry_run:
            self.stats.handled += 1
            if len(self.stats.plan) < self.options.plan_limit:
                self.stats.plan.append({
                    'phase': phase, 'row': row['ROWID'], 'name': row['name'],
                    'deleted': bool(row['deleted']),
                    'excluded': self.excluded(row)})
            return
        self.inflight.add((row['ROWID'], phase))
        if self.listed is not None and self.listed.listed(row['ROWID']):
            # up to date by the listing: no request to wait for
            self._handle(row, phase, listed=True)
        else:
            self.pool.spawn(self._handle, row, phase)

    def _handle(self, row, phase, listed=False):
        now = self.clock()
        try:
            outcome = self.handler.handle(self.profile, row, now=now,
                                          fresh=self.fresh(row, phase),
                                          listed=listed)
        except Exception as err:
            if hasattr(err, 'retry_at'):        # RowLater
                self.progress.record_later(row, err.retry_at, now)
                self.stats.deferred += 1
                self.logger.increment('deferred')
            else:
                self._failed(row, err, now)
        else:
            self.failures_in_row = 0
            self.progress.forget(row['ROWID'])
            name = getattr(outcome, 'value', outcome) or 'done'
            self.stats.handled += 1
            self.stats.outcomes[name] = self.stats.outcomes.get(name, 0) + 1
            self.progress.count(name)
            if name in ('uploaded', 'kept'):
                self.progress.count('bytes_uploaded', row.get('size') or 0)
            elif name == 'archived':
                self.progress.count('bytes_archived', row.get('size') or 0)
            # the row handler logs and counts outcomes in StatsD itself
        if phase.startswith('verify'):
            self.stats.verified += 1
        elif phase == 'retry':
            self.stats.retried += 1
        self.inflight.discard((row['ROWID'], phase))

    def _failed(self, row, err, now):
        kind = getattr(err, 'kind', None)
        if kind is None:
            # not a RowFailed (the handler logs and counts those): a bug
            kind = 'internal'
            self.logger.exception('Row %d (%r) of %s: unexpected error',
                                  row['ROWID'], row['name'],
                                  self.target.label)
            self.logger.increment('failures.%s' % kind)
        permanent = bool(getattr(err, 'permanent', False))
        entry = self.progress.record_failure(row, kind, permanent, err, now)
        self.stats.failed += 1
        self.stats.failures[kind] = self.stats.failures.get(kind, 0) + 1
        if kind in OUTAGE_KINDS:
            self.failures_in_row += 1
        else:
            self.failures_in_row = 0
        if entry['next_try'] is None:
            when = 'retried when the object changes'
        else:
            when = 'retried in %ds' % (entry['next_try'] - now)
        self.logger.info('%s %r: failed %d time(s) (%s); %s',
                         self.target.label, row['name'], entry['attempts'],
                         kind, when)

    # -- the pass --------------------------------------------------------

    def run(self):
        if not self.dry_run:
            self._list_bucket()
        # the budget starts after the listing: a pass always walks rows
        self.deadline = self.clock() + self.options.container_time
        # verification covers rows this node passed in an earlier pass
        # (as container-sync's sync points): never a row whose owner may
        # be handling it right now, even with a tiny slack
        verify_upto = self.progress.point1
        try:
            self._retries()
            self._own()
            self._verify(verify_upto)
        finally:
            self.pool.waitall()
        self.stats.lag = self.lag(self.clock())
        return self.stats

    def _list_bucket(self):
        """Before walking many rows this node has no record of, one
        listing of the bucket finds those already up to date (see
        :mod:`shunt.daemon.listed`)."""
        now, copy_after = self.clock(), self.profile.copy_after
        # the pointers with rows due now after them (in the steady state
        # the verification pointers wait for rows not yet old enough, and
        # rows written since the last pass are few)
        due = []
        rows = self._rows(self.progress.point1, 1)
        if rows and eligible_at(rows[0], copy_after) <= now:
            due.append(self.progress.point1)
        for distance in range(1, self.target.replicas):
            point = self.progress.pointer('verify%d' % distance)
            rows = self._rows(point, 1)
            if rows and rows[0]['ROWID'] <= self.progress.point1 and \
                    verifiable_at(rows[0], copy_after, distance *
                                  self.options.verification_slack) <= now:
                due.append(point)
        if due:
            self.listed = self.handler.list_rows(
                self.profile, self.broker, min(due), self.target.label)

    def _retries(self):
        now = self.clock()
        for rowid in self.progress.due(now, everything=self.once):
            if self._over(new_rows=False):
                break
            row = self.row_by_id(rowid)
            if row is None or row['name'] != \
                    self.progress.retries[str(rowid)]['name']:
                # replaced by a newer row (the object changed)
                if not self.dry_run:
                    self.progress.forget(rowid)
                continue
            self.submit(row, 'retry')
        self.pool.waitall()

    def _own(self):
        copy_after = self.profile.copy_after
        scanned = self.progress.point1
        while not self._over():
            rows = self._rows(scanned)
            if not rows:
                break
            for row in rows:
                if self._over():
                    break
                if self.owned(row):
                    if eligible_at(row, copy_after) > self.clock() and \
                            not self.excluded(row):
                        if not self.dry_run:
                            self.stats.stopped = 'copy_after'
                            break
                        self.stats.held += 1
                        scanned = row['ROWID']
                        continue
                    if str(row['ROWID']) not in self.progress.retries:
                        self.submit(row, 'point1')
                scanned = row['ROWID']
                self._maybe_save(('point1', scanned))
            else:
                continue
            break
        self.pool.waitall()
        if not self.dry_run:
            self._settle(('point1', scanned))
        if self.stats.stopped == 'copy_after':
            self.stats.stopped = ''

    def _verify(self, point1):
        for distance in range(1, self.target.replicas):
            if self._over():
                break
            self._verify_distance(point1, distance)

    def _verify_distance(self, point1, distance):
        """Verify the rows of the replica ``distance`` places before this
        one in the ring's order, once older than ``distance`` slacks: the
        next replica takes over a dead owner's rows after one slack, the
        one after it checks them after two (no upload twice at once)."""
        slack = self.options.verification_slack * distance
        copy_after = self.profile.copy_after
        replicas = self.target.replicas
        owner = (self.target.ordinal - distance) % replicas
        phase = 'verify%d' % distance
        scanned = self.progress.pointer(phase)
        # rows passed before this node's position changed: whoever owned
        # them, the nearest verification checks them
        everyone_upto = self.progress.verify_all_upto
        done = False
        while not done and not self._over() and scanned < point1:
            rows = self._rows(scanned)
            if not rows:
                break
            for row in rows:
                if row['ROWID'] > point1 or self._over():
                    done = True
                    break
                if row['ROWID'] <= everyone_upto:
                    ours = distance == 1
                else:
                    ours = owner_of(self.target.account,
                                    self.target.container, row['name'],
                                    replicas) == owner
                if ours and str(row['ROWID']) not in self.progress.retries:
                    if verifiable_at(row, copy_after, slack) > self.clock():
                        done = True
                        break
                    self.submit(row, phase)
                scanned = row['ROWID']
                self._maybe_save((phase, scanned))
        self.pool.waitall()
        if not self.dry_run:
            self._settle((phase, scanned))

    def lag(self, now):
        """Seconds the oldest row this node should have handled by now has
        been waiting (0 when up to date)."""
        lag = 0.0
        rows = self._rows(self.progress.point1, 1)
        if rows:
            lag = max(lag, now - eligible_at(rows[0],
                                             self.profile.copy_after))
        for distance in range(1, self.target.replicas):
            point = self.progress.pointer('verify%d' % distance)
            rows = self._rows(point, 1)
            if rows and rows[0]['ROWID'] <= self.progress.point1:
                lag = max(lag, now - verifiable_at(
                    rows[0], self.profile.copy_after,
                    self.options.verification_slack * distance))
        return max(lag, 0.0)
