"""The firmware and diagnostics service (``csms firmware``)."""
