"""Charging transactions. For now only the minimal answers that keep stations working.

Issue 3 replaces this package's handlers with the real session model.
"""
