"""swift-cloud-shunt: serve objects archived to S3 through the Swift API."""

__version__ = '0.1.0'

# swift.source of the shunt's own subrequests (in the proxy's access log)
SWIFT_SOURCE = 'CLOUD_SHUNT'
