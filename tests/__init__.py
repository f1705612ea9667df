"""Tests for ISP Watch."""
