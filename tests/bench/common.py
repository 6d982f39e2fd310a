"""Shared pieces of the benchmarks: result rows, statistics, the ``wrk``
load generator, a plain HTTP client and /proc readings of the proxy.

Everything here talks to 127.0.0.1 only, and every loop is bounded in
count and in time.
"""

import dataclasses
import http.client
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

HOST = '127.0.0.1'
MiB = 1024 * 1024
GiB = 1024 * MiB
# a figure whose repeated samples spread more than this (relative to
# their median, see spread()) is flagged as noisy in the table
NOISY_SPREAD = 0.05


@dataclasses.dataclass
class Row:
    """One line of the result table.

    ``measured`` is the shunt's figure, ``limit`` the same figure without
    the shunt (or its physical limit), both in ``unit``. ``ratio`` is
    ``measured / limit`` for throughput-like figures (higher is better);
    ``check`` says how ``value`` is compared with ``target`` (``>=`` or
    ``<=``), where ``value`` is the ratio unless ``value_of`` names
    another figure (e.g. added milliseconds, MiB of growth).
    """

    key: str
    title: str
    measured: float | None
    limit: float | None
    unit: str
    target: float | None
    check: str = '>='
    value: float | None = None
    value_unit: str = 'ratio'
    ratio: float | None = None
    noisy: bool = False
    spread: float | None = None
    # relative half-width of the 95% confidence interval of the median
    ci: float | None = None
    samples: dict = dataclasses.field(default_factory=dict)
    note: str = ''
    # a second, independent reading of the same thing (e.g. CPU time)
    cross: str = ''

    def __post_init__(self):
        if self.ratio is None and self.measured is not None and \
                self.limit:
            self.ratio = self.measured / self.limit
        ratios = self.samples.get('ratios') if isinstance(
            self.samples, dict) else None
        if self.ci is None and ratios:
            self.ci = median_ci(ratios)
        if self.value is None:
            self.value = self.ratio

    @property
    def met(self):
        if self.value is None or self.target is None:
            return None
        if self.check == '>=':
            return self.value >= self.target
        if self.check == '<=':
            return self.value <= self.target
        if self.check == '==':
            return self.value == self.target
        raise ValueError(self.check)

    def as_dict(self):
        out = dataclasses.asdict(self)
        out['met'] = self.met
        return out


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    """How far the samples scatter, relative to their median: the
    interquartile range from 5 samples on (one outlier does not count),
    the full range below that; 0 for one sample."""
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return 0.0
    mid = statistics.median(values)
    if not mid:
        return 0.0
    if len(values) >= 5:
        q1, _, q3 = statistics.quantiles(values, n=4, method='inclusive')
        return (q3 - q1) / mid
    return (max(values) - min(values)) / mid


def median_ci(values):
    """Half-width of an approximate 95% confidence interval of the median,
    relative to it (the notch of a box plot: 1.57 IQR / sqrt(n)); None
    below 5 samples."""
    values = [v for v in values if v is not None]
    if len(values) < 5:
        return None
    mid = statistics.median(values)
    q1, _, q3 = statistics.quantiles(values, n=4, method='inclusive')
    return 1.57 * (q3 - q1) / len(values) ** 0.5 / mid if mid else None


def paired_ratios(measured, limits):
    return [m / lim for m, lim in zip(measured, limits, strict=True)
            if lim]


# -- wrk ------------------------------------------------------------------

WRK_SCRIPT = r'''
done = function(summary, latency, requests)
  io.write(string.format(
    "WRKJSON {\"requests\": %d, \"duration_us\": %d, \"bytes\": %d, " ..
    "\"connect_errors\": %d, \"read_errors\": %d, \"write_errors\": %d, " ..
    "\"status_errors\": %d, \"timeouts\": %d, \"p50_us\": %d, " ..
    "\"p99_us\": %d}\n",
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
'''


class WrkError(RuntimeError):
    pass


def wrk_path():
    return shutil.which('wrk')


def wrk(url, headers=None, duration=3.0, connections=16, threads=1,
        timeout=10):
    """Run ``wrk`` against ``url`` (127.0.0.1 only) and return its summary
    with ``rps`` (requests/s) and ``bps`` (bytes/s) added. Raises
    :class:`WrkError` when a response was not 2xx or a socket failed."""
    if not url.startswith(f'http://{HOST}:'):
        raise ValueError(f'refusing to load anything but {HOST}: {url}')
    binary = wrk_path()
    if not binary:
        raise WrkError('wrk is not installed (apt-get install wrk, or '
                       'tools/bootstrap.sh with CLOUD_SHUNT_BENCH=1)')
    with tempfile.NamedTemporaryFile('w', suffix='.lua',
                                     delete=False) as fp:
        fp.write(WRK_SCRIPT)
        script = fp.name
    # wrk takes whole seconds only
    duration = max(1, round(duration))
    argv = [binary, '-t', str(threads), '-c', str(connections),
            '-d', f'{duration}s', '--timeout', f'{timeout}s',
            '-s', script]
    for name, value in (headers or {}).items():
        argv += ['-H', f'{name}: {value}']
    argv.append(url)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=duration + timeout + 30,
                              stdin=subprocess.DEVNULL)
    finally:
        os.unlink(script)
    summary = None
    for line in proc.stdout.splitlines():
        if line.startswith('WRKJSON '):
            summary = json.loads(line[len('WRKJSON '):])
    if proc.returncode != 0 or summary is None:
        raise WrkError(f'wrk failed ({proc.returncode}): '
                       f'{proc.stderr.strip() or proc.stdout.strip()}')
    errors = sum(summary[k] for k in (
        'connect_errors', 'read_errors', 'write_errors', 'status_errors',
        'timeouts'))
    if errors:
        raise WrkError(f'wrk saw errors against {url}: {summary}')
    seconds = summary['duration_us'] / 1e6
    summary['rps'] = summary['requests'] / seconds
    summary['bps'] = summary['bytes'] / seconds
    return summary


# -- a plain HTTP client ----------------------------------------------------

class Client:
    """A persistent HTTP/1.1 connection to the proxy that reads bodies
    into one reusable buffer (so the client costs little CPU)."""

    def __init__(self, port, token, timeout=60, bufsize=MiB):
        self.port = port
        self.token = token
        self.timeout = timeout
        self.buf = memoryview(bytearray(bufsize))
        self.conn = None

    def _connect(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port,
                                                   timeout=self.timeout)
        return self.conn

    def get(self, path, headers=None):
        """GET ``path``; returns ``(status, body_bytes, ttfb, total)``
        in seconds from the request being sent."""
        conn = self._connect()
        hdrs = {'X-Auth-Token': self.token}
        hdrs.update(headers or {})
        start = time.perf_counter()
        try:
            conn.request('GET', path, headers=hdrs)
            resp = conn.getresponse()
            got = resp.readinto(self.buf[:1])
            ttfb = time.perf_counter() - start
            while True:
                n = resp.readinto(self.buf)
                if not n:
                    break
                got += n
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        total = time.perf_counter() - start
        if resp.will_close:
            self.close()
        return resp.status, got, ttfb, total

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# -- /proc readings -------------------------------------------------------

def children(pid):
    """Direct children of ``pid``."""
    kids = []
    try:
        for tid in os.listdir(f'/proc/{pid}/task'):
            with open(f'/proc/{pid}/task/{tid}/children') as fp:
                kids += [int(p) for p in fp.read().split()]
    except OSError:
        pass
    if kids:
        return kids
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as fp:
                stat = fp.read()
        except OSError:
            continue
        if int(stat.rsplit(')', 1)[1].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def worker_of(parent, workers=1, timeout=10.0):
    """The pid of a Swift server's (first) worker process: a server with
    ``workers`` > 0 forks them from the process that was started."""
    if not workers:
        return parent
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = children(parent)
        if kids:
            return kids[0]
        time.sleep(0.05)
    raise RuntimeError(f'process {parent} has no worker process')


def memory_kib(pid):
    """``{'VmRSS': kib, 'VmHWM': kib}`` of a process."""
    out = {}
    with open(f'/proc/{pid}/status') as fp:
        for line in fp:
            name, _, rest = line.partition(':')
            if name in ('VmRSS', 'VmHWM'):
                out[name] = int(rest.split()[0])
    return out


def reset_peak_rss(pid):
    """Make VmHWM start again from the current RSS (Linux >= 4.0);
    returns False where that is not allowed."""
    try:
        with open(f'/proc/{pid}/clear_refs', 'w') as fp:
            fp.write('5')
        return True
    except OSError:
        return False


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far."""
    with open(f'/proc/{pid}/stat') as fp:
        fields = fp.read().rsplit(')', 1)[1].split()
    ticks = os.sysconf('SC_CLK_TCK')
    return (int(fields[11]) + int(fields[12])) / ticks


def mbps(nbytes, seconds):
    return nbytes / seconds / 1e6 if seconds else None


# -- what else the machine is doing ----------------------------------------

def _descendants(pid):
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def _proc_cpu(pid):
    """utime + stime + cutime + cstime of a process, in seconds."""
    try:
        with open(f'/proc/{pid}/stat') as fp:
            fields = fp.read().rsplit(')', 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf('SC_CLK_TCK')


def _busy_seconds():
    """CPU seconds the whole machine has been busy (all cores)."""
    with open('/proc/stat') as fp:
        fields = [int(f) for f in fp.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf('SC_CLK_TCK')


def _own_seconds():
    times = os.times()
    own = times.user + times.system + times.children_user + \
        times.children_system
    return own + sum(_proc_cpu(pid) for pid in _descendants(os.getpid()))


class BackgroundMeter:
    """How many cores the rest of the machine (anything that is not this
    process or its children: other users' jobs) kept busy meanwhile. The
    benchmark figures are only as good as this is small."""

    def __init__(self):
        self.start()

    def start(self):
        self.t0 = time.monotonic()
        self.busy0 = _busy_seconds()
        self.own0 = _own_seconds()

    def cores(self):
        elapsed = time.monotonic() - self.t0
        if elapsed <= 0:
            return 0.0
        busy = _busy_seconds() - self.busy0
        own = _own_seconds() - self.own0
        return max(0.0, (busy - own) / elapsed)


def loadavg():
    with open('/proc/loadavg') as fp:
        return [float(x) for x in fp.read().split()[:3]]
