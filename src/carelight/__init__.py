"""Carelight: an open platform for health and adult social care data."""

__version__ = "0.1.0"
