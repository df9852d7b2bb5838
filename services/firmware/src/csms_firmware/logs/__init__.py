"""Diagnostics and logs: GetDiagnostics / GetLog and the uploads they cause."""
