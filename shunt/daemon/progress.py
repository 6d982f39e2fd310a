"""Progress of the sync daemon: one JSON file per container DB and node.

Where
-----
``<status_dir>/<hash>.json``, where ``<hash>`` is the container DB's own
hash directory name (``hash_path(account, container)``), so every DB this
node walks has exactly one file whatever its name's length or characters.
The file lives on the node's own disk, next to nothing else: each node
keeps its own progress for its own replica of the DB (ROWIDs differ between
replicas, so pointers cannot be shared).

What
----
``db_id``
    The DB's unique id (``ContainerBroker.get_info()['id']``). A DB rebuilt
    by replication (a replaced disk) has a new id and new ROWIDs: the walk
    restarts from row 0 (every row becomes an idempotent check).
``fingerprint``
    A digest of what decides where and how rows are written: the endpoint,
    bucket, key prefix, mode (sync or archive), the effective
    ``propagate_delete`` and the row selection (``exclude_pattern``,
    ``selection_criteria``). A change restarts the walk, so that a new
    bucket is filled, a new selection is applied to old rows and so on.
    Credentials and timeouts are not part of it. ``profile`` holds a
    log-safe summary of the same (never a secret).
``restarted``
    When the walk last started from row 0 (epoch seconds): an own row
    written after it is new to this node (a hint, see
    :meth:`shunt.daemon.walker.ContainerWalk.fresh`).
``point1``
    Every row with a ROWID up to it has been looked at by this node's *own*
    pass: the rows this node owns were handled, or are in ``retries``.
``verify_points``
    Per distance ``d`` (1 .. replicas-1): every row up to it owned by the
    replica ``d`` places before this one was *verified* by this node
    (handled again once older than ``d`` × ``verification_slack``, plus
    ``copy_after``), so that a dead node's share gets done. ``point2`` is
    the lowest of them (rows up to it are verified whoever owns them).
``verify_all_upto``
    Rows up to this ROWID are verified even when this node owns them (set
    when the ring changed this node's position: the old owner is unknown).
``retries``
    Rows that failed (``kind``, ``attempts``, ``permanent``, ``error``) or
    are not ready yet (``kind: later``), keyed by ROWID, each with
    ``next_try`` (epoch seconds; ``null`` for permanent failures: retried
    only when the object changes, or by ``--once``). The pointers move on
    past them: one bad row never blocks the rows after it. An entry whose
    row has been replaced by a newer one (the object changed) is dropped:
    the newer row is handled in its own right.
``counters``
    Cumulative per outcome (``uploaded``, ``archived``, ``metadata``, ...),
    ``failures``, ``bytes_uploaded``, ``bytes_archived``; kept across a
    restarted walk.
``last_pass``
    Start, end, rows handled and failed, lag of the last pass.

A progress file whose DB is no longer on this node (a deleted container
reclaimed, a DB moved away by a rebalance) is removed (checked after the
first pass, then hourly).

Writes are atomic: a temporary file in the same directory, ``fsync``,
``rename`` over the old file, ``fsync`` of the directory. A crash leaves
either the old or the new file, never a torn one; a file that still cannot
be read (disk trouble, manual edits) is logged and set aside
(``.corrupt``), and the walk restarts from row 0 — safe, because every row
handler is idempotent.
"""

import hashlib
import json
import os
import tempfile
import time

VERSION = 1
RETRY_BASE = 60
RETRY_MAX = 3600
COUNTER_NAMES = ('uploaded', 'metadata', 'noop', 'archived', 'kept',
                 'remote_deleted', 'skipped', 'gone', 'failures',
                 'bytes_uploaded', 'bytes_archived')


def profile_summary(profile):
    """What the fingerprint covers, log-safe (no credentials)."""
    # imported here: boto3 must be imported after eventlet's patching
    from shunt.core.remote import public_endpoint
    return {
        'endpoint': public_endpoint(profile.aws_endpoint)
        if profile.aws_endpoint else '',
        'bucket': profile.aws_bucket,
        'prefix': profile.custom_prefix,
        'mode': 'sync' if profile.retain_local else 'archive',
        'propagate_delete': profile.propagate_delete is not False,
        'exclude_pattern': profile.exclude_pattern.pattern
        if profile.exclude_pattern else None,
        'selection_criteria': profile.selection_criteria,
    }


def fingerprint(profile):
    blob = json.dumps(profile_summary(profile), sort_keys=True)
    return hashlib.sha256(blob.encode('utf-8')).hexdigest()[:32]


def retry_delay(attempts):
    """Seconds before the next try of a row that failed ``attempts``
    times: 1, 2, 4 ... minutes, at most an hour."""
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)


def write_atomic(path, data):
    """Write ``data`` (JSON-able) to ``path`` atomically and durably."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-',
                               suffix='.json')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as fp:
            json.dump(data, fp, sort_keys=True, separators=(',', ':'))
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_json(path):
    """The decoded file, None when it does not exist; ValueError when it
    cannot be decoded."""
    try:
        with open(path, 'rb') as fp:
            raw = fp.read()
    except FileNotFoundError:
        return None
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError('not a JSON object')
    return data


def progress_path(status_dir, db_hash):
    return os.path.join(status_dir, db_hash + '.json')


def prune(status_dir, logger):
    """Remove the progress files of container DBs that no longer exist on
    this node (deleted and reclaimed, or moved away by a rebalance); a DB
    that comes back starts from row 0, which is safe."""
    from swift.common.utils import get_db_files
    try:
        names = os.listdir(status_dir)
    except OSError:
        return
    for name in names:
        if not name.endswith('.json') or name.startswith('.'):
            continue
        path = os.path.join(status_dir, name)
        try:
            db_path = (read_json(path) or {}).get('db_path')
        except (OSError, ValueError):
            continue
        if db_path and not get_db_files(db_path):
            try:
                os.unlink(path)
            except OSError:
                continue
            logger.info('Progress of %s removed: the DB is gone', db_path)


class ContainerProgress:
    """The progress of one container DB (see the module docstring)."""

    def __init__(self, path, data):
        self.path = path
        self.data = data

    # -- loading ---------------------------------------------------------

    @classmethod
    def load(cls, path, *, db_id, profile, account, container, db_path,
             ordinal, replicas, logger, db_account=None, db_container=None):
        """The progress of this DB, restarted when the DB id or the
        profile's fingerprint changed (logged)."""
        try:
            data = read_json(path)
        except (OSError, ValueError) as err:
            logger.error('Progress file %s unreadable (%s); set aside, the '
                         'walk of %s/%s restarts', path, err, account,
                         container)
            try:
                os.replace(path, path + '.corrupt')
            except OSError:
                pass
            data = None
        progress = cls(path, data or {})
        progress._fill(account=account, container=container,
                       db_path=db_path, db_account=db_account or account,
                       db_container=db_container or container)
        print_ = fingerprint(profile)
        old = progress.data
        if not data:
            progress.restart(db_id, profile, print_, None)
        elif old.get('db_id') != db_id:
            progress.restart(db_id, profile, print_,
                             'the container DB was replaced')
        elif old.get('fingerprint') != print_:
            progress.restart(db_id, profile, print_,
                             'the profile (bucket, endpoint, prefix, mode or '
                             'selection) changed')
        if progress.data.get('restart_reason'):
            logger.info('Walk of %s/%s restarts from row 0: %s', account,
                        container, progress.data['restart_reason'])
        progress.set_ownership(ordinal, replicas)
        progress.set_copy_after(profile.copy_after)
        return progress

    def _fill(self, **fields):
        self.data.update(fields)
        self.data['version'] = VERSION
        counters = self.data.setdefault('counters', {})
        for name in COUNTER_NAMES:
            counters.setdefault(name, 0)
        self.data.setdefault('retries', {})
        self.data.setdefault('last_pass', None)

    def restart(self, db_id, profile, print_, reason):
        self.data.update(db_id=db_id, fingerprint=print_,
                         profile=profile_summary(profile), point1=-1,
                         point2=-1, verify_points={}, verify_all_upto=-1,
                         retries={},
                         restart_reason=reason, restarted=time.time())

    def set_ownership(self, ordinal, replicas):
        """Record this node's position among the DB's primaries; when it
        changed, rows already passed must be verified whoever owned
        them."""
        old = (self.data.get('ordinal'), self.data.get('replicas'))
        if old != (ordinal, replicas) and old != (None, None):
            self.data['verify_all_upto'] = self.point1
            low = self.point2
            self.data['verify_points'] = {}
            self.data['point2'] = low
        self.data['ordinal'] = ordinal
        self.data['replicas'] = replicas
        self._update_point2()

    def set_copy_after(self, copy_after):
        """A changed ``copy_after`` makes every deferred row due now (their
        times were computed with the old value)."""
        if self.data.get('copy_after', copy_after) != copy_after:
            for entry in self.retries.values():
                if entry.get('kind') == 'later':
                    entry['next_try'] = 0
        self.data['copy_after'] = copy_after

    # -- pointers --------------------------------------------------------

    @property
    def point1(self):
        return self.data['point1']

    @point1.setter
    def point1(self, value):
        self.data['point1'] = value

    @property
    def point2(self):
        return self.data['point2']

    def pointer(self, phase):
        """``point1``, or the verification pointer ``verify<d>``."""
        if phase == 'point1':
            return self.point1
        points = self.data.setdefault('verify_points', {})
        return points.get(phase[len('verify'):], self.data.get('point2',
                                                               -1))

    def set_pointer(self, phase, value):
        if phase == 'point1':
            self.point1 = value
        else:
            self.data.setdefault('verify_points', {})[
                phase[len('verify'):]] = value
        self._update_point2()

    def _update_point2(self):
        replicas = self.data.get('replicas') or 1
        if replicas <= 1:
            self.data['point2'] = self.point1
            return
        self.data['point2'] = min(self.pointer('verify%d' % d)
                                  for d in range(1, replicas))

    @property
    def verify_all_upto(self):
        return self.data.get('verify_all_upto', -1)

    @property
    def retries(self):
        return self.data['retries']

    @property
    def counters(self):
        return self.data['counters']

    # -- retries ---------------------------------------------------------

    def failing(self):
        return {rowid: e for rowid, e in self.retries.items()
                if e.get('kind') != 'later'}

    def due(self, now, everything=False):
        """ROWIDs (ints, ascending) of the entries to try now;
        ``everything``: every failure and every due deferral (``--once``)."""
        rows = []
        for rowid, entry in self.retries.items():
            next_try = entry.get('next_try')
            if next_try is not None and next_try <= now:
                rows.append(int(rowid))
            elif everything and entry.get('kind') != 'later':
                rows.append(int(rowid))
        return sorted(rows)

    def record_failure(self, row, kind, permanent, error, now):
        previous = self.retries.get(str(row['ROWID'])) or {}
        attempts = 1
        if previous.get('kind') not in (None, 'later'):
            attempts += previous.get('attempts', 0)
        self.retries[str(row['ROWID'])] = {
            'name': row['name'], 'kind': kind, 'attempts': attempts,
            'permanent': bool(permanent), 'error': str(error)[:200],
            'last_try': now,
            'next_try': None if permanent else now + retry_delay(attempts)}
        self.counters['failures'] += 1
        return self.retries[str(row['ROWID'])]

    def record_later(self, row, retry_at, now):
        self.retries[str(row['ROWID'])] = {
            'name': row['name'], 'kind': 'later', 'attempts': 0,
            'permanent': False, 'error': '', 'last_try': now,
            'next_try': float(retry_at)}

    def forget(self, rowid):
        self.retries.pop(str(rowid), None)

    def count(self, name, value=1):
        self.counters[name] = self.counters.get(name, 0) + value

    def save(self):
        self.data['saved'] = time.time()
        write_atomic(self.path, self.data)
