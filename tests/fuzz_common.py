"""What the bad-input tests (tests/unit/test_fuzz.py and
tests/functional/test_fuzz.py) share.

Nothing here imports Swift or eventlet: eventlet's green copy of
``http.server`` would otherwise shadow the real one for the functional
tests' threaded fake servers (see tests/functional/test_object_failures.py).
"""

import re
import urllib.parse

# what a traceback or an exception's text looks like in a response body
TRACEBACK_WORDS = (b'Traceback', b'File "', b'Error:', b'Exception')

# characters XML 1.0 cannot carry: moto 5 answers 500 for a listing whose
# prefix, marker or delimiter holds one (S3 itself takes them, and answers
# with encoding-type=url), and the shunt rightly answers 503
_XML_UNSAFE = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff'
                         '\ud800-\udfff]')


def xml_unsafe(query):
    """Does a query string (a WSGI string) carry a parameter value that
    XML 1.0 cannot?"""
    try:
        params = urllib.parse.parse_qsl(
            query.encode('latin-1').decode('utf-8', 'surrogateescape'),
            errors='surrogateescape')
    except ValueError:
        return False
    return any(_XML_UNSAFE.search(v) for _, v in params)
