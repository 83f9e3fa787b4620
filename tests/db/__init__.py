"""Tests of trustyard.db."""
