"""An S3 endpoint on the far side of a network link of known bandwidth.

In production the bucket is across a network: the limit of an archived
GET is the link, and the question is whether the shunt keeps that link
busy. On one machine, :class:`Link` builds such a link: a network
namespace joined to the host by a veth pair, whose namespace end sends
through a token bucket (``tc qdisc ... tbf``) of ``rate``, and a moto
server listening inside the namespace. Direct boto3 reads and the proxy's
reads cross the same link, so the two figures share their limit.

Needs root, iproute2 (``ip``, ``tc``) and the kernel's ``sch_tbf``;
:func:`unavailable` says why a machine cannot build it.
"""

import http.client
import os
import shutil
import subprocess
import sys
import time

from shunt.tools.aio import Process

NETNS = 'cloud-shunt-bench'
HOST_IF, NS_IF = 'csb-host', 'csb-s3'
HOST_IP, NS_IP = '10.231.7.1', '10.231.7.2'
PORT = 9000


def _ip(*args, ns=False, check=True):
    argv = (['ip', 'netns', 'exec', NETNS] if ns else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def unavailable():
    """Why this machine cannot build the link, or None."""
    if os.geteuid() != 0:
        return 'needs root (network namespace, tc)'
    for tool in ('ip', 'tc'):
        if shutil.which(tool) is None:
            return f'{tool} is not installed (Debian: iproute2)'
    return None


class Link:
    """moto behind a ``rate`` token bucket (tc syntax: ``2gbit``)."""

    def __init__(self, log_path, rate='2gbit'):
        self.log_path = log_path
        self.rate = rate
        self.moto = None

    @property
    def endpoint(self):
        return f'http://{NS_IP}:{PORT}'

    def start(self, timeout=30.0):
        self.teardown()  # what a killed run may have left
        try:
            self._build()
            self.moto = Process(
                'link-s3', ['ip', 'netns', 'exec', NETNS, sys.executable,
                            '-m', 'moto.server', '-H', NS_IP,
                            '-p', str(PORT)], self.log_path)
            self.moto.start()
            self._wait(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _build(self):
        _ip('ip', 'netns', 'add', NETNS)
        _ip('ip', 'link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name',
            NS_IF)
        _ip('ip', 'link', 'set', NS_IF, 'netns', NETNS)
        _ip('ip', 'addr', 'add', f'{HOST_IP}/24', 'dev', HOST_IF)
        _ip('ip', 'link', 'set', HOST_IF, 'up')
        _ip('ip', 'addr', 'add', f'{NS_IP}/24', 'dev', NS_IF, ns=True)
        _ip('ip', 'link', 'set', NS_IF, 'up', ns=True)
        _ip('ip', 'link', 'set', 'lo', 'up', ns=True)
        # only the S3-to-host direction is the bottleneck, as for a GET
        _ip('tc', 'qdisc', 'add', 'dev', NS_IF, 'root', 'tbf', 'rate',
            self.rate, 'burst', '1mb', 'latency', '50ms', ns=True)

    def _wait(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if not self.moto.running():
                raise RuntimeError('moto in the namespace exited:\n' +
                                   self.moto.tail())
            try:
                conn = http.client.HTTPConnection(NS_IP, PORT, timeout=1)
                conn.request('GET', '/')
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError('moto in the namespace does not '
                                   'answer:\n' + self.moto.tail())
            time.sleep(0.1)

    def stop(self):
        if self.moto is not None:
            self.moto.stop()
            self.moto = None
        self.teardown()

    @staticmethod
    def teardown():
        # deleting the namespace deletes its veth end, and so the pair
        _ip('ip', 'netns', 'del', NETNS, check=False)
        _ip('ip', 'link', 'del', HOST_IF, check=False)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
