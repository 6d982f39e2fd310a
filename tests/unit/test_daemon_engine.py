"""The sync daemon's engine: which DBs, which rows, progress, retries.

Real container DBs (ContainerBroker) with real rows on a real ring
(RingBuilder, 1 and 3 replicas); the row handler is a fake."""

import collections
import json
import os
import time

import pytest

from shunt.daemon import progress as progress_mod
from shunt.daemon.walker import owner_of
from tests.unit.daemon_support import (
    ACCOUNT,
    T0,
    Clock,
    Cluster,
    Failed,
    FakeHandler,
    FakeSwift,
    Later,
    Outcome,
)

NAMES = ['obj-%03d' % i for i in range(60)] + ['unicodé', 'a/b/c']


def ordinal(cluster, node, container='c'):
    """The node's position among the container's primaries."""
    _, nodes = cluster.ring.get_nodes(ACCOUNT, container)
    return [n['port'] for n in nodes].index(cluster.port(node))


def owned_by(cluster, node, names=NAMES, container='c'):
    return {n for n in names if owner_of(ACCOUNT, container, n,
                                         cluster.replicas) ==
            ordinal(cluster, node, container)}


def owned_at(cluster, node, distance, container='c'):
    """The names of the replica ``distance`` places before ``node``."""
    owner = (ordinal(cluster, node, container) - distance) % cluster.replicas
    return {n for n in NAMES if owner_of(ACCOUNT, container, n,
                                         cluster.replicas) == owner}


def progress_file(cluster, node, container='c'):
    broker = cluster.broker(node, container, create=False)
    db_hash = os.path.basename(broker.db_file)[:-3]
    return os.path.join(cluster.root, 'status%d' % node, db_hash + '.json')


def load_progress(cluster, node, container='c'):
    with open(progress_file(cluster, node, container)) as fp:
        return json.load(fp)


@pytest.fixture(autouse=True)
def hash_suffix(monkeypatch):
    from swift.common import utils
    monkeypatch.setattr(utils, 'HASH_PATH_SUFFIX', b'unit-test-suffix')


@pytest.fixture
def three(tmp_path):
    cluster = Cluster(tmp_path, replicas=3)
    cluster.write_mapping({})
    return cluster


@pytest.fixture
def one(tmp_path):
    cluster = Cluster(tmp_path, replicas=1)
    cluster.write_mapping({})
    return cluster


def test_ownership_split_covers_every_row_exactly_once(three):
    three.put('c', NAMES)
    handlers = [FakeHandler() for _ in range(3)]
    for node in range(3):
        assert three.daemon(node, handlers[node]).run_once() is True
    handled = collections.Counter(n for h in handlers for n in h.names())
    assert sorted(handled) == sorted(NAMES)
    assert set(handled.values()) == {1}
    # every node did its share (the hash splits the names)
    assert all(h.calls for h in handlers)
    for node, handler in enumerate(handlers):
        assert set(handler.names()) == owned_by(three, node)
    # a second pass has nothing to do and costs no handler call
    again = [FakeHandler() for _ in range(3)]
    for node in range(3):
        three.daemon(node, again[node]).run_once()
    assert not any(h.calls for h in again)


def test_one_replica_handles_everything(one):
    one.put('c', NAMES)
    handler = FakeHandler()
    daemon = one.daemon(0, handler)
    assert daemon.run_once() is True
    assert sorted(handler.names()) == sorted(NAMES)
    data = load_progress(one, 0)
    assert data['point1'] == one.broker(0, 'c').get_max_row()
    assert data['counters']['uploaded'] == len(NAMES)
    assert data['counters']['bytes_uploaded'] == 10 * len(NAMES)


def test_own_rows_written_after_the_walk_began_are_fresh(one):
    now = time.time()
    one.put('c', ['old'], when=now - 100)
    handler = FakeHandler()
    clock = Clock(now + 100)
    one.daemon(0, handler, clock=clock).run_once()
    one.put('c', ['new'], when=now + 10)
    one.daemon(0, handler, clock=clock).run_once()
    # the walk began (its progress was created) between the two
    assert list(zip(handler.names(), handler.fresh, strict=True)) == [
        ('old', False), ('new', True)]


def test_verification_picks_up_a_dead_nodes_rows_after_the_slack(three):
    three.put('c', NAMES, when=T0 - 100)
    clock = Clock(T0)
    handlers = {0: FakeHandler(), 1: FakeHandler()}   # node 2 is dead
    for node in (0, 1):
        three.daemon(node, handlers[node], clock=clock).run_once()
    dead_share = owned_by(three, 2)
    done = set(handlers[0].names()) | set(handlers[1].names())
    assert dead_share and not dead_share & done
    # before the slack: still nobody does node 2's share
    clock.now = T0 + 3000
    for node in (0, 1):
        three.daemon(node, handlers[node], clock=clock).run_once()
    assert not dead_share & (set(handlers[0].names()) |
                             set(handlers[1].names()))
    # after it, each live node verifies the rows of the replica before it:
    # the dead node's share is done by exactly one of them
    clock.now = T0 + 3601
    for node in (0, 1):
        handlers[node].calls.clear()
        three.daemon(node, handlers[node], clock=clock).run_once()
    for node in (0, 1):
        assert set(handlers[node].names()) == owned_at(three, node, 1)
    done = collections.Counter(handlers[0].names() + handlers[1].names())
    assert set(done) >= dead_share
    assert all(done[n] == 1 for n in dead_share)
    # after two slacks, the replica after that checks them too
    clock.now = T0 + 7201
    for node in (0, 1):
        handlers[node].calls.clear()
        three.daemon(node, handlers[node], clock=clock).run_once()
        assert set(handlers[node].names()) == owned_at(three, node, 2)
        data = load_progress(three, node)
        assert data['point2'] == data['point1']
    # and once verified, never again
    for node in (0, 1):
        handlers[node].calls.clear()
        three.daemon(node, handlers[node], clock=clock).run_once()
        assert handlers[node].calls == []


def test_verification_waits_for_copy_after_too(three):
    three.write_mapping({'copy_after': 1000, 'retain_local': False})
    three.put('c', NAMES, when=T0 - 1100)
    clock = Clock(T0 + 3000)     # eligible, but not verifiable yet
    handler = FakeHandler()
    three.daemon(0, handler, clock=clock).run_once()
    assert set(handler.names()) == owned_by(three, 0)
    handler.calls.clear()
    clock.now = T0 - 1100 + 1000 + 3601
    three.daemon(0, handler, clock=clock).run_once()
    assert set(handler.names()) == owned_at(three, 0, 1)


def test_failing_row_does_not_block_later_rows_and_is_retried(one):
    one.put('c', NAMES)
    clock = Clock(T0)
    handler = FakeHandler({'obj-003': [Failed('remote'), Failed('remote'),
                                       Outcome.UPLOADED]})
    daemon = one.daemon(0, handler, clock=clock)
    assert daemon.one_pass()[0] is False
    assert sorted(handler.names()) == sorted(NAMES)     # nothing blocked
    data = load_progress(one, 0)
    assert data['point1'] == one.broker(0, 'c').get_max_row()
    ((rowid, entry),) = data['retries'].items()
    assert entry['name'] == 'obj-003' and entry['kind'] == 'remote'
    assert entry['attempts'] == 1 and entry['next_try'] == T0 + 60
    assert any('obj-003' in line and 'failed 1 time(s) (remote)' in line
               for level, line in daemon.logger.lines if level == 'info')
    # not due yet: no retry
    handler.calls.clear()
    clock.now = T0 + 30
    assert daemon.one_pass()[0] is True
    assert handler.calls == []
    # due: retried, fails again, backs off longer
    clock.now = T0 + 61
    assert daemon.one_pass()[0] is False
    assert handler.names() == ['obj-003']
    entry = load_progress(one, 0)['retries'][rowid]
    assert entry['attempts'] == 2 and entry['next_try'] == T0 + 61 + 120
    # succeeds: forgotten
    clock.now = T0 + 200
    assert daemon.one_pass()[0] is True
    assert load_progress(one, 0)['retries'] == {}
    assert load_progress(one, 0)['counters']['failures'] == 2


def test_once_retries_every_failure_and_reports_it(one):
    one.put('c', ['x', 'y'])
    clock = Clock(T0)
    handler = FakeHandler({'x': [Failed('too_large', permanent=True),
                                 Failed('too_large', permanent=True)]})
    daemon = one.daemon(0, handler, clock=clock)
    assert daemon.run_once() is False
    entry = load_progress(one, 0)['retries']
    (entry,) = entry.values()
    assert entry['permanent'] is True and entry['next_try'] is None
    # the forever loop leaves a permanent failure alone...
    handler.calls.clear()
    clock.now += 10000
    assert daemon.one_pass()[0] is True and handler.calls == []
    # ...--once retries it, and reports it
    assert daemon.run_once() is False and handler.names() == ['x']
    assert daemon.run_once() is True


def test_replaced_row_drops_its_retry_entry(one):
    one.put('c', ['x', 'y'])
    clock = Clock(T0)
    handler = FakeHandler({'x': [Failed('local')]})
    daemon = one.daemon(0, handler, clock=clock)
    daemon.one_pass()
    assert len(load_progress(one, 0)['retries']) == 1
    one.put('c', ['x'], when=T0 - 50)       # the object changed
    handler.calls.clear()
    clock.now = T0 + 100
    assert daemon.one_pass()[0] is True
    assert handler.names() == ['x']         # the new row, once
    assert load_progress(one, 0)['retries'] == {}


def test_row_later_is_retried_at_its_time_and_is_no_failure(one):
    one.put('c', ['x', 'y', 'z'])
    clock = Clock(T0)
    handler = FakeHandler({'y': [Later(T0 + 100)]})
    daemon = one.daemon(0, handler, clock=clock)
    assert daemon.run_once() is True
    (entry,) = load_progress(one, 0)['retries'].values()
    assert entry['kind'] == 'later' and entry['next_try'] == T0 + 100
    handler.calls.clear()
    clock.now = T0 + 50
    assert daemon.run_once() is True and handler.calls == []
    clock.now = T0 + 100
    assert daemon.run_once() is True and handler.names() == ['y']
    assert load_progress(one, 0)['retries'] == {}


def test_copy_after_holds_the_pointer_without_per_row_state(one):
    one.write_mapping({'copy_after': 600, 'retain_local': False})
    one.put('c', ['old1', 'old2'], when=T0 - 700)
    one.put('c', ['young1', 'young2'], when=T0 - 100)
    clock = Clock(T0)
    handler = FakeHandler()
    daemon = one.daemon(0, handler, clock=clock)
    assert daemon.run_once() is True
    assert sorted(handler.names()) == ['old1', 'old2']
    data = load_progress(one, 0)
    assert data['retries'] == {} and data['point1'] == 2
    handler.calls.clear()
    clock.now = T0 + 501
    assert daemon.run_once() is True
    assert sorted(handler.names()) == ['young1', 'young2']


def test_deletes_are_not_held_by_copy_after(one):
    one.write_mapping({'copy_after': 600})
    one.put('c', ['gone'], when=T0 - 700)
    one.delete('c', 'gone', when=T0 - 10)
    handler = FakeHandler()
    one.daemon(0, handler).run_once()
    assert handler.names() == ['gone']
    (row,) = one.broker(0, 'c').get_items_since(-1, 10)
    assert row['deleted'] == 1 and row['ROWID'] == handler.calls[0][2]


def test_progress_survives_a_restart_and_is_written_atomically(one,
                                                               monkeypatch):
    one.put('c', NAMES[:10])
    one.daemon(0, FakeHandler()).run_once()
    before = load_progress(one, 0)
    status_dir = os.path.dirname(progress_file(one, 0))
    assert os.listdir(status_dir) == [os.path.basename(
        progress_file(one, 0))]            # no temporary file left
    one.put('c', NAMES[10:20])

    # a crash in the middle of a save leaves the old file intact
    def crash(src, dst):
        raise OSError('disk gone')
    daemon = one.daemon(0, FakeHandler())
    (target,) = daemon.locator.targets(daemon.mappings(), lambda a: [])
    with monkeypatch.context() as patch:
        patch.setattr(progress_mod.os, 'replace', crash)
        with pytest.raises(OSError):
            daemon.walk(target)
    assert load_progress(one, 0) == before
    assert len(os.listdir(status_dir)) == 1
    # a restarted daemon resumes after the last saved row
    handler = FakeHandler()
    one.daemon(0, handler).run_once()
    assert sorted(handler.names()) == sorted(NAMES[10:20])


def test_corrupt_progress_file_restarts_the_walk(one):
    one.put('c', ['x'])
    one.daemon(0, FakeHandler()).run_once()
    with open(progress_file(one, 0), 'w') as fp:
        fp.write('{"point1": 3')
    handler = FakeHandler()
    daemon = one.daemon(0, handler)
    assert daemon.run_once() is True
    assert handler.names() == ['x']
    assert os.path.exists(progress_file(one, 0) + '.corrupt')
    assert any('unreadable' in line for _, line in daemon.logger.lines)


@pytest.mark.parametrize('change', [
    {'aws_bucket': 'other'}, {'aws_endpoint': 'http://127.0.0.1:2'},
    {'custom_prefix': 'p'}, {'retain_local': False},
    {'exclude_pattern': '^x'}])
def test_changed_profile_fingerprint_restarts_the_walk(one, change):
    one.put('c', ['x', 'y'])
    one.daemon(0, FakeHandler()).run_once()
    same = FakeHandler()
    one.daemon(0, same).run_once()
    assert same.calls == []
    # credentials are not part of it
    one.write_mapping({'aws_secret': 'new', 'aws_identity': 'new'})
    one.daemon(0, same).run_once()
    assert same.calls == []
    one.write_mapping(change)
    handler = FakeHandler()
    daemon = one.daemon(0, handler)
    daemon.run_once()
    assert sorted(handler.names()) == ['x', 'y']
    assert any('restarts from row 0' in line
               for _, line in daemon.logger.lines)
    assert 's3cr3t' not in open(progress_file(one, 0)).read()


def test_replaced_db_restarts_the_walk(one):
    one.put('c', ['x'])
    one.daemon(0, FakeHandler()).run_once()
    os.unlink(one.broker(0, 'c').db_file)
    one.put('c', ['x'])          # rebuilt: a new DB id
    handler = FakeHandler()
    one.daemon(0, handler).run_once()
    assert handler.names() == ['x']


def test_container_time_budget_resumes_next_pass(one):
    one.put('c', NAMES)
    clock = Clock(T0)

    def tick(row):
        clock.now += 1
    handler = FakeHandler(on_call=tick)
    daemon = one.daemon(0, handler, clock=clock, container_time=10,
                        concurrency=1)
    daemon.run_once()
    first = len(handler.calls)
    assert 9 <= first <= 12
    assert load_progress(one, 0)['last_pass']['stopped'] == \
        'container_time'
    assert load_progress(one, 0)['last_pass']['lag'] > 0
    for _ in range(10):
        daemon.run_once()
    assert sorted(handler.names()) == sorted(NAMES)


def test_remote_outage_stops_the_container_pass(one):
    one.put('c', NAMES)
    handler = FakeHandler({n: [Failed('remote')] for n in NAMES})
    daemon = one.daemon(0, handler, max_failures_in_row=5, concurrency=1)
    assert daemon.run_once() is False
    assert len(handler.calls) == 5
    data = load_progress(one, 0)
    assert len(data['retries']) == 5
    assert data['last_pass']['stopped'] == 'remote failing'


def test_unexpected_exception_is_a_failure_with_a_traceback(one):
    one.put('c', ['x', 'y'])
    handler = FakeHandler({'x': [KeyError('bug')]})
    daemon = one.daemon(0, handler)
    assert daemon.run_once() is False
    (entry,) = load_progress(one, 0)['retries'].values()
    assert entry['kind'] == 'internal'
    assert ('increment', 'failures.internal') in daemon.logger.metrics
    assert any(level == 'error' and 'unexpected error' in line
               for level, line in daemon.logger.lines)
    assert sorted(handler.names()) == ['x', 'y']


def test_all_containers_profile_walks_every_container(one):
    one.write_mapping({'container': '/*'},
                      {'container': 'exact', 'aws_bucket': 'b2'})
    for container in ('c1', 'c2', 'exact'):
        one.put(container, ['x-' + container])
    handler = FakeHandler()
    swift = FakeSwift({ACCOUNT: ['c1', 'c2', 'exact', 'nodb']})
    assert one.daemon(0, handler, swift=swift).run_once() is True
    assert sorted((c, n) for c, n, _, _ in handler.calls) == [
        ('c1', 'x-c1'), ('c2', 'x-c2'), ('exact', 'x-exact')]


def test_deleted_and_missing_dbs_are_skipped(one):
    one.write_mapping({'container': 'c'}, {'container': 'missing'})
    one.put('c', ['x'])
    broker = one.broker(0, 'c')
    broker.delete_object('x', '%.5f' % (T0 - 1))
    broker.delete_db('%.5f' % (T0 - 1))
    handler = FakeHandler()
    assert one.daemon(0, handler).run_once() is True
    assert handler.calls == []


def test_node_not_holding_the_container_does_nothing(tmp_path):
    cluster = Cluster(tmp_path, replicas=3)
    cluster.write_mapping({})
    cluster.put('c', ['x'])
    handler = FakeHandler()
    # a fourth server: not in the ring
    daemon = cluster.daemon(0, handler, bind_port=9999)
    assert daemon.run_once() is True
    assert handler.calls == []


def test_dry_run_calls_nothing_and_writes_nothing(one):
    one.write_mapping({'copy_after': 600, 'exclude_pattern': '^skip'})
    one.put('c', ['old', 'skip-me'], when=T0 - 700)
    one.put('c', ['young'], when=T0 - 10)
    daemon = one.daemon(0, None)
    ok, reports = daemon.one_pass(dry_run=True, once=True)
    assert ok
    ((target, stats),) = reports
    assert [r['name'] for r in stats.plan] == ['old', 'skip-me']
    assert [r['excluded'] for r in stats.plan] == [False, True]
    assert stats.held == 1
    assert not os.path.exists(os.path.join(one.root, 'status0'))
    from shunt.daemon.status import format_plan
    text = format_plan(reports)
    assert "copy 'old'" in text and '1 waiting for copy_after' in text
    assert json.loads(format_plan(reports, as_json=True))[0][
        'would_handle'] == 2


def test_invalid_mapping_keeps_the_last_good_one(one):
    one.put('c', ['x'])
    handler = FakeHandler()
    daemon = one.daemon(0, handler)
    assert daemon.run_once() is True
    with open(one.mapping, 'w') as fp:
        fp.write('{"containers": [{"account": 3}]}')
    one.put('c', ['y'])
    assert daemon.run_once() is True
    assert handler.names() == ['x', 'y']
    assert any(level == 'error' and 'Keeping the previous' in line
               for level, line in daemon.logger.lines)


def test_no_valid_mapping_at_start_fails_once(one):
    with open(one.mapping, 'w') as fp:
        fp.write('nope')
    daemon = one.daemon(0, FakeHandler())
    assert daemon.run_once() is False
    assert any('No mappings' in line for _, line in daemon.logger.lines)


def test_progress_line_and_metrics_per_container_pass(one):
    one.put('c', ['x', 'y'])
    handler = FakeHandler({'y': [Outcome.NOOP]})
    daemon = one.daemon(0, handler)
    daemon.run_once()
    (line,) = [line for _, line in daemon.logger.lines
               if line.startswith('Container pass')]
    assert 'AUTH_test/c: 2 handled (noop 1, uploaded 1), 0 failed' in line
    assert 'lag 0s' in line
    metrics = daemon.logger.metrics
    for name in ('container_pass.timing', 'lag.timing', 'pass.timing'):
        assert ('timing', name) in metrics


def test_every_pass_is_timed_and_logged_not_only_pruning_ones(one):
    # progress files are pruned hourly; the pass's own line and timing
    # come every pass
    one.put('c', ['x'])
    daemon = one.daemon(0, FakeHandler())
    for _ in range(3):
        daemon.one_pass()
    assert daemon.logger.metrics.count(('timing', 'pass.timing')) == 3
    assert len([line for _, line in daemon.logger.lines
                if line.startswith('Pass done: 1 container DB(s)')]) == 3


def test_ring_position_change_verifies_own_rows_too(three):
    three.put('c', NAMES)
    clock = Clock(T0)
    handler = FakeHandler()
    three.daemon(0, handler, clock=clock).run_once()
    path = progress_file(three, 0)
    with open(path) as fp:
        data = json.load(fp)
    # as if the ring had moved this node
    data['ordinal'] = (ordinal(three, 0) + 1) % 3
    with open(path, 'w') as fp:
        json.dump(data, fp)
    handler.calls.clear()
    clock.now = T0 + 4000
    three.daemon(0, handler, clock=clock).run_once()
    assert sorted(handler.names()) == sorted(NAMES)


def test_verification_waits_one_pass_even_for_old_rows(three):
    # rows already older than the slack when the node first sees them:
    # their owners get this pass to handle them
    three.put('c', NAMES, when=T0 - 4000)
    handler = FakeHandler()
    three.daemon(0, handler).run_once()
    assert set(handler.names()) == owned_by(three, 0)
    handler.calls.clear()
    three.daemon(0, handler).run_once()
    assert set(handler.names()) == owned_at(three, 0, 1)


def test_sharded_root_walks_its_shard_dbs(three):
    from swift.common.utils import ShardRange, Timestamp
    ts = Timestamp(T0 - 900)
    shards = [ShardRange(ShardRange.make_path('.shards_' + ACCOUNT, 'c', 'c',
                                              ts, i), ts, lower, upper,
                         state=ShardRange.ACTIVE)
              for i, (lower, upper) in enumerate([('', 'obj-030'),
                                                  ('obj-030', '')])]
    for node in range(3):
        root = three.broker(node, 'c')
        root.merge_shard_ranges(shards)
        root.enable_sharding(Timestamp(T0 - 800))
        assert root.set_sharding_state() and root.set_sharded_state()
        assert root.is_sharded()
    for shard in shards:
        names = [n for n in NAMES if n in shard]
        three.put(shard.container, names, account=shard.account)
    handlers = [FakeHandler() for _ in range(3)]
    for node in range(3):
        assert three.daemon(node, handlers[node]).run_once() is True
    handled = collections.Counter(n for h in handlers for n in h.names())
    assert sorted(handled) == sorted(NAMES)
    assert set(handled.values()) == {1}
    # with the root's profile, the root's name in the log
    assert {c for h in handlers for c, _, _, _ in h.calls} == {'c'}


def test_stop_request_finishes_rows_in_flight_and_saves(one):
    one.put('c', NAMES)
    daemon = None

    def stop_at_third(row):
        if row['ROWID'] == 3:
            daemon.request_stop()
    handler = FakeHandler(on_call=stop_at_third)
    daemon = one.daemon(0, handler, concurrency=1)
    assert daemon.run_once() is False           # interrupted: not a pass
    assert len(handler.calls) in (3, 4)
    data = load_progress(one, 0)
    assert data['point1'] == len(handler.calls)
    # the next start resumes after the last finished row
    rest = FakeHandler()
    one.daemon(0, rest).run_once()
    assert sorted(handler.names() + rest.names()) == sorted(NAMES)


def test_forever_goes_on_at_once_while_a_container_has_a_backlog(one):
    one.put('c', NAMES)
    clock = Clock(T0)
    daemon = None

    def tick(row):
        clock.now += 1
        if len(handler.calls) == len(NAMES):
            daemon.request_stop()
    handler = FakeHandler(on_call=tick)
    daemon = one.daemon(0, handler, clock=clock, container_time=10,
                        concurrency=1, interval=3600)
    daemon.run_forever()        # returns at the stop: no 3600 s sleep
    assert sorted(handler.names()) == sorted(NAMES)
    assert any('Stopped on request' in line
               for _, line in daemon.logger.lines)


def test_progress_of_a_db_gone_from_the_node_is_pruned(one):
    one.write_mapping({'container': 'c'}, {'container': 'd'})
    one.put('c', ['x'])
    one.put('d', ['y'])
    one.daemon(0, FakeHandler()).run_once()
    status_dir = os.path.join(one.root, 'status0')
    assert len(os.listdir(status_dir)) == 2
    os.unlink(one.broker(0, 'd', create=False).db_file)
    one.daemon(0, FakeHandler()).run_once()
    assert os.listdir(status_dir) == [os.path.basename(
        progress_file(one, 0, 'c'))]


def test_unmounted_device_is_skipped_with_mount_check(one):
    one.put('c', ['x'])
    handler = FakeHandler()
    daemon = one.daemon(0, handler, mount_check='true')
    assert daemon.run_once() is True    # nothing this node can walk
    assert handler.calls == []
    assert any(level == 'warning' and 'not mounted' in line
               for level, line in daemon.logger.lines)


def test_account_listing_failure_skips_the_account_this_pass(one):
    one.write_mapping({'container': '/*'})
    one.put('c1', ['x'])

    class Broken(FakeSwift):
        def iter_containers(self, account):
            raise OSError('account server down')
    daemon = one.daemon(0, FakeHandler(), swift=Broken())
    assert daemon.run_once() is False       # the pass missed an account
    assert any(level == 'error' and 'Cannot list the containers of '
               'AUTH_test' in line and 's3cr3t' not in line
               for level, line in daemon.logger.lines)


def test_excluded_young_rows_do_not_hold_the_pointer(one):
    one.write_mapping({'copy_after': 600, 'exclude_pattern': '^tmp/'})
    one.put('c', ['tmp/young'], when=T0 - 10)
    one.put('c', ['late-replicated-old'], when=T0 - 700)
    handler = FakeHandler()
    one.daemon(0, handler).run_once()
    assert handler.names() == ['tmp/young', 'late-replicated-old']


def test_dry_run_lists_verification_and_retries(three):
    from shunt.daemon.status import format_plan
    three.put('c', NAMES, when=T0 - 4000)
    clock = Clock(T0)
    bad = sorted(owned_by(three, 0))[0]
    three.daemon(0, FakeHandler({bad: [Failed('remote')]}),
                 clock=clock).run_once()
    clock.now = T0 + 120
    daemon = three.daemon(0, None, clock=clock)
    ok, reports = daemon.one_pass(dry_run=True, once=True)
    ((_, stats),) = reports
    phases = collections.Counter(row['phase'] for row in stats.plan)
    assert phases == {'retry': 1, 'verify1': len(owned_at(three, 0, 1))}
    text = format_plan(reports)
    assert "retry row" in text and "verify1 row" in text


def test_full_retry_list_stops_new_rows_but_retries_go_on(one):
    one.put('c', NAMES[:10])
    clock = Clock(T0)
    handler = FakeHandler({n: [Failed('name')] for n in NAMES[:2]})
    daemon = one.daemon(0, handler, clock=clock, max_failed_rows=2,
                        concurrency=1)
    daemon.run_once()
    data = load_progress(one, 0)
    assert len(data['retries']) == 2            # the walk waits there
    assert data['last_pass']['stopped'] == 'too many failed rows'
    handler.calls.clear()
    clock.now = T0 + 100
    assert daemon.run_once() is True            # retried: they succeed now
    assert sorted(handler.names()) == sorted(NAMES[:10])
    assert load_progress(one, 0)['retries'] == {}
