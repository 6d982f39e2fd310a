"""swift-cloud-shunt: serve objects archived to S3 through the Swift API."""

__version__ = '0.1.0'
