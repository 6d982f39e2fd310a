"""Run one Swift server on the ``swift.conf`` of its own ``swift_dir``.

Usage::

    python -m shunt.tools.aio_server {account,container,object,proxy} CONF [-v]

Swift reads ``/etc/swift/swift.conf`` (hash prefix/suffix, storage policies,
constraints) when :mod:`swift.common.constraints` and
:mod:`swift.common.storage_policy` are first imported, and ``swift_dir`` in
a server's config only redirects the hash settings, not the policies or
constraints already parsed. This launcher reads ``swift_dir`` from the
config's ``[DEFAULT]`` section and points Swift at it *before* those
modules are imported (and reloads them in case something imported them
earlier), then hands over to the server's usual entry point. A missing
``swift_dir`` is an error: the launcher never falls back to ``/etc/swift``.

It also provides :func:`console_only_logging`, a ``log_custom_handlers``
hook that drops the syslog handler Swift attaches to every logger, so that
a server run with ``-v`` logs to its console (stderr) only and never sends
datagrams to a syslog daemon.
"""

import configparser
import importlib
import os
import sys

SERVERS = {
    'account': 'swift.account.server',
    'container': 'swift.container.server',
    'object': 'swift.obj.server',
    'proxy': 'swift.proxy.server',
}


def swift_dir_of(conf_path):
    """The ``swift_dir`` named in the ``[DEFAULT]`` section of a server
    config; raises ValueError when there is none."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    if not parser.read(conf_path):
        raise ValueError(f'{conf_path}: cannot read the config file')
    swift_dir = parser.defaults().get('swift_dir')
    if not swift_dir:
        raise ValueError(f'{conf_path}: [DEFAULT] swift_dir is not set')
    return swift_dir


def use_swift_dir(swift_dir):
    """Make this process's Swift read ``<swift_dir>/swift.conf``."""
    swift_conf = os.path.join(swift_dir, 'swift.conf')
    if not os.path.isfile(swift_conf):
        raise ValueError(f'{swift_conf}: no such file')
    from swift.common import utils
    utils.set_swift_dir(swift_dir)
    # set_swift_dir only re-validates the hash settings: load (or reload)
    # constraints and storage policies from the new file as well
    from swift.common import constraints, storage_policy
    constraints.reload_constraints()
    storage_policy.reload_storage_policies()


def console_only_logging(conf, name, log_to_console, log_route, fmt, logger,
                         adapted_logger):
    """``log_custom_handlers`` hook: keep only the console handler."""
    from swift.common.utils.logs import get_swift_logger
    handler = getattr(get_swift_logger, 'handler4logger', {}).pop(logger,
                                                                  None)
    if handler is not None:
        logger.removeHandler(handler)
        handler.close()


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] not in SERVERS:
        print(f'usage: python -m shunt.tools.aio_server '
              f'{{{",".join(SERVERS)}}} CONF [server options]',
              file=sys.stderr)
        return 2
    server, conf_path = argv[0], argv[1]
    try:
        use_swift_dir(swift_dir_of(conf_path))
    except ValueError as err:
        print(f'aio_server: {err}', file=sys.stderr)
        return 1
    module = importlib.import_module(SERVERS[server])
    sys.argv = [f'swift-{server}-server', conf_path] + argv[2:]
    return module.main()


if __name__ == '__main__':
    sys.exit(main())
