"""A network link of known bandwidth in front of one loopback port.

Two Swift clusters that tier into each other are joined by a network, not
by loopback: across it, the question is whether the shunt's reads and the
daemon's uploads keep the link busy, as a direct client does. On one
machine, :class:`PortLink` makes the traffic to and from one local port
(the remote cluster's proxy) cross a token bucket of ``rate`` each way —
``tc`` ``htb`` on ``lo``, one class per direction, a u32 filter on the
port — while every other loopback flow goes through unshaped. Both the
measured way and its direct reference talk to that port, so they share
the limit.

Needs root, ``tc`` (Debian: iproute2) and the kernel's ``sch_htb`` and
``cls_u32``; :func:`unavailable` says why a machine cannot shape.
"""

import os
import shutil
import subprocess

DEV = 'lo'
HANDLE = '1:'
# loopback's MTU is 64 KiB: a burst of a few packets
BURST = '256kb'
UNSHAPED = '100gbit'


def _tc(*args, check=True):
    return subprocess.run(('tc',) + args, capture_output=True, text=True,
                          check=check)


def _root_qdisc():
    out = _tc('qdisc', 'show', 'dev', DEV).stdout
    return out.split('\n', 1)[0]


def unavailable():
    """Why this machine cannot shape a loopback port, or None."""
    if os.geteuid() != 0:
        return 'needs root (tc on lo)'
    if shutil.which('tc') is None:
        return 'tc is not installed (Debian: iproute2)'
    root = _root_qdisc()
    if not root.startswith('qdisc noqueue') and \
            not root.startswith(f'qdisc htb {HANDLE}'):
        return f'{DEV} already has a root qdisc ({root})'
    return None


class PortLink:
    """Traffic to and from ``port`` on ``lo`` limited to ``rate`` (tc
    syntax: ``1gbit``) each way, as a ``with`` block."""

    def __init__(self, port, rate):
        self.port, self.rate = port, rate

    def __enter__(self):
        why = unavailable()
        if why:
            raise RuntimeError(f'cannot shape port {self.port}: {why}')
        self.teardown()  # what a killed run may have left
        try:
            _tc('qdisc', 'add', 'dev', DEV, 'root', 'handle', HANDLE, 'htb',
                'default', '10')
            _tc('class', 'add', 'dev', DEV, 'parent', HANDLE, 'classid',
                '1:10', 'htb', 'rate', UNSHAPED)
            for classid, match in (('1:20', 'dport'), ('1:30', 'sport')):
                _tc('class', 'add', 'dev', DEV, 'parent', HANDLE, 'classid',
                    classid, 'htb', 'rate', self.rate, 'ceil', self.rate,
                    'burst', BURST, 'cburst', BURST)
                _tc('filter', 'add', 'dev', DEV, 'parent', HANDLE,
                    'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip',
                    match, str(self.port), '0xffff', 'flowid', classid)
        except subprocess.CalledProcessError as err:
            self.teardown()
            raise RuntimeError(f'cannot shape port {self.port}: '
                               f'{err.stderr.strip()}') from None
        return self

    def __exit__(self, *exc_info):
        self.teardown()

    @staticmethod
    def teardown():
        if _root_qdisc().startswith(f'qdisc htb {HANDLE}'):
            _tc('qdisc', 'del', 'dev', DEV, 'root', check=False)
