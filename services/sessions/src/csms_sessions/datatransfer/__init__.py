"""DataTransfer in both directions (OCPP 1.6 §4.3/§5.6, 2.0.1 P01/P02) and vendor extensions."""

from csms_sessions.datatransfer.handlers import on_data_transfer
from csms_sessions.datatransfer.registry import REGISTRY, VendorRegistry

__all__ = ["REGISTRY", "VendorRegistry", "on_data_transfer"]
