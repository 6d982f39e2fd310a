"""Run the benchmarks: every figure as a ratio against its limit, measured
side by side in the same run.

Usage::

    python -m tests.bench.run [--quick] [--only PHASES] [--out DIR]
                              [--chart PNG] [--keep-state]
                              [--overhead-mode alternate|simultaneous]

Needs ``wrk`` and ``memcached`` (Debian packages) and matplotlib for the
chart; ``py-spy`` is used when present. ``CLOUD_SHUNT_BENCH=1
tools/bootstrap.sh`` installs all of them.

Phases (``--only overhead,archived,link,listing,restore``):

``overhead``  figures 1 and 2 (:mod:`tests.bench.bench_overhead`)
``archived``  figures 3 to 6 (:mod:`tests.bench.bench_archived`)
``link``      figures 3L and 6L: 3 and 6 with the bucket across a
              rate-limited network link (:mod:`tests.bench.bench_link`;
              needs root and iproute2)
``listing``, ``restore``
              figure 7: ``tests/bench/bench_listing.py`` and
              ``tests/bench/bench_restore.py``, each run as a subprocess on
              its own cluster (see :mod:`tests.bench` for the hook)

Outputs: the table on stdout; ``DIR/bench-<time>.json`` and
``DIR/latest.json`` (every row with its samples, the machine's load, the
versions); ``DIR/table.rst``; the chart, ``DIR/bench.png`` unless
``--chart`` names another file. ``DIR`` defaults to
``tests/bench/results`` (not committed).

Every request goes to 127.0.0.1. The machine has 2 cores, so the load
generator, the proxy, the backends and the S3 endpoint share them: every
figure is a ratio of two measurements taken in turn in the same run, and
the output says how busy the rest of the machine was meanwhile
(``background``) and which figures are noisy.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.bench.common import (  # noqa: E402
    BackgroundMeter,
    Row,
    loadavg,
    wrk_path,
)

PHASES = ('overhead', 'archived', 'link', 'listing', 'restore')
EXTERNAL = ('listing', 'restore')
EXTERNAL_TIMEOUT = 15 * 60


def log(message):
    print(message, flush=True)


# -- external benchmark scripts (figure 7) ----------------------------------

def _row_from_dict(data, key_prefix):
    fields = {f: data.get(f) for f in (
        'key', 'title', 'measured', 'limit', 'unit', 'target', 'check',
        'value', 'value_unit', 'ratio', 'noisy', 'spread', 'note',
        'cross', 'samples', 'ci')}
    fields = {k: v for k, v in fields.items() if v is not None}
    fields.setdefault('key', key_prefix)
    fields.setdefault('title', key_prefix)
    fields.setdefault('unit', '')
    fields.setdefault('measured', None)
    fields.setdefault('limit', None)
    fields.setdefault('target', None)
    return Row(**fields)


LISTING_LINE = re.compile(
    r'^(\d+) rows\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+'
    r'<=\s*([\d.]+)')


def _listing_rows_from_text(text):
    """Rows from bench_listing.py's printed table (page rows, local ms,
    s3 ms, spliced ms, ratio, target)."""
    rows = []
    for line in text.splitlines():
        match = LISTING_LINE.match(line.strip())
        if not match:
            continue
        n, local, s3, spliced, ratio, target = match.groups()
        slower = max(float(local), float(s3))
        rows.append(Row(
            key=f'7l-{n}', title=f'spliced listing, {n} rows',
            measured=float(spliced), limit=slower, unit='ms',
            target=float(target), check='<=', ratio=float(ratio),
            note=f'vs the slower of local ({float(local):.0f} ms) and '
                 f'direct S3 ({float(s3):.0f} ms) listings, medians read '
                 f'from the table of bench_listing.py; lower is better'))
    return rows


def run_external(name, quick):
    """Figure 7: run ``tests/bench/bench_<name>.py`` (see
    :mod:`tests.bench`), or say that it is not there yet."""
    script = os.path.join(HERE, f'bench_{name}.py')
    key = f'7{name[0]}'
    if not os.path.exists(script):
        return [Row(key=key, title=f'{name}: not measured', measured=None,
                    limit=None, unit='', target=None,
                    note=f'tests/bench/bench_{name}.py does not exist '
                         f'yet; the runner will run it (see '
                         f'tests/bench/__init__.py for the hook)')]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep +
               os.environ.get('PYTHONPATH', ''))
    helptext = subprocess.run(
        [sys.executable, script, '--help'], capture_output=True, text=True,
        timeout=120, env=env, cwd=REPO).stdout
    argv = [sys.executable, script]
    if quick:
        if '--quick' in helptext:
            argv.append('--quick')
        elif '--runs' in helptext:
            argv += ['--runs', '3']
    json_path = None
    if '--json' in helptext:
        fd, json_path = tempfile.mkstemp(suffix='.json')
        os.close(fd)
        argv += ['--json', json_path]
    shown = [os.path.relpath(script, REPO)] + argv[2:]
    log(f'  running {" ".join(shown)}')
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=EXTERNAL_TIMEOUT, env=env, cwd=REPO,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return [Row(key=key, title=f'{name}: timed out', measured=None,
                    limit=None, unit='', target=None,
                    note=f'bench_{name}.py ran over {EXTERNAL_TIMEOUT}s')]
    log(f'  bench_{name}.py: {time.monotonic() - started:.0f}s, exit '
        f'{proc.returncode}')
    rows = []
    try:
        if json_path:
            try:
                with open(json_path) as fp:
                    data = json.load(fp)
                rows = [_row_from_dict(r, key) for r in data.get('rows', [])]
            except (OSError, ValueError, TypeError) as err:
                log(f'  bench_{name}.py wrote no usable JSON: {err}')
    finally:
        if json_path:
            os.unlink(json_path)
    if not rows and name == 'listing':
        rows = _listing_rows_from_text(proc.stdout)
    if not rows:
        tail = ' | '.join(proc.stdout.strip().splitlines()[-3:] +
                          proc.stderr.strip().splitlines()[-2:])
        rows = [Row(key=key, title=f'{name}: no figures read',
                    measured=None, limit=None, unit='', target=None,
                    note=f'exit {proc.returncode}: {tail[-300:]}')]
    return rows


# -- the table ---------------------------------------------------------------

def _num(value, unit=''):
    if value is None:
        return '-'
    if isinstance(value, float):
        if abs(value) >= 100:
            text = f'{value:.0f}'
        elif abs(value) >= 10:
            text = f'{value:.1f}'
        else:
            text = f'{value:.2f}'
    else:
        text = str(value)
    return f'{text} {unit}'.strip()


def _target(row):
    if row.target is None:
        return 'info'
    sign = {'>=': '>=', '<=': '<=', '==': '='}[row.check]
    if row.value_unit == 'ratio':
        return f'{sign} {row.target:g}'
    unit = row.value_unit.replace(' added', '')
    plus = '+' if 'added' in row.value_unit else ''
    return f'{sign} {plus}{row.target:g} {unit}'.rstrip()


def _result(row):
    if row.value is None and row.measured is None:
        return 'n/a'
    if row.value_unit == 'ratio':
        value = _num(row.ratio)
    elif 'added' in row.value_unit:
        value = f'{row.value:+.2f} ms'
    else:
        value = _num(row.value, row.value_unit)
    met = row.met
    value += '' if met is None else ' met' if met else ' MISSED'
    if met is not None and row.ci and row.value_unit == 'ratio' and \
            abs(row.ratio - row.target) <= row.ci * row.ratio:
        value += ' (within noise)'
    return value


def table_lines(rows):
    head = ('#', 'figure', 'shunt', 'limit', 'ratio', 'target', 'result',
            'noise', 'cross-check')
    body = []
    for row in rows:
        noise = []
        if row.noisy:
            noise.append('noisy')
        if row.ci is not None:
            noise.append(f'±{row.ci:.1%}')
        if row.spread:
            noise.append(f'(iqr {row.spread:.0%})')
        noise = ' '.join(noise) or '-'
        body.append((row.key, row.title, _num(row.measured, row.unit),
                     _num(row.limit, row.unit),
                     _num(row.ratio) if row.ratio is not None else '-',
                     _target(row), _result(row), noise, row.cross or '-'))
    widths = [max(len(str(r[i])) for r in [head] + body)
              for i in range(len(head))]
    return head, body, widths


def format_table(rows):
    head, body, widths = table_lines(rows)
    fmt = '  '.join(f'{{:<{w}}}' for w in widths)
    out = [fmt.format(*head), fmt.format(*('-' * w for w in widths))]
    out += [fmt.format(*r) for r in body]
    return '\n'.join(line.rstrip() for line in out)


def format_rst(rows):
    """The same table as an RST simple table (for the README)."""
    head, body, widths = table_lines(rows)
    rule = '  '.join('=' * w for w in widths)
    fmt = '  '.join(f'{{:<{w}}}' for w in widths)
    out = [rule, fmt.format(*head), rule]
    out += [fmt.format(*r) for r in body]
    out.append(rule)
    return '\n'.join(line.rstrip() for line in out) + '\n'


# -- main --------------------------------------------------------------------

def versions():
    import importlib.metadata as md
    out = {'python': platform.python_version()}
    for name in ('swift', 'boto3', 'botocore', 'eventlet', 'moto',
                 'swift-cloud-shunt'):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='python -m tests.bench.run',
        description='Benchmarks of the cloud shunt (see the module doc).')
    parser.add_argument('--quick', action='store_true',
                        help='fewer, shorter runs and a 256 MiB "big" '
                             'object: a smoke run, noisier figures')
    parser.add_argument('--only', default=','.join(PHASES),
                        help='comma-separated phases: ' + ', '.join(PHASES))
    parser.add_argument('--out', default=os.path.join(HERE, 'results'),
                        help='directory for the JSON, table and chart')
    parser.add_argument('--chart', default=None,
                        help='PNG to write (default: OUT/bench.png)')
    parser.add_argument('--overhead-mode', default='alternate',
                        choices=('alternate', 'simultaneous'),
                        help='figures 1 and 2: load the two proxies one '
                             'after the other (default) or both at once')
    parser.add_argument('--keep-state', action='store_true',
                        help="keep the cluster's state dir (configs, logs)")
    args = parser.parse_args(argv)
    args.only = [p.strip() for p in args.only.split(',') if p.strip()]
    unknown = set(args.only) - set(PHASES)
    if unknown:
        parser.error(f'unknown phases: {", ".join(sorted(unknown))}')
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if 'overhead' in args.only and not wrk_path():
        log('wrk is not installed: apt-get install wrk (or '
            'CLOUD_SHUNT_BENCH=1 tools/bootstrap.sh)')
        return 2
    os.makedirs(args.out, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    log(f'benchmarks ({"quick" if args.quick else "full"}): '
        f'{", ".join(args.only)}; {os.cpu_count()} cores, load '
        f'{loadavg()}')
    rows, background = [], {}

    own = [p for p in args.only if p not in EXTERNAL]
    if own:
        from tests.bench import bench_archived, bench_link, bench_overhead
        from tests.bench.context import Bench
        modules = {'overhead': bench_overhead, 'archived': bench_archived,
                   'link': bench_link}
        with Bench(quick=args.quick, log=log,
                   keep_state_dir=args.keep_state) as bench:
            bench.overhead_mode = args.overhead_mode
            for phase in own:
                log(f'{phase} ...')
                meter = BackgroundMeter()
                rows += modules[phase].run(bench)
                background[phase] = meter.cores()
                log(f'  background load meanwhile: '
                    f'{background[phase]:.2f} cores')
    for phase in args.only:
        if phase in EXTERNAL:
            log(f'{phase} ...')
            meter = BackgroundMeter()
            rows += run_external(phase, args.quick)
            background[phase] = meter.cores()

    elapsed = time.monotonic() - t0
    table = format_table(rows)
    busy = {k: round(v, 2) for k, v in background.items()}
    noisy = [r.key for r in rows if r.noisy]
    print()
    print(table)
    print()
    print(f'{elapsed:.0f}s in all. Cores kept busy by other processes '
          f'while measuring: {busy} (of {os.cpu_count()}); noisy '
          f'figures (paired samples scattered over 5%, or few '
          f'samples): {", ".join(noisy) or "none"}. ratio = shunt / '
          f'limit, the median of the per-pair ratios (shunt and limit are '
          f'the medians of their own samples, so on a drifting machine '
          f'their quotient can differ); noise: ± the 95% '
          f'confidence interval of that median, (iqr) the scatter of the '
          f'samples; "cross-check": an independent reading (proxy CPU '
          f'per request without/with the shunt; py-spy share of the '
          f'proxy worker in the shunt\'s own frames; proxy CPU per GB).')

    report = {
        'started': started.isoformat(timespec='seconds'),
        'seconds': round(elapsed, 1),
        'quick': args.quick,
        'phases': args.only,
        'machine': {'cores': os.cpu_count(), 'loadavg_end': loadavg(),
                    'background_cores': busy,
                    'platform': platform.platform()},
        'versions': versions(),
        'rows': [r.as_dict() for r in rows],
    }
    stamp = started.strftime('%Y%m%dT%H%M%SZ')
    for name in (f'bench-{stamp}.json', 'latest.json'):
        with open(os.path.join(args.out, name), 'w') as fp:
            json.dump(report, fp, indent=1, default=str)
    with open(os.path.join(args.out, 'table.rst'), 'w') as fp:
        fp.write(format_rst(rows))
    chart = args.chart or os.path.join(args.out, 'bench.png')
    try:
        from tests.bench.chart import draw
    except ImportError as err:
        log(f'no chart ({err}): pip install -e ".[bench]"')
    else:
        draw(report, chart)
        log(f'chart: {chart}')
    log(f'results: {os.path.join(args.out, "latest.json")}')
    missed = [r.key for r in rows if r.met is False]
    if missed:
        log(f'targets missed: {", ".join(missed)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
