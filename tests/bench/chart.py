"""The benchmark chart (PNG, matplotlib): ``draw(report, path)``.

Left: every throughput-like figure as the shunt's ratio to its limit, with
its target marked (a listing ratio where lower is better is drawn as
limit/shunt so that longer is better everywhere). Right, top: time to
first byte of an archived GET against a local GET plus a direct S3 GET.
Right, bottom: peak memory growth of the proxy against its budget, and
the S3 request counts.
"""

import textwrap

import matplotlib

matplotlib.use('Agg')

import matplotlib.pyplot as plt  # noqa: E402

GREEN, RED, GREY, BLUE = '#3a923a', '#c8453b', '#9a9a9a', '#4c78a8'


def _bar_rows(rows):
    out = []
    for row in rows:
        if row.get('value_unit') != 'ratio' or row.get('ratio') is None:
            continue
        ratio, target = row['ratio'], row.get('target')
        title = row['title']
        if row.get('check') == '<=':
            ratio = 1 / ratio if ratio else 0
            target = 1 / target if target else None
            title += ' (limit / shunt)'
        label = '\n'.join(textwrap.wrap(f'{row["key"]}  {title}', 44))
        out.append((label, ratio, target, row.get('met'),
                    row.get('noisy')))
    return out


def draw(report, path):
    rows = report['rows']
    by_key = {row['key']: row for row in rows}
    fig = plt.figure(figsize=(13, 8.5), dpi=100)
    grid = fig.add_gridspec(2, 2, width_ratios=(1.6, 1),
                            height_ratios=(1, 1), wspace=0.32, hspace=0.75)

    # -- ratios ---------------------------------------------------------
    ax = fig.add_subplot(grid[:, 0])
    bars = _bar_rows(rows)[::-1]
    for y, (_label, ratio, target, met, noisy) in enumerate(bars):
        color = GREY if met is None else GREEN if met else RED
        ax.barh(y, ratio, color=color, height=0.62,
                hatch='///' if noisy else None, edgecolor='white')
        ax.text(max(ratio, target or 0) + 0.015, y, f'{ratio:.2f}',
                va='center', fontsize=9)
        if target is not None:
            ax.plot([target, target], [y - 0.4, y + 0.4], color='black',
                    linewidth=2)
    ax.set_yticks(range(len(bars)))
    ax.set_yticklabels([b[0] for b in bars], fontsize=8)
    ax.set_xlim(0, max([1.25] + [b[1] + 0.12 for b in bars]))
    ax.axvline(1.0, color='black', linewidth=0.6, linestyle=':')
    ax.set_xlabel('shunt / limit (1.0 = as fast as without the shunt or '
                  'as S3 directly)', fontsize=9)
    ax.set_title('Throughput ratios (black tick: target; hatched: noisy; '
                 'grey: reference)', fontsize=10)
    ax.tick_params(axis='x', labelsize=9)

    # -- time to first byte ---------------------------------------------
    ax = fig.add_subplot(grid[0, 1])
    ttfb = by_key.get('4')
    if ttfb and ttfb.get('measured') is not None:
        samples = ttfb.get('samples', {})
        local = _median(samples.get('local')) or 0
        s3 = _median(samples.get('s3')) or 0
        arch = ttfb['measured']
        ax.barh(1, local, color=GREY, label='local GET')
        ax.barh(1, s3, left=local, color=BLUE, label='direct S3 GET')
        color = GREEN if ttfb.get('met') else RED
        ax.barh(0, arch, color=color, label='archived, via the shunt')
        ax.text(local + s3 + 0.1, 1, f'{local + s3:.1f} ms', va='center',
                fontsize=9)
        ax.text(arch + 0.1, 0, f'{arch:.1f} ms ({arch - local - s3:+.1f})',
                va='center', fontsize=9)
        ax.set_ylim(-0.6, 1.6)
        ax.set_xlim(0, max(arch, local + s3) * 1.45)
        ax.set_yticks([0, 1])
        ax.set_yticklabels(['archived', 'local + S3'], fontsize=9)
        ax.legend(fontsize=7.5, loc='upper center', frameon=False,
                  bbox_to_anchor=(0.5, -0.3), ncol=3, columnspacing=1)
    ax.set_title(f'4  time to first byte, 4 KiB (target <= '
                 f'+{(ttfb or {}).get("target", 3):g} ms)', fontsize=10)
    ax.set_xlabel('ms (medians)', fontsize=9)
    ax.tick_params(axis='x', labelsize=9)

    # -- memory and remote calls ------------------------------------------
    ax = fig.add_subplot(grid[1, 1])
    mem = by_key.get('5')
    if mem and mem.get('measured') is not None:
        color = GREEN if mem.get('met') else RED
        ax.barh(0, mem['measured'], color=color)
        ax.axvline(mem['target'], color='black', linewidth=2)
        ax.text(mem['measured'] + 0.4, 0, f'{mem["measured"]:.1f} MiB',
                va='center', fontsize=9)
        ax.text(mem['target'] - 0.4, 0.42, 'budget', ha='right',
                fontsize=8)
        ax.set_xlim(0, mem['target'] * 1.15)
        ax.set_yticks([0])
        ax.set_yticklabels([mem['title'].replace(
            'proxy peak RSS growth serving ', '')], fontsize=9)
    ax.set_ylim(-0.6, 0.9)
    ax.set_title('5  proxy peak RSS growth serving one object', fontsize=10)
    ax.set_xlabel('MiB', fontsize=9)
    ax.tick_params(axis='x', labelsize=9)
    facts = []
    for key, text in (('2r', 'S3 requests, local GETs in mapped '
                             'containers: {:g}'),
                      ('4r', 'S3 requests per archived GET: {:g}')):
        row = by_key.get(key)
        if row and row.get('measured') is not None:
            facts.append(text.format(row['measured']))
    if facts:
        fig.text(0.62, 0.012, '\n'.join(facts), fontsize=8.5)

    machine = report.get('machine', {})
    busy = machine.get('background_cores', {})
    where = '127.0.0.1'
    if any(row['key'].startswith(('3L', '6L')) and row.get('ratio')
           for row in rows):
        where += ' (3L, 6L: S3 across a veth link)'
    fig.suptitle(
        f'swift-cloud-shunt benchmarks, {report.get("started", "")[:10]}'
        f'{" (quick)" if report.get("quick") else ""}: '
        f'{machine.get("cores", "?")} cores, {where}, moto as S3; '
        f'other load meanwhile up to '
        f'{max(busy.values(), default=0):.1f} cores', fontsize=11)
    fig.subplots_adjust(left=0.22, right=0.98, top=0.91, bottom=0.13)
    fig.savefig(path)
    plt.close(fig)
    return path


def _median(values):
    values = sorted(v for v in values or () if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else \
        (values[mid - 1] + values[mid]) / 2
