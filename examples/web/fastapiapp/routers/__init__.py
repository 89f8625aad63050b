"""The endpoints, one router per module."""
