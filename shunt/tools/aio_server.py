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
earlier; see :mod:`shunt.core.swiftdir`), then hands over to the server's
usual entry point. A missing ``swift_dir`` is an error: the launcher never
falls back to ``/etc/swift``.

It also provides :func:`console_only_logging`, a ``log_custom_handlers``
hook that drops the syslog handler Swift attaches to every logger, so that
a server run with ``-v`` logs to its console (stderr) only and never sends
datagrams to a syslog daemon.
"""

import importlib
import sys

from shunt.core.swiftdir import swift_dir_of, use_swift_dir

SERVERS = {
    'account': 'swift.account.server',
    'container': 'swift.container.server',
    'object': 'swift.obj.server',
    'proxy': 'swift.proxy.server',
}


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
