"""Small fakes shared by the unit tests."""

import json

from swift.common.swob import Request, Response

BUCKET = 'archive-bucket'


class FakeSwift:
    """A WSGI app standing in for the pipeline right of the shunt: answers
    from a dict of ``path -> Response`` and 404 for everything else."""

    def __init__(self, responses=None):
        self.responses = responses or {}
        self.calls = []

    def __call__(self, env, start_response):
        req = Request(env)
        self.calls.append((req.method, req.path, req.query_string,
                           dict(req.headers)))
        resp = self.responses.get(req.path)
        if resp is None:
            resp = Response(status=404, body=b'<html><h1>Not Found</h1>'
                            b'</html>', headers={'X-Local': 'yes'})
        elif not isinstance(resp, Response):
            resp = resp(req)
        return resp(env, start_response)


class FakeLogger:
    """Records log lines and metric calls."""

    def __init__(self):
        self.lines = []
        self.metrics = []

    def _log(self, level, msg, *args):
        self.lines.append((level, msg % args if args else msg))

    def debug(self, msg, *args):
        self._log('debug', msg, *args)

    def info(self, msg, *args):
        self._log('info', msg, *args)

    def warning(self, msg, *args):
        self._log('warning', msg, *args)

    def error(self, msg, *args):
        self._log('error', msg, *args)

    def exception(self, msg, *args):
        self._log('error', msg, *args)

    def increment(self, name, *args, **kwargs):
        self.metrics.append(('increment', name))

    def update_stats(self, name, value, *args, **kwargs):
        self.metrics.append(('update_stats', name, value))

    def timing_since(self, name, start, *args, **kwargs):
        self.metrics.append(('timing', name))

    def text(self, level=None):
        return '\n'.join(line for lvl, line in self.lines
                         if level is None or lvl == level)


def write_mapping(path, profiles):
    with open(path, 'w') as fp:
        json.dump({'containers': profiles}, fp)
    return str(path)
