"""Point this process's Swift at the ``swift.conf`` of a ``swift_dir``.

Swift reads ``/etc/swift/swift.conf`` (hash prefix/suffix, storage policies,
constraints) when :mod:`swift.common.constraints` and
:mod:`swift.common.storage_policy` are first imported, and ``swift_dir`` in
a server's config only redirects the hash settings, not the policies or
constraints already parsed. :func:`use_swift_dir` points Swift at another
directory and reloads both, so a process started with a config whose
``[DEFAULT] swift_dir`` is not ``/etc/swift`` (the all-in-one cluster, a
test) uses that directory's rings *and* ``swift.conf``. Both the all-in-one
server launcher (:mod:`shunt.tools.aio_server`) and the sync daemon
(:mod:`shunt.daemon.daemon`) call it before loading rings or policies.
"""

import configparser
import os


def swift_dir_of(conf_path, default=None):
    """The ``swift_dir`` named in the ``[DEFAULT]`` section of a server
    config; ``default`` when there is none (ValueError if that is None)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        found = parser.read(conf_path)
    except configparser.Error as err:
        raise ValueError(f'{conf_path}: cannot parse the config file: {err}')
    if not found:
        raise ValueError(f'{conf_path}: cannot read the config file')
    swift_dir = parser.defaults().get('swift_dir') or default
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
