"""The single source of hotmod's version."""

__version__ = "0.1.0.dev0"
