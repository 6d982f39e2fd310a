"""What the sync daemon has done and has left to do, from its progress files.

``cloud-shunt sync-status CONFIG [--json] [--dry-run]`` (see
:mod:`shunt.tools.cli`) runs on a container node and reads the progress
files of ``status_dir`` (:mod:`shunt.daemon.progress`) and the node's
container DBs; it never calls the bucket and never prints a credential.
Per mapped container DB of the node:

``rows``
    ``done`` (up to the own pointer), ``pending`` (rows after it: new
    changes not looked at yet, all replicas' shares), ``unverified`` (rows
    between the verification pointer and the own pointer: other replicas'
    rows this node will check once they are older than the slack),
    ``failing`` (rows recorded as failed, retried later), ``deferred``
    (rows a handler asked to see again later).
``objects``/``bytes``
    Cumulative counts of uploads and archives by this node.
``last_pass``
    When the last pass over the DB started and ended, and what it did.
``lag``
    Seconds the oldest row this node should have handled by now has been
    waiting (0: up to date).

``--dry-run`` walks the DBs like a pass would (same ownership, slack and
``copy_after`` rules), lists the rows it would act on and counts the rows
waiting for ``copy_after`` — without a remote call and without writing any
progress.
"""

import glob
import json
import os
import time

from swift.container.backend import ContainerBroker

from shunt.daemon import progress as progress_mod


def count_rows(db_path, after, upto=None):
    """Rows of a container DB with ``after < ROWID [<= upto]``."""
    broker = ContainerBroker(db_path)
    with broker.get() as conn:
        if upto is None:
            row = conn.execute('SELECT COUNT(*) FROM object WHERE ROWID > ?',
                               (after,)).fetchone()
        else:
            row = conn.execute('SELECT COUNT(*) FROM object WHERE ROWID > ? '
                               'AND ROWID <= ?', (after, upto)).fetchone()
    return row[0]


def container_status(data, now=None):
    """One progress file's content as a status entry (no secrets: the
    progress file holds none)."""
    now = time.time() if now is None else now
    counters = data.get('counters', {})
    retries = data.get('retries', {})
    failing = {k: v for k, v in retries.items() if v.get('kind') != 'later'}
    last = data.get('last_pass') or {}
    entry = {
        'account': data.get('account'),
        'container': data.get('container'),
        'db': data.get('db_path'),
        'profile': data.get('profile'),
        'rows': {'point1': data.get('point1'), 'point2': data.get('point2'),
                 'failing': len(failing),
                 'deferred': len(retries) - len(failing)},
        'objects': {'uploaded': counters.get('uploaded', 0),
                    'archived': counters.get('archived', 0),
                    'metadata': counters.get('metadata', 0),
                    'remote_deleted': counters.get('remote_deleted', 0),
                    'failures': counters.get('failures', 0)},
        'bytes': {'uploaded': counters.get('bytes_uploaded', 0),
                  'archived': counters.get('bytes_archived', 0)},
        'last_pass': last or None,
        'lag': last.get('lag'),
        'failing': [{'row': int(k), 'name': v.get('name'),
                     'kind': v.get('kind'), 'attempts': v.get('attempts'),
                     'permanent': v.get('permanent'),
                     'next_try': v.get('next_try')}
                    for k, v in sorted(failing.items(),
                                       key=lambda kv: int(kv[0]))[:20]],
    }
    db_path = data.get('db_path')
    point1, point2 = data.get('point1', -1), data.get('point2', -1)
    if db_path and os.path.exists(db_path):
        try:
            entry['rows']['pending'] = count_rows(db_path, point1)
            entry['rows']['unverified'] = count_rows(db_path, point2, point1)
            entry['rows']['done'] = count_rows(db_path, -1, point1)
        except Exception as err:
            entry['rows']['error'] = str(err)
    return entry


def read_status(status_dir, now=None):
    """Status entries of every progress file in ``status_dir``, sorted by
    container."""
    entries = []
    for path in sorted(glob.glob(os.path.join(status_dir, '*.json'))):
        try:
            data = progress_mod.read_json(path)
        except (OSError, ValueError) as err:
            entries.append({'file': path, 'error': str(err)})
            continue
        if data:
            entry = container_status(data, now)
            entry['file'] = path
            entries.append(entry)
    entries.sort(key=lambda e: (e.get('account') or '',
                                e.get('container') or '', e.get('db') or ''))
    return entries


def _when(epoch):
    if not epoch:
        return 'never'
    return time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(epoch))


def format_status(entries):
    """The human-readable ``sync-status`` report."""
    if not entries:
        return 'No progress files: the daemon has not walked any container ' \
            'DB of this node yet.\n'
    lines = []
    for e in entries:
        if 'error' in e and 'rows' not in e:
            lines.append(f'{e["file"]}: unreadable: {e["error"]}')
            continue
        profile = e.get('profile') or {}
        rows, objects, sizes = e['rows'], e['objects'], e['bytes']
        last = e.get('last_pass') or {}
        lines.append(f'{e["account"]}/{e["container"]} -> '
                     f'{profile.get("endpoint") or "AWS S3"} bucket '
                     f'{profile.get("bucket")} ({profile.get("mode")})')
        lines.append(
            f'  rows: {rows.get("done", "?")} done, '
            f'{rows.get("pending", "?")} pending, '
            f'{rows.get("unverified", "?")} unverified, '
            f'{rows["failing"]} failing, {rows["deferred"]} deferred')
        lines.append(
            f'  objects: {objects["uploaded"]} uploaded '
            f'({sizes["uploaded"]} bytes), {objects["archived"]} archived '
            f'({sizes["archived"]} bytes), {objects["metadata"]} metadata '
            f'updates, {objects["remote_deleted"]} remote deletes, '
            f'{objects["failures"]} failures')
        lines.append(f'  last pass: {_when(last.get("end"))}'
                     + (f', lag {int(e["lag"] or 0)}s' if last else ''))
        for failure in e['failing']:
            lines.append(f'  failing row {failure["row"]} '
                         f'{failure["name"]!r}: {failure["kind"]}, '
                         f'{failure["attempts"]} attempt(s)')
    return '\n'.join(lines) + '\n'


def plan_entries(reports):
    return [{'account': target.account, 'container': target.container,
             'db': target.db_path, 'would_handle': stats.handled,
             'waiting_for_copy_after': stats.held, 'rows': stats.plan}
            for target, stats in reports]


def format_plan(reports, as_json=False):
    """The ``--dry-run`` report of :meth:`CloudShuntSync.one_pass`."""
    entries = plan_entries(reports)
    if as_json:
        return json.dumps(entries, indent=2, sort_keys=True) + '\n'
    if not entries:
        return 'Nothing to do: no mapped container DB on this node.\n'
    lines = []
    for e in entries:
        lines.append(f'{e["account"]}/{e["container"]}: would act on '
                     f'{e["would_handle"]} row(s); '
                     f'{e["waiting_for_copy_after"]} waiting for copy_after')
        for row in e['rows']:
            what = 'delete' if row['deleted'] else 'copy'
            if row['excluded']:
                what += ' (excluded: skip)'
            phase = 'own' if row['phase'] == 'point1' else row['phase']
            lines.append(f'  {phase} row {row["row"]}: {what} '
                         f'{row["name"]!r}')
    return '\n'.join(lines) + '\n'


def main(config_path, as_json=False, dry_run=False, out=None, err=None):
    """``cloud-shunt sync-status``: print the status (or the dry run) of
    the node whose container server config is ``config_path``; the exit
    status."""
    import sys

    from shunt.core.config import ConfigError
    from shunt.daemon.daemon import CloudShuntSync, drop_privileges, load_conf
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        conf, options = load_conf(config_path)
        if os.geteuid() == 0:
            # never leave root-owned files next to the container DBs
            drop_privileges(conf, config_path)
    except ConfigError as error:
        err.write(f'cloud-shunt sync-status: {error}\n')
        return 1
    if not dry_run:
        entries = read_status(options.status_dir)
        if as_json:
            out.write(json.dumps(entries, indent=2, sort_keys=True) + '\n')
        else:
            out.write(format_status(entries))
        return 0 if all('error' not in e for e in entries) else 1
    logger = _QuietLogger()
    try:
        daemon = CloudShuntSync(conf, logger=logger, conf_path=config_path)
        ok, reports = daemon.one_pass(dry_run=True, once=True)
    except (ConfigError, OSError) as error:
        err.write(f'cloud-shunt sync-status: {error}\n')
        return 1
    out.write(format_plan(reports, as_json=as_json))
    for line in logger.errors:
        err.write(line + '\n')
    return 0 if ok else 1


class _QuietLogger:
    """A logger for the dry run: errors are printed, the rest dropped."""

    def __init__(self):
        self.errors = []

    def error(self, msg, *args, **kwargs):
        self.errors.append(msg % args if args else msg)

    exception = error

    def _drop(self, *args, **kwargs):
        pass

    debug = info = warning = notice = increment = timing = _drop
    update_stats = timing_since = _drop
