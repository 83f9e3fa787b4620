"""Tests of trustyard.auth."""
