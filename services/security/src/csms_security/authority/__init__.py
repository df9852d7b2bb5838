"""The station certificate authority, CSR checks and the signers (local CA or EST)."""
